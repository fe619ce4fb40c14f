"""Process KPIs: how the team works in the CRM (response times, tasks, activity, data, adoption).

Each function returns the *facts* behind one KPI as an Ibis expression: one row per event (a
lead, a task, an opportunity at a month end, a rep-month…) with the columns ``rep`` (CRM user),
``account`` where it applies, ``day`` (the date the fact belongs to) and ``numerator`` /
``denominator``. :mod:`training_roi.measure.catalogue` sums them per grain and month, so every
figure pools over months and groups as Σ numerator / Σ denominator. ``[since, until)`` selects
facts by ``day``; month-level facts (rep-months, month-end states) are dated by the month's first
day and kept when their month overlaps the window.

Deleted rows (``is_deleted``) never count.
"""

from __future__ import annotations

from datetime import date

import ibis
import ibis.expr.types as ir
from ibis.backends import BaseBackend

from training_roi.measure.sales import monthly_panel, within
from training_roi.warehouse.connection import utc_day

__all__ = [
    "OWNED_TABLES",
    "REQUIRED_OPPORTUNITY_FIELDS",
    "STALE_DAYS",
    "activity_volume",
    "case_response",
    "data_completeness",
    "lead_conversion",
    "lead_response",
    "live",
    "month_rows",
    "open_at_month_end",
    "overlaps",
    "pipeline_velocity",
    "stale_opportunities",
    "system_adoption",
    "task_completion",
    "within",
]

STALE_DAYS = 30
"""An open opportunity whose stage has not changed in this many days at a month end is stale."""

REQUIRED_OPPORTUNITY_FIELDS = ("amount", "close_date", "stage_name", "account_id")
"""Opportunity fields a usable pipeline needs (Amount, CloseDate, StageName, AccountId)."""

_ONE = ibis.literal(1.0)
_ZERO = ibis.literal(0.0)


def live(t: ir.Table) -> ir.Table:
    """The rows of ``t`` that are not deleted (``is_deleted``): deleted rows are kept, never analysed."""
    return t.filter(~t.is_deleted.fill_null(False)) if "is_deleted" in t.columns else t


def overlaps(month: ir.DateValue, since: date | None, until: date | None) -> ir.BooleanValue:
    """Whether the month starting on ``month`` overlaps ``[since, until)``."""
    return within(month, since.replace(day=1) if since is not None else None, until)


def month_rows(t: ir.Table, keep: tuple[str, ...], lo: ir.TimestampValue, hi: ir.TimestampValue,
               name: str = "month") -> ir.Table:
    """One row per month of each row of ``t``: its ``keep`` columns and the month's first day as ``name``.

    The months run from ``lo`` to ``hi`` (both first days of months, as timestamps).
    The months are unnested first and cast to dates after: Spark refuses a generator (the unnest)
    nested in another expression, such as the cast.
    """
    rows = t.select(*keep, **{name: ibis.range(lo, hi + ibis.interval(days=1), ibis.interval(months=1)).unnest()})
    return rows.mutate(**{name: rows[name].cast("date")})


def _hours(end: ir.TimestampValue, start: ir.TimestampValue) -> ir.FloatingValue:
    return (end.epoch_seconds() - start.epoch_seconds()).cast("float64") / 3600


def lead_conversion(con: BaseBackend, *, since: date | None = None, until: date | None = None) -> ir.Table:
    """Leads created, and whether each was converted (``IsConverted``), dated by creation."""
    t = live(con.table("crm_lead"))
    t = t.filter(t.created_at.notnull()).mutate(day=utc_day(con, t.created_at))
    t = t.filter(within(t.day, since, until))
    return t.select(rep=t.owner_id, day=t.day, numerator=t.is_converted.fill_null(False).ifelse(_ONE, _ZERO),
                    denominator=_ONE)


def lead_response(con: BaseBackend, *, since: date | None = None, until: date | None = None) -> ir.Table:
    """Hours from each lead's creation to the first task or event logged on it (``WhoId``).

    A lead is dated by the day it was created and belongs to its owner. The response is the
    earliest activity *created* at or after the lead (the moment a rep logged it; Salesforce
    keeps no time of day for a task's ``ActivityDate``). Leads nobody has answered yet have no
    response time and are left out (they would otherwise have to count as zero or infinity).
    """
    leads = live(con.table("crm_lead"))
    leads = leads.filter(leads.created_at.notnull())
    a = live(con.table("crm_activity"))
    a = a.filter(a.who_id.notnull() & a.created_at.notnull()).select(who=a.who_id, at=a.created_at)
    j = leads.join(a, (leads.lead_id == a.who) & (a.at >= leads.created_at))
    first = j.group_by(first_lead=j.lead_id).agg(first=j.at.min())
    r = leads.join(first, leads.lead_id == first.first_lead)
    r = r.mutate(day=utc_day(con, r.created_at))
    r = r.filter(within(r.day, since, until))
    return r.select(rep=r.owner_id, day=r.day, numerator=_hours(r.first, r.created_at), denominator=_ONE)


def case_response(con: BaseBackend, *, since: date | None = None, until: date | None = None) -> ir.Table:
    """Hours from each case's creation to its first response.

    The response is the earlier of the first task or event logged on the case (``WhatId``) at or
    after its creation, and its ``ClosedDate``: a case closed without a logged activity was
    answered when it was closed. Cases with neither (open, untouched) are left out. A case is
    dated by the day it was created and belongs to its owner and account.
    """
    cases = live(con.table("crm_case"))
    cases = cases.filter(cases.created_at.notnull())
    a = live(con.table("crm_activity"))
    a = a.filter(a.what_id.notnull() & a.created_at.notnull()).select(what=a.what_id, at=a.created_at)
    j = cases.join(a, (cases.case_id == a.what) & (a.at >= cases.created_at))
    first = j.group_by(first_case=j.case_id).agg(first=j.at.min())
    c = cases.left_join(first, cases.case_id == first.first_case)
    closed = ibis.cases((c.closed_at >= c.created_at, c.closed_at), else_=ibis.null("timestamp('UTC')"))
    answered = ibis.cases(
        (c.first.isnull(), closed), (closed.isnull(), c.first), (c.first <= closed, c.first), else_=closed)
    c = c.mutate(answered=answered, day=utc_day(con, c.created_at))
    c = c.filter(c.answered.notnull() & within(c.day, since, until))
    return c.select(rep=c.owner_id, account=c.account_id, day=c.day,
                    numerator=_hours(c.answered, c.created_at), denominator=_ONE)


def task_completion(con: BaseBackend, *, since: date | None = None, until: date | None = None) -> ir.Table:
    """Tasks due, and whether each was done on time, dated by its due date (``ActivityDate``).

    On time: closed, with ``CompletedDateTime`` on or before the due date (UTC day). A closed
    task without a completion time cannot be shown on time and counts as late. Open tasks due
    after the export's last activity are not yet late and are left out, so the latest month does
    not dip merely because its tasks are still ahead.
    """
    everything = live(con.table("crm_activity"))
    as_of = utc_day(con, ibis.greatest(everything.created_at.max(), everything.completed_at.max()))
    t = everything.filter((everything.kind == "task") & everything.activity_date.notnull())
    closed = t.is_closed.fill_null(False)
    t = t.filter(closed | (t.activity_date <= as_of))
    t = t.filter(within(t.activity_date, since, until))
    done = closed & t.completed_at.notnull() & (utc_day(con, t.completed_at) <= t.activity_date)
    return t.select(rep=t.owner_id, account=t.account_id, day=t.activity_date,
                    numerator=done.ifelse(_ONE, _ZERO), denominator=_ONE)


def _spans(t: ir.Table, since: date | None, until: date | None) -> ir.Table:
    """Every month from each rep's first to last month in ``t`` (rep, month), within the window."""
    s = t.group_by("rep").agg(lo=t.month.min().cast("timestamp"), hi=t.month.max().cast("timestamp"))
    g = month_rows(s, ("rep",), s.lo, s.hi)
    return g.filter(overlaps(g.month, since, until))


def activity_volume(con: BaseBackend, *, since: date | None = None, until: date | None = None) -> ir.Table:
    """Tasks and events per rep-month.

    An activity is dated by its ``ActivityDate`` (or the day it was created when it has none) and
    counted for its owner. A rep's months run from their first to their last month with an
    activity: a rep who joined late or left is not charged with empty months outside that span,
    while a quiet month inside it counts as zero.
    """
    a = live(con.table("crm_activity"))
    a = a.filter(a.owner_id.notnull())
    a = a.select(rep=a.owner_id, day=ibis.coalesce(a.activity_date, utc_day(con, a.created_at)))
    a = a.filter(a.day.notnull())
    reps = _spans(a.mutate(month=a.day.truncate("M")), since, until)
    events = a.filter(within(a.day, since, until)).select("rep", "day", numerator=_ONE, denominator=_ZERO)
    months = reps.select("rep", day=reps.month, numerator=_ZERO, denominator=_ONE)
    return events.union(months)


def data_completeness(con: BaseBackend, *, since: date | None = None, until: date | None = None) -> ir.Table:
    """Required opportunity fields filled (Amount, CloseDate, StageName, AccountId), per opportunity.

    An opportunity is dated by the day it was created: four fields to fill, and how many are.
    An open deal's CloseDate counts as filled when empty: only closed deals need one (many CRMs
    leave it empty until a deal closes).
    """
    o = live(con.table("crm_opportunity"))
    o = o.filter(o.created_at.notnull()).mutate(day=utc_day(con, o.created_at))
    o = o.filter(within(o.day, since, until))
    present = {f: o[f].notnull() for f in REQUIRED_OPPORTUNITY_FIELDS}
    present["close_date"] = present["close_date"] | ~o.is_closed.fill_null(False)
    filled = sum((p.ifelse(_ONE, _ZERO) for p in present.values()), _ZERO)
    stage_blank = o.stage_name.strip() == ""
    filled = filled - stage_blank.fill_null(False).ifelse(_ONE, _ZERO)
    return o.select(rep=o.owner_id, account=o.account_id, day=o.day, numerator=filled,
                    denominator=ibis.literal(float(len(REQUIRED_OPPORTUNITY_FIELDS))))


def open_at_month_end(con: BaseBackend, *, since: date | None = None, until: date | None = None) -> ir.Table:
    """Every opportunity open at the end of each month, with its last stage change by then.

    Columns: opportunity_id, rep, account, month (first day), last_change (when its stage last
    changed before the month ended: the latest ``OpportunityHistory`` entry, else its creation).
    Open at a month end: created before it, and not closed, or closed after it (``CloseDate``).
    Months run from the first opportunity to the last record of the pipeline.
    """
    o = live(con.table("crm_opportunity"))
    o = o.filter(o.created_at.notnull())
    h = live(con.table("crm_opportunity_history"))
    h = h.filter(h.created_at.notnull()).select(h_opp=h.opportunity_id, changed=h.created_at)
    last = ibis.greatest(
        utc_day(con, o.created_at.max()),
        o.filter(o.is_closed.fill_null(False)).close_date.max(),
        utc_day(con, h.changed.max()),
    )
    bounds = o.aggregate(lo=utc_day(con, o.created_at.min()).truncate("M").cast("timestamp"))
    bounds = bounds.mutate(hi=last.truncate("M").cast("timestamp"))
    months = month_rows(bounds, (), bounds.lo, bounds.hi)
    months = months.filter(overlaps(months.month, since, until))
    end = months.month + ibis.interval(months=1)
    months = months.mutate(end=end)
    j = o.cross_join(months)
    created = utc_day(con, j.created_at)
    j = j.filter((created < j.end) & (~j.is_closed.fill_null(False) | (j.close_date >= j.end)))
    j = j.select(opportunity_id=j.opportunity_id, rep=j.owner_id, account=j.account_id, month=j.month, end=j.end,
                 created_at=j.created_at)
    changes = j.join(h, (j.opportunity_id == h.h_opp) & (utc_day(con, h.changed) < j.end))
    latest = changes.group_by(c_opp=changes.opportunity_id, c_month=changes.month).agg(changed=changes.changed.max())
    r = j.left_join(latest, (j.opportunity_id == latest.c_opp) & (j.month == latest.c_month))
    return r.select("opportunity_id", "rep", "account", "month",
                    last_change=ibis.coalesce(r.changed, r.created_at))


def pipeline_velocity(con: BaseBackend, *, unit: str = "rep", since: date | None = None,
                      until: date | None = None, basis: str = "created", unassigned: bool = False) -> ir.Table:
    """The pieces of pipeline velocity per unit (``rep`` or ``account``) and month.

    Velocity = open opportunities at month end (averaged over the months) × win rate × average
    won deal size ÷ sales cycle days, with the win rate, deal size and cycle of the deals created
    (``basis="created"``) or closed (``"close"``) in the period
    (:func:`training_roi.measure.sales.monthly_panel`); ``unassigned`` keeps the deals and open
    opportunities without a unit, under a null one. Components: ``open`` (one
    per open opportunity at a month end), ``month_ends`` (that month, to count the months),
    ``won_amount``, ``closed``, ``cycle_days_sum``.
    """
    p = monthly_panel(con, start=since, end=until, unit=unit, basis=basis, unassigned=unassigned)
    deals = p.select(**{unit: p.unit_id}, day=p.month, open=_ZERO, month_ends=ibis.null("date"),
                     won_amount=p.won_amount.cast("float64"), closed=p.closed.cast("float64"),
                     cycle_days_sum=p.cycle_days_sum.cast("float64"))
    t = open_at_month_end(con, since=since, until=until)
    if not unassigned:
        t = t.filter(t[unit].notnull())
    opened = t.select(**{unit: t[unit]}, day=t.month, open=_ONE, month_ends=t.month, won_amount=_ZERO,
                      closed=_ZERO, cycle_days_sum=_ZERO)
    return deals.union(opened)


def stale_opportunities(con: BaseBackend, *, since: date | None = None, until: date | None = None) -> ir.Table:
    """Open opportunities at each month end, and whether each is stale then.

    Stale: no stage change (``OpportunityHistory``) in the last :data:`STALE_DAYS` days of the
    month, that is, its last change (or its creation) is before the month's end minus 30 days.
    """
    t = open_at_month_end(con, since=since, until=until)
    cut = t.month + ibis.interval(months=1) - ibis.interval(days=STALE_DAYS)
    stale = utc_day(con, t.last_change) < cut
    return t.select("rep", "account", day=t.month, numerator=stale.ifelse(_ONE, _ZERO), denominator=_ONE)


OWNED_TABLES = ("crm_opportunity", "crm_lead", "crm_case", "crm_account", "crm_activity")
"""Tables whose records a user owns (``owner_id``, ``created_at``): creating one is using the CRM."""


def system_adoption(con: BaseBackend, *, since: date | None = None, until: date | None = None) -> ir.Table:
    """Licensed users, and whether each was active, per month.

    Licensed: a user marked active (``IsActive``: the current flag, as the export has no history),
    from the month they were created. Active in a month: they own an opportunity, lead, case,
    account, task or event created that month. Months run over the records' creation months.
    """
    present = set(con.list_tables())
    created: ir.Table | None = None
    for name in OWNED_TABLES:
        if name not in present:
            continue
        r = live(con.table(name))
        r = r.filter(r.owner_id.notnull() & r.created_at.notnull())
        r = r.select(user=r.owner_id, month=utc_day(con, r.created_at).truncate("M"))
        created = r if created is None else created.union(r)
    users = con.table("crm_user")
    users = users.filter(users.is_active.fill_null(False))
    if created is None:
        return users.select(rep=users.user_id, day=ibis.null("date"), numerator=_ZERO, denominator=_ZERO).limit(0)
    active = created.distinct()
    bounds = active.aggregate(lo=active.month.min().cast("timestamp"), hi=active.month.max().cast("timestamp"))
    months = month_rows(bounds, (), bounds.lo, bounds.hi)
    months = months.filter(overlaps(months.month, since, until))
    grid = users.select(rep=users.user_id, joined=utc_day(con, users.created_at).truncate("M")).cross_join(months)
    grid = grid.filter(grid.joined.isnull() | (grid.month >= grid.joined))
    j = grid.left_join(active, (grid.rep == active.user) & (grid.month == active.month))
    return j.select(rep=j.rep, day=j.month, numerator=j.user.notnull().ifelse(_ONE, _ZERO), denominator=_ONE)
