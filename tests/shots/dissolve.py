"""A real cross-dissolve for tests: two shots of the shared footage blended over a known span, encoded with PyAV.

    from tests.shots.dissolve import write_dissolve
    path, (first, last) = write_dissolve(tmp_path / "dissolve.mp4", video)   # video: the conftest fixture
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from tests.media import write_video

SIZE = (320, 180)
BEFORE, DISSOLVE, AFTER = 60, 30, 60  # frames of the first shot alone, blended, of the second shot alone


def _frames(path: Path, first: int, count: int) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(width=SIZE[0], height=SIZE[1], format="rgb24")
                  for i, f in enumerate(container.decode(video=0)) if first <= i < first + count]  # fmt: skip
    assert len(frames) == count
    return frames


def write_dissolve(path: Path, video) -> tuple[Path, tuple[int, int]]:
    """150 frames at 25 fps: a shot of moviepy_nature_montage.mp4 (its frames 220..309, one shot) dissolving
    into one of psd_issue-195-aspect-ratio.mp4 (its frames 175..264), blend weights (k + 1) / 31 for k = 0..29.
    Returns the file and the inclusive frame range of the blend, ``(60, 89)``."""
    a = _frames(video("moviepy_nature_montage.mp4"), 220, BEFORE + DISSOLVE)
    b = _frames(video("psd_issue-195-aspect-ratio.mp4"), 175, DISSOLVE + AFTER)
    blend = [
        np.round(a[BEFORE + k] * (1 - w) + b[k] * w).astype(np.uint8)
        for k, w in enumerate((np.arange(DISSOLVE) + 1) / (DISSOLVE + 1))
    ]
    write_video(path, a[:BEFORE] + blend + b[DISSOLVE:], fps=25)
    return path, (BEFORE, BEFORE + DISSOLVE - 1)
