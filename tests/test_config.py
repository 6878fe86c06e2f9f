from pathlib import Path

import pytest

from curate.config import ConfigError, build_steps, check_type, parse_override
from curate.stages.split import Split

ROOT = Path(__file__).resolve().parents[1]


def test_offline_config_builds_its_pipeline():
    steps = build_steps(ROOT / "configs" / "offline.yaml", inputs=["x.mp4"])
    assert [s.name for s in steps][:2] == ["ingest", "split"]
    assert steps[0].stage.inputs == ["x.mp4"]
    assert isinstance(steps[1].stage, Split) and steps[1].stage.min_clip_s == 1.0


def test_default_config_builds_the_lvd_pipeline():
    steps = build_steps(ROOT / "configs" / "default.yaml")
    assert [s.name for s in steps][:2] == ["ingest", "split"]


def test_set_overrides_values_with_yaml_types():
    steps = build_steps(ROOT / "configs" / "offline.yaml", overrides=["split.min_clip_s=2", "split.max_clip_s=null"])
    split = steps[1].stage
    assert split.min_clip_s == 2.0 and isinstance(split.min_clip_s, float) and split.max_clip_s is None


@pytest.mark.parametrize("override, message", [
    ("nosuch.x=1", "'nosuch' is not a step of this pipeline; steps: ingest, split"),
    ("split.nosuch=1", "split.nosuch: unknown parameter of Split; allowed: detector, threshold"),
    ("split.min_clip_s=abc", "split.min_clip_s: expected a float, got str 'abc'"),
    ("split.trim_frames=true", "expected a int, got a boolean"),
    ("split.detector=magic", "allowed: 'cascade', 'content', 'adaptive', 'threshold', 'histogram'"),
    ("split.min_clip_s", "expected STEP.PARAM=VALUE"),
    ("split.max_clip_s=0.5", "max_clip_s (0.5) must be larger than min_clip_s"),
])
def test_config_errors_name_the_key_and_what_is_allowed(override, message):
    with pytest.raises(ConfigError) as e:
        build_steps(ROOT / "configs" / "offline.yaml", overrides=[override])
    assert message in str(e.value)


def test_unknown_step_in_yaml(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"pipeline: {ROOT}/pipelines/offline.py\nstages:\n  splitt: {{min_clip_s: 1}}\n")
    with pytest.raises(ConfigError, match="stages.splitt: not a step of this pipeline"):
        build_steps(cfg)


def test_parse_override_and_check_type():
    assert parse_override("filter.rules=[a, b]") == ("filter", "rules", ["a", "b"])
    assert check_type([1, 2], list[float], "x") == [1.0, 2.0]
    with pytest.raises(ConfigError, match="expected a list"):
        check_type("a", list[str], "x")


def test_the_clip_step_is_clip_score_and_its_old_key_still_works_with_a_warning(tmp_path):
    from curate.stages.clip_score import ClipScore
    from curate.tasks import error_column

    steps = {s.name: s.stage for s in build_steps(ROOT / "configs" / "default.yaml")}
    assert "clip" not in steps and isinstance(steps["clip_score"], ClipScore)
    old = tmp_path / "old.yaml"
    old.write_text("pipeline: lvd\nstages:\n  clip:\n    num_frames: 5\n")
    with pytest.warns(FutureWarning, match="the step 'clip' is now 'clip_score'"):
        built = {s.name: s.stage for s in build_steps(old, overrides=["clip.batch_size=4"])}
    assert (built["clip_score"].num_frames, built["clip_score"].batch_size) == (5, 4)
    with pytest.warns(FutureWarning, match="curate.stages.clip_score.ClipScore"):
        from curate.stages.clip import Clip
    assert Clip is ClipScore
    # its error column keeps its name: a row that raises is kept with the message in clip_error
    assert error_column("clip_score", ClipScore.adds) == "clip_error"
    assert error_column("motion", {"motion_score": None, "motion_error": None}) == "motion_error"
    assert error_column("write", {"bucket": None}) is None
