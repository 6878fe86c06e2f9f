"""A numpy array that grows at its end, for per-frame series collected during a scan (times, scores).

``array.array`` cannot grow while a numpy view of it is alive (``BufferError: cannot resize an array that is
exporting buffers``), and whether a view is still alive can depend on when the garbage collector runs. Here the
storage is a numpy array that is replaced, never resized, when it fills: a view taken earlier keeps the values it
saw, and appending never fails.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np


class Growing:
    """``append``/``extend`` values of one dtype; ``view()``: the values so far (no copy)."""

    def __init__(self, dtype, capacity: int = 1024) -> None:
        self._data = np.empty(capacity, dtype)
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, index):
        return self.view()[index]

    def _reserve(self, size: int) -> None:
        if size > len(self._data):
            grown = np.empty(max(size, 2 * len(self._data)), self._data.dtype)
            grown[: self._size] = self._data[: self._size]
            self._data = grown  # views of the old storage keep it alive, unchanged

    def append(self, value) -> None:
        self._reserve(self._size + 1)
        self._data[self._size] = value
        self._size += 1

    def extend(self, values: Iterable) -> None:
        values = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, self._data.dtype).ravel()
        self._reserve(self._size + len(values))
        self._data[self._size : self._size + len(values)] = values
        self._size += len(values)

    def view(self) -> np.ndarray:
        return self._data[: self._size]
