"""Export: cut the curated clips into media files, one mp4 per clip or WebDataset tar shards, as Dask tasks.

    curate export runs/demo --out exports/demo                                  # DIR/clips/<clip_id>.mp4, exact cuts
    curate export runs/demo --out exports/wds --format webdataset --resolution 256 --fps 8
    curate export runs/demo --out exports/fast --copy                           # stream copy, keyframe-snapped

    from curate.export import export_clips
    from curate.runner import start_client
    with start_client(workers=2) as client:
        manifest = export_clips("runs/demo", "exports/demo", client=client)    # one row per clip: ok or error

The input is a run folder (its last complete step: the ``write`` step's shards), or a folder of Parquet shards.
By default each clip ``[start_s, end_s)`` is cut exactly: decoded (``curate.video.frames``: upright, display
aspect ratio, the frame shown at each output time), and re-encoded with libx264 (yuv420p, CRF 18) at ``--fps``
(default: the source's average rate) and ``--resolution`` (``WxH``: scaled to cover and centre-cropped;
``N``: short side N, aspect kept; default: the display size), rounded to even sizes; no audio. ``--copy`` copies
the compressed packets instead: fast and lossless, but a clip starts at the keyframe at or before ``start_s``
(up to a few seconds early; the manifest records the real start), keeps the stored size and rate, and needs a
codec MP4 holds. ``--crop-bars`` cuts away the black bars (letterbox, pillarbox) that the picture step found
(``crop_left``, ``crop_top``, ``crop_right``, ``crop_bottom``: fractions of the frame) before scaling; a clip without
bars, or whose crop is unknown (NaN), is exported whole.

Output folder::

    DIR/export.json                 the options and the input clips; a relaunch with others is refused
    DIR/clips/<clip_id>.mp4, .json  --format mp4: the clip, and its caption(s), span, source, scores (as below)
    DIR/shard-00000.tar             --format webdataset: <clip_id>.mp4 + <clip_id>.json per clip (caption(s),
                                    span, source, scores), for webdataset.WebDataset("DIR/shard-{00000..00009}.tar")
    DIR/manifest/part-00000.parquet one row per clip of a task: status ok | error, the error, file, frames, size...
    DIR/manifest.parquet            all tasks' rows, written last

File names derive only from ``clip_id``, which must be lowercase hex digits and underscores (what the split
stage makes): a source file name never becomes part of an output path. A clip whose source cannot be read
becomes an ``error`` row and the export goes on. Each file is written to a temporary name and renamed, and a
task's manifest part is written last: a relaunch skips finished tasks and reuses finished mp4 files.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import os
import re
import sys
import tarfile
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal, Sequence

from curate.errors import CurateError, VideoReadError

#: A clip_id that may name a file: lowercase hex and underscores (``<video_id>_<start_frame>_<end_frame>``).
CLIP_ID = re.compile(r"[0-9a-f][0-9a-f_]{0,89}")  # fullmatch; <= 90 characters fits a tar (USTAR) member name
SPAN_COLUMNS = ("clip_index", "start_s", "end_s", "duration_s", "start_frame", "end_frame")
SOURCE_COLUMNS = ("video_id", "video_path", "video_stream", "container", "codec", "width", "height",
                  "display_width", "display_height", "sample_aspect_ratio", "rotation", "fps", "nominal_fps",
                  "video_duration_s", "video_frames", "has_audio", "size_bytes", "video_streams")
CRF = 18
#: The picture step's black-bar box, what ``--crop-bars`` cuts away.
CROP_COLUMNS = ("crop_left", "crop_top", "crop_right", "crop_bottom")


class ExportError(CurateError):
    """An export that cannot run as asked; the message says what to change."""


@dataclass(frozen=True)
class ExportOptions:
    format: Literal["mp4", "webdataset"] = "mp4"
    resolution: str | None = None  # "WxH" or "N" (short side)
    fps: float | None = None
    copy: bool = False
    crop_bars: bool = False

    def check(self) -> None:
        if self.format not in ("mp4", "webdataset"):
            raise ExportError(f"--format {self.format!r}: use mp4 or webdataset")
        if self.copy and (self.resolution or self.fps):
            raise ExportError("--copy copies the stored packets: it cannot change --resolution or --fps (drop one)")
        if self.copy and self.crop_bars:
            raise ExportError("--copy copies the stored packets: it cannot --crop-bars (drop one)")
        parse_resolution(self.resolution)
        if self.fps is not None and not (math.isfinite(self.fps) and self.fps >= 0.01):
            raise ExportError(f"--fps {self.fps}: give a number of frames per second, at least 0.01")


@dataclass(frozen=True)
class Cut:
    """One exported clip: the mp4 bytes and what they hold."""

    data: bytes
    frames: int
    width: int
    height: int
    fps: float
    start_s: float  # of the content: start_s of the clip, or the keyframe before it (--copy)
    end_s: float


# ------------------------------------------------------------------------------------------------- sizes
def parse_resolution(text: str | None) -> tuple[int, int] | int | None:
    """``"320x240"`` -> (320, 240) (width, height); ``"256"`` -> 256 (short side); None -> None."""
    if text is None or text == "":
        return None
    match = re.fullmatch(r"\s*(\d+)\s*(?:[xX]\s*(\d+))?\s*", str(text))
    if not match or int(match.group(1)) < 2 or (match.group(2) and int(match.group(2)) < 2):
        raise ExportError(f"--resolution {text!r}: give WxH (e.g. 320x240: scaled to cover, centre-cropped) or a "
                          f"short side in pixels (e.g. 256), at least 2")
    return (int(match.group(1)), int(match.group(2))) if match.group(2) else int(match.group(1))


def output_size(display: tuple[int, int], resolution: tuple[int, int] | int | None) -> tuple[int, int]:
    """(width, height) of the exported clip, even (yuv420p), from the display size and ``--resolution``."""
    width, height = display
    if isinstance(resolution, tuple):
        width, height = resolution
    elif isinstance(resolution, int):
        scale = resolution / min(width, height)
        width, height = width * scale, height * scale
    return max(2, 2 * round(width / 2)), max(2, 2 * round(height / 2))


def _fit(image, size: tuple[int, int]):
    """``image`` (HxWx3 RGB) scaled to cover ``size`` (width, height) and centre-cropped to it."""
    import av

    height, width = image.shape[:2]
    target_w, target_h = size
    if (width, height) == (target_w, target_h):
        return image
    scale = max(target_w / width, target_h / height)
    scaled_w, scaled_h = max(target_w, round(width * scale)), max(target_h, round(height * scale))
    scaled = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(
        width=scaled_w, height=scaled_h, interpolation="AREA" if scale < 1 else "BICUBIC").to_ndarray()
    left, top = (scaled_w - target_w) // 2, (scaled_h - target_h) // 2
    return scaled[top:top + target_h, left:left + target_w]


# --------------------------------------------------------------------------------------------------- cuts
def cut_clip(
    source: str,
    start_s: float,
    end_s: float,
    *,
    stream_index: int | None = None,
    resolution: tuple[int, int] | int | None = None,
    fps: float | None = None,
    crop: tuple[float, float, float, float] | None = None,
) -> Cut:
    """The clip ``[start_s, end_s)`` of ``source`` (a local path or URL) re-encoded (libx264, yuv420p): an exact cut.

    Output frame k shows the source frame on screen at ``start_s + k / fps`` in curate's timeline (the frames
    split and the scorers saw there: ``curate.video.timeline``), for ``round((end_s - start_s) * fps)`` frames;
    fps defaults to the source's average rate. ``crop``: (left, top, right, bottom) fractions of the upright frame
    to cut away first (black bars: the picture step's ``crop_*`` columns). Raises ``VideoReadError`` when the source
    cannot be opened or decoded over the span.
    """
    import av
    from av.video.reformatter import VideoReformatter

    from curate.video.frames import to_rgb

    if not end_s > start_s:
        raise VideoReadError(None, f"empty span: end_s {end_s} <= start_s {start_s}")

    def encode(frames) -> Cut:
        stream = frames.stream
        rate = _rate(fps if fps is not None else (stream.average_rate or stream.guessed_rate or 25))
        count = max(1, round((end_s - start_s) * rate))
        reformatter = VideoReformatter()
        buffer = io.BytesIO()
        with av.open(buffer, "w", format="mp4") as output:
            video = output.add_stream("libx264", rate=rate, options={"crf": str(CRF)})
            video.pix_fmt = "yuv420p"
            size = image = shown = None
            for k in range(count):
                time_s, frame = frames.frame_at(start_s + k / rate)
                if time_s != shown:
                    upright = _cropped(to_rgb(frame, None, stream.sample_aspect_ratio, reformatter), crop)
                    if size is None:
                        size = output_size((upright.shape[1], upright.shape[0]), resolution)
                        video.width, video.height = size
                    image, shown = _fit(upright, size), time_s
                picture = av.VideoFrame.from_ndarray(image, format="rgb24")
                picture.pts = k
                output.mux(video.encode(picture))
            output.mux(video.encode())
        return Cut(buffer.getvalue(), count, size[0], size[1], float(rate), start_s, start_s + count / rate)

    return _read_source(source, encode, stream_index)


def _cropped(image, crop: tuple[float, float, float, float] | None):
    """``image`` without the fractions ``crop`` = (left, top, right, bottom) at its edges; whole without a crop, with
    an unknown one (NaN), or with one that would leave under 2 pixels."""
    if crop is None or any(c is None or not math.isfinite(c) for c in crop) or not any(crop):
        return image
    height, width = image.shape[:2]
    left, top, right, bottom = crop
    x0, x1 = round(left * width), width - round(right * width)
    y0, y1 = round(top * height), height - round(bottom * height)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return image
    return image[y0:y1, x0:x1]


def copy_clip(source: str, start_s: float, end_s: float, *, stream_index: int | None = None) -> Cut:
    """The packets of ``[start_s, end_s)`` copied into an mp4, no re-encoding: it starts at the keyframe at or
    before ``start_s`` (``Cut.start_s``) and ends with the last packet decoded before ``end_s``.

    Packets are placed by their timestamps, so a source whose packet timestamps cannot be trusted (a clock that
    restarts, as in joined MPEG-TS recordings: ``curate.video.timeline``) raises ``VideoReadError``: cut it exactly.
    So does a codec that MP4 cannot hold; the message says so and what to do.
    """
    import av

    from curate.video.cursor import seek_packets
    from curate.video.timeline import packets_trusted

    def copy(container, stream) -> Cut:
        if not packets_trusted(source, container, stream):
            raise VideoReadError(source, "its timestamps restart or are missing, so packets cannot be placed on "
                                 f"the span [{start_s:.3f}, {end_s:.3f}) s; export it without --copy (exact cuts)")
        base = stream.time_base
        packets, later = [], None
        for packet in seek_packets(container, stream, start_s):
            decode_ticks = packet.dts if packet.dts is not None else packet.pts
            if decode_ticks * base >= end_s:
                later = packet.pts if packet.pts is not None else decode_ticks
                break
            packets.append(packet)
        if not packets:
            after = "" if later is None else f" (its first keyframe is at {float(later * base):.3f} s)"
            raise VideoReadError(source, f"no keyframe at or before {start_s:.3f} s to start a copy of "
                                 f"[{start_s:.3f}, {end_s:.3f}) s from{after}")
        pts = [p.pts if p.pts is not None else p.dts for p in packets]
        dts = decode_times(pts, [p.dts for p in packets])
        codec = stream.codec_context.codec.canonical_name
        buffer = io.BytesIO()
        try:
            with av.open(buffer, "w", format="mp4") as output:
                # opaque: copy the codec parameters as they are; without it PyAV looks up an encoder named as the
                # decoder (libdav1d for AV1), which does not exist
                copied = output.add_stream_from_template(stream, opaque=True)
                for packet, p, d in zip(packets, pts, dts):
                    packet.dts, packet.pts = d - dts[0], p - dts[0]
                    packet.stream = copied
                    output.mux(packet)
        except (av.FFmpegError, ValueError) as e:
            raise VideoReadError(source, f"its {codec} video cannot be stream-copied into an MP4 ({e}); "
                                 f"export it without --copy (decoded and re-encoded with libx264)") from e
        width, height = stream.codec_context.width, stream.codec_context.height
        rate = float(stream.average_rate or stream.guessed_rate or 0)
        start = float(pts[0] * base)
        end = float(max(pts) * base) + (1 / rate if rate else 0)
        return Cut(buffer.getvalue(), len(packets), width, height, rate, start, end)

    return _read_source(source, copy, stream_index, packets=True)


def decode_times(pts: Sequence[int], dts: Sequence[int | None]) -> list[int]:
    """Decode timestamps for packets in decode order: ``dts`` when the demuxer gave every one, else made from the
    presentation timestamps (Matroska stores only those): the sorted ``pts``, shifted back just enough that no
    packet is decoded after it is shown. MP4 needs a decode timestamp on every packet, strictly increasing.

        decode_times([0, 4, 2, 1, 3], [None, None, 0, 1, 2])  # [-2, -1, 0, 1, 2]
    """
    if all(d is not None for d in dts):
        return list(dts)
    order = sorted(pts)
    shift = max(o - p for o, p in zip(order, pts))
    return [o - shift for o in order]


def _read_source(source: str, work, stream_index: int | None, packets: bool = False) -> Cut:
    """``work`` over the source's frames (a ``curate.video.timeline`` cursor) or, with ``packets``, over its open
    container and stream; any failure to read the source becomes a ``VideoReadError`` naming it."""
    import av

    from curate.video.source import open_container, pick_video_stream, source_name
    from curate.video.cursor import read_stream

    name = source_name(source)
    try:
        if not packets:
            return read_stream(source, work, stream_index=stream_index)
        with open_container(source) as container:
            return work(container, pick_video_stream(container, stream_index, name))
    except VideoReadError as e:
        if e.path is not None:  # names the source already
            raise
        raise VideoReadError(name, e.cause) from e
    except (av.FFmpegError, ValueError, OSError) as e:
        raise VideoReadError(name, str(e)) from e


def _rate(fps: float | Fraction) -> Fraction:
    """A frame rate as a fraction: NTSC rates (29.97...) exactly, others to 1/1000 frame per second."""
    fps = Fraction(fps)
    ntsc = Fraction(round(fps * Fraction(1001, 1000)) * 1000, 1001)
    return ntsc if abs(fps - ntsc) < Fraction(1, 1000) and fps.denominator != 1 else fps.limit_denominator(1000)


# ------------------------------------------------------------------------------------------ sample metadata
def sample_metadata(row: dict[str, Any]) -> dict[str, Any]:
    """The ``<key>.json`` of a WebDataset sample: caption(s), span, source, scores (scalar columns only)."""
    from curate.rundir import caption_column

    best = caption_column(list(row))
    captions = {k: v for k, v in row.items() if k.startswith("caption") and isinstance(v, str)}
    scores = {k: v for k, v in row.items() if k not in SPAN_COLUMNS and k not in SOURCE_COLUMNS and k != "clip_id"
              and not k.startswith("caption") and isinstance(v, (int, float)) and not isinstance(v, bool)}
    return {
        "clip_id": row["clip_id"],
        "caption": row.get(best) if best else None,
        "captions": captions,
        "span": {k: row[k] for k in SPAN_COLUMNS if k in row},
        "source": {k: row[k] for k in SOURCE_COLUMNS if k in row},
        "scores": {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in scores.items()},
    }


# -------------------------------------------------------------------------------------------------- tasks
MANIFEST_FIELDS = (("clip_id", "string"), ("status", "string"), ("error", "string"), ("file", "string"),
                   ("key", "string"), ("start_s", "float64"), ("end_s", "float64"), ("frames", "int64"),
                   ("width", "int64"), ("height", "int64"), ("fps", "float64"), ("bytes", "int64"),
                   ("seconds", "float64"))


def manifest_schema():
    import pyarrow as pa

    return pa.schema([(name, getattr(pa, kind)()) for name, kind in MANIFEST_FIELDS])


def _cut(row: dict[str, Any], options: ExportOptions) -> Cut:
    if options.copy:
        return copy_clip(row["video_path"], row["start_s"], row["end_s"], stream_index=row.get("video_stream"))
    crop = tuple(row.get(c) for c in CROP_COLUMNS) if options.crop_bars else None
    return cut_clip(row["video_path"], row["start_s"], row["end_s"], stream_index=row.get("video_stream"),
                    resolution=parse_resolution(options.resolution), fps=options.fps, crop=crop)


def _result(row: dict[str, Any], cut: Cut | None, file: str | None, error: str | None, seconds: float,
            size: int | None = None) -> dict:
    result = {name: None for name, _ in MANIFEST_FIELDS}
    result.update(clip_id=row.get("clip_id"), status="error" if error else "ok", error=error, seconds=round(seconds, 4))
    if cut is not None:
        result.update(file=file, key=row["clip_id"], start_s=cut.start_s, end_s=cut.end_s, frames=cut.frames,
                      width=cut.width, height=cut.height, fps=cut.fps, bytes=len(cut.data) if size is None else size)
    return result


def _exported(cut: Cut) -> dict[str, Any]:
    """What was cut, in source time: the ``exported`` entry of a clip's JSON."""
    return {"start_s": cut.start_s, "end_s": cut.end_s, "frames": cut.frames, "width": cut.width,
            "height": cut.height, "fps": cut.fps}


def _existing(meta_path: Path) -> Cut | None:
    """The cut an earlier, killed launch finished: its JSON is written after its mp4, so both are complete."""
    if not meta_path.is_file():
        return None
    e = json.loads(meta_path.read_text())["exported"]
    return Cut(b"", e["frames"], e["width"], e["height"], e["fps"], e["start_s"], e["end_s"])


def export_task(task: int, rows: list[dict[str, Any]], out: str, options: ExportOptions) -> int:
    """Export one task's clips into ``out``, then write its manifest part (the task's done marker). On a worker."""
    import pyarrow as pa

    from curate.rundir import atomic_write_bytes, atomic_write_parquet, shard_name

    out_dir = Path(out)
    results: list[dict[str, Any]] = []
    shard_file = f"shard-{task:05d}.tar"
    shard = _TarShard(out_dir / shard_file) if options.format == "webdataset" else None
    for row in rows:
        start = time.perf_counter()
        clip_id = row.get("clip_id")
        if not isinstance(clip_id, str) or not CLIP_ID.fullmatch(clip_id):
            results.append(_result(row, None, None, f"clip_id {clip_id!r} cannot name a file (expected lowercase hex "
                                                    f"and underscores, as the split stage makes)", 0.0))
            continue
        target, meta_path = out_dir / "clips" / f"{clip_id}.mp4", out_dir / "clips" / f"{clip_id}.json"
        if options.format == "mp4" and target.is_file() and (done := _existing(meta_path)) is not None:
            results.append(_result(row, done, f"clips/{clip_id}.mp4", None, 0.0, target.stat().st_size))
            continue
        try:
            cut = _cut(row, options)
        except VideoReadError as e:
            results.append(_result(row, None, None, str(e), time.perf_counter() - start))
            continue
        meta = json.dumps(sample_metadata(row) | {"exported": _exported(cut)}, ensure_ascii=False,
                          default=str).encode()
        if options.format == "mp4":
            atomic_write_bytes(target, cut.data)
            atomic_write_bytes(meta_path, meta)  # last: marks the clip complete for a relaunch
            results.append(_result(row, cut, f"clips/{clip_id}.mp4", None, time.perf_counter() - start))
        else:
            shard.add(clip_id, cut.data, meta)
            results.append(_result(row, cut, shard_file, None, time.perf_counter() - start))
    if shard is not None:
        shard.commit()
    atomic_write_parquet(out_dir / "manifest" / f"{shard_name(task)}.parquet",
                         pa.Table.from_pylist(results, schema=manifest_schema()))
    return len(results)


class _TarShard:
    """A WebDataset shard: ``<key>.mp4`` then ``<key>.json`` per sample, in order (fixed mtime and owner), written
    sample by sample to a temporary file (a task's clips never sit in memory together), renamed when complete.
    A killed task leaves only the temporary file; its relaunch writes the shard anew."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.tmp = path, path.with_name(f".{path.name}.{os.getpid()}.{time.time_ns()}.tmp")
        self.tar = tarfile.open(self.tmp, mode="w", format=tarfile.USTAR_FORMAT)

    def add(self, key: str, video: bytes, meta: bytes) -> None:
        for name, data in ((f"{key}.mp4", video), (f"{key}.json", meta)):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            self.tar.addfile(info, io.BytesIO(data))

    def commit(self) -> None:
        self.tar.close()
        with open(self.tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(self.tmp, self.path)


# ------------------------------------------------------------------------------------------------- the job
def export_clips(
    source: str | Path,
    out: str | Path,
    *,
    client,
    format: Literal["mp4", "webdataset"] = "mp4",
    resolution: str | None = None,
    fps: float | None = None,
    copy: bool = False,
    clips_per_task: int = 100,
    progress: bool = False,
    crop_bars: bool = False,
):
    """Export the curated clips of ``source`` (a run folder or a folder of shards) into ``out`` on ``client``;
    return the manifest (a pyarrow Table, also ``out/manifest.parquet``). Resumes an interrupted export."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from distributed import as_completed

    from curate.rundir import atomic_write_json, atomic_write_parquet, curated_shards, read_json, shard_name

    # 1. check the options and that OUT holds nothing else
    options = ExportOptions(format=format, resolution=resolution, fps=fps, copy=copy, crop_bars=crop_bars)
    options.check()
    if clips_per_task < 1:
        raise ExportError(f"--clips-per-task {clips_per_task}: give a positive number of clips")
    files = curated_shards(source)
    table = pa.concat_tables([pq.read_table(f) for f in files], promote_options="permissive")
    missing = [c for c in ("clip_id", "video_path", "start_s", "end_s") if c not in table.column_names]
    if missing:
        raise ExportError(f"the shards of {source} have no {missing} column(s): export reads curated clips "
                          f"(a run's write or filter step output)")
    missing = [c for c in CROP_COLUMNS if c not in table.column_names] if crop_bars else []
    if missing:
        raise ExportError(f"--crop-bars: the shards of {source} have no {missing} column(s); run the picture step "
                          f"(curate.stages.picture) before write, or drop --crop-bars")
    out = Path(out)
    clips = hashlib.sha256("\n".join(map(str, table["clip_id"].to_pylist())).encode()).hexdigest()[:16]
    settings = {"source": [str(f.resolve()) for f in files], "clips": clips, "format": format,
                "resolution": resolution, "fps": fps, "copy": copy, "clips_per_task": clips_per_task}
    if crop_bars:  # (absent when off: exports made before the option resume)
        settings["crop_bars"] = True
    previous = read_json(out / "export.json") if (out / "export.json").is_file() else None
    # the same clips in the same order, re-sharded or read through another path, resume the same tasks
    if previous is not None and {**previous, "source": None} != {**settings, "source": None}:
        raise ExportError(f"{out} holds an export with other options or other clips ({out / 'export.json'}); "
                          f"export into a new --out folder, or delete that one")
    atomic_write_json(out / "export.json", settings)

    # 2. the clips, in tasks; a task with its manifest part is done
    table = table.drop_columns([f.name for f in table.schema if pa.types.is_list(f.type) or
                                pa.types.is_large_list(f.type) or pa.types.is_fixed_size_list(f.type)])
    rows = table.to_pylist()
    tasks = [rows[i:i + clips_per_task] for i in range(0, len(rows), clips_per_task)]
    todo = [i for i in range(len(tasks)) if not (out / "manifest" / f"{shard_name(i)}.parquet").is_file()]
    print(f"curate: export {len(rows)} clips in {len(tasks)} tasks ({len(tasks) - len(todo)} done already) to {out}",
          file=sys.stderr)

    # 3. run the tasks; a task that raises is reported after the others finished (a relaunch retries it)
    futures = client.map(export_task, todo, [tasks[i] for i in todo], out=str(out), options=options, pure=False,
                         key=[f"export-{out.name}-{i}" for i in todo])
    failures = []
    for future in as_completed(futures):
        if future.status == "error":
            failures.append(future.exception())
        future.release()
    if failures:
        raise ExportError(f"{len(failures)} of {len(todo)} export tasks failed (first: {type(failures[0]).__name__}: "
                          f"{failures[0]}); fix the cause and relaunch the same command: finished tasks are kept")

    # 4. the manifest of every task, in clip order
    parts = [pq.read_table(out / "manifest" / f"{shard_name(i)}.parquet") for i in range(len(tasks))]
    manifest = pa.concat_tables(parts) if parts else manifest_schema().empty_table()
    atomic_write_parquet(out / "manifest.parquet", manifest)
    return manifest


# --------------------------------------------------------------------------------------------- command line
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN", help="run folder (its last complete step) or a folder of Parquet shards")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (a relaunch resumes it)")
    parser.add_argument("--format", choices=["mp4", "webdataset"], default="mp4",
                        help="mp4: DIR/clips/<clip_id>.mp4; webdataset: DIR/shard-NNNNN.tar (.mp4 + .json per clip)")
    parser.add_argument("--resolution", metavar="WxH|N", help="WxH (scaled to cover, centre-cropped) or N (short side "
                        "N pixels, aspect kept); default: the display size")
    parser.add_argument("--fps", type=float, help="output frame rate (default: the source's average rate)")
    parser.add_argument("--copy", action="store_true", help="stream copy, no re-encoding: fast, but each clip starts "
                        "at the keyframe at or before its start (up to a few seconds early); default: exact cuts, "
                        "re-encoded with libx264")
    parser.add_argument("--crop-bars", action="store_true", help="cut away the black bars the picture step found "
                        "(its crop_* columns) before scaling; not with --copy")
    parser.add_argument("--clips-per-task", type=int, default=100, help="clips per Dask task (and per WebDataset "
                        "shard); the unit of resumption (default: 100)")
    parser.add_argument("--scheduler", metavar="ADDRESS", help="existing Dask scheduler (default: "
                        "$DASK_SCHEDULER_ADDRESS, else a local cluster)")
    parser.add_argument("--workers", type=int, help="local cluster worker processes (default: one per core)")
    parser.add_argument("--memory-limit", default="auto", help="memory limit per local worker (default: auto)")


def main(args: argparse.Namespace) -> int:
    from curate.runner import start_client

    from curate.cluster import check_cluster_options
    from curate.rundir import curated_shards

    check_cluster_options(args.workers, memory_limit=args.memory_limit)
    ExportOptions(format=args.format, resolution=args.resolution, fps=args.fps, copy=args.copy,
                  crop_bars=args.crop_bars).check()
    curated_shards(args.run)  # a missing or empty RUN is refused before a cluster starts
    with start_client(args.scheduler, args.workers, args.memory_limit) as client:
        manifest = export_clips(args.run, args.out, client=client, format=args.format, resolution=args.resolution,
                                fps=args.fps, copy=args.copy, clips_per_task=args.clips_per_task,
                                crop_bars=args.crop_bars)
    statuses = manifest["status"].to_pylist()
    print(f"exported {statuses.count('ok')} clips, {statuses.count('error')} errors: {Path(args.out).resolve()} "
          f"(manifest.parquet lists every clip and error)")
    return 0
