"""Captions: one frame per clip (image captioner) and several frames per clip (video captioner).

    >>> from curate.models.captioning import ImageCaptioner, VideoCaptioner, middle_frame
    >>> images = ImageCaptioner.load()                    # CoCa ViT-L-14 (as in SVD), loaded once per worker
    >>> images.caption([middle_frame(clip) for clip in clips])        # clips: lists of RGB uint8 HxWx3 frames
    ['a man riding a bike down a dirt road.', ...]
    >>> videos = VideoCaptioner.load()                    # SmolVLM2-256M-Video-Instruct
    >>> videos.caption(clips, fps=[25.0] * len(clips))   # samples 8 frames per clip itself
    ['A cyclist rides along a forest trail.', ...]

Both are greedy (``do_sample=False``), so the same frames give the same captions, and both caption a whole
batch per call. Image captioners:

- ``backend="open_clip"`` (default): CoCa, ``open_clip_model="coca_ViT-L-14"`` with
  ``ref="mscoco_finetuned_laion2B-s13B-b90k"`` (or any open_clip ``pretrained`` that :mod:`curate.models.clip`
  accepts). Decoded here with a greedy loop: open_clip 3.3's ``CoCa.generate()`` cannot run with
  transformers 5 (it imports ``BeamSearchScorer``, which transformers removed, and then refuses to generate).
- ``backend="transformers"``: any ``AutoModelForImageTextToText`` captioner that captions from pixels alone,
  e.g. ``ref="Salesforce/blip-image-captioning-base"`` or ``"Salesforce/blip-image-captioning-large"``.

Video captioners: any chat model of ``AutoModelForImageTextToText`` whose processor takes ``videos=``
(SmolVLM2 ``HuggingFaceTB/SmolVLM2-{256M,500M,2.2B}-Video-Instruct``; by the same code, untested here:
LLaVA-OneVision ``llava-hf/llava-onevision-qwen2-0.5b-ov-hf``, Qwen2.5-VL ``Qwen/Qwen2.5-VL-3B-Instruct``).
SmolVLM's processor needs the ``num2words`` package.

Refs are hub ids, local folders (``save_pretrained`` layout) or ``package:`` refs; see :mod:`curate.models.loading`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from curate.models.clip import frames_to_batch, load_open_clip
from curate.models.loading import check_available, pick_device, pick_dtype

DEFAULT_COCA_MODEL = "coca_ViT-L-14"
DEFAULT_IMAGE_CAPTIONER = "mscoco_finetuned_laion2B-s13B-b90k"
DEFAULT_VIDEO_CAPTIONER = "HuggingFaceTB/SmolVLM2-256M-Video-Instruct"
DEFAULT_VIDEO_PROMPT = "Describe this video in one sentence."

Frame = np.ndarray  # RGB uint8 HxWx3


def middle_frame(frames: Sequence[Frame]) -> Frame:
    """The frame an image captioner sees for a clip."""
    if len(frames) == 0:
        raise ValueError("a clip with no frames has no middle frame")
    return frames[len(frames) // 2]


def sample_indices(num_available: int, num_wanted: int) -> list[int]:
    """``num_wanted`` indices spread evenly over ``range(num_available)`` (centres of equal segments); all if fewer."""
    if num_available <= 0:
        raise ValueError("a clip with no frames cannot be captioned")
    if num_available <= num_wanted:
        return list(range(num_available))
    step = num_available / num_wanted
    return [int(step * (i + 0.5)) for i in range(num_wanted)]


def clean_caption(text: str) -> str:
    """Collapse whitespace and the space CoCa puts before punctuation: ``'a dog .  '`` -> ``'a dog.'``."""
    text = re.sub(r"\s+", " ", text).strip()
    return re.sub(r"\s+([.,!?;:])", r"\1", text)


def load_image_text_model(ref: str, device: torch.device, dtype: torch.dtype) -> tuple[torch.nn.Module, Any]:
    """A transformers ``AutoModelForImageTextToText`` and its ``AutoProcessor``, weights required."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    source = check_available(ref, required_files=["config.json"])
    try:
        processor = AutoProcessor.from_pretrained(source.location)
    except ImportError as error:  # e.g. SmolVLM's processor needs num2words
        raise ImportError(f"the processor of {ref!r} needs a package that is missing: {error}") from error
    model = AutoModelForImageTextToText.from_pretrained(source.location, dtype=dtype).to(device).eval()
    return model, processor


@dataclass
class ImageCaptioner:
    """Captions single frames. Build with :meth:`load` once; call :meth:`caption` per batch."""

    backend: Literal["open_clip", "transformers"]
    model: torch.nn.Module
    processor: Any  # open_clip tokenizer, or a transformers processor
    device: torch.device
    dtype: torch.dtype
    max_new_tokens: int = 30

    @classmethod
    def load(
        cls,
        ref: str = DEFAULT_IMAGE_CAPTIONER,
        *,
        backend: Literal["open_clip", "transformers"] = "open_clip",
        open_clip_model: str = DEFAULT_COCA_MODEL,
        device: str | torch.device = "auto",
        dtype: str | torch.dtype = "auto",
        max_new_tokens: int = 30,
    ) -> ImageCaptioner:
        chosen = pick_device(device)
        chosen_dtype = pick_dtype(chosen, dtype)
        if backend == "open_clip":
            if not 0 < max_new_tokens < 76:
                raise ValueError(f"{max_new_tokens=}: CoCa's text context holds 76 tokens, so use 1..75")
            model, processor = load_open_clip(open_clip_model, ref, chosen, chosen_dtype)
            if not hasattr(model, "text_decoder"):
                raise ValueError(f"open_clip model {open_clip_model!r} ({ref!r}) is not a CoCa captioner; use coca_*")
        elif backend == "transformers":
            model, processor = load_image_text_model(ref, chosen, chosen_dtype)
        else:
            raise ValueError(f"{backend=}: use 'open_clip' (CoCa) or 'transformers' (BLIP and other image-to-text)")
        return cls(backend, model, processor, chosen, chosen_dtype, max_new_tokens)

    @torch.inference_mode()
    def caption(self, frames: Sequence[Frame]) -> list[str]:
        """One caption per frame, in order."""
        if len(frames) == 0:
            return []
        if self.backend == "open_clip":
            import open_clip

            pixels = frames_to_batch(frames, open_clip.get_model_preprocess_cfg(self.model), self.device)
            tokens = coca_greedy(self.model, pixels.to(self.dtype), self.max_new_tokens, self.processor)
            return [clean_caption(coca_decode(self.processor, row)) for row in tokens.tolist()]
        inputs = self.processor(images=list(frames), return_tensors="pt").to(self.device)
        inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        output = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False, num_beams=1)
        return [clean_caption(text) for text in self.processor.batch_decode(output, skip_special_tokens=True)]


def coca_greedy(coca: torch.nn.Module, pixels: torch.Tensor, max_new_tokens: int, tokenizer: Any) -> torch.Tensor:
    """Greedy decoding for open_clip CoCa: [N,3,S,S] pixels -> [N, 1+T] token ids starting with start-of-text."""
    sot, eot = tokenizer.sot_token_id, tokenizer.eot_token_id
    image_latent, image_embs = coca._encode_image(pixels)
    tokens = torch.full((pixels.shape[0], 1), sot, dtype=torch.long, device=pixels.device)
    finished = torch.zeros(pixels.shape[0], dtype=torch.bool, device=pixels.device)
    for _ in range(max_new_tokens):
        logits = coca(pixels, tokens, image_latent=image_latent, image_embs=image_embs, output_labels=False)["logits"]
        next_token = logits[:, -1].argmax(dim=-1).masked_fill(finished, eot)
        tokens = torch.cat([tokens, next_token[:, None]], dim=1)
        finished |= next_token == eot
        if finished.all():
            break
    return tokens


def coca_decode(tokenizer: Any, ids: list[int]) -> str:
    """Text between start-of-text and the first end-of-text."""
    ids = ids[1:]
    if tokenizer.eot_token_id in ids:
        ids = ids[: ids.index(tokenizer.eot_token_id)]
    return tokenizer.decode(ids)


@dataclass
class VideoCaptioner:
    """Captions clips from ``num_frames`` evenly sampled frames with a video chat model. Build with :meth:`load`."""

    model: torch.nn.Module
    processor: Any
    device: torch.device
    dtype: torch.dtype
    prompt: str = DEFAULT_VIDEO_PROMPT
    num_frames: int = 8
    max_new_tokens: int = 60

    @classmethod
    def load(
        cls,
        ref: str = DEFAULT_VIDEO_CAPTIONER,
        *,
        device: str | torch.device = "auto",
        dtype: str | torch.dtype = "auto",
        prompt: str = DEFAULT_VIDEO_PROMPT,
        num_frames: int = 8,
        max_new_tokens: int = 60,
    ) -> VideoCaptioner:
        if num_frames < 1 or max_new_tokens < 1:
            raise ValueError(f"{num_frames=} and {max_new_tokens=} must both be >= 1")
        chosen = pick_device(device)
        chosen_dtype = pick_dtype(chosen, dtype)
        model, processor = load_image_text_model(ref, chosen, chosen_dtype)
        if getattr(processor, "video_processor", None) is None:
            raise ValueError(f"{ref!r} has no video processor; pick a video model such as {DEFAULT_VIDEO_CAPTIONER!r}")
        processor.tokenizer.padding_side = "left"  # batched generation appends after the prompt
        return cls(model, processor, chosen, chosen_dtype, prompt, num_frames, max_new_tokens)

    @torch.inference_mode()
    def caption(self, clips: Sequence[Sequence[Frame]], fps: Sequence[float] | None = None) -> list[str]:
        """One caption per clip, in order. ``fps`` (per clip) lets the model see real timestamps; 1 fps if omitted."""
        if len(clips) == 0:
            return []
        # 1. sample frames and describe where they sit in the clip
        fps = [1.0] * len(clips) if fps is None else [float(rate) for rate in fps]
        videos, metadata = [], []
        for frames, rate in zip(clips, fps, strict=True):
            indices = sample_indices(len(frames), self.num_frames)
            videos.append(np.stack([frames[i] for i in indices]))
            metadata.append(_video_metadata(frames[0], len(frames), rate, indices))
        # 2. one chat prompt with a video slot, shared by every clip
        messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": self.prompt}]}]
        text = self.processor.apply_chat_template(messages, add_generation_prompt=True)
        inputs = self.processor(
            text=[text] * len(clips), videos=videos, video_metadata=metadata, do_sample_frames=False,
            padding=True, return_tensors="pt",
        ).to(self.device)  # fmt: skip
        # 3. greedy generation; keep only the new tokens
        for key, value in inputs.items():
            if torch.is_floating_point(value):
                inputs[key] = value.to(self.dtype)
        output = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False, num_beams=1)
        new_tokens = output[:, inputs["input_ids"].shape[1] :]
        return [clean_caption(text) for text in self.processor.batch_decode(new_tokens, skip_special_tokens=True)]


def _video_metadata(frame: Frame, num_frames: int, fps: float, indices: list[int]):
    from transformers.video_utils import VideoMetadata

    height, width = frame.shape[:2]
    return VideoMetadata(
        total_num_frames=num_frames, fps=fps, duration=num_frames / fps, frames_indices=indices, width=width,
        height=height,
    )  # fmt: skip
