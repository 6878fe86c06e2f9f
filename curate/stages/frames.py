"""Frames: decode each clip's sampled frames once, for every per-clip step after it (OCR, captions, CLIP, previews).

    from curate.stages.frames import Frames
    stage = Frames()                                # 9 frames per clip (see DEFAULT_POSITIONS), 448 px wide, JPEG 90
    # in a pipeline, after split:   ("frames", Frames),
    # then RUN/NN_frames/frames/part-*.parquet hold the JPEGs and each clip row has frames_file

Without this step, every per-clip step decodes its own frames from the video: the OCR step 3 frames at 320 px,
caption_image 1 at 448 px, caption_video 8 at 384 px, CLIP 3 at 336 px, each a pass over the video. With it, one
pass decodes the union of their positions at the largest width, stores them as JPEG in a side table of the step
(one file per shard, ``curate.video.stored_frames``), and the steps after read them from there
(``curate.stage.read_clip_frames``), shrunk to their own width. The side table is written once, not carried by
every later step's shards. Adds ``frames_file`` (absolute path of the side table holding the row's frames) and
``frames_error`` (the decoder's message when the clip's frames could not be decoded: the later steps then try the
video themselves and report their own error). Never drops a row.

The default positions are the union of the defaults of the steps after it: 8 evenly spaced (caption_video; CLIP's
first, middle and last are among them; OCR's too) plus the middle frame (caption_image). A step asking for a
position that is not stored decodes the video as without this step.
"""

from __future__ import annotations

import pyarrow as pa

from curate.stage import ShardPlace, Stage, StageOutput, read_clip_frames
from curate.video.stored_frames import FRAMES_FILE, frames_table

#: caption_video's 8 evenly spaced frames (0, 1/7, ..., 1), which hold CLIP's and OCR's 0, 0.5 and 1, plus 0.5
DEFAULT_POSITIONS = sorted({i / 7 for i in range(8)} | {0.5})
DEFAULT_WIDTH = 448  # caption_image's frame_width, the largest of the consumers' defaults


class Frames(Stage):
    name = "frames"
    reads = ("clip_id", "video_path", "video_stream", "start_s", "end_s")
    adds = {FRAMES_FILE: pa.string(), "frames_error": pa.string()}

    def __init__(self, positions: list[float] | None = None, width: int = DEFAULT_WIDTH, quality: int = 90):
        """positions: relative positions in the clip (0 = first frame, 1 = last) to store (default: the union of
        the later steps' defaults). width: frames are stored at most this wide (pixels; the widest consumer's).
        quality: JPEG quality, 1-100."""
        self.positions = sorted(set(positions if positions is not None else DEFAULT_POSITIONS))
        self.width = width
        self.quality = quality
        if not self.positions or not all(0.0 <= p <= 1.0 for p in self.positions):
            raise ValueError(f"frames.positions must be relative positions in [0, 1], got {positions}")
        if width < 32:
            raise ValueError(f"frames.width must be >= 32 pixels, got {width}")
        if not 1 <= quality <= 100:
            raise ValueError(f"frames.quality must be a JPEG quality from 1 to 100, got {quality}")

    def process(self, table: pa.Table) -> StageOutput:
        raise TypeError("the frames step writes a side table next to its shard: run it in a pipeline (the runner "
                        "calls process_shard), or call process_shard(table, ShardPlace(folder, shard))")

    def process_shard(self, table: pa.Table, place: ShardPlace) -> StageOutput:
        source = table.drop_columns([c for c in (FRAMES_FILE,) if c in table.column_names])  # decode, never reuse
        clips, errors = read_clip_frames(source, self.positions, self.width)
        side = frames_table(table["clip_id"].to_pylist(), clips, self.positions, self.quality)
        path = str(place.extra_file("frames").resolve())
        kept = self.with_columns(table, {FRAMES_FILE: [path if c is not None else None for c in clips],
                                         "frames_error": errors})
        seconds = sum(e - s for s, e in zip(table["start_s"].to_pylist(), table["end_s"].to_pylist()))
        return StageOutput(kept=kept, extras={"frames": side}, video_seconds=seconds)
