"""Turn a video's cuts into clips: trim frames next to each cut, reject too-short scenes, chunk long ones.

    import numpy as np
    from curate.shots.clips import plan_clips
    times = np.arange(250) / 25.0                        # presentation time of every frame, seconds
    for span in plan_clips([30, 76, 137], times, end_time_s=10.0, min_clip_s=1.0, max_clip_s=5.0, trim_frames=2,
                           transitions=[(70, 82)]):      # the cut at 76 is a dissolve over frames 70..82
        print(span.start_frame, span.end_frame, span.start_s, span.end_s, span.reject_reason)

Spans are half-open: frames ``start_frame .. end_frame - 1`` and times ``[start_s, end_s)``, where ``start_s``
is the presentation time of the first frame and ``end_s`` the presentation time of the frame after the last one
(or the end of the stream). Times come from the frames' timestamps, so they are right on variable-frame-rate video.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class ClipSpan:
    start_frame: int
    end_frame: int  # exclusive
    start_s: float
    end_s: float  # exclusive: time of the frame after the last one
    reject_reason: str | None = None  # None = kept; "split_too_short", "split_impure" (curate.shots.purity)
    detail: str | None = None  # why it was rejected, where the reason needs more than its name

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


def check_lengths(min_clip_s: float, max_clip_s: float | None, trim_frames: int) -> None:
    if min_clip_s < 0:
        raise ValueError(f"min_clip_s must be >= 0 seconds, got {min_clip_s}")
    if max_clip_s is not None and max_clip_s <= min_clip_s:
        raise ValueError(
            f"max_clip_s ({max_clip_s}) must be larger than min_clip_s ({min_clip_s}), or null for no limit"
        )
    if trim_frames < 0:
        raise ValueError(f"trim_frames must be >= 0, got {trim_frames}")


def plan_clips(
    cut_frames: Sequence[int],
    frame_times: np.ndarray,
    end_time_s: float,
    *,
    min_clip_s: float,
    max_clip_s: float | None,
    trim_frames: int,
    transitions: Sequence[tuple[int, int]] = (),
) -> list[ClipSpan]:
    """Clips of one video, kept and rejected, in time order.

    1. scenes run from cut to cut (the video's first frame and its end are boundaries too); a cut inside a gradual
       transition (``transitions``: inclusive ``(first, last)`` frame ranges) ends the scene before it at ``first``
       and starts the next at ``last + 1``, so that no clip holds a frame of the transition; a scene left with no
       frame (two transitions back to back, or one at the video's start or end) is no clip;
    2. ``trim_frames`` frames are dropped on each side of every cut or transition (not at the video's start or
       end), where transition residue (a blended or flashed frame) lives;
    3. a scene shorter than ``min_clip_s`` after trimming is a rejected span (``split_too_short``);
    4. a scene longer than ``max_clip_s`` is cut into ``ceil(duration / max_clip_s)`` chunks of equal duration
       (each between max_clip_s / 2 and max_clip_s; with max_clip_s < 2 * min_clip_s a chunk can be too short).
    """
    check_lengths(min_clip_s, max_clip_s, trim_frames)
    n = len(frame_times)
    times = np.asarray(frame_times, dtype=np.float64)

    def time_of(frame: int) -> float:
        return float(times[frame]) if frame < n else float(end_time_s)

    scenes = _scenes(cut_frames, transitions, n)
    spans: list[ClipSpan] = []
    for a, b in scenes:
        start = a + trim_frames if a > 0 else a
        end = b - trim_frames if b < n else b
        if end <= start or time_of(end) - time_of(start) < min_clip_s:
            start, end = (start, end) if end > start else (a, b)
            spans.append(ClipSpan(start, end, time_of(start), time_of(end), "split_too_short"))
            continue
        duration = time_of(end) - time_of(start)
        pieces = 1 if max_clip_s is None else max(1, math.ceil(duration / max_clip_s - 1e-9))
        edges = [start] + [
            int(np.searchsorted(times, time_of(start) + duration * k / pieces, side="left")) for k in range(1, pieces)
        ] + [end]
        for s, e in zip(edges[:-1], edges[1:]):
            too_short = e <= s or time_of(e) - time_of(s) < min_clip_s
            spans.append(ClipSpan(s, e, time_of(s), time_of(e), "split_too_short" if too_short else None))
    return spans


def _scenes(cut_frames: Sequence[int], transitions: Sequence[tuple[int, int]], n: int) -> list[tuple[int, int]]:
    """Half-open frame ranges between the cuts, each cut's transition (if it has one) left out; empty ones dropped."""
    spans = sorted((max(first, 0), min(last + 1, n)) for first, last in transitions)
    gaps = []  # (end of the scene before, start of the scene after) of each cut
    for cut in sorted(c for c in set(cut_frames) if 0 < c < n):
        inside = [span for span in spans if span[0] <= cut < span[1]]
        gaps.append(inside[0] if inside else (cut, cut))
    edges = [0] + [edge for gap in gaps for edge in gap] + [n]
    return [(a, b) for a, b in zip(edges[::2], edges[1::2]) if b > a]
