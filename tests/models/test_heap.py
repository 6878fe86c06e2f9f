"""heap_allocations: large blocks freed and allocated again inside it are not page-faulted anew; outside, as before.

Page faults and malloc's thresholds are per process and what earlier tests allocated moves them, so the measure runs
in a fresh interpreter."""

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc only")

MEASURE = """
import json, resource
import numpy as np
from curate.models.heap import heap_allocations

def faults(rounds=10):
    # minor page faults of allocating, touching and freeing a 64 MB block rounds times
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(rounds):
        block = np.empty(64 << 20, np.uint8)
        block.fill(1)
        del block
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

outside = faults()  # each block a fresh mmap, faulted page by page (numpy asks for huge pages where it can)
with heap_allocations():
    faults(1)  # the heap grows once
    inside = faults()
after = faults()
print(json.dumps({"outside": outside, "inside": inside, "after": after}))
"""


def test_large_blocks_are_reused_inside_and_mapped_anew_outside():
    done = subprocess.run([sys.executable, "-c", MEASURE], capture_output=True, text=True, check=True)
    counts = json.loads(done.stdout.strip().splitlines()[-1])
    outside, inside, after = counts["outside"], counts["inside"], counts["after"]
    assert outside >= 10 * 32  # at least one fault per 2 MiB huge page
    assert inside < outside / 10, counts
    assert after > outside / 2, counts  # thresholds back: the freed heap top went back to the kernel
