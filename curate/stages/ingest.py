"""Ingest: expand the inputs into a manifest, probe every video, reject what is not a usable video.

    from curate.stages.ingest import Ingest
    stage = Ingest(inputs=["../shared/videos/"], videos_per_shard=4)
    shards = stage.plan()                 # manifest tables, one per shard (the runner writes them to 00_inputs)
    out = stage.process(shards[0])        # kept: one row per video with the probe columns; rejected: the rest

Rejected rows keep ``video_path`` and say why (``reject_reason`` from ``curate.video.probe.PROBE_REASONS``,
``reject_detail`` the probe's message); the run goes on.
"""

from __future__ import annotations

import math
import os

import pyarrow as pa

from curate.inputs import expand_inputs
from curate.stage import Stage, StageOutput
from curate.video.probe import PROBE_REASONS, ProbeError, probe


class Ingest(Stage):
    name = "ingest"
    reads = ("video_path",)
    adds = {
        "video_id": pa.string(),
        "size_bytes": pa.int64(),
        "container": pa.string(),
        "codec": pa.string(),
        "video_stream": pa.int32(),
        "video_streams": pa.int32(),
        "width": pa.int32(),
        "height": pa.int32(),
        "display_width": pa.int32(),
        "display_height": pa.int32(),
        "sample_aspect_ratio": pa.float64(),
        "rotation": pa.int32(),
        "fps": pa.float64(),
        "nominal_fps": pa.float64(),
        "video_duration_s": pa.float64(),
        "video_frames": pa.int64(),
        "has_audio": pa.bool_(),
    }
    reject_reasons = PROBE_REASONS

    def __init__(self, inputs: list[str] | None = None, videos_per_shard: int = 4, stream_index: int | None = None):
        """inputs: files, directories, globs or list files (see ``curate.inputs``), local or fsspec URLs.
        videos_per_shard: videos per Parquet shard, the unit of work and of resumption.
        stream_index: decode this stream index instead of the default video stream (files with several)."""
        if videos_per_shard < 1:
            raise ValueError(f"ingest.videos_per_shard must be >= 1, got {videos_per_shard}")
        self.inputs = list(inputs or [])
        self.videos_per_shard = videos_per_shard
        self.stream_index = stream_index

    def plan(self) -> list[pa.Table]:
        """The manifest: the expanded input paths in ``ceil(n / videos_per_shard)`` shards of about equal bytes.

        Videos are dealt to the shards largest first, like cards (shard k gets the k-th, (k+S)-th, ...
        largest), so no shard collects all the big files and the workers finish together. Sizes are read for
        local files only (remote inputs keep their order); the plan is deterministic for the same inputs.
        """
        paths = expand_inputs(self.inputs)
        count = math.ceil(len(paths) / self.videos_per_shard)
        order = sorted(range(len(paths)), key=lambda i: (-_local_size(paths[i]), i))
        shards = [sorted(order[k::count]) for k in range(count)]
        return [pa.table({"video_path": pa.array([paths[i] for i in shard], pa.string())}) for shard in shards]

    def process(self, table: pa.Table) -> StageOutput:
        kept_rows, kept_index, rejected_index, reasons, details = [], [], [], [], []
        for i, path in enumerate(table["video_path"].to_pylist()):
            try:
                info = probe(path, self.stream_index)
            except ProbeError as e:
                rejected_index.append(i)
                reasons.append(e.reason)
                details.append(str(e))
                continue
            kept_rows.append(info.as_row())
            kept_index.append(i)
        kept = table.take(pa.array(kept_index, pa.int64()))
        kept = self.with_columns(kept, {c: [r[c] for r in kept_rows] for c in self.adds})
        rejected = self.reject(table.take(pa.array(rejected_index, pa.int64())), reasons, details)
        return StageOutput(kept=kept, rejected=rejected, video_seconds=sum(r["video_duration_s"] for r in kept_rows))


def _local_size(path: str) -> int:
    try:
        return os.path.getsize(path) if "://" not in path else 0
    except OSError:
        return 0
