"""Turn what a user passes as ``--input`` into a sorted list of video paths or URLs.

    from curate.inputs import expand_inputs
    expand_inputs(["raw/", "more/*.mkv", "list.txt", "s3://bucket/videos/"])

Each input is one of:
- a directory (local or any fsspec URL): every file below it, recursively, whose extension is a video extension
  (``.gif`` among them: an animated GIF is a video, a one-frame GIF a rejected still image);
- a glob pattern (``*``, ``?``, ``[``): every match (directories among them are walked as above); a name that
  exists as it is written is taken literally first, so ``what?.mp4`` and ``weird[1].mp4`` are files, not patterns;
- a list file (``.txt``: one path per line, ``#`` comments; ``.csv``/``.parquet``: a ``video_path`` or ``path``
  column), with relative entries taken relative to the list file's folder;
- anything else is one video file, whatever its extension: it is probed as given.
Entries of list files that do not exist (and, for a pattern, match nothing) are kept as written, and ingest rejects
them as ``ingest_missing``; a command-line input that matches nothing is an error, since it is almost always a
typo. Only an HTTP(S) URL has a query (``?...``); in a local path or an object key ``?`` is part of the name.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import PurePosixPath
from typing import Iterable, Sequence

import fsspec

from curate.video.source import storable_path

VIDEO_EXTENSIONS = frozenset(
    ".mp4 .m4v .mov .mkv .webm .avi .mpg .mpeg .ts .mts .m2ts .flv .wmv .3gp .ogv .mxf .vob .y4m .gif".split()
)
LIST_EXTENSIONS = frozenset({".txt", ".csv", ".parquet"})
_GLOB_CHARS = set("*?[")


class InputError(ValueError):
    """An input that matches nothing or a list file that cannot be read."""


def _suffix(path: str) -> str:
    """The lower-case extension of ``path``; an HTTP(S) URL's query is left out (``v.mp4?sig=...``: ``.mp4``)."""
    if path.startswith(("http://", "https://")):
        path = path.split("?", 1)[0]
    return PurePosixPath(path).suffix.lower()


def _is_url(path: str) -> bool:
    return "://" in path


def _full(fs, path: str, original: str) -> str:
    """Absolute local path, or a URL with its protocol for remote filesystems."""
    if _is_url(original):
        return fs.unstrip_protocol(path)
    return storable_path(os.path.abspath(path))


def _walk(fs, root: str, original: str) -> list[str]:
    return sorted(_full(fs, p, original) for p in fs.find(root) if _suffix(p) in VIDEO_EXTENSIONS)


def _read_list(fs, path: str, original: str) -> list[str]:
    suffix = _suffix(path)
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        with fs.open(path, "rb") as f:
            table = pq.read_table(f)
        column = next((c for c in ("video_path", "path") if c in table.column_names), None)
        if column is None:
            raise InputError(f"list file {original}: needs a 'video_path' or 'path' column, has {table.column_names}")
        entries = [str(v) for v in table[column].to_pylist() if v]
    else:
        with fs.open(path, "rt") as f:
            text = f.read()
        if suffix == ".csv":
            rows = list(csv.DictReader(io.StringIO(text)))
            column = next((c for c in ("video_path", "path") if rows and c in rows[0]), None)
            if column is None:
                raise InputError(f"list file {original}: needs a 'video_path' or 'path' header column")
            entries = [r[column].strip() for r in rows if r[column].strip()]
        else:
            entries = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    base = os.path.dirname(original)
    return [e if (_is_url(e) or os.path.isabs(e)) else (base.rstrip("/") + "/" + e if _is_url(base) else os.path.abspath(os.path.join(base, e)))
            for e in entries]


def _expand_one(item: str, from_list: bool) -> list[str]:
    fs, path = fsspec.core.url_to_fs(item)
    if _GLOB_CHARS & set(path) and not fs.exists(path):  # a name that exists as written is no pattern
        matches = sorted(fs.glob(path))
        if not matches:
            if from_list:
                return [_full(fs, path, item)]  # kept as written: ingest rejects it as ingest_missing
            raise InputError(f"input {item!r}: no such file, and as a glob pattern it matches no file")
        out: list[str] = []
        for m in matches:
            out.extend(_walk(fs, m, item) if fs.isdir(m) else [_full(fs, m, item)])
        return out
    if fs.isdir(path):
        found = _walk(fs, path, item)
        if not found and not from_list:
            raise InputError(f"input {item!r}: the directory holds no video file ({', '.join(sorted(VIDEO_EXTENSIONS))})")
        return found
    if not from_list and _suffix(path) in LIST_EXTENSIONS:
        if not fs.exists(path):
            raise InputError(f"input {item!r}: no such list file")
        if not _is_url(item) and not os.path.isfile(path):  # a FIFO would block the read
            raise InputError(f"input {item!r}: a list file must be a regular file")
        return _expand_list(_read_list(fs, path, item))
    if not fs.exists(path) and not from_list:
        raise InputError(f"input {item!r}: no such file, directory or glob match")
    return [_full(fs, path, item)]


def _expand_list(entries: Iterable[str]) -> list[str]:
    out: list[str] = []
    for entry in entries:
        out.extend(_expand_one(entry, from_list=True))
    return out


def expand_inputs(inputs: Sequence[str]) -> list[str]:
    """Expand ``inputs`` into video paths/URLs, in input order, each path once."""
    if isinstance(inputs, str):
        inputs = [inputs]
    if not inputs:
        raise InputError("no input given: pass --input PATH (file, directory, glob, or .txt/.csv/.parquet list)")
    seen: dict[str, None] = {}
    for item in inputs:
        for path in _expand_one(os.fspath(item), from_list=False):
            seen.setdefault(path, None)
    return list(seen)
