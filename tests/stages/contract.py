"""Checks every stage test makes: declared columns are the produced columns, reasons are declared ones, and a stage
that does not split rows accounts for every input row (kept + rejected = input)."""

from __future__ import annotations

import pyarrow as pa

from curate.stage import Stage, StageOutput


def check_output(stage: Stage, table: pa.Table, out: StageOutput, *, splits_rows: bool = False) -> None:
    """``splits_rows``: the stage makes several rows of one (split: clips of a video), so counts do not add up."""
    added = stage.columns_added(table.column_names)
    expected = list(table.column_names) + [c for c in added if c not in table.column_names]
    assert out.kept.column_names == expected, "kept rows must have the input columns plus the declared ones"
    for name, dtype in added.items():
        assert out.kept.schema.field(name).type == dtype, f"{name} should be {dtype}"
    rejected = out.rejected.num_rows if out.rejected is not None else 0
    if not splits_rows:
        assert out.kept.num_rows + rejected == table.num_rows, (
            f"{type(stage).__name__} kept {out.kept.num_rows} and rejected {rejected} of {table.num_rows} rows: "
            "kept + rejected must be the input")
    if out.rejected is not None and out.rejected.num_rows:
        assert set(out.rejected["reject_reason"].to_pylist()) <= set(stage.reject_reasons)
