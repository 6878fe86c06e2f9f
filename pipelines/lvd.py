"""The Stable Video Diffusion (LVD) curation order: split, cheap scores and filters first, then captions and CLIP.

To drop a stage, remove its line; to add one, add a line. Values come from the YAML config (one block per step).
"""

from curate.stages.ingest import Ingest
from curate.stages.split import Split

PIPELINE = [
    ("ingest", Ingest),
    ("split", Split),
]
