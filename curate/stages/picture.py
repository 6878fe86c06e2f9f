"""Picture: is each clip a picture at all: blank and frozen frames, black bars, sharpness. Never drops a row.

    from curate.stages.picture import Picture
    stage = Picture()                  # 8 evenly spaced frames per clip, 256 px wide
    out = stage.process(clips)         # + blank_share, uniform_area, frozen_share, crop_*, sharpness, picture_error

Columns (see ``curate.scores.picture`` for how each is measured):

- ``blank_share``: fraction of the sampled frames that are one flat colour (black, white, a colour card, decoder
  garbage). Reject clips above 0.5 (``configs/offline.yaml``): they are mostly not a picture.
- ``uniform_area``: mean fraction of a frame that its main flat colour covers; high for partial decoder garbage.
- ``frozen_share``: fraction of consecutive samples showing the same picture (stills, slides, frozen streams).
- ``crop_left``, ``crop_top``, ``crop_right``, ``crop_bottom``: black bars, as the fraction of the frame's width or
  height to cut at each edge (0: none). export can cut them (ffmpeg: ``crop=iw*(1-l-r):ih*(1-t-b):iw*l:ih*t``).
- ``sharpness``: variance of the Laplacian at a fixed size (median over the non-blank frames): low = blurry.

Frames come from split or a ``frames`` step before this one when they kept them (``frame_needs``), else from the
video; ``stats.json`` counts both (``counts``: ``stored_clips``, ``decoded_clips``). A clip whose frames cannot be decoded gets NaN scores and ``picture_error``.
"""

from __future__ import annotations

import math

import pyarrow as pa

from curate.scores.picture import DEFAULT_BLANK_AREA, DEFAULT_FROZEN_DIFF, picture_scores
from curate.stage import Stage, StageOutput
from curate.video.frame_needs import FrameNeed, read_needed_frames

#: 8 evenly spaced frames (0, 1/7, ..., 1)
DEFAULT_POSITIONS = [i / 7 for i in range(8)]
DEFAULT_WIDTH = 256


class Picture(Stage):
    name = "picture"
    reads = ("video_path", "video_stream", "start_s", "end_s")
    adds = {
        "blank_share": pa.float64(),
        "uniform_area": pa.float64(),
        "frozen_share": pa.float64(),
        "crop_left": pa.float64(),
        "crop_top": pa.float64(),
        "crop_right": pa.float64(),
        "crop_bottom": pa.float64(),
        "sharpness": pa.float64(),
        "picture_error": pa.string(),
    }

    def __init__(self, positions: list[float] | None = None, width: int = DEFAULT_WIDTH,
                 blank_area: float = DEFAULT_BLANK_AREA, frozen_diff: float = DEFAULT_FROZEN_DIFF):
        """positions: relative positions in the clip (0 = first frame, 1 = last) of the frames scored, in order.
        width: frames are scored at most this wide (pixels).
        blank_area: a frame is blank when one flat colour covers at least this fraction of it (0-1].
        frozen_diff: two consecutive samples are the same picture below this mean luma difference (0-255 levels)."""
        self.positions = list(positions if positions is not None else DEFAULT_POSITIONS)
        if len(self.positions) < 2 or not all(0.0 <= p <= 1.0 for p in self.positions) \
                or self.positions != sorted(self.positions):
            raise ValueError(f"picture.positions must be at least 2 increasing positions in [0, 1], got {positions}")
        if width < 32:
            raise ValueError(f"picture.width must be >= 32 pixels, got {width}")
        if not 0.0 < blank_area <= 1.0:
            raise ValueError(f"picture.blank_area must be a fraction of the frame in (0, 1], got {blank_area}")
        if frozen_diff < 0:
            raise ValueError(f"picture.frozen_diff must be >= 0 luma levels, got {frozen_diff}")
        self.width = width
        self.blank_area = blank_area
        self.frozen_diff = frozen_diff

    def setup(self) -> None:
        import cv2

        cv2.setNumThreads(1)

    def frame_needs(self) -> tuple[FrameNeed, ...]:
        return (FrameNeed(positions=tuple(self.positions), width=self.width),)

    def process(self, table: pa.Table) -> StageOutput:
        got = read_needed_frames(table, self.frame_needs()[0])
        clips, errors = got.frames, got.errors
        results = [None if frames is None else picture_scores(frames, blank_area=self.blank_area,
                                                              frozen_diff=self.frozen_diff) for frames in clips]

        def column(get) -> list[float]:
            return [get(r) if r is not None else math.nan for r in results]

        kept = self.with_columns(table, {
            "blank_share": column(lambda r: r.blank_share),
            "uniform_area": column(lambda r: r.uniform_area),
            "frozen_share": column(lambda r: r.frozen_share),
            "crop_left": column(lambda r: r.crop[0]),
            "crop_top": column(lambda r: r.crop[1]),
            "crop_right": column(lambda r: r.crop[2]),
            "crop_bottom": column(lambda r: r.crop[3]),
            "sharpness": column(lambda r: r.sharpness),
            "picture_error": errors,
        })
        seconds = sum(e - s for s, e in zip(table["start_s"].to_pylist(), table["end_s"].to_pylist()))
        return StageOutput(kept=kept, video_seconds=seconds, counts=got.counts)
