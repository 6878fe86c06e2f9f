"""Accuracy and cost of scene-cut settings of ``curate.shots.scan.scan_scenes`` on the shared footage.

Run from the project root::

    python benchmarks/cut_accuracy.py            # every setting (~3-4 min on 2 busy cores)
    python benchmarks/cut_accuracy.py --quick    # the default detectors and cascade only (~1 min)

For every setting it scans every video listed in ``ground_truth.json`` and prints one markdown
row: precision, recall and F1 over all true events pooled, false cuts on videos with no cut, the purity and yield
of split's clips (``benchmarks/purity.py``; split's default lengths), and
the wall time of its scans divided by the wall time of a plain single-threaded PyAV decode of the
same videos, each plain decode run right before the scan of the same video so that load from
other processes hits both alike (``--repeat N`` keeps the fastest of N of each).

Scoring rules:

- A true event is a hard cut (a frame index) or a gradual transition (an inclusive frame range).
  Annotations come from ``cuts`` / ``cuts_decode_index`` / ``cuts_stream<k>_*`` (k = which video
  stream the scan decoded) with ``gradual`` / ``gradual_stream<k>_*``.
- A detected cut matches an unmatched event within +-TOLERANCE_FRAMES frames (of the cut, or of
  the range of a gradual transition); each event matches at most one detection, and every other
  detection is a false positive. Videos whose ``basis`` is ``none`` are one continuous shot, so
  every cut found there is false; ``psd_fades.mp4`` and ``psd_counter.mp4`` have no hard cut either.

Annotations: ``ground_truth.json`` with ``CORRECTIONS`` (below), checked frame by frame: ``psd_testvideo.mp4``'s
fades and dissolve, which PySceneDetect's goldens leave out, and a cut in the first frames of two videos.

Full run, 2 CPU cores shared with other jobs (load ~4), so the cost column moves by about +-0.1
from run to run; plain decode of all 18 videos took 8.4 s:

| setting | P | R | F1 | TP | FP | FN | FP on no-cut videos | cost vs plain decode |
|---|---|---|---|---|---|---|---|---|
| content (defaults) | 0.91 | 0.81 | 0.853 | 29 | 3 | 7 | 2 | 1.23x |
| adaptive (defaults) | 0.97 | 0.81 | 0.879 | 29 | 1 | 7 | 1 | 1.28x |
| histogram (defaults) | 0.57 | 0.81 | 0.667 | 29 | 22 | 7 | 21 | 1.33x |
| threshold (defaults) | 0.00 | 0.00 | 0.000 | 0 | 6 | 36 | 2 | 1.23x |
| content threshold=30 | 0.94 | 0.81 | 0.866 | 29 | 2 | 7 | 1 | 1.45x |
| content threshold=35 | 0.96 | 0.75 | 0.844 | 27 | 1 | 9 | 0 | 1.32x |
| adaptive adaptive_threshold=4 | 0.97 | 0.78 | 0.862 | 28 | 1 | 8 | 1 | 1.37x |
| adaptive luma_only | 0.93 | 0.75 | 0.831 | 27 | 2 | 9 | 2 | 1.35x |
| histogram threshold=0.35 | 0.58 | 0.72 | 0.642 | 26 | 19 | 10 | 18 | 1.28x |
| threshold fade_bias=1 (cut at fade-in) | 0.67 | 0.11 | 0.190 | 4 | 2 | 32 | 2 | 1.31x |
| content@2 threshold=35 | 0.90 | 0.78 | 0.836 | 28 | 3 | 8 | 2 | 1.29x |
| content@4 threshold=35 | 0.84 | 0.86 | 0.849 | 31 | 6 | 5 | 5 | 1.32x |
| adaptive@2 | 0.97 | 0.78 | 0.862 | 28 | 1 | 8 | 1 | 1.22x |
| adaptive@4 | 0.94 | 0.83 | 0.882 | 30 | 2 | 6 | 0 | 1.20x |
| histogram@4 threshold=0.35 | 0.57 | 0.78 | 0.659 | 28 | 21 | 8 | 20 | 1.42x |
| adaptive@1 + adaptive@2 | 0.97 | 0.81 | 0.879 | 29 | 1 | 7 | 1 | 1.26x |
| adaptive@1 + adaptive@4 (adaptive_threshold=4) | 0.97 | 0.83 | 0.896 | 30 | 1 | 6 | 1 | 1.26x |
| adaptive@1 + content@4 threshold=50 | 0.97 | 0.83 | 0.896 | 30 | 1 | 6 | 1 | 1.31x |
| adaptive@1 + histogram@4 threshold=0.5 | 0.61 | 0.86 | 0.713 | 31 | 20 | 5 | 19 | 1.41x |
| content@1 t=30 + adaptive@2 | 0.91 | 0.81 | 0.853 | 29 | 3 | 7 | 2 | 1.21x |
| DEFAULT_CASCADE, 64 px | 0.94 | 0.92 | 0.930 | 33 | 2 | 3 | 2 | 1.22x |
| DEFAULT_CASCADE, 128 px (default) | 0.94 | 0.92 | 0.930 | 33 | 2 | 3 | 2 | 1.32x |
| DEFAULT_CASCADE, 256 px | 0.94 | 0.92 | 0.930 | 33 | 2 | 3 | 2 | 1.51x |
| DEFAULT_CASCADE, full size | 0.94 | 0.92 | 0.930 | 33 | 2 | 3 | 2 | 2.94x |

Reading: AdaptiveDetector with its defaults is the best PySceneDetect detector (no strided or added
PySceneDetect detector beats it by more than one event); ``DEFAULT_CASCADE`` adds the dissolve test
(``curate/shots/dissolve.py``, every other frame), which finds the dissolve of ``nasa_13013.mp4`` and
the five fades and dissolves of ``psd_testvideo.mp4`` (F1 0.879 -> 0.930). Its false cuts are in the
two synthetic clips (``psd_counter.mp4``: the flat background switches colour at frame 20;
``psd_fades.mp4``: a picture fading in and out of black, annotated as no cut); it misses the cuts in
the first 15 frames of ``mmaction2_demo.mp4`` and ``moviepy_nature_montage.mp4`` and the two-frame
transition that opens ``opencv_Megamind.avi`` (PySceneDetect reports no cut in the first
``min_scene_len`` frames). ContentDetector fires on fast motion (cockatoo 157, mmaction2_demo 276,
mmaction2_test2 257); strides miss cuts and add false ones in motion; HistogramDetector fires on every
step of the fades of ``psd_fades.mp4``; ThresholdDetector finds fades to black, not cuts. The
detector input width (64, 128, 256 px or full size) changes no result, only the cost.
``benchmarks/transitions.py`` scores the same settings and TransNetV2 on harder material.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import av

from purity import Purity, clip_purity

from curate.shots.cascade import DEFAULT_CASCADE, DetectorSpec
from curate.shots.clips import plan_clips
from curate.shots.scan import DEFAULT_DOWNSCALE_WIDTH, SceneScan, scan_scenes

TOLERANCE_FRAMES = 2
VIDEOS_DIR = Path(os.environ.get("CURATE_TEST_VIDEOS", Path(__file__).resolve().parents[2] / "shared" / "videos"))
FOOTAGE_DIR = Path(os.environ.get("CURATE_FOOTAGE", VIDEOS_DIR.parent / "footage"))


@dataclass(frozen=True)
class Setting:
    """One row of the table: a cascade and the keyword arguments of scan_scenes."""

    label: str
    detectors: tuple[DetectorSpec, ...]
    options: dict = field(default_factory=dict)
    quick: bool = False  # also run with --quick


def _d(kind: str, stride: int = 1, **params: float) -> DetectorSpec:
    return DetectorSpec(kind, stride, params)


SETTINGS: list[Setting] = [
    # each detector with PySceneDetect's defaults, every frame
    Setting("content (defaults)", (_d("content"),), quick=True),
    Setting("adaptive (defaults)", (_d("adaptive"),), quick=True),
    Setting("histogram (defaults)", (_d("histogram"),), quick=True),
    Setting("threshold (defaults)", (_d("threshold"),), quick=True),
    # tuned: the best (and a stricter) value of a grid search run on the same footage over content
    # threshold 20-50; adaptive_threshold 2.5-5 x min_content_val 15-25 x window_width 2-3;
    # histogram threshold 0.2-0.6; threshold 8-30 x fade_bias -1, 0, 1 (adaptive's defaults won)
    Setting("content threshold=30", (_d("content", threshold=30.0),)),
    Setting("content threshold=35", (_d("content", threshold=35.0),)),
    Setting("adaptive adaptive_threshold=4", (_d("adaptive", adaptive_threshold=4.0),)),
    Setting("adaptive luma_only", (_d("adaptive", luma_only=True),)),
    Setting("histogram threshold=0.35", (_d("histogram", threshold=0.35),)),
    Setting("threshold fade_bias=1 (cut at fade-in)", (_d("threshold", fade_bias=1.0),)),
    # lower effective frame rates
    Setting("content@2 threshold=35", (_d("content", 2, threshold=35.0),)),
    Setting("content@4 threshold=35", (_d("content", 4, threshold=35.0),)),
    Setting("adaptive@2", (_d("adaptive", 2),)),
    Setting("adaptive@4", (_d("adaptive", 4),)),
    Setting("histogram@4 threshold=0.35", (_d("histogram", 4, threshold=0.35),)),
    # cascades
    Setting("adaptive@1 + adaptive@2", (_d("adaptive"), _d("adaptive", 2))),
    Setting(
        "adaptive@1 + adaptive@4 (adaptive_threshold=4)",
        (_d("adaptive"), _d("adaptive", 4, adaptive_threshold=4.0)),
        quick=True,
    ),
    Setting("adaptive@1 + content@4 threshold=50", (_d("adaptive"), _d("content", 4, threshold=50.0))),
    Setting("adaptive@1 + histogram@4 threshold=0.5", (_d("adaptive"), _d("histogram", 4, threshold=0.5))),
    Setting("content@1 t=30 + adaptive@2", (_d("content", threshold=30.0), _d("adaptive", 2))),
    # detector input size, default cascade
    Setting("DEFAULT_CASCADE, 64 px", DEFAULT_CASCADE, {"downscale_width": 64}),
    Setting(f"DEFAULT_CASCADE, {DEFAULT_DOWNSCALE_WIDTH} px (default)", DEFAULT_CASCADE, quick=True),
    Setting("DEFAULT_CASCADE, 256 px", DEFAULT_CASCADE, {"downscale_width": 256}),
    Setting("DEFAULT_CASCADE, full size", DEFAULT_CASCADE, {"downscale_width": None}),
    Setting("DEFAULT_CASCADE + flash", (*DEFAULT_CASCADE, _d("flash")), quick=True),
]


@dataclass
class Truth:
    cuts: list[int]
    gradual: list[tuple[int, int]]

    @property
    def empty(self) -> bool:
        return not self.cuts and not self.gradual


# Annotations corrected here, each checked by looking at the frames (and, for the fades, at the mean luma of every
# frame: the ranges are the frames that differ from both neighbouring plateaus). ground_truth.json's values came
# from PySceneDetect, which reports no cut in a video's first 15 frames and no gradual transition.
CORRECTIONS = {
    # fade in from black 211-239, out 331-359, in 394-422 (the annotated "cut" 394 is its first frame), a
    # cross-dissolve between two photographs 529-557, fade out 664-692; hard cuts 30 and 180
    "psd_testvideo.mp4": Truth([30, 180], [(211, 239), (331, 359), (394, 422), (529, 557), (664, 692)]),
    # frames 0-4 are another shot (a hand over the watermelon): a hard cut at 5
    "mmaction2_demo.mp4": Truth([5], []),
    # two black frames, then the first shot: a cut at 2
    "moviepy_nature_montage.mp4": Truth([2, 126, 214, 354, 519, 625, 738], []),
}


def annotated_truth(name: str, entry: dict, video_ordinal: int) -> Truth:
    """The true events of video ``name``: ``CORRECTIONS`` where there is one (default stream), else its annotation."""
    if name in CORRECTIONS and video_ordinal == 0:
        return CORRECTIONS[name]
    return truth_for(entry, video_ordinal)


def truth_for(entry: dict, video_ordinal: int) -> Truth:
    """True events of one ground_truth.json entry for the ``video_ordinal``-th video stream."""
    if entry.get("basis") == "none":
        return Truth([], [])
    for key in ("cuts", "cuts_decode_index"):
        if key in entry:
            return Truth(list(entry[key]), [tuple(g) for g in entry.get("gradual", [])])
    prefix = f"cuts_stream{video_ordinal}_"
    for key, cuts in entry.items():
        if key.startswith(prefix):
            gradual = entry.get("gradual_" + key.removeprefix("cuts_"), [])
            return Truth(list(cuts), [tuple(g) for g in gradual])
    raise KeyError(f"no cut annotation for video stream #{video_ordinal} in {sorted(entry)}")


def footage_group(entry: dict) -> str:
    """The benchmark group of one ``../shared/footage/truth.json`` entry: ``footage`` (edited, verified),
    ``footage_single`` (one verified shot: every cut found is false) or ``footage_unverified`` (truth not settled by
    eye: scored apart, never pooled with the others)."""
    if entry["basis"] != "verified":
        return "footage_unverified"
    if entry["shots"] not in ("edited", "single"):
        raise ValueError(f"truth.json: shots is {entry['shots']!r}; expected 'edited' or 'single'")
    return "footage" if entry["shots"] == "edited" else "footage_single"


def footage_truth(entry: dict) -> Truth:
    """True events of one ``truth.json`` entry, in the conventions of ``ground_truth.json`` (its ``_conventions``):
    a cut is the decode-order index of the first frame of the new shot in the first video stream, a gradual
    transition an inclusive frame range, and fades at the very start or end of a file are not events (they are left
    out of ``gradual`` there, so nothing is dropped here)."""
    truth = Truth(sorted(int(c) for c in entry["cuts"]), sorted((int(a), int(b)) for a, b in entry["gradual"]))
    frames = entry["frames"]
    for a, b in truth.gradual:
        if not 0 <= a <= b < frames:
            raise ValueError(f"truth.json: gradual range {[a, b]} is not an inclusive range inside 0..{frames - 1}")
    if any(not 0 < c < frames for c in truth.cuts):
        raise ValueError(f"truth.json: cuts {truth.cuts} must lie in 1..{frames - 1} (the first frame of a new shot)")
    return truth


def match(detected: list[int], truth: Truth, tolerance: int = TOLERANCE_FRAMES) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives) under the rules of the module docstring."""
    events = [(c - tolerance, c + tolerance) for c in truth.cuts]
    events += [(a - tolerance, b + tolerance) for a, b in truth.gradual]
    matched = [False] * len(events)
    tp = fp = 0
    for cut in sorted(detected):
        open_events = [i for i, (lo, hi) in enumerate(events) if not matched[i] and lo <= cut <= hi]
        if not open_events:
            fp += 1
            continue
        best = min(open_events, key=lambda i: abs((events[i][0] + events[i][1]) / 2 - cut))
        matched[best] = True
        tp += 1
    return tp, fp, len(events) - tp


def plain_decode_seconds(path: Path) -> float:
    """Wall time of decoding every frame of the first video stream, single-threaded, doing nothing else."""
    start = time.perf_counter()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        for _ in container.decode(stream):
            pass
    return time.perf_counter() - start


def video_ordinal(path: Path, stream_index: int) -> int:
    with av.open(str(path)) as container:
        return [s.index for s in container.streams.video].index(stream_index)


@dataclass
class Row:
    label: str
    tp: int = 0
    fp: int = 0
    fn: int = 0
    negative_fp: int = 0
    purity: Purity = field(default_factory=Purity)  # split's kept clips (min_clip_s 1, max_clip_s 30, trim 2)
    seconds: float = 0.0
    plain_seconds: float = 0.0
    details: list[str] = field(default_factory=list)

    def scores(self) -> tuple[float, float, float]:
        precision = self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0
        recall = self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return precision, recall, f1


def run_setting(setting: Setting, videos: dict[str, dict], repeat: int) -> Row:
    row = Row(setting.label)
    for name, entry in videos.items():
        path = VIDEOS_DIR / name
        plain, scanning = [], []
        for _ in range(repeat):
            plain.append(plain_decode_seconds(path))
            start = time.perf_counter()
            scan: SceneScan = scan_scenes(path, setting.detectors, **setting.options)
            scanning.append(time.perf_counter() - start)
        row.plain_seconds += min(plain)
        row.seconds += min(scanning)
        truth = annotated_truth(name, entry, video_ordinal(path, scan.stream_index))
        tp, fp, fn = match(scan.cut_frames, truth)
        row.tp, row.fp, row.fn = row.tp + tp, row.fp + fp, row.fn + fn
        if truth.empty:
            row.negative_fp += fp
        clips = plan_clips(scan.cut_frames, scan.frame_times, scan.end_time_s, min_clip_s=1.0, max_clip_s=30.0,
                           trim_frames=2, transitions=scan.transitions)  # split's defaults
        row.purity.add(clip_purity([c for c in clips if c.reject_reason is None], truth.cuts, list(truth.gradual),
                                   scan.frame_times, scan.end_time_s, 1.0))  # fmt: skip
        if fp or fn:
            row.details.append(f"{name}: found {scan.cut_frames}, truth {truth.cuts} gradual {truth.gradual}")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="only the defaults and the chosen cascade")
    parser.add_argument("--details", action="store_true", help="list the misses and false cuts of every setting")
    parser.add_argument("--repeat", type=int, default=1, help="time each scan and plain decode N times; keep the best")
    args = parser.parse_args()

    truth_file = VIDEOS_DIR / "ground_truth.json"
    if not truth_file.is_file():
        sys.exit(f"no {truth_file}: set CURATE_TEST_VIDEOS to the folder of the shared footage")
    videos = {k: v for k, v in json.loads(truth_file.read_text()).items() if not k.startswith("_")}
    settings = [s for s in SETTINGS if s.quick or not args.quick]

    rows = []
    for setting in settings:
        rows.append(run_setting(setting, videos, args.repeat))
        print(f"  ran {setting.label}", file=sys.stderr, flush=True)
    plain_total = min(row.plain_seconds for row in rows)

    n_events = rows[0].tp + rows[0].fn
    n_negative = sum(1 for name, entry in videos.items() if annotated_truth(name, entry, 0).empty)
    print(f"\n{len(videos)} videos, {n_events} true events, {n_negative} videos without any cut; "
          f"match tolerance +-{TOLERANCE_FRAMES} frames; plain decode of all (fastest pass): {plain_total:.2f} s\n")
    print("| setting | P | R | F1 | TP | FP | FN | FP on no-cut videos | purity (impure/clips) | yield | "
          "cost vs plain decode |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        p, r, f1 = row.scores()
        print(f"| {row.label} | {p:.2f} | {r:.2f} | {f1:.3f} | {row.tp} | {row.fp} | {row.fn} | "
              f"{row.negative_fp} | {row.purity.purity:.3f} ({row.purity.impure}/{row.purity.clips}) | "
              f"{row.purity.yield_:.3f} | {row.seconds / row.plain_seconds:.2f}x |")
    for row in rows:
        if args.details or row.label.endswith("(default)"):
            print(f"\n{row.label}: misses and false cuts")
            print("\n".join(f"- {line}" for line in row.details) or "- none")


if __name__ == "__main__":
    main()
