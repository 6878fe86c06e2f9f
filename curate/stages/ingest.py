"""Ingest: expand the inputs into a manifest, probe every video, reject what is not a usable video.

    from curate.stages.ingest import Ingest
    stage = Ingest(inputs=["../shared/videos/"])
    paths = stage.expand()                # every input video path or URL, in input order
    shards = stage.plan(paths, workers=2) # manifest tables, one per shard (the runner writes them to 00_inputs)
    out = stage.process(shards[0])        # kept: one row per video with the probe columns; rejected: the rest

Rejected rows keep ``video_path`` and say why (``reject_reason`` from ``curate.video.probe.PROBE_REASONS``,
``reject_detail`` the probe's message); the run goes on.
"""

from __future__ import annotations

import math
import os
from typing import Literal, Sequence

import pyarrow as pa

from curate.errors import VideoReadError
from curate.inputs import expand_inputs
from curate.sharding import SHARDS_PER_WORKER
from curate.stage import Stage, StageOutput
from curate.video.probe import PROBE_REASONS, probe
from curate.video.source import is_url, local_path


#: "auto" shards hold at most this many videos (a relaunch after a kill redoes at most one shard per worker)
MAX_AUTO_VIDEOS_PER_SHARD = 16


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
        # technical facts (curate.video.facts): for filters (HDR, bit depth) and training buckets
        "display_aspect": pa.float64(),
        "bit_rate": pa.int64(),
        "profile": pa.string(),
        "pix_fmt": pa.string(),
        "bit_depth": pa.int32(),
        "color_primaries": pa.string(),
        "color_transfer": pa.string(),
        "hdr": pa.string(),
        "audio_channels": pa.int32(),
    }
    reject_reasons = PROBE_REASONS

    def __init__(self, inputs: list[str] | None = None, videos_per_shard: int | Literal["auto"] = "auto",
                 stream_index: int | None = None):
        """inputs: files, directories, globs or list files (see ``curate.inputs``), local or fsspec URLs.
        videos_per_shard: videos per Parquet shard, the unit of work and of resumption; "auto" (default): about
            SHARDS_PER_WORKER shards per worker of the cluster, 1 to MAX_AUTO_VIDEOS_PER_SHARD videos each.
        stream_index: decode this stream index instead of the default video stream (files with several)."""
        if videos_per_shard != "auto" and (not isinstance(videos_per_shard, int) or videos_per_shard < 1):
            raise ValueError(f"ingest.videos_per_shard must be an integer >= 1 or auto, got {videos_per_shard!r}")
        self.inputs = list(inputs or [])
        self.videos_per_shard = videos_per_shard
        self.stream_index = stream_index

    def expand(self) -> list[str]:
        """Every input video path or URL, in input order (directories walked, globs and list files read)."""
        return expand_inputs(self.inputs)

    def shard_size(self, videos: int, workers: int) -> int:
        """Videos per shard: the configured number, or for "auto" about SHARDS_PER_WORKER shards per worker (so
        every worker is busy until the end and a relaunch redoes little), each of 1 to MAX_AUTO_VIDEOS_PER_SHARD."""
        if self.videos_per_shard != "auto":
            return self.videos_per_shard
        return max(1, min(MAX_AUTO_VIDEOS_PER_SHARD, math.ceil(videos / (SHARDS_PER_WORKER * max(1, workers)))))

    def plan(self, paths: Sequence[str] | None = None, workers: int = 1) -> list[pa.Table]:
        """The manifest of ``paths`` (default: ``expand()``) in ``ceil(n / shard_size)`` shards of about equal bytes.

        Videos are dealt to the shards largest first, like cards (shard k gets the k-th, (k+S)-th, ...
        largest), so no shard collects all the big files and the workers finish together. Sizes are read for
        local files only (remote inputs keep their order); the plan is deterministic for the same inputs.
        """
        paths = self.expand() if paths is None else list(paths)
        count = math.ceil(len(paths) / self.shard_size(len(paths), workers))
        order = sorted(range(len(paths)), key=lambda i: (-_local_size(paths[i]), i))
        shards = [sorted(order[k::count]) for k in range(count)]
        return [pa.table({"video_path": pa.array([paths[i] for i in shard], pa.string())}) for shard in shards]

    def process(self, table: pa.Table) -> StageOutput:
        kept_rows, kept_index, rejected_index, reasons, details = [], [], [], [], []
        for i, path in enumerate(table["video_path"].to_pylist()):
            try:
                info = probe(path, self.stream_index)
                facts = technical_facts(info)
            except VideoReadError as e:
                if e.reason not in PROBE_REASONS:  # not a probe's verdict on the file: the runner contains it
                    raise
                rejected_index.append(i)
                reasons.append(e.reason)
                details.append(str(e))
                continue
            kept_rows.append(info.as_row() | facts)
            kept_index.append(i)
        kept = table.take(pa.array(kept_index, pa.int64()))
        kept = self.with_columns(kept, {c: [r[c] for r in kept_rows] for c in self.adds})
        rejected = self.reject(table.take(pa.array(rejected_index, pa.int64())), reasons, details)
        return StageOutput(kept=kept, rejected=rejected, video_seconds=sum(r["video_duration_s"] for r in kept_rows))


def _local_size(path: str) -> int:
    try:
        return os.path.getsize(local_path(path)) if not is_url(path) else 0
    except OSError:
        return 0


def technical_facts(info) -> dict:
    """The technical-fact columns of a probed video (``curate.video.facts``, read by probe from the same header)."""
    facts = info.stream_facts
    return {
        "display_aspect": info.display_width / info.display_height if info.display_height else None,
        "bit_rate": facts.bit_rate,
        "profile": facts.profile,
        "pix_fmt": facts.pix_fmt,
        "bit_depth": facts.bit_depth,
        "color_primaries": facts.primaries,
        "color_transfer": facts.transfer,
        "hdr": facts.hdr,
        "audio_channels": facts.audio_channels,
    }
