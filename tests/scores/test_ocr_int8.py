"""The int8 copy of the PP-OCR detector: built once per machine from synthetic images, the same everywhere, cached
atomically, chosen by the hardware rule, and close to the float32 detector on the fixtures' text."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from curate import hardware
from curate.models.loading import check_available
from curate.scores import ocr_int8
from curate.scores.ocr import DEFAULT_PPOCR_MODEL, check_reader_settings, covered_fraction, ppocr_int8
from curate.scores.ocr_ppocr import PpocrDetector
from curate.video.frames import read_frames


@pytest.fixture(scope="module")
def source():
    return check_available(DEFAULT_PPOCR_MODEL).path


@pytest.fixture(scope="module")
def built(source, build_cache, tmp_path_factory):
    """The copy, built (or found) with an empty working folder, which it must leave empty: ONNX Runtime's tools write
    scratch files to the working folder unless told otherwise."""
    here = tmp_path_factory.mktemp("cwd")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(here)
        path = ocr_int8.int8_model(source)
    assert not list(here.iterdir())
    return path


def test_calibration_images_are_the_same_on_every_call_and_some_hold_text():
    first, again = ocr_int8.calibration_images(8), ocr_int8.calibration_images(8)
    assert len(first) == 8 and all(a.shape == (192, 320, 3) and a.dtype == np.uint8 for a in first)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert len({hashlib.sha256(a.tobytes()).hexdigest() for a in first}) == 8


@pytest.mark.slow
def test_built_once_into_the_cache_and_read_from_there_after(source, built, monkeypatch):
    assert built.parent == ocr_int8.cache_dir() / "ppocr-int8" and built.name.startswith("PP-OCRv6_det_small-")
    assert [p.name for p in built.parent.iterdir()] == [built.name]  # no temporary file left behind
    monkeypatch.setattr(ocr_int8, "_build", lambda *a: pytest.fail("built again"))
    assert ocr_int8.int8_model(source) == built


@pytest.mark.slow
def test_a_new_recipe_builds_a_new_copy_beside_the_old(source, built, monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(ocr_int8, "_build", lambda src, target, work: calls.append(target) or target.write_bytes(b"x"))
    monkeypatch.setattr(ocr_int8, "RECIPE", ocr_int8.RECIPE + "-changed")
    other = ocr_int8.int8_model(source, cache=built.parent.parent)
    assert calls and other != built and other.parent == built.parent
    other.unlink()


def test_a_failed_build_leaves_no_file(source, monkeypatch, tmp_path):
    def fail(src, target, work):
        target.write_bytes(b"half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(ocr_int8, "_build", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        ocr_int8.int8_model(source, cache=tmp_path)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_the_install_step_builds_nothing_where_auto_would_run_float32(monkeypatch, capsys):
    monkeypatch.setenv(hardware.FAKE_CPU_FLAGS, "avx2 fma")
    monkeypatch.setattr(ocr_int8, "_build", lambda *a: pytest.fail("built on a CPU that runs float32"))
    ocr_int8.main()
    assert "nothing to build" in capsys.readouterr().out


def test_an_unwritable_cache_says_what_to_set(source, tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    with pytest.raises(RuntimeError, match="set CURATE_CACHE to a writable folder"):
        ocr_int8.int8_model(source, cache=blocked)


@pytest.mark.parametrize(("flags", "int8"), [("avx2 avx512f avx512_vnni", True), ("avx2 avx_vnni", True),
                                             ("avx2 fma", False), ("avx2 avx512f", False)])
def test_auto_follows_the_hardware_rule(monkeypatch, flags, int8):
    monkeypatch.setenv(hardware.FAKE_CPU_FLAGS, flags)
    assert ppocr_int8("auto", "cpu") is int8
    assert ppocr_int8(False, "cpu") is False and ppocr_int8(True, "cpu") is True  # an explicit choice stands
    assert ppocr_int8("auto", "cuda") is False  # CUDA runs the float32 model


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"detector": "ppocr", "detector_int8": "yes"}, "detector_int8 must be auto, true or false"),
    ({"detector": "craft", "detector_int8": True}, "detector_int8=true applies to detector ppocr"),
])
def test_bad_settings_say_what_to_change(kwargs, message):
    with pytest.raises(ValueError, match=message):
        check_reader_settings(device="cpu", detector_bf16="auto", prefix="ocr.", **kwargs)


@pytest.mark.slow
def test_int8_text_area_is_close_to_float32_on_the_fixtures(built, video):
    """Measured on 77 clips by benchmarks/ocr_int8.py (76 within 0.01); here 4 clips with text and 2 without, 3
    frames each. ``ocr_area`` is a clip's max over its frames. Only where the CPU has int8 dot products: elsewhere ONNX
    Runtime's int8 kernels may saturate and round differently, and ``detector_int8: auto`` keeps float32."""
    if not hardware.cpu().native_int8:
        pytest.skip(f"no int8 dot products on this CPU ({hardware.cpu().describe()}): auto runs float32 here")
    fp32 = PpocrDetector.load(device="cpu")
    int8 = PpocrDetector.load(device="cpu", int8=True)
    assert (fp32.precision, int8.precision) == ("fp32", "int8") and int8.path == fp32.path  # the same source
    clips = [read_frames(video(name), times, width=320) for name, times in [
        ("psd_counter.mp4", [0.0, 1.5, 2.9]), ("psd_testvideo.mp4", [3.0, 5.0, 7.0]),
        ("psd_goldeneye-vfr-drop3.mp4", [4.0, 6.0, 8.0]), ("mmaction2_demo.mp4", [4.0, 6.0, 8.0]),
        ("moviepy_nature_montage.mp4", [12.0, 14.0, 16.0]), ("nasa_13013.mp4", [0.0, 2.0, 4.0]),
    ]]
    frames = [frame.image for clip in clips for frame in clip]
    areas = {}
    for precision, detector in [("fp32", fp32), ("int8", int8)]:
        per_frame = [covered_fraction(boxes, *image.shape[:2]) for boxes, image in zip(detector.detect(frames), frames)]
        areas[precision] = np.array(per_frame)
    differences = np.abs(areas["int8"] - areas["fp32"])
    assert differences.max() <= 0.02 and np.median(differences) <= 0.005, differences
    clip_areas = areas["int8"].reshape(len(clips), 3).max(axis=1)
    assert clip_areas[:4].min() > 0.02 and clip_areas[4:].max() < 0.005, clip_areas  # text clips above plain ones
