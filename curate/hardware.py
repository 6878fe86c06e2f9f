"""What the hardware can do fast, and the one rule that turns it into precision choices.

    >>> from curate import hardware
    >>> hardware.cpu().describe()              # e.g. 'AMD EPYC, 2 cores (avx2, no avx512f, no vnni, no avx512_bf16, no amx)'
    >>> hardware.fast_dtype("cpu")             # 'bf16' on a CPU with native bf16 instructions, else 'fp32'
    >>> hardware.fast_dtype("cuda")            # 'bf16' from compute capability 8.0, 'fp16' from 7.0, else 'fp32'

The rule, used by every choice in curate whose speed depends on the hardware (``pick_dtype`` for the CLIP,
caption and summary models; the OCR stage's ``detector_bf16: auto`` and ``detector_int8: auto``):

- **CPU**: bf16 when the CPU executes bf16 arithmetic natively: x86 ``avx512_bf16`` or ``amx_bf16`` (Intel Cooper
  Lake, Sapphire Rapids and later; AMD Zen 4 and later), Arm's BF16 extension (flag ``bf16``: Neoverse V1/N2,
  Graviton 3). Otherwise fp32: without those instructions PyTorch emulates bf16, and it is slower than fp32, not
  faster (measured for CRAFT and CLIP: ``benchmarks/README.md``).
- **CPU, int8** (the PP-OCR detector, ``curate.scores.ocr_int8``): int8 when the CPU has int8 dot products: x86
  ``avx512_vnni``, ``avx_vnni`` or ``amx_int8`` (Intel Cascade Lake, Alder Lake and later; AMD Zen 4 and later),
  Arm's ``asimddp``. Otherwise fp32.
- **CUDA**: bf16 from compute capability 8.0 (Ampere and later: bf16 tensor cores), fp16 from 7.0 (Volta,
  Turing: fp16 tensor cores), fp32 below (Pascal and older run fp16 at a fraction of fp32's rate, or lack it).

Where the facts come from: the CPU model and flags from ``/proc/cpuinfo`` (Linux, x86 and Arm); elsewhere from
``torch.backends.cpu.get_cpu_capability()`` (``AVX2``, ``AVX512``: no bf16 information, so fp32). The CUDA
capability from ``torch.cuda.get_device_capability``.

Faking them (tests, or to see what curate would choose on another machine), read on every call:

- ``CURATE_CPU_FLAGS="avx2 avx512f avx512_bf16"``: these flags instead of the CPU's (spaces or commas);
- ``CURATE_CPU_MODEL="Intel Xeon Platinum 8480+"``: this model name;
- ``CURATE_CUDA_CAPABILITY="8.0"``: this compute capability for every CUDA device (it does not make a GPU
  appear: whether CUDA is used is still decided by ``torch.cuda.is_available()``).
"""

from __future__ import annotations

import functools
import os
import platform
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

__all__ = [
    "BF16_FLAGS",
    "INT8_FLAGS",
    "FAKE_CPU_FLAGS",
    "FAKE_CPU_MODEL",
    "FAKE_CUDA_CAPABILITY",
    "Cpu",
    "cpu",
    "cuda_capability",
    "fast_dtype",
    "worker_memory",
]

FAKE_CPU_FLAGS = "CURATE_CPU_FLAGS"
FAKE_CPU_MODEL = "CURATE_CPU_MODEL"
FAKE_CUDA_CAPABILITY = "CURATE_CUDA_CAPABILITY"
CPUINFO = Path("/proc/cpuinfo")

# Flags (as /proc/cpuinfo spells them) of native bf16 arithmetic: x86 AVX-512 BF16, x86 AMX BF16, Arm BF16.
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})
# and of int8 dot products (the int8 PP-OCR detector: curate.scores.ocr_int8): x86 AVX-512 VNNI, AVX-VNNI, AMX-INT8;
# Arm's dot product extension
INT8_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8", "asimddp"})
# The flags a speed figure should be read with: shown by Cpu.describe() as present or absent.
X86_SPEED_FLAGS = ("avx2", "avx512f", "vnni", "avx512_bf16", "amx")
ARM_SPEED_FLAGS = ("asimd", "asimddp", "sve", "bf16")
# Compute capabilities from which CUDA runs bf16 / fp16 fast (tensor cores).
CUDA_BF16_FROM = (8, 0)
CUDA_FP16_FROM = (7, 0)

Dtype = Literal["bf16", "fp16", "fp32"]


@dataclass(frozen=True)
class Cpu:
    """The CPU this process runs on: ``model`` name, instruction-set ``flags`` (lower case, as /proc/cpuinfo writes
    them), logical ``cores``, and ``source``: where the flags came from (``/proc/cpuinfo``, ``torch``, or the
    ``CURATE_CPU_FLAGS`` variable)."""

    model: str
    flags: frozenset[str] = field(repr=False)
    cores: int
    arch: str
    source: str

    @property
    def native_bf16(self) -> bool:
        """True when the CPU has bf16 arithmetic instructions (see the module docstring)."""
        return bool(self.flags & BF16_FLAGS)

    @property
    def native_int8(self) -> bool:
        """True when the CPU has int8 dot-product instructions (``INT8_FLAGS``)."""
        return bool(self.flags & INT8_FLAGS)

    def describe(self) -> str:
        """Model, cores and the flags that decide speed, present or not: the line to print next to a speed figure."""
        names = ARM_SPEED_FLAGS if self.arch in ("aarch64", "arm64") else X86_SPEED_FLAGS
        shown = [name if self._has(name) else f"no {name}" for name in names]
        return f"{self.model}, {self.cores} cores ({', '.join(shown)})"

    def _has(self, name: str) -> bool:
        if name == "amx":  # amx_tile, amx_bf16, amx_int8, amx_fp16: any of them
            return any(flag.startswith("amx") for flag in self.flags)
        if name == "vnni":  # avx512_vnni or avx_vnni
            return bool(self.flags & {"avx512_vnni", "avx_vnni"})
        return name in self.flags


def cpu() -> Cpu:
    """The CPU's model and flags (``/proc/cpuinfo``, else torch), with ``CURATE_CPU_*`` overrides applied."""
    model, flags, source = _detected_cpu()
    if os.environ.get(FAKE_CPU_FLAGS) is not None:
        flags, source = _parse_flags(os.environ[FAKE_CPU_FLAGS]), FAKE_CPU_FLAGS
    model = os.environ.get(FAKE_CPU_MODEL) or model
    return Cpu(model=model, flags=flags, cores=os.cpu_count() or 1, arch=platform.machine().lower(), source=source)


@functools.cache
def _detected_cpu() -> tuple[str, frozenset[str], str]:
    """(model, flags, source) of this machine's CPU; read once per process."""
    try:
        text = CPUINFO.read_text()
    except OSError:
        text = ""
    if text:
        model, flags = _parse_cpuinfo(text)
        if flags:
            return model or platform.processor() or platform.machine(), flags, str(CPUINFO)
    import torch  # no /proc/cpuinfo (macOS, Windows): the instruction set PyTorch's kernels were picked for

    capability = torch.backends.cpu.get_cpu_capability()  # "DEFAULT", "AVX2", "AVX512", "ZVECTOR", ...
    flags = {"AVX2": {"avx2"}, "AVX512": {"avx2", "avx512f"}}.get(capability, set())
    return platform.processor() or platform.machine(), frozenset(flags), f"torch ({capability})"


def _parse_cpuinfo(text: str) -> tuple[str, frozenset[str]]:
    """Model name and flags of the first processor in a /proc/cpuinfo text (x86: ``flags``, Arm: ``Features``)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break  # end of the first processor's block
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip().lower(), value.strip())
    model = fields.get("model name") or fields.get("hardware") or fields.get("cpu model") or ""
    flags = fields.get("flags") or fields.get("features") or ""
    return model, _parse_flags(flags)


def _parse_flags(text: str) -> frozenset[str]:
    return frozenset(flag.lower() for flag in re.split(r"[\s,]+", text) if flag)


def cuda_capability(device: int = 0) -> tuple[int, int] | None:
    """Compute capability (major, minor) of CUDA device ``device``; None without CUDA. ``CURATE_CUDA_CAPABILITY``
    overrides it (``"8.0"``; ``"none"`` = no capability)."""
    fake = os.environ.get(FAKE_CUDA_CAPABILITY)
    if fake is not None:
        if fake.strip().lower() in ("", "none"):
            return None
        match = re.fullmatch(r"\s*(\d+)\.(\d+)\s*", fake)
        if not match:
            raise ValueError(f"{FAKE_CUDA_CAPABILITY}={fake!r}: write MAJOR.MINOR, e.g. 8.0, or none")
        return int(match[1]), int(match[2])
    import torch

    if not torch.cuda.is_available():
        return None
    return tuple(torch.cuda.get_device_capability(device))


def fast_dtype(device: str = "cpu") -> Dtype:
    """The rule: the fastest precision worth running models in on ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:1"``
    or a ``torch.device``; fp32 for any other kind, e.g. ``"mps"``). See the module docstring for why."""
    kind, _, index = str(device).partition(":")
    if kind == "cuda":
        capability = cuda_capability(int(index or 0))
        if capability is None:
            return "fp32"
        if capability >= CUDA_BF16_FROM:
            return "bf16"
        return "fp16" if capability >= CUDA_FP16_FROM else "fp32"
    if kind == "cpu":
        return "bf16" if cpu().native_bf16 else "fp32"
    return "fp32"


def worker_memory() -> int:
    """Bytes of memory one worker may use: the memory limit of the Dask worker this runs in, else (no worker, or a
    worker without a limit) the machine's memory shared among its cores, as Dask's ``memory_limit: auto`` shares it."""
    try:
        from distributed import get_worker

        limit = get_worker().memory_manager.memory_limit
        if limit:
            return int(limit)
    except (ImportError, ValueError, AttributeError):  # not in a worker (ValueError), or no memory manager
        pass
    import psutil

    return int(psutil.virtual_memory().total // max(1, os.cpu_count() or 1))
