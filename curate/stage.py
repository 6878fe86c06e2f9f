"""The stage contract: one small class per step, declaring the columns it reads and the columns it adds.

    class Loudness(Stage):
        name = "loudness"
        reads = ("video_path",)
        adds = {"loudness_db": pa.float64()}

        def __init__(self, window_s: float = 1.0):    # config values are constructor arguments
            self.window_s = window_s                  # stored under the same name: that is the config

        def setup(self) -> None:                      # once per worker: load models here, not in __init__
            self._model = load_model()                # named in `loaded = ("_model",)`: never pickled

        def process(self, table: pa.Table) -> StageOutput:
            scores = [measure(path, self.window_s) for path in table["video_path"].to_pylist()]
            return StageOutput(kept=self.with_columns(table, {"loudness_db": scores}))

A stage never deletes a row: rows it does not keep go to ``rejected`` with a reason from ``reject_reasons``. The
runner sends the stage by value with each task (one Parquet shard): it holds its settings and what ``fit`` found;
models ``setup`` loads are named in ``loaded``, never pickled. The first step is a ``Source``.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping, Protocol, Sequence, runtime_checkable

import pyarrow as pa

@dataclass(frozen=True)
class Resources:
    """What one task of a stage needs. ``gpus > 0`` stages are sent to workers that advertise a GPU resource."""
    cpus: float = 1.0
    gpus: float = 0.0


@dataclass
class StageOutput:
    """What ``Stage.process`` returns for one shard."""
    kept: pa.Table  # input columns + ``adds``
    rejected: pa.Table | None = None  # with ``reject_reason`` (one of ``reject_reasons``) and ``reject_detail``
    extras: dict[str, pa.Table] = field(default_factory=dict)  # side tables next to the data (split's ``videos``)
    video_seconds: float = 0.0  # summed into stats.json, as are ``counts``
    partition_by: str | None = None  # a string column whose values make folders, ``data/<column>=<value>/``
    counts: dict[str, int] = field(default_factory=dict)


class Stage(ABC):
    """Base class of every stage. Subclasses set the class attributes and implement ``process``."""
    name: ClassVar[str] = ""  # default step name (a pipeline may use one class twice under two names)
    reads: ClassVar[tuple[str, ...]] = ()  # columns the stage needs from its input
    adds: ClassVar[Mapping[str, pa.DataType]] = {}  # columns it adds, with their Arrow types
    reject_reasons: ClassVar[tuple[str, ...]] = ()  # stable, snake_case, prefixed by the stage
    resources: ClassVar[Resources] = Resources()
    loaded: ClassVar[tuple[str, ...]] = ()  # attributes ``setup`` loads (models): None when pickled

    def params(self) -> dict[str, Any]:
        """The constructor arguments this stage was built with (stored under the same attribute names)."""
        return {n: getattr(self, n) for n in inspect.signature(type(self).__init__).parameters if n != "self"}

    def columns_added(self, available: Sequence[str]) -> dict[str, pa.DataType]:
        """Columns this stage adds given the input columns (constant for most stages)."""
        return dict(self.adds)

    def frame_needs(self) -> tuple:
        """The frames it reads of each clip (``FrameNeed``s), kept for it by split or the frames step."""
        return ()

    def shard_policy(self) -> Any:
        """A ``curate.sharding.ShardPolicy`` if this step's shards differ from one output shard per input shard."""
        return None

    def check(self) -> None:
        """On the client, before any work: cheaply fail (missing weights) with a message that says what to change."""

    def fit(self, input_dir: str) -> dict[str, Any]:
        """Optional pass over the whole input, on the client before any shard (percentiles); facts for stats.json."""
        return {}

    def setup(self) -> None:
        """Load models into the attributes named in ``loaded``: once per worker process and step, never per shard."""

    @abstractmethod
    def process(self, table: pa.Table) -> StageOutput:
        """Kept (and rejected) rows for one shard; see ``StageOutput``."""

    def finish(self, output_dir: str) -> dict[str, Any]:
        """Optional pass once every shard is done (a dataset card, written atomically); facts for stats.json."""
        return {}

    def with_columns(self, table: pa.Table, values: Mapping[str, Sequence[Any]]) -> pa.Table:
        """``table`` plus the declared ``adds`` columns built from Python values, typed as declared."""
        declared = self.columns_added(table.column_names)
        for name, column in values.items():
            field_, array = pa.field(name, declared[name]), pa.array(column, type=declared[name])
            at = table.column_names.index(name) if name in table.column_names else None
            table = table.append_column(field_, array) if at is None else table.set_column(at, field_, array)
        return table

    def reject(self, table: pa.Table, reasons: Sequence[str], details: Sequence[str | None] | None = None) -> pa.Table:
        """``table`` with ``reject_reason``/``reject_detail`` columns, checking reasons are declared ones."""
        if unknown := sorted(set(reasons) - set(self.reject_reasons)):
            raise ValueError(f"{type(self).__name__} gave undeclared reject reasons {unknown}; declare them in reject_reasons")
        details = [None] * len(reasons) if details is None else list(details)
        table = table.append_column(pa.field("reject_reason", pa.string()), pa.array(list(reasons), pa.string()))
        return table.append_column(pa.field("reject_detail", pa.string()), pa.array(details, pa.string()))

    def __getstate__(self) -> dict[str, Any]:  # the one pickling rule: settings travel, loaded models do not
        return {k: None if k in self.loaded else v for k, v in self.__dict__.items()}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.params().items())})"


@runtime_checkable
class Source(Protocol):
    """The first step of a pipeline (ingest): the inputs it finds, planned into the input manifest's shards."""
    def expand(self) -> list[str]: ...  # every input video path, in a stable order

    def plan(self, paths: list[str], workers: int) -> list[pa.Table]: ...  # input shards of ``video_path`` rows

