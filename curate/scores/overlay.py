"""Overlay text: which of a clip's text boxes stay in place across its sampled frames (logos, channel bugs,
watermarks, burned-in captions) and which move or come and go (scene text: signs, shirts, labels).

    >>> from curate.scores.overlay import overlay_areas
    >>> logo = [0.85, 0.02, 0.98, 0.02, 0.98, 0.10, 0.85, 0.10]        # x, y of 4 corners, fractions of the frame
    >>> sign = lambda x: [x, 0.5, x + 0.2, 0.5, x + 0.2, 0.6, x, 0.6]  # a sign the camera pans past
    >>> result = overlay_areas([[logo, sign(0.1)], [logo, sign(0.3)], [logo, sign(0.5)]])
    >>> round(result.overlay, 2), round(result.moving, 2)             # a 13x8 % logo; a 20x10 % sign
    (0.01, 0.02)

Input: the OCR step's boxes (``ocr_boxes``: per sampled frame, each box as its 4 corners in fractions of the frame's
width and height), so the measure needs no decode and no detector of its own, and can be recomputed from a run's
stored boxes. A box **stays in place** when, in at least ``PERSIST_SHARE`` of the clip's sampled frames (its own
included, and at least two), a box overlaps it with an intersection over union of ``MIN_IOU`` or more (their
axis-aligned bounding rectangles). Detectors miss a small logo in some frames, hence a share and not every frame;
text that changes inside the same box (a clock, a frame counter, subtitles on one line) stays in place too: it is
burned in. A corner or edge position is not required: a static camera filming a sign gives a box that stays in
place too, which only the position (a hint, ``edge`` below) or the camera can tell apart.

- ``overlay``: the largest, over the frames, fraction of the frame covered by the union of that frame's boxes that
  stay in place (0..1, like ``ocr_area``);
- ``moving``: the same for the other boxes (text that moves, appears or disappears);
- ``edge``: whether every box that stays in place touches the frame's outer ``EDGE`` band (where logos and bugs
  sit); False without such boxes.

NaN for both areas without frames; a clip with one sampled frame has no box that stays in place.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from curate.scores.ocr import covered_fraction

__all__ = ["EDGE", "MIN_IOU", "PERSIST_SHARE", "OverlayResult", "overlay_areas"]

MIN_IOU = 0.5  # two boxes are the same place when their bounding rectangles overlap this much
PERSIST_SHARE = 0.6  # a box stays in place when it is found in this share of the sampled frames (and >= 2)
EDGE = 0.15  # fraction of the width / height at each side that counts as the frame's edge band
RASTER = 512  # the unit square is rasterised this finely to measure the union of boxes (like ocr_area's mask)


@dataclass(frozen=True)
class OverlayResult:
    overlay: float
    moving: float
    edge: bool


def overlay_areas(frames_boxes: Sequence[Sequence[Sequence[float]]] | None) -> OverlayResult:
    """Area of the text that stays in place and of the other text, from per-frame normalised 8-number boxes."""
    # 1. check inputs
    if not frames_boxes:
        return OverlayResult(math.nan, math.nan, False)
    quads = [[np.asarray(b, dtype=np.float64).reshape(4, 2) for b in boxes or []] for boxes in frames_boxes]
    rects = [[(q[:, 0].min(), q[:, 1].min(), q[:, 0].max(), q[:, 1].max()) for q in frame] for frame in quads]
    frames = len(quads)
    needed = max(2, math.ceil(PERSIST_SHARE * frames - 1e-9))

    # 2. each box: in how many frames a box lies at the same place
    stays: list[list[bool]] = []
    for i, frame in enumerate(rects):
        stays.append([
            1 + sum(any(_iou(rect, other) >= MIN_IOU for other in rects[j]) for j in range(frames) if j != i) >= needed
            for rect in frame])

    # 3. per frame, the area of the union of each kind; the clip's is the largest
    def area(frame: int, keep: bool) -> float:
        polygons = [q * RASTER for q, s in zip(quads[frame], stays[frame]) if s == keep]
        return covered_fraction(polygons, RASTER, RASTER) if polygons else 0.0

    placed = [rect for frame, flags in zip(rects, stays) for rect, s in zip(frame, flags) if s]
    edge = bool(placed) and all(r[0] <= EDGE or r[1] <= EDGE or r[2] >= 1 - EDGE or r[3] >= 1 - EDGE for r in placed)
    return OverlayResult(
        overlay=max(area(f, True) for f in range(frames)),
        moving=max(area(f, False) for f in range(frames)),
        edge=edge,
    )


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
