"""Sales KPIs per rep: by calendar month, and in windows anchored at each learner's completion.

The seed model compares a unit's conversion before training (its baseline) with its conversion
in an attribution window after it, and the same for comparison units. Everything here is an
Ibis expression over the canonical tables, so it runs where the warehouse runs; only the small
per-unit results are pulled into Python by the isolation stage.

An opportunity belongs to a period by the day it was **created**: training can only change
deals worked after it, and a deal's outcome is known at its close. Deleted opportunities never
count. Win rate counts closed deals only (open ones have no outcome yet).
"""

from __future__ import annotations

from datetime import date

import ibis
import ibis.expr.types as ir
from ibis.backends import BaseBackend

__all__ = ["KPI_NAMES", "completions", "monthly_panel", "window_kpis", "windows_kpis"]

KPI_NAMES = ("win_rate", "avg_won_deal_size", "sales_cycle_days", "pipeline_created", "revenue_per_rep")
"""The sales KPIs a study can name, each computed per unit and period."""

_DAY_SECONDS = 86_400


def _opportunities(con: BaseBackend) -> ir.Table:
    """Live opportunities with an owner, their creation day, outcome, amount and cycle in days."""
    o = con.table("crm_opportunity")
    o = o.filter(~o.is_deleted & o.owner_id.notnull() & o.created_at.notnull())
    created = o.created_at.date()
    return o.select(
        unit_id=o.owner_id,
        opportunity_id=o.opportunity_id,
        created=created,
        closed=o.is_closed.fill_null(False),
        won=o.is_won.fill_null(False),
        amount=o.amount,  # decimal: sums stay exact, so the same data always gives the same figures
        cycle_days=(o.close_date.epoch_seconds() - created.epoch_seconds()) / _DAY_SECONDS,
    )


def _kpis(t: ir.Table, by: list[str]) -> ir.Table:
    """The KPI columns of opportunities ``t`` grouped ``by``; counts stay so rates can be pooled."""
    won_amount = (t.won.ifelse(t.amount.fill_null(0), 0)).sum()
    return t.group_by(by).agg(
        opportunities=t.count(),
        closed=t.closed.sum(),
        won=t.won.sum(),
        won_amount=won_amount,
        pipeline_created=t.amount.fill_null(0).sum(),
        cycle_days_sum=t.closed.ifelse(t.cycle_days, 0).sum(),
    ).mutate(
        win_rate=lambda s: (s.won / s.closed.nullif(0)).cast("float64"),
        avg_won_deal_size=lambda s: s.won_amount / s.won.nullif(0),
        sales_cycle_days=lambda s: s.cycle_days_sum / s.closed.nullif(0),
        revenue_per_rep=lambda s: s.won_amount,
    )


def monthly_panel(con: BaseBackend, *, start: date | None = None, end: date | None = None) -> ir.Table:
    """KPIs per rep and calendar month of creation, within ``[start, end)`` when given.

    Columns: unit_id, month (first day), opportunities, closed, won, won_amount,
    pipeline_created, cycle_days_sum and the KPIs of :data:`KPI_NAMES`.
    """
    t = _opportunities(con)
    if start is not None:
        t = t.filter(t.created >= start)
    if end is not None:
        t = t.filter(t.created < end)
    t = t.mutate(month=t.created.truncate("M"))
    return _kpis(t, ["unit_id", "month"])


def completions(
    con: BaseBackend, activities: list[str], *, rule: str = "completed", min_score: float | None = None
) -> ir.Table:
    """Each CRM user's first qualifying completion of the program: (unit_id, completed_at).

    ``rule``: ``completed`` (a completed or passed record), ``passed`` (a passed record, or a
    completion marked successful), or ``min_score`` (any of those with a score of at least
    ``min_score`` %). Voided statements are already absent from ``learning_record``.
    """
    if rule not in ("completed", "passed", "min_score"):
        raise ValueError(f"completion rule {rule!r}: expected completed, passed or min_score")
    r = con.table("learning_record")
    li = con.table("learner_identity")
    r = r.filter(r.activity_id.isin(activities) | r.course_id.isin(activities))
    done = r.verb.isin(["completed", "passed"])
    if rule == "passed":
        done = (r.verb == "passed") | ((r.verb == "completed") & r.success.fill_null(False))
    elif rule == "min_score":
        done = done & (r.score_pct >= (min_score if min_score is not None else 0))
    r = r.filter(done)
    j = r.join(li, "learner_key").filter(li.crm_user_id.notnull())
    return j.group_by(unit_id=j.crm_user_id).agg(completed_at=j.occurred_at.min())


def window_kpis(
    con: BaseBackend,
    anchors: ir.Table,
    *,
    baseline_days: int,
    window_days: int,
    ramp_days: int = 0,
) -> ir.Table:
    """KPIs per unit in its baseline and its post window, both anchored at the unit's own date.

    ``anchors`` has (unit_id, anchor) — a completion date for trained units, a pseudo date (the
    program start, or a matched learner's date) for comparison units. The baseline is
    ``[anchor − baseline_days, anchor)``; the post window ``[anchor + ramp_days, anchor +
    window_days)``. Returns one row per unit and ``period`` ("baseline" or "post").
    """
    rows = windows_kpis(con, anchors, baseline_days=baseline_days, windows=[window_days], ramp_days=ramp_days)
    return rows.drop("window_days")


def windows_kpis(
    con: BaseBackend,
    anchors: ir.Table,
    *,
    baseline_days: int,
    windows: list[int],
    ramp_days: int = 0,
) -> ir.Table:
    """:func:`window_kpis` for several post windows in one query.

    Rows have a ``window_days`` column: null for the baseline (shared by every window), the
    window's length for its post rows.
    """
    if not windows or min(windows) <= ramp_days:
        raise ValueError(f"every window must be longer than the ramp ({ramp_days} days)")
    t = _opportunities(con)
    a = anchors.select(a_unit=anchors.unit_id, anchor=anchors.anchor.cast("date"))
    j = t.join(a, t.unit_id == a.a_unit)
    j = j.mutate(days=(j.created.epoch_seconds() - j.anchor.epoch_seconds()) / _DAY_SECONDS)
    base = _kpis(j.filter((j.days >= -baseline_days) & (j.days < 0)), ["unit_id"]).mutate(
        period=ibis.literal("baseline"), window_days=ibis.null().cast("int64"))
    lengths = ibis.memtable({"window_days": [int(w) for w in windows]})
    post = j.filter(j.days >= ramp_days).cross_join(lengths)
    post = post.filter(post.days < post.window_days)
    post = _kpis(post, ["unit_id", "window_days"]).mutate(period=ibis.literal("post"))
    return base.union(post.select(base.columns))
