"""What the CRM knew about each account when one of its renewals opened: a churn model's features.

One row per renewal (an opportunity whose Type names a renewal, :data:`~training_roi.measure.customer.
RENEWAL_WORDS`), decided (closed: won = renewed, lost = churned) or still open, with the facts of
its account as of the renewal's opening day (the UTC day of its ``created_at``). Every feature is
read from rows dated *before* that day, so a model fitted on decided renewals learns nothing it
could not have known when the renewal opened — no leakage from the renewal's own outcome, nor from
what happened to the account while it was being decided:

* ``employees_log`` — log(1 + the account's NumberOfEmployees) (the account's current value: the
  CRM keeps no history of it);
* ``account_age_years`` — years from the account's creation to the opening day;
* ``contacts`` — the account's contacts created before the opening day;
* ``cases_180d`` — support cases of the account created in the 180 days before the opening day;
* ``upsells_won_365d`` — upsell opportunities of the account won (closed) in the 365 days before;
* ``renewals_lost_before`` — earlier renewals of the account closed lost before the opening day;
* ``trained`` — 1 when the account was trained (the cohort's anchor) before the opening day.
"""

from __future__ import annotations

from datetime import date

import ibis
import ibis.expr.types as ir
import polars as pl
from ibis.backends import BaseBackend

from training_roi.measure.customer import RENEWAL_WORDS, UPSELL_WORDS
from training_roi.measure.process import live
from training_roi.warehouse.connection import utc_day

__all__ = ["CASE_DAYS", "CHURN_FEATURES", "UPSELL_DAYS", "renewal_features"]

CASE_DAYS = 180
"""Support cases count over this many days before a renewal opens."""
UPSELL_DAYS = 365
"""Won upsells count over this many days before a renewal opens."""
CHURN_FEATURES: dict[str, str] = {
    "employees_log": "log headcount",
    "account_age_years": "account age (years)",
    "contacts": "contacts",
    "cases_180d": f"support cases ({CASE_DAYS} days)",
    "upsells_won_365d": f"upsells won ({UPSELL_DAYS} days)",
    "renewals_lost_before": "renewals lost before",
    "trained": "trained before the renewal",
}
"""The features of :func:`renewal_features`, in order, with their labels."""


def _type_has(t: ir.Table, words: tuple[str, ...]) -> ir.BooleanValue:
    kind = t.type.lower()
    return ibis.or_(*(kind.contains(w) for w in words)).fill_null(False)


def _count_before(con: BaseBackend, opened: ir.Table, facts: ir.Table, *, days: int | None, name: str) -> ir.Table:
    """Per renewal (``r_id``): how many ``facts`` rows (``f_account``, ``f_day``) fall in the days before it opened."""
    cond = (facts.f_account == opened.r_account) & (facts.f_day < opened.r_opened)
    if "f_id" in facts.columns:  # a renewal's own loss is its outcome, never one of its features
        cond = cond & (facts.f_id != opened.r_id)
    if days is not None:
        cond = cond & (facts.f_day >= opened.r_opened - ibis.interval(days=days))
    j = opened.select("r_id", "r_account", "r_opened").inner_join(facts, cond)
    return j.group_by(c_id=j.r_id).aggregate(**{name: j.count()})


def _known_from(con: BaseBackend, deals: ir.Table) -> ir.DateValue:
    """The day a closed deal's outcome is known: its close date, or its creation day if that is later."""
    created = utc_day(con, deals.created_at)
    return ibis.greatest(deals.close_date, created.fill_null(deals.close_date))


def renewal_features(con: BaseBackend, *, trained: dict[str, date] | None = None,
                     accounts: list[str] | None = None) -> pl.DataFrame:
    """Every renewal with its account's features as of its opening day (see the module's text).

    Columns: ``renewal_id``, ``account_id``, ``account_name``, ``owner_id`` (the renewal's),
    ``opened`` (date), ``due`` (its close date: actual when decided, expected when open),
    ``decided`` (closed), ``churned`` (closed lost; null while open), ``amount``, then
    :data:`CHURN_FEATURES`. ``trained`` maps each trained account to its training day (the
    cohort's anchors); ``accounts`` keeps only those accounts (the study's population).
    """
    o = live(con.table("crm_opportunity"))
    r = o.filter(_type_has(o, RENEWAL_WORDS) & o.account_id.notnull() & o.created_at.notnull())
    opened = r.select(r_id=r.opportunity_id, r_account=r.account_id, r_owner=r.owner_id,
                      r_opened=utc_day(con, r.created_at), r_due=r.close_date,
                      r_decided=r.is_closed.fill_null(False), r_won=r.is_won.fill_null(False),
                      r_amount=r.amount.cast("float64"))
    a = live(con.table("crm_account"))
    acc = a.select(a_id=a.account_id, a_name=a.name, a_employees=a.employees, a_created=utc_day(con, a.created_at))
    c = live(con.table("crm_contact"))
    contacts = c.filter(c.account_id.notnull()).select(
        f_account=c.account_id, f_day=utc_day(con, c.created_at).fill_null(date(1900, 1, 1)))
    counts = [_count_before(con, opened, contacts, days=None, name="contacts")]
    if "crm_case" in con.list_tables():
        k = live(con.table("crm_case"))
        cases = k.filter(k.account_id.notnull() & k.created_at.notnull()).select(
            f_account=k.account_id, f_day=utc_day(con, k.created_at))
        counts.append(_count_before(con, opened, cases, days=CASE_DAYS, name="cases_180d"))
    # A won upsell or a lost renewal is known from its close, but never before it existed: a close date
    # set back before the deal's creation (a rep closing it late, keeping an old expected date) is
    # taken from the creation day, so no deal created after a renewal opened counts as known then.
    up = o.filter(_type_has(o, UPSELL_WORDS) & o.is_won.fill_null(False) & o.close_date.notnull())
    counts.append(_count_before(con, opened, up.select(f_account=up.account_id, f_day=_known_from(con, up)),
                                days=UPSELL_DAYS, name="upsells_won_365d"))
    lost = r.filter(r.is_closed.fill_null(False) & ~r.is_won.fill_null(False) & r.close_date.notnull())
    counts.append(_count_before(con, opened, lost.select(f_account=lost.account_id, f_day=_known_from(con, lost),
                                                         f_id=lost.opportunity_id),
                                days=None, name="renewals_lost_before"))
    rows = opened.left_join(acc, opened.r_account == acc.a_id)
    for cnt in counts:
        rows = rows.left_join(cnt, rows.r_id == cnt.c_id).drop("c_id")
    frame = pl.from_arrow(rows.to_pyarrow())
    assert isinstance(frame, pl.DataFrame)
    for name in ("contacts", "cases_180d", "upsells_won_365d", "renewals_lost_before"):
        if name not in frame.columns:
            frame = frame.with_columns(pl.lit(0).alias(name))
    anchors = pl.DataFrame({"r_account": list((trained or {}).keys()),
                            "t_day": list((trained or {}).values())},
                           schema={"r_account": pl.String, "t_day": pl.Date})
    frame = frame.join(anchors, on="r_account", how="left")
    if accounts is not None:  # in Polars: a population of 100,000 accounts is no literal list for the engine
        frame = frame.filter(pl.col("r_account").is_in(pl.Series(accounts, dtype=pl.String)))
    return frame.select(
        renewal_id="r_id", account_id="r_account",
        account_name=pl.col("a_name").fill_null(pl.col("r_account")), owner_id="r_owner",
        opened="r_opened", due="r_due", decided="r_decided",
        churned=pl.when(pl.col("r_decided")).then(~pl.col("r_won")), amount="r_amount",
        employees_log=(pl.col("a_employees").cast(pl.Float64).fill_null(0.0).clip(0.0) + 1.0).log(),
        account_age_years=((pl.col("r_opened") - pl.col("a_created")).dt.total_days() / 365.25)
        .clip(0.0).fill_null(0.0),
        contacts=pl.col("contacts").fill_null(0).cast(pl.Float64),
        cases_180d=pl.col("cases_180d").fill_null(0).cast(pl.Float64),
        upsells_won_365d=pl.col("upsells_won_365d").fill_null(0).cast(pl.Float64),
        renewals_lost_before=pl.col("renewals_lost_before").fill_null(0).cast(pl.Float64),
        trained=(pl.col("t_day") < pl.col("r_opened")).fill_null(False).cast(pl.Float64),
    ).sort(["opened", "renewal_id"])


