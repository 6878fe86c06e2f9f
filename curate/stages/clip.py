"""Deprecated: the CLIP stage is ``curate.stages.clip_score.ClipScore`` (step ``clip_score``); ``Clip`` and this module
remain for pipeline files written before the rename, with a warning.
"""

from __future__ import annotations

import warnings

from curate.stages.clip_score import ClipScore


def __getattr__(name: str):
    if name == "Clip":
        warnings.warn("curate.stages.clip.Clip is now curate.stages.clip_score.ClipScore (step clip_score): import "
                      "that instead", FutureWarning, stacklevel=2)
        return ClipScore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
