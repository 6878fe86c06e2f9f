"""Codec motion vectors (FFmpeg ``+export_mvs``) against DIS optical flow as a clip's motion score.

    python benchmarks/motion_vectors.py          # the fixtures of ../shared/videos with a motion annotation

Every fixture is split as the offline pipeline splits it. Per clip: the DIS score (``curate.scores.motion``, 2 fps,
160 px) and a motion-vector score: for every decoded frame that carries vectors, the block-area-weighted mean
vector length (pixels of the coded frame, vectors from the past only), divided by the frame diagonal and by the
time to the frame before (frame diagonals per second, the DIS score's unit). A clip's score is the mean over its
frames. Printed: per video the mean score of its clips under each method and its annotation; the share of
(static, moving) annotated video pairs each method orders right; Spearman's rank correlation of the two methods
over clips; and the CPU-s of a plain one-thread decode of all files against the same decode with vectors exported
and summed. Codecs without vectors (MJPEG, intra-only) give no frame with vectors: such clips have no mv score.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import av
import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
VIDEOS = ROOT.parent / "shared" / "videos"
STATIC = ("static", "none")
MOVING = ("high", "very high", "moderate/high")


def mv_frame_motion(path: str, export: bool = True) -> tuple[np.ndarray, np.ndarray, float]:
    """(frame times, per-frame motion in diagonals/s (NaN: no vectors), CPU-s) of one file."""
    start = time.process_time()
    times, motion = [], []
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        if export:
            stream.codec_context.options = {"flags2": "+export_mvs"}
        previous = None
        for frame in container.decode(stream):
            t = float(frame.pts * stream.time_base) if frame.pts is not None else (previous or 0.0) + 0.04
            value = math.nan
            vectors = frame.side_data.get("MOTION_VECTORS") if export else None
            if vectors is not None and previous is not None and t > previous:
                mv = vectors.to_ndarray()
                mv = mv[mv["source"] < 0]
                if len(mv):
                    length = np.hypot(mv["motion_x"], mv["motion_y"]) / np.maximum(mv["motion_scale"], 1)
                    area = mv["w"].astype(np.float64) * mv["h"]
                    pixels = float((length * area).sum() / (frame.width * frame.height))
                    value = pixels / math.hypot(frame.width, frame.height) / (t - previous)
            times.append(t)
            motion.append(value)
            previous = t
    return np.array(times), np.array(motion), time.process_time() - start


def spearman(a: list[float], b: list[float]) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def main() -> None:
    from curate.hardware import cpu
    from curate.stages.ingest import Ingest
    from curate.stages.motion import Motion
    from curate.stages.split import Split

    truth = json.loads((VIDEOS / "ground_truth.json").read_text())
    names = [n for n, v in truth.items() if isinstance(v, dict) and "motion" in v and (VIDEOS / n).is_file()]
    paths = [str(VIDEOS / n) for n in names]
    ingest = Ingest(inputs=paths)
    ingest.setup()
    clips = Split().process(ingest.process(pa.table({"video_path": paths})).kept).kept
    motion = Motion()
    motion.setup()
    start = time.process_time()
    dis = motion.process(clips).kept["motion_score"].to_pylist()
    dis_cpu = time.process_time() - start
    per_file = {p: mv_frame_motion(p) for p in paths}
    plain_cpu = sum(mv_frame_motion(p, export=False)[2] for p in paths)
    mv = []
    for path, a, b in zip(*(clips[c].to_pylist() for c in ("video_path", "start_s", "end_s"))):
        times, values, _ = per_file[path]
        inside = values[(times >= a) & (times < b)]
        inside = inside[~np.isnan(inside)]
        mv.append(float(inside.mean()) if len(inside) else math.nan)

    print(f"CPU: {cpu().describe()}; {len(names)} annotated fixtures, {clips.num_rows} clips\n")
    print("| video | clips | DIS (mean of clips) | mv (mean of clips) | annotation |")
    print("|---|---|---|---|---|")
    video_scores = {}
    paths_of = clips["video_path"].to_pylist()
    for name, path in zip(names, paths):
        rows = [i for i, p in enumerate(paths_of) if p == path]
        d = float(np.nanmean([dis[i] for i in rows])) if rows else math.nan
        m = float(np.nanmean([mv[i] for i in rows])) if rows and not all(math.isnan(mv[i]) for i in rows) else math.nan
        video_scores[name] = (d, m)
        print(f"| {name} | {len(rows)} | {d:.4f} | {m:.4f} | {truth[name]['motion']} |")
    static = [n for n in names if truth[n]["motion"].startswith(STATIC)]
    moving = [n for n in names if truth[n]["motion"].split(" (")[0] in MOVING]
    for k, method in enumerate(("DIS", "mv")):
        pairs = [(video_scores[s][k], video_scores[m][k]) for s in static for m in moving
                 if not math.isnan(video_scores[s][k]) and not math.isnan(video_scores[m][k])]
        right = sum(a < b for a, b in pairs)
        print(f"\n{method}: {right} of {len(pairs)} (static, moving) video pairs ordered right")
    both = [(d, m) for d, m in zip(dis, mv) if not (math.isnan(d) or math.isnan(m))]
    print(f"\nSpearman DIS vs mv over {len(both)} clips: {spearman(*zip(*both)):.3f}")
    mv_cpu = sum(v[2] for v in per_file.values())
    print(f"\nCPU-s: plain decode {plain_cpu:.2f}; decode + vectors exported and summed {mv_cpu:.2f} "
          f"(+{mv_cpu - plain_cpu:.2f}); DIS motion step (its own decode of 2 fps samples + flow) {dis_cpu:.2f}")


if __name__ == "__main__":
    main()
