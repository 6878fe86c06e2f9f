"""The dedup stage on Parquet shards: groups across shards, the keep rule, both methods, on a Dask cluster."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from distributed import Client, LocalCluster

from curate.stages.dedup import Dedup, read_shards
from tests.stages.contract import check_output

DIM = 24


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def write_shards(folder, embeddings, scores, durations, per_shard: int, first: int = 0) -> list[pa.Table]:
    """A clip step's output: clip_id, clip_embedding (null where NaN), clip_score, duration_s, in shards."""
    folder.mkdir(parents=True, exist_ok=True)
    tables = []
    for s, start in enumerate(range(0, len(embeddings), per_shard)):
        rows = range(start, min(start + per_shard, len(embeddings)))
        vectors = [None if np.isnan(embeddings[i]).any() else embeddings[i].tolist() for i in rows]
        table = pa.table({"clip_id": [f"clip{first + i:04d}" for i in rows],
                          "clip_embedding": pa.array(vectors, pa.list_(pa.float32())),
                          "clip_score": pa.array([scores[i] for i in rows], pa.float64()),
                          "duration_s": pa.array([durations[i] for i in rows], pa.float64())})
        pq.write_table(table, folder / f"part-{s:05d}.parquet")
        tables.append(table)
    return tables


def run_stage(stage: Dedup, tables: list[pa.Table]):
    outs = [stage.process(t) for t in tables]
    for table, out in zip(tables, outs):
        check_output(stage, table, out)
        assert out.kept.num_rows + out.rejected.num_rows == table.num_rows
    rejected = pa.concat_tables([o.rejected for o in outs])
    return dict(zip(rejected["clip_id"].to_pylist(), rejected["duplicate_of"].to_pylist())), rejected


@pytest.fixture
def shards(tmp_path):
    """600 clips in 7 shards: a copy group spread over three shards, a chain, clips without embedding."""
    rng = np.random.default_rng(0)
    embeddings = _unit(rng.standard_normal((600, DIM)))
    scores, durations = rng.uniform(15, 35, 600), rng.uniform(1, 10, 600)
    for copy, noise in ((250, 0.05), (530, 0.08)):  # copies of clip 10 in other shards
        embeddings[copy] = _unit(embeddings[10] + noise * _unit(rng.standard_normal(DIM)))
    scores[[10, 250, 530]] = [22.0, 30.0, 30.0]  # 250 and 530 tie on score: the longer one (530) stays
    durations[[10, 250, 530]] = [9.0, 4.0, 6.0]
    embeddings[[77, 78]] = np.nan  # no embedding (the clip step could not decode them)
    return tmp_path / "clip", embeddings, scores, durations


@pytest.mark.parametrize("method", ["exact", "clustered"])
def test_copies_across_shards_keep_the_best_scored_then_longest(shards, method):
    folder, embeddings, scores, durations = shards
    tables = write_shards(folder, embeddings, scores, durations, per_shard=90)
    stage = Dedup(threshold=0.95, method=method, clusters=6, probes=6)
    stats = stage.fit(str(folder))
    assert stats["clips"] == 600 and stats["method"] == method and stats["duplicates"] == 2
    duplicate_of, rejected = run_stage(stage, tables)
    assert duplicate_of == {"clip0010": "clip0530", "clip0250": "clip0530"}
    assert set(rejected["reject_reason"].to_pylist()) == {"dedup_near_duplicate"}
    detail = rejected["reject_detail"].to_pylist()[0]
    assert detail.startswith("near-duplicate of clip0530 (cosine 0.9") and detail.endswith(">= 0.95)")


@pytest.mark.slow
def test_the_stage_agrees_with_itself_across_methods_on_a_dask_cluster(shards):
    folder, embeddings, scores, durations = shards
    rng = np.random.default_rng(1)
    for copy in rng.choice(np.arange(100, 600), 60, replace=False):  # 60 more copies of random clips
        embeddings[copy] = _unit(embeddings[copy - 100] + 0.1 * _unit(rng.standard_normal(DIM)))
    tables = write_shards(folder, embeddings, scores, durations, per_shard=50)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster):
        found = {}
        for method in ("exact", "clustered"):
            stage = Dedup(threshold=0.95, method=method, clusters=8, probes=8)
            stage.fit(str(folder))
            found[method], _ = run_stage(stage, tables)
    assert found["exact"] == found["clustered"] and len(found["exact"]) >= 40


def test_read_shards_reads_rows_in_shard_order_in_tasks(shards):
    folder, embeddings, scores, durations = shards
    write_shards(folder, embeddings, scores, durations, per_shard=90)
    matrix, table = read_shards(str(folder), ["clip_score"], rows_per_task=200)
    assert matrix.numblocks[0] == 3 and table.column_names == ["clip_id", "clip_score"]
    values = matrix.compute()
    np.testing.assert_array_equal(values, embeddings)  # NaN rows where there is no embedding
    assert table["clip_id"].to_pylist() == [f"clip{i:04d}" for i in range(600)]


def test_embeddings_of_two_sizes_are_refused(tmp_path):
    folder = tmp_path / "clip"
    rng = np.random.default_rng(0)
    write_shards(folder, _unit(rng.standard_normal((4, DIM))), [20.0] * 4, [2.0] * 4, per_shard=4)
    write_shards(tmp_path / "other", _unit(rng.standard_normal((4, 8))), [20.0] * 4, [2.0] * 4, per_shard=4, first=4)
    (tmp_path / "other" / "part-00000.parquet").rename(folder / "part-00001.parquet")
    with pytest.raises(ValueError, match=r"\[8, 24\] values per clip: clips embedded by different CLIP models"):
        Dedup().fit(str(folder))


def test_reads_follow_keep_by_and_bad_settings_are_refused():
    assert Dedup().reads == ("clip_id", "clip_embedding", "clip_score", "duration_s")
    assert Dedup(keep_by=["aesthetic_score"]).reads == ("clip_id", "clip_embedding", "aesthetic_score")
    with pytest.raises(ValueError, match="dedup.method must be one of auto, exact, clustered"):
        Dedup(method="lsh")
    with pytest.raises(ValueError, match="threshold"):
        Dedup(threshold=0)
