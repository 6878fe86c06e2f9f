"""Motion score: ordering on real footage, independence of frame size, known synthetic shifts."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import cv2
import numpy as np
import pytest

from curate.video.frames import Frame
from tests.conftest import PROJECT_ROOT
from curate.scores.motion import METHODS, flow_magnitudes, motion_score, motion_scores

LOW_MOTION = [  # static camera, or still photographs (no cut inside: psd_testvideo cuts at 1.0, 6.0, 13.1 s)
    ("opencv_vtest.avi", 10.0, 14.0),
    ("opencv_vtest.avi", 40.0, 44.0),
    ("psd_testvideo.mp4", 2.0, 5.9),
    ("psd_testvideo.mp4", 14.0, 18.0),
]
HIGH_MOTION = [  # handheld, close-ups, fast pans
    ("imageio_cockatoo.mp4", 2.0, 6.0),
    ("moviepy_fire2.mp4", 0.0, 2.3),
    ("mmaction2_test2.mp4", 2.0, 6.0),
    ("mmaction2_test2.mp4", 6.0, 10.0),
]


def _texture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A random grey texture with detail at several scales, like natural images (blurred noise), as uint8."""
    rng = np.random.default_rng(seed)
    layers = [cv2.GaussianBlur(rng.normal(size=(height, width)).astype(np.float32), (0, 0), s) for s in (2, 8, 24)]
    layers = [layer / layer.std() for layer in layers]
    return cv2.normalize(sum(layers), None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)


def _shifted_pair(dx: int, width: int = 256, height: int = 144, dt: float = 0.5) -> list[Frame]:
    """Two frames ``dt`` s apart whose content moves ``dx`` pixels left."""
    base = _texture(height, width + dx)
    first, second = base[:, :width], base[:, dx : dx + width]
    return [Frame(0.0, np.dstack([first] * 3)), Frame(dt, np.dstack([second] * 3))]


# --- real footage -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_static_clips_score_clearly_below_high_motion_clips(video, method):
    low = [motion_score(video(name), start, end, method=method).score for name, start, end in LOW_MOTION]
    high = [motion_score(video(name), start, end, method=method).score for name, start, end in HIGH_MOTION]
    assert max(low) * 2 < min(high), f"low {low} high {high}"


@pytest.mark.parametrize(
    "method, name, start, end",
    [
        ("dis", "imageio_cockatoo.mp4", 2.0, 6.0),  # high motion
        ("dis", "mmaction2_test2.mp4", 2.0, 6.0),
        ("farneback", "moviepy_chaplin.mp4", 2.0, 6.0),  # Farnebäck: only where motion is small (module docs)
    ],
)
def test_score_does_not_depend_on_frame_width(video, method, name, start, end):
    small = motion_score(video(name), start, end, width=160, method=method).score
    large = motion_score(video(name), start, end, width=320, method=method).score
    assert small == pytest.approx(large, rel=0.25)


def test_result_counts_pairs_and_p90(video):
    result = motion_score(video("mmaction2_test2.mp4"), 2.0, 6.0)
    assert result.pairs == 7  # 8 samples at 2 fps
    assert result.p90 >= result.score > 0


def test_motion_scores_of_many_clips_equal_motion_score_of_each(video):
    path = video("opencv_vtest.avi")
    spans = [(20.0, 24.0), (24.0, 28.0), (28.0, 30.0)]
    assert motion_scores(path, spans) == [motion_score(path, start, end) for start, end in spans]


def test_clip_with_one_sample_scores_nan(video):
    result = motion_score(video("mmaction2_test2.mp4"), 2.0, 2.4)  # one sample at 2 fps
    assert result.pairs == 0 and math.isnan(result.score) and math.isnan(result.p90)


# --- synthetic shifts ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_known_shift_gives_documented_unit(method):
    """Content moving 5 px in 0.5 s on a 256x144 frame: 5 / hypot(256, 144) / 0.5 frame diagonals per second."""
    magnitudes = flow_magnitudes(_shifted_pair(dx=5), method=method)
    expected = 5 / math.hypot(256, 144) / 0.5
    assert magnitudes.shape == (1,)
    assert magnitudes[0] == pytest.approx(expected, rel=0.10)


def test_same_shift_at_two_frame_sizes_gives_same_score():
    small = flow_magnitudes(_shifted_pair(dx=4, width=128, height=72))[0]
    large = flow_magnitudes(_shifted_pair(dx=8, width=256, height=144))[0]
    assert small == pytest.approx(large, rel=0.10)


def test_large_shift_dis_recovers_farneback_underestimates():
    """Why DIS is the default: a shift of 10 % of the width per pair is beyond Farnebäck's reach."""
    frames = _shifted_pair(dx=26)
    expected = 26 / math.hypot(256, 144) / 0.5
    assert flow_magnitudes(frames, method="dis")[0] == pytest.approx(expected, rel=0.15)
    assert flow_magnitudes(frames, method="farneback")[0] < 0.7 * expected


THIN_SIZES = [(160, 8), (160, 13), (160, 16), (640, 13), (8, 160), (40, 40), (160, 1), (2, 2)]  # (width, height)


def test_frames_of_any_size_give_a_score_in_their_own_diagonals():
    """A 640x52 video scored at 160 px wide gives 160x13 frames, where OpenCV's DIS segfaults: frames under
    MIN_FLOW_SIDE are padded. Run in a child process, so a crash fails this test rather than the test run."""
    code = f"""if True:
        import json
        from curate.scores.motion import flow_magnitudes
        from tests.scores.test_motion import _shifted_pair
        print(json.dumps({{method: [float(flow_magnitudes(_shifted_pair(dx=2, width=w, height=h), method=method)[0])
                                   for w, h in {THIN_SIZES}] for method in ("dis", "farneback")}}))
        """
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=120)
    assert done.returncode == 0, f"child ended with {done.returncode}: {done.stderr[-2000:]}"
    got = json.loads(done.stdout)
    for method, magnitudes in got.items():
        for (width, height), magnitude in zip(THIN_SIZES[:-2], magnitudes):
            expected = 2 / math.hypot(width, height) / 0.5  # content 2 px to the left in 0.5 s
            assert magnitude == pytest.approx(expected, rel=0.1), (method, width, height)
        assert all(math.isfinite(m) for m in magnitudes[-2:])  # one row, or 2x2: too little to measure, no crash


def test_repeated_frame_pair_is_skipped():
    a, b = _shifted_pair(dx=5)
    assert len(flow_magnitudes([a, Frame(a.time_s, a.image), b])) == 1


# --- bad arguments ------------------------------------------------------------------------------------------


def test_unknown_method_says_what_is_allowed():
    with pytest.raises(ValueError, match=r"method must be one of \('dis', 'farneback'\)"):
        flow_magnitudes(_shifted_pair(dx=1), method="raft")


def test_frames_of_different_sizes_are_rejected():
    a, _ = _shifted_pair(dx=1)
    b = Frame(0.5, np.zeros((72, 128, 3), np.uint8))
    with pytest.raises(ValueError, match="one size"):
        flow_magnitudes([a, b])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(width=8), "width must be an integer"),
        (dict(sample_fps=0.0), "fps must be a positive number"),
        (dict(method="lk"), "method must be one of"),
    ],
)
def test_motion_score_rejects_bad_arguments(video, kwargs, message):
    with pytest.raises(ValueError, match=message):
        motion_score(video("mmaction2_test2.mp4"), 0.0, 2.0, **kwargs)
