"""Frames decoded once per clip and kept as JPEG in a side table, so the per-clip steps after them decode no video.

    import pyarrow as pa
    from curate.video.stored_frames import frames_table, stored_frames
    side = frames_table(["a_0_75"], [[frame_a0, frame_a1]], positions=[0.0, 1.0], quality=90)   # Frame objects
    pa.parquet.write_table(side, "RUN/03_frames/frames/part-00000.parquet")
    clips = pa.table({"clip_id": ["a_0_75"], "frames_file": ["/abs/RUN/03_frames/frames/part-00000.parquet"]})
    frames = stored_frames(clips, positions=[1.0], width=320)   # [[Frame]]: no video decoded

The ``frames`` step (``curate.stages.frames``) writes one side table per shard (``FRAMES_COLUMNS``) and gives each
clip row ``frames_file``, the absolute path of the table that holds its frames. ``frame_needs.read_clip_frames``,
which the OCR, caption, CLIP and preview code read frames through, takes them from there when the row's table
holds every position asked for, shrunk to the width asked for, and decodes the video otherwise (positions that were
not stored, a moved run folder, a row without stored frames). Frames are stored at the largest width any consumer
asks for, as JPEG (quality 90 by default: the difference to the decoded frame is below what a resize to a model's
input size keeps; a stored frame of 448x252 is about 20-30 KB). A frame shrunk from the stored size can have one
row more or less than the same frame decoded at that width (the height is rounded from a different size).

Lossless frames (split's, and grey frames) are stored raw (``encode_raw``: a 9-byte header, then the uint8 pixels)
in a zstd-compressed table: a tenth of PNG's encoding cost and a quarter of its decoding, for about 1.5x its size.
Tables written with PNG frames (earlier runs) are read as before: the bytes say which format they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curate.video.needs import FrameNeed
from curate.video.frames import Frame

FRAMES_FILE = "frames_file"
#: the side table: one row per clip and frame need (``curate.video.frame_needs.FrameNeed``)
FRAMES_SCHEMA = pa.schema([
    ("clip_id", pa.string()),
    ("frame_positions", pa.list_(pa.float64())),  # relative positions in the clip (0 = first frame, 1 = last)
    ("frame_times_s", pa.list_(pa.float64())),  # presentation time of each stored frame
    ("frames_jpeg", pa.list_(pa.binary())),  # RGB frames as JPEG, or raw (lossless: split's, grey frames; was PNG)
    ("sample_fps", pa.float64()),  # a rate need: frames every 1 / sample_fps s from the clip's start (no positions)
    ("frame_width", pa.int32()),  # the width asked for when stored (null: the display width)
    ("grey", pa.bool_()),  # one grey channel
])
_MATCH = 1e-9  # positions closer than this are the same position
#: how side tables are compressed (raw frames: zstd at its default level compresses faster than snappy, and more)
COMPRESSION = "zstd"
RAW_MAGIC = b"CRAW"  # never the first bytes of a JPEG (FF D8) or a PNG (89 50 4E 47)


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    """An RGB HxWx3 uint8 image as JPEG bytes."""
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"cannot encode a {image.shape} image as JPEG")
    return data.tobytes()


def encode_raw(image: np.ndarray) -> bytes:
    """A grey HxW or RGB HxWx3 uint8 image as raw bytes: ``RAW_MAGIC``, height and width (uint16), channels (uint8),
    then the pixels (lossless, and no encoding work: the side table's compression shrinks them)."""
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or max(image.shape[:2]) > 65535:
        raise ValueError(f"cannot store a {image.dtype} {image.shape} image raw: uint8 HxW or HxWxC, sides < 65536")
    channels = 1 if image.ndim == 2 else image.shape[2]
    header = RAW_MAGIC + np.array(image.shape[:2], "<u2").tobytes() + bytes([channels])
    return header + np.ascontiguousarray(image).tobytes()


def _decode_raw(data: bytes) -> np.ndarray:
    height, width = np.frombuffer(data, "<u2", 2, len(RAW_MAGIC))
    channels = data[len(RAW_MAGIC) + 4]
    pixels = np.frombuffer(data, np.uint8, offset=len(RAW_MAGIC) + 5)
    return pixels.reshape((height, width) if channels == 1 else (height, width, channels)).copy()  # writable


def decode_jpeg(data: bytes, width: int | None, grey: bool = False) -> np.ndarray:
    """The RGB (or ``grey``) image of JPEG, PNG or raw (``encode_raw``) bytes, shrunk (never enlarged) to at most
    ``width`` pixels wide, aspect kept."""
    if data[:len(RAW_MAGIC)] == RAW_MAGIC:
        image = _decode_raw(data)
        if grey and image.ndim == 3:
            image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    elif grey:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    else:
        image = cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    height, have = image.shape[:2]
    if width is not None and have > width:
        size = (width, max(1, round(height * width / have)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return image


def frames_table(clip_ids: Sequence[str], clips: Sequence[Sequence[Frame] | None], positions: Sequence[float],
                 quality: int = 90, width: int | None = None) -> pa.Table:
    """The side table of these clips' frames at ``positions``, read at most ``width`` wide (a clip whose frames are
    None gets no row)."""
    need = FrameNeed(positions=tuple(positions), width=width)
    rows = [need_row(clip_id, need, frames, quality)
            for clip_id, frames in zip(clip_ids, clips, strict=True) if frames is not None]
    return pa.Table.from_pylist(rows, schema=FRAMES_SCHEMA)


def need_row(clip_id: str, need: FrameNeed, frames: Sequence[Frame], quality: int | None = 90) -> dict:
    """One row of the side table: ``frames`` of clip ``clip_id``, read for ``need``, as JPEG of this ``quality``, or
    raw (lossless: the picture decoded) for grey frames and for ``quality`` None."""
    lossless = need.grey or quality is None
    images = [encode_raw(f.image) if lossless else encode_jpeg(f.image, quality) for f in frames]
    return {"clip_id": clip_id, "frame_positions": None if need.positions is None else list(need.positions),
            "frame_times_s": [f.time_s for f in frames], "frames_jpeg": images, "sample_fps": need.fps,
            "frame_width": need.width, "grey": need.grey}


def encode_png(image: np.ndarray) -> bytes:
    """A grey HxW or RGB HxWx3 uint8 image as PNG bytes (how side tables stored lossless frames before raw)."""
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise ValueError(f"cannot encode a {image.shape} image as PNG")
    return data.tobytes()


def stored_frames(table: pa.Table, positions: Sequence[float], width: int | None) -> list[list[Frame] | None]:
    """For each row, its frames at ``positions`` from its ``frames_file``, at most ``width`` wide; None where the
    row has no stored frames or they lack one of the positions (the caller decodes the video for those)."""
    return stored_need(table, FrameNeed(positions=tuple(positions), width=width))


def stored_need(table: pa.Table, need: FrameNeed) -> list[list[Frame] | None]:
    """For each row, the frames ``need`` asks for, from its ``frames_file``; None where the row has no stored frames
    that cover the need (``FrameNeed.covers``: the caller decodes the video for those)."""
    if FRAMES_FILE not in table.column_names:
        return [None] * table.num_rows
    files = table[FRAMES_FILE].to_pylist()
    ids = table["clip_id"].to_pylist()
    out: list[list[Frame] | None] = [None] * table.num_rows
    by_file: dict[str, list[int]] = {}
    for i, path in enumerate(files):
        if path:
            by_file.setdefault(path, []).append(i)
    for path, rows in by_file.items():
        if not Path(path).is_file():
            continue  # a moved or removed run folder: decode instead
        side = pq.read_table(path)
        stored = _stored_needs(side)
        index: dict[str, list[int]] = {}
        for k, clip_id in enumerate(side["clip_id"].to_pylist()):
            index.setdefault(clip_id, []).append(k)
        for i in rows:
            k = next((k for k in index.get(ids[i], ()) if stored[k].covers(need)), None)
            if k is not None:
                out[i] = _pick(side, k, stored[k], need)
    return out


def _stored_needs(side: pa.Table) -> list[FrameNeed]:
    """The need each row of a side table was stored for (tables of earlier versions: positions at any width)."""
    names = side.column_names
    positions = side["frame_positions"].to_pylist()
    fps = side["sample_fps"].to_pylist() if "sample_fps" in names else [None] * side.num_rows
    widths = side["frame_width"].to_pylist() if "frame_width" in names else [None] * side.num_rows
    greys = side["grey"].to_pylist() if "grey" in names else [False] * side.num_rows
    return [FrameNeed(positions=None if p is None else tuple(p), fps=f, width=w, grey=bool(g))
            for p, f, w, g in zip(positions, fps, widths, greys)]


def stored_positions(table: pa.Table) -> list[float] | None:
    """The positions stored for the first row of ``table`` that has stored frames (None if no row has)."""
    if FRAMES_FILE not in table.column_names:
        return None
    path = next((p for p in table[FRAMES_FILE].to_pylist() if p and Path(p).is_file()), None)
    if path is None:
        return None
    side = pq.read_table(path, columns=["frame_positions"])
    return next((p for p in side["frame_positions"].to_pylist() if p is not None), None)


def _pick(side: pa.Table, k: int, stored: FrameNeed, need: FrameNeed) -> list[Frame]:
    times = side["frame_times_s"][k].as_py()
    images = side["frames_jpeg"][k]
    if need.positions is None:
        picks = range(len(times))
    else:
        picks = [next(j for j, q in enumerate(stored.positions) if abs(q - p) < _MATCH) for p in need.positions]
    return [Frame(time_s=times[j], image=decode_jpeg(images[j].as_py(), need.width, stored.grey)) for j in picks]
