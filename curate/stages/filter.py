"""Filter: keep or reject rows by rules on stored columns. Cheap: no video is decoded, no model is loaded.

    from curate.stages.filter import Filter
    stage = Filter(rules=["motion_score >= p25", "ocr_area <= 0.07", "clip_score >= 20"])
    stage.fit("RUN/04_ocr/data")        # resolves p25 over the whole dataset (with Dask)
    out = stage.process(table)

Rules are read and judged by ``curate.rules`` (shared with the dataset card and ``curate inspect``). A rule is
``COLUMN OP VALUE`` with OP one of ``>= > <= < == !=`` and VALUE a number, ``true``/``false``, a
quoted string, or ``pNN``: the NN-th percentile of the column over all input rows (``motion_score >= p25`` drops
the 25% most static clips, as SVD did). Rules apply in order; a row is rejected by the first rule it fails, with
the reason ``filter_<column>_min`` (``>=``, ``>``), ``filter_<column>_max`` (``<=``, ``<``), ``filter_<column>_eq``
(``==``) or ``filter_<column>_ne`` (``!=``); a missing value (null or NaN: the score could not be computed) is
rejected as ``filter_<column>_missing``, never kept or dropped silently. ``reject_detail`` shows the value and
the threshold. Re-filtering with new rules is ``curate run --only filter --set 'filter.rules=[...]'``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pyarrow as pa

from curate.rules import is_missing, parse_rule, passes
from curate.sharding import ShardPolicy
from curate.stage import Stage, StageOutput


class Filter(Stage):
    name = "filter"
    adds = {}

    def __init__(self, rules: list[str] | None = None):
        """rules: e.g. ["motion_score >= p25", "ocr_area <= 0.07"]; applied in order (see the module docstring)."""
        self.rules = list(rules or [])
        self._parsed = [parse_rule(r) for r in self.rules]
        self._thresholds: list[Any] = [r.value for r in self._parsed]

    @property
    def reads(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(dict.fromkeys(r.column for r in self._parsed))

    @property
    def reject_reasons(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(dict.fromkeys(x for r in self._parsed for x in (r.reason, r.missing_reason)))

    def shard_policy(self) -> ShardPolicy:
        """Only percentile rules need the whole input (a barrier of a streaming run); fixed thresholds do not."""
        policy = ShardPolicy()
        policy.needs_all_input = any(r.percentile is not None for r in self._parsed)
        return policy

    def fit(self, input_dir: str) -> dict:
        """Resolve percentile rules over every input row (NaN and nulls excluded).

        The column is read from the shards with Dask and the percentile is exact (linear interpolation, as
        numpy's default); that needs 8 bytes per row on the client (100 million clips: 800 MB).
        """
        resolved = {}
        columns = sorted({r.column for r in self._parsed if r.percentile is not None})
        if columns and any(Path(input_dir).glob("*.parquet")):
            import dask.dataframe as dd
            import numpy as np

            frame = dd.read_parquet(input_dir, columns=columns)
            values = {c: frame[c].dropna().astype("float64").compute().to_numpy() for c in columns}
            for i, rule in enumerate(self._parsed):
                if rule.percentile is not None:
                    column = values[rule.column]
                    value = float(np.percentile(column, rule.percentile)) if column.size else math.nan
                    self._thresholds[i] = value
                    resolved[rule.percentile_key] = value
        return {"resolved_percentiles": resolved}

    def process(self, table: pa.Table) -> StageOutput:
        n = table.num_rows
        reasons: list[str | None] = [None] * n
        details: list[str | None] = [None] * n
        for rule, threshold in zip(self._parsed, self._thresholds):
            if rule.percentile is not None and threshold is None:
                raise RuntimeError("Filter.fit() must run before process() for percentile rules")
            for i, value in enumerate(table[rule.column].to_pylist()):
                if reasons[i] is not None or passes(rule.op, value, threshold):
                    continue
                if is_missing(value):
                    reasons[i], details[i] = rule.missing_reason, f"{rule.column} is missing (null or NaN)"
                else:
                    shown = f"p{rule.percentile:g}={threshold:.4g}" if rule.percentile is not None else repr(threshold)
                    reasons[i] = rule.reason
                    details[i] = f"{rule.column}={_fmt(value)} fails {rule.column} {rule.op} {shown}"
        keep = pa.array([r is None for r in reasons], pa.bool_())
        rejected_index = [i for i, r in enumerate(reasons) if r is not None]
        rejected = table.take(pa.array(rejected_index, pa.int64()))
        rejected = self.reject(rejected, [reasons[i] for i in rejected_index], [details[i] for i in rejected_index])
        return StageOutput(kept=table.filter(keep), rejected=rejected)


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else repr(value)
