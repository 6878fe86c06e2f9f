"""Aesthetic: how good each clip looks, by LAION's improved aesthetic predictor (CLIP ViT-L/14 + MLP), ~1-10.

    from curate.stages.aesthetic import Aesthetic
    stage = Aesthetic()                # predictor ttj/sac-logos-ava1-l14-linearMSE over OpenAI CLIP ViT-L/14
    stage.check(); stage.setup()
    out = stage.process(clips)         # + aesthetic_score, aesthetic_error

``aesthetic_score`` is the mean over the clip's sampled frames (first, middle, last) of the reference predictor's
score of each frame: its MLP applied to the frame's L2-normalised CLIP ViT-L/14 embedding (see
``curate.models.aesthetic``). After a CLIP stage that ran the same model (``clip_model`` equal to
``clip_model:clip_pretrained``, e.g. ``ViT-L-14:openai``), the score comes from that stage's ``clip_embedding`` and
``clip_embedding_norm`` (their product is the mean of the unit frame embeddings, and the MLP is affine), over that
stage's frames: no video is decoded and no CLIP model is loaded. Any other clip is decoded and embedded here (the
CLIP model is loaded the first time one is needed, on the GPU when there is one). A clip that cannot be decoded
gets NaN and ``aesthetic_error``. The reference scale: Open-Sora calls 5.5 fair and 6.5 good; filter with
``aesthetic_score >= 4.5`` or a percentile.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa

from curate.models.aesthetic import DEFAULT_PREDICTOR, REFERENCE_CLIP
from curate.models.clip import clip_model_id
from curate.stage import Resources, Stage, StageOutput
from curate.stages.caption_video import even_positions
from curate.video.frame_needs import read_clip_frames

#: columns of a CLIP stage this stage scores from, when that stage ran the same model
REUSED = ("clip_model", "clip_embedding", "clip_embedding_norm")


class Aesthetic(Stage):
    name = "aesthetic"
    loaded = ("_predictor", "_clip")  # set up on each worker, never pickled
    reads = ("video_path", "video_stream", "start_s", "end_s")
    adds = {"aesthetic_score": pa.float64(), "aesthetic_error": pa.string()}
    resources = Resources(cpus=1, gpus=1)

    def __init__(self, model: str = DEFAULT_PREDICTOR, clip_model: str = REFERENCE_CLIP[0],
                 clip_pretrained: str = REFERENCE_CLIP[1], num_frames: int = 3, device: str = "auto",
                 dtype: str = "auto", batch_size: int = 32, frame_width: int = 336, threads: int = 1):
        """model: the predictor MLP's weights: hub id, .safetensors/.pth file, folder, or package:NAME/file.
        clip_model, clip_pretrained: the open_clip model whose embeddings the predictor reads (the reference's:
        ViT-L-14 / openai); the CLIP stage's embeddings are reused when it ran this very model.
        num_frames, frame_width, batch_size, device, dtype, threads: the own pass's frames and model, as the CLIP
        stage's (used only for clips without a matching CLIP embedding)."""
        if num_frames < 1 or batch_size < 1 or frame_width < 32:
            raise ValueError("aesthetic: num_frames and batch_size must be >= 1, frame_width >= 32 pixels")
        self.model = model
        self.clip_model = clip_model
        self.clip_pretrained = clip_pretrained
        self.num_frames = num_frames
        self.device = device
        self.dtype = dtype
        self.batch_size = batch_size
        self.frame_width = frame_width
        self.threads = threads
        self._predictor = None
        self._clip = None

    def check(self) -> None:
        """The predictor's weights and the CLIP weights it reads (the CLIP stage checks the same ones when it runs
        this model, so the check costs nothing more then)."""
        from curate.models.aesthetic import predictor_source
        from curate.models.clip import open_clip_source

        predictor_source(self.model)
        open_clip_source(self.clip_model, self.clip_pretrained)

    def setup(self) -> None:
        import torch

        from curate.models.aesthetic import AestheticPredictor

        torch.set_num_threads(self.threads)
        self._predictor = AestheticPredictor.load(self.model, device=self.device)
        self._clip = None  # loaded by the first shard that has clips without a matching CLIP embedding

    def process(self, table: pa.Table) -> StageOutput:
        n = table.num_rows
        means: list[np.ndarray | None] = [None] * n
        errors: list[str | None] = [None] * n
        # 1. clips the CLIP stage embedded with this model: the mean frame embedding is stored
        reused = self._reusable(table)
        if reused:
            columns = table.select([*REUSED, "clip_error"] if "clip_error" in table.column_names else REUSED)
            for i, row in zip(reused, columns.take(reused).to_pylist()):
                if row["clip_embedding"] is None or row["clip_embedding_norm"] is None:
                    errors[i] = f"no CLIP embedding ({row.get('clip_error') or 'the clip stage gave none'})"
                else:
                    means[i] = np.asarray(row["clip_embedding"], np.float32) * np.float32(row["clip_embedding_norm"])
        # 2. the others: decode and embed their frames here
        own = sorted(set(range(n)) - set(reused))
        if own:
            for i, (mean, error) in zip(own, zip(*self._embed(table.take(own)))):
                means[i], errors[i] = mean, error
        # 3. the predictor on every mean at once (the mean of the frames' scores: see curate.models.aesthetic)
        scored = [i for i in range(n) if means[i] is not None]
        scores = [math.nan] * n
        if scored:
            for i, score in zip(scored, self._predictor.score(np.stack([means[i] for i in scored])).tolist()):
                scores[i] = score
        return StageOutput(kept=self.with_columns(table, {"aesthetic_score": scores, "aesthetic_error": errors}))

    def _reusable(self, table: pa.Table) -> list[int]:
        """Rows whose stored CLIP embedding comes from this stage's CLIP model."""
        if not all(c in table.column_names for c in REUSED):
            return []
        wanted = clip_model_id(self.clip_model, self.clip_pretrained)
        return [i for i, name in enumerate(table["clip_model"].to_pylist()) if name == wanted]

    def _embed(self, table: pa.Table) -> tuple[list[np.ndarray | None], list[str | None]]:
        """(mean unit frame embedding or None, error) per row, from frames decoded with the CLIP stage's reader."""
        from curate.models.clip import ClipModel, frame_mean

        frames, errors = read_clip_frames(table, even_positions(self.num_frames), self.frame_width)
        present = [i for i, f in enumerate(frames) if f]
        if not present:
            return [None] * table.num_rows, errors
        if self._clip is None:
            self._clip = ClipModel.load(self.clip_model, self.clip_pretrained, device=self.device, dtype=self.dtype)
        images = [frame.image for i in present for frame in frames[i]]
        embeddings = self._clip.embed_images(images, batch_size=self.batch_size)
        means: list[np.ndarray | None] = [None] * table.num_rows
        offset = 0
        for i in present:
            means[i] = frame_mean(embeddings[offset : offset + len(frames[i])])
            offset += len(frames[i])
        return means, errors
