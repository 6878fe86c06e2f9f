"""Motion of clips from the codec's own motion vectors (FFmpeg's ``+export_mvs``), in frame diagonals per second.

    from curate.scores.motion_vectors import mv_motion_scores
    results = mv_motion_scores("../shared/videos/moviepy_fire2.mp4", [(0.0, 2.3)])
    results[0]          # MotionResult(score, p90, pairs, camera=None), or None: no frame of the clip has vectors

For every decoded frame that carries motion vectors (P and B frames of H.264, HEVC, MPEG-4...), the mean vector
length over the frame's area (each block weighted by its area; vectors from past frames only), divided by the frame's
diagonal and by the time since the frame before: the unit of ``curate.scores.motion``'s optical flow (frame diagonals
per second). A clip's score is the mean over its frames with vectors, ``pairs`` how many there were.

The vectors are what the encoder chose to predict pixels, not the true motion: they read low on fast pans and zero
on some codecs (``benchmarks/motion_vectors.py``), so optical flow (DIS) stays the default. A clip with no frame
carrying vectors (MJPEG and other intra-only codecs, a clip of keyframes) gets None: the caller falls back to flow.
"""

from __future__ import annotations

import array
import math
import os
from collections.abc import Sequence

import av
import numpy as np

from curate.errors import VideoReadError
from curate.scores.motion import MotionResult
from curate.video.source import open_container, pick_video_stream
from curate.video.timeline import clock_fps, repair_frame_times


def mv_motion_scores(
    source: str | os.PathLike, spans: Sequence[tuple[float, float]], *, stream_index: int | None = None
) -> list[MotionResult | None]:
    """The motion-vector score of each clip ``(start_s, end_s)`` of ``source``, decoding the file once up to the
    last clip's end; None for a clip none of whose frames carries vectors. Raises ``VideoReadError`` when the
    file cannot be opened or decoded."""
    # 1. decode with vectors exported, up to the last clip's end: per frame its raw time and its motion in pixels
    # per diagonal (NaN: no vectors)
    last_end = max((end for _, end in spans), default=-math.inf)
    raw, moved = array.array("d"), array.array("d")
    try:
        with open_container(source) as container:
            stream = pick_video_stream(container, stream_index, str(source))
            stream.codec_context.thread_count = 1
            stream.codec_context.options = {"flags2": "+export_mvs"}
            time_base = float(stream.time_base)
            fps = clock_fps(stream)
            for frame in container.decode(stream):
                t = math.nan if frame.pts is None else frame.pts * time_base
                raw.append(t)
                moved.append(_frame_motion(frame))
                if t >= last_end:
                    break
    except VideoReadError:
        raise
    except av.FFmpegError as err:
        raise VideoReadError(str(source), str(err)) from err
    if not raw:
        raise VideoReadError(str(source), "no decodable frame")

    # 2. per frame, diagonals per second (curate's timeline: the times every reader gives these frames)
    times = repair_frame_times(np.frombuffer(raw, np.float64), fps)
    per_second = np.full(len(times), np.nan)
    per_second[1:] = np.frombuffer(moved, np.float64)[1:] / np.diff(times)

    # 3. per clip, the mean over its frames with vectors
    results: list[MotionResult | None] = []
    for start, end in spans:
        values = per_second[(times >= start) & (times < end)]
        values = values[~np.isnan(values)]
        results.append(None if len(values) == 0 else MotionResult(
            score=float(values.mean()), p90=float(np.percentile(values, 90)), pairs=len(values)))
    return results


def _frame_motion(frame: av.VideoFrame) -> float:
    """Area-weighted mean length of the frame's vectors from past frames, in frame diagonals; NaN without any."""
    vectors = frame.side_data.get("MOTION_VECTORS")
    if vectors is None:
        return math.nan
    mv = vectors.to_ndarray()
    mv = mv[mv["source"] < 0]
    if not len(mv):
        return math.nan
    length = np.hypot(mv["motion_x"], mv["motion_y"]) / np.maximum(mv["motion_scale"], 1)
    area = mv["w"].astype(np.float64) * mv["h"]
    return float((length * area).sum() / (frame.width * frame.height)) / math.hypot(frame.width, frame.height)
