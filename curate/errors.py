"""The error base the CLI prints as one line (no traceback): the message says what to change; and how any error
reads in a row's error column."""


class CurateError(Exception):
    """An error the user can fix: a bad value, a missing file, an unavailable device. Subclass it per module."""


def error_message(error: BaseException) -> str:
    """"ExceptionType: message" for a row's error column or reject detail; a type from outside curate and the
    standard library keeps its module (``cv2.error``, not ``error``)."""
    kind = type(error)
    name = kind.__qualname__ if kind.__module__ == "builtins" or kind.__module__.startswith("curate") else (
        f"{kind.__module__}.{kind.__qualname__}")
    return f"{name}: {str(error).strip()}"
