"""Fine-tune TransNetV2 from the shipped weights on synthetic edits of the tuning part, resumably, on a CPU.

    python benchmarks/train_transnet.py --out runs/transnet-ft --steps 120          # renders, decodes, trains
    python benchmarks/train_transnet.py --out runs/transnet-ft --steps 120          # again: continues where it stopped
    python benchmarks/train_transnet.py --out runs/x --check runs/transnet-ft/checkpoint.pt   # held-out tuning footage
    python benchmarks/transitions.py --hard --weights runs/transnet-ft/transnetv2-finetuned.pth   # before vs after

What it does, in order:

1. Plans the training edits (``training_edits``): ``hard_edits``'s six families (montage, slow dissolves, graphic
   transitions, flashes, sliding banners, same-scene cuts), two edits per family and seed, drawn ONLY from the
   single shots of ``../shared/footage`` whose video is in the tuning part (``hard_edits.part``). The test part's
   videos are never used, and neither are the videos of ``../shared/videos``: those are the annotated fixtures the
   keep rule is judged on, and the tuning part of ``hard_edits`` draws shots from them too. Every piece is checked
   against both rules before anything is rendered.
2. Renders them with ffmpeg (``transition_media.render_all``; cached in ``--media``) and decodes each to the network's
   input exactly as split feeds it (128-px thumbnail, :func:`curate.shots.transnet.transnet_frame`: RGB 48x27),
   cached as ``.npy`` beside the video. Targets from the exact truth, in the network's conventions
   (``curate.shots.transnet``): a hard cut at ``c`` (first frame of the new shot) marks frame ``c - 1`` in both
   heads; a gradual transition ``[a, b]`` (and a flash's flat frames) marks its middle frame ``(a + b) // 2`` in the
   single-frame head and every frame ``a..b`` in the all-frames head (``--many-cap 30``: at most 30 frames around
   the middle, the length of the published training data's longest transitions).
   ``--negatives K`` adds K windows a batch of uncut real shots (``negative_shots``: the tuning-part videos of
   ``../shared/footage``, single shots whole and edited videos between the cuts and gradual spans of its
   ``truth.json``) with all-zero targets: hard negatives (fast motion, camera moves) that keep the network from
   learning to cut wherever the picture changes fast. Their frames above 0.3 are logged per step.
3. Trains with the published recipe (TransNetV2's ``configs/transnetv2.gin``) as far as a CPU allows: windows of 100
   frames at random positions, left-right flips with probability 0.5; loss = sigmoid cross-entropy of the
   single-frame head with transition frames weighted 5, + 0.1 x that of the all-frames head, + L2 1e-4 (SGD weight
   decay); SGD with momentum 0.9, gradients clipped to a global norm of 10, dropout 0.5 on the dense layer. Changed
   for fine-tuning: learning rate 1e-3 (published 1e-2 from scratch), batches of 4 windows (published 16: a CPU
   step of 16 windows takes minutes), batch-norm statistics frozen at the shipped ones (batches of 4 from ~50 edits
   would pull them towards the synthetic footage).
4. Every ``--checkpoint-every`` steps, and when it stops, writes ``checkpoint.pt`` (model, optimiser, step, torch and
   numpy generator states, windows drawn, recipe, loss log) to a temporary file and ``os.replace``s it: a kill
   loses at most that many steps, and the same command continues from the checkpoint (a different recipe is
   refused, naming what differs). ``--stop-after K`` stops after K steps of this run (for tests and time boxes).
5. At ``--steps``: writes ``transnetv2-finetuned.pth`` (a state dict that ``load_transnetv2`` and split's
   ``transnet_model`` load) and ``transnetv2-finetuned.json`` beside it: the recipe (sources, edit families,
   seeds, counts), the training speed (frames per second, the CPU, the load average) and the loss log.
   ``--scores FILE`` adds before/after scores (a JSON object) to that JSON.

``--data FILE.npz`` trains on given arrays instead (``frames`` uint8 [N, T, 27, 48, 3], ``one_hot`` and
``many_hot`` [N, T]); the resume test uses it with tiny windows.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

from curate.models.transnetv2 import DEFAULT_TRANSNETV2, TransNetV2, load_transnetv2  # noqa: E402

CHECKPOINT = "checkpoint.pt"
WEIGHTS = "transnetv2-finetuned.pth"


@dataclass(frozen=True)
class Recipe:
    """Everything that decides the weights. A checkpoint continues only under the same recipe."""

    init: str = DEFAULT_TRANSNETV2
    seeds: tuple[int, ...] = (0, 1, 2, 3)  # hard_edits plans drawn for the training edits (ignored with --data)
    data: str = ""  # an .npz of windows instead of rendered edits
    window: int = 100
    batch: int = 4
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 1e-4  # the published L2 loss weight (0.5 * w * |v|^2 per weight = SGD weight decay w)
    transition_weight: float = 5.0
    many_hot_weight: float = 0.1
    grad_clip: float = 10.0
    dropout: float = 0.5
    flip_prob: float = 0.5
    sample_seed: int = 0
    steps: int = 120
    negatives: int = 0  # windows per batch, beside ``batch``, of uncut real shots of the tuning part (all-zero targets)
    many_cap: int = 0  # all-frames target of a gradual transition: at most this many frames around its middle (0: all)


# -- data -------------------------------------------------------------------------------------------


def training_edits(seeds) -> list:
    """``hard_edits`` families drawn from the tuning part's footage shots only (see the module docstring, step 1)."""
    import random

    import hard_edits

    shots = [s for s in hard_edits.sources() if hard_edits.part(s[0]) == "tuning"
             and Path(s[0]).parent.resolve() == hard_edits.FOOTAGE_DIR.resolve()]  # fmt: skip
    edits = []
    for seed in seeds:
        rng = random.Random(1000 + seed)  # not hard_edits.plan's seeds: other draws than its tuning edits
        for family in hard_edits.FAMILIES:
            for number in range(2):
                pieces = tuple(hard_edits._pieces(family, shots, rng))
                edits.append(hard_edits.HardEdit(f"train{seed}_{family}_{number}", family, "tuning", pieces))
    check_sources(edits)
    return edits


def check_sources_files(names) -> None:
    """Raise ValueError if a file name is a test-part video (negatives come from ``../shared/footage`` only)."""
    import hard_edits

    bad = [n for n in names if hard_edits.part(n) != "tuning"]
    if bad:
        raise ValueError(f"{bad}: test-part videos; hard negatives may use only tuning-part footage")


def check_sources(edits) -> None:
    """Raise ValueError if a piece comes from a test-part video or from the annotated fixtures."""
    import hard_edits
    from transition_media import VIDEOS_DIR

    for edit in edits:
        for piece in edit.pieces:
            if piece.file.startswith("@"):
                continue
            if hard_edits.part(piece.file) != "tuning" or Path(piece.file).parent.resolve() == VIDEOS_DIR.resolve():
                raise ValueError(f"{edit.name}: {piece.file} is a test-part video or an annotated fixture; training "
                                 "edits may use only tuning-part footage")


def decode48(path: Path, cache: Path | None = None) -> np.ndarray:
    """Every frame of ``path`` as split feeds TransNetV2: uint8 [T, 27, 48, 3] (cached as ``.npy`` beside it, or in
    ``cache``: never beside the shared footage)."""
    cache = cache or path.with_suffix(".rgb48.npy")
    if cache.is_file():
        return np.load(cache)
    import av

    from curate.shots.scan import DEFAULT_DOWNSCALE_WIDTH, thumbnail, thumbnail_size
    from curate.shots.transnet import transnet_frame

    frames = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            size = thumbnail_size(frame.width, frame.height, DEFAULT_DOWNSCALE_WIDTH)
            frames.append(transnet_frame(thumbnail(frame, size)))
    array = np.stack(frames)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, array)
    return array


def targets(truth: dict, n_frames: int, many_cap: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(single-frame, all-frames) targets, float32 [n_frames] each (conventions: module docstring, step 2).
    ``many_cap`` > 0 marks at most that many frames around a gradual transition's middle in the all-frames head (the
    published training data's transitions last at most 30 frames; a 150-frame dissolve marked whole teaches that a
    window with no visible change can be a transition)."""
    one, many = np.zeros(n_frames, np.float32), np.zeros(n_frames, np.float32)
    for c in truth["cuts"]:
        one[c - 1] = many[c - 1] = 1.0
    for a, b in truth["gradual"]:
        middle = (a + b) // 2
        one[middle] = 1.0
        if many_cap and b - a + 1 > many_cap:
            a = middle - many_cap // 2
            b = a + many_cap - 1
        many[a : b + 1] = 1.0
    return one, many


NEGATIVE_MARGIN = 3  # frames kept clear of a cut or a gradual transition's span in the footage's truth


def negative_shots(min_frames: int, footage_dir: Path | None = None) -> list[tuple[str, int, int]]:
    """(path, first frame, end frame) of every uncut shot stretch of at least ``min_frames`` frames in the videos of
    ``../shared/footage`` whose video is in the tuning part and whose truth is verified: single-shot videos whole,
    edited ones between their cuts and gradual transitions (``truth.json``), ``NEGATIVE_MARGIN`` frames clear."""
    import hard_edits

    footage_dir = footage_dir or hard_edits.FOOTAGE_DIR
    truth = json.loads((footage_dir / "truth.json").read_text())
    shots = []
    for name, entry in sorted(truth.items()):
        if name.startswith("_") or entry.get("basis") != "verified" or hard_edits.part(name) != "tuning":
            continue
        bounds = [(c - NEGATIVE_MARGIN, c + NEGATIVE_MARGIN) for c in entry.get("cuts", [])]
        bounds += [(a - NEGATIVE_MARGIN, b + 1 + NEGATIVE_MARGIN) for a, b in entry.get("gradual", [])]
        start = 0
        for a, b in sorted(bounds) + [(entry["frames"], entry["frames"])]:
            if a - start >= min_frames:
                shots.append((str(footage_dir / name), start, a))
            start = max(start, b)
    return shots


def negative_tracks(media: Path, window: int) -> tuple[list[Track], dict]:
    """Hard negatives: the uncut real shots of ``negative_shots`` (at least a window long), all-zero targets."""
    tracks, seconds = [], 0.0
    for path, start, end in negative_shots(window):
        frames = decode48(Path(path), media / "negatives" / (Path(path).name + ".rgb48.npy"))[start:end]
        zeros = np.zeros(len(frames), np.float32)
        tracks.append(Track(f"{Path(path).name}[{start}:{end}]", frames, zeros, zeros))
    check_sources_files([t.name.split("[")[0] for t in tracks])
    data = {
        "shots": [t.name for t in tracks],
        "frames": int(sum(len(t.frames) for t in tracks)),
        "rule": "uncut shot stretches of tuning-part videos of ../shared/footage with verified truth (truth.json "
                f"cuts and gradual spans, {NEGATIVE_MARGIN} frames clear); no test-part video, no annotated fixture",
    }  # fmt: skip
    return tracks, data


@dataclass
class Track:
    """One training video: its frames and targets."""

    name: str
    frames: np.ndarray
    one: np.ndarray
    many: np.ndarray


def rendered_tracks(media: Path, seeds, many_cap: int = 0) -> tuple[list[Track], dict]:
    """Render and decode the training edits; the tracks and the data part of the recipe (sources, counts)."""
    import hard_edits
    from transition_media import render_all

    edits = training_edits(seeds)
    made = render_all(edits, media, "train-" + "-".join(map(str, seeds)), hard_edits.render)
    tracks, kinds = [], {}
    for path, edit, truth in made:
        frames = decode48(path)
        tracks.append(Track(edit.name, frames, *targets(truth, len(frames), many_cap)))
        for kind, _ in truth["kinds"]:
            kinds[kind] = kinds.get(kind, 0) + 1
    data = {
        "sources": sorted({Path(p.file).name for e in edits for p in e.pieces if not p.file.startswith("@")}),
        "families": list(hard_edits.FAMILIES),
        "edits": len(edits),
        "frames": int(sum(len(t.frames) for t in tracks)),
        "events_by_kind": dict(sorted(kinds.items())),
        "rule": "tuning-part videos of ../shared/footage only (hard_edits.part); no test-part video, no annotated "
                "fixture of ../shared/videos",
    }  # fmt: skip
    return tracks, data


def npz_tracks(path: Path) -> tuple[list[Track], dict]:
    arrays = np.load(path)
    tracks = [Track(f"{path.name}[{i}]", f, o.astype(np.float32), m.astype(np.float32))
              for i, (f, o, m) in enumerate(zip(arrays["frames"], arrays["one_hot"], arrays["many_hot"]))]  # fmt: skip
    return tracks, {"npz": str(path), "windows": len(tracks)}


def draw(tracks: list[Track], rng: np.random.Generator, recipe: Recipe, count: int | None = None
         ) -> tuple[torch.Tensor, ...]:  # fmt: skip
    """One batch: ``count`` (default ``recipe.batch``) windows of ``recipe.window`` frames at random places, some
    flipped left-right."""
    starts = np.array([max(1, len(t.frames) - recipe.window + 1) for t in tracks], np.float64)
    frames, one, many = [], [], []
    for _ in range(recipe.batch if count is None else count):
        track = tracks[rng.choice(len(tracks), p=starts / starts.sum())]
        start = int(rng.integers(0, max(1, len(track.frames) - recipe.window + 1)))
        window = track.frames[start : start + recipe.window]
        if rng.random() < recipe.flip_prob:
            window = window[:, :, ::-1]
        frames.append(np.ascontiguousarray(window))
        one.append(track.one[start : start + recipe.window])
        many.append(track.many[start : start + recipe.window])
    return torch.from_numpy(np.stack(frames)), torch.from_numpy(np.stack(one)), torch.from_numpy(np.stack(many))


# -- a check on held-out real footage of the tuning part -----------------------------------------------


def held_out_footage(window: int, footage_dir: Path | None = None) -> list[tuple[str, dict]]:
    """(path, truth entry) of the tuning-part videos of ``../shared/footage`` with verified truth that no training
    window comes from: edited videos (never an edit's source) with no uncut stretch of a window (never a negative).
    A checkpoint's false cuts and misses there are seen before any test-part run, and the annotated fixtures stay
    the keep rule's judge."""
    import hard_edits

    footage_dir = footage_dir or hard_edits.FOOTAGE_DIR
    truth = json.loads((footage_dir / "truth.json").read_text())
    used = {Path(path).name for path, _, _ in negative_shots(window, footage_dir)}
    return [(str(footage_dir / name), entry) for name, entry in sorted(truth.items())
            if not name.startswith("_") and entry.get("basis") == "verified" and entry.get("shots") == "edited"
            and hard_edits.part(name) == "tuning" and name not in used]  # fmt: skip


def check(weights: str, media: Path, window: int, threshold: float = 0.3) -> dict:
    """True and false cuts of ``weights`` (a .pth, a ``checkpoint.pt``, or the package's) on ``held_out_footage``,
    run as split runs it (:class:`TransNetV2Windows` defaults, :func:`find_transitions` at ``threshold``, cuts
    matched with ``cut_accuracy.match``: +-2 frames, anywhere inside a gradual transition)."""
    from cut_accuracy import Truth, match

    from curate.shots.transnet import TransNetV2Windows, find_transitions

    if Path(weights).name == CHECKPOINT:
        model = load_transnetv2(DEFAULT_TRANSNETV2, device="cpu", dtype="fp32")
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=False)["model"])
    else:
        model = load_transnetv2(weights, device="cpu", dtype="fp32")
    model.eval()
    videos, totals = {}, [0, 0, 0]
    for path, entry in held_out_footage(window):
        frames = decode48(Path(path), media / "negatives" / (Path(path).name + ".rgb48.npy"))
        windows = TransNetV2Windows(model)
        parts = [windows.push(f) for f in frames] + [windows.finish()]
        parts = [p for p in parts if p is not None]
        single = np.concatenate([p.single for p in parts])
        many = np.concatenate([p.many for p in parts])
        cuts = [t.cut for t in find_transitions(single, many, threshold)]
        counts = match(cuts, Truth(list(entry.get("cuts", [])), [tuple(g) for g in entry.get("gradual", [])]))
        videos[Path(path).name] = dict(zip(("tp", "fp", "fn"), counts))
        totals = [a + b for a, b in zip(totals, counts)]
    return {"weights": weights, "threshold": threshold, "videos": videos, **dict(zip(("tp", "fp", "fn"), totals))}


# -- training ---------------------------------------------------------------------------------------


def loss_of(model: TransNetV2, frames, one, many, recipe: Recipe) -> tuple[torch.Tensor, float, float, int]:
    """The published loss without its L2 term (the optimiser's weight decay): (total, single part, many part, frames
    of the negative windows (the last ``recipe.negatives``) whose single-frame probability exceeds 0.3: false cuts
    on uncut real footage, as training sees them)."""
    single, all_frames = model(frames)
    weights = 1.0 + one * (recipe.transition_weight - 1.0)
    one_loss = (F.binary_cross_entropy_with_logits(single, one, reduction="none") * weights).mean()
    many_loss = recipe.many_hot_weight * F.binary_cross_entropy_with_logits(all_frames, many)
    hits = int((torch.sigmoid(single[len(single) - recipe.negatives :]) > 0.3).sum()) if recipe.negatives else 0
    return one_loss + many_loss, one_loss.item(), many_loss.item(), hits


def train_mode(model: TransNetV2, dropout: float) -> None:
    """Train mode with batch-norm statistics frozen, and dropout on the dense layer's output (as published)."""
    model.train()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm3d):
            module.eval()
    if dropout > 0:
        model.fc1.register_forward_hook(lambda m, i, out: F.dropout(out, dropout, training=m.training))


def save_atomic(obj, path: Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, then ``os.replace``: a kill never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def train(out: Path, tracks: list[Track], recipe: Recipe, data_recipe: dict, *, stop_after: int | None = None,
          checkpoint_every: int = 5, log=print, negatives: list[Track] = ()) -> dict:  # fmt: skip
    """Train to ``recipe.steps`` from ``out/checkpoint.pt`` if there (else from ``recipe.init``); returns the state
    as last saved. ``stop_after``: stop after this many steps of this call (the checkpoint is written).
    ``negatives``: the tracks ``recipe.negatives`` windows of each batch come from."""
    if recipe.negatives and not negatives:
        raise ValueError(f"the recipe asks {recipe.negatives} negative windows a batch but no negative track was given")
    out.mkdir(parents=True, exist_ok=True)
    model = load_transnetv2(recipe.init, device="cpu", dtype="fp32")
    optimiser = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                                weight_decay=recipe.weight_decay)  # fmt: skip
    rng = np.random.default_rng(recipe.sample_seed)
    torch.manual_seed(recipe.sample_seed)
    state = {"step": 0, "windows_drawn": 0, "log": [], "seconds": 0.0}
    checkpoint = out / CHECKPOINT
    if checkpoint.is_file():
        saved = torch.load(checkpoint, map_location="cpu", weights_only=False)
        was = {**asdict(Recipe()), **saved["recipe"]}  # a field added since: its default, which it trained with
        differs = {k: (was[k], v) for k, v in asdict(recipe).items() if k != "steps" and _plain(was[k]) != _plain(v)}
        if differs:
            raise SystemExit(f"{checkpoint} was trained with another recipe ({differs}, saved vs asked); rerun with "
                             "the same options, or pass another --out to start afresh")
        model.load_state_dict(saved["model"])
        optimiser.load_state_dict(saved["optimizer"])
        rng.bit_generator.state = saved["numpy_rng"]
        torch.set_rng_state(saved["torch_rng"])
        state = {k: saved[k] for k in ("step", "windows_drawn", "log", "seconds")}
        log(f"resumed {checkpoint} at step {state['step']}")
    train_mode(model, recipe.dropout)

    def save() -> None:
        save_atomic({"model": model.state_dict(), "optimizer": optimiser.state_dict(),
                     "numpy_rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
                     "recipe": asdict(recipe), "data": data_recipe, **state}, checkpoint)  # fmt: skip

    done_here = 0
    while state["step"] < recipe.steps and (stop_after is None or done_here < stop_after):
        frames, one, many = draw(tracks, rng, recipe)
        if recipe.negatives:
            extra = draw(list(negatives), rng, recipe, recipe.negatives)
            frames, one, many = (torch.cat(pair) for pair in zip((frames, one, many), extra))
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        optimiser.zero_grad(set_to_none=True)
        loss, one_loss, many_loss, negative_hits = loss_of(model, frames, one, many, recipe)
        loss.backward()
        for p in model.parameters():
            if p.grad is not None:
                torch.nan_to_num_(p.grad, nan=0.0, posinf=0.0, neginf=0.0)
        norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip))
        optimiser.step()
        wall, cpu = time.perf_counter() - start_wall, time.process_time() - start_cpu
        state["step"] += 1
        state["windows_drawn"] += recipe.batch + recipe.negatives
        state["seconds"] += wall
        state["log"].append({"step": state["step"], "loss": round(loss.item(), 5), "one": round(one_loss, 5),
                             "many": round(many_loss, 5), "grad_norm": round(norm, 3), "wall_s": round(wall, 2),
                             "cpu_s": round(cpu, 2), "load": round(os.getloadavg()[0], 2),
                             **({"negative_hits": negative_hits} if recipe.negatives else {})})  # fmt: skip
        done_here += 1
        log(f"step {state['step']}/{recipe.steps} loss {loss.item():.4f} (single {one_loss:.4f}, many {many_loss:.4f}) "
            f"|g| {norm:.2f} {(recipe.batch + recipe.negatives) * recipe.window / wall:.1f} frames/s"
            + (f"; negative frames > 0.3: {negative_hits}" if recipe.negatives else ""))
        if state["step"] % checkpoint_every == 0:
            save()
    save()
    if state["step"] >= recipe.steps:
        export(out, model, recipe, data_recipe, state)
    return state


def _plain(value):
    return list(value) if isinstance(value, (tuple, list)) else value


def export(out: Path, model: TransNetV2, recipe: Recipe, data_recipe: dict, state: dict) -> Path:
    """The weights (a state dict the loader reads strictly) and the JSON beside them."""
    model.eval()
    weights = out / WEIGHTS
    save_atomic({k: v.detach().clone() for k, v in model.state_dict().items()}, weights)
    frames = state["step"] * (recipe.batch + recipe.negatives) * recipe.window
    info = json.loads(weights.with_suffix(".json").read_text()) if weights.with_suffix(".json").is_file() else {}
    info.update({
        "recipe": asdict(recipe), "data": data_recipe, "steps": state["step"], "windows": state["windows_drawn"],
        "training_frames_per_s": round(frames / state["seconds"], 2) if state["seconds"] else None,
        "cpu": _cpu_name(), "threads": torch.get_num_threads(),
        "load_average_mean": round(float(np.mean([e["load"] for e in state["log"]])), 2) if state["log"] else None,
        "loss_log": state["log"],
    })  # fmt: skip
    weights.with_suffix(".json").write_text(json.dumps(info, indent=1))
    return weights


def _cpu_name() -> str:
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown CPU"
    return next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "?")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    defaults = Recipe()
    parser.add_argument("--out", type=Path, required=True, help="checkpoint and weights folder (resumed if there)")
    parser.add_argument("--media", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "curate-train-transnet")
    parser.add_argument("--data", type=Path, default=None, help="an .npz of windows instead of the rendered edits")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(defaults.seeds))
    for f in fields(Recipe):
        if f.name not in ("seeds", "data") and f.type in ("int", "float", "str"):
            parser.add_argument(f"--{f.name.replace('_', '-')}", type={"int": int, "float": float, "str": str}[f.type],
                                default=getattr(defaults, f.name))  # fmt: skip
    parser.add_argument("--checkpoint-every", type=int, default=5)
    parser.add_argument("--stop-after", type=int, default=None, help="stop after this many steps of this run")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: kind to a shared machine)")
    parser.add_argument("--scores", type=Path, default=None, help="add this JSON object to the weights' JSON, stop")
    parser.add_argument("--check", default=None, help="weights (.pth, checkpoint.pt or 'package'): print their cuts "
                        "on held-out tuning-part footage (held_out_footage) and stop")  # fmt: skip
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    if args.check is not None:
        print(json.dumps(check(DEFAULT_TRANSNETV2 if args.check == "package" else args.check, args.media,
                               args.window)))  # fmt: skip
        return

    if args.scores is not None:
        meta = args.out / Path(WEIGHTS).with_suffix(".json")
        info = json.loads(meta.read_text())
        info["scores"] = json.loads(args.scores.read_text())
        meta.write_text(json.dumps(info, indent=1))
        return
    values = {f.name: getattr(args, f.name) for f in fields(Recipe) if f.name not in ("seeds", "data")}
    recipe = Recipe(**values, seeds=tuple(args.seeds) if args.data is None else (),
                    data=str(args.data) if args.data is not None else "")  # fmt: skip
    if args.data is not None:
        tracks, data_recipe = npz_tracks(args.data)
    else:
        tracks, data_recipe = rendered_tracks(args.media, recipe.seeds, recipe.many_cap)
    negatives = []
    if recipe.negatives:
        negatives, data_recipe["negatives"] = negative_tracks(args.media, recipe.window)
        print(f"{len(negatives)} uncut real shots, {data_recipe['negatives']['frames']} frames, as hard negatives")
    print(f"{len(tracks)} training videos, {sum(len(t.frames) for t in tracks)} frames; CPU {_cpu_name()}; "
          f"{torch.get_num_threads()} thread(s); load {os.getloadavg()[0]:.2f}", flush=True)
    train(args.out, tracks, recipe, data_recipe, stop_after=args.stop_after, checkpoint_every=args.checkpoint_every,
          log=lambda line: print(line, flush=True), negatives=negatives)  # fmt: skip


if __name__ == "__main__":
    main()
