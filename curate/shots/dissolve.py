"""A cheap detector of cross-dissolves and fades (to and from black or white): the linear-blend test.

    import numpy as np
    from curate.shots.dissolve import DissolveDetector

    detector = DissolveDetector()
    for index, small in enumerate(frames_48x27):       # uint8 images, any channels, in decode order
        detector.push(index, small)
    detector.finish()                                   # [(first, last, cut), ...]: inclusive spans, cut inside

A dissolve from shot A to shot B shows ``F(t) = (1 - a(t)) A + a(t) B`` with ``a`` rising about linearly; a fade is
the same with a black or white B (or A). Inside one, every frame is the average of the frames ``k`` before and
``k`` after it, while those two differ. Motion, hard cuts and static shots fail that test: under motion the middle
frame is not the average of its neighbours (the mean residual is a third to a half of their difference), at a hard
cut it equals one of them (a half), and a static shot has no difference to speak of. So, in order:

1. Each frame ``i`` is compared with ``i - 2k`` for ``k`` in ``SCALES`` (2, 4, 8, 16 frames: transitions of about
   4 to 60 frames; ``max_scale`` adds 32 and 64, see ``LONG_SCALES``): ``difference`` = mean absolute difference
   (0-255). Where it exceeds ``min_difference``,
   ``residual`` = mean absolute difference between frame ``i - k`` and the average of the two.
2. ``residual < max_residual * difference`` marks frame ``i - k`` as the middle of a blend over ``i - 2k .. i``.
3. Marks less than ``gap`` frames apart form one transition, from the earliest to the latest frame of their
   blends; it needs ``min_marks`` marks (one noisy frame is not a dissolve). Its cut is its median mark.

Cost: at most 3 OpenCV calls on a 48x27 image per scale and tested frame (``stride`` 2 tests every other frame);
memory: the last ``2 * max_scale + 1`` small frames.
Limits: wipes and slides are not blends and are not found (TransNetV2 misses most of them too, see
``benchmarks/transitions.py``); a slow exposure or lighting ramp inside one shot is a blend to this test.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from curate.shots.detector import Detection

SCALES = (2, 4, 8, 16)
LONG_SCALES = (32, 64)
"""Scales added by ``max_scale`` 32 or 64 (slow dissolves of about 60 to 150 frames). At these scales the middle
frame alone would pass at the midpoint of ANY dissolve shorter than ``k`` (its neighbours are then the two pure
shots), so the frames at a quarter and three quarters must be the 3:1 and 1:3 blends too: only a blend that is
linear over all ``2k`` frames passes, and its span ``i - 2k .. i`` lies inside the dissolve."""
DEFAULT_MIN_DIFFERENCE = 12.0
DEFAULT_MAX_RESIDUAL = 0.3
DEFAULT_MIN_MARKS = 8
DEFAULT_GAP = 4
"""Defaults from ``benchmarks/transitions.py`` (stride 2, beside AdaptiveDetector). A dissolve between shots that
move leaves residuals of 0.22-0.3 (a blend of two moving pictures is not exactly linear), so ``max_residual`` 0.2
found 15 of 24 synthetic dissolves and 0.3 finds 21; motion in one shot reaches 0.3 too, but in short runs: 8 marks
keep the real footage's precision where 0.2 with 3 marks had it (annotated P/R 0.94/0.92 both; 6 marks added a false
cut before a cut of ``moviepy_nature_montage.mp4``, 10 lost a dip to black). On a 3.5-minute edited trailer with
120 hard cuts (5301 frames) it marks only the closing fade, as 0.2 did."""


class DissolveDetector:
    """The linear-blend test over a stream of small frames (see the module docstring).

    Args:
        min_difference: mean absolute difference (0-255) between frames ``2k`` apart below which nothing is tested.
        max_residual: the middle frame's mean distance from the average of the two, as a fraction of their
            difference, below which it is a blend.
        min_marks: marks a transition needs.
        gap: marks at most this many frames apart are one transition.
        stride: 1 = every frame is tested; 2 = every other one (half the cost; the same scales, in frames).
        max_scale: the largest ``k``: 16 (``SCALES``), 32 or 64 (``LONG_SCALES`` up to it, for slow dissolves).
    """

    def __init__(self, min_difference: float = DEFAULT_MIN_DIFFERENCE, max_residual: float = DEFAULT_MAX_RESIDUAL,
                 min_marks: int = DEFAULT_MIN_MARKS, gap: int = DEFAULT_GAP, stride: int = 1,
                 max_scale: int = 16) -> None:  # fmt: skip
        if not min_difference > 0 or not 0 < max_residual < 0.5:
            raise ValueError(f"min_difference must be > 0 (0-255 scale), max_residual in (0, 0.5); "
                             f"got {min_difference!r}, {max_residual!r}")
        if min_marks < 1 or gap < 1:
            raise ValueError(f"min_marks and gap must be >= 1, got {min_marks!r}, {gap!r}")
        if stride not in (1, 2):
            raise ValueError(f"the dissolve test takes stride 1 (every frame) or 2 (every other frame), got {stride!r}")
        self.min_difference, self.max_residual, self.min_marks, self.gap = min_difference, max_residual, min_marks, gap
        if max_scale not in (16, *LONG_SCALES):
            raise ValueError(f"the dissolve test's max_scale is 16, 32 or 64 (frames), got {max_scale!r}")
        self.stride = stride
        self.scales = SCALES + tuple(k for k in LONG_SCALES if k <= max_scale)
        self._ring: list[np.ndarray | None] = [None] * (2 * max(self.scales) // stride + 1)
        self._marks: list[tuple[int, int, int]] = []  # (middle, first, last) of blends not yet grouped
        self.transitions: list[tuple[int, int, int]] = []

    def push(self, index: int, small: np.ndarray) -> None:
        """Test frame ``index`` against the frames before it (every ``stride``-th frame, in order, none skipped)."""
        ring, stride = self._ring, self.stride
        ring[index // stride % len(ring)] = small
        threshold = self.min_difference * small.size
        for k in self.scales:
            if index < 2 * k:
                break
            before = ring[(index - 2 * k) // stride % len(ring)]
            difference = cv2.norm(small, before, cv2.NORM_L1)
            if difference <= threshold:
                continue
            middle = ring[(index - k) // stride % len(ring)]
            residual = cv2.norm(middle, cv2.addWeighted(small, 0.5, before, 0.5, 0.0), cv2.NORM_L1)
            if residual < self.max_residual * difference and (k in SCALES or self._linear(index, k, difference)):
                self._marks.append((index - k, index - 2 * k, index))
        if self._marks and index % (16 * stride) < stride:
            self._group(done_before=index - max(self.scales) - self.gap)  # no later mark can fall before that

    def _linear(self, index: int, k: int, difference: float) -> bool:
        """Whether the frames at a quarter and three quarters of ``index - 2k .. index`` are the 3:1 and 1:3 blends."""
        ring, stride = self._ring, self.stride
        before, after = ring[(index - 2 * k) // stride % len(ring)], ring[index // stride % len(ring)]
        for offset, weight in ((3 * k // 2, 0.25), (k // 2, 0.75)):
            quarter = ring[(index - offset) // stride % len(ring)]
            blend = cv2.addWeighted(after, weight, before, 1.0 - weight, 0.0)
            if cv2.norm(quarter, blend, cv2.NORM_L1) >= self.max_residual * difference:
                return False
        return True

    def _group(self, done_before: int) -> None:
        """Turn the marks of every group that ends before frame ``done_before`` into transitions."""
        self._marks.sort()
        start = 0
        for i in range(1, len(self._marks) + 1):
            if i < len(self._marks) and self._marks[i][0] - self._marks[i - 1][0] <= self.gap:
                continue  # same group
            group = self._marks[start:i]
            if group[-1][0] >= done_before:
                break
            if len(group) >= self.min_marks:
                middles = [m for m, _, _ in group]
                first, last = min(f for _, f, _ in group), max(t for _, _, t in group)
                self.transitions.append((first, last, int(np.median(middles))))
            start = i
        del self._marks[:start]

    def finish(self) -> list[tuple[int, int, int]]:
        """Group the marks left; every transition found: ``(first, last, cut)``, inclusive, in order."""
        self._group(done_before=2**62)
        return self.transitions


class DissolveKind:
    """The linear-blend test as a shot detector (``dissolve``): 48x27 grey frames, every frame or every other one;
    it reports gradual transitions only."""

    needs_network = False
    threshold_param = "max_residual"

    def defaults(self) -> dict[str, Any]:
        return {"min_difference": DEFAULT_MIN_DIFFERENCE, "max_residual": DEFAULT_MAX_RESIDUAL,
                "min_marks": DEFAULT_MIN_MARKS, "gap": DEFAULT_GAP, "max_scale": 16}  # fmt: skip

    def check(self, stride: int, params: dict) -> None:
        DissolveDetector(**params, stride=stride)  # the constructor checks the values

    def build(self, stride: int, params: dict, *, fps: float, network: Any) -> DissolveShots:
        return DissolveShots(DissolveDetector(**params, stride=stride))


class DissolveShots:
    """A :class:`DissolveDetector` fed by the cascade."""

    scale = "gray48"
    refines_cuts = False

    def __init__(self, detector: DissolveDetector) -> None:
        self.detector, self.stride = detector, detector.stride

    def push(self, index: int, frame: np.ndarray) -> None:
        self.detector.push(index, frame)

    @property
    def spans_so_far(self) -> list[tuple[int, int, int]]:
        """The transitions found so far (their marks grouped: reported about ``2 * max_scale + gap`` frames after
        their last frame)."""
        return self.detector.transitions

    def finish(self, n_frames: int) -> Detection:
        return Detection(spans=[(a, b, cut) for a, b, cut in self.detector.finish() if 0 < cut < n_frames])
