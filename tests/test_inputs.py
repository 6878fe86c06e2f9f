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
