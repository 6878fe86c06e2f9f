"""Purity of the clips split plans: transitions the detectors miss (wipes, slow dissolves, fast montages) and the
purity check after split, on real shots of the shared fixtures joined by ffmpeg with exact truth."""

from __future__ import annotations

import json

import numpy as np
import pytest

from curate.shots.cascade import DEFAULT_CASCADE, DetectorSpec
from curate.shots.clips import plan_clips
from curate.shots.purity import ChangeSignal, PurityCheck
from curate.shots.scan import scan_scenes
from tests.shots.edits import SHORT_SHOTS, SHOTS, write_edit
from tests.stages.test_split import ingested, run_split

OFFLINE = (*DEFAULT_CASCADE, DetectorSpec("flash"))
LENGTHS = {"min_clip_s": 1.0, "max_clip_s": 30.0, "trim_frames": 2}


def holds(clip, truth: dict, slack: int = 1) -> bool:
    """Whether a clip holds a true cut or part of a true gradual transition (``benchmarks/purity.py``'s rule)."""
    start, end = clip.start_frame, clip.end_frame
    if any(start <= c - 1 - slack and end >= c + 1 + slack for c in truth["cuts"]):
        return True
    return any(start <= b - slack and end > a + slack for a, b in truth["gradual"])


@pytest.fixture(scope="module")
def wipe(video, tmp_path_factory):
    """A 20-frame wipe from a still street scene to a cockatoo flapping its wings: no detector finds it."""
    return write_edit(tmp_path_factory.mktemp("wipe") / "wipe.mp4", video, [(*SHOTS[0], 80), (*SHOTS[1], 80)],
                      [("wipeleft", 20)])  # fmt: skip


def kept(spans):
    return [s for s in spans if s.reject_reason is None]


def test_change_signal_compares_frames_w_before_and_after():
    signal = ChangeSignal(half_window=2)
    for index in range(10):
        signal.push(index, np.full((27, 48), 0 if index < 5 else 100, np.uint8))
    scores = signal.scores
    assert np.isnan(scores[:2]).all() and np.isnan(scores[-2:]).all()
    assert scores[2:8].tolist() == [0.0, 100.0, 100.0, 100.0, 100.0, 0.0]  # centres 3..6 compare across the cut


def test_a_missed_wipe_becomes_a_span_no_clip_holds(wipe):
    path, truth = wipe
    scan = scan_scenes(path, OFFLINE, change_signal=True)
    plain = kept(plan_clips(scan.cut_frames, scan.frame_times, scan.end_time_s, transitions=scan.transitions,
                            **LENGTHS))  # fmt: skip
    assert any(holds(c, truth) for c in plain), "the detectors should miss this wipe (else the test proves nothing)"

    clips = kept(PurityCheck("cut").plan(scan, **LENGTHS))

    assert clips and not any(holds(c, truth) for c in clips), [(c.start_frame, c.end_frame) for c in clips]
    assert clips[0].start_frame == 0 and clips[0].end_frame >= 30  # the shot before the wipe keeps a clip


def test_the_purity_check_rejects_a_clip_holding_a_missed_transition(wipe):
    path, truth = wipe
    scan = scan_scenes(path, OFFLINE, change_signal=True)

    spans = PurityCheck("reject").plan(scan, **LENGTHS)

    impure = [s for s in spans if s.reject_reason == "split_impure"]
    assert impure and all(holds(s, truth) for s in impure) and not any(holds(c, truth) for c in kept(spans))
    assert "frames" in impure[0].detail and "change" in impure[0].detail


def test_split_rejects_impure_clips_with_where_and_why(wipe, tmp_path):
    path, truth = wipe
    out = run_split(ingested([path]), tmp_path, purity_check="reject")
    rejected = out.rejected.to_pylist()
    assert [r["reject_reason"] for r in rejected if r["start_frame"] == 0] == ["split_impure"]
    assert "frames" in next(r["reject_detail"] for r in rejected if r["reject_reason"] == "split_impure")
    assert json.loads(out.extras["videos"].to_pylist()[0]["detector_cuts"])  # the scan itself is unchanged


def test_a_120_frame_dissolve_becomes_a_span_no_clip_holds(video, tmp_path):
    path, truth = write_edit(tmp_path / "slow.mp4", video, [(*SHOTS[2], 170), (*SHOTS[0], 170)], [("fade", 120)])
    assert truth["gradual"] == [[51, 169]]
    short = scan_scenes(path, OFFLINE)
    assert any(holds(c, truth) for c in kept(plan_clips(short.cut_frames, short.frame_times, short.end_time_s,
                                                         transitions=short.transitions, **LENGTHS)))  # fmt: skip

    scan = scan_scenes(path, [DetectorSpec("adaptive"), DetectorSpec("dissolve", 2, {"max_scale": 64})])

    (span,) = scan.transitions
    assert span[0] <= 52 and span[1] >= 168, span
    clips = kept(plan_clips(scan.cut_frames, scan.frame_times, scan.end_time_s, transitions=scan.transitions,
                            **LENGTHS))  # fmt: skip
    assert len(clips) == 2 and not any(holds(c, truth) for c in clips)


def test_a_fast_montage_yields_no_clip_that_spans_a_cut(video, tmp_path):
    lengths = [6, 12, 9, 15, 4, 11, 8, 14]  # frames of each short shot
    pieces = [(*SHOTS[0], 40)] + [(*SHORT_SHOTS[i], n) for i, n in enumerate(lengths)] + [(*SHOTS[1], 40)]
    path, truth = write_edit(tmp_path / "montage.mp4", video, pieces, [("cut", 0)] * (len(pieces) - 1))
    scan = scan_scenes(path, OFFLINE, change_signal=True)

    clips = kept(PurityCheck("cut").plan(scan, **LENGTHS))

    assert clips and not any(holds(c, truth) for c in clips), [(c.start_frame, c.end_frame) for c in clips]
