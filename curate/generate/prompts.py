"""Prompts for generation: curated captions read from Parquet shards or a run folder, selected and seeded.

    from curate.generate.prompts import read_prompts
    prompts = read_prompts("runs/full", column=None, first=None, sample=8, sample_seed=0, base_seed=0)
    prompts.column_names  # prompt_index, prompt, seed, prompt_column, clip_id, video_path, video_stream, start_s, end_s

``source`` is a run folder (its last complete step's kept rows: ``RUN/NN_step/data``), a folder of Parquet
shards (``RUN/NN_filter/data``), or one Parquet file. The prompt column is ``column`` if given, else the first
of ``CAPTION_COLUMNS`` the shards have. Rows with an empty caption are skipped. Selection: every row (in
shard order), the first ``first`` rows, or ``sample`` rows drawn without replacement with ``sample_seed``
(kept in shard order). Prompt ``i`` of the selection gets seed ``base_seed + i``. The source clip's
``clip_id``, ``video_path``, ``video_stream``, ``start_s``, ``end_s`` stay with the prompt (evaluate scores
the real clip as a reference), null when the shards lack them.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from curate.errors import CurateError
from curate.rundir import CAPTION_COLUMNS

#: Columns of the source clip carried with every prompt.
SOURCE_COLUMNS = {"clip_id": pa.string(), "video_path": pa.string(), "video_stream": pa.int64(),
                  "start_s": pa.float64(), "end_s": pa.float64()}  # fmt: skip


class PromptError(CurateError):
    """The prompts cannot be read or selected as asked."""


def shard_files(source: str | Path) -> list[Path]:
    """The Parquet files of ``source`` (``curate.rundir.curated_shards``); PromptError when there are none."""
    from curate.rundir import curated_shards

    try:
        return curated_shards(source)
    except FileNotFoundError as e:
        raise PromptError(str(e)) from e


def read_prompts(
    source: str | Path,
    *,
    column: str | None = None,
    first: int | None = None,
    sample: int | None = None,
    sample_seed: int = 0,
    base_seed: int = 0,
) -> pa.Table:
    """The selected prompts as a table, one row per video to generate (see the module docstring)."""
    import pyarrow.parquet as pq

    # 1. check inputs
    if first is not None and sample is not None:
        raise PromptError("choose first N or a sample of N prompts, not both (--first / --sample)")
    for name, value in (("first", first), ("sample", sample)):
        if value is not None and value < 1:
            raise PromptError(f"--{name} must be >= 1 prompts, got {value}")

    # 2. read the caption and source columns of every shard
    files = shard_files(source)
    names = pq.read_schema(files[0]).names
    column = column or next((c for c in CAPTION_COLUMNS if c in names), None)
    if column is None or column not in names:
        wanted = f"column {column!r}" if column else f"caption column ({', '.join(CAPTION_COLUMNS)})"
        raise PromptError(f"{files[0].parent}: the shards have no {wanted}; their columns: {', '.join(names)}. "
                          "Run the caption steps first, or pick the prompt column with --prompt-column")
    wanted = [column] + [c for c in SOURCE_COLUMNS if c in names and c != column]
    table = pa.concat_tables([pq.read_table(f, columns=wanted) for f in files], promote_options="permissive")
    texts = table[column].to_pylist()
    rows = [i for i, text in enumerate(texts) if isinstance(text, str) and text.strip()]
    if not rows:
        raise PromptError(f"{source}: column {column!r} has no non-empty text in {table.num_rows} rows")

    # 3. select
    if first is not None:
        rows = rows[:first]
    elif sample is not None:
        import numpy as np

        picked = np.random.default_rng(sample_seed).choice(len(rows), size=min(sample, len(rows)), replace=False)
        rows = [rows[i] for i in sorted(picked)]
    table = table.take(rows)

    # 4. one row per prompt, with its seed and its source clip
    n = table.num_rows
    columns = {
        "prompt_index": pa.array(range(n), pa.int64()),
        "prompt": pa.array([texts[i].strip() for i in rows], pa.string()),
        "seed": pa.array([base_seed + i for i in range(n)], pa.int64()),
        "prompt_column": pa.array([column] * n, pa.string()),
    }
    for name, dtype in SOURCE_COLUMNS.items():
        columns[name] = table[name].cast(dtype) if name in table.column_names else pa.nulls(n, dtype)
    return pa.table(columns)
