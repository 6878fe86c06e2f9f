"""Whole-pipeline throughput: every step's cost, how busy the workers were, streaming against step by step.

    python benchmarks/pipeline_throughput.py                       # offline pipeline, all fixtures, 2 workers
    python benchmarks/pipeline_throughput.py --repeat 5            # every fixture remuxed 5x longer
    python benchmarks/pipeline_throughput.py --modes streaming     # one mode only
    python benchmarks/pipeline_throughput.py --videos ../shared/videos --videos ../shared/footage --min-files 60

For each mode (``streaming``: shards flow from step to step, the default; ``barrier``: ``--no-streaming``, each
step finishes before the next starts) it runs the whole command ``curate run CONFIG --input FILES --workers N``
(interpreter, cluster start-up and shutdown included) and reads every step's ``stats.json``. Printed, in markdown:

1. the CPU (model and the flags curate's speed choices depend on), the workers, the files and their video seconds;
2. per step (from the barrier run, where a step's wall time is its own): CPU-seconds per video-second and per
   row in (a clip after split), wall seconds, and utilisation = busy seconds of its tasks / (workers x step wall);
3. per mode: the whole command's wall seconds and its ratio to a plain one-thread PyAV decode of the same files
   timed in the same run (> 1: the pipeline runs faster than one thread merely decodes the files), and how much
   the steps overlapped (seconds during which two steps had a task running at once);
   decodes per video: split decodes each video once; a per-clip step that found no stored frames for some clips
   decodes their videos again (its ``counts.decoded_videos`` in ``stats.json``); split alone in every round and
   mode: its wall against the one-thread decode's, and its CPU-seconds against the decode's;
4. whether both modes gave the same rows (they must).

CPU-seconds are measured too, since a shared machine's wall times are noisy: the whole command's process tree
(interpreter, scheduler, fork server, workers; each process's last reading, polled every 50 ms with psutil) against
the one-thread decode's CPU-seconds (``time.process_time``), and the load average around each round.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from statistics import median

sys.path.insert(0, str(Path(__file__).resolve().parent))
from split_throughput import decode_seconds, remux_repeated  # noqa: E402

VIDEO_EXTENSIONS = {".mp4", ".avi", ".mkv", ".mov", ".webm", ".ts", ".m4v", ".mpg"}

ROOT = Path(__file__).resolve().parents[1]


def cpu_description() -> str:
    from curate.hardware import cpu

    return cpu().describe()


def run_mode(config: str, videos: list[Path], workers: int, mode: str, out: Path, extra: list[str]
             ) -> tuple[float, float]:
    """(wall seconds, CPU-seconds of the whole process tree) of one ``curate run``."""
    command = [sys.executable, "-m", "curate", "run", config, "--out", str(out), "--no-progress", "--workers",
               str(workers), "--input", *map(str, videos), *extra]
    if mode == "barrier":
        command.append("--no-streaming")
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    cpu = tree_cpu(process)
    _, err = process.communicate()
    if process.returncode:
        raise RuntimeError(f"{' '.join(command[:6])} ... failed ({process.returncode}): {err.decode()[-2000:]}")
    return time.perf_counter() - start, sum(cpu.values())


def tree_cpu(process: subprocess.Popen) -> dict:
    """Poll ``process`` and its descendants until it exits; returns each process's last CPU-seconds reading."""
    import psutil

    root, seen = psutil.Process(process.pid), {}

    def poll() -> None:
        while process.poll() is None:
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                return
            for proc in procs:
                try:
                    times = proc.cpu_times()
                    seen[(proc.pid, proc.create_time())] = times.user + times.system
                except psutil.Error:
                    pass
            time.sleep(0.05)

    thread = threading.Thread(target=poll)
    thread.start()
    thread.join()
    return seen


def decode_cpu(path: Path) -> tuple[float, float, float]:
    """(wall seconds, CPU-seconds, video seconds) of a one-thread decode of ``path``."""
    cpu = time.process_time()
    wall, duration = decode_seconds(path)
    return wall, time.process_time() - cpu, duration


def step_stats(run: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sorted(run.glob("[0-9][0-9]_*/stats.json"))
            if p.parent.name != "00_inputs"}


def overlap_seconds(run: Path) -> float:
    """Seconds during which tasks of two different steps were running at once (from the done markers)."""
    spans = []
    for done in sorted(run.glob("[0-9][0-9]_*/done")):
        for marker in done.glob("*.json"):
            stats = json.loads(marker.read_text())
            if "started_at" in stats:
                spans.append((stats["started_at"], stats["finished_at"], done.parent.name))
    events = sorted([(a, 1, step) for a, _, step in spans] + [(b, -1, step) for _, b, step in spans])
    running: dict[str, int] = {}
    overlap, last = 0.0, None
    for t, delta, step in events:
        if last is not None and sum(1 for n in running.values() if n > 0) >= 2:
            overlap += t - last
        running[step] = running.get(step, 0) + delta
        last = t
    return overlap


def rows_of(run: Path) -> list[str]:
    import pyarrow.parquet as pq

    last = sorted(run.glob("[0-9][0-9]_*/data"))[-1]
    rows = [r for f in sorted(last.glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    for r in rows:
        r.pop("frames_file", None)  # where this run stored the kept frames: differs between runs, not a result
    return sorted(json.dumps(r, sort_keys=True, default=str) for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", action="append", help="a folder of videos (repeatable; default ../shared/videos)")
    parser.add_argument("--min-files", type=int, default=0, help="add remuxed 2x copies until there are this many")
    parser.add_argument("--config", default=str(ROOT / "configs" / "offline.yaml"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1, help="every file remuxed N times longer")
    parser.add_argument("--modes", default="streaming,barrier")
    parser.add_argument("--rounds", type=int, default=1, help="decode + every mode, N times; medians reported")
    parser.add_argument("--set", action="append", default=[], help="config overrides, STEP.PARAM=VALUE")
    args = parser.parse_args()
    modes = args.modes.split(",")
    extra = [x for override in args.set for x in ("--set", override)]

    folders = args.videos or [str(ROOT.parent / "shared" / "videos")]
    videos = sorted(p for folder in folders for p in Path(folder).iterdir() if p.suffix in VIDEO_EXTENSIONS)
    with tempfile.TemporaryDirectory() as tmp:
        if args.repeat > 1:
            videos = [remux_repeated(p, Path(tmp) / p.name, args.repeat) for p in videos]
        copies = []
        for p in videos:
            if len(videos) + len(copies) >= args.min_files:
                break
            try:
                copies.append(remux_repeated(p, Path(tmp) / f"copy2x_{p.stem}.mkv", 2))
            except Exception:  # noqa: BLE001 - a file whose packets cannot be remuxed as is: take the next one
                continue
        videos = videos + copies
        # 1. in rounds: the baseline, then each mode (in turn first), so that a host whose speed drifts (shared
        # machines) disturbs the modes of a round alike; ratios are per round, against that round's decode
        walls, ratios, stats, overlaps, rows, cpus, cpu_ratios, loads, raw_cpus = {}, {}, {}, {}, {}, {}, {}, [], []
        split_rounds: dict[str, list[tuple[float, float]]] = {}
        for r in range(args.rounds):
            loads.append(os.getloadavg()[0])
            raw = [decode_cpu(p) for p in videos]
            raw_seconds, raw_cpu, video_seconds = (sum(x[i] for x in raw) for i in range(3))
            raw_cpus.append(raw_cpu)
            for mode in (modes if r % 2 == 0 else modes[::-1]):
                out = Path(tmp) / f"{mode}-{r}"
                wall, cpu = run_mode(args.config, videos, args.workers, mode, out, extra)
                walls.setdefault(mode, []).append(wall)
                ratios.setdefault(mode, []).append(raw_seconds / wall)
                cpus.setdefault(mode, []).append(cpu)
                cpu_ratios.setdefault(mode, []).append(cpu / raw_cpu)
                stats[mode], rows[mode] = step_stats(out), rows_of(out)
                split = next((st for name, st in stats[mode].items() if name.endswith("_split")), None)
                if split and split["wall_seconds"]:  # split alone, this round: its wall and CPU against the decode's
                    split_cpu = split.get("cpu_seconds", split["compute_seconds"])
                    split_rounds.setdefault(mode, []).append((raw_seconds / split["wall_seconds"], split_cpu / raw_cpu))
                overlaps.setdefault(mode, []).append(overlap_seconds(out))
            loads.append(os.getloadavg()[0])

    print(f"CPU: {cpu_description()}; {args.workers} workers; {len(videos)} files, {video_seconds:.0f} s of video"
          f"{f' (each fixture remuxed {args.repeat}x)' if args.repeat > 1 else ''}; config {Path(args.config).name}; "
          f"load average (1 min) at each round's start and end: {', '.join(f'{x:.1f}' for x in loads)}\n")
    per_step = stats["barrier" if "barrier" in stats else modes[0]]
    print(f"Per step ({'barrier' if 'barrier' in stats else modes[0]} run):\n")
    print("| step | rows in | CPU-s | CPU-s per video-s | CPU-s per row | decodes per video | wall s | utilisation |")
    print("|---|---|---|---|---|---|---|---|")
    n_videos = len(videos)
    decodes_total, split_ratio = 0.0, None
    for name, s in per_step.items():
        counts = s.get("counts", {})
        decodes = 1.0 if name.endswith("_split") else counts.get("decoded_videos", 0) / n_videos
        decodes_total += decodes
        if name.endswith("_split") and s["wall_seconds"]:
            split_ratio = raw_seconds / s["wall_seconds"]
        cpu = s.get("cpu_seconds", s["compute_seconds"])
        per_video = f"{cpu / s['video_seconds']:.3f}" if s["video_seconds"] else "-"
        per_row = f"{cpu / s['rows_in']:.3f}" if s["rows_in"] else "-"
        util = f"{s['utilisation']:.2f}" if s.get("utilisation") is not None else "-"
        print(f"| {name} | {s['rows_in']} | {cpu:.1f} | {per_video} | {per_row} | {decodes:.2f} | "
              f"{s['wall_seconds']:.2f} | {util} |")
    split = f"; split step alone (its wall, last round): {split_ratio:.2f}x a one-thread decode" if split_ratio else ""
    print(f"\ndecodes per video, whole pipeline: {decodes_total:.2f}{split}")
    for mode, rounds in split_rounds.items():  # every round, so that a drifting host shows
        print(f"split step alone, {mode}, each round: {', '.join(f'{r:.2f}x' for r, _ in rounds)} a one-thread decode "
              f"(its CPU-s: {', '.join(f'{c:.2f}x' for _, c in rounds)} the decode's)")
    print("\nWhole command:\n")
    print("| mode | wall s | ratio to a one-thread decode | CPU-s (process tree) | CPU-s / decode CPU-s | "
          "seconds two steps ran at once |")
    print("|---|---|---|---|---|---|")
    print(f"| raw decode (PyAV, 1 thread, same files; each round) | {raw_seconds:.2f} (last) | 1.00 | "
          f"{', '.join(f'{x:.1f}' for x in raw_cpus)} | 1.00 | - |")
    for mode in modes:
        print(f"| {mode} ({args.rounds} rounds: median; each) | {median(walls[mode]):.2f}; "
              f"{', '.join(f'{w:.1f}' for w in walls[mode])} | {median(ratios[mode]):.2f}; "
              f"{', '.join(f'{x:.2f}' for x in ratios[mode])} | {median(cpus[mode]):.1f}; "
              f"{', '.join(f'{x:.1f}' for x in cpus[mode])} | {median(cpu_ratios[mode]):.2f} | "
              f"{median(overlaps[mode]):.2f} |")
    if {"streaming", "barrier"} <= set(modes):
        faster = [s < b for s, b in zip(walls["streaming"], walls["barrier"])]
        print(f"\nstreaming faster than barrier in {sum(faster)} of {len(faster)} rounds")
    if len(modes) > 1:
        same = all(rows[m] == rows[modes[0]] for m in modes)
        print(f"\nsame rows in every mode: {same} ({len(rows[modes[0]])} rows in the last step)")


if __name__ == "__main__":
    main()
