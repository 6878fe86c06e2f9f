"""Caption merging: post-processing to one sentence, fallbacks, a tiny chat LM, and real SmolLM2 (slow)."""

from __future__ import annotations

import time

import pytest

from curate.models.summary import (
    DEFAULT_SUMMARY_MODEL,
    SOURCES,
    CaptionMerger,
    MergedCaption,
    check_template,
    choose,
    one_sentence,
)
from tests.models.tiny import save_tiny_chat_lm

PAIRS = [
    ("a man riding a bike down a dirt road.", "A cyclist rides along a forest trail."),
    ("a plate of food on a table.", "A person is cutting vegetables in a kitchen."),
    ("a city street filled with lots of traffic at night.", "Cars drive along a busy highway with lights."),
    ("a dog running in the grass.", "A brown dog plays fetch with a ball in a park."),
]


@pytest.mark.parametrize(
    ("answer", "sentence"),
    [
        ("A man rides a bike on a dirt road.", "A man rides a bike on a dirt road."),
        ('<|im_start|>assistant\nSure! Here is the merged sentence:\n\n"a man rides." Nice.', "A man rides."),
        ("The two descriptions are:\n- A dog runs in a park", "A dog runs in a park."),
        ("**Answer:** A cat sleeps", "A cat sleeps."),
        ("Video: a cyclist rides along a trail.", "A cyclist rides along a trail."),
        ("Dr. Who walks in. Then he leaves.", "Dr. Who walks in."),
        ("A street at night, with cars... and lights! More.", "A street at night, with cars... and lights!"),
        ("  \n<|im_end|>", ""),
        ("...", ""),
    ],
)
def test_one_sentence(answer, sentence):
    assert one_sentence(answer) == sentence


def test_choose_falls_back_and_says_so():
    assert choose("A dog runs.", "a dog", "a dog running") == MergedCaption("A dog runs.", "llm")
    assert choose("", "a dog", "a dog running") == MergedCaption("A dog running.", "fallback_video_caption")
    assert choose("\n", "a dog", "") == MergedCaption("A dog.", "fallback_image_caption")
    assert choose("", "", "") == MergedCaption("", "no_caption")


def test_prompt_template_is_checked():
    check_template("Image: {caption_image} Video: {caption_video}")
    with pytest.raises(ValueError, match="lacks {caption_video}"):
        check_template("Image: {caption_image}")
    with pytest.raises(ValueError, match="only {caption_image} and {caption_video}"):
        check_template("{caption_image} {caption_video} {other}")


def test_tiny_chat_model_merges_every_pair_deterministically(tmp_path):
    merger = CaptionMerger.load(str(save_tiny_chat_lm(tmp_path / "lm")), device="cpu", max_new_tokens=8)
    images, videos = zip(*PAIRS, strict=True)
    first = merger.merge(images, videos)
    assert len(first) == len(PAIRS)
    assert all(item.text and item.source in SOURCES[:3] for item in first)
    assert merger.merge(images, videos) == first
    assert "<|im_start|>user" in merger.prompts(images[:1], videos[:1])[0]
    with pytest.raises(ValueError, match="4 image captions but 3 video captions"):
        merger.merge(images, videos[:3])


@pytest.mark.slow
def test_real_smollm2_gives_one_sentence_per_pair():
    start = time.perf_counter()
    merger = CaptionMerger.load(DEFAULT_SUMMARY_MODEL, device="cpu")
    loaded = time.perf_counter()
    images, videos = zip(*PAIRS, strict=True)
    merged = merger.merge(images, videos)
    seconds_per_caption = (time.perf_counter() - loaded) / len(PAIRS)
    print(f"\nSmolLM2-135M: load {loaded - start:.1f} s, {seconds_per_caption:.2f} s/caption (batch of {len(PAIRS)})")
    for item in merged:
        print(f"  {item.source}: {item.text}")
    assert len(merged) == len(PAIRS)
    for item in merged:
        assert item.source == "llm"
        assert item.text and "\n" not in item.text and item.text[-1] in ".!?"
        assert one_sentence(item.text) == item.text  # already exactly one sentence
