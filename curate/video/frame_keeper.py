"""Keep, during split's one decode of a video, the frames that the steps after split read from each clip.

    from curate.video.frame_keeper import FrameKeeper
    keeper = FrameKeeper([FrameNeed(fps=2.0, width=160, grey=True)], plan=plan, strides=[1, 2],
                         merge_window_frames=8, trim_frames=2, max_clip_s=30.0,
                         on_clip=lambda start_frame, end_frame, frames: ...)
    # curate.shots.scan.scan_scenes(..., keeper=keeper) calls, while it decodes:
    keeper.start(fps, sample_aspect_ratio, signal)   # the stream's clock rate, pixel aspect, change signal
    keeper.push(index, frame, pts_s, cascade.cuts, cascade.spans)  # every decoded frame; each detector's raw cuts
                                                     # and gradual transitions so far
    keeper.finish(end_time_s)                        # on_clip(start_frame, end_frame, {FrameNeed: [Frame]})
    keeper.settle(final_spans)                       # with settle=True: split's final clips, from frames still held

Clip spans are known only once a scene ends (trim, minimum and maximum length), so the keeper holds the frames of
the scene being decoded and closes the scene when the detectors report its cut: it plans the scene's clips as split
will (``plan``), hands each clip's frames to ``on_clip`` and drops the rest.

Converting a frame (``curate.video.frames.FrameScaler``: one FFmpeg conversion per width, motion's 160 px shrunk
from OCR's 320 px) costs about half as much as decoding it, and only a few frames of a clip are read. So the keeper
first holds the decoded frames themselves (a reference, no copy) for a while (up to ``HOLD_SHARE`` of ``max_bytes``,
counted in bytes frame by frame, so a stream whose frames grow mid-way holds fewer of them); a frame that leaves the
hold before its scene closes is converted only at the sizes of the needs it can still be picked for, given what is
known of its scene (its first clip starts ``trim_frames`` after the scene's cut, so a rate need's grid is fixed; the
scene ends at least ``DETECTOR_LAG_FRAMES`` after the frames decoded so far, which bounds where a relative position
can fall; past ``max_clip_s / 2`` into a scene, chunk boundaries can be anywhere and every frame is converted). When
the scene closes, only the picked frames still held are converted. Short scenes thus cost a few conversions per clip;
long ones about what converting every frame would cost, for the frames in their middle.

Memory depends on the longest scene, not on the video's length: the held frames (bounded by bytes), and the
converted ones, bounded by ``max_bytes``: a scene that needs more keeps nothing (its clips are decoded by the steps
that read them, which count it). A guess that turns out wrong (a cut reported later than the assumed lag) only means
a picked frame is missing: that clip is not kept, and the steps decode it, as for every clip not kept.

The scene's cut is the detectors' raw cut as they report it, a hard cut or a gradual transition's (several
detectors' events within the merge window are one, as split merges them, ``merge_events``); the frames of a
reported transition belong to no clip, and the clips after it start after it. Detectors report a transition some
frames after it ends (the dissolve test about 2 * max_scale + gap frames), so the keeper assumes a scene may end
``TRANSITION_LAG_FRAMES`` earlier when one of its detectors reports transitions.

A clip whose frames are all still held is handed over as late as possible: when its first frame is about to leave
the hold, planned again then from every event reported so far, or, with ``settle=True``, after the scan from split's
final clips (``settle(spans)``: a transition found when the scan ends, or a cut added by the purity check, moves
clips). Where split's final clips still differ from what was handed over (the frames had left the hold), the kept
clip has other frame bounds than split's and is not used: the steps decode that clip. Frame times come from the same
clock as split's timeline (``curate.video.timeline.FrameClock``), so a kept clip's frames are the ones a reader
decodes.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from fractions import Fraction

import av
import cv2
import numpy as np

from curate.shots.cascade import merge_cuts, merge_events
from curate.shots.clips import ClipSpan
from curate.video.frame_needs import FrameNeed, frame_index_at
from curate.video.cursor import TIME_TOLERANCE_S
from curate.video.frames import END_EPSILON_S, Frame, FrameScaler, _one_size, made_width, sized
from curate.video.timeline import MAX_REORDER, FrameClock
from curate.video.growing import Growing

#: plan(cut_frames, frame_times, end_time_s, transitions, change) -> the clips of the frames [0, len(frame_times)), as
#: split plans them (transitions: inclusive (first, last) frame ranges that belong to no clip; change: the scan's
#: change signal so far, or None, for split's purity check)
PlanClips = Callable[[list[int], np.ndarray, float, list[tuple[int, int]], np.ndarray | None], list[ClipSpan]]
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
#: decoded frames held unconverted: at most this share of max_bytes (full-size frames), and at least MIN_HOLD_FRAMES.
#: A longer hold converts fewer frames: a scene that closes while its frames are held converts only the picked ones
#: (docs/benchmarks.md, "a larger hold where memory allows")
HOLD_SHARE = 0.75
MIN_HOLD_FRAMES = MAX_REORDER + 48
#: a scene's cut is assumed reported within this many frames (plus the merge window) of the frame it is at: the
#: default cascade reports within a few frames; a later report only costs that scene's clips (they are decoded)
DETECTOR_LAG_FRAMES = 24
#: and a gradual transition within this many more frames of its first frame, when a detector reports them (the
#: dissolve test groups its marks about 2 * max_scale + gap frames after a transition's last frame; transitions of the
#: fixtures last up to 60 frames)
TRANSITION_LAG_FRAMES = 64
Size = tuple[int | None, bool]  # (width, grey) of a converted image


class FrameKeeper:
    """The frames of ``needs`` of every clip of one video, handed to ``on_clip`` as each scene closes."""

    def __init__(self, needs: Sequence[FrameNeed], *, plan: PlanClips, strides: Sequence[int],
                 merge_window_frames: int, trim_frames: int, max_clip_s: float | None,
                 on_clip: Callable[[int, int, dict[FrameNeed, list[Frame]]], None],
                 max_bytes: int = DEFAULT_MAX_BYTES, settle: bool = False):
        """``trim_frames`` and ``max_clip_s``: the ones ``plan`` uses (where a scene's first clip starts, and from
        where in a scene a chunk may start). ``settle``: the caller calls ``settle(spans)`` with the final clips
        after ``finish`` (clips whose frames are still held are handed over then, as finally planned)."""
        self.needs = list(needs)
        self.plan = plan
        self.strides = list(strides)
        self.window = merge_window_frames
        self.trim = trim_frames
        self.max_clip_s = max_clip_s
        self.on_clip = on_clip
        self.max_bytes = max_bytes
        self.settles = settle
        self.sizes = sorted({(need.width, need.grey) for need in self.needs}, key=str)  # images buffered per frame
        self._scaler: FrameScaler | None = None
        self._clock: FrameClock | None = None
        self._times = Growing(np.float64)  # final times of the frames so far
        self._held: deque[tuple[int, av.VideoFrame]] = deque()  # decoded frames of the open scene, not converted
        self._held_sizes: deque[int] = deque()  # their bytes, in the same order
        self._held_bytes = 0
        self._hold_bytes = int(max_bytes * HOLD_SHARE)  # frames leave the hold past this; MIN_HOLD_FRAMES stay
        self._lag = DETECTOR_LAG_FRAMES + merge_window_frames + max(self.strides, default=1)
        # the open scene's frames converted as they left the hold, and held frames converted for clips handed over:
        # their RGB images by the width FFmpeg made (``made_width``), from which each need's size is made when a
        # clip is handed over (``sized``), as FrameScaler makes it
        self._buffer: dict[int, dict[int | None, np.ndarray]] = {}
        self._rgb: dict[int, dict[int | None, np.ndarray]] = {}
        # clips of closed scenes whose frames are all still held are handed over as late as possible: when their
        # first frame is about to leave the hold (planned again then, with the transitions reported since), or at
        # ``settle`` as finally planned (a transition or a purity cut found later moves clips)
        self._due_from: float = math.inf  # first frame of the earliest such clip
        self._handed: set[tuple[int, int]] = set()
        self._cuts: Sequence[Sequence[int]] = [[] for _ in self.strides]  # each detector's raw hard cuts so far
        self._spans: Sequence[Sequence[tuple[int, int, int]]] = [[] for _ in self.strides]  # and transitions
        self._end_time_s: float | None = None
        self._signal = None
        self._transitions_key: tuple[int, ...] = ()
        self._known: list[tuple[int, int]] = []
        self._bytes = 0
        self._full = False  # the open scene outgrew max_bytes: nothing more is buffered until it closes
        self._start = 0  # first frame of the open scene
        self._seen = [0] * len(self.strides)  # raw cuts read so far, per detector
        self._seen_spans = [0] * len(self.strides)  # and transitions
        self._pending: list[list[int]] = [[] for _ in self.strides]  # raw cuts after the open scene's start
        self.overflowed_scenes = 0
        self.kept_clips = 0
        self.converted_frames = 0  # frames converted (at one size or more)

    def start(self, fps: float, sample_aspect_ratio: Fraction | None, change_signal=None) -> None:
        """A new stream: its clock rate (``curate.video.timeline.clock_fps``), pixel aspect ratio, and the scan's
        ``curate.shots.purity.ChangeSignal`` if it keeps one (``plan`` gets its scores so far, for the purity check)."""
        self._clock = FrameClock(fps)
        self._scaler = FrameScaler(sample_aspect_ratio)
        self._signal = change_signal

    def push(self, index: int, frame: av.VideoFrame, pts_s: float, detector_cuts: Sequence[Sequence[int]],
             detector_spans: Sequence[Sequence[tuple[int, int, int]]] | None = None) -> None:
        """Frame ``index`` (decode order, none skipped), its timestamp in seconds (NaN: none), each detector's raw
        hard cuts so far and its gradual transitions so far (``(first, last, cut)``, inclusive)."""
        self._cuts = detector_cuts
        if detector_spans is not None:
            if index == 0 and any(found is not None for found in detector_spans):
                self._lag += TRANSITION_LAG_FRAMES  # a scene can end earlier than its last frames tell
            self._spans = [() if found is None else found for found in detector_spans]
        # 1. its time (final a few frames later); the frame is held, the oldest held one converted where it may be picked
        self._times.extend(self._clock.push(pts_s))
        # held by bytes, not by a count from the first frame: a stream whose frames grow mid-way (a resolution
        # change) must not hold a count of large frames sized for small ones
        size = sum(plane.buffer_size for plane in frame.planes)
        self._held.append((index, frame))
        self._held_sizes.append(size)
        self._held_bytes += size
        while len(self._held) > MIN_HOLD_FRAMES and self._held_bytes > self._hold_bytes:
            oldest = self._held[0][0]
            if self._due_from <= oldest:
                self._hand_over_due(oldest)
            _, released = self._held.popleft()
            self._held_bytes -= self._held_sizes.popleft()
            self._rgb.pop(oldest, None)
            self._release(oldest, released)

        # 2. the detectors' new cuts, then every scene whose cut is settled
        for d, cuts in enumerate(detector_cuts):
            self._pending[d] += [c for c in cuts[self._seen[d]:] if c > self._start]
            self._seen[d] = len(cuts)
        for d, spans in enumerate(self._spans):  # a gradual transition ends a scene too, at its cut
            self._pending[d] += [cut for first, _, cut in spans[self._seen_spans[d]:] if cut > self._start and first > 0]
            self._seen_spans[d] = len(spans)
        for pending in self._pending:
            pending.sort()  # a detector's cuts and transitions arrive each in order, not together
        while True:
            cut = self._settled_cut(index)
            if cut is None:
                break
            self._close(cut, self._times.view()[:cut + 1], None)

    def finish(self, end_time_s: float) -> None:
        """The video ended after the last pushed frame at ``end_time_s``: close the scenes left."""
        self._times.extend(self._clock.flush())
        times = self._times.view().copy()
        self._end_time_s = end_time_s
        while (cut := self._settled_cut(None)) is not None:
            self._close(cut, times[:cut + 1], None)
        if self._start < len(times):
            self._close(len(times), times, end_time_s)
        self._buffer.clear()
        if not self.settles:
            self.settle(None)

    def settle(self, spans: Sequence[ClipSpan] | None) -> None:
        """After ``finish``: hand over the clips of ``spans`` (the final clips, kept ones) not handed over yet whose
        frames are still held (None: the clips as the detectors' events plan them); then drop every frame."""
        times = self._times.view()
        if spans is None:
            spans = self._plan_closed(times)
        for span in spans:
            if span.reject_reason is None and (span.start_frame, span.end_frame) not in self._handed:
                self._hand_over(span, times)
        self._due_from = math.inf
        self._held.clear()
        self._held_sizes.clear()
        self._held_bytes = 0
        self._rgb.clear()

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
            cuts, transitions = self._events()
            cuts = [c for c in {self._start, end, *cuts} if 0 < c < len(times) and self._start <= c <= end]
            last = end_time_s if end_time_s is not None else float(times[-1])
            held = {i for i, _ in self._held}
            for span in self.plan(sorted(cuts), times, last, transitions, self._change()):
                if span.reject_reason is None and self._start <= span.start_frame and span.end_frame <= end:
                    if span.start_frame in held:  # every frame of the clip is held (they come in order): later
                        self._due_from = min(self._due_from, span.start_frame)
                    else:
                        self._hand_over(span, times)
        for i in [i for i in self._buffer if i < end]:
            self._bytes -= sum(image.nbytes for image in self._buffer.pop(i).values())
        self._start = max(self._start, end)
        self._full = False

    def _events(self) -> tuple[list[int], list[tuple[int, int]]]:
        """The cuts and transitions reported so far, merged as split merges them (``merge_events``)."""
        spans = [[span for span in found if span[0] > 0] for found in self._spans]  # one at the start: padding
        points = [[c for c in cuts if not any(a <= c <= b for a, b, _ in found)]
                  for cuts, found in zip(self._cuts, spans)]
        return merge_events(points, self.strides, spans, self.window)

    def _transitions(self) -> list[tuple[int, int]]:
        """The merged transitions reported so far (computed again only when a detector reported another)."""
        key = tuple(len(found) for found in self._spans)
        if key != self._transitions_key:
            self._transitions_key, self._known = key, self._events()[1]
        return self._known

    def _plan_closed(self, times: np.ndarray) -> list[ClipSpan]:
        """The kept clips of the closed scenes (frames before ``self._start``), planned from every event so far."""
        end = min(self._start, len(times))
        if end == 0:
            return []
        cuts, transitions = self._events()
        # clips that start before the oldest held frame cannot be handed over: plan from the last cut before it (the
        # frames before that cut are one scene, whose clips are dropped)
        oldest = self._held[0][0] if self._held else end
        floor = max([0, *(c for c in cuts if c <= oldest)])
        cuts = [c for c in cuts if c >= floor]
        transitions = [(a, b) for a, b in transitions if b >= floor]
        change = self._change()
        if end < len(times):
            spans = self.plan(sorted({*(c for c in cuts if 0 < c < end), end}), times[:end + 1], float(times[end]),
                              [(a, b) for a, b in transitions if a < end], change)
        else:
            last = self._end_time_s if self._end_time_s is not None else float(times[-1])
            spans = self.plan(sorted(c for c in cuts if 0 < c < end), times, last, transitions, change)
        return [span for span in spans if span.reject_reason is None and span.end_frame <= end
                and span.start_frame >= floor]

    def _change(self) -> np.ndarray | None:
        """The scan's change signal so far (None: it keeps none)."""
        return None if self._signal is None else self._signal.scores

    def _hand_over_due(self, oldest: int) -> None:
        """Frame ``oldest`` is about to leave the hold: hand over the clips of closed scenes that start at or before
        it, as planned now, and note where the next such clip starts."""
        times = self._times.view()
        self._due_from = math.inf
        for span in self._plan_closed(times):
            if (span.start_frame, span.end_frame) in self._handed or span.start_frame < self._held[0][0]:
                continue  # handed over, or its first frame is gone already
            if span.start_frame <= oldest:
                self._hand_over(span, times)
            else:
                self._due_from = min(self._due_from, span.start_frame)

    def _hand_over(self, span: ClipSpan, times: np.ndarray) -> None:
        held = dict(self._held)
        picked: dict[FrameNeed, list[int]] = {}
        for need in self.needs:
            picks = [frame_index_at(times, t, span.start_frame) for t in need.times(span.start_s, span.end_s)]
            made = made_width(need.width)
            if not all(i in held or made in self._buffer.get(i, {}) for i in picks):
                return  # not converted when it left the hold (a guess proved wrong, or the scene outgrew
                # max_bytes): the steps decode this clip
            picked[need] = picks
        frames: dict[FrameNeed, list[Frame]] = {}
        for need, picks in picked.items():
            made, images = made_width(need.width), []
            for i in picks:
                rgb = self._buffer.get(i, {})
                if made not in rgb:  # a held frame: converted now, once per width (clips of one scene may share it)
                    rgb = self._rgb.setdefault(i, {})
                    if made not in rgb:
                        self.converted_frames += 1
                        rgb.update(self._scaler.images(held[i], [made], rgb))
                image = sized(rgb, need.width)
                images.append(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if need.grey else image)
            frames[need] = _one_size([Frame(float(times[i]), image) for i, image in zip(picks, images)])
        self.kept_clips += 1
        self._handed.add((span.start_frame, span.end_frame))
        self.on_clip(span.start_frame, span.end_frame, frames)

    # -------------------------------------------------------------------------------------------- frames
    def _release(self, index: int, frame: av.VideoFrame) -> None:
        """Frame ``index`` leaves the hold: convert it at the sizes of the needs it may still be picked for."""
        if self._full:
            return
        sizes = self._pickable_sizes(index)
        if sizes:
            self._store(index, self._scaler.images(frame, {made_width(width) for width, _ in sizes}))

    def _store(self, index: int, images: dict[int | None, np.ndarray]) -> None:
        """Add converted images of frame ``index`` to the buffer; past ``max_bytes`` the open scene keeps nothing."""
        if self._full:
            return
        self.converted_frames += 1
        self._buffer.setdefault(index, {}).update(images)
        self._bytes += sum(image.nbytes for image in images.values())
        if self._bytes > self.max_bytes:
            self._full = True
            self.overflowed_scenes += 1
            self._buffer.clear()
            self._bytes = 0

    def _pickable_sizes(self, i: int) -> set[Size]:
        """The sizes of the needs that may pick frame ``i`` of the open scene in one of its clips, from what is known
        now: the scene's start and the gradual transitions reported in it, the times so far, and that its cut comes
        at least ``_lag`` frames before the last final time. Where unsure, the frame may be picked."""
        times = self._times.view()
        n = len(times)
        first = self._start + self.trim if self._start > 0 else self._start  # the scene's first clip starts here
        for a, b in self._transitions():
            if a <= i <= b:
                return set()  # inside a transition: in no clip
            if self._start <= b < i:
                first = max(first, b + 1 + self.trim)  # the clips after a transition start after it
        if i < first:
            return set()  # trimmed off
        if i + 1 >= n or first >= n:
            return set(self.sizes)  # times not final yet (the hold is longer than the clock's delay: not expected)
        start_s, t, after = times[first], times[i], times[i + 1]
        if self.max_clip_s is not None and t - start_s >= self.max_clip_s / 2 - 1e-6:
            return set(self.sizes)  # a chunk of a long scene may start anywhere from here
        # the first clip ends (exclusive) at or after the frame ``_lag`` frames back, less the trim; or, if the scene
        # is cut into chunks, at or after half of max_clip_s (every chunk is longer)
        end_s = times[max(first + 1, min(n - 1, n - 1 - self._lag - self.trim))]
        if self.max_clip_s is not None:
            end_s = min(end_s, start_s + self.max_clip_s / 2)
        sizes = set()
        for need in self.needs:
            key = (need.width, need.grey)
            if key in sizes:
                continue
            if need.fps is not None:
                # frame i is picked for a grid time g = start_s + k / fps with t <= g + tol < after
                k = math.ceil((t - TIME_TOLERANCE_S - start_s) * need.fps) - 1
                if any(t <= start_s + j / need.fps + TIME_TOLERANCE_S < after for j in (k, k + 1, k + 2)):
                    sizes.add(key)
                continue
            for p in need.positions:
                if p == 0.0:
                    pick = i == first
                else:  # the position's time (sample_times: at least this) must come before the next frame
                    earliest = min(start_s + p * (end_s - start_s), end_s - END_EPSILON_S)
                    pick = earliest - 2 * TIME_TOLERANCE_S < after
                if pick:
                    sizes.add(key)
                    break
        return sizes
