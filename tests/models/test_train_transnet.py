"""benchmarks/train_transnet.py: a run stopped after 2 steps and re-run continues to the same weights as 4 steps in
one go (step count, weights, optimiser and sampling state carried over); a changed recipe is refused; the training
edits never use a test-part video or an annotated fixture; targets follow the network's conventions (a dissolve's
all-frames target capped on request); hard negatives are uncut tuning-part footage and join every batch; the
held-out check's footage feeds no training window."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))
import train_transnet  # noqa: E402

from curate.models.transnetv2 import load_transnetv2, transnetv2_weights  # noqa: E402

SCRIPT = PROJECT_ROOT / "benchmarks" / "train_transnet.py"


def _tiny_windows(path: Path) -> Path:
    """Two 24-frame windows: a shot of one flat colour with noise, a hard cut at frame 12 to another."""
    rng = np.random.default_rng(0)
    frames = np.empty((2, 24, 27, 48, 3), np.uint8)
    one, many = np.zeros((2, 24), np.float32), np.zeros((2, 24), np.float32)
    for w in range(2):
        for k, colour in enumerate(rng.integers(0, 256, (2, 3))):
            frames[w, 12 * k : 12 * (k + 1)] = np.clip(colour + rng.normal(0, 8, (12, 27, 48, 3)), 0, 255)
        one[w, 11] = many[w, 11] = 1.0
    np.savez(path, frames=frames, one_hot=one, many_hot=many)
    return path


ARGS = ["--window", "16", "--batch", "1", "--steps", "4", "--checkpoint-every", "1"]


def _run(out: Path, data: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(SCRIPT), "--out", str(out), "--data", str(data), *ARGS, *extra]
    return subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_resumed_run_continues_not_restarts(tmp_path):
    data = _tiny_windows(tmp_path / "tiny.npz")
    tracks, data_recipe = train_transnet.npz_tracks(data)
    recipe = train_transnet.Recipe(window=16, batch=1, steps=4, seeds=(), data=str(data))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the script: the same arithmetic, so the same weights
    try:
        train_transnet.train(tmp_path / "straight", tracks, recipe, data_recipe, checkpoint_every=1, log=lambda _: None)
    finally:
        torch.set_num_threads(threads)

    first = _run(tmp_path / "resumed", data, "--stop-after", "2")
    assert first.returncode == 0, first.stderr
    halfway = torch.load(tmp_path / "resumed" / train_transnet.CHECKPOINT, weights_only=False)
    assert halfway["step"] == 2 and halfway["windows_drawn"] == 2
    assert not (tmp_path / "resumed" / train_transnet.WEIGHTS).exists()  # not finished: no weights written yet

    second = _run(tmp_path / "resumed", data, "--stop-after", "2")  # the same command again
    assert second.returncode == 0, second.stderr
    assert "resumed" in second.stdout and "at step 2" in second.stdout
    assert "step 3/4" in second.stdout and "step 1/4" not in second.stdout
    final = torch.load(tmp_path / "resumed" / train_transnet.CHECKPOINT, weights_only=False)
    assert final["step"] == 4 and [e["step"] for e in final["log"]] == [1, 2, 3, 4]

    a = torch.load(tmp_path / "straight" / train_transnet.WEIGHTS)
    b = torch.load(tmp_path / "resumed" / train_transnet.WEIGHTS)
    start = torch.load(transnetv2_weights())
    assert a.keys() == b.keys() == start.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6)
    assert any(not torch.equal(a[n], start[n]) for n in a if a[n].is_floating_point())  # it did train
    meta = json.loads((tmp_path / "resumed" / "transnetv2-finetuned.json").read_text())
    assert meta["steps"] == 4 and meta["recipe"]["window"] == 16 and meta["training_frames_per_s"] > 0

    # what the script writes is what load_transnetv2 (and split's transnet_model) reads: a local .pth path
    model = load_transnetv2(str(tmp_path / "resumed" / train_transnet.WEIGHTS), device="cpu", dtype="fp32")
    single, many = model(torch.zeros(1, 8, 27, 48, 3, dtype=torch.uint8))
    assert single.shape == many.shape == (1, 8)

    other = train_transnet.Recipe(window=16, batch=1, steps=4, seeds=(), data=str(data), lr=0.01)
    with pytest.raises(SystemExit, match="another recipe.*--out"):
        train_transnet.train(tmp_path / "resumed", tracks, other, data_recipe, log=lambda _: None)


def test_training_edits_use_only_tuning_footage(videos_dir):
    import hard_edits
    from transition_media import VIDEOS_DIR

    edits = train_transnet.training_edits([0])
    assert {e.family for e in edits} == set(hard_edits.FAMILIES)
    files = {p.file for e in edits for p in e.pieces if not p.file.startswith("@")}
    assert files and all(hard_edits.part(f) == "tuning" for f in files)
    assert all(Path(f).parent.resolve() != VIDEOS_DIR.resolve() for f in files)

    test_video = next(s[0] for s in hard_edits.sources() if hard_edits.part(s[0]) == "test")
    bad = hard_edits.HardEdit("bad", "same", "tuning", (hard_edits.Piece(test_video, 0.0, 10),))
    with pytest.raises(ValueError, match="test-part video or an annotated fixture"):
        train_transnet.check_sources([bad])


def test_targets_follow_the_network_conventions():
    one, many = train_transnet.targets({"cuts": [10], "gradual": [[20, 26]]}, 40)
    assert np.flatnonzero(one).tolist() == [9, 23]  # last frame of the old shot; middle of the gradual one
    assert np.flatnonzero(many).tolist() == [9, *range(20, 27)]


def test_dissolve_target_capped_around_its_middle():
    one, many = train_transnet.targets({"cuts": [], "gradual": [[20, 89], [100, 109]]}, 120, many_cap=30)
    assert np.flatnonzero(one).tolist() == [54, 104]
    assert np.flatnonzero(many).tolist() == [*range(39, 69), *range(100, 110)]  # 30 frames around 54; short kept


def test_hard_negatives_are_uncut_tuning_footage(videos_dir):
    import hard_edits

    shots = train_transnet.negative_shots(100)
    assert shots and all(end - start >= 100 for _, start, end in shots)
    truth = json.loads((hard_edits.FOOTAGE_DIR / "truth.json").read_text())
    assert any(truth[Path(path).name]["shots"] == "edited" for path, _, _ in shots)  # shots between real cuts too
    for path, start, end in shots:
        assert Path(path).parent.resolve() == hard_edits.FOOTAGE_DIR.resolve() and hard_edits.part(path) == "tuning"
        entry = truth[Path(path).name]
        assert entry["basis"] == "verified" and 0 <= start < end <= entry["frames"]
        for c in entry.get("cuts", []):  # no cut inside, nor within the margin
            assert not start - train_transnet.NEGATIVE_MARGIN < c < end + train_transnet.NEGATIVE_MARGIN
        for a, b in entry.get("gradual", []):
            assert start >= b + 1 + train_transnet.NEGATIVE_MARGIN or end <= a - train_transnet.NEGATIVE_MARGIN
    with pytest.raises(ValueError, match="test-part"):
        test_video = next(s[0] for s in hard_edits.sources() if hard_edits.part(s[0]) == "test")
        train_transnet.check_sources_files([test_video])


def test_negative_windows_join_every_batch(tmp_path):
    data = _tiny_windows(tmp_path / "tiny.npz")
    tracks, data_recipe = train_transnet.npz_tracks(data)
    zeros = np.zeros(24, np.float32)
    negatives = [train_transnet.Track("still", np.full((24, 27, 48, 3), 90, np.uint8), zeros, zeros)]
    recipe = train_transnet.Recipe(window=16, batch=1, steps=2, seeds=(), data=str(data), negatives=1, many_cap=30)
    with pytest.raises(ValueError, match="negative"):
        train_transnet.train(tmp_path / "none", tracks, recipe, data_recipe, log=lambda _: None)
    state = train_transnet.train(tmp_path / "run", tracks, recipe, data_recipe, log=lambda _: None, negatives=negatives)
    assert state["windows_drawn"] == 4 and all("negative_hits" in e for e in state["log"])
    meta = json.loads((tmp_path / "run" / "transnetv2-finetuned.json").read_text())
    assert meta["recipe"]["negatives"] == 1 and meta["recipe"]["many_cap"] == 30
    other = train_transnet.Recipe(window=16, batch=1, steps=3, seeds=(), data=str(data), negatives=0, many_cap=30)
    with pytest.raises(SystemExit, match="another recipe"):
        train_transnet.train(tmp_path / "run", tracks, other, data_recipe, log=lambda _: None)


def test_held_out_footage_feeds_no_training_window(videos_dir):
    import hard_edits

    held_out = train_transnet.held_out_footage(100)
    assert held_out and all(hard_edits.part(path) == "tuning" for path, _ in held_out)
    assert all(entry["cuts"] or entry["gradual"] for _, entry in held_out)  # something to find, something to miss
    names = {Path(path).name for path, _ in held_out}
    assert not names & {Path(path).name for path, _, _ in train_transnet.negative_shots(100)}
    edits = train_transnet.training_edits([0, 1, 2, 3])
    assert not names & {Path(p.file).name for e in edits for p in e.pieces}
