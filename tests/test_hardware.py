"""The hardware rule: CPU flags and CUDA capability in, precision out; flags read from /proc/cpuinfo or faked."""

from __future__ import annotations

import pytest
import torch

from curate import hardware
from curate.hardware import cpu, cuda_capability, fast_dtype
from curate.models.loading import pick_dtype

XEON_SAPPHIRE_RAPIDS = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512bw avx512_bf16 avx512_fp16 amx_bf16 amx_tile amx_int8

processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz
flags\t\t: fpu sse2
"""
EPYC_AVX2 = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC
flags\t\t: fpu sse2 avx f16c avx2 fma sha_ni
"""
GRAVITON3 = """processor\t: 0
BogoMIPS\t: 2100.00
Features\t: fp asimd evtstrm aes sha1 sha2 crc32 atomics fphp asimdhp sve bf16 i8mm
CPU implementer\t: 0x41
"""


@pytest.fixture
def fake(monkeypatch):
    """fake(flags=..., model=..., capability=...): set the CURATE_* variables for this test only."""

    def set_(flags: str | None = None, model: str | None = None, capability: str | None = None) -> None:
        for name, value in ((hardware.FAKE_CPU_FLAGS, flags), (hardware.FAKE_CPU_MODEL, model),
                            (hardware.FAKE_CUDA_CAPABILITY, capability)):
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)

    return set_


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ("avx2 avx512f avx512_bf16", "bf16"),  # Cooper Lake, Zen 4
        ("avx2,avx512f,amx_tile,amx_bf16", "bf16"),  # Sapphire Rapids (commas allowed)
        ("asimd sve bf16", "bf16"),  # Arm with the BF16 extension (Graviton 3)
        ("avx2 fma f16c", "fp32"),  # AVX2 only: bf16 would be emulated
        ("avx2 avx512f avx512bw", "fp32"),  # AVX-512 without BF16 (Skylake-SP)
        ("", "fp32"),
    ],
)
def test_cpu_rule_with_faked_flags(fake, flags, expected):
    fake(flags=flags)
    assert cpu().source == hardware.FAKE_CPU_FLAGS
    assert fast_dtype("cpu") == expected
    assert pick_dtype("cpu", "auto") is {"bf16": torch.bfloat16, "fp32": torch.float32}[expected]
    assert pick_dtype("cpu", "fp32") is torch.float32  # an explicit choice is never overridden


@pytest.mark.parametrize(
    ("capability", "expected"),
    [("9.0", "bf16"), ("8.0", "bf16"), ("8.6", "bf16"), ("7.5", "fp16"), ("7.0", "fp16"), ("6.1", "fp32"),
     ("none", "fp32")],
)
def test_cuda_rule_with_faked_capability(fake, capability, expected):
    fake(flags="avx2 avx512_bf16", capability=capability)  # the CPU's flags do not matter on CUDA
    assert fast_dtype("cuda") == fast_dtype("cuda:1") == fast_dtype(torch.device("cuda")) == expected
    dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
    assert pick_dtype("cuda", "auto") is dtypes[expected]


def test_bad_faked_capability_says_how_to_write_it(fake):
    fake(capability="sm_80")
    with pytest.raises(ValueError, match=r"CURATE_CUDA_CAPABILITY='sm_80': write MAJOR.MINOR, e.g. 8.0"):
        cuda_capability()


def test_other_devices_get_fp32(fake):
    fake(flags="avx512_bf16")
    assert fast_dtype("mps") == "fp32"


@pytest.mark.parametrize(
    ("text", "model", "present", "absent", "native_bf16"),
    [
        (XEON_SAPPHIRE_RAPIDS, "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz", {"avx512_bf16", "amx_bf16"}, set(),
         True),
        (EPYC_AVX2, "AMD EPYC", {"avx2", "fma"}, {"avx512f"}, False),
        (GRAVITON3, "", {"asimd", "bf16", "sve"}, {"avx2"}, True),
    ],
)
def test_cpuinfo_parsing_takes_the_first_processor(text, model, present, absent, native_bf16):
    parsed_model, flags = hardware._parse_cpuinfo(text)
    assert parsed_model == model
    assert present <= flags and not absent & flags
    assert hardware.Cpu(model, flags, 2, "x86_64", "test").native_bf16 is native_bf16


def test_describe_names_the_model_and_the_flags_that_decide_speed(fake):
    fake(flags="avx2 avx512f avx512_vnni avx512_bf16 amx_tile", model="Intel Xeon Platinum 8480+")
    text = cpu().describe()
    assert text.startswith("Intel Xeon Platinum 8480+, ") and "avx512_bf16" in text and "no " not in text
    if cpu().arch in ("x86_64", "amd64"):
        fake(flags="avx2 fma", model="AMD EPYC")
        assert cpu().describe().endswith("(avx2, no avx512f, no vnni, no avx512_bf16, no amx)")


def test_real_cpu_agrees_with_torch(fake):
    """Without fakes, the flags come from this machine and match the kernels torch picked for it."""
    fake()
    found = cpu()
    assert found.source != hardware.FAKE_CPU_FLAGS and found.model and found.cores >= 1
    capability = torch.backends.cpu.get_cpu_capability()
    if capability.startswith("AVX512"):
        assert "avx512f" in found.flags
    if capability.startswith("AVX2"):
        assert "avx2" in found.flags
    assert fast_dtype("cpu") == ("bf16" if found.flags & hardware.BF16_FLAGS else "fp32")
