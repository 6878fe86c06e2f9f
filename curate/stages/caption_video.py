"""Video caption: caption frames sampled over each whole clip with a video model (SVD used V-BLIP).

    from curate.stages.caption_video import CaptionVideo
    stage = CaptionVideo()             # SmolVLM2-256M-Video-Instruct, from the hub or its cache
    stage = CaptionVideo(model="llava-hf/llava-onevision-qwen2-0.5b-ov-hf")   # any transformers video chat model
    stage.check(); stage.setup()
    out = stage.process(clips)         # + caption_video, caption_video_error

``num_frames`` frames are sampled evenly from the clip's first to its last frame; the model is told their real
timestamps. Generation is greedy (deterministic).
"""

from __future__ import annotations

import pyarrow as pa

from curate.stage import Resources, Stage, StageOutput
from curate.video.frame_needs import FrameNeed, read_clip_frames


def even_positions(n: int) -> list[float]:
    """``n`` relative positions from the clip's first (0) to its last (1) frame."""
    return [0.5] if n == 1 else [i / (n - 1) for i in range(n)]


class CaptionVideo(Stage):
    name = "caption_video"
    loaded = ("_captioner",)  # set up on each worker, never pickled
    reads = ("video_path", "video_stream", "start_s", "end_s")
    adds = {"caption_video": pa.string(), "caption_video_error": pa.string()}
    resources = Resources(cpus=1, gpus=1)

    def __init__(self, model: str = "HuggingFaceTB/SmolVLM2-256M-Video-Instruct",
                 prompt: str = "Describe this video in one sentence.", num_frames: int = 8, device: str = "auto",
                 dtype: str = "auto", max_new_tokens: int = 60, batch_size: int = 2, frame_width: int = 384,
                 threads: int = 1):
        """model: a transformers video-text model (hub id or local folder). prompt: the instruction.
        num_frames: frames sampled evenly over the clip. device: auto | cpu | cuda. dtype: auto | fp32 | bf16 | fp16.
        max_new_tokens: caption length limit. batch_size: clips per generate call.
        frame_width: frames are decoded this wide (pixels). threads: torch CPU threads per worker."""
        if num_frames < 1 or batch_size < 1 or max_new_tokens < 1 or frame_width < 32:
            raise ValueError("caption_video: num_frames, batch_size, max_new_tokens must be >= 1, frame_width >= 32")
        self.model = model
        self.prompt = prompt
        self.num_frames = num_frames
        self.device = device
        self.dtype = dtype
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.frame_width = frame_width
        self.threads = threads
        self._captioner = None

    def check(self) -> None:
        from curate.models.loading import check_available

        check_available(self.model)

    def setup(self) -> None:
        import torch

        from curate.models.captioning import VideoCaptioner

        torch.set_num_threads(self.threads)
        self._captioner = VideoCaptioner.load(self.model, device=self.device, dtype=self.dtype, prompt=self.prompt,
                                              num_frames=self.num_frames, max_new_tokens=self.max_new_tokens)

    def frame_needs(self) -> tuple[FrameNeed, ...]:
        return (FrameNeed(positions=tuple(even_positions(self.num_frames)), width=self.frame_width),)

    def process(self, table: pa.Table) -> StageOutput:
        clips, errors = read_clip_frames(table, even_positions(self.num_frames), self.frame_width)
        rates = [self.num_frames / max(end - start, 1e-3)
                 for start, end in zip(table["start_s"].to_pylist(), table["end_s"].to_pylist())]
        present = [i for i, c in enumerate(clips) if c is not None]
        captions: list[str | None] = [None] * table.num_rows
        for start in range(0, len(present), self.batch_size):
            batch = present[start : start + self.batch_size]
            texts = self._captioner.caption([[f.image for f in clips[i]] for i in batch],
                                            fps=[rates[i] for i in batch])
            for i, text in zip(batch, texts):
                captions[i] = text
        return StageOutput(kept=self.with_columns(table, {"caption_video": captions, "caption_video_error": errors}))
