"""Frames decoded once per clip and kept as JPEG in a side table, so the per-clip steps after them decode no video.

    import pyarrow as pa
    from curate.video.stored_frames import frames_table, stored_frames
    side = frames_table(["a_0_75"], [[frame_a0, frame_a1]], positions=[0.0, 1.0], quality=90)   # Frame objects
    pa.parquet.write_table(side, "RUN/03_frames/frames/part-00000.parquet")
    clips = pa.table({"clip_id": ["a_0_75"], "frames_file": ["/abs/RUN/03_frames/frames/part-00000.parquet"]})
    frames = stored_frames(clips, positions=[1.0], width=320)   # [[Frame]]: no video decoded

The ``frames`` step (``curate.stages.frames``) writes one side table per shard (``FRAMES_COLUMNS``) and gives each
clip row ``frames_file``, the absolute path of the table that holds its frames. ``curate.stage.read_clip_frames``,
which the OCR, caption, CLIP and preview code read frames through, takes them from there when the row's table
holds every position asked for, shrunk to the width asked for, and decodes the video otherwise (positions that were
not stored, a moved run folder, a row without stored frames). Frames are stored at the largest width any consumer
asks for, as JPEG (quality 90 by default: the difference to the decoded frame is below what a resize to a model's
input size keeps; a stored frame of 448x252 is about 20-30 KB). A frame shrunk from the stored size can have one
row more or less than the same frame decoded at that width (the height is rounded from a different size).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curate.video.frames import Frame

FRAMES_FILE = "frames_file"
#: the side table: one row per clip
FRAMES_SCHEMA = pa.schema([
    ("clip_id", pa.string()),
    ("frame_positions", pa.list_(pa.float64())),  # relative positions in the clip (0 = first frame, 1 = last)
    ("frame_times_s", pa.list_(pa.float64())),  # presentation time of each stored frame
    ("frames_jpeg", pa.list_(pa.binary())),  # RGB frames as JPEG
])
_MATCH = 1e-9  # positions closer than this are the same position


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    """An RGB HxWx3 uint8 image as JPEG bytes."""
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"cannot encode a {image.shape} image as JPEG")
    return data.tobytes()


def decode_jpeg(data: bytes, width: int | None) -> np.ndarray:
    """The RGB image of JPEG bytes, shrunk (never enlarged) to at most ``width`` pixels wide, aspect kept."""
    image = cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    height, have = image.shape[:2]
    if width is not None and have > width:
        size = (width, max(1, round(height * width / have)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return image


def frames_table(clip_ids: Sequence[str], clips: Sequence[Sequence[Frame] | None], positions: Sequence[float],
                 quality: int = 90) -> pa.Table:
    """The side table of these clips (a clip whose frames are None gets no row)."""
    rows = [
        {"clip_id": clip_id, "frame_positions": list(positions), "frame_times_s": [f.time_s for f in frames],
         "frames_jpeg": [encode_jpeg(f.image, quality) for f in frames]}
        for clip_id, frames in zip(clip_ids, clips, strict=True) if frames is not None
    ]
    return pa.Table.from_pylist(rows, schema=FRAMES_SCHEMA)


def stored_frames(table: pa.Table, positions: Sequence[float], width: int | None) -> list[list[Frame] | None]:
    """For each row, its frames at ``positions`` from its ``frames_file``, at most ``width`` wide; None where the
    row has no stored frames or they lack one of the positions (the caller decodes the video for those)."""
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
        index = {clip_id: k for k, clip_id in enumerate(side["clip_id"].to_pylist())}
        for i in rows:
            k = index.get(ids[i])
            if k is not None:
                out[i] = _pick(side, k, positions, width)
    return out


def stored_positions(table: pa.Table) -> list[float] | None:
    """The positions stored for the first row of ``table`` that has stored frames (None if no row has)."""
    if FRAMES_FILE not in table.column_names:
        return None
    path = next((p for p in table[FRAMES_FILE].to_pylist() if p and Path(p).is_file()), None)
    if path is None:
        return None
    side = pq.read_table(path, columns=["frame_positions"])
    return side["frame_positions"][0].as_py() if side.num_rows else None


def _pick(side: pa.Table, k: int, positions: Sequence[float], width: int | None) -> list[Frame] | None:
    stored = side["frame_positions"][k].as_py()
    picks = []
    for p in positions:
        j = next((j for j, q in enumerate(stored) if abs(q - p) < _MATCH), None)
        if j is None:
            return None
        picks.append(j)
    times = side["frame_times_s"][k].as_py()
    jpegs = side["frames_jpeg"][k]
    return [Frame(time_s=times[j], image=decode_jpeg(jpegs[j].as_py(), width)) for j in picks]
