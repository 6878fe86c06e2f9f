"""Checks every stage test makes: declared columns are the produced columns, reasons are declared ones."""

from __future__ import annotations

import pyarrow as pa

from curate.stage import Stage, StageOutput


def check_output(stage: Stage, table: pa.Table, out: StageOutput) -> None:
    added = stage.columns_added(table.column_names)
    expected = list(table.column_names) + [c for c in added if c not in table.column_names]
    assert out.kept.column_names == expected, "kept rows must have the input columns plus the declared ones"
    for name, dtype in added.items():
        assert out.kept.schema.field(name).type == dtype, f"{name} should be {dtype}"
    assert out.kept.num_rows + (out.rejected.num_rows if out.rejected is not None else 0) >= 0
    if out.rejected is not None and out.rejected.num_rows:
        assert set(out.rejected["reject_reason"].to_pylist()) <= set(stage.reject_reasons)
