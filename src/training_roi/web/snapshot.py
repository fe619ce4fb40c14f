"""The warehouse as the server reads it: a private copy, swapped for a fresh one after each load.

DuckDB lets one process write a database file, and while it writes no other process may open
it, not even to read. The server therefore never reads the warehouse itself: it reads a copy (a
snapshot) taken while no load was running, and keeps serving from that copy while an ingest or a
sync writes. Every few seconds a request looks at the warehouse file; when nothing is writing it
(it opens read-only) and it has changed since the copy (the file or its write-ahead log), it is
copied under that read-only connection's lock, the copy opened and swapped in: requests already running
finish on the old snapshot, new ones get the new one. A load that starts during the copy waits for
it (:func:`training_roi.warehouse.connection.connect` retries a locked file).

A study run from the server reads one snapshot for minutes: it holds it (:meth:`Snapshots.held`), and
a held snapshot is closed and deleted only once its holder lets go, however many loads came since.

Each request reads through its own cursor of the snapshot's one DuckDB database (a cursor is a
connection of its own, safe to use from the request's thread), wrapped as an Ibis backend so the
product's measurement code runs on it unchanged.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import ibis
from ibis.backends import BaseBackend

from training_roi.errors import WarehouseError

__all__ = ["Snapshot", "Snapshots"]

KEEP = 2
"""Snapshots kept open: the current one and the one before it, which requests may still be reading."""


@dataclass(frozen=True)
class Snapshot:
    """One copy of the warehouse, open for reading."""

    path: Path
    taken: datetime
    """When the copy was made (UTC)."""
    source_modified: datetime
    """When the warehouse file had last been written, as the copy holds it (UTC)."""
    database: duckdb.DuckDBPyConnection

    def backend(self) -> BaseBackend:
        """An Ibis backend on a cursor of its own: one per request, safe from the request's thread."""
        return ibis.duckdb.from_connection(self.database.cursor())

    def sql(self, query: str, parameters: list[object] | None = None) -> list[tuple[object, ...]]:
        """Rows of a query on a cursor of its own."""
        with self.database.cursor() as cursor:
            return cursor.execute(query, parameters or []).fetchall()


def _stamp(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class Snapshots:
    """The current snapshot of the warehouse ``db``, refreshed when the file changes (see the module docstring).

    Parameters
    ----------
    db
        The warehouse file.
    folder
        Where the copies go (created; the server's state folder). Old copies are deleted.
    every
        Seconds between two looks at the warehouse file.
    clock
        Monotonic seconds (a test passes its own).
    on_new
        Called with the old snapshot's path and the new snapshot before the new one is swapped in:
        the server recomputes there what readers asked of the old one (:func:`training_roi.web.memo.warm`).
    background
        Look and copy in a thread of their own, so that no request waits for a copy (True), or in
        the request that finds the last look ``every`` seconds old.
    """

    def __init__(self, db: Path, folder: Path, *, every: float = 5.0,
                 clock: Callable[[], float] = time.monotonic,
                 on_new: Callable[[str, Snapshot], object] | None = None, background: bool = True) -> None:
        if not db.is_file():
            raise WarehouseError(f"no warehouse at {db}: run `training-roi ingest DATA_DIR --db {db}` first")
        self.db, self.folder, self.every, self.clock = db, folder, every, clock
        self.on_new, self.background = on_new, background
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._open: list[Snapshot] = []
        self._holders: dict[Path, int] = {}
        self._released: list[Snapshot] = []  # out of the list while held: closed when let go
        self._looked = float("-inf")
        self.busy_since: datetime | None = None
        """Since when a load has been writing the warehouse, as last seen (None when it is quiet)."""
        for stale in self.folder.glob("snapshot-*.duckdb*"):  # left by a server that was killed
            stale.unlink(missing_ok=True)
        if not self.refresh(force=True):
            raise WarehouseError(f"the warehouse {db} is being written by another process (an ingest or a sync): "
                                 "start the server again when it has finished")

    def current(self) -> Snapshot:
        """The snapshot to read, after a look at the warehouse when the last one is ``every`` seconds old."""
        if not self._open:  # closed when the application stopped, and asked again (it started anew)
            self.refresh(force=True)
        if self.clock() - self._looked >= self.every:
            if self.background:
                self._looked = self.clock()  # one look at a time, not one thread per request
                threading.Thread(target=self.refresh, name="warehouse snapshot", daemon=True).start()
            else:
                self.refresh()
        return self._open[-1]

    def _written(self) -> datetime:
        """When the warehouse was last written: its file's or its write-ahead log's time, the later."""
        wal = Path(f"{self.db}.wal")
        return _stamp(max(self.db.stat().st_mtime, wal.stat().st_mtime if wal.exists() else 0.0))

    def refresh(self, *, force: bool = False) -> bool:
        """Copy the warehouse if it changed and nothing writes it; True when a new snapshot was swapped in.

        While another request is copying, this one does not wait for it: it reads the snapshot there is.
        """
        if not self._lock.acquire(blocking=force or not self._open):
            return False
        try:
            return self._refresh(force)
        finally:
            self._lock.release()

    def _refresh(self, force: bool) -> bool:
        """The refresh itself, under the lock."""
        self._looked = self.clock()
        target = self.folder / f"snapshot-{time.time_ns()}.duckdb"
        try:
            # The read-only connection holds DuckDB's shared lock: it fails while a load writes, and
            # no load starts writing until the copy is made.
            with duckdb.connect(str(self.db), read_only=True):
                modified = self._written()
                if not force and self._open and modified == self._open[-1].source_modified:
                    self.busy_since = None
                    return False
                shutil.copyfile(self.db, target)
                wal = Path(f"{self.db}.wal")
                if wal.exists():  # changes not yet checkpointed (a load that was stopped): part of the data
                    shutil.copyfile(wal, Path(f"{target}.wal"))
        except (duckdb.Error, OSError):
            self.busy_since = self.busy_since or datetime.now(UTC)
            target.unlink(missing_ok=True)
            Path(f"{target}.wal").unlink(missing_ok=True)
            return False
        self.busy_since = None
        # The figures are recomputed on the new copy with one of DuckDB's threads, so that the requests
        # answered meanwhile from the old one keep the rest of the machine; all of them once it is swapped in.
        snapshot = Snapshot(target, datetime.now(UTC), modified, duckdb.connect(str(target), config={"threads": 1}))
        if self._open and self.on_new is not None:
            self.on_new(str(self._open[-1].path), snapshot)
        snapshot.database.execute("RESET threads")
        self._open.append(snapshot)
        while len(self._open) > KEEP:
            old = self._open.pop(0)
            if self._holders.get(old.path):
                self._released.append(old)
            else:
                _discard(old)
        return True

    @contextmanager
    def held(self) -> Iterator[Snapshot]:
        """The current snapshot, kept open until the block ends even if newer ones replace it (a study's run)."""
        while True:
            snapshot = self.current()
            with self._lock:
                if any(s is snapshot for s in self._open):  # not dropped between the look and the lock
                    self._holders[snapshot.path] = self._holders.get(snapshot.path, 0) + 1
                    break
        try:
            yield snapshot
        finally:
            with self._lock:
                self._holders[snapshot.path] -= 1
                if not self._holders[snapshot.path]:
                    del self._holders[snapshot.path]
                    if any(s is snapshot for s in self._released):
                        self._released = [s for s in self._released if s is not snapshot]
                        _discard(snapshot)

    def close(self) -> None:
        """Close every snapshot and delete its copy (a held one when its holder lets go)."""
        with self._lock:
            for old in self._open:
                if self._holders.get(old.path):  # a run still reads it: closed when the run lets go
                    self._released.append(old)
                else:
                    _discard(old)
            self._open.clear()


def _discard(snapshot: Snapshot) -> None:
    """Close a snapshot and delete its copy."""
    snapshot.database.close()
    snapshot.path.unlink(missing_ok=True)
    Path(f"{snapshot.path}.wal").unlink(missing_ok=True)
