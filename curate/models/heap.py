"""Serve a CPU forward pass's large tensors from malloc's heap, not from fresh pages: ``heap_allocations()``.

    from curate.models.heap import heap_allocations
    with heap_allocations():                 # around all the windows of a video, not each one
        scan = scan_scenes(path, [DetectorSpec("transnetv2")], transnet=model)

glibc's malloc gives every block above its mmap threshold (128 KiB; at most 32 MiB where it adapts, and it does not
adapt at all in a Dask worker, which sets ``MALLOC_TRIM_THRESHOLD_``) its own fresh ``mmap`` and unmaps it on
``free``. A network that allocates its activations anew for every window (TransNetV2's 200-frame windows: about
1.2 GB of activations per window, in blocks of up to ~70 MB) then page-faults every page of them again each time, in
the kernel: a quarter to a half of its CPU time on a CPU. Inside ``heap_allocations`` the mmap threshold and the trim
threshold (above which the free top of the heap goes back to the kernel) are raised, so freed activations stay in
malloc's heap and the next window reuses them; on leaving, both are set back to what the environment gives
(``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_``, else glibc's default where the environment turns adapting
off, else its adaptive ceiling), so code outside the block allocates as before and the heap's free top is returned
at the next ``free``. While inside, the heap keeps about what one window needs at its peak. Wrap a whole video's
windows (leaving trims the heap: per window, the pages would be faulted anew). Elsewhere than glibc (macOS, musl)
it does nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import threading
from collections.abc import Iterator

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt's parameter numbers (glibc's malloc.h)
DEFAULT_MMAP_THRESHOLD = 128 * 1024  # glibc's defaults, and the trim threshold's
ADAPTIVE_MAX_MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit; trim: twice that
INSIDE = 1 << 30  # inside the block: blocks up to 1 GiB come from the heap, and up to 1 GiB of free top stays
_FIXED_BY = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_")  # each turns glibc's adapting off
_lock = threading.Lock()
_depth = 0


def _mallopt():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.mallopt if os.uname().sysname == "Linux" and hasattr(libc, "malloc_trim") else None
    except (OSError, AttributeError):
        return None


_MALLOPT = _mallopt()


def outside_thresholds() -> tuple[int, int]:
    """(mmap threshold, trim threshold) for code outside the block: the environment's, else glibc's defaults where
    the environment turns adapting off (as Dask's workers do: ``MALLOC_TRIM_THRESHOLD_``), else the adaptive
    thresholds' ceiling, where a process that has freed a large block ends up."""
    fixed = any(name in os.environ for name in _FIXED_BY) or "MALLOC_MMAP_THRESHOLD_" in os.environ
    mmap = ADAPTIVE_MAX_MMAP_THRESHOLD if not fixed else DEFAULT_MMAP_THRESHOLD
    trim = 2 * ADAPTIVE_MAX_MMAP_THRESHOLD if not fixed else DEFAULT_MMAP_THRESHOLD
    return _env_int("MALLOC_MMAP_THRESHOLD_", mmap), _env_int("MALLOC_TRIM_THRESHOLD_", trim)


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.isdigit() else default


@contextlib.contextmanager
def heap_allocations() -> Iterator[None]:
    """Inside, malloc serves blocks up to ``INSIDE`` bytes from its heap and keeps its free top (see the module
    docstring). Nested and concurrent blocks share one setting, restored when the last one leaves."""
    global _depth
    if _MALLOPT is None:
        yield
        return
    with _lock:
        _depth += 1
        if _depth == 1:
            _MALLOPT(M_TRIM_THRESHOLD, INSIDE)
            _MALLOPT(M_MMAP_THRESHOLD, INSIDE)
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                mmap, trim = outside_thresholds()
                _MALLOPT(M_MMAP_THRESHOLD, mmap)
                _MALLOPT(M_TRIM_THRESHOLD, trim)
