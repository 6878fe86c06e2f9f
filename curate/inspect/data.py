"""What the report shows, read from a run folder only: the funnel, the galleries' rows and the what-if data.

    from curate.inspect.data import read_run
    run = read_run("runs/demo")
    run.funnel["steps"][-1]["rows_kept"], [v.label for v in run.views], [w.step for w in run.whatifs]

Plain functions on ``curate.rundir``: no Dask, no browser. The numbers come from each step's ``stats.json``
(the funnel), its ``data/`` and ``rejected/`` Parquet (the rows), its ``config.json`` (a filter's rules) and the
fit facts in its ``stats.json`` (a percentile rule's resolved threshold). Steps are treated generically: any
step with rejects gets one gallery per reason, the last complete step's kept rows get the kept view, and every
filter step (``curate.rules.step_rules``) gets a what-if section.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate.errors import CurateError
from curate.rules import Rule, step_rules
from curate.rundir import StageDir, data_files, partition_values, read_json, read_shard, stage_dirs

#: Shown on every clip card when present (the span and where it comes from).
IDENTITY_COLUMNS = ("clip_id", "video_path", "video_stream", "start_s", "end_s", "duration_s")
REJECT_COLUMNS = ("reject_stage", "reject_reason", "reject_detail")
#: Facts of the source video worth a histogram and a what-if rule, although an earlier step than split adds them (the
#: other columns of ingest and split are identity, not scores).
FACT_COLUMNS = ("decode_errors", "bit_rate", "bit_depth", "display_aspect", "display_height", "fps", "audio_channels")
#: Labels (strings, booleans) shown on every clip card when present: what the clip is, in words.
LABEL_COLUMNS = ("camera_motion", "ocr_overlay_edge", "bucket", "hdr", "codec", "profile", "pix_fmt", "color_primaries",
                 "color_transfer")
#: Caption columns first in this order; any other string column with "caption" in its name follows.
CAPTION_ORDER = ("caption", "caption_image", "caption_video", "summary_caption", "caption_source")


@dataclass
class View:
    """One gallery: the kept rows of the last step, or one step's rejects for one reason."""

    id: str  # "v0", "v1"...: file names never contain a step name or reason
    kind: str  # "kept" | "rejected"
    step: str
    folder: str
    reason: str | None
    table: pa.Table
    score_columns: list[str]
    caption_columns: list[str]
    label_columns: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        if self.kind == "kept":
            return f"kept after {self.folder}"
        return f"{self.folder}: {self.reason}"


@dataclass
class WhatIf:
    """A filter step's rules and the values of every row it saw, to recount kept rows for other thresholds."""

    step: str
    folder: str
    rules: list[Rule]
    columns: list[str]  # score columns (histograms) + the columns rules read, row-aligned in ``values``
    values: dict[str, list[Any]]
    rows_in: int
    rows_kept: int


class InspectError(CurateError):
    """A folder that cannot be inspected (not a run, or no step finished yet); the message says what to pass."""


@dataclass
class RunData:
    run: Path
    funnel: dict
    views: list[View]
    whatifs: list[WhatIf] = field(default_factory=list)


def read_run(run: str | Path) -> RunData:
    """Everything the report shows, from the run folder ``run``."""
    run = Path(run)
    dirs = stage_dirs(run)
    if not dirs:
        raise InspectError(f"{run} has no step folders (NN_step/): pass a run folder made by `curate run --out RUN`")
    complete = [d for d in dirs if d.is_complete()]
    if not complete:
        raise InspectError(f"{run}: no step has finished yet (no stats.json); inspect it once a step is done")
    scores = score_columns(complete)
    views: list[View] = []
    for d in complete:
        reasons = d.stats()["rejected_by_reason"]
        rejected = read_rows(d.rejected, scores) if reasons else None
        for reason in reasons:
            table = rejected.filter(pc.equal(rejected["reject_reason"], reason))
            views.append(_view("rejected", d, reason, table, scores))
    last = complete[-1]
    views.insert(0, _view("kept", last, None, read_rows(last.data, scores), scores))
    for i, view in enumerate(views):
        view.id = f"v{i}"  # the kept view is v0
    whatifs = [whatif(d, rules, scores) for d in complete
               if (rules := step_rules(d.config(), d.stats())) is not None]
    return RunData(run=run, funnel=funnel(dirs), views=views, whatifs=whatifs)


def funnel(dirs: list[StageDir]) -> dict:
    """Videos -> clips -> kept after each step, from the steps' ``stats.json`` (an unfinished step says so)."""
    steps = []
    for d in dirs:
        stats = d.stats()
        entry = {"step": d.name, "folder": d.path.name, "complete": stats is not None}
        if stats is not None:
            entry.update({k: stats[k] for k in ("rows_in", "rows_kept", "rows_rejected", "rejected_by_reason")})
            entry["unit"] = "clips" if d.has_column("clip_id") else "videos"
        else:
            entry["shards_done"] = len(d.shard_stats())
        steps.append(entry)
    first = next((s for s in steps if s["complete"]), None)
    out = {"videos": first["rows_in"] if first else 0, "steps": steps}
    cards = [d.path / "dataset.json" for d in dirs if d.is_complete() and (d.path / "dataset.json").is_file()]
    if cards:  # a bucketed write: clips and hours per bucket (curate.stages.write)
        buckets = read_json(cards[-1]).get("buckets")
        if buckets:
            out["buckets"] = buckets
    return out


def score_columns(dirs: list[StageDir]) -> list[str]:
    """Numeric columns added by the steps after the one that made clips (plus ``duration_s``): the scores."""
    seen: set[str] = set()
    scores: list[str] = []
    clips_made = False
    for d in dirs:
        schema = _schema(d.data)
        if schema is None:
            continue
        for f in schema:
            if f.name in seen:
                continue
            seen.add(f.name)
            numeric = (pa.types.is_integer(f.type) or pa.types.is_floating(f.type)) and not pa.types.is_boolean(f.type)
            if numeric and (clips_made or f.name == "duration_s" or f.name in FACT_COLUMNS):
                scores.append(f.name)
        clips_made = clips_made or "clip_id" in schema.names
    return scores


def read_rows(folder: Path, scores: list[str]) -> pa.Table:
    """The shards of ``folder`` with the columns a card shows (identity, rejects, scores, labels, captions, errors)."""
    return _read_columns(folder, lambda c: c in IDENTITY_COLUMNS or c in REJECT_COLUMNS or c in scores
                         or c in LABEL_COLUMNS or _is_caption(c) or c.endswith("_error"))


def whatif(d: StageDir, rules: list[Rule], scores: list[str]) -> WhatIf:
    """A filter step's rules (percentiles resolved as its fit found them) and the values of the rows it saw."""
    stats = d.stats()
    wanted = set(scores) | {r.column for r in rules}
    parts = [t for t in (_read_columns(d.data, wanted.__contains__), _read_columns(d.rejected, wanted.__contains__))
             if t.num_rows]
    table = pa.concat_tables(parts, promote_options="permissive") if parts else pa.table({})
    columns = [c for c in scores if c in table.column_names]
    columns += [r.column for r in rules if r.column not in columns and r.column in table.column_names]
    values = {c: table[c].to_pylist() for c in columns}
    return WhatIf(step=d.name, folder=d.path.name, rules=rules, columns=columns, values=values,
                  rows_in=stats["rows_in"], rows_kept=stats["rows_kept"])


def _view(kind: str, d: StageDir, reason: str | None, table: pa.Table, scores: list[str]) -> View:
    names = table.column_names
    captions = [c for c in CAPTION_ORDER if c in names] + sorted(
        c for c in names if _is_caption(c) and c not in CAPTION_ORDER and pa.types.is_string(table.schema.field(c).type))
    return View(id="", kind=kind, step=d.name, folder=d.path.name, reason=reason, table=table,
                score_columns=[c for c in scores if c in names], caption_columns=captions,
                label_columns=[c for c in LABEL_COLUMNS if c in names])


def _is_caption(name: str) -> bool:
    """A caption column (``caption_image``, ``summary_caption``...), not a stage's error column (``caption_image_error``)."""
    return "caption" in name and not name.endswith("_error")


def _read_columns(folder: Path, wanted: Callable[[str], bool]) -> pa.Table:
    """The shards of ``folder``, only the columns for which ``wanted(name)`` is true (an empty table if none)."""
    files = data_files(folder)
    tables = [read_shard(f, columns=[c for c in pq.read_schema(f).names + list(partition_values(f)) if wanted(c)])
              for f in files]
    return pa.concat_tables(tables, promote_options="permissive") if tables else pa.table({})


def _schema(folder: Path) -> pa.Schema | None:
    """The schema of the folder's shards, with the partition column of a bucketed write's (a string)."""
    files = data_files(folder)
    if not files:
        return None
    schema = pq.read_schema(files[0])
    for key in partition_values(files[0]):
        schema = schema.append(pa.field(key, pa.string()))
    return schema
