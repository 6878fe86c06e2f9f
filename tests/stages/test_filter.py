import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.rules import parse_rule
from curate.stages.filter import Filter
from tests.stages.contract import check_output


@pytest.fixture
def scores(tmp_path):
    table = pa.table({
        "clip_id": [f"c{i}" for i in range(8)],
        "motion_score": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, float("nan"), None],
        "ocr_area": [0.0, 0.5, 0.01, 0.02, 0.0, 0.3, 0.0, 0.0],
        "codec": ["h264"] * 7 + ["mpeg4"],
    })
    folder = tmp_path / "in"
    folder.mkdir()
    pq.write_table(table.slice(0, 4), folder / "part-00000.parquet")
    pq.write_table(table.slice(4), folder / "part-00001.parquet")
    return table, str(folder)


def test_rules_reject_in_order_with_stable_reasons(scores):
    table, folder = scores
    stage = Filter(rules=["motion_score >= 0.25", "ocr_area <= 0.07"])
    stage.fit(folder)
    out = stage.process(table)
    check_output(stage, table, out)
    assert out.kept["clip_id"].to_pylist() == ["c2", "c3", "c4"]
    got = dict(zip(out.rejected["clip_id"].to_pylist(), out.rejected["reject_reason"].to_pylist()))
    assert got == {"c0": "filter_motion_score_min", "c1": "filter_motion_score_min", "c5": "filter_ocr_area_max",
                   "c6": "filter_motion_score_missing", "c7": "filter_motion_score_missing"}
    assert out.kept.num_rows + out.rejected.num_rows == table.num_rows
    detail = out.rejected.to_pylist()[0]["reject_detail"]
    assert detail == "motion_score=0.1 fails motion_score >= 0.25"
    assert set(stage.reject_reasons) >= set(got.values()) and stage.reads == ("motion_score", "ocr_area")


def test_percentile_rule_is_resolved_over_the_whole_dataset_with_dask(scores):
    table, folder = scores
    stage = Filter(rules=["motion_score >= p50"])
    info = stage.fit(folder)
    median = info["resolved_percentiles"]["motion_score >= p50"]
    assert median == pytest.approx(0.35)  # exact, over the 6 real values of both shards, NaN/null excluded
    out = stage.process(table)
    assert out.kept["clip_id"].to_pylist() == ["c3", "c4", "c5"]
    assert "p50=" in out.rejected.to_pylist()[0]["reject_detail"]


def test_text_and_bool_rules():
    table = pa.table({"codec": ["h264", "mpeg4"], "has_audio": [True, False]})
    out = Filter(rules=["codec == 'h264'"]).process(table)
    assert out.rejected["reject_reason"].to_pylist() == ["filter_codec_eq"]
    out = Filter(rules=["has_audio != false"]).process(table)
    assert out.rejected["reject_reason"].to_pylist() == ["filter_has_audio_ne"]


@pytest.mark.parametrize("rule", ["motion_score", "motion_score => 1", "motion_score >= abc", "x == p10", "x >= p101"])
def test_bad_rules_say_what_is_allowed(rule):
    with pytest.raises(ValueError, match="filter rule"):
        parse_rule(rule)
