"""Generate one video per selected prompt as Dask tasks (batches of prompts), resumably, into a folder GEN.

    from curate.generate.pipeline import GenerationSettings
    from curate.generate.run import generate_videos, generation_client
    settings = GenerationSettings(model="ali-vilab/text-to-video-ms-1.7b", batch_size=4)
    with generation_client(device="cuda") as client:          # one worker per GPU, each declaring {"GPU": 1}
        table = generate_videos("runs/full", "gen/ms", settings, client, sample=32)

The folder GEN:

    GEN/settings.json              the settings and the prompt source (a relaunch with other settings is refused)
    GEN/prompts.parquet            the selected prompts: prompt_index, prompt, seed, source clip
    GEN/videos/000000.mp4          one H.264 mp4 per prompt, named by prompt_index
    GEN/batches/part-00000.parquet the rows of one batch (below), written when its videos are
    GEN/done/part-00000.json       the batch's done marker, written last
    GEN/generated.parquet          every row, written once every batch is done

One row per video: the prompt and its source clip (``clip_id``, ``video_path``, ``video_stream``, ``start_s``,
``end_s``), ``seed``, every parameter of ``GenerationSettings``, ``output_path`` (the mp4), ``frames_sha256``
(of the raw frames: equal = identical video), ``seconds`` (the batch's generation wall time divided by its
videos; model loading excluded), ``peak_gpu_memory_mb`` (peak allocated by torch during the batch; null on CPU),
``device`` and ``device_name``. Every file is written to a temporary name and renamed; a relaunch of the same
command skips batches with a done marker, so a killed run loses at most the batches in flight.

Each task runs on a worker that declares the ``GPU`` resource (when the cluster has such workers), and every
worker process loads the pipeline once (``cached_pipeline``) for all its tasks.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from curate.generate.pipeline import GenerateError, GenerationSettings
from curate.rundir import atomic_write_json, atomic_write_parquet, read_json

GENERATED = "generated.parquet"

#: Types of the GenerationSettings columns of the generated table.
SETTINGS_TYPES: dict[str, pa.DataType] = {
    "model": pa.string(), "num_frames": pa.int64(), "fps": pa.float64(), "height": pa.int64(), "width": pa.int64(),
    "num_inference_steps": pa.int64(), "guidance_scale": pa.float64(), "negative_prompt": pa.string(),
    "scheduler": pa.string(), "seed_base": pa.int64(), "batch_size": pa.int64(), "dtype": pa.string(),
    "variant": pa.string(), "cpu_offload": pa.bool_(), "vae_slicing": pa.bool_(),
}  # fmt: skip
#: Columns each batch adds to the prompt columns.
RESULT_TYPES: dict[str, pa.DataType] = {
    "output_path": pa.string(), "frames_sha256": pa.string(), "seconds": pa.float64(),
    "peak_gpu_memory_mb": pa.float64(), "device": pa.string(), "device_name": pa.string(),
}  # fmt: skip


# ------------------------------------------------------------------------------------------------- client
@contextlib.contextmanager
def generation_client(scheduler: str | None = None, device: str = "cuda", workers: int | None = None,
                      quiet: bool = False) -> Iterator["distributed.Client"]:  # noqa: F821
    """A Dask client for generation: on ``scheduler`` if given (its GPU workers must declare ``--resources
    GPU=1``), else a local cluster: one worker per visible GPU, each declaring ``{"GPU": 1}``, or with
    ``device="cpu"`` ``workers`` CPU workers (default 1: torch already uses every core in one process)."""
    from distributed import Client, LocalCluster

    from curate.runner import start_client

    if scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS"):
        with start_client(scheduler, quiet=quiet) as client:
            yield client
        return
    if device == "cuda":
        require_local_cuda()
        import torch

        n, resources = workers or torch.cuda.device_count(), {"GPU": 1}
    else:
        n, resources = workers or 1, None
    with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, resources=resources,
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:  # fmt: skip
        if not quiet:
            print(f"curate: local Dask cluster, {n} {device} workers (dashboard {client.dashboard_link})",
                  file=sys.stderr)
        yield client


def require_local_cuda() -> None:
    """A clear error, before any cluster starts, when there is no CUDA GPU here."""
    import torch

    if not torch.cuda.is_available():
        raise GenerateError("no CUDA GPU here (torch.cuda.is_available() is False): generation needs a GPU; "
                            "pass --device cpu to generate on the CPU anyway (minutes per video at 256x256), "
                            "or --dask-scheduler ADDRESS for a Dask cluster whose workers declare --resources GPU=1")


# ----------------------------------------------------------------------------------------------- the job
def generate_videos(
    source: str | os.PathLike,
    out: str | os.PathLike,
    settings: GenerationSettings,
    client,
    *,
    column: str | None = None,
    first: int | None = None,
    sample: int | None = None,
    sample_seed: int = 0,
    progress: bool = True,
) -> pa.Table:
    """Generate a video for every selected prompt of ``source`` into ``out``; return the generated table."""
    from distributed import as_completed

    from curate.generate.prompts import read_prompts

    out = Path(out)
    # 1. check the device against the cluster, read and select the prompts
    from curate.runner import gpu_workers

    gpu = gpu_workers(client)
    if settings.device == "cuda" and not gpu:
        raise GenerateError("device cuda but no worker of the Dask cluster declares a GPU resource (start GPU "
                            "workers with --resources GPU=1); or pass --device cpu to generate on the CPU")
    prompts = read_prompts(source, column=column, first=first, sample=sample, sample_seed=sample_seed,
                           base_seed=settings.seed)

    # 2. record what this folder holds; a relaunch must ask for the same thing
    record = {"settings": settings.as_dict(), "source": str(Path(source).resolve()), "prompts": _digest(prompts)}
    _claim(out, record)
    atomic_write_parquet(out / "prompts.parquet", prompts)

    # 3. one task per batch of prompts not done yet
    names = [f"part-{k:05d}" for k in range(-(-prompts.num_rows // settings.batch_size))]
    todo = [(k, name) for k, name in enumerate(names) if not (out / "done" / f"{name}.json").is_file()]
    if len(todo) < len(names):
        print(f"curate: {out}: {len(names) - len(todo)} of {len(names)} batches done already (skipped)",
              file=sys.stderr)
    futures = [
        client.submit(generate_batch, prompts.slice(k * settings.batch_size, settings.batch_size), name, settings,
                      str(out), key=f"generate-{record['prompts'][:8]}-{out.name}-{name}", pure=False,
                      resources={"GPU": 1} if gpu and settings.device == "cuda" else None)
        for k, name in todo
    ]  # fmt: skip
    failures = []
    bar = _progress(len(futures), out.name, progress)
    for future in as_completed(futures):
        if future.status == "error":
            failures.append(future.exception())
        bar.update(1)
        future.release()
    bar.close()
    if failures:
        error = failures[0]
        raise GenerateError(f"{len(failures)} of {len(futures)} batches failed (first: {type(error).__name__}: "
                            f"{error}); fix the cause and relaunch the same command: finished batches are kept")

    # 4. every batch done: the whole table
    table = pa.concat_tables([pq.read_table(out / "batches" / f"{name}.parquet") for name in names])
    atomic_write_parquet(out / GENERATED, table)
    return table


def _digest(prompts: pa.Table) -> str:
    payload = json.dumps([prompts["prompt"].to_pylist(), prompts["seed"].to_pylist(),
                          prompts["clip_id"].to_pylist()]).encode()  # fmt: skip
    return hashlib.sha256(payload).hexdigest()[:16]


def _claim(out: Path, record: dict) -> None:
    """Write ``settings.json``, or check that the one there asks for the same videos. A folder where no batch is
    done yet (e.g. a first launch that failed to load its model) is claimed anew."""
    path = out / "settings.json"
    nothing_done = not any((out / "done").glob("*.json"))
    if path.is_file() and not nothing_done:
        previous = read_json(path)
        if previous != json.loads(json.dumps(record)):
            before = previous.get("settings", {})
            changed = sorted(k for k, v in record["settings"].items() if before.get(k) != v)
            what = f"settings {changed}" if changed else "prompts (source, selection or seeds)"
            raise GenerateError(f"{out} holds videos generated with other {what}; use another --out folder "
                                "(or delete this one to start over)")
        return
    atomic_write_json(path, record)


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, label: str, enabled: bool):
    if not enabled or not total:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc=label, unit="batch", file=sys.stderr, dynamic_ncols=True)


# -------------------------------------------------------------------------------------------- worker side
def generate_batch(prompts: pa.Table, name: str, settings: GenerationSettings, out: str) -> dict:
    """Generate, encode and record one batch of prompts, then write its done marker. Runs on a worker."""
    import torch

    from curate.generate.pipeline import cached_pipeline, frames_digest, generate_frames, write_mp4

    out_dir = Path(out)
    device = _worker_device(settings.device)
    pipe = cached_pipeline(settings, device)
    # 1. generate the batch, measuring wall time and peak GPU memory
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    videos = generate_frames(pipe, prompts["prompt"].to_pylist(), prompts["seed"].to_pylist(), settings)
    if cuda:
        torch.cuda.synchronize(device)
    seconds = (time.perf_counter() - start) / len(videos)
    peak_mb = torch.cuda.max_memory_allocated(device) / 2**20 if cuda else None

    # 2. write the videos, then the rows, then the done marker
    paths = []
    for index, frames in zip(prompts["prompt_index"].to_pylist(), videos):
        path = out_dir / "videos" / f"{index:06d}.mp4"
        write_mp4(frames, path, settings.fps)
        paths.append(str(path.resolve()))
    n = len(videos)
    values = dict(settings.as_dict(), seed_base=settings.seed, device=device)
    columns = {c: prompts[c] for c in prompts.column_names}
    columns.update({c: pa.array([values[c]] * n, t) for c, t in SETTINGS_TYPES.items()})
    results = {"output_path": paths, "frames_sha256": [frames_digest(v) for v in videos], "seconds": [seconds] * n,
               "peak_gpu_memory_mb": [peak_mb] * n, "device": [device] * n, "device_name": [_device_name(device)] * n}
    columns.update({c: pa.array(results[c], t) for c, t in RESULT_TYPES.items()})
    atomic_write_parquet(out_dir / "batches" / f"{name}.parquet", pa.table(columns))
    stats = {"videos": n, "seconds_per_video": round(seconds, 4), "peak_gpu_memory_mb": peak_mb, "device": device}
    atomic_write_json(out_dir / "done" / f"{name}.json", stats)
    return stats


def _worker_device(device: str) -> str:
    """``cuda`` on a worker: its own GPU when a local cluster runs one worker per GPU (worker name = GPU index)."""
    if device != "cuda":
        return device
    import torch

    if not torch.cuda.is_available():
        raise GenerateError("device cuda but this Dask worker sees no CUDA GPU; give GPU workers --resources GPU=1 "
                            "only where there is a GPU")
    count = torch.cuda.device_count()
    try:
        from distributed import get_worker

        name = get_worker().name
    except ValueError:  # not on a worker
        name = 0
    return f"cuda:{name % count}" if isinstance(name, int) else "cuda:0"


def _device_name(device: str) -> str:
    import platform

    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine()
