"""Count the errors FFmpeg's decoder logs while this thread decodes: damage it concealed without telling the caller.

    from curate.video.decode_log import DecodeErrors
    errors = DecodeErrors()
    errors.start()                # on the thread that decodes (one decoder thread: thread_count = 1)
    try:
        for frame in container.decode(stream): ...
    finally:
        errors.stop()
    errors.count, errors.messages[:3]   # 6, ['error while decoding MB 39 11, bytestream 503', ...]

A damaged H.264 (or other) stream often decodes to the end: FFmpeg conceals broken macroblocks from their
neighbours and logs ``error while decoding MB x y``, ``Reference 4 >= 2``, ``cabac decode ... failed``,
``concealing N DC, N AC, N MV errors``, and returns frames as if nothing happened. ``count`` is the number of
messages at FFmpeg's ERROR level or worse logged on this thread between ``start`` and ``stop`` (each identical
message counted, not collapsed): a clean file logs none.

PyAV's log hook is process-wide and off by default (``av.logging.set_level(None)``): the first counter to start
sets it to ERROR (unless it already logs ERROR or more) and turns off its collapsing of repeated messages; the last to
stop restores both. Between, each counter collects only its own thread's messages (``av.logging.Capture(local=True)``),
so decodes on other threads of the same worker are not counted; their ERROR messages go to Python's ``libav``
logger as usual while the hook is on. A decoder that runs its own threads (``thread_count > 1``) logs from them:
count with one decoder thread.
"""

from __future__ import annotations

import threading

import av
import av.logging

__all__ = ["DecodeErrors"]

_lock = threading.Lock()
_users = 0
_saved: tuple[object, bool] | None = None  # (PyAV's log level, its skip_repeated) before the first start


class DecodeErrors:
    """The decoder errors logged on the calling thread between ``start()`` and ``stop()``; see the module docstring."""

    def __init__(self) -> None:
        self._capture: av.logging.Capture | None = None
        self._logs: list = []

    def start(self) -> None:
        if self._capture is not None:
            raise RuntimeError("DecodeErrors.start() called twice; call stop() first")
        _hook_on()
        try:
            self._capture = av.logging.Capture(True)
            self._logs = self._capture.__enter__()
        except BaseException:
            _hook_off()
            raise

    def stop(self) -> None:
        if self._capture is None:
            return
        try:
            self._capture.__exit__(None, None, None)
        finally:
            self._capture = None
            _hook_off()

    @property
    def messages(self) -> list[str]:
        return [message.strip() for level, _, message in self._logs if level <= av.logging.ERROR]

    @property
    def count(self) -> int:
        return len(self.messages)

    def __enter__(self) -> DecodeErrors:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _hook_on() -> None:
    global _users, _saved
    with _lock:
        if _users == 0:
            level = av.logging.get_level()
            _saved = (level, av.logging.get_skip_repeated())
            if level is None or level < av.logging.ERROR:  # FFmpeg's levels: smaller = more severe
                av.logging.set_level(av.logging.ERROR)
            av.logging.set_skip_repeated(False)
        _users += 1


def _hook_off() -> None:
    global _users, _saved
    with _lock:
        _users -= 1
        if _users == 0 and _saved is not None:
            level, skip = _saved
            av.logging.set_level(level)
            av.logging.set_skip_repeated(skip)
            _saved = None
