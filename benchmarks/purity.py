"""Purity and yield of the clips a split makes, against true events (``benchmarks/transitions.py``, ``cut_accuracy.py``).

    from purity import Purity, clip_purity
    tally = Purity()
    tally.add(clip_purity(kept_clips, truth, scan.frame_times, scan.end_time_s, min_clip_s=1.0))
    tally.purity, tally.yield_                  # share of clips with no transition; clean s / clean s available

Rules (one frame of slack, so a boundary one frame off a true cut is not counted against a clip):

- a clip (frames ``[start, end)``, after split's length rules: kept clips only) is *impure* when it holds frames on
  both sides of a true hard cut ``c`` beyond the slack (``start <= c - 2`` and ``end >= c + 2``), or any frame of a
  true gradual transition ``[a, b]`` shrunk by the slack (``[a + 1, b - 1]``; one of two frames or fewer counts as
  a cut at ``b``);
- *yield* = seconds of pure clips / seconds of the true shots (stretches between true events, a gradual
  transition belonging to neither shot) at least ``min_clip_s`` long.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SLACK = 1


@dataclass
class Purity:
    clips: int = 0
    impure: int = 0
    clean_s: float = 0.0
    available_s: float = 0.0

    def add(self, other: Purity) -> None:
        self.clips += other.clips
        self.impure += other.impure
        self.clean_s += other.clean_s
        self.available_s += other.available_s

    @property
    def purity(self) -> float:
        return 1.0 - self.impure / self.clips if self.clips else 1.0

    @property
    def yield_(self) -> float:
        return self.clean_s / self.available_s if self.available_s else 1.0


def impure(start: int, end: int, cuts: list[int], gradual: list[tuple[int, int]]) -> bool:
    """Whether the clip ``[start, end)`` holds a true cut or part of a gradual transition (the rules above)."""
    points = list(cuts) + [b for a, b in gradual if b - a < 2]
    if any(start <= c - 1 - SLACK and end >= c + 1 + SLACK for c in points):
        return True
    return any(start <= b - SLACK and end > a + SLACK for a, b in gradual if b - a >= 2)


def true_shots(cuts: list[int], gradual: list[tuple[int, int]], n_frames: int) -> list[tuple[int, int]]:
    """Half-open frame ranges of the true shots: between the events, gradual transitions left out."""
    edges = sorted([(c, c) for c in cuts] + [(a, b + 1) for a, b in gradual])
    shots, start = [], 0
    for first, after in edges:
        if first > start:
            shots.append((start, first))
        start = max(start, after)
    if n_frames > start:
        shots.append((start, n_frames))
    return shots


def clip_purity(clips, cuts: list[int], gradual: list[tuple[int, int]], frame_times: np.ndarray, end_time_s: float,
                min_clip_s: float) -> Purity:  # fmt: skip
    """The tally of one video: ``clips`` are split's kept clips (``start_frame``, ``end_frame``, ``duration_s``)."""
    n = len(frame_times)

    def time_of(frame: int) -> float:
        return float(frame_times[frame]) if frame < n else float(end_time_s)

    result = Purity()
    for clip in clips:
        result.clips += 1
        if impure(clip.start_frame, clip.end_frame, cuts, gradual):
            result.impure += 1
        else:
            result.clean_s += clip.duration_s
    for a, b in true_shots(cuts, gradual, n):
        seconds = time_of(b) - time_of(a)
        result.available_s += seconds if seconds >= min_clip_s else 0.0
    return result
