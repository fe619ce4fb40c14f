"""What one source yields when read: typed rows for a canonical table plus its quarantine.

A parser turns files into a :class:`Batch`; the warehouse loader takes batches and nothing else,
so every source, whatever its format, reaches the warehouse in the same shape and with the same
honest account of its rows: ``rows_read == rows_loaded + rows_quarantined + rows_duplicate``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

__all__ = ["Batch", "QuarantineRow", "quarantine_table"]


@dataclass(frozen=True, slots=True)
class QuarantineRow:
    """A row that could not be used, with where it came from and why."""

    source: str
    source_file: str
    source_line: int
    field: str
    reason: str
    raw: str


@dataclass
class Batch:
    """Rows of one source, ready to load into the canonical table ``table``.

    ``rows`` has exactly the canonical table's columns (see ``warehouse.schema``), typed.
    ``rows_read`` counts records in the files (CSV rows, xAPI statements), ``rows_loaded`` the
    records that made it into ``rows`` (a Group statement is one record but several rows),
    ``rows_duplicate`` records delivered more than once and counted once.
    """

    source: str
    table: str
    rows: pa.Table
    rows_read: int
    rows_loaded: int
    quarantine: list[QuarantineRow] = field(default_factory=list)
    rows_duplicate: int = 0
    files: int = 1
    notes: list[str] = field(default_factory=list)

    @property
    def rows_quarantined(self) -> int:
        """Records put in quarantine (one record may have several faults; it counts once)."""
        return len({(q.source_file, q.source_line) for q in self.quarantine if q.source_line > 0})


def quarantine_table(rows: list[QuarantineRow]) -> pa.Table:
    """Quarantine rows as an Arrow table with the ``quarantine`` table's columns."""
    return pa.table(
        {
            "source": pa.array([r.source for r in rows], pa.string()),
            "source_file": pa.array([r.source_file for r in rows], pa.string()),
            "source_line": pa.array([r.source_line for r in rows], pa.int64()),
            "field": pa.array([r.field for r in rows], pa.string()),
            "reason": pa.array([r.reason for r in rows], pa.string()),
            "raw": pa.array([r.raw for r in rows], pa.string()),
        }
    )
