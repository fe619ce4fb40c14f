"""What a warehouse offers a study: its programs and their evidence, cost-line programs, teams and dates.

The starter study (``training-roi init-study``) lists these beside the settings that name them;
reading them is measuring the warehouse, so it happens here, in the one stage that reads facts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import ibis
from ibis.backends import BaseBackend

from training_roi.measure.programs import ProgramCandidate, program_candidates

__all__ = ["Offer", "warehouse_offer"]


@dataclass(frozen=True)
class Offer:
    """What the warehouse holds that a study's settings name (empty where a table is missing)."""

    candidates: list[ProgramCandidate]
    """Every program the warehouse holds (and every course no program claims), best evidence first."""
    programs: list[tuple[str, int]]
    """Program names of the cost lines, with their counts, most common first."""
    departments: list[tuple[str, int]]
    titles: list[tuple[str, int]]
    close_range: tuple[date, date] | None
    """The first and last close date of the opportunities."""


def warehouse_offer(con: BaseBackend) -> Offer:
    """What ``con`` holds for a study to choose from; missing tables count as empty."""
    tables = set(con.list_tables())
    return Offer(
        candidates=program_candidates(con),
        programs=_distinct(con, "cost_line", "program") if "cost_line" in tables else [],
        departments=_distinct(con, "crm_user", "department") if "crm_user" in tables else [],
        titles=_distinct(con, "crm_user", "title") if "crm_user" in tables else [],
        close_range=_close_range(con) if "crm_opportunity" in tables else None,
    )


def _distinct(con: BaseBackend, table: str, column: str) -> list[tuple[str, int]]:
    """Non-empty values of a column with their counts, most common first."""
    t = con.table(table)
    col = t[column]
    kept = t.filter(col.notnull() & (col.strip() != ""))
    counts = kept.group_by(column).aggregate(n=kept.count()).order_by([ibis.desc("n"), column])
    return [(str(r[column]), int(r["n"])) for r in counts.to_pyarrow().to_pylist()]


def _close_range(con: BaseBackend) -> tuple[date, date] | None:
    o = con.table("crm_opportunity")
    row = o.aggregate(lo=o.close_date.min(), hi=o.close_date.max()).to_pyarrow().to_pylist()[0]
    if row["lo"] is None or row["hi"] is None:
        return None
    return row["lo"], row["hi"]
