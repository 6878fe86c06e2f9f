"""TransNetV2 windows and transitions: the windowing with a stand-in network whose output per frame is known,
the transition finder on probability sequences, and the real network on real footage (short inputs: CPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from curate.shots.transnet import (
    Predictions,
    TransitionFinder,
    TransNetV2Windows,
    find_transitions,
    transnet_frame,
)


class FrameMean(torch.nn.Module):
    """Stands in for the network: each frame's 'logit' is its mean pixel value, whatever window it is in."""

    device = torch.device("cpu")

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        assert frames.dtype == torch.uint8 and tuple(frames.shape[2:]) == (27, 48, 3)
        value = frames.float().mean(dim=(2, 3, 4))
        return value, -value


def _frames(n: int) -> np.ndarray:
    return np.stack([np.full((27, 48, 3), i % 251, np.uint8) for i in range(n)])


@pytest.mark.parametrize(("n", "window", "context", "batch"), [
    (1, 100, 25, 1), (49, 100, 25, 1), (50, 100, 25, 1), (173, 100, 25, 1), (173, 100, 25, 4), (173, 200, 25, 2),
    (300, 100, 10, 3), (7, 20, 0, 2),
])  # fmt: skip
def test_every_frame_gets_its_own_output_once_in_order(n, window, context, batch):
    frames = _frames(n)
    windows = TransNetV2Windows(FrameMean(), window=window, context=context, batch=batch)

    parts = [windows.push(frame) for frame in frames] + [windows.finish()]
    parts = [p for p in parts if p is not None]

    assert [p.start for p in parts] == list(np.cumsum([0] + [len(p.single) for p in parts[:-1]]))
    single = np.concatenate([p.single for p in parts])
    expected = 1 / (1 + np.exp(-(np.arange(n) % 251.0)))
    np.testing.assert_allclose(single, expected, rtol=1e-6)
    np.testing.assert_allclose(np.concatenate([p.many for p in parts]), 1 - expected, atol=1e-6)
    step = window - 2 * context
    assert windows.frames_computed == -(-n // step) * window  # each window once


def test_memory_holds_one_batch_of_windows_not_the_video():
    windows = TransNetV2Windows(FrameMean(), window=100, context=25, batch=2)
    held = []
    for frame in _frames(2000):
        windows.push(frame)
        held.append(len(windows._frames))
    assert max(held) <= 150 + 100


@pytest.mark.parametrize(
    ("window", "context", "batch"), [(50, 25, 1), (100, -1, 1), (100, 25, 0), (100.0, 25, 1), (100, 25, True)]
)
def test_bad_windows_are_refused(window, context, batch):
    with pytest.raises(ValueError, match="window|batch"):
        TransNetV2Windows(FrameMean(), window=window, context=context, batch=batch)


def _probabilities(n: int, marks: dict[int, float], extent: dict[tuple[int, int], float] = {}) -> tuple:
    single = np.full(n, 0.01, np.float32)
    many = np.full(n, 0.01, np.float32)
    for index, value in marks.items():
        single[index] = value
    for (first, last), value in extent.items():
        many[first : last + 1] = value
    return single, many


def test_hard_cut_marks_the_last_frame_of_the_old_shot():
    single, many = _probabilities(100, {29: 0.9}, {(29, 29): 0.9})
    (transition,) = find_transitions(single, many, 0.5)
    assert (transition.first, transition.last, transition.cut, transition.gradual) == (29, 29, 30, False)


def test_gradual_transition_spans_the_all_frames_head_and_is_cut_at_its_peak():
    # a dissolve over frames 40..69: the single-frame head fires in its middle, twice (as in fades through black)
    single, many = _probabilities(120, {50: 0.6, 51: 0.8, 60: 0.7}, {(40, 69): 0.6})
    (transition,) = find_transitions(single, many, 0.5)
    assert (transition.first, transition.last, transition.cut, transition.gradual) == (40, 69, 51, True)
    assert transition.peak == pytest.approx(0.8)


def test_all_frames_head_alone_is_no_transition_and_far_marks_are_two():
    single, many = _probabilities(200, {20: 0.9, 150: 0.9}, {(80, 120): 0.9})
    assert [t.cut for t in find_transitions(single, many, 0.5)] == [21, 151]


def test_threshold_decides():
    single, many = _probabilities(100, {50: 0.45})
    assert find_transitions(single, many, 0.5) == []
    assert [t.cut for t in find_transitions(single, many, 0.4)] == [51]


def test_chunked_probabilities_give_the_same_transitions_as_whole_arrays():
    rng = np.random.default_rng(3)
    single = (rng.random(1000) ** 12).astype(np.float32)
    many = (rng.random(1000) ** 12).astype(np.float32)
    whole = find_transitions(single, many, 0.3)
    finder = TransitionFinder(0.3)
    for start in range(0, 1000, 37):
        finder.add(Predictions(start, single[start : start + 37], many[start : start + 37]))
    assert finder.finish() == whole and len(whole) > 5
    with pytest.raises(ValueError, match="in order"):
        TransitionFinder(0.3).add(Predictions(5, single[:3], many[:3]))


def test_network_input_frames_are_48x27_rgb():
    bgr = np.zeros((72, 128, 3), np.uint8)
    bgr[..., 2] = 200  # red in BGR
    frame = transnet_frame(bgr)
    assert frame.shape == (27, 48, 3) and frame.dtype == np.uint8
    assert tuple(frame[10, 10]) == (200, 0, 0)
