"""Harder synthetic edits for ``benchmarks/transitions.py --hard``: montages, slow dissolves, graphic transitions,
flashes, sliding overlays and same-scene cuts, built from real single shots, with exact ground truth.

    python benchmarks/hard_edits.py --out /tmp/curate-hard      # renders both parts (a few minutes)

Sources: the single-shot stretches of ``../shared/videos`` (``transition_media.SHOTS``) and the verified single-shot
files of ``../shared/footage`` (``truth.json``: ``shots == "single"``, ``basis == "verified"``), 0.2 s kept away
from their ends. The source VIDEOS are split into a tuning part and a test part (``part``: a third of them, by a
hash of the file name, are test), and each part's edits use only its own videos.

Families (two edits per part each; 480x270, 25 fps, libx264):

- ``montage``: a 40-frame shot, 12 shots of 4-15 frames, a 40-frame shot, all joined by hard cuts;
- ``slow``: four shots joined by cross-dissolves (``xfade`` fade) of 60-150 frames;
- ``graphic``: five shots joined by wipes, slides, zooms, pushes and shape reveals (``GRAPHIC``) of 10-40 frames;
- ``flash``: five shots joined by dips to white or black (``xfade`` fadewhite / fadeblack, 4-20 frames) and hard
  flashes (2-4 pure white or black frames between two hard cuts: a gradual transition over those frames);
- ``overlay``: four shots joined by hard cuts, a coloured banner sliding into each over 15 frames and staying: the
  banner is no event (a hard negative);
- ``same``: two stretches of one long single shot, at least 2 s apart, joined by a hard cut, twice: a cut with a
  small content change.

Truth, in output frames: a hard cut is the first frame of the new shot; an ``xfade`` of ``D`` frames at offset
``O`` is the gradual transition ``[O + 1, O + D - 1]`` (``transition_media``'s arithmetic); a flash is the range of
its flat frames.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
from dataclasses import dataclass
from pathlib import Path

from transition_media import FPS, SHOTS, SIZE, VIDEOS_DIR, join_and_encode, render_all

FOOTAGE_DIR = Path(os.environ.get("CURATE_FOOTAGE", VIDEOS_DIR.parent / "footage"))
GRAPHIC = ["wipeleft", "wipeup", "slideleft", "slideright", "slidedown", "zoomin", "smoothleft", "circleopen",
           "radial", "hlslice", "squeezeh", "diagtl", "vertopen", "horzclose", "pixelize", "wipebr"]  # fmt: skip
FAMILIES = ("montage", "slow", "graphic", "flash", "overlay", "same")
PURE = 12  # frames of each shot no transition touches
MARGIN_S = 0.2


@dataclass(frozen=True)
class Piece:
    """``frames`` frames from ``start_s`` of ``file`` (``@white``/``@black``: a flat frame), then the junction."""

    file: str
    start_s: float
    frames: int
    junction: str | None = None  # "cut", an xfade transition, or None (the last piece)
    junction_frames: int = 0
    banner: bool = False  # a banner slides in over frames 10..24 of the piece and stays


@dataclass(frozen=True)
class HardEdit:
    name: str
    family: str
    part: str
    pieces: tuple[Piece, ...]

    def truth(self) -> dict:
        """``{"cuts", "gradual", "frames", "kinds"}`` in output frames."""
        cuts, gradual, kinds = [], [], []
        length = 0
        for k, piece in enumerate(self.pieces):
            if k == 0:
                length = piece.frames
            else:
                previous = self.pieces[k - 1]
                if previous.junction == "cut":
                    start = length
                    length += piece.frames
                else:
                    offset = length - previous.junction_frames
                    gradual.append([offset + 1, offset + previous.junction_frames - 1])
                    kinds.append((previous.junction, offset + 1))
                    length = offset + piece.frames
                    continue
                if piece.file.startswith("@"):
                    gradual.append([start, length - 1])
                    kinds.append(("flash", start))
                elif not previous.file.startswith("@"):
                    cuts.append(start)
                    kinds.append(("same" if self.family == "same" and k % 2 else "cut", start))
        return {"cuts": cuts, "gradual": gradual, "frames": length, "kinds": kinds}


def sources(videos_dir: Path = VIDEOS_DIR, footage_dir: Path = FOOTAGE_DIR) -> list[tuple[str, float, float]]:
    """(path, start s, end s) of every single-shot stretch available."""
    found = [(str(videos_dir / f), a, b) for f, a, b in SHOTS]
    truth = json.loads((footage_dir / "truth.json").read_text())
    for name, entry in sorted(truth.items()):
        if name.startswith("_") or entry.get("shots") != "single" or entry.get("basis") != "verified":
            continue
        seconds = entry["frames"] / entry["fps"]
        if seconds >= 2.0:
            found.append((str(footage_dir / name), MARGIN_S, seconds - MARGIN_S))
    return found


def part(path: str) -> str:
    """``test`` for a third of the source videos (by a hash of the file name), else ``tuning``."""
    return "test" if int(hashlib.sha256(Path(path).name.encode()).hexdigest(), 16) % 3 == 0 else "tuning"


def plan(seed: int = 0) -> list[HardEdit]:
    rng = random.Random(seed)
    edits = []
    for which in ("tuning", "test"):
        shots = [s for s in sources() if part(s[0]) == which]
        for family in FAMILIES:
            for number in range(2):
                name = f"{which}_{family}_{number}"
                edits.append(HardEdit(name, family, which, tuple(_pieces(family, shots, rng))))
    return edits


def _take(shots, rng, frames: int, avoid: str | None = None) -> Piece:
    """A stretch of ``frames`` frames of a random shot at least that long (another video than ``avoid``)."""
    fitting = [s for s in shots if (s[2] - s[1]) * FPS >= frames and s[0] != avoid]
    file, start, end = rng.choice(fitting)
    begin = start + rng.uniform(0, end - start - frames / FPS)
    return Piece(file, round(begin, 3), frames)


def _chain(shots, rng, count: int, frames, junction) -> list[Piece]:
    """``count`` shots from different videos than their neighbours; ``frames()`` and ``junction(a, b)`` draw."""
    pieces: list[Piece] = []
    for _ in range(count):
        pieces.append(_take(shots, rng, frames(), pieces[-1].file if pieces else None))
    out = []
    for k, piece in enumerate(pieces):
        if k < count - 1:
            kind, length = junction(piece, pieces[k + 1])
            piece = Piece(piece.file, piece.start_s, piece.frames, kind, length)
        out.append(piece)
    return out


def _pieces(family: str, shots, rng: random.Random) -> list[Piece]:
    if family == "montage":
        lengths = [40] + [rng.randint(4, 15) for _ in range(12)] + [40]
        pieces, previous = [], None
        for length in lengths:
            piece = _take(shots, rng, length, previous)
            previous = piece.file
            pieces.append(Piece(piece.file, piece.start_s, length, "cut"))
        return pieces[:-1] + [Piece(pieces[-1].file, pieces[-1].start_s, pieces[-1].frames)]
    if family == "slow":
        durations = [rng.randint(60, 150) for _ in range(3)]
        frames = iter([durations[0] + 2 * PURE + 10] + [a + b + 2 * PURE for a, b in zip(durations, durations[1:])]
                      + [durations[-1] + 2 * PURE + 10])  # fmt: skip
        return _chain(shots, rng, 4, lambda: next(frames), lambda a, b: ("fade", durations.pop(0)))
    if family == "graphic":
        return _chain(shots, rng, 5, lambda: rng.randint(75, 125),
                      lambda a, b: (rng.choice(GRAPHIC), rng.randint(10, 40)))  # fmt: skip
    if family == "flash":
        chain = _chain(shots, rng, 5, lambda: rng.randint(60, 100),
                       lambda a, b: (rng.choice(["fadewhite", "fadeblack", "cut"]), rng.randint(4, 20)))
        out = []
        for piece in chain:  # a hard cut becomes a hard flash: cut, 2-4 flat frames, cut
            if piece.junction == "cut":
                out += [Piece(piece.file, piece.start_s, piece.frames, "cut"),
                        Piece(rng.choice(["@white", "@black"]), 0.0, rng.randint(2, 4), "cut")]
            else:
                out.append(piece)
        return out
    if family == "overlay":
        chain = _chain(shots, rng, 4, lambda: rng.randint(60, 110), lambda a, b: ("cut", 0))
        return [Piece(p.file, p.start_s, p.frames, p.junction, p.junction_frames, banner=True) for p in chain]
    if family == "same":
        long = [s for s in shots if (s[2] - s[1]) * FPS >= 2 * 60 + 2 * FPS]
        pieces = []
        for _ in range(2):
            file, start, end = rng.choice([s for s in long if not pieces or s[0] != pieces[-1].file])
            a = Piece(file, round(start, 3), 60, "cut")
            b = Piece(file, round(end - 60 / FPS - 0.04, 3), 60, "cut")  # at least 2 s later in the same shot
            pieces += [a, b]
        return pieces[:-1] + [Piece(pieces[-1].file, pieces[-1].start_s, pieces[-1].frames)]
    raise ValueError(f"unknown family {family!r}; one of {FAMILIES}")


def render(edit: HardEdit, path: Path) -> None:
    """One ffmpeg filter graph: each piece trimmed, scaled and cropped to 480x270 at 25 fps; the chain joined."""
    command = ["ffmpeg", "-v", "error", "-y"]
    graph = []
    width, height = SIZE
    for k, piece in enumerate(edit.pieces):
        if piece.file.startswith("@"):
            command += ["-f", "lavfi", "-i", f"color=c={piece.file[1:]}:s={width}x{height}:r={FPS}"]
        else:
            command += ["-i", piece.file]
        chain = (f"[{k}:v:0]trim=start={piece.start_s:.3f},setpts=PTS-STARTPTS,fps={FPS},"
                 f"scale={width}:{height}:force_original_aspect_ratio=increase,crop={width}:{height},setsar=1,"
                 f"format=yuv420p,trim=end_frame={piece.frames},setpts=PTS-STARTPTS,settb=1/{FPS}")  # fmt: skip
        if piece.banner:
            graph.append(f"color=c=0x2050c0:s={width}x56:r={FPS},format=yuv420p[b{k}]")
            graph.append(f"{chain}[r{k}]")
            graph.append(f"[r{k}][b{k}]overlay=x='if(lt(n,10),-{width},min(0,-{width}+(n-10)*{width}/15))':"
                         f"y={height - 70}:shortest=1:eval=frame,settb=1/{FPS}[s{k}]")
        else:
            graph.append(f"{chain}[s{k}]")
    join_and_encode(command, graph, edit.pieces, path)


def build(out: Path, seed: int = 0) -> list[tuple[Path, HardEdit, dict]]:
    """Render every edit of ``plan(seed)`` into ``out`` (reused when there); (path, edit, truth) per edit.

    Raises:
        RuntimeError: ffmpeg is missing, or an edit does not have the number of frames its truth says.
    """
    return render_all(plan(seed), out, f"hard-seed{seed}", render)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "curate-transitions")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for path, edit, truth in build(args.out, args.seed):
        print(path.name, truth["frames"], "frames; cuts", truth["cuts"], "gradual", truth["gradual"])


if __name__ == "__main__":
    main()
