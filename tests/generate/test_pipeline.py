"""Loading, seeding, samplers and mp4 writing, on the tiny random pipeline loaded through from_pretrained."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from curate.generate.pipeline import (
    SCHEDULERS,
    GenerateError,
    GenerationSettings,
    frames_digest,
    generate_frames,
    load_diffusion_pipeline,
    set_scheduler,
    write_mp4,
)
from curate.video.frames import read_frames

TINY = dict(num_frames=4, fps=4.0, height=32, width=32, num_inference_steps=2, device="cpu")


@pytest.fixture(scope="module")
def pipe(tiny_t2v):
    return load_diffusion_pipeline(str(tiny_t2v), device="cpu")


@pytest.fixture(scope="module")
def settings(tiny_t2v):
    return GenerationSettings(model=str(tiny_t2v), **TINY)


def test_loads_through_diffusion_pipeline_in_fp32_on_cpu(pipe):
    import torch
    from diffusers import TextToVideoSDPipeline

    assert isinstance(pipe, TextToVideoSDPipeline)
    assert pipe.unet.dtype == torch.float32 and pipe.device.type == "cpu"


@pytest.mark.slow
def test_same_seed_same_frames_different_seed_different_frames(pipe, settings):
    a = generate_frames(pipe, ["a dog", "a cat"], [0, 1], settings)
    b = generate_frames(pipe, ["a dog", "a cat"], [0, 1], settings)
    c = generate_frames(pipe, ["a dog", "a cat"], [7, 1], settings)
    assert [v.shape for v in a] == [(4, 32, 32, 3)] * 2 and a[0].dtype == np.uint8
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    np.testing.assert_array_equal(a[1], c[1])  # a prompt's video depends on its own seed only
    assert not np.array_equal(a[0], a[1])


@pytest.mark.slow
def test_on_cpu_a_prompt_gives_the_same_frames_alone_and_in_a_batch(pipe, settings):
    """A batched call changes the matrix kernels' blocking (and the last bits) on AVX-512 CPUs: on a CPU each prompt
    is its own call, so a prompt's frames do not depend on the batch it was in (as on a relaunch with --first)."""
    batch = generate_frames(pipe, ["a dog", "a cat", "a bike"], [0, 1, 2], settings)
    alone = generate_frames(pipe, ["a cat"], [1], settings)
    np.testing.assert_array_equal(batch[1], alone[0])


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_every_scheduler_name_builds_from_the_model_config(pipe, name):
    set_scheduler(pipe, name)
    assert type(pipe.scheduler).__name__ == SCHEDULERS[name].class_name
    set_scheduler(pipe, "default")
    assert type(pipe.scheduler).__name__ == "DDIMScheduler"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ddpm", "euler_a", "dpm++"])
def test_samplers_are_seeded_per_prompt_in_a_batch(pipe, settings, name):
    """ddpm and euler_a draw noise at every step: still reproducible, and a batch of 2 works (one call each)."""
    chosen = dataclasses.replace(settings, scheduler=name)
    a = generate_frames(pipe, ["a dog", "a cat"], [3, 4], chosen)
    b = generate_frames(pipe, ["a dog", "a cat"], [3, 4], chosen)
    assert frames_digest(a[0]) == frames_digest(b[0]) and frames_digest(a[1]) == frames_digest(b[1])
    assert frames_digest(a[0]) != frames_digest(generate_frames(pipe, ["a dog"], [3], settings)[0])  # not DDIM


def test_bad_settings_say_what_is_allowed(tiny_t2v):
    with pytest.raises(GenerateError, match=r"unknown scheduler 'dpm'.*ddim, ddpm, dpm\+\+"):
        GenerationSettings(model="m", scheduler="dpm")
    with pytest.raises(GenerateError, match="height must be a multiple of 8"):
        GenerationSettings(model="m", height=30)
    with pytest.raises(GenerateError, match="cpu_offload .* needs device cuda"):
        GenerationSettings(model="m", device="cpu", cpu_offload=True)
    with pytest.raises(GenerateError, match="--model"):
        GenerationSettings(model="")
    with pytest.raises(GenerateError, match="num_inference_steps must be an integer >= 1"):
        GenerationSettings(model="m", num_inference_steps=0)


def test_missing_model_folder_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(GenerateError, match="cannot load a diffusers pipeline from local folder"):
        load_diffusion_pipeline(str(tmp_path / "empty"), device="cpu")


def test_cuda_without_a_gpu_is_refused(tiny_t2v):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(GenerateError, match="--device cpu"):
        load_diffusion_pipeline(str(tiny_t2v), device="cuda")


def test_mp4_round_trip(tmp_path):
    y, x = np.mgrid[0:32, 0:48]
    base = np.stack([x * 5, y * 7, np.full_like(x, 128)], axis=-1).astype(np.uint8)  # smooth ramps
    frames = np.repeat(base[None], 6, axis=0)
    frames[3:] = 255 - frames[3:]
    path = tmp_path / "v.mp4"
    write_mp4(frames, path, fps=8)
    decoded = read_frames(path, [i / 8 for i in range(6)])
    assert [f.image.shape for f in decoded] == [(32, 48, 3)] * 6
    assert [round(f.time_s * 8) for f in decoded] == list(range(6))
    assert np.abs(decoded[0].image.astype(int) - frames[0]).mean() < 4  # lossy, but the same picture
    assert np.abs(decoded[4].image.astype(int) - frames[4]).mean() < 4
    assert not list(tmp_path.glob(".*tmp"))  # written under a temporary name, then renamed
    with pytest.raises(ValueError, match="even sizes"):
        write_mp4(np.zeros((2, 31, 32, 3), np.uint8), tmp_path / "odd.mp4", fps=8)


@pytest.mark.gpu
def test_cuda_fp16_generation(tiny_t2v):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    settings = GenerationSettings(model=str(tiny_t2v), **dict(TINY, device="cuda"))
    pipe = load_diffusion_pipeline(str(tiny_t2v), device="cuda")
    assert pipe.unet.dtype == torch.float16
    a = generate_frames(pipe, ["a dog"], [0], settings)
    b = generate_frames(pipe, ["a dog"], [0], settings)
    assert a[0].shape == (4, 32, 32, 3)
    assert np.abs(a[0].astype(int) - b[0].astype(int)).max() <= 1  # same seed; GPU kernels may differ by a level
