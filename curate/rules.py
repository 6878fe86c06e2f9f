"""Filter rules, in one place: how a rule is written, how its percentile is resolved, and how a value is judged.

    from curate.rules import parse_rule, passes
    rule = parse_rule("motion_score >= p25")     # Rule(column="motion_score", op=">=", value=None, percentile=25.0)
    rule = rule.resolved({"motion_score >= p25": 0.012})               # value 0.012, as the filter's fit found it
    passes(rule.op, 0.03, rule.value)                                  # True

A rule is ``COLUMN OP VALUE`` with OP one of ``>= > <= < == !=`` and VALUE a number, ``true``/``false``, a quoted
string, or ``pNN``: the NN-th percentile of the column over all input rows. A missing value (null or NaN: the score
could not be computed) fails every rule. The filter stage (``curate.stages.filter``), the dataset card
(``curate.stages.write``) and ``curate inspect`` use these functions; the report's JavaScript (its ``passes``) judges
values the same way, and ``tests/rule_cases.json`` is replayed through both.
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping, Sequence

import yaml

OPS: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt, "==": operator.eq, "!=": operator.ne,
}
_SUFFIX = {">=": "min", ">": "min", "<=": "max", "<": "max", "==": "eq", "!=": "ne"}
#: The stage whose steps are filter steps (``config.json``'s ``stage``): the card, inspect and status ask ``step_rules``.
FILTER_STAGE = "curate.stages.filter.Filter"
_RULE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(>=|<=|==|!=|>|<)\s*(.+?)\s*$")
_PERCENTILE = re.compile(r"^p(\d+(?:\.\d+)?)$")


class RuleError(ValueError):
    """A rule that cannot be read; the message shows how to write it."""


@dataclass(frozen=True)
class Rule:
    """One rule. ``value`` is its threshold: the written number, or for a percentile rule None until resolved."""

    column: str
    op: str
    value: Any
    percentile: float | None = None
    text: str = ""

    @property
    def reason(self) -> str:
        """The reject reason of a row that fails it: ``filter_<column>_min|max|eq|ne``."""
        return f"filter_{self.column}_{_SUFFIX[self.op]}"

    @property
    def missing_reason(self) -> str:
        """The reject reason of a row whose value is missing: ``filter_<column>_missing``."""
        return f"filter_{self.column}_missing"

    @property
    def percentile_key(self) -> str:
        """How a resolved percentile is recorded (the filter's ``stats.json`` fit: ``resolved_percentiles``)."""
        return f"{self.column} {self.op} p{self.percentile:g}"

    def resolved(self, percentiles: Mapping[str, float]) -> "Rule":
        """This rule with a percentile's threshold taken from ``percentiles`` (None when it was never resolved)."""
        if self.percentile is None:
            return self
        return replace(self, value=percentiles.get(self.percentile_key))


def parse_rule(text: str) -> Rule:
    """``"motion_score >= p25"`` -> Rule("motion_score", ">=", None, percentile=25.0)."""
    match = _RULE.match(text)
    if not match:
        raise RuleError(f"filter rule {text!r}: expected 'COLUMN OP VALUE' with OP one of >= > <= < == != "
                        f"and VALUE a number, true/false, 'text' or pNN (a percentile), e.g. 'motion_score >= p25'")
    column, op, raw = match.groups()
    percentile = _PERCENTILE.match(raw)
    if percentile:
        q = float(percentile.group(1))
        if not 0 <= q <= 100 or op in ("==", "!="):
            raise RuleError(f"filter rule {text!r}: a percentile is p0..p100 and compares with >= > <= <")
        return Rule(column, op, None, q, text)
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = None  # e.g. "motion_score >>= 3": VALUE ">= 3"
    if not isinstance(value, (int, float, bool, str)) or (isinstance(value, str) and op not in ("==", "!=")):
        raise RuleError(f"filter rule {text!r}: {raw!r} is not a number (text and true/false only with == and !=)")
    return Rule(column, op, value, None, text)


def is_missing(value: Any) -> bool:
    """Null or NaN: a score that could not be computed."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def passes(op: str, value: Any, threshold: Any) -> bool:
    """Whether ``value OP threshold`` holds; a missing value never passes."""
    return not is_missing(value) and bool(OPS[op](value, threshold))


def kept_count(values: Mapping[str, Sequence[Any]], rules: Sequence[tuple[str, str, Any]]) -> int:
    """Rows of ``values`` (row-aligned columns) that pass every rule of ``rules`` ((column, op, threshold))."""
    n = len(next(iter(values.values()))) if values else 0
    return sum(all(passes(op, values[column][i], threshold) for column, op, threshold in rules) for i in range(n))


def step_rules(config: Mapping[str, Any] | None, stats: Mapping[str, Any] | None) -> list[Rule] | None:
    """The rules of a filter step, from its ``config.json`` and ``stats.json`` (percentiles resolved as its fit
    found them; None where it has not run), or None when the step is not a filter step."""
    if not config or config.get("stage") != FILTER_STAGE:
        return None
    percentiles = ((stats or {}).get("fit") or {}).get("resolved_percentiles", {})
    return [parse_rule(text).resolved(percentiles) for text in (config.get("params") or {}).get("rules") or []]
