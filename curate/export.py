"""Export: cut the curated clips into media files, one mp4 per clip or WebDataset tar shards, as Dask tasks.

    curate export runs/demo --out exports/demo                                  # DIR/clips/<clip_id>.mp4, exact cuts
    curate export runs/demo --out exports/wds --format webdataset --resolution 256 --fps 8
    curate export runs/demo --out exports/fast --copy                           # stream copy, keyframe-snapped

    from curate.export import export_clips
    from curate.runner import start_client
    with start_client(workers=2) as client:
        manifest = export_clips("runs/demo", "exports/demo", client=client)    # one row per clip: ok or error

The input is a run folder (its last complete step: the ``write`` step's shards), or a folder of Parquet shards.
The cutting itself is ``curate.video.cut``; this module is the job (tasks, files, manifest, resume) and its command.
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
from pathlib import Path
from typing import Any, Literal

from curate.errors import CurateError, VideoReadError
from curate.video.cut import Cut, copy_clip, cut_clip

#: A clip_id that may name a file: lowercase hex and underscores (``<video_id>_<start_frame>_<end_frame>``).
CLIP_ID = re.compile(r"[0-9a-f][0-9a-f_]{0,89}")  # fullmatch; <= 90 characters fits a tar (USTAR) member name
SPAN_COLUMNS = ("clip_index", "start_s", "end_s", "duration_s", "start_frame", "end_frame")
SOURCE_COLUMNS = ("video_id", "video_path", "video_stream", "container", "codec", "width", "height",
                  "display_width", "display_height", "sample_aspect_ratio", "rotation", "fps", "nominal_fps",
                  "video_duration_s", "video_frames", "has_audio", "size_bytes", "video_streams")
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


# -------------------------------------------------------------------------------------------- options
def parse_resolution(text: str | None) -> tuple[int, int] | int | None:
    """``"320x240"`` -> (320, 240) (width, height); ``"256"`` -> 256 (short side); None -> None."""
    if text is None or text == "":
        return None
    match = re.fullmatch(r"\s*(\d+)\s*(?:[xX]\s*(\d+))?\s*", str(text))
    if not match or int(match.group(1)) < 2 or (match.group(2) and int(match.group(2)) < 2):
        raise ExportError(f"--resolution {text!r}: give WxH (e.g. 320x240: scaled to cover, centre-cropped) or a "
                          f"short side in pixels (e.g. 256), at least 2")
    return (int(match.group(1)), int(match.group(2))) if match.group(2) else int(match.group(1))


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
