"""curate generate on a real Dask cluster with the tiny pipeline: files, table, seeds, resume, errors."""

from __future__ import annotations

import dataclasses
import json

import av
import numpy as np
import pyarrow.parquet as pq
import pytest

from curate.cli import main
from curate.generate.pipeline import GenerateError, GenerationSettings
from curate.generate.prompts import SOURCE_COLUMNS
from curate.generate.run import RESULT_TYPES, SETTINGS_TYPES, generate_videos
from curate.video.frames import read_frames

TINY = dict(num_frames=4, fps=4.0, height=32, width=32, num_inference_steps=2, device="cpu")
PROMPT_COLUMNS = ["prompt_index", "prompt", "seed", "prompt_column", *SOURCE_COLUMNS]


def _frames(path, n=4, fps=4.0):
    return np.stack([f.image for f in read_frames(path, [i / fps for i in range(n)])])


@pytest.fixture(scope="module")
def settings(tiny_t2v):
    return GenerationSettings(model=str(tiny_t2v), batch_size=2, **TINY)


@pytest.fixture(scope="module")
def generated(tmp_path_factory, caption_shards, settings, dask_client):
    out = tmp_path_factory.mktemp("gen") / "gen"
    return out, generate_videos(caption_shards, out, settings, dask_client, progress=False)


@pytest.mark.slow
def test_writes_one_mp4_per_prompt_and_the_table(generated, caption_shards):
    out, table = generated
    assert table.column_names == PROMPT_COLUMNS + list(SETTINGS_TYPES) + list(RESULT_TYPES)
    assert table.num_rows == 3
    assert table["prompt"].to_pylist() == pq.read_table(caption_shards)["caption"].to_pylist()
    assert table["clip_id"].to_pylist() == ["bikes_0", "bikes_1", "bikes_2"]
    assert table["start_s"].to_pylist() == [0.0, 1.0, 2.0]
    assert table["seed"].to_pylist() == [0, 1, 2]
    assert set(table["guidance_scale"].to_pylist()) == {9.0} and set(table["num_inference_steps"].to_pylist()) == {2}
    assert table["device"].to_pylist() == ["cpu"] * 3 and table["peak_gpu_memory_mb"].to_pylist() == [None] * 3
    assert all(s > 0 for s in table["seconds"].to_pylist())
    assert pq.read_table(out / "generated.parquet").equals(table)
    assert sorted(p.name for p in (out / "videos").iterdir()) == ["000000.mp4", "000001.mp4", "000002.mp4"]
    assert sorted(p.name for p in (out / "done").iterdir()) == ["part-00000.json", "part-00001.json"]  # 2 batches
    for path in table["output_path"].to_pylist():
        assert _frames(path).shape == (4, 32, 32, 3)
        with av.open(path) as container:  # exactly num_frames frames, H.264 in yuv420p, at fps
            stream = container.streams.video[0]
            assert (stream.codec_context.name, stream.codec_context.pix_fmt) == ("h264", "yuv420p")
            assert stream.average_rate == 4 and sum(1 for _ in container.decode(stream)) == 4


@pytest.mark.slow
def test_same_seed_same_video_different_seed_different_video(generated, tmp_path, caption_shards, settings,
                                                             dask_client):
    out, table = generated
    again = generate_videos(caption_shards, tmp_path / "again", settings, dask_client, first=1, progress=False)
    shifted = generate_videos(caption_shards, tmp_path / "shifted", dataclasses.replace(settings, seed=100),
                              dask_client, first=1, progress=False)
    assert again["frames_sha256"][0] == table["frames_sha256"][0]
    np.testing.assert_array_equal(_frames(again["output_path"][0].as_py()), _frames(table["output_path"][0].as_py()))
    assert shifted["seed"].to_pylist() == [100]
    assert shifted["frames_sha256"][0] != table["frames_sha256"][0]
    assert not np.array_equal(_frames(shifted["output_path"][0].as_py()), _frames(table["output_path"][0].as_py()))


@pytest.mark.slow
def test_relaunch_skips_finished_batches(tmp_path, caption_shards, settings, dask_client):
    out = tmp_path / "gen"
    first = generate_videos(caption_shards, out, settings, dask_client, progress=False)
    kept = out / "videos" / "000000.mp4"  # batch part-00000
    redone = out / "videos" / "000002.mp4"  # batch part-00001: as if killed before its done marker
    (out / "done" / "part-00001.json").unlink()
    redone.unlink()
    stamp = kept.stat().st_mtime_ns
    second = generate_videos(caption_shards, out, settings, dask_client, progress=False)
    assert kept.stat().st_mtime_ns == stamp  # finished batch not redone
    assert redone.is_file() and (out / "done" / "part-00001.json").is_file()
    assert second["frames_sha256"].to_pylist() == first["frames_sha256"].to_pylist()
    with pytest.raises(GenerateError, match=r"other settings \['guidance_scale'\]; use another --out"):
        generate_videos(caption_shards, out, dataclasses.replace(settings, guidance_scale=2.0), dask_client)
    with pytest.raises(GenerateError, match="other prompts"):
        generate_videos(caption_shards, out, settings, dask_client, first=2)


def test_cuda_needs_gpu_workers(caption_shards, settings, dask_client, tmp_path):
    with pytest.raises(GenerateError, match="no worker of the Dask cluster declares a GPU resource"):
        generate_videos(caption_shards, tmp_path / "g", dataclasses.replace(settings, device="cuda"), dask_client)


def test_cli_without_gpu_and_without_device_flag_is_a_clear_error(tmp_path, caption_shards, tiny_t2v, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert main(["generate", str(caption_shards), "--out", str(tmp_path / "g"), "--model", str(tiny_t2v)]) == 2
    err = capsys.readouterr().err
    assert "no CUDA GPU here" in err and "--device cpu" in err
    assert not (tmp_path / "g").exists()


@pytest.mark.slow
def test_cli_generates_on_cpu_with_the_config_file(tmp_path, caption_shards, tiny_t2v, capsys):
    config = tmp_path / "generate.yaml"
    config.write_text(f"generate:\n  model: {tiny_t2v}\n  num_frames: 4\n  fps: 4\n  height: 32\n  width: 32\n"
                      "  num_inference_steps: 2\n  guidance_scale: 3.0\nprompts:\n  sample: 2\n  sample_seed: 1\n")
    out = tmp_path / "gen"
    code = main(["generate", str(caption_shards), "--out", str(out), "--config", str(config), "--device", "cpu",
                 "--negative-prompt", "blurry", "--scheduler", "euler", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    table = pq.read_table(out / "generated.parquet")
    assert table.num_rows == 2
    assert set(table["guidance_scale"].to_pylist()) == {3.0}  # from the file
    assert set(table["negative_prompt"].to_pylist()) == {"blurry"} and set(table["scheduler"].to_pylist()) == {"euler"}
    assert json.loads((out / "settings.json").read_text())["settings"]["scheduler"] == "euler"
    assert "2 videos in" in capsys.readouterr().out


@pytest.mark.gpu
def test_generates_in_fp16_on_gpu_workers(tmp_path, caption_shards, tiny_t2v):
    import torch

    from curate.generate.run import generation_client

    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    settings = GenerationSettings(model=str(tiny_t2v), batch_size=2, **dict(TINY, device="cuda"))
    with generation_client(device="cuda", workers=1, quiet=True) as client:  # one worker declaring {"GPU": 1}
        table = generate_videos(caption_shards, tmp_path / "gen", settings, client, progress=False)
    assert set(table["dtype"].to_pylist()) == {"auto"} and table["device"][0].as_py().startswith("cuda:")
    assert all(m > 0 for m in table["peak_gpu_memory_mb"].to_pylist())
    assert _frames(table["output_path"][0].as_py()).shape == (4, 32, 32, 3)


@pytest.mark.slow
def test_a_first_launch_that_generated_nothing_does_not_lock_its_folder(tmp_path, caption_shards, settings,
                                                                        dask_client):
    out = tmp_path / "gen"
    with pytest.raises(GenerateError, match="nowhere"):  # a model path with a typo: every batch fails to load it
        generate_videos(caption_shards, out, dataclasses.replace(settings, model=str(tmp_path / "nowhere")),
                        dask_client, first=1, progress=False)
    assert generate_videos(caption_shards, out, settings, dask_client, first=1, progress=False).num_rows == 1
