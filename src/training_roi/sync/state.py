"""The sync's own records in the warehouse: each source's watermark (``sync_state``) and run log (``sync_run``).

Both are small tables written with the same merge by key as every other table. A run is recorded
as started before anything is fetched, so a sync killed half-way leaves a row that says so; its
end rewrites the same row (same run id and source) with the outcome.

``sync_state`` also holds one row that is no source's, :data:`LINKS`: set before a load that may change
the tables the learner links are made from, and cleared once the links are made again, so a sync or
ingest stopped between its load and its linking leaves the next sync knowing the links are stale.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
import pyarrow as pa
from ibis.backends import BaseBackend

from training_roi.warehouse.load import upsert
from training_roi.warehouse.quality import RUN_STARTED
from training_roi.warehouse.schema import table

__all__ = [
    "LINKS", "RunRecord", "Watermark", "links_stale", "mark_links", "read_watermark", "record_run", "save_watermark",
]

LINKS = "(links)"
"""The ``sync_state`` row that says whether the learner links lag their inputs (no source's name can be this)."""
_STALE = "stale"


@dataclass
class Watermark:
    """How far a source is loaded: the latest stored time, and the records stored just before it."""

    endpoint: str | None = None
    stored: datetime | None = None
    recent: list[list[str]] = field(default_factory=list)


@dataclass
class RunRecord:
    """One source's account in one sync, as ``sync_run`` keeps it."""

    run_id: str
    source: str
    kind: str
    endpoint: str
    started: datetime
    finished: datetime | None = None
    status: str = RUN_STARTED
    pages: int = 0
    statements: int = 0
    loaded: int = 0
    quarantined: int = 0
    error: str | None = None


def _rows(name: str, rows: list[dict[str, object]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=table(name).schema.to_pyarrow())


def read_watermark(con: BaseBackend, source: str) -> Watermark:
    """The source's watermark, or an empty one when it was never loaded."""
    t = con.table("sync_state")
    rows = t.filter(t.source == source).to_pyarrow().to_pylist()
    if not rows:
        return Watermark()
    row = rows[0]
    stored = row["watermark"]
    recent = orjson.loads(row["overlap_ids"]) if row["overlap_ids"] else []
    return Watermark(row["endpoint"], stored.astimezone(UTC) if stored is not None else None, recent)


def save_watermark(con: BaseBackend, source: str, kind: str, mark: Watermark) -> None:
    """Record the source's watermark (replacing the one before)."""
    rows = _rows("sync_state", [{
        "source": source, "kind": kind, "endpoint": mark.endpoint, "watermark": mark.stored,
        "overlap_ids": orjson.dumps(mark.recent).decode(), "updated_at": datetime.now(UTC),
    }])
    upsert(con, "sync_state", rows)


def record_run(con: BaseBackend, run: RunRecord) -> None:
    """Write the run's row (a later call for the same run and source replaces it)."""
    rows = _rows("sync_run", [{
        "run_id": run.run_id, "source": run.source, "kind": run.kind, "endpoint": run.endpoint,
        "started": run.started, "finished": run.finished, "status": run.status, "pages": run.pages,
        "statements": run.statements, "loaded": run.loaded, "quarantined": run.quarantined, "error": run.error,
    }])
    upsert(con, "sync_run", rows)


def links_stale(con: BaseBackend) -> bool:
    """Whether a load may have changed the links' input tables since the links were last made."""
    t = con.table("sync_state")
    return bool(t.filter((t.source == LINKS) & (t.endpoint == _STALE)).count().to_pyarrow().as_py())


def mark_links(con: BaseBackend, *, stale: bool) -> None:
    """Say that the links are stale (before a load that may change their inputs) or current (once made)."""
    rows = _rows("sync_state", [{
        "source": LINKS, "kind": "links", "endpoint": _STALE if stale else "current", "watermark": None,
        "overlap_ids": None, "updated_at": None,  # no watermark moves: the row is the same whoever sets it
    }])
    upsert(con, "sync_state", rows)
