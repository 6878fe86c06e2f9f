import math

import pyarrow as pa
import pytest

from curate.stages.ocr import BOXES_TYPE, Ocr
from tests.media import write_truncated
from tests.stages.contract import check_output


@pytest.fixture(scope="module")
def stage():
    s = Ocr(recognize=True)
    s.check()
    s.setup()
    return s


def test_text_heavy_clips_cover_more_and_boxes_are_normalised(stage, video, tmp_path):
    broken = write_truncated(video("moviepy_nature_montage.mp4"), tmp_path / "cut.mp4", 0.3)
    rows = [(str(video("psd_counter.mp4")), 0.0, 3.0), (str(video("moviepy_chaplin.mp4")), 2.0, 6.0),
            (str(broken), 20.0, 24.0)]
    table = pa.Table.from_pylist([dict(video_path=p, video_stream=None, start_s=a, end_s=b) for p, a, b in rows],
                                 schema=pa.schema([("video_path", pa.string()), ("video_stream", pa.int32()),
                                                   ("start_s", pa.float64()), ("end_s", pa.float64())]))
    out = stage.process(table)
    check_output(stage, table, out)
    counter, chaplin, bad = out.kept.to_pylist()
    assert counter["ocr_area"] > 0.03 and counter["ocr_area"] > 5 * chaplin["ocr_area"]
    assert counter["ocr_area_mean"] <= counter["ocr_area"]
    assert len(counter["ocr_boxes"]) == 3 and all(0.0 <= v <= 1.0 for frame in counter["ocr_boxes"] for box in frame
                                                  for v in box)
    assert any(ch.isdigit() for ch in counter["ocr_text"])
    assert math.isnan(bad["ocr_area"]) and "cut.mp4" in bad["ocr_error"] and bad["ocr_boxes"] is None
    assert out.kept.schema.field("ocr_boxes").type == BOXES_TYPE


@pytest.mark.slow
def test_craft_is_selectable_and_agrees_on_the_counter(stage, video):
    craft = Ocr(detector="craft")
    craft.check()
    craft.setup()
    table = pa.Table.from_pylist([dict(video_path=str(video("psd_counter.mp4")), video_stream=None, start_s=0.0,
                                       end_s=3.0)])
    ours, theirs = stage.process(table).kept, craft.process(table).kept
    assert theirs["ocr_text"].to_pylist() == [None]  # craft without recognition
    assert ours["ocr_area"][0].as_py() == pytest.approx(theirs["ocr_area"][0].as_py(), abs=0.02)


def test_bad_settings_and_missing_weights_say_what_to_do(tmp_path):
    with pytest.raises(ValueError, match="positions"):
        Ocr(positions=[1.5])
    with pytest.raises(ValueError, match="ocr.detector must be one of ppocr, craft, got 'east'"):
        Ocr(detector="east")
    with pytest.raises(ValueError, match="ocr.detector_bf16 must be auto, true or false"):
        Ocr(detector="craft", detector_bf16="fast")
    with pytest.raises(ValueError, match="set ocr.detector_bf16=auto, or ocr.detector=craft"):
        Ocr(detector_bf16=True)
    Ocr(detector_bf16=False)  # the old way to ask for float32: harmless with ppocr, which always runs float32
    with pytest.raises(RuntimeError, match="not a folder"):
        Ocr(detector="craft", model_dir=str(tmp_path / "nope")).check()
    Ocr(model_dir=str(tmp_path / "nope")).check()  # ppocr without recognition does not use easyocr's weights
    with pytest.raises(RuntimeError, match=r"ocr.ppocr_model: .*does not exist"):
        Ocr(ppocr_model=str(tmp_path / "det.onnx")).check()
    with pytest.raises(RuntimeError, match="is not a file: point it at a PP-OCR detection .onnx file"):
        Ocr(ppocr_model=str(tmp_path)).check()


def test_frames_a_few_pixels_high_or_wide_are_read(stage, video, tmp_path):
    """Thin videos (640x52, 640x8, 8x640) and a 2x2 one: OCR finds no text and reports no error."""
    from tests.ffmpeg_media import scaled

    sizes = ((640, 52), (640, 8), (8, 640), (2, 2))
    paths = [scaled(video("psd_counter.mp4"), tmp_path / f"{w}x{h}.mp4", w, h, seconds=1.5) for w, h in sizes]
    table = pa.Table.from_pylist([dict(video_path=str(p), video_stream=None, start_s=0.0, end_s=1.4) for p in paths],
                                 schema=pa.schema([("video_path", pa.string()), ("video_stream", pa.int32()),
                                                   ("start_s", pa.float64()), ("end_s", pa.float64())]))
    out = stage.process(table)
    check_output(stage, table, out)
    assert [(r["ocr_error"], math.isfinite(r["ocr_area"])) for r in out.kept.to_pylist()] == [(None, True)] * 4
