"""The int8 PP-OCR detector against float32: ``ocr_area`` of every clip, and the detector's CPU time per frame.

    python benchmarks/ocr_int8.py                                   # ../shared/videos and ../shared/footage
    python benchmarks/ocr_int8.py --videos DIR --videos DIR2

1. split every file (``configs/offline.yaml``'s split: the default cascade), read each clip's first, middle and last
   frame at 320 px (what the OCR step reads);
2. ``ocr_area`` (the max over the 3 frames) with the float32 detector and with its int8 copy
   (``curate.scores.ocr_int8``; none of these files is among its calibration images, which are synthetic);
3. prints the differences, the clips on different sides of the default filter (``ocr_area <= 0.04``), the largest
   differences, and the detector's CPU milliseconds per 320x192 frame in each precision (one thread), with the CPU.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from curate.hardware import cpu  # noqa: E402
from curate.scores.ocr import covered_fraction  # noqa: E402
from curate.scores.ocr_ppocr import PpocrDetector  # noqa: E402
from curate.stages.ingest import Ingest  # noqa: E402
from curate.stages.split import Split  # noqa: E402
from curate.video.frame_needs import read_clip_frames  # noqa: E402

EXTENSIONS = {".mp4", ".avi", ".mkv", ".mov", ".webm", ".ts", ".m4v", ".mpg"}
FILTER = 0.04


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", action="append", help="a folder of videos (default ../shared/videos and footage)")
    args = parser.parse_args()
    folders = [Path(v) for v in args.videos or [ROOT.parent / "shared" / "videos", ROOT.parent / "shared" / "footage"]]
    paths = sorted(str(p) for folder in folders for p in folder.iterdir() if p.suffix.lower() in EXTENSIONS)

    ingest = Ingest(inputs=paths)
    ingest.setup()
    split = Split()
    split.setup()
    clips = split.process(ingest.process(pa.table({"video_path": paths})).kept).kept
    frames, _ = read_clip_frames(clips, [0.0, 0.5, 1.0], 320)
    detectors = {"fp32": PpocrDetector.load(device="cpu"), "int8": PpocrDetector.load(device="cpu", int8=True)}
    areas, cost = {}, {}
    for precision, detector in detectors.items():
        values, seconds, count = [], 0.0, 0
        for clip in frames:
            if not clip:
                values.append(np.nan)
                continue
            images = [f.image for f in clip]
            start = time.process_time()
            boxes = detector.detect(images)
            seconds, count = seconds + time.process_time() - start, count + len(images)
            values.append(max(covered_fraction(b, *image.shape[:2]) for b, image in zip(boxes, images)))
        areas[precision], cost[precision] = np.array(values), 1000 * seconds / max(1, count)

    fp32, int8 = areas["fp32"], areas["int8"]
    ok = np.isfinite(fp32) & np.isfinite(int8)
    difference = np.abs(int8 - fp32)[ok]
    print(f"CPU: {cpu().describe()}; {len(paths)} files, {int(ok.sum())} clips\n")
    print("| | float32 | int8 |\n|---|---|---|")
    print(f"| detector CPU ms per frame (1 thread) | {cost['fp32']:.1f} | {cost['int8']:.1f} |")
    print(f"| clips with text (ocr_area > 0) | {int((fp32[ok] > 0).sum())} | {int((int8[ok] > 0).sum())} |")
    print(f"\nocr_area int8 - float32: median {np.median(difference):.4f}, 90th percentile "
          f"{np.percentile(difference, 90):.4f}, max {difference.max():.4f}; within 0.01: "
          f"{int((difference <= 0.01).sum())} of {difference.size}; on different sides of ocr_area <= {FILTER}: "
          f"{int(((fp32[ok] <= FILTER) != (int8[ok] <= FILTER)).sum())}")
    ids = np.array(clips["clip_id"].to_pylist())[ok]
    print("\nlargest differences (clip, float32, int8):")
    for i in np.argsort(-difference)[:5]:
        print(f"- {ids[i]}: {fp32[ok][i]:.4f}, {int8[ok][i]:.4f}")


if __name__ == "__main__":
    main()
