"""Text-to-video generation speed: seconds per video, videos per hour and peak GPU memory; a Markdown table.

    python benchmarks/generate_throughput.py              # CUDA: ModelScope 1.7B, 256x256, 16 frames, 25 steps, fp16
    python benchmarks/generate_throughput.py --batch-size 4 --videos 8 --scheduler dpm++
    python benchmarks/generate_throughput.py --tiny       # the tests' tiny pipeline on a CPU: 32x32, 4 frames, 2 steps

The pipeline is ModelScope's ``ali-vilab/text-to-video-ms-1.7b`` architecture (TextToVideoSDPipeline) built from
its published component configs (embedded below: ``unet/``, ``vae/``, ``text_encoder/``, ``scheduler/`` of the
hub repo) with random weights: speed does not depend on weight values, and nothing is downloaded. The
tokenizer is a byte-level stand-in (prompts are padded to CLIP's 77 tokens either way, so the text encoder does
the same work). It is saved with ``save_pretrained`` and loaded by
``curate.generate.pipeline.load_diffusion_pipeline``, the loader of ``curate generate``, then timed through
``generate_frames`` (what each Dask task runs) after one warm-up video; mp4 encoding is timed apart. The frames of
random weights are noise: only the timings mean anything.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import torch

from curate.generate.pipeline import GenerationSettings, generate_frames, load_diffusion_pipeline, write_mp4

# ali-vilab/text-to-video-ms-1.7b, component configs as published (diffusers-specific bookkeeping keys left out)
MODELSCOPE_UNET = {
    "act_fn": "silu", "attention_head_dim": 64, "block_out_channels": [320, 640, 1280, 1280],
    "cross_attention_dim": 1024,
    "down_block_types": ["CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "DownBlock3D"],
    "downsample_padding": 1, "in_channels": 4, "layers_per_block": 2, "mid_block_scale_factor": 1, "norm_eps": 1e-05,
    "norm_num_groups": 32, "out_channels": 4, "sample_size": 32,
    "up_block_types": ["UpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D"],
}  # fmt: skip
MODELSCOPE_VAE = {
    "act_fn": "silu", "block_out_channels": [128, 256, 512, 512], "down_block_types": ["DownEncoderBlock2D"] * 4,
    "in_channels": 3, "latent_channels": 4, "layers_per_block": 2, "norm_num_groups": 32, "out_channels": 3,
    "sample_size": 512, "scaling_factor": 0.18215, "up_block_types": ["UpDecoderBlock2D"] * 4,
}  # fmt: skip
MODELSCOPE_TEXT_ENCODER = {
    "attention_dropout": 0.0, "bos_token_id": 0, "dropout": 0.0, "eos_token_id": 2, "hidden_act": "gelu",
    "hidden_size": 1024, "initializer_factor": 1.0, "initializer_range": 0.02, "intermediate_size": 4096,
    "layer_norm_eps": 1e-05, "max_position_embeddings": 77, "num_attention_heads": 16, "num_hidden_layers": 23,
    "pad_token_id": 1, "projection_dim": 512, "vocab_size": 49408,
}  # fmt: skip
MODELSCOPE_SCHEDULER = {
    "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085, "clip_sample": False,
    "num_train_timesteps": 1000, "prediction_type": "epsilon", "set_alpha_to_one": False, "steps_offset": 1,
}  # fmt: skip

# the tests' tiny architecture (tests/generate/tiny.py): same block types, widths of 8-32, 32x32 latents
TINY_UNET = {
    "block_out_channels": [8, 8], "layers_per_block": 1, "sample_size": 32, "in_channels": 4, "out_channels": 4,
    "down_block_types": ["CrossAttnDownBlock3D", "DownBlock3D"], "up_block_types": ["UpBlock3D", "CrossAttnUpBlock3D"],
    "cross_attention_dim": 32, "attention_head_dim": 4, "norm_num_groups": 2,
}  # fmt: skip
TINY_VAE = {
    "block_out_channels": [8], "in_channels": 3, "out_channels": 3, "down_block_types": ["DownEncoderBlock2D"],
    "up_block_types": ["UpDecoderBlock2D"], "latent_channels": 4, "sample_size": 32, "norm_num_groups": 2,
}  # fmt: skip
TINY_TEXT_ENCODER = {
    "hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 4,
    "max_position_embeddings": 77, "projection_dim": 32, "vocab_size": 600,
}  # fmt: skip

PROMPT = "a red car drives along a coastal road at sunset, aerial view"


def byte_tokenizer():
    """A CLIPTokenizer over single byte-level characters (no merges): any prompt tokenizes, padded to 77."""
    from tokenizers import pre_tokenizers
    from transformers import CLIPTokenizer

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tokens = ["<|startoftext|>", "<|endoftext|>", *alphabet, *[f"{c}</w>" for c in alphabet]]
    return CLIPTokenizer(vocab={t: i for i, t in enumerate(tokens)}, merges=[], model_max_length=77)


def save_random_pipeline(folder: Path, tiny: bool, dtype: torch.dtype) -> Path:
    """The architecture's pipeline with seeded random weights, saved in ``dtype`` with ``save_pretrained``."""
    from diffusers import AutoencoderKL, DDIMScheduler, TextToVideoSDPipeline, UNet3DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    unet, vae, text = (TINY_UNET, TINY_VAE, TINY_TEXT_ENCODER) if tiny else (
        MODELSCOPE_UNET, MODELSCOPE_VAE, MODELSCOPE_TEXT_ENCODER)
    tokenizer = byte_tokenizer()
    torch.manual_seed(0)
    text_config = dict(text, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                       pad_token_id=tokenizer.pad_token_id)
    pipe = TextToVideoSDPipeline(
        vae=AutoencoderKL(**vae), text_encoder=CLIPTextModel(CLIPTextConfig(**text_config)), tokenizer=tokenizer,
        unet=UNet3DConditionModel(**unet), scheduler=DDIMScheduler(**MODELSCOPE_SCHEDULER),
    )  # fmt: skip
    if dtype != torch.float32:
        pipe.to(dtype=dtype)
    pipe.save_pretrained(folder)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="the tests' tiny architecture instead of ModelScope 1.7B")
    parser.add_argument("--device", choices=["cuda", "cpu"], help="default: cuda when there is a GPU, else cpu")
    parser.add_argument("--videos", type=int, default=4, help="videos timed after the warm-up (default 4)")
    parser.add_argument("--batch-size", type=int, default=1, help="prompts per pipeline call (default 1)")
    parser.add_argument("--num-frames", type=int, help="default 16 (4 with --tiny)")
    parser.add_argument("--size", type=int, help="height = width in pixels (default 256; 32 with --tiny)")
    parser.add_argument("--steps", type=int, help="denoising steps (default 25; 2 with --tiny)")
    parser.add_argument("--guidance-scale", type=float, default=9.0)
    parser.add_argument("--scheduler", default="default", help="sampler name of curate generate (default: DDIM)")
    parser.add_argument("--dtype", default="auto", help="auto = fp16 on CUDA, fp32 on CPU")
    parser.add_argument("--cpu-offload", action="store_true")
    parser.add_argument("--vae-slicing", action="store_true")
    args = parser.parse_args()
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu" and not args.tiny:
        parser.error("the 1.7B model on a CPU takes hours per video: use --tiny on a CPU, or run on a CUDA GPU")
    size = args.size or (32 if args.tiny else 256)
    args.num_frames = args.num_frames or (4 if args.tiny else 16)
    args.steps = args.steps or (2 if args.tiny else 25)

    from curate.generate.pipeline import torch_dtype

    dtype = torch_dtype(device, args.dtype)
    settings = GenerationSettings(
        model="(random weights)", num_frames=args.num_frames, height=size, width=size, num_inference_steps=args.steps,
        guidance_scale=args.guidance_scale, scheduler=args.scheduler, batch_size=args.batch_size, device=device,
        dtype=args.dtype, cpu_offload=args.cpu_offload, vae_slicing=args.vae_slicing,
    )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="t2v-bench-") as tmp:
        # 1. build the architecture with random weights, save it, load it as curate generate does
        start = time.perf_counter()
        folder = save_random_pipeline(Path(tmp) / "pipeline", args.tiny, dtype)
        built = time.perf_counter() - start
        start = time.perf_counter()
        pipe = load_diffusion_pipeline(str(folder), device=device, dtype=args.dtype, cpu_offload=args.cpu_offload,
                             vae_slicing=args.vae_slicing)
        loaded = time.perf_counter() - start
        params = sum(p.numel() for p in pipe.unet.parameters()) + sum(p.numel() for p in pipe.text_encoder.parameters())

        # 2. one warm-up batch (kernels, allocator), then the timed batches
        generate_frames(pipe, [PROMPT] * args.batch_size, list(range(args.batch_size)), settings)
        if device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        batches = -(-args.videos // args.batch_size)
        videos = []
        start = time.perf_counter()
        for b in range(batches):
            seeds = [b * args.batch_size + i for i in range(args.batch_size)]
            videos += generate_frames(pipe, [PROMPT] * args.batch_size, seeds, settings)
        if device == "cuda":
            torch.cuda.synchronize()
        seconds = (time.perf_counter() - start) / len(videos)
        peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None

        # 3. mp4 encoding, as each task does after generating
        start = time.perf_counter()
        for i, frames in enumerate(videos):
            write_mp4(frames, Path(tmp) / f"{i}.mp4", fps=8)
        encode = (time.perf_counter() - start) / len(videos)

    name = torch.cuda.get_device_name() if device == "cuda" else (platform.processor() or platform.machine())
    arch = "tiny (tests)" if args.tiny else "ModelScope text-to-video-ms-1.7b"
    print(f"{arch}: {params / 1e6:.1f} M parameters (UNet + text encoder), random weights; built in {built:.1f} s, "
          f"loaded in {loaded:.1f} s; {device} ({name}), {str(dtype).replace('torch.', '')}, "
          f"scheduler {args.scheduler}, guidance {args.guidance_scale}\n")
    print("| size | frames | steps | batch | videos timed | s/video | videos/hour | peak GPU memory "
          "| mp4 encode s/video |")
    print("|---|---|---|---|---|---|---|---|---|")
    memory = f"{peak:.2f} GiB" if peak is not None else "n/a (CPU)"
    print(f"| {size}x{size} | {args.num_frames} | {args.steps} | {args.batch_size} | {len(videos)} | {seconds:.3f} | "
          f"{3600 / seconds:.0f} | {memory} | {encode:.4f} |")


if __name__ == "__main__":
    main()
