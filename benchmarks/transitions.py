"""Cut and transition accuracy, and cost, of scene-split settings on hard material: synthetic edits full of gradual
transitions (``benchmarks/transition_media.py``) plus the annotated real fixtures.

    python benchmarks/transitions.py                     # every setting: ~1 h on 2 busy cores, most of it TransNetV2
    python benchmarks/transitions.py --published         # + TransNetV2 in the package's 100/25 window scheme
    python benchmarks/transitions.py --quick             # the PySceneDetect and dissolve settings only (minutes)
    python benchmarks/transitions.py --media DIR         # where edits are rendered ($TMPDIR/curate-transitions)
    python benchmarks/transitions.py --hard --quick      # the harder edits (hard_edits.py): tuning and test parts
    python benchmarks/transitions.py --groups footage --per-video   # real edited files of ../shared/footage only

What it does, in order:

1. Renders the synthetic edits (once; cached in ``--media``, outside the repository) and reads the annotations of the
   shared fixtures (``ground_truth.json``) with ``benchmarks/cut_accuracy.py``'s three ``CORRECTIONS``
   (``psd_testvideo.mp4``'s five fades and dissolves, which the upstream goldens leave out, and two hard cuts in
   the first frames of videos, where PySceneDetect, whose output the annotations were checked against, reports
   none), each checked by looking at the frames; and the files of ``../shared/footage`` with its ``truth.json``
   (same conventions): ``footage`` (edited, truth verified), ``footage_single`` (one verified shot: every cut found
   is false, and costs yield, never purity) and ``footage_unverified`` (truth not settled by eye). No edited file
   there is a source of the synthetic edits; the single shots are (``hard_edits.sources``).
2. Runs ``scan_scenes`` for every setting over every video, right after a plain one-thread PyAV decode of the same
   file. Cost = CPU seconds of the scans / CPU seconds of the plain decodes (``time.process_time``, which load from
   other processes disturbs far less than wall time). TransNetV2 runs once per window scheme and video: its outputs
   are recorded, and settings that differ only in threshold or in the other detectors replay them through the same
   ``scan_scenes``; their cost adds the recorded network time to the replayed scan's.
3. Scores every setting: a true event is a hard cut or a gradual transition (an inclusive frame range); a reported
   cut matches an unmatched event within +-2 frames (a gradual transition: anywhere inside it, +-2); each event
   matches once, every other reported cut is a false positive (``benchmarks/cut_accuracy.py``'s rules). Also
   reported: recall per kind of synthetic junction, and ``leak``: frames of true gradual transitions that end up
   inside a clip (``plan_clips`` with ``trim_frames=2``, ``min_clip_s=0``), per true gradual transition.
   Purity and yield (``benchmarks/purity.py``): the clips split keeps (``plan_clips`` with split's defaults:
   ``min_clip_s=1``, ``max_clip_s=30``, ``trim_frames=2``), the share that hold no true cut or part of a gradual
   transition (one frame of slack), and their seconds over the seconds of true shots at least ``min_clip_s`` long;
   per group (synthetic edits, or with ``--hard`` their tuning and test parts; annotated fixtures).
4. Prints the table (markdown), and the speed of TransNetV2 per window scheme: new frames per CPU-second of one
   thread, and how far its probabilities move from the published scheme's (100-frame windows, 25 frames of context).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cut_accuracy import (FOOTAGE_DIR, VIDEOS_DIR, Truth, annotated_truth, footage_group, footage_truth,  # noqa: E402
                          match, video_ordinal)  # fmt: skip
from purity import Purity, clip_purity  # noqa: E402
from transition_media import build  # noqa: E402

from curate.models.transnetv2 import DEFAULT_TRANSNETV2, TransNetV2, load_transnetv2, transnetv2_weights  # noqa: E402
from curate.shots.cascade import DEFAULT_CASCADE, DetectorSpec  # noqa: E402
from curate.shots.clips import plan_clips  # noqa: E402
from curate.shots.purity import PurityCheck  # noqa: E402
from curate.shots.scan import SceneScan, scan_scenes  # noqa: E402

TOLERANCE = 2
FAMILIES = {"cut": "cut", "fade": "dissolve", "dissolve": "dissolve", "fadeblack": "dip", "fadewhite": "dip",
            "flash": "dip", "same": "same"}  # fmt: skip
MIN_CLIP_S, MAX_CLIP_S, TRIM_FRAMES = 1.0, 30.0, 2  # split's defaults


def family(kind: str) -> str:
    if kind in FAMILIES:
        return FAMILIES[kind]
    return "wipe" if kind.startswith("wipe") else "slide" if kind.startswith("slide") else "graphic"


@dataclass(frozen=True)
class Setting:
    label: str
    detectors: tuple[DetectorSpec, ...]
    quick: bool = False  # run with --quick
    published: bool = False  # the package's own window scheme: run with --published (it doubles the time)
    skip_loop_filter: str = "none"  # scan_scenes' decoder option
    purity: PurityCheck | None = None  # the purity check after split (curate.shots.purity)


def _d(kind: str, stride: int = 1, **params) -> DetectorSpec:
    return DetectorSpec(kind, stride, params)


def _tn(threshold: float, window: int = 200, context: int = 25) -> DetectorSpec:
    return _d("transnetv2", threshold=threshold, window=window, context=context)


SETTINGS = [
    Setting("content (PySceneDetect defaults)", (_d("content"),), quick=True),
    Setting("adaptive (PySceneDetect defaults; the old default)", (_d("adaptive"),), quick=True),
    Setting("adaptive + threshold (PySceneDetect's fade detector)", (_d("adaptive"), _d("threshold")), quick=True),
    Setting("adaptive + content@8 threshold=40 (SVD-style cascade)",
            (_d("adaptive"), _d("content", 8, threshold=40.0))),
    Setting("dissolve max_residual=0.15", (_d("dissolve", max_residual=0.15),), quick=True),
    Setting("adaptive + dissolve max_residual=0.15", (_d("adaptive"), _d("dissolve", max_residual=0.15)), quick=True),
    Setting("adaptive + dissolve max_residual=0.2 min_marks=3",
            (_d("adaptive"), _d("dissolve", max_residual=0.2, min_marks=3)), quick=True),
    Setting("adaptive + dissolve@2 max_residual=0.2 min_marks=3 (DEFAULT_CASCADE before)",
            (_d("adaptive"), _d("dissolve", 2, max_residual=0.2, min_marks=3)), quick=True),
    *[Setting(f"adaptive + dissolve@2 max_residual={r} min_marks={m}",
              (_d("adaptive"), _d("dissolve", 2, max_residual=r, min_marks=m)), quick=True)
      for r, m in ((0.25, 5), (0.3, 6), (0.3, 10))],  # fmt: skip
    *[Setting(f"adaptive + dissolve@2 (DEFAULT_CASCADE{', offline.yaml' if skip == 'noref' else ''}), "
              f"skip_loop_filter={skip}", DEFAULT_CASCADE, quick=True, skip_loop_filter=skip)
      for skip in ("none", "noref", "all")],  # fmt: skip
    *[Setting(f"adaptive + dissolve@2 max_scale={m}", (_d("adaptive"), _d("dissolve", 2, max_scale=m)), quick=True,
              skip_loop_filter="noref") for m in (32, 64)],  # fmt: skip
    Setting("adaptive + flash", (_d("adaptive"), _d("flash")), quick=True, skip_loop_filter="noref"),
    Setting("adaptive + dissolve@2 + flash", (*DEFAULT_CASCADE, _d("flash")), quick=True, skip_loop_filter="noref"),
    Setting("adaptive + dissolve@2 max_scale=64 + flash", (_d("adaptive"), _d("dissolve", 2, max_scale=64),
            _d("flash")), quick=True, skip_loop_filter="noref"),  # fmt: skip
    *[Setting(f"adaptive + dissolve@2 + flash, purity {mode} ratio={r} level p{q}", (*DEFAULT_CASCADE, _d("flash")),
              quick=True, skip_loop_filter="noref", purity=PurityCheck(mode, ratio=r, level_percentile=q))
      for mode, r, q in (("cut", 3.0, 50.0), ("cut", 3.0, 25.0), ("cut", 3.0, 10.0), ("cut", 4.0, 25.0),
                         ("reject", 3.0, 25.0))],  # fmt: skip
    *[Setting(f"transnetv2 t=0.3{extra}, purity cut ratio=3.0 level p25{' + TransNetV2 clusters' if cluster else ''}",
              (*lead, _tn(0.3), *more), skip_loop_filter="noref",
              purity=PurityCheck("cut", ratio=3.0, level_percentile=25.0, min_cluster=cluster))
      for extra, lead, more, cluster in (("", (), (), 0), (" + flash", (), (_d("flash"),), 0),
                                          (" + flash", (), (_d("flash"),), 6),
                                          (" + adaptive + flash", (_d("adaptive"),), (_d("flash"),), 0))],  # fmt: skip
    Setting("transnetv2 t=0.3 + flash", (_tn(0.3), _d("flash")), skip_loop_filter="noref"),
    *[Setting(f"transnetv2 t=0.3 + flash, check ratio={r} level p{q}", (_tn(0.3), _d("flash")), skip_loop_filter="noref",
              purity=PurityCheck("cut", ratio=r, level_percentile=q)) for r, q in ((4.0, 25.0), (4.0, 50.0), (6.0, 25.0))],
    *[Setting(f"{name}, check ratio=4.0 level p25 min_change={m}", detectors, quick=quick, skip_loop_filter="noref",
              purity=PurityCheck("cut", min_change=m, ratio=4.0, level_percentile=25.0))
      for name, detectors, quick in (("transnetv2 t=0.3 + flash", (_tn(0.3), _d("flash")), False),
                                     ("adaptive + dissolve@2 + flash", (*DEFAULT_CASCADE, _d("flash")), True))
      for m in (30.0, 40.0)],  # fmt: skip
    *[Setting(f"transnetv2 t={t}" + (" (GPU_CASCADE, default.yaml)" if t == 0.3 else ""), (_tn(t),))
      for t in (0.3, 0.4, 0.5)],  # fmt: skip
    Setting("transnetv2 t=0.5, published windows 100/25", (_tn(0.5, 100, 25),), published=True),
    *[Setting(f"adaptive + transnetv2 t={t}", (_d("adaptive"), _tn(t))) for t in (0.3, 0.4, 0.5)],
    Setting("adaptive + dissolve + transnetv2 t=0.3", (_d("adaptive"), _d("dissolve"), _tn(0.3))),
]


class Recorder(torch.nn.Module):
    """Wraps the network: records its outputs per video (and the CPU time it took), or replays them."""

    def __init__(self, model: TransNetV2, cache: Path | None = None, weights: str = DEFAULT_TRANSNETV2) -> None:
        super().__init__()
        self.model, self.tapes, self.seconds, self.cache = model, {}, {}, cache
        self.weights = weights  # tapes of other weights are other files
        self._tape: list | None = None
        self._replay = False

    def _file(self, key: tuple) -> Path:
        parts = (Path(key[0]).name, *key[1:], Path(key[0]).stat().st_size)
        if self.weights != DEFAULT_TRANSNETV2:
            weights = transnetv2_weights(self.weights)
            parts += (str(weights.resolve()), weights.stat().st_size, weights.stat().st_mtime_ns)
        name = hashlib.sha256(repr(parts).encode()).hexdigest()
        return self.cache / f"tape-{name[:16]}.pt"

    def load(self, key: tuple) -> bool:
        """The outputs (and CPU time) of an earlier run of this benchmark on the same video, if kept in ``cache``."""
        if self.cache is None or key in self.tapes or not self._file(key).is_file():
            return key in self.tapes
        self.tapes[key], self.seconds[key] = torch.load(self._file(key))
        return True

    def save(self, key: tuple) -> None:
        if self.cache is not None:
            torch.save((self.tapes[key], self.seconds[key]), self._file(key))

    @property
    def device(self) -> torch.device:
        return self.model.device

    def start(self, key: tuple, replay: bool) -> None:
        self._replay = replay
        self._tape = self.tapes.setdefault(key, []) if not replay else list(self.tapes[key])
        self.seconds.setdefault(key, 0.0)
        self._key = key

    def forward(self, frames: torch.Tensor):
        if self._replay:
            return self._tape.pop(0)
        start = time.process_time()
        out = self.model(frames)
        self.seconds[self._key] += time.process_time() - start
        self._tape.append(out)
        return out


def plain_decode_cpu(path: Path, stream_index: int | None) -> float:
    start = time.process_time()
    with av.open(str(path)) as container:
        stream = container.streams[stream_index] if stream_index is not None else container.streams.video[0]
        stream.codec_context.thread_count = 1
        for _ in container.decode(stream):
            pass
    return time.process_time() - start


@dataclass
class Video:
    path: Path
    truth: Truth
    synthetic: bool
    kinds: list = field(default_factory=list)  # (kind, first frame) of each synthetic junction
    stream: int | None = None
    group: str = ""  # synthetic, tuning, test (the harder edits' parts), annotated, or footage(_single/_unverified)
    frames: int | None = None  # decoded frames the annotation counted (footage): checked against the scan


SYNTHETIC_GROUPS = ("synthetic", "tuning", "test")


def videos(media: Path, hard: bool = False, groups: tuple[str, ...] = ()) -> list[Video]:
    """Every video of the wanted ``groups`` (when empty: the synthetic edits and the annotated fixtures, as before
    the footage groups existed); synthetic edits are rendered only when wanted, footage files read only when named."""
    result = []
    if groups and not set(groups) & set(SYNTHETIC_GROUPS):
        pass
    elif hard:
        from hard_edits import build as build_hard

        for path, edit, truth in build_hard(media):
            result.append(Video(path, Truth(truth["cuts"], [tuple(g) for g in truth["gradual"]]), True,
                                truth["kinds"], group=edit.part))  # fmt: skip
    else:
        for path, truth in build(media):
            result.append(Video(path, Truth(truth["cuts"], [tuple(g) for g in truth["gradual"]]), True,
                                truth["kinds"], group="synthetic"))  # fmt: skip
    annotations = json.loads((VIDEOS_DIR / "ground_truth.json").read_text())
    for name, entry in annotations.items():
        if name.startswith("_"):
            continue
        path = VIDEOS_DIR / name
        truth = annotated_truth(name, entry, video_ordinal(path, _default_stream(path)))
        result.append(Video(path, truth, False, group="annotated"))
    if any(g.startswith("footage") for g in groups):
        result += footage_videos()
    return [v for v in result if not groups or v.group in groups]


def footage_videos(footage_dir: Path = FOOTAGE_DIR) -> list[Video]:
    """The files of ``../shared/footage`` with their ``truth.json`` (``cut_accuracy.footage_group``: edited files
    with verified truth are ``footage``, single verified shots ``footage_single``, the rest ``footage_unverified``).
    Its cuts count frames of the first video stream, so the scan must decode that one."""
    entries = json.loads((footage_dir / "truth.json").read_text())
    result = []
    for name, entry in sorted(entries.items()):
        if name.startswith("_"):
            continue
        path = footage_dir / name
        first = _first_video_stream(path)
        if _default_stream(path) != first:
            raise SystemExit(f"{name}: its default video stream is not the first one, which truth.json counts")
        result.append(Video(path, footage_truth(entry), False, group=footage_group(entry), frames=entry["frames"]))
    return result


def _first_video_stream(path: Path) -> int:
    with av.open(str(path)) as container:
        return container.streams.video[0].index


def _default_stream(path: Path) -> int:
    from curate.video.source import default_video_stream

    with av.open(str(path)) as container:
        return default_video_stream(container).index


@dataclass
class Row:
    label: str
    counts: dict = field(default_factory=dict)  # group -> [tp, fp, fn]
    seconds: dict = field(default_factory=dict)  # group -> seconds of video scanned
    per_video: dict = field(default_factory=dict)  # name -> (tp, fp, fn, Purity, cut frames)
    purity: dict = field(default_factory=dict)  # group -> Purity
    recall: dict = field(default_factory=dict)  # family -> [hit, total]
    leak: list = field(default_factory=list)
    cpu: float = 0.0
    plain: float = 0.0

    def prf(self, which: str) -> tuple[float, float, float]:
        if which == "all":
            tp, fp, fn = (sum(counts[i] for counts in self.counts.values()) for i in range(3))
        else:
            tp, fp, fn = self.counts.get(which, (0, 0, 0))
        p = tp / (tp + fp) if tp + fp else 1.0
        r = tp / (tp + fn) if tp + fn else 1.0
        return p, r, 2 * p * r / (p + r) if p + r else 0.0


def score(row: Row, video: Video, scan: SceneScan, check: PurityCheck | None = None) -> None:
    if video.frames is not None and len(scan.frame_times) != video.frames:
        raise SystemExit(f"{video.path.name}: the scan decoded {len(scan.frame_times)} frames, its annotation counts "
                         f"{video.frames}: the frame indices would not line up")
    tp, fp, fn = match(scan.cut_frames, video.truth, TOLERANCE)
    row.seconds[video.group] = row.seconds.get(video.group, 0.0) + scan.end_time_s - float(scan.frame_times[0])
    counts = row.counts.setdefault(video.group, [0, 0, 0])
    counts[0], counts[1], counts[2] = counts[0] + tp, counts[1] + fp, counts[2] + fn
    for kind, first in video.kinds:
        span = next(((a, b) for a, b in video.truth.gradual if a == first), (first, first))
        hit = any(span[0] - TOLERANCE <= c <= span[1] + TOLERANCE for c in scan.cut_frames)
        tally = row.recall.setdefault(family(kind), [0, 0])
        tally[0], tally[1] = tally[0] + hit, tally[1] + 1
    clips = plan_clips(scan.cut_frames, scan.frame_times, scan.end_time_s, min_clip_s=0.0, max_clip_s=None,
                       trim_frames=2, transitions=scan.transitions)  # fmt: skip
    for a, b in video.truth.gradual:
        row.leak.append(sum(max(0, min(c.end_frame, b + 1) - max(c.start_frame, a)) for c in clips))
    check = check or PurityCheck("off")
    kept = [c for c in check.plan(scan, min_clip_s=MIN_CLIP_S, max_clip_s=MAX_CLIP_S, trim_frames=TRIM_FRAMES)
            if c.reject_reason is None]
    tally = clip_purity(kept, video.truth.cuts, video.truth.gradual, scan.frame_times, scan.end_time_s, MIN_CLIP_S)
    row.purity.setdefault(video.group, Purity()).add(tally)
    row.per_video[video.path.name] = (tp, fp, fn, tally, list(scan.cut_frames),
                                      [(c.start_frame, c.end_frame) for c in kept])  # fmt: skip


def run(settings: list[Setting], all_videos: list[Video], network: Recorder | None,
        plain_once: bool = False) -> tuple[list[Row], dict]:  # fmt: skip
    """Score every setting on every video; also the network's probabilities per (video, window, context).
    ``plain_once``: one plain decode per video, shared by every setting's cost (cheaper, less robust to load)."""
    rows = [Row(s.label) for s in settings]
    scores: dict[tuple, np.ndarray] = {}
    for video in all_videos:
        once = plain_decode_cpu(video.path, None) if plain_once else None
        for setting, row in zip(settings, rows):
            tn = [d for d in setting.detectors if d.kind == "transnetv2"]
            key = (str(video.path), tn[0].params.get("window"), tn[0].params.get("context")) if tn else None
            replay = key is not None and network.load(key)
            if key is not None:
                network.start(key, replay)
            plain = once if once is not None else plain_decode_cpu(video.path, None)
            start = time.process_time()
            scan = scan_scenes(video.path, setting.detectors, transnet=network if tn else None,
                               skip_loop_filter=setting.skip_loop_filter, change_signal=setting.purity is not None)
            row.cpu += time.process_time() - start + (network.seconds[key] if replay else 0.0)
            row.plain += plain
            score(row, video, scan, setting.purity)
            if key is not None:
                scores[key] = scan.transnet_scores
                if not replay:
                    network.save(key)
        print(f"  {video.path.name}", file=sys.stderr, flush=True)
    return rows, scores


def window_speed(network: Recorder, scores: dict[tuple, np.ndarray]) -> list[str]:
    """Per window scheme: new frames per CPU-second of one thread, and how far its probabilities are from the
    published scheme's (100/25) on the same frames: the largest and the 99.9th percentile absolute difference."""
    lines = []
    for window, context in sorted({(k[1], k[2]) for k in network.tapes}):
        keys = [k for k in network.tapes if (k[1], k[2]) == (window, context)]
        frames = sum(len(scores[k]) for k in keys)
        seconds = sum(network.seconds[k] for k in keys)
        pairs = [(scores[k], scores.get((k[0], 100, 25))) for k in keys]
        diffs = np.concatenate([np.abs(a - b).ravel() for a, b in pairs if b is not None] or [np.full(1, np.nan)])
        lines.append(f"| {window}/{context} | {window / (window - 2 * context):.2f} | {frames / seconds:.0f} | "
                     f"{np.nanmax(diffs):.3f} / {np.nanpercentile(diffs, 99.9):.3f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="PySceneDetect and dissolve settings only")
    parser.add_argument("--media", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "curate-transitions")
    parser.add_argument("--only", default="", help="run only settings whose label contains this (| separates several; "
                                                   "=LABEL: that label exactly)")
    parser.add_argument("--published", action="store_true", help="also TransNetV2 in the package's window scheme")
    parser.add_argument("--hard", action="store_true", help="the harder edits of hard_edits.py (tuning and test)")
    parser.add_argument("--weights", default=DEFAULT_TRANSNETV2,
                        help="TransNetV2 weights: a local .pth (e.g. train_transnet.py's) or the default package ones")
    parser.add_argument("--groups", default="",
                        help="score only these groups, comma-separated: synthetic (or with --hard tuning, test), "
                             "annotated, footage, footage_single, footage_unverified (e.g. test,annotated); "
                             "default: all but the footage groups")
    parser.add_argument("--per-video", action="store_true", help="also a line per real video and setting")
    parser.add_argument("--plain-once", action="store_true",
                        help="one plain decode per video for every setting's cost, not one before each scan")
    args = parser.parse_args()
    torch.set_num_threads(1)  # one core per scan, as a split worker
    args.media.mkdir(parents=True, exist_ok=True)  # TransNetV2's recorded outputs go there even with no edits

    groups = tuple(g for g in args.groups.split(",") if g)
    all_videos = videos(args.media, args.hard, groups)
    settings = [s for s in SETTINGS if (s.quick or not args.quick) and (args.published or not s.published)
                and any(_picks(o, s.label) for o in args.only.split("|"))]  # fmt: skip
    needs_network = any(d.kind == "transnetv2" for s in settings for d in s.detectors)
    network = Recorder(load_transnetv2(args.weights, device="cpu"), args.media, args.weights) if needs_network else None
    rows, scores = run(settings, all_videos, network, args.plain_once)

    synthetic = [v for v in all_videos if v.synthetic]
    groups = list(dict.fromkeys(v.group for v in all_videos))
    events = {g: sum(len(v.truth.cuts) + len(v.truth.gradual) for v in all_videos if v.group == g) for g in groups}
    families = sorted({family(k) for v in synthetic for k, _ in v.kinds})
    cpu = f"{os.uname().machine}, " + _cpu_name()
    print(f"\nTransNetV2 weights: {args.weights}")
    print("\n" + "; ".join(f"{g}: {sum(v.group == g for v in all_videos)} videos, {events[g]} events" for g in groups)
          + f"; +-{TOLERANCE} frames; load {os.getloadavg()[0]:.1f}; CPU: {cpu}\n")
    print("| setting | " + " | ".join(f"{g} P / R / F1" for g in groups) + " | all P / R / F1 | recall: "
          + " / ".join(families) + " | leak | cost |")
    print("|---" * (len(groups) + 5) + "|")
    for row in rows:
        cells = [" / ".join(f"{x:.2f}" for x in row.prf(k)) for k in (*groups, "all")]
        recall = " / ".join(f"{row.recall.get(f, [0, 0])[0]}/{row.recall.get(f, [0, 0])[1]}" for f in families)
        print(f"| {row.label} | {' | '.join(cells)} | {recall} | {np.mean(row.leak):.1f} | "
              f"{row.cpu / row.plain:.2f}x |")
    print("\nFalse cuts per minute of video: " + "; ".join(
        f"{row.label}: " + ", ".join(f"{g} {row.counts[g][1] / row.seconds[g] * 60:.2f}" for g in groups)
        for row in rows))
    print(f"\nClips kept by split (min_clip_s {MIN_CLIP_S}, max_clip_s {MAX_CLIP_S}, trim_frames {TRIM_FRAMES}): "
          "purity = share holding no true transition (impure / clips), yield = clean clip s / true shot s\n")
    print("| setting | " + " | ".join(f"{g} purity (impure/clips) | {g} yield" for g in groups) + " | cost |")
    print("|---" * (2 * len(groups) + 2) + "|")
    for row in rows:
        cells = [f"{row.purity[g].purity:.3f} ({row.purity[g].impure}/{row.purity[g].clips}) | "
                 f"{row.purity[g].yield_:.3f}" for g in groups]  # fmt: skip
        print(f"| {row.label} | {' | '.join(cells)} | {row.cpu / row.plain:.2f}x |")
    if args.per_video:
        print("\n| video | setting | TP / FP / FN | impure / clips | clean s / shot s | cuts found | kept clips |")
        print("|---|---|---|---|---|---|---|")
        for video in (v for v in all_videos if not v.synthetic):
            for row in rows:
                tp, fp, fn, tally, cuts, kept = row.per_video[video.path.name]
                print(f"| {video.path.name} | {row.label} | {tp} / {fp} / {fn} | {tally.impure} / {tally.clips} | "
                      f"{tally.clean_s:.1f} / {tally.available_s:.1f} | {cuts} | {kept} |")
    if network is not None:
        print("\n| TransNetV2 window / context | frames computed per new frame | new frames per CPU-second "
              "(1 thread) | probability change vs 100/25: max / p99.9 |")
        print("|---|---|---|---|")
        print("\n".join(window_speed(network, scores)))


def _picks(only: str, label: str) -> bool:
    return label == only[1:] if only.startswith("=") else only in label


def _cpu_name() -> str:
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown CPU"
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "?")
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), [])
    wanted = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    return f"{name} ({', '.join(wanted) or 'no AVX2'}; {os.cpu_count()} cores)"


if __name__ == "__main__":
    main()
