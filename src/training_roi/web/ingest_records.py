"""The ingests sent to the server, as its state file keeps them: who sent which archive, how far it got, what it loaded.

One row per archive an admin sent (``POST /api/v1/ingests``, the page ``/admin/ingest``), in the
table ``ingests`` of the server's SQLite state (:class:`training_roi.web.store.Store`), created beside
the store's own tables when the server starts. A row goes ``queued`` → ``running`` → ``done`` or
``failed``, with its progress in words while it runs; once done it keeps the ingest's account as JSON
(:data:`Outcome`: per source, rows read, loaded, quarantined and duplicate, and the warnings and notes).
A row is set ``done`` only while it is ``running``, so an ingest marked failed when the server stopped is
never overwritten by an outcome that arrives after.

Writes go through the store's :meth:`~training_roi.web.store.Store.transaction` (the state file's write
lock); times are UTC, as ISO 8601 text of fixed width, so that their text order is their time order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from training_roi.web.store import Status, Store, status_change

__all__ = ["IngestRecord", "Outcome", "ensure_table", "fail_unfinished", "finish", "ingest", "ingests", "queue",
           "under_way", "update"]

Outcome = dict[str, Any]
"""An ingest's account once done: ``ok``, ``sources`` (each source's counts and status), ``warnings``, ``notes``."""

_TABLE = """
CREATE TABLE IF NOT EXISTS ingests (
    id INTEGER PRIMARY KEY,
    file TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    progress TEXT,
    error TEXT,
    outcome TEXT,
    sent_by TEXT,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    finished TEXT
)
"""
_COLUMNS = "id, file, bytes, status, progress, error, outcome, sent_by, created, updated, finished"


@dataclass(frozen=True)
class IngestRecord:
    """One archive sent to be ingested: its name and size, who sent it, its status, progress or error, its outcome."""

    id: int
    file: str
    bytes: int
    status: Status
    progress: str | None
    error: str | None
    outcome: Outcome | None
    sent_by: str | None
    created: datetime
    updated: datetime
    finished: datetime | None


def _stamp(store: Store) -> str:
    return store.now().astimezone(UTC).isoformat(timespec="microseconds")


def _record(row: Any) -> IngestRecord:
    return IngestRecord(id=row[0], file=row[1], bytes=row[2], status=cast(Status, row[3]), progress=row[4],
                        error=row[5], outcome=json.loads(row[6]) if row[6] else None, sent_by=row[7],
                        created=datetime.fromisoformat(row[8]), updated=datetime.fromisoformat(row[9]),
                        finished=datetime.fromisoformat(row[10]) if row[10] else None)


def ensure_table(store: Store) -> None:
    """Create the table of ingests in the state file when it has none (a state written before ingests existed)."""
    with store.transaction() as con:
        con.execute(_TABLE)


def queue(store: Store, file: str, size: int, sent_by: str | None, progress: str = "queued") -> IngestRecord:
    """A new ingest of the archive ``file`` (``size`` bytes), queued."""
    now = _stamp(store)
    with store.transaction() as con:
        cursor = con.execute(f"INSERT INTO ingests ({_COLUMNS}) VALUES (NULL, ?, ?, 'queued', ?, NULL, NULL, ?, ?, ?, "
                             "NULL)", (file, size, progress, sent_by, now, now))
        row = con.execute(f"SELECT {_COLUMNS} FROM ingests WHERE id = ?", (cursor.lastrowid,)).fetchone()
    return _record(row)


def update(store: Store, ingest_id: int, *, status: Status | None = None, progress: str | None = None,
           error: str | None = None) -> IngestRecord | None:
    """Record an ingest's progress, or its failure (``failed`` with ``error``); the ingest, None when unknown.

    A finished ingest (done or failed) is not changed again: the server may have marked it failed when
    it stopped while its process was still reporting.
    """
    changes, params = status_change(_stamp(store), status, progress=progress, error=error)
    with store.transaction() as con:
        con.execute(f"UPDATE ingests SET {changes} WHERE id = ? AND status IN ('queued', 'running')",
                    (*params, ingest_id))
    return ingest(store, ingest_id)


def finish(store: Store, ingest_id: int, outcome: Outcome, progress: str) -> IngestRecord | None:
    """A running ingest done, with its outcome; None (nothing written) when it is not running any more."""
    now = _stamp(store)
    with store.transaction() as con:
        cursor = con.execute("UPDATE ingests SET status = 'done', progress = ?, outcome = ?, updated = ?, finished = ? "
                             "WHERE id = ? AND status = 'running'",
                             (progress, json.dumps(outcome), now, now, ingest_id))
    return ingest(store, ingest_id) if cursor.rowcount == 1 else None


def fail_unfinished(store: Store, error: str) -> list[IngestRecord]:
    """Mark every ingest still queued or running as failed with ``error``; those ingests (a server that stopped)."""
    now = _stamp(store)
    with store.transaction() as con:
        ids = [r[0] for r in con.execute("SELECT id FROM ingests WHERE status IN ('queued', 'running') ORDER BY id")]
        con.execute("UPDATE ingests SET status = 'failed', error = ?, updated = ?, finished = ? "
                    "WHERE status IN ('queued', 'running')", (error, now, now))
    return [found for i in ids if (found := ingest(store, i)) is not None]


def ingest(store: Store, ingest_id: int) -> IngestRecord | None:
    """One ingest by its id, or None."""
    with store.transaction() as con:
        row = con.execute(f"SELECT {_COLUMNS} FROM ingests WHERE id = ?", (ingest_id,)).fetchone()
    return _record(row) if row else None


def ingests(store: Store, *, offset: int = 0, limit: int = 50) -> tuple[list[IngestRecord], int]:
    """A page of the ingests, newest first, and how many there are in all."""
    with store.transaction() as con:  # the page and its count from one state of the table
        rows = con.execute(f"SELECT {_COLUMNS} FROM ingests ORDER BY id DESC LIMIT ? OFFSET ?",
                           (limit, offset)).fetchall()
        total = con.execute("SELECT count(*) FROM ingests").fetchone()[0]
    return [_record(r) for r in rows], int(total)


def under_way(store: Store) -> list[IngestRecord]:
    """The ingests queued or running, oldest first."""
    with store.transaction() as con:
        rows = con.execute(f"SELECT {_COLUMNS} FROM ingests WHERE status IN ('queued', 'running') ORDER BY id")
        return [_record(r) for r in rows.fetchall()]
