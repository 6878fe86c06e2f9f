"""The evaluation's formulas against hand computations on fixed embeddings and numbers."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from curate.generate import metrics
from curate.generate.evaluate import METRICS, format_summary, plot_summary, setting_columns, summarize
from curate.generate.metrics import Interval, mean_interval, temporal_consistency
from curate.generate.pipeline import GenerateError
from curate.generate.sweep import grid, parse_sweeps, point_name
from curate.models import clip


def test_clip_score_is_the_curation_stage_function():
    assert metrics.clip_score is clip.clip_score
    text = np.array([0.0, 1.0])
    frames = np.array([[0.0, 2.0], [3.0, 4.0], [1.0, 0.0]])  # cosines 1, 0.8, 0 -> mean 0.6
    assert metrics.clip_score(text, frames) == pytest.approx(60.0, abs=1e-4)


def test_temporal_consistency_by_hand():
    frames = np.array([[1.0, 0.0, 0.0], [0.6, 0.8, 0.0], [0.0, 1.0, 0.0], [0.0, -1.0, 0.0]])
    # consecutive cosines: 0.6, 0.8, -1.0 -> mean 0.4/3
    assert temporal_consistency(frames) == pytest.approx((0.6 + 0.8 - 1.0) / 3, abs=1e-12)
    assert temporal_consistency(5 * frames) == pytest.approx(temporal_consistency(frames), abs=1e-12)  # scale-free
    assert temporal_consistency(np.ones((4, 3))) == pytest.approx(1.0)  # a still image
    with pytest.raises(ValueError, match=">= 2 frames"):
        temporal_consistency(np.ones((1, 3)))


def test_t_interval_by_hand():
    # mean 2, sample sd 1, t(0.975, df=2) = 4.302653 -> half width 4.302653 / sqrt(3) = 2.484138
    got = mean_interval([1.0, 2.0, 3.0])
    assert got.mean == pytest.approx(2.0) and got.n == 3
    assert got.low == pytest.approx(2.0 - 2.484138, abs=1e-5) and got.high == pytest.approx(2.0 + 2.484138, abs=1e-5)
    # n = 4: values 10, 12, 14, 16: sd 2.581989, t(0.975, 3) = 3.182446 -> half 4.108520
    got = mean_interval([10.0, 12.0, 14.0, 16.0])
    assert (got.low, got.high) == pytest.approx((13 - 4.108520, 13 + 4.108520), abs=1e-5)
    # 90%: t(0.95, 2) = 2.919986 -> half 1.685855
    assert mean_interval([1.0, 2.0, 3.0], confidence=0.9).high == pytest.approx(2 + 1.685855, abs=1e-5)


def test_interval_edge_cases():
    assert mean_interval([5.0]) == Interval(mean=5.0, low=None, high=None, n=1)
    assert mean_interval([1.0, float("nan"), 3.0, None]).n == 2  # NaN and None are left out
    empty = mean_interval([float("nan")])
    assert math.isnan(empty.mean) and empty.n == 0 and empty.low is None
    same = mean_interval([2.0, 2.0, 2.0])
    assert same.low == same.high == 2.0


def _scores(rows):
    columns = {k: [r[k] for r in rows] for k in rows[0]}
    return pa.table(columns)


def test_summary_groups_by_the_parameters_that_differ(tmp_path):
    rows = []
    for g, values in ((1.0, [10.0, 20.0, 30.0]), (9.0, [30.0, 30.0, float("nan")])):
        for v in values:
            row = {m: v for m in METRICS}
            rows.append(dict(row, guidance_scale=g, scheduler="ddim", num_frames=4, model="m"))
    scores = _scores(rows)
    assert setting_columns(scores) == ["guidance_scale"]
    summary = summarize(scores)
    assert summary["setting"].to_pylist() == ["guidance_scale=1", "guidance_scale=9"]
    assert summary["guidance_scale"].to_pylist() == [1.0, 9.0]
    assert summary["videos"].to_pylist() == [3, 3]
    first, second = summary.to_pylist()
    expected = mean_interval([10.0, 20.0, 30.0])
    assert (first["clip_score_mean"], first["clip_score_low"], first["clip_score_high"], first["clip_score_n"]) == (
        pytest.approx(20.0), pytest.approx(expected.low), pytest.approx(expected.high), 3)
    assert second["clip_score_n"] == 2 and second["clip_score_low"] == second["clip_score_high"] == 30.0
    assert "guidance_scale=1" in format_summary(summary) and "20 [" in format_summary(summary)
    png = plot_summary(summary, tmp_path / "plot.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_summary_of_one_setting_has_one_row_and_null_bounds_for_one_video():
    scores = _scores([dict({m: 1.0 for m in METRICS}, guidance_scale=9.0)])
    summary = summarize(scores)
    assert summary.num_rows == 1 and summary["setting"].to_pylist() == ["all"]
    assert summary["clip_score_low"].to_pylist() == [None] and summary["clip_score_n"].to_pylist() == [1]


def test_sweep_grid_and_its_errors():
    axes = parse_sweeps(["guidance_scale=1,9", "scheduler=ddim,ddpm", "steps=2"])
    assert axes == {"guidance_scale": [1.0, 9.0], "scheduler": ["ddim", "ddpm"], "num_inference_steps": [2]}
    points = grid(axes)
    assert len(points) == 4 and points[1] == {"guidance_scale": 1.0, "scheduler": "ddpm", "num_inference_steps": 2}
    assert point_name(points[1]) == "guidance_scale=1+scheduler=ddpm+num_inference_steps=2"
    # any value names one folder level inside the sweep folder, and distinct values distinct folders
    odd = [point_name({"negative_prompt": v}) for v in ["../../x", "text/watermark", "a b", "a_b", "dpm++", "dpm__"]]
    assert all("/" not in name and "\\" not in name and name.startswith("negative_prompt=") for name in odd)
    assert len(set(odd)) == len(odd) and odd[3] == "negative_prompt=a_b"
    assert parse_sweeps(["negative_prompt=none,blurry", "vae_slicing=true,false"]) == {
        "negative_prompt": [None, "blurry"], "vae_slicing": [True, False]}
    with pytest.raises(GenerateError, match="not a generation parameter; sweepable: num_frames"):
        parse_sweeps(["guidance=1,2"])
    with pytest.raises(GenerateError, match="not a valid float"):
        parse_sweeps(["guidance_scale=1,high"])
    with pytest.raises(GenerateError, match="NAME=VALUE1,VALUE2"):
        parse_sweeps(["guidance_scale"])
    with pytest.raises(GenerateError, match="given twice"):
        parse_sweeps(["seed=1", "seed=2"])
