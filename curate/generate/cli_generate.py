"""curate generate: one video per curated caption with a diffusers text-to-video model (Dask GPU workers).

    curate generate runs/full --out gen/ms --model ali-vilab/text-to-video-ms-1.7b --sample 32
    curate generate runs/full/15_write/data --out gen/ms --config configs/generate.yaml --first 8
    curate generate runs/full --out gen/cpu --model ./tiny-t2v --device cpu --num-frames 8 --height 64 --width 64

SHARDS_OR_RUN: curated Parquet shards (a folder or a file) or a run folder (its last complete step's rows).
Writes GEN/videos/*.mp4 and GEN/generated.parquet (prompt, source clip, seed, every parameter, output path,
seconds, peak GPU memory). A relaunch of the same command skips the batches already done. Without a CUDA GPU
it stops with an error unless --device cpu is given. --config FILE takes values from the file's `generate:`
and `prompts:` blocks (configs/generate.yaml); flags override them.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

#: Keys of a config file's ``prompts:`` block and their defaults (the prompt selection).
PROMPT_KEYS = {"prompt_column": None, "first": None, "sample": None, "sample_seed": 0}


def add_generation_arguments(parser: argparse.ArgumentParser) -> None:
    """The generation flags (shared with ``curate evaluate --sweep``); every default is None = config, then
    ``GenerationSettings``'s own default."""
    from curate.generate.pipeline import DEVICES, DTYPES

    g = parser.add_argument_group("generation (defaults: --config file, else the values shown)")
    g.add_argument("--config", metavar="FILE", help="YAML with generate: and prompts: blocks (configs/generate.yaml)")
    g.add_argument("--model", help="diffusers text-to-video pipeline: hub id or local folder "
                   "(default: ali-vilab/text-to-video-ms-1.7b, ModelScope)")
    g.add_argument("--variant", help="weights variant of the repo, e.g. fp16 (smaller download)")
    g.add_argument("--prompt-column", help="caption column (default: caption, caption_video, "
                   "caption_image: the first present)")
    pick = g.add_mutually_exclusive_group()
    pick.add_argument("--first", type=int, metavar="N", help="the first N prompts (default: all)")
    pick.add_argument("--sample", type=int, metavar="N", help="N prompts drawn at random with --sample-seed")
    g.add_argument("--sample-seed", type=int, help="seed of --sample (default 0)")
    g.add_argument("--num-frames", type=int, help="frames per video (16)")
    g.add_argument("--fps", type=float, help="frames per second of the mp4 (8)")
    g.add_argument("--height", type=int, help="pixels, multiple of 8 (256)")
    g.add_argument("--width", type=int, help="pixels, multiple of 8 (256)")
    g.add_argument("--num-inference-steps", "--steps", type=int, dest="num_inference_steps",
                   help="denoising steps (25)")
    g.add_argument("--guidance-scale", type=float, help="classifier-free guidance, 1 = none (9.0)")
    g.add_argument("--negative-prompt", help="text to steer away from (none)")
    g.add_argument("--scheduler", help="sampler: default (the model's), ddim, ddpm, dpm++, dpm++_karras, euler, "
                   "euler_a, heun, lms, pndm, unipc")
    g.add_argument("--seed", type=int, help="prompt i gets seed SEED + i (0)")
    g.add_argument("--batch-size", type=int, help="prompts per task and pipeline call (1)")
    g.add_argument("--device", choices=DEVICES, help="cuda (default; error without a GPU) or cpu (explicit, slow)")
    g.add_argument("--dtype", choices=DTYPES, help="auto = fp16 on CUDA, fp32 on CPU")
    g.add_argument("--cpu-offload", action="store_true", default=None, help="model CPU offload (small GPUs)")
    g.add_argument("--vae-slicing", action="store_true", default=None, help="decode one video at a time")
    d = parser.add_argument_group("Dask")
    d.add_argument("--dask-scheduler", metavar="ADDRESS", help="existing Dask scheduler; its GPU workers declare "
                   "--resources GPU=1 (default: $DASK_SCHEDULER_ADDRESS, else a local cluster, one worker per GPU)")
    d.add_argument("--workers", type=int, help="local cluster workers (default: one per GPU; 1 with --device cpu)")
    d.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="SHARDS_OR_RUN", help="curated shards (folder or .parquet) or a run folder")
    parser.add_argument("--out", required=True, metavar="GEN", help="output folder (a relaunch resumes it)")
    add_generation_arguments(parser)


def read_config(path: str | None) -> dict[str, dict]:
    """The ``generate``, ``prompts``, ``evaluate`` and ``sweep`` blocks of a YAML config (missing ones empty)."""
    from curate.generate.pipeline import GenerateError

    if not path:
        return {}
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except OSError as error:
        raise GenerateError(f"--config {path}: {error}") from error
    unknown = sorted(set(data) - {"generate", "prompts", "evaluate", "sweep"})
    if unknown:
        raise GenerateError(f"--config {path}: unknown blocks {unknown}; allowed: generate, prompts, evaluate, sweep")
    return data


def settings_from_args(args: argparse.Namespace):
    """(GenerationSettings, prompt selection keywords): flags over the config file over the defaults."""
    import dataclasses

    from curate.generate.pipeline import GenerateError, GenerationSettings

    config = read_config(args.config)
    fields = {f.name for f in dataclasses.fields(GenerationSettings)}
    values: dict[str, Any] = dict(config.get("generate") or {})
    unknown = sorted(set(values) - fields)
    if unknown:
        raise GenerateError(f"--config {args.config}: generate: unknown keys {unknown}; allowed: {sorted(fields)}")
    values.update({k: v for k, v in vars(args).items() if k in fields and v is not None})
    selection = dict(PROMPT_KEYS, **(config.get("prompts") or {}))
    unknown = sorted(set(selection) - set(PROMPT_KEYS))
    if unknown:
        raise GenerateError(f"--config {args.config}: prompts: unknown keys {unknown}; allowed: {sorted(PROMPT_KEYS)}")
    selection.update({k: v for k, v in vars(args).items() if k in PROMPT_KEYS and v is not None})
    if args.first is not None:
        selection["sample"] = None
    if args.sample is not None:
        selection["first"] = None
    selection["column"] = selection.pop("prompt_column")
    return GenerationSettings(**values), selection


def main(args: argparse.Namespace) -> int:
    from curate.generate.run import generate_videos, generation_client

    from curate.generate.prompts import read_prompts

    settings, selection = settings_from_args(args)
    read_prompts(args.source, **selection)  # a source without captions fails here, before any cluster starts
    with generation_client(args.dask_scheduler, settings.device, args.workers) as client:
        table = generate_videos(args.source, args.out, settings, client, progress=not args.no_progress, **selection)
    print(generated_report(table, Path(args.out)))
    return 0


def generated_report(table, out: Path) -> str:
    seconds = table["seconds"].to_pylist()
    peak = [m for m in table["peak_gpu_memory_mb"].to_pylist() if m is not None]
    memory = f", peak GPU memory {max(peak):.0f} MiB" if peak else ""
    return (f"{table.num_rows} videos in {out.resolve()}/videos, {sum(seconds) / len(seconds):.2f} s per video "
            f"on {table['device'][0]}{memory}\ntable: {out.resolve()}/generated.parquet\n"
            f"score them: curate evaluate {out}")

