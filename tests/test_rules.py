"""Filter rules in one place (curate.rules): parsing, resolving percentiles, judging values; the same case table
is replayed through the report's JavaScript in tests/inspect/test_browser.py."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from curate.rules import FILTER_STAGE, Rule, RuleError, kept_count, parse_rule, passes, step_rules

CASES = json.loads((Path(__file__).parent / "rule_cases.json").read_text())["cases"]


def value_of(raw):
    return math.nan if raw == "NaN" else raw


@pytest.mark.parametrize("case", CASES, ids=[f"{c['value']!r} {c['op']} {c['threshold']!r}" for c in CASES])
def test_each_case_of_the_shared_table(case):
    assert passes(case["op"], value_of(case["value"]), case["threshold"]) is case["passes"], case["why"]


def test_a_percentile_rule_resolves_from_the_recorded_key():
    rule = parse_rule("motion_score >= p25")
    assert rule == Rule("motion_score", ">=", None, 25.0, "motion_score >= p25")
    assert rule.percentile_key == "motion_score >= p25"
    assert rule.resolved({"motion_score >= p25": 0.012}).value == 0.012
    assert rule.resolved({}).value is None  # never resolved: no threshold, never a guessed one
    fixed = parse_rule("ocr_area <= 0.07")
    assert fixed.resolved({"ocr_area <= p7": 1.0}) is fixed
    assert (fixed.reason, fixed.missing_reason) == ("filter_ocr_area_max", "filter_ocr_area_missing")


def test_step_rules_only_for_filter_steps():
    config = {"stage": FILTER_STAGE, "params": {"rules": ["a >= p50", "b == 'x'"]}}
    stats = {"fit": {"resolved_percentiles": {"a >= p50": 3.5}}}
    assert [(r.column, r.op, r.value) for r in step_rules(config, stats)] == [("a", ">=", 3.5), ("b", "==", "x")]
    assert [r.value for r in step_rules(config, None)] == [None, "x"]  # not run yet
    assert step_rules({"stage": "curate.stages.write.Write", "params": {"rules": ["a >= 1"]}}, stats) is None
    assert step_rules(None, None) is None


def test_kept_count_counts_rows_passing_every_rule():
    values = {"a": [1.0, math.nan, 3.0, None], "b": ["x", "x", "y", "x"]}
    assert kept_count(values, [("a", ">=", 1.0)]) == 2
    assert kept_count(values, [("a", ">=", 1.0), ("b", "==", "x")]) == 1
    assert kept_count(values, []) == 4


@pytest.mark.parametrize("text", ["motion_score >>= 3", "motion_score", "x >= p101", "x == p5", "x >= 'a'"])
def test_bad_rules_say_how_to_write_them(text):
    with pytest.raises(RuleError, match="filter rule"):
        parse_rule(text)
