"""Write: the curated dataset: the kept clips of the last filter as Parquet shards of a target size, plus a card.

    curate run configs/offline.yaml --out runs/demo                          # write is the last step
    curate run configs/offline.yaml --out runs/demo --only write --set write.target_rows=10000

    import pyarrow.dataset as ds, duckdb
    clips = ds.dataset("runs/demo/07_write/data").to_table()                 # or pandas, HF datasets.load_dataset
    duckdb.sql("select count(*) from read_parquet('runs/demo/07_write/data/*.parquet')")

``RUN/NN_write/data/part-*.parquet`` hold every column the pipeline produced (clip span, scores, captions,
embeddings, source video metadata), one row per kept clip, in the order of the step before; rows are re-sharded
into files of about ``target_mb`` megabytes and/or ``target_rows`` rows (whichever is reached first; the size of
a shard is estimated from the compressed bytes per row of its input shards). ``RUN/NN_write/dataset.json`` is the
dataset card (``dataset_card``): the funnel (videos in, clips after split, kept and rejected by reason at every
step, from each step's ``stats.json``), the filter rules with their resolved thresholds, the models used, the
config hash, the curate version and the schema. It is written once every shard is, then ``stats.json``.

With ``buckets`` (``write.buckets: {aspect: [0.5625, 1.0, 1.778], height: [256, 512, 720], frames: [16, 32, 64]}``,
any subset of the keys; see ``curate.buckets`` for "nearest"), each clip gets a ``bucket`` column naming its nearest
bucket (``aspect1.778_h720_f64``) and the shards go in one folder per bucket, hive-style, the bucket in the folder
name only: ``data/bucket=aspect1.778_h720_f64/part-*.parquet`` (each output shard is cut by bucket, so a bucket's
files are the size of its part of each shard). Read them with the bucket as a column::

    clips = ds.dataset("runs/demo/07_write/data", partitioning="hive").to_table()   # or pq.read_table(folder)
    duckdb.sql("select bucket, count(*) from read_parquet('runs/demo/07_write/data/*/*.parquet') group by bucket")

and the card gets ``buckets``: per bucket its clips and hours, and their totals (= the dataset's).

Write rejects nothing: kept = its input. Cutting clips into media files is ``curate export``; reading them into a
training loop is ``curate.training.ClipDataset``.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from curate.buckets import check_buckets, clip_buckets
from curate.rundir import INPUTS_DIR, StageDir, atomic_write_json, data_files, partition_values, read_json, stage_dirs
from curate.sharding import ShardPolicy, ShardSlice
from curate.stage import Stage, StageOutput

CARD_FILE = "dataset.json"
#: A step parameter whose name matches this names a model or its weights: the card lists it under ``models``.
#: The column naming each clip's bucket (``write.buckets``), and the partition folders' key.
BUCKET_COLUMN = "bucket"
MODEL_PARAM = re.compile(r"model|pretrained|weights|checkpoint|gguf")
_MB = 1_000_000


class Write(Stage):
    name = "write"
    reads = ("clip_id",)
    adds = {}

    def __init__(self, target_mb: float | None = 256.0, target_rows: int | None = None,
                 buckets: dict[str, list[float]] | None = None):
        """target_mb: shards of about this many megabytes (1 MB = 10^6 bytes) on disk; null = no size limit.
        target_rows: at most this many rows per shard; null = no row limit. Give at least one of the two.
        buckets: training buckets, e.g. {aspect: [0.5625, 1.0, 1.778], height: [256, 512, 720], frames: [16, 32,
            64]} (any of the keys): each clip goes to its nearest, named in a ``bucket`` column, one folder of shards
            per bucket. null: no buckets (one folder of shards)."""
        if target_mb is None and target_rows is None:
            raise ValueError("write: give target_mb (megabytes per shard) or target_rows (rows per shard), or both")
        if target_mb is not None and not target_mb > 0:
            raise ValueError(f"write.target_mb must be a positive number of megabytes, got {target_mb}")
        if target_rows is not None and target_rows < 1:
            raise ValueError(f"write.target_rows must be a positive number of rows, got {target_rows}")
        self.target_mb = target_mb
        self.target_rows = target_rows
        self.buckets = None if buckets is None else check_buckets(buckets)

    def columns_added(self, available: Sequence[str]) -> dict[str, pa.DataType]:
        return {BUCKET_COLUMN: pa.string()} if self.buckets else {}

    def shard_policy(self) -> WriteShards:
        return WriteShards(self)

    def plan_shards(self, input_dir: str) -> list[list[ShardSlice]]:
        """Output shards of about ``target_mb`` megabytes and at most ``target_rows`` rows, from the input shards."""
        inputs = [shard_size(f) for f in sorted(Path(input_dir).glob("part-*.parquet"))]
        target_bytes = None if self.target_mb is None else self.target_mb * _MB
        return plan_shards(inputs, target_rows=self.target_rows, target_bytes=target_bytes)

    def process(self, table: pa.Table) -> StageOutput:
        seconds = sum(table["duration_s"].to_pylist()) if "duration_s" in table.column_names else 0.0
        if not self.buckets:
            return StageOutput(kept=table, video_seconds=seconds)
        kept = self.with_columns(table, {BUCKET_COLUMN: clip_buckets(table, self.buckets)})
        return StageOutput(kept=kept, video_seconds=seconds, partition_by=BUCKET_COLUMN)

    def finish(self, output_dir: str) -> dict[str, Any]:
        card = dataset_card(Path(output_dir))
        atomic_write_json(Path(output_dir) / CARD_FILE, card)
        return {"card": CARD_FILE, "rows": card["data"]["rows"], "files": len(card["data"]["files"])}


class WriteShards(ShardPolicy):
    """The write step plans its own shards (``Write.plan_shards``), to reach a target size."""

    def __init__(self, write: Write):
        self.write = write

    def plan_shards(self, input_dir: str) -> list[list[ShardSlice]]:
        return self.write.plan_shards(input_dir)


# -------------------------------------------------------------------------------------------------- shards
def shard_size(path: Path) -> tuple[str, int, float, int]:
    """(shard name, rows, compressed bytes per row, bytes of the file that are not row data: footer, schema)."""
    meta = pq.ParquetFile(path).metadata
    data = sum(meta.row_group(g).column(c).total_compressed_size
               for g in range(meta.num_row_groups) for c in range(meta.num_columns))
    rows = meta.num_rows
    return path.stem, rows, (data / rows if rows else 0.0), max(0, path.stat().st_size - data)


def plan_shards(
    inputs: Sequence[tuple[str, int, float, int]], *, target_rows: int | None, target_bytes: float | None
) -> list[list[ShardSlice]]:
    """Output shards (each a list of slices of input shards) of at most ``target_rows`` rows and about
    ``target_bytes`` bytes, filling each before starting the next, rows in input order.

    ``inputs``: per input shard, ``shard_size``'s (name, rows, bytes per row, overhead bytes). Every shard gets at
    least one row (a row bigger than the target makes a shard of its own). No rows at all: one empty shard, so
    the dataset still has its schema.
    """
    overhead = max((o for _, rows, _, o in inputs if rows), default=0)
    shards: list[list[ShardSlice]] = []
    current: list[ShardSlice] = []
    rows_in_shard, bytes_in_shard = 0, float(overhead)
    for name, rows, per_row, _ in inputs:
        offset = 0
        while offset < rows:
            room = rows - offset
            if target_rows is not None:
                room = min(room, target_rows - rows_in_shard)
            if target_bytes is not None and per_row > 0:
                room = min(room, math.floor((target_bytes - bytes_in_shard) / per_row))
            if room <= 0 and rows_in_shard == 0:
                room = 1
            if room <= 0:
                shards.append(current)
                current, rows_in_shard, bytes_in_shard = [], 0, float(overhead)
                continue
            current.append(ShardSlice(name, offset, room))
            offset += room
            rows_in_shard += room
            bytes_in_shard += room * per_row
    if current:
        shards.append(current)
    if not shards and inputs:
        shards.append([ShardSlice(inputs[0][0], 0, 0)])
    return shards


# ---------------------------------------------------------------------------------------------------- card
def dataset_card(write_dir: Path) -> dict[str, Any]:
    """The card of the dataset in ``write_dir`` (a write step's folder), from the run's files only."""
    import curate
    from curate.runner import fingerprint
    from curate.rules import step_rules

    folder = StageDir(write_dir)
    run = folder.path.parent
    steps = [d for d in stage_dirs(run) if d.path.name < folder.path.name]
    config = folder.config()
    files = data_files(folder.data)
    rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)

    # 1. the funnel: rows in / kept / rejected by reason at every step, from their stats.json
    funnel_steps, clips_after_split = [], None
    for d in steps:
        stats = d.stats() or {}
        counts = ("rows_in", "rows_kept", "rows_rejected", "rejected_by_reason")
        funnel_steps.append({"step": d.name} | {key: stats.get(key) for key in counts})
        if clips_after_split is None and d.has_column("clip_id"):
            clips_after_split = stats.get("rows_kept")
    inputs = StageDir(run / INPUTS_DIR).stats() or {}

    # 2. filters with their thresholds (percentile rules resolved by the filter's fit), models, parameters
    filters, models = [], []
    for d in steps:
        step_config = d.config() or {}
        params = step_config.get("params", {})
        rules = step_rules(step_config, d.stats())
        if rules is not None:
            filters.append({"step": d.name, "rules": [_rule(rule) for rule in rules]})
        finish = (d.stats() or {}).get("finish") or {}
        if isinstance(finish.get("models"), dict):  # the step said which models it ran (split: TransNetV2 or none)
            named = {k: v for k, v in finish["models"].items() if v is not None}
        else:
            named = {k: v for k, v in params.items() if MODEL_PARAM.search(k) and v is not None}
        if named:
            models.append({"step": d.name, **named})

    schema = pq.read_schema(files[0]) if files else pa.schema([])
    for key in partition_values(files[0]) if files else {}:
        schema = schema.append(pa.field(key, pa.string()))
    card = {
        "name": run.name,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "curate_version": curate.__version__,
        "config_hash": fingerprint(config),
        "data": {"format": "parquet", "files": [f"data/{f.relative_to(folder.data).as_posix()}" for f in files],
                 "rows": rows,
                 "bytes": sum(f.stat().st_size for f in files)},
        "funnel": {"videos_in": inputs.get("rows"), "clips_after_split": clips_after_split, "clips_out": rows,
                   "steps": funnel_steps},
        "filters": filters,
        "models": models,
        "steps": [{"step": d.name, **{k: (d.config() or {}).get(k) for k in ("stage", "params")}} for d in steps],
        "schema": [{"name": f.name, "type": str(f.type)} for f in schema],
    }
    if (config or {}).get("params", {}).get("buckets"):
        card["buckets"] = bucket_table(files, config["params"]["buckets"])
    return card


def bucket_table(files: Sequence[Path], spec: dict[str, list[float]]) -> dict[str, Any]:
    """Clips and hours per bucket of a bucketed write's shards (from their folders and ``duration_s``), and the
    totals, which are the dataset's: every clip is in exactly one bucket."""
    per: dict[str, list[float]] = {}
    for f in files:
        bucket = partition_values(f).get(BUCKET_COLUMN)
        if bucket is None:  # an empty dataset's one unpartitioned shard
            continue
        names = pq.read_schema(f).names
        seconds = pq.read_table(f, columns=["duration_s"])["duration_s"].to_pylist() if "duration_s" in names \
            else [0.0] * pq.ParquetFile(f).metadata.num_rows
        entry = per.setdefault(bucket, [0, 0.0])
        entry[0] += len(seconds)
        entry[1] += sum(s for s in seconds if s is not None and not math.isnan(s))
    rows = [{"bucket": b, "clips": n, "hours": round(s / 3600, 6)} for b, (n, s) in sorted(per.items())]
    return {"keys": spec, "table": rows, "clips": sum(n for n, _ in per.values()),
            "hours": round(sum(s for _, s in per.values()) / 3600, 6)}


def _rule(rule) -> dict[str, Any]:
    return {"rule": rule.text, "column": rule.column, "op": rule.op, "threshold": rule.value,
            "percentile": rule.percentile, "reason": rule.reason}


def read_card(run_or_write_dir: str | Path) -> dict[str, Any]:
    """The ``dataset.json`` of a run (its last write step) or of a write step's folder."""
    path = Path(run_or_write_dir)
    if (path / CARD_FILE).is_file():
        return read_json(path / CARD_FILE)
    cards = [d.path / CARD_FILE for d in stage_dirs(path) if (d.path / CARD_FILE).is_file()]
    if not cards:
        raise FileNotFoundError(f"{path}: no {CARD_FILE} (run the pipeline through its write step)")
    return read_json(cards[-1])
