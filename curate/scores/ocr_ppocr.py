"""PP-OCR text detection on ONNX Runtime: the PP-OCRv6 small detector that ships inside the rapidocr wheel.

    >>> import numpy as np
    >>> from curate.scores.ocr_ppocr import PpocrDetector
    >>> detector = PpocrDetector.load()                  # the model file inside the rapidocr package, CPU, 1 thread
    >>> detector.detect([np.full((180, 320, 3), 200, np.uint8)])   # one list of boxes per image: none here
    [[]]

PP-OCR's detector is a DB network (Differentiable Binarization): it predicts, per pixel, the probability of being
inside a text line's shrunk core. Boxes come out of that map as in PaddleOCR's ``DBPostProcess`` (rapidocr uses
the same code and settings), done here for a batch of same-size frames in one ONNX Runtime call:

1. resize each image so both sides are multiples of 32 (the network's stride), as PaddleOCR's
   ``DetResizeForTest`` does; the caller has already scaled the frame (``ocr.max_side``), so nothing is enlarged;
2. normalise to [-1, 1] and run the network on the batch;
3. threshold the probability map at ``THRESH``, dilate it 2x2, take each connected region's minimum-area rectangle;
   keep those whose mean probability is at least ``BOX_THRESH`` and whose shorter side is at most
   ``MAX_CORE_FRACTION`` of the image's shorter side;
4. grow each rectangle by ``d = area * UNCLIP_RATIO / perimeter`` on every side (DB's "unclip": the network
   predicts shrunk cores; PaddleOCR offsets the polygon with round joins, whose minimum-area rectangle is this),
   scale it to the image's pixels, and return its 4 corners clockwise from the top-left.

Two settings differ from PaddleOCR's, both measured on the shared fixtures (``benchmarks/ocr_detectors.py``):

- ``UNCLIP_RATIO`` 0.8 instead of 1.6. PaddleOCR grows boxes into a margin around the text, good for reading it;
  curate measures area, and at 0.8 the boxes cover text as CRAFT's do (PP-OCR / CRAFT area on the fixtures'
  text frames: median 1.02 at 0.8, 1.41 at 1.6; synthetic text: 0.93-1.22x its bounding box at 0.8).
- ``MAX_CORE_FRACTION``: this model fires on some textured natural images (a flock of gannets, hands against a
  dark background) with one blob over most of the frame (areas 0.6-1.0 on ``moviepy_nature_montage.mp4`` and
  ``psd_issue-195-aspect-ratio.mp4``, where CRAFT finds nothing). Text cores are bands: the tallest on the
  fixtures is 6 % of the frame's shorter side (the frame counter's digits), a logo 14 %; the false blobs are
  43-62 %. A core over a quarter of the shorter side (text over ~half the frame tall) is dropped.

The model file is found inside the installed rapidocr package (``DEFAULT_MODEL``, a ``package:`` reference, see
``curate.models.loading``) without importing rapidocr, and nothing is ever downloaded; a local ``.onnx`` path
works too (e.g. rapidocr's other PP-OCR detectors). The network runs in float32 (ONNX Runtime's CPU kernels
have no faster bf16 path), or from an int8 copy of it (``int8=True``: ``curate.scores.ocr_int8``, faster on a CPU
with int8 dot products, with boxes close to float32's).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from curate.models.loading import check_available

__all__ = ["DEFAULT_MODEL", "PpocrDetector"]

DEFAULT_MODEL = "package:rapidocr/models/PP-OCRv6_det_small.onnx"
DEVICES = ("auto", "cpu", "cuda")
STRIDE = 32  # both input sides must be multiples of this
THRESH = 0.3  # probability above which a pixel is text core
BOX_THRESH = 0.5  # minimum mean probability inside a region's rectangle
UNCLIP_RATIO = 0.8  # how far a core's rectangle is grown back to the text line (PaddleOCR: 1.6, with a margin)
MAX_CORE_FRACTION = 0.25  # of the image's shorter side: a taller core is the network firing on texture, not text
MIN_SIDE = 3  # pixels of the probability map: shorter cores are noise
MAX_CANDIDATES = 1000  # regions looked at per image
BATCH = 16  # images per ONNX Runtime call (memory: 16 x 3 x 320 x 320 float32 = 20 MB)


class PpocrDetector:
    """A PP-OCR (DB) text detector on ONNX Runtime; build it with :meth:`load`."""

    name = "ppocr"

    def __init__(self, session, model: str, path: Path, threads: int | None, precision: str = "fp32"):
        self.session = session
        self.model = model  # the reference it was loaded from, and the (float32) file it names
        self.path = path
        self.threads = threads
        self.precision = precision  # "fp32", or "int8": the copy of curate.scores.ocr_int8
        self._input = session.get_inputs()[0].name

    @classmethod
    def load(cls, model: str = DEFAULT_MODEL, *, device: str = "auto", threads: int | None = 1,
             int8: bool = False) -> PpocrDetector:
        """Open the ONNX model: ``model`` is a ``package:`` reference or a local path to an ``.onnx`` file.

        ``device``: "auto" (CUDA when onnxruntime-gpu sees a GPU, else CPU), "cpu" or "cuda". ``threads``: ONNX
        Runtime's threads inside one call (1 = what one Dask worker per core wants; None = ONNX Runtime's
        default, every core). ``int8``: run the int8 copy of the model (``curate.scores.ocr_int8``, built on first
        use; on the CPU only: with CUDA the float32 model runs).
        """
        # 1. check inputs
        if device not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise ValueError(f"threads must be a positive integer or None (ONNX Runtime's default), got {threads!r}")
        path = check_available(model).path
        if path is None or not path.is_file():
            raise ValueError(f"ppocr model {model!r} is not an .onnx file: give a local path to one, or "
                             f"{DEFAULT_MODEL!r} (pip install rapidocr)")

        # 2. open the session
        import onnxruntime as ort

        available = ort.get_available_providers()
        if device == "cuda" and "CUDAExecutionProvider" not in available:
            raise ValueError(f"device 'cuda' but this onnxruntime has no CUDA provider (it has {available}): "
                             "pip install onnxruntime-gpu, or use device 'auto' or 'cpu'")
        use_cuda = device != "cpu" and "CUDAExecutionProvider" in available
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if use_cuda else ["CPUExecutionProvider"]
        precision = "int8" if int8 and not use_cuda else "fp32"
        runs = path  # the float32 file, or its int8 copy
        if precision == "int8":
            from curate.scores.ocr_int8 import int8_model

            runs = int8_model(path)
        return cls(ort.InferenceSession(os.fspath(runs), options, providers=providers), model, path, threads,
                   precision)

    def detect(self, images: Sequence[np.ndarray]) -> list[list[np.ndarray]]:
        """Text boxes of each HxWx3 uint8 RGB image: (4, 2) int32 corners (x, y) in its pixels, clockwise from the
        top-left. Images of the same size run together in batches."""
        for image in images:
            if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                raise ValueError(f"images must be HxWx3 uint8 RGB arrays, got shape {image.shape} dtype {image.dtype}")
        out: list[list[np.ndarray]] = [[] for _ in images]
        by_size: dict[tuple[int, int], list[int]] = {}
        for i, image in enumerate(images):
            by_size.setdefault(image.shape[:2], []).append(i)
        for (height, width), indices in by_size.items():
            for start in range(0, len(indices), BATCH):
                batch = indices[start : start + BATCH]
                maps = self._probabilities([images[i] for i in batch])
                for i, probability in zip(batch, maps):
                    out[i] = boxes_from_map(probability, height, width)
        return out

    def _probabilities(self, images: list[np.ndarray]) -> np.ndarray:
        """Steps 1-2: the text-core probability map of each image (N, H', W'), at the network's input size."""
        height, width = images[0].shape[:2]
        size = (max(STRIDE, round(width / STRIDE) * STRIDE), max(STRIDE, round(height / STRIDE) * STRIDE))
        batch = np.stack([cv2.resize(image, size) if size != (width, height) else image for image in images])
        batch = batch.astype(np.float32).transpose(0, 3, 1, 2) * (2 / 255) - 1  # (x / 255 - 0.5) / 0.5
        return self.session.run(None, {self._input: batch})[0][:, 0]


def boxes_from_map(probability: np.ndarray, height: int, width: int) -> list[np.ndarray]:
    """Steps 3-4: text boxes of a (H', W') probability map, as corners in pixels of a height x width image."""
    core = cv2.dilate((probability > THRESH).astype(np.uint8), np.ones((2, 2), np.uint8))
    contours, _ = cv2.findContours(core, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    scale = np.array([width / probability.shape[1], height / probability.shape[0]])
    boxes = []
    max_core = MAX_CORE_FRACTION * min(probability.shape)
    for contour in contours[:MAX_CANDIDATES]:
        (cx, cy), (w, h), angle = cv2.minAreaRect(contour)
        if not MIN_SIDE <= min(w, h) <= max_core:
            continue
        if _mean_inside(probability, cv2.boxPoints(((cx, cy), (w, h), angle))) < BOX_THRESH:
            continue
        grow = w * h * UNCLIP_RATIO / (2 * (w + h))
        w, h = w + 2 * grow, h + 2 * grow
        if min(w, h) < MIN_SIDE + 2:
            continue
        corners = cv2.boxPoints(((cx, cy), (w, h), angle)) * scale
        corners = np.clip(np.round(corners), 0, [width - 1, height - 1])
        box = _clockwise_from_top_left(corners)
        if np.linalg.norm(box[0] - box[1]) > 3 and np.linalg.norm(box[0] - box[3]) > 3:
            boxes.append(box.astype(np.int32))
    return _reading_order(boxes)


def _reading_order(boxes: list[np.ndarray]) -> list[np.ndarray]:
    """Boxes in reading order: lines top to bottom (a box starts a new line when its top is below the line's first
    box's middle), left to right within a line."""
    lines: list[list[np.ndarray]] = []
    for box in sorted(boxes, key=lambda b: (b[:, 1].min(), b[:, 0].min())):
        if lines and box[:, 1].min() < lines[-1][0][:, 1].mean():
            lines[-1].append(box)
        else:
            lines.append([box])
    return [box for line in lines for box in sorted(line, key=lambda b: b[:, 0].min())]


def _mean_inside(probability: np.ndarray, corners: np.ndarray) -> float:
    """Mean probability inside the polygon (PaddleOCR's ``box_score_fast``)."""
    h, w = probability.shape
    x0, y0 = np.clip(np.floor(corners.min(axis=0)).astype(int), 0, [w - 1, h - 1])
    x1, y1 = np.clip(np.ceil(corners.max(axis=0)).astype(int), 0, [w - 1, h - 1])
    mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), dtype=np.uint8)
    cv2.fillPoly(mask, [(corners - [x0, y0]).astype(np.int32)], 1)
    return cv2.mean(probability[y0 : y1 + 1, x0 : x1 + 1], mask)[0]


def _clockwise_from_top_left(corners: np.ndarray) -> np.ndarray:
    """The 4 corners ordered top-left, top-right, bottom-right, bottom-left (image y points down)."""
    by_x = corners[np.argsort(corners[:, 0], kind="stable")]
    left, right = by_x[:2], by_x[2:]
    top_left, bottom_left = left[np.argsort(left[:, 1], kind="stable")]
    top_right, bottom_right = right[np.argsort(right[:, 1], kind="stable")]
    return np.array([top_left, top_right, bottom_right, bottom_left])
