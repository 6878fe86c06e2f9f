"""The one interface every shot detector meets, and the frames the cascade feeds it.

    from curate.shots.detector import Detection, FrameScales

    class Flash:                                   # a detector: fed frames of the scale it asks for
        scale = "gray48"                           # or "thumbnail" (BGR, the scan's width) or "rgb48"
        stride = 1                                 # every stride-th frame (0, stride, 2 * stride, ...)
        refines_cuts = False                       # True: its cuts are known to within its stride only
        def push(self, index, frame): ...
        def finish(self, n_frames): return Detection(cuts=[...], spans=[(first, last, cut), ...])

A *kind* builds detectors: ``defaults()`` (its parameters), ``check(stride, params)`` (raise ValueError with what is
allowed) and ``build(stride, params, fps=..., network=...)`` (a fresh detector for one video: detectors keep state).
``curate.shots.registry.DETECTORS`` maps each kind's name to its kind; adding a detector is one file with its kind
and one line there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import cv2
import numpy as np

SCALES = ("thumbnail", "rgb48", "gray48")
"""The frames a detector can ask for: ``thumbnail``, the scan's BGR uint8 thumbnail (``downscale_width`` wide);
``rgb48``, TransNetV2's input (RGB uint8, 27x48x3); ``gray48``, the same size in grey levels (uint8, 27x48)."""


@dataclass
class Detection:
    """What one detector found in one video: ``cuts``, hard cuts (first frame of the new shot); ``spans``, gradual
    transitions ``(first, last, cut)`` (inclusive frames that belong to neither shot, their cut inside)."""

    cuts: list[int] = field(default_factory=list)
    spans: list[tuple[int, int, int]] = field(default_factory=list)


class ShotDetector(Protocol):
    """One detector over one video. The cascade calls ``push`` for frames ``0, stride, 2 * stride, ...`` in order,
    each at the detector's ``scale``, then ``finish`` once with the number of frames decoded."""

    scale: str
    stride: int
    refines_cuts: bool  # its cuts are only known to within its stride: the cascade moves them to the largest change

    def push(self, index: int, frame: np.ndarray) -> None: ...

    def finish(self, n_frames: int) -> Detection: ...


class DetectorKind(Protocol):
    """A family of detectors: its parameters, their checks, and a factory."""

    needs_network: bool  # the scan must be given the loaded TransNetV2
    threshold_param: str | None  # the parameter split's single-detector ``threshold`` sets (None: it has none)

    def defaults(self) -> dict[str, Any]: ...

    def check(self, stride: int, params: dict) -> None: ...

    def build(self, stride: int, params: dict, *, fps: float, network: Any) -> ShotDetector: ...


class FrameScales:
    """The frames of one decoded frame at each scale the cascade's detectors ask for, each made at most once.

    ``rgb48`` is the thumbnail shrunk to 96x54 (bilinear), then 2x2-averaged, then RGB; ``gray48`` is its grey when a
    detector also asks for ``rgb48`` (no second shrink), else the thumbnail's grey shrunk the same way.
    """

    def __init__(self, scales: set[str]) -> None:
        unknown = sorted(scales - set(SCALES))
        if unknown:
            raise ValueError(f"unknown frame scale(s) {unknown}; detectors may ask for {list(SCALES)}")
        self._gray_from_rgb = "rgb48" in scales
        self._frames: dict[str, np.ndarray] = {}

    def start(self, thumbnail: np.ndarray) -> None:
        """The next frame, as the scan's BGR thumbnail."""
        self._frames = {"thumbnail": thumbnail}

    def get(self, scale: str) -> np.ndarray:
        frame = self._frames.get(scale)
        if frame is None:
            if scale == "rgb48":
                frame = cv2.cvtColor(shrink48(self._frames["thumbnail"]), cv2.COLOR_BGR2RGB)
            elif self._gray_from_rgb:
                frame = cv2.cvtColor(self.get("rgb48"), cv2.COLOR_RGB2GRAY)
            else:
                frame = shrink48(cv2.cvtColor(self._frames["thumbnail"], cv2.COLOR_BGR2GRAY))
            self._frames[scale] = frame
        return frame


def shrink48(image: np.ndarray) -> np.ndarray:
    """An image shrunk to 48x27: bilinear to 96x54, then 2x2 averages (within 0.035 of TransNetV2's probabilities
    on area averaging in one step, which costs twice as much on a 128-px thumbnail; bilinear in one step moved them
    by up to 0.43)."""
    if image.shape[1] != 96 or image.shape[0] != 54:
        image = cv2.resize(image, (96, 54), interpolation=cv2.INTER_LINEAR)
    return cv2.resize(image, (48, 27), interpolation=cv2.INTER_AREA)
