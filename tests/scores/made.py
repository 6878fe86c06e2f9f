"""Made videos with known truth for the scorers, from real fixtures and real ffmpeg: inserts of black and of one
colour, a frozen segment, letterbox and pillarbox bars, blurred copies, and decoder garbage."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np

from tests.ffmpeg_media import ffmpeg
from tests.media import write_video


def encode(source: Path, out: Path, video_filter: str, seconds: float | None = None) -> Path:
    """``source`` through the ffmpeg filter ``video_filter``, re-encoded as H.264 (no audio)."""
    duration = ["-t", str(seconds)] if seconds else []
    ffmpeg("-i", str(source), *duration, "-an", "-vf", video_filter, "-c:v", "libx264", "-preset", "veryfast",
           "-crf", "20", "-pix_fmt", "yuv420p", str(out))
    return out


def with_inserts(source: Path, out: Path) -> Path:
    """``source`` (10 s at least) with black over 2-4 s and one flat blue over 6-8 s."""
    return encode(source, out, "drawbox=color=black:t=fill:enable='between(t,2,4)',"
                               "drawbox=color=0x3060C0:t=fill:enable='between(t,6,8)'", seconds=10)


def frozen(source: Path, out: Path) -> Path:
    """2 s of ``source`` then its last frame held for 3 s (ffmpeg's tpad)."""
    return encode(source, out, "trim=0:2,setpts=PTS-STARTPTS,tpad=stop_mode=clone:stop_duration=3")


def letterboxed(source: Path, out: Path, width: int, height: int) -> Path:
    """``source`` scaled to fit ``width`` x ``height`` and centred on black (bars top and bottom, or left and right)."""
    return encode(source, out, f"scale={width}:{height}:force_original_aspect_ratio=decrease,"
                               f"pad={width}:{height}:(ow-iw)/2:(oh-ih)/2:black,setsar=1", seconds=6)


def green_garbage(source: Path, folder: Path) -> Path:
    """Decoder garbage: ``source``'s H.264 stream with its first third of bytes dropped.

    The fixture is first re-encoded with one keyframe (so that no later keyframe repairs the stream); its raw stream
    (``-bsf:v h264_mp4toannexb -f h264``) keeps its parameter sets and loses the first third of its slices. FFmpeg's
    decoder drops frames that have no reference unless told to show them (``-flags2 showall``); it then conceals the
    missing picture as flat mid-grey, which later frames paint over piece by piece. Decoders that leave the missing
    picture at zero show green instead: the concealed grey is painted that green here.
    """
    raw, cut = folder / "one_gop.h264", folder / "cut.h264"
    ffmpeg("-i", str(source), "-t", "12", "-an", "-c:v", "libx264", "-preset", "veryfast", "-crf", "30",
           "-x264-params", "keyint=infinite:scenecut=0", "-bsf:v", "h264_mp4toannexb", "-f", "h264", str(raw))
    data = raw.read_bytes()
    starts = [m.start() for m in re.finditer(b"\x00\x00\x01", data)]
    first_slice = next(i for i in starts if data[i + 3] & 0x1F in (1, 5))
    later_slice = next(i for i in starts if i >= len(data) // 3 and data[i + 3] & 0x1F in (1, 5))
    cut.write_bytes(data[:first_slice] + data[later_slice:])
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "stream=width,height",
                            "-of", "csv=p=0", str(raw)], check=True, capture_output=True, text=True)
    width, height = map(int, probe.stdout.strip().split(","))
    decoded = subprocess.run(["ffmpeg", "-nostdin", "-v", "quiet", "-flags2", "showall", "-r", "25", "-i", str(cut),
                              "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], check=True, capture_output=True).stdout
    frames = np.frombuffer(decoded, np.uint8).reshape(-1, height, width, 3).copy()
    grey = (np.abs(frames.astype(np.int16) - 128) <= 10).all(axis=3)
    frames[grey] = (0, 135, 0)
    return write_video(folder / "green_garbage.mp4", list(frames), fps=25)
