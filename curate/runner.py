"""Run a pipeline (a list of steps) over Parquet shards, one stage after the other, as Dask jobs.

    from curate.runner import Step, run_pipeline, start_client
    from curate.stages.ingest import Ingest
    from curate.stages.split import Split

    steps = [Step("ingest", Ingest(inputs=["videos/"])), Step("split", Split())]
    with start_client(workers=2) as client:
        run_pipeline(steps, "runs/demo", client)

For each step the runner:
1. checks, before any work, that every step finds the columns it reads (``check_chain``);
2. skips the step if its folder holds a complete run with the same config and the same upstream;
   a changed config (or upstream) re-runs it and removes the folders of every later step;
3. runs ``stage.fit`` on the client (whole-dataset facts such as percentiles), then ``stage.process`` on each
   shard not yet done, on the Dask workers, where ``stage.setup`` ran once per worker process. Output shard i is
   input shard i, unless the stage plans its own output shards from slices of the input (``plan_shards``);
4. runs ``stage.finish`` on the client, then writes ``stats.json``, once every shard is done.
A shard that raises fails the step after the other shards finished; relaunching the same command retries only
the shards without a done marker.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import logging
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from curate.rundir import (
    INPUTS_DIR,
    StageDir,
    atomic_write_json,
    atomic_write_parquet,
    read_json,
    shard_name,
    stage_dir,
    stage_dirs,
)
from curate.stage import REJECT_COLUMNS, ShardSlice, Stage, StageOutput

log = logging.getLogger("curate")


class PipelineError(Exception):
    """A pipeline that cannot run as configured; the message says what to change."""


class StageFailed(Exception):
    """Some shards of a stage raised; finished shards are kept and a relaunch retries the others."""


@dataclass(frozen=True)
class Step:
    """One entry of a pipeline: a step name (the stage folder name) and a configured stage."""

    name: str
    stage: Stage


# --------------------------------------------------------------------------------------------- validation
def check_chain(steps: Sequence[Step], available: Sequence[str] = ("video_path",)) -> list[list[str]]:
    """Check every step finds the columns it reads; return the columns available after each step.

    ``available`` are the columns of the first step's input (the manifest has ``video_path``).
    """
    names = [s.name for s in steps]
    dupes = sorted(n for n, c in Counter(names).items() if c > 1)
    if dupes:
        raise PipelineError(f"step names must be unique, got {dupes} twice: name the second one differently")
    columns = list(available)
    after: list[list[str]] = []
    provided_by: dict[str, str] = {c: "input" for c in columns}
    for step in steps:
        missing = [c for c in step.stage.reads if c not in columns]
        if missing:
            raise PipelineError(
                f"step {step.name!r} ({type(step.stage).__name__}) reads {missing}, which no earlier step adds "
                f"(available: {columns}); put a stage that adds them before it in the pipeline"
            )
        for column in step.stage.columns_added(columns):
            if column not in columns:
                columns.append(column)
                provided_by[column] = step.name
        after.append(list(columns))
    return after


def step_config(step: Step, upstream: str) -> dict:
    """What ``config.json`` records: stage class, step name, parameters and a fingerprint of what ran before."""
    return {
        "step": step.name,
        "stage": f"{type(step.stage).__module__}.{type(step.stage).__qualname__}",
        "params": json.loads(json.dumps(step.stage.params(), default=str)),
        "upstream": upstream,
    }


def fingerprint(config: dict | None) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------------------------- the client
@contextlib.contextmanager
def start_client(
    scheduler: str | None = None, workers: int | None = None, memory_limit: str = "auto", quiet: bool = False
) -> Iterator["distributed.Client"]:  # noqa: F821
    """A Dask client: on ``scheduler`` (or ``$DASK_SCHEDULER_ADDRESS``) if given, else on an embedded LocalCluster.

    The LocalCluster has one single-threaded worker process per core (or ``workers``), each with ``memory_limit``
    (``auto`` = machine memory / workers).
    """
    from distributed import Client, LocalCluster

    address = scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS")
    if address:
        with Client(address, timeout="20s") as client:
            if not quiet:
                print(f"curate: on Dask scheduler {address} (dashboard {client.dashboard_link})", file=sys.stderr)
            yield client
        return
    import dask

    n = workers or os.cpu_count() or 1
    # Saturation 1.0: a worker is sent its next shard only when it finishes one. Dask's default (1.1) queues
    # two shards per one-thread worker up front, so the last minutes can be one worker busy with two while the
    # other idles; shards are seconds to minutes long, so the round trip this adds does not matter.
    with dask.config.set({"distributed.scheduler.worker-saturation": 1.0}), LocalCluster(
        n_workers=n, threads_per_worker=1, processes=True, memory_limit=memory_limit, silence_logs=logging.ERROR
    ) as cluster, Client(cluster) as client:
        if not quiet:
            print(f"curate: local Dask cluster, {n} workers (dashboard {client.dashboard_link})", file=sys.stderr)
        yield client


# ------------------------------------------------------------------------------------------ worker side
_READY: dict[str, Stage] = {}  # per worker process: the stage whose setup() ran, by step fingerprint


def _ready_stage(stage: Stage, key: str) -> Stage:
    """The worker's set-up copy of the step's stage: setup() runs once per worker and step. Steps run one after
    the other, so a new step drops the previous one (and the models it loaded) before loading its own."""
    if key not in _READY:
        _READY.clear()
        gc.collect()
        stage.setup()
        _READY[key] = stage
    return _READY[key]


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with exactly the fields of ``schema`` (missing ones as nulls), in that order."""
    columns = []
    for field in schema:
        if field.name in table.column_names:
            columns.append(table[field.name].cast(field.type))
        else:
            columns.append(pa.nulls(table.num_rows, field.type))
    return pa.Table.from_arrays(columns, schema=schema)


def _read_slices(in_dir: Path, slices: Sequence[ShardSlice]) -> pa.Table:
    """The rows of ``slices`` of the input shards, in order, as one table (each input file read once)."""
    tables: dict[str, pa.Table] = {}
    parts = []
    for piece in slices:
        if piece.shard not in tables:
            tables[piece.shard] = pq.read_table(in_dir / f"{piece.shard}.parquet")
        parts.append(tables[piece.shard].slice(piece.offset, piece.length))
    return pa.concat_tables(parts, promote_options="permissive")


def run_shard(
    shard: str, slices: Sequence[ShardSlice] | None, stage: Stage, setup_key: str, step: str, in_dir: str, out_dir: str
) -> dict:
    """Process one shard and write its outputs atomically, then its done marker. Runs on a worker.

    The input is the input shard of the same name, or, for a stage that plans its own shards, ``slices``.
    """
    stage = _ready_stage(stage, setup_key)
    table = pq.read_table(Path(in_dir) / f"{shard}.parquet") if slices is None else _read_slices(Path(in_dir), slices)
    start = time.perf_counter()
    out: StageOutput = stage.process(table)
    seconds = time.perf_counter() - start

    expected = list(table.column_names) + [c for c in stage.columns_added(table.column_names) if c not in table.column_names]
    missing = [c for c in expected if c not in out.kept.column_names]
    if missing:
        raise RuntimeError(f"stage {step!r} did not produce its declared columns {missing}")
    kept = out.kept
    reject_schema = pa.schema(list(kept.schema) + [pa.field(n, t) for n, t in REJECT_COLUMNS.items()])
    rejected = out.rejected if out.rejected is not None else reject_schema.empty_table()
    rejected = rejected.append_column("reject_stage", pa.array([step] * rejected.num_rows, pa.string())) if (
        "reject_stage" not in rejected.column_names) else rejected
    rejected = _conform(rejected, reject_schema)

    folder = StageDir(Path(out_dir))
    atomic_write_parquet(folder.data_file(shard), kept)
    atomic_write_parquet(folder.rejected / f"{shard}.parquet", rejected)
    for name, extra in out.extras.items():
        atomic_write_parquet(folder.extra_file(name, shard), extra)
    stats = {
        "rows_in": table.num_rows,
        "rows_kept": kept.num_rows,
        "rows_rejected": rejected.num_rows,
        "rejected_by_reason": dict(Counter(rejected["reject_reason"].to_pylist())),
        "seconds": round(seconds, 4),
        "video_seconds": round(float(out.video_seconds), 4),
    }
    atomic_write_json(folder.done / f"{shard}.json", stats)
    return stats


# ------------------------------------------------------------------------------------------ client side
def _write_inputs(steps: Sequence[Step], run: Path) -> StageDir:
    """Plan the first (source) step's shards into ``00_inputs`` unless the same plan is already there."""
    source = steps[0].stage
    plan = getattr(source, "plan", None)
    if plan is None:
        raise PipelineError(f"the first step {steps[0].name!r} must be a source stage (with plan()), such as ingest")
    folder = StageDir(run / INPUTS_DIR)
    config = step_config(steps[0], upstream="")
    if folder.config() == config and folder.is_complete():
        return folder
    folder.remove()
    shards = plan()
    for i, table in enumerate(shards):
        atomic_write_parquet(folder.data_file(f"part-{i:05d}"), table)
    atomic_write_json(folder.config_file, config)
    atomic_write_json(folder.stats_file, {"rows": sum(t.num_rows for t in shards), "shards": len(shards)})
    return folder


def _remove_later(run: Path, index: int, name: str) -> None:
    """Remove stage folders after position ``index`` and any other step's folder at that position."""
    for d in stage_dirs(run):
        number = int(d.path.name[:2])
        if number > index or (number == index and d.name != name):
            log.info("removing %s (its input is being re-made)", d.path)
            d.remove()


def _shard_sources(stage: Stage, in_dir: StageDir, folder: StageDir) -> dict[str, list[ShardSlice] | None]:
    """Output shard name -> its input: None (the input shard of the same name) or the slices the stage planned.

    A stage's plan is stored in its folder before any shard runs, and a resumed step reuses it.
    """
    if folder.plan_file.is_file():
        return {name: [ShardSlice(*piece) for piece in slices] for name, slices in read_json(folder.plan_file).items()}
    plan = stage.plan_shards(str(in_dir.data))
    if plan is None:
        return {s: None for s in in_dir.shards()}
    _check_plan(plan, in_dir)
    sources = {shard_name(i): list(slices) for i, slices in enumerate(plan)}
    atomic_write_json(folder.plan_file, {name: [[p.shard, p.offset, p.length] for p in slices]
                                         for name, slices in sources.items()})
    return sources


def _check_plan(plan: Sequence[Sequence[ShardSlice]], in_dir: StageDir) -> None:
    """A plan must cover every input row exactly once, in order (nothing lost, nothing duplicated)."""
    expected = [(s, 0, pq.ParquetFile(in_dir.data_file(s)).metadata.num_rows) for s in in_dir.shards()]
    covered: list[tuple[str, int, int]] = []
    for piece in (p for slices in plan for p in slices if p.length):
        if covered and covered[-1][0] == piece.shard and covered[-1][2] == piece.offset:
            covered[-1] = (piece.shard, covered[-1][1], piece.offset + piece.length)
        else:
            covered.append((piece.shard, piece.offset, piece.offset + piece.length))
    if covered != [e for e in expected if e[2]]:
        raise PipelineError(f"a stage's shard plan must cover every row of {in_dir.path.name} exactly once, in order "
                            f"(planned {covered}, input {expected})")


def _aggregate(folder: StageDir, step: Step, wall: float, fit_info: dict, finish_info: dict) -> dict:
    per_shard = folder.shard_stats()
    reasons: Counter = Counter()
    for s in per_shard.values():
        reasons.update(s["rejected_by_reason"])
    return {
        "step": step.name,
        "stage": type(step.stage).__name__,
        "shards": len(per_shard),
        "rows_in": sum(s["rows_in"] for s in per_shard.values()),
        "rows_kept": sum(s["rows_kept"] for s in per_shard.values()),
        "rows_rejected": sum(s["rows_rejected"] for s in per_shard.values()),
        "rejected_by_reason": dict(sorted(reasons.items())),
        "wall_seconds": round(wall, 3),
        "compute_seconds": round(sum(s["seconds"] for s in per_shard.values()), 3),
        "video_seconds": round(sum(s["video_seconds"] for s in per_shard.values()), 3),
        "fit": fit_info,
        "finish": finish_info,
    }


def gpu_workers(client) -> bool:
    """Whether some worker of the cluster declares a GPU resource."""
    info = client.scheduler_info(n_workers=-1)
    return any(w.get("resources", {}).get("GPU") for w in info.get("workers", {}).values())


def run_step(index: int, step: Step, in_dir: StageDir, run: Path, client, progress: bool = True) -> dict:
    """Run one step over every shard of ``in_dir`` not yet done; return its stats."""
    from distributed import as_completed

    folder = stage_dir(run, index, step.name)
    config = step_config(step, upstream=fingerprint(in_dir.config()))
    previous = folder.config()
    if previous == config and folder.is_complete():
        print(f"curate: {folder.path.name}: done already, same config (skipped)", file=sys.stderr)
        return folder.stats()
    if previous is not None and previous != config:
        print(f"curate: {folder.path.name}: config or input changed, re-running it and the steps after it", file=sys.stderr)
        folder.remove()
    _remove_later(run, index, step.name)
    atomic_write_json(folder.config_file, config)

    start = time.perf_counter()
    fit_info = step.stage.fit(str(in_dir.data))
    sources = _shard_sources(step.stage, in_dir, folder)
    shards = [s for s in sources if not folder.is_done(s)]
    key = f"{step.name}-{fingerprint(config)}"
    resources = {"GPU": step.stage.resources.gpus} if step.stage.resources.gpus and gpu_workers(client) else None
    stage_future = client.scatter(step.stage, broadcast=True, hash=False) if shards else None
    futures = client.map(
        run_shard, shards, [sources[s] for s in shards], stage=stage_future, setup_key=key,
        key=[f"{key}-{s}" for s in shards], step=step.name, in_dir=str(in_dir.data), out_dir=str(folder.path),
        pure=False, resources=resources,
    )
    failures: list[tuple[str, BaseException]] = []
    bar = _progress(len(shards), folder.path.name, enabled=progress)
    shard_of = {f.key: s for f, s in zip(futures, shards)}
    for future in as_completed(futures):
        if future.status == "error":
            failures.append((shard_of[future.key], future.exception()))
        bar(1)
        future.release()
    bar(0, close=True)
    if failures:
        shard, error = failures[0]
        raise StageFailed(
            f"step {step.name!r}: {len(failures)} of {len(shards)} shards failed (first: {shard}: "
            f"{type(error).__name__}: {error}). Fix the cause and relaunch the same command: finished shards are kept."
        ) from error
    finish_info = step.stage.finish(str(folder.path))
    stats = _aggregate(folder, step, time.perf_counter() - start, fit_info, finish_info)
    atomic_write_json(folder.stats_file, stats)
    return stats


def _progress(total: int, label: str, enabled: bool) -> Callable[..., None]:
    if not enabled:
        return lambda n, close=False: None
    from tqdm import tqdm

    bar = tqdm(total=total, desc=label, unit="shard", file=sys.stderr, dynamic_ncols=True)

    def update(n: int, close: bool = False) -> None:
        bar.update(n)
        if close:
            bar.close()

    return update


def check_pipeline(steps: Sequence[Step], *, until: str | None = None, only: str | None = None) -> None:
    """Fail before any work: bad --until/--only, a step missing the columns it reads, or a step that cannot run
    (its ``Stage.check()``: e.g. model weights that cannot be had)."""
    names = [s.name for s in steps]
    for flag, value in (("--until", until), ("--only", only)):
        if value is not None and value not in names:
            raise PipelineError(f"{flag} {value!r} is not a step of this pipeline; steps: {', '.join(names)}")
    if until and only:
        raise PipelineError("use either --until or --only, not both")
    check_chain(steps)
    selected = [steps[names.index(only)]] if only else steps[: (names.index(until) if until else len(steps) - 1) + 1]
    for step in selected:
        try:
            step.stage.check()
        except Exception as e:
            raise PipelineError(f"step {step.name!r} cannot run: {e}") from e


def run_pipeline(
    steps: Sequence[Step],
    run: str | os.PathLike,
    client,
    *,
    until: str | None = None,
    only: str | None = None,
    progress: bool = True,
    check: bool = True,
) -> dict[str, dict]:
    """Run ``steps`` into the run folder ``run``; return the stats of each step that ran or was already done.

    until: run the steps up to and including this one.
    only: re-run just this step from the outputs already in ``run`` (its folder and later ones are replaced).
    check: run ``check_pipeline`` first (pass False if the caller just did).
    """
    run = Path(run)
    names = [s.name for s in steps]
    # 1. check the whole chain, and what each step to run needs (weights...), before any work
    if check:
        check_pipeline(steps, until=until, only=only)
    run.mkdir(parents=True, exist_ok=True)

    results: dict[str, dict] = {}
    if only is not None:
        index = names.index(only)
        if index == 0:
            in_dir = _write_inputs(steps, run)
        else:
            in_dir = stage_dir(run, index, names[index - 1])
            if not in_dir.is_complete():
                raise PipelineError(
                    f"--only {only}: its input step {names[index - 1]!r} has no complete output in {run}; "
                    f"run the pipeline up to it first (curate run ... --until {names[index - 1]})"
                )
        stage_dir(run, index + 1, only).remove()
        results[only] = run_step(index + 1, steps[index], in_dir, run, client, progress)
        return results

    last = names.index(until) if until else len(steps) - 1
    # 2. plan the inputs, then run each step on the previous step's kept rows
    in_dir = _write_inputs(steps, run)
    for index, step in enumerate(steps[: last + 1]):
        results[step.name] = run_step(index + 1, step, in_dir, run, client, progress)
        in_dir = stage_dir(run, index + 1, step.name)
    return results
