"""When each unit was there to be trained and measured: its tenure in the data.

A rep hired in March has no revenue in January because they were not there, not because they
sold nothing; a rep who left in June sells nothing after it. Counting those months as zeros
lowers revenue per unit-month in whichever group has more joiners and leavers, and a comparison
rep who was not employed when the trained reps took the course could not have been trained. So
each unit's months count only while it was present:

* a rep is present from their hire — the CRM user's creation day, or their first deal if that is
  earlier — to the day after their last activity (a deal created or closed, a task or event) when
  the user is inactive, else to the end of the data;
* an account is present over the whole data (customers do not join a study's population by
  being hired, and their first purchase is an outcome, not a start).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

import ibis
from ibis.backends import BaseBackend

from training_roi.measure.sales import UNITS

__all__ = ["Tenure", "hire_dates", "tenure"]


@dataclass(frozen=True)
class Tenure:
    """Each unit's first day present and first day no longer present (exclusive); absent = the data's span."""

    start: dict[str, date] = field(default_factory=dict)
    end: dict[str, date] = field(default_factory=dict)

    def span(self, unit: str, first: date, stop: date) -> tuple[date, date]:
        """The unit's days within the data's ``[first, stop)``: ``[max(first, start), min(stop, end))``."""
        lo = max(first, self.start.get(unit, first))
        hi = min(stop, self.end.get(unit, stop))
        return lo, hi

    def present(self, unit: str, day: date) -> bool:
        """Whether the unit was there on ``day``."""
        start, end = self.start.get(unit), self.end.get(unit)
        return (start is None or start <= day) and (end is None or day < end)

    def joined_or_left(self, units: Iterable[str]) -> int:
        """How many of ``units`` joined or left during the data (the rest were there throughout)."""
        return sum(1 for u in units if u in self.start or u in self.end)


def tenure(con: BaseBackend, unit: str = "rep") -> Tenure:
    """Each rep's tenure from the CRM (hire, inactivity, last activity); accounts are present throughout."""
    if unit != "rep":
        return Tenure()
    tables = set(con.list_tables())
    o = con.table("crm_opportunity")
    o = o.filter(~o.is_deleted & o[UNITS[unit]].notnull())
    deals = o.group_by(u=o[UNITS[unit]]).aggregate(
        first=o.created_at.min().date(),
        last=ibis.greatest(o.created_at.max().date(), o.close_date.max(where=o.is_closed.fill_null(False))),
    )
    span = o.aggregate(first=o.created_at.min().date(), last=o.created_at.max().date()).to_pyarrow().to_pylist()[0]
    if span["first"] is None:
        return Tenure()
    first, stop = span["first"], span["last"] + timedelta(days=1)
    users = con.table("crm_user").select(u_id="user_id", hired=_day(con.table("crm_user").created_at),
                                         active=con.table("crm_user").is_active)
    rows = users.left_join(deals, users.u_id == deals.u)
    last_task = None
    if "crm_activity" in tables:
        a = con.table("crm_activity")
        last_task = a.filter(a.owner_id.notnull() & ~a.is_deleted.fill_null(False)).group_by(t_u=a.owner_id).aggregate(
            task=a.activity_date.max())
        rows = rows.left_join(last_task, rows.u_id == last_task.t_u)
    start: dict[str, date] = {}
    end: dict[str, date] = {}
    for r in rows.to_pyarrow().to_pylist():
        who = r["u_id"]
        begun = min(d for d in (r["hired"], r["first"]) if d is not None) if (r["hired"] or r["first"]) else None
        if begun is not None and begun > first:
            start[who] = begun
        if r["active"] is False:
            seen = [d for d in (r["last"], r.get("task")) if d is not None]
            if seen and max(seen) + timedelta(days=1) < stop:
                end[who] = max(seen) + timedelta(days=1)
    return Tenure(start, end)


def hire_dates(con: BaseBackend) -> dict[str, date]:
    """Each CRM user's hire day, as the export gives it: the user's creation day (users without one are absent)."""
    users = con.table("crm_user")
    rows = users.select(users.user_id.cast("string").name("unit"), _day(users.created_at).name("hired")).to_pyarrow()
    return {u: h for u, h in zip(rows["unit"].to_pylist(), rows["hired"].to_pylist(), strict=True)
            if u is not None and h is not None}


def _day(ts: ibis.expr.types.TimestampValue) -> ibis.expr.types.DateValue:
    return ts.date()
