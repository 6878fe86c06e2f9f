"""Cutting video: a clip's span re-encoded exactly, or its packets copied; and the one cover-and-crop of a frame.

    from curate.video.cut import cover_crop, cut_clip, copy_clip, output_size

    cut = cut_clip("bikes.mp4", 1.28, 3.0, resolution=(96, 64), fps=10)   # Cut: mp4 bytes, frames, size, span
    open("clip.mp4", "wb").write(cut.data)
    fast = copy_clip("bikes.mp4", 1.28, 3.0)       # no re-encoding: starts at the keyframe at or before 1.28 s
    image = cover_crop(frame, (448, 256), crop=(0.0, 0.12, 0.0, 0.12))   # HxWx3 RGB -> 256x448, bars cut away

``cover_crop`` is the one way curate fits a picture to an output size: cut away a crop box (fractions of the frame
at each edge: the picture step's black bars), scale to cover the size with no distortion, centre-crop. ``curate
export`` (through ``cut_clip``) and ``curate.training.ClipDataset`` both use it, so a clip exported at a size and
the same clip read for training at that size show the same pixels (before export's compression).

It scales with FFmpeg's scaler (PyAV's ``reformat``): area averaging to shrink, bicubic to enlarge, sizes rounded
to the nearest pixel. That is what export always did, so exported files are unchanged, and it is the scaler that
already turns every decoded frame upright at its display aspect (``curate.video.frames.to_rgb``); it needs no
torch in the video package. ``ClipDataset`` used PyTorch's antialiased bilinear resize before (rounding the covered
size up), which is faster per frame but gave other pixels than export for the same clip and size; what sharing
export's fit costs the training loader is in ``benchmarks/README.md``.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator, Sequence

import numpy as np

from curate.errors import VideoReadError

#: libx264's constant rate factor for exact cuts: visually lossless for most footage.
CRF = 18


@dataclass(frozen=True)
class Cut:
    """One cut clip: the mp4 bytes and what they hold."""

    data: bytes
    frames: int
    width: int
    height: int
    fps: float
    start_s: float  # of the content: start_s of the clip, or the keyframe before it (copy_clip)
    end_s: float


# ------------------------------------------------------------------------------------------- sizes and crops
def output_size(display: tuple[int, int], resolution: tuple[int, int] | int | None, *,
                even: bool = True) -> tuple[int, int]:
    """(width, height) of a picture shown at ``display`` (width, height) fitted to ``resolution``: (width,
    height) as given, an int short side (aspect kept), or None (the display size). ``even``: rounded to even sizes
    (yuv420p, which export encodes, halves the chroma planes), else to whole pixels."""
    width, height = display
    if isinstance(resolution, tuple):
        width, height = resolution
    elif isinstance(resolution, int):
        scale = resolution / min(width, height)
        width, height = width * scale, height * scale
    if even:
        return max(2, 2 * round(width / 2)), max(2, 2 * round(height / 2))
    return max(1, round(width)), max(1, round(height))


def crop_box(width: int, height: int,
             crop: Sequence[float | None] | None) -> tuple[int, int, int, int] | None:
    """The pixels (x0, y0, x1, y1) of a ``width`` x ``height`` picture left after cutting away ``crop`` =
    (left, top, right, bottom) fractions at its edges; None (keep it whole) without a crop, with an unknown one
    (None or NaN: the picture step could not tell), or with one that would leave under 2 pixels."""
    if crop is None or any(c is None or not math.isfinite(c) for c in crop) or not any(crop):
        return None
    left, top, right, bottom = crop
    x0, x1 = round(left * width), width - round(right * width)
    y0, y1 = round(top * height), height - round(bottom * height)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return x0, y0, x1, y1


def cover_crop(
    image: np.ndarray,
    size: tuple[int, int],
    *,
    display: tuple[int, int] | None = None,
    crop: Sequence[float | None] | None = None,
    reformatter=None,
) -> np.ndarray:
    """``image`` (HxWx3 uint8 RGB) fitted to ``size`` (width, height): ``crop`` cut away, scaled to cover, centre-cropped.

    ``display``: the (width, height) the image is shown at when its pixels are not square (decord's frames are
    stored, not shown, size); default its own shape. ``crop``: (left, top, right, bottom) fractions of the picture
    to cut away first (``crop_box``). The picture is scaled by one factor in display units, so nothing is
    stretched, to the smallest size that covers ``size`` (each side rounded to the nearest pixel), with area
    averaging when it has fewer pixels than ``image`` and bicubic otherwise; then its centre ``size`` is kept.
    ``reformatter``: a ``av.video.reformatter.VideoReformatter`` to reuse across the frames of a clip (it keeps
    FFmpeg's scaler). An image that needs no change is returned as it is.
    """
    height, width = image.shape[:2]
    shown_w, shown_h = display if display else (width, height)
    box = crop_box(width, height, crop)
    if box is not None:
        x0, y0, x1, y1 = box
        shown_w, shown_h = shown_w * (x1 - x0) / width, shown_h * (y1 - y0) / height
        image, width, height = image[y0:y1, x0:x1], x1 - x0, y1 - y0
    target_w, target_h = size
    scale = max(target_w / shown_w, target_h / shown_h)
    scaled_w, scaled_h = max(target_w, round(shown_w * scale)), max(target_h, round(shown_h * scale))
    if (scaled_w, scaled_h) != (width, height):
        import av
        from av.video.reformatter import VideoReformatter

        reformatter = reformatter or VideoReformatter()
        interpolation = "AREA" if scaled_w * scaled_h < width * height else "BICUBIC"
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        image = reformatter.reformat(frame, width=scaled_w, height=scaled_h, interpolation=interpolation).to_ndarray()
    if (scaled_w, scaled_h) == (target_w, target_h):
        return image
    left, top = (scaled_w - target_w) // 2, (scaled_h - target_h) // 2
    return image[top:top + target_h, left:left + target_w]


# --------------------------------------------------------------------------------------------------- cuts
def cut_clip(
    source: str,
    start_s: float,
    end_s: float,
    *,
    stream_index: int | None = None,
    resolution: tuple[int, int] | int | None = None,
    fps: float | None = None,
    crop: tuple[float, float, float, float] | None = None,
) -> Cut:
    """The clip ``[start_s, end_s)`` of ``source`` (a local path or URL) re-encoded (libx264, yuv420p): an exact cut.

    Output frame k shows the source frame on screen at ``start_s + k / fps`` in curate's timeline (the frames
    split and the scorers saw there: ``curate.video.timeline``), for ``round((end_s - start_s) * fps)`` frames;
    fps defaults to the source's average rate. ``resolution``: (width, height) covered and centre-cropped, an int
    short side, or None (the display size); even sizes (``output_size``). ``crop``: (left, top, right, bottom)
    fractions of the upright frame to cut away first (black bars: the picture step's ``crop_*`` columns). Raises
    ``VideoReadError`` when the source cannot be opened or decoded over the span.
    """
    import av

    if not end_s > start_s:
        raise VideoReadError(None, f"empty span: end_s {end_s} <= start_s {start_s}")

    def encode(frames) -> Cut:
        stream = frames.stream
        rate = _rate(fps if fps is not None else (stream.average_rate or stream.guessed_rate or 25))
        count = max(1, round((end_s - start_s) * rate))
        buffer = io.BytesIO()
        with av.open(buffer, "w", format="mp4") as output:
            video = output.add_stream("libx264", rate=rate, options={"crf": str(CRF)})
            video.pix_fmt = "yuv420p"
            times = [start_s + k / rate for k in range(count)]
            for k, image in enumerate(_pictures(frames, times, resolution, crop)):
                if k == 0:
                    video.width, video.height = image.shape[1], image.shape[0]
                picture = av.VideoFrame.from_ndarray(image, format="rgb24")
                picture.pts = k
                output.mux(video.encode(picture))
            output.mux(video.encode())
        return Cut(buffer.getvalue(), count, video.width, video.height, float(rate), start_s, start_s + count / rate)

    return _read_source(source, encode, stream_index)


def cut_frames(
    source: str,
    times: Sequence[float],
    *,
    stream_index: int | None = None,
    resolution: tuple[int, int] | int | None = None,
    crop: tuple[float, float, float, float] | None = None,
) -> list[np.ndarray]:
    """The pictures (HxWx3 uint8 RGB) an exact cut encodes at source ``times`` (ascending): ``cut_clip`` before
    compression. Raises ``VideoReadError`` as ``cut_clip`` does."""
    return _read_source(source, lambda frames: list(_pictures(frames, times, resolution, crop)), stream_index)


def _pictures(frames, times: Sequence[float], resolution, crop) -> Iterator[np.ndarray]:
    """The upright, cropped, fitted picture on screen at each time of ``frames`` (a ``curate.video.timeline``
    cursor); a source frame shown at several times is fitted once."""
    from av.video.reformatter import VideoReformatter

    from curate.video.frames import to_rgb

    stream = frames.stream
    upright_scaler, fit_scaler = VideoReformatter(), VideoReformatter()
    size = image = shown = None
    for time_s in times:
        frame_time, frame = frames.frame_at(time_s)
        if frame_time != shown:
            upright = to_rgb(frame, None, stream.sample_aspect_ratio, upright_scaler)
            if size is None:
                box = crop_box(upright.shape[1], upright.shape[0], crop)
                shown_size = (upright.shape[1], upright.shape[0]) if box is None else (box[2] - box[0],
                                                                                      box[3] - box[1])
                size = output_size(shown_size, resolution)
            image, shown = cover_crop(upright, size, crop=crop, reformatter=fit_scaler), frame_time
        yield image


def copy_clip(source: str, start_s: float, end_s: float, *, stream_index: int | None = None) -> Cut:
    """The packets of ``[start_s, end_s)`` copied into an mp4, no re-encoding: it starts at the keyframe at or
    before ``start_s`` (``Cut.start_s``) and ends with the last packet decoded before ``end_s``.

    Packets are placed by their timestamps, so a source whose packet timestamps cannot be trusted (a clock that
    restarts, as in joined MPEG-TS recordings: ``curate.video.timeline``) raises ``VideoReadError``: cut it exactly.
    So does a codec that MP4 cannot hold; the message says so and what to do.
    """
    import av

    from curate.video.cursor import seek_packets
    from curate.video.timeline import packets_trusted

    def copy(container, stream) -> Cut:
        if not packets_trusted(source, container, stream):
            raise VideoReadError(source, "its timestamps restart or are missing, so packets cannot be placed on "
                                 f"the span [{start_s:.3f}, {end_s:.3f}) s; export it without --copy (exact cuts)")
        base = stream.time_base
        packets, later = [], None
        for packet in seek_packets(container, stream, start_s):
            decode_ticks = packet.dts if packet.dts is not None else packet.pts
            if decode_ticks * base >= end_s:
                later = packet.pts if packet.pts is not None else decode_ticks
                break
            packets.append(packet)
        if not packets:
            after = "" if later is None else f" (its first keyframe is at {float(later * base):.3f} s)"
            raise VideoReadError(source, f"no keyframe at or before {start_s:.3f} s to start a copy of "
                                 f"[{start_s:.3f}, {end_s:.3f}) s from{after}")
        pts = [p.pts if p.pts is not None else p.dts for p in packets]
        dts = decode_times(pts, [p.dts for p in packets])
        codec = stream.codec_context.codec.canonical_name
        buffer = io.BytesIO()
        try:
            with av.open(buffer, "w", format="mp4") as output:
                # opaque: copy the codec parameters as they are; without it PyAV looks up an encoder named as the
                # decoder (libdav1d for AV1), which does not exist
                copied = output.add_stream_from_template(stream, opaque=True)
                for packet, p, d in zip(packets, pts, dts):
                    packet.dts, packet.pts = d - dts[0], p - dts[0]
                    packet.stream = copied
                    output.mux(packet)
        except (av.FFmpegError, ValueError) as e:
            raise VideoReadError(source, f"its {codec} video cannot be stream-copied into an MP4 ({e}); "
                                 f"export it without --copy (decoded and re-encoded with libx264)") from e
        width, height = stream.codec_context.width, stream.codec_context.height
        rate = float(stream.average_rate or stream.guessed_rate or 0)
        start = float(pts[0] * base)
        end = float(max(pts) * base) + (1 / rate if rate else 0)
        return Cut(buffer.getvalue(), len(packets), width, height, rate, start, end)

    return _read_source(source, copy, stream_index, packets=True)


def decode_times(pts: Sequence[int], dts: Sequence[int | None]) -> list[int]:
    """Decode timestamps for packets in decode order: ``dts`` when the demuxer gave every one, else made from the
    presentation timestamps (Matroska stores only those): the sorted ``pts``, shifted back just enough that no
    packet is decoded after it is shown. MP4 needs a decode timestamp on every packet, strictly increasing.

        decode_times([0, 4, 2, 1, 3], [None, None, 0, 1, 2])  # [-2, -1, 0, 1, 2]
    """
    if all(d is not None for d in dts):
        return list(dts)
    order = sorted(pts)
    shift = max(o - p for o, p in zip(order, pts))
    return [o - shift for o in order]


def _read_source(source: str, work, stream_index: int | None, packets: bool = False):
    """What ``work`` returns over the source's frames (a ``curate.video.timeline`` cursor) or, with ``packets``,
    over its open container and stream; any failure to read the source becomes a ``VideoReadError`` naming it."""
    import av

    from curate.video.source import open_container, pick_video_stream, source_name
    from curate.video.cursor import read_stream

    name = source_name(source)
    try:
        if not packets:
            return read_stream(source, work, stream_index=stream_index)
        with open_container(source) as container:
            return work(container, pick_video_stream(container, stream_index, name))
    except VideoReadError as e:
        if e.path is not None:  # names the source already
            raise
        raise VideoReadError(name, e.cause) from e
    except (av.FFmpegError, ValueError, OSError) as e:
        raise VideoReadError(name, str(e)) from e


def _rate(fps: float | Fraction) -> Fraction:
    """A frame rate as a fraction: NTSC rates (29.97...) exactly, others to 1/1000 frame per second."""
    fps = Fraction(fps)
    ntsc = Fraction(round(fps * Fraction(1001, 1000)) * 1000, 1001)
    return ntsc if abs(fps - ntsc) < Fraction(1, 1000) and fps.denominator != 1 else fps.limit_denominator(1000)
