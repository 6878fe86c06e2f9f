"""The run directory: one folder per stage, every file written atomically.

    RUN/00_inputs/data/part-00000.parquet      the input manifest (one row per input video), sharded
    RUN/01_ingest/config.json                  the exact parameters the stage ran with (+ its upstream chain)
    RUN/01_ingest/data/part-00000.parquet      rows kept
    RUN/01_ingest/rejected/part-00000.parquet  rows rejected: same columns + reject_stage, reject_reason, reject_detail
    RUN/01_ingest/done/part-00000.json         shard done marker, holding that shard's stats
    RUN/01_ingest/stats.json                   written last: rows in/kept/rejected by reason, seconds, video seconds
    RUN/02_split/videos/part-00000.parquet     extra tables a stage writes (split: raw cuts per video)
    RUN/07_write/data/bucket=B/part-00000.parquet  a step that partitions its rows (write with buckets): one
                                               folder per value, hive-style (the value is in the path only)
    RUN/07_write/plan.json                     output shards as slices of input shards (a step that re-shards)
    RUN/07_write/dataset.json                  files a step writes once all its shards are done (write: the card)

A shard's files are written to a temporary name and renamed, then its done marker is written the same way:
a killed run leaves at most a shard without marker, which a relaunch redoes from scratch (same file names, so
nothing is duplicated). A stage is complete when its ``stats.json`` exists.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterator, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from curate.errors import CurateError

INPUTS_DIR = "00_inputs"


def output_folder(path: str, flag: str = "--out") -> str:
    """``path`` as a local folder path (a ``file://`` URL loses its scheme); any other URL is refused.

    Run, export and report folders are written with fsync and atomic renames, and resumed by what those renames
    left: object storage has neither, so such a folder must be on a filesystem (local, or shared by every worker:
    NFS, Lustre, EFS, ...). Inputs may be URLs.
    """
    if "://" not in path:
        return path
    if path.startswith("file://"):
        return path[len("file://"):]
    raise CurateError(
        f"{flag} {path}: curate writes its folders on a filesystem (each file is written to a temporary name, "
        f"fsynced and renamed, and a relaunch resumes from what is there), which object storage cannot do. Give a "
        f"local or shared filesystem path (every worker must see it); inputs may stay URLs. To publish the result, "
        f"copy the finished folder, e.g. `aws s3 sync RUN/07_write s3://bucket/dataset/`"
    )


def atomic_write_bytes(path: Path, data: bytes) -> None:
    _write_atomically(Path(path), lambda f: f.write(data))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode())


def atomic_write_parquet(path: Path, table: pa.Table) -> None:
    _write_atomically(Path(path), lambda f: pq.write_table(table, f, compression="zstd"))


@contextlib.contextmanager
def atomic_parquet_writer(path: Path, schema: pa.Schema, compression: str = "zstd") -> Iterator[pq.ParquetWriter]:
    """A ``ParquetWriter`` for tables written one by one (split's kept frames, video by video), made atomic as
    ``atomic_write_parquet``: the file appears at ``path`` complete and on disk when the block ends, never in part;
    an exception in the block leaves no file."""
    with _atomic_file(Path(path)) as f, pq.ParquetWriter(f, schema, compression=compression) as writer:
        yield writer


def _write_atomically(path: Path, write) -> None:
    """``write(file)`` into a temporary name next to ``path`` (``_atomic_file``)."""
    with _atomic_file(path) as f:
        write(f)


@contextlib.contextmanager
def _atomic_file(path: Path) -> Iterator[BinaryIO]:
    """A file open for writing at a temporary name next to ``path``; when the block ends it is fsynced (on disk
    before the rename, and before any done marker that follows it), then renamed to ``path``. A block that fails (a
    full disk) removes the temporary file; one killed midway leaves it, and the next launch removes it
    (``remove_temp_files``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


#: The temporary files ``_write_atomically`` makes: ``.<name>.<32 hex digits>.tmp``.
TEMP_FILE = re.compile(r"\..+\.[0-9a-f]{32}\.tmp")


def remove_temp_files(folder: Path) -> int:
    """Remove the temporary files a killed launch left anywhere under ``folder``; return how many. Only for a
    folder no process writes in (a run whose lock this process holds)."""
    removed = 0
    for path in Path(folder).rglob("*.tmp"):
        if TEMP_FILE.fullmatch(path.name) and path.is_file():
            path.unlink(missing_ok=True)
            removed += 1
    return removed


#: Free space a run needs on its folder's filesystem to start; ``$CURATE_MIN_FREE_SPACE`` (e.g. 500MB, 0) changes it.
MIN_FREE_SPACE = "1GB"


class DiskSpaceError(CurateError):
    """Too little free space to start writing a folder; the message says how much is free and what is needed."""


def check_free_space(folder: Path, minimum: str | int | None = None) -> int:
    """Refuse to start writing ``folder`` when its filesystem has less than ``minimum`` bytes free (default
    ``$CURATE_MIN_FREE_SPACE``, else ``MIN_FREE_SPACE``): a run that fills the disk fails midway, on whatever
    write comes first. Returns the free bytes."""
    from dask.utils import format_bytes, parse_bytes

    setting = minimum if minimum is not None else os.environ.get("CURATE_MIN_FREE_SPACE", MIN_FREE_SPACE)
    try:
        needed = parse_bytes(setting)
    except (ValueError, TypeError):
        raise DiskSpaceError(f"CURATE_MIN_FREE_SPACE={setting!r}: give a size such as 500MB or 2GB (0: no check)") \
            from None
    existing = Path(folder).absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    free = shutil.disk_usage(existing).free
    if free < needed:
        raise DiskSpaceError(f"{folder}: only {format_bytes(free)} free on its filesystem; a run needs at least "
                             f"{format_bytes(needed)} to start. Free some space, give another --out, or set "
                             f"CURATE_MIN_FREE_SPACE (e.g. 200MB; 0: no check)")
    return free


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def shard_name(index: int) -> str:
    return f"part-{index:05d}"


@dataclass(frozen=True)
class StageDir:
    """Paths of one stage's folder in a run."""

    path: Path

    @property
    def name(self) -> str:
        """Step name without its number: ``02_split`` -> ``split``."""
        return self.path.name.split("_", 1)[1]

    @property
    def data(self) -> Path:
        return self.path / "data"

    @property
    def rejected(self) -> Path:
        return self.path / "rejected"

    @property
    def done(self) -> Path:
        return self.path / "done"

    @property
    def config_file(self) -> Path:
        return self.path / "config.json"

    @property
    def stats_file(self) -> Path:
        return self.path / "stats.json"

    @property
    def plan_file(self) -> Path:
        """Output shards as slices of input shards, for a step that plans its own (``ShardPolicy.plan_shards``)."""
        return self.path / "plan.json"

    def data_file(self, shard: str) -> Path:
        return self.data / f"{shard}.parquet"

    def extra_file(self, table_name: str, shard: str) -> Path:
        return self.path / table_name / f"{shard}.parquet"

    def shards(self) -> list[str]:
        """Names of the data shards present, sorted: ``part-00000``, or ``bucket=B/part-00000`` in a partition
        folder (``data_file`` of the name is the file either way)."""
        return [str(f.relative_to(self.data).with_suffix("")) for f in data_files(self.data)]

    def is_done(self, shard: str) -> bool:
        return (self.done / f"{shard}.json").is_file()

    def shard_stats(self) -> dict[str, dict]:
        if not self.done.is_dir():
            return {}
        return {p.stem: read_json(p) for p in sorted(self.done.glob("part-*.json"))}

    def has_column(self, column: str) -> bool:
        """Whether the step's data shards have ``column`` (read from the first shard's schema; False without data)."""
        files = data_files(self.data)
        return bool(files) and (column in pq.read_schema(files[0]).names or column in partition_values(files[0]))

    def is_complete(self) -> bool:
        return self.stats_file.is_file()

    def config(self) -> dict | None:
        return read_json(self.config_file) if self.config_file.is_file() else None

    def stats(self) -> dict | None:
        return read_json(self.stats_file) if self.stats_file.is_file() else None

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def stage_dirs(run: Path) -> list[StageDir]:
    """The stage folders of a run, in pipeline order (``00_inputs`` excluded)."""
    run = Path(run)
    if not run.is_dir():
        return []
    return [StageDir(p) for p in sorted(run.iterdir()) if p.is_dir() and p.name[:2].isdigit() and p.name != INPUTS_DIR]


def stage_dir(run: Path, index: int, name: str) -> StageDir:
    return StageDir(Path(run) / f"{index:02d}_{name}")


def find_stage(run: Path, name: str) -> StageDir:
    """The folder of step ``name`` in ``run``; the error lists the steps the run has."""
    dirs = stage_dirs(run)
    for d in dirs:
        if d.name == name:
            return d
    have = ", ".join(d.name for d in dirs) or "none"
    raise FileNotFoundError(f"run {run} has no stage {name!r} (stages in this run: {have})")


def data_files(folder: str | os.PathLike) -> list[Path]:
    """The ``part-*.parquet`` shards of a data folder, those in hive-style partition folders included
    (``data/bucket=B/part-00000.parquet``, what the write step makes with buckets), sorted by path."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(folder.glob("part-*.parquet")) + sorted(folder.glob("*=*/part-*.parquet"))


def partition_values(path: str | os.PathLike) -> dict[str, str]:
    """The hive partition a shard lies in, from its folder's name: ``{"bucket": "B"}`` for ``.../bucket=B/x.parquet``,
    else ``{}``."""
    parent = Path(path).parent.name
    if "=" not in parent:
        return {}
    key, value = parent.split("=", 1)
    return {key: value}


def read_shard(path: str | os.PathLike, columns: Sequence[str] | None = None) -> pa.Table:
    """One Parquet shard, with the column of the partition it lies in (``partition_values``: a string column, as
    ``pyarrow.dataset.dataset(folder, partitioning="hive")`` reads it) when asked for or when ``columns`` is None."""
    parts = partition_values(path)
    wanted = None if columns is None else [c for c in columns if c not in parts]
    table = pq.read_table(path, columns=wanted)
    for key, value in parts.items():
        if key not in table.column_names and (columns is None or key in columns):
            table = table.append_column(pa.field(key, pa.string()), pa.array([value] * table.num_rows, pa.string()))
    return table


def read_parquet_dir(folder: Path, columns: list[str] | None = None) -> pa.Table | None:
    """All shards of a data folder (``data_files``) as one table (None when there are none)."""
    files = data_files(folder)
    if not files:
        return None
    tables = [read_shard(f, columns=columns) for f in files]
    return pa.concat_tables(tables, promote_options="permissive")


def curated_shards(path: str | os.PathLike) -> list[Path]:
    """The Parquet files a reader of curated clips (export, ClipDataset, generate) should read from ``path``.

    ``path`` is a ``.parquet`` file, a folder of shards (e.g. ``RUN/07_write/data``), a step folder
    (``RUN/07_write``: its ``data``), or a run folder: then the data of its last complete step (the ``write`` step
    when the pipeline ends with one). A complete step that kept nothing still has one empty shard.
    """
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such file or folder (give curated shards, e.g. RUN/07_write/data, "
                                f"or a run folder)")
    for folder in (path, path / "data"):
        files = sorted(folder.glob("*.parquet")) or data_files(folder)
        if files:
            return files
    complete = [d for d in stage_dirs(path) if d.is_complete()]
    if complete:
        return sorted(complete[-1].data.glob("*.parquet")) or data_files(complete[-1].data)
    raise FileNotFoundError(f"{path}: no Parquet shards here (expected a run folder with a complete step, a folder "
                            f"of .parquet files, or a .parquet file; an unfinished run: see curate status)")


#: Caption columns of curated clips, most preferred first: the summary step's merged ``caption``, then the
#: single-model ones. What export, ClipDataset and generate use when not told which.
CAPTION_COLUMNS = ("caption", "caption_video", "caption_image")


def caption_column(columns: Sequence[str], wanted: str | None = None) -> str | None:
    """The caption column to use: ``wanted`` (checked), else the best of ``CAPTION_COLUMNS`` present, else None."""
    if wanted is not None:
        if wanted not in columns:
            raise CurateError(f"caption column {wanted!r} is not in the shards; their columns: {', '.join(columns)}")
        return wanted
    return next((c for c in CAPTION_COLUMNS if c in columns), None)
