"""A grid of generation settings: ``--sweep guidance_scale=1,3,6,9 --sweep scheduler=ddim,ddpm`` -> 8 settings.

    >>> from curate.generate.sweep import parse_sweeps, grid, point_name
    >>> axes = parse_sweeps(["guidance_scale=1,9", "scheduler=ddim,ddpm"])
    >>> axes
    {'guidance_scale': [1.0, 9.0], 'scheduler': ['ddim', 'ddpm']}
    >>> [point_name(p) for p in grid(axes)]
    ['guidance_scale=1+scheduler=ddim', 'guidance_scale=1+scheduler=ddpm', 'guidance_scale=9+scheduler=ddim', ...]

Any parameter of ``GenerationSettings`` can be swept; values are converted to the parameter's type. Each point
of the grid is generated into ``GEN/<point_name>/`` (``run_sweep``), with the same prompts and seeds, so the
settings differ only by the swept parameters; ``curate evaluate GEN`` then compares them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import os
import re
from pathlib import Path
from typing import Any, Sequence

from curate.generate.pipeline import GenerateError, GenerationSettings

_NOT_SWEPT = ("model", "device")  # one model and one device per run: evaluate per model instead
_ALIASES = {"steps": "num_inference_steps"}  # the CLI's short flag


def sweepable() -> dict[str, str]:
    """Parameter name -> its type (as written in ``GenerationSettings``)."""
    return {f.name: str(f.type) for f in dataclasses.fields(GenerationSettings) if f.name not in _NOT_SWEPT}


def _convert(name: str, kind: str, text: str) -> Any:
    text = text.strip()
    try:
        if kind.startswith("int"):
            return int(text)
        if kind.startswith("float"):
            return float(text)
        if kind.startswith("bool"):
            if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(text)
            return text.lower() in ("true", "1", "yes")
    except ValueError:
        raise GenerateError(f"--sweep {name}: {text!r} is not a valid {kind.split(' ')[0]}") from None
    return None if text.lower() in ("none", "null") and "None" in kind else text


def parse_sweeps(specs: Sequence[str]) -> dict[str, list[Any]]:
    """``["NAME=V1,V2,..."]`` -> ``{NAME: [typed values]}``, in the order given."""
    allowed = sweepable()
    axes: dict[str, list[Any]] = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip().replace("-", "_")
        name = _ALIASES.get(name, name)
        if not sep or not values.strip():
            raise GenerateError(f"--sweep {spec!r}: write NAME=VALUE1,VALUE2,... (e.g. guidance_scale=1,3,6,9)")
        if name not in allowed:
            raise GenerateError(f"--sweep {name}: not a generation parameter; sweepable: {', '.join(allowed)}")
        if name in axes:
            raise GenerateError(f"--sweep {name} given twice: list all its values in one flag")
        parsed = [_convert(name, allowed[name], v) for v in values.split(",")]
        if len(set(map(str, parsed))) != len(parsed):
            raise GenerateError(f"--sweep {name}: a value is listed twice in {values!r}")
        axes[name] = parsed
    return axes


def grid(axes: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of the axes' values (the last axis varies fastest)."""
    names = list(axes)
    return [dict(zip(names, values)) for values in itertools.product(*(axes[n] for n in names))]


def point_name(point: dict[str, Any]) -> str:
    """The sub-folder of one grid point: ``guidance_scale=3+scheduler=ddim``.

    A value with characters other than letters, digits, ``.``, ``_`` and ``-`` (a negative prompt, ``dpm++``) has
    them replaced by ``_`` and a hash of the value appended: one folder level, inside the sweep folder, one name
    per value."""
    parts = []
    for key, value in point.items():
        text = f"{value:g}" if isinstance(value, float) else str(value)
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", text)[:40]
        if safe != text:
            safe += "-" + hashlib.sha256(text.encode()).hexdigest()[:8]
        parts.append(f"{key}={safe}")
    return "+".join(parts)


def run_sweep(source: str | os.PathLike, out: str | os.PathLike, base: GenerationSettings,
              axes: dict[str, list[Any]], client, **selection) -> list[Path]:
    """Generate every grid point into ``out/<point_name>`` (same prompts and seeds); return the folders.

    Points run one after the other on the same workers, so the pipeline loads once per worker for the whole grid.
    ``selection``: the prompt selection and progress keywords of ``generate_videos``.
    """
    from curate.generate.run import generate_videos

    points = grid(axes)
    settings = [dataclasses.replace(base, **point) for point in points]  # every point checked before any work
    folders = []
    for point, setting in zip(points, settings):
        folder = Path(out) / point_name(point)
        print(f"curate: sweep {len(folders) + 1}/{len(points)}: {point_name(point)}", flush=True)
        generate_videos(source, folder, setting, client, **selection)
        folders.append(folder)
    return folders
