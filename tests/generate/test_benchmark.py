"""benchmarks/generate_throughput.py runs end to end on a CPU with --tiny (the CUDA path needs a GPU)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import PROJECT_ROOT


@pytest.mark.slow
def test_tiny_benchmark_reports_a_row():
    result = subprocess.run([sys.executable, "benchmarks/generate_throughput.py", "--tiny", "--videos", "2",
                             "--device", "cpu"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    row = [line for line in result.stdout.splitlines() if line.startswith("| 32x32 |")]
    assert len(row) == 1 and "n/a (CPU)" in row[0]
    seconds = float(row[0].split("|")[6])
    assert seconds > 0


@pytest.mark.slow
def test_full_size_model_refuses_a_cpu():
    result = subprocess.run([sys.executable, "benchmarks/generate_throughput.py", "--device", "cpu"], cwd=PROJECT_ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "use --tiny on a CPU" in result.stderr
