"""CLIP score: how well each clip's caption matches its frames (open_clip), plus an embedding for dedup and search.

    from curate.stages.clip_score import ClipScore
    stage = ClipScore()                # ViT-B-32 laion2b_s34b_b79k, from the hub or its cache; GPU when there is one
    stage.check(); stage.setup()
    out = stage.process(clips)         # + clip_score, clip_embedding, clip_embedding_norm, clip_model, clip_frames,
                                       #   clip_error

``clip_score`` follows the CLIPScore paper's scale: 100 * max(cos, 0), where cos is the mean over the sampled frames
of the cosine similarity between the caption's and the frame's embeddings (0..100; matching caption/frame pairs
of real CLIP models typically score 25-35, unrelated ones below 20). ``clip_embedding`` is the L2-normalised mean
of the frame embeddings (list<float32>) and ``clip_embedding_norm`` the length of that mean before normalising
(1 when every frame embeds alike), so ``clip_embedding * clip_embedding_norm`` is the mean frame embedding, from
which the aesthetic stage scores without a second model. ``clip_model`` names the model (``ViT-L-14:openai``).
A clip without caption is still embedded (NaN score, ``clip_error`` "no caption"); undecodable frames: NaN, no
embedding, and ``clip_error``. Filter on the score like any other (``clip_score >= 20``).
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa

from curate.models.clip import DEFAULT_CLIP_MODEL, DEFAULT_CLIP_PRETRAINED, clip_model_id
from curate.stage import Resources, Stage, StageOutput
from curate.stages.caption_video import even_positions
from curate.video.frame_needs import FrameNeed, read_clip_frames


class ClipScore(Stage):
    """The CLIP step (named for its score: a "clip" is a span of a video everywhere else). Its columns keep their
    ``clip_`` names, its error column included (``clip_error``)."""

    name = "clip_score"
    loaded = ("_model",)  # set up on each worker, never pickled
    reads = ("video_path", "video_stream", "start_s", "end_s", "caption")
    adds = {
        "clip_score": pa.float64(),
        "clip_embedding": pa.list_(pa.float32()),
        "clip_embedding_norm": pa.float32(),
        "clip_model": pa.string(),
        "clip_frames": pa.int32(),
        "clip_error": pa.string(),
    }
    resources = Resources(cpus=1, gpus=1)

    def __init__(self, model: str = DEFAULT_CLIP_MODEL, pretrained: str = DEFAULT_CLIP_PRETRAINED, num_frames: int = 3,
                 device: str = "auto", dtype: str = "auto", batch_size: int = 32, frame_width: int = 336,
                 threads: int = 1):
        """model: open_clip architecture. pretrained: open_clip tag, hf-hub:/owner/name repo, checkpoint file,
        folder with open_clip_config.json, or package:NAME/file. num_frames: frames sampled evenly over the clip
        (3 = first, middle, last). device: auto | cpu | cuda. dtype: auto | fp32 | bf16 | fp16 (bf16 weights are
        3x faster than fp32 on CPUs that have bf16). batch_size: frames per forward pass.
        frame_width: frames are decoded this wide (pixels). threads: torch CPU threads per worker."""
        if num_frames < 1 or batch_size < 1 or frame_width < 32:
            raise ValueError("clip: num_frames and batch_size must be >= 1, frame_width >= 32 pixels")
        self.model = model
        self.pretrained = pretrained
        self.num_frames = num_frames
        self.device = device
        self.dtype = dtype
        self.batch_size = batch_size
        self.frame_width = frame_width
        self.threads = threads
        self._model = None

    def check(self) -> None:
        from curate.models.clip import open_clip_source

        open_clip_source(self.model, self.pretrained)

    def setup(self) -> None:
        import torch

        from curate.models.clip import ClipModel

        torch.set_num_threads(self.threads)
        self._model = ClipModel.load(self.model, self.pretrained, device=self.device, dtype=self.dtype)

    def frame_needs(self) -> tuple[FrameNeed, ...]:
        return (FrameNeed(positions=tuple(even_positions(self.num_frames)), width=self.frame_width),)

    def process(self, table: pa.Table) -> StageOutput:
        from curate.models.clip import clip_score, frame_mean

        # 1. frames of every clip (a clip without caption is embedded too: dedup and aesthetics use it)
        rows = table.to_pylist()
        frames, errors = read_clip_frames(table, even_positions(self.num_frames), self.frame_width)
        present = [i for i, f in enumerate(frames) if f]
        captioned = [i for i in present if rows[i]["caption"]]
        # 2. one batched pass for the images, one for the captions
        images = [frame.image for i in present for frame in frames[i]]
        image_embs = self._model.embed_images(images, batch_size=self.batch_size) if images else np.zeros((0, 0))
        texts = self._model.embed_texts([rows[i]["caption"] for i in captioned]) if captioned else np.zeros((0, 0))
        text_of = dict(zip(captioned, texts))
        # 3. per clip: the mean of its unit frame embeddings (direction and length), and the caption's score
        n = len(rows)
        scores, embeddings, norms, counts = [math.nan] * n, [None] * n, [None] * n, [0] * n
        offset = 0
        for i in present:
            own = image_embs[offset : offset + len(frames[i])]
            offset += len(frames[i])
            mean = frame_mean(own)
            norms[i] = float(np.linalg.norm(mean))
            embeddings[i] = (mean / max(norms[i], 1e-12)).astype(np.float32).tolist()
            counts[i] = len(frames[i])
            if i in text_of:
                scores[i] = clip_score(text_of[i], own)
            else:
                errors[i] = "no caption"
        kept = self.with_columns(table, {
            "clip_score": scores, "clip_embedding": embeddings, "clip_embedding_norm": norms,
            "clip_model": [clip_model_id(self.model, self.pretrained)] * n, "clip_frames": counts,
            "clip_error": errors,
        })  # fmt: skip
        return StageOutput(kept=kept)
