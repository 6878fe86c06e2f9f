"""One error type for "could not read this video": its path, cause and reason survive a trip to a Dask worker."""

from __future__ import annotations

import pickle

import pytest

from curate.errors import CurateError, VideoReadError, error_message
from curate.video.frames import read_frames
from curate.video.probe import PROBE_REASONS, probe
from curate.video.source import NoVideoStreamError, VideoOpenError


def test_video_read_error_pickles_with_its_path_cause_and_reason():
    error = VideoReadError("a.mp4", "no such file", reason="ingest_missing")
    again = pickle.loads(pickle.dumps(error))
    assert (type(again), again.path, again.cause, again.reason, str(again)) == (
        VideoReadError, "a.mp4", "no such file", "ingest_missing", "a.mp4: no such file")
    assert isinstance(again, CurateError)  # the CLI prints it as one line
    opened = pickle.loads(pickle.dumps(VideoOpenError("b.mp4", "cannot open")))
    assert type(opened) is VideoOpenError and opened.path == "b.mp4"
    assert issubclass(NoVideoStreamError, VideoReadError)
    assert error_message(error) == "VideoReadError: a.mp4: no such file"


def test_every_reader_raises_the_one_type(tmp_path, video):
    text = tmp_path / "not_a_video.mp4"
    text.write_text("hello")
    with pytest.raises(VideoReadError) as probed:
        probe(text)
    assert probed.value.reason in PROBE_REASONS and probed.value.path == str(text)
    with pytest.raises(VideoReadError) as read:
        read_frames(video("psd_counter.mp4"), [12.0])  # past its end: the cursor's error, given the path
    assert read.value.path.endswith("psd_counter.mp4") and "past the end" in read.value.cause
