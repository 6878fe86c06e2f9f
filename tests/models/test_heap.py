"""heap_allocations: large blocks freed and allocated again inside it are not page-faulted anew; outside, as before."""

import resource
import sys

import numpy as np
import pytest

from curate.models.heap import heap_allocations

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc only")


def faults(rounds: int = 10) -> int:
    """Minor page faults of allocating, touching and freeing a 64 MB block ``rounds`` times."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(rounds):
        block = np.empty(64 << 20, np.uint8)
        block.fill(1)
        del block
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def test_large_blocks_are_reused_inside_and_mapped_anew_outside():
    outside = faults()  # each block a fresh mmap, faulted page by page (numpy asks for huge pages where it can)
    with heap_allocations():
        faults(1)  # the heap grows once
        inside = faults()
    after = faults()
    assert outside >= 10 * 32  # at least one fault per 2 MiB huge page
    assert inside < outside / 10, (inside, outside)
    assert after > outside / 2, (after, outside)  # thresholds back: the freed heap top went back to the kernel
