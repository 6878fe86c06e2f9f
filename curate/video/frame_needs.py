"""Which frames of a clip a step reads (``FrameNeed``), and reading them: stored by an earlier step, else decoded.

    from curate.video.frame_needs import FrameNeed, read_needed_frames
    need = FrameNeed(fps=2.0, width=160, grey=True)          # motion: 2 frames a second, 160 px wide, grey
    need = FrameNeed(positions=(0.0, 0.5, 1.0), width=320)    # OCR: first, middle, last frame
    got = read_needed_frames(clips, need)     # got.frames[i]: the Frames of row i (None: failed, got.errors[i])
    got.decoded                               # rows whose frames were decoded from the video (not stored)

A per-clip step declares its needs (``frame_needs()``); the pipeline hands the needs of the steps after a frame
keeping step (split, the frames step: they have ``keep_frames_for``) to it (``pass_frame_needs``), so the keeping
step stores what is read later, and no constant is copied between steps. A step whose need was not stored (other
settings than the keeper was told, a re-run with ``--only``) decodes the video and counts it (``decoded``).

Frames are picked as ``curate.video.frames.read_clips`` picks them: the frame at a time ``t`` is the last frame
shown at or before ``t``; times come from ``sample_times`` (positions, or a regular grid from the clip's start).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
import logging
from typing import Any, Callable

import cv2
import numpy as np
import pyarrow as pa

from curate.errors import VideoReadError, error_message

from curate.video.frames import Frame, sample_times
from curate.video.needs import FrameNeed, union  # noqa: F401 (union: the frames step's, through here)


def pass_frame_needs(stages: Sequence[Any]) -> None:
    """Tell each frame keeping stage (one with ``keep_frames_for``) the union of the needs of the stages after it
    (``frame_needs()``), from the last stage to the first, so that a frames step has its consumers' needs before
    split asks for its own."""
    for i in range(len(stages) - 1, -1, -1):
        keep = getattr(stages[i], "keep_frames_for", None)
        if keep is not None:
            keep(union(n for later in stages[i + 1:] for n in getattr(later, "frame_needs", tuple)()))


def as_grey(frame: Frame) -> Frame:
    """``frame`` as one grey channel (HxW uint8), as the flow reads it."""
    if frame.image.ndim == 2:
        return frame
    return Frame(frame.time_s, cv2.cvtColor(frame.image, cv2.COLOR_RGB2GRAY))


@dataclass
class NeededFrames:
    """What ``read_needed_frames`` read: per row, the frames (None where they could not be decoded) and the error;
    ``decoded``: how many rows were decoded from the video, ``stored``: how many were read from stored frames."""

    frames: list[list[Frame] | None]
    errors: list[str | None]
    decoded: int = 0
    stored: int = 0
    decoded_videos: int = 0
    counts: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.counts = {"decoded_clips": self.decoded, "stored_clips": self.stored}
        if self.decoded_videos:
            self.counts["decoded_videos"] = self.decoded_videos


def read_needed_frames(table: pa.Table, need: FrameNeed) -> NeededFrames:
    """The frames ``need`` asks for, of every clip row of ``table`` (``video_path``, ``video_stream``, ``start_s``,
    ``end_s``, and ``clip_id`` + ``frames_file`` where frames were stored): stored frames where they cover the
    need, the video decoded (each video about once) for the other rows."""
    from curate.video.frames import read_clips
    from curate.video.stored_frames import stored_need

    frames: list[list[Frame] | None] = list(stored_need(table, need))
    errors: list[str | None] = [None] * table.num_rows
    missing = [i for i, f in enumerate(frames) if f is None]
    if missing:
        decoded, decode_errors = score_by_video(
            table.take(pa.array(missing, pa.int64())),
            lambda path, stream, spans: read_clips(path, [need.times(a, b) for a, b in spans], width=need.width,
                                                   stream_index=stream),
            lambda path, stream, a, b: read_clips(path, [need.times(a, b)], width=need.width,
                                                  stream_index=stream)[0],
            (VideoReadError,),
        )
        for i, result, error in zip(missing, decoded, decode_errors):
            frames[i], errors[i] = result, error
    if need.grey:
        frames = [None if f is None else [as_grey(x) for x in f] for f in frames]
    paths = table["video_path"].to_pylist()
    return NeededFrames(frames, errors, decoded=len(missing), stored=table.num_rows - len(missing),
                        decoded_videos=len({paths[i] for i in missing}))


def frame_index_at(times: np.ndarray, t: float, first: int = 0) -> int:
    """Index of the frame shown at time ``t``: the last with ``times[i] <= t`` (``first`` for an earlier ``t``),
    within the readers' tolerance (``curate.video.cursor.TIME_TOLERANCE_S``), so that it is the frame they decode."""
    from curate.video.cursor import TIME_TOLERANCE_S

    return max(first, int(np.searchsorted(times, t + TIME_TOLERANCE_S, side="right")) - 1)


def score_by_video(
    table: pa.Table,
    score_video: Callable[[str, int | None, list[tuple[float, float]]], list[Any]],
    score_clip: Callable[[str, int | None, float, float], Any],
    known_errors: tuple[type[BaseException], ...],
) -> tuple[list[Any], list[str | None]]:
    """Score every clip row, decoding each video about once: (results, errors) aligned with the rows.

    Rows are grouped by (video_path, video_stream) and ``score_video(path, stream, spans)`` scores a group's clips
    in time order. If it raises, the group's clips are scored one by one with ``score_clip(path, stream, start_s,
    end_s)`` to find which fail: those get result ``None`` and "ExceptionType: message". One video never fails
    the others. ``known_errors`` are the failures the caller expects (an undecodable clip); any other exception
    is contained the same way; its traceback goes to the ``curate`` logger at debug level (the message is in the
    row, and counted in the step's ``stats.json``: a traceback per clip would bury the run's own report).
    """
    rows = table.select(["video_path", "video_stream", "start_s", "end_s"]).to_pylist()
    groups: dict[tuple[str, int | None], list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault((row["video_path"], row["video_stream"]), []).append(i)
    results: list[Any] = [None] * len(rows)
    errors: list[str | None] = [None] * len(rows)
    for (path, stream), indices in groups.items():
        indices.sort(key=lambda i: rows[i]["start_s"])
        try:
            scored = score_video(path, stream, [(rows[i]["start_s"], rows[i]["end_s"]) for i in indices])
            for i, result in zip(indices, scored):
                results[i] = result
        except Exception as e:  # noqa: BLE001 - one video's failure is its clips' errors, never the shard's
            _log_unexpected(e, known_errors, path)
            for i in indices:
                try:
                    results[i] = score_clip(path, stream, rows[i]["start_s"], rows[i]["end_s"])
                except Exception as e:  # noqa: BLE001
                    _log_unexpected(e, known_errors, path)
                    errors[i] = error_message(e)
    return results, errors


def _log_unexpected(error: Exception, known: tuple[type[BaseException], ...], path: str) -> None:
    if not isinstance(error, known):
        logging.getLogger("curate").debug("unexpected error scoring %s: %s: %s", path, type(error).__name__, error,
                                          exc_info=error)


def read_clip_frames(
    table: pa.Table, positions: Sequence[float], width: int | None
) -> tuple[list[list[Any] | None], list[str | None]]:
    """Frames at relative ``positions`` of every clip row, at most ``width`` wide: (frames, errors).

    Rows whose frames a ``frames`` step stored (``curate.video.stored_frames``) are read from there; the others are
    decoded, each video about once. A clip whose frames cannot be decoded gets ``None`` and the message (see
    ``score_by_video``).
    """
    from curate.video.frames import read_clips, read_frames
    from curate.video.stored_frames import stored_frames

    def times(start: float, end: float) -> list[float]:
        return sample_times(start, end, positions=positions)

    frames: list[list[Any] | None] = list(stored_frames(table, positions, width))
    errors: list[str | None] = [None] * table.num_rows
    missing = [i for i, f in enumerate(frames) if f is None]
    if missing:
        decoded, decode_errors = score_by_video(
            table.take(pa.array(missing, pa.int64())),
            lambda path, stream, spans: read_clips(path, [times(a, b) for a, b in spans], width=width,
                                                   stream_index=stream),
            lambda path, stream, a, b: read_frames(path, times(a, b), width=width, stream_index=stream),
            (VideoReadError,),
        )
        for i, result, error in zip(missing, decoded, decode_errors):
            frames[i], errors[i] = result, error
    return frames, errors
