"""The run lock (one `curate run` per folder; a dead run's lock is taken over) and the run folder's temporary
files (removed when a write fails, and on relaunch)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from curate.rundir import atomic_write_bytes, remove_temp_files
from curate.runlock import LOCK_FILE, RunLock, RunLockHeld, read_holder

PROJECT_ROOT = Path(__file__).resolve().parents[1]
OFFLINE = str(PROJECT_ROOT / "configs" / "offline.yaml")
TEMP = ".part-00000.parquet.0123456789abcdef0123456789abcdef.tmp"  # what a killed atomic write leaves


def curate(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "curate", *args], capture_output=True, text=True, timeout=timeout)


def hold_lock(run: Path) -> subprocess.Popen:
    """Another process that holds the run's lock (as a running `curate run` does) until killed."""
    code = textwrap.dedent(f"""
        import time
        from curate.runlock import RunLock
        with RunLock({str(run)!r}):
            print("held", flush=True)
            time.sleep(600)
    """)
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def write_lock(run: Path, host: str, pid: int, age_s: float = 0.0, content: str | None = None) -> Path:
    run.mkdir(parents=True, exist_ok=True)
    path = run / LOCK_FILE
    path.write_text(content if content is not None else json.dumps(
        {"host": host, "pid": pid, "started": "2030-01-01 00:00:00 +0000", "command": "curate run", "token": "x"}))
    os.utime(path, (time.time() - age_s, time.time() - age_s))
    return path


@pytest.mark.slow
def test_a_run_on_a_folder_in_use_is_refused_and_a_killed_runs_lock_is_taken_over(video, tmp_path):
    run = tmp_path / "run"
    args = ["run", OFFLINE, "--input", str(video("psd_counter.mp4")), "--out", str(run), "--until", "ingest",
            "--workers", "1", "--no-progress"]
    holder = hold_lock(run)
    try:
        start = time.monotonic()
        refused = curate(*args)
        assert refused.returncode == 2 and time.monotonic() - start < 60  # at once: before any cluster starts
        (line,) = refused.stderr.splitlines()
        assert line.startswith(f"curate: error: {run} is in use by another curate run (pid {holder.pid} on "
                               f"{socket.gethostname()}, started 20")
        assert not (run / "00_inputs").exists()
    finally:
        holder.kill()
        holder.wait()

    # the holder was killed (SIGKILL: its lock file stays, stale); it left a temporary file too
    assert read_holder(run / LOCK_FILE).pid == holder.pid
    (run / "01_ingest" / "data").mkdir(parents=True)
    (run / "01_ingest" / "data" / TEMP).write_bytes(b"half a shard")
    (run / "notes.tmp").write_text("not curate's: kept")
    done = curate(*args)
    assert done.returncode == 0, done.stderr
    assert f"curate: taking over the lock of {run} from pid {holder.pid} on {socket.gethostname()}, started" in done.stderr
    assert f"process {holder.pid} is gone" in done.stderr
    assert f"curate: removed 1 temporary files an interrupted launch left in {run}" in done.stderr
    assert not (run / "01_ingest" / "data" / TEMP).exists() and (run / "notes.tmp").is_file()
    assert not (run / LOCK_FILE).exists()  # given back at the end
    assert sorted(p.name for p in (run / "01_ingest" / "data").iterdir()) == ["part-00000.parquet"]

    # readers take no lock: status and rejects read a run while another process holds it
    holder = hold_lock(run)
    try:
        status = curate("status", str(run))
        assert status.returncode == 0 and "01_ingest  done" in status.stdout
        assert curate("rejects", str(run)).returncode == 0
    finally:
        holder.kill()
        holder.wait()


def test_a_lock_without_heartbeat_is_stale_and_a_live_one_is_not(tmp_path, capsys):
    run = tmp_path / "run"
    write_lock(run, "elsewhere", 1, age_s=5)  # another host, heartbeat 5 s ago: alive
    with pytest.raises(RunLockHeld, match=r"in use by another curate run \(pid 1 on elsewhere, started 2030"):
        RunLock(run).acquire()
    write_lock(run, "elsewhere", 1, age_s=120)  # its heartbeat stopped two minutes ago
    with RunLock(run) as lock:
        assert read_holder(run / LOCK_FILE).token == lock.holder.token
    assert "from pid 1 on elsewhere, started 2030-01-01 00:00:00 +0000: no heartbeat for 120 s" in capsys.readouterr().err
    assert not (run / LOCK_FILE).exists()

    write_lock(run, "", 0, age_s=5, content="{not json")  # unreadable and recent: maybe being replaced, not stale
    with pytest.raises(RunLockHeld):
        RunLock(run).acquire()
    write_lock(run, "", 0, age_s=120, content="{not json")
    RunLock(run).acquire()
    assert "an unreadable lock file: the lock file cannot be read and is 120 s old" in capsys.readouterr().err


def test_the_heartbeat_refreshes_the_lock_and_release_keeps_a_lock_that_is_not_ours(tmp_path):
    run = tmp_path / "run"
    lock = RunLock(run, heartbeat_s=0.05)
    lock.acquire()
    try:
        os.utime(run / LOCK_FILE, (time.time() - 100, time.time() - 100))
        time.sleep(0.5)
        assert time.time() - (run / LOCK_FILE).stat().st_mtime < 5
    finally:
        lock.release()
    assert not (run / LOCK_FILE).exists()

    mine = RunLock(run, heartbeat_s=3600)
    mine.acquire()
    write_lock(run, "elsewhere", 7)  # taken over by another run (ours was judged dead)
    mine.release()
    assert read_holder(run / LOCK_FILE).host == "elsewhere"  # theirs stays


def test_a_write_that_fails_removes_its_temporary_file(tmp_path):
    """A real failed write: the file size limit (RLIMIT_FSIZE) makes the write fail as a full disk does."""
    code = textwrap.dedent(f"""
        import errno, resource
        from pathlib import Path
        import pyarrow as pa
        from curate.rundir import atomic_parquet_writer, atomic_write_bytes, atomic_write_parquet
        resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))
        folder = Path({str(tmp_path / "run")!r})
        big = pa.table({{"x": [str(i) * 50 for i in range(20_000)]}})

        def streamed():
            with atomic_parquet_writer(folder / "streamed.parquet", big.schema) as writer:
                for piece in big.to_batches(max_chunksize=1000):
                    writer.write_table(pa.Table.from_batches([piece]))

        for write in (lambda: atomic_write_bytes(folder / "big.bin", bytes(100_000)),
                      lambda: atomic_write_parquet(folder / "big.parquet", big), streamed):
            try:
                write()
                print("written")
            except OSError as e:
                print(errno.errorcode[e.errno])
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["EFBIG", "EFBIG", "EFBIG"], done.stderr
    assert list((tmp_path / "run").iterdir()) == []  # neither the files nor their temporary files

    atomic_write_bytes(tmp_path / "run" / "small.bin", b"ok")  # a write that fits is there, with no temp file
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["small.bin"]


def test_a_streamed_parquet_file_appears_whole_and_on_disk_or_not_at_all(tmp_path, monkeypatch):
    """``atomic_parquet_writer`` (split's kept frames, written video by video): while it writes, only a temporary
    file that a relaunch removes is there; the file appears at its name once complete, after an fsync."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from curate.rundir import TEMP_FILE, atomic_parquet_writer

    events = []
    fsync, replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append("rename"), replace(a, b))[1])
    folder = tmp_path / "run" / "frames"
    with atomic_parquet_writer(folder / "part-00000.parquet", pa.schema([("x", pa.int64())])) as writer:
        writer.write_table(pa.table({"x": [1, 2]}))
        (during,) = folder.iterdir()
        assert TEMP_FILE.fullmatch(during.name) and events == []
        writer.write_table(pa.table({"x": [3]}))
    assert events == ["fsync", "rename"]
    assert [p.name for p in folder.iterdir()] == ["part-00000.parquet"]
    assert pq.read_table(folder / "part-00000.parquet")["x"].to_pylist() == [1, 2, 3]

    with pytest.raises(KeyError):  # the block fails (split's scan raised): no file, no temporary file
        with atomic_parquet_writer(folder / "part-00001.parquet", pa.schema([("x", pa.int64())])) as writer:
            writer.write_table(pa.table({"x": [1]}))
            raise KeyError("the scan failed")
    assert [p.name for p in folder.iterdir()] == ["part-00000.parquet"]


def test_remove_temp_files_removes_only_curates(tmp_path):
    for name in (TEMP, ".stats.json.ffffffffffffffffffffffffffffffff.tmp", "notes.tmp", ".x.1234.tmp", "part.parquet"):
        (tmp_path / "a" / "b").mkdir(parents=True, exist_ok=True)
        (tmp_path / "a" / "b" / name).write_bytes(b"")
    assert remove_temp_files(tmp_path) == 2
    assert sorted(p.name for p in (tmp_path / "a" / "b").iterdir()) == [".x.1234.tmp", "notes.tmp", "part.parquet"]


def test_one_process_may_take_its_own_lock_again_and_only_the_outer_release_gives_it_back(tmp_path):
    """The CLI takes the lock before it starts a cluster, and ``run_pipeline`` (the library's entry) takes it again."""
    run = tmp_path / "run"
    with RunLock(run) as outer:
        with RunLock(run):
            assert read_holder(run / LOCK_FILE).token == outer.holder.token
        assert read_holder(run / LOCK_FILE).token == outer.holder.token  # the inner one gave nothing back
    assert not (run / LOCK_FILE).exists()
