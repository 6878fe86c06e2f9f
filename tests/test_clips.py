import numpy as np
import pytest

from curate.shots.clips import plan_clips


def kept(spans):
    return [(s.start_frame, s.end_frame) for s in spans if s.reject_reason is None]


def test_scenes_between_cuts_with_trimming():
    times = np.arange(250) / 25.0
    spans = plan_clips([30, 76, 137, 187, 242], times, 10.0, min_clip_s=1.0, max_clip_s=None, trim_frames=2)
    assert kept(spans) == [(0, 28), (32, 74), (78, 135), (139, 185), (189, 240)]
    assert [(s.start_frame, s.end_frame, s.reject_reason) for s in spans if s.reject_reason] == [(244, 250, "split_too_short")]
    last = spans[-1]
    assert last.start_s == pytest.approx(244 / 25) and last.end_s == pytest.approx(10.0)


def test_times_come_from_frame_timestamps_not_frame_rate():
    # variable frame rate: every third frame of a 24 fps timeline dropped
    times = np.array([t / 24 for t in range(90) if t % 3 != 2])
    spans = plan_clips([30], times, float(times[-1] + 1 / 24), min_clip_s=0.5, max_clip_s=None, trim_frames=0)
    assert spans[1].start_frame == 30 and spans[1].start_s == pytest.approx(times[30])
    assert spans[0].end_s == pytest.approx(times[30])  # end is the next frame's time (half-open)


def test_long_scene_is_cut_into_equal_chunks_within_max():
    times = np.arange(1000) / 10.0  # one 100 s scene
    spans = plan_clips([], times, 100.0, min_clip_s=1.0, max_clip_s=30.0, trim_frames=2)
    assert len(spans) == 4 and all(s.reject_reason is None for s in spans)
    assert all(15.0 <= s.duration_s <= 30.0 for s in spans)
    assert spans[0].start_frame == 0 and spans[-1].end_frame == 1000  # no trimming at the video's ends
    assert all(a.end_frame == b.start_frame for a, b in zip(spans, spans[1:]))


def test_scene_shorter_than_trimming_is_rejected_not_dropped():
    times = np.arange(100) / 25.0
    spans = plan_clips([50, 53], times, 4.0, min_clip_s=0.0, max_clip_s=None, trim_frames=2)
    assert [s.reject_reason for s in spans] == [None, "split_too_short", None]


@pytest.mark.parametrize("kwargs, message", [
    (dict(min_clip_s=-1, max_clip_s=None, trim_frames=0), "min_clip_s"),
    (dict(min_clip_s=5, max_clip_s=2, trim_frames=0), "max_clip_s"),
    (dict(min_clip_s=1, max_clip_s=None, trim_frames=-1), "trim_frames"),
])
def test_bad_lengths_say_what_is_allowed(kwargs, message):
    with pytest.raises(ValueError, match=message):
        plan_clips([], np.arange(10) / 10, 1.0, **kwargs)
