"""CLIP embeddings and scores: the formulas by hand, the loader on a tiny random-weight open_clip model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from curate.models.clip import ClipModel, clip_embedding, clip_model_id, clip_score, frame_mean, frames_to_batch
from curate.models.loading import ModelUnavailable
from tests.models.tiny import TINY_CLIP_CFG, save_tiny_clip


@pytest.fixture(scope="module")
def tiny_clip_dir(tmp_path_factory):
    return save_tiny_clip(tmp_path_factory.mktemp("tiny_clip"))


@pytest.fixture(scope="module")
def tiny_clip(tiny_clip_dir):
    return ClipModel.load(pretrained=str(tiny_clip_dir), device="cpu", dtype="fp32")


@pytest.fixture(scope="module")
def frames():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(5)]


def test_clip_score_by_hand():
    text = np.array([1.0, 0.0, 0.0], dtype=np.float32)
    frames = np.array([[1.0, 0.0, 0.0], [0.6, 0.8, 0.0], [0.0, 0.0, 1.0]], dtype=np.float32)
    # cosines 1.0, 0.6, 0.0 -> mean 0.5333 -> 53.33
    assert clip_score(text, frames) == pytest.approx(100 * (1.0 + 0.6 + 0.0) / 3, abs=1e-4)
    assert clip_score(text, -frames) == 0.0  # negative mean cosine is clipped to 0
    assert clip_score(2 * text, 3 * frames) == pytest.approx(clip_score(text, frames), abs=1e-4)  # scale-free


def test_clip_score_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="clip_score needs"):
        clip_score(np.ones(3), np.ones((2, 4)))


def test_clip_embedding_is_the_normalised_mean():
    frames = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    np.testing.assert_allclose(clip_embedding(frames), [np.sqrt(0.5), np.sqrt(0.5)], atol=1e-6)
    assert clip_embedding(frames).dtype == np.float32
    np.testing.assert_allclose(frame_mean(3 * frames), [0.5, 0.5], atol=1e-6)  # the mean of the unit rows
    assert clip_model_id("ViT-L-14", "openai") == "ViT-L-14:openai"


def test_tiny_model_embeds_through_the_real_loader(tiny_clip, frames):
    images = tiny_clip.embed_images(frames, batch_size=2)
    texts = tiny_clip.embed_texts(["a dog", "a cat on a mat"])
    dim = TINY_CLIP_CFG["embed_dim"]
    assert images.shape == (5, dim) and texts.shape == (2, dim)
    assert images.dtype == np.float32 and texts.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(images, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)
    assert 0.0 <= clip_score(texts[0], images) <= 100.0


def test_embeddings_are_deterministic_and_batch_independent(tiny_clip_dir, tiny_clip, frames):
    again = ClipModel.load(pretrained=str(tiny_clip_dir), device="cpu", dtype="fp32")
    np.testing.assert_array_equal(tiny_clip.embed_images(frames), again.embed_images(frames))
    np.testing.assert_allclose(tiny_clip.embed_images(frames, batch_size=1), tiny_clip.embed_images(frames), atol=1e-5)


def test_tensor_preprocessing_matches_open_clip_transform(tiny_clip_dir, tiny_clip, frames):
    import open_clip
    from PIL import Image

    _, transform = open_clip.create_model_from_pretrained(f"local-dir:{tiny_clip_dir}")
    reference = torch.stack([transform(Image.fromarray(frame)) for frame in frames])
    ours = frames_to_batch(frames, tiny_clip.preprocess_cfg, torch.device("cpu"))
    assert ours.shape == reference.shape
    assert (ours - reference).abs().max() < 0.05  # within about one grey level after normalisation


def test_bf16_embeddings_stay_close_to_fp32(tiny_clip_dir, tiny_clip, frames):
    bf16 = ClipModel.load(pretrained=str(tiny_clip_dir), device="cpu", dtype="bf16")
    cosines = (bf16.embed_images(frames) * tiny_clip.embed_images(frames)).sum(axis=1)
    assert cosines.min() > 0.99


def test_checkpoint_file_loads_into_a_named_architecture(tmp_path, tiny_clip_dir, tiny_clip, frames):
    import open_clip

    (tmp_path / "curate-tiny-clip.json").write_text(json.dumps(TINY_CLIP_CFG))
    open_clip.add_model_config(tmp_path / "curate-tiny-clip.json")
    checkpoint = str(tiny_clip_dir / "open_clip_model.safetensors")
    loaded = ClipModel.load("curate-tiny-clip", pretrained=checkpoint, device="cpu", dtype="fp32")
    np.testing.assert_allclose(loaded.embed_images(frames), tiny_clip.embed_images(frames), atol=1e-4)


def test_rejects_non_rgb_frames(tiny_clip):
    with pytest.raises(ValueError, match="RGB uint8 HxWx3"):
        tiny_clip.embed_images([np.zeros((8, 8), dtype=np.uint8)])


def test_missing_weights_never_fall_back_to_random(tmp_path):
    with pytest.raises(ModelUnavailable, match="does not exist"):
        ClipModel.load(pretrained=str(tmp_path / "nope.safetensors"), device="cpu")
    with pytest.raises(ModelUnavailable, match="not an open_clip tag"):
        ClipModel.load("ViT-B-32", pretrained="no_such_tag", device="cpu")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelUnavailable, match="open_clip_config.json"):
        ClipModel.load(pretrained=str(tmp_path / "empty"), device="cpu")


@pytest.mark.slow
def test_real_default_weights_rank_the_right_caption_first():
    from curate.models.clip import DEFAULT_CLIP_MODEL, DEFAULT_CLIP_PRETRAINED, open_clip_source

    try:
        open_clip_source(DEFAULT_CLIP_MODEL, DEFAULT_CLIP_PRETRAINED)
    except ModelUnavailable as error:
        pytest.skip(f"real CLIP weights not available here: {error}")
    clip = ClipModel.load()
    red = np.zeros((224, 224, 3), dtype=np.uint8)
    red[..., 0] = 255
    texts = clip.embed_texts(["a plain red square", "a photo of a dog playing in the snow"])
    frames = clip.embed_images([red] * 2)
    assert clip_score(texts[0], frames) > clip_score(texts[1], frames)
