"""Score generated videos against their prompts and against the real clips the prompts describe.

    from curate.generate.evaluate import Evaluator, plot_summary, read_generated, summarize
    evaluator = Evaluator()                       # ViT-B-32 laion2b_s34b_b79k, the curation CLIP stage's default
    evaluator.setup()                             # loads the CLIP model once
    scores = evaluator.score(read_generated("gen/ms"))
    summary = summarize(scores)                   # one row per setting: mean and 95% t-interval of every score
    plot_summary(summary, "gen/ms/eval/summary.png")

Per generated video (columns added to the generated table):

* ``clip_score``: the curation CLIP stage's score of the video against its prompt, by the same code: frames at
  ``num_frames`` evenly spread positions (``frame_needs.read_clip_frames``), embedded by ``ClipModel``, scored
  by ``curate.models.clip.clip_score`` (100 · max(mean cosine, 0)).
* ``clip_score_real``: the same score of the real source clip (``video_path`` [``start_s``, ``end_s``)) against
  the same prompt: what a real video of that caption scores, the reference to compare with.
* ``temporal_consistency``: mean cosine between the CLIP image embeddings of consecutive frames (every frame of
  the generated video); 1 = a still image.
* ``motion_score`` / ``motion_score_real``: the motion stage's score (``curate.stages.motion.Motion``: optical
  flow between frames sampled at ``motion_fps``, frame diagonals per second) of the generated and the real clip.
* ``eval_error``: why a score is NaN (a video that cannot be decoded, a prompt without a source clip).

``summarize`` groups the videos by setting (the generation parameters that differ between the videos, e.g. the
swept ``guidance_scale``) and gives each score's mean and 95% Student-t interval (``curate.generate.metrics``).
Scores from a model with random weights (the tests' tiny models) measure nothing: only real weights give
results worth reporting.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pyarrow as pa

from curate.errors import CurateError
from curate.generate.run import GENERATED, SETTINGS_TYPES
from curate.models.clip import DEFAULT_CLIP_MODEL, DEFAULT_CLIP_PRETRAINED

#: Scores added per video; summarised per setting.
METRICS = ("clip_score", "clip_score_real", "temporal_consistency", "motion_score", "motion_score_real")
#: Parameters that can define a setting: those whose values differ between the videos evaluated together.
SETTING_COLUMNS = tuple(SETTINGS_TYPES)


class EvaluateError(CurateError):
    """The generated videos cannot be evaluated as asked."""


def generated_tables(gen: str | os.PathLike) -> list[Path]:
    """``GEN/generated.parquet`` and the ones of its sub-folders (a sweep writes one folder per setting)."""
    gen = Path(gen)
    if not gen.is_dir():
        raise EvaluateError(f"{gen}: no such folder (give the --out folder of curate generate)")
    found = sorted([gen / GENERATED] + list(gen.glob(f"*/{GENERATED}")))
    found = [p for p in found if p.is_file()]
    unfinished = [p.parent for p in [gen, *gen.iterdir()] if p.is_dir() and (p / "settings.json").is_file()
                  and not (p / GENERATED).is_file()]  # fmt: skip
    if unfinished:
        raise EvaluateError(f"generation in {unfinished[0]} is not finished; relaunch its curate generate command")
    if not found:
        raise EvaluateError(f"{gen}: no {GENERATED} in it or its sub-folders (run curate generate --out {gen})")
    return found


def read_generated(gen: str | os.PathLike) -> pa.Table:
    """Every generated row under ``gen`` as one table."""
    import pyarrow.parquet as pq

    return pa.concat_tables([pq.read_table(p) for p in generated_tables(gen)], promote_options="permissive")


class Evaluator:
    """The per-video scores of the module docstring; ``__init__`` stores settings, ``setup()`` loads CLIP once."""

    def __init__(self, clip_model: str = DEFAULT_CLIP_MODEL, clip_pretrained: str = DEFAULT_CLIP_PRETRAINED,
                 num_frames: int = 3, frame_width: int = 336, motion_fps: float = 2.0, device: str = "auto",
                 dtype: str = "auto", batch_size: int = 32):
        """clip_model, clip_pretrained: the open_clip model (as the CLIP stage's model/pretrained). num_frames:
        frames per clip for clip_score (the CLIP stage's default, 3). frame_width: frames are decoded at most this
        wide. motion_fps: the motion stage's sample rate (2 as SVD; a 16-frame 8-fps video gives 4 samples).
        device, dtype: as the CLIP stage (auto = GPU when there is one). batch_size: frames per CLIP forward pass."""
        if num_frames < 1 or frame_width < 32 or motion_fps <= 0:
            raise EvaluateError("evaluate: num_frames must be >= 1, frame_width >= 32 pixels, motion_fps > 0")
        self.clip_model = clip_model
        self.clip_pretrained = clip_pretrained
        self.num_frames = num_frames
        self.frame_width = frame_width
        self.motion_fps = motion_fps
        self.device = device
        self.dtype = dtype
        self.batch_size = batch_size
        self._model = None

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def setup(self) -> None:
        from curate.models.clip import ClipModel

        self._model = ClipModel.load(self.clip_model, self.clip_pretrained, device=self.device, dtype=self.dtype)

    def score(self, generated: pa.Table) -> pa.Table:
        """``generated`` with the scores of the module docstring added."""
        from curate.stages.caption_video import even_positions

        if not self.loaded:
            raise RuntimeError("call setup() before score()")
        rows = generated.to_pylist()
        n = len(rows)
        errors: list[list[str]] = [[] for _ in range(n)]
        text_embs = self._model.embed_texts([r["prompt"] for r in rows])

        # 1. generated videos: clip score on the stage's positions, consistency over every frame
        gen = _clips(generated, [r["output_path"] for r in rows], [None] * n, [0.0] * n,
                     [r["num_frames"] / r["fps"] for r in rows])
        clip_score = self._clip_scores(gen, text_embs, even_positions(self.num_frames), errors)
        consistency = [math.nan] * n
        for i, frames in enumerate(self._frames(gen, None, errors)):
            if frames is not None:
                consistency[i] = _consistency(self._model.embed_images(frames, self.batch_size))
        motion = self._motion(gen, errors)

        # 2. the real source clips, where the prompt has one
        real = [i for i, r in enumerate(rows) if r.get("video_path") and r.get("end_s") is not None]
        for i in set(range(n)) - set(real):
            errors[i].append("real: no source clip (video_path, start_s, end_s) for this prompt")
        clip_score_real, motion_real = [math.nan] * n, [math.nan] * n
        if real:
            source = _clips(generated.take(real), [rows[i]["video_path"] for i in real],
                            [rows[i]["video_stream"] for i in real], [rows[i]["start_s"] for i in real],
                            [rows[i]["end_s"] for i in real])
            sub_errors: list[list[str]] = [[] for _ in real]
            scores = self._clip_scores(source, text_embs[real], even_positions(self.num_frames), sub_errors)
            motions = self._motion(source, sub_errors)
            for j, i in enumerate(real):
                clip_score_real[i], motion_real[i] = scores[j], motions[j]
                errors[i] += [f"real: {e}" for e in sub_errors[j]]

        columns = {"clip_score": clip_score, "clip_score_real": clip_score_real, "temporal_consistency": consistency,
                   "motion_score": motion, "motion_score_real": motion_real}
        table = generated
        for name, values in columns.items():
            table = table.append_column(name, pa.array(values, pa.float64()))
        return table.append_column("eval_error", pa.array(["; ".join(e) or None for e in errors], pa.string()))

    def _frames(self, clips: pa.Table, positions, errors: list[list[str]]) -> list[list[np.ndarray] | None]:
        """RGB frames of every clip at ``positions`` (None: every frame of a generated video)."""
        from curate.video.frame_needs import read_clip_frames
        from curate.stages.caption_video import even_positions

        if positions is None:  # every frame: F evenly spread positions land on frames 0 .. F-1 (sample_times)
            counts = clips["num_frames"].to_pylist()
            frames = []
            for k, count in enumerate(counts):
                got, errs = read_clip_frames(clips.slice(k, 1), even_positions(count), self.frame_width)
                frames.append(got[0])
                if errs[0]:
                    errors[k].append(errs[0])
        else:
            frames, errs = read_clip_frames(clips, positions, self.frame_width)
            for k, error in enumerate(errs):
                if error:
                    errors[k].append(error)
        return [[f.image for f in got] if got else None for got in frames]

    def _clip_scores(self, clips: pa.Table, text_embs: np.ndarray, positions, errors) -> list[float]:
        from curate.generate.metrics import clip_score

        scores = [math.nan] * clips.num_rows
        for i, frames in enumerate(self._frames(clips, positions, errors)):
            if frames is not None:
                scores[i] = clip_score(text_embs[i], self._model.embed_images(frames, self.batch_size))
        return scores

    def _motion(self, clips: pa.Table, errors) -> list[float]:
        from curate.stages.motion import Motion

        stage = Motion(sample_fps=self.motion_fps)
        stage.setup()
        kept = stage.process(clips).kept
        for i, error in enumerate(kept["motion_error"].to_pylist()):
            if error:
                errors[i].append(f"motion: {error}")
        return kept["motion_score"].to_pylist()


def _clips(generated: pa.Table, paths, streams, starts, ends) -> pa.Table:
    """The clip columns the frame readers and the motion stage read (plus num_frames)."""
    return pa.table({"video_path": pa.array(paths, pa.string()), "video_stream": pa.array(streams, pa.int64()),
                     "start_s": pa.array(starts, pa.float64()), "end_s": pa.array(ends, pa.float64()),
                     "num_frames": generated["num_frames"]})  # fmt: skip


def _consistency(frame_embs: np.ndarray) -> float:
    from curate.generate.metrics import temporal_consistency

    return temporal_consistency(frame_embs) if len(frame_embs) >= 2 else math.nan


# ------------------------------------------------------------------------------------------------ summary
def setting_columns(scores: pa.Table) -> list[str]:
    """The generation parameters whose values differ between the rows (the swept ones)."""
    return [c for c in SETTING_COLUMNS if c in scores.column_names and len(set(map(str, scores[c].to_pylist()))) > 1]


def summarize(scores: pa.Table, confidence: float = 0.95) -> pa.Table:
    """One row per setting: its parameters, ``videos``, and per score ``<score>_mean``, ``_low``, ``_high``, ``_n``.

    Settings are in the order their videos first appear (a sweep's grid order).
    """
    from curate.generate.metrics import mean_interval

    keys = setting_columns(scores)
    rows = scores.to_pylist()
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in keys), []).append(row)
    out: dict[str, list] = {"setting": [], **{k: [] for k in keys}, "videos": []}
    for metric in METRICS:
        for part in ("mean", "low", "high", "n"):
            out[f"{metric}_{part}"] = []
    for values, members in groups.items():
        out["setting"].append(", ".join(f"{k}={_show(v)}" for k, v in zip(keys, values)) or "all")
        for k, v in zip(keys, values):
            out[k].append(v)
        out["videos"].append(len(members))
        for metric in METRICS:
            interval = mean_interval([m[metric] for m in members], confidence)
            out[f"{metric}_mean"].append(interval.mean)
            out[f"{metric}_low"].append(interval.low)
            out[f"{metric}_high"].append(interval.high)
            out[f"{metric}_n"].append(interval.n)
    types = {**{k: scores.schema.field(k).type for k in keys}, "setting": pa.string(), "videos": pa.int64()}
    return pa.table({name: pa.array(values, types.get(name, pa.int64() if name.endswith("_n") else pa.float64()))
                     for name, values in out.items()})  # fmt: skip


def _show(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def format_summary(summary: pa.Table) -> str:
    """The summary as a text table: ``mean [low, high]`` per score and setting."""
    header = ["setting", "videos", *METRICS]
    lines = [header]
    for row in summary.to_pylist():
        cells = [row["setting"], str(row["videos"])]
        for metric in METRICS:
            mean, low, high = row[f"{metric}_mean"], row[f"{metric}_low"], row[f"{metric}_high"]
            ci = f" [{low:.3g}, {high:.3g}]" if low is not None else ""
            cells.append("nan" if mean is None or math.isnan(mean) else f"{mean:.3g}{ci}")
        lines.append(cells)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines]
    text.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(text)


def plot_summary(summary: pa.Table, path: str | os.PathLike) -> Path:
    """A PNG of each score's mean and 95% interval per setting (the real clips' scores alongside, as reference)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = summary.to_pylist()
    labels = [r["setting"] for r in rows]
    x = np.arange(len(rows))
    panels = [("CLIP score vs prompt", ["clip_score", "clip_score_real"]),
              ("temporal consistency", ["temporal_consistency"]),
              ("motion score (diagonals/s)", ["motion_score", "motion_score_real"])]  # fmt: skip
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.8), squeeze=False)
    for ax, (title, metrics) in zip(axes[0], panels):
        for offset, metric in zip((-0.08, 0.08) if len(metrics) == 2 else (0.0,), metrics):
            means = np.array([r[f"{metric}_mean"] for r in rows], dtype=float)
            low = np.array([r[f"{metric}_low"] if r[f"{metric}_low"] is not None else np.nan for r in rows], float)
            high = np.array([r[f"{metric}_high"] if r[f"{metric}_high"] is not None else np.nan for r in rows], float)
            errors = np.nan_to_num(np.vstack([means - low, high - means]), nan=0.0)
            name = "real clip" if metric.endswith("_real") else "generated"
            ax.errorbar(x + offset, means, yerr=errors, fmt="o-" if name == "generated" else "s--", capsize=3,
                        label=name)
        ax.set_title(title)
        ax.set_xlim(-0.5, len(rows) - 0.5)
        ax.set_xticks(x, labels, rotation=30 if len(rows) > 3 else 0, ha="right" if len(rows) > 3 else "center",
                      fontsize=8)
        if len(metrics) == 2:
            ax.legend(fontsize=8)
    fig.suptitle("mean and 95% t-interval per setting", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def evaluate(gen: str | os.PathLike, evaluator: Evaluator, out: str | os.PathLike | None = None) -> dict[str, Path]:
    """Score every video under ``gen``, write ``scores.parquet``, ``summary.parquet`` and ``summary.png`` into
    ``out`` (default ``GEN/eval``); return their paths."""
    from curate.rundir import atomic_write_parquet

    generated = read_generated(gen)
    out = Path(out) if out else Path(gen) / "eval"
    if not evaluator.loaded:
        evaluator.setup()
    scores = evaluator.score(generated)
    summary = summarize(scores)
    paths = {"scores": out / "scores.parquet", "summary": out / "summary.parquet", "plot": out / "summary.png"}
    atomic_write_parquet(paths["scores"], scores)
    atomic_write_parquet(paths["summary"], summary)
    plot_summary(summary, paths["plot"])
    return paths
