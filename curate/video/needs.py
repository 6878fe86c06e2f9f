"""What a step reads from each clip: a ``FrameNeed`` (positions or a rate, a width, RGB or grey), and the union of
several. Split and the frames step keep the union of the needs of the steps after them (``curate.video.frame_needs``);
stored frames are kept per need (``curate.video.stored_frames``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from curate.video.frames import sample_times


@dataclass(frozen=True)
class FrameNeed:
    """The frames a step reads from each clip: at relative ``positions`` (0 = first frame, 1 = last) or every
    ``1 / fps`` seconds from the clip's start; at most ``width`` pixels wide (None: the display width); RGB, or
    one grey channel (``grey``: what ``cv2.cvtColor(rgb, COLOR_RGB2GRAY)`` makes of the RGB frame)."""

    positions: tuple[float, ...] | None = None
    fps: float | None = None
    width: int | None = None
    grey: bool = False

    def __post_init__(self) -> None:
        if (self.positions is None) == (self.fps is None):
            raise ValueError("a FrameNeed has either positions (relative, in [0, 1]) or fps (frames a second)")
        if self.positions is not None:
            object.__setattr__(self, "positions", tuple(float(p) for p in self.positions))
            if not self.positions or not all(0.0 <= p <= 1.0 for p in self.positions):
                raise ValueError(f"FrameNeed positions must be relative positions in [0, 1], got {self.positions}")
        elif not self.fps > 0:
            raise ValueError(f"FrameNeed fps must be > 0 frames a second, got {self.fps}")
        if self.width is not None and self.width < 2:
            raise ValueError(f"FrameNeed width must be >= 2 pixels or None, got {self.width}")

    def times(self, start_s: float, end_s: float) -> list[float]:
        """The times this need reads in the clip ``[start_s, end_s)``."""
        if self.positions is not None:
            return sample_times(start_s, end_s, positions=self.positions)
        return sample_times(start_s, end_s, fps=self.fps)

    def covers(self, other: FrameNeed) -> bool:
        """Whether frames stored for this need give ``other``'s (positions: a superset, at least as wide)."""
        if other.positions is not None:
            wide = self.width is None or (other.width is not None and self.width >= other.width)
            return (self.positions is not None and self.grey == other.grey and wide
                    and all(any(abs(p - q) < 1e-9 for q in self.positions) for p in other.positions))
        return self == other  # a rate: the same grid at the same width (motion scores depend on the width)


def union(needs: Iterable[FrameNeed]) -> list[FrameNeed]:
    """Fewest needs that cover all of ``needs``: the position needs of one width (and colour) as one, with all
    their positions, and each distinct rate need. Needs of different widths stay apart, so that each step reads
    its frames at the size it would decode them (a frame shrunk from a wider one is not the same picture)."""
    out: list[FrameNeed] = []
    placed: dict[tuple[int | None, bool], set[float]] = {}
    for need in needs:
        if need.positions is not None:
            placed.setdefault((need.width, need.grey), set()).update(need.positions)
        elif need not in out:
            out.append(need)
    return [FrameNeed(positions=tuple(sorted(positions)), width=width, grey=grey)
            for (width, grey), positions in placed.items()] + out
