"""Frames: decode each clip's sampled frames once, for every per-clip step after it (OCR, captions, CLIP, previews).

    from curate.stages.frames import Frames
    stage = Frames()                                # 9 frames per clip (see DEFAULT_POSITIONS), 448 px wide, JPEG 90
    # in a pipeline, after split:   ("frames", Frames),
    # then RUN/NN_frames/frames/part-*.parquet hold the JPEGs and each clip row has frames_file

Without this step, every per-clip step decodes its own frames from the video: the OCR step 3 frames at 320 px,
caption_image 1 at 448 px, caption_video 8 at 384 px, CLIP 3 at 336 px, each a pass over the video. With it, one
pass decodes the union of their positions at the largest width, stores them as JPEG in a side table of the step
(one file per shard, ``curate.video.stored_frames``), and the steps after read them from there
(``frame_needs.read_clip_frames``), shrunk to their own width. The side table is written once, not carried by
every later step's shards. Adds ``frames_file`` (absolute path of the side table holding the row's frames) and
``frames_error`` (the decoder's message when the clip's frames could not be decoded: the later steps then try the
video themselves and report their own error). Never drops a row.

What it stores is the union of what the steps after it read (their ``frame_needs``, which the runner passes to it:
``keep_frames_for``): every position at the widest width, and each rate (motion's grey frames). Without that (the
stage built alone), ``DEFAULT_POSITIONS`` at ``DEFAULT_WIDTH``. ``positions`` and ``width``, when given, replace the
positions' union. Where split already kept all of it for a clip (``curate.video.frame_keeper``), the row keeps
split's ``frames_file`` and nothing is decoded; ``stats.json`` counts both (``counts``).
"""

from __future__ import annotations

import pyarrow as pa

from curate.sharding import ShardPlace, ShardPolicy
from curate.stage import Stage, StageOutput
from curate.video.frame_needs import FrameNeed, read_needed_frames, union
from curate.video.stored_frames import FRAMES_FILE, FRAMES_SCHEMA, need_row, stored_need

#: what the step stores when no step after it declares its needs: 8 evenly spaced frames (0, 1/7, ..., 1) and 0.5
DEFAULT_POSITIONS = sorted({i / 7 for i in range(8)} | {0.5})
DEFAULT_WIDTH = 448


class Frames(Stage):
    name = "frames"
    reads = ("clip_id", "video_path", "video_stream", "start_s", "end_s")
    adds = {FRAMES_FILE: pa.string(), "frames_error": pa.string()}

    def __init__(self, positions: list[float] | None = None, width: int | None = None, quality: int = 90):
        """positions: relative positions in the clip (0 = first frame, 1 = last) to store (default: the union of
        the later steps' needs). width: frames at positions are stored at most this wide (pixels; default: the
        widest later step's). quality: JPEG quality, 1-100."""
        self.positions = None if positions is None else sorted(set(positions))
        self.width = width
        self.quality = quality
        if self.positions is not None and (not self.positions or not all(0.0 <= p <= 1.0 for p in self.positions)):
            raise ValueError(f"frames.positions must be relative positions in [0, 1], got {positions}")
        if width is not None and width < 32:
            raise ValueError(f"frames.width must be >= 32 pixels, got {width}")
        if not 1 <= quality <= 100:
            raise ValueError(f"frames.quality must be a JPEG quality from 1 to 100, got {quality}")

        self._told: list[FrameNeed] | None = None

    def keep_frames_for(self, needs: list[FrameNeed]) -> None:
        """Store these frames (the runner passes the ``frame_needs`` of the steps after this one)."""
        self._told = list(needs)

    def frame_needs(self) -> tuple[FrameNeed, ...]:
        """What this step stores: the later steps' needs, positions and width replaced where given."""
        told = self._told if self._told else [FrameNeed(positions=tuple(DEFAULT_POSITIONS), width=DEFAULT_WIDTH)]
        placed = next((n for n in told if n.positions is not None), None)
        positions = self.positions if self.positions is not None else placed.positions if placed else DEFAULT_POSITIONS
        width = self.width if self.width is not None else placed.width if placed else DEFAULT_WIDTH
        rates = [n for n in told if n.fps is not None]
        return tuple(union([FrameNeed(positions=tuple(positions), width=width), *rates]))

    def shard_policy(self) -> FramesShards:
        return FramesShards()

    def process(self, table: pa.Table) -> StageOutput:
        raise TypeError("the frames step writes a side table next to its shard: run it in a pipeline (the runner "
                        "calls process_shard: FramesShards), or call process_shard(table, ShardPlace(folder, shard))")

    def process_shard(self, table: pa.Table, place: ShardPlace) -> StageOutput:
        needs = self.frame_needs()
        # 1. rows whose frames split kept for every need keep them; the others are decoded, need by need
        stored = [stored_need(table, need) for need in needs]
        have = [all(frames[i] is not None for frames in stored) for i in range(table.num_rows)]
        todo = [i for i, ok in enumerate(have) if not ok]
        source = table.take(pa.array(todo, pa.int64()))
        source = source.drop_columns([c for c in (FRAMES_FILE,) if c in source.column_names])  # decode, never reuse
        decoded = [read_needed_frames(source, need) for need in needs]

        # 2. the side table of the decoded rows, and each row's frames_file
        path = str(place.extra_file("frames").resolve())
        ids = source["clip_id"].to_pylist()
        rows, files, errors = [], [None] * table.num_rows, [None] * table.num_rows
        old = table[FRAMES_FILE].to_pylist() if FRAMES_FILE in table.column_names else [None] * table.num_rows
        for i, ok in enumerate(have):
            files[i] = old[i] if ok else None
        for k, i in enumerate(todo):
            error = next((got.errors[k] for got in decoded if got.frames[k] is None), None)
            if error is not None:
                errors[i] = error
                continue
            rows += [need_row(ids[k], need, got.frames[k], self.quality) for need, got in zip(needs, decoded)]
            files[i] = path
        kept = self.with_columns(table, {FRAMES_FILE: files, "frames_error": errors})
        seconds = sum(e - s for s, e in zip(table["start_s"].to_pylist(), table["end_s"].to_pylist()))
        side = pa.Table.from_pylist(rows, schema=FRAMES_SCHEMA)
        counts = {"decoded_clips": len(todo), "stored_clips": table.num_rows - len(todo)}
        if todo:
            counts["decoded_videos"] = len(set(source["video_path"].to_pylist()))
        return StageOutput(kept=kept, extras={"frames": side}, video_seconds=seconds, counts=counts)


class FramesShards(ShardPolicy):
    """The frames step's rows name the side table it writes next to their shard: it needs to know where."""

    def process(self, stage: Stage, table: pa.Table, place: ShardPlace) -> StageOutput:
        return stage.process_shard(table, place)
