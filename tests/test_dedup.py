"""Near-duplicate detection: exact and clustered pairs agree, groups do not chain, the keep rule decides."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

from curate.dedup import clustered_pairs, exact_pairs, find_duplicates, keep_rank, near_duplicates, resolve
from curate.dedup import pairs as pairs_module


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _topics(n: int, dim: int = 32, topics: int = 12, copies: int = 60, seed: int = 0) -> np.ndarray:
    """Clips around a few topic directions (as real embeddings cluster), ``copies`` of them re-planted as
    near-copies (cosine ~0.96-0.995) of random others, across the whole array."""
    rng = np.random.default_rng(seed)
    centres = _unit(rng.standard_normal((topics, dim)))
    x = _unit(0.7 * centres[rng.integers(0, topics, n)] + 0.7 * _unit(rng.standard_normal((n, dim))))
    source, copy = rng.choice(n, (2, copies), replace=False)
    x[copy] = _unit(x[source] + rng.uniform(0.1, 0.28, (copies, 1)) * _unit(rng.standard_normal((copies, dim))))
    return x


def _as_set(pairs) -> set[tuple[int, int]]:
    return {tuple(p) for p in pairs.index.tolist()}


# --------------------------------------------------------------------------------------------------- pairs
def test_exact_pairs_match_the_full_matrix_for_any_blocks_and_dask_input():
    embeddings = _unit(np.random.default_rng(2).standard_normal((30, 3)))  # low dimension: many pairs above 0.8
    full = embeddings @ embeddings.T
    expected = {(i, j) for i in range(30) for j in range(i + 1, 30) if full[i, j] >= 0.8}
    for found in (exact_pairs(embeddings, 0.8, block_size=7), exact_pairs(embeddings, 0.8),
                  exact_pairs(da.from_array(embeddings, chunks=(11, 3)), 0.8, block_size=5)):
        assert _as_set(found) == expected
        np.testing.assert_allclose(found.similarity, full[found.index[:, 0], found.index[:, 1]], atol=1e-6)


def test_clustered_pairs_probing_every_cluster_are_exactly_the_exact_pairs(monkeypatch):
    monkeypatch.setattr(pairs_module, "ROWS_PER_BUCKET", 200)  # several buckets of clusters, several tasks
    embeddings = _topics(1500)
    exact = exact_pairs(embeddings, 0.95)
    found = clustered_pairs(da.from_array(embeddings, chunks=(400, -1)), 0.95, clusters=9, probes=9, block_size=64,
                            memory_bytes=4 * 32 * 4000)  # about 4000 routed rows a wave: the input read 4 times
    assert found.info["buckets"] >= 9 and found.info["waves"] > 1 and found.info["clusters"] == 9
    assert np.array_equal(found.index, exact.index) and len(exact) >= 60
    np.testing.assert_allclose(found.similarity, exact.similarity, atol=1e-6)


def test_clustered_and_exact_agree_on_a_small_set():
    embeddings = _topics(3000, copies=150, seed=3)
    exact = find_duplicates(embeddings, 0.95, method="exact")
    clustered = find_duplicates(embeddings, 0.95, method="clustered", probes=4)
    assert clustered.info["method"] == "clustered" and clustered.info["clusters"] == 55  # √3000
    assert clustered.info["compared_pairs"] < 0.5 * 3000 * 3000 / 2  # far fewer products than all pairs
    assert _as_set(clustered.pairs) == _as_set(exact.pairs)
    assert np.array_equal(clustered.duplicate_of, exact.duplicate_of) and (exact.duplicate_of >= 0).sum() >= 140


def test_a_pair_split_by_a_cluster_boundary_is_found_by_probing_the_next_cluster():
    rng = np.random.default_rng(4)
    topics = np.eye(32, dtype=np.float32)[:2]  # two clear clusters around two orthogonal directions
    embeddings = _unit(topics[np.arange(400) % 2] + 0.3 * _unit(rng.standard_normal((400, 32))))
    middle = topics[0] + topics[1]
    apart = 0.05 * (topics[0] - topics[1])
    embeddings[[7, 8]] = _unit(np.stack([middle + apart, middle - apart]))  # cos 0.995, one on each side
    exact = _as_set(exact_pairs(embeddings, 0.95))
    assert (7, 8) in exact
    alone = clustered_pairs(embeddings, 0.95, clusters=2, probes=1)
    assert (7, 8) not in _as_set(alone) and _as_set(alone) < exact  # one each side of the boundary: not compared
    assert _as_set(clustered_pairs(embeddings, 0.95, clusters=2, probes=2)) == exact


def test_rows_without_embedding_are_nobodys_pair():
    embeddings = _topics(400, copies=20)
    embeddings[[3, 50]] = np.nan
    embeddings[51] = embeddings[50]
    for method in ("exact", "clustered"):
        found = find_duplicates(embeddings, 0.95, method=method, clusters=4, probes=4)
        assert not np.isin(found.pairs.index, [3, 50]).any()
        assert found.duplicate_of[[3, 50]].tolist() == [-1, -1]
        nothing = find_duplicates(np.full((5, 4), np.nan, np.float32), 0.95, method=method)
        assert nothing.duplicate_of.tolist() == [-1] * 5 and len(nothing.pairs) == 0


# -------------------------------------------------------------------------------------------------- groups
def test_planted_near_copy_is_the_only_duplicate():
    rng = np.random.default_rng(0)
    base = _unit(rng.standard_normal((6, 64)))
    copy = base[2] + 0.01 * rng.standard_normal(64).astype(np.float32)
    embeddings = np.vstack([base, copy, _unit(rng.standard_normal((1, 64)))])
    ids = [f"video{i // 3}/clip{i % 3}" for i in range(len(embeddings))]
    for method in ("exact", "clustered"):
        assert near_duplicates(ids, embeddings, 0.95, method=method, clusters=2) == {ids[6]: ids[2]}


def test_without_keep_columns_the_first_in_order_is_kept():
    embeddings = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.01]], dtype=np.float32)
    assert near_duplicates(["a", "b", "c"], embeddings, 0.99) == {"c": "a"}
    assert near_duplicates(["c", "b", "a"], embeddings[::-1], 0.99) == {"a": "c"}


def test_no_chaining_a_clip_is_rejected_only_for_a_kept_clip_it_resembles():
    # a~b (cos 0.98) and b~c (cos 0.98), a and c only 0.92 alike: b goes, c stays (it resembles nothing kept)
    angles = np.radians([0.0, 11.5, 23.0, 90.0])
    embeddings = np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)
    assert float(embeddings[0] @ embeddings[2]) < 0.95
    assert near_duplicates(["a", "b", "c", "d"], embeddings, 0.95) == {"b": "a"}
    # keep order b first: b stays, a and c both name b (each is above the threshold with b)
    found = find_duplicates(embeddings, 0.95, keep=[np.array([1.0, 2.0, 1.0, 1.0])])
    assert found.duplicate_of.tolist() == [1, -1, 1, -1]
    assert found.similarity[[0, 2]] == pytest.approx([np.cos(np.radians(11.5))] * 2, abs=1e-5)


def test_the_keep_rule_highest_score_then_longest_then_first():
    embeddings = np.tile(np.array([[1.0, 0.0]], dtype=np.float32), (5, 1))  # five copies of one clip
    embeddings[4] = [0.0, 1.0]
    score = np.array([25.0, 31.0, 31.0, np.nan, 40.0])  # row 4 scores best but is not a copy of the others
    duration = np.array([9.0, 3.0, 6.0, 20.0, 1.0])
    found = find_duplicates(embeddings, 0.95, keep=[score, duration])
    assert found.duplicate_of.tolist() == [2, 2, -1, 2, -1]  # 31 ties: the longer (row 2) stays; NaN score last
    assert keep_rank([score, duration]).tolist() == [3, 2, 1, 4, 0]
    assert keep_rank([np.array([1.0, 1.0, 1.0])]).tolist() == [0, 1, 2]  # ties: row order
    assert keep_rank([], n=2).tolist() == [0, 1]


def test_resolve_names_the_most_similar_kept_clip():
    pairs = np.array([[0, 3], [1, 3], [2, 3], [0, 1]])
    similarity = np.array([0.96, 0.99, 0.98, 0.97], dtype=np.float32)
    duplicate_of, chosen = resolve(4, pairs, similarity, rank=np.arange(4))
    # 1 is rejected for 0; so 3's kept partners are 0 and 2, and 2 (0.98) is the most similar
    assert duplicate_of.tolist() == [-1, 0, -1, 2] and chosen[3] == pytest.approx(0.98)
    assert np.isnan(chosen[[0, 2]]).all()


def test_bad_input_is_refused():
    embeddings = np.eye(3, dtype=np.float32)
    with pytest.raises(ValueError, match="2 ids but 3 embedding rows"):
        near_duplicates(["a", "b"], embeddings, 0.9)
    with pytest.raises(ValueError, match="unique"):
        near_duplicates(["a", "a", "b"], embeddings, 0.9)
    with pytest.raises(ValueError, match="threshold=1.5"):
        near_duplicates(["a", "b", "c"], embeddings, 1.5)
    with pytest.raises(ValueError, match="choose one of auto, exact, clustered"):
        find_duplicates(embeddings, 0.9, method="minhash")
    with pytest.raises(ValueError, match="probes >= 1"):
        clustered_pairs(embeddings, 0.9, probes=0)
    assert near_duplicates([], np.empty((0, 3), dtype=np.float32), 0.9) == {}
