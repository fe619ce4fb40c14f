"""Months still maturing: which monthly KPI values are provisional, and why.

A month's figure can still change after the export was taken, and a change computed from it
reads as a swing in the business when it is only a month not yet over. A monthly value is
**provisional** when:

- its month was not over at the data's end: its last day is after the latest date the KPI's
  sources record (:func:`data_end`: creation, completion, close and answer times, and the close
  dates of closed deals), or after the last day of the period asked for (``until``); a month
  that starts before the period asked for (``since``) is likewise partial;
- for a deal outcome dated by the month the deals were **created** (a cohort): more than
  :data:`OPEN_SHARE_LIMIT` of that month's deals (of that rep, team or account) are still open,
  so the figure counts the quick closers only.

Month-over-month and year-over-year changes compare complete months only
(:func:`training_roi.measure.catalogue.changes`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

import ibis.expr.types as ir
import polars as pl
from ibis.backends import BaseBackend

from training_roi.warehouse.connection import utc_day

__all__ = ["OPEN_SHARE_LIMIT", "RECORDED", "data_end", "mark_provisional"]

OPEN_SHARE_LIMIT = 0.2
"""A creation month's deal outcomes are provisional while more than this share of its deals is open."""

RECORDED: dict[str, tuple[str, ...]] = {
    "crm_opportunity": ("created_at",),
    "crm_opportunity_history": ("created_at",),
    "crm_lead": ("created_at", "converted_date"),
    "crm_activity": ("created_at", "completed_at"),
    "crm_case": ("created_at", "closed_at"),
    "crm_account": ("created_at",),
    "crm_campaign_member": ("created_at",),
    "lms_completion": ("enrolled_at", "completed_at"),
    "learning_record": ("occurred_at",),
    "survey_response": ("submitted_at",),
}
"""The columns of each table that record when something happened (never a planned date such as
an open deal's expected CloseDate or a task's due date). The close dates of closed deals count
too."""


def _latest(con: BaseBackend, table: str) -> date | None:
    t = con.table(table)
    if "is_deleted" in t.columns:
        t = t.filter(~t.is_deleted.fill_null(False))
    days: list[ir.DateValue] = []
    for column in RECORDED.get(table, ()):
        if column in t.columns:
            c = t[column]
            days.append(c.max() if c.type().is_date() else utc_day(con, c.max()))
    if table == "crm_opportunity":
        days.append(t.close_date.max(where=t.is_closed.fill_null(False)))
    if not days:
        return None
    got = [d for d in t.aggregate(**{f"d{i}": d for i, d in enumerate(days)}).to_pyarrow().to_pylist()[0].values()
           if d is not None]
    return max(got) if got else None


def data_end(con: BaseBackend, tables: Iterable[str], cache: dict[str, date | None] | None = None) -> date | None:
    """The latest date ``tables`` record (see :data:`RECORDED`), or None when they record none.

    ``cache`` keeps each table's date between calls (one query per table).
    """
    present = set(con.list_tables())
    cache = {} if cache is None else cache
    found = []
    for table in tables:
        if table not in present or table not in RECORDED:
            continue
        if table not in cache:
            cache[table] = _latest(con, table)
        if (day := cache[table]) is not None:
            found.append(day)
    return max(found) if found else None


def _month_end(column: str) -> pl.Expr:
    return pl.col(column).dt.offset_by("1mo") - pl.duration(days=1)


def mark_provisional(frame: pl.DataFrame, *, as_of: date | None, since: date | None = None,
                     until: date | None = None, open_share: pl.DataFrame | None = None) -> pl.DataFrame:
    """``frame`` (grain_id, period, …) with ``provisional`` and ``provisional_reason``.

    ``as_of``: the data's end (:func:`data_end`); ``since`` / ``until``: the period asked for
    (``until`` excluded); ``open_share``: grain_id, period, share of the month's deals still
    open, for outcomes dated by creation month. Rows without a period (whole-period figures)
    are never provisional.
    """
    reasons: list[pl.Expr] = []
    if as_of is not None:
        reasons.append(pl.when(_month_end("period") > as_of).then(
            pl.lit(f"the month was not over when the data ends ({as_of.isoformat()})")))
    if until is not None:
        last = until - timedelta(days=1)
        reasons.append(pl.when(_month_end("period") > last).then(
            pl.lit(f"the period asked for ends {last.isoformat()}, before the month's end")))
    if since is not None and since.day != 1:
        reasons.append(pl.when(pl.col("period") < since).then(
            pl.lit(f"the period asked for starts {since.isoformat()}, after the month's start")))
    out = frame
    if open_share is not None:
        out = out.join(open_share.select("grain_id", "period", pl.col("share").alias("_open")),
                       on=["grain_id", "period"], how="left")
        reasons.append(pl.when(pl.col("_open") > OPEN_SHARE_LIMIT).then(pl.format(
            "{}% of the month's deals still open (provisional above {}%)",
            (pl.col("_open") * 100).round(1), pl.lit(f"{OPEN_SHARE_LIMIT * 100:.0f}"))))
    reason = pl.concat_str(reasons, separator="; ", ignore_nulls=True) if reasons else pl.lit(None, pl.String)
    reason = pl.when(pl.col("period").is_null()).then(None).otherwise(reason.replace("", None))
    out = out.with_columns(provisional_reason=reason.cast(pl.String))
    out = out.with_columns(provisional=pl.col("period").is_not_null() & pl.col("provisional_reason").is_not_null())
    return out.drop("_open", strict=False)

