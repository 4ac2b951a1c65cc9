"""One run per home and resume key at a time: an exclusive ``fcntl.flock`` on ``<home>/locks/<key>.lock``.

Two identical runs on one home would otherwise resume into one MLflow run and may register twice. The lock is
held by an open file descriptor, so the kernel releases it when the process dies (a ``kill -9`` leaves no stale
lock behind). ``flock`` is advisory and local: on NFS it needs a server with lock support, and it does not
coordinate runs on different machines (a server deployment runs one flow run per deployment at a time instead).
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path


class RunBusy(RuntimeError):
    """Another process holds the lock of the same home and resume key."""


@contextlib.contextmanager
def run_lock(home: Path, key: str, wait_s: float = 0.0, poll_s: float = 0.5) -> Iterator[Path]:
    """Hold the lock of ``key`` under ``home`` for the block; wait up to ``wait_s`` seconds for a holder to finish,
    then raise ``RunBusy`` in one line naming the holder's process id."""
    import fcntl

    folder = Path(home) / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
                    raise RunBusy(f"an identical run (process {holder}) is already running on {home}; wait for it "
                                  "to finish, or change the config to start a different run") from None
                time.sleep(poll_s)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the lock
