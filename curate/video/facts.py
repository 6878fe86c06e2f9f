"""Technical facts of a video stream that decide how a clip may be used in training: bit rate, codec profile, bit depth,
pixel format, colour primaries and transfer (HDR), audio channels. Read from the container header, no decode.

    >>> from curate.video.facts import stream_facts
    >>> facts = stream_facts("../shared/videos/imageio_cockatoo.mp4")
    >>> facts.profile, facts.pix_fmt, facts.bit_depth, facts.transfer, facts.hdr
    ('High 4:4:4 Predictive', 'yuv444p', 8, None, 'sdr')

``transfer`` and ``primaries`` use FFmpeg's names (``bt709``, ``bt2020``, ``smpte2084`` = PQ, ``arib-std-b67`` = HLG);
None where the file does not say (most SDR files). ``hdr`` is ``pq``, ``hlg`` or ``sdr`` from the transfer, so that
HDR footage can be told apart and filtered (``hdr == 'sdr'``): it looks washed out when decoded as SDR.
``bit_rate`` is the stream's in bits per second, else the container's, else the file's size over its duration.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

from curate.video.source import open_container, pick_video_stream

__all__ = ["StreamFacts", "container_facts", "stream_facts"]

#: FFmpeg's AVColorPrimaries values (libavutil/pixfmt.h) that files use; others are reported as None
PRIMARIES = {1: "bt709", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "film", 9: "bt2020",
             10: "smpte428", 11: "smpte431", 12: "smpte432", 22: "ebu3213"}
#: FFmpeg's AVColorTransferCharacteristic values
TRANSFERS = {1: "bt709", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 7: "smpte240m", 8: "linear", 11: "iec61966-2-4",
             13: "iec61966-2-1", 14: "bt2020-10", 15: "bt2020-12", 16: "smpte2084", 17: "smpte428",
             18: "arib-std-b67"}
HDR = {"smpte2084": "pq", "arib-std-b67": "hlg"}


@dataclass(frozen=True)
class StreamFacts:
    bit_rate: int | None  # bits per second
    profile: str | None
    pix_fmt: str | None
    bit_depth: int | None  # bits per sample of the luma plane
    primaries: str | None
    transfer: str | None
    hdr: str  # pq | hlg | sdr
    audio_channels: int  # of the first audio stream; 0 without audio

    def as_row(self) -> dict:
        return asdict(self)


def stream_facts(path: str | os.PathLike, stream_index: int | None = None, size_bytes: int | None = None,
                 duration_s: float | None = None) -> StreamFacts:
    """Facts of the video stream ``stream_index`` (default: the default one) of ``path`` (local path or URL).

    ``size_bytes`` and ``duration_s`` (what ``probe`` found) give the bit rate of files whose header has none.
    Raises what ``curate.video.source`` raises for a file that cannot be opened.
    """
    path = os.fspath(path)
    with open_container(path) as container:
        return container_facts(container, pick_video_stream(container, stream_index, path), size_bytes, duration_s)


def container_facts(container, stream, size_bytes: int | None = None, duration_s: float | None = None) -> StreamFacts:
    """``stream_facts`` of an open container's video ``stream`` (what ``probe`` reads while it has the file open)."""
    ctx = stream.codec_context
    rate = ctx.bit_rate or stream.bit_rate or container.bit_rate or None
    if not rate and size_bytes and duration_s:
        rate = round(size_bytes * 8 / duration_s)
    pix = ctx.format
    transfer = TRANSFERS.get(int(ctx.color_trc or 0))
    audio = container.streams.audio
    channels = 0
    if audio:
        audio_ctx = audio[0].codec_context
        channels = int(getattr(audio_ctx, "channels", 0) or audio_ctx.layout.nb_channels)
    return StreamFacts(
        bit_rate=int(rate) if rate else None,
        profile=ctx.profile or None,
        pix_fmt=pix.name if pix is not None else None,
        bit_depth=int(pix.components[0].bits) if pix is not None and pix.components else None,
        primaries=PRIMARIES.get(int(ctx.color_primaries or 0)),
        transfer=transfer,
        hdr=HDR.get(transfer, "sdr"),
        audio_channels=channels,
    )
