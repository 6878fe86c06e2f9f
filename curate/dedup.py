"""Near-duplicate clips: cosine similarity of clip embeddings above a threshold, within and across videos.

    >>> import numpy as np
    >>> from curate.dedup import near_duplicates
    >>> emb = np.array([[1, 0], [0.999, 0.045], [0, 1]], dtype=np.float32)   # rows: clips, any scale
    >>> near_duplicates(["v1/0", "v2/3", "v2/4"], emb, threshold=0.95)
    {'v2/3': 'v1/0'}

The similarity matrix is never built whole: embeddings are split into row blocks of ``block_size`` and
each pair of blocks (upper triangle only) is one Dask task that returns the index pairs above the
threshold, so memory per task is ``2 * block_size * D`` floats plus a ``block_size**2`` block of scores.
The tasks run on whatever Dask scheduler is active (a ``distributed.Client`` if one is set up).
Duplicates are grouped into connected components (a~b and b~c puts a, b and c together even if
a and c are not similar) and each group keeps its first clip in the given order; every other clip
in the group maps to that kept clip. Use a high threshold (0.9 or above for CLIP embeddings): the
number of pairs returned grows fast as it goes down.
"""

from __future__ import annotations

from collections.abc import Sequence

import dask
import dask.array as da
import numpy as np

DEFAULT_BLOCK_SIZE = 4096


def similar_pairs(
    embeddings: np.ndarray | da.Array, threshold: float, *, block_size: int = DEFAULT_BLOCK_SIZE
) -> np.ndarray:
    """All index pairs ``(i, j)``, ``i < j``, whose cosine similarity is >= ``threshold``; an [P, 2] int64 array."""
    if not -1.0 <= threshold <= 1.0:
        raise ValueError(f"{threshold=}: a cosine similarity threshold lies in [-1, 1] (0.95 is a usual choice)")
    if block_size < 1:
        raise ValueError(f"{block_size=} must be >= 1")
    matrix = da.asarray(embeddings)
    if matrix.ndim != 2:
        raise ValueError(f"embeddings must be a 2-D [clips, dim] array, got shape {matrix.shape}")
    matrix = matrix.astype(np.float32).rechunk((block_size, -1))
    blocks = matrix.to_delayed().ravel()
    starts = np.concatenate([[0], np.cumsum(matrix.chunks[0])[:-1]]).tolist()
    tasks = [
        dask.delayed(_block_pairs)(blocks[i], blocks[j], starts[i], starts[j], threshold)
        for i in range(len(blocks))
        for j in range(i, len(blocks))
    ]
    found = dask.compute(*tasks)
    return np.concatenate(found) if found else np.empty((0, 2), dtype=np.int64)


def _block_pairs(rows: np.ndarray, cols: np.ndarray, row_start: int, col_start: int, threshold: float) -> np.ndarray:
    """Pairs above threshold between two row blocks, in global indices, upper triangle only."""
    scores = _unit_rows(rows) @ _unit_rows(cols).T
    hit_rows, hit_cols = np.nonzero(scores >= threshold)
    pairs = np.stack([hit_rows + row_start, hit_cols + col_start], axis=1).astype(np.int64)
    return pairs[pairs[:, 0] < pairs[:, 1]]


def _unit_rows(block: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(block, axis=1, keepdims=True)
    return block / np.maximum(norms, 1e-12)


def keep_first(num_items: int, pairs: np.ndarray) -> np.ndarray:
    """For each item, the index of the item kept for its connected component (the smallest index in it)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    ones = np.ones(len(pairs), dtype=np.int8)
    graph = coo_matrix((ones, (pairs[:, 0], pairs[:, 1])), shape=(num_items, num_items))
    _, labels = connected_components(graph, directed=False)
    first = np.full(labels.max() + 1 if num_items else 0, num_items, dtype=np.int64)
    np.minimum.at(first, labels, np.arange(num_items))
    return first[labels]


def near_duplicates(
    ids: Sequence[str],
    embeddings: np.ndarray | da.Array,
    threshold: float,
    *,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> dict[str, str]:
    """Map each near-duplicate clip id to the id of the clip kept in its place (the first in ``ids`` order).

    Clips that are nobody's duplicate, and the kept clips themselves, are not in the result.
    """
    ids = list(ids)
    if len(ids) != len(set(ids)):
        raise ValueError("clip ids must be unique")
    if len(ids) != embeddings.shape[0]:
        raise ValueError(f"{len(ids)} ids but {embeddings.shape[0]} embedding rows")
    if not ids:
        return {}
    kept = keep_first(len(ids), similar_pairs(embeddings, threshold, block_size=block_size))
    return {ids[i]: ids[k] for i, k in enumerate(kept.tolist()) if k != i}
