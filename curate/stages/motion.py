"""Motion: optical-flow motion score of every clip (OpenCV), as SVD used to drop static clips. Never drops a row.

    from curate.stages.motion import Motion
    stage = Motion(sample_fps=2.0, width=256, method="dis")
    stage.setup()
    out = stage.process(clips)     # + motion_score, motion_p90, motion_pairs, camera_motion..., motion_error

``motion_score`` is the mean optical-flow magnitude between frames sampled at ``sample_fps``, in **frame diagonals
per second** (0.1 = content moves a tenth of the frame diagonal each second; independent of frame size and
sample rate; see ``curate.scores.motion``). Static footage scores below ~0.005, handheld or fast footage above
~0.05. ``motion_p90`` is the 90th percentile over frame pairs. A clip whose frames cannot be decoded gets NaN
and the message in ``motion_error``; filter it with a rule (NaN is rejected as ``filter_motion_score_missing``).

From the same flow (no second decode), the camera's motion (``curate.scores.camera``): ``camera_motion`` is
static | pan | tilt | zoom_in | zoom_out | mixed (null without two frames), ``camera_motion_explained`` the share
of the flow a global camera model (translation, zoom, roll) explains (near 1: the camera moves over a still scene;
near 0: things move in front of a still camera), ``camera_speed`` the camera's speed at the frame's edge in frame
diagonals per second.

``method: mv`` scores a clip from the codec's motion vectors instead (``curate.scores.motion_vectors``: one decode of
each video with FFmpeg's ``+export_mvs``, no flow, no camera columns); a clip whose frames carry no vectors (MJPEG and
other intra-only codecs) is scored by DIS. ``motion_method`` says which scored each row (null: no score).

Frames come from split when it kept them (``frame_needs``: grey frames at ``sample_fps`` and ``width``), else from
the video; ``stats.json`` counts both (``counts``: ``stored_clips``, ``decoded_clips``).
"""

from __future__ import annotations

import math
from typing import Literal

import pyarrow as pa

from curate.errors import VideoReadError
from curate.stage import Stage, StageOutput
from curate.video.frame_needs import FrameNeed, read_needed_frames, score_by_video
from curate.scores.motion import DEFAULT_WIDTH, METHODS as FLOW_METHODS, MotionResult, clip_motion, summary
from curate.scores.motion_vectors import mv_motion_scores

METHODS = (*FLOW_METHODS, "mv")


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
        "motion_method": pa.string(),
        "motion_error": pa.string(),
    }

    def __init__(self, sample_fps: float = 2.0, width: int = DEFAULT_WIDTH,
                 method: Literal["dis", "farneback", "mv"] = "dis", threads: int = 1):
        """sample_fps: frames per second of video sampled for the flow (SVD: 2).
        width: frames are downscaled to this width (pixels) before the flow (160: within 5-15 % of 256, 1/3 the cost).
        method: "dis" (default: accurate at any size), "farneback" (as many LVD re-implementations), or "mv" (the
            codec's motion vectors, DIS where a clip has none; cheaper, but reads fast pans low).
        threads: OpenCV threads per worker (one worker per core is the default cluster, so 1)."""
        if sample_fps <= 0:
            raise ValueError(f"motion.sample_fps must be > 0 frames per second, got {sample_fps}")
        if width < 32:
            raise ValueError(f"motion.width must be >= 32 pixels, got {width}")
        if method not in METHODS:
            raise ValueError(f"motion.method must be one of {', '.join(METHODS)}, got {method!r}")
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
        # 1. codec motion vectors, where asked for and present
        results: list[MotionResult | None] = [None] * table.num_rows
        methods: list[str | None] = [None] * table.num_rows
        counts: dict[str, int] = {}
        if self.method == "mv":
            results, _ = score_by_video(
                table, lambda path, stream, spans: mv_motion_scores(path, spans, stream_index=stream),
                lambda path, stream, a, b: mv_motion_scores(path, [(a, b)], stream_index=stream)[0],
                (VideoReadError,))
            methods = ["mv" if r is not None else None for r in results]
            counts["mv_clips"] = sum(r is not None for r in results)

        # 2. optical flow for the other rows (all of them, unless mv)
        errors: list[str | None] = [None] * table.num_rows
        flow_rows = [i for i, r in enumerate(results) if r is None]
        if flow_rows or self.method != "mv":
            got = read_needed_frames(table.take(pa.array(flow_rows, pa.int64())), self.frame_needs()[0])
            flow = "dis" if self.method == "mv" else self.method
            for i, frames, error in zip(flow_rows, got.frames, got.errors):
                if frames is not None:
                    results[i], methods[i] = summary(*clip_motion(frames, method=flow)), flow
                errors[i] = error
            counts.update(got.counts)
        kept = self.with_columns(table, {
            "motion_score": [r.score if r else math.nan for r in results],
            "motion_p90": [r.p90 if r else math.nan for r in results],
            "motion_pairs": [r.pairs if r else 0 for r in results],
            "camera_motion": [r.camera.label if r and r.camera else None for r in results],
            "camera_motion_explained": [r.camera.explained if r and r.camera else math.nan for r in results],
            "camera_speed": [r.camera.speed if r and r.camera else math.nan for r in results],
            "motion_method": methods,
            "motion_error": errors,
        })
        seconds = sum(e - s for s, e in zip(table["start_s"].to_pylist(), table["end_s"].to_pylist()))
        return StageOutput(kept=kept, video_seconds=seconds, counts=counts)
