"""PySceneDetect's detectors (``content``, ``adaptive``, ``threshold``, ``histogram``) as shot detectors.

    from curate.shots.pyscenedetect import PySceneDetectKind
    from scenedetect.detectors import ContentDetector

    kind = PySceneDetectKind("content", ContentDetector, threshold_param="threshold")
    detector = kind.build(stride=1, params={"threshold": 30.0}, fps=25.0, network=None)
    for index, bgr in enumerate(thumbnails):       # BGR uint8, decode order
        detector.push(index, bgr)
    detector.finish(len(thumbnails)).cuts          # first frame of each new shot

They see the scan's thumbnail and report hard cuts only. Their timecodes count decoded frames at the stream's
average rate, so ``min_scene_len`` as an int counts frames of the source whatever the stride (a float: seconds).
"""

from __future__ import annotations

import inspect
from typing import Any

import cv2
import numpy as np
from scenedetect.common import FrameTimecode
from scenedetect.detector import SceneDetector
from scenedetect.detectors import content_detector

from curate.shots.detector import Detection


def mean_pixel_distance(left: np.ndarray, right: np.ndarray) -> float:
    """Mean absolute difference of two uint8 images of one shape: the value of PySceneDetect's
    ``content_detector._mean_pixel_distance``, bit for bit (an exact integer sum divided by the pixel
    count), computed by OpenCV in one pass instead of through three NumPy temporaries.

    ContentDetector and AdaptiveDetector call it three times a frame, and at 128 px it was their largest cost.
    Installed in PySceneDetect's module below; ``tests/video/test_scenes.py`` checks both agree.
    """
    return cv2.norm(left, right, cv2.NORM_L1) / float(left.shape[0] * left.shape[1])


# PySceneDetect 0.7.2 looks the function up in its module at each call, so replacing it there speeds
# every ContentDetector/AdaptiveDetector in this process; the scores, hence the cuts, are unchanged.
PYSCENEDETECT_MEAN_PIXEL_DISTANCE = content_detector._mean_pixel_distance
content_detector._mean_pixel_distance = mean_pixel_distance


class PySceneDetectKind:
    """One PySceneDetect detector class: its constructor's parameters (deprecated ``block_size`` left out), which
    the constructor itself checks."""

    needs_network = False

    def __init__(self, name: str, detector_class: type[SceneDetector], threshold_param: str) -> None:
        self.name, self.detector_class, self.threshold_param = name, detector_class, threshold_param

    def defaults(self) -> dict[str, Any]:
        signature = inspect.signature(self.detector_class.__init__)
        return {name: p.default for name, p in signature.parameters.items() if name not in ("self", "block_size")}

    def check(self, stride: int, params: dict) -> None:
        self._new(params)  # the detector's constructor checks values (window_width >= 1, ...)

    def build(self, stride: int, params: dict, *, fps: float, network: Any) -> PySceneDetectDetector:
        return PySceneDetectDetector(self._new(params), stride, fps)

    def _new(self, params: dict) -> SceneDetector:
        try:
            return self.detector_class(**params)
        except (TypeError, ValueError) as err:
            raise ValueError(f"bad params {params} for the {self.name!r} detector: {err}") from err


class PySceneDetectDetector:
    """A PySceneDetect detector fed thumbnails; its cuts are refined by the cascade when it is strided."""

    scale = "thumbnail"
    refines_cuts = True

    def __init__(self, detector: SceneDetector, stride: int, fps: float) -> None:
        self.detector, self.stride = detector, stride
        self._rate = FrameTimecode(0, fps=fps)  # timecodes count decoded frames at this rate
        self._cuts: list[int] = []

    @property
    def cuts_so_far(self) -> list[int]:
        """The cuts reported while frames were pushed (``Cascade.cuts``)."""
        return self._cuts

    def push(self, index: int, frame: np.ndarray) -> None:
        timecode = FrameTimecode(index, fps=self._rate)
        self._cuts += [tc.frame_num for tc in self.detector.process_frame(timecode, frame)]

    def finish(self, n_frames: int) -> Detection:
        last = FrameTimecode(n_frames - 1, fps=self._rate)
        return Detection(cuts=self._cuts + [tc.frame_num for tc in self.detector.post_process(last)])
