"""Write the report: ``DIR/index.html``, its script and style, its data files and the previews.

    from curate.inspect.report import build_report
    build_report("runs/demo", "runs/demo-report")       # then open runs/demo-report/index.html in a browser

The page works from ``file://`` with no network and no server: browsers refuse ``fetch()`` of local files, so
data travels in ``<script src="data/....js">`` files that register themselves (``curateData.register(key,
value)``), and the page adds such a script only when it needs the data: a gallery page in a sort order, a
filter step's what-if values. A large run is never loaded at once. Layout of ``DIR``::

    index.html, assets/report.js, assets/report.css     the page (no CDN, nothing fetched from the network)
    data/run.js                                          funnel, views, filter rules, the re-filter command's parts
    data/v3/d-00000.js                                   view v3, default order, page 0 (PAGE_SIZE rows)
    data/v3/s1-00002.js                                  view v3 sorted by its score column 1 (ascending), page 2
    data/whatif-0.js                                     filter step 0: every row's scores (row-aligned), histograms
    previews/<hash>.webp                                 cached previews (see curate.inspect.previews)

Everything from the run (paths, captions, reasons) is data inside JSON that the page inserts as text
(``textContent``); the JSON is escaped for a script context (``</`` and U+2028/U+2029).
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from curate.inspect.data import RunData, View, WhatIf, read_run
from curate.inspect.previews import FRAMES, WIDTH, make_previews, missing_count
from curate.rundir import atomic_write_bytes, stage_dirs

PAGE_SIZE = 48
HISTOGRAM_BINS = 40
ASSETS = Path(__file__).parent / "assets"


def js_literal(value: Any) -> str:
    """``value`` as a JavaScript literal that is safe inside a script: JSON (NaN and Infinity allowed, which
    JavaScript reads) with ``</`` written ``<\\/`` and every non-ASCII character, U+2028/U+2029 included, escaped."""
    text = json.dumps(value, ensure_ascii=True, allow_nan=True, default=str, separators=(",", ":"))
    return text.replace("</", "<\\/").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def data_script(key: str, value: Any) -> bytes:
    return f"curateData.register({js_literal(key)}, {js_literal(value)});\n".encode()


def build_report(
    run: str | Path,
    out: str | Path,
    client: Any = None,
    *,
    config: str | None = None,
    previews: bool = True,
    frames: int = FRAMES,
    width: int = WIDTH,
    page_size: int = PAGE_SIZE,
) -> Path:
    """Write the report of ``run`` into ``out``; return the path of ``index.html``.

    client: a Dask client for the previews (None: made in this process; no client is needed when all are cached).
    config: the config path the re-filter command names (default: a configs/*.yaml whose pipeline matches the run).
    page_size: rows per gallery page (per data file).
    """
    # 1. read the run
    out = Path(out)
    data = read_run(run)

    # 2. previews of every clip shown (cached under out/previews)
    preview_of: dict = {}
    if previews:
        clips = [v.table for v in data.views if v.table.num_rows]
        for table in clips:
            preview_of.update(make_previews(table, out / "previews", client, frames, width))

    # 3. data files, written into a new folder that then replaces the old one
    tmp = out / f".data-{uuid.uuid4().hex}"
    for view in data.views:
        _write_view(view, tmp, preview_of, previews, page_size)
    for i, w in enumerate(data.whatifs):
        atomic_write_bytes(tmp / f"whatif-{i}.js", data_script(f"whatif/{i}", _whatif_values(w)))
    summary = _summary(data, Path(run), config, previews, preview_of, frames, width, page_size)
    atomic_write_bytes(tmp / "run.js", data_script("run", summary))
    _replace_dir(tmp, out / "data")

    # 4. the page
    for name in ("report.js", "report.css"):
        atomic_write_bytes(out / "assets" / name, (ASSETS / name).read_bytes())
    atomic_write_bytes(out / "index.html", (ASSETS / "index.html").read_bytes())
    return out / "index.html"


def previews_needed(run: str | Path, out: str | Path, frames: int = FRAMES, width: int = WIDTH) -> int:
    """How many previews are not cached yet (the command starts a Dask cluster only if there are some)."""
    data = read_run(run)
    return sum(missing_count(v.table, Path(out) / "previews", frames, width) for v in data.views)


def find_config(run: str | Path) -> str | None:
    """A ``configs/*.yaml`` (of the current directory, else of the curate checkout) whose pipeline starts with the
    run's steps and stages (the fewest steps beyond them wins: a run may have stopped early), as a path relative
    to the current directory when it is below it; None if no config matches."""
    from curate.config import PROJECT_ROOT, build_steps

    wanted = [((d.config() or {}).get("step"), (d.config() or {}).get("stage")) for d in stage_dirs(Path(run))]
    matches = []
    for base in dict.fromkeys([Path.cwd(), PROJECT_ROOT]):
        for path in sorted((base / "configs").glob("*.yaml")):
            try:
                steps = build_steps(path)
            except Exception:  # a config that does not build here is not the run's config
                continue
            have = [(s.name, f"{type(s.stage).__module__}.{type(s.stage).__qualname__}") for s in steps]
            if have[: len(wanted)] == wanted:
                matches.append((len(have), path))
    if not matches:
        return None
    path = min(matches, key=lambda m: m[0])[1]
    return os.path.relpath(path) if path.resolve().is_relative_to(Path.cwd().resolve()) else str(path)


# ------------------------------------------------------------------------------------------------ views
def _write_view(view: View, folder: Path, preview_of: dict, previews: bool, page_size: int) -> None:
    """The view's pages in stored order and in ascending order of each score (rows are converted page by page)."""
    table = view.table
    if previews and {"clip_id", "start_s", "end_s"} <= set(table.column_names):
        keys = zip(*(table[c].to_pylist() for c in ("clip_id", "start_s", "end_s")))
        # a row without a span (a whole video rejected) has no preview and no preview error: the page says why
        made = [(None, None) if None in key else preview_of.get(key, (None, "no preview")) for key in keys]
        table = table.append_column("preview", pa.array([name for name, _ in made], pa.string()))
        table = table.append_column("preview_error", pa.array([error for _, error in made], pa.string()))
    orders = {"d": np.arange(table.num_rows)}
    for i, column in enumerate(view.score_columns):
        orders[f"s{i}"] = ascending_order(table[column])
    for key, order in orders.items():
        for page, start in enumerate(range(0, max(table.num_rows, 1), page_size)):
            rows = table.take(pa.array(order[start:start + page_size], pa.int64())).to_pylist()
            atomic_write_bytes(folder / view.id / f"{key}-{page:05d}.js", data_script(f"{view.id}/{key}/{page}", rows))


def ascending_order(column: pa.ChunkedArray) -> np.ndarray:
    """Row indices sorted by value, ascending and stable, missing values (null, NaN) last."""
    values = column.cast(pa.float64()).to_numpy(zero_copy_only=False) if len(column) else np.zeros(0)
    missing = np.isnan(values)
    return np.lexsort((np.where(missing, 0.0, values), missing))


def _non_missing(column: pa.ChunkedArray) -> int:
    values = column.cast(pa.float64()).to_numpy(zero_copy_only=False) if len(column) else np.zeros(0)
    return int((~np.isnan(values)).sum())


# ---------------------------------------------------------------------------------------------- what-if
def _whatif_values(w: WhatIf) -> dict:
    histograms = {}
    for column in w.columns:
        numbers = [v for v in w.values[column] if isinstance(v, (int, float)) and not isinstance(v, bool)]
        finite = np.array([v for v in numbers if np.isfinite(v)], dtype=float)
        if finite.size:
            counts, edges = np.histogram(finite, bins=HISTOGRAM_BINS)  # (all equal: numpy pads the range by 0.5)
            histograms[column] = {"edges": edges.tolist(), "counts": counts.tolist(),
                                  "min": float(finite.min()), "max": float(finite.max())}
    return {"values": w.values, "histograms": histograms}


# ---------------------------------------------------------------------------------------------- summary
def _summary(data: RunData, run: Path, config: str | None, previews: bool, preview_of: dict, frames: int,
             width: int, page_size: int) -> dict:
    views = []
    for v in data.views:
        sort = [{"key": f"s{i}", "column": c, "non_missing": _non_missing(v.table[c])}
                for i, c in enumerate(v.score_columns)]
        views.append({"id": v.id, "kind": v.kind, "step": v.step, "folder": v.folder, "reason": v.reason,
                      "label": v.label, "rows": v.table.num_rows, "page_size": page_size, "sort": sort,
                      "scores": v.score_columns, "captions": v.caption_columns, "labels": v.label_columns})
    whatifs = [{"index": i, "step": w.step, "folder": w.folder, "columns": w.columns, "rows_in": w.rows_in,
                "rows_kept": w.rows_kept,
                "rules": [{"text": r.text, "column": r.column, "op": r.op, "value": r.value,
                           "percentile": r.percentile} for r in w.rules]}
               for i, w in enumerate(data.whatifs)]
    config = config or find_config(run)
    return {
        "run": str(run),
        "generated": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "funnel": data.funnel,
        "views": views,
        "whatifs": whatifs,
        # absolute paths: the printed command works from any directory
        "command": {"config": str(Path(config).resolve()) if config else None, "run": str(Path(run).resolve())},
        "previews": {"enabled": previews, "frames": frames, "width": width,
                     "made": sum(1 for name, _ in preview_of.values() if name),
                     "failed": sum(1 for _, error in preview_of.values() if error)},
    }


def _replace_dir(new: Path, target: Path) -> None:
    """Put folder ``new`` at ``target``: rename the old one aside, rename the new one in, remove the old one."""
    new.mkdir(parents=True, exist_ok=True)
    old = target.with_name(f".{target.name}-old-{uuid.uuid4().hex}")
    if target.exists():
        os.replace(target, old)
    os.replace(new, target)
    shutil.rmtree(old, ignore_errors=True)
