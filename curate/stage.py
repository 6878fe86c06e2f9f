"""The stage contract: one small class per step, declaring the columns it reads and the columns it adds.

    import pyarrow as pa
    from curate.stage import Stage, StageOutput

    class Loudness(Stage):
        name = "loudness"
        reads = ("video_path",)
        adds = {"loudness_db": pa.float64()}

        def __init__(self, window_s: float = 1.0):    # config values are constructor arguments
            self.window_s = window_s                  # stored under the same name: that is the config

        def setup(self) -> None:                      # once per worker: load models here, not in __init__
            ...

        def process(self, table: pa.Table) -> StageOutput:
            scores = [measure(path, self.window_s) for path in table["video_path"].to_pylist()]
            return StageOutput(kept=self.with_columns(table, {"loudness_db": scores}))

A stage never deletes a row: rows it does not keep go to ``rejected`` with a stable snake_case reason from
``reject_reasons``. Scoring stages only add columns; filtering is a separate stage (``curate.stages.filter``).
The runner (``curate.runner``) executes ``process`` on one Parquet shard at a time, on Dask workers.
"""

from __future__ import annotations

import inspect
import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, Sequence

import pyarrow as pa
import pyarrow.compute as pc

#: Columns every rejected row carries on top of the columns of the stage's input (or output, for splitters).
REJECT_COLUMNS: dict[str, pa.DataType] = {
    "reject_stage": pa.string(),
    "reject_reason": pa.string(),
    "reject_detail": pa.string(),
}



def runner_reasons(step: str) -> tuple[str, str]:
    """The reasons the runner itself gives rejected rows of any step, so no stage declares them: ``<step>_error``
    (processing the row raised, and the stage has no ``<stage name>_error`` column to hold the message) and
    ``<step>_worker_crashed`` (processing the row alone killed its worker twice: a segfault, the memory limit)."""
    return f"{step}_error", f"{step}_worker_crashed"


@dataclass(frozen=True)
class Resources:
    """What one task of a stage needs. ``gpus > 0`` stages are sent to workers that advertise a GPU resource."""

    cpus: float = 1.0
    gpus: float = 0.0


@dataclass(frozen=True)
class ShardSlice:
    """Rows ``[offset, offset + length)`` of the input shard ``shard``: one piece of an output shard that a stage
    plans itself (``Stage.plan_shards``)."""

    shard: str
    offset: int
    length: int


@dataclass(frozen=True)
class ShardBudget:
    """How much one output shard of a step may hold: at most ``rows`` rows and at most ``seconds`` seconds of
    clips (the sum of their ``duration_s``); None = no limit. A stage whose output rows are many per input row
    (split: clips of videos) returns one from ``output_budget`` so that the steps after it get balanced shards."""

    rows: int | None = None
    seconds: float | None = None


@dataclass(frozen=True)
class ShardPlace:
    """Where the runner writes one shard of a step: the step's folder and the shard's name."""

    folder: Path
    shard: str

    def extra_file(self, table_name: str) -> Path:
        """The file of the side table ``table_name`` of this shard (what ``StageOutput.extras[table_name]`` becomes)."""
        return self.folder / table_name / f"{self.shard}.parquet"


@dataclass
class StageOutput:
    """What ``Stage.process`` returns for one shard.

    kept: the rows that go on to the next stage (input columns + ``adds``).
    rejected: rows not kept, each with ``reject_reason`` (a value of ``reject_reasons``) and ``reject_detail``;
        the runner fills ``reject_stage``. ``None`` means no rejects.
    extras: side tables written next to the data, e.g. split's one-row-per-video ``videos`` table.
    video_seconds: seconds of video this shard processed, for throughput in ``stats.json``.
    partition_by: a string column of ``kept`` whose values (letters, digits, ``.``, ``_``, ``-``) make folders:
        the kept rows are written hive-style, ``data/<column>=<value>/<shard>.parquet``, the column in the folder
        name only (the write step's buckets). None: ``data/<shard>.parquet``.
    counts: what the shard did worth counting, summed over shards into ``stats.json``'s ``counts`` (e.g. clips whose
        frames were decoded rather than read from stored frames: ``decoded_clips``).
    """

    kept: pa.Table
    rejected: pa.Table | None = None
    extras: dict[str, pa.Table] = field(default_factory=dict)
    video_seconds: float = 0.0
    partition_by: str | None = None
    counts: dict[str, int] = field(default_factory=dict)


class Stage(ABC):
    """Base class of every stage. Subclasses set the class attributes and implement ``process``."""

    #: default step name in a pipeline (a pipeline may use one class twice under two names, e.g. two filters)
    name: ClassVar[str] = ""
    #: columns the stage needs from its input
    reads: ClassVar[tuple[str, ...]] = ()
    #: columns the stage adds, with their Arrow types
    adds: ClassVar[Mapping[str, pa.DataType]] = {}
    #: every reason this stage can give a rejected row (stable, snake_case, prefixed by the stage)
    reject_reasons: ClassVar[tuple[str, ...]] = ()
    resources: ClassVar[Resources] = Resources()

    def frame_needs(self) -> tuple:
        """The frames this stage reads from each clip (``curate.video.frame_needs.FrameNeed``), so that a step
        before it that decodes anyway keeps them (split, the frames step). Default: none."""
        return ()

    # ----------------------------------------------------------------------------------------------- config
    def params(self) -> dict[str, Any]:
        """The constructor arguments this stage was built with (stored under the same attribute names)."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {name: getattr(self, name) for name in names}

    def columns_added(self, available: Sequence[str]) -> dict[str, pa.DataType]:
        """Columns this stage adds given the input columns (constant for most stages)."""
        return dict(self.adds)

    # ---------------------------------------------------------------------------------------------- running
    def check(self) -> None:
        """Fail fast, on the client, before any work is scheduled: e.g. model weights that cannot be had.

        Raise an exception whose message says what to change. Must be cheap (no model loading).
        """

    def fit(self, input_dir: str) -> dict[str, Any]:
        """Optional whole-dataset pass before the shards run (percentiles, duplicates), on the client.

        ``input_dir`` is the folder of input Parquet shards. Return facts worth recording in ``stats.json``.
        """
        return {}

    @property
    def needs_all_input(self) -> bool:
        """Whether the step must see its whole input before its first shard runs: it has a ``fit`` or plans its
        own shards. Such a step is a barrier of a streaming run (``curate.runner``); a stage whose ``fit`` does
        nothing for its settings (a filter without percentile rules) says False."""
        return type(self).fit is not Stage.fit or type(self).plan_shards is not Stage.plan_shards

    #: Whether a different ``fit`` result (new inputs of an incremental run) changes shards already done, so
    #: that they must be redone (percentile thresholds: yes). A stage whose fit only concerns rows it has not
    #: processed yet says False.
    refit_redoes_shards: ClassVar[bool] = True

    def output_budget(self, input_dir: str, workers: int) -> ShardBudget | None:
        """Optional, on the client after ``fit``: cut each shard's kept rows into output shards within this
        budget (split: by clip count and duration), so the steps after it stay balanced over ``workers``.
        None (the default): one output shard per input shard."""
        return None

    def shard_costs(self, input_dir: str, shards: list[str]) -> dict[str, float] | None:
        """Optional, on the client before a barrier step's first shard: an estimate of each input shard's work, in
        any unit. The runner then submits the shards largest first, so that the workers finish together instead
        of one of them running a big shard alone at the end. None (the default): input order."""
        return None

    def plan_shards(self, input_dir: str) -> list[list[ShardSlice]] | None:
        """Optional: this step's own output shards, each made of slices of the input shards (re-sharding, as the
        write stage does to reach a target size), on the client after ``fit``.

        None (the default) means output shard i = input shard i. A plan covers every input row exactly once, in
        order; the runner checks that, stores it (``plan.json``) and reuses it when a killed step is resumed.
        """
        return None

    def finish(self, output_dir: str) -> dict[str, Any]:
        """Optional whole-output pass on the client once every shard is done, before ``stats.json`` is written
        (e.g. a dataset card). ``output_dir`` is this step's folder: write files there atomically
        (``curate.rundir.atomic_write_*``). Return facts worth recording in ``stats.json``.
        """
        return {}

    def setup(self) -> None:
        """Load what ``process`` needs (models, readers). Called once per worker process, never per shard."""

    @abstractmethod
    def process(self, table: pa.Table) -> StageOutput:
        """Kept (and rejected) rows for one shard; see ``StageOutput``."""

    def process_shard(self, table: pa.Table, place: ShardPlace) -> StageOutput:
        """What the runner calls for one shard: ``process(table)``. A stage whose rows refer to a side table it
        writes (the frames step) overrides it to learn where that table goes (``place.extra_file(name)``)."""
        return self.process(table)

    # ------------------------------------------------------------------------------------------- helpers
    def with_columns(self, table: pa.Table, values: Mapping[str, Sequence[Any]]) -> pa.Table:
        """``table`` plus the declared ``adds`` columns built from Python values, typed as declared."""
        declared = self.columns_added(table.column_names)
        for name, column in values.items():
            array = pa.array(column, type=declared[name])
            if name in table.column_names:
                table = table.set_column(table.column_names.index(name), name, array)
            else:
                table = table.append_column(pa.field(name, declared[name]), array)
        return table

    def reject(self, table: pa.Table, reasons: Sequence[str], details: Sequence[str | None] | None = None) -> pa.Table:
        """``table`` with ``reject_reason``/``reject_detail`` columns, checking reasons are declared ones."""
        unknown = sorted(set(reasons) - set(self.reject_reasons))
        if unknown:
            raise ValueError(f"{type(self).__name__} gave undeclared reject reasons {unknown}; declare them in reject_reasons")
        details = [None] * len(reasons) if details is None else list(details)
        table = table.append_column(pa.field("reject_reason", pa.string()), pa.array(list(reasons), pa.string()))
        return table.append_column(pa.field("reject_detail", pa.string()), pa.array(details, pa.string()))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"


def score_by_video(
    table: pa.Table,
    score_video: Callable[[str, int | None, list[tuple[float, float]]], list[Any]],
    score_clip: Callable[[str, int | None, float, float], Any],
    known_errors: tuple[type[BaseException], ...],
) -> tuple[list[Any], list[str | None]]:
    """Score every clip row, decoding each video about once: (results, errors) aligned with the rows.

    Rows are grouped by (video_path, video_stream) and ``score_video(path, stream, spans)`` scores a group's clips
    in time order. If it raises, the group's clips are scored one by one with ``score_clip(path, stream, start_s,
    end_s)`` to find which fail: those get result ``None`` and "ExceptionType: message". One video never fails
    the others. ``known_errors`` are the failures the caller expects (an undecodable clip); any other exception
    is contained the same way; its traceback goes to the ``curate`` logger at debug level (the message is in the
    row, and counted in the step's ``stats.json``: a traceback per clip would bury the run's own report).
    """
    rows = table.select(["video_path", "video_stream", "start_s", "end_s"]).to_pylist()
    groups: dict[tuple[str, int | None], list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault((row["video_path"], row["video_stream"]), []).append(i)
    results: list[Any] = [None] * len(rows)
    errors: list[str | None] = [None] * len(rows)
    for (path, stream), indices in groups.items():
        indices.sort(key=lambda i: rows[i]["start_s"])
        try:
            scored = score_video(path, stream, [(rows[i]["start_s"], rows[i]["end_s"]) for i in indices])
            for i, result in zip(indices, scored):
                results[i] = result
        except Exception as e:  # noqa: BLE001 - one video's failure is its clips' errors, never the shard's
            _log_unexpected(e, known_errors, path)
            for i in indices:
                try:
                    results[i] = score_clip(path, stream, rows[i]["start_s"], rows[i]["end_s"])
                except Exception as e:  # noqa: BLE001
                    _log_unexpected(e, known_errors, path)
                    errors[i] = error_message(e)
    return results, errors


def error_message(error: BaseException) -> str:
    """"ExceptionType: message" for a row's error column or reject detail; a type from outside curate and the
    standard library keeps its module (``cv2.error``, not ``error``)."""
    kind = type(error)
    name = kind.__qualname__ if kind.__module__ == "builtins" or kind.__module__.startswith("curate") else (
        f"{kind.__module__}.{kind.__qualname__}")
    return f"{name}: {str(error).strip()}"


def _log_unexpected(error: Exception, known: tuple[type[BaseException], ...], path: str) -> None:
    if not isinstance(error, known):
        logging.getLogger("curate").debug("unexpected error scoring %s: %s: %s", path, type(error).__name__, error,
                                          exc_info=error)


def read_clip_frames(
    table: pa.Table, positions: Sequence[float], width: int | None
) -> tuple[list[list[Any] | None], list[str | None]]:
    """Frames at relative ``positions`` of every clip row, at most ``width`` wide: (frames, errors).

    Rows whose frames a ``frames`` step stored (``curate.video.stored_frames``) are read from there; the others are
    decoded, each video about once. A clip whose frames cannot be decoded gets ``None`` and the message (see
    ``score_by_video``).
    """
    from curate.video.frames import FrameDecodeError, read_clips, read_frames, sample_times
    from curate.video.stored_frames import stored_frames

    def times(start: float, end: float) -> list[float]:
        return sample_times(start, end, positions=positions)

    frames: list[list[Any] | None] = list(stored_frames(table, positions, width))
    errors: list[str | None] = [None] * table.num_rows
    missing = [i for i, f in enumerate(frames) if f is None]
    if missing:
        decoded, decode_errors = score_by_video(
            table.take(pa.array(missing, pa.int64())),
            lambda path, stream, spans: read_clips(path, [times(a, b) for a, b in spans], width=width,
                                                   stream_index=stream),
            lambda path, stream, a, b: read_frames(path, times(a, b), width=width, stream_index=stream),
            (FrameDecodeError,),
        )
        for i, result, error in zip(missing, decoded, decode_errors):
            frames[i], errors[i] = result, error
    return frames, errors


def split_by_mask(table: pa.Table, keep: Sequence[bool]) -> tuple[pa.Table, pa.Table]:
    """(rows where keep is True, rows where it is False)."""
    mask = pa.array(keep, pa.bool_())
    return table.filter(mask), table.filter(pc.invert(mask))

