"""Hostile inputs: the offline pipeline on a folder of every odd file there is, each one accounted for.

    python benchmarks/hostile_inputs.py                     # the whole corpus (107 inputs), 2 workers
    python benchmarks/hostile_inputs.py --subset ci         # the fast subset tests/test_hostile_inputs.py runs
    python benchmarks/hostile_inputs.py --out /tmp/h --keep # keep the corpus and the run folder to look at
    python benchmarks/hostile_inputs.py --skip thin_640x52 --isolate   # leave one out; then each failure alone
    python benchmarks/hostile_inputs.py --alone fifo,mid_gop_ts        # only these, each alone beside a good video

It makes the corpus of ``hostile_corpus.py`` (what each input is and what curate should make of it), runs the
whole command ``curate run configs/offline.yaml --input CORPUS/walked CORPUS/listed/list.txt --out RUN`` once, as a
subprocess under a wall-clock limit, and then reads every row of the run folder. Printed, in markdown:

1. the CPU, the command's exit status (or the signal that ended it), wall seconds, and its peak memory: the
   largest sum of resident memory over its process tree (the command and its Dask workers) and the largest single
   process, sampled every 0.2 s;
2. per input: the rows it got, matched by ``video_path`` across ``RUN/*/data`` and ``RUN/*/rejected`` (kept: at
   least one clip of it in the last step's data; rejected: the reasons, and the ``*_error`` message behind a
   ``filter_*_missing``), and what is wrong with that: a silent loss (no row at all, or a clip that vanished
   between steps), a generic reason (``<stage>_error``, ``<stage>_worker_crashed``) where a specific one is due, a
   reason other than the expected one, or a wrong fact (``video_duration_s``);
3. the tracebacks on stderr (their exception lines), and Dask's noise (cancelled futures, closed comms, restarted
   workers);
4. a summary: inputs accounted for, silent losses, wrong outcomes.

The results go to ``benchmarks/results/hostile_inputs-SUBSET-TIME.json``. The exit status is 0 when every input
got what it should, with exit 0 and no traceback; 1 otherwise.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hostile_corpus import ITEMS, SUBSETS, Corpus, HostileInput, build  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OFFLINE = ROOT / "configs" / "offline.yaml"
TRACEBACK = "Traceback (most recent call last):"
NOISE = ("FutureCancelledError", "CommClosedError", "KilledWorker", "Restarting worker", "Segmentation fault",
         "Worker process", "lost scattered data")


@dataclass
class RunResult:
    command: list[str]
    returncode: int | None
    signal: str | None
    timed_out: bool
    wall_s: float
    peak_tree_rss_mb: float
    peak_process_rss_mb: float
    stdout: str
    stderr: str

    def tracebacks(self) -> list[str]:
        """The exception line of each traceback printed on stderr: Python's, or a Dask worker's log of a failed
        task (``Exception: ...`` then ``Traceback: '  File ...'``)."""
        lines, found = self.stderr.splitlines(), []
        for i, line in enumerate(lines):
            if TRACEBACK in line:
                rest = (x for x in lines[i + 1 :] if x and not x.startswith((" ", "\t")))
                found.append(next(rest, "(traceback without an exception line)").strip())
            elif line.startswith("Traceback: ") and i and lines[i - 1].startswith("Exception: "):
                found.append("(a worker's log) " + lines[i - 1][len("Exception: "):].strip())
        return found

    def noise(self) -> dict[str, int]:
        return {word: self.stderr.count(word) for word in NOISE if word in self.stderr}


def _tree_rss(proc) -> tuple[float, float]:
    import psutil

    total = largest = 0
    try:
        for p in [proc, *proc.children(recursive=True)]:
            try:
                rss = p.memory_info().rss
            except psutil.Error:
                continue
            total, largest = total + rss, max(largest, rss)
    except psutil.Error:
        pass
    return total / 2**20, largest / 2**20


def run_curate(corpus: Corpus, run: Path, timeout_s: float, workers: int = 2, config: Path = OFFLINE,
               extra: tuple[str, ...] = ()) -> RunResult:
    """``curate run CONFIG --input <the corpus> --out RUN`` in its own process group, killed at ``timeout_s``."""
    import psutil

    command = [sys.executable, "-m", "curate", "run", str(config), "--input", *corpus.inputs, "--out", str(run),
               "--no-progress", "--workers", str(workers), *extra]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+", errors="backslashreplace") as out, \
            tempfile.TemporaryFile("w+", errors="backslashreplace") as err:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        peak, done = [0.0, 0.0], threading.Event()

        def sample() -> None:
            handle = psutil.Process(proc.pid)
            while not done.wait(0.2):
                tree, largest = _tree_rss(handle)
                peak[0], peak[1] = max(peak[0], tree), max(peak[1], largest)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        timed_out = False
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:  # the Dask workers too, whatever state the command left them in (or when this one is stopped)
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait()
        done.set()
        sampler.join()
        wall = time.perf_counter() - start
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    rc = proc.returncode
    return RunResult(command, None if timed_out else rc, signal.Signals(-rc).name if rc < 0 and not timed_out else None,
                     timed_out, wall, peak[0], peak[1], stdout, stderr)


# --- reading every row of a run folder -----------------------------------------------------------------------------

@dataclass
class Rows:
    """The rows of a run folder that matter for accounting, per step folder (``02_split``) and kind."""

    steps: list[str]
    data: dict[str, list[dict]]
    rejected: dict[str, list[dict]]
    manifest: set[str]

    @classmethod
    def read(cls, run: Path) -> "Rows":
        import pyarrow.parquet as pq

        def rows(folder: Path) -> list[dict]:
            out = []
            for f in sorted(folder.glob("*.parquet")):
                names = pq.read_schema(f).names
                wanted = [c for c in names if c in ("video_path", "clip_id", "reject_stage", "reject_reason",
                                                    "reject_detail", "video_duration_s") or c.endswith("_error")]
                out.extend(pq.read_table(f, columns=wanted).to_pylist())
            return out

        steps = sorted(p.name for p in run.glob("[0-9][0-9]_*") if p.is_dir() and p.name != "00_inputs")
        manifest = {r["video_path"] for r in rows(run / "00_inputs" / "data")}
        return cls(steps, {s: rows(run / s / "data") for s in steps}, {s: rows(run / s / "rejected") for s in steps},
                   manifest)

    def step(self, name: str) -> str | None:
        return next((s for s in self.steps if s.split("_", 1)[1] == name), None)

    def paths(self) -> set[str]:
        return {r["video_path"] for rows in [*self.data.values(), *self.rejected.values()] for r in rows}


@dataclass
class Outcome:
    id: str
    kind: str
    path: str
    expect: str
    status: str  # kept | rejected | lost | absent
    reasons: dict[str, int] = field(default_factory=dict)
    details: list[str] = field(default_factory=list)
    clips: int = 0
    clips_kept: int = 0
    clips_lost: int = 0
    duration_s: float | None = None
    score_errors: list[str] = field(default_factory=list)  # the *_error of clips a scorer failed on
    problems: list[str] = field(default_factory=list)


def is_generic(reason: str) -> bool:
    """A catch-all reason: the runner's containment caught what no stage named (``split_error``), or a worker died."""
    return re.fullmatch(r"[a-z0-9]+_(error|worker_crashed)", reason) is not None


def _errors(row: dict) -> str:
    return "; ".join(f"{k}: {v}" for k, v in row.items() if k.endswith("_error") and v)


def account(corpus: Corpus, rows: Rows) -> list[Outcome]:
    """What became of every input of ``corpus`` in the run whose ``rows`` are given, and what is wrong with it."""
    ingest, split = rows.step("ingest"), rows.step("split")
    last = rows.steps[-1] if rows.steps else None
    after_split = rows.steps[rows.steps.index(split) + 1 :] if split else []
    by_path: dict[str, dict[tuple[str, str], list[dict]]] = collections.defaultdict(
        lambda: collections.defaultdict(list))
    for kind, tables in (("data", rows.data), ("rejected", rows.rejected)):
        for step, table in tables.items():
            for r in table:
                by_path[r["video_path"]][(step, kind)].append(r)
    outcomes = []
    for item in corpus.items:
        path = corpus.video_path(item)
        mine = by_path.get(path, {})
        o = Outcome(item.id, item.kind, item.path, item.expect, "absent")
        reasons: collections.Counter = collections.Counter()

        def reject(row: dict) -> None:
            reasons[row["reject_reason"]] += 1
            detail = (row.get("reject_detail") or "") + (f" [{_errors(row)}]" if _errors(row) else "")
            if detail and detail not in o.details and len(o.details) < 3:
                o.details.append(detail)

        for row in mine.get((ingest, "rejected"), []):
            reject(row)
        ingested = mine.get((ingest, "data"), [])
        if ingested:
            o.duration_s = ingested[0].get("video_duration_s")
            split_rows = mine.get((split, "data"), [])
            for row in mine.get((split, "rejected"), []):
                reject(row)
            o.clips = len(split_rows)
            final = {r["clip_id"] for r in mine.get((last, "data"), [])} if last not in (ingest, split) else set()
            rejected_later = {}
            for step in after_split:
                for row in mine.get((step, "rejected"), []):
                    rejected_later.setdefault(row["clip_id"], row)
            for clip in split_rows:
                if clip["clip_id"] in final:
                    o.clips_kept += 1
                elif clip["clip_id"] in rejected_later:
                    row = rejected_later[clip["clip_id"]]
                    reject(row)
                    if _errors(row) and _errors(row) not in o.score_errors:
                        o.score_errors.append(_errors(row))
                else:
                    o.clips_lost += 1
            if not split_rows and not mine.get((split, "rejected")):
                o.problems.append(f"silent loss: kept by ingest, no row at split ({split or 'no split step'})")
        o.reasons = dict(reasons)
        if o.clips_kept:
            o.status = "kept"
        elif o.clips_lost or (ingested and not o.reasons):
            o.status = "lost"
        elif o.reasons:
            o.status = "rejected"
        if o.clips_lost:
            o.problems.append(f"silent loss: {o.clips_lost} of {o.clips} clips have no row after split")
        judge(item, path, rows, o)
        outcomes.append(o)
    return outcomes


def judge(item: HostileInput, path: str, rows: Rows, o: Outcome) -> None:
    """Add to ``o.problems`` what is wrong with the outcome of ``item``."""
    if o.status == "absent":
        if item.expect != "ignored":
            where = "listed in 00_inputs" if path in rows.manifest else "not even in the input manifest (00_inputs)"
            o.problems.append(f"silent loss: no row anywhere, {where}")
        return
    for reason in o.reasons:
        if is_generic(reason):
            o.problems.append(f"generic reason {reason}")
        if item.not_reason and reason == item.not_reason:
            o.problems.append(f"wrong reason {reason}")
    if item.expect.startswith("rejected:"):
        prefix = item.expect.split(":", 1)[1]
        if o.status != "rejected":
            o.problems.append(f"{o.status}, expected rejected as {prefix}*")
        elif not all(r.startswith(prefix) for r in o.reasons):
            o.problems.append(f"reason {', '.join(o.reasons)}, expected {prefix}*")
    elif item.expect == "kept":
        ingest = rows.step("ingest")
        if any(r.startswith("ingest_") for r in o.reasons) or ingest is None:
            o.problems.append(f"rejected at ingest ({', '.join(o.reasons)}), expected a video")
        elif o.clips == 0 and o.status != "lost":
            o.problems.append(f"no clip from split ({', '.join(o.reasons) or 'no reason'}), expected at least one")
        if o.score_errors and not item.score_errors_ok:
            o.problems.append(f"a clip split made fails a scorer: {o.score_errors[0]}")
    if item.duration_s is not None and o.duration_s is not None and abs(o.duration_s - item.duration_s) > 0.5:
        o.problems.append(f"wrong fact: video_duration_s {o.duration_s:.2f}, the video lasts {item.duration_s:.2f}")


def run_problems(result: RunResult) -> list[str]:
    problems = []
    if result.timed_out:
        problems.append(f"timed out after {result.wall_s:.0f} s")
    elif result.signal:
        problems.append(f"killed by {result.signal}")
    elif result.returncode != 0:
        problems.append(f"exit status {result.returncode}")
    problems += [f"traceback on stderr: {line}" for line in result.tracebacks()]
    return problems


# --- the report ---------------------------------------------------------------------------------------------------

def _cell(text: str, width: int = 110) -> str:
    text = text.encode("utf-8", "backslashreplace").decode().replace("\n", "\\n").replace("|", "\\|")
    return text if len(text) <= width else text[: width - 3] + "..."


def cpu_model() -> str:
    try:
        from curate.hardware import cpu

        return cpu().describe()
    except Exception:  # noqa: BLE001 (the report goes on without the flags)
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
        return "unknown CPU"


def print_report(result: RunResult, outcomes: list[Outcome], subset: str, extra_paths: list[str]) -> None:
    print(f"CPU: {cpu_model()}; {len(outcomes)} inputs (subset {subset})")
    status = ("timed out" if result.timed_out else f"signal {result.signal}" if result.signal
              else f"exit {result.returncode}")
    print(f"curate run: {status}, {result.wall_s:.1f} s wall, peak memory {result.peak_tree_rss_mb:.0f} MB over the "
          f"process tree ({result.peak_process_rss_mb:.0f} MB the largest process)\n")
    print("| input | kind | expected | outcome | reasons (detail) | problems |")
    print("|---|---|---|---|---|---|")
    for o in outcomes:
        reasons = ", ".join(f"{r}" + (f" x{n}" if n > 1 else "") for r, n in o.reasons.items())
        detail = f" ({o.details[0]})" if o.details else ""
        outcome = o.status + (f" {o.clips_kept}/{o.clips} clips" if o.clips else "")
        print(f"| {o.id} | {o.kind} | {o.expect} | {outcome} | {_cell(reasons + detail)} | "
              f"{_cell('; '.join(o.problems) or 'ok', 160)} |")
    tracebacks = collections.Counter(result.tracebacks())
    print(f"\nTracebacks on stderr: {sum(tracebacks.values())}")
    for line, n in tracebacks.most_common():
        print(f"- {n} x {_cell(line, 200)}")
    if result.noise():
        print("Dask noise on stderr: " + ", ".join(f"{w} x{n}" for w, n in result.noise().items()))
    if extra_paths:
        print(f"Rows for paths that are no input of the corpus: {', '.join(_cell(p, 80) for p in extra_paths[:10])}")
    failed = [o for o in outcomes if o.problems]
    lost = [o for o in outcomes if any(p.startswith("silent loss") for p in o.problems)]
    accounted = sum(1 for o in outcomes
                    if o.status in ("kept", "rejected") or (o.status == "absent" and o.expect == "ignored"))
    print(f"\nSummary: {accounted}/{len(outcomes)} inputs accounted for; {len(lost)} silent losses; "
          f"{len(failed)} inputs with a problem; run: {', '.join(run_problems(result)) or 'ok'}")


def isolate(outcomes: list[Outcome], work: Path, args, wanted: list[str] | None) -> dict[str, dict]:
    """Run inputs alone beside the control video (a corpus of two, made the same way), so that an input's own
    failure shows apart from the collateral of another input's: ``wanted``, or every input with a problem."""
    by_id = {i.id: i for i in ITEMS}
    chosen = wanted if wanted is not None else [o.id for o in outcomes if o.problems and o.expect != "ignored"]
    alone = {}
    print("\nInputs alone (beside the control video):\n")
    print("| input | run | outcome | reasons (detail) | problems | tracebacks |")
    print("|---|---|---|---|---|---|")
    for name in chosen:
        control = [ITEMS[0]] if name != ITEMS[0].id else []
        one = build(work / name / "corpus", control + [by_id[name]])
        result = run_curate(one, work / name / "run", args.timeout, args.workers, args.config)
        mine = account(one, Rows.read(work / name / "run"))[-1]
        run = "; ".join(run_problems(result)[:1]) or "exit 0"
        reasons = ", ".join(mine.reasons) + (f" ({mine.details[0]})" if mine.details else "")
        tracebacks = sorted(set(result.tracebacks()))
        print(f"| {name} | {_cell(run, 60)} | {mine.status} | {_cell(reasons)} | "
              f"{_cell('; '.join(mine.problems) or 'ok', 120)} | {_cell(' / '.join(tracebacks), 160)} |")
        alone[name] = {"run": run_problems(result), "wall_s": result.wall_s, "outcome": asdict(mine),
                       "tracebacks": tracebacks, "stderr_tail": result.stderr[-3000:]}
    return alone


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="work folder (corpus/ and run/ inside); default: a new temp folder")
    parser.add_argument("--subset", choices=sorted(SUBSETS), default="all")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (deleted otherwise)")
    parser.add_argument("--timeout", type=float, default=900, help="wall-clock limit of the curate command, seconds")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--config", type=Path, default=OFFLINE)
    parser.add_argument("--skip", default="", help="input ids to leave out, comma-separated (one that stops the run)")
    parser.add_argument("--isolate", nargs="?", const="problems", default=None, metavar="IDS",
                        help="then run inputs alone beside the control video, to tell an input's own failure from "
                             "the collateral of another's: those with a problem (no value), or these ids")
    parser.add_argument("--alone", metavar="IDS", help="only run these inputs, each alone beside the control video")
    args = parser.parse_args()
    if args.alone:
        args.isolate = args.alone
    work = args.out or Path(tempfile.mkdtemp(prefix="curate-hostile-"))
    if (work / "corpus").exists() or (work / "run").exists():
        parser.error(f"{work} already holds corpus/ or run/: give a new --out folder")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that the finally clauses stop curate's processes
    skip = set(filter(None, args.skip.split(",")))
    wanted = None if args.isolate in (None, "problems") else list(filter(None, args.isolate.split(",")))
    unknown = (skip | set(wanted or ())) - {i.id for i in ITEMS}
    if unknown:
        parser.error(f"no input {', '.join(sorted(unknown))}; the ids are in benchmarks/hostile_corpus.py")
    try:
        if args.alone:
            return _alone_only(work, args, wanted)
        start = time.perf_counter()
        corpus = build(work / "corpus", [i for i in SUBSETS[args.subset] if i.id not in skip])
        made_s = time.perf_counter() - start
        print(f"made {len(corpus.items)} inputs in {made_s:.1f} s under {work / 'corpus'}", file=sys.stderr)
        result = run_curate(corpus, work / "run", args.timeout, args.workers, args.config)
        rows = Rows.read(work / "run")
        outcomes = account(corpus, rows)
        extra = sorted(rows.paths() - {corpus.video_path(i) for i in corpus.items})
        print_report(result, outcomes, args.subset, extra)
        alone = isolate(outcomes, work / "isolated", args, wanted) if args.isolate else {}
        report = _results_file(args.subset)
        report.write_text(json.dumps({
            "cpu": cpu_model(), "subset": args.subset, "make_s": made_s,
            "run": {k: v for k, v in asdict(result).items() if k not in ("stdout", "stderr")}
            | {"tracebacks": result.tracebacks(), "noise": result.noise(), "problems": run_problems(result),
               "stderr_tail": result.stderr[-4000:]},
            "inputs": [asdict(o) for o in outcomes], "extra_paths": extra, "alone": alone,
        }, indent=1))
        print(f"\nresults: {report}" + (f"; corpus and run kept in {work}" if args.keep else ""))
        return 0 if not run_problems(result) and not any(o.problems for o in outcomes) else 1
    finally:
        if not args.keep:
            _remove(work)


def _results_file(label: str) -> Path:
    results = ROOT / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    return results / f"hostile_inputs-{label}-{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}.json"


def _alone_only(work: Path, args, wanted: list[str]) -> int:
    print(f"CPU: {cpu_model()}")
    alone = isolate([], work / "isolated", args, wanted)
    report = _results_file("alone")
    report.write_text(json.dumps({"cpu": cpu_model(), "alone": alone}, indent=1))
    print(f"\nresults: {report}" + (f"; corpora and runs kept in {work}" if args.keep else ""))
    return 0 if all(not a["run"] and not a["outcome"]["problems"] for a in alone.values()) else 1


def _remove(folder: Path) -> None:
    for path in folder.rglob("*"):  # chmod 000 files and folders: rmtree needs them writable only as non-root
        if not path.is_symlink():
            try:
                path.chmod(0o700)
            except OSError:
                pass
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
