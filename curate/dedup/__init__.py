"""Near-duplicate clips: pairs of clip embeddings with cosine similarity at or above a threshold, within and across
videos, and which clip of each group is kept.

    >>> import numpy as np
    >>> from curate.dedup import find_duplicates, near_duplicates
    >>> emb = np.array([[1, 0], [0.999, 0.045], [0, 1]], dtype=np.float32)   # rows: clips, any scale
    >>> near_duplicates(["v1/0", "v2/3", "v2/4"], emb, threshold=0.95)
    {'v2/3': 'v1/0'}
    >>> found = find_duplicates(emb, 0.95, keep=[np.array([20.0, 31.0, 25.0])])   # keep the higher clip_score
    >>> found.duplicate_of.tolist(), found.info["method"]
    ([1, -1, -1], 'exact')

Two steps:

1. **pairs** (``curate.dedup.pairs``): ``exact`` compares every pair (block by block, as Dask tasks); ``clustered``
   compares only clips that share one of their nearest k-means clusters (SemDeDup's method, with neighbouring
   clusters probed for clips near a boundary). ``auto`` (the default) uses exact all-pairs up to ``exact_max``
   embeddings and clustering above.
2. **groups** (``curate.dedup.keep``): clips in keep order (the ``keep`` columns, higher first, then row order);
   a clip is rejected when it pairs with a clip already kept, and names the most similar such clip. There is no
   transitive chaining: a rejected clip is always above the threshold with the clip it names, and no two kept
   clips are above it with each other.

Use a high threshold (0.9 or above for CLIP embeddings): the number of pairs grows fast as it goes down.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import dask.array as da
import numpy as np

from curate.dedup.keep import keep_rank, resolve
from curate.dedup.pairs import DEFAULT_BLOCK_SIZE, DEFAULT_PROBES, WAVE_BYTES, Pairs, clustered_pairs, exact_pairs

METHODS = ("auto", "exact", "clustered")
#: ``auto`` compares all pairs up to this many embeddings: at 20,000 768-d clips exact all-pairs took 8 CPU-s, the
#: clustered method 11 (benchmarks/dedup_throughput.py); at 100,000 exact would take ~25x that, clustered 56
EXACT_MAX = 20_000

__all__ = ["DEFAULT_BLOCK_SIZE", "DEFAULT_PROBES", "EXACT_MAX", "METHODS", "Duplicates", "Pairs", "clustered_pairs",
           "exact_pairs", "find_duplicates", "keep_rank", "near_duplicates", "resolve"]  # fmt: skip


@dataclass
class Duplicates:
    """Per row: ``duplicate_of`` (row of the kept clip it duplicates, -1 = kept) and ``similarity`` (their cosine,
    NaN when kept); ``pairs``: every pair found; ``info``: the method and how the work was split."""

    duplicate_of: np.ndarray
    similarity: np.ndarray
    pairs: Pairs
    info: dict[str, Any] = field(default_factory=dict)


def find_duplicates(
    embeddings: np.ndarray | da.Array,
    threshold: float,
    *,
    keep: Sequence[np.ndarray] = (),
    method: str = "auto",
    exact_max: int = EXACT_MAX,
    clusters: int | None = None,
    probes: int = DEFAULT_PROBES,
    block_size: int = DEFAULT_BLOCK_SIZE,
    memory_bytes: int = WAVE_BYTES,
    seed: int = 0,
) -> Duplicates:
    """Near-duplicate decisions for every row of ``embeddings`` ([clips, dim]; non-finite rows are nobody's pair).

    keep: "higher is better" columns deciding which clip of a group stays (first column first, NaN last, then
        row order), e.g. ``[clip_score, duration_s]``.
    method: auto | exact | clustered; exact_max: the largest size auto compares exactly.
    clusters, probes, seed: the clustered method's k (None = √n), clusters compared per clip, k-means seed;
    memory_bytes: its routed copies held at once (more: the input is read once more per extra wave).
    """
    if method not in METHODS:
        raise ValueError(f"dedup method {method!r}: choose one of {', '.join(METHODS)}")
    n = embeddings.shape[0]
    chosen = method if method != "auto" else ("exact" if n <= exact_max else "clustered")
    if chosen == "exact":
        pairs = exact_pairs(embeddings, threshold, block_size=block_size)
    else:
        pairs = clustered_pairs(embeddings, threshold, clusters=clusters, probes=probes, seed=seed,
                                block_size=block_size, memory_bytes=memory_bytes)
    rank = keep_rank(list(keep), n)
    duplicate_of, similarity = resolve(n, pairs.index, pairs.similarity, rank)
    info = dict(pairs.info, embeddings=n, pairs=len(pairs), duplicates=int((duplicate_of >= 0).sum()))
    return Duplicates(duplicate_of, similarity, pairs, info)


def near_duplicates(
    ids: Sequence[str], embeddings: np.ndarray | da.Array, threshold: float, **options: Any
) -> dict[str, str]:
    """Map each near-duplicate clip id to the id of the kept clip it duplicates (``find_duplicates``'s options).

    Kept clips are not in the result; with no ``keep`` columns the first in ``ids`` order is kept.
    """
    ids = list(ids)
    if len(ids) != len(set(ids)):
        raise ValueError("clip ids must be unique")
    if len(ids) != embeddings.shape[0]:
        raise ValueError(f"{len(ids)} ids but {embeddings.shape[0]} embedding rows")
    if not ids:
        return {}
    found = find_duplicates(embeddings, threshold, **options)
    return {ids[i]: ids[k] for i, k in enumerate(found.duplicate_of.tolist()) if k >= 0}
