"""Keep, during split's one decode of a video, the frames that the steps after split read from each clip.

    from curate.video.frame_keeper import FrameKeeper
    keeper = FrameKeeper([FrameNeed(fps=2.0, width=160, grey=True)], plan=plan, strides=[1, 2],
                         merge_window_frames=8, on_clip=lambda start_frame, end_frame, frames: ...)
    # curate.video.scenes.scan_scenes(..., keeper=keeper) calls, while it decodes:
    keeper.start(fps, sample_aspect_ratio)           # the stream's clock rate and pixel aspect
    keeper.push(index, frame, pts_s, cascade.cuts)   # every decoded frame, and each detector's raw cuts so far
    keeper.finish(end_time_s)                        # on_clip(start_frame, end_frame, {FrameNeed: [Frame]})

Clip spans are known only once a scene ends (trim, minimum and maximum length), so the keeper buffers the frames of
the scene being decoded (each at the sizes the needs ask for, as ``curate.video.frames.read_clips`` makes them) and
closes the scene when the detectors report its cut: it plans the scene's clips as split will (``plan``), hands each
clip's frames to ``on_clip`` and drops the buffer. Memory therefore depends on the longest scene, not on the
video's length, and is bounded by ``max_bytes``: a scene that needs more keeps nothing (its clips are decoded by the
steps that read them, which count it).

The scene's cut is the detectors' raw cut as they report it (several detectors' cuts within the merge window are
one, as split merges them). Where split's final clips differ (a cut moved by refinement or merging, a gradual
transition found when the scan ends), the kept clip has other frame bounds than split's and is not used: the steps
decode that clip. Frame times come from the same clock as split's timeline (``curate.video.timeline.FrameClock``),
so a kept clip's frames are the ones a reader decodes.
"""

from __future__ import annotations

import array
from collections.abc import Callable, Sequence
from fractions import Fraction

import av
import cv2
import numpy as np
from av.video.reformatter import VideoReformatter

from curate.video.cascade import merge_cuts
from curate.video.clips import ClipSpan
from curate.video.frame_needs import FrameNeed, frame_index_at
from curate.video.frames import Frame, _one_size, to_rgb
from curate.video.timeline import FrameClock

#: plan(cut_frames, frame_times, end_time_s) -> the clips of the frames [0, len(frame_times)), as split plans them
PlanClips = Callable[[list[int], np.ndarray, float], list[ClipSpan]]
DEFAULT_MAX_BYTES = 256 * 1024 * 1024


class FrameKeeper:
    """The frames of ``needs`` of every clip of one video, handed to ``on_clip`` as each scene closes."""

    def __init__(self, needs: Sequence[FrameNeed], *, plan: PlanClips, strides: Sequence[int],
                 merge_window_frames: int, on_clip: Callable[[int, int, dict[FrameNeed, list[Frame]]], None],
                 max_bytes: int = DEFAULT_MAX_BYTES):
        self.needs = list(needs)
        self.plan = plan
        self.strides = list(strides)
        self.window = merge_window_frames
        self.on_clip = on_clip
        self.max_bytes = max_bytes
        self.sizes = sorted({(need.width, need.grey) for need in self.needs}, key=str)  # images buffered per frame
        self._scalers = {size: VideoReformatter() for size in self.sizes}
        self._clock: FrameClock | None = None
        self._sar: Fraction | None = None
        self._times = array.array("d")  # final times of the frames so far
        self._buffer: dict[int, dict[tuple[int | None, bool], np.ndarray]] = {}  # the open scene's frames
        self._bytes = 0
        self._full = False  # the open scene outgrew max_bytes: nothing more is buffered until it closes
        self._start = 0  # first frame of the open scene
        self._seen = [0] * len(self.strides)  # raw cuts read so far, per detector
        self._pending: list[list[int]] = [[] for _ in self.strides]  # raw cuts after the open scene's start
        self.overflowed_scenes = 0
        self.kept_clips = 0

    def start(self, fps: float, sample_aspect_ratio: Fraction | None) -> None:
        """A new stream: its clock rate (``curate.video.timeline.clock_fps``) and pixel aspect ratio."""
        self._clock = FrameClock(fps)
        self._sar = sample_aspect_ratio

    def push(self, index: int, frame: av.VideoFrame, pts_s: float, detector_cuts: Sequence[Sequence[int]]) -> None:
        """Frame ``index`` (decode order, none skipped), its timestamp in seconds (NaN: none) and each detector's
        raw cuts so far."""
        # 1. its time (final a few frames later) and its images
        self._times.extend(self._clock.push(pts_s))
        if not self._full:
            images = {size: self._image(frame, size, self._sar) for size in self.sizes}
            self._bytes += sum(image.nbytes for image in images.values())
            self._buffer[index] = images
            if self._bytes > self.max_bytes:
                self._full = True
                self.overflowed_scenes += 1
                self._buffer.clear()
                self._bytes = 0

        # 2. the detectors' new cuts, then every scene whose cut is settled
        for d, cuts in enumerate(detector_cuts):
            self._pending[d] += [c for c in cuts[self._seen[d]:] if c > self._start]
            self._seen[d] = len(cuts)
        while True:
            cut = self._settled_cut(index)
            if cut is None:
                break
            self._close(cut, np.frombuffer(self._times, np.float64)[:cut + 1], None)

    def finish(self, end_time_s: float) -> None:
        """The video ended after the last pushed frame at ``end_time_s``: close the scenes left."""
        self._times.extend(self._clock.flush())
        times = np.frombuffer(self._times, np.float64).copy()
        while (cut := self._settled_cut(None)) is not None:
            self._close(cut, times[:cut + 1], None)
        if self._start < len(times):
            self._close(len(times), times, end_time_s)
        self._buffer.clear()

    # -------------------------------------------------------------------------------------------- scenes
    def _settled_cut(self, index: int | None) -> int | None:
        """The open scene's cut once no detector can report another cut of the same event, and its time is final
        (``index`` None: the video ended)."""
        firsts = [cuts[0] for cuts in self._pending if cuts]
        if not firsts:
            return None
        first = min(firsts)
        if index is not None and (index < first + self.window or len(self._times) <= first):
            return None
        event = [[c for c in cuts if c < first + self.window] for cuts in self._pending]
        self._pending = [[c for c in cuts if c >= first + self.window] for cuts in self._pending]
        return merge_cuts(event, self.strides, self.window)[0]

    def _close(self, end: int, times: np.ndarray, end_time_s: float | None) -> None:
        """Hand over the clips of the scene ``[self._start, end)`` (``end_time_s`` None: frame ``end`` follows it,
        at ``times[end]``), then start the next scene at ``end``."""
        if end > self._start:
            cuts = [c for c in (self._start, end) if 0 < c < len(times)]
            last = end_time_s if end_time_s is not None else float(times[-1])
            for span in self.plan(cuts, times, last):
                if span.reject_reason is None and self._start <= span.start_frame and span.end_frame <= end:
                    self._hand_over(span, times)
        for i in [i for i in self._buffer if i < end]:
            self._bytes -= sum(image.nbytes for image in self._buffer.pop(i).values())
        self._start = max(self._start, end)
        self._full = False

    def _hand_over(self, span: ClipSpan, times: np.ndarray) -> None:
        frames: dict[FrameNeed, list[Frame]] = {}
        for need in self.needs:
            picks = [frame_index_at(times, t, span.start_frame) for t in need.times(span.start_s, span.end_s)]
            if any(i not in self._buffer for i in picks):
                return  # not buffered (the scene outgrew max_bytes): the steps decode this clip
            key = (need.width, need.grey)
            frames[need] = _one_size([Frame(float(times[i]), self._buffer[i][key]) for i in picks])
        self.kept_clips += 1
        self.on_clip(span.start_frame, span.end_frame, frames)

    def _image(self, frame: av.VideoFrame, size: tuple[int | None, bool], sar: Fraction | None) -> np.ndarray:
        width, grey = size
        image = to_rgb(frame, width, sar, self._scalers[size])
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if grey else image
