"""The warehouse's lock: a file beside it, so two syncs or pushes of one warehouse never run at once.

The lock is the operating system's (``flock`` on POSIX, ``msvcrt.locking`` on Windows): it goes
with the process that holds it, even when that process is killed, so no stale lock is left to
clear by hand. The holder writes what it is doing and who it is (a sync or a push, process id, host,
since when) into the file, and a sync or push that finds the lock taken says so in its error.
"""

from __future__ import annotations

import os
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from training_roi.errors import SyncLocked

__all__ = ["SyncLock"]


class SyncLock:
    """An exclusive, non-blocking lock on ``path``, held for ``what`` (``sync``, ``push``); a context manager."""

    def __init__(self, path: Path, what: str = "sync") -> None:
        self.path = path
        self.what = what
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise :class:`SyncLocked` naming who holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _lock(fd)
        except OSError:
            os.lseek(fd, 0, os.SEEK_SET)
            holder = os.read(fd, 512).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            doing, _, who = holder.partition(": ")
            if doing not in ("sync", "push"):
                doing, who = "sync or push", holder
            raise SyncLocked(f"another {doing} of this warehouse is running ({who}; lock {self.path}): "
                             "wait for it to end, or stop it") from None
        os.ftruncate(fd, 0)
        who = (f"{self.what}: pid {os.getpid()} on {socket.gethostname()}, "
               f"since {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC")
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, who.encode())
        self._fd = fd

    def release(self) -> None:
        """Let the lock go (closing the file releases it)."""
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> SyncLock:
        self.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


def _lock(fd: int) -> None:
    """Lock ``fd`` exclusively without waiting; OSError when it is held."""
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        import msvcrt

        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
