"""curate evaluate on the tiny pipeline's videos with a tiny CLIP model: the same scores as the curation stages."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.cli import main
from curate.generate.evaluate import METRICS, EvaluateError, Evaluator, evaluate, read_generated
from curate.generate.pipeline import GenerationSettings
from curate.generate.run import generate_videos
from curate.models.clip import ClipModel, clip_score
from curate.stages.clip import Clip
from curate.stages.motion import Motion
from curate.video.frames import read_frames

TINY = dict(num_frames=4, fps=4.0, height=32, width=32, num_inference_steps=2, device="cpu")


@pytest.fixture(scope="module")
def gen(tmp_path_factory, caption_shards, tiny_t2v, dask_client):
    out = tmp_path_factory.mktemp("gen_eval") / "gen"
    generate_videos(caption_shards, out, GenerationSettings(model=str(tiny_t2v), batch_size=3, **TINY), dask_client,
                    progress=False)
    return out


@pytest.fixture(scope="module")
def evaluated(gen, tiny_clip_dir):
    evaluator = Evaluator(clip_pretrained=str(tiny_clip_dir), device="cpu", dtype="fp32", motion_fps=4.0)
    paths = evaluate(gen, evaluator)
    return paths, pq.read_table(paths["scores"])


@pytest.mark.slow
def test_writes_scores_summary_and_plot(evaluated, gen):
    paths, scores = evaluated
    assert paths == {"scores": gen / "eval" / "scores.parquet", "summary": gen / "eval" / "summary.parquet",
                     "plot": gen / "eval" / "summary.png"}
    assert scores.column_names == read_generated(gen).column_names + list(METRICS) + ["eval_error"]
    assert scores["eval_error"].to_pylist() == [None] * 3
    for metric in METRICS:
        assert all(math.isfinite(v) for v in scores[metric].to_pylist()), metric
    assert all(0 <= v <= 100 for v in scores["clip_score"].to_pylist() + scores["clip_score_real"].to_pylist())
    assert all(-1 <= v <= 1 for v in scores["temporal_consistency"].to_pylist())
    summary = pq.read_table(paths["summary"])
    assert summary.num_rows == 1 and summary["videos"].to_pylist() == [3]
    assert summary["clip_score_mean"][0].as_py() == pytest.approx(np.mean(scores["clip_score"].to_pylist()))
    assert paths["plot"].read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_scores_are_the_curation_stages_scores(evaluated, tiny_clip_dir):
    """clip_score_real is what the CLIP stage gives the real clip with the prompt as its caption; clip_score is the
    same stage on the generated mp4; motion scores are the motion stage's."""
    _, scores = evaluated
    clips = pa.table({"video_path": scores["video_path"], "video_stream": scores["video_stream"],
                      "start_s": scores["start_s"], "end_s": scores["end_s"], "caption": scores["prompt"]})
    stage = Clip(pretrained=str(tiny_clip_dir), device="cpu", dtype="fp32")
    stage.setup()
    real = stage.process(clips).kept
    np.testing.assert_allclose(scores["clip_score_real"].to_pylist(), real["clip_score"].to_pylist(), atol=1e-4)
    generated = clips.set_column(0, "video_path", scores["output_path"]).set_column(
        2, "start_s", pa.array([0.0] * 3)).set_column(3, "end_s", pa.array([1.0] * 3))
    own = stage.process(generated).kept["clip_score"].to_pylist()
    np.testing.assert_allclose(scores["clip_score"].to_pylist(), own, atol=1e-4)
    motion = Motion(sample_fps=4.0)
    np.testing.assert_allclose(scores["motion_score"].to_pylist(),
                               motion.process(generated).kept["motion_score"].to_pylist())
    np.testing.assert_allclose(scores["motion_score_real"].to_pylist(),
                               motion.process(clips).kept["motion_score"].to_pylist())


@pytest.mark.slow
def test_temporal_consistency_uses_every_frame(evaluated, tiny_clip_dir):
    _, scores = evaluated
    model = ClipModel.load(pretrained=str(tiny_clip_dir), device="cpu", dtype="fp32")
    path = scores["output_path"][0].as_py()
    embs = model.embed_images([f.image for f in read_frames(path, [i / 4 for i in range(4)], width=336)])
    cosines = [float(embs[i] @ embs[i + 1]) for i in range(3)]
    assert scores["temporal_consistency"][0].as_py() == pytest.approx(np.mean(cosines), abs=1e-5)
    text = model.embed_texts([scores["prompt"][0].as_py()])[0]
    first_middle_last = read_frames(path, [0.0, 0.5, 1.0 - 1e-4], width=336)
    assert scores["clip_score"][0].as_py() == pytest.approx(
        clip_score(text, model.embed_images([f.image for f in first_middle_last])), abs=1e-4)


@pytest.mark.slow
def test_prompt_without_source_clip_and_unfinished_generation(tmp_path, gen):
    with pytest.raises(EvaluateError, match="no such folder"):
        read_generated(tmp_path / "missing")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "settings.json").write_text("{}")
    with pytest.raises(EvaluateError, match="not finished; relaunch"):
        read_generated(tmp_path / "half")


@pytest.mark.slow
def test_sweep_over_two_guidance_values(tmp_path, caption_shards, tiny_t2v, tiny_clip_dir, capsys):
    out = tmp_path / "sweep"
    code = main(["evaluate", str(out), "--sweep", "guidance_scale=1,6", "--from", str(caption_shards), "--model",
                 str(tiny_t2v), "--device", "cpu", "--num-frames", "4", "--fps", "4", "--height", "32", "--width",
                 "32", "--steps", "2", "--first", "2", "--clip-pretrained", str(tiny_clip_dir), "--clip-device", "cpu",
                 "--motion-fps", "4", "--no-progress"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert sorted(p.name for p in out.iterdir()) == ["eval", "guidance_scale=1", "guidance_scale=6"]
    summary = pq.read_table(out / "eval" / "summary.parquet")
    assert summary["setting"].to_pylist() == ["guidance_scale=1", "guidance_scale=6"]
    assert summary["guidance_scale"].to_pylist() == [1.0, 6.0] and summary["videos"].to_pylist() == [2, 2]
    scores = pq.read_table(out / "eval" / "scores.parquet")
    by_setting = {g: h for g, h in zip(scores["guidance_scale"].to_pylist(), scores["frames_sha256"].to_pylist())}
    assert len(set(by_setting.values())) == 2  # guidance changes the video (same prompts, same seeds)
    assert (out / "eval" / "summary.png").read_bytes()[:4] == b"\x89PNG"
    assert "guidance_scale=6" in printed.out and "clip_score" in printed.out


def test_clip_frames_and_generated_frames_are_separate_flags():
    from curate.cli import build_parser
    from curate.generate.cli_evaluate import evaluator_from_args
    from curate.generate.cli_generate import settings_from_args

    args = build_parser().parse_args(["evaluate", "gen", "--clip-frames", "5", "--num-frames", "16", "--device", "cpu"])
    assert evaluator_from_args(args, {}).num_frames == 5
    assert settings_from_args(args)[0].num_frames == 16
