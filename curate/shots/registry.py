"""Every shot detector kind curate knows, by the name a :class:`~curate.shots.cascade.DetectorSpec` gives.

Adding a detector: one file with its kind (:class:`curate.shots.detector.DetectorKind`) and one line here.
"""

from __future__ import annotations

from scenedetect.detectors import AdaptiveDetector, ContentDetector, HistogramDetector, ThresholdDetector

from curate.shots.detector import DetectorKind
from curate.shots.dissolve import DissolveKind
from curate.shots.flash import FlashKind
from curate.shots.pyscenedetect import PySceneDetectKind
from curate.shots.transnet import TransNetV2Kind

DETECTORS: dict[str, DetectorKind] = {
    "content": PySceneDetectKind("content", ContentDetector, "threshold"),
    "adaptive": PySceneDetectKind("adaptive", AdaptiveDetector, "adaptive_threshold"),
    "threshold": PySceneDetectKind("threshold", ThresholdDetector, "threshold"),
    "histogram": PySceneDetectKind("histogram", HistogramDetector, "threshold"),
    "transnetv2": TransNetV2Kind(),
    "dissolve": DissolveKind(),
    "flash": FlashKind(),
}


def detector_kind(kind: str) -> DetectorKind:
    """The kind named ``kind``; ValueError listing the kinds there are."""
    try:
        return DETECTORS[kind]
    except KeyError:
        raise ValueError(f"unknown detector kind {kind!r}; allowed: {sorted(DETECTORS)}") from None
