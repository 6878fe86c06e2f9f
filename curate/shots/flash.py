"""Flashes and dips to black or white: runs of flat dark or flat bright frames, as gradual transitions.

    from curate.shots.flash import FlashDetector

    detector = FlashDetector()
    for index, gray in enumerate(frames_48x27):     # uint8 grey images, decode order
        detector.push(index, gray)
    detector.finish(len(frames_48x27)).spans         # [(first, last, cut), ...]

A frame is *flat* when the standard deviation of its 48x27 grey levels is below ``max_std`` (0-255), and dark or
bright when its mean is below ``dark`` or above ``bright``. A run of at least ``min_frames`` such frames (black or
white, mixed) is a span that belongs to no shot: an editor's flash to white, a dip through black. Its cut is its
last frame (a cut out of black is annotated where the picture comes back). Runs that touch the first or the last
frame of the video are padding, not a transition between shots, and are not reported. The ramps of a dip (frames
darkening towards black) are not flat: the dissolve test finds those.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from curate.shots.detector import Detection


class FlashDetector:
    """Runs of flat black or white frames (see the module docstring); fed every ``stride``-th 48x27 grey frame."""

    scale = "gray48"
    refines_cuts = False

    def __init__(self, max_std: float = 6.0, dark: float = 24.0, bright: float = 232.0, min_frames: int = 1,
                 stride: int = 1) -> None:  # fmt: skip
        if not max_std > 0 or not 0 < dark < bright < 255:
            raise ValueError(f"flash needs max_std > 0 and 0 < dark < bright < 255 (grey levels), got max_std "
                             f"{max_std!r}, dark {dark!r}, bright {bright!r}")
        if isinstance(min_frames, bool) or not isinstance(min_frames, int) or min_frames < 1:
            raise ValueError(f"flash min_frames must be an int >= 1, got {min_frames!r}")
        self.max_std, self.dark, self.bright, self.min_frames, self.stride = max_std, dark, bright, min_frames, stride
        self._run: list[int] | None = None  # [first, last] flat frame of the open run
        self.spans: list[tuple[int, int, int]] = []

    def push(self, index: int, frame: np.ndarray) -> None:
        mean, std = (float(v[0][0]) for v in cv2.meanStdDev(frame))
        if std < self.max_std and (mean < self.dark or mean > self.bright):
            if self._run is None or index - self._run[1] > self.stride:
                self._close()
                self._run = [index, index]
            self._run[1] = index
        else:
            self._close()

    @property
    def spans_so_far(self) -> list[tuple[int, int, int]]:
        """The runs closed so far, ``(first, last, cut)`` (one at the video's start is padding: ``finish`` drops it)."""
        return self.spans

    def finish(self, n_frames: int) -> Detection:
        self._close()
        inside = [(a, b, cut) for a, b, cut in self.spans if a > 0 and b + self.stride < n_frames]
        return Detection(spans=inside)

    def _close(self) -> None:
        if self._run is not None:
            first, last = self._run
            if (last - first) // self.stride + 1 >= self.min_frames:
                self.spans.append((first, last, last))
        self._run = None


class FlashKind:
    """``flash``: parameters ``max_std``, ``dark``, ``bright`` (grey levels 0-255), ``min_frames``; stride 1 or 2."""

    needs_network = False
    threshold_param = "max_std"

    def defaults(self) -> dict[str, Any]:
        return {"max_std": 6.0, "dark": 24.0, "bright": 232.0, "min_frames": 1}

    def check(self, stride: int, params: dict) -> None:
        if stride not in (1, 2):
            raise ValueError(f"flash takes stride 1 (every frame) or 2 (every other frame), got {stride!r}")
        FlashDetector(**params, stride=stride)

    def build(self, stride: int, params: dict, *, fps: float, network: Any) -> FlashDetector:
        return FlashDetector(**params, stride=stride)
