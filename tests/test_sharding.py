"""How work is cut into shards: videos per ingest shard adapt to the cluster, clips are re-sharded after split."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.sharding import ShardBudget
from curate.stages.ingest import MAX_AUTO_VIDEOS_PER_SHARD, Ingest
from curate.stages.split import MAX_AUTO_SHARD_S, MIN_AUTO_SHARD_S, Split
from curate.tasks import cut_by_budget, output_names, run_shard


@pytest.mark.parametrize(("videos", "workers", "expected"), [
    (4, 2, 1),        # the README's sample on 2 workers: 4 shards of 1 video, not 1 shard that one worker does alone
    (18, 2, 3),       # 6 shards: 3 per worker
    (100, 2, 16),     # capped: a relaunch after a kill never redoes more than 16 videos per worker
    (1000, 64, 6),
    (1, 8, 1),
])
def test_auto_videos_per_shard_aims_at_three_shards_per_worker(videos, workers, expected):
    assert Ingest(videos_per_shard="auto").shard_size(videos, workers) == expected
    assert Ingest(videos_per_shard=5).shard_size(videos, workers) == 5
    assert expected <= MAX_AUTO_VIDEOS_PER_SHARD


def test_plan_deals_videos_into_shards_of_that_size(tmp_path):
    paths = []
    for i in range(7):
        path = tmp_path / f"v{i}.mp4"
        path.write_bytes(b"x" * (100 * (i + 1)))
        paths.append(str(path))
    shards = Ingest(inputs=[str(tmp_path)]).plan(workers=1)
    assert [t.num_rows for t in shards] == [3, 2, 2]  # ceil(7 / 3) = 3 videos per shard
    assert sorted(p for t in shards for p in t["video_path"].to_pylist()) == sorted(paths)
    assert Ingest(inputs=[str(tmp_path)]).plan([], workers=2) == []  # nothing new: no shard


def clips(durations: list[float]) -> pa.Table:
    return pa.table({"clip_id": [f"c{i}" for i in range(len(durations))], "duration_s": durations})


def test_cut_by_budget_keeps_rows_in_order_within_count_and_seconds():
    table = clips([10.0, 10.0, 10.0, 50.0, 5.0, 5.0, 5.0, 5.0])
    pieces = cut_by_budget(table, ShardBudget(rows=3, seconds=25.0))
    assert [p["clip_id"].to_pylist() for p in pieces] == [["c0", "c1"], ["c2"], ["c3"], ["c4", "c5", "c6"], ["c7"]]
    assert pa.concat_tables(pieces).equals(table)  # nothing lost, nothing duplicated, same order
    assert [p.num_rows for p in cut_by_budget(table, ShardBudget(rows=None, seconds=None))] == [8]
    assert [p.num_rows for p in cut_by_budget(table, None)] == [8]
    empty = cut_by_budget(table.slice(0, 0), ShardBudget(rows=1))
    assert len(empty) == 1 and empty[0].num_rows == 0  # an empty shard stays one (empty) shard: the schema is kept


def test_output_names_sort_in_input_order():
    assert output_names("part-00003", 1) == ["part-00003"]
    names = output_names("part-00003", 3) + output_names("part-00004", 1) + output_names("part-00002", 2)
    assert sorted(names) == ["part-00002-0000", "part-00002-0001", "part-00003-0000", "part-00003-0001",
                             "part-00003-0002", "part-00004"]


def test_split_budget_auto_spreads_the_run_over_the_workers(tmp_path):
    data = tmp_path / "ingest"
    data.mkdir()
    pq.write_table(pa.table({"video_duration_s": [600.0, 300.0, None]}), data / "part-00000.parquet")
    budget = Split().output_budget(str(data), workers=5)
    assert budget == ShardBudget(rows=64, seconds=60.0)  # 900 s / (3 shards per worker * 5 workers)
    assert Split().output_budget(str(data), workers=1000).seconds == MIN_AUTO_SHARD_S
    assert Split(clips_per_shard=None).output_budget(str(data), workers=1) == ShardBudget(rows=None, seconds=300.0)
    pq.write_table(pa.table({"video_duration_s": [36000.0]}), data / "part-00001.parquet")  # 10 more hours
    assert Split().output_budget(str(data), workers=2).seconds == MAX_AUTO_SHARD_S
    assert Split(clip_seconds_per_shard=12.5).output_budget(str(data), workers=1).seconds == 12.5
    with pytest.raises(ValueError, match="clips_per_shard must be >= 1"):
        Split(clips_per_shard=0)


def test_a_long_video_is_written_as_balanced_clip_shards(video, tmp_path):
    """One 25-s documentary with six shots: its clips become shards of at most 2 clips and 10 s of clips."""
    ingest = Ingest(inputs=[str(video("psd_issue-195-aspect-ratio.mp4"))])
    manifest = tmp_path / "in"
    manifest.mkdir()
    pq.write_table(pa.concat_tables(ingest.plan()), manifest / "part-00000.parquet")
    run_shard("part-00000", None, ingest, "ingest", "ingest", str(manifest), str(tmp_path / "01_ingest"))
    split = Split()
    split.fit(str(tmp_path / "01_ingest" / "data"))
    budget = ShardBudget(rows=2, seconds=10.0)
    stats = run_shard("part-00000", None, split, "split", "split", str(tmp_path / "01_ingest" / "data"),
                      str(tmp_path / "02_split"), budget)

    pieces = [pq.read_table(tmp_path / "02_split" / "data" / f"{name}.parquet") for name in stats["outputs"]]
    assert len(pieces) >= 3 and stats["outputs"][0] == "part-00000-0000"
    assert all(p.num_rows <= 2 and (p.num_rows == 1 or sum(p["duration_s"].to_pylist()) <= 10.0) for p in pieces)
    assert sum(p.num_rows for p in pieces) == stats["rows_kept"]
    starts = [s for p in pieces for s in p["start_s"].to_pylist()]
    assert starts == sorted(starts)  # the clips stay in time order across the pieces
    assert sorted(p.name for p in (tmp_path / "02_split" / "done").iterdir()) == ["part-00000.json"]
