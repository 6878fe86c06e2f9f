"""Pairs of embeddings whose cosine similarity is at or above a threshold: exact all-pairs, or within k-means clusters.

    >>> import numpy as np
    >>> from curate.dedup.pairs import clustered_pairs, exact_pairs
    >>> emb = np.random.default_rng(0).standard_normal((5000, 64)).astype(np.float32)
    >>> emb[4999] = emb[7] + 0.01                          # a planted near-copy
    >>> exact_pairs(emb, 0.95).index.tolist()              # every pair compared: [[7, 4999]]
    >>> clustered_pairs(emb, 0.95, clusters=70, probes=3).index.tolist()   # ~3/70 of the work, same answer here

Both run as Dask tasks on whatever scheduler is active (the runner's cluster, else threads) and accept a NumPy or
a Dask array of any scale; rows that are not finite (a clip without embedding) are never in a pair.

**exact**: the rows are cut into blocks of ``block_size``; each pair of blocks (upper triangle) is one task. Work
grows as n²: fine for tens of thousands of clips, hours at a million.

**clustered** (SemDeDup's idea, Abbas et al. 2023): spherical k-means (faiss) on a sample of the unit-normalised
embeddings; each clip then belongs to its nearest centroid's cluster, and is compared with the members of its
``probes`` nearest clusters (its own and the next ones), so a near-duplicate that fell on the other side of a
cluster boundary is still found. Work is about n²/k · (2·probes − 1)/2 products plus n·k for the assignment;
k = √n balances the two. A pair is missed only when neither clip has the other's cluster among its ``probes``
nearest: ``benchmarks/dedup_throughput.py`` measures how often. The clips are routed to their clusters as float16
copies (half the memory; cosines within ~1e-4 of float32), grouped in buckets of clusters, one task per bucket.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import dask
import dask.array as da
import numpy as np

DEFAULT_BLOCK_SIZE = 4096
#: k-means trains on at most this many sampled clips per cluster (faiss's own default is 256)
SAMPLE_PER_CLUSTER = 256
KMEANS_ITERATIONS = 10
#: clips (members + probing visitors) per bucket task, about: 256k float16 rows of 768 = 400 MB
ROWS_PER_BUCKET = 262_144


@dataclass
class Pairs:
    """Row pairs ``index`` [P, 2] (i < j, sorted, unique) with their cosine ``similarity`` [P] (float32)."""

    index: np.ndarray
    similarity: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.index)


def exact_pairs(embeddings: np.ndarray | da.Array, threshold: float, *, block_size: int = DEFAULT_BLOCK_SIZE) -> Pairs:
    """Every pair ``i < j`` with cosine >= ``threshold``, comparing all pairs block by block."""
    matrix = _as_matrix(embeddings, threshold, block_size)
    blocks = matrix.to_delayed().ravel()
    starts = _starts(matrix)
    tasks = [
        dask.delayed(_block_pairs)(blocks[i], blocks[j], starts[i], starts[j], threshold)
        for i in range(len(blocks))
        for j in range(i, len(blocks))
    ]
    return _collect(dask.compute(*tasks), info={"method": "exact", "tasks": len(tasks)})


def clustered_pairs(
    embeddings: np.ndarray | da.Array,
    threshold: float,
    *,
    clusters: int | None = None,
    probes: int = 4,
    seed: int = 0,
    block_size: int = DEFAULT_BLOCK_SIZE,
    sample_per_cluster: int = SAMPLE_PER_CLUSTER,
    kmeans_iterations: int = KMEANS_ITERATIONS,
) -> Pairs:
    """Pairs ``i < j`` with cosine >= ``threshold`` among clips that share one of their ``probes`` nearest k-means
    clusters (``clusters`` centroids; None = √n). ``info`` says how the work was split."""
    if probes < 1:
        raise ValueError(f"{probes=}: each clip is compared within at least its own cluster (probes >= 1)")
    matrix = _as_matrix(embeddings, threshold, block_size)
    n = matrix.shape[0]
    k = max(1, min(clusters or round(math.sqrt(n)), n))
    probes = min(probes, k)
    # 1. k-means on a sample, on the client (faiss, every core)
    start = time.perf_counter()
    sample = _sample_rows(matrix, min(n, sample_per_cluster * k), seed)
    k = max(1, min(k, len(sample)))
    centroids = train_kmeans(sample, k, kmeans_iterations, seed)
    kmeans_s = time.perf_counter() - start
    # 2. route every clip to its cluster (member) and its next probes-1 clusters (visitor), by buckets of clusters
    buckets = max(1, min(k, math.ceil(n * probes / ROWS_PER_BUCKET)))
    shared = dask.delayed(centroids)
    chunks = matrix.to_delayed().ravel()
    routed = [
        dask.delayed(_route, nout=buckets)(chunk, start_row, shared, probes, buckets, block_size)
        for chunk, start_row in zip(chunks, _starts(matrix))
    ]
    # 3. one task per bucket: pairs among each cluster's members, and between its visitors and members
    tasks = [dask.delayed(_bucket_pairs)([r[b] for r in routed], threshold, block_size) for b in range(buckets)]
    start = time.perf_counter()
    found = dask.compute(*tasks)
    sizes = np.concatenate([f[2] for f in found])
    info = {
        "method": "clustered", "clusters": k, "probes": probes, "kmeans_sample": len(sample),
        "kmeans_seconds": round(kmeans_s, 3), "compare_seconds": round(time.perf_counter() - start, 3),
        "buckets": buckets, "largest_cluster": int(sizes.max(initial=0)),
        "compared_pairs": int(sum(f[3] for f in found)),
    }  # fmt: skip
    return _collect([(f[0], f[1]) for f in found], info=info)


def train_kmeans(sample: np.ndarray, k: int, iterations: int = KMEANS_ITERATIONS, seed: int = 0) -> np.ndarray:
    """[k, D] float32 centroids of spherical k-means (faiss) on unit rows ``sample``."""
    import faiss

    sample = np.ascontiguousarray(sample, dtype=np.float32)
    if k == 1:
        return _unit_rows(sample.mean(axis=0, keepdims=True))
    per_cluster = math.ceil(len(sample) / k)  # the caller sampled already: faiss must not sample again
    kmeans = faiss.Kmeans(sample.shape[1], k, niter=iterations, seed=seed, spherical=True, verbose=False,
                          max_points_per_centroid=per_cluster + 1, min_points_per_centroid=1)
    kmeans.train(sample)
    return np.ascontiguousarray(kmeans.centroids, dtype=np.float32)


# ------------------------------------------------------------------------------------------------- helpers
def _as_matrix(embeddings: np.ndarray | da.Array, threshold: float, block_size: int) -> da.Array:
    if not -1.0 <= threshold <= 1.0:
        raise ValueError(f"{threshold=}: a cosine similarity threshold lies in [-1, 1] (0.95 is a usual choice)")
    if block_size < 1:
        raise ValueError(f"{block_size=} must be >= 1")
    matrix = da.asarray(embeddings)
    if matrix.ndim != 2:
        raise ValueError(f"embeddings must be a 2-D [clips, dim] array, got shape {matrix.shape}")
    if isinstance(embeddings, np.ndarray):
        matrix = matrix.rechunk((block_size, -1))
    return matrix.astype(np.float32).rechunk({1: -1})


def _starts(matrix: da.Array) -> list[int]:
    return np.concatenate([[0], np.cumsum(matrix.chunks[0])[:-1]]).astype(int).tolist()


def _unit_rows(block: np.ndarray) -> np.ndarray:
    block = np.asarray(block, dtype=np.float32)
    norms = np.linalg.norm(block, axis=1, keepdims=True)
    return block / np.maximum(norms, 1e-12)


def _sample_rows(matrix: da.Array, size: int, seed: int) -> np.ndarray:
    """``size`` random rows (fewer: the non-finite ones are dropped), unit-normalised, as a NumPy array."""
    n = matrix.shape[0]
    index = np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False)) if size < n else np.arange(n)
    rows = _unit_rows(matrix[index].compute())
    return rows[np.isfinite(rows).all(axis=1)]


def _block_pairs(rows: np.ndarray, cols: np.ndarray, row_start: int, col_start: int, threshold: float):
    """Pairs above threshold between two row blocks, in global indices, upper triangle only."""
    scores = _unit_rows(rows) @ _unit_rows(cols).T
    hit_rows, hit_cols = np.nonzero(scores >= threshold)
    keep = hit_rows + row_start < hit_cols + col_start
    hit_rows, hit_cols = hit_rows[keep], hit_cols[keep]
    return np.stack([hit_rows + row_start, hit_cols + col_start], axis=1).astype(np.int64), scores[hit_rows, hit_cols]


def _route(chunk: np.ndarray, start: int, centroids: np.ndarray, probes: int, buckets: int, block_size: int):
    """Per bucket: (member rows, their cluster, float16 rows; visitor rows, cluster visited, float16 rows)."""
    unit = _unit_rows(chunk)
    valid = np.flatnonzero(np.isfinite(unit).all(axis=1))
    unit, rows = unit[valid], valid.astype(np.int64) + start
    nearest = np.empty((len(rows), probes), dtype=np.int64)
    for i in range(0, len(rows), block_size):  # [block, k] scores at a time
        scores = unit[i : i + block_size] @ centroids.T
        top = np.argpartition(-scores, probes - 1, axis=1)[:, :probes]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
        nearest[i : i + block_size] = np.take_along_axis(top, order, axis=1)
    half = unit.astype(np.float16)
    own, other = nearest[:, 0], nearest[:, 1:]
    visitor_of = np.repeat(np.arange(len(rows)), probes - 1)
    visited = other.ravel()
    pieces = []
    for bucket in range(buckets):
        member = np.flatnonzero(own % buckets == bucket)
        visit = np.flatnonzero(visited % buckets == bucket)
        pieces.append((rows[member], own[member], half[member],
                       rows[visitor_of[visit]], visited[visit], half[visitor_of[visit]]))  # fmt: skip
    return tuple(pieces)


def _bucket_pairs(pieces: list[tuple], threshold: float, block_size: int):
    """Pairs of one bucket's clusters: (pairs, similarities, member count per cluster, products computed)."""
    m_rows, m_cluster, m_half, v_rows, v_cluster, v_half = (np.concatenate(p) for p in zip(*pieces))
    members, visitors = np.argsort(m_cluster, kind="stable"), np.argsort(v_cluster, kind="stable")
    m_bounds, v_bounds = _groups(m_cluster[members]), _groups(v_cluster[visitors])
    found, sims, sizes, products = [], [], [], 0
    for cluster, (m0, m1) in m_bounds.items():
        own = members[m0:m1]
        unit = _unit_rows(m_half[own])  # back to float32, norms re-made exact
        sizes.append(len(own))
        for i in range(0, len(own), block_size):  # members x members, upper triangle
            scores = unit[i : i + block_size] @ unit[i:].T
            a, b = np.nonzero(scores >= threshold)
            keep = a < b  # positions a + i < b + i
            a, b = a[keep], b[keep]
            found.append(np.stack([m_rows[own[a + i]], m_rows[own[b + i]]], axis=1))
            sims.append(scores[a, b])
            products += scores.size
        if cluster in v_bounds:  # visitors x members
            v0, v1 = v_bounds[cluster]
            guests = visitors[v0:v1]
            for j in range(0, len(guests), block_size):
                part = guests[j : j + block_size]
                scores = _unit_rows(v_half[part]) @ unit.T
                a, b = np.nonzero(scores >= threshold)
                found.append(np.stack([v_rows[part[a]], m_rows[own[b]]], axis=1))
                sims.append(scores[a, b])
                products += scores.size
    pairs = np.concatenate(found) if found else np.empty((0, 2), dtype=np.int64)
    similarity = np.concatenate(sims) if sims else np.empty(0, dtype=np.float32)
    return pairs, similarity, np.asarray(sizes, dtype=np.int64), products


def _groups(sorted_keys: np.ndarray) -> dict[int, tuple[int, int]]:
    """key -> (start, end) of its run in a sorted array."""
    if len(sorted_keys) == 0:
        return {}
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    ends = np.r_[starts[1:], len(sorted_keys)]
    return {int(sorted_keys[s]): (int(s), int(e)) for s, e in zip(starts, ends)}


def _collect(results, info: dict[str, Any]) -> Pairs:
    """Concatenate per-task (pairs, similarities): each pair as (low, high), found once."""
    parts = [r for r in results if len(r[0])]
    if not parts:
        return Pairs(np.empty((0, 2), dtype=np.int64), np.empty(0, dtype=np.float32), info)
    index = np.sort(np.concatenate([p[0] for p in parts]).astype(np.int64), axis=1)
    similarity = np.concatenate([p[1] for p in parts]).astype(np.float32)
    width = int(index.max()) + 1
    _, first = np.unique(index[:, 0] * width + index[:, 1], return_index=True)  # sorted by (i, j), each once
    return Pairs(index[first], similarity[first], info)
