"""How a step's shards may differ from "output shard i = input shard i": an optional policy a stage declares.

Most stages have none. The few that do (split, write, the frames step, filter) return one from
``Stage.shard_policy()``; the runner (``curate.runner``) and the task (``curate.tasks``) read it:

    class SplitShards(ShardPolicy):
        refit_redoes_shards = False
        def __init__(self, split): self.split = split
        def output_budget(self, input_dir, workers): return ShardBudget(rows=64, seconds=60.0)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

if TYPE_CHECKING:
    from curate.stage import Stage, StageOutput

#: "auto" shard sizes aim at about this many shards per worker over the whole run (ingest: videos, split: clips):
#: 2-4 balances the tail (the workers finish together); more only adds per-shard overhead
SHARDS_PER_WORKER = 3


@dataclass(frozen=True)
class ShardSlice:
    """Rows ``[offset, offset + length)`` of the input shard ``shard``: one piece of an output shard that a step
    plans itself (``ShardPolicy.plan_shards``)."""

    shard: str
    offset: int
    length: int


@dataclass(frozen=True)
class ShardBudget:
    """How much one output shard of a step may hold: at most ``rows`` rows and at most ``seconds`` seconds of
    clips (the sum of their ``duration_s``); None = no limit. A stage whose output rows are many per input row
    (split: clips of videos) returns one from ``ShardPolicy.output_budget`` so that the steps after it get
    balanced shards."""

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


class ShardPolicy:
    """A step's shard planning. Every method has the default of a step without a policy; override what differs."""

    #: Whether the step must see its whole input before its first shard runs (a barrier of a streaming run).
    #: None: when the stage has a ``fit`` or the policy plans its own shards. A filter without percentile rules,
    #: whose ``fit`` does nothing, says False.
    needs_all_input: bool | None = None
    #: Whether a different ``fit`` result (new inputs of an incremental run) changes shards already done, so that
    #: they must be redone (percentile thresholds: yes). A stage whose fit only concerns rows it has not processed
    #: yet says False.
    refit_redoes_shards: bool = True

    def output_budget(self, input_dir: str, workers: int) -> ShardBudget | None:
        """On the client after ``fit``: cut each shard's kept rows into output shards within this budget (split:
        by clip count and duration), so the steps after it stay balanced over ``workers``. None: one output shard
        per input shard."""
        return None

    def shard_costs(self, input_dir: str, shards: list[str]) -> dict[str, float] | None:
        """On the client before a barrier step's first shard: an estimate of each input shard's work, in any unit.
        The runner then submits the shards largest first, so that the workers finish together instead of one of
        them running a big shard alone at the end. None: input order."""
        return None

    def plan_shards(self, input_dir: str) -> list[list[ShardSlice]] | None:
        """This step's own output shards, each made of slices of the input shards (re-sharding, as the write stage
        does to reach a target size), on the client after ``fit``. None: output shard i = input shard i. A plan
        covers every input row exactly once, in order; the runner checks that, stores it (``plan.json``) and reuses
        it when a killed step is resumed."""
        return None

    def process(self, stage: Stage, table: pa.Table, place: ShardPlace) -> StageOutput:
        """What the task runs for one shard: ``stage.process(table)``. A stage whose rows refer to a side table it
        writes (split's kept frames, the frames step) learns here where that table goes (``place.extra_file``)."""
        return stage.process(table)


_NO_POLICY = ShardPolicy()


def shard_policy(stage: Stage) -> ShardPolicy:
    """The stage's policy, or the default one."""
    return stage.shard_policy() or _NO_POLICY


def needs_all_input(stage: Stage) -> bool:
    """Whether the step is a barrier: its policy says so, else it has a ``fit`` or plans its own shards."""
    from curate.stage import Stage

    policy = shard_policy(stage)
    if policy.needs_all_input is not None:
        return policy.needs_all_input
    return type(stage).fit is not Stage.fit or type(policy).plan_shards is not ShardPolicy.plan_shards
