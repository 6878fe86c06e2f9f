"""Make awkward test media from the shared fixtures with the ffmpeg command line (seconds long, in a tmp folder)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

TS_PACKET_BYTES = 188


def need_ffmpeg() -> str:
    """The ffmpeg command's path; without it the test is skipped here and fails in CI (``CI=true``), as a missing
    fixture does (.ci/run installs Debian's ffmpeg)."""
    path = shutil.which("ffmpeg")
    if path is None:
        message = "the ffmpeg command line tool makes this test's media (apt-get install ffmpeg)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def ffmpeg(*args: str | Path) -> None:
    """Run ``ffmpeg -y <args>``, failing the test with ffmpeg's own message when it fails."""
    done = subprocess.run([need_ffmpeg(), "-v", "error", "-nostdin", "-y", *map(str, args)], capture_output=True,
                          text=True)
    if done.returncode:
        pytest.fail(f"ffmpeg {' '.join(map(str, args))} failed: {done.stderr.strip()}")


def scaled(source: Path, path: Path, width: int, height: int, start_s: float = 1.0, seconds: float = 3.0) -> Path:
    """``seconds`` of ``source`` from ``start_s``, scaled to exactly ``width`` x ``height`` square pixels (H.264)."""
    ffmpeg("-ss", start_s, "-i", source, "-t", seconds, "-vf", f"scale={width}:{height},setsar=1",
           "-c:v", "libx264", "-an", path)
    return path


def remuxed_ts(source: Path, path: Path) -> Path:
    """An H.264 MP4 remuxed to MPEG-TS without re-encoding."""
    ffmpeg("-i", source, "-c", "copy", "-bsf:v", "h264_mp4toannexb", "-an", path)
    return path


def encoded_ts(source: Path, path: Path, seconds: float | None = None) -> Path:
    """``source`` re-encoded to H.264 in MPEG-TS (its own size and frame rate)."""
    ffmpeg("-i", source, *(("-t", seconds) if seconds else ()), "-c:v", "libx264", "-an", path)
    return path


def joined(parts: list[Path], path: Path) -> Path:
    """Files joined byte after byte, as ``cat a.ts b.ts > path``."""
    path.write_bytes(b"".join(p.read_bytes() for p in parts))
    return path


def ts_from_packet(source: Path, path: Path, fraction: float) -> Path:
    """The MPEG-TS ``source`` without its first ``fraction`` of bytes, cut at a 188-byte packet boundary: a
    recording that starts in the middle of a group of pictures."""
    data = source.read_bytes()
    start = int(len(data) // TS_PACKET_BYTES * fraction) * TS_PACKET_BYTES
    path.write_bytes(data[start:])
    return path
