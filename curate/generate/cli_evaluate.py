"""curate evaluate: score generated videos against their prompts and their real source clips; sweep settings.

    curate evaluate gen/ms                                      # GEN of curate generate (or a sweep's folder)
    curate evaluate gen/cfg --sweep guidance_scale=1,3,6,9 --from runs/full --model ali-vilab/text-to-video-ms-1.7b
    curate evaluate gen/g --from runs/full --config configs/generate.yaml --sweep scheduler=ddim,ddpm --sweep steps=5,25

Per video: clip_score (the curation CLIP stage's score vs the prompt), clip_score_real (the same for the real
source clip), temporal_consistency (mean CLIP cosine of consecutive frames), motion_score / motion_score_real
(the motion stage's score). Writes OUT/scores.parquet, OUT/summary.parquet (mean and 95% Student-t interval
per setting) and OUT/summary.png (OUT defaults to GEN/eval), and prints the summary. With --sweep (several
flags make a grid) it first generates every setting into GEN/<setting>/ from the prompts of --from, with the
generation flags of curate generate, then scores them all.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from curate.generate.cli_generate import add_generation_arguments

    parser.add_argument("gen", metavar="GEN", help="folder of curate generate --out (or of a sweep)")
    parser.add_argument("--out", metavar="DIR", help="where the scores, summary and plot go (default: GEN/eval)")
    e = parser.add_argument_group("scoring (defaults: --config file's evaluate: block, else the values shown)")
    e.add_argument("--clip-model", help="open_clip architecture (the CLIP stage's default: ViT-B-32)")
    e.add_argument("--clip-pretrained", help="open_clip weights: tag, hub repo, file or folder (the CLIP stage's "
                   "default: laion2b_s34b_b79k)")
    e.add_argument("--clip-frames", type=int, dest="clip_num_frames", help="frames per clip for clip_score (3)")
    e.add_argument("--frame-width", type=int, help="frames decoded at most this wide (336)")
    e.add_argument("--motion-fps", type=float, help="motion stage sample rate (2.0)")
    e.add_argument("--clip-device", dest="clip_device", help="auto | cpu | cuda (auto)")
    e.add_argument("--clip-dtype", dest="clip_dtype", help="auto | fp32 | bf16 | fp16 (auto)")
    s = parser.add_argument_group("sweep")
    s.add_argument("--sweep", action="append", default=[], metavar="PARAM=V1,V2,...",
                   help="generate a grid first (repeat for more axes), e.g. guidance_scale=1,3,6,9")
    s.add_argument("--from", dest="source", metavar="SHARDS_OR_RUN", help="the prompts' shards or run (with --sweep)")
    add_generation_arguments(parser)


#: Evaluator keyword -> flag destination.
_EVALUATOR_FLAGS = {"clip_model": "clip_model", "clip_pretrained": "clip_pretrained", "num_frames": "clip_num_frames",
                    "frame_width": "frame_width", "motion_fps": "motion_fps", "device": "clip_device",
                    "dtype": "clip_dtype"}  # fmt: skip


def evaluator_from_args(args: argparse.Namespace, config: dict):
    from curate.generate.evaluate import EvaluateError, Evaluator

    values = dict(config.get("evaluate") or {})
    unknown = sorted(set(values) - set(_EVALUATOR_FLAGS))
    if unknown:
        raise EvaluateError(f"--config {args.config}: evaluate: unknown keys {unknown}; "
                            f"allowed: {sorted(_EVALUATOR_FLAGS)}")
    values.update({key: getattr(args, dest) for key, dest in _EVALUATOR_FLAGS.items()
                   if getattr(args, dest, None) is not None})  # fmt: skip
    return Evaluator(**values)


def main(args: argparse.Namespace) -> int:
    from curate.generate.cli_generate import read_config, settings_from_args
    from curate.generate.evaluate import EvaluateError, evaluate, format_summary

    config = read_config(args.config)
    evaluator = evaluator_from_args(args, config)
    sweeps = args.sweep or list(config.get("sweep") or [])
    if sweeps:
        from curate.generate.run import generation_client
        from curate.generate.sweep import parse_sweeps, run_sweep

        if not args.source:
            raise EvaluateError("--sweep generates videos first: give the prompts with --from SHARDS_OR_RUN")
        axes = parse_sweeps(sweeps)
        settings, selection = settings_from_args(args)
        with generation_client(args.dask_scheduler, settings.device, args.workers) as client:
            run_sweep(args.source, args.gen, settings, axes, client, progress=not args.no_progress, **selection)
    paths = evaluate(args.gen, evaluator, args.out)
    import pyarrow.parquet as pq

    print(format_summary(pq.read_table(paths["summary"])))
    print(f"\nper video: {paths['scores']}\nsummary:   {paths['summary']}\nplot:      {paths['plot']}")
    return 0

