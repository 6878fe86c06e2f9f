"""Dedup: reject near-duplicate clips (cosine similarity of ``clip_embedding``), within and across videos.

    from curate.stages.dedup import Dedup
    stage = Dedup(threshold=0.95)
    stage.fit("RUN/08_clip/data")      # all embeddings, compared block by block as Dask tasks
    out = stage.process(table)         # duplicates rejected: dedup_near_duplicate, duplicate_of = the clip kept

Groups of near-duplicates (connected components: a~b and b~c groups a, b, c) keep their first clip in run order
(shard by shard, row by row); every other clip of the group is rejected with ``duplicate_of`` naming the clip kept.
A clip without an embedding (NaN CLIP score) is never anybody's duplicate. The similarity matrix is never built
whole: see ``curate.dedup``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate.dedup import DEFAULT_BLOCK_SIZE, near_duplicates
from curate.stage import Stage, StageOutput


class Dedup(Stage):
    name = "dedup"
    reads = ("clip_id", "clip_embedding")
    adds = {"duplicate_of": pa.string()}
    reject_reasons = ("dedup_near_duplicate",)

    def __init__(self, threshold: float = 0.95, block_size: int = DEFAULT_BLOCK_SIZE):
        """threshold: cosine similarity at or above which two clips are near-duplicates (0.9-0.98 for CLIP).
        block_size: embeddings per Dask task block (memory per task ~ 2 * block_size * dim floats)."""
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"dedup.threshold is a cosine similarity in (0, 1], got {threshold}")
        if block_size < 1:
            raise ValueError(f"dedup.block_size must be >= 1, got {block_size}")
        self.threshold = threshold
        self.block_size = block_size
        self._duplicate_of: dict[str, str] = {}

    def fit(self, input_dir: str) -> dict:
        """Find every near-duplicate over all input shards: embeddings loaded shard by shard as a Dask array."""
        import dask
        import dask.array as da

        files = sorted(Path(input_dir).glob("part-*.parquet"))
        ids: list[str] = []
        blocks = []
        for path in files:
            meta = pq.read_table(path, columns=["clip_id", "clip_embedding"])
            valid = [i for i, e in enumerate(meta["clip_embedding"].to_pylist()) if e is not None]
            if not valid:
                continue
            ids += [meta["clip_id"][i].as_py() for i in valid]
            dim = len(meta["clip_embedding"][valid[0]].as_py())
            load = dask.delayed(_load_embeddings)(str(path), valid)
            blocks.append(da.from_delayed(load, shape=(len(valid), dim), dtype=np.float32))
        if not blocks:
            self._duplicate_of = {}
            return {"clips": 0, "duplicates": 0}
        embeddings = da.concatenate(blocks)
        self._duplicate_of = near_duplicates(ids, embeddings, self.threshold, block_size=self.block_size)
        return {"clips": len(ids), "duplicates": len(self._duplicate_of)}

    def process(self, table: pa.Table) -> StageOutput:
        ids = table["clip_id"].to_pylist()
        keep = [i not in self._duplicate_of for i in ids]
        with_column = self.with_columns(table, {"duplicate_of": [self._duplicate_of.get(i) for i in ids]})
        mask = pa.array(keep, pa.bool_())
        rejected = with_column.filter(pc.invert(mask))
        kept_ids = rejected["duplicate_of"].to_pylist()
        rejected = self.reject(rejected, ["dedup_near_duplicate"] * rejected.num_rows,
                               [f"near-duplicate of {k} (cosine >= {self.threshold})" for k in kept_ids])
        return StageOutput(kept=with_column.filter(mask), rejected=rejected)


def _load_embeddings(path: str, rows: list[int]) -> np.ndarray:
    column = pq.read_table(path, columns=["clip_embedding"])["clip_embedding"]
    return np.asarray([column[i].as_py() for i in rows], dtype=np.float32)
