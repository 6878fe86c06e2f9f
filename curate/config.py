"""Build a pipeline's steps from a YAML config: the pipeline file gives the order, the YAML gives the values.

    from curate.config import build_steps
    steps = build_steps("configs/offline.yaml", overrides=["split.min_clip_s=2"], inputs=["videos/"])

A config file::

    pipeline: offline            # pipelines/offline.py (a name), or a path to a .py file relative to this file
    stages:                      # one block per step; keys are the stage's constructor arguments
      split:
        min_clip_s: 1.0
      motion:
        max_error_fraction: 0.2  # the step's error budget (curate.runner.Step), in any step's block:
        min_errors_to_fail: 50   # it fails only when more than 20 % and at least 50 of its rows errored

A pipeline file (``pipelines/offline.py``) holds ``PIPELINE``, a list of ``(step_name, StageClass)``.
Unknown steps, unknown parameters and wrongly typed values are errors that name the key and what is allowed.
"""

from __future__ import annotations

import importlib.util
import inspect
import types
import typing
import warnings
from pathlib import Path
from typing import Any, Sequence

import yaml

from curate.runner import Step
from curate.stage import Stage

PROJECT_ROOT = Path(__file__).resolve().parents[1]


class ConfigError(ValueError):
    """A config that cannot be used as written; the message names the key and what is allowed."""


# ------------------------------------------------------------------------------------------- locating
def default_config() -> Path:
    """``configs/default.yaml`` of the current directory, else of the curate checkout."""
    for base in (Path.cwd(), PROJECT_ROOT):
        path = base / "configs" / "default.yaml"
        if path.is_file():
            return path
    raise ConfigError("no configs/default.yaml here or in the curate checkout: pass a CONFIG.yaml path")


def _pipeline_path(ref: str, config_file: Path) -> Path:
    if ref.endswith(".py"):
        path = (config_file.parent / ref).resolve()
        candidates = [path]
    else:
        candidates = [config_file.parent.parent / "pipelines" / f"{ref}.py", PROJECT_ROOT / "pipelines" / f"{ref}.py"]
    for path in candidates:
        if path.is_file():
            return path
    raise ConfigError(f"{config_file}: pipeline {ref!r} not found (looked at {', '.join(map(str, candidates))})")


def read_pipeline_file(path: Path) -> list[tuple[str, type[Stage]]]:
    """``PIPELINE`` of a pipeline file: a list of (step name, Stage subclass)."""
    spec = importlib.util.spec_from_file_location(f"curate_pipeline_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    pipeline = getattr(module, "PIPELINE", None)
    if not isinstance(pipeline, list) or not all(
        isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) and issubclass(p[1], Stage) for p in pipeline
    ):
        raise ConfigError(f"{path}: must define PIPELINE = [(step_name, StageClass), ...]")
    return pipeline


# ------------------------------------------------------------------------------------------- values
def parse_override(text: str) -> tuple[str, str, Any]:
    """``"split.min_clip_s=2"`` -> ("split", "min_clip_s", 2); the value is parsed as YAML."""
    key, sep, raw = text.partition("=")
    step, dot, param = key.strip().partition(".")
    if not sep or not dot or not step or not param:
        raise ConfigError(f"--set {text!r}: expected STEP.PARAM=VALUE, e.g. --set split.min_clip_s=2")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as e:
        raise ConfigError(f"--set {text!r}: the value is not valid YAML: {_yaml_problem(e)} (quote a text value, "
                          f"e.g. --set 'filter.rules=[\"motion_score >= 3\"]')") from None
    return step, param, value


def _describe(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def check_type(value: Any, annotation: Any, where: str) -> Any:
    """``value`` if it fits ``annotation`` (ints are accepted for floats, lists for tuples), else ConfigError."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any or annotation is inspect.Parameter.empty:
        return value
    if origin in (typing.Union, types.UnionType):
        errors = []
        for option in args:
            try:
                return check_type(value, option, where)
            except ConfigError as e:
                errors.append(e)
        raise ConfigError(f"{where}: {value!r} is not a {_describe(annotation)}")
    if origin is typing.Literal:
        if value in args:
            return value
        raise ConfigError(f"{where}: {value!r} is not allowed; allowed: {', '.join(map(repr, args))}")
    if annotation is type(None):
        if value is None:
            return None
        raise ConfigError(f"{where}: expected null")
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation in (int, float) and isinstance(value, bool):
        raise ConfigError(f"{where}: expected a {annotation.__name__}, got a boolean {value!r}")
    if origin in (list, tuple, Sequence) or annotation in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        inner = args[0] if args else Any
        return [check_type(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict or annotation is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return value
    if isinstance(annotation, type):
        if isinstance(value, annotation):
            return value
        raise ConfigError(f"{where}: expected a {annotation.__name__}, got {type(value).__name__} {value!r}")
    return value


def build_stage(step: str, cls: type[Stage], params: dict[str, Any]) -> Stage:
    """``cls(**params)`` after checking every name and type against the constructor's signature."""
    signature = inspect.signature(cls.__init__)
    hints = typing.get_type_hints(cls.__init__)
    allowed = [p for p in signature.parameters if p != "self"]
    checked = {}
    for key, value in params.items():
        if key not in allowed:
            raise ConfigError(f"{step}.{key}: unknown parameter of {cls.__name__}; allowed: {', '.join(allowed)} "
                              f"(and, in every step, its error budget: {', '.join(BUDGET_KEYS)})")
        checked[key] = check_type(value, hints.get(key, Any), f"{step}.{key}")
    try:
        return cls(**checked)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{step}: {e}") from e


def read_config(path: Path) -> dict[str, Any]:
    """The mapping a config file holds; a file that is missing, not text, not YAML or not a mapping is a
    ``ConfigError`` naming the file and what was found."""
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist" + (" (it is a folder)" if path.is_dir() else ""))
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not a YAML config (not UTF-8 text: byte {e.start}); give a .yaml file "
                          f"like configs/offline.yaml") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {_yaml_problem(e)}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a config is a mapping with 'pipeline:' and 'stages:' (like configs/offline.yaml); "
                          f"this file holds {_short(raw)}")
    return raw


def _yaml_problem(error: yaml.YAMLError) -> str:
    """A YAML error on one line: what is wrong and where."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return " ".join(f"{problem}{where}".split())


def _short(value: Any, limit: int = 60) -> str:
    text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def build_steps(
    config_file: str | Path | None = None,
    overrides: Sequence[str] = (),
    inputs: Sequence[str] | None = None,
) -> list[Step]:
    """The configured steps of ``config_file`` (default ``configs/default.yaml``) with ``--set`` overrides applied.

    ``inputs`` (from ``--input``) replaces ``ingest.inputs``.
    """
    path = Path(config_file) if config_file else default_config()
    raw = read_config(path)
    unknown = sorted(set(raw) - {"pipeline", "stages"})
    if unknown:
        raise ConfigError(f"{path}: unknown top-level keys {unknown}; allowed: pipeline, stages")
    if "pipeline" not in raw:
        raise ConfigError(f"{path}: missing 'pipeline:' (a name from pipelines/, or a path to a .py file)")
    pipeline = read_pipeline_file(_pipeline_path(str(raw["pipeline"]), path))
    names = [name for name, _ in pipeline]
    values: dict[str, dict[str, Any]] = {}
    stages = raw.get("stages") or {}
    if not isinstance(stages, dict):
        raise ConfigError(f"{path}: 'stages:' must be a mapping of step names to parameters, got {stages!r}")
    for step, params in stages.items():
        step = _renamed(step, names, f"{path}: stages.{step}")
        if step not in names:
            raise ConfigError(f"{path}: stages.{step}: not a step of this pipeline; steps: {', '.join(names)}")
        if not isinstance(params, dict):
            raise ConfigError(f"{path}: stages.{step}: expected a mapping of parameters, got {params!r}")
        values[step] = dict(params)
    for text in overrides:
        step, param, value = parse_override(text)
        step = _renamed(step, names, f"--set {text}")
        if step not in names:
            raise ConfigError(f"--set {text}: {step!r} is not a step of this pipeline; steps: {', '.join(names)}")
        values.setdefault(step, {})[param] = value
    if inputs:
        values.setdefault(names[0], {})["inputs"] = list(inputs)
    return [_step(name, cls, values.get(name, {})) for name, cls in pipeline]


#: Steps renamed since an earlier release: old name -> new name. A config (or --set) that uses the old name still
#: works, with a warning, when the pipeline has the new one.
RENAMED_STEPS = {"clip": "clip_score"}  # the CLIP stage: a clip is a span everywhere else


def _renamed(step: str, names: Sequence[str], where: str) -> str:
    new = RENAMED_STEPS.get(step)
    if step in names or new not in names:
        return step
    warnings.warn(f"{where}: the step {step!r} is now {new!r}; rename it (the old name will stop working)",
                  FutureWarning, stacklevel=3)
    return new


#: Keys of a step's block that set its error budget (``curate.runner.Step``), not a parameter of its stage.
BUDGET_KEYS: dict[str, type] = {"max_error_fraction": float, "min_errors_to_fail": int}


def _step(name: str, cls: type[Stage], params: dict[str, Any]) -> Step:
    budget = {key: check_type(params.pop(key), kind, f"{name}.{key}") for key, kind in BUDGET_KEYS.items()
              if key in params}
    stage = build_stage(name, cls, params)
    try:
        return Step(name, stage, **budget)
    except ValueError as e:
        raise ConfigError(str(e)) from e
