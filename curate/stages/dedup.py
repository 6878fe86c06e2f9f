"""Dedup: reject near-duplicate clips (cosine similarity of ``clip_embedding``), within and across videos.

    from curate.stages.dedup import Dedup
    stage = Dedup(threshold=0.95)      # method auto: exact all-pairs up to 20,000 clips, k-means clusters above
    stage.fit("RUN/10_aesthetic/data") # every pair above the threshold, as Dask tasks; the groups, on the client
    out = stage.process(table)         # duplicates rejected: dedup_near_duplicate, duplicate_of = the clip kept

Which clip of a group stays: the first in ``keep_by`` order (default: the highest ``clip_score``, then the longest
``duration_s``, then the first in run order). A clip is rejected when it is a near-duplicate of a clip kept before
it, and ``duplicate_of`` names the most similar such clip: every reject is above the threshold with the clip it
names, and no chaining (a~b~c with a and c unlike: c stays when b goes). A clip without an embedding is never
anybody's duplicate. Methods, and what they cost: see ``curate.dedup``.

Memory: the client holds the ids and ``keep_by`` columns (about 60 bytes a clip), each clip's nearest clusters (4
bytes a probe) and the pairs found; the embeddings, and the k-means sample, are read from the shards inside the Dask
tasks and stay on the workers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate.dedup import DEFAULT_BLOCK_SIZE, DEFAULT_PROBES, EXACT_MAX, METHODS, find_duplicates
from curate.stage import Stage, StageOutput

EMBEDDING = "clip_embedding"
#: input rows read by one Dask task (float32 rows of 768: 200 MB)
ROWS_PER_TASK = 65_536


class Dedup(Stage):
    name = "dedup"
    adds = {"duplicate_of": pa.string()}
    reject_reasons = ("dedup_near_duplicate",)

    def __init__(self, threshold: float = 0.95, method: str = "auto", keep_by: list[str] | None = None,
                 exact_max: int = EXACT_MAX, clusters: int | None = None, probes: int = DEFAULT_PROBES,
                 memory_gb: float = 4.0, block_size: int = DEFAULT_BLOCK_SIZE, seed: int = 0):
        """threshold: cosine similarity at or above which two clips are near-duplicates (0.9-0.98 for CLIP).
        method: auto | exact | clustered (auto: exact up to ``exact_max`` clips with an embedding).
        keep_by: columns deciding which clip of a group stays, higher first (default clip_score, duration_s).
        clusters: k-means clusters of the clustered method (null = √clips). probes: clusters each clip is compared
        in (its own + the nearest others; more finds more pairs near cluster boundaries, at more cost).
        memory_gb: copies of embeddings the clustered method holds at once, all Dask workers together
        (above it, the shards are read once more per extra wave). block_size: rows per block of similarities
        (memory ~ block_size² floats). seed: k-means sample and start."""
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"dedup.threshold is a cosine similarity in (0, 1], got {threshold}")
        if method not in METHODS:
            raise ValueError(f"dedup.method must be one of {', '.join(METHODS)}, got {method!r}")
        if block_size < 1 or probes < 1 or exact_max < 0 or memory_gb <= 0 or (clusters is not None and clusters < 1):
            raise ValueError("dedup: block_size, probes and clusters must be >= 1, exact_max >= 0, memory_gb > 0")
        self.threshold = threshold
        self.method = method
        self.keep_by = ["clip_score", "duration_s"] if keep_by is None else list(keep_by)
        self.exact_max = exact_max
        self.clusters = clusters
        self.probes = probes
        self.memory_gb = memory_gb
        self.block_size = block_size
        self.seed = seed
        self._duplicate_of: dict[str, tuple[str, float]] = {}

    @property
    def reads(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(dict.fromkeys(["clip_id", EMBEDDING, *self.keep_by]))

    def fit(self, input_dir: str) -> dict:
        """Find every near-duplicate over all input shards and decide which clip of each group stays."""
        # 1. ids and keep_by columns on the client; the embeddings as a Dask array read by the tasks themselves
        embeddings, table = read_shards(input_dir, self.keep_by)
        if table.num_rows == 0:
            self._duplicate_of = {}
            return {"clips": 0, "duplicates": 0}
        if pc.count_distinct(table["clip_id"]).as_py() != table.num_rows:
            raise ValueError(f"dedup: clip_id values are not unique in {input_dir}; every clip needs its own id")
        # 2. pairs above the threshold (exact or clustered), then the groups in keep_by order
        keep = [pc.cast(table[c], pa.float64()).to_numpy(zero_copy_only=False) for c in self.keep_by]
        found = find_duplicates(embeddings, self.threshold, keep=keep, method=self.method, exact_max=self.exact_max,
                                clusters=self.clusters, probes=self.probes, memory_bytes=int(self.memory_gb * 2**30),
                                block_size=self.block_size, seed=self.seed)
        # 3. what process() needs: rejected clip id -> (the clip kept, their cosine)
        ids = table["clip_id"].to_numpy(zero_copy_only=False)
        rejected = np.flatnonzero(found.duplicate_of >= 0)
        self._duplicate_of = {ids[i]: (ids[found.duplicate_of[i]], float(found.similarity[i])) for i in rejected}
        return {"clips": table.num_rows, **found.info}

    def process(self, table: pa.Table) -> StageOutput:
        matches = [self._duplicate_of.get(i) for i in table["clip_id"].to_pylist()]
        with_column = self.with_columns(table, {"duplicate_of": [m[0] if m else None for m in matches]})
        keep = pa.array([m is None for m in matches], pa.bool_())
        kept, rejected = with_column.filter(keep), with_column.filter(pc.invert(keep))
        details = [f"near-duplicate of {kept_id} (cosine {cosine:.4f} >= {self.threshold})"
                   for kept_id, cosine in (m for m in matches if m)]
        return StageOutput(kept=kept, rejected=self.reject(rejected, ["dedup_near_duplicate"] * len(details), details))


# ---------------------------------------------------------------------------------------------- reading shards
def read_shards(input_dir: str, columns: list[str], rows_per_task: int = ROWS_PER_TASK):
    """``(embeddings, table)`` for the shards ``part-*.parquet`` of ``input_dir``, rows in shard order.

    embeddings: a lazy [rows, dim] float32 Dask array, one task per ``rows_per_task`` rows; a row without
    embedding is NaN. table: ``clip_id`` and ``columns``, read by Dask tasks and gathered on the client.
    """
    import dask
    import dask.array as da

    files = sorted(Path(input_dir).glob("part-*.parquet"))
    counts = [pq.ParquetFile(f).metadata.num_rows for f in files]
    batches: list[list[Path]] = [[]]
    rows: list[int] = [0]
    for path, count in zip(files, counts):
        if rows[-1] >= rows_per_task:
            batches.append([])
            rows.append(0)
        batches[-1].append(path)
        rows[-1] += count
    wanted = list(dict.fromkeys(["clip_id", *columns]))
    tables = dask.compute(*[dask.delayed(_read_columns)(batch, wanted) for batch in batches if batch])
    table = pa.concat_tables(tables) if tables else pa.table({"clip_id": pa.array([], pa.string())})
    dim = _dimension(files)
    if dim is None:  # no clip has an embedding: nobody is anybody's duplicate
        return da.full((table.num_rows, 1), np.nan, dtype=np.float32), table
    parts = [da.from_delayed(dask.delayed(_read_matrix)(batch, dim), shape=(n, dim), dtype=np.float32)
             for batch, n in zip(batches, rows) if batch]
    return da.concatenate(parts), table


def _read_columns(files: list[Path], columns: list[str]) -> pa.Table:
    return pa.concat_tables([pq.read_table(f, columns=columns) for f in files], promote_options="permissive")


def _dimension(files: list[Path]) -> int | None:
    """Length of the first embedding in the shards (None: no clip has one)."""
    for path in files:
        column = pq.read_table(path, columns=[EMBEDDING])[EMBEDDING].drop_null()
        if len(column):
            return len(column[0])
    return None


def _read_matrix(files: list[Path], dim: int) -> np.ndarray:
    """[rows, dim] float32 embeddings of ``files``; NaN rows where a clip has none."""
    blocks = []
    for path in files:
        column = pq.read_table(path, columns=[EMBEDDING])[EMBEDDING].combine_chunks()
        block = np.full((len(column), dim), np.nan, dtype=np.float32)
        valid = column.is_valid().to_numpy(zero_copy_only=False)
        lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)[valid]
        if (lengths != dim).any():
            raise ValueError(f"{path}: {EMBEDDING} has {sorted(set(lengths.tolist()) | {dim})} values per clip: "
                             "clips embedded by different CLIP models cannot be compared; re-run the clip step")
        block[valid] = column.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim)
        blocks.append(block)
    return np.concatenate(blocks)
