"""CPU seconds per clip of the picture scorer (curate.scores.picture) on the frames it is given, decoding excluded.

    python benchmarks/picture_cost.py                  # 4-s windows of every fixture, 8 frames at 256 px

Frames are decoded first (as the picture stage does, or read from a frames step), then only ``picture_scores`` is
timed (process CPU time, one thread), so the figure is the scorer's own cost.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import cv2

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


if __name__ == "__main__":
    main()
