"""The detectors of a scene scan, fed frame by frame, and how their cuts and transitions become one list of events.

    from curate.video.cascade import Cascade, DetectorSpec, merge_events

    specs = [DetectorSpec("adaptive"), DetectorSpec("dissolve")]
    cascade = Cascade(specs, fps=25.0, transnet=None)      # one per video: detectors keep state
    for index, small in enumerate(thumbnails):              # BGR uint8 frames, decode order
        if cascade.wants(index):
            cascade.feed(index, small)
    raw_cuts, spans = cascade.finish(n_frames=len(thumbnails))

``curate.video.scenes.scan_scenes`` decodes the video and runs all of this. Detector kinds: PySceneDetect's
(``content``, ``adaptive``, ``threshold``, ``histogram``), which report hard cuts, and curate's own on 48x27
frames (:data:`OWN_DETECTORS`: ``transnetv2``, the network, and ``dissolve``, the linear-blend test), which report
gradual transitions as spans (and transnetv2 hard cuts too). :func:`merge_events` makes one list of them.
"""

from __future__ import annotations

import array
import bisect
import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import cv2
import numpy as np
from scenedetect.common import FrameTimecode
from scenedetect.detector import SceneDetector
from scenedetect.detectors import AdaptiveDetector, ContentDetector, HistogramDetector, ThresholdDetector
from scenedetect.detectors import content_detector

from curate.video.dissolve import (
    DEFAULT_GAP,
    DEFAULT_MAX_RESIDUAL,
    DEFAULT_MIN_DIFFERENCE,
    DEFAULT_MIN_MARKS,
    DissolveDetector,
)
from curate.video.transnet import (
    DEFAULT_CONTEXT,
    DEFAULT_WINDOW,
    Predictions,
    TransitionFinder,
    TransNetV2Windows,
    check_windows,
    gray_frame,
    transnet_frame,
)

if TYPE_CHECKING:
    from curate.models.transnetv2 import TransNetV2

DETECTOR_CLASSES: dict[str, type[SceneDetector]] = {
    "content": ContentDetector,
    "adaptive": AdaptiveDetector,
    "threshold": ThresholdDetector,
    "histogram": HistogramDetector,
}
"""PySceneDetect 0.7.2 detectors a :class:`DetectorSpec` may name, by ``kind``."""

TRANSNETV2 = "transnetv2"
DISSOLVE = "dissolve"
OWN_DETECTORS: dict[str, dict] = {
    TRANSNETV2: {"threshold": 0.5, "window": DEFAULT_WINDOW, "context": DEFAULT_CONTEXT, "batch": None},
    DISSOLVE: {"min_difference": DEFAULT_MIN_DIFFERENCE, "max_residual": DEFAULT_MAX_RESIDUAL,
               "min_marks": DEFAULT_MIN_MARKS, "gap": DEFAULT_GAP},
}  # fmt: skip
"""Detectors of curate's own, on 48x27 frames, with their parameters and defaults. ``transnetv2``: the network
(:func:`curate.video.scenes.scan_scenes` is given it loaded); ``threshold`` on its single-frame probability (0.5
as the package; NeMo Curator uses 0.4), ``window`` and ``context`` (frames, see
:class:`~curate.video.transnet.TransNetV2Windows`; 100 and 25 reproduce the package), ``batch`` (windows per
forward pass; None: 16 on a GPU, 1 on a CPU). ``dissolve``: the linear-blend test of
:mod:`curate.video.dissolve`. Both report gradual transitions as spans, and transnetv2 hard cuts too."""

DETECTOR_KINDS = (*DETECTOR_CLASSES, *OWN_DETECTORS)

DEFAULT_MERGE_WINDOW_FRAMES = 8
"""Cuts of different detectors closer than this many frames are one event by default."""

REFINE_HISTORY_FRAMES = 1024
"""Per-frame change scores kept (8 KiB) to place the cuts of strided detectors. A cut reported
more than this many frames after it happened keeps the position the detector gave."""


def mean_pixel_distance(left: np.ndarray, right: np.ndarray) -> float:
    """Mean absolute difference of two uint8 images of one shape: the value of PySceneDetect's
    ``content_detector._mean_pixel_distance``, bit for bit (an exact integer sum divided by the pixel
    count), computed by OpenCV in one pass instead of through three NumPy temporaries.

    ContentDetector and AdaptiveDetector call it three times a frame; at 128 px it was their largest
    cost (about 0.07 of the scan's 1.27x decode time on the shared footage; 1.22x with this one).
    Installed in PySceneDetect's module below; ``tests/video/test_scenes.py`` checks both agree.
    """
    return cv2.norm(left, right, cv2.NORM_L1) / float(left.shape[0] * left.shape[1])


# PySceneDetect 0.7.2 looks the function up in its module at each call, so replacing it there speeds
# every ContentDetector/AdaptiveDetector in this process; the scores, hence the cuts, are unchanged.
PYSCENEDETECT_MEAN_PIXEL_DISTANCE = content_detector._mean_pixel_distance
content_detector._mean_pixel_distance = mean_pixel_distance


@dataclass(frozen=True)
class DetectorSpec:
    """One detector of the cascade.

    Attributes:
        kind: ``"content"``, ``"adaptive"``, ``"threshold"`` or ``"histogram"`` (PySceneDetect's
            ContentDetector, AdaptiveDetector, ThresholdDetector, HistogramDetector), or ``"transnetv2"``
            (the TransNetV2 network) or ``"dissolve"`` (a cheap test for cross-dissolves and fades): see
            :data:`OWN_DETECTORS`.
        stride: feed every ``stride``-th decoded frame (indices 0, stride, 2*stride, ...), which
            emulates a frame rate ``stride`` times lower. Its cuts are then known to within
            ``stride`` frames and are moved to the largest frame-to-frame change in that window.
        params: keyword arguments of the detector's constructor, e.g. ``{"threshold": 30.0}``.
            ``transnetv2`` takes stride 1 only, ``dissolve`` 1 or 2.
            ``min_scene_len`` as an int counts decoded frames of the source, whatever the stride
            (as a float: seconds); ``window_width`` (adaptive) counts the frames the detector sees.

    Raises:
        ValueError: unknown ``kind`` or parameter, ``stride < 1``, or a value the detector rejects.
    """

    kind: str
    stride: int = 1
    params: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in DETECTOR_KINDS:
            raise ValueError(f"unknown detector kind {self.kind!r}; allowed: {sorted(DETECTOR_KINDS)}")
        if isinstance(self.stride, bool) or not isinstance(self.stride, int) or self.stride < 1:
            raise ValueError(f"stride must be an int >= 1 (1 = every frame), got {self.stride!r}")
        allowed = detector_parameters(self.kind)
        unknown = sorted(set(self.params) - set(allowed))
        if unknown:
            raise ValueError(f"unknown parameter(s) {unknown} for the {self.kind!r} detector; allowed: {allowed}")
        object.__setattr__(self, "params", dict(self.params))  # never alias the caller's dict
        if self.kind in OWN_DETECTORS:
            self.own_params()
        else:
            self.build()  # the detector's constructor checks values (window_width >= 1, ...)

    @property
    def name(self) -> str:
        """Key of this detector in :attr:`SceneScan.detector_cuts`, e.g. ``"content@1"``."""
        return f"{self.kind}@{self.stride}"

    def build(self) -> SceneDetector:
        """A fresh PySceneDetect detector; detectors keep state, so build one per video."""
        if self.kind in OWN_DETECTORS:
            raise ValueError(f"{self.kind} is not a PySceneDetect detector: Cascade runs it")
        try:
            return DETECTOR_CLASSES[self.kind](**self.params)
        except (TypeError, ValueError) as err:
            raise ValueError(f"bad params {self.params} for the {self.kind!r} detector: {err}") from err

    def own_params(self) -> dict:
        """``transnetv2`` or ``dissolve``: its parameters, defaults filled in, checked."""
        params = {**OWN_DETECTORS[self.kind], **self.params}
        if self.kind == DISSOLVE:
            DissolveDetector(**params, stride=self.stride)  # checks the values
            return params
        if self.stride != 1:
            raise ValueError(f"{self.kind} runs on every frame: stride must be 1, got {self.stride}")
        threshold = params["threshold"]
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold < 1:
            raise ValueError(f"transnetv2 threshold must be a probability in (0, 1), got {threshold!r}")
        check_windows(params["window"], params["context"], params["batch"])
        return params


def detector_parameters(kind: str) -> list[str]:
    """Parameter names of the detector ``kind`` (PySceneDetect's constructor's, deprecated ``block_size`` left out)."""
    if kind in OWN_DETECTORS:
        return list(OWN_DETECTORS[kind])
    signature = inspect.signature(DETECTOR_CLASSES[kind].__init__)
    return [name for name in signature.parameters if name not in ("self", "block_size")]


DEFAULT_CASCADE: tuple[DetectorSpec, ...] = (DetectorSpec("adaptive"), DetectorSpec(DISSOLVE, stride=2))
"""The cascade :func:`~curate.video.scenes.scan_scenes` runs by default, and ``configs/offline.yaml``: PySceneDetect's
AdaptiveDetector with its defaults on every frame, for hard cuts (``benchmarks/cut_accuracy.py`` ranks it first on
the annotated fixtures: it finds the cuts ContentDetector finds without its false cuts on fast motion), and the
dissolve test on every other frame for cross-dissolves and fades. On ``benchmarks/transitions.py`` this lifts F1
from 0.68 to 0.80 (precision 0.92 to 0.93) at no measurable cost (the scan stays ~1.4x a one-thread decode in
CPU time); TransNetV2 reaches 0.89 but costs 30-40x a decode on a CPU (``GPU_CASCADE``)."""


GPU_CASCADE: tuple[DetectorSpec, ...] = (DetectorSpec(TRANSNETV2, params={"threshold": 0.3}),)
"""The best setting of ``benchmarks/transitions.py``: TransNetV2 alone at threshold 0.3 (F1 0.89, precision 0.97 over
the synthetic edits and the annotated fixtures; 0.4 and 0.5 found fewer dissolves and no fewer false cuts, and
adding AdaptiveDetector or the dissolve test only added false cuts). It needs the network: meant for GPUs."""



class Cascade:
    """The detectors of one scan, their raw cuts and spans, and the change history strided cuts are refined with."""

    def __init__(self, specs: list[DetectorSpec], fps: float, transnet: TransNetV2 | None) -> None:
        self.specs = specs
        self.detectors = [None if spec.kind in OWN_DETECTORS else spec.build() for spec in specs]
        self.cuts: list[list[int]] = [[] for _ in specs]
        strided = any(spec.stride > 1 and spec.kind not in OWN_DETECTORS for spec in specs)
        self.history = ChangeHistory() if strided else None  # to place the cuts of strided PySceneDetect detectors
        self._rate = FrameTimecode(0, fps=fps)  # detector timecodes count decoded frames at this rate
        self.windows = self.finder = self.dissolve = None
        self.scores = array.array("f")  # the network's probabilities: single, many, single, many, ...
        for spec in specs:
            params = spec.own_params() if spec.kind in OWN_DETECTORS else {}
            if spec.kind == TRANSNETV2:
                self.windows = TransNetV2Windows(
                    transnet, window=params["window"], context=params["context"], batch=params["batch"]
                )
                self.finder = TransitionFinder(params["threshold"])
            elif spec.kind == DISSOLVE:
                self.dissolve = DissolveDetector(**params, stride=spec.stride)

    def wants(self, index: int) -> bool:
        """Whether frame ``index`` must be shrunk: a detector samples it, or strided cuts need its score."""
        every = self.history is not None or self.windows is not None
        return every or any(index % spec.stride == 0 for spec in self.specs)

    def feed(self, index: int, small: np.ndarray) -> None:
        if self.history is not None:
            self.history.push(index, small)
        if self.windows is not None:
            tiny = transnet_frame(small)
            self._score(self.windows.push(tiny))
            if self.dissolve is not None and index % self.dissolve.stride == 0:
                self.dissolve.push(index, cv2.cvtColor(tiny, cv2.COLOR_RGB2GRAY))
        elif self.dissolve is not None and index % self.dissolve.stride == 0:
            self.dissolve.push(index, gray_frame(small))
        timecode = FrameTimecode(index, fps=self._rate)
        for spec, detector, cuts in zip(self.specs, self.detectors, self.cuts, strict=True):
            if detector is not None and index % spec.stride == 0:
                cuts += [tc.frame_num for tc in detector.process_frame(timecode, small)]

    def _score(self, predictions: Predictions | None) -> None:
        if predictions is not None:
            self.finder.add(predictions)
            self.scores.extend(np.stack([predictions.single, predictions.many], 1).astype(np.float32).ravel())

    def finish(self, n_frames: int) -> tuple[dict[str, list[int]], list[list[tuple[int, int, int]]]]:
        """Flush the detectors. Returns the raw cuts per detector name (sorted, inside ``1 .. n_frames - 1``; for
        transnetv2 and dissolve, the cuts of their transitions) and, per detector, its gradual transitions
        ``(first, last, cut)`` (PySceneDetect's detectors: none; transnetv2's hard cuts are cuts only)."""
        last = FrameTimecode(n_frames - 1, fps=self._rate)
        spans: list[list[tuple[int, int, int]]] = []
        for spec, detector, cuts in zip(self.specs, self.detectors, self.cuts, strict=True):
            found: list[tuple[int, int, int]] = []
            if spec.kind == TRANSNETV2:
                self._score(self.windows.finish())
                transitions = [t for t in self.finder.finish() if 0 < t.cut < n_frames]
                cuts += [t.cut for t in transitions]
                found = [(t.first, t.last, t.cut) for t in transitions if t.gradual]
            elif spec.kind == DISSOLVE:
                found = [(a, b, cut) for a, b, cut in self.dissolve.finish() if 0 < cut < n_frames]
                cuts += [cut for _, _, cut in found]
            else:
                cuts += [tc.frame_num for tc in detector.post_process(last)]
            spans.append(found)
        raw = {
            spec.name: sorted({c for c in cuts if 0 < c < n_frames})
            for spec, cuts in zip(self.specs, self.cuts, strict=True)
        }
        return raw, spans


class ChangeHistory:
    """Mean absolute BGR difference (0..255) between each of the last REFINE_HISTORY_FRAMES
    thumbnails and the one before it, in a fixed-size ring."""

    def __init__(self) -> None:
        self._scores = np.full(REFINE_HISTORY_FRAMES, np.nan)
        self._newest = -1
        self._previous: np.ndarray | None = None

    def push(self, index: int, small: np.ndarray) -> None:
        """Record frame ``index`` (frames must come in order, none skipped)."""
        if self._previous is not None:
            self._scores[index % REFINE_HISTORY_FRAMES] = cv2.norm(small, self._previous, cv2.NORM_L1) / small.size
        self._newest = index
        self._previous = small

    def score(self, index: int) -> float:
        """Change from frame ``index - 1`` to ``index``; NaN if unknown or no longer kept."""
        if index < 1 or index > self._newest or self._newest - index >= REFINE_HISTORY_FRAMES:
            return float("nan")
        return float(self._scores[index % REFINE_HISTORY_FRAMES])


def refine_cut(cut: int, stride: int, history: ChangeHistory | None) -> int:
    """Frame where a cut reported at sample frame ``cut`` by a stride-``stride`` detector happened.

    The detector compared frames ``cut - stride`` and ``cut``, so the new shot starts at one of
    ``cut - stride + 1 .. cut``: the one with the largest change from its predecessor. Returns
    ``cut`` unchanged for stride 1, or when the history no longer holds those frames.
    """
    if stride == 1 or history is None:
        return cut
    candidates = range(max(1, cut - stride + 1), cut + 1)
    scores = np.array([history.score(i) for i in candidates])
    if np.isnan(scores).all():
        return cut
    return candidates[int(np.nanargmax(scores))]


def merge_cuts(cuts_per_detector: Sequence[Sequence[int]], strides: Sequence[int], window_frames: int) -> list[int]:
    """Union of all detectors' cuts, cuts less than ``window_frames`` apart counting as one event.

    An event is a run of cuts each less than ``window_frames`` after the event's first cut. It
    keeps the cut of the detector with the smallest stride (ties: the earlier detector, then the
    earlier frame). Returns the kept cuts, sorted.
    """
    candidates = sorted(
        (cut, stride, order)
        for order, (cuts, stride) in enumerate(zip(cuts_per_detector, strides, strict=True))
        for cut in cuts
    )
    events: list[list[tuple[int, int, int]]] = []
    for candidate in candidates:
        if events and candidate[0] - events[-1][0][0] < window_frames:
            events[-1].append(candidate)
        else:
            events.append([candidate])
    return sorted({min(event, key=lambda c: (c[1], c[2], c[0]))[0] for event in events})


def merge_events(
    cuts_per_detector: Sequence[Sequence[int]],
    strides: Sequence[int],
    spans_per_detector: Sequence[Sequence[tuple[int, int, int]]],
    window_frames: int,
) -> tuple[list[int], list[tuple[int, int]]]:
    """Hard cuts and gradual transitions of all detectors as one list of events.

    ``spans_per_detector`` holds each detector's gradual transitions as ``(first, last, cut)`` (inclusive; ``cut``
    inside), in the order of ``cuts_per_detector``.

    1. Transitions of any detectors that overlap or lie less than ``window_frames`` apart are one: their union,
       cut where the first-listed detector cut it.
    2. A transition swallows every cut less than ``window_frames`` frames outside it: detectors that compare
       consecutive frames often fire somewhere inside a dissolve or at its ends.
    3. The cuts left are merged by :func:`merge_cuts`.

    Returns ``(cut_frames, transitions)``: every event's cut, sorted, and the transitions' ``(first, last)``.
    """
    candidates = sorted(
        (first, last, order, cut) for order, spans in enumerate(spans_per_detector) for first, last, cut in spans
    )
    merged: list[list] = []  # [first, last, (order, cut)]
    for first, last, order, cut in candidates:
        if merged and first - merged[-1][1] < window_frames:
            merged[-1][1] = max(merged[-1][1], last)
            merged[-1][2] = min(merged[-1][2], (order, cut))
        else:
            merged.append([first, last, (order, cut)])
    starts = [first for first, _, _ in merged]

    def swallowed(cut: int) -> bool:
        i = bisect.bisect_right(starts, cut + window_frames - 1) - 1  # the last span that starts near or before it
        near = (merged[j] for j in (i - 1, i) if 0 <= j < len(merged))
        return any(first - window_frames < cut < last + window_frames for first, last, _ in near)

    points = [[cut for cut in cuts if not swallowed(cut)] for cuts in cuts_per_detector]
    cuts = merge_cuts(points, strides, window_frames) + [cut for _, _, (_, cut) in merged]
    return sorted(set(cuts)), [(first, last) for first, last, _ in merged]
