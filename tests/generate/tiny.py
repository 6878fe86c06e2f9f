"""A tiny random-weight text-to-video pipeline (ModelScope's architecture, TextToVideoSDPipeline), saved offline.

    >>> from pathlib import Path
    >>> from tempfile import mkdtemp
    >>> from curate.generate.pipeline import load_diffusion_pipeline
    >>> from tests.generate.tiny import save_tiny_text_to_video
    >>> folder = save_tiny_text_to_video(Path(mkdtemp()) / "t2v")   # model_index.json + one folder per component
    >>> pipe = load_diffusion_pipeline(str(folder), device="cpu")             # the loader real models go through

The components (UNet3DConditionModel, AutoencoderKL, CLIPTextModel + CLIPTokenizer, DDIMScheduler) have one or
two blocks, widths of 8-32 and a 32x32 latent, so building and saving takes about a second and one 4-frame,
2-step video a fraction of a second on a CPU. Random weights: the frames are noise, only plumbing is tested.
The tokenizer is byte-level CLIP BPE without merges (every character is a token), so any prompt tokenizes.
"""

from __future__ import annotations

from pathlib import Path

import torch

SEED = 0
SIZE = 32


def tiny_clip_tokenizer():
    """A CLIPTokenizer over single byte-level characters (with and without CLIP's ``</w>`` word end)."""
    from tokenizers import pre_tokenizers
    from transformers import CLIPTokenizer

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tokens = ["<|startoftext|>", "<|endoftext|>", *alphabet, *[f"{c}</w>" for c in alphabet]]
    return CLIPTokenizer(vocab={t: i for i, t in enumerate(tokens)}, merges=[], model_max_length=77)


def tiny_text_to_video_pipeline():
    """A TextToVideoSDPipeline with seeded random weights, 32x32 pixels (vae_scale_factor 1)."""
    from diffusers import AutoencoderKL, DDIMScheduler, TextToVideoSDPipeline, UNet3DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    tokenizer = tiny_clip_tokenizer()
    torch.manual_seed(SEED)
    unet = UNet3DConditionModel(
        block_out_channels=(8, 8), layers_per_block=1, sample_size=SIZE, in_channels=4, out_channels=4,
        down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"), up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"),
        cross_attention_dim=32, attention_head_dim=4, norm_num_groups=2,
    )  # fmt: skip
    vae = AutoencoderKL(
        block_out_channels=(8,), in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",),
        up_block_types=("UpDecoderBlock2D",), latent_channels=4, sample_size=SIZE, norm_num_groups=2,
    )  # fmt: skip
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=77, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, projection_dim=32,
    ))  # fmt: skip
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False)
    return TextToVideoSDPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                 scheduler=scheduler)


def save_tiny_text_to_video(folder: Path) -> Path:
    """The tiny pipeline saved with ``save_pretrained`` (the hub layout ``DiffusionPipeline.from_pretrained`` reads)."""
    tiny_text_to_video_pipeline().save_pretrained(folder)
    return Path(folder)
