"""Open a video source and pick its video stream: the one way every reader in curate does both.

    from curate.video.source import open_container, pick_video_stream

    with open_container("s3://bucket/raw/bikes.ts") as container:      # or a local path, or a binary file object
        stream = pick_video_stream(container, None)                    # the default video stream
        print(container.format.name, stream.index, stream.codec_context.name)

Local paths (and ``file://`` URLs) are opened by FFmpeg directly, as they always were: nothing in between.
Any other URL (``s3://``, ``gs://``, ``az://``, ``https://``, ...) is opened through fsspec, with its
credentials and endpoint taken from the standard configuration of fsspec and of the filesystem's library, never
from curate: for S3 (s3fs, botocore) ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_PROFILE``,
``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_S3``) for another S3 API, ``~/.aws/config``; for every protocol the
fsspec config (``~/.config/fsspec/*.json``, or ``FSSPEC_<PROTOCOL>_<OPTION>`` variables such as
``FSSPEC_S3_ENDPOINT_URL``); for Google Cloud Storage (gcsfs) the application default credentials.

Reading a remote file. FFmpeg reads a container in small pieces (32 KiB) and jumps: to the index at the end of an
MP4, back to the first frame, to the keyframe before each clip. A remote file is therefore read in blocks of
``REMOTE_BLOCK_SIZE`` bytes, each fetched once and kept in a least-recently-used cache of ``REMOTE_BLOCKS``
blocks (at most 64 MiB per open file), and the next block is fetched in the background while the current one is
decoded (fsspec's ``background`` cache). A sequential decode thus streams the file block by block, and a jump
back to a block still in the cache costs no request. :class:`ContainerOpener` lets several passes over one file
(a pass over its packets, then the decode) share that cache; ``tests/test_remote.py`` checks that a read fetches
each byte once (bytes fetched per pass: ``benchmarks/README.md``).

Errors: a source that cannot be opened raises :class:`VideoOpenError` (missing, forbidden, not a media file), a
container without a video stream :class:`NoVideoStreamError`; both are ``curate.errors.VideoReadError``, which
each stage turns into a per-video error (a rejected row or a ``<stage>_error``), never a crash.
"""

from __future__ import annotations

import os
import urllib.parse
from typing import BinaryIO

import av

from curate.errors import VideoReadError

__all__ = [
    "NoVideoStreamError",
    "REMOTE_BLOCKS",
    "REMOTE_BLOCK_SIZE",
    "VideoOpenError",
    "default_video_stream",
    "filesystem",
    "is_url",
    "local_path",
    "open_container",
    "ContainerOpener",
    "open_remote",
    "pick_video_stream",
    "source_name",
    "storable_path",
    "video_streams",
    "why",
]

#: Bytes fetched per request from a remote file (and the unit of its cache).
REMOTE_BLOCK_SIZE = 4 << 20
#: Blocks of a remote file kept in memory, least recently used dropped first: 64 MiB per open file.
REMOTE_BLOCKS = 16

Source = str | os.PathLike | BinaryIO


class VideoOpenError(VideoReadError):
    """The source cannot be opened as a media container: missing, forbidden, empty, or not media."""


class NoVideoStreamError(VideoReadError):
    """The container opens but holds no video stream (audio only, subtitles, cover art only)."""


def is_url(source: Source) -> bool:
    """True for a URL of a remote filesystem (``s3://...``); False for local paths, ``file://`` and file objects."""
    return isinstance(source, str) and "://" in source and not source.startswith("file://")


def local_path(source: str | os.PathLike) -> str:
    """The local path of a path or ``file://`` URL (percent-escapes decoded, as RFC 8089 writes them)."""
    path = os.fspath(source)
    if not path.startswith("file://"):
        return path
    return os.fsdecode(urllib.parse.unquote_to_bytes(path[len("file://"):]))


def storable_path(path: str) -> str:
    """A local path as text that Parquet can store (UTF-8): the path itself, or, for a name whose bytes are not
    UTF-8 (a Latin-1 name on a UTF-8 system: Python holds it with surrogate escapes), a percent-encoded ``file://``
    URL of its bytes, which ``local_path`` (and every reader, through it) turns back into the same path."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return "file://" + urllib.parse.quote(os.fsencode(path))


def filesystem(source: str):
    """(fsspec filesystem, path in it) of a local path, ``file://`` URL or remote URL."""
    import fsspec

    if is_url(source):
        return fsspec.core.url_to_fs(source)
    from fsspec.implementations.local import LocalFileSystem

    return LocalFileSystem(), local_path(source)


def source_name(source: Source) -> str:
    """How messages name ``source``: its path or URL, or a file object's name."""
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return str(getattr(source, "name", None) or f"<{type(source).__name__}>")


def open_remote(url: str) -> BinaryIO:
    """A binary file object reading ``url`` through fsspec, in cached blocks with read-ahead (module docstring)."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(url)
    return fs.open(path, "rb", block_size=REMOTE_BLOCK_SIZE, cache_type="background",
                   cache_options={"maxblocks": REMOTE_BLOCKS})


def open_container(source: Source) -> av.container.InputContainer:
    """The PyAV container of ``source`` (local path, URL or binary file object); close it, or use ``with``.

    Raises :class:`VideoOpenError` naming the source when it cannot be opened.
    """
    name = source_name(source)
    try:
        if is_url(source):
            return av.open(_ClosedWithContainer(open_remote(source)), mode="r")
        if isinstance(source, (str, os.PathLike)):
            return av.open(local_path(source), mode="r")
        return av.open(source, mode="r")
    except (av.FFmpegError, OSError, ValueError) as err:
        raise VideoOpenError(name, f"cannot open as a video container ({why(err)})") from err


class _ClosedWithContainer:
    """A remote file that closes itself (its cache and read-ahead thread) when its container lets go of it: PyAV
    never closes a file object, and fsspec's files hold a reference cycle that only the garbage collector breaks."""

    def __init__(self, file: BinaryIO):
        self._file = file
        self.name = getattr(file, "path", None) or "<remote>"

    def read(self, size: int = -1) -> bytes:
        return self._file.read(size)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def __del__(self) -> None:
        self._file.close()


class ContainerOpener:
    """Opens ``source``'s container as often as needed, one container at a time: a remote file is opened once,
    and its block cache serves every container (a second pass reads no block twice that is still cached).

        with ContainerOpener("s3://bucket/raw/a.ts") as open_again:
            with open_again() as container:
                ...                          # e.g. a pass over the packets
            with open_again() as container:
                ...                          # then the decode: the same blocks, fetched once

    ``file``: the remote file object (None for a local source), for reading bytes through the same cache.
    Raises :class:`VideoOpenError` as :func:`open_container` does, on entering (a remote file) or on a call.
    """

    def __init__(self, source: Source):
        self.source, self.name = source, source_name(source)
        self.file: BinaryIO | None = None

    def __enter__(self) -> ContainerOpener:
        if is_url(self.source):
            try:
                self.file = open_remote(self.source)
            except (OSError, ValueError) as err:
                raise VideoOpenError(self.name, f"cannot open as a video container ({why(err)})") from err
        return self

    def __exit__(self, *exc) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None

    def __call__(self) -> av.container.InputContainer:
        if self.file is None:
            if not isinstance(self.source, (str, os.PathLike)):  # a file object: rewind it for each container
                self.source.seek(0)
            return open_container(self.source)
        self.file.seek(0)
        try:
            return av.open(self.file, mode="r")
        except (av.FFmpegError, OSError, ValueError) as err:
            raise VideoOpenError(self.name, f"cannot open as a video container ({why(err)})") from err


def why(err: Exception) -> str:
    """The reason in an open or read error, worded the same for a local file and a remote one (no path in it)."""
    if isinstance(err, FileNotFoundError):
        return "no such file"
    if isinstance(err, PermissionError):
        return "permission denied"
    if isinstance(err, av.FFmpegError):
        return err.strerror or type(err).__name__
    return f"{type(err).__name__}: {err}"


def video_streams(container: av.container.InputContainer) -> list[av.VideoStream]:
    """The container's real video streams: attached pictures (cover art) are not videos."""
    return [s for s in container.streams.video if not int(s.disposition) & int(av.stream.Disposition.attached_pic)]


def default_video_stream(container: av.container.InputContainer) -> av.VideoStream | None:
    """The first video stream with the 'default' disposition, else the first video stream; None if there is none."""
    videos = video_streams(container)
    defaults = [s for s in videos if int(s.disposition) & int(av.stream.Disposition.default)]
    return (defaults or videos or [None])[0]


def pick_video_stream(
    container: av.container.InputContainer, stream_index: int | None, name: str | None = None
) -> av.VideoStream:
    """The video stream to read: ``stream_index`` (an index among all the container's streams), or the default one.

    This one rule picks the stream everywhere in curate (probe, scene scan, every frame reader, export). ``name``
    names the source in messages (default: the container's name). Raises :class:`NoVideoStreamError` when there
    is no video stream, ``ValueError`` when ``stream_index`` is not one (the message lists the video streams).
    """
    name = container.name if name is None else name
    videos = video_streams(container)
    if not videos:
        found = ", ".join(f"{s.index}:{s.type}" for s in container.streams) or "none"
        raise NoVideoStreamError(name, f"no video stream (streams: {found})")
    if stream_index is None:
        return default_video_stream(container)
    for stream in videos:
        if stream.index == stream_index:
            return stream
    raise ValueError(
        f"{name}: stream_index={stream_index} is not a video stream; "
        f"video streams: {[s.index for s in videos]}, or None for the default one"
    )
