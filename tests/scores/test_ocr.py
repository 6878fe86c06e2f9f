"""OCR text coverage on real footage and on synthetic text of known size, with every detector (one reader each)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from curate import hardware
from curate.video.frames import Frame
from curate.scores.ocr import (
    DEFAULT_PPOCR_MODEL,
    DETECTORS,
    covered_fraction,
    load_reader,
    ocr_clip,
    ocr_clips,
    ocr_frames,
    text_boxes,
)
from curate.scores.ocr_craft import CraftDetector
from curate.scores.ocr_ppocr import PpocrDetector


@pytest.fixture(scope="module", params=DETECTORS)
def reader(request):
    return load_reader(detector=request.param, recognize=True, threads=1)


@pytest.fixture(scope="module")
def ppocr():
    return load_reader(detector="ppocr", threads=1)


def _synthetic_text_frame(text: str, scale: float) -> tuple[np.ndarray, float]:
    """Dark text on a plain grey 640x360 frame, and the fraction of the frame its bounding box covers."""
    image = np.full((360, 640, 3), 200, dtype=np.uint8)
    mask = np.zeros((360, 640), dtype=np.uint8)
    thickness = max(2, int(scale * 2))
    for canvas, colour in ((image, (20, 20, 20)), (mask, 255)):
        cv2.putText(canvas, text, (40, 200), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thickness, cv2.LINE_AA)
    x, y, w, h = cv2.boundingRect(mask)
    return image, w * h / mask.size


# --- no model -----------------------------------------------------------------------------------------------


def test_overlapping_boxes_count_once():
    a = np.array([[0, 0], [50, 0], [50, 50], [0, 50]])
    b = np.array([[25, 0], [75, 0], [75, 50], [25, 50]])
    # union is 75 x 50 of a 100 x 100 frame (fillPoly includes the far edge: 76 x 51 pixels)
    assert covered_fraction([a, b], 100, 100) == pytest.approx(76 * 51 / 10_000)
    assert covered_fraction([a, a], 100, 100) == covered_fraction([a], 100, 100)
    assert covered_fraction([], 100, 100) == 0.0


def test_no_frames_gives_nan_area():
    result = ocr_frames(object(), [])
    assert math.isnan(result.area) and result.area_per_frame == [] and result.text is None


def test_recognize_needs_a_reader_with_recogniser():
    frame = Frame(0.0, np.zeros((32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match=r"load_reader\(recognize=True\)"):
        ocr_frames(object(), [frame], recognize=True)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(device="tpu"), "device must be one of"),
        (dict(threads=0), "threads must be a positive integer"),
        (dict(detector="tesseract"), "detector must be one of ppocr, craft, got 'tesseract'"),
        (dict(detector_bf16="yes"), "detector_bf16 must be auto, true or false"),
        (dict(detector="ppocr", detector_bf16=True), "set detector_bf16=auto, or detector=craft"),
        (dict(detector="ppocr", ppocr_model="/no/such/model.onnx"), "does not exist on disk"),
        (dict(detector="craft", languages=("de",)), "model_dir=None"),
    ],
)
def test_load_reader_rejects_bad_arguments_saying_what_is_allowed(kwargs, message):
    with pytest.raises((ValueError, RuntimeError), match=message):
        load_reader(**kwargs)


class _Reader:
    """An easyocr.Reader stand-in: a device and a detector network (no weights)."""

    def __init__(self, device: str):
        import torch

        self.device = device
        self.detector = torch.nn.Conv2d(3, 2, 1)


@pytest.mark.parametrize(("flags", "bf16"), [("avx2 avx512f avx512_bf16", True), ("avx2 fma", False)])
def test_craft_precision_follows_the_hardware_rule(monkeypatch, flags, bf16):
    monkeypatch.setenv(hardware.FAKE_CPU_FLAGS, flags)
    detector = CraftDetector(_Reader("cpu"), bf16="auto")
    assert detector.bf16 is bf16
    net_dtype = next(detector.reader.detector.parameters()).dtype
    assert str(net_dtype) == ("torch.bfloat16" if bf16 else "torch.float32")
    assert CraftDetector(_Reader("cpu"), bf16=False).bf16 is False  # an explicit choice is never overridden


def test_ppocr_model_ships_in_the_rapidocr_package_and_runs_on_one_thread(ppocr):
    detector = ppocr.detector
    assert isinstance(detector, PpocrDetector) and detector.model == DEFAULT_PPOCR_MODEL
    assert detector.path.name == "PP-OCRv6_det_small.onnx" and detector.path.parent.parent.name == "rapidocr"
    assert detector.session.get_providers()[-1] == "CPUExecutionProvider"
    assert detector.threads == 1


def test_ppocr_model_from_a_local_path(ppocr):
    local = PpocrDetector.load(str(ppocr.detector.path), device="cpu", threads=1)
    image = np.full((96, 160, 3), 200, dtype=np.uint8)
    assert local.detect([image]) == [[]]


# --- with the real detector ---------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("text, scale", [("CURATE 2024", 2.0), ("Hello World", 1.2), ("OK", 3.0)])
def test_synthetic_text_area_within_30_percent(reader, text, scale):
    image, true_area = _synthetic_text_frame(text, scale)
    result = ocr_frames(reader, [Frame(0.0, image)])
    assert result.area == pytest.approx(true_area, rel=0.30)


@pytest.mark.slow
def test_plain_frame_has_no_text(reader):
    assert text_boxes(reader, np.full((180, 320, 3), 200, dtype=np.uint8)) == []


@pytest.mark.slow
def test_text_heavy_clips_score_clearly_above_a_clip_without_text(reader, video):
    text_heavy = [
        ocr_clip(reader, video("psd_goldeneye-vfr-drop3.mp4"), 3.76, 8.75).area,  # typed UI text, between the cuts
        ocr_clip(reader, video("psd_counter.mp4"), 0.0, 3.0).area,  # big frame counter
    ]
    no_text = [
        ocr_clip(reader, video("moviepy_chaplin.mp4"), 0.0, 4.8).area,
        ocr_clip(reader, video("moviepy_chaplin.mp4"), 4.8, 9.6).area,
    ]
    assert min(text_heavy) > 0.02
    assert min(text_heavy) > 4 * max(no_text) + 0.01


@pytest.mark.slow
def test_area_is_the_max_over_frames(reader, video):
    # GoldenEye's typed text grows over the shot: little at its start, a full line by its end
    result = ocr_clip(reader, video("psd_goldeneye-vfr-drop3.mp4"), 3.76, 8.75)
    assert len(result.area_per_frame) == 3
    assert result.frame_sizes == [(136, 320)] * 3  # 1280x544 at 320 px wide
    assert result.area == max(result.area_per_frame)
    assert result.area_per_frame[-1] > result.area_per_frame[0]


@pytest.mark.slow
def test_portrait_video_is_scaled_by_its_longer_side(reader, video):
    result = ocr_clip(reader, video("psd_issue-134-rotate.mp4"), 4.0, 8.0, positions=(0.5,), max_side=320)
    assert all(np.all(box[:, 1] <= 320) and np.all(box[:, 0] <= 320 * 544 / 1280 + 1) for box in result.boxes[0])
    assert result.area > 0.005


@pytest.mark.slow
def test_ocr_clips_of_many_clips_equal_ocr_clip_of_each(ppocr, video):
    path = video("psd_goldeneye-vfr-drop3.mp4")
    spans = [(0.0, 3.75), (3.76, 8.75)]
    together = ocr_clips(ppocr, path, spans, positions=(0.0, 1.0))
    one_by_one = [ocr_clip(ppocr, path, start, end, positions=(0.0, 1.0)) for start, end in spans]
    assert [r.area_per_frame for r in together] == [r.area_per_frame for r in one_by_one]


@pytest.mark.slow
def test_recognize_reads_the_counter_digits(reader, video):
    result = ocr_clip(reader, video("psd_counter.mp4"), 0.0, 3.0, positions=(0.5,), recognize=True)
    # the middle frame of [0, 3) is at 1.5 s: "Frame = 16", "PTS = 1.5s"
    assert "16" in result.text
    assert "1.5" in result.text


def test_ppocr_boxes_from_a_probability_map():
    """A text line's core (a band) becomes one box grown around it; a blob over most of the frame is not text."""
    from curate.scores.ocr_ppocr import boxes_from_map

    band = np.zeros((96, 160), np.float32)
    band[40:48, 20:120] = 0.9
    (box,) = boxes_from_map(band, 192, 320)  # the image is twice the map's size
    assert box.shape == (4, 2) and box[0].tolist() < box[2].tolist()  # top-left first, clockwise
    assert 0.02 < covered_fraction([box], 192, 320) < 0.12  # the band covers 0.052 of the map, grown a little
    blob = np.zeros((96, 160), np.float32)
    blob[10:80, 20:140] = 0.95
    assert boxes_from_map(blob, 96, 160) == []


@pytest.mark.slow
@pytest.mark.parametrize(("name", "time_s"), [("moviepy_nature_montage.mp4", 14.0),
                                             ("psd_issue-195-aspect-ratio.mp4", 2.0)])
def test_ppocr_does_not_take_textured_scenes_for_text(ppocr, video, name, time_s):
    # PP-OCR's network fires on these frames (gannets, hands) with one blob over 60-100 % of the frame
    result = ocr_clip(ppocr, video(name), time_s, time_s + 0.5, positions=(0.0,))
    assert result.area < 0.01


@pytest.mark.slow
def test_default_detector_orders_text_fixtures_above_plain_ones(ppocr, video):
    text = {  # burned-in text of every kind the fixtures hold
        ("psd_testvideo.mp4", 3.0, 7.0): "copyright watermark",
        ("psd_issue-134-rotate.mp4", 4.0, 8.0): "UI text in a rotated video",
        ("psd_goldeneye-vfr-drop3.mp4", 3.76, 8.75): "typed UI text",
        ("psd_counter.mp4", 0.0, 3.0): "frame counter",
        ("mmaction2_demo.mp4", 4.0, 8.0): "logo watermark",
    }
    plain = [("moviepy_nature_montage.mp4", 12.0, 16.0), ("psd_issue-195-aspect-ratio.mp4", 0.0, 4.0),
             ("imageio_cockatoo.mp4", 0.0, 4.0), ("nasa_13013.mp4", 0.0, 4.0), ("opencv_Megamind.avi", 0.0, 4.0)]
    areas = {clip: ocr_clip(ppocr, video(clip[0]), clip[1], clip[2]).area for clip in [*text, *plain]}
    assert min(areas[clip] for clip in text) > 0.02
    assert max(areas[clip] for clip in plain) < 0.005
