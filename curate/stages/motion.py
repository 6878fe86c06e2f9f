"""Motion: optical-flow motion score of every clip (OpenCV), as SVD used to drop static clips. Never drops a row.

    from curate.stages.motion import Motion
    stage = Motion(sample_fps=2.0, width=256, method="dis")
    stage.setup()
    out = stage.process(clips)     # + motion_score, motion_p90, motion_pairs, camera_motion..., motion_error

``motion_score`` is the mean optical-flow magnitude between frames sampled at ``sample_fps``, in **frame diagonals
per second** (0.1 = content moves a tenth of the frame diagonal each second; independent of frame size and
sample rate; see ``curate.video.motion``). Static footage scores below ~0.005, handheld or fast footage above
~0.05. ``motion_p90`` is the 90th percentile over frame pairs. A clip whose frames cannot be decoded gets NaN
and the message in ``motion_error``; filter it with a rule (NaN is rejected as ``filter_motion_score_missing``).

From the same flow (no second decode), the camera's motion (``curate.scores.camera``): ``camera_motion`` is
static | pan | tilt | zoom_in | zoom_out | mixed (null without two frames), ``camera_motion_explained`` the share
of the flow a global camera model (translation, zoom, roll) explains (near 1: the camera moves over a still scene;
near 0: things move in front of a still camera), ``camera_speed`` the camera's speed at the frame's edge in frame
diagonals per second.

Frames come from split when it kept them (``frame_needs``: grey frames at ``sample_fps`` and ``width``), else from
the video; ``stats.json`` counts both (``counts``: ``stored_clips``, ``decoded_clips``).
"""

from __future__ import annotations

import math
from typing import Literal

import pyarrow as pa

from curate.stage import Stage, StageOutput
from curate.video.frame_needs import FrameNeed, read_needed_frames
from curate.video.motion import DEFAULT_WIDTH, clip_motion, summary


class Motion(Stage):
    name = "motion"
    reads = ("video_path", "video_stream", "start_s", "end_s")
    adds = {
        "motion_score": pa.float64(),
        "motion_p90": pa.float64(),
        "motion_pairs": pa.int32(),
        "camera_motion": pa.string(),
        "camera_motion_explained": pa.float64(),
        "camera_speed": pa.float64(),
        "motion_error": pa.string(),
    }

    def __init__(self, sample_fps: float = 2.0, width: int = DEFAULT_WIDTH, method: Literal["dis", "farneback"] = "dis",
                 threads: int = 1):
        """sample_fps: frames per second of video sampled for the flow (SVD: 2).
        width: frames are downscaled to this width (pixels) before the flow (160: within 5-15 % of 256, 1/3 the cost).
        method: "dis" (default: accurate at any size) or "farneback" (as many LVD re-implementations).
        threads: OpenCV threads per worker (one worker per core is the default cluster, so 1)."""
        if sample_fps <= 0:
            raise ValueError(f"motion.sample_fps must be > 0 frames per second, got {sample_fps}")
        if width < 32:
            raise ValueError(f"motion.width must be >= 32 pixels, got {width}")
        self.sample_fps = sample_fps
        self.width = width
        self.method = method
        self.threads = threads

    def setup(self) -> None:
        import cv2

        cv2.setNumThreads(self.threads)

    def frame_needs(self) -> tuple[FrameNeed, ...]:
        return (FrameNeed(fps=self.sample_fps, width=self.width, grey=True),)

    def process(self, table: pa.Table) -> StageOutput:
        got = read_needed_frames(table, self.frame_needs()[0])
        results = [None if frames is None else summary(*clip_motion(frames, method=self.method))
                   for frames in got.frames]
        errors = got.errors
        kept = self.with_columns(table, {
            "motion_score": [r.score if r else math.nan for r in results],
            "motion_p90": [r.p90 if r else math.nan for r in results],
            "motion_pairs": [r.pairs if r else 0 for r in results],
            "camera_motion": [r.camera.label if r else None for r in results],
            "camera_motion_explained": [r.camera.explained if r else math.nan for r in results],
            "camera_speed": [r.camera.speed if r else math.nan for r in results],
            "motion_error": errors,
        })
        seconds = sum(e - s for s, e in zip(table["start_s"].to_pylist(), table["end_s"].to_pylist()))
        return StageOutput(kept=kept, video_seconds=seconds, counts=got.counts)
