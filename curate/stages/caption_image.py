"""Image caption: caption the middle frame of every clip (SVD used CoCa). Adds ``caption_image``; never drops a row.

    from curate.stages.caption_image import CaptionImage
    stage = CaptionImage()             # CoCa ViT-L-14 (mscoco_finetuned_laion2B-s13B-b90k), from the hub or its cache
    stage = CaptionImage(model="Salesforce/blip-image-captioning-base", backend="transformers")   # or BLIP, a folder...
    stage.check(); stage.setup()       # check: weights reachable (fails in seconds); setup: load once per worker
    out = stage.process(clips)         # + caption_image, caption_image_error

``model`` is an open_clip pretrained tag / ``hf-hub:`` repo / checkpoint path for the ``open_clip`` backend (CoCa),
or a hub id / local folder for the ``transformers`` backend (any image-to-text model). See ``curate.models``.
"""

from __future__ import annotations

from typing import Literal

import pyarrow as pa

from curate.stage import Resources, Stage, StageOutput
from curate.video.frame_needs import FrameNeed, read_clip_frames


class CaptionImage(Stage):
    name = "caption_image"
    loaded = ("_captioner",)  # set up on each worker, never pickled
    reads = ("video_path", "video_stream", "start_s", "end_s")
    adds = {"caption_image": pa.string(), "caption_image_error": pa.string()}
    resources = Resources(cpus=1, gpus=1)

    def __init__(self, model: str = "mscoco_finetuned_laion2B-s13B-b90k", backend: Literal["open_clip", "transformers"] = "open_clip",
                 open_clip_model: str = "coca_ViT-L-14", device: str = "auto", dtype: str = "auto",
                 max_new_tokens: int = 30, batch_size: int = 8, frame_width: int = 448, threads: int = 1):
        """model: weights (see the module docstring). backend: open_clip (CoCa) | transformers.
        open_clip_model: the open_clip architecture (open_clip backend). device: auto | cpu | cuda.
        dtype: auto (bf16/fp16 on GPU, bf16 on CPUs that have it) | fp32 | bf16 | fp16.
        max_new_tokens: caption length limit. batch_size: frames per forward pass.
        frame_width: the middle frame is decoded this wide (pixels) before the model's own resize.
        threads: torch CPU threads per worker."""
        if batch_size < 1 or max_new_tokens < 1 or frame_width < 32:
            raise ValueError("caption_image: batch_size and max_new_tokens must be >= 1, frame_width >= 32 pixels")
        self.model = model
        self.backend = backend
        self.open_clip_model = open_clip_model
        self.device = device
        self.dtype = dtype
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.frame_width = frame_width
        self.threads = threads
        self._captioner = None

    def check(self) -> None:
        from curate.models.clip import open_clip_source
        from curate.models.loading import check_available

        if self.backend == "open_clip":
            open_clip_source(self.open_clip_model, self.model)
        else:
            check_available(self.model)

    def setup(self) -> None:
        import torch

        from curate.models.captioning import ImageCaptioner

        torch.set_num_threads(self.threads)
        self._captioner = ImageCaptioner.load(self.model, backend=self.backend, open_clip_model=self.open_clip_model,
                                              device=self.device, dtype=self.dtype, max_new_tokens=self.max_new_tokens)

    def frame_needs(self) -> tuple[FrameNeed, ...]:
        return (FrameNeed(positions=(0.5,), width=self.frame_width),)

    def process(self, table: pa.Table) -> StageOutput:
        clips, errors = read_clip_frames(table, [0.5], self.frame_width)
        frames = [c[0] if c else None for c in clips]
        present = [i for i, f in enumerate(frames) if f is not None]
        captions: list[str | None] = [None] * table.num_rows
        for start in range(0, len(present), self.batch_size):
            batch = present[start : start + self.batch_size]
            for i, text in zip(batch, self._captioner.caption([frames[i].image for i in batch])):
                captions[i] = text
        kept = self.with_columns(table, {"caption_image": captions, "caption_image_error": errors})
        return StageOutput(kept=kept)
