"""The error base the CLI prints as one line (no traceback): the message says what to change."""


class CurateError(Exception):
    """An error the user can fix: a bad value, a missing file, an unavailable device. Subclass it per module."""
