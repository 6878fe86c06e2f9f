"""Load a diffusers text-to-video pipeline once per process, generate seeded videos, write them as mp4.

    from curate.generate.pipeline import GenerationSettings, generate_frames, load_diffusion_pipeline, write_mp4
    settings = GenerationSettings(model="ali-vilab/text-to-video-ms-1.7b", num_frames=16, guidance_scale=9.0)
    pipe = load_diffusion_pipeline(settings.model, device="cuda", dtype="fp16")  # DiffusionPipeline.from_pretrained
    videos = generate_frames(pipe, ["a dog runs on a beach"], seeds=[0], settings=settings)  # [F, H, W, 3] uint8
    write_mp4(videos[0], "dog.mp4", fps=settings.fps)                           # libx264, yuv420p

``model`` is a hub id or a local folder in the diffusers layout (``model_index.json`` + one folder per component);
both go through ``DiffusionPipeline.from_pretrained``. The reference is ModelScope's ``ali-vilab/text-to-video-ms-1.7b``
(a ``TextToVideoSDPipeline``: UNet3DConditionModel, AutoencoderKL, CLIP text encoder), in fp16 on CUDA.

Reproducibility: every prompt gets its own ``torch.Generator`` seeded with its seed (on the CPU, so the same seed
gives the same starting noise on any device).

- On a CPU each prompt is one pipeline call, so the same prompt, seed and settings give the same frames bit for bit
  on one machine, whatever batch the prompt was in. A batched call would not: the matrix kernels (oneDNN, MKL) block
  their sums by the number of rows, so a prompt's numbers change in their last bits with the batch size on CPUs
  with AVX-512, and 2 denoising steps are enough for that to reach the uint8 frames. Batching buys little on a CPU.
- On a GPU the prompts of a batch go through one call (that is where batching pays); the same batch gives the same
  frames up to the kernels' own nondeterminism, and another batch size may differ in the last bits.
- Different CPUs (AVX2 or AVX-512 kernels) may differ in the last bits too, as GPUs do.
- Samplers that draw fresh noise at every step (``ddpm``, ``euler_a``: ``SCHEDULERS[name].draws_noise``) cannot
  be seeded per prompt inside one batched call (diffusers draws that noise for frames x prompts from one generator
  list), so with them each prompt is one pipeline call on any device.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from curate.errors import CurateError


class GenerateError(CurateError):
    """Generation cannot run as asked: the message says which setting or flag to change."""


@dataclass(frozen=True)
class Scheduler:
    """A sampler by name: the diffusers class, config overrides, and whether its ``step`` draws noise."""

    class_name: str
    config: dict = field(default_factory=dict)
    draws_noise: bool = False


#: Sampler names accepted by ``--scheduler``; each is built with ``from_config(pipe.scheduler.config)``.
SCHEDULERS: dict[str, Scheduler] = {
    "ddim": Scheduler("DDIMScheduler"),
    "ddpm": Scheduler("DDPMScheduler", draws_noise=True),
    "dpm++": Scheduler("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++"}),
    "dpm++_karras": Scheduler("DPMSolverMultistepScheduler",
                              {"algorithm_type": "dpmsolver++", "use_karras_sigmas": True}),
    "euler": Scheduler("EulerDiscreteScheduler"),
    "euler_a": Scheduler("EulerAncestralDiscreteScheduler", draws_noise=True),
    "heun": Scheduler("HeunDiscreteScheduler"),
    "lms": Scheduler("LMSDiscreteScheduler"),
    "pndm": Scheduler("PNDMScheduler"),
    "unipc": Scheduler("UniPCMultistepScheduler"),
}  # fmt: skip
DEFAULT_SCHEDULER = "default"  # the one the model ships with (ModelScope: DDIM)

DEFAULT_MODEL = "ali-vilab/text-to-video-ms-1.7b"  # ModelScope text-to-video, the reference
DEVICES = ("cuda", "cpu")
DTYPES = ("auto", "fp16", "bf16", "fp32")


@dataclass(frozen=True)
class GenerationSettings:
    """Every parameter of one generation run; all of them go into each generated row.

    model: hub id or local diffusers folder. variant: weights variant to load (``fp16`` files of a hub repo),
    None for the default files. num_frames, fps: video length and its playback rate (frames per second).
    height, width: pixels, multiples of 8. num_inference_steps: denoising steps. guidance_scale:
    classifier-free guidance (1 = none). negative_prompt: what to steer away from (with guidance > 1).
    scheduler: a name of ``SCHEDULERS`` or ``default``. seed: prompt ``i`` is generated with seed ``seed + i``.
    batch_size: prompts per task and per pipeline call. device: ``cuda`` (default) or ``cpu`` (explicit: slow).
    dtype: ``auto`` = fp16 on CUDA, fp32 on CPU. cpu_offload: keep only the running component on the GPU
    (``enable_model_cpu_offload``: for GPUs under ~8 GB). vae_slicing: decode one video at a time.
    """

    model: str = DEFAULT_MODEL
    num_frames: int = 16
    fps: float = 8.0
    height: int = 256
    width: int = 256
    num_inference_steps: int = 25
    guidance_scale: float = 9.0
    negative_prompt: str | None = None
    scheduler: str = DEFAULT_SCHEDULER
    seed: int = 0
    batch_size: int = 1
    device: str = "cuda"
    dtype: str = "auto"
    variant: str | None = None
    cpu_offload: bool = False
    vae_slicing: bool = False

    def __post_init__(self) -> None:
        if not self.model:
            raise GenerateError("no model given: pass --model HUB_ID_OR_FOLDER (e.g. ali-vilab/text-to-video-ms-1.7b)")
        if self.scheduler != DEFAULT_SCHEDULER and self.scheduler not in SCHEDULERS:
            raise GenerateError(f"unknown scheduler {self.scheduler!r}; use one of: {DEFAULT_SCHEDULER}, "
                                f"{', '.join(SCHEDULERS)}")
        if self.device not in DEVICES:
            raise GenerateError(f"device must be one of {DEVICES}, got {self.device!r}")
        if self.dtype not in DTYPES:
            raise GenerateError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        for name in ("height", "width"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 8 or value % 8:
                raise GenerateError(f"{name} must be a multiple of 8 pixels (the VAE's scale; mp4 needs even sizes), "
                                    f"got {value!r}")
        for name in ("num_frames", "num_inference_steps", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise GenerateError(f"{name} must be an integer >= 1, got {value!r}")
        if not (math.isfinite(self.fps) and self.fps > 0):
            raise GenerateError(f"fps must be > 0 frames per second, got {self.fps!r}")
        if not (math.isfinite(self.guidance_scale) and self.guidance_scale >= 0):
            raise GenerateError(f"guidance_scale must be >= 0 (1 = no guidance), got {self.guidance_scale!r}")
        if self.cpu_offload and self.device != "cuda":
            raise GenerateError("cpu_offload moves components between the GPU and the CPU: it needs device cuda")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# ------------------------------------------------------------------------------------------------ loading
def torch_dtype(device: str, dtype: str = "auto"):
    """``auto`` -> fp16 on CUDA (what ModelScope ships), fp32 on CPU (fp16 convolutions are slow or missing there)."""
    import torch

    if dtype == "auto":
        return torch.float16 if device.startswith("cuda") else torch.float32
    return {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[dtype]


def load_diffusion_pipeline(model: str, device: str = "cuda", dtype: str = "auto", variant: str | None = None,
                  cpu_offload: bool = False, vae_slicing: bool = False):
    """``DiffusionPipeline.from_pretrained(model)`` in ``dtype`` on ``device``, with the memory options applied."""
    import torch
    from diffusers import DiffusionPipeline

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise GenerateError("device cuda but torch sees no CUDA GPU on this worker; pass --device cpu to generate "
                            "on the CPU (slow), or run on a machine with a GPU")
    local = Path(model).expanduser()
    source = str(local) if local.exists() else model
    try:
        with _quiet_loading():
            pipe = DiffusionPipeline.from_pretrained(source, dtype=torch_dtype(device, dtype), variant=variant)
    except (OSError, ValueError) as error:
        where = f"local folder {local}" if local.exists() else f"hub id {model!r} (or its cache; HF_HUB_OFFLINE=1 "\
            f"uses the cache only; or pass a local folder)"
        raise GenerateError(f"cannot load a diffusers pipeline from {where}: {error}") from error
    if not hasattr(pipe, "unet") and not hasattr(pipe, "transformer"):
        raise GenerateError(f"{model!r} loads as {type(pipe).__name__}, which is not a text-to-video pipeline")
    pipe.set_progress_bar_config(disable=True)
    if cpu_offload:
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.to(device)
    if vae_slicing:
        pipe.vae.enable_slicing()
    pipe.curate_default_scheduler = pipe.scheduler  # what "default" switches back to
    return pipe


@contextlib.contextmanager
def _quiet_loading():
    """No per-component progress bars or deprecation notices from diffusers/transformers while loading (they
    would print once per worker into the user's terminal); errors still raise."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    levels = diffusers_logging.get_verbosity(), transformers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()
    transformers_logging.set_verbosity_error()
    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        diffusers_logging.set_verbosity(levels[0])
        transformers_logging.set_verbosity(levels[1])
        diffusers_logging.enable_progress_bar()
        transformers_logging.enable_progress_bar()


_LOADED: dict[tuple, Any] = {}  # per worker process: the one pipeline loaded, by (model, device, dtype, ...)


def cached_pipeline(settings: GenerationSettings, device: str):
    """The process's pipeline for these settings: loaded on first use, reused by every later task of the worker.
    Another model (or device, dtype, memory option) frees the previous one first."""
    import gc

    key = (settings.model, device, settings.dtype, settings.variant, settings.cpu_offload, settings.vae_slicing)
    if key not in _LOADED:
        _LOADED.clear()
        gc.collect()
        _LOADED[key] = load_diffusion_pipeline(settings.model, device, settings.dtype, settings.variant,
                                               settings.cpu_offload, settings.vae_slicing)
    return _LOADED[key]


def set_scheduler(pipe, name: str) -> None:
    """Put the sampler ``name`` on ``pipe``, built from the model's own scheduler config."""
    import diffusers

    default = getattr(pipe, "curate_default_scheduler", pipe.scheduler)
    if name == DEFAULT_SCHEDULER:
        pipe.scheduler = default
        return
    if name not in SCHEDULERS:
        raise GenerateError(f"unknown scheduler {name!r}; use one of: {DEFAULT_SCHEDULER}, {', '.join(SCHEDULERS)}")
    spec = SCHEDULERS[name]
    pipe.scheduler = getattr(diffusers, spec.class_name).from_config(default.config, **spec.config)


# ---------------------------------------------------------------------------------------------- generating
def generate_frames(
    pipe, prompts: Sequence[str], seeds: Sequence[int], settings: GenerationSettings
) -> list[np.ndarray]:
    """One video per prompt, as ``[num_frames, height, width, 3]`` uint8 RGB arrays, prompt ``i`` seeded ``seeds[i]``.

    The prompts go through the pipeline in one batched call on a GPU, one call each on a CPU and with noise-drawing
    samplers (see the module docstring); the scheduler named in ``settings`` is put on ``pipe`` first.
    """
    import torch

    # 1. check inputs
    if len(prompts) != len(seeds):
        raise ValueError(f"one seed per prompt: got {len(prompts)} prompts and {len(seeds)} seeds")
    set_scheduler(pipe, settings.scheduler)
    one_by_one = _draws_noise(settings.scheduler) or settings.device == "cpu"
    calls = [[i] for i in range(len(prompts))] if one_by_one else [list(range(len(prompts)))]

    # 2. run the pipeline, one seeded CPU generator per prompt
    videos: list[np.ndarray] = []
    for call in calls:
        generators = [torch.Generator("cpu").manual_seed(int(seeds[i])) for i in call]
        output = pipe(
            prompt=[prompts[i] for i in call],
            negative_prompt=[settings.negative_prompt] * len(call) if settings.negative_prompt else None,
            num_frames=settings.num_frames,
            height=settings.height,
            width=settings.width,
            num_inference_steps=settings.num_inference_steps,
            guidance_scale=settings.guidance_scale,
            generator=generators,
            output_type="np",
        )
        # 3. float [0, 1] -> uint8, one [F, H, W, 3] array per prompt
        frames = np.asarray(output.frames)
        videos += [to_uint8(frames[j]) for j in range(len(call))]
    return videos


def _draws_noise(name: str) -> bool:
    return name in SCHEDULERS and SCHEDULERS[name].draws_noise


def to_uint8(frames: np.ndarray) -> np.ndarray:
    """Float frames in [0, 1] -> uint8 (rounded, clipped)."""
    return np.clip(np.rint(np.asarray(frames, dtype=np.float32) * 255.0), 0, 255).astype(np.uint8)


def frames_digest(frames: np.ndarray) -> str:
    """SHA-256 of the raw uint8 frames (before encoding): equal digests = identical videos."""
    return hashlib.sha256(np.ascontiguousarray(frames).tobytes()).hexdigest()


# ----------------------------------------------------------------------------------------------- writing
def write_mp4(frames: np.ndarray, path: str | os.PathLike, fps: float, crf: int = 18) -> None:
    """Encode ``[F, H, W, 3]`` uint8 RGB frames as H.264 (libx264, yuv420p) mp4, written to a temporary name and
    renamed, so a killed task never leaves a truncated file under the final name."""
    import uuid

    import av

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be [F, H, W, 3] uint8, got {frames.dtype} {frames.shape}")
    height, width = frames.shape[1:3]
    if height % 2 or width % 2:
        raise ValueError(f"yuv420p mp4 needs even sizes, got {width}x{height}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with av.open(str(tmp), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": str(crf), "preset": "medium"}
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    os.replace(tmp, path)
