"""DIS presets for the motion score: MEDIUM (the default) against FAST and ULTRAFAST, on accuracy and cost.

    python benchmarks/motion_presets.py                       # ../shared/videos and ../shared/footage
    python benchmarks/motion_presets.py --videos DIR ...      # other folders

Every file is split as the offline pipeline splits it (its cascade, ``configs/offline.yaml``'s lengths). Each clip's
frames are read once as the motion step reads them (2 fps, 160 px, grey), and each preset scores them
(``curate.scores.motion.clip_motion``, camera fit included, as the step runs it). Printed:

- the CPU-s of each preset's flow over all clips, and per frame pair;
- each preset against MEDIUM over clips: Spearman's rank correlation, the median and 90th-percentile relative
  difference of ``motion_score``, and how many clips land on the other side of the default filter's
  ``motion_score >= 0.005``; clips whose camera label changes;
- the share of (static, moving) annotated fixture pairs (``../shared/videos/ground_truth.json``) each orders right;
- known shifts: a real frame moved by whole pixels (1-8 px at 160 px wide), the flow's mean length against the shift.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from motion_vectors import MOVING, STATIC, spearman  # noqa: E402 (the annotated motion labels, as there)

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
PRESETS = {"medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
           "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST}
THRESHOLD = 0.005


def clips_of(paths: list[str]) -> pa.Table:
    """The clips of ``paths`` as the offline pipeline's ingest and split make them (``configs/offline.yaml``)."""
    from curate.config import build_steps

    steps = {s.name: s.stage for s in build_steps(ROOT / "configs" / "offline.yaml",
                                                   overrides=["split.keep_frames_mb=0"], inputs=paths)}
    ingest, split = steps["ingest"], steps["split"]
    ingest.setup()
    split.setup()
    return split.process(ingest.process(pa.table({"video_path": paths})).kept).kept


def scores(frames, preset: int) -> tuple[list[float], list[str], float, int]:
    import curate.scores.motion as motion

    motion.DIS_PRESET = preset
    out, labels, pairs = [], [], 0
    start = time.process_time()
    for clip in frames:
        if clip is None:
            out.append(math.nan)
            labels.append("")
            continue
        magnitudes, fits = motion.clip_motion(clip)
        pairs += len(magnitudes)
        summary = motion.summary(magnitudes, fits)
        out.append(summary.score)
        labels.append(summary.camera.label or "")
    return out, labels, time.process_time() - start, pairs


def known_shifts(frame: np.ndarray) -> dict[str, float]:
    """Median relative error of the flow's mean length for whole-pixel shifts 1-8 px (a real 160-px frame, the
    shifted copy cropped so that both show the same content)."""
    errors: dict[str, list[float]] = {name: [] for name in PRESETS}
    for shift in (1, 2, 3, 4, 6, 8):
        for dx, dy in ((shift, 0), (0, shift), (shift, shift)):
            h, w = frame.shape
            a = np.ascontiguousarray(frame[8:h - 8, 8:w - 8])
            b = np.ascontiguousarray(frame[8 - dy:h - 8 - dy, 8 - dx:w - 8 - dx])
            for name, preset in PRESETS.items():
                flow = cv2.DISOpticalFlow_create(preset).calc(a, b, None)
                length = float(np.linalg.norm(flow, axis=2).mean())
                errors[name].append(abs(length - math.hypot(dx, dy)) / math.hypot(dx, dy))
    return {name: float(np.median(e)) for name, e in errors.items()}


def main() -> None:
    from curate.hardware import cpu
    from curate.inputs import expand_inputs
    from curate.video.frame_needs import FrameNeed, read_needed_frames

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", action="append", type=Path,
                        help="folders of videos (default: ../shared/videos and ../shared/footage)")
    args = parser.parse_args()
    folders = args.videos or [SHARED / "videos", SHARED / "footage"]
    paths = expand_inputs([str(folder) for folder in folders])
    cv2.setNumThreads(1)
    clips = clips_of(paths)
    got = read_needed_frames(clips, FrameNeed(fps=2.0, width=160, grey=True))
    results = {name: scores(got.frames, preset) for name, preset in PRESETS.items()}

    print(f"CPU: {cpu().describe()}; {len(paths)} files, {clips.num_rows} clips, "
          f"{results['medium'][3]} frame pairs (2 fps, 160 px)\n")
    print("| preset | flow + camera CPU-s | ms a pair | Spearman vs medium | median / p90 relative difference "
          f"| clips across {THRESHOLD} | camera label changed | annotated pairs ordered right |")
    print("|---|---|---|---|---|---|---|---|")
    truth = json.loads((SHARED / "videos" / "ground_truth.json").read_text())
    names = [n for n, v in truth.items() if isinstance(v, dict) and isinstance(v.get("motion"), str)]
    static = [n for n in names if truth[n]["motion"].startswith(STATIC)]
    moving = [n for n in names if truth[n]["motion"].split(" (")[0] in MOVING]
    paths_of = [Path(p).name for p in clips["video_path"].to_pylist()]
    base, base_labels = np.array(results["medium"][0]), results["medium"][1]
    for name, (values, labels, seconds, pairs) in results.items():
        values = np.array(values)
        ok = ~(np.isnan(values) | np.isnan(base))
        rel = np.abs(values[ok] - base[ok]) / np.maximum(base[ok], 1e-4)
        across = int(((values[ok] >= THRESHOLD) != (base[ok] >= THRESHOLD)).sum())
        changed = sum(a != b for a, b in zip(labels, base_labels))
        per_video = {n: float(np.nanmean([v for v, p in zip(values, paths_of) if p == n]))
                     for n in names if n in paths_of}
        ordered = [(per_video[s], per_video[m]) for s in static for m in moving if s in per_video and m in per_video]
        right = sum(a < b for a, b in ordered)
        print(f"| {name} | {seconds:.2f} | {1000 * seconds / max(pairs, 1):.2f} | {spearman(values[ok], base[ok]):.4f} "
              f"| {np.median(rel):.3f} / {np.percentile(rel, 90):.3f} | {across} of {int(ok.sum())} | {changed} "
              f"| {right} of {len(ordered)} |")
    first = next(f for f in got.frames if f)
    errors = known_shifts(first[0].image)
    print("\nKnown shifts (1-8 px, 160-px real frame), median relative error of the mean flow length: "
          + ", ".join(f"{name} {e:.3f}" for name, e in errors.items()))


if __name__ == "__main__":
    main()
