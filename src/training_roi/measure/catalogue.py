"""The KPI catalogue: every KPI the product measures, defined once, computed per grain and month.

A KPI is a ratio of sums. Its facts (one Ibis expression over the warehouse, see
:mod:`training_roi.measure.process`) are summed per grain (rep, team, account, activity or the
whole org) and per month, or over a whole period ``[since, until)``; the value is Σ numerator ÷
Σ denominator, so months and groups pool into periods and larger groups exactly as the data
does. A KPI whose source tables are missing or empty, or whose needed fields are all empty, is
*unavailable* with the reason, never zero.

Every KPI says which month a fact belongs to (its *period basis*): deal outcomes — win rate,
deal size, cycle, revenue — by the month the deal closed, deals and pipeline created by the
month they were created, by default; the deal KPIs can be asked for by creation month instead
(``basis="created"``, a cohort of deals, as the evaluation counts them). Months still maturing
are marked provisional (:mod:`training_roi.measure.periods`) and changes compare complete
months only. Facts without a unit (a deal without an owner) count for the org and show at a
finer grain under a placeholder such as ``(no owner)`` (:data:`UNASSIGNED`), so the units add
up to the org.

>>> frame = compute(con, ["win_rate", "csat"], grain="team")  # doctest: +SKIP
>>> changes(frame)  # adds month-over-month and year-over-year changes  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date

import ibis
import ibis.expr.types as ir
import polars as pl
from ibis.backends import BaseBackend

from training_roi._format import describe
from training_roi.measure import customer, learning, process
from training_roi.measure.periods import data_end, mark_provisional
from training_roi.measure.population import grain_names
from training_roi.measure.process import live, month_rows, overlaps, within
from training_roi.measure.sales import BASES, KPIS, KpiSpec, monthly_panel

__all__ = ["BASES", "CATALOGUE", "GRAINS", "UNASSIGNED", "KpiDef", "Options", "Source", "assigned", "availability",
           "changes", "compute", "describe", "kpi_expression"]

GRAINS = ("rep", "team", "account", "activity", "org")
"""Who a KPI is measured for: a rep, a team (the reps sharing a manager), an account, a learning
activity (learning KPIs), or the whole org."""

UNASSIGNED = {"rep": "(no owner)", "team": "(no team)", "account": "(no account)", "activity": "(no activity)"}
"""The grain id of facts without a unit at that grain: a deal, lead or case without an owner, a
rep without a manager, a record without an account or activity. They count for the org too.
At the team grain a fact without an owner is ``(no owner)``; a learning fact of a learner not
linked to a CRM user is ``(no CRM user)`` at the rep and team grains."""


@dataclass(frozen=True)
class Source:
    """A table a KPI reads, and the fields of it that must not all be empty."""

    table: str
    fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class Options:
    """What a computation is asked for: the grain, the window and the study's parameters."""

    grain: str = "org"
    since: date | None = None
    until: date | None = None
    case_score_field: str = "CSAT__c"
    quotas: pl.DataFrame | None = field(default=None, compare=False, hash=False)
    """Monthly quotas: owner_id, month, quota."""
    gross_margin: float | None = None
    basis: str | None = None
    """The period basis (:data:`BASES`) asked of the deal KPIs that offer it; None: each KPI's default."""

    def __post_init__(self) -> None:
        if self.basis is not None and self.basis not in BASES:
            raise ValueError(f"basis {self.basis!r}: expected one of {', '.join(BASES)}")
        if self.grain not in GRAINS:
            raise ValueError(f"grain {self.grain!r}: expected one of {', '.join(GRAINS)}")
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise ValueError(f"the period is empty: since {self.since} is not before until {self.until}")


Facts = Callable[[BaseBackend, Options], ir.Table]
Check = Callable[[BaseBackend, Options], str | None]
Finish = Callable[[ir.Table], tuple[ir.NumericValue, ir.NumericValue]]


@dataclass(frozen=True)
class KpiDef:
    """One KPI: what it is (label, unit, direction, grains, sources, definition) and its facts.

    ``unit`` says how values read: ``rate`` (a share), ``money``, ``money/day``, ``days``,
    ``hours``, ``minutes``, ``count``, ``score``. ``components`` are the fact columns summed per
    group (those in ``distinct`` are counted distinct instead); ``finish`` turns them into the
    numerator and denominator when the KPI is not simply their ratio.

    ``bases`` are the period bases (:data:`BASES`) a deal KPI can be dated by, its default
    first; a KPI with a single way of dating its facts says it in ``dated_by`` instead (``due
    month``, ``month end``, …).
    """

    name: str
    label: str
    unit: str
    higher_is_better: bool
    grains: tuple[str, ...]
    sources: tuple[Source, ...]
    definition: str
    facts: Facts = field(repr=False)
    category: str = "sales"
    any_source: tuple[Source, ...] = ()
    check: Check | None = field(default=None, repr=False)
    components: tuple[str, ...] = ("numerator", "denominator")
    distinct: tuple[str, ...] = ()
    finish: Finish | None = field(default=None, repr=False)
    bases: tuple[str, ...] = ()
    dated_by: str = ""

    def basis(self, asked: str | None = None) -> str | None:
        """The basis used when ``asked`` is asked for: it if offered, else the default (None: one way only)."""
        if not self.bases:
            return None
        return asked if asked in self.bases else self.bases[0]

    def period_label(self, asked: str | None = None) -> str:
        """Which month a value belongs to, in words: ``close month``, ``creation month``, ``due month``."""
        basis = self.basis(asked)
        return BASES[basis] if basis is not None else self.dated_by

    def cohort(self, asked: str | None = None) -> bool:
        """Whether the KPI is then a deal outcome dated by creation month (a cohort still maturing)."""
        return "close" in self.bases and self.basis(asked) == "created"


_F64 = "float64"
_EXACT = "decimal(38, 12)"


def _sales_facts(spec: KpiSpec) -> Facts:
    """Facts of a sales.py KPI: its monthly panel sums, plus unit-months for per-month figures."""
    def facts(con: BaseBackend, o: Options) -> ir.Table:
        unit = "account" if o.grain == "account" else "rep"
        basis = o.basis if o.basis in spec.bases else spec.bases[0]
        p = monthly_panel(con, start=o.since, end=o.until, unit=unit, basis=basis, unassigned=True)
        per_month = spec.denominator == "months"
        if per_month:  # a figure per unit-month needs the unit: deals without one add neither amount nor months
            p = p.filter(p.unit_id.notnull())
        rows = p.select(**{unit: p.unit_id}, day=p.month, numerator=p[spec.numerator].cast(_F64),
                        denominator=ibis.literal(0.0) if per_month else p[spec.denominator].cast(_F64))
        if not per_month:
            return rows
        # A unit's months run from its first to its last month with a deal.
        s = p.group_by(u=p.unit_id).agg(lo=p.month.min().cast("timestamp"), hi=p.month.max().cast("timestamp"))
        g = month_rows(s, ("u",), s.lo, s.hi, "m")
        return rows.union(g.select(**{unit: g.u}, day=g.m, numerator=ibis.literal(0.0), denominator=ibis.literal(1.0)))
    return facts


def _quota(con: BaseBackend, o: Options) -> ir.Table:
    assert o.quotas is not None
    if missing := {"owner_id", "month", "quota"} - set(o.quotas.columns):
        raise ValueError(f"quotas lack the column(s) {', '.join(sorted(missing))}: expected owner_id, month, quota")
    q = ibis.memtable(o.quotas.select(q_owner=pl.col("owner_id").cast(pl.String), quota=pl.col("quota").cast(
        pl.Float64), q_month=pl.col("month").cast(pl.Date).dt.truncate("1mo")))
    q = q.filter(overlaps(q.q_month, o.since, o.until))
    w = live(con.table("crm_opportunity"))
    w = w.filter(w.is_won.fill_null(False) & w.close_date.notnull())
    w = w.filter(within(w.close_date, o.since, o.until))
    w = w.semi_join(q, (w.owner_id == q.q_owner) & (w.close_date.truncate("M") == q.q_month))
    won = w.select(rep=w.owner_id, day=w.close_date, numerator=w.amount.cast(_F64).fill_null(0.0),
                   denominator=ibis.literal(0.0))
    return won.union(q.select(rep=q.q_owner, day=q.q_month, numerator=ibis.literal(0.0), denominator=q.quota))


_REP, _ALL, _LEARN = ("rep", "team", "org"), ("rep", "team", "account", "org"), GRAINS
_OPP = "crm_opportunity"


def _window(fn: Callable[..., ir.Table]) -> Facts:
    return lambda con, o: fn(con, since=o.since, until=o.until)


def _entries() -> list[KpiDef]:
    sales = [KpiDef(s.name, s.label, s.unit, s.higher_is_better, _ALL,
                    (Source(_OPP, ("created_at", "is_closed", "is_won", "amount", "close_date")),),
                    s.definition + ("; each unit's months run from its first to its last month with a deal"
                                    if s.denominator == "months" else ""), _sales_facts(s), bases=s.bases)
             for s in KPIS.values()]
    k = KpiDef
    return [*sales,
        k("lead_conversion", "lead conversion rate", "rate", True, _REP, (Source("crm_lead", ("created_at",)),),
          "leads converted (IsConverted) ÷ leads created, by the day the lead was created",
          _window(process.lead_conversion)),
        k("pipeline_velocity", "pipeline velocity", "money/day", True, _ALL,
          (Source(_OPP, ("created_at", "is_closed", "is_won", "amount", "close_date")),),
          "open opportunities at month end (averaged over the months) × win rate × average won deal size ÷ "
          "sales cycle days; win rate, deal size and cycle as in the catalogue, by the same month basis",
          lambda con, o: process.pipeline_velocity(con, unit="account" if o.grain == "account" else "rep",
                                                   since=o.since, until=o.until, basis=o.basis or "close",
                                                   unassigned=True),
          components=("open", "month_ends", "won_amount", "closed", "cycle_days_sum"),
          distinct=("month_ends",), finish=lambda g: (
              g.open / g.month_ends.nullif(0) * g.won_amount / g.closed.nullif(0),
              g.cycle_days_sum / g.closed.nullif(0))),
        k("quota_attainment", "quota attainment", "rate", True, _REP,
          (Source(_OPP, ("is_won", "amount", "close_date", "owner_id")),),
          "revenue won (by close date) ÷ quota, over the rep-months that have a quota", _quota,
          check=lambda con, o: None if o.quotas is not None and o.quotas.height else "no quotas given"),
        k("lead_response_hours", "lead first-response time", "hours", False, _REP,
          (Source("crm_lead", ("created_at",)), Source("crm_activity", ("who_id", "created_at"))),
          "hours from a lead's creation to the first task or event on it (WhoId), averaged over answered leads",
          _window(process.lead_response), "process"),
        k("case_response_hours", "case first-response time", "hours", False, _ALL,
          (Source("crm_case", ("created_at",)),),
          "hours from a case's creation to the first task or event on it (WhatId) or its close, whichever is "
          "first, averaged over answered cases", _window(process.case_response), "process",
          any_source=(Source("crm_activity", ("what_id", "created_at")), Source("crm_case", ("closed_at",)))),
        k("task_completion_rate", "tasks completed on time", "rate", True, _ALL,
          (Source("crm_activity", ("kind", "activity_date", "completed_at")),),
          "tasks closed with CompletedDateTime on or before ActivityDate ÷ tasks due, by due date",
          _window(process.task_completion), "process"),
        k("activity_volume", "activities per rep-month", "count", True, _REP, (Source("crm_activity", ("owner_id",)),),
          "tasks and events ÷ rep-months (each rep from their first to their last month with an activity)",
          _window(process.activity_volume), "process"),
        k("data_completeness", "required opportunity fields filled", "rate", True, _ALL,
          (Source(_OPP, ("created_at",)),),
          "filled of Amount, CloseDate, StageName, AccountId ÷ 4 × opportunities created",
          _window(process.data_completeness), "process"),
        k("stale_opportunities", "stale open opportunities", "rate", False, _ALL,
          (Source(_OPP, ("created_at",)), Source("crm_opportunity_history", ("opportunity_id", "created_at"))),
          f"open opportunities with no stage change in {process.STALE_DAYS} days at month end ÷ open "
          "opportunities at month end", _window(process.stale_opportunities), "process"),
        k("system_adoption", "system adoption", "rate", True, _REP, (Source("crm_user", ("is_active",)),),
          "licensed (IsActive) users owning a record or activity created that month ÷ licensed users",
          _window(process.system_adoption), "process",
          any_source=tuple(Source(t, ("owner_id", "created_at")) for t in process.OWNED_TABLES)),
        k("csat", "customer satisfaction (CSAT)", "score", True, _ALL, (Source("crm_case", ("custom_fields",)),),
          "mean of the case satisfaction field (1–5), by the day the case closed",
          lambda con, o: customer.csat(con, field=o.case_score_field, since=o.since, until=o.until), "customer",
          check=lambda con, o: customer.missing_csat(con, field=o.case_score_field)),
        k("nps", "net promoter score", "score", True, _ALL, (Source("survey_response", ("question", "score")),),
          "% promoters (9–10) − % detractors (0–6) among survey answers to questions whose id contains 'nps' "
          "(0–10 scale)", _window(customer.nps), "customer", check=lambda con, o: customer.missing_nps(con)),
        k("churn_rate", "churn rate", "rate", False, _ALL, (Source(_OPP, ("type", "is_closed", "close_date")),),
          "renewals due (closed, by CloseDate) that were lost ÷ renewals due", _window(customer.churn), "customer",
          check=lambda con, o: customer.missing_renewals(con)),
        k("net_revenue_retention", "net revenue retention", "rate", True, _ALL,
          (Source(_OPP, ("type", "is_closed", "close_date", "amount")),),
          "(starting recurring revenue + upsell − churned) ÷ starting: starting = amount of renewals due, churned "
          "= amount of those lost, upsell = upsells won in the period", _window(customer.net_revenue_retention),
          "customer", check=lambda con, o: customer.missing_renewals(con)),
        k("customer_lifetime_value", "customer lifetime value", "money", True, ("org",),
          (Source(_OPP, ("type", "is_won", "close_date", "amount", "account_id")),),
          "average won revenue per customer account per year × gross margin ÷ churn rate",
          lambda con, o: customer.lifetime_value(con, gross_margin=o.gross_margin or 0.0, since=o.since,
                                                 until=o.until),
          "customer", components=("margin_revenue", "customer_months", "churned", "due"),
          finish=lambda g: (g.margin_revenue / g.customer_months.nullif(0) * 12, g.churned / g.due.nullif(0)),
          check=lambda con, o: customer.missing_renewals(con) if o.gross_margin else "no gross margin given"),
        k("enrolment_rate", "learners enrolled", "rate", True, _ALL,
          (Source("lms_learner", ("learner_id",)), Source("learning_record", ("occurred_at",))),
          "registered learners (lms_learner) with any learning record in the month ÷ registered learners",
          _window(learning.enrolment), "learning"),
        k("completion_rate", "completion rate", "rate", True, _LEARN, (),
          "enrolments completed ÷ enrolments started, per learner and activity, by start date",
          _window(learning.completion), "learning",
          any_source=(Source("learning_record", ("activity_id",)), Source("lms_completion", ("course_id",)))),
        k("time_spent_minutes", "time spent learning", "minutes", True, _ALL,
          (Source("learning_record", ("minutes",)),),
          "minutes of learning ÷ learner-months with time recorded", _window(learning.time_spent), "learning"),
        k("assessment_score", "assessment score", "score", True, _LEARN, (Source("learning_record", ("score_pct",)),),
          "mean score (0–100 %) of scored learning records", _window(learning.assessment_score), "learning"),
        k("pass_rate", "pass rate", "rate", True, _LEARN, (Source("learning_record", ("verb",)),),
          "passed ÷ (passed + failed) assessment outcomes", _window(learning.pass_rate), "learning",
          check=lambda con, o: learning.missing_outcomes(con)),
        k("engagement_frequency", "active learning days per learner-month", "count", True, _ALL,
          (Source("learning_record", ("occurred_at",)),),
          "distinct days with a learning record ÷ active learner-months (micro-lesson engagement)",
          _window(learning.engagement_frequency), "learning"),
    ]


_DATED_BY: dict[str, str | tuple[str, ...]] = {
    "pipeline_velocity": ("close", "created"), "quota_attainment": "close month",
    "lead_conversion": "lead's creation month", "lead_response_hours": "lead's creation month",
    "case_response_hours": "case's creation month", "task_completion_rate": "due month",
    "activity_volume": "activity month", "data_completeness": "creation month", "stale_opportunities": "month end",
    "system_adoption": "month of use", "csat": "case's close month", "nps": "answer month",
    "churn_rate": "renewal's close month", "net_revenue_retention": "close month",
    "customer_lifetime_value": "close month", "enrolment_rate": "month of learning",
    "completion_rate": "enrolment's start month", "time_spent_minutes": "month of learning",
    "assessment_score": "month of the assessment", "pass_rate": "month of the assessment",
    "engagement_frequency": "month of learning",
}
"""How each KPI outside sales.py dates its facts: the bases it offers, or its one month in words."""


def _dated(k: KpiDef) -> KpiDef:
    how = _DATED_BY.get(k.name)
    if isinstance(how, tuple):
        return replace(k, bases=how)
    return replace(k, dated_by=how) if how is not None else k


CATALOGUE: dict[str, KpiDef] = {k.name: _dated(k) for k in _entries()}
"""Every KPI, by name, in the order reports show them: sales, process, customer, learning."""


def _kpi(name: str) -> KpiDef:
    if name not in CATALOGUE:
        raise ValueError(f"unknown KPI {name!r}: expected one of {', '.join(CATALOGUE)}")
    return CATALOGUE[name]


def _source_reason(con: BaseBackend, s: Source, tables: set[str]) -> str | None:
    if s.table not in tables:
        return f"the warehouse has no {s.table} table"
    t = con.table(s.table)
    if "is_deleted" in t.columns:
        t = t.filter(~t.is_deleted.fill_null(False))
    counts = t.aggregate(_rows=t.count(), **{f"_{f}": t[f].count() for f in s.fields}).to_pyarrow().to_pylist()[0]
    if not counts["_rows"]:
        return f"{s.table} is empty"
    empty = [f for f in s.fields if not counts[f"_{f}"]]
    return f"{s.table}.{empty[0]} is empty in every row" if empty else None


def _reason(con: BaseBackend, kpi: KpiDef, o: Options) -> str | None:
    if o.grain not in kpi.grains:
        return f"{kpi.label} is measured per {', '.join(kpi.grains)}, not per {o.grain}"
    tables = set(con.list_tables())
    for s in kpi.sources:
        if (why := _source_reason(con, s, tables)) is not None:
            return why
    if kpi.any_source:
        whys = [_source_reason(con, s, tables) for s in kpi.any_source]
        if all(whys):
            return "; ".join(w for w in whys if w)
    if o.grain == "team" and (why := _source_reason(con, Source("crm_user", ("manager_id",)), tables)):
        return f"teams are the reps sharing a manager: {why}"
    return kpi.check(con, o) if kpi.check is not None else None


def availability(con: BaseBackend, name: str, *, options: Options | None = None) -> str | None:
    """None when KPI ``name`` can be measured (at ``options.grain``), else why not, naming the table or field."""
    return _reason(con, _kpi(name), options or Options())


def assigned(frame: pl.DataFrame) -> pl.DataFrame:
    """The rows of ``frame`` (from :func:`compute`) that belong to a unit.

    The placeholders of :data:`UNASSIGNED` are left out: an evaluation's per-unit panels have no
    "(no owner)" unit.
    """
    return frame.filter(~pl.col("grain_id").is_in([*UNASSIGNED.values(), "(no CRM user)"]))


def _grain_id(f: ir.Table, kpi: KpiDef, grain: str) -> ir.StringValue:
    """Each fact's grain id, with the placeholder of :data:`UNASSIGNED` where it has no unit."""
    if grain == "org":
        return ibis.literal("org")
    no_rep = "(no CRM user)" if kpi.category == "learning" else UNASSIGNED["rep"]
    if grain == "team":
        return ibis.cases((f.rep.isnull(), no_rep), (f.t_team.isnull(), UNASSIGNED["team"]), else_=f.t_team)
    return f[grain].fill_null(no_rep if grain == "rep" else UNASSIGNED[grain])


def _expression(con: BaseBackend, kpi: KpiDef, o: Options, monthly: bool) -> ir.Table:
    f = kpi.facts(con, o)
    keys = {c: (f[c] if c in f.columns else ibis.null()).cast("string") for c in ("rep", "account", "activity")}
    sums = [c for c in kpi.components if c not in kpi.distinct]
    f = f.select(**keys, day=f.day.cast("date"), **{c: f[c].cast(_F64) for c in sums},
                 **{c: f[c] for c in kpi.distinct})
    if o.grain == "team":
        u = con.table("crm_user").select(t_user="user_id", t_team="manager_id")
        f = f.left_join(u, f.rep == u.t_user)
    f = f.mutate(grain_id=_grain_id(f, kpi, o.grain), period=f.day.truncate("M") if monthly else ibis.null("date"))
    # Summed as exact decimals (12 places): a float sum split over the engine's threads adds in an
    # order that varies from run to run, and the same data must give the same bytes.
    g = f.group_by("grain_id", "period").agg(**{c: f[c].cast(_EXACT).sum().cast(_F64).fill_null(0.0) for c in sums},
                                             **{c: f[c].nunique() for c in kpi.distinct})
    num, den = kpi.finish(g) if kpi.finish is not None else (g.numerator, g.denominator)
    return g.select("grain_id", "period", numerator=num.cast(_F64), denominator=den.cast(_F64),
                    value=(num / den.nullif(0)).cast(_F64))


def kpi_expression(con: BaseBackend, name: str, *, options: Options | None = None, monthly: bool = True) -> ir.Table:
    """KPI ``name`` as an Ibis expression: grain_id, period, numerator, denominator, value.

    One row per grain id and month (``monthly``), or per grain id over ``[since, until)`` with a
    null period. Check :func:`availability` first: the expression assumes its sources exist.
    """
    return _expression(con, _kpi(name), options or Options(), monthly)


def _open_facts(con: BaseBackend, o: Options) -> ir.Table:
    unit = "account" if o.grain == "account" else "rep"
    p = monthly_panel(con, start=o.since, end=o.until, unit=unit, basis="created", unassigned=True)
    return p.select(**{unit: p.unit_id}, day=p.month, numerator=(p.opportunities - p.closed).cast(_F64),
                    denominator=p.opportunities.cast(_F64))


_OPEN_DEALS = KpiDef("open_deals", "deals still open", "rate", False, _ALL, (Source(_OPP, ("created_at",)),),
                     "deals still open ÷ deals created, by creation month", _open_facts)
"""The share of each creation month's deals still open: when a cohort's outcomes are provisional."""


_SCHEMA = {"kpi": pl.String, "period": pl.Date, "grain_id": pl.String, "value": pl.Float64,
           "numerator": pl.Float64, "denominator": pl.Float64, "unit": pl.String, "reason": pl.String,
           "basis": pl.String, "provisional": pl.Boolean, "provisional_reason": pl.String, "as_of": pl.Date}


def compute(con: BaseBackend, names: Sequence[str], *, monthly: bool = True, since: date | None = None,
            until: date | None = None, grain: str = "org", case_score_field: str = "CSAT__c",
            quotas: pl.DataFrame | None = None, gross_margin: float | None = None,
            basis: str | None = None, as_of: date | None = None) -> pl.DataFrame:
    """KPIs ``names`` per grain id and month (or over the whole period), in long format.

    Columns: kpi, period (month start, or null for the whole period), grain_id, value,
    numerator, denominator, unit, reason, basis (which month a value belongs to, in words:
    ``close month``, ``creation month``, ``due month``, …), provisional and provisional_reason
    (:func:`training_roi.measure.periods.mark_provisional`), as_of (the latest date the KPI's
    sources record). An unavailable KPI is one row with a null value and the reason; a KPI with
    no data in the period likewise says so. ``basis`` (``close`` or ``created``) dates the deal
    KPIs that offer it; None keeps each KPI's default. ``quotas`` (owner_id, month, quota)
    enables quota attainment; ``gross_margin`` (a share) enables lifetime value. ``as_of``: the
    day the export was taken, when the user knows it; by default the latest date the sources record.
    """
    o = Options(grain, since, until, case_score_field, quotas, gross_margin, basis)
    parts = [pl.DataFrame(schema=_SCHEMA)]
    ends: dict[str, date | None] = {}
    for name in names:
        kpi = _kpi(name)
        reason, got = _reason(con, kpi, o), pl.DataFrame()
        if reason is None:
            got = pl.DataFrame(_expression(con, kpi, o, monthly).to_pyarrow())
            got = got.sort("grain_id", "period")
            per = f" per {grain}" if grain != "org" else ""
            span = f"from {since or 'the start'} to {until or 'the end'} (exclusive)" if since or until else "at all"
            reason = None if got.height else f"no data for {kpi.label}{per} {span}"
        if reason is not None:
            got = pl.DataFrame({"reason": [reason], "period": pl.Series([None], dtype=pl.Date)})
        end = as_of or data_end(con, [s.table for s in (*kpi.sources, *kpi.any_source)], ends)
        share = None
        if monthly and reason is None and kpi.cohort(basis):
            share = pl.DataFrame(_expression(con, _OPEN_DEALS, o, monthly).to_pyarrow()).select(
                "grain_id", "period", share=pl.col("value"))
        got = mark_provisional(got.with_columns(pl.col("period").cast(pl.Date)), as_of=end, since=since,
                               until=until, open_share=share)
        parts.append(got.with_columns(kpi=pl.lit(name), unit=pl.lit(kpi.unit), basis=pl.lit(kpi.period_label(basis)),
                                      as_of=pl.lit(end, pl.Date)))
    return pl.concat(parts, how="diagonal_relaxed").select(pl.col(c).cast(t) for c, t in _SCHEMA.items())


def changes(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` (from :func:`compute`, monthly) with each value's change over a month and a year.

    ``mom`` / ``yoy``: value minus the same KPI and grain id's value one month / twelve months
    earlier (null when that month has no value); ``mom_rel`` / ``yoy_rel``: that change as a
    share of the earlier value's magnitude. Changes compare complete months only: when either
    month is provisional (a ``provisional`` column, when the frame has one) the change is left
    empty and ``change_note`` says which month is provisional.
    """
    keys = ["kpi", "grain_id", "period"]
    if "provisional" not in frame.columns:
        frame = frame.with_columns(provisional=pl.lit(False))
    out = frame.with_columns(pl.col("provisional").fill_null(False).alias("_prov"))
    for tag, step, what in (("mom", "1mo", "month-over-month"), ("yoy", "1y", "year-over-year")):
        before = out.filter(pl.col("period").is_not_null()).select(
            "kpi", "grain_id", pl.col("period").dt.offset_by(step), pl.col("value").alias(f"_{tag}"),
            pl.col("_prov").alias(f"_{tag}_prov"), pl.col("period").alias(f"_{tag}_month"))
        out = out.join(before, on=keys, how="left")
        against = pl.col(f"_{tag}_prov").fill_null(False)
        earlier = pl.when(pl.col("_prov") | against).then(None).otherwise(pl.col(f"_{tag}"))
        out = out.with_columns(
            (pl.col("value") - earlier).alias(tag),
            ((pl.col("value") - earlier) / earlier.abs().replace(0.0, None)).alias(f"{tag}_rel"),
            pl.when(against & ~pl.col("_prov")).then(pl.format(
                f"no {what} change: {{}} is provisional", pl.col(f"_{tag}_month").dt.strftime("%b %Y")))
            .alias(f"_{tag}_note"),
        ).drop(f"_{tag}", f"_{tag}_prov", f"_{tag}_month")
    note = pl.when(pl.col("_prov")).then(pl.lit("no change computed: this month is provisional")).otherwise(
        pl.concat_str("_mom_note", "_yoy_note", separator="; ", ignore_nulls=True).replace("", None))
    return out.with_columns(change_note=note).drop("_prov", "_mom_note", "_yoy_note")


def named_kpis(con: BaseBackend, names: Sequence[str], *, monthly: bool = True, since: date | None = None,
               until: date | None = None, grain: str = "org", basis: str | None = None,
               case_score_field: str = "CSAT__c", gross_margin: float | None = None,
               as_of: date | None = None) -> tuple[pl.DataFrame, dict[str, str]]:
    """KPIs ``names`` as :func:`compute` gives them, with their :func:`changes` when monthly, and each unit named.

    At a grain finer than the org the frame gains a ``name`` column: the name the warehouse knows
    for each grain id (:func:`~training_roi.measure.population.grain_names`; "team of" a team's
    manager), null where it knows none. Also returns those names by grain id. The command line's
    ``kpis`` and the server's KPIs by month are both this table, so they cannot drift apart.
    """
    frame = compute(con, names, monthly=monthly, since=since, until=until, grain=grain,
                    case_score_field=case_score_field, gross_margin=gross_margin, basis=basis, as_of=as_of)
    frame = changes(frame) if monthly else frame
    units = grain_names(con, grain, frame["grain_id"].drop_nulls().unique().to_list())
    if grain != "org":
        frame = frame.with_columns(name=pl.col("grain_id").replace_strict(units, default=None, return_dtype=pl.String))
    return frame, units
