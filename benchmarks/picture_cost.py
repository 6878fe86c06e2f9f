"""CPU seconds per clip of the scorers of curate.scores on what they are given, decoding excluded: the picture scorer
on its frames, the camera-motion fit on the motion step's flow fields, overlay text on the OCR step's boxes.

    python benchmarks/picture_cost.py                  # 4-s windows of every fixture, 8 frames at 256 px

Frames are decoded first (as the picture stage does, or read from a frames step), then only ``picture_scores`` is
timed (process CPU time, one thread), so the figure is the scorer's own cost. The camera fit is timed on the flow
fields of the same windows (2 fps, 160 px, DIS: what the motion step computes anyway; the flow itself is the motion
score's cost, not the fit's), and ``overlay_areas`` on boxes of 3 frames with 4 text boxes each (psd_testvideo's
watermark: more boxes than most clips have).
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import cv2
import numpy as np

from curate.scores.camera import camera_label, fit_camera
from curate.scores.overlay import overlay_areas
from curate.scores.picture import picture_scores
from curate.stages.picture import DEFAULT_POSITIONS, DEFAULT_WIDTH
from curate.video.frames import read_clips, sample_times
from curate.video.probe import probe


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", default=str(Path(__file__).resolve().parents[2] / "shared" / "videos"))
    parser.add_argument("--width", type=int, default=DEFAULT_WIDTH)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    clips = []
    for path in sorted(Path(args.videos).glob("*.mp4")) + sorted(Path(args.videos).glob("*.avi")):
        duration = probe(path).video_duration_s
        spans = [(s, min(s + 4.0, duration - 0.05)) for s in range(0, int(duration - 1), 4)]
        clips += read_clips(path, [sample_times(a, b, positions=DEFAULT_POSITIONS) for a, b in spans],
                            width=args.width)
    per_clip = []
    for _ in range(args.rounds):
        start = time.process_time()
        for frames in clips:
            picture_scores(frames)
        per_clip.append((time.process_time() - start) / len(clips))
    print(f"{cpu_name()}: {len(clips)} clips, {len(clips[0])} frames at {args.width} px: picture_scores "
          f"{min(per_clip) * 1000:.1f} ms CPU per clip (best of {args.rounds}; rounds "
          f"{', '.join(f'{t * 1000:.1f}' for t in per_clip)})")

    # camera motion: the fit on the flow fields the motion step computes (flow computed here once, not timed)
    flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    fields = []
    for path in sorted(Path(args.videos).glob("*.mp4")) + sorted(Path(args.videos).glob("*.avi")):
        duration = probe(path).video_duration_s
        spans = [(s, min(s + 4.0, duration - 0.05)) for s in range(0, int(duration - 1), 4)]
        for frames in read_clips(path, [sample_times(a, b, fps=2.0) for a, b in spans], width=160):
            grays = [cv2.cvtColor(f.image, cv2.COLOR_RGB2GRAY) for f in frames]
            fields.append([(flow.calc(a, b, None), max(t1.time_s - t0.time_s, 1e-3))
                           for a, b, t0, t1 in zip(grays, grays[1:], frames, frames[1:])])
    per_clip = []
    for _ in range(args.rounds):
        start = time.process_time()
        for pairs in fields:
            camera_label([fit_camera(field, dt) for field, dt in pairs])
        per_clip.append((time.process_time() - start) / len(fields))
    print(f"{cpu_name()}: {len(fields)} clips, {np.mean([len(p) for p in fields]):.1f} flow fields of 160 px each: "
          f"camera fit {min(per_clip) * 1000:.2f} ms CPU per clip (best of {args.rounds})")

    # overlay text: on the boxes of the OCR step (3 frames), a watermark in 2 boxes, a sign, a title
    box = lambda x0, y0, x1, y1: [x0, y0, x1, y0, x1, y1, x0, y1]  # noqa: E731
    boxes = [[box(0.06, 0.83, 0.57, 0.89), box(0.68, 0.84, 0.91, 0.89), box(0.1 + 0.2 * i, 0.4, 0.3 + 0.2 * i, 0.5),
              box(0.3, 0.1, 0.7, 0.2)] for i in range(3)]
    start, n = time.process_time(), 300
    for _ in range(n):
        overlay_areas(boxes)
    print(f"{cpu_name()}: overlay_areas {(time.process_time() - start) / n * 1000:.2f} ms CPU per clip "
          f"(3 frames, 4 boxes each)")


if __name__ == "__main__":
    main()
