"""Sample times in a clip and decode just the frames at those times.

    >>> from curate.video.frames import read_frames, sample_times
    >>> times = sample_times(0.0, 3.0, positions=(0.0, 0.5, 1.0))   # first, middle and last frame
    >>> frames = read_frames("../shared/videos/psd_counter.mp4", times, width=320)
    >>> [f.time_s for f in frames], frames[0].image.shape
    ([0.0, 1.5, 2.9], (180, 320, 3))

A clip is a span ``[start_s, end_s)`` of one video stream; times are presentation timestamps in seconds as
stored in the file (``frame.pts * stream.time_base``). The frame "at" time ``t`` is the one whose presentation
interval ``[pts, next pts)`` contains ``t``; a time before the first frame gets the first frame.

Decoding uses PyAV: seek to the keyframe before the first requested time, decode forward, and seek again only
when the stream's index shows a keyframe between the current position and the next requested time; while
more than ``SKIP_MARGIN_S`` before the next requested time the decoder skips B-frames (nothing refers to
them). At most a few decoded frames are held at once, never the whole video; picked frames are converted to
small RGB images at once. ``read_clips`` reads many clips of one file in one pass, which saves each clip's
run-up from its keyframe.

Why PyAV and not decord 0.6.0 (also installed): checked on the shared footage against a sequential PyAV
decode, decord returns wrong frames. On ``opencv_Megamind.avi`` (DivX packed B-frames) every timestamp it
reports is ``-3.8e17`` s and its frames from the first cut on differ from the sequential decode (pixel
differences up to 255); on ``imageio_cockatoo.mp4`` a fresh reader's ``vr[n - 3]`` is grey-green garbage (it
seeks past the x264 version SEI, see ``tell_decoder_the_x264_build``). Nor is it clearly faster: for 8 frames
of a 4-s clip at 2 fps, both take 0.07-0.3 CPU-s on the shared footage (decord 0.07 vs 0.065 on
``opencv_vtest.avi``, 0.29 vs 0.27 on ``imageio_cockatoo.mp4``; repeated runs on this shared 2-core machine
varied up to 2x either way), and decord builds an index of every frame at open.

What the returned images honour:

* display rotation (the stream's display matrix, e.g. phone video; ``psd_issue-134-rotate.mp4``): images are
  turned upright so OCR reads upright text. Flips in the display matrix are ignored (rare).
* non-square pixels (sample aspect ratio, e.g. 704x576 PAL with SAR 16:11): images are resampled to the
  display aspect ratio, so ``width=None`` gives 1024x576 for such a stream.
* broken timestamps: when a stream's PTS run backwards in decode output while its DTS do not (DivX packed
  B-frames in AVI, e.g. ``opencv_Megamind.avi``), the frame time is the DTS, as FFmpeg's own
  ``best_effort_timestamp`` does. Cut keyframes have PTS == DTS there, so clip boundaries agree either way.
"""

from __future__ import annotations

import math
import os
import re
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from curate.video.probe import default_video_stream, video_streams

__all__ = ["Frame", "FrameDecodeError", "read_clips", "read_frames", "sample_times", "video_stream_index"]

# A requested time that equals a frame's PTS up to this much (seconds) selects that frame (float rounding).
TIME_TOLERANCE_S = 1e-6
# Position 1.0 of a clip maps to end_s minus this (seconds): end_s is exclusive, so "last frame" means the
# frame shown just before end_s, not the first frame of the next clip.
END_EPSILON_S = 1e-4
# A requested time more than this past the last frame of the stream is an error, not "the nearest frame".
PAST_END_TOLERANCE_S = 1.0
# Without a keyframe index, seek again when the next requested time is this far ahead of the decoder.
SEEK_GAP_S = 2.0
# Index timestamps can be DTS, up to the B-frame delay before the keyframe's PTS: only a keyframe indexed at
# least this long before the next requested time is sure to be where a seek lands (MP4 seeks by PTS).
SEEK_MARGIN_S = 0.5
# While the decoder is more than this before the next requested time, it skips frames no other frame needs
# (B-frames): they cannot be the one returned. Must exceed what the decoder holds in flight (reorder delay,
# plus one frame per thread when frame-threading), well under a second of video in practice.
SKIP_MARGIN_S = 1.0
# read_clips decodes at most this many requested frames per pass (memory: converted images only).
FRAMES_PER_READ = 512
# Frames decoded ahead before timestamping one, so a PTS that runs backwards is seen before it is used.
_LOOKAHEAD = 2


class FrameDecodeError(Exception):
    """A clip's frames could not be decoded: the message names the file, the time and the reason."""


@dataclass(frozen=True)
class Frame:
    """One decoded frame: its actual presentation time in seconds and an upright HxWx3 uint8 RGB image."""

    time_s: float
    image: np.ndarray


def sample_times(
    start_s: float,
    end_s: float,
    *,
    fps: float | None = None,
    positions: Sequence[float] | None = None,
    max_frames: int | None = None,
) -> list[float]:
    """Times (seconds) to sample in the clip ``[start_s, end_s)``; give exactly one of ``fps`` or ``positions``.

    ``fps``: a regular grid ``start_s + k / fps`` for every ``k`` that stays before ``end_s`` (ascending).
    ``positions``: relative positions in ``[0, 1]``, in the order given; 0 is the clip's first frame, 1 its last
    frame (``end_s - END_EPSILON_S``, since ``end_s`` is exclusive).
    ``max_frames``: when there are more times than this, keep ``max_frames`` of them evenly spread, always
    including the first and the last.
    """
    # 1. check inputs
    if not (math.isfinite(start_s) and math.isfinite(end_s)):
        raise ValueError(f"start_s and end_s must be finite seconds, got start_s={start_s}, end_s={end_s}")
    if end_s <= start_s:
        raise ValueError(f"end_s ({end_s}) must be greater than start_s ({start_s}): a clip is [start_s, end_s)")
    if (fps is None) == (positions is None):
        raise ValueError("give exactly one of fps= (a regular grid) or positions= (relative positions in [0, 1])")
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be a positive integer or None (no limit), got {max_frames}")

    # 2. build the times
    if fps is not None:
        if not (math.isfinite(fps) and fps > 0):
            raise ValueError(f"fps must be a positive number of samples per second, got {fps}")
        count = math.ceil((end_s - start_s) * fps) + 1  # one too many at most, dropped by the test below
        times = [start_s + k / fps for k in range(count) if start_s + k / fps < end_s]
    else:
        bad = [p for p in positions if not 0.0 <= p <= 1.0]
        if bad or len(positions) == 0:
            raise ValueError(f"positions must be a non-empty sequence of numbers in [0, 1], got {list(positions)}")
        last = max(start_s, end_s - END_EPSILON_S)
        times = [min(start_s + p * (end_s - start_s), last) for p in positions]

    # 3. thin out evenly
    if max_frames is not None and len(times) > max_frames:
        keep = np.round(np.linspace(0, len(times) - 1, max_frames)).astype(int)
        times = [times[i] for i in keep]
    return times


def video_stream_index(container: av.container.InputContainer, stream_index: int | None = None) -> int:
    """Index (among all streams) of the video stream to read: ``stream_index`` checked, or the default one.

    The default is the first video stream marked as default (disposition), else the first video stream;
    attached pictures (cover art) are never picked.
    """
    videos = video_streams(container)
    if stream_index is not None:
        allowed = [s.index for s in videos]
        if stream_index not in allowed:
            raise ValueError(
                f"stream_index={stream_index} is not a video stream of {container.name}; "
                f"video stream indices are {allowed} (or None for the default one)"
            )
        return stream_index
    if not videos:
        raise FrameDecodeError(f"{container.name}: no video stream (streams: {[s.type for s in container.streams]})")
    return default_video_stream(container).index


def read_frames(
    source: str | os.PathLike,
    times: Sequence[float],
    *,
    width: int | None = None,
    stream_index: int | None = None,
    threads: int = 1,
) -> list[Frame]:
    """Decode the frame at each requested time (seconds); one ``Frame`` per time, in the order given.

    ``width``: largest output width in pixels of the upright, display-aspect image; narrower frames are not
    upscaled, and the height follows the aspect ratio. None keeps the display width.
    ``stream_index``: index among all the container's streams; None picks the default video stream.
    ``threads``: FFmpeg decoder threads (1 = one core, what a Dask worker gets; 0 = FFmpeg chooses).
    Raises ``FrameDecodeError`` when the file cannot be opened or decoded, or a time is past the stream's end.
    """
    # 1. check inputs
    if width is not None and (not isinstance(width, int) or width < 2):
        raise ValueError(f"width must be an integer number of pixels >= 2, or None (display width); got {width!r}")
    if not isinstance(threads, int) or threads < 0:
        raise ValueError(f"threads must be an integer >= 1, or 0 to let FFmpeg choose; got {threads!r}")
    bad = [t for t in times if not math.isfinite(t)]
    if bad:
        raise ValueError(f"times must be finite seconds, got {bad}")
    if len(times) == 0:
        return []

    # 2. open the file and pick the stream
    path = os.fspath(source)
    try:
        container = av.open(path)
    except (av.FFmpegError, OSError) as error:
        raise FrameDecodeError(f"{path}: cannot open as a video file ({error})") from error
    with container:
        stream = container.streams[video_stream_index(container, stream_index)]
        stream.codec_context.thread_count = threads
        stream.codec_context.thread_type = "AUTO" if threads != 1 else "SLICE"
        tell_decoder_the_x264_build(container, stream)

        # 3. decode forward through the sorted times, seeking where it saves decoding; convert as picked
        reformatter = VideoReformatter()
        convert = lambda frame: to_rgb(frame, width, stream.sample_aspect_ratio, reformatter)  # noqa: E731
        try:
            picked = _pick_frames(container, stream, sorted(set(times)), convert)
        except av.FFmpegError as error:
            where = f"between {min(times):.3f} s and {max(times):.3f} s"
            raise FrameDecodeError(f"{path}: decoding stream {stream.index} failed {where} ({error})") from error
        except FrameDecodeError as error:
            raise FrameDecodeError(f"{path}: {error}") from None
    return [picked[t] for t in times]


def read_clips(
    source: str | os.PathLike,
    clip_times: Sequence[Sequence[float]],
    *,
    width: int | None = None,
    stream_index: int | None = None,
    frames_per_read: int = FRAMES_PER_READ,
) -> list[list[Frame]]:
    """``read_frames`` for many clips of one file: one list of frames per clip, in the order given.

    Clips are read in batches of at most ``frames_per_read`` frames, each batch in one decoding pass, so a file
    cut into clips is decoded about once instead of once per clip plus each clip's run-up from its keyframe
    (with one keyframe every 25 s, as ``opencv_vtest.avi``, that run-up is 3x the clip). Give the clips in time
    order. Memory: one batch of converted frames (512 at 256x144 RGB: 57 MB).
    """
    if frames_per_read < 1:
        raise ValueError(f"frames_per_read must be a positive number of frames, got {frames_per_read}")
    clips: list[list[Frame]] = []
    for batch in _batches(clip_times, frames_per_read):
        times = [t for clip in batch for t in clip]
        frames = iter(read_frames(source, times, width=width, stream_index=stream_index))
        clips += [[next(frames) for _ in clip] for clip in batch]
    return clips


def _batches(clip_times: Sequence[Sequence[float]], limit: int) -> Iterator[list[Sequence[float]]]:
    """Consecutive clips grouped so that each group holds at most ``limit`` times (or one bigger clip)."""
    batch: list[Sequence[float]] = []
    count = 0
    for times in clip_times:
        if batch and count + len(times) > limit:
            yield batch
            batch, count = [], 0
        batch.append(times)
        count += len(times)
    if batch:
        yield batch


def tell_decoder_the_x264_build(container, stream) -> None:
    """Pass the x264 version to FFmpeg's H.264 decoder before any seek.

    x264 writes its version only in an SEI message of the first frame; FFmpeg needs it to undo bugs of old
    x264 builds (e.g. 4:4:4 intra prediction before build 151). Decoding from a later keyframe never sees
    that SEI, and the frames come out as grey-green garbage (``imageio_cockatoo.mp4``, x264 core 142, after
    3.8 s). Reading the first packet here costs one packet.
    """
    build = x264_build(container, stream)
    if build is not None:
        stream.codec_context.options = {**stream.codec_context.options, "x264_build": str(build)}


def x264_build(container, stream) -> int | None:
    """The x264 build that encoded an H.264 ``stream`` (from the SEI of its first packet), None if not x264.

    Reads the first packet of the stream: call it on a fresh container, before decoding."""
    if stream.codec_context.name != "h264":
        return None
    first = next(container.demux(stream), None)
    header = (stream.codec_context.extradata or b"") + (bytes(first) if first is not None else b"")
    match = re.search(rb"x264 - core (\d+)", header)
    return int(match.group(1)) if match else None


def _pick_frames(container, stream, times: list[float], convert) -> dict[float, Frame]:
    """For each time (ascending), the frame whose presentation interval contains it, converted by ``convert``
    as soon as it is picked (so only converted images pile up) and once even if several times land on it."""
    picked: dict[float, Frame] = {}
    decoded: Iterator[tuple[float, av.VideoFrame]] | None = None
    current = upcoming = None  # (time_s, frame): last frame at or before the time, and the one after it
    last: Frame | None = None  # the last frame picked, converted
    for t in times:
        if decoded is None or _worth_seeking(stream, current, t):
            decoded, current, upcoming = seek_before(container, stream, t)
        while upcoming is not None and upcoming[0] <= t + TIME_TOLERANCE_S:
            far_before_t = upcoming[0] < t - SKIP_MARGIN_S
            stream.codec_context.skip_frame = "NONREF" if far_before_t else "DEFAULT"
            current, upcoming = upcoming, next(decoded, None)
        chosen = current if current is not None else upcoming  # before the first frame: the first frame
        if chosen is None:
            raise FrameDecodeError(f"stream {stream.index} has no decodable frame at or after {t:.3f} s")
        if upcoming is None and t > chosen[0] + PAST_END_TOLERANCE_S:
            raise FrameDecodeError(
                f"time {t:.3f} s is past the end of video stream {stream.index} (last frame at {chosen[0]:.3f} s)"
            )
        if last is None or last.time_s != chosen[0]:  # times ascend: a repeat is always the last one picked
            last = Frame(time_s=chosen[0], image=convert(chosen[1]))
        picked[t] = last
    return picked


def _worth_seeking(stream, current: tuple[float, av.VideoFrame] | None, t: float) -> bool:
    """True when a keyframe lies between the decoder's position and time ``t``, so seeking skips work."""
    if current is None:
        return False
    here = current[0]
    index = stream.index_entries
    if index is None or len(index) == 0:
        return t - here > SEEK_GAP_S
    i = index.search_timestamp(_to_ticks(t - SEEK_MARGIN_S, stream.time_base), backward=True)
    return i >= 0 and index[i].timestamp * stream.time_base > here + TIME_TOLERANCE_S


def seek_before(container, stream, t: float):
    """Seek so decoding starts at a keyframe at or before ``t``; returns (iterator, current, upcoming).

    A keyframe's index timestamp may be its DTS, earlier than its PTS, so the first decoded frame can still be
    after ``t``; and a keyframe may not decode on its own (FFmpeg flags it corrupt). Then seek again further
    back (1 s, 2 s, 4 s, ...) until neither happens, or decoding starts at the start of the stream.
    """
    back_s = 0.0
    while True:
        target = t - back_s
        ticks = max(_to_ticks(target, stream.time_base), stream.start_time or 0)  # AVI refuses a seek before it
        stream.codec_context.skip_frame = "DEFAULT"
        container.seek(ticks, stream=stream, backward=True, any_frame=False)
        decoded = _timed_frames(container, stream)
        first = next(decoded, None)
        at_stream_start = back_s > 0 and target <= _start_s(stream)
        usable = first is None or (first[0] <= t + TIME_TOLERANCE_S and not first[1].is_corrupt)
        if usable or at_stream_start:
            return decoded, None, first
        back_s = max(1.0, 2 * back_s)


def _timed_frames(container, stream) -> Iterator[tuple[float, av.VideoFrame]]:
    """Decode forward from the current position, yielding (time_s, frame) in presentation order.

    The time is the PTS, or the DTS when the PTS have run backwards more often than the DTS (FFmpeg's
    ``guess_correct_pts`` rule); frames are held ``_LOOKAHEAD`` deep so the first backward PTS is seen in time.
    """
    time_base = stream.time_base
    faulty_pts = faulty_dts = 0
    last_pts = last_dts = None
    pending: deque[av.VideoFrame] = deque()

    previous = None  # ticks of the last frame yielded

    def timed(frame):
        nonlocal previous
        use_dts = faulty_pts > faulty_dts or frame.pts is None
        ticks = frame.dts if use_dts else frame.pts
        if ticks is None and previous is not None and frame.duration:
            ticks = previous + frame.duration  # the flushed last frame has no DTS
        if ticks is None:
            ticks = frame.pts if use_dts else frame.dts
        if ticks is None:
            raise FrameDecodeError(f"stream {stream.index} has a frame with neither PTS nor DTS")
        previous = ticks
        return float(ticks * time_base), frame

    for frame in container.decode(stream):
        if frame.pts is not None:
            faulty_pts += last_pts is not None and frame.pts <= last_pts
            last_pts = frame.pts
        if frame.dts is not None:
            faulty_dts += last_dts is not None and frame.dts <= last_dts
            last_dts = frame.dts
        pending.append(frame)
        if len(pending) > _LOOKAHEAD:
            yield timed(pending.popleft())
    while pending:
        yield timed(pending.popleft())


def to_rgb(
    frame: av.VideoFrame,
    width: int | None,
    sample_aspect_ratio: Fraction | None,
    reformatter: VideoReformatter | None = None,
) -> np.ndarray:
    """Upright HxWx3 uint8 RGB image of ``frame`` at display aspect ratio, at most ``width`` pixels wide.

    Pass one ``reformatter`` for all frames of a stream: it keeps FFmpeg's scaler between frames (building it
    costs ~3 ms a frame, 20x the scaling of a small frame).
    """
    reformatter = reformatter or VideoReformatter()
    rotation = round(frame.rotation / 90) % 4 if frame.rotation else 0  # quarter turns counter-clockwise
    sar = sample_aspect_ratio if sample_aspect_ratio and sample_aspect_ratio > 0 else Fraction(1)
    stored_w, stored_h = frame.width, frame.height
    display_w, display_h = stored_w * sar, stored_h  # shown size of the stored picture (pixel aspect applied)
    if rotation % 2:
        display_w, display_h = display_h, display_w
    out_w = round(display_w) if width is None else min(width, round(display_w))  # never upscale
    out_h = max(1, round(out_w * display_h / display_w))
    scaled_w, scaled_h = (out_h, out_w) if rotation % 2 else (out_w, out_h)
    rgb = reformatter.reformat(frame, width=scaled_w, height=scaled_h, format="rgb24", interpolation="AREA")
    image = rgb.to_ndarray()
    if rotation:
        image = np.ascontiguousarray(np.rot90(image, k=rotation))
    return image


def _to_ticks(t: float, time_base: Fraction) -> int:
    return math.floor(t / time_base)


def _start_s(stream) -> float:
    return float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
