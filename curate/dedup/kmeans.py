"""Spherical k-means as Dask tasks (Lloyd's algorithm): the clusters of the clustered dedup method.

    >>> import numpy as np
    >>> from curate.dedup.kmeans import spherical_kmeans
    >>> rows = np.random.default_rng(0).standard_normal((20_000, 64)).astype(np.float32)
    >>> centroids = spherical_kmeans(rows, k=141, iterations=10, seed=0)   # [141, 64] unit rows

Each iteration is one task per chunk of rows (each row's nearest centroid by cosine, then the sum and count of
the rows of each centroid) and a sum of those on the client, so it runs on every worker of a Dask cluster while the
rows stay on the workers (the array is persisted once). Centroids start at k distinct random rows and are the
normalised mean of their rows after each iteration (a centroid left without rows keeps its place). Rows that are
not finite are ignored (made zeros: they add nothing to any centroid). On this project's 2-core CPU it took 2-10%
more CPU time than faiss's k-means on the same rows (``benchmarks/dedup_throughput.py --kmeans``), needs no extra
package, and is not bound to one machine.
"""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np

CHUNK_ROWS = 16_384


def spherical_kmeans(
    rows: np.ndarray | da.Array, k: int, iterations: int = 10, seed: int = 0, chunk_rows: int = CHUNK_ROWS
) -> np.ndarray:
    """[k', D] float32 unit centroids of ``rows`` ([n, D], any scale); k' = min(k, finite rows)."""
    # 1. the rows, normalised (a non-finite row becomes zeros: it moves no centroid), kept in memory (on the
    #    workers, with a cluster) for every iteration
    if isinstance(rows, np.ndarray):
        matrix = da.from_array(rows, chunks=(chunk_rows, -1), name=False)  # name=False: no hashing of the data
    else:
        matrix = rows.rechunk({1: -1})
    matrix = da.map_blocks(_unit_or_zero_rows, matrix, dtype=np.float32).persist()
    # 2. k distinct rows (not zeros) to start from
    finite = np.flatnonzero((da.absolute(matrix).max(axis=1) > 0).compute())
    k = min(k, len(finite))
    if k == 0:
        return np.empty((0, matrix.shape[1]), dtype=np.float32)
    start = np.sort(np.random.default_rng(seed).choice(finite, size=k, replace=False))
    centroids = matrix[start].compute()
    # 3. Lloyd's iterations: assign every row to its nearest centroid, move each centroid to its rows' mean direction
    blocks = matrix.to_delayed().ravel()
    for _ in range(iterations):
        shared = dask.delayed(centroids)
        parts = dask.compute(*[dask.delayed(_sums)(block, shared) for block in blocks])
        sums = np.sum([p[0] for p in parts], axis=0)
        counts = np.sum([p[1] for p in parts], axis=0)
        centroids = np.where(counts[:, None] > 0, _unit_rows(sums), centroids).astype(np.float32)
    return centroids


def _sums(block: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per centroid: the sum of the block's rows nearest to it (a sparse one-hot product), and their count."""
    from scipy.sparse import csr_matrix

    nearest = np.argmax(block @ centroids.T, axis=1)
    onehot = csr_matrix((np.ones(len(block), np.float32), (nearest, np.arange(len(block)))),
                        shape=(len(centroids), len(block)))
    return np.asarray(onehot @ block, dtype=np.float64), np.bincount(nearest, minlength=len(centroids))


def _unit_or_zero_rows(block: np.ndarray) -> np.ndarray:
    block = np.asarray(block, dtype=np.float32)
    unit = block / np.maximum(np.linalg.norm(block, axis=1, keepdims=True), 1e-12)
    return np.where(np.isfinite(unit).all(axis=1, keepdims=True), unit, np.float32(0.0))


def _unit_rows(block: np.ndarray) -> np.ndarray:
    block = np.asarray(block, dtype=np.float64)
    return block / np.maximum(np.linalg.norm(block, axis=1, keepdims=True), 1e-12)
