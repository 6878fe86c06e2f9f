"""Camera motion of a clip from the optical flow the motion score already computes: static, pan, tilt, zoom.

    >>> import numpy as np
    >>> from curate.scores.camera import fit_camera, camera_label
    >>> ys, xs = np.mgrid[0:90, 0:160].astype(np.float32)
    >>> flow = np.dstack([np.full_like(xs, -2.0), np.zeros_like(ys)])        # everything moves 2 px left
    >>> fit = fit_camera(flow, dt=0.5)
    >>> round(fit.pan, 4), round(fit.explained, 2)                          # diagonals per second, share explained
    (-0.0218, 1.0)
    >>> camera_label([fit]).label
    'pan'

Model. The flow of a camera that pans, tilts, zooms or rolls is, to first order, a similarity transform of the
image: at a point ``(x, y)`` measured from the frame's centre in frame diagonals,

    u = tx + s * x - r * y        v = ty + s * y + r * x

``tx`` (pan: the picture moves sideways), ``ty`` (tilt: up or down), ``s`` (zoom: > 0 in, < 0 out) and ``r``
(roll). It is fitted by least squares on a grid of ``GRID`` x ``GRID`` flow vectors (inside a ``MARGIN`` at the edges,
where content enters or leaves the picture and the flow is a guess), then refitted twice on the
``INLIER_SHARE`` of vectors it fits best, so that a subject moving across a still background does not drag the
camera along (a trimmed least squares; cheaper than RANSAC and as robust when the background is most of the
picture). All four are per second and in frame diagonals (``s`` and ``r``: per second, relative), so that they
read like ``motion_score`` at any frame size and sample rate.

``explained``: the share of the flow's energy (sum of squared vectors over the whole grid) that the model
reproduces, 1 - residual / flow. A camera move over a still scene is near 1; a still camera watching people walk is
near 0 (the model is about zero, the flow is theirs). A pair with no flow at all (a still picture) counts as
explained: zero motion is the model.

Label (``camera_label``), from the clip's pairs: the strength of each movement is its mean absolute speed at the
frame's edge (``|tx|``, ``|ty|``, half a diagonal times ``|s|`` and ``|r|``). Below ``STATIC_SPEED`` for all:
``static``. One movement at least ``DOMINANT_SHARE`` of their sum: ``pan``, ``tilt``, ``zoom_in`` or ``zoom_out``
(a dominant roll is ``mixed``: it has no label of its own). Anything else, or a movement that changes direction
within the clip (its signed mean under half its mean strength): ``mixed``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["LABELS", "CameraClip", "CameraFit", "camera_label", "fit_camera"]

LABELS = ("static", "pan", "tilt", "zoom_in", "zoom_out", "mixed")
GRID = 24  # flow vectors sampled per side: 576 points, plenty for 4 parameters
MARGIN = 0.08  # of the frame's width and height left out at each edge, where content enters or leaves (no true flow)
INLIER_SHARE = 0.7  # the refits keep the vectors the model fits best, this share of them
REFITS = 2
STATIC_SPEED = 0.004  # frame diagonals per second at the frame's edge: slower camera motion is static
DOMINANT_SHARE = 0.6  # one movement this share of all: the clip's label
NO_FLOW = 1e-4  # pixels squared per vector: a pair whose mean squared flow is below this has no flow


@dataclass(frozen=True)
class CameraFit:
    """The camera model of one pair of frames: ``pan``, ``tilt`` (frame diagonals per second), ``zoom``, ``roll``
    (per second) and the share of the flow it explains (``explained``, 0-1), with the flow's ``energy`` (the
    weight of this pair in the clip's ``explained``)."""

    pan: float
    tilt: float
    zoom: float
    roll: float
    explained: float
    energy: float


@dataclass(frozen=True)
class CameraClip:
    """A clip's camera motion: ``label`` (one of ``LABELS``), ``explained`` (share of the clip's flow the models
    explain, energy-weighted over the pairs) and ``speed`` (frame diagonals per second at the frame's edge, the sum
    of the movements' strengths). ``label`` is None and the numbers NaN without pairs."""

    label: str | None
    explained: float
    speed: float


def fit_camera(flow: np.ndarray, dt: float) -> CameraFit:
    """The camera model of an HxWx2 flow field (pixels, between frames ``dt`` seconds apart)."""
    height, width = flow.shape[:2]
    diagonal = math.hypot(height, width)
    ys = np.linspace(MARGIN * (height - 1), (1 - MARGIN) * (height - 1), min(GRID, height)).round().astype(int)
    xs = np.linspace(MARGIN * (width - 1), (1 - MARGIN) * (width - 1), min(GRID, width)).round().astype(int)
    sample = flow[np.ix_(ys, xs)].reshape(-1, 2).astype(np.float64)  # (n, 2): u, v in pixels
    gy, gx = np.meshgrid((ys - (height - 1) / 2) / diagonal, (xs - (width - 1) / 2) / diagonal, indexing="ij")
    x, y = gx.reshape(-1), gy.reshape(-1)
    ones, zeros = np.ones_like(x), np.zeros_like(x)
    # rows: u = tx + s x - r y ; v = ty + s y + r x   (unknowns tx, ty, s, r in pixels per frame pair)
    design = np.concatenate([np.stack([ones, zeros, x, -y], axis=1), np.stack([zeros, ones, y, x], axis=1)])
    target = np.concatenate([sample[:, 0], sample[:, 1]])
    energy = float((sample ** 2).sum())
    if energy / len(sample) < NO_FLOW:
        return CameraFit(0.0, 0.0, 0.0, 0.0, 1.0, energy)
    n = len(x)
    keep = np.arange(n)
    params = np.zeros(4)
    for attempt in range(REFITS + 1):
        rows = np.concatenate([keep, keep + n])
        params = np.linalg.lstsq(design[rows], target[rows], rcond=None)[0]
        if attempt == REFITS:
            break
        residual = (design @ params - target).reshape(2, n)
        error = (residual ** 2).sum(axis=0)
        keep = np.argsort(error)[: max(4, int(INLIER_SHARE * n))]
    residual = float(((design @ params - target) ** 2).sum())
    explained = min(1.0, max(0.0, 1.0 - residual / energy))
    tx, ty, s, r = params
    scale = 1.0 / dt
    return CameraFit(pan=float(tx / diagonal * scale), tilt=float(ty / diagonal * scale),
                     zoom=float(s / diagonal * scale), roll=float(r / diagonal * scale), explained=explained,
                     energy=energy)


def camera_label(fits: Sequence[CameraFit]) -> CameraClip:
    """The clip's label, explained share and speed from its pairs' fits (see the module docstring)."""
    if not fits:
        return CameraClip(None, math.nan, math.nan)
    energy = sum(f.energy for f in fits)
    explained = sum(f.explained * f.energy for f in fits) / energy if energy > 0 else 1.0
    values = {name: np.array([getattr(f, name) for f in fits]) for name in ("pan", "tilt", "zoom", "roll")}
    edge = {"pan": 1.0, "tilt": 1.0, "zoom": 0.5, "roll": 0.5}  # speed at the frame's edge per unit
    strength = {name: float(np.abs(v).mean()) * edge[name] for name, v in values.items()}
    speed = sum(strength.values())
    if max(strength.values()) < STATIC_SPEED:
        return CameraClip("static", explained, speed)
    name = max(strength, key=strength.get)
    steady = abs(float(values[name].mean())) * edge[name] >= 0.5 * strength[name]
    if strength[name] < DOMINANT_SHARE * speed or name == "roll" or not steady:
        return CameraClip("mixed", explained, speed)
    if name == "zoom":
        return CameraClip("zoom_in" if values["zoom"].mean() > 0 else "zoom_out", explained, speed)
    return CameraClip(name, explained, speed)
