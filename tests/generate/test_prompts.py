"""Prompt selection from curated shards and run folders."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.generate.prompts import PromptError, read_prompts


def _shards(folder, **columns):
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), folder / "part-00000.parquet")
    return folder


def test_picks_the_preferred_caption_column_and_keeps_the_source_clip(tmp_path):
    shards = _shards(tmp_path / "data", clip_id=["a", "b"], video_path=["v.mp4", "v.mp4"], start_s=[0.0, 2.0],
                     end_s=[2.0, 4.0], caption_image=["img a", "img b"], caption=["sum a", "sum b"])
    got = read_prompts(shards, base_seed=10)
    assert got["prompt"].to_pylist() == ["sum a", "sum b"]
    assert got["prompt_column"].to_pylist() == ["caption", "caption"]
    assert got["seed"].to_pylist() == [10, 11] and got["prompt_index"].to_pylist() == [0, 1]
    assert got["clip_id"].to_pylist() == ["a", "b"] and got["end_s"].to_pylist() == [2.0, 4.0]
    assert got["video_stream"].to_pylist() == [None, None]  # absent in the shards: null
    assert read_prompts(shards, column="caption_image")["prompt"].to_pylist() == ["img a", "img b"]


def test_no_caption_column_names_the_columns_and_the_flag(tmp_path):
    shards = _shards(tmp_path / "data", clip_id=["a"], motion_score=[0.1])
    with pytest.raises(PromptError, match=r"columns: clip_id, motion_score.*--prompt-column"):
        read_prompts(shards)
    with pytest.raises(PromptError, match="no column 'text'"):
        read_prompts(shards, column="text")


def test_first_and_seeded_sample(tmp_path):
    captions = [f"caption {i}" for i in range(20)]
    shards = _shards(tmp_path / "data", caption=captions[:3] + [None, "  "] + captions[5:])
    assert read_prompts(shards, first=4)["prompt"].to_pylist() == ["caption 0", "caption 1", "caption 2", "caption 5"]
    a = read_prompts(shards, sample=5, sample_seed=1)["prompt"].to_pylist()
    assert a == read_prompts(shards, sample=5, sample_seed=1)["prompt"].to_pylist()  # seeded
    assert a != read_prompts(shards, sample=5, sample_seed=2)["prompt"].to_pylist()
    assert len(set(a)) == 5 and a == sorted(a, key=captions.index)  # no repeats, in shard order
    assert read_prompts(shards, sample=100).num_rows == 18  # empty captions skipped, at most every row
    with pytest.raises(PromptError, match="not both"):
        read_prompts(shards, first=1, sample=1)


def test_run_folder_uses_its_last_complete_step(tmp_path):
    run = tmp_path / "run"
    _shards(run / "01_ingest" / "data", caption=["early"])
    (run / "01_ingest" / "stats.json").write_text(json.dumps({}))
    _shards(run / "02_filter" / "data", caption=["late"])
    (run / "02_filter" / "stats.json").write_text(json.dumps({}))
    _shards(run / "03_clip" / "data", caption=["unfinished"])  # no stats.json: not complete
    assert read_prompts(run)["prompt"].to_pylist() == ["late"]
    assert read_prompts(run / "01_ingest")["prompt"].to_pylist() == ["early"]  # a step folder: its data
    with pytest.raises(PromptError, match="no such file or folder"):
        read_prompts(tmp_path / "missing")
