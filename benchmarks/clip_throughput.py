"""CLIP embedding throughput in clips/s (8 frames per clip), preprocessing included; prints a Markdown table.

    python benchmarks/clip_throughput.py                 # CPU ViT-B-32 fp32 vs bf16; CUDA ViT-L-14 if a GPU is there
    python benchmarks/clip_throughput.py --clips 4 --cuda-clips 64 --threads 1

Weights are random (built from open_clip's own architecture configs, nothing is downloaded): speed does not
depend on weight values. Frames are random 360x640 RGB uint8 arrays pushed through
:meth:`curate.models.clip.ClipModel.embed_images`, the same code path as the scoring stage.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from curate.hardware import cpu as cpu_info
from curate.models.clip import ClipModel


def random_clip_model(model: str, device: torch.device, dtype: torch.dtype) -> ClipModel:
    """An open_clip architecture with random weights (timing only), wrapped like a loaded model."""
    import open_clip

    network = open_clip.create_model(model, pretrained=None, device=device).to(dtype=dtype).eval()
    return ClipModel(network, open_clip.get_tokenizer(model), device, dtype)


def clips_per_second(clip: ClipModel, clips: int, frames_per_clip: int, batch_size: int) -> float:
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (360, 640, 3), dtype=np.uint8) for _ in range(clips * frames_per_clip)]
    clip.embed_images(frames[:batch_size], batch_size=batch_size)  # warm-up (kernels, allocator)
    _sync(clip.device)
    start = time.perf_counter()
    clip.embed_images(frames, batch_size=batch_size)
    _sync(clip.device)
    return clips / (time.perf_counter() - start)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=8, help="clips timed per CPU row (default 8 = 64 images)")
    parser.add_argument("--cuda-clips", type=int, default=128, help="clips timed per CUDA row")
    parser.add_argument("--frames-per-clip", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=32, help="images per forward pass on CPU")
    parser.add_argument("--cuda-batch-size", type=int, default=256, help="images per forward pass on CUDA")
    parser.add_argument("--cpu-model", default="ViT-B-32")
    parser.add_argument("--cuda-model", default="ViT-L-14")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    rows = []
    cpu = torch.device("cpu")
    for dtype in (torch.float32, torch.bfloat16):
        clip = random_clip_model(args.cpu_model, cpu, dtype)
        rate = clips_per_second(clip, args.clips, args.frames_per_clip, args.batch_size)
        hardware = f"{cpu_info().describe()}, threads={torch.get_num_threads()}"
        rows.append(("cpu", hardware, args.cpu_model, dtype, args.batch_size, rate))
    if torch.cuda.is_available():
        gpu = torch.device("cuda")
        for dtype in (torch.float32, torch.bfloat16, torch.float16):
            clip = random_clip_model(args.cuda_model, gpu, dtype)
            rate = clips_per_second(clip, args.cuda_clips, args.frames_per_clip, args.cuda_batch_size)
            rows.append(("cuda", torch.cuda.get_device_name(gpu), args.cuda_model, dtype, args.cuda_batch_size, rate))
    else:
        print("(no CUDA GPU visible: CUDA rows skipped)\n")

    frames = args.frames_per_clip
    print(f"| device | hardware | model | dtype | batch (images) | clips/s ({frames} frames) | images/s |")
    print("|---|---|---|---|---|---|---|")
    for device, hardware, model, dtype, batch, rate in rows:
        name = str(dtype).removeprefix("torch.")
        print(f"| {device} | {hardware} | {model} | {name} | {batch} | {rate:.2f} | {rate * frames:.1f} |")


if __name__ == "__main__":
    main()
