"""Learning KPIs from ``learning_record`` and ``lms_completion``: who learns, how much, how well.

Each function returns the facts behind one KPI as an Ibis expression, in the shape
:mod:`training_roi.measure.process` describes (``rep``, ``account``, ``activity``, ``day``,
``numerator``, ``denominator``), for :mod:`training_roi.measure.catalogue` to pool.

A learner is the person behind their LMS identities: the CRM user (a rep) or contact (a
customer, whose account is theirs) it links to, else the LMS identity itself, so a rep seen both
in xAPI statements and in a completion report is one learner. Per-learner figures are per
*learner-month* (a learner active in three months counts three times), which keeps every figure
a ratio of sums: monthly values pool to any period.
"""

from __future__ import annotations

from datetime import date

import ibis
import ibis.expr.types as ir
from ibis.backends import BaseBackend

from training_roi.measure.process import month_rows, overlaps, within
from training_roi.warehouse.connection import row_count, utc_day

__all__ = [
    "assessment_score",
    "completion",
    "engagement_frequency",
    "enrolment",
    "learning_days",
    "missing_outcomes",
    "pass_rate",
    "time_spent",
]

_DONE = ("completed", "passed")
_ONE = ibis.literal(1.0)
_ZERO = ibis.literal(0.0)



def _people(con: BaseBackend) -> ir.Table:
    li = con.table("learner_identity")
    return li.select(
        p_key=li.learner_key,
        person=ibis.coalesce(li.crm_user_id, li.crm_contact_id, li.learner_key),
        rep=li.crm_user_id,
        account=li.crm_account_id,
        p_id=li.learner_id,
        p_email=li.email_norm,
    )


def _records(con: BaseBackend, since: date | None, until: date | None) -> ir.Table:
    """Learning records in the window with their learner (person, rep, account) and day."""
    r = con.table("learning_record")
    r = r.filter(r.occurred_at.notnull()).mutate(day=utc_day(con, r.occurred_at))
    r = r.filter(within(r.day, since, until))
    p = _people(con)
    j = r.left_join(p, r.learner_key == p.p_key)
    return j.mutate(person=ibis.coalesce(j.person, j.learner_key))


def enrolment(con: BaseBackend, *, since: date | None = None, until: date | None = None) -> ir.Table:
    """Registered learners, and whether each had any learning record, per month.

    Registered: every learner in the LMS directory (``lms_learner``). A record is theirs when its
    identity carries their learner id or email. Months run over the months with any learning
    record; a directory learner's rep or account is the one their directory identity links to.
    """
    d = con.table("lms_learner")
    d = d.filter(d.learner_id.notnull()).select(d_id=d.learner_id, d_email=d.email_norm)
    every = con.table("learning_record")
    every = every.filter(every.occurred_at.notnull())
    month_of = utc_day(con, every.occurred_at).truncate("M").cast("timestamp")
    bounds = every.aggregate(lo=month_of.min(), hi=month_of.max())
    months = month_rows(bounds, (), bounds.lo, bounds.hi)
    months = months.filter(overlaps(months.month, since, until))
    r = _records(con, since, until)
    r = r.select(r_id=r.p_id, r_email=r.p_email, r_month=r.day.truncate("M"))
    hit = d.join(r, (d.d_id == r.r_id) | (d.d_email == r.r_email)).select("d_id", "r_month").distinct()
    hit = hit.rename(h_id="d_id")
    grid = d.cross_join(months)
    grid = grid.left_join(hit, (grid.d_id == hit.h_id) & (grid.month == hit.r_month))
    p = _people(con)
    grid = grid.left_join(p, ("lms:" + grid.d_id) == p.p_key)
    return grid.select("rep", "account", day=grid.month, numerator=grid.h_id.notnull().ifelse(_ONE, _ZERO),
                       denominator=_ONE)


def completion(con: BaseBackend, *, since: date | None = None, until: date | None = None) -> ir.Table:
    """Enrolments (a learner on an activity) and whether each was completed, dated by its start.

    From the completion report, each row is an enrolment (started when enrolled, else when
    completed), completed when it has a completion date. From xAPI, each learner and activity
    with any statement is an enrolment, started at the first statement, completed when one is
    "completed" or "passed". Completing one lesson completes that lesson, not its course.
    """
    c = con.table("lms_completion")
    start = ibis.coalesce(c.enrolled_at, c.completed_at)
    c = c.filter(c.course_id.notnull() & start.notnull()).mutate(
        key=ibis.coalesce("lms:" + c.learner_id, "mbox:" + c.email_norm), day=utc_day(con, start))
    report = c.select("key", activity=c.course_id, day=c.day, done=c.completed_at.notnull())
    x = con.table("learning_record")
    x = x.filter((x.source == "xapi") & x.activity_id.notnull() & x.occurred_at.notnull())
    x = x.group_by(key=x.learner_key, activity=x.activity_id).agg(
        first=x.occurred_at.min(), done=x.verb.isin(_DONE).any())
    xapi = x.select("key", "activity", day=utc_day(con, x.first), done=x.done)
    every = report.union(xapi)
    every = every.filter(within(every.day, since, until))
    p = _people(con)
    j = every.left_join(p, every.key == p.p_key)
    return j.select("rep", "account", "activity", "day", numerator=j.done.ifelse(_ONE, _ZERO), denominator=_ONE)


def time_spent(con: BaseBackend, *, since: date | None = None, until: date | None = None) -> ir.Table:
    """Minutes of learning per learner-month, over the learner-months with any time recorded.

    Sources that record no durations (some xAPI players) would otherwise read as zero minutes.
    """
    r = _records(con, since, until)
    r = r.filter(r.minutes.notnull())
    m = r.group_by("person", "rep", "account", month=r.day.truncate("M")).agg(minutes=r.minutes.sum())
    return m.select("rep", "account", day=m.month, numerator=m.minutes, denominator=_ONE)


def learning_days(con: BaseBackend, *, since: date | None = None, until: date | None = None) -> ir.Table:
    """Each learner-month with its number of distinct days with a learning record."""
    r = _records(con, since, until)
    m = r.group_by("person", "rep", "account", month=r.day.truncate("M")).agg(days=r.day.nunique())
    return m.select("person", "rep", "account", "month", "days")


def engagement_frequency(con: BaseBackend, *, since: date | None = None, until: date | None = None) -> ir.Table:
    """Active learning days per active learner-month: the habit micro-lessons aim to build."""
    m = learning_days(con, since=since, until=until)
    return m.select("rep", "account", day=m.month, numerator=m.days.cast("float64"), denominator=_ONE)


def assessment_score(con: BaseBackend, *, since: date | None = None, until: date | None = None) -> ir.Table:
    """Every scored learning record (score as a percentage 0–100), per activity."""
    r = _records(con, since, until)
    r = r.filter(r.score_pct.notnull())
    return r.select("rep", "account", activity=r.activity_id, day=r.day, numerator=r.score_pct, denominator=_ONE)


def pass_rate(con: BaseBackend, *, since: date | None = None, until: date | None = None) -> ir.Table:
    """Every assessment outcome, per activity.

    An outcome is an xAPI "passed" or "failed" statement, or a completion-report row with its
    passed column filled.
    """
    r = _records(con, since, until)
    r = r.filter(_is_outcome(r))
    passed = ibis.cases((r.source == "xapi", r.verb == "passed"), else_=r.success)
    return r.select("rep", "account", activity=r.activity_id, day=r.day, numerator=passed.ifelse(_ONE, _ZERO),
                    denominator=_ONE)


def _is_outcome(r: ir.Table) -> ir.BooleanValue:
    return ((r.source == "xapi") & r.verb.isin(["passed", "failed"])) | (
        (r.source == "completions") & r.success.notnull())


def missing_outcomes(con: BaseBackend) -> str | None:
    """Why a pass rate cannot be measured (no passed or failed record), or None."""
    r = con.table("learning_record")
    if row_count(r.filter(_is_outcome(r)).limit(1)):
        return None
    return "no passed or failed record in learning_record (xAPI passed/failed, or the completion report's passed)"
