"""Camera motion: synthetic pans, tilts and zooms of a real still (crop windows moving or scaling over a fixture's
frame), a static shot, a static shot with a moving subject; through the plain function and through the motion
stage on an encoded video."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pyarrow as pa
import pytest

from curate.scores.camera import camera_label, fit_camera
from curate.stages.motion import Motion
from curate.video.frames import Frame, read_frames
from curate.scores.motion import clip_motion, flow_magnitudes
from tests.media import write_video
from tests.stages.contract import check_output

OUT = (160, 90)  # the motion stage's default width: what its flow sees


@pytest.fixture(scope="module")
def still(video) -> np.ndarray:
    """A 1280x720 frame of a real fixture (a bird on a perch: texture everywhere)."""
    return read_frames(video("imageio_cockatoo.mp4"), [3.0])[0].image


def window(still: np.ndarray, cx: float, cy: float, scale: float, size=OUT) -> np.ndarray:
    """The crop of ``still`` centred at (cx, cy) (fractions of its size), ``scale`` of its size, resized to ``size``."""
    height, width = still.shape[:2]
    w, h = width * scale, height * scale
    x0, y0 = cx * width - w / 2, cy * height - h / 2
    # an affine warp, so that sub-pixel moves are exact (no rounding of the crop box)
    matrix = np.array([[w / size[0], 0, x0], [0, h / size[1], y0]], dtype=np.float64)
    return cv2.warpAffine(still, matrix, size, flags=cv2.INTER_AREA | cv2.WARP_INVERSE_MAP)


def move(still: np.ndarray, kind: str, pairs: int = 7, size=OUT) -> list[Frame]:
    """Frames 0.5 s apart (2 fps, the motion stage's default) of a camera doing ``kind``."""
    frames = []
    rng = np.random.default_rng(0)
    for i in range(pairs + 1):
        cx, cy, scale = 0.5, 0.5, 0.6
        if kind == "pan":
            cx = 0.35 + 0.03 * i  # 3 % of the still's width per 0.5 s
        elif kind == "tilt":
            cy = 0.4 + 0.025 * i
        elif kind == "zoom_in":
            scale = 0.7 * 0.96 ** i
        elif kind == "zoom_out":
            scale = 0.5 / 0.96 ** i
        image = window(still, cx, cy, scale, size)
        noise = rng.normal(0, 2.0, image.shape)  # sensor noise: a static shot still changes a little
        image = np.clip(image + noise, 0, 255).astype(np.uint8)
        if kind == "subject":  # a still camera; a patch of the picture walks across it
            patch = window(still, 0.2, 0.3, 0.15, (36, 36))
            x = 10 + 15 * i
            image[30:66, x:x + 36] = patch
        frames.append(Frame(i * 0.5, image))
    return frames


@pytest.mark.parametrize("kind", ["pan", "tilt", "zoom_in", "zoom_out", "static", "subject"])
def test_synthetic_camera_moves_get_their_label(still, kind):
    magnitudes, fits = clip_motion(move(still, kind))
    clip = camera_label(fits)
    expected = "static" if kind == "subject" else kind
    assert clip.label == expected, (kind, clip, [(f.pan, f.tilt, f.zoom, f.roll) for f in fits])
    # the motion score is the one flow_magnitudes gives, from the same flow
    assert np.array_equal(magnitudes, flow_magnitudes(move(still, kind)))
    if kind in ("pan", "tilt", "zoom_in", "zoom_out"):
        assert clip.explained > 0.8, clip  # a camera move over a still scene: the model is the flow
    if kind == "subject":
        assert clip.explained < 0.3 and magnitudes.mean() > 0.003, clip  # the flow is the subject's
    if kind == "pan":  # 3 % of the still = 5 % of the 0.6-wide window = 8 px of 160 per 0.5 s
        speed = 0.05 * OUT[0] / math.hypot(*OUT) / 0.5
        assert clip.speed == pytest.approx(speed, rel=0.15) and all(f.pan < 0 for f in fits)  # content moves left
    if kind == "zoom_in":
        assert all(f.zoom > 0 for f in fits)


def test_a_pan_then_back_and_a_pan_with_a_zoom_are_mixed(still):
    there = move(still, "pan", pairs=4)
    back = [Frame(2.5 + i * 0.5, f.image) for i, f in enumerate(reversed(there[:-1]))]
    assert camera_label(clip_motion(there + back)[1]).label == "mixed"
    both = [Frame(i * 0.5, window(still, 0.35 + 0.03 * i, 0.5, 0.7 * 0.92 ** i)) for i in range(8)]
    assert camera_label(clip_motion(both)[1]).label == "mixed"


def test_no_flow_is_static_and_fully_explained_and_no_pairs_is_unknown():
    fit = fit_camera(np.zeros((90, 160, 2), np.float32), 0.5)
    assert (fit.pan, fit.explained) == (0.0, 1.0)
    assert camera_label([fit]).label == "static"
    empty = camera_label([])
    assert empty.label is None and math.isnan(empty.explained)


def test_the_motion_stage_labels_an_encoded_pan_and_keeps_motion_score(still, tmp_path, video):
    """A pan encoded as H.264 (10 fps, 4 s, 320x180): the stage reads it back, labels it, and its motion_score is
    flow_magnitudes' mean over the same frames."""
    frames = [window(still, 0.3 + 0.006 * i, 0.5, 0.6, (320, 180)) for i in range(40)]
    pan = write_video(tmp_path / "pan.mp4", frames, fps=10)
    static = write_video(tmp_path / "static.mp4", [frames[0]] * 40, fps=10)
    table = pa.Table.from_pylist(
        [dict(clip_id=f"c{i}", video_stream=None, video_path=str(p), start_s=0.0, end_s=3.9)
         for i, p in enumerate([pan, static, video("opencv_vtest.avi")])],
        schema=pa.schema([("clip_id", pa.string()), ("video_stream", pa.int32()), ("video_path", pa.string()),
                          ("start_s", pa.float64()), ("end_s", pa.float64())]))
    stage = Motion()
    stage.setup()
    out = stage.process(table)
    check_output(stage, table, out)
    rows = out.kept.to_pylist()
    assert [r["camera_motion"] for r in rows] == ["pan", "static", "static"], rows
    assert rows[0]["camera_motion_explained"] > 0.8 and rows[0]["camera_speed"] > 0.02
    assert rows[2]["motion_score"] > 0.001  # pedestrians walk, the camera does not
    sampled = read_frames(pan, [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5], width=160)
    assert rows[0]["motion_score"] == float(flow_magnitudes(sampled).mean())
