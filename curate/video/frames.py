"""Sample times in a clip and decode just the frames at those times, from a local file or a URL.

    >>> from curate.video.frames import read_frames, sample_times
    >>> times = sample_times(0.0, 3.0, positions=(0.0, 0.5, 1.0))   # first, middle and last frame
    >>> frames = read_frames("../shared/videos/psd_counter.mp4", times, width=320)
    >>> [f.time_s for f in frames], frames[0].image.shape
    ([0.0, 1.5, 2.9], (180, 320, 3))

A clip is a span ``[start_s, end_s)`` of one video stream in curate's one timeline (``curate.video.timeline``):
frame times as split computed them, which are the presentation timestamps stored in the file (``frame.pts *
stream.time_base``) wherever those strictly increase. The frame "at" time ``t`` is the last frame whose time is
at or before ``t``; a time before the first frame gets the first frame. Sources are opened by
``curate.video.source`` (local paths directly, URLs through fsspec).

Decoding uses PyAV. Where the file's timestamps can be trusted (nearly always): seek to the keyframe before the
first requested time, decode forward, and seek again only when the stream's index shows a keyframe between the
current position and the next requested time; while more than ``SKIP_MARGIN_S`` before the next requested time
the decoder skips B-frames (nothing refers to them). Where they cannot (a clock that restarts, frames labelled
out of order), decode from the first frame and time every frame as split did (``curate.video.timeline``). At
most a few decoded frames are held at once, never the whole video; picked frames are converted to small RGB
images at once. ``read_clips`` reads many clips of one file in one pass, which saves each clip's run-up from its
keyframe.

Why PyAV and not decord 0.6.0 (also installed): on the shared footage decord returns wrong frames (packed
B-frames, the x264 version SEI after a seek, timestamps that start at zero where the file's do not) and is not
clearly faster (the checks and figures: ``benchmarks/README.md``).

What the returned images honour:

* display rotation (the stream's display matrix, e.g. phone video; ``psd_issue-134-rotate.mp4``): images are
  turned upright so OCR reads upright text. Flips in the display matrix are ignored (rare).
* non-square pixels (sample aspect ratio, e.g. 704x576 PAL with SAR 16:11): images are resampled to the
  display aspect ratio, so ``width=None`` gives 1024x576 for such a stream.
* a change of resolution inside the stream (recordings joined into one file; split cuts there): the frames of
  one clip all have the size of its first frame, the others are scaled to it, so a clip's frames stack.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import av
import cv2
import numpy as np
from av.video.reformatter import VideoReformatter

from curate.errors import VideoReadError
from curate.video.source import source_name
from curate.video.cursor import FrameCursor, read_stream

__all__ = ["BASE_WIDTH", "Frame", "FrameScaler", "made_width", "read_clips", "read_frames", "sample_times", "shrink",
           "sized", "to_rgb"]

#: Images a whole fraction of this wide (160, 80 px) are shrunk from the frame's image at this width by averaging
#: pixel blocks (:class:`FrameScaler`), so that one FFmpeg conversion of a frame serves OCR's 320-px and motion's
#: 160-px grey images.
BASE_WIDTH = 320

# Position 1.0 of a clip maps to end_s minus this (seconds): end_s is exclusive, so "last frame" means the
# frame shown just before end_s, not the first frame of the next clip.
END_EPSILON_S = 1e-4


@dataclass(frozen=True)
class Frame:
    """One decoded frame: its actual presentation time in seconds and an upright HxWx3 uint8 RGB image."""

    time_s: float
    image: np.ndarray


def sample_times(
    start_s: float,
    end_s: float,
    *,
    fps: float | None = None,
    positions: Sequence[float] | None = None,
    max_frames: int | None = None,
) -> list[float]:
    """Times (seconds) to sample in the clip ``[start_s, end_s)``; give exactly one of ``fps`` or ``positions``.

    ``fps``: a regular grid ``start_s + k / fps`` for every ``k`` that stays before ``end_s`` (ascending).
    ``positions``: relative positions in ``[0, 1]``, in the order given; 0 is the clip's first frame, 1 its last
    frame (``end_s - END_EPSILON_S``, since ``end_s`` is exclusive).
    ``max_frames``: when there are more times than this, keep ``max_frames`` of them evenly spread, always
    including the first and the last.
    """
    # 1. check inputs
    if not (math.isfinite(start_s) and math.isfinite(end_s)):
        raise ValueError(f"start_s and end_s must be finite seconds, got start_s={start_s}, end_s={end_s}")
    if end_s <= start_s:
        raise ValueError(f"end_s ({end_s}) must be greater than start_s ({start_s}): a clip is [start_s, end_s)")
    if (fps is None) == (positions is None):
        raise ValueError("give exactly one of fps= (a regular grid) or positions= (relative positions in [0, 1])")
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be a positive integer or None (no limit), got {max_frames}")

    # 2. build the times
    if fps is not None:
        if not (math.isfinite(fps) and fps > 0):
            raise ValueError(f"fps must be a positive number of samples per second, got {fps}")
        count = math.ceil((end_s - start_s) * fps) + 1  # one too many at most, dropped by the test below
        times = [start_s + k / fps for k in range(count) if start_s + k / fps < end_s]
    else:
        bad = [p for p in positions if not 0.0 <= p <= 1.0]
        if bad or len(positions) == 0:
            raise ValueError(f"positions must be a non-empty sequence of numbers in [0, 1], got {list(positions)}")
        last = max(start_s, end_s - END_EPSILON_S)
        times = [min(start_s + p * (end_s - start_s), last) for p in positions]

    # 3. thin out evenly
    if max_frames is not None and len(times) > max_frames:
        keep = np.round(np.linspace(0, len(times) - 1, max_frames)).astype(int)
        times = [times[i] for i in keep]
    return times


def read_frames(
    source: str | os.PathLike,
    times: Sequence[float],
    *,
    width: int | None = None,
    stream_index: int | None = None,
    threads: int = 1,
) -> list[Frame]:
    """Decode the frame at each requested time (seconds); one ``Frame`` per time, in the order given.

    ``source``: a local path or a URL (``s3://...``: see ``curate.video.source``).
    ``width``: largest output width in pixels of the upright, display-aspect image; narrower frames are not
    upscaled, and the height follows the aspect ratio. None keeps the display width.
    ``stream_index``: index among all the container's streams; None picks the default video stream.
    ``threads``: FFmpeg decoder threads (1 = one core, what a Dask worker gets; 0 = FFmpeg chooses).
    Raises ``VideoReadError`` when the file cannot be opened or decoded, or a time is past the stream's end.
    """
    return read_clips(source, [times], width=width, stream_index=stream_index, threads=threads)[0]


def read_clips(
    source: str | os.PathLike,
    clip_times: Sequence[Sequence[float]],
    *,
    width: int | None = None,
    stream_index: int | None = None,
    threads: int = 1,
) -> list[list[Frame]]:
    """``read_frames`` for many clips of one file: one list of frames per clip, in the order given.

    All the clips' times are read in one pass, in ascending order, so a file cut into clips is decoded about once
    instead of once per clip plus each clip's run-up from its keyframe (with one keyframe every 25 s, as
    ``opencv_vtest.avi``, that run-up is 3x the clip). A frame several times ask for is converted once.
    """
    # 1. check inputs
    if width is not None and (not isinstance(width, int) or width < 2):
        raise ValueError(f"width must be an integer number of pixels >= 2, or None (display width); got {width!r}")
    if not isinstance(threads, int) or threads < 0:
        raise ValueError(f"threads must be an integer >= 1, or 0 to let FFmpeg choose; got {threads!r}")
    times = sorted({t for clip in clip_times for t in clip})
    bad = [t for t in times if not math.isfinite(t)]
    if bad:
        raise ValueError(f"times must be finite seconds, got {bad}")
    if not times:
        return [[] for _ in clip_times]

    # 2. decode forward through the sorted times (curate.video.timeline), converting each frame as it is picked
    def pick(frames: FrameCursor) -> dict[float, Frame]:
        scaler = FrameScaler(frames.stream.sample_aspect_ratio)
        picked: dict[float, Frame] = {}
        last: Frame | None = None
        for t in times:
            time_s, frame = frames.frame_at(t)
            if last is None or last.time_s != time_s:  # times ascend: a repeat is always the last one picked
                last = Frame(time_s=time_s, image=scaler.image(frame, width))
            picked[t] = last
        return picked

    name = source_name(source)
    try:
        picked = read_stream(source, pick, stream_index=stream_index, threads=threads)
    except av.FFmpegError as error:
        where = f"between {times[0]:.3f} s and {times[-1]:.3f} s"
        raise VideoReadError(name, f"decoding failed {where} ({error})") from error
    except VideoReadError as error:
        if error.path is not None:  # the source's own error names it already
            raise
        raise VideoReadError(name, error.cause) from None
    return [_one_size([picked[t] for t in clip]) for clip in clip_times]


def _one_size(frames: list[Frame]) -> list[Frame]:
    """The frames of one clip, each at the size of the first (the stream's resolution may change inside)."""
    if not frames:
        return frames
    height, width = frames[0].image.shape[:2]
    return [f if f.image.shape[:2] == (height, width)
            else Frame(f.time_s, cv2.resize(f.image, (width, height), interpolation=cv2.INTER_AREA)) for f in frames]


class FrameScaler:
    """Upright RGB images (:func:`to_rgb`) of the decoded frames of one stream, each at the widths asked for.

    Every reader of frames (``read_clips``, split's frame keeper) makes its images here, so a frame at a width is the
    same picture whichever made it. Each width comes from FFmpeg's area scaler, but a whole fraction of
    ``BASE_WIDTH`` (``made_width``), which is shrunk from the ``BASE_WIDTH`` image by averaging 2x2 (or 4x4, ...)
    blocks of its pixels (:func:`shrink`), so that motion's 160-px frames cost no FFmpeg conversion of their own when
    OCR's 320-px ones are made too.

    Only whole fractions are shrunk that way, where averaging blocks of pixels is an exact area average: a two-step
    shrink to another width (picture's 256 px) measures sharpness differently (``curate.scores.picture``; figures in
    ``docs/stages.md``, "Decode once").
    """

    def __init__(self, sample_aspect_ratio: Fraction | None):
        self.sample_aspect_ratio = sample_aspect_ratio
        self._reformatters: dict[int | None, VideoReformatter] = {}  # FFmpeg's scaler per output width: built once

    def image(self, frame: av.VideoFrame, width: int | None) -> np.ndarray:
        """The image of ``frame`` at most ``width`` pixels wide (None: the display width)."""
        return self.images(frame, [width])[width]

    def images(self, frame: av.VideoFrame, widths, known: dict | None = None) -> dict[int | None, np.ndarray]:
        """The images of ``frame`` at each of ``widths``, keyed by width, and the ``BASE_WIDTH`` image they were
        shrunk from; ``known``: what this returned for the frame before (nothing in it is made again)."""
        out = dict(known or {})
        for width in widths:
            made = made_width(width)
            if made not in out:
                out[made] = self._ffmpeg(frame, made)
            out[width] = sized(out, width)
        return out

    def _ffmpeg(self, frame: av.VideoFrame, width: int | None) -> np.ndarray:
        reformatter = self._reformatters.setdefault(width, VideoReformatter())
        return to_rgb(frame, width, self.sample_aspect_ratio, reformatter)


def made_width(width: int | None) -> int | None:
    """The width FFmpeg makes an image of a frame at, for an image ``width`` wide (``FrameScaler``)."""
    if width is not None and width < BASE_WIDTH and BASE_WIDTH % width == 0:
        return BASE_WIDTH
    return width


def sized(images: dict[int | None, np.ndarray], width: int | None) -> np.ndarray:
    """The image ``width`` wide, from a frame's images by width that hold at least the one FFmpeg makes for it
    (``made_width``): as ``FrameScaler`` makes it."""
    return images[width] if width in images else shrink(images[made_width(width)], width)


def shrink(image: np.ndarray, width: int) -> np.ndarray:
    """``image`` at most ``width`` pixels wide, aspect kept (height rounded), by OpenCV's area average. Never
    enlarged."""
    height, have = image.shape[:2]
    if width >= have:
        return image
    size = (width, max(1, round(height * width / have)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def to_rgb(
    frame: av.VideoFrame,
    width: int | None,
    sample_aspect_ratio: Fraction | None,
    reformatter: VideoReformatter | None = None,
) -> np.ndarray:
    """Upright HxWx3 uint8 RGB image of ``frame`` at display aspect ratio, at most ``width`` pixels wide.

    Pass one ``reformatter`` for all frames of a stream: it keeps FFmpeg's scaler between frames (building it
    costs ~3 ms a frame, 20x the scaling of a small frame).
    """
    reformatter = reformatter or VideoReformatter()
    rotation = round(frame.rotation / 90) % 4 if frame.rotation else 0  # quarter turns counter-clockwise
    sar = sample_aspect_ratio if sample_aspect_ratio and sample_aspect_ratio > 0 else Fraction(1)
    stored_w, stored_h = frame.width, frame.height
    display_w, display_h = stored_w * sar, stored_h  # shown size of the stored picture (pixel aspect applied)
    if rotation % 2:
        display_w, display_h = display_h, display_w
    out_w = round(display_w) if width is None else min(width, round(display_w))  # never upscale
    out_h = max(1, round(out_w * display_h / display_w))
    scaled_w, scaled_h = (out_h, out_w) if rotation % 2 else (out_w, out_h)
    rgb = reformatter.reformat(frame, width=scaled_w, height=scaled_h, format="rgb24", interpolation="AREA")
    image = rgb.to_ndarray()
    if rotation:
        image = np.ascontiguousarray(np.rot90(image, k=rotation))
    return image
