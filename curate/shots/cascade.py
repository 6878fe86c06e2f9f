"""The detectors of a scene scan, fed frame by frame, and how their cuts and transitions become one list of events.

    from curate.shots.cascade import Cascade, DetectorSpec

    specs = [DetectorSpec("adaptive"), DetectorSpec("dissolve")]
    cascade = Cascade(specs, fps=25.0, transnet=None)      # one per video: detectors keep state
    for index, small in enumerate(thumbnails):              # BGR uint8 frames, decode order
        if cascade.wants(index):
            cascade.feed(index, small)
    raw_cuts = cascade.finish(n_frames=len(thumbnails))     # per detector name, before merging
    cut_frames, transitions = cascade.merge(window_frames=8)

``curate.shots.scan.scan_scenes`` decodes the video and runs all of this. A :class:`DetectorSpec` names a detector
kind of ``curate.shots.registry.DETECTORS`` (PySceneDetect's ``content``, ``adaptive``, ``threshold``,
``histogram``, which report hard cuts; ``transnetv2``, the network; ``dissolve``, the linear-blend test; ``flash``,
flat black or white frames), a stride and parameters. Each detector asks for frames at one scale
(:class:`curate.shots.detector.FrameScales`); :func:`merge_events` makes one list of all their events.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from curate.shots.detector import Detection, FrameScales, ShotDetector
from curate.shots.purity import ChangeSignal
from curate.shots.registry import DETECTORS, detector_kind

DEFAULT_MERGE_WINDOW_FRAMES = 8
"""Cuts of different detectors closer than this many frames are one event by default."""

REFINE_HISTORY_FRAMES = 1024
"""Per-frame change scores kept (8 KiB) to place the cuts of strided detectors. A cut reported
more than this many frames after it happened keeps the position the detector gave."""


@dataclass(frozen=True)
class DetectorSpec:
    """One detector of the cascade.

    Attributes:
        kind: a name of ``curate.shots.registry.DETECTORS``: ``"content"``, ``"adaptive"``, ``"threshold"`` or
            ``"histogram"`` (PySceneDetect's ContentDetector, AdaptiveDetector, ThresholdDetector,
            HistogramDetector), ``"transnetv2"`` (the TransNetV2 network), ``"dissolve"`` (a cheap test for
            cross-dissolves and fades) or ``"flash"`` (flat black or white frames).
        stride: feed every ``stride``-th decoded frame (indices 0, stride, 2*stride, ...), which
            emulates a frame rate ``stride`` times lower. Its cuts are then known to within
            ``stride`` frames and are moved to the largest frame-to-frame change in that window.
        params: keyword arguments of the detector's constructor, e.g. ``{"threshold": 30.0}``.
            ``transnetv2`` takes stride 1 only, ``dissolve`` and ``flash`` 1 or 2.
            ``min_scene_len`` as an int counts decoded frames of the source, whatever the stride
            (as a float: seconds); ``window_width`` (adaptive) counts the frames the detector sees.

    Raises:
        ValueError: unknown ``kind`` or parameter, ``stride < 1``, or a value the detector rejects.
    """

    kind: str
    stride: int = 1
    params: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        kind = detector_kind(self.kind)
        if isinstance(self.stride, bool) or not isinstance(self.stride, int) or self.stride < 1:
            raise ValueError(f"stride must be an int >= 1 (1 = every frame), got {self.stride!r}")
        allowed = list(kind.defaults())
        unknown = sorted(set(self.params) - set(allowed))
        if unknown:
            raise ValueError(f"unknown parameter(s) {unknown} for the {self.kind!r} detector; allowed: {allowed}")
        object.__setattr__(self, "params", dict(self.params))  # never alias the caller's dict
        kind.check(self.stride, self.settings())

    @property
    def name(self) -> str:
        """Key of this detector in :attr:`SceneScan.detector_cuts`, e.g. ``"content@1"``."""
        return f"{self.kind}@{self.stride}"

    @property
    def needs_network(self) -> bool:
        """Whether the scan must be given the loaded TransNetV2."""
        return DETECTORS[self.kind].needs_network

    def settings(self) -> dict:
        """Every parameter of the detector: its defaults, overridden by ``params``."""
        return {**DETECTORS[self.kind].defaults(), **self.params}

    def build(self, fps: float, network: Any = None) -> ShotDetector:
        """A fresh detector for one video (detectors keep state): ``fps`` is the stream's rate, ``network`` the
        loaded TransNetV2 where :attr:`needs_network`."""
        return DETECTORS[self.kind].build(self.stride, self.settings(), fps=fps, network=network)


DEFAULT_CASCADE: tuple[DetectorSpec, ...] = (DetectorSpec("adaptive"), DetectorSpec("dissolve", stride=2))
"""The cascade :func:`~curate.shots.scan.scan_scenes` runs by default, and ``configs/offline.yaml``: PySceneDetect's
AdaptiveDetector with its defaults on every frame, for hard cuts (``benchmarks/cut_accuracy.py`` ranks it first on
the annotated fixtures: it finds the cuts ContentDetector finds without its false cuts on fast motion), and the
dissolve test on every other frame for cross-dissolves and fades. On ``benchmarks/transitions.py`` this lifts F1
from 0.68 to 0.80 (precision 0.92 to 0.93) at no measurable cost (the scan stays ~1.4x a one-thread decode in
CPU time); TransNetV2 reaches 0.89 but costs 30-40x a decode on a CPU (``GPU_CASCADE``)."""


GPU_CASCADE: tuple[DetectorSpec, ...] = (DetectorSpec("transnetv2", params={"threshold": 0.3}),)
"""The best setting of ``benchmarks/transitions.py``: TransNetV2 alone at threshold 0.3 (F1 0.89, precision 0.97 over
the synthetic edits and the annotated fixtures; 0.4 and 0.5 found fewer dissolves and no fewer false cuts, and
adding AdaptiveDetector or the dissolve test only added false cuts). It needs the network: meant for GPUs."""



class Cascade:
    """The detectors of one scan, what they found, and the change history strided cuts are refined with."""

    def __init__(self, specs: list[DetectorSpec], fps: float, transnet: Any, change_signal: bool = False) -> None:
        self.specs = specs
        self.detectors = [spec.build(fps, transnet) for spec in specs]
        self.signal = ChangeSignal() if change_signal else None  # for the purity check after split
        scales = {detector.scale for detector in self.detectors} | ({"gray48"} if change_signal else set())
        self.frames = FrameScales(scales)
        strided = any(d.refines_cuts and d.stride > 1 for d in self.detectors)
        self.history = ChangeHistory() if strided else None  # to place the cuts of strided detectors
        self.detections: list[Detection] = []

    def wants(self, index: int) -> bool:
        """Whether frame ``index`` must be shrunk: a detector samples it, or strided cuts need its score."""
        every = self.history is not None or self.signal is not None
        return every or any(index % d.stride == 0 for d in self.detectors)

    def feed(self, index: int, small: np.ndarray) -> None:
        """Frame ``index`` as the scan's BGR thumbnail, to every detector that samples it, at the scale it asks."""
        if self.history is not None:
            self.history.push(index, small)
        self.frames.start(small)
        if self.signal is not None:
            self.signal.push(index, self.frames.get("gray48"))
        for detector in self.detectors:
            if index % detector.stride == 0:
                detector.push(index, self.frames.get(detector.scale))

    def finish(self, n_frames: int) -> dict[str, list[int]]:
        """Flush the detectors. Returns the raw cuts per detector name: hard cuts and the cuts of gradual
        transitions, sorted, inside ``1 .. n_frames - 1``, before refinement and merging."""
        self.detections = [detector.finish(n_frames) for detector in self.detectors]
        return {
            spec.name: sorted({c for c in [*found.cuts, *(cut for _, _, cut in found.spans)] if 0 < c < n_frames})
            for spec, found in zip(self.specs, self.detections, strict=True)
        }

    def merge(self, window_frames: int) -> tuple[list[int], list[tuple[int, int]]]:
        """Refine the hard cuts of strided detectors, then :func:`merge_events` them with every gradual transition
        (a gradual transition's cut comes with its span). Call after :meth:`finish`."""
        points = []
        for detector, found in zip(self.detectors, self.detections, strict=True):
            stride = detector.stride if detector.refines_cuts else 1
            refined = [refine_cut(cut, stride, self.history) for cut in found.cuts]
            points.append([c for c in refined if not any(a <= c <= b for a, b, _ in found.spans)])
        strides = [detector.stride for detector in self.detectors]
        return merge_events(points, strides, [found.spans for found in self.detections], window_frames)

    @property
    def cuts(self) -> list[Sequence[int]]:
        """Per detector, the hard cuts it has reported so far (``cuts_so_far``; none for a detector that reports only
        when it finishes): what lets split's frame keeper close a scene while the scan goes on."""
        return [getattr(detector, "cuts_so_far", ()) for detector in self.detectors]

    @property
    def spans(self) -> list[Sequence[tuple[int, int, int]]]:
        """Per detector, the gradual transitions it has reported so far, ``(first, last, cut)`` (``spans_so_far``;
        None for a detector that reports none before it finishes)."""
        return [getattr(detector, "spans_so_far", None) for detector in self.detectors]

    @property
    def frame_scores(self) -> np.ndarray | None:
        """Per-frame scores of the first detector that keeps them (TransNetV2's probabilities), else None."""
        return next((d.scores for d in self.detectors if getattr(d, "scores", None) is not None), None)


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
