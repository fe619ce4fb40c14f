"""Sales KPIs per rep: by calendar month, and in windows anchored at each learner's completion.

The seed model compares a unit's conversion before training (its baseline) with its conversion
in an attribution window after it, and the same for comparison units. Everything here is an
Ibis expression over the canonical tables, so it runs where the warehouse runs; only the small
per-unit results are pulled into Python by the isolation stage.

For the evaluation an opportunity belongs to a period by the day it was **created**: training can
only change deals worked after it, and a deal's outcome is known at its close. The monthly KPI
tables (:mod:`training_roi.measure.catalogue`) may instead date outcomes by the month the deal
closed (:data:`BASES`): a creation month's win rate keeps changing while its deals are open, a
close month's does not once the month is over. Deleted opportunities never count. Win rate
counts closed deals only (open ones have no outcome yet).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import ibis
import ibis.expr.types as ir
from ibis.backends import BaseBackend

from training_roi._format import describe_change, describe_value
from training_roi.warehouse.connection import utc_day

__all__ = [
    "BASES",
    "COMPLETION_RULES",
    "DAYS_PER_MONTH",
    "KPIS",
    "KPI_NAMES",
    "UNITS",
    "KpiSpec",
    "completions",
    "describe_change",
    "describe_value",
    "group_monthly",
    "monthly_panel",
    "window_kpis",
    "window_opportunities",
    "windows_kpis",
]

BASES = {"close": "close month", "created": "creation month"}
"""How a deal's figures are placed in months: ``close`` — outcomes (closed, won, revenue, cycle)
in the month the deal closed (its ``CloseDate``), deals created and their amount in the month they
were created; ``created`` — everything in the month the deal was created (a cohort of deals)."""

DAYS_PER_MONTH = 30.4375
"""Average days in a month: per-month KPIs divide by exposure in these months."""


@dataclass(frozen=True)
class KpiSpec:
    """How a KPI is pooled over a group: Σ numerator / Σ denominator over its units.

    Pooling ratios of sums (rather than averaging each unit's ratio) weighs a unit by its
    volume, keeps units with no deals in a window meaningful, and lets one difference-in-
    differences routine serve every KPI. A ``denominator`` of ``months`` means the unit's
    exposure in the window, in months: per-rep-month figures.
    """

    name: str
    label: str
    numerator: str
    denominator: str
    unit: str
    """How values are shown: ``rate`` (a share), ``money``, ``days``."""
    higher_is_better: bool = True
    definition: str = ""
    bases: tuple[str, ...] = ("close", "created")
    """The period bases (:data:`BASES`) the monthly KPI tables offer for it, its default first."""

    def label_for(self, unit: str) -> str:
        """The label with the study's unit: "per rep-month" becomes "per account-month"."""
        return self.label.replace("rep-month", f"{unit}-month")


KPIS: dict[str, KpiSpec] = {k.name: k for k in (
    KpiSpec("win_rate", "win rate", "won", "closed", "rate",
            definition="won deals / closed deals"),
    KpiSpec("avg_won_deal_size", "average won deal size", "won_amount", "won", "money",
            definition="revenue won / won deals"),
    KpiSpec("sales_cycle_days", "sales cycle (days)", "cycle_days_sum", "closed", "days", higher_is_better=False,
            definition="days from creation to close, averaged over closed deals"),
    KpiSpec("pipeline_created", "pipeline created per rep-month", "pipeline_created", "months", "money",
            definition="amount of deals created / months of exposure", bases=("created",)),
    KpiSpec("revenue_per_rep", "revenue won per rep-month", "won_amount", "months", "money",
            definition="revenue won / months of exposure"),
)}
"""The sales KPIs a study can name, in the order reports show them."""

KPI_NAMES = tuple(KPIS)


_DAY_SECONDS = 86_400


UNITS = {"rep": "owner_id", "account": "account_id"}
"""What a unit is, and the opportunity column that names it: reps own deals, accounts buy them."""


def _unit_column(unit: str) -> str:
    if unit not in UNITS:
        raise ValueError(f"unit {unit!r}: expected one of {', '.join(UNITS)}")
    return UNITS[unit]


def within(day: ir.DateValue, since: date | None, until: date | None) -> ir.BooleanValue:
    """Whether ``day`` falls in ``[since, until)`` (either bound may be open)."""
    keep: ir.BooleanValue = ibis.literal(True)
    if since is not None:
        keep &= day >= since
    if until is not None:
        keep &= day < until
    return keep


def _opportunities(con: BaseBackend, unit: str = "rep", deal_types: Sequence[str] = (),
                   unassigned: bool = False) -> ir.Table:
    """Live opportunities of a unit (owner or account), their creation day, outcome, amount and cycle.

    ``deal_types``: only opportunities of these types (``Type``: Renewal, Upsell, …); all when empty.
    ``unassigned``: keep deals without a unit (no owner, or no account), with a null unit_id.
    """
    o = con.table("crm_opportunity")
    column = o[_unit_column(unit)]
    o = o.filter(~o.is_deleted & o.created_at.notnull())
    if not unassigned:
        o = o.filter(column.notnull())
    if deal_types:
        o = o.filter(o.type.isin(list(deal_types)))
    created = utc_day(con, o.created_at)
    return o.select(
        unit_id=o[_unit_column(unit)],
        opportunity_id=o.opportunity_id,
        created=created,
        closed=o.is_closed.fill_null(False),
        won=o.is_won.fill_null(False),
        amount=o.amount,  # decimal: sums stay exact, so the same data always gives the same figures
        cycle_days=o.close_date.delta(created, unit="day"),
        close_date=o.close_date,
    )


_SUMS = ("opportunities", "closed", "won", "won_amount", "pipeline_created", "cycle_days_sum")


def _sums(t: ir.Table, by: list[str]) -> ir.Table:
    """The additive columns behind every KPI, for opportunities ``t`` grouped ``by``."""
    return t.group_by(by).agg(
        opportunities=t.count(),
        closed=t.closed.sum(),
        won=t.won.sum(),
        won_amount=(t.won.ifelse(t.amount.fill_null(0), 0)).sum(),
        pipeline_created=t.amount.fill_null(0).sum(),
        cycle_days_sum=t.closed.ifelse(t.cycle_days, 0).sum(),
    )


def _kpis(t: ir.Table, by: list[str]) -> ir.Table:
    """The KPI columns of opportunities ``t`` grouped ``by``; counts stay so rates can be pooled."""
    return _ratios(_sums(t, by))


def _ratios(s: ir.Table) -> ir.Table:
    """The KPIs from their sums."""
    return s.mutate(
        win_rate=lambda s: (s.won / s.closed.nullif(0)).cast("float64"),
        avg_won_deal_size=lambda s: s.won_amount / s.won.nullif(0),
        sales_cycle_days=lambda s: s.cycle_days_sum / s.closed.nullif(0),
        revenue_per_rep=lambda s: s.won_amount,
    )


def monthly_panel(con: BaseBackend, *, start: date | None = None, end: date | None = None,
                  unit: str = "rep", deal_types: Sequence[str] = (), basis: str = "created",
                  unassigned: bool = False) -> ir.Table:
    """KPIs per unit (``rep`` or ``account``) and calendar month, within ``[start, end)``.

    ``basis`` (:data:`BASES`): ``created`` dates every column by the deal's creation month;
    ``close`` dates opportunities and pipeline_created by creation and the outcomes (closed,
    won, won_amount, cycle_days_sum) by the month of ``CloseDate`` — a closed deal without one
    cannot be placed and is left out of the outcomes. The window applies to the date each column
    is placed by. ``unassigned`` keeps deals without a unit, under a null unit_id.

    Columns: unit_id, month (first day), opportunities, closed, won, won_amount,
    pipeline_created, cycle_days_sum and the KPIs of :data:`KPI_NAMES`.
    """
    if basis not in BASES:
        raise ValueError(f"basis {basis!r}: expected one of {', '.join(BASES)}")
    t = _opportunities(con, unit, deal_types, unassigned)
    if basis == "created":
        t = t.filter(within(t.created, start, end))
        return _kpis(t.mutate(month=t.created.truncate("M")), ["unit_id", "month"])
    made = t.filter(within(t.created, start, end))
    made = _sums(made.mutate(month=made.created.truncate("M"), closed=False, won=False),
                 ["unit_id", "month"])
    ended = t.filter(t.closed & t.close_date.notnull())
    ended = ended.filter(within(ended.close_date, start, end))
    ended = _sums(ended.mutate(month=ended.close_date.truncate("M")), ["unit_id", "month"]).mutate(
        opportunities=0, pipeline_created=0)
    types = _sums(t.mutate(month=t.created.truncate("M")), ["unit_id", "month"]).schema()
    both = made.select(**{c: made[c].cast(types[c]) for c in types}).union(
        ended.select(**{c: ended[c].cast(types[c]) for c in types}))
    return _ratios(both.group_by(["unit_id", "month"]).agg(**{c: both[c].sum() for c in _SUMS}))


def group_monthly(con: BaseBackend, groups: ir.Table, *, unit: str = "rep", deal_types: Sequence[str] = ()) -> ir.Table:
    """KPI sums per group and calendar month of creation; ``groups`` maps unit_id to ``group``.

    The same columns as :func:`monthly_panel`, pooled over each group's units in the engine (a
    few dozen rows leave it, not one per unit and month).
    """
    t = _opportunities(con, unit, deal_types)
    g = groups.select(g_unit=groups.unit_id, group=groups.group)
    j = t.join(g, t.unit_id == g.g_unit)
    return _kpis(j.mutate(month=j.created.truncate("M")), ["group", "month"])


COMPLETION_RULES: dict[str, str] = {
    "CompletedOrPassed": "a completed or a passed record, whichever comes first",
    "Completed": "a completed record",
    "Passed": "a passed record, or a completed one marked successful",
    "CompletedAndPassed": "both a completed and a passed record, dated by the later of the two",
    "NotApplicable": "any record about the activity: taking part is enough",
    "completed": "the same as CompletedOrPassed",
    "passed": "the same as Passed",
    "min_score": "a completed or passed record with a score of at least min_score %",
}
"""The completion rules of :func:`completions`: cmi5's moveOn criteria, and the product's own names."""


def completions(
    con: BaseBackend, activities: list[str], *, rule: str = "completed", min_score: float | None = None,
    unit: str = "rep", since: datetime | None = None, until: datetime | None = None,
) -> ir.Table:
    """Each unit's first qualifying completion of the program: (unit_id, completed_at, learners).

    For ``rep`` a unit is the CRM user the learner is; for ``account`` it is the account of the
    contact the learner is (customer education), trained from its first learner's completion.
    ``since`` / ``until``: only completions in ``[since, until)`` count (the program's dates).

    ``rule`` (:data:`COMPLETION_RULES`) is one of cmi5's moveOn criteria — ``CompletedOrPassed``
    (what ``completed`` means too), ``Completed``, ``Passed`` (also ``passed``),
    ``CompletedAndPassed``, ``NotApplicable`` — or ``min_score`` (a completed or passed record with
    a score of at least ``min_score`` %). Authoring tools often send only one of ``completed`` and
    ``passed``; a ``completed`` statement whose result says ``success: true`` is a pass as well,
    and the completion report's rows are completed records, passed when their passed column says so.
    Under ``CompletedAndPassed`` a learner is trained when they have both, at the later one.
    Voided statements are already absent from ``learning_record``.

    Only a record *about* one of ``activities`` counts. A lesson's record rolls up to its course
    through ``course_id`` (right for time spent), but completing one lesson is not completing the
    course: counting it would date each learner's training to their first lesson, weeks before
    they finished, and would count learners who dropped out after a lesson as trained.
    """
    if rule not in COMPLETION_RULES:
        raise ValueError(f"completion rule {rule!r}: expected one of {', '.join(COMPLETION_RULES)}")
    r = con.table("learning_record")
    li = con.table("learner_identity")
    r = r.filter(r.activity_id.isin(activities))
    completed = r.verb == "completed"
    passed = (r.verb == "passed") | (completed & r.success.fill_null(False))
    if rule == "CompletedAndPassed":
        per = r.group_by("learner_key", "activity_id").agg(
            first_completed=r.occurred_at.min(where=completed), first_passed=r.occurred_at.min(where=passed))
        per = per.filter(per.first_completed.notnull() & per.first_passed.notnull())
        r = per.select("learner_key", occurred_at=ibis.greatest(per.first_completed, per.first_passed))
    else:
        done = {"Completed": completed, "Passed": passed, "passed": passed,
                "NotApplicable": ibis.literal(True)}.get(rule, completed | passed)
        if rule == "min_score":
            done = done & (r.score_pct >= (min_score if min_score is not None else 0))
        r = r.filter(done)
    if since is not None:
        r = r.filter(r.occurred_at >= since)
    if until is not None:
        r = r.filter(r.occurred_at < until)
    j = r.join(li, "learner_key")
    key = j.crm_user_id if _unit_column(unit) == "owner_id" else j.crm_account_id
    j = j.filter(key.notnull())
    return j.group_by(unit_id=key).agg(completed_at=j.occurred_at.min(), learners=j.learner_key.nunique())


def window_kpis(
    con: BaseBackend,
    anchors: ir.Table,
    *,
    baseline_days: int,
    window_days: int,
    ramp_days: int = 0,
    unit: str = "rep",
    deal_types: Sequence[str] = (),
) -> ir.Table:
    """KPIs per unit in its baseline and its post window, both anchored at the unit's own date.

    ``anchors`` has (unit_id, anchor) — a completion date for trained units, a pseudo date (the
    program start, or a matched learner's date) for comparison units. The baseline is
    ``[anchor − baseline_days, anchor)``; the post window ``[anchor + ramp_days, anchor +
    window_days)``. An optional ``base_anchor`` column moves the baseline to end there instead
    (the program's start, the same for everyone). Returns one row per unit and ``period``
    ("baseline" or "post").
    """
    rows = windows_kpis(con, anchors, baseline_days=baseline_days, windows=[window_days], ramp_days=ramp_days,
                        unit=unit, deal_types=deal_types)
    return rows.drop("window_days")


def window_opportunities(
    con: BaseBackend,
    anchors: ir.Table,
    *,
    window_days: int,
    ramp_days: int = 0,
    unit: str = "rep",
    deal_types: Sequence[str] = (),
) -> ir.Table:
    """Each opportunity a unit created in its post window: the rows behind the window's KPIs.

    Columns: unit_id, anchor, opportunity_id, account_id, created, close_date, closed, won,
    amount, days_after (days from the anchor to the deal's creation). The seed's spreadsheet
    lists these one per row.
    """
    t = _opportunities(con, unit, deal_types)
    a = anchors.select(a_unit=anchors.unit_id, anchor=anchors.anchor.cast("date"))
    j = t.join(a, t.unit_id == a.a_unit)
    j = j.mutate(days_after=j.created.delta(j.anchor, unit="day"))
    j = j.filter((j.days_after >= ramp_days) & (j.days_after < window_days))
    # The account is looked up for the window's deals only (by their key), not for every deal.
    o = con.table("crm_opportunity")
    accounts = o.select(o_id=o.opportunity_id, account_id=o.account_id)
    j = j.join(accounts, j.opportunity_id == accounts.o_id)
    return j.select("unit_id", "anchor", "opportunity_id", "account_id", "created", "close_date", "closed", "won",
                    "amount", "days_after")


def windows_kpis(
    con: BaseBackend,
    anchors: ir.Table,
    *,
    baseline_days: int,
    windows: list[int],
    ramp_days: int = 0,
    unit: str = "rep",
    deal_types: Sequence[str] = (),
) -> ir.Table:
    """:func:`window_kpis` for several post windows in one query.

    Rows have a ``window_days`` column: null for the baseline (shared by every window), the
    window's length for its post rows.
    """
    if not windows or min(windows) <= ramp_days:
        raise ValueError(f"every window must be longer than the ramp ({ramp_days} days)")
    t = _opportunities(con, unit, deal_types)
    base_anchor = anchors.base_anchor if "base_anchor" in anchors.columns else anchors.anchor
    a = anchors.select(a_unit=anchors.unit_id, anchor=anchors.anchor.cast("date"), base_anchor=base_anchor.cast("date"))
    j = t.join(a, t.unit_id == a.a_unit)
    j = j.mutate(days=j.created.delta(j.anchor, unit="day"), base_days=j.created.delta(j.base_anchor, unit="day"))
    base = _kpis(j.filter((j.base_days >= -baseline_days) & (j.base_days < 0)), ["unit_id"]).mutate(
        period=ibis.literal("baseline"), window_days=ibis.null().cast("int64"))
    # Each deal is summed once, in the shortest window that holds it; a window's figures are then
    # the sums of its own and the shorter windows' pieces (no copy of a deal per window).
    bounds = sorted({int(w) for w in windows})
    post = j.filter((j.days >= ramp_days) & (j.days < bounds[-1]))
    post = post.mutate(bucket=ibis.cases(*((post.days < w, w) for w in bounds)))
    pieces = _sums(post, ["unit_id", "bucket"])
    lengths = ibis.memtable({"window_days": bounds})
    nested = pieces.cross_join(lengths).filter(lambda r: r.bucket <= r.window_days)
    post = _ratios(nested.group_by(["unit_id", "window_days"]).agg(**{c: nested[c].sum() for c in _SUMS}))
    post = post.mutate(period=ibis.literal("post"))
    return base.union(post.select(base.columns))
