"""The evaluation's formulas, as plain functions of embeddings and numbers (checked by hand in the tests).

    >>> import numpy as np
    >>> from curate.generate.metrics import clip_score, mean_interval, temporal_consistency
    >>> frames = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    >>> round(temporal_consistency(frames), 3)           # mean of cos(f0, f1) = 0.6 and cos(f1, f2) = 0.8
    0.7
    >>> clip_score(np.array([1.0, 0.0]), frames)          # the curation CLIP stage's score: 100 * max(mean cos, 0)
    53.33...
    >>> mean_interval([1.0, 2.0, 3.0])                    # mean and 95% Student-t interval
    Interval(mean=2.0, low=-0.484..., high=4.484..., n=3)

``clip_score`` is ``curate.models.clip.clip_score`` itself (the curation CLIP stage's definition), re-exported.
Intervals are Student-t intervals, ``mean ± t(0.975, n-1) · s / sqrt(n)`` with ``s`` the sample standard deviation
(ddof=1): exact for normal scores, and close for means of 20+ videos whatever their distribution. NaN values
(an undecodable video) are left out and ``n`` counts the others; with n < 2 the bounds are None.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from curate.models.clip import clip_score

__all__ = ["Interval", "clip_score", "mean_interval", "temporal_consistency"]


def temporal_consistency(frame_embs: np.ndarray) -> float:
    """Mean cosine similarity between the CLIP embeddings of consecutive frames (1 = every frame looks alike).

    Rows are re-normalised, so raw embeddings work too. Needs at least two frames.
    """
    frames = np.atleast_2d(np.asarray(frame_embs, dtype=np.float64))
    if frames.shape[0] < 2:
        raise ValueError(f"temporal_consistency needs embeddings of >= 2 frames, got shape {frames.shape}")
    frames = frames / np.maximum(np.linalg.norm(frames, axis=1, keepdims=True), 1e-12)
    return float(np.mean(np.sum(frames[:-1] * frames[1:], axis=1)))


@dataclass(frozen=True)
class Interval:
    """A mean and its confidence interval over ``n`` values; ``low``/``high`` are None when n < 2."""

    mean: float
    low: float | None
    high: float | None
    n: int


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """Mean of the finite ``values`` and its Student-t interval at ``confidence`` (see the module docstring)."""
    from scipy import stats

    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    finite = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    n = int(finite.size)
    if n == 0:
        return Interval(mean=math.nan, low=None, high=None, n=0)
    mean = float(finite.mean())
    if n < 2:
        return Interval(mean=mean, low=None, high=None, n=n)
    half = float(stats.t.ppf(0.5 + confidence / 2, df=n - 1) * finite.std(ddof=1) / math.sqrt(n))
    return Interval(mean=mean, low=mean - half, high=mean + half, n=n)
