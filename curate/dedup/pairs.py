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

**clustered** (SemDeDup's idea, Abbas et al. 2023), in four steps:

1. spherical k-means (``curate.dedup.kmeans``, as Dask tasks) on a random sample of the embeddings (at most 256
   clips per cluster): k = √n clusters by default;
2. every clip's ``probes`` nearest centroids, as Dask tasks: it is a *member* of the nearest one's cluster and a
   *visitor* of the others, so a near-duplicate that fell on the other side of a cluster boundary is still met;
3. clusters are packed into buckets (one task each, ~128k routed clips) and buckets into waves of at most
   ``memory_bytes`` of copies (4 GiB: a million 768-d clips at 4 probes in three waves);
4. per wave, the input is read again and each clip sent to its buckets (a float32 copy: the cosines are exactly
   those of exact all-pairs); a bucket task compares each cluster's members with each other and its visitors with
   its members.

Work is about n²/k · (2·probes − 1)/2 products plus n·k for the assignment, so k = √n balances the two. A pair
is missed only when neither clip has the other's cluster among its ``probes`` nearest centroids:
``benchmarks/dedup_throughput.py`` measures how often, against exact all-pairs.
"""

from __future__ import annotations

import heapq
import math
import time
from dataclasses import dataclass, field
from typing import Any

import dask
import dask.array as da
import numpy as np

from curate.dedup.kmeans import spherical_kmeans

DEFAULT_BLOCK_SIZE = 4096
#: clusters each clip is compared in: on synthetic CLIP-like clips, 8 find 98.7% of the pairs exact all-pairs finds
#: at a million clips (4: 95.2%, 12: 99.5%), 99.9% at 100,000, all at 20,000 (benchmarks/dedup_throughput.py)
DEFAULT_PROBES = 8
#: k-means trains on at most this many sampled clips per cluster (as faiss's default)
SAMPLE_PER_CLUSTER = 256
KMEANS_ITERATIONS = 10
#: clips (members + probing visitors) per bucket task, about: 128k float32 rows of 768 = 400 MB
ROWS_PER_BUCKET = 131_072
#: routed copies held at once, all workers together; more are made in waves (the input is read again)
WAVE_BYTES = 4 * 2**30


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
    matrix = _as_matrix(embeddings, threshold, block_size).rechunk((block_size, -1))
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
    probes: int = DEFAULT_PROBES,
    seed: int = 0,
    block_size: int = DEFAULT_BLOCK_SIZE,
    memory_bytes: int = WAVE_BYTES,
    sample_per_cluster: int = SAMPLE_PER_CLUSTER,
    kmeans_iterations: int = KMEANS_ITERATIONS,
) -> Pairs:
    """Pairs ``i < j`` with cosine >= ``threshold`` among clips that share one of their ``probes`` nearest k-means
    clusters (``clusters`` centroids; None = √n). At most ``memory_bytes`` of routed copies exist at once
    (all workers together): above that the embeddings are read again, once per extra wave. ``info`` says how the
    work was split."""
    if probes < 1:
        raise ValueError(f"{probes=}: each clip is compared within at least its own cluster (probes >= 1)")
    matrix = _as_matrix(embeddings, threshold, block_size)
    n, dim = matrix.shape
    k = max(1, min(clusters or round(math.sqrt(n)), n))
    # 1. k-means on a random sample of the clips, as Dask tasks
    clock = time.perf_counter()
    sample_size = min(n, sample_per_cluster * k)
    rng = np.random.default_rng(seed)
    sample = matrix[np.sort(rng.choice(n, size=sample_size, replace=False))] if sample_size < n else matrix
    found_centroids = spherical_kmeans(sample, k, kmeans_iterations, seed)
    if len(found_centroids) == 0:  # no clip has an embedding
        return _collect([], info={"method": "clustered", "clusters": 0, "probes": probes})
    k = len(found_centroids)
    probes = min(probes, k)
    centroids = dask.delayed(found_centroids)
    kmeans_s = time.perf_counter() - clock
    # 2. every clip's `probes` nearest clusters, its own first (-1: no embedding), as Dask tasks; [n, probes] here
    chunks, starts = matrix.to_delayed().ravel(), _starts(matrix)
    nearest = np.concatenate(dask.compute(*[dask.delayed(_nearest)(c, centroids, probes, block_size) for c in chunks]))
    # 3. clusters packed into buckets (one task each) and buckets into waves that fit in memory_bytes
    routed_rows = np.bincount(nearest[nearest >= 0].ravel(), minlength=k)
    bucket_of = _pack(routed_rows, ROWS_PER_BUCKET)
    bucket_rows = np.bincount(bucket_of, weights=routed_rows)
    waves = _pack(bucket_rows, max(1, memory_bytes // (4 * dim)))
    # 4. per wave: the chunks are read again, their clips routed to the wave's buckets as members of their own
    #    cluster and visitors of the next ones; per bucket: pairs among members and between visitors and members
    found = []
    for wave in range(int(waves.max(initial=-1)) + 1):
        buckets = np.flatnonzero(waves == wave)
        routed = [dask.delayed(_route, nout=len(buckets))(chunk, start, nearest[start : start + size], bucket_of,
                                                            buckets)
                  for chunk, start, size in zip(chunks, starts, matrix.chunks[0])]  # fmt: skip
        found += dask.compute(*[dask.delayed(_bucket_pairs)([r[b] for r in routed], threshold, block_size)
                                for b in range(len(buckets))])
    members = np.bincount(nearest[:, 0][nearest[:, 0] >= 0], minlength=k)
    info = {
        "method": "clustered", "clusters": k, "probes": probes, "kmeans_sample": sample_size,
        "kmeans_seconds": round(kmeans_s, 3), "compare_seconds": round(time.perf_counter() - clock - kmeans_s, 3),
        "buckets": len(bucket_rows), "waves": int(waves.max(initial=-1)) + 1, "largest_cluster": int(members.max()),
        "compared_pairs": int(sum(f[2] for f in found)),
    }  # fmt: skip
    return _collect([(f[0], f[1]) for f in found], info=info)


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
    return matrix.astype(np.float32).rechunk({1: -1})  # a Dask array keeps its row chunks (its read tasks)


def _starts(matrix: da.Array) -> list[int]:
    return np.concatenate([[0], np.cumsum(matrix.chunks[0])[:-1]]).astype(int).tolist()


def _unit_rows(block: np.ndarray) -> np.ndarray:
    block = np.asarray(block, dtype=np.float32)
    norms = np.linalg.norm(block, axis=1, keepdims=True)
    return block / np.maximum(norms, 1e-12)


def _block_pairs(rows: np.ndarray, cols: np.ndarray, row_start: int, col_start: int, threshold: float):
    """Pairs above threshold between two row blocks, in global indices, upper triangle only."""
    scores = _unit_rows(rows) @ _unit_rows(cols).T
    hit_rows, hit_cols = np.nonzero(scores >= threshold)
    keep = hit_rows + row_start < hit_cols + col_start
    hit_rows, hit_cols = hit_rows[keep], hit_cols[keep]
    return np.stack([hit_rows + row_start, hit_cols + col_start], axis=1).astype(np.int64), scores[hit_rows, hit_cols]


def _nearest(chunk: np.ndarray, centroids: np.ndarray, probes: int, block_size: int) -> np.ndarray:
    """[rows, probes] int32: each row's nearest centroids by cosine, nearest first; -1 for a non-finite row."""
    unit = _unit_rows(chunk)
    nearest = np.full((len(unit), probes), -1, dtype=np.int32)
    valid = np.flatnonzero(np.isfinite(unit).all(axis=1))
    for i in range(0, len(valid), block_size):  # [block, k] scores at a time
        rows = valid[i : i + block_size]
        scores = unit[rows] @ centroids.T
        top = np.argpartition(-scores, probes - 1, axis=1)[:, :probes]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
        nearest[rows] = np.take_along_axis(top, order, axis=1)
    return nearest


def _pack(weights: np.ndarray, capacity: int) -> np.ndarray:
    """Items into bins of about ``capacity`` total weight, heaviest first (an item heavier than that: alone)."""
    bins = np.zeros(len(weights), dtype=np.int64)
    order = np.argsort(-np.asarray(weights), kind="stable")
    loads: list[float] = []
    heap: list[tuple[float, int]] = []  # (load, bin) of the open bins, lightest first
    for item in order.tolist():
        weight = float(weights[item])
        if heap and heap[0][0] + weight <= capacity:
            load, target = heapq.heappop(heap)
        else:
            load, target = 0.0, len(loads)
            loads.append(0.0)
        loads[target] = load + weight
        bins[item] = target
        heapq.heappush(heap, (loads[target], target))
    return bins


def _route(chunk: np.ndarray, start: int, nearest: np.ndarray, bucket_of: np.ndarray, buckets: np.ndarray):
    """Per bucket of ``buckets``: (member rows, their cluster, unit embeddings; visitor rows, cluster visited, unit
    embeddings), for this chunk's clips."""
    unit = _unit_rows(chunk)
    rows = np.arange(start, start + len(unit), dtype=np.int64)
    own, other = nearest[:, 0], nearest[:, 1:]
    visitor, slot = np.nonzero(other >= 0)
    visited = other[visitor, slot]
    own_bucket = np.where(own >= 0, bucket_of[np.maximum(own, 0)], -1)
    visit_bucket = bucket_of[visited]
    pieces = []
    for bucket in buckets.tolist():
        member = np.flatnonzero(own_bucket == bucket)
        visit = np.flatnonzero(visit_bucket == bucket)
        pieces.append((rows[member], own[member], unit[member],
                       rows[visitor[visit]], visited[visit], unit[visitor[visit]]))  # fmt: skip
    return tuple(pieces)


def _bucket_pairs(pieces: list[tuple], threshold: float, block_size: int):
    """Pairs of one bucket's clusters: (pairs, similarities, products computed)."""
    m_rows, m_cluster, m_unit, v_rows, v_cluster, v_unit = (np.concatenate(p) for p in zip(*pieces))
    members, visitors = np.argsort(m_cluster, kind="stable"), np.argsort(v_cluster, kind="stable")
    m_bounds, v_bounds = _groups(m_cluster[members]), _groups(v_cluster[visitors])
    found, sims, products = [], [], 0
    for cluster, (m0, m1) in m_bounds.items():
        own = members[m0:m1]
        unit = m_unit[own]
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
                scores = v_unit[part] @ unit.T
                a, b = np.nonzero(scores >= threshold)
                found.append(np.stack([v_rows[part[a]], m_rows[own[b]]], axis=1))
                sims.append(scores[a, b])
                products += scores.size
    pairs = np.concatenate(found) if found else np.empty((0, 2), dtype=np.int64)
    similarity = np.concatenate(sims) if sims else np.empty(0, dtype=np.float32)
    return pairs, similarity, products


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
