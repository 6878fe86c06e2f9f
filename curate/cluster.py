"""The Dask cluster a run uses: an embedded one that knows CPUs from GPUs, or any existing one.

    from curate.cluster import start_client, cluster_info
    with start_client(workers=2) as client:              # 2 one-thread CPU worker processes
        print(cluster_info(client))                        # ClusterInfo(cpu_workers=2, gpu_workers=0, model_workers=2)
    with start_client(workers=15, gpus=1) as client:     # + one GPU worker pinned to GPU 0
        ...

Worker kinds are Dask *resources* (https://distributed.dask.org/en/stable/resources.html), so the same rules hold
on an embedded cluster and on one started by hand:

- ``CPU=1``: runs the CPU steps (split, motion, OCR, filter...). The embedded cluster starts one such worker per
  core (minus one per GPU worker), each with one thread: a step parallelises across shards, not inside one.
- ``GPU=1``: runs the model steps (captioners, the LLM, CLIP) and only those. The embedded cluster starts one per
  visible CUDA GPU (``--gpus N`` to choose), pinned with ``CUDA_VISIBLE_DEVICES`` as dask-cuda's
  ``LocalCUDACluster`` does; CPU workers then get ``CUDA_VISIBLE_DEVICES=""`` and never touch a GPU.
- ``MODEL=1``: a CPU worker that may hold models, for model steps when there is no GPU worker (or a step set to
  ``device: cpu``). The embedded cluster gives it to ``model_workers`` CPU workers (default: one per 8 GB of
  memory, at most all of them), so the number of model copies, hence memory, stays bounded.

On an existing cluster, start GPU workers with ``dask worker ADDRESS --resources GPU=1`` (one per GPU, e.g. with
``CUDA_VISIBLE_DEVICES``) and CPU workers with ``--resources CPU=1,MODEL=1`` (``MODEL`` only on those that may
load models). Workers that declare no resource at all run anything; a model step set to run on a GPU
(``device: auto`` or ``cuda``) on a cluster with no GPU worker is refused before any work starts
(``check_placement``).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import shutil
import subprocess
import sys
import warnings
from dataclasses import dataclass
from typing import Iterator, Sequence

from curate.errors import CurateError

#: how the embedded cluster starts its workers: forked from a server process that imported the common modules once
WORKER_START = "forkserver"

CPU, GPU, MODEL = "CPU", "GPU", "MODEL"
#: Memory per model-holding CPU worker the default ``model_workers`` assumes (the LVD captioners + CLIP on CPU).
MODEL_WORKER_BYTES = 8 * 1024**3
#: Times the embedded cluster's scheduler retries a task whose worker died while running it (see ``start_client``).
ALLOWED_FAILURES = 1


class PlacementError(Exception):
    """A step cannot run on this cluster (e.g. a GPU step and no GPU worker); the message says what to change."""


class ClusterOptionError(CurateError, ValueError):
    """A local cluster cannot be started as asked (worker counts, memory limit); the message names the option."""


@dataclass(frozen=True)
class ClusterInfo:
    """How many workers of each kind a cluster has (``workers`` counts them all)."""

    workers: int
    cpu_workers: int  # declare CPU
    gpu_workers: int  # declare GPU
    model_workers: int  # declare MODEL
    plain_workers: int  # declare no curate resource: run anything

    @property
    def cpu_slots(self) -> int:
        """Workers a CPU step can run on at once."""
        return self.cpu_workers + self.plain_workers if self.cpu_workers else self.workers


def cluster_info(client) -> ClusterInfo:
    info = client.scheduler_info(n_workers=-1)
    resources = [w.get("resources", {}) or {} for w in info.get("workers", {}).values()]
    return ClusterInfo(
        workers=len(resources),
        cpu_workers=sum(1 for r in resources if r.get(CPU)),
        gpu_workers=sum(1 for r in resources if r.get(GPU)),
        model_workers=sum(1 for r in resources if r.get(MODEL)),
        plain_workers=sum(1 for r in resources if not ({CPU, GPU, MODEL} & set(r))),
    )


def gpu_workers(client) -> bool:
    """Whether some worker of the cluster declares a GPU resource."""
    return cluster_info(client).gpu_workers > 0


def is_model_stage(stage) -> bool:
    """Model steps declare ``resources.gpus > 0``: they want a GPU, and hold models wherever they run."""
    return stage.resources.gpus > 0


def stage_device(stage) -> str:
    return str(getattr(stage, "device", "auto") or "auto")


def task_resources(stage, info: ClusterInfo) -> dict[str, float] | None:
    """The Dask resources one task of ``stage`` asks for on this cluster (None: any worker).

    A restriction that every worker meets is left out: Dask queues unrestricted tasks on the scheduler and hands
    each to the next free worker, while it assigns restricted ones to workers up front and moves them by work
    stealing, which left a worker idle for about a second before each stolen shard (measured on a 2-worker
    split)."""
    if is_model_stage(stage):
        if stage_device(stage) != "cpu" and info.gpu_workers:
            return {GPU: stage.resources.gpus}
        return {MODEL: 1} if 0 < info.model_workers < info.workers else None
    return {CPU: 1} if 0 < info.cpu_workers < info.workers else None


def check_placement(stages: dict[str, object], info: ClusterInfo, where: str) -> None:
    """Refuse, before any work, a step that no worker of the cluster can run; ``stages``: step name -> stage."""
    for name, stage in stages.items():
        if not is_model_stage(stage) or info.gpu_workers:
            continue
        device = stage_device(stage)
        if device == "cuda" or (device == "auto" and not info.model_workers and not info.plain_workers):
            raise PlacementError(
                f"step {name!r} runs its model on a GPU (device: {device}), but no worker of {where} declares a GPU "
                f"resource: start GPU workers with `dask worker ADDRESS --resources GPU=1`, or run the step on CPU "
                f"workers with --set {name}.device=cpu"
            )


def visible_gpus() -> int:
    """CUDA GPUs this process could use, without importing torch: ``CUDA_VISIBLE_DEVICES`` when set, else
    ``nvidia-smi -L`` (0 when there is no NVIDIA driver)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    if not shutil.which("nvidia-smi"):
        return 0
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in listing.splitlines() if line.startswith("GPU "))


def _gpu_ids(count: int) -> list[str]:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = [d.strip() for d in visible.split(",") if d.strip()] if visible else []
    return (ids + [str(i) for i in range(len(ids), count)])[:count]


def default_model_workers(cpu_workers: int) -> int:
    """One model-holding CPU worker per 8 GB of this machine's memory, at least 1, at most ``cpu_workers``."""
    from distributed.system import MEMORY_LIMIT

    return max(1, min(cpu_workers, int(MEMORY_LIMIT // MODEL_WORKER_BYTES)))


@contextlib.contextmanager
def start_client(
    scheduler: str | None = None,
    workers: int | None = None,
    memory_limit: str = "auto",
    quiet: bool = False,
    *,
    gpus: int | None = 0,
    model_workers: int | None = None,
    dashboard: bool = False,
    preload: Sequence[str] = (),
) -> Iterator["distributed.Client"]:  # noqa: F821
    """A Dask client: on ``scheduler`` (or ``$DASK_SCHEDULER_ADDRESS``) if given, else on an embedded cluster.

    The embedded cluster (see the module docstring): ``gpus`` GPU workers (None = every visible CUDA GPU; 0 =
    none) and ``workers`` CPU workers (default: one per core, minus one per GPU worker, at least 1), one thread
    each; ``model_workers`` of the CPU workers may hold models (default ``default_model_workers``).
    ``memory_limit`` applies to each worker ("auto": the machine's memory shared among them). ``dashboard``: serve
    Dask's dashboard (its link is printed); off by default, since importing bokeh for it adds about half a second to
    every run's start. ``preload``: modules the workers import (the steps'), once for all of them (``WORKER_START``).
    """
    from distributed import Client, LocalCluster, Nanny

    address = scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS")
    if address:
        with Client(address, timeout="20s") as client:
            if not quiet:
                print(f"curate: on Dask scheduler {address} (dashboard {client.dashboard_link})", file=sys.stderr)
            yield client
        return
    import dask
    from distributed.worker_memory import parse_memory_limit

    # 1. how many workers of each kind
    check_cluster_options(workers, gpus, model_workers, memory_limit)
    n_gpu = visible_gpus() if gpus is None else gpus
    n_cpu = workers or max(1, (os.cpu_count() or 1) - n_gpu)
    n_model = default_model_workers(n_cpu) if model_workers is None else max(0, min(model_workers, n_cpu))
    limit = parse_memory_limit(memory_limit, 1, total_cores=n_cpu + n_gpu, logger=logging.getLogger("curate"))

    # 2. the scheduler (in this process), then the workers: CPU workers first, then one per GPU
    # Saturation 1.0: a worker is sent its next shard only when it finishes one. Dask's default (1.1) queues
    # two shards per one-thread worker up front, so the last minutes can be one worker busy with two while the
    # other idles; shards are seconds to minutes long, so the round trip this adds does not matter.
    # Logs: distributed's are silenced below ERROR, in the workers and here. curate reports every failed task
    # itself (step, shard, exception); distributed's records of the same failures ("Compute Failed" with its
    # traceback, and the CommClosedError / cancelled futures of a shutdown after a failure) only bury that report.
    # The dashboard (when asked for) takes a free port when 8787 is taken (another run): the link printed below says
    # which.
    # Allowed failures 1: a task that was running on a worker that died is tried once more elsewhere (a worker
    # lost for another reason costs nothing), and a second death ends it with KilledWorker at once (Dask's default
    # 3 means four dead workers per poison video); the runner then runs that shard's rows alone to find the row
    # that kills its worker (curate.runner).
    # Both settings are read when the scheduler starts: the cluster is made inside them.
    # Workers are forked from one server process that imported distributed, numpy, pyarrow and ``preload`` once
    # (``WORKER_START``), instead of each spawned worker importing them again: about a CPU-second per worker.
    settings = {"distributed.scheduler.worker-saturation": 1.0,
                "distributed.scheduler.allowed-failures": ALLOWED_FAILURES}
    if WORKER_START in multiprocessing.get_all_start_methods():
        settings["distributed.worker.multiprocessing-method"] = WORKER_START
    with dask.config.set(settings), warnings.catch_warnings():
        if settings.get("distributed.worker.multiprocessing-method") == "forkserver":
            _preload(preload)
        warnings.filterwarnings("ignore", message="Port .* is already in use", category=UserWarning)
        cluster = LocalCluster(n_workers=0, threads_per_worker=1, processes=True, memory_limit=limit,
                               silence_logs=logging.ERROR, dashboard_address=":8787" if dashboard else None)
    with dask.config.set(settings), cluster, Client(cluster) as client:
        hide_gpus = {"CUDA_VISIBLE_DEVICES": ""} if n_gpu else {}
        specs = {}
        for i in range(n_cpu):
            resources = {CPU: 1, **({MODEL: 1} if i < n_model else {})}
            specs[f"cpu-{i}"] = _spec(cluster.new_spec, Nanny, resources, hide_gpus, limit)
        for i, gpu in enumerate(_gpu_ids(n_gpu)):
            specs[f"gpu-{i}"] = _spec(cluster.new_spec, Nanny, {GPU: 1}, {"CUDA_VISIBLE_DEVICES": gpu}, limit)
        cluster.worker_spec.update(specs)
        cluster.scale(len(cluster.worker_spec))
        client.wait_for_workers(len(specs), timeout=120)
        if not quiet:
            kinds = f"{n_cpu} CPU workers" + (f" + {n_gpu} GPU workers" if n_gpu else "")
            link = f"dashboard {client.dashboard_link}" if dashboard else "no dashboard: --dashboard serves one"
            print(f"curate: local Dask cluster, {kinds} ({link})", file=sys.stderr)
        yield client


def check_cluster_options(workers: int | None = None, gpus: int | None = 0, model_workers: int | None = None,
                          memory_limit: str | float | int | None = "auto") -> None:
    """Refuse, naming the option, what a local cluster cannot be started with (before anything starts)."""
    if workers is not None and workers < 1:
        raise ClusterOptionError(f"--workers {workers}: give at least 1 worker process (default: one per core)")
    if gpus is not None and gpus < 0:
        raise ClusterOptionError(f"--gpus {gpus}: give 0 or more GPU workers (default: every visible CUDA GPU)")
    if model_workers is not None and model_workers < 0:
        raise ClusterOptionError(f"--model-workers {model_workers}: give 0 or more (default: one per 8 GB of memory)")
    from distributed.worker_memory import parse_memory_limit

    allowed = "give a size per worker such as 4GB or 512MiB, a fraction of this machine's memory such as 0.25, or auto"
    try:
        limit = parse_memory_limit(memory_limit, 1, total_cores=1, logger=logging.getLogger("curate"))
    except (ValueError, TypeError) as e:
        raise ClusterOptionError(f"--memory-limit {memory_limit}: {allowed} ({e})") from None
    if limit is not None and limit < 0:
        raise ClusterOptionError(f"--memory-limit {memory_limit}: {allowed}")


def _preload(modules: Sequence[str]) -> None:
    """Have the fork server import ``modules`` (besides distributed's own list) when it starts; it starts with the
    first worker, after the Nanny set the workers' environment (``distributed.nanny.pre-spawn-environ``: thread
    counts, malloc settings). CUDA is never initialised by an import, so GPU workers still pick their device."""
    from distributed.utils import get_mp_context

    context = get_mp_context()  # sets distributed's list (dask, distributed, numpy, pandas, ...) the first time
    from distributed.versions import optional_packages, required_packages

    ours = ["pyarrow", "pyarrow.parquet", "curate.tasks", *modules]
    context.set_forkserver_preload(list(dict.fromkeys([*required_packages, *optional_packages, *ours])))


def _spec(template: dict, cls, resources: dict, env: dict, memory_limit) -> dict:
    options = dict(template["options"], nthreads=1, resources=resources, memory_limit=memory_limit)
    if env:
        options["env"] = dict(options.get("env") or {}, **env)
    return {"cls": cls, "options": options}
