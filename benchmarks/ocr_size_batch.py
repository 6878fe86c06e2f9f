"""OCR: does a shard's frames in one detector call cost less than clip by clip, and does 256 px keep ``ocr_area``
within 0.01 of 320 px on the fixtures with text?

    python benchmarks/ocr_size_batch.py            # the text fixtures of ../shared/videos (ground_truth.json)

Each fixture is split as the offline pipeline splits it; every clip's OCR frames (first, middle, last) are decoded
once at 320 px and once at 256 px (longer side), then detected (PP-OCR, one thread) clip by clip and batched over
all clips. Printed: CPU-s per clip of detection for each, the largest difference in ``ocr_area`` between batched and
clip by clip (they should agree), and per fixture the largest ``ocr_area`` difference 256 vs 320 px.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
VIDEOS = ROOT.parent / "shared" / "videos"


def main() -> None:
    import cv2

    from curate.hardware import cpu
    from curate.stages.ingest import Ingest
    from curate.stages.split import Split
    from curate.video.frame_needs import FrameNeed, read_needed_frames
    from curate.video.frames import Frame
    from curate.scores.ocr import fit_longer_side, load_reader, ocr_frames, ocr_many

    cv2.setNumThreads(1)
    truth = json.loads((VIDEOS / "ground_truth.json").read_text())
    names = [n for n, v in truth.items() if isinstance(v, dict) and str(v.get("text", "no")).startswith(("yes", "logo"))]
    paths = [str(VIDEOS / n) for n in names]
    ingest = Ingest(inputs=paths)
    ingest.setup()
    clips = Split().process(ingest.process(pa.table({"video_path": paths})).kept).kept
    reader = load_reader(["en"], threads=1)
    print(f"CPU: {cpu().describe()}; {len(names)} fixtures with text, {clips.num_rows} clips, PP-OCR, 1 thread\n")
    areas = {}
    print("| max side | CPU-s per clip, clip by clip | CPU-s per clip, batched | max abs diff batched vs not |")
    print("|---|---|---|---|")
    for side in (320, 256):
        got = read_needed_frames(clips, FrameNeed(positions=(0.0, 0.5, 1.0), width=side))
        fitted = [[Frame(f.time_s, fit_longer_side(f.image, side)) for f in frames] for frames in got.frames]
        start = time.process_time()
        single = [ocr_frames(reader, frames) for frames in fitted]
        one = time.process_time() - start
        start = time.process_time()
        batched = ocr_many(reader, fitted)
        many = time.process_time() - start
        diff = max(abs(a.area - b.area) for a, b in zip(single, batched))
        areas[side] = [r.area for r in batched]
        print(f"| {side} | {one / clips.num_rows:.4f} | {many / clips.num_rows:.4f} | {diff:.2g} |")
    print("\n| fixture | clips | max ocr_area (320 px) | max abs diff 256 vs 320 px |")
    print("|---|---|---|---|")
    paths_of = clips["video_path"].to_pylist()
    for name, path in zip(names, paths):
        rows = [i for i, p in enumerate(paths_of) if p == path]
        if rows:
            diff = max(abs(areas[256][i] - areas[320][i]) for i in rows)
            print(f"| {name} | {len(rows)} | {max(areas[320][i] for i in rows):.3f} | {diff:.4f} |")


if __name__ == "__main__":
    main()
