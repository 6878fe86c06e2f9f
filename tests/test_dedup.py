"""Near-duplicate detection: planted copies, chains, block boundaries, Dask input."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

from curate.dedup import keep_first, near_duplicates, similar_pairs


def _unit(rng, n, dim=64):
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_planted_near_copy_is_the_only_duplicate():
    rng = np.random.default_rng(0)
    base = _unit(rng, 6)
    copy = base[2] + 0.01 * rng.standard_normal(64).astype(np.float32)
    unrelated = _unit(rng, 1)[0]
    embeddings = np.vstack([base, copy, unrelated])
    ids = [f"video{i // 3}/clip{i % 3}" for i in range(len(embeddings))]
    assert near_duplicates(ids, embeddings, threshold=0.95) == {ids[6]: ids[2]}


def test_the_first_in_the_given_order_is_kept():
    embeddings = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.01]], dtype=np.float32)
    assert near_duplicates(["a", "b", "c"], embeddings, 0.99) == {"c": "a"}
    assert near_duplicates(["c", "b", "a"], embeddings[::-1], 0.99) == {"a": "c"}


def test_chain_resolves_to_the_kept_clip():
    # a~b (cos 0.98) and b~c (cos 0.98) but a and c only 0.92 apart: c still maps to a, never to dropped b
    angles = np.radians([0.0, 11.5, 23.0, 90.0])
    embeddings = np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)
    assert float(embeddings[0] @ embeddings[2]) < 0.95
    assert near_duplicates(["a", "b", "c", "d"], embeddings, 0.95) == {"b": "a", "c": "a"}


def test_blocks_and_dask_input_give_the_numpy_answer():
    rng = np.random.default_rng(1)
    embeddings = _unit(rng, 23)
    embeddings[[5, 11, 22]] = embeddings[0] + 0.01 * rng.standard_normal((3, 64)).astype(np.float32)
    embeddings[17] = embeddings[8]
    ids = [str(i) for i in range(23)]
    expected = {"5": "0", "11": "0", "22": "0", "17": "8"}
    assert near_duplicates(ids, embeddings, 0.95, block_size=4096) == expected
    assert near_duplicates(ids, embeddings, 0.95, block_size=4) == expected  # 6 blocks, pairs across blocks
    lazy = da.from_array(embeddings, chunks=(7, 64))
    assert near_duplicates(ids, lazy, 0.95, block_size=5) == expected


def test_similar_pairs_matches_the_full_matrix():
    rng = np.random.default_rng(2)
    embeddings = _unit(rng, 30, dim=3)  # low dimension: many pairs above 0.8
    full = embeddings @ embeddings.T
    expected = {(i, j) for i in range(30) for j in range(i + 1, 30) if full[i, j] >= 0.8}
    found = similar_pairs(embeddings, 0.8, block_size=7)
    assert {tuple(pair) for pair in found.tolist()} == expected


def test_keep_first_connected_components():
    pairs = np.array([[3, 4], [1, 3], [5, 6]])
    assert keep_first(7, pairs).tolist() == [0, 1, 2, 1, 1, 5, 5]
    assert keep_first(3, np.empty((0, 2), dtype=np.int64)).tolist() == [0, 1, 2]


def test_bad_input_is_refused():
    embeddings = np.eye(3, dtype=np.float32)
    with pytest.raises(ValueError, match="2 ids but 3 embedding rows"):
        near_duplicates(["a", "b"], embeddings, 0.9)
    with pytest.raises(ValueError, match="unique"):
        near_duplicates(["a", "a", "b"], embeddings, 0.9)
    with pytest.raises(ValueError, match="threshold=1.5"):
        near_duplicates(["a", "b", "c"], embeddings, 1.5)
    assert near_duplicates([], np.empty((0, 3), dtype=np.float32), 0.9) == {}
