"""What runs on a Dask worker: one shard of one step, read from Parquet, processed, written atomically.

    from curate.tasks import run_shard
    stats = run_shard("part-00000", None, stage, "split-1a2b", "split", "RUN/01_ingest/data", "RUN/02_split")
    stats["outputs"]      # the data shards it wrote: ["part-00000"], or its pieces ["part-00000-0000", ...]

The runner (``curate.runner``) submits these tasks; this module holds no scheduling logic. A row whose processing
raises is that row's error, never the shard's (``contained_process``); ``try_row`` runs one row alone, for the
runner to find a row that kills its worker. A worker keeps each
step's set-up stage (its models) from the first shard to the step's end (``release_stage``), so interleaved
steps of a streaming run do not reload their models shard after shard.
"""

from __future__ import annotations

import gc
import logging
import math
import os
import re
import socket
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Mapping, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from curate.rundir import StageDir, atomic_write_json, atomic_write_parquet, read_shard
from curate.errors import error_message
from curate.sharding import ShardBudget, ShardPlace, ShardSlice, shard_policy
from curate.stage import Stage, StageOutput

log = logging.getLogger("curate")

#: Columns every rejected row carries on top of the columns of the stage's input (or output, for splitters).
REJECT_COLUMNS: dict[str, pa.DataType] = {"reject_stage": pa.string(), "reject_reason": pa.string(),
                                          "reject_detail": pa.string()}


def runner_reasons(step: str) -> tuple[str, str]:
    """The reasons the runner gives rejected rows of any step: ``<step>_error`` (the row raised, and the stage has no
    error column, ``error_column``) and ``<step>_worker_crashed`` (the row alone killed its worker twice)."""
    return f"{step}_error", f"{step}_worker_crashed"


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
            tables[piece.shard] = read_shard(in_dir / f"{piece.shard}.parquet")
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


def partitions(table: pa.Table, column: str | None) -> list[tuple[str, pa.Table]]:
    """(folder prefix, rows) per value of ``column``, values sorted: ``("bucket=B/", rows without the column)``;
    ``[("", table)]`` without a column or without rows (an empty shard keeps the schema, column included)."""
    if column is None or table.num_rows == 0:
        return [("", table)]
    values = table[column].to_pylist()
    bad = sorted({str(v) for v in values if v is None or not _PARTITION_VALUE.fullmatch(v)})
    if bad:
        raise ValueError(f"partition column {column!r} has values that cannot name a folder: {bad[:5]} (allowed: "
                         f"letters, digits, '.', '_', '-')")
    rest = table.drop_columns([column])
    out = []
    for value in sorted(set(values)):
        rows = rest.filter(pa.array([v == value for v in values], pa.bool_()))
        out.append((f"{column}={value}/", rows))
    return out


_PARTITION_VALUE = re.compile(r"[A-Za-z0-9._-]+")


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


def read_input(in_dir: str, shard: str, slices: Sequence[ShardSlice] | None) -> pa.Table:
    """The input rows of one unit: the input shard of the same name, or ``slices`` of the input shards."""
    return read_shard(Path(in_dir) / f"{shard}.parquet") if slices is None else read_slices(Path(in_dir), slices)


def run_shard(
    shard: str,
    slices: Sequence[ShardSlice] | None,
    stage: Stage,
    setup_key: str,
    step: str,
    in_dir: str,
    out_dir: str,
    budget: ShardBudget | None = None,
    *,
    crashed: Mapping[int, str] | None = None,
) -> dict:
    """Process one shard and write its outputs atomically, then its done marker; return the marker's content.

    The input is the input shard of the same name, or, for a stage that plans its own shards, ``slices``. The
    kept rows are cut into pieces within ``budget`` (each a data shard, see ``output_names``); rejected rows and
    extra tables stay one file per shard. A row whose processing raises becomes that row's error and the other
    rows go on (``contained_process``). ``crashed``: rows (by position in the input) whose own task killed a
    worker, with what is known of the death: they are rejected as ``<step>_worker_crashed`` and never processed,
    and the other rows are processed one at a time (each alone was shown to be safe).
    """
    started = time.time()
    stage = ready_stage(stage, setup_key)
    table = read_input(in_dir, shard, slices)
    place = ShardPlace(Path(out_dir), shard)
    start, cpu_start = time.perf_counter(), time.process_time()
    if crashed is None:
        outputs = contained_process(stage, step, table, place)
    else:
        outputs = [out for i in range(table.num_rows) for out in (
            [_rejected_output(table.slice(i, 1), f"{step}_worker_crashed", crashed[i])] if i in crashed
            else contained_process(stage, step, table.slice(i, 1), place))]
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start

    added = stage.columns_added(table.column_names)
    out = merge_outputs(outputs, table.schema, added)
    expected = list(table.column_names) + [c for c in added if c not in table.column_names]
    missing = [c for c in expected if c not in out.kept.column_names]
    if missing:
        raise RuntimeError(f"stage {step!r} did not produce its declared columns {missing}")
    kept = out.kept
    reject_schema = pa.schema(list(kept.schema) + [pa.field(n, t) for n, t in REJECT_COLUMNS.items()])
    rejected = out.rejected if out.rejected is not None else reject_schema.empty_table()
    rejected = conform(rejected, reject_schema)
    at = rejected.column_names.index("reject_stage")
    rejected = rejected.set_column(at, "reject_stage", pc.fill_null(rejected["reject_stage"], step))

    folder = StageDir(Path(out_dir))
    names = []
    for prefix, rows in partitions(kept, out.partition_by):
        pieces = cut_by_budget(rows, budget)
        for name, piece in zip(output_names(shard, len(pieces)), pieces):
            atomic_write_parquet(folder.data_file(prefix + name), piece)
            names.append(prefix + name)
    atomic_write_parquet(folder.rejected / f"{shard}.parquet", rejected)
    for name, extra in out.extras.items():
        atomic_write_parquet(folder.extra_file(name, shard), extra)
    stats = {
        "rows_in": table.num_rows,
        "rows_kept": kept.num_rows,
        "rows_rejected": rejected.num_rows,
        "rejected_by_reason": dict(Counter(rejected["reject_reason"].to_pylist())),
        "errors": _error_counts(kept, added),
        "error_messages": _error_messages(kept, rejected, added, step),
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


def try_row(shard: str, slices: Sequence[ShardSlice] | None, stage: Stage, setup_key: str, step: str, in_dir: str,
            out_dir: str, row: int) -> None:
    """Process row ``row`` of a unit alone and write nothing: the runner's probe for a row that may kill its
    worker (a segfault in native code, the memory limit). Returning at all is the answer; an exception is
    contained as the row's error later (``run_shard``), so it is no crash. While the row runs, a marker file
    (``probe_markers``) says so: one left behind means this process died running the row, not merely while the
    row waited on it."""
    stage = ready_stage(stage, setup_key)
    table = read_input(in_dir, shard, slices).slice(row, 1)
    marker = probe_folder(out_dir, shard) / f"row{row}.{os.getpid()}"
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()
    contained_process(stage, step, table, ShardPlace(Path(out_dir), shard))
    marker.unlink()


def probe_folder(out_dir: str | Path, shard: str) -> Path:
    """Where the probes of a unit's rows leave their markers (``try_row``)."""
    return Path(out_dir) / "probes" / shard


def probe_markers(out_dir: str | Path, shard: str, row: int) -> list[Path]:
    """Markers of the probes of ``row`` whose process died while running it."""
    return sorted(probe_folder(out_dir, shard).glob(f"row{row}.*"))


def contained_process(stage: Stage, step: str, table: pa.Table, place: ShardPlace) -> list[StageOutput]:
    """``shard_policy(stage).process`` (``stage.process(table)`` for most stages); if it raises, each row alone,
    so that only the rows that raise fail.

    A row that raises becomes an error row (``error_output``); the outputs of the rows are returned in row order
    (a stage's output for a table is its outputs for consecutive pieces of it, concatenated: the runner cuts the
    input into shards on that promise too).
    """
    try:
        return [shard_policy(stage).process(stage, table, place)]
    except Exception as whole:  # noqa: BLE001 - any failure: find the rows that raise, the others go on
        if table.num_rows <= 1:
            log.debug("step %s: a row failed: %s", step, error_message(whole), exc_info=True)
            return [error_output(stage, step, table, error_message(whole))]
        log.debug("step %s: a shard of %d rows failed (%s): processing its rows one at a time", step,
                  table.num_rows, error_message(whole))
    return [out for i in range(table.num_rows) for out in contained_process(stage, step, table.slice(i, 1), place)]


class ErrorOutput(StageOutput):
    """The output the runner makes for rows that failed (not the stage's own)."""


def error_output(stage: Stage, step: str, rows: pa.Table, message: str) -> StageOutput:
    """``rows`` failed with ``message``: kept with null added columns (NaN scores) and the message in the stage's
    error column (``error_column``) when it declares one; otherwise rejected as ``<step>_error``."""
    added = stage.columns_added(rows.column_names)
    column = error_column(stage.name, added)
    if column is None:
        return _rejected_output(rows, f"{step}_error", message)
    values = {name: [math.nan if pa.types.is_floating(kind) else None] * rows.num_rows
              for name, kind in added.items()}
    values[column] = [message] * rows.num_rows
    return ErrorOutput(kept=stage.with_columns(rows, values))


def error_column(name: str, added: Mapping[str, pa.DataType]) -> str | None:
    """The column that holds a row's error among the columns a stage adds: ``<stage name>_error``, else its only
    ``*_error`` column (the CLIP step ``clip_score`` keeps ``clip_error``); None: it has none."""
    if f"{name}_error" in added:
        return f"{name}_error"
    errors = [c for c in added if c.endswith("_error")]
    return errors[0] if len(errors) == 1 else None


def _rejected_output(rows: pa.Table, reason: str, detail: str) -> StageOutput:
    rejected = rows.append_column(pa.field("reject_reason", pa.string()), pa.array([reason] * rows.num_rows))
    rejected = rejected.append_column(pa.field("reject_detail", pa.string()), pa.array([detail] * rows.num_rows))
    return ErrorOutput(kept=rows.slice(0, 0), rejected=rejected)


def merge_outputs(outputs: Sequence[StageOutput], input_schema: pa.Schema, added: Mapping[str, pa.DataType]
                  ) -> StageOutput:
    """One ``StageOutput`` from the outputs of consecutive pieces of a shard, in order. Kept rows take the schema
    of the first piece the stage itself produced (error rows have no say), else the input's plus ``added``."""
    if len(outputs) == 1 and not isinstance(outputs[0], ErrorOutput):
        return outputs[0]
    own = [o for o in outputs if not isinstance(o, ErrorOutput)]
    schema = own[0].kept.schema if own else pa.schema(
        [f for f in input_schema if f.name not in added] + [pa.field(n, t) for n, t in added.items()])
    kept = pa.concat_tables([conform(o.kept, schema) for o in outputs])
    reject_schema = pa.schema(list(schema) + [pa.field(n, t) for n, t in REJECT_COLUMNS.items()])
    rejected = [conform(o.rejected, reject_schema) for o in outputs if o.rejected is not None]
    extras: dict[str, list[pa.Table]] = {}
    for o in outputs:
        for name, extra in o.extras.items():
            extras.setdefault(name, []).append(extra)
    return StageOutput(
        kept=kept,
        rejected=pa.concat_tables(rejected) if rejected else None,
        extras={name: pa.concat_tables([conform(t, tables[0].schema) for t in tables])
                for name, tables in extras.items()},
        video_seconds=sum(o.video_seconds for o in outputs),
    )


def _error_counts(kept: pa.Table, added) -> dict[str, int]:
    """Rows of each ``*_error`` column the stage added that hold an error (a per-clip failure kept as data)."""
    return {c: kept.num_rows - kept[c].null_count for c in added if c.endswith("_error") and c in kept.column_names}


#: Messages of errored rows kept per shard in its done marker (the most common first), for the step's error budget.
ERROR_MESSAGES_PER_SHARD = 5


def _error_messages(kept: pa.Table, rejected: pa.Table, added, step: str) -> dict[str, int]:
    """The most common messages of this shard's errored rows: ``*_error`` values and runner rejects' details."""
    messages: Counter = Counter()
    for c in added:
        if c.endswith("_error") and c in kept.column_names:
            messages.update(m for m in kept[c].to_pylist() if m is not None)
    runner = set(runner_reasons(step))
    for reason, detail in zip(rejected["reject_reason"].to_pylist(), rejected["reject_detail"].to_pylist()):
        if reason in runner:
            messages[detail or reason] += 1
    return {m[:300]: n for m, n in messages.most_common(ERROR_MESSAGES_PER_SHARD)}
