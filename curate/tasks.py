"""What runs on a Dask worker: one shard of one step, read from Parquet, processed, written atomically.

    from curate.tasks import run_shard
    stats = run_shard("part-00000", None, stage, "split-1a2b", "split", "RUN/01_ingest/data", "RUN/02_split")
    stats["outputs"]      # the data shards it wrote: ["part-00000"], or its pieces ["part-00000-0000", ...]

The runner (``curate.runner``) submits these tasks; this module holds no scheduling logic. A worker keeps each
step's set-up stage (its models) from the first shard to the step's end (``release_stage``), so interleaved
steps of a streaming run do not reload their models shard after shard.
"""

from __future__ import annotations

import gc
import math
import os
import socket
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from curate.rundir import StageDir, atomic_write_json, atomic_write_parquet
from curate.stage import REJECT_COLUMNS, ShardBudget, ShardPlace, ShardSlice, Stage, StageOutput

_READY: dict[str, Stage] = {}  # per worker process: set-up stages by setup key (step name + config fingerprint)


def ready_stage(stage: Stage, key: str) -> Stage:
    """The worker's set-up copy of a step's stage: ``setup()`` runs once per worker and step."""
    if key not in _READY:
        stage.setup()
        _READY[key] = stage
    return _READY[key]


def release_stage(key: str) -> bool:
    """Drop a finished step's stage (and the models it holds) from this worker; True if it held one."""
    held = _READY.pop(key, None) is not None
    if held:
        gc.collect()
        # only if this process made a CUDA context (a task thread may be importing torch right now: never import
        # it here, nor touch a half-imported module)
        cuda = sys.modules.get("torch.cuda")
        if cuda is not None and getattr(cuda, "is_initialized", lambda: False)():
            cuda.empty_cache()
    return held


def worker_name() -> str:
    """This worker's name (``cpu-0``, ``gpu-0`` on the embedded cluster), else host:pid."""
    try:
        from distributed import get_worker

        return str(get_worker().name)
    except ValueError:  # not on a Dask worker (tests calling run_shard directly)
        return f"{socket.gethostname()}:{os.getpid()}"


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with exactly the fields of ``schema`` (missing ones as nulls), in that order."""
    columns = []
    for field in schema:
        if field.name in table.column_names:
            columns.append(table[field.name].cast(field.type))
        else:
            columns.append(pa.nulls(table.num_rows, field.type))
    return pa.Table.from_arrays(columns, schema=schema)


def read_slices(in_dir: Path, slices: Sequence[ShardSlice]) -> pa.Table:
    """The rows of ``slices`` of the input shards, in order, as one table (each input file read once)."""
    tables: dict[str, pa.Table] = {}
    parts = []
    for piece in slices:
        if piece.shard not in tables:
            tables[piece.shard] = pq.read_table(in_dir / f"{piece.shard}.parquet")
        parts.append(tables[piece.shard].slice(piece.offset, piece.length))
    return pa.concat_tables(parts, promote_options="permissive")


def cut_by_budget(table: pa.Table, budget: ShardBudget | None) -> list[pa.Table]:
    """Consecutive pieces of ``table``, each within ``budget``: at most ``rows`` rows and, when the table has a
    ``duration_s`` column, at most ``seconds`` seconds of it (a row longer than that is a piece of its own).
    Always at least one piece (an empty table stays one empty piece), rows in order."""
    if budget is None or table.num_rows == 0:
        return [table]
    durations = table["duration_s"].to_pylist() if "duration_s" in table.column_names else [0.0] * table.num_rows
    pieces, start, seconds = [], 0, 0.0
    for i, duration in enumerate(durations):
        duration = 0.0 if duration is None or math.isnan(duration) else float(duration)
        full = (budget.rows is not None and i - start >= budget.rows) or (
            budget.seconds is not None and i > start and seconds + duration > budget.seconds)
        if full:
            pieces.append(table.slice(start, i - start))
            start, seconds = i, 0.0
        seconds += duration
    pieces.append(table.slice(start))
    return pieces


def output_names(shard: str, count: int) -> list[str]:
    """Data shard names of a shard cut into ``count`` pieces: its own name when it is one piece."""
    return [shard] if count == 1 else [f"{shard}-{i:04d}" for i in range(count)]


async def import_modules(names: Sequence[str]) -> None:
    """Import ``names`` in this worker, on a thread so that the worker keeps answering (``client.run(...,
    wait=False)`` takes coroutines only; see ``curate.runner._warm_workers``)."""
    import asyncio

    await asyncio.get_running_loop().run_in_executor(None, import_each, list(names))


def import_each(names: Sequence[str]) -> None:
    """Import every module of ``names``; one that fails is left to the task that needs it, which reports the error
    with its shard."""
    import importlib

    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001, S112 - the shard's own import raises it again where it is reported
            continue


def run_shard(
    shard: str,
    slices: Sequence[ShardSlice] | None,
    stage: Stage,
    setup_key: str,
    step: str,
    in_dir: str,
    out_dir: str,
    budget: ShardBudget | None = None,
) -> dict:
    """Process one shard and write its outputs atomically, then its done marker; return the marker's content.

    The input is the input shard of the same name, or, for a stage that plans its own shards, ``slices``. The
    kept rows are cut into pieces within ``budget`` (each a data shard, see ``output_names``); rejected rows and
    extra tables stay one file per shard.
    """
    started = time.time()
    stage = ready_stage(stage, setup_key)
    table = pq.read_table(Path(in_dir) / f"{shard}.parquet") if slices is None else read_slices(Path(in_dir), slices)
    start, cpu_start = time.perf_counter(), time.process_time()
    out: StageOutput = stage.process_shard(table, ShardPlace(Path(out_dir), shard))
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start

    added = stage.columns_added(table.column_names)
    expected = list(table.column_names) + [c for c in added if c not in table.column_names]
    missing = [c for c in expected if c not in out.kept.column_names]
    if missing:
        raise RuntimeError(f"stage {step!r} did not produce its declared columns {missing}")
    kept = out.kept
    reject_schema = pa.schema(list(kept.schema) + [pa.field(n, t) for n, t in REJECT_COLUMNS.items()])
    rejected = out.rejected if out.rejected is not None else reject_schema.empty_table()
    if "reject_stage" not in rejected.column_names:
        rejected = rejected.append_column("reject_stage", pa.array([step] * rejected.num_rows, pa.string()))
    rejected = conform(rejected, reject_schema)

    folder = StageDir(Path(out_dir))
    pieces = cut_by_budget(kept, budget)
    names = output_names(shard, len(pieces))
    for name, piece in zip(names, pieces):
        atomic_write_parquet(folder.data_file(name), piece)
    atomic_write_parquet(folder.rejected / f"{shard}.parquet", rejected)
    for name, extra in out.extras.items():
        atomic_write_parquet(folder.extra_file(name, shard), extra)
    stats = {
        "rows_in": table.num_rows,
        "rows_kept": kept.num_rows,
        "rows_rejected": rejected.num_rows,
        "rejected_by_reason": dict(Counter(rejected["reject_reason"].to_pylist())),
        "errors": _error_counts(kept, added),
        "seconds": round(seconds, 4),
        "cpu_seconds": round(cpu_seconds, 4),  # every thread of this worker process: the stage's and Dask's own
        "video_seconds": round(float(out.video_seconds), 4),
        "counts": dict(out.counts),
        "outputs": names,
        "worker": worker_name(),
        "started_at": round(started, 3),
        "finished_at": round(time.time(), 3),
    }
    atomic_write_json(folder.done / f"{shard}.json", stats)
    return stats


def _error_counts(kept: pa.Table, added) -> dict[str, int]:
    """Rows of each ``*_error`` column the stage added that hold an error (a per-clip failure kept as data)."""
    return {c: kept.num_rows - kept[c].null_count for c in added if c.endswith("_error") and c in kept.column_names}
