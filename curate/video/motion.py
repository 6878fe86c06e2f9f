"""Optical-flow motion score of a clip, in frame diagonals per second (independent of frame size and sample rate).

    >>> from curate.video.motion import motion_score
    >>> result = motion_score("../shared/videos/moviepy_fire2.mp4", 0.0, 2.3)
    >>> result.pairs, round(result.score, 2)   # fast handheld pan: ~0.17 of the frame diagonal per second
    (4, 0.17)

As in Stable Video Diffusion's LVD curation: frames sampled at 2 fps, downscaled, dense optical flow between
consecutive samples (OpenCV), averaged.

Unit. For one pair of frames taken ``dt`` seconds apart, the pair's motion is::

    mean over pixels of |flow| (pixels)  /  frame diagonal (pixels)  /  dt (seconds)

i.e. **frame diagonals per second**: 0.1 means image content moves, on average, a tenth of the frame's diagonal
each second. Dividing by the diagonal makes it independent of the frame size (and of portrait vs landscape);
dividing by the actual time between the two frames makes it independent of ``sample_fps`` and of variable
frame rates. On the shared footage: static scenes score below 0.005 (``opencv_vtest.avi`` 0.002-0.004,
``psd_testvideo.mp4`` stills 0.000-0.002), handheld or fast scenes above 0.05 (``imageio_cockatoo.mp4``
0.15, ``moviepy_fire2.mp4`` 0.17, ``mmaction2_test2.mp4`` 0.07-0.12).

Default method: DIS (``cv2.DISOpticalFlow``, MEDIUM preset), not Farnebäck. Measured on real frames shifted
by a known amount: DIS recovers shifts of 0.5-10 % of the width (and up to 20 % at 256 px and wider) within
2 % at 128, 256 and 512 px wide, so the score does not depend on ``width``. Farnebäck (OpenCV defaults as in
most LVD re-implementations: pyramid 0.5, 3 levels, window 15) finds only 0-25 % of a 10 % shift, and at 512 px
only 2-77 % of even a 0.5-2 % shift on smooth footage: its scores fall as frames get larger (cockatoo 0.082 at
128 px, 0.062 at 256, 0.039 at 512). It is kept for comparison with SVD's numbers; use it at one fixed width.
Cost per pair at 256x144 on one core: DIS-MEDIUM 5-9 ms, Farnebäck 6-14 ms, DIS-FAST 1-2.5 ms.

OpenCV's own threads: call ``cv2.setNumThreads`` in the worker; this module leaves it alone.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from curate.video.frames import Frame, read_frames, sample_times

__all__ = ["METHODS", "MotionResult", "flow_magnitudes", "motion_score"]

METHODS = ("dis", "farneback")
# Farnebäck parameters: pyr_scale, levels, winsize, iterations, poly_n, poly_sigma, flags (OpenCV's usual ones).
FARNEBACK_PARAMS = (0.5, 3, 15, 3, 5, 1.2, 0)
DIS_PRESET = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM


@dataclass(frozen=True)
class MotionResult:
    """Motion of a clip in frame diagonals per second; NaN scores (and ``pairs == 0``) below two frames.

    ``score``: mean over frame pairs of the pair's motion. ``p90``: 90th percentile over the pairs (the clip's
    busiest moments). ``pairs``: number of frame pairs measured.
    """

    score: float
    p90: float
    pairs: int


def flow_magnitudes(frames: Sequence[Frame], *, method: str = "dis") -> np.ndarray:
    """Motion of each consecutive pair of frames, in frame diagonals per second (see the module docstring).

    Frames must share one size and come in time order. A pair showing one frame twice (a time requested
    between two samples of a slow video) is skipped, so the result may be shorter than ``len(frames) - 1``.
    """
    # 1. check inputs
    _check_method(method)
    sizes = {f.image.shape[:2] for f in frames}
    if len(sizes) > 1:
        raise ValueError(f"frames must all have one size, got sizes (height, width) {sorted(sizes)}")
    times = [f.time_s for f in frames]
    if any(b < a for a, b in zip(times, times[1:])):
        raise ValueError(f"frames must be in time order, got times {times}")

    # 2. flow between consecutive distinct frames
    grays = [cv2.cvtColor(f.image, cv2.COLOR_RGB2GRAY) for f in frames]
    flow = _flow_function(method)
    magnitudes = []
    for (prev, prev_t), (curr, curr_t) in zip(zip(grays, times), zip(grays[1:], times[1:])):
        if curr_t <= prev_t:
            continue
        pixels = float(np.linalg.norm(flow(prev, curr), axis=2).mean())
        magnitudes.append(pixels / math.hypot(*prev.shape) / (curr_t - prev_t))
    return np.asarray(magnitudes, dtype=np.float64)


def motion_score(
    source: str | os.PathLike,
    start_s: float,
    end_s: float,
    *,
    sample_fps: float = 2.0,
    width: int = 256,
    method: str = "dis",
    stream_index: int | None = None,
) -> MotionResult:
    """Motion of the clip ``[start_s, end_s)`` of ``source``: frames every ``1 / sample_fps`` s, at most ``width``
    pixels wide, flow by ``method`` ("dis" or "farneback"). Raises ``FrameDecodeError`` when decoding fails.
    """
    # 1. check inputs (sample_times checks the times and sample_fps)
    _check_method(method)
    if not isinstance(width, int) or width < 32:
        raise ValueError(f"width must be an integer number of pixels >= 32 (flow needs a few pyramid levels), got {width!r}")

    # 2. decode the sampled frames
    times = sample_times(start_s, end_s, fps=sample_fps)
    frames = read_frames(source, times, width=width, stream_index=stream_index)

    # 3. flow between consecutive samples
    magnitudes = flow_magnitudes(frames, method=method)
    if len(magnitudes) == 0:
        return MotionResult(score=math.nan, p90=math.nan, pairs=0)
    return MotionResult(
        score=float(magnitudes.mean()),
        p90=float(np.percentile(magnitudes, 90)),
        pairs=len(magnitudes),
    )


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")


def _flow_function(method: str):
    """A function (prev_gray, next_gray) -> HxWx2 float32 flow in pixels."""
    if method == "farneback":
        return lambda prev, curr: cv2.calcOpticalFlowFarneback(prev, curr, None, *FARNEBACK_PARAMS)
    dis = cv2.DISOpticalFlow_create(DIS_PRESET)
    return lambda prev, curr: dis.calc(prev, curr, None)
