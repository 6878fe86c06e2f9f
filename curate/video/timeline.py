"""The one time model: when each decoded frame is shown, for split and for every reader alike.

    import numpy as np
    from curate.video.timeline import repair_frame_times

    repair_frame_times(np.array([10.0, 10.04, 10.08, 1.48, 1.52]), fps=25.0)  # decoded frames' pts, seconds
    # [10.0, 10.04, 10.08, 10.12, 10.16]: the clock restarted after the third frame; the timeline goes on
    repair_frame_times(np.array([0.04, 0.08, 0.16, 0.12, 0.2]), fps=25.0)
    # [0.04, 0.08, 0.12, 0.16, 0.2]: two frames labelled the wrong way round

The timeline. Frame ``i`` (0-based, in the decoder's output order of the chosen stream) is shown at ``T[i]``
seconds, where ``T`` is what :class:`FrameClock` makes of the decoded frames' presentation timestamps
(``pts * time_base``, not shifted to start at zero): the timestamps themselves wherever they strictly increase,
repaired where they do not (sorted where frames are only labelled out of order, e.g. DivX packed B-frames;
``previous + 1/fps`` where a timestamp is missing or jumps back, e.g. an MPEG-TS whose clock restarts where two
recordings were joined). Split computes ``T`` while it decodes; a clip is ``[start_s, end_s)`` in ``T`` and
``[start_frame, end_frame)`` in output order. The frame "at" time ``t`` is the last frame with ``T <= t`` (the first
frame for a ``t`` before it), so a clip's span maps to the same frames in split, the scorers, export and
``ClipDataset``. The clock decides each frame's time ``MAX_REORDER`` frames after it, never later, so a reader that
decodes from the first frame times every frame as split did without a second pass (on every shared fixture and the
MPEG-TS test files it gives split's earlier whole-file repair exactly).

Reading by timestamp or by decode index (``curate.video.cursor``). Where ``T`` equals the timestamps (nearly every
file), a reader seeks by presentation timestamp and decodes a few frames from the keyframe before each requested
time. Where it does not, timestamps cannot say where a frame is (after a clock restart, 5.0 s names two frames), so
the reader decodes the stream from its first frame, counting frames and running the same :class:`FrameClock`:
frame ``i`` then gets ``T[i]`` by construction. Which way a file is read (:func:`timestamps_trusted`):

1. MP4/MOV and Matroska/WebM store a timestamp per frame that cannot restart: read by timestamp, with no check.
2. Every other container (MPEG-TS/PS, AVI, FLV, raw streams, ...) is checked once per process by a pass over its
   packets without decoding them (a few per cent of a decode: ``benchmarks/timeline_cost.py``; it reads the file once
   more, from the cache a remote file's read shares):
   every packet must carry a timestamp and, once sorted within a window of ``MAX_REORDER`` packets (B-frames),
   they must strictly increase.
3. While reading by timestamp, a decoded frame whose timestamp is missing or not above the previous one (a
   decoder that labels frames out of order although its packets are in order, as DivX packed B-frames do) stops
   the read, and the file is read again by decode index (remembered for the process).

Cost of reading by decode index (only files whose timestamps cannot be trusted): every call decodes from the
first frame to its last requested time, every frame (no B-frame skipping), holding up to ``MAX_REORDER + 1``
decoded frames. Scorers read all of a file's clips in one call: about one decode of the file, as split (figures:
``benchmarks/README.md``). A reader of one clip at a time (``ClipDataset``, ``curate export``) decodes from the
start for each clip: export such files once (``curate export`` writes clean MP4) before training on them in random
order.
"""

from __future__ import annotations

import heapq
import math
import os
from collections import deque
from collections.abc import Callable, Iterator

import av
import numpy as np

from curate.video.source import is_url, local_path, open_container

__all__ = [
    "FALLBACK_FPS",
    "FrameClock",
    "MAX_REORDER",
    "PTS_FORMATS",
    "clock_fps",
    "clocked_frames",
    "known_verdict",
    "packets_in_order",
    "packets_trusted",
    "remember_decoded_out_of_order",
    "repair_frame_times",
    "scan_packets",
    "timestamps_trusted",
]

#: Frames (or packets) a timestamp may sit away from its sorted place and still count as only mislabelled.
MAX_REORDER = 16
#: Frame rate assumed when a stream declares none (the step of repaired timestamps).
FALLBACK_FPS = 25.0
#: FFmpeg demuxers whose containers store a timestamp per frame that cannot restart: trusted without a check.
PTS_FORMATS = frozenset({"mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm"})
# Per process, (path or URL, stream, size, mtime) -> whether the packets' timestamps are in order (the packet
# pass), and the files whose decoded timestamps turned out not to be (a read by timestamp that met them).
_PACKETS_IN_ORDER: dict[tuple, bool] = {}
_DECODED_OUT_OF_ORDER: dict[tuple, bool] = {}
_VERDICTS_KEPT = 4096


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


def clocked_frames(
    container: av.container.InputContainer, stream: av.VideoStream
) -> Iterator[tuple[float, av.VideoFrame]]:
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
    known = known_verdict(source, stream.index, container.format.name, packets_only=True)
    return known if known is not None else scan_packets(source, stream.index, lambda: open_container(source))


def known_verdict(source: str | os.PathLike, stream_index: int, format_name: str, packets_only: bool = False):
    """Whether ``stream_index`` of ``source`` (a container of ``format_name``) is read by timestamp, when known
    without reading: True or False from the format or a verdict of this process, else None (``scan_packets``).
    ``packets_only``: leave out what decoding found (for placing packets, as ``--copy`` does)."""
    key = _verdict_key(source, stream_index)
    if not packets_only and key in _DECODED_OUT_OF_ORDER:
        return False
    if format_name in PTS_FORMATS:
        return True
    return _PACKETS_IN_ORDER.get(key)


def scan_packets(source: str | os.PathLike, stream_index: int,
                  open_again: Callable[[], av.container.InputContainer]) -> bool:
    """:func:`packets_in_order` on a container ``open_again()`` opens; the verdict is kept for the process."""
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


def remember_decoded_out_of_order(source: str | os.PathLike, stream_index: int) -> None:
    """Record that decoding ``stream_index`` of ``source`` met timestamps out of order: read it by index from now on."""
    _remember(_DECODED_OUT_OF_ORDER, _verdict_key(source, stream_index), True)
