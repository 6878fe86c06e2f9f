"""The error base the CLI prints as one line (no traceback): the message says what to change; and how any error
reads in a row's error column."""


class CurateError(Exception):
    """An error the user can fix: a bad value, a missing file, an unavailable device. Subclass it per module."""


class VideoReadError(CurateError):
    """A video, or a span of it, that cannot be read: missing, not media, no video stream, undecodable, a time past
    its end, a cut that cannot be made. Every reader raises this one type (opening, probing, the scene scan, frame
    reading, export's cuts, the training dataset), so that a stage or the CLI catches one type, and a row's error
    says "VideoReadError: <path>: <cause>".

    ``path`` names the video (None where the raiser does not know it: its caller raises it again with the path);
    ``cause`` says why; ``reason``: a stable reject reason where the raiser knows one (probe's ``ingest_*``).
    """

    def __init__(self, path: str | None, cause: str, *, reason: str | None = None):
        super().__init__(cause if path is None else f"{path}: {cause}")
        self.path, self.cause, self.reason = path, cause, reason

    def __reduce__(self):  # pickled to and from Dask workers with its attributes, not only its message
        return type(self), (self.path, self.cause), {"reason": self.reason}


def error_message(error: BaseException) -> str:
    """"ExceptionType: message" for a row's error column or reject detail; a type from outside curate and the
    standard library keeps its module (``cv2.error``, not ``error``)."""
    kind = type(error)
    name = kind.__qualname__ if kind.__module__ == "builtins" or kind.__module__.startswith("curate") else (
        f"{kind.__module__}.{kind.__qualname__}")
    return f"{name}: {str(error).strip()}"
