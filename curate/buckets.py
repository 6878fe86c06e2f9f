"""Training buckets: each clip's nearest (aspect ratio, height, frame count) bucket, named, for bucketed shards.

    >>> from curate.buckets import check_buckets, nearest, bucket_name
    >>> spec = check_buckets({"aspect": [0.5625, 1.0, 1.778], "height": [256, 512, 720], "frames": [16, 32, 64]})
    >>> bucket_name(spec, {"aspect": 640 / 360, "height": 360, "frames": 50})
    'aspect1.778_h256_f64'

Training batches hold clips of one shape, so trainers group clips by aspect ratio, resolution and frame window
(cosmos-curate writes its shards that way). A clip goes to the **nearest** value of each key, nearest in log
space: the distance between a clip's value ``x`` and a bucket value ``b`` is ``|log(x / b)|``, which is what
resizing or resampling changes (a factor). For the aspect ratio that is the only sensible distance (9:16 and
16:9 are as far from 1:1); for height and frame count it means 360 px is nearer 256 (x1.41) than 512 (x1.42),
and 45 frames nearer 32 (x1.41) than 64 (x1.42). A tie goes to the smaller value (a trainer can crop or drop
frames; it cannot invent them). Keys, all optional, in this order in the name:

- ``aspect``: display width / display height (``display_width``, ``display_height``: what a viewer sees, with
  non-square pixels and rotation applied), named ``aspect1.778``;
- ``height``: display height in pixels, ``h720``;
- ``frames``: the clip's frame count (``end_frame - start_frame``), ``f64``.

A clip without the value (unknown size) is named ``..._na`` for that key (``aspect_na``), never guessed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

__all__ = ["BUCKET_KEYS", "bucket_name", "check_buckets", "clip_buckets", "clip_values", "nearest"]

#: The keys a bucket spec may use, in the order they appear in a bucket's name, with the name's prefix.
BUCKET_KEYS = {"aspect": "aspect", "height": "h", "frames": "f"}
#: The columns each key is computed from.
KEY_COLUMNS = {"aspect": ("display_width", "display_height"), "height": ("display_height",),
               "frames": ("start_frame", "end_frame")}


def check_buckets(buckets: Mapping[str, Sequence[float]], prefix: str = "write.buckets") -> dict[str, list[float]]:
    """``buckets`` in key order with sorted values; ValueError naming what to change."""
    if not isinstance(buckets, Mapping) or not buckets:
        raise ValueError(f"{prefix} must map some of {', '.join(BUCKET_KEYS)} to lists of values, e.g. "
                         f"{{aspect: [0.5625, 1.0, 1.778], height: [256, 512, 720], frames: [16, 32, 64]}}; "
                         f"got {buckets!r}")
    unknown = sorted(set(buckets) - set(BUCKET_KEYS))
    if unknown:
        raise ValueError(f"{prefix}: unknown keys {unknown}; allowed: {', '.join(BUCKET_KEYS)}")
    out = {}
    for key in BUCKET_KEYS:
        if key not in buckets:
            continue
        values = buckets[key]
        if (isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in values)):
            raise ValueError(f"{prefix}.{key} must be a non-empty list of positive numbers, got {values!r}")
        if key != "aspect" and not all(float(v).is_integer() for v in values):
            raise ValueError(f"{prefix}.{key} must be whole numbers ({'pixels' if key == 'height' else 'frames'}), "
                             f"got {values!r}")
        out[key] = sorted(float(v) for v in values)
    return out


def nearest(value: float | None, choices: Sequence[float]) -> float | None:
    """The choice nearest ``value`` in log space (ties: the smaller); None for a missing or non-positive value."""
    if value is None or not value > 0 or math.isinf(value):
        return None
    return min(sorted(choices), key=lambda c: abs(math.log(value / c)))


def bucket_name(spec: Mapping[str, Sequence[float]], values: Mapping[str, float | None]) -> str:
    """The name of the bucket of a clip with ``values`` (per key of ``spec``), e.g. ``aspect1.778_h720_f64``."""
    parts = []
    for key, prefix in BUCKET_KEYS.items():
        if key not in spec:
            continue
        choice = nearest(values.get(key), spec[key])
        parts.append(f"{prefix}_na" if choice is None else f"{prefix}{choice:g}")
    return "_".join(parts)


def clip_values(table: pa.Table, keys: Sequence[str]) -> list[dict[str, float | None]]:
    """Per row, each key's value (aspect, height, frames); ValueError naming the missing columns."""
    needed = sorted({c for k in keys for c in KEY_COLUMNS[k]})
    missing = [c for c in needed if c not in table.column_names]
    if missing:
        raise ValueError(f"write.buckets {list(keys)} needs the columns {missing} (added by ingest and split); "
                         f"run those steps before write, or drop those keys from write.buckets")
    columns = {c: table[c].to_pylist() for c in needed}
    rows: list[dict[str, Any]] = []
    for i in range(table.num_rows):
        row: dict[str, float | None] = {}
        if "aspect" in keys:
            w, h = columns["display_width"][i], columns["display_height"][i]
            row["aspect"] = w / h if w and h else None
        if "height" in keys:
            row["height"] = columns["display_height"][i] or None
        if "frames" in keys:
            a, b = columns["start_frame"][i], columns["end_frame"][i]
            row["frames"] = b - a if a is not None and b is not None and b > a else None
        rows.append(row)
    return rows


def clip_buckets(table: pa.Table, spec: Mapping[str, Sequence[float]]) -> list[str]:
    """The bucket name of every row of ``table`` (clip rows of a run: see ``KEY_COLUMNS``)."""
    return [bucket_name(spec, values) for values in clip_values(table, list(spec))]
