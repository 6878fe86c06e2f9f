"""Near-duplicate removal at scale: recall and precision against exact all-pairs, wall time and peak memory.

    python benchmarks/dedup_throughput.py                                  # 20k (+ exact), 100k and 1M clips, 768-d
    python benchmarks/dedup_throughput.py --sizes 100000 --probes 2 4 8   # recall by number of probed clusters
    python benchmarks/dedup_throughput.py --kmeans 256000 1000             # curate's Dask k-means vs faiss's

The embeddings are synthetic, shaped like CLIP image embeddings: every clip = a shared direction (random pairs have
cosine ~0.45, as CLIP's do) + one of n/100 topics with Zipf-distributed sizes (same-topic pairs ~0.75) + its own
noise; then 5% of the clips are replaced by near-copies of random other clips, cosine uniform in [0.93, 0.995], so
about two thirds of the planted pairs are above the 0.95 threshold. They are written as a clip step's Parquet
shards (clip_id, clip_embedding, clip_score, duration_s; 2,000 rows a shard) and a fresh process runs what the
dedup stage's ``fit`` runs (``read_shards`` + ``find_duplicates``) with Dask's threaded scheduler: its peak RSS is
the whole job's memory, its CPU seconds count every thread.

recall: the planted pairs above the threshold (those exact all-pairs finds; at 20,000 clips exact all-pairs is run
and its own pairs are the reference) that the method found; also among the planted pairs with cosine >= 0.98.
precision: found pairs whose float32 cosine really is at or above the threshold. Timings on a shared machine are
noisy: CPU seconds are steadier than wall seconds.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROWS_PER_SHARD = 2_000
THRESHOLD = 0.95


# ----------------------------------------------------------------------------------------------- the data
def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def synthetic(n: int, dim: int, seed: int = 0, copied: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """``(embeddings [n, dim] float32 unit rows, planted [m, 2] (source, copy) row pairs)``, built in blocks."""
    rng = np.random.default_rng(seed)
    shared = _unit(rng.standard_normal(dim))
    topics = _unit(rng.standard_normal((max(10, n // 100), dim)))
    sizes = rng.zipf(1.5, len(topics)).astype(np.float64)
    topic = rng.choice(len(topics), size=n, p=sizes / sizes.sum())
    x = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 65_536):
        end = min(n, start + 65_536)
        noise = _unit(rng.standard_normal((end - start, dim), dtype=np.float32))
        x[start:end] = _unit(np.sqrt(0.45) * shared + np.sqrt(0.30) * topics[topic[start:end]] + np.sqrt(0.25) * noise)
    m = int(n * copied)
    rows = rng.permutation(n)[: 2 * m]
    source, copy = rows[:m], rows[m:]
    cosine = rng.uniform(0.93, 0.995, m)
    scale = np.sqrt(1.0 / cosine**2 - 1.0).astype(np.float32)[:, None]  # |x + s·u| with u ⟂ x: cos = 1/√(1+s²)
    for start in range(0, m, 65_536):
        part = slice(start, start + 65_536)
        noise = rng.standard_normal((len(source[part]), dim), dtype=np.float32)
        base = x[source[part]]
        noise = _unit(noise - (noise * base).sum(axis=1, keepdims=True) * base)  # orthogonal to the source
        x[copy[part]] = _unit(base + scale[part] * noise)
    return x, np.stack([source, copy], axis=1)


def write_shards(folder: Path, x: np.ndarray, seed: int = 0) -> None:
    """The clip step's output layout: part-NNNNN.parquet with clip_id, clip_embedding, clip_score, duration_s."""
    rng = np.random.default_rng(seed + 1)
    folder.mkdir(parents=True, exist_ok=True)
    n, dim = x.shape
    for shard, start in enumerate(range(0, n, ROWS_PER_SHARD)):
        block = x[start : start + ROWS_PER_SHARD]
        offsets = pa.array(np.arange(0, (len(block) + 1) * dim, dim, dtype=np.int32))
        table = pa.table({
            "clip_id": [f"clip{i:08d}" for i in range(start, start + len(block))],
            "clip_embedding": pa.ListArray.from_arrays(offsets, pa.array(block.ravel())),
            "clip_score": rng.uniform(15.0, 35.0, len(block)),
            "duration_s": rng.uniform(1.0, 10.0, len(block)),
        })  # fmt: skip
        pq.write_table(table, folder / f"part-{shard:05d}.parquet", compression="zstd")


# ------------------------------------------------------------------------------- one measured run (a child)
def child(folder: str, method: str, probes: int, clusters: int | None, out: str) -> None:
    """What Dedup.fit runs, in this fresh process, on Dask's threaded scheduler; writes the pairs and a JSON line."""
    import dask
    import pyarrow as pa
    import pyarrow.compute as pc

    from curate.dedup import find_duplicates
    from curate.stages.dedup import read_shards

    wall, cpu = time.perf_counter(), time.process_time()
    with dask.config.set(scheduler="threads"):
        embeddings, table = read_shards(folder, ["clip_score", "duration_s"])
        keep = [pc.cast(table[c], pa.float64()).to_numpy(zero_copy_only=False) for c in ("clip_score", "duration_s")]
        found = find_duplicates(embeddings, THRESHOLD, keep=keep, method=method, probes=probes, clusters=clusters)
    result = {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu,
              "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, **found.info}  # fmt: skip
    np.save(f"{out}.pairs.npy", found.pairs.index)
    np.save(f"{out}.duplicate_of.npy", found.duplicate_of)
    Path(f"{out}.json").write_text(json.dumps(result))


def measure(folder: Path, method: str, probes: int, clusters: int | None, work: Path) -> dict:
    out = work / f"{method}-{probes}-{clusters}"
    command = [sys.executable, __file__, "--child", str(folder), "--method", method, "--probes", str(probes),
               "--clusters", str(clusters or 0), "--out", str(out)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                                       os.environ.get("PYTHONPATH", "")]))
    subprocess.run(command, check=True, env=env)
    result = json.loads(Path(f"{out}.json").read_text())
    result["pairs_index"] = np.load(f"{out}.pairs.npy")
    result["duplicate_of"] = np.load(f"{out}.duplicate_of.npy")
    return result


# --------------------------------------------------------------------------------------------- k-means race
def faiss_kmeans(x: np.ndarray, k: int, iterations: int, seed: int) -> np.ndarray:
    """faiss's spherical k-means on the same rows (``pip install faiss-cpu``; curate itself does not need it)."""
    import faiss

    kmeans = faiss.Kmeans(x.shape[1], k, niter=iterations, seed=seed, spherical=True, verbose=False,
                          max_points_per_centroid=len(x) // k + 1, min_points_per_centroid=1)
    kmeans.train(np.ascontiguousarray(x))
    return kmeans.centroids


def kmeans_race(n: int, dim: int, k: int, iterations: int, repeat: int) -> None:
    import dask

    from curate.dedup.kmeans import spherical_kmeans

    x, _ = synthetic(n, dim)
    print(f"\nk-means, {n:,} clips x {dim}, k={k}, {iterations} iterations, best of {repeat} "
          f"(CPU: {cpu_name()})\n")
    print("| implementation | wall s | CPU s | mean cosine to the nearest centroid |")
    print("|---|---|---|---|")
    runs = {"curate.dedup.kmeans (Lloyd's, Dask tasks on threads)":
            lambda: spherical_kmeans(x, k, iterations, seed=0),
            "faiss-cpu Kmeans(spherical=True)": lambda: faiss_kmeans(x, k, iterations, seed=0)}
    for name, train in runs.items():
        times = []
        for _ in range(repeat):
            wall, cpu = time.perf_counter(), time.process_time()
            with dask.config.set(scheduler="threads"):
                centroids = train()
            times.append((time.perf_counter() - wall, time.process_time() - cpu))
        quality = float(np.mean(np.max(x[:50_000] @ centroids.T, axis=1)))
        print(f"| {name} | {min(t[0] for t in times):.1f} | {min(t[1] for t in times):.1f} | {quality:.4f} |")


# ------------------------------------------------------------------------------------------------ the report
def cpu_name() -> str:
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")), "?")
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    shown = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    return f"{model}, {os.cpu_count()} cores, {' '.join(shown) or 'no avx2'}"


def pair_set(index: np.ndarray) -> set[tuple[int, int]]:
    return set(map(tuple, np.sort(index, axis=1).tolist()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 100_000, 1_000_000])
    parser.add_argument("--dim", type=int, default=768, help="768: CLIP ViT-L/14 (512: ViT-B/32)")
    parser.add_argument("--probes", type=int, nargs="+", default=[8], help="clustered runs (the first: extrapolation)")
    parser.add_argument("--exact-up-to", type=int, default=20_000, help="also run exact all-pairs up to this size")
    parser.add_argument("--kmeans", type=int, nargs=2, metavar=("ROWS", "K"),
                        help="only race curate's k-means against faiss's (pip install faiss-cpu) on ROWS rows")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--method", help=argparse.SUPPRESS)
    parser.add_argument("--clusters", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.method, args.probes[0], args.clusters or None, args.out)
    if args.kmeans:
        return kmeans_race(args.kmeans[0], args.dim, args.kmeans[1], iterations=10, repeat=2)

    rows = []
    with tempfile.TemporaryDirectory(prefix="dedup-bench-") as tmp:
        for n in args.sizes:
            work = Path(tmp) / str(n)
            start = time.perf_counter()
            x, planted = synthetic(n, args.dim)
            write_shards(work / "clip", x)
            print(f"{n:,} clips: data and shards in {time.perf_counter() - start:.0f} s", file=sys.stderr)
            cosine = np.einsum("ij,ij->i", x[planted[:, 0]], x[planted[:, 1]])
            target = pair_set(planted[cosine >= THRESHOLD])
            clear = pair_set(planted[cosine >= 0.98])  # copies well above the threshold (re-encodes, small crops)
            runs = [("exact", 1)] if n <= args.exact_up_to else []
            runs += [("clustered", p) for p in args.probes]
            exact = None
            for method, probes in runs:
                result = measure(work / "clip", method, probes, None, work)
                found = pair_set(result["pairs_index"])
                if method == "exact":
                    exact = result
                    target = target & found  # the planted pairs exact all-pairs finds
                index = result["pairs_index"]
                true = np.einsum("ij,ij->i", x[index[:, 0]], x[index[:, 1]]) >= THRESHOLD if len(index) else []
                same = (float(np.mean(result["duplicate_of"] == exact["duplicate_of"])) if exact is not None
                        else math.nan)  # fmt: skip
                rows.append((n, method, probes, result, len(target & found) / max(1, len(target)),
                             len(clear & found) / max(1, len(clear)), float(np.mean(true)) if len(index) else 1.0,
                             same))
                print(f"  {method} probes={probes}: {result['wall_s']:.0f} s", file=sys.stderr)
            del x

    print(f"\nDedup, synthetic {args.dim}-d embeddings, threshold {THRESHOLD} (CPU: {cpu_name()})\n")
    print("| clips | method | probes | clusters | wall s | CPU s | peak RSS GB | pairs found | recall (planted) "
          "| recall (planted, cos >= 0.98) | precision | same decision as exact |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for n, method, probes, r, recall, recall_clear, precision, same in rows:
        clusters = r.get("clusters", "")
        shown = "" if math.isnan(same) else f"{same:.5f}"
        print(f"| {n:,} | {method} | {probes if method == 'clustered' else ''} | {clusters} | {r['wall_s']:.1f} "
              f"| {r['cpu_s']:.1f} | {r['peak_rss_gb']:.2f} | {r['pairs']:,} | {recall:.4f} | {recall_clear:.4f} "
              f"| {precision:.4f} | {shown} |")
    clustered = {n: r for n, m, p, r, *_ in rows if m == "clustered" and p == args.probes[0]}
    if len(clustered) >= 2:
        (n0, r0), (n1, r1) = sorted(clustered.items())[-2:]
        power = math.log(r1["cpu_s"] / r0["cpu_s"]) / math.log(n1 / n0)
        print(f"\nCPU seconds grew as n^{power:.2f} from {n0:,} to {n1:,} clips: 10 million clips would take about "
              f"{r1['cpu_s'] * (1e7 / n1) ** power / 3600:.1f} CPU-hours here (clustered, probes={args.probes[0]}).")


if __name__ == "__main__":
    main()
