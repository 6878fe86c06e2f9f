"""Which clip of a near-duplicate group is kept: a keep order, then one greedy pass over the pairs found.

    >>> import numpy as np
    >>> from curate.dedup.keep import keep_rank, resolve
    >>> rank = keep_rank([np.array([20.0, 31.0, 25.0])])       # clip_score: clip 1 first, then 2, then 0
    >>> pairs = np.array([[0, 1], [1, 2]])                     # 0~1 and 1~2, but 0 and 2 not alike
    >>> duplicate_of, similarity = resolve(3, pairs, np.array([0.97, 0.96], np.float32), rank)
    >>> duplicate_of.tolist()                                  # 1 is kept; 0 and 2 are duplicates of 1
    [1, -1, 1]

What a group is, exactly: clips are taken in keep order (``keep_rank``). A clip is kept unless it is a
near-duplicate (a pair above the threshold) of a clip *already kept*; then it is rejected and ``duplicate_of``
names the most similar kept clip among those. So every rejected clip is itself above the threshold with the clip
it names (no chaining), and no two kept clips form a pair. In a chain a~b~c where a and c are not alike, with a
first in keep order, b is rejected (duplicate of a) and c is kept: c resembles nothing that was kept.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def keep_rank(columns: Sequence[np.ndarray], n: int | None = None) -> np.ndarray:
    """Position of every row in the keep order: 0 = kept first. ``columns`` are "higher is better" values,
    compared in order (the first decides, the next breaks its ties, ...); a NaN ranks below every number;
    remaining ties go to the earlier row. With no columns, the order is the row order.
    """
    if n is None:
        if not columns:
            raise ValueError("keep_rank needs n when no columns are given")
        n = len(columns[0])
    keys = [np.arange(n)]
    for column in reversed(list(columns)):
        values = np.asarray(column, dtype=np.float64)
        if values.shape != (n,):
            raise ValueError(f"keep_rank: a column of shape {values.shape} for {n} rows")
        keys.append(np.where(np.isnan(values), np.inf, -values))  # lexsort is ascending: negate, NaN last
    order = np.lexsort(keys)  # the last key is the primary one
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    return rank


def resolve(
    n: int, pairs: np.ndarray, similarity: np.ndarray, rank: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy keep decisions over the pairs (see the module docstring): ``(duplicate_of, similarity)``.

    ``duplicate_of[i]`` is the row of the kept clip that row i duplicates, or -1 when row i is kept;
    ``similarity[i]`` is their cosine (NaN for kept rows). Runs in O(pairs log pairs).
    """
    duplicate_of = np.full(n, -1, dtype=np.int64)
    chosen = np.full(n, np.nan, dtype=np.float32)
    if len(pairs) == 0:
        return duplicate_of, chosen
    # 1. orient every pair: (better in keep order, worse)
    a, b = np.asarray(pairs, dtype=np.int64).T
    a_first = rank[a] < rank[b]
    better, worse = np.where(a_first, a, b), np.where(a_first, b, a)
    # 2. visit the worse clips in keep order; every clip ranked before a clip is decided before it
    order = np.lexsort((rank[better], rank[worse]))
    better, worse, sims = better[order], worse[order], np.asarray(similarity, np.float32)[order]
    starts = np.flatnonzero(np.r_[True, worse[1:] != worse[:-1]])
    ends = np.r_[starts[1:], len(worse)]
    kept = np.ones(n, dtype=bool)
    for start, end in zip(starts.tolist(), ends.tolist()):
        candidates = better[start:end]
        alive = kept[candidates]
        if not alive.any():
            continue  # every clip it resembles was itself rejected: it stays
        # 3. it duplicates a kept clip: name the most similar one (ties: the first in keep order)
        best = start + int(np.argmax(np.where(alive, sims[start:end], -np.inf)))
        row = int(worse[start])
        kept[row] = False
        duplicate_of[row], chosen[row] = better[best], sims[best]
    return duplicate_of, chosen
