"""The sweep directory on disk: results.jsonl, per-trial locks, the manifest.

Layout of a sweep directory `out/`:
  out/sweep.json            the manifest: the resolved trials (written by `run`)
  out/results.jsonl         one run record per finished trial, append-only
  out/results.jsonl.lock    flock'ed around every append
  out/trials/<run_id>/      the trial's workdir (checkpoints, metrics, summary.json)
  out/trials/<run_id>/lock  the pid of the process running the trial
  out/trials/<run_id>/attempts.json  crashed attempts so far

Crash safety: an append is one `os.write` of a whole line on an O_APPEND file
descriptor, then fsync, under an exclusive flock; a process killed mid-write can
leave at most a half line at the end, which `read_results` ignores (and the next
append starts on a fresh line, so it never glues onto it).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
from collections.abc import Iterator
from typing import Any

from attn_jax.jsonio import write_json_atomic  # noqa: F401  (re-exported)

RESULTS = "results.jsonl"
MANIFEST = "sweep.json"
TERMINAL = ("done", "diverged", "failed")  # a record with these ends the trial


def trial_dir(out: str, run_id: str) -> str:
    return os.path.join(out, "trials", run_id)


def read_json(path: str, default: Any = None) -> Any:
    try:
        with open(path) as f:
            return json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        return default


@contextlib.contextmanager
def _flocked(path: str) -> Iterator[None]:
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def append_result(out: str, record: dict[str, Any]) -> None:
    """Appends one record as one line, atomically with respect to crashes and peers."""
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, RESULTS)
    line = json.dumps(record, sort_keys=True, default=str).encode() + b"\n"
    with _flocked(path + ".lock"):
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            # A crash mid-write may have left a half line: start on a fresh one.
            size = os.fstat(fd).st_size
            if size:
                with open(path, "rb") as f:
                    f.seek(size - 1)
                    if f.read(1) != b"\n":
                        line = b"\n" + line
            written = os.write(fd, line)
            if written != len(line):  # a regular file takes it whole or raises
                raise OSError(errno.EIO, f"short write to {path}")
            os.fsync(fd)
        finally:
            os.close(fd)


def read_results(out: str) -> list[dict[str, Any]]:
    """All complete records in file order; a torn or corrupt line is skipped."""
    path = os.path.join(out, RESULTS)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    records = []
    for raw in data.split(b"\n"):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue  # a half-written line from a crash
        if isinstance(record, dict) and "run_id" in record:
            records.append(record)
    return records


def latest_results(out: str) -> dict[str, dict[str, Any]]:
    """run_id -> its last record (a retried failure is superseded by its rerun)."""
    return {r["run_id"]: r for r in read_results(out)}


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state first), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[-1].split()
    except OSError:
        return None


def _start_time(pid: int) -> str | None:
    stat = _proc_stat(pid)
    return stat[19] if stat and len(stat) > 19 else None  # field 22: starttime


def pid_alive(pid: int, start_time: str | None = None) -> bool:
    """Whether `pid` runs (and, given its start time, is the same process, not a reuse)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    stat = _proc_stat(pid)
    if stat is None:
        return True  # no /proc: trust kill(0)
    if stat and stat[0] == "Z":
        return False  # a killed child not yet reaped holds nothing
    return start_time is None or _start_time(pid) == start_time


def _read_lock(path: str) -> tuple[int, str | None] | None:
    try:
        with open(path) as f:
            parts = f.read().split()
        return int(parts[0]), (parts[1] if len(parts) > 1 else None)
    except (FileNotFoundError, ValueError, IndexError):
        return None


def lock_owner(path: str) -> int | None:
    """The live pid holding a lock file, or None if it is free or stale."""
    owner = _read_lock(path)
    if owner is None or not pid_alive(*owner):
        return None
    return owner[0]


class TrialLock:
    """A lock file holding the owner's pid; a dead owner's lock is taken over.

    Creation is `O_CREAT | O_EXCL`, so two processes can't both create it; a
    takeover of a stale lock happens under a directory flock, so two processes
    can't both take over the same stale lock.
    """

    def __init__(self, path: str):
        self.path = path
        self.held = False

    def acquire(self) -> bool:
        """Takes the lock; False if a live process holds it."""
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        with _flocked(self.path + ".guard"):
            owner = lock_owner(self.path)
            if owner is not None and owner != os.getpid():
                return False
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            try:
                os.write(fd, f"{os.getpid()} {_start_time(os.getpid()) or ''}\n".encode())
                os.fsync(fd)
            finally:
                os.close(fd)
        self.held = True
        return True

    def release(self) -> None:
        if not self.held:
            return
        with _flocked(self.path + ".guard"):
            owner = _read_lock(self.path)
            if owner is not None and owner[0] == os.getpid():
                os.unlink(self.path)
        self.held = False

    def __enter__(self) -> TrialLock:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def running_pid(out: str, run_id: str) -> int | None:
    """The live pid running a trial, or None."""
    return lock_owner(os.path.join(trial_dir(out, run_id), "lock"))
