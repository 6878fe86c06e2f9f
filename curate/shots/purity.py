"""The purity check after split: look inside each planned clip for a transition the detectors missed.

    from curate.shots.purity import PurityCheck
    from curate.shots.scan import scan_scenes

    scan = scan_scenes(path, change_signal=True)           # keeps ChangeSignal's 4 bytes a frame
    check = PurityCheck(mode="cut")
    clips = check.plan(scan, min_clip_s=1.0, max_clip_s=30.0, trim_frames=2)   # ClipSpan list, as plan_clips

Evidence, per frame, kept by the scan:

- the *change signal* (:class:`ChangeSignal`): mean absolute difference (0-255) between the 48x27 grey frames
  ``w`` before and ``w`` after each frame. Inside one shot it follows the motion, smoothly; a cut, wipe, slide or
  zoom the detectors missed is a bump of it well above the clip's own level. A clip is suspect where the signal
  exceeds both ``min_change`` and ``ratio`` times the clip's level (a percentile of its signal); the suspect
  frames are the run where it stays above halfway between that level and the peak, widened by ``w`` at each end
  (every frame the compared pairs could hold: the check errs towards purity, at ``2w`` frames of yield);
- TransNetV2's probabilities, when the scan ran it: frames below the detector's threshold but clustered (at least
  ``min_cluster`` frames within ``2w`` whose all-frames probability exceeds ``cluster_probability``).

``mode``: ``cut`` treats each suspect stretch as a gradual transition and plans the clips again (pieces that end up
too short are rejected as ``split_too_short``); ``reject`` rejects the whole clip as ``split_impure``, its detail
saying where and why.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from curate.shots.clips import ClipSpan, plan_clips
from curate.video.growing import Growing

DEFAULT_HALF_WINDOW = 8
MODES = ("off", "cut", "reject")


class ChangeSignal:
    """Fed every 48x27 grey frame in order; ``scores[t]`` = mean absolute difference of frames ``t - w`` and
    ``t + w`` (NaN within ``w`` of either end). Memory: ``2w + 1`` small frames and 4 bytes a frame."""

    def __init__(self, half_window: int = DEFAULT_HALF_WINDOW) -> None:
        self.w = half_window
        self._ring: list[np.ndarray | None] = [None] * (2 * half_window + 1)
        self._scores = Growing(np.float32)
        self._pushed = 0

    def push(self, index: int, gray: np.ndarray) -> None:
        ring = self._ring
        ring[index % len(ring)] = gray
        self._pushed = index + 1
        if index >= 2 * self.w:
            before = ring[(index - 2 * self.w) % len(ring)]
            self._scores.append(cv2.norm(gray, before, cv2.NORM_L1) / gray.size)

    @property
    def scores(self) -> np.ndarray:
        """float32 per frame."""
        out = np.full(self._pushed, np.nan, dtype=np.float32)
        values = self._scores.view()
        out[self.w : self.w + len(values)] = values
        return out


@dataclass(frozen=True)
class Suspect:
    """Frames ``first..last`` (inclusive) of a clip that look like a missed transition, and why."""

    first: int
    last: int
    why: str


@dataclass(frozen=True)
class PurityCheck:
    """Settings of the check (see the module docstring).

    Args:
        mode: ``off``, ``cut`` or ``reject``.
        min_change: the change signal (0-255) a suspect bump must exceed.
        ratio: ... and this multiple of the clip's median change.
        cluster_probability / min_cluster: TransNetV2 evidence (ignored without its scores); ``min_cluster`` 0 = off.
        half_window: ``w`` of the change signal, frames.
        level_percentile: the clip's level of change is this percentile of its signal (50: the median; lower keeps
            a clip that is mostly transitions from hiding them).
    """

    mode: str = "cut"
    min_change: float = 20.0
    ratio: float = 4.0
    cluster_probability: float = 0.1
    min_cluster: int = 0
    half_window: int = DEFAULT_HALF_WINDOW
    level_percentile: float = 25.0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"purity check mode must be one of {list(MODES)}, got {self.mode!r}")
        if not self.min_change > 0 or not self.ratio > 1:
            raise ValueError(f"purity check needs min_change > 0 (0-255) and ratio > 1, got {self.min_change!r}, "
                             f"{self.ratio!r}")  # fmt: skip
        if not 0 < self.cluster_probability < 1 or self.min_cluster < 0:
            raise ValueError(f"purity check needs cluster_probability in (0, 1) and min_cluster >= 0, got "
                             f"{self.cluster_probability!r}, {self.min_cluster!r}")  # fmt: skip

    def suspects(self, start: int, end: int, change: np.ndarray | None,
                 transnet: np.ndarray | None = None) -> list[Suspect]:  # fmt: skip
        """Suspect stretches inside the clip ``[start, end)``, in order."""
        found: list[Suspect] = []
        w = self.half_window
        if change is not None and end - start > 4 * w:
            inside = change[start + w : end - w]  # both compared frames in the clip
            level = float(np.nanpercentile(inside, self.level_percentile)) if np.isfinite(inside).any() else 0.0
            trigger = max(self.min_change, self.ratio * level)
            values = np.nan_to_num(inside, nan=0.0)
            for first, last in _runs(values > trigger):
                peak = float(values[first : last + 1].max())
                half = (peak + level) / 2
                while first > 0 and values[first - 1] > half:
                    first -= 1
                while last + 1 < len(values) and values[last + 1] > half:
                    last += 1
                a, b = start + w + first, start + w + last  # centres of the bump
                frames = (max(start, a - w), min(end - 1, b + w))  # every frame the compared pairs could hold
                times = peak / max(level, 1e-6)
                why = f"change {peak:.1f} over {2 * w} frames, {times:.1f}x the clip's level {level:.1f}"
                if not found or frames[0] > found[-1].last:
                    found.append(Suspect(frames[0], frames[1], why))
        if transnet is not None and self.min_cluster:
            many = transnet[start:end, 1] > self.cluster_probability
            counts = np.convolve(many.astype(np.int32), np.ones(2 * w, np.int32), mode="same")
            for first, last in _runs(counts >= self.min_cluster):
                a, b = start + first, start + last
                if not any(s.first <= b and a <= s.last for s in found):
                    found.append(Suspect(a, b, f"TransNetV2: {int(counts[first:last + 1].max())} frames of "
                                               f"{2 * w} above {self.cluster_probability}"))  # fmt: skip
        return sorted(found, key=lambda s: s.first)

    def plan(self, scan, *, min_clip_s: float, max_clip_s: float | None, trim_frames: int) -> list[ClipSpan]:
        """Split's clips of ``scan`` (:func:`~curate.shots.clips.plan_clips`), then checked: ``cut`` plans them
        again with every suspect stretch as a transition, ``reject`` rejects suspect clips as ``split_impure``.
        Returns the spans, kept and rejected, with ``detail`` set on ``split_impure`` ones."""
        spans = plan_clips(scan.cut_frames, scan.frame_times, scan.end_time_s, min_clip_s=min_clip_s,
                           max_clip_s=max_clip_s, trim_frames=trim_frames, transitions=scan.transitions)  # fmt: skip
        if self.mode == "off":
            return spans
        change, transnet = getattr(scan, "change_scores", None), getattr(scan, "transnet_scores", None)
        found = {i: self.suspects(s.start_frame, s.end_frame, change, transnet)
                 for i, s in enumerate(spans) if s.reject_reason is None}  # fmt: skip
        if self.mode == "reject":
            return [
                ClipSpan(s.start_frame, s.end_frame, s.start_s, s.end_s, "split_impure",
                         "; ".join(f"frames {x.first}..{x.last}: {x.why}" for x in found[i]))
                if found.get(i) else s
                for i, s in enumerate(spans)
            ]  # fmt: skip
        extra = [(x.first, x.last) for suspects in found.values() for x in suspects]
        if not extra:
            return spans
        cuts = sorted(set(scan.cut_frames) | {(a + b + 1) // 2 for a, b in extra})
        return plan_clips(cuts, scan.frame_times, scan.end_time_s, min_clip_s=min_clip_s, max_clip_s=max_clip_s,
                          trim_frames=trim_frames, transitions=sorted([*scan.transitions, *extra]))  # fmt: skip


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Inclusive (first, last) of every run of True in ``mask``."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2])]
