"""Split's frame keeper under several memory budgets: frames converted, clips kept, peak memory.

    python benchmarks/keep_budget.py                                # 256 and 1024 MB, ../shared/videos + footage
    python benchmarks/keep_budget.py --budget 256:0.5 --budget 1024:0.75 --videos DIR

Each ``--budget MB:SHARE`` runs split as the offline pipeline runs it (``configs/offline.yaml``'s cascade and
lengths, frames kept for motion, OCR and picture as the offline pipeline's steps ask for them) on every file, one
file at a time in a child process per budget (so peak memory is the budget's own), with ``keep_frames_mb`` MB and
``HOLD_SHARE`` SHARE (``curate.video.frame_keeper``: the share of the budget held as decoded frames before
conversion). Printed per budget: frames decoded, frames converted (at one size or more), clips kept of clips planned,
scenes that outgrew the budget, the child's CPU-s and its peak RSS. Conversions and kept clips do not depend on the
machine; CPU-s and RSS do (the CPU is named).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def child(mb: float, share: float, paths: list[str]) -> None:
    """One budget over all files, in this process: prints one JSON line of totals."""
    import curate.video.frame_keeper as frame_keeper
    from curate.config import build_steps
    from curate.shots.scan import scan_scenes
    from curate.video.frame_needs import pass_frame_needs

    frame_keeper.HOLD_SHARE = share
    config = ROOT / "configs" / "offline.yaml"
    steps = build_steps(config, overrides=[f"split.keep_frames_mb={mb}"])
    pass_frame_needs([step.stage for step in steps])  # split keeps what the offline steps after it read
    split = next(step.stage for step in steps if step.name == "split")
    detectors = split.detectors(gpu=False)

    class Sink:  # the frames are counted, not written
        def write_table(self, table) -> None:
            pass

    totals = dict(frames=0, converted=0, clips=0, kept=0, overflowed=0)
    for path in paths:
        keeper, stored = split._keeper("v", detectors, (Sink(), "frames"))
        try:
            scan = scan_scenes(path, detectors, downscale_width=split.downscale_width, keeper=keeper,
                               skip_loop_filter="none", change_signal=split.purity_check != "off")
        except Exception:  # noqa: BLE001 - a file split rejects (no video stream, undecodable): not counted
            continue
        spans = split.purity().plan(scan, min_clip_s=split.min_clip_s, max_clip_s=split.max_clip_s,
                                    trim_frames=split.trim_frames)
        keeper.settle(spans)
        kept = [s for s in spans if s.reject_reason is None]
        totals["frames"] += scan.n_frames
        totals["converted"] += keeper.converted_frames
        totals["clips"] += len(kept)
        totals["kept"] += sum(f"v_{s.start_frame:06d}_{s.end_frame:06d}" in stored for s in kept)
        totals["overflowed"] += keeper.overflowed_scenes
    usage = resource.getrusage(resource.RUSAGE_SELF)
    totals["cpu_s"] = usage.ru_utime + usage.ru_stime
    totals["peak_rss_mb"] = usage.ru_maxrss / 1024
    print(json.dumps(totals))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", action="append", help="MB:HOLD_SHARE (default: 256:0.5 and 1024:0.75)")
    parser.add_argument("--videos", action="append", type=Path,
                        help="folders of videos (default: ../shared/videos and ../shared/footage)")
    parser.add_argument("--child", nargs=2, type=float, help=argparse.SUPPRESS)
    parser.add_argument("paths", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.paths)
        return
    from curate.hardware import cpu
    from curate.inputs import expand_inputs

    folders = args.videos or [SHARED / "videos", SHARED / "footage"]
    paths = expand_inputs([str(folder) for folder in folders])
    print(f"CPU: {cpu().describe()}; {len(paths)} files\n")
    print("| keep_frames_mb : hold share | frames | converted | clips kept | scenes over budget | CPU-s "
          "| peak RSS MB |")
    print("|---|---|---|---|---|---|---|")
    for budget in args.budget or ["256:0.5", "1024:0.75"]:
        mb, share = (float(x) for x in budget.split(":"))
        out = subprocess.run([sys.executable, __file__, "--child", str(mb), str(share), *paths], check=True,
                             capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT))).stdout
        t = json.loads(out.strip().splitlines()[-1])
        print(f"| {mb:g} : {share:g} | {t['frames']} | {t['converted']} | {t['kept']} of {t['clips']} "
              f"| {t['overflowed']} | {t['cpu_s']:.1f} | {t['peak_rss_mb']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
