"""Run a pipeline (a list of steps) over Parquet shards on Dask, streaming shard by shard from step to step.

    from curate.runner import Step, run_pipeline, start_client
    from curate.stages.ingest import Ingest
    from curate.stages.split import Split

    steps = [Step("ingest", Ingest(inputs=["videos/"])), Step("split", Split())]
    with start_client(workers=2) as client:
        run_pipeline(steps, "runs/demo", client)

What the runner does, in order:
1. checks, before any work, that every step finds the columns it reads (``check_chain``), that every step can run
   (``Stage.check``: weights...) and that the cluster has workers for it (a GPU step needs a GPU worker, see
   ``curate.cluster``);
2. writes the input manifest (``00_inputs``); on a relaunch it only appends shards for inputs that appeared since
   (an incremental run over a growing folder), and counts inputs that disappeared (their rows are kept);
3. compares each step's config (its parameters + a fingerprint of the steps before it) with the one in its
   folder: a changed step is re-run with every step after it; an unchanged one keeps its finished shards;
4. streams: shard i of a step is submitted as soon as shard i of the step before it is done, so CPU steps,
   GPU steps and the writes overlap. A step that needs its whole input first (``curate.sharding.needs_all_input``: a
   ``fit`` such as percentile thresholds or duplicate detection, or its own shard plan) waits until the step
   before it is complete; these barriers split the pipeline into segments. ``streaming=False`` runs the steps
   one after the other instead (for debugging);
5. writes a step's ``stats.json`` when all its shards are done (``Stage.finish`` first), and releases the
   step's models on the workers.

No single video stops a run (containment is the runner's, not each stage's):
- a row whose processing raises becomes that row's error (``curate.tasks.contained_process``): kept with null
  added columns and the message in the stage's ``<stage name>_error`` column when it has one, else rejected as
  ``<step>_error``; the other rows of its shard are processed as usual;
- a shard whose task kills its worker (a segfault in native code, the nanny's memory limit; Dask gives up after
  ``curate.cluster.ALLOWED_FAILURES`` retries with ``KilledWorker``) is run again one row per task
  (``curate.tasks.try_row``, writing nothing); a row whose own task kills its worker again is rejected as
  ``<step>_worker_crashed`` with the signal, and the shard is then written without it, its other rows one at a
  time (each alone just ran to its end);
- a worker lost for another reason costs a retry of its shard: every task carries its stage by value, so nothing
  a later task needs lives only on one worker;
- a step's error budget (``Step``) fails the run (``ErrorBudgetExceeded``) when more than ``max_error_fraction``
  of its rows errored and at least ``min_errors_to_fail`` did: a systematic bug stays loud.
A shard that still raises (e.g. its output cannot be written) fails its step after the other shards finished;
relaunching the same command retries only the shards without a done marker, and gives the same rows as an
uninterrupted run.

A run whose non-empty input ends with no row, or with a step where no row could be scored, raises
``EmptyResult`` after writing everything: nothing is lost silently, and the data stay for ``curate rejects``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import time
from collections import Counter, deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import pyarrow.parquet as pq

from curate.cluster import (  # noqa: F401  (start_client, gpu_workers: the runner's public API too)
    ClusterInfo,
    PlacementError,
    check_placement,
    cluster_info,
    gpu_workers,
    start_client,
    task_resources,
)
from curate.errors import CurateError
from curate.runlock import RunLock
from curate.rundir import (
    INPUTS_DIR,
    StageDir,
    atomic_write_json,
    atomic_write_parquet,
    read_json,
    shard_name,
    stage_dir,
    stage_dirs,
    remove_temp_files,
)
from curate.sharding import ShardBudget, ShardSlice, needs_all_input, shard_policy
from curate.stage import Source, Stage
from curate.tasks import (
    import_modules,
    runner_reasons,
    probe_folder,
    probe_markers,
    release_stage,
    run_shard,
    try_row,
)
from curate.video.frame_needs import pass_frame_needs

log = logging.getLogger("curate")


class PipelineError(CurateError):
    """A pipeline that cannot run as configured; the message says what to change."""


class StageFailed(Exception):
    """Some shards of a stage raised; finished shards are kept and a relaunch retries the others."""


class EmptyResult(PipelineError):
    """The run finished, but a non-empty input gave no row, or a step could score no row; the data are kept."""


class ErrorBudgetExceeded(PipelineError):
    """Too many rows of a step errored: a systematic failure, not a few poison videos (see ``Step``)."""


#: Defaults of a step's error budget (``Step``): the step fails when more than this fraction of its rows errored...
MAX_ERROR_FRACTION = 0.1
#: ... and at least this many did.
MIN_ERRORS_TO_FAIL = 20
#: Submissions of a row's probe, or of a unit's final run, that Dask may end with ``KilledWorker`` although the
#: task never ran when its worker died (Dask counts a task assigned to a dying worker as one that killed it).
RETRIES_AFTER_DEATHS = 3


@dataclass(frozen=True)
class Step:
    """One entry of a pipeline: a step name (the stage folder name), a configured stage, and its error budget.

    The step fails (``ErrorBudgetExceeded``) only when both more than ``max_error_fraction`` of its rows errored
    and at least ``min_errors_to_fail`` did: a systematic bug stays loud while a few poison videos do not stop a
    run. The budget is not part of the step's config (changing it redoes nothing).
    """

    name: str
    stage: Stage
    max_error_fraction: float = MAX_ERROR_FRACTION
    min_errors_to_fail: int = MIN_ERRORS_TO_FAIL

    def __post_init__(self) -> None:
        if isinstance(self.max_error_fraction, bool) or not 0.0 <= self.max_error_fraction <= 1.0:
            raise ValueError(f"{self.name}.max_error_fraction must be a fraction from 0 to 1, "
                             f"got {self.max_error_fraction!r}")
        if isinstance(self.min_errors_to_fail, bool) or not (isinstance(self.min_errors_to_fail, int)
                                                              and self.min_errors_to_fail >= 1):
            raise ValueError(f"{self.name}.min_errors_to_fail must be a whole number of rows >= 1, "
                             f"got {self.min_errors_to_fail!r}")


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
    for step in steps:
        missing = [c for c in step.stage.reads if c not in columns]
        if missing:
            raise PipelineError(
                f"step {step.name!r} ({type(step.stage).__name__}) reads {missing}, which no earlier step adds "
                f"(available: {columns}); put a stage that adds them before it in the pipeline"
            )
        columns += [c for c in step.stage.columns_added(columns) if c not in columns]
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
    for step in selected_steps(steps, until, only):
        try:
            step.stage.check()
        except Exception as e:
            raise PipelineError(f"step {step.name!r} cannot run: {e}") from e


def selected_steps(steps: Sequence[Step], until: str | None, only: str | None) -> list[Step]:
    names = [s.name for s in steps]
    if only:
        return [steps[names.index(only)]]
    return list(steps[: (names.index(until) if until else len(steps) - 1) + 1])


# ------------------------------------------------------------------------------------------ the manifest
def _write_inputs(steps: Sequence[Step], run: Path, workers: int) -> StageDir:
    """The input manifest in ``00_inputs``: planned by the first (source) step; on a relaunch with the same
    config, new inputs are appended as new shards and inputs that disappeared are counted (rows kept)."""
    source = steps[0].stage
    if not isinstance(source, Source):
        raise PipelineError(f"the first step {steps[0].name!r} must be a source stage (with expand() and plan()), "
                            "such as ingest")
    folder = StageDir(run / INPUTS_DIR)
    config = step_config(steps[0], upstream="")
    current = source.expand()
    if folder.config() == config and folder.is_complete():
        known = [p for s in folder.shards() for p in pq.read_table(folder.data_file(s), columns=["video_path"])
                 ["video_path"].to_pylist()]
        known_set, current_set = set(known), set(current)
        new = [p for p in current if p not in known_set]
        missing = [p for p in known if p not in current_set]
        first = len(folder.shards())
        tables = source.plan(new, workers=workers) if new else []
        if new:
            print(f"curate: {len(new)} new input video(s) since the last launch: adding them as new shards",
                  file=sys.stderr)
        if missing:
            print(f"curate: {len(missing)} input video(s) of earlier launches are no longer found (e.g. {missing[0]}); "
                  "their rows are kept", file=sys.stderr)
    else:
        folder.remove()
        known, missing, first = [], [], 0
        tables = source.plan(current, workers=workers)
        atomic_write_json(folder.config_file, config)
    for i, table in enumerate(tables):
        atomic_write_parquet(folder.data_file(shard_name(first + i)), table)
    atomic_write_json(folder.stats_file, {
        "rows": len(known) + sum(t.num_rows for t in tables), "shards": first + len(tables),
        "new_inputs": sum(t.num_rows for t in tables) if known else 0,
        "missing_inputs": len(missing), "missing_examples": missing[:20],
    })
    return folder


# ------------------------------------------------------------------------------------------ one step
class _StepRun:
    """One step of a launch: its folder, the shards it runs (its input shards, or the shards it planned), which
    are done (with the data shards each wrote), which are running, and which wait to be submitted."""

    def __init__(self, index: int, step: Step, in_dir: StageDir, run: Path, barrier: bool):
        self.index, self.step, self.in_dir, self.run = index, step, in_dir, run
        self.stage = step.stage
        self.folder = stage_dir(run, index, step.name)
        self.config = step_config(step, upstream=fingerprint(in_dir.config()))
        self.key = f"{step.name}-{fingerprint(self.config)}"
        self.barrier = barrier
        self.prepared = not barrier
        self.finished = False
        self.inputs: list[str] = []  # input shards known so far
        self.units: list[str] = []  # shards this step runs: its inputs, or the shards it planned
        self.queue: deque[str] = deque()  # units to submit
        self.pending: set[str] = set()
        self.done: dict[str, list[str]] = {}  # unit -> the data shards it wrote
        self.failures: list[tuple[str, BaseException]] = []
        self.sources: dict[str, list[ShardSlice]] | None = None  # planned units (plan_shards)
        self.budget: ShardBudget | None = None
        self.submitting = False  # tasks of this step were submitted in this launch: its workers hold its stage
        self.started: float | None = None
        self.submitted = 0
        self.fit_info: dict = {}
        self.complete_before = False  # complete in an earlier launch with the same inputs: nothing to do

    # -- state on disk
    def open(self) -> bool:
        """Compare the config with the folder's and load the done shards; True when the step starts afresh."""
        previous = self.folder.config()
        changed = previous != self.config
        if changed:
            if previous is not None:
                print(f"curate: {self.folder.path.name}: config or input changed, re-running it and the steps after "
                      "it", file=sys.stderr)
            self.clear()
        self.done = {p.stem: read_json(p).get("outputs", [p.stem]) for p in sorted(self.folder.done.glob("*.json"))}
        return changed

    def clear(self) -> None:
        """Forget every shard of this step (its config stays)."""
        self.folder.remove()
        atomic_write_json(self.folder.config_file, self.config)
        self.done = {}

    # -- the whole-input part (on the client)
    def prepare(self, workers: int, on_cleared: Callable[["_StepRun"], None]) -> None:
        """Before the first shard of a step that needs its whole input: fit, budget, shard plan. A fit or plan
        that differs from the stored one (new inputs) clears the step's shards when they depend on it."""
        self.prepared = True
        inputs = sorted(self.inputs)
        stats = self.folder.stats()
        if stats is not None and stats.get("inputs") == inputs and stats.get("outputs") is not None:
            self.complete_before = True  # nothing new upstream: no fit, no plan
            self.fit_info = stats.get("fit", {})
            self.sources = self._stored_plan()
        else:
            self.folder.stats_file.unlink(missing_ok=True)
            if type(self.stage).fit is not Stage.fit:
                self._fit(on_cleared)
            self.budget = self._budget(workers)
            self.sources = self._plan(on_cleared)
        self.units = list(self.sources) if self.sources is not None else list(self.inputs)
        if self.sources is None and len(self.units) > workers:
            self.units = self._largest_first(self.units)

    def _largest_first(self, units: list[str]) -> list[str]:
        """``units`` by the stage's cost estimate, largest first (longest-processing-time-first scheduling)."""
        costs = shard_policy(self.stage).shard_costs(str(self.in_dir.data), units)
        if not costs:
            return units
        return sorted(units, key=lambda u: -costs.get(u, 0.0))

    def _fit(self, on_cleared) -> None:
        self.fit_info = self.stage.fit(str(self.in_dir.data))
        fit_file = self.folder.path / "fit.json"
        stored = read_json(fit_file) if fit_file.is_file() else None
        if stored is not None and stored != _jsonable(self.fit_info) and shard_policy(self.stage).refit_redoes_shards:
            print(f"curate: {self.folder.path.name}: its whole-input facts changed (new inputs): redoing its shards "
                  "and the steps after it", file=sys.stderr)
            self.clear()
            on_cleared(self)
        atomic_write_json(fit_file, self.fit_info)

    def _budget(self, workers: int) -> ShardBudget | None:
        """The output budget, stored on first use so that a resumed step cuts its shards the same way."""
        path = self.folder.path / "budget.json"
        if path.is_file():
            stored = read_json(path)
            return ShardBudget(**stored) if stored else None
        budget = shard_policy(self.stage).output_budget(str(self.in_dir.data), workers)
        atomic_write_json(path, None if budget is None else {"rows": budget.rows, "seconds": budget.seconds})
        return budget

    def _stored_plan(self) -> dict[str, list[ShardSlice]] | None:
        if not self.folder.plan_file.is_file():
            return None
        return {name: [ShardSlice(*p) for p in slices] for name, slices in read_json(self.folder.plan_file).items()}

    def _plan(self, on_cleared) -> dict[str, list[ShardSlice]] | None:
        plan = shard_policy(self.stage).plan_shards(str(self.in_dir.data))
        if plan is None:
            return None
        _check_plan(plan, self.in_dir)
        sources = {shard_name(i): list(slices) for i, slices in enumerate(plan)}
        stored = self._stored_plan()
        if stored is not None and stored != sources:
            self.clear()
            on_cleared(self)
        atomic_write_json(self.folder.plan_file, {name: [[p.shard, p.offset, p.length] for p in slices]
                                                  for name, slices in sources.items()})
        return sources

    def finish(self, workers: int) -> dict:
        """stats.json, once every shard is done and nothing more can arrive."""
        self.finished = True
        stats = self.folder.stats()
        if self.submitted == 0 and stats is not None and stats.get("inputs") == sorted(self.inputs) and (
                stats.get("outputs") is not None):
            print(f"curate: {self.folder.path.name}: done already, same config (skipped)", file=sys.stderr)
            return stats
        finish_info = self.stage.finish(str(self.folder.path))
        wall = time.perf_counter() - self.started if self.started is not None else 0.0
        stats = _aggregate(self, wall, finish_info, workers)
        atomic_write_json(self.folder.stats_file, stats)
        return stats


def _jsonable(obj):
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


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


def _aggregate(sr: _StepRun, wall: float, finish_info: dict, workers: int) -> dict:
    per_shard = sr.folder.shard_stats()
    total: Counter = Counter()
    reasons: Counter = Counter()
    errors: Counter = Counter()
    messages: Counter = Counter()
    counts: Counter = Counter()
    for s in per_shard.values():
        counts.update(s.get("counts", {}))
        total.update({k: s.get(k, 0) for k in ("rows_in", "rows_kept", "rows_rejected", "seconds", "cpu_seconds",
                                                "video_seconds")})
        reasons.update(s["rejected_by_reason"])
        errors.update(s.get("errors", {}))
        messages.update(s.get("error_messages", {}))
    busy = sum(s["finished_at"] - s["started_at"] for s in per_shard.values() if "started_at" in s)
    return {
        "step": sr.step.name,
        "stage": type(sr.stage).__name__,
        "shards": len(per_shard),
        "inputs": sorted(sr.inputs),
        "outputs": [o for unit in sr.units for o in sr.done[unit]],
        "rows_in": total["rows_in"],
        "rows_kept": total["rows_kept"],
        "rows_rejected": total["rows_rejected"],
        "rejected_by_reason": dict(sorted(reasons.items())),
        "errors": dict(sorted(errors.items())),
        "error_messages": dict(messages.most_common(10)),
        "wall_seconds": round(wall, 3),
        "compute_seconds": round(total["seconds"], 3),
        "cpu_seconds": round(total["cpu_seconds"], 3),
        "busy_seconds": round(busy, 3),
        "workers": workers,
        "utilisation": round(busy / (workers * wall), 3) if wall > 0 and workers else None,
        "video_seconds": round(total["video_seconds"], 3),
        "counts": dict(sorted(counts.items())),
        "fit": sr.fit_info,
        "finish": finish_info,
    }


# ------------------------------------------------------------------------------------------ errors
def error_rows(step: str, stats: dict) -> int:
    """Rows of a step that errored: a ``*_error`` column it adds holds a message, or the runner rejected the row
    (``<step>_error``, ``<step>_worker_crashed``)."""
    return sum(stats.get("errors", {}).values()) + sum(
        stats["rejected_by_reason"].get(reason, 0) for reason in runner_reasons(step))


def check_error_budget(step: Step, stats: dict) -> None:
    """Raise ``ErrorBudgetExceeded`` when more than ``step.max_error_fraction`` of the step's rows errored and at
    least ``step.min_errors_to_fail`` did, naming the most common messages."""
    errored, rows = error_rows(step.name, stats), stats["rows_in"]
    if not rows or errored < step.min_errors_to_fail or errored <= step.max_error_fraction * rows:
        return
    common = "; ".join(f"{n} x {message!r}" for message, n in list(stats.get("error_messages", {}).items())[:3])
    raise ErrorBudgetExceeded(
        f"step {step.name!r}: {errored} of its {rows} rows errored ({errored / rows:.0%}), more than its error budget "
        f"(max_error_fraction {step.max_error_fraction:g} with min_errors_to_fail {step.min_errors_to_fail}): "
        f"most common: {common or 'no message recorded'}. This looks systematic: fix the cause and redo the step "
        f"(`curate run ... --only {step.name}`, then the whole pipeline), or accept it: --set "
        f"{step.name}.max_error_fraction=F"
    )


# ------------------------------------------------------------------------------------------ the launch
def _warm_workers(client, steps: Sequence[Step]) -> None:
    """Have every worker import the steps' modules now, in the background, while this client plans the run: a
    fresh worker process otherwise spends its first task of each step importing (about a second for PyAV, OpenCV,
    PySceneDetect, and pandas, which pyarrow imports at its first table). Failures are the first task's to report."""
    modules = sorted({type(step.stage).__module__ for step in steps} | {"curate.tasks", "pandas"})
    try:
        client.run(import_modules, modules, wait=False)
    except Exception as err:  # noqa: BLE001 - an optimisation only: the tasks import what they need anyway
        log.debug("could not warm the workers: %s", err)


def run_pipeline(
    steps: Sequence[Step],
    run: str | os.PathLike,
    client,
    *,
    until: str | None = None,
    only: str | None = None,
    progress: bool = True,
    check: bool = True,
    streaming: bool = True,
) -> dict[str, dict]:
    """Run ``steps`` into the run folder ``run``; return the stats of each step that ran or was already done.

    until: run the steps up to and including this one.
    only: re-run just this step from the outputs already in ``run`` (its folder and later ones are replaced).
    check: run ``check_pipeline`` first (pass False if the caller just did).
    streaming: shards flow from step to step (default); False: each step finishes before the next starts.
    """
    run = Path(run)
    # 1. check the whole chain, what each step to run needs (weights...), and the cluster, before any work
    if check:
        check_pipeline(steps, until=until, only=only)
    selected = selected_steps(steps, until, only)
    pass_frame_needs([s.stage for s in steps])  # split and the frames step keep what the steps after them read
    _warm_workers(client, selected)
    info = cluster_info(client)
    try:
        check_placement({s.name: s.stage for s in selected}, info, "the Dask cluster")
    except PlacementError as e:
        raise PipelineError(str(e)) from e
    # 2. the run folder is this launch's: its lock (a second run on it is refused; a killed run's lock is taken
    # over), and no temporary file a killed launch left behind
    with RunLock(run):
        if removed := remove_temp_files(run):
            print(f"curate: removed {removed} temporary files an interrupted launch left in {run}", file=sys.stderr)
        return _launch(steps, selected, run, client, info, only=only, progress=progress, streaming=streaming)


def _launch(steps: Sequence[Step], selected: list[Step], run: Path, client, info: ClusterInfo, *, only: str | None,
            progress: bool, streaming: bool) -> dict[str, dict]:
    names = [s.name for s in steps]

    # 3. the input of the first step to run, then each step's folder against its config
    if only is not None:
        index = names.index(only)
        if index == 0:
            in_dir = _write_inputs(steps, run, info.cpu_slots)
        else:
            in_dir = stage_dir(run, index, names[index - 1])
            if not in_dir.is_complete():
                raise PipelineError(
                    f"--only {only}: its input step {names[index - 1]!r} has no complete output in {run}; "
                    f"run the pipeline up to it first (curate run ... --until {names[index - 1]})"
                )
        stage_dir(run, index + 1, only).remove()
        first = index
    else:
        in_dir = _write_inputs(steps, run, info.cpu_slots)
        first = 0
    runs: list[_StepRun] = []
    for offset, step in enumerate(selected):
        sr = _StepRun(first + offset + 1, step, in_dir, run, barrier=needs_all_input(step.stage) or not streaming)
        _remove_other_steps_at(run, sr)
        if sr.open():
            _remove_after(run, sr.index)
        runs.append(sr)
        in_dir = sr.folder

    # 4. stream the shards through the steps
    _Launch(runs, client, info, progress).run()
    results = {sr.step.name: sr.folder.stats() for sr in runs}
    check_outcome(run, results)
    return results


def _remove_other_steps_at(run: Path, sr: _StepRun) -> None:
    for d in stage_dirs(run):
        if int(d.path.name[:2]) == sr.index and d.name != sr.step.name:
            log.info("removing %s (another step now has its place)", d.path)
            d.remove()


def _remove_after(run: Path, index: int) -> None:
    for d in stage_dirs(run):
        if int(d.path.name[:2]) > index:
            log.info("removing %s (its input is being re-made)", d.path)
            d.remove()


@dataclass
class _Task:
    """What a submitted task is: a unit of a step, one row of it run alone (a probe), or the unit's final run
    after its rows were probed (``crashed``: the rows that killed a worker)."""

    sr: _StepRun
    unit: str
    row: int | None = None
    crashed: dict[int, str] | None = None
    attempt: int = 0


@dataclass
class _Isolation:
    """A unit whose task killed a worker: its rows, each run alone, and those that killed a worker again."""

    waiting: set[int]
    crashed: dict[int, str]


class _Launch:
    """The scheduling loop of one launch: each step's shards are submitted as their inputs appear."""

    def __init__(self, runs: list[_StepRun], client, info: ClusterInfo, progress: bool):
        from distributed import as_completed

        self.runs, self.client, self.info = runs, client, info
        self.futures = as_completed()
        self.meta: dict[str, tuple[_Task, object]] = {}
        self.isolating: dict[tuple[int, str], _Isolation] = {}
        self.bars = _Bars(enabled=progress)

    def run(self) -> None:
        self.receive(0, self.runs[0].in_dir.shards())
        try:
            self.advance()
            for future in self.futures:
                task, _ = self.meta.pop(future.key)
                if future.status == "error":
                    self.failed(task, future.exception())
                else:
                    self.succeeded(task, future.result())
                future.release()
                self.advance()
        except ErrorBudgetExceeded:
            self.client.cancel([future for _, future in self.meta.values()])
            raise
        finally:
            self.bars.close()
        failed = [sr for sr in self.runs if sr.failures]
        if failed:
            sr = failed[0]
            unit, error = sr.failures[0]
            raise StageFailed(
                f"step {sr.step.name!r}: {len(sr.failures)} of {sr.submitted} shards failed (first: {unit}: "
                f"{type(error).__name__}: {error}). Fix the cause and relaunch the same command: finished shards "
                "are kept."
            ) from error

    # -- results
    def succeeded(self, task: _Task, result) -> None:
        sr = task.sr
        if task.row is not None:
            self.probed(task, None)
            return
        sr.pending.discard(task.unit)
        self.mark_done(sr, task.unit, result["outputs"])
        self.bars.update(sr.folder.path.name, done=1)

    def failed(self, task: _Task, error: BaseException) -> None:
        """A task raised. A dead worker (``KilledWorker``: a segfault, the memory limit, or a worker lost for
        another reason, each time Dask tried) is answered by running the unit's rows alone; anything else fails
        the unit (its step ends after the other shards)."""
        from distributed.scheduler import KilledWorker

        sr = task.sr
        dead = isinstance(error, KilledWorker)
        if task.row is not None and dead and not probe_markers(sr.folder.path, task.unit, task.row):
            # its workers died while it waited on them, never while it ran (Dask counts both): try it again
            if task.attempt + 1 < RETRIES_AFTER_DEATHS:
                self._submit(replace(task, attempt=task.attempt + 1), try_row, task.row,
                             key=f"{sr.key}-{task.unit}-row{task.row}-{task.attempt + 1}")
                return
        if task.row is not None:
            self.probed(task, self._death(error) if dead else None)
            return
        if dead and task.crashed is None:
            self.isolate(sr, task.unit)
            return
        if dead and task.attempt + 1 < RETRIES_AFTER_DEATHS:  # the final run: each of its rows alone ran to its end
            self._submit(replace(task, attempt=task.attempt + 1), run_shard, sr.budget, crashed=task.crashed,
                         key=f"{sr.key}-{task.unit}-isolated-{task.attempt + 1}")
            return
        sr.pending.discard(task.unit)
        sr.failures.append((task.unit, error))
        self.bars.update(sr.folder.path.name, done=1)

    def isolate(self, sr: _StepRun, unit: str) -> None:
        """Run each row of ``unit`` alone (one task per row, writing nothing), to find the rows that kill a worker."""
        rows = self._rows(sr, unit)
        log.warning("step %s: shard %s killed its worker: running its %d rows one by one to find the cause",
                    sr.step.name, unit, rows)
        shutil.rmtree(probe_folder(sr.folder.path, unit), ignore_errors=True)  # markers of an earlier launch
        self.isolating[(sr.index, unit)] = _Isolation(waiting=set(range(rows)), crashed={})
        for row in range(rows):
            self._submit(_Task(sr, unit, row=row), try_row, row, key=f"{sr.key}-{unit}-row{row}")
        if not rows:
            self.finish_isolation(sr, unit)

    def probed(self, task: _Task, death: str | None) -> None:
        isolation = self.isolating[(task.sr.index, task.unit)]
        isolation.waiting.discard(task.row)
        if death is not None:
            isolation.crashed[task.row] = death
        if not isolation.waiting:
            self.finish_isolation(task.sr, task.unit)

    def finish_isolation(self, sr: _StepRun, unit: str) -> None:
        """Run the unit again without its crashing rows (rejected as ``<step>_worker_crashed``), the others one at
        a time: each alone just ran to its end."""
        crashed = self.isolating.pop((sr.index, unit)).crashed
        shutil.rmtree(probe_folder(sr.folder.path, unit), ignore_errors=True)
        if crashed:
            print(f"curate: {sr.folder.path.name}: {len(crashed)} row(s) of {unit} kill their worker (rejected as "
                  f"{sr.step.name}_worker_crashed): {'; '.join(sorted(set(crashed.values())))}", file=sys.stderr)
        self._submit(_Task(sr, unit, crashed=crashed), run_shard, sr.budget, crashed=crashed,
                     key=f"{sr.key}-{unit}-isolated")

    def _rows(self, sr: _StepRun, unit: str) -> int:
        if sr.sources is not None:
            return sum(piece.length for piece in sr.sources[unit])
        return pq.ParquetFile(sr.in_dir.data_file(unit)).metadata.num_rows

    def _death(self, error: BaseException) -> str:
        """What is known of a worker's death: its exit signal or status, or the memory limit (from its nanny)."""
        worker = getattr(error, "last_worker", None)
        pid = getattr(worker, "pid", None)
        if pid:
            for _ in range(10):  # the nanny may log the exit a moment after the scheduler learns of it
                found = _death_cause(self.client, pid)
                if found:
                    return f"run alone, it killed its worker again ({found})"
                time.sleep(0.2)
        return "run alone, it killed its worker again (exit status unknown: see the worker logs)"

    # -- data flow: a done unit's outputs are the next step's inputs
    def receive(self, k: int, shards: Sequence[str]) -> None:
        """New input shards for step ``k``: queue them, or pass on the outputs of those done before."""
        sr = self.runs[k]
        sr.inputs += shards
        if sr.prepared:
            sr.units += shards
            self.take(k, shards)

    def take(self, k: int, units: Sequence[str]) -> None:
        sr = self.runs[k]
        for unit in units:
            if unit in sr.done:
                self.mark_done(sr, unit, sr.done[unit])
            else:
                sr.queue.append(unit)

    def mark_done(self, sr: _StepRun, unit: str, outputs: list[str]) -> None:
        sr.done[unit] = outputs
        k = self.runs.index(sr)
        if k + 1 < len(self.runs):
            self.receive(k + 1, outputs)

    def advance(self) -> None:
        """Prepare the barrier steps whose input is complete, submit what is queued, finish complete steps."""
        upstream_finished = True
        for k, sr in enumerate(self.runs):
            if not sr.finished and not sr.failures:
                if not sr.prepared and upstream_finished:
                    sr.prepare(self.info.cpu_slots, self._cleared)
                    self.take(k, sr.units)
                while sr.prepared and sr.queue:
                    self.submit(sr, sr.queue.popleft())
                if upstream_finished and sr.prepared and not sr.pending and all(u in sr.done for u in sr.units):
                    stats = sr.finish(self.info.cpu_slots)
                    self._release(sr)
                    check_error_budget(sr.step, stats)
            upstream_finished = sr.finished

    def submit(self, sr: _StepRun, unit: str) -> None:
        if not sr.submitting:
            sr.started = time.perf_counter()
            sr.folder.stats_file.unlink(missing_ok=True)  # not complete any more until this launch finishes it
            sr.submitting = True
        self._submit(_Task(sr, unit), run_shard, sr.budget, key=f"{sr.key}-{unit}")
        sr.pending.add(unit)
        sr.submitted += 1
        self.bars.update(sr.folder.path.name, total=1)

    def _submit(self, task: _Task, function, *last, key: str, **options) -> None:
        """Submit ``function(unit, slices, stage, setup key, step, input folder, step folder, *last, **options)``."""
        sr = task.sr
        future = self.client.submit(
            function, task.unit, None if sr.sources is None else sr.sources[task.unit], sr.stage, sr.key,
            sr.step.name, str(sr.in_dir.data), str(sr.folder.path), *last, **options,
            key=key, pure=False, resources=task_resources(sr.stage, self.info), priority=sr.index,
        )
        self.meta[future.key] = (task, future)
        self.futures.add(future)

    def _cleared(self, sr: _StepRun) -> None:
        """A step's shards were cleared: the steps after it start afresh too (they have received nothing yet)."""
        _remove_after(sr.run, sr.index)
        for later in self.runs:
            if later.index > sr.index:
                later.clear()

    def _release(self, sr: _StepRun) -> None:
        if sr.submitting:
            self.client.run(release_stage, sr.key)
            sr.submitting = False


def _death_cause(client, pid: int) -> str | None:
    """How the worker process ``pid`` ended, from its nanny's log, or None when no nanny has logged it (yet)."""
    import signal

    try:
        logs = client.get_worker_logs(nanny=True)
    except Exception:  # noqa: BLE001 - best effort: a worker without nanny, or a scheduler that cannot tell
        return None
    memory = signal_text = None
    for lines in logs.values():
        for _, line in lines:
            if f"(pid={pid}) exceeded" in line and "memory budget" in line:
                memory = "the worker's memory limit was exceeded (killed by its nanny)"
            elif f"Worker process {pid} was killed by signal " in line:
                number = int(line.rsplit(" ", 1)[-1])
                try:
                    signal_text = f"killed by signal {number} ({signal.Signals(number).name})"
                except ValueError:
                    signal_text = f"killed by signal {number}"
            elif f"Worker process {pid} exited with status " in line:
                signal_text = f"exited with status {line.rsplit(' ', 1)[-1]}"
    return memory or signal_text


class _Bars:
    """One progress bar per running step (shards done / submitted)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.bars: dict[str, object] = {}

    def update(self, label: str, total: int = 0, done: int = 0) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        if label not in self.bars:
            self.bars[label] = tqdm(total=0, desc=label, unit="shard", file=sys.stderr, dynamic_ncols=True,
                                    position=len(self.bars), leave=True)
        bar = self.bars[label]
        if total:
            bar.total += total
            bar.refresh()
        if done:
            bar.update(done)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


# ------------------------------------------------------------------------------------------ the outcome
def check_outcome(run: Path, results: dict[str, dict]) -> None:
    """Raise ``EmptyResult`` when a non-empty input ended with no row, or a step could score no row at all."""
    inputs = (StageDir(Path(run) / INPUTS_DIR).stats() or {}).get("rows", 0)
    if not inputs or not results:
        return
    for name, stats in results.items():
        rows = stats["rows_in"]
        common = "; ".join(f"{n} x {m!r}" for m, n in list(stats.get("error_messages", {}).items())[:3])
        errors = f" Most common errors: {common}." if common else ""
        if rows and stats["rows_kept"] == 0:
            reasons = ", ".join(f"{r}={n}" for r, n in stats["rejected_by_reason"].items()) or "none"
            raise EmptyResult(
                f"the run ended with no rows: step {name!r} kept none of its {rows} rows (rejected: {reasons}); "
                f"nothing after it has any.{errors} The data are kept: see `curate rejects {run} --stage {name}`"
            )
        for column, count in stats.get("errors", {}).items():
            if stats["rows_kept"] and count == stats["rows_kept"]:
                raise EmptyResult(
                    f"step {name!r} could not score any of its {count} rows (every row has {column}).{errors} See "
                    f"`curate rejects {run}` after the next filter, or read {column} in its data"
                )
