"""Optical-flow motion score of a clip, in frame diagonals per second (independent of frame size and sample rate).

    >>> from curate.scores.motion import motion_score
    >>> result = motion_score("../shared/videos/moviepy_fire2.mp4", 0.0, 2.3)
    >>> result.pairs, round(result.score, 2)   # fast handheld pan: ~0.18 of the frame diagonal per second
    (4, 0.18)

As in Stable Video Diffusion's LVD curation: frames sampled at 2 fps, downscaled, dense optical flow between
consecutive samples (OpenCV), averaged.

Unit. For one pair of frames taken ``dt`` seconds apart, the pair's motion is::

    mean over pixels of |flow| (pixels)  /  frame diagonal (pixels)  /  dt (seconds)

i.e. **frame diagonals per second**: 0.1 means image content moves, on average, a tenth of the frame's diagonal
each second. Dividing by the diagonal makes it independent of the frame size (and of portrait vs landscape);
dividing by the actual time between the two decoded frames makes it independent of ``sample_fps`` and of
variable frame rates.

Default method: DIS (``cv2.DISOpticalFlow``, MEDIUM preset), because it recovers known shifts within 2 % at any
width, so the score does not depend on ``width``; Farnebäck (``method="farneback"``, OpenCV's usual parameters in
LVD re-implementations) under-reads motion more as frames get larger and is kept for comparison with SVD's numbers
(use it at one fixed width). Default width: 160 px, within 5-15 % of 256 px at under a third of the cost.
Typical scores on the shared footage, the method comparison and the costs: ``benchmarks/README.md``.

Camera motion (``MotionResult.camera``) is fitted to the same flow fields (``curate.scores.camera``): no second
decode, no second flow.

OpenCV's own threads: call ``cv2.setNumThreads`` in the worker; this module leaves it alone.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from curate.scores.camera import CameraClip, CameraFit, camera_label, fit_camera
from curate.video.frames import Frame, read_clips, sample_times

__all__ = [
    "DEFAULT_METHOD",
    "DEFAULT_SAMPLE_FPS",
    "DEFAULT_WIDTH",
    "METHODS",
    "MotionResult",
    "clip_motion",
    "flow_magnitudes",
    "motion_score",
    "motion_scores",
]

METHODS = ("dis", "farneback")
DEFAULT_METHOD = "dis"
DEFAULT_SAMPLE_FPS = 2.0  # frames per second of video, as SVD
DEFAULT_WIDTH = 160  # pixels: DIS scores within 5-15 % of 256 px for a third of the cost (module docstring)
# Farnebäck parameters: pyr_scale, levels, winsize, iterations, poly_n, poly_sigma, flags (OpenCV's usual ones).
FARNEBACK_PARAMS = (0.5, 3, 15, 3, 5, 1.2, 0)
DIS_PRESET = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM
# Frames are padded (edge pixels repeated) to at least this many pixels a side before the flow. DIS (MEDIUM)
# refuses a frame under 8 px on a side and crashes the process (a segfault in OpenCV 5.0) on a wide frame 8-15 px
# high, such as 160x13 from a 640x52 video; 16 px and up worked at every width from 16 to 8000 px, tried in child
# processes. 32 leaves a margin.
MIN_FLOW_SIDE = 32


@dataclass(frozen=True)
class MotionResult:
    """Motion of a clip in frame diagonals per second; NaN scores (and ``pairs == 0``) below two frames.

    ``score``: mean over frame pairs of the pair's motion. ``p90``: 90th percentile over the pairs (the clip's
    busiest moments). ``pairs``: number of frame pairs measured. ``camera``: the camera motion fitted to the same
    flow (``curate.scores.camera``: static, pan, tilt, zoom_in, zoom_out or mixed).
    """

    score: float
    p90: float
    pairs: int
    camera: CameraClip | None = None


def flow_magnitudes(frames: Sequence[Frame], *, method: str = DEFAULT_METHOD) -> np.ndarray:
    """Motion of each consecutive pair of frames, in frame diagonals per second (see the module docstring).
    Frames are RGB, or grey (HxW, as ``cv2.cvtColor(rgb, COLOR_RGB2GRAY)`` makes them).

    Frames must share one size and come in time order. A pair showing one frame twice (a time requested
    between two samples of a slow video) is skipped, so the result may be shorter than ``len(frames) - 1``.
    Frames of any size work: those under ``MIN_FLOW_SIDE`` pixels on a side are padded for the flow, which is
    then averaged over the frame's own pixels and divided by its own diagonal, so the unit does not change.
    """
    return clip_motion(frames, method=method, camera=False)[0]


def clip_motion(
    frames: Sequence[Frame], *, method: str = DEFAULT_METHOD, camera: bool = True
) -> tuple[np.ndarray, list[CameraFit]]:
    """``flow_magnitudes`` of the frames and, from the same flow fields, each pair's camera model
    (``curate.scores.camera.fit_camera``; an empty list with ``camera=False``)."""
    # 1. check inputs
    _check_method(method)
    sizes = {f.image.shape[:2] for f in frames}
    if len(sizes) > 1:
        raise ValueError(f"frames must all have one size, got sizes (height, width) {sorted(sizes)}")
    times = [f.time_s for f in frames]
    if any(b < a for a, b in zip(times, times[1:])):
        raise ValueError(f"frames must be in time order, got times {times}")

    # 2. flow between consecutive distinct frames (RGB frames made grey; grey ones as they are): its mean magnitude,
    # and the camera model it fits
    grays = [f.image if f.image.ndim == 2 else cv2.cvtColor(f.image, cv2.COLOR_RGB2GRAY) for f in frames]
    flow = _flow_function(method)
    magnitudes, fits = [], []
    for (prev, prev_t), (curr, curr_t) in zip(zip(grays, times), zip(grays[1:], times[1:])):
        if curr_t <= prev_t:
            continue
        field = _padded_flow(flow, prev, curr)
        pixels = float(np.linalg.norm(field, axis=2).mean())
        magnitudes.append(pixels / math.hypot(*prev.shape) / (curr_t - prev_t))
        if camera:
            fits.append(fit_camera(field, curr_t - prev_t))
    return np.asarray(magnitudes, dtype=np.float64), fits


def motion_score(
    source: str | os.PathLike,
    start_s: float,
    end_s: float,
    *,
    sample_fps: float = DEFAULT_SAMPLE_FPS,
    width: int = DEFAULT_WIDTH,
    method: str = DEFAULT_METHOD,
    stream_index: int | None = None,
) -> MotionResult:
    """Motion of the clip ``[start_s, end_s)`` of ``source``: frames every ``1 / sample_fps`` s, at most ``width``
    pixels wide, flow by ``method`` ("dis" or "farneback"). Raises ``VideoReadError`` when decoding fails.
    """
    return motion_scores(
        source, [(start_s, end_s)], sample_fps=sample_fps, width=width, method=method, stream_index=stream_index
    )[0]


def motion_scores(
    source: str | os.PathLike,
    spans: Sequence[tuple[float, float]],
    *,
    sample_fps: float = DEFAULT_SAMPLE_FPS,
    width: int = DEFAULT_WIDTH,
    method: str = DEFAULT_METHOD,
    stream_index: int | None = None,
) -> list[MotionResult]:
    """``motion_score`` of many clips ``(start_s, end_s)`` of one file, decoding the file about once.

    Give the clips in time order. Raises ``VideoReadError`` if any clip cannot be decoded; score the clips
    one by one with ``motion_score`` to learn which.
    """
    # 1. check inputs (sample_times checks the times and sample_fps)
    _check_method(method)
    if not isinstance(width, int) or width < 32:
        raise ValueError(f"width must be an integer number of pixels >= 32 (flow needs pyramid levels), got {width!r}")
    clip_times = [sample_times(start_s, end_s, fps=sample_fps) for start_s, end_s in spans]

    # 2. decode the sampled frames of every clip
    clips = read_clips(source, clip_times, width=width, stream_index=stream_index)

    # 3. flow between consecutive samples of each clip: the score, and the camera motion from the same flow
    return [summary(*clip_motion(frames, method=method)) for frames in clips]


def summary(magnitudes: np.ndarray, fits: Sequence[CameraFit] = ()) -> MotionResult:
    """The clip's ``MotionResult`` from its pairs' motion and camera fits (``clip_motion``)."""
    camera = camera_label(fits)
    if len(magnitudes) == 0:
        return MotionResult(score=math.nan, p90=math.nan, pairs=0, camera=camera)
    return MotionResult(
        score=float(magnitudes.mean()),
        p90=float(np.percentile(magnitudes, 90)),
        pairs=len(magnitudes),
        camera=camera,
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


def _padded_flow(flow, prev: np.ndarray, curr: np.ndarray) -> np.ndarray:
    """``flow(prev, curr)`` of frames padded to ``MIN_FLOW_SIDE`` a side (edge pixels repeated, the frame centred),
    cropped back to the frame's own pixels."""
    height, width = prev.shape
    pad_h, pad_w = max(0, MIN_FLOW_SIDE - height), max(0, MIN_FLOW_SIDE - width)
    if not pad_h and not pad_w:
        return flow(prev, curr)
    top, left = pad_h // 2, pad_w // 2
    border = (top, pad_h - top, left, pad_w - left, cv2.BORDER_REPLICATE)
    padded = flow(cv2.copyMakeBorder(prev, *border), cv2.copyMakeBorder(curr, *border))
    return padded[top:top + height, left:left + width]
