"""Customer-success KPIs: satisfaction (CSAT, NPS), churn, net revenue retention, lifetime value.

Each function returns the facts behind one KPI as an Ibis expression, in the shape
:mod:`training_roi.measure.process` describes (``rep``, ``account``, ``day``, ``numerator``,
``denominator``, or named components), for :mod:`training_roi.measure.catalogue` to pool.

Renewals and upsells are opportunities whose ``Type`` names them (:data:`RENEWAL_WORDS`,
:data:`UPSELL_WORDS`, case-insensitive). A renewal is *due* in the month of its ``CloseDate``
and counts once it is closed: won (renewed) or lost (churned). An open renewal has no outcome
yet, as an open deal has none in a win rate.
"""

from __future__ import annotations

import re
from datetime import date

import ibis
import ibis.expr.types as ir
from ibis.backends import BaseBackend

from training_roi.measure.process import live, month_rows, overlaps, within
from training_roi.warehouse.connection import row_count, utc_day

__all__ = [
    "NPS_WORD",
    "RENEWAL_WORDS",
    "UPSELL_WORDS",
    "case_score",
    "churn",
    "csat",
    "lifetime_value",
    "missing_csat",
    "missing_nps",
    "missing_renewals",
    "net_revenue_retention",
    "nps",
    "renewals",
]

RENEWAL_WORDS = ("renewal",)
"""An opportunity is a renewal when its Type contains one of these words."""
UPSELL_WORDS = ("upsell", "upgrade", "expansion")
"""An opportunity is an upsell when its Type contains one of these words (Salesforce's standard
picklist says "Existing Customer - Upgrade")."""
NPS_WORD = "nps"
"""A survey answer is a Net Promoter answer when its question id contains this (any case)."""

_FIELD = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_ONE = ibis.literal(1.0)
_ZERO = ibis.literal(0.0)




def _type_has(t: ir.Table, words: tuple[str, ...]) -> ir.BooleanValue:
    kind = t.type.lower()
    return ibis.or_(*(kind.contains(w) for w in words)).fill_null(False)


def case_score(cases: ir.Table, field: str) -> ir.FloatingValue:
    """The number in custom field ``field`` of each case (``custom_fields`` JSON), or null.

    The export writes custom fields as text ("4"), a mapping may give numbers: both are read.
    """
    if not _FIELD.match(field):
        raise ValueError(f"case score field {field!r}: expected a Case field API name such as CSAT__c")
    value = cases.custom_fields.cast("json")[field]
    return ibis.coalesce(value.str.strip().try_cast("float64"), value.float)


def csat(con: BaseBackend, *, field: str = "CSAT__c", since: date | None = None,
         until: date | None = None) -> ir.Table:
    """Satisfaction scores (1–5) from the Case field ``field``, one row per rated case.

    A case is dated by the day it was closed (satisfaction is asked when it is resolved), or
    created when still open, and belongs to its owner and account. Values outside 1–5 are not
    a CSAT answer and are left out.
    """
    c = live(con.table("crm_case"))
    c = c.mutate(score=case_score(c, field), day=utc_day(con, ibis.coalesce(c.closed_at, c.created_at)))
    c = c.filter(c.score.between(1, 5) & c.day.notnull() & within(c.day, since, until))
    return c.select(rep=c.owner_id, account=c.account_id, day=c.day, numerator=c.score, denominator=_ONE)


def nps(con: BaseBackend, *, since: date | None = None, until: date | None = None) -> ir.Table:
    """Net Promoter answers (0–10): +100 a promoter (9–10), −100 a detractor (0–6), 0 a passive.

    Their mean is the NPS: % promoters − % detractors. Answers are the survey rows whose question
    id contains "nps"; other scales are left out. A respondent is a rep when their email is a CRM
    user's, and belongs to an account when it is a contact's. Dated by the day submitted.
    """
    s = con.table("survey_response")
    s = s.filter(s.question.lower().contains(NPS_WORD) & s.score.between(0, 10) & s.submitted_at.notnull())
    s = s.mutate(day=utc_day(con, s.submitted_at))
    s = s.filter(within(s.day, since, until))
    users = con.table("crm_user")
    users = users.filter(users.email_norm.notnull()).group_by(u_email=users.email_norm).agg(rep=users.user_id.max())
    contacts = live(con.table("crm_contact"))
    contacts = contacts.filter(contacts.email_norm.notnull()).group_by(c_email=contacts.email_norm).agg(
        account=contacts.account_id.max())
    s = s.left_join(users, s.email_norm == users.u_email).left_join(contacts, s.email_norm == contacts.c_email)
    points = ibis.cases((s.score >= 9, 100.0), (s.score <= 6, -100.0), else_=0.0)
    return s.select("rep", "account", "day", numerator=points, denominator=_ONE)


def renewals(con: BaseBackend, *, since: date | None = None, until: date | None = None) -> ir.Table:
    """Closed renewal opportunities due in ``[since, until)``: rep, account, day, amount, renewed."""
    o = live(con.table("crm_opportunity"))
    o = o.filter(_type_has(o, RENEWAL_WORDS) & o.is_closed.fill_null(False) & o.close_date.notnull())
    o = o.filter(within(o.close_date, since, until))
    return o.select(rep=o.owner_id, account=o.account_id, day=o.close_date, amount=o.amount.cast("float64"),
                    renewed=o.is_won.fill_null(False))


def churn(con: BaseBackend, *, since: date | None = None, until: date | None = None) -> ir.Table:
    """Renewals due and whether each was lost (churned): churn rate = lost ÷ due."""
    r = renewals(con, since=since, until=until)
    return r.select("rep", "account", "day", numerator=r.renewed.ifelse(_ZERO, _ONE), denominator=_ONE)


def _won_upsells(con: BaseBackend, since: date | None, until: date | None) -> ir.Table:
    o = live(con.table("crm_opportunity"))
    o = o.filter(_type_has(o, UPSELL_WORDS) & o.is_won.fill_null(False) & o.close_date.notnull())
    return o.filter(within(o.close_date, since, until))


def net_revenue_retention(con: BaseBackend, *, since: date | None = None, until: date | None = None) -> ir.Table:
    """The pieces of net revenue retention, dated by close date.

    NRR = (starting recurring revenue + upsell − churned) ÷ starting, where starting is the
    amount of the renewals due, churned the amount of those lost, and upsell the amount of upsell
    opportunities won in the same period. Renewal rows carry starting (denominator) and starting
    − churned (numerator: the amount renewed); upsell rows add to the numerator only.
    """
    r = renewals(con, since=since, until=until)
    r = r.filter(r.amount.notnull())
    base = r.select("rep", "account", "day", numerator=r.renewed.ifelse(r.amount, _ZERO), denominator=r.amount)
    u = _won_upsells(con, since, until)
    up = u.select(rep=u.owner_id, account=u.account_id, day=u.close_date,
                  numerator=u.amount.cast("float64").fill_null(0.0), denominator=_ZERO)
    return base.union(up)


def lifetime_value(con: BaseBackend, *, gross_margin: float, since: date | None = None,
                   until: date | None = None) -> ir.Table:
    """The pieces of customer lifetime value, dated by close date (revenue, churn) or month.

    CLV = average won revenue per customer account per year × gross margin ÷ churn rate.
    Components: ``margin_revenue`` (won amounts × margin), ``customer_months`` (each account is
    a customer from the month of its first won deal to the last month with a closed deal),
    ``churned`` and ``due`` (renewals, as in :func:`churn`). The churn rate among renewals due is
    read as an annual rate, which holds for yearly contracts.
    """
    if not 0 < gross_margin <= 1:
        raise ValueError(f"gross margin {gross_margin}: expected a share between 0 and 1, such as 0.7")
    o = live(con.table("crm_opportunity"))
    won = o.filter(o.is_won.fill_null(False) & o.close_date.notnull() & o.account_id.notnull())
    last = o.filter(o.is_closed.fill_null(False)).close_date.max().truncate("M").cast("timestamp")
    first = won.group_by(account=won.account_id).agg(lo=won.close_date.min().truncate("M").cast("timestamp"))
    months = month_rows(first, ("account",), first.lo, last)
    months = months.filter(overlaps(months.month, since, until))
    shape = {"margin_revenue": _ZERO, "customer_months": _ZERO, "churned": _ZERO, "due": _ZERO}
    exposure = months.select("account", day=months.month, **{**shape, "customer_months": _ONE})
    w = won.filter(within(won.close_date, since, until))
    revenue = w.select(account=w.account_id, day=w.close_date,
                       **{**shape, "margin_revenue": w.amount.cast("float64").fill_null(0.0) * gross_margin})
    r = renewals(con, since=since, until=until)
    lost = r.select("account", "day", **{**shape, "churned": r.renewed.ifelse(_ZERO, _ONE), "due": _ONE})
    return exposure.union(revenue).union(lost)


def missing_csat(con: BaseBackend, *, field: str) -> str | None:
    """Why CSAT cannot be measured (no case has a ``field`` value), or None."""
    c = con.table("crm_case")
    if row_count(c.filter(case_score(c, field).notnull()).limit(1)):
        return None
    return f"no case in crm_case has a {field} value (the custom field of Case.csv named by the study)"


def missing_nps(con: BaseBackend) -> str | None:
    """Why NPS cannot be measured (no survey answer to an NPS question), or None."""
    s = con.table("survey_response")
    if row_count(s.filter(s.question.lower().contains(NPS_WORD)).limit(1)):
        return None
    return f"no answer in survey_response has a question id containing {NPS_WORD!r} (a 0–10 scale)"


def missing_renewals(con: BaseBackend) -> str | None:
    """Why renewal KPIs cannot be measured (no closed renewal opportunity), or None."""
    if row_count(renewals(con).limit(1)):
        return None
    return f"no closed opportunity in crm_opportunity has a Type containing {' or '.join(RENEWAL_WORDS)}"
