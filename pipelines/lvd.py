"""The Stable Video Diffusion (LVD) curation order: split; the frames every per-clip step needs, decoded once; cheap
scores and their filter first, so captioning is not spent on clips that will be rejected anyway; then captions, their
summary, CLIP alignment, the aesthetic score (from the CLIP stage's embeddings when it runs ViT-L/14), a last filter
on those scores, dedup, and the write step (Parquet shards + card). Dedup comes after the filter: it then keeps the
best of the clips that pass (dedup first could keep a clip of a group that the filter rejects next, losing the whole
group).

To drop a stage, remove its line; to add one, add a line. Values come from the YAML config (one block per step).
"""

from curate.stages.aesthetic import Aesthetic
from curate.stages.caption_image import CaptionImage
from curate.stages.caption_video import CaptionVideo
from curate.stages.clip_score import ClipScore
from curate.stages.dedup import Dedup
from curate.stages.filter import Filter
from curate.stages.frames import Frames
from curate.stages.ingest import Ingest
from curate.stages.motion import Motion
from curate.stages.ocr import Ocr
from curate.stages.picture import Picture
from curate.stages.split import Split
from curate.stages.summary import Summary
from curate.stages.write import Write

PIPELINE = [
    ("ingest", Ingest),
    ("split", Split),
    ("frames", Frames),
    ("motion", Motion),
    ("ocr", Ocr),
    ("picture", Picture),
    ("filter", Filter),
    ("caption_image", CaptionImage),
    ("caption_video", CaptionVideo),
    ("summary", Summary),
    ("clip_score", ClipScore),
    ("aesthetic", Aesthetic),
    ("filter_clip", Filter),
    ("dedup", Dedup),
    ("write", Write),
]
