"""Curated shards made in seconds, without a pipeline run: clip rows (span + the ingest columns) of real fixtures."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from curate.video.probe import probe


def clip_row(path: Path | str, start_s: float, end_s: float, caption: str | None = None) -> dict:
    """A row as the write step holds it: the video's ingest columns, the clip span, a score and a caption."""
    info = probe(str(path)).as_row()
    start_frame, end_frame = round(start_s * info["fps"]), round(end_s * info["fps"])
    return {"video_path": str(path), **info, "clip_id": f"{info['video_id']}_{start_frame:06d}_{end_frame:06d}",
            "clip_index": 0, "start_s": start_s, "end_s": end_s, "duration_s": end_s - start_s,
            "start_frame": start_frame, "end_frame": end_frame, "motion_score": 0.02,
            "caption": caption if caption is not None else f"a clip of {Path(path).name}"}


def write_shards(folder: Path, rows: list[dict], per_shard: int = 2) -> Path:
    """``rows`` as ``folder/part-NNNNN.parquet`` shards of ``per_shard`` rows; returns ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(rows)
    for i in range(0, len(rows), per_shard):
        pq.write_table(table.slice(i, per_shard), folder / f"part-{i // per_shard:05d}.parquet")
    return folder
