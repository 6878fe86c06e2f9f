"""Decode once: what the frames step costs and saves, per clip, against each per-clip step decoding its own frames.

    python benchmarks/decode_once.py                    # every clip of every fixture in ../shared/videos
    python benchmarks/decode_once.py --repeat 3         # best of 3 (CPU seconds)

1. split every fixture (the default settings) into clips;
2. **before**: each per-clip consumer of the LVD pipeline reads its frames from the video, as it does without a
   frames step: OCR 3 frames at 320 px, caption_image the middle frame at 448, caption_video 8 at 384, CLIP 3 at
   336 (CPU seconds of ``read_clip_frames``, each video about once per consumer);
3. **after**: the frames step decodes the union of their positions once at 448 px and stores them as JPEG, then
   each consumer reads its frames from the stored JPEGs;
4. prints CPU seconds per clip before and after, bytes stored per clip, and the decode passes per video.
CPU seconds (``time.process_time``, one thread) are used because other jobs on the machine inflate wall time.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from curate.hardware import cpu  # noqa: E402
from curate.sharding import ShardPlace  # noqa: E402
from curate.video.frame_needs import read_clip_frames  # noqa: E402
from curate.stages.caption_video import even_positions  # noqa: E402
from curate.stages.frames import Frames  # noqa: E402
from curate.stages.ingest import Ingest  # noqa: E402
from curate.stages.split import Split  # noqa: E402

#: (consumer, positions, width): the defaults of the LVD pipeline's per-clip steps
CONSUMERS = [
    ("ocr", [0.0, 0.5, 1.0], 320),
    ("caption_image", [0.5], 448),
    ("caption_video", even_positions(8), 384),
    ("clip", even_positions(3), 336),
]
VIDEO_EXTENSIONS = {".mp4", ".avi", ".mkv", ".mov"}


def clips_of(videos: list[Path]) -> pa.Table:
    ingest = Ingest(inputs=[str(v) for v in videos])
    probed = ingest.process(pa.concat_tables(ingest.plan())).kept
    split = Split()
    split.setup()
    return split.process(probed).kept


def cpu_seconds(function, repeat: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.process_time()
        result = function()
        best = min(best, time.process_time() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", default=os.environ.get("CURATE_TEST_VIDEOS", str(ROOT.parent / "shared" / "videos")))
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    import cv2

    cv2.setNumThreads(1)
    videos = sorted(p for p in Path(args.videos).iterdir() if p.suffix in VIDEO_EXTENSIONS)
    clips = clips_of(videos)
    n = clips.num_rows

    # 2. before: every consumer decodes its own frames
    before = {name: cpu_seconds(lambda: read_clip_frames(clips, positions, width), args.repeat)[0]
              for name, positions, width in CONSUMERS}
    # 3. after: one frames step, then every consumer reads the stored JPEGs
    with tempfile.TemporaryDirectory() as tmp:
        place = ShardPlace(Path(tmp) / "frames_step", "part-00000")

        def frames_step():
            out = Frames().process_shard(clips, place)
            place.extra_file("frames").parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(out.extras["frames"], place.extra_file("frames"), compression="zstd")
            return out.kept

        step_seconds, stored = cpu_seconds(frames_step, args.repeat)
        stored_bytes = place.extra_file("frames").stat().st_size
        after = {name: cpu_seconds(lambda: read_clip_frames(stored, positions, width), args.repeat)[0]
                 for name, positions, width in CONSUMERS}

    print(f"CPU: {cpu().describe()}; {len(videos)} videos, {n} clips\n")
    print("| consumer | frames | width | decode from video, CPU-ms per clip | read stored JPEGs, CPU-ms per clip |")
    print("|---|---|---|---|---|")
    for name, positions, width in CONSUMERS:
        print(f"| {name} | {len(positions)} | {width} | {1000 * before[name] / n:.1f} | {1000 * after[name] / n:.1f} |")
    total_before, total_after = sum(before.values()), step_seconds + sum(after.values())
    print(f"| frames step (decode {len(Frames().positions)} at 448 px + JPEG) | | | | {1000 * step_seconds / n:.1f} |")
    print(f"| **total** | | | {1000 * total_before / n:.1f} | {1000 * total_after / n:.1f} |")
    print(f"\nstored: {stored_bytes / n / 1000:.0f} KB per clip (one side table, zstd Parquet of JPEGs); "
          f"decode passes per video across the LVD pipeline: 6 before (split, motion, ocr, caption_image, "
          f"caption_video, clip), 3 after (split, motion, frames); CPU time of frame reading "
          f"{total_before / total_after:.2f}x less")


if __name__ == "__main__":
    main()
