"""The run lock: one ``curate run`` at a time writes a run folder.

    from curate.runlock import RunLock
    with RunLock("runs/demo"):                 # RunLockHeld if a live run holds it; a dead run's lock is taken over
        run_pipeline(steps, "runs/demo", client)

``RUN/run.lock`` names its holder (host, pid, start time, command) and is created whole (written to a temporary
file, then hard-linked to its name, which fails if the name exists), so a reader never sees half of it. Its
modification time is the holder's heartbeat: a background thread touches it every ``HEARTBEAT_S`` seconds. A lock
is stale, and the next run takes it over with a message, when its process is gone (same host) or its heartbeat is
older than ``STALE_AFTER_S`` (another host, or a process that hangs). The lock is removed when the run ends,
failed or not; a run killed with SIGKILL leaves it, stale. Readers (``curate status``, ``rejects``, ``inspect``)
take no lock: every file of a run is written atomically, so they may read a run while it runs.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from curate.errors import CurateError

LOCK_FILE = "run.lock"
HEARTBEAT_S = 5.0
STALE_AFTER_S = 60.0


class RunLockHeld(CurateError):
    """Another live run holds the folder's lock; the message names it."""


@dataclass(frozen=True)
class Holder:
    """What a lock file says about the run that holds it."""

    host: str
    pid: int
    started: str
    command: str
    token: str

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}, started {self.started}"


def read_holder(path: Path) -> Holder | None:
    """The holder a lock file names; None when there is no lock file or it cannot be read as one."""
    try:
        data = json.loads(Path(path).read_text())
        return Holder(str(data["host"]), int(data["pid"]), str(data["started"]), str(data.get("command", "")),
                      str(data["token"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class RunLock:
    """Hold ``RUN/run.lock`` while a run writes ``RUN`` (a context manager; ``acquire``/``release`` too)."""

    def __init__(self, run: str | os.PathLike, *, stale_after_s: float = STALE_AFTER_S,
                 heartbeat_s: float = HEARTBEAT_S):
        self.path = Path(run) / LOCK_FILE
        self.stale_after_s = stale_after_s
        self.heartbeat_s = heartbeat_s
        self.holder = Holder(socket.gethostname(), os.getpid(), time.strftime("%Y-%m-%d %H:%M:%S %z"),
                             " ".join(sys.argv), uuid.uuid4().hex)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- taking and giving back
    def acquire(self) -> None:
        """Take the lock, taking over a stale one (with a message on stderr); ``RunLockHeld`` if a live run has it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(5):  # another run may take or give back the lock between our steps: look again
            if self._create():
                self._start_heartbeat()
                return
            other = read_holder(self.path)
            if other is not None and (other.host, other.pid) == (self.holder.host, self.holder.pid):
                return  # this process holds it already (the CLI takes it before its cluster, run_pipeline again)
            why = self.stale_reason(other)
            if why is None:
                raise RunLockHeld(
                    f"{self.path.parent} is in use by another curate run ({other.describe()}; its heartbeat is "
                    f"{self._age():.0f} s old); wait for it to finish or stop it. A lock whose run was killed is "
                    f"taken over by the next run (after {self.stale_after_s:.0f} s without a heartbeat at most)"
                    if other is not None else f"{self.path.parent} is in use by another curate run ({self.path})"
                )
            if self._take_over(other):
                whose = other.describe() if other is not None else "an unreadable lock file"
                print(f"curate: taking over the lock of {self.path.parent} from {whose}: {why}", file=sys.stderr)
        raise RunLockHeld(f"{self.path.parent}: could not take its lock ({self.path}); another run keeps taking it")

    def release(self) -> None:
        """Stop the heartbeat and remove the lock file if it is still this run's."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        current = read_holder(self.path)
        if current is not None and current.token == self.holder.token:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    # -- what a lock file says
    def stale_reason(self, other: Holder | None) -> str | None:
        """Why the lock held by ``other`` is stale, or None when its run is alive."""
        age = self._age()
        if age is None:
            return "it was just removed"
        if other is None:
            # unreadable: created whole, so not one of ours being written; judged by its age alone
            return f"the lock file cannot be read and is {age:.0f} s old" if age > self.stale_after_s else None
        if other.host == self.holder.host and not _process_alive(other.pid):
            return f"process {other.pid} is gone"
        if age > self.stale_after_s:
            return f"no heartbeat for {age:.0f} s"
        return None

    def _age(self) -> float | None:
        try:
            return time.time() - self.path.stat().st_mtime
        except FileNotFoundError:
            return None

    # -- file operations
    def _create(self) -> bool:
        """Create the lock file, whole, if no lock file exists; whether it was created."""
        tmp = self.path.with_name(f".{LOCK_FILE}.{self.holder.token}.tmp")
        data = {"host": self.holder.host, "pid": self.holder.pid, "started": self.holder.started,
                "command": self.holder.command, "token": self.holder.token}
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        try:
            os.link(tmp, self.path)
            return True
        except FileExistsError:
            return False
        finally:
            tmp.unlink(missing_ok=True)

    def _take_over(self, stale: Holder | None) -> bool:
        """Move the stale lock file aside, if it is still the one judged stale; whether it was."""
        aside = self.path.with_name(f".{LOCK_FILE}.{self.holder.token}.stale")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return False  # another run took it over first, or its run just ended
        moved = read_holder(aside)
        same = moved is None if stale is None else (moved is not None and moved.token == stale.token)
        if not same:
            # a run took the lock over between our look and the move: give its lock back
            try:
                os.link(aside, self.path)
            except FileExistsError:
                pass
            aside.unlink(missing_ok=True)
            return False
        aside.unlink(missing_ok=True)
        return True

    def _start_heartbeat(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, name="curate-run-lock", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            current = read_holder(self.path)
            if current is None or current.token != self.holder.token:
                print(f"curate: warning: the lock of {self.path.parent} is no longer this run's ("
                      f"{current.describe() if current else 'removed'}): another run may write this folder",
                      file=sys.stderr)
                return
            try:
                os.utime(self.path)
            except OSError:  # the filesystem is gone: the run itself will say so
                pass
