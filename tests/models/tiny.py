"""Tiny random-weight models, built from configs offline and saved in the same layout as real weights.

    >>> from pathlib import Path
    >>> from tempfile import mkdtemp
    >>> from curate.models.clip import ClipModel
    >>> from tests.models.tiny import save_tiny_clip
    >>> folder = save_tiny_clip(Path(mkdtemp()) / "clip")      # open_clip_config.json + open_clip_model.safetensors
    >>> clip = ClipModel.load(pretrained=str(folder), device="cpu")  # the loader real models go through

Every model here has 2 layers, widths of 32 and images of 32x32 pixels (the aesthetic predictor is the reference's
own small MLP), so building, saving and loading one takes well under a second. Their outputs are meaningless
(random weights): tests only check shapes, types, determinism and plumbing, never what a caption says.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

SEED = 0
IMAGE_SIZE = 32


# 1. tokenizers: byte-level BPE without merges, so any text tokenizes, plus the special tokens a model needs


def byte_level_tokenizer(special_tokens: list[str], chat_template: str | None = None, **named_tokens: str):
    """A ~300-token byte-level tokenizer (a ``PreTrainedTokenizerFast``); ``named_tokens`` sets bos_token= etc."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {token: index for index, token in enumerate(sorted(alphabet))}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, **named_tokens)
    tokenizer.add_special_tokens({"additional_special_tokens": special_tokens})
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    return tokenizer


def wordpiece_tokenizer(folder: Path):
    """A BERT WordPiece tokenizer over ~80 tokens (a few words, letters, BERT specials and BLIP's [DEC] start token)."""
    from transformers import BertTokenizer

    words = "a an the of on in with and is are man woman dog cat car road tree sky water people street city".split()
    letters = list("abcdefghijklmnopqrstuvwxyz")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]", *words, *letters, *[f"##{c}" for c in letters]]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    return BertTokenizer(vocab_file=str(folder / "vocab.txt"), bos_token="[DEC]")


# 2. open_clip: CLIP and CoCa in open_clip's folder layout (what `hf-hub:` repos hold, and `local-dir:` reads)

TINY_CLIP_CFG = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": IMAGE_SIZE, "layers": 2, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}

# CoCa's image tokens are projected to embed_dim and read by the multimodal decoder: both widths must match
TINY_COCA_CFG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": IMAGE_SIZE, "layers": 2, "width": 32, "head_width": 16, "patch_size": 8,
                   "attentional_pool": True, "attn_pooler_queries": 8, "attn_pooler_heads": 2, "output_tokens": True},
    "text_cfg": {"context_length": 76, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2,
                 "embed_cls": True, "output_tokens": True},
    "multimodal_cfg": {"context_length": 76, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2,
                       "attn_pooler_heads": 2},
    "custom_text": True,
}  # fmt: skip


def save_open_clip(folder: Path, model_cfg: dict) -> Path:
    """An open_clip model from ``model_cfg`` with seeded random weights, saved as config + safetensors in ``folder``."""
    import open_clip
    from safetensors.torch import save_model

    torch.manual_seed(SEED)
    cfg = dict(model_cfg)
    model_class = open_clip.CoCa if "multimodal_cfg" in cfg else open_clip.CLIP
    cfg.pop("custom_text", None)
    model = model_class(**cfg)
    if hasattr(model, "text_decoder"):
        # open_clip's MultimodalTransformer leaves its output projection as torch.empty (its init is commented out):
        # whatever memory held, usually zeros, sometimes not, so the tiny CoCa changed from one build to the next
        width = model.text_decoder.width
        torch.nn.init.normal_(model.text_decoder.text_projection, std=width**-0.5)
    folder.mkdir(parents=True, exist_ok=True)
    # preprocess_cfg left to open_clip's defaults (OpenAI mean/std, bicubic, shortest side), as for built-in names
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": model_cfg, "preprocess_cfg": {}}))
    save_model(model, str(folder / "open_clip_model.safetensors"))
    return folder


def save_tiny_clip(folder: Path) -> Path:
    return save_open_clip(folder, TINY_CLIP_CFG)


#: the tiny CLIP with ViT-L/14's embedding width (768), so the aesthetic predictor's reference MLP reads its output
TINY_CLIP_768_CFG = dict(TINY_CLIP_CFG, embed_dim=768)


def save_tiny_clip_768(folder: Path) -> Path:
    return save_open_clip(folder, TINY_CLIP_768_CFG)


def save_tiny_coca(folder: Path) -> Path:
    return save_open_clip(folder, TINY_COCA_CFG)


# 3. transformers: BLIP image captioner, SmolVLM video captioner, a Llama chat LM


def save_tiny_blip(folder: Path) -> Path:
    """BlipForConditionalGeneration + BlipProcessor saved with save_pretrained (the hub layout)."""
    from transformers import BlipConfig, BlipForConditionalGeneration, BlipImageProcessor, BlipProcessor

    tokenizer = wordpiece_tokenizer(folder / "vocab")
    ids = tokenizer.convert_tokens_to_ids
    text = {"vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 2, "encoder_hidden_size": 32, "max_position_embeddings": 64,
            "bos_token_id": ids("[DEC]"), "eos_token_id": ids("[SEP]"), "sep_token_id": ids("[SEP]"),
            "pad_token_id": ids("[PAD]")}  # fmt: skip
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
              "image_size": IMAGE_SIZE, "patch_size": 8}  # fmt: skip
    torch.manual_seed(SEED)
    model = BlipForConditionalGeneration(BlipConfig(text_config=text, vision_config=vision, projection_dim=16))
    image_processor = BlipImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    BlipProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    model.save_pretrained(folder)
    return folder


SMOLVLM_SPECIAL = ["<|im_start|>", "<end_of_utterance>", "<image>", "<fake_token_around_image>", "<global-img>",
                   "<video>", "<row_1_col_1>"]  # fmt: skip
# SmolVLM2's own template (from its hub repo's chat_template), enough for text + image/video turns
SMOLVLM_CHAT_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}"
    "{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% elif line['type'] == 'video' %}{{ '<video>' }}{% endif %}"
    "{% endfor %}<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)


def save_tiny_smolvlm(folder: Path) -> Path:
    """SmolVLMForConditionalGeneration (SmolVLM2 architecture) + SmolVLMProcessor; 4 image tokens per frame."""
    from transformers import (
        SmolVLMConfig,
        SmolVLMForConditionalGeneration,
        SmolVLMImageProcessor,
        SmolVLMProcessor,
        SmolVLMVideoProcessor,
    )

    tokenizer = byte_level_tokenizer(
        SMOLVLM_SPECIAL, eos_token="<end_of_utterance>", pad_token="<end_of_utterance>", bos_token="<|im_start|>"
    )
    scale_factor, patch = 2, 8
    image_seq_len = (IMAGE_SIZE // patch) ** 2 // scale_factor**2
    text = {"model_type": "llama", "vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 64,
            "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1, "max_position_embeddings": 512,
            "pad_token_id": tokenizer.pad_token_id, "eos_token_id": tokenizer.eos_token_id,
            "bos_token_id": tokenizer.bos_token_id}  # fmt: skip
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
              "image_size": IMAGE_SIZE, "patch_size": patch}  # fmt: skip
    config = SmolVLMConfig(
        text_config=text, vision_config=vision, scale_factor=scale_factor,
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"), pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    torch.manual_seed(SEED)
    model = SmolVLMForConditionalGeneration(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    size = {"longest_edge": IMAGE_SIZE}
    processor = SmolVLMProcessor(
        image_processor=SmolVLMImageProcessor(size=size, max_image_size=size, do_image_splitting=False),
        video_processor=SmolVLMVideoProcessor(size=size, max_image_size=size),
        tokenizer=tokenizer,
        image_seq_len=image_seq_len,
        chat_template=SMOLVLM_CHAT_TEMPLATE,
    )
    processor.save_pretrained(folder)
    model.save_pretrained(folder)
    return folder


CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def save_tiny_chat_lm(folder: Path) -> Path:
    """LlamaForCausalLM (SmolLM2's architecture) + a ChatML tokenizer, saved with save_pretrained."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = byte_level_tokenizer(
        ["<|im_start|>", "<|im_end|>"], chat_template=CHATML_TEMPLATE, eos_token="<|im_end|>", pad_token="<|im_end|>"
    )
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, max_position_embeddings=512, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True,
    )  # fmt: skip
    torch.manual_seed(SEED)
    model = LlamaForCausalLM(config)
    tokenizer.save_pretrained(folder)
    model.save_pretrained(folder)
    return folder


# 4. the improved aesthetic predictor: the reference's own MLP (full size, it is small), random weights


def save_tiny_aesthetic_predictor(path: Path, input_size: int = 768) -> Path:
    """The reference MLP (Linear 768-1024-128-64-16-1) with seeded random weights, saved as its state dict:
    ``.safetensors`` or ``.pth`` (torch.save, as the reference publishes it) by the suffix of ``path``."""
    from safetensors.torch import save_file

    from curate.models.aesthetic import AestheticMLP

    torch.manual_seed(SEED)
    state = AestheticMLP(input_size).state_dict()
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save(state, path)
    return path
