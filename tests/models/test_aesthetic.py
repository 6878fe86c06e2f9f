"""The aesthetic predictor: the reference MLP by hand, every way to name its weights, refusals that say why."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from huggingface_hub import constants

from curate.models.aesthetic import DEFAULT_PREDICTOR, AestheticPredictor, predictor_source
from curate.models.clip import frame_mean
from curate.models.loading import ModelUnavailable
from tests.models.tiny import save_tiny_aesthetic_predictor


def mlp_by_hand(path, embeddings: np.ndarray) -> np.ndarray:
    """The reference's forward pass in NumPy: five affine layers, dropout off, no activation."""
    state = torch.load(path, weights_only=True)
    x = embeddings.astype(np.float64)
    for layer in (0, 2, 4, 6, 7):
        x = x @ state[f"layers.{layer}.weight"].double().numpy().T + state[f"layers.{layer}.bias"].double().numpy()
    return x[:, 0]


def unit_rows(n: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, 768)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return save_tiny_aesthetic_predictor(tmp_path_factory.mktemp("aesthetic") / "sac+logos+ava1-l14-linearMSE.pth")


def test_score_is_the_reference_mlp_applied_by_hand(weights):
    predictor = AestheticPredictor.load(str(weights), device="cpu")
    embeddings = unit_rows(6)
    scores = predictor.score(embeddings)
    assert scores.dtype == np.float64 and scores.shape == (6,) and predictor.input_size == 768
    np.testing.assert_allclose(scores, mlp_by_hand(weights, embeddings), rtol=1e-5, atol=1e-5)
    assert not predictor.network.training  # dropout off: the same input always scores the same
    np.testing.assert_array_equal(predictor.score(embeddings), scores)


def test_the_mean_of_frame_scores_is_the_score_of_the_mean_unit_embedding(weights):
    predictor = AestheticPredictor.load(str(weights), device="cpu")
    frames = unit_rows(3, seed=1) * np.array([[1.0], [2.0], [0.5]], dtype=np.float32)  # any scale: re-normalised
    per_frame = predictor.score(frames / np.linalg.norm(frames, axis=1, keepdims=True))
    assert predictor.score(frame_mean(frames)[None])[0] == pytest.approx(per_frame.mean(), abs=1e-5)


def test_file_folder_safetensors_and_a_cached_hub_repo_load_the_same_weights(weights, tmp_path, monkeypatch):
    expected = AestheticPredictor.load(str(weights), device="cpu").score(unit_rows(2))
    folder = tmp_path / "folder"
    save_tiny_aesthetic_predictor(folder / "model.safetensors")
    commit = "0" * 40
    repo = tmp_path / "hub" / f"models--{DEFAULT_PREDICTOR.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    save_tiny_aesthetic_predictor(repo / "snapshots" / commit / "model.safetensors")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for ref in (str(folder), str(folder / "model.safetensors"), DEFAULT_PREDICTOR):
        assert predictor_source(ref).ref == ref
        np.testing.assert_allclose(AestheticPredictor.load(ref, device="cpu").score(unit_rows(2)), expected, atol=1e-6)


def test_missing_weights_say_where_they_were_looked_for(tmp_path, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailable, match="HF_HUB_OFFLINE") as error:
        predictor_source(DEFAULT_PREDICTOR)
    assert "model.safetensors or sac+logos+ava1-l14-linearMSE.pth" in str(error.value)
    with pytest.raises(ModelUnavailable, match="does not exist"):
        AestheticPredictor.load(str(tmp_path / "nowhere.pth"))
    (tmp_path / "empty-folder").mkdir()
    with pytest.raises(ModelUnavailable, match="lacks model.safetensors or sac\\+logos"):
        predictor_source(str(tmp_path / "empty-folder"))


def test_other_networks_are_refused_with_the_reason(weights, tmp_path):
    relu = torch.nn.Sequential(torch.nn.Linear(768, 1024), torch.nn.ReLU(), torch.nn.Dropout(0.2),
                               torch.nn.Linear(1024, 1))  # keys layers.0 and layers.3: not the linear reference
    torch.save({f"layers.{k}": v for k, v in relu.state_dict().items()}, tmp_path / "relu.pth")
    with pytest.raises(ValueError, match="Variants with activations"):
        AestheticPredictor.load(str(tmp_path / "relu.pth"))
    state = torch.load(weights, weights_only=True)
    state["layers.2.weight"] = torch.zeros(64, 1024)
    torch.save(state, tmp_path / "narrow.pth")
    with pytest.raises(ValueError, match="layer shapes differ"):
        AestheticPredictor.load(str(tmp_path / "narrow.pth"))
    predictor = AestheticPredictor.load(str(weights), device="cpu")
    with pytest.raises(ValueError, match=r"reads \[N, 768\] embeddings .* got shape \(2, 512\)"):
        predictor.score(np.zeros((2, 512), np.float32))
