"""LAION's improved aesthetic predictor: an MLP over L2-normalised CLIP ViT-L/14 image embeddings, scores ~1-10.

    >>> from curate.models.aesthetic import AestheticPredictor
    >>> from curate.models.clip import ClipModel, frame_mean
    >>> predictor = AestheticPredictor.load("ttj/sac-logos-ava1-l14-linearMSE")   # hub id, file, folder, package:
    >>> clip = ClipModel.load("ViT-L-14", "openai")                               # the embeddings it was trained on
    >>> frame_embs = clip.embed_images(frames)                                    # [N, 768] unit rows
    >>> predictor.score(frame_mean(frame_embs)[None])                             # [1]: the clip's score

The reference is ``simple_inference.py`` of christophschuhmann/improved-aesthetic-predictor, whose weights
``sac+logos+ava1-l14-linearMSE.pth`` (also ``model.safetensors`` in the hub repo ``ttj/sac-logos-ava1-l14-linearMSE``,
the one NeMo Curator uses) are a state dict ``layers.{0,2,4,6,7}.{weight,bias}`` of Linear(768, 1024), Dropout(0.2),
Linear(1024, 128), Dropout(0.2), Linear(128, 64), Dropout(0.1), Linear(64, 16), Linear(16, 1), with no activation
in between, applied to ``normalize(encode_image(image))`` of OpenAI's CLIP ViT-L/14 (open_clip ``ViT-L-14`` /
``openai``). A video is scored by the mean of its frames' scores (Open-Sora: first, middle and last frame).

Without activations the MLP is one affine map f(x) = w·x + b (dropout is off at inference), so the mean of the
frames' scores, mean_i f(e_i), equals f(mean_i e_i): a clip's score needs only the mean of its unit frame
embeddings (``curate.models.clip.frame_mean``), which the CLIP stage stores as ``clip_embedding *
clip_embedding_norm``. A checkpoint with activations (the repo's ``*-reluMSE.pth``: keys ``layers.0, 3, 6, ...``)
has other keys and is refused, so this never applies to a model for which it would be wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from curate.models.loading import ModelSource, ModelUnavailable, check_available, pick_device

DEFAULT_PREDICTOR = "ttj/sac-logos-ava1-l14-linearMSE"
#: the CLIP model (open_clip name, pretrained tag) whose embeddings the reference predictor was trained on
REFERENCE_CLIP = ("ViT-L-14", "openai")
#: weight files looked for in a hub repo or folder, in this order
PREDICTOR_FILES = ("model.safetensors", "sac+logos+ava1-l14-linearMSE.pth")
_LINEAR_LAYERS = (0, 2, 4, 6, 7)  # indices of the Linear modules in the reference's nn.Sequential


class AestheticMLP(torch.nn.Module):
    """The reference's network, layer for layer (so its state dict loads as is)."""

    def __init__(self, input_size: int = 768):
        super().__init__()
        self.layers = torch.nn.Sequential(
            torch.nn.Linear(input_size, 1024),
            torch.nn.Dropout(0.2),
            torch.nn.Linear(1024, 128),
            torch.nn.Dropout(0.2),
            torch.nn.Linear(128, 64),
            torch.nn.Dropout(0.1),
            torch.nn.Linear(64, 16),
            torch.nn.Linear(16, 1),
        )

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.layers(embeddings)


def predictor_source(ref: str) -> ModelSource:
    """Check the predictor's weights can be had (hub cache or hub, file, folder, package) without loading them."""
    source = check_available(ref, required_files=[PREDICTOR_FILES])
    if source.kind != "hub" and source.path.is_file() and source.path.suffix not in (".safetensors", ".pth", ".pt"):
        raise ModelUnavailable(f"aesthetic predictor {ref!r}: expected a .safetensors or .pth state dict, got "
                               f"{source.path.name}")
    return source


def predictor_file(ref: str) -> Path:
    """The weights file behind ``ref``: the first of ``PREDICTOR_FILES`` in a hub repo (cached or downloaded) or
    folder, or the file itself."""
    source = predictor_source(ref)
    if source.kind == "hub":
        from huggingface_hub import hf_hub_download, try_to_load_from_cache
        from huggingface_hub.errors import EntryNotFoundError

        for name in PREDICTOR_FILES:
            cached = try_to_load_from_cache(source.repo_id, name)
            if isinstance(cached, str):
                return Path(cached)
        for name in PREDICTOR_FILES:
            try:
                return Path(hf_hub_download(source.repo_id, name))
            except EntryNotFoundError:
                continue
        raise ModelUnavailable(f"aesthetic predictor {ref!r}: the hub repo has none of {', '.join(PREDICTOR_FILES)}")
    if source.path.is_dir():
        return next(source.path / name for name in PREDICTOR_FILES if (source.path / name).exists())
    return source.path


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The reference MLP's tensors from a .safetensors or .pth file (never unpickles anything but tensors)."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state) if isinstance(state, dict) else state
    expected = {f"layers.{i}.{kind}" for i in _LINEAR_LAYERS for kind in ("weight", "bias")}
    if not isinstance(state, dict) or set(state) != expected:
        found = sorted(state)[:12] if isinstance(state, dict) else type(state).__name__
        raise ValueError(
            f"{path}: not the improved aesthetic predictor's linear MLP: expected the keys {sorted(expected)}, found "
            f"{found}. Variants with activations (e.g. ava+logos-l14-reluMSE.pth) are not supported: use "
            "sac+logos+ava1-l14-linearMSE.pth."
        )
    return state


@dataclass
class AestheticPredictor:
    """A loaded predictor; build it with :meth:`load` once per worker, then score many embeddings."""

    network: AestheticMLP
    device: torch.device

    @classmethod
    def load(cls, ref: str = DEFAULT_PREDICTOR, device: str | torch.device = "auto") -> AestheticPredictor:
        state = load_state_dict(predictor_file(ref))
        network = AestheticMLP(input_size=state["layers.0.weight"].shape[1])
        try:
            network.load_state_dict(state)
        except RuntimeError as error:
            message = f"aesthetic predictor {ref!r}: layer shapes differ from the reference's: {error}"
            raise ValueError(message) from None
        chosen = pick_device(device)
        return cls(network.float().to(chosen).eval(), chosen)

    @property
    def input_size(self) -> int:
        return self.network.layers[0].in_features

    @torch.inference_mode()
    def score(self, embeddings: np.ndarray) -> np.ndarray:
        """[N] float64 scores of [N, D] embeddings, used as given (pass unit rows, or means of unit rows)."""
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if embeddings.ndim != 2 or embeddings.shape[1] != self.input_size:
            raise ValueError(
                f"the aesthetic predictor reads [N, {self.input_size}] embeddings (CLIP ViT-L/14 for the reference "
                f"weights), got shape {embeddings.shape}: set aesthetic.clip_model to the CLIP it was trained on"
            )
        out = self.network(torch.from_numpy(embeddings).to(self.device))
        return out[:, 0].double().cpu().numpy()
