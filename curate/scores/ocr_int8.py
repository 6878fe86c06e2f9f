"""An 8-bit (int8) copy of the PP-OCR detector, made once per machine: several times faster on a CPU with int8 dot
products.

    >>> from curate.scores.ocr_int8 import int8_model
    >>> path = int8_model(Path("PP-OCRv6_det_small.onnx"))   # built the first time, then read from the cache

The copy is made by ONNX Runtime's static quantization (``onnxruntime.quantization.quantize_static``): weights in
int8 per output channel, activations in uint8 with ranges calibrated at the 99.99th percentile of their values on
``CALIBRATION_IMAGES`` synthetic images (:func:`calibration_images`: smooth colour fields, noise, flat shapes and
printed text of several fonts and sizes, drawn from a fixed seed), so every machine builds the same model without
shipping or downloading images. Percentile ranges, because min-max ranges let a few extreme activations squeeze
the rest and lost whole text regions. How close it comes to float32, and how much faster, is measured by
``benchmarks/ocr_int8.py`` (figures and CPU: ``docs/benchmarks.md``, "The int8 PP-OCR detector").

Where: ``$CURATE_CACHE`` (default ``~/.cache/curate``) ``/ppocr-int8/<model name>-<digest>.onnx``, the digest of
the float32 file, the recipe (``RECIPE``) and the ONNX Runtime version, so a new model, recipe or runtime builds a
new copy. The file is written under a temporary name and renamed: two workers building at once both end with the
same complete file. Building needs the ``onnx`` package and runs once; calibration sees ``CALIBRATION_CHUNK``
images at a time, which bounds its memory.

Which CPUs: ``curate.hardware`` (``Cpu.native_int8``): x86 with AVX-512 VNNI, AVX-VNNI or AMX-INT8, Arm with the dot
product extension. Elsewhere ONNX Runtime's int8 kernels gain less, or nothing, and may round differently, so
``detector_int8: auto`` keeps float32 there.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["CALIBRATION_IMAGES", "RECIPE", "cache_dir", "calibration_images", "int8_model"]

CALIBRATION_IMAGES = 48
CALIBRATION_SIZE = (192, 320)  # height, width: the detector's input at ocr.max_side 320 for 16:9 frames
CALIBRATION_CHUNK = 4  # images whose activations are held at once while calibrating (memory: ~0.6 GB in all)
PERCENTILE = 99.99
#: changes when anything above or in ``_build`` changes what is built (the cached copies are then built again)
RECIPE = "synthetic48-p99.99-qdq-perchannel-u8s8-v1"


def cache_dir() -> Path:
    """Where built models are kept: ``$CURATE_CACHE``, else ``~/.cache/curate``."""
    return Path(os.environ.get("CURATE_CACHE") or Path.home() / ".cache" / "curate")


def int8_model(source: Path, cache: Path | None = None) -> Path:
    """The int8 copy of the float32 ONNX detector ``source``, built on first use (see the module docstring)."""
    import onnxruntime

    digest = hashlib.sha256(source.read_bytes() + f"{RECIPE} {onnxruntime.__version__}".encode()).hexdigest()[:16]
    target = (cache or cache_dir()) / "ppocr-int8" / f"{source.stem}-{digest}.onnx"
    if target.is_file():
        return target
    if importlib.util.find_spec("onnx") is None:  # ONNX Runtime's quantization tool needs it
        raise RuntimeError("ocr.detector_int8: building the int8 detector needs the onnx package: pip install onnx, "
                           "or set ocr.detector_int8=false")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        work = tempfile.mkdtemp(dir=target.parent, prefix=".build-")
    except OSError as error:
        raise RuntimeError(f"ocr.detector_int8: cannot write the int8 detector under {target.parent} ({error}): set "
                           f"CURATE_CACHE to a writable folder, or ocr.detector_int8=false") from error
    try:
        built = Path(work) / target.name
        _build(source, built, Path(work))
        os.replace(built, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def calibration_images(n: int = CALIBRATION_IMAGES, seed: int = 0) -> list[np.ndarray]:
    """``n`` RGB uint8 images of ``CALIBRATION_SIZE``, the same on every machine: a smooth random colour field with
    noise, up to 5 flat circles or rectangles, and (three images in four) 1-3 lines of random characters in one of
    four Hershey fonts, 0.3-1.4 scale, strokes 1-2 px."""
    import cv2

    rng = np.random.default_rng(seed)
    height, width = CALIBRATION_SIZE
    fonts = [cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX, cv2.FONT_HERSHEY_PLAIN]
    characters = list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 :-")
    images = []
    for i in range(n):
        coarse = rng.integers(0, 256, (3, 5, 3)).astype(np.uint8)
        field = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC).astype(np.float64)
        image = np.clip(field + rng.normal(0, rng.uniform(2, 20), field.shape), 0, 255).astype(np.uint8)
        for _ in range(rng.integers(0, 6)):
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
            if rng.random() < 0.5:
                cv2.circle(image, (x, y), int(rng.integers(5, 60)), colour, -1)
            else:
                cv2.rectangle(image, (x, y), (x + int(rng.integers(5, 120)), y + int(rng.integers(5, 80))), colour, -1)
        if i % 4:
            for _ in range(rng.integers(1, 4)):
                text = "".join(rng.choice(characters, int(rng.integers(3, 16))))
                scale = float(rng.uniform(0.3, 1.4))
                colour = tuple(int(c) for c in rng.integers(0, 256, 3))
                origin = (int(rng.integers(0, width // 2)), int(rng.integers(12, height)))
                cv2.putText(image, text, origin, fonts[int(rng.integers(0, 4))], scale, colour,
                            int(rng.integers(1, 3)), cv2.LINE_AA)
        images.append(image)
    return images


def _build(source: Path, target: Path, work: Path) -> None:
    import onnx
    import onnxruntime as ort
    from onnx import version_converter
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType
    from onnxruntime.quantization import quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    # 1. opset 13 at least (per-channel dequantisation), then ONNX Runtime's pre-processing (folding, shapes)
    model = onnx.load(os.fspath(source))
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if opset < 13:
        model = version_converter.convert_version(model, 13)
    converted, prepared = work / "opset13.onnx", work / "prepared.onnx"
    onnx.save(model, os.fspath(converted))
    quant_pre_process(os.fspath(converted), os.fspath(prepared), skip_symbolic_shape=True)

    # 2. calibrate on the synthetic images, a few at a time, and write the int8 model
    name = ort.InferenceSession(os.fspath(source), providers=["CPUExecutionProvider"]).get_inputs()[0].name
    images = calibration_images()

    class Images(CalibrationDataReader):
        def __init__(self) -> None:
            self.set_range(0, len(images))

        def __len__(self) -> int:
            return len(images)

        def set_range(self, start_index: int, end_index: int) -> None:
            self._next = iter(images[start_index:end_index])

        def get_next(self) -> dict | None:
            image = next(self._next, None)  # normalised as PpocrDetector does
            return None if image is None else {name: image.astype(np.float32).transpose(2, 0, 1)[None] * (2 / 255) - 1}

    with contextlib.redirect_stdout(io.StringIO()):  # the tool prints its progress
        quantize_static(os.fspath(prepared), os.fspath(target), Images(), quant_format=QuantFormat.QDQ,
                        per_channel=True, calibrate_method=CalibrationMethod.Percentile,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        extra_options={"CalibPercentile": PERCENTILE, "CalibStridedMinMax": CALIBRATION_CHUNK})


def main() -> None:
    """``python -m curate.scores.ocr_int8``: build the copy now (``scripts/install.sh`` does), where the OCR step's
    ``detector_int8: auto`` would run it, so that the first run does not wait for it."""
    from curate.hardware import cpu
    from curate.models.loading import check_available
    from curate.scores.ocr_ppocr import DEFAULT_MODEL

    if not cpu().native_int8:
        print(f"curate: no int8 dot products on this CPU ({cpu().describe()}): the OCR detector runs in float32, "
              f"nothing to build")
        return
    print(f"curate: the int8 OCR detector: {int8_model(check_available(DEFAULT_MODEL).path)}")


if __name__ == "__main__":
    main()
