"""Captioners on tiny random-weight CoCa, BLIP and SmolVLM2 models loaded through the real loaders.

Random weights caption nonsense: these tests check one string per input, determinism and plumbing only.
"""

from __future__ import annotations

import numpy as np
import pytest

from curate.models.captioning import (
    ImageCaptioner,
    VideoCaptioner,
    clean_caption,
    coca_greedy,
    middle_frame,
    sample_indices,
)
from curate.models.clip import frames_to_batch
from curate.models.loading import ModelUnavailable
from tests.models.tiny import save_tiny_blip, save_tiny_clip, save_tiny_coca, save_tiny_smolvlm


@pytest.fixture(scope="module")
def clips():
    rng = np.random.default_rng(0)
    return [[rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(n)] for n in (3, 12, 1)]


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_captioners")
    return {
        "coca": save_tiny_coca(root / "coca"),
        "blip": save_tiny_blip(root / "blip"),
        "smolvlm": save_tiny_smolvlm(root / "smolvlm"),
        "clip": save_tiny_clip(root / "clip"),
    }


def test_sample_indices_spread_evenly():
    assert sample_indices(3, 8) == [0, 1, 2]
    assert sample_indices(16, 4) == [2, 6, 10, 14]
    assert sample_indices(100, 1) == [50]
    with pytest.raises(ValueError, match="no frames"):
        sample_indices(0, 4)


def test_middle_frame_and_clean_caption():
    assert middle_frame([1, 2, 3]) == 2
    assert clean_caption("  a man riding a bike .  \n") == "a man riding a bike."
    assert clean_caption("a dog , a cat !") == "a dog, a cat!"


@pytest.mark.parametrize(
    ("name", "backend"),
    [("coca", "open_clip"), ("blip", "transformers")],
)
def test_image_captioner_gives_one_string_per_frame_deterministically(tiny_dirs, clips, name, backend):
    frames = [middle_frame(clip) for clip in clips]
    captioner = ImageCaptioner.load(str(tiny_dirs[name]), backend=backend, device="cpu", max_new_tokens=6)
    first = captioner.caption(frames)
    assert len(first) == len(frames) and all(isinstance(text, str) for text in first)
    assert captioner.caption(frames) == first
    assert captioner.caption([]) == []
    again = ImageCaptioner.load(str(tiny_dirs[name]), backend=backend, device="cpu", max_new_tokens=6)
    assert again.caption(frames) == first


def test_coca_greedy_decoding_stops_at_max_new_tokens(tiny_dirs, clips):
    import open_clip

    captioner = ImageCaptioner.load(str(tiny_dirs["coca"]), device="cpu", dtype="fp32", max_new_tokens=4)
    preprocess_cfg = open_clip.get_model_preprocess_cfg(captioner.model)
    pixels = frames_to_batch([middle_frame(clip) for clip in clips], preprocess_cfg, captioner.device)
    tokens = coca_greedy(captioner.model, pixels, 4, captioner.processor)
    assert tokens.shape[0] == len(clips) and 2 <= tokens.shape[1] <= 5
    assert (tokens[:, 0] == captioner.processor.sot_token_id).all()


def test_video_captioner_gives_one_string_per_clip_deterministically(tiny_dirs, clips):
    pytest.importorskip("num2words", reason="SmolVLM's processor needs num2words (pip install num2words)")
    captioner = VideoCaptioner.load(str(tiny_dirs["smolvlm"]), device="cpu", num_frames=4, max_new_tokens=6)
    first = captioner.caption(clips, fps=[24.0, 30.0, 25.0])
    assert len(first) == len(clips) and all(isinstance(text, str) for text in first)
    assert captioner.caption(clips, fps=[24.0, 30.0, 25.0]) == first
    assert len(captioner.caption(clips[:1])) == 1  # fps is optional
    assert captioner.caption([]) == []


def test_wrong_models_are_refused_with_a_reason(tiny_dirs):
    with pytest.raises(ValueError, match="not a CoCa captioner"):
        ImageCaptioner.load(str(tiny_dirs["clip"]), device="cpu")
    with pytest.raises(ValueError, match="backend='blip'"):
        ImageCaptioner.load(str(tiny_dirs["blip"]), backend="blip", device="cpu")
    with pytest.raises(ValueError, match="no video processor"):
        VideoCaptioner.load(str(tiny_dirs["blip"]), device="cpu")
    with pytest.raises(ValueError, match="1..75"):
        ImageCaptioner.load(str(tiny_dirs["coca"]), device="cpu", max_new_tokens=200)


def test_missing_weights_raise_model_unavailable(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailable):
        VideoCaptioner.load(str(tmp_path / "absent"), device="cpu")
    with pytest.raises(ModelUnavailable, match="config.json"):
        ImageCaptioner.load(str(tmp_path), backend="transformers", device="cpu")
