"""Journeys: for every closed deal, the touches that came before it — training first among them.

Attribution asks which programs, courses, lessons and learners the revenue flows through. Its
input is one journey per closed opportunity (won = converted, its amount the value) and the
ordered touches before the deal's close day inside the study's lookback:

- **training** — the first completion or pass of each activity (course, lesson, certification)
  by a learner linked to the deal's unit: the owner for a rep, every contact of the account for
  customer education. A retake, a second statement about the same completion, or the same
  person's second LMS identity is not a second touch.
- **campaign** — a CampaignMember response by a contact of the deal's account, on its first
  response day.
- **activity** — a Task or Event logged on the deal itself, by type (call, email, meeting, …).

A touch on the close day itself is not counted: it cannot have moved the decision. Journeys and
touches are joined by Polars (an equality join per kind of link, then the range test), never in
a Python loop per deal, and come back as two frames with a deterministic order, so the same data
give the same attribution.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import polars as pl
import pyarrow as pa
from ibis.backends import BaseBackend

from training_roi.measure import UNITS
from training_roi.warehouse.connection import require_tables, utc_day

__all__ = ["KINDS", "Journeys", "build_journeys", "by_row"]

KINDS = ("training", "campaign", "activity")
"""What a touch can be."""

_DONE = ("completed", "passed")
_UTC_TS = dt.Timestamp(timezone="UTC", scale=6)


@dataclass(frozen=True)
class Journeys:
    """Closed deals, the touches before them, and what each touch is.

    ``journeys``: journey_id (an integer, in opportunity-id order), opportunity_id, unit_id,
    account_id, converted (won), value (the amount when won, else 0), conversion_at (the close
    day, UTC midnight).

    ``touches`` (narrow, one row per journey and touch: millions of rows): journey_id, touch_id
    (unique, in journey then time order), source_id, touch_at, days_before (whole days from the
    touch to the close day), kind (:data:`KINDS`) and channel (what the models credit:
    ``training: <program or course>``, ``campaign: <type>``, ``task: <type>``).

    ``sources`` (one row per touch source, joined to results by ``source_id``): kind, channel,
    learner (the person: CRM user or contact id), learner_name (their email) and role
    (training), activity_id, activity_name, course_id, course_name, program, source_key (the
    record behind the touch).
    """

    journeys: pl.DataFrame
    touches: pl.DataFrame
    sources: pl.DataFrame
    lookback_days: int

    @property
    def counts(self) -> dict[str, int]:
        """Journeys, converted journeys, journeys with a training touch, and touches by kind."""
        j, t = self.journeys, self.touches
        out = {
            "journeys": j.height,
            "converted": int(j["converted"].sum()),
            "with_training": t.filter(pl.col("kind") == "training")["journey_id"].n_unique(),
        }
        out.update({f"{kind}_touches": t.filter(pl.col("kind") == kind).height for kind in KINDS})
        return out


def by_row(frame: pl.DataFrame, rows: pl.Series) -> pl.DataFrame:
    """The rows of ``frame`` at the positions ``rows``, in that order: a join on a row number, without the join.

    Journeys' ``journey_id`` and sources' ``source_id`` are their row numbers, so millions of
    touches take their journey's or source's columns by position, which costs a fraction of a join.
    """
    return frame[rows.to_numpy()]


def _frame(t: ir.Table) -> pl.DataFrame:
    out = pl.from_arrow(t.to_pyarrow())
    assert isinstance(out, pl.DataFrame)
    return out


def _tables(con: BaseBackend) -> set[str]:
    return set(con.list_tables())


def _deals(con: BaseBackend, unit: str, units: ir.Table | None, since: date | None, until: date | None,
           deal_types: Sequence[str] = ()) -> ir.Table:
    """Closed, live deals of the units (of ``deal_types`` when given), closing in ``[since, until)``."""
    o = con.table("crm_opportunity")
    key = o[UNITS[unit]]
    o = o.filter(~o.is_deleted & o.is_closed.fill_null(False) & key.notnull() & o.close_date.notnull())
    if deal_types:
        o = o.filter(o.type.isin(list(deal_types)))
    if since is not None:
        o = o.filter(o.close_date >= since)
    if until is not None:
        o = o.filter(o.close_date < until)
    won = o.is_won.fill_null(False)
    deals = o.select(opportunity_id=o.opportunity_id, unit_id=key, account_id=o.account_id, converted=won,
                     value=won.ifelse(o.amount.fill_null(0), 0).cast("float64"), close_day=o.close_date)
    if units is not None:
        deals = deals.join(units, "unit_id")  # a join, not a long IN list: scopes run to thousands
    return deals


def _training(con: BaseBackend, unit: str, activities: list[str] | None,
              named: Mapping[str, Sequence[str]] | None) -> ir.Table:
    """Each linked learner's first completion or pass of each activity, with its unit and role."""
    r = con.table("learning_record")
    r = r.filter(r.verb.isin(_DONE) & r.occurred_at.notnull())
    if activities is not None:
        r = r.filter(r.activity_id.isin(activities) | r.course_id.isin(activities))
    li = con.table("learner_identity")
    li = li.filter(li.crm_user_id.notnull() if unit == "rep" else li.crm_account_id.notnull())
    j = r.join(li, "learner_key")
    # A learner is a person: the CRM user (a rep) or contact (a customer) their LMS identities link to,
    # so one person with two LMS identities completes an activity once and is one learner.
    first = j.group_by(
        unit_id=j.crm_user_id if unit == "rep" else j.crm_account_id,
        learner=j.crm_user_id if unit == "rep" else j.crm_contact_id.coalesce(j.learner_key),
        activity_id=j.activity_id,
    ).agg(touch_at=j.occurred_at.min(), course_id=j.course_id.max(), program=j.program.max(),
          source_key=j.record_key.min(), contact_id=j.crm_contact_id.max(), user_id=j.crm_user_id.max(),
          learner_key=j.learner_key.min())
    names = r.group_by("activity_id").agg(activity_name=r.activity_name.max())
    courses = names.select(course_id=names.activity_id, course_name=names.activity_name)
    t = first.left_join(names, "activity_id").drop("activity_id_right")
    t = t.left_join(courses, "course_id").drop("course_id_right")
    programs = names.select(program=names.activity_id, program_name=names.activity_name)
    t = t.left_join(programs, "program").drop("program_right")
    u = con.table("crm_user").select(user_id="user_id", user_title="title", user_email="email")
    t = t.left_join(u, "user_id").drop("user_id_right")
    tables = _tables(con)
    if "crm_contact" in tables:
        c = con.table("crm_contact").select(contact_id="contact_id", contact_title="title", contact_email="email")
        t = t.left_join(c, "contact_id").drop("contact_id_right")
        role = t.user_title.coalesce(t.contact_title)
        email = t.contact_email.coalesce(t.user_email, t.learner_key)
    else:
        role, email = t.user_title, t.user_email.coalesce(t.learner_key)
    label = t.program_name.coalesce(t.course_name, t.program, t.course_id, t.activity_name, t.activity_id)
    for name, ids in (named or {}).items():  # the study's program under its own name
        label = (t.activity_id.isin(list(ids)) | t.course_id.isin(list(ids))).ifelse(ibis.literal(name), label)
    return t.select(
        # Spark reads the warehouse's UTC timestamps back without their zone: the type is restated so
        # the union with the CRM touches matches on every engine.
        unit_id=t.unit_id, account_id=ibis.null("string"), touch_at=t.touch_at.cast(_UTC_TS),
        touch_day=utc_day(con, t.touch_at),
        kind=ibis.literal("training"), channel=ibis.literal("training: ") + label,
        learner=t.learner, learner_name=email, role=role, activity_id=t.activity_id, activity_name=t.activity_name,
        course_id=t.course_id, course_name=t.course_name, program=t.program, source_key=t.source_key,
        opportunity_id=ibis.null("string"),
    )


def _campaigns(con: BaseBackend) -> ir.Table | None:
    """Campaign responses of contacts, by their account."""
    if not {"crm_campaign_member", "crm_contact", "crm_campaign"} <= _tables(con):
        return None
    m = con.table("crm_campaign_member")
    m = m.filter(~m.is_deleted & m.has_responded.fill_null(False) & m.contact_id.notnull())
    c = con.table("crm_contact").select("contact_id", "account_id")
    camp = con.table("crm_campaign").select("campaign_id", campaign_name="name", campaign_type="type")
    t = m.join(c, "contact_id").left_join(camp, "campaign_id")
    day = t.first_responded_date.coalesce(utc_day(con, t.created_at))
    return t.select(
        unit_id=ibis.null("string"), account_id=t.account_id, touch_at=day.cast(_UTC_TS), touch_day=day,
        kind=ibis.literal("campaign"),
        channel=ibis.literal("campaign: ") + t.campaign_type.coalesce(t.campaign_name, ibis.literal("(unnamed)")),
        learner=ibis.null("string"), learner_name=ibis.null("string"), role=ibis.null("string"),
        activity_id=t.campaign_id,
        activity_name=t.campaign_name, course_id=ibis.null("string"), course_name=ibis.null("string"),
        program=ibis.null("string"), source_key=t.member_id, opportunity_id=ibis.null("string"),
    )


def _activities(con: BaseBackend) -> ir.Table | None:
    """Tasks and events logged on a deal."""
    if "crm_activity" not in _tables(con):
        return None
    a = con.table("crm_activity")
    a = a.filter(~a.is_deleted & a.what_id.notnull())
    day = a.activity_date.coalesce(utc_day(con, a.completed_at), utc_day(con, a.created_at))
    subtype = a.subtype.coalesce(ibis.literal("other")).lower()
    return a.select(
        unit_id=ibis.null("string"), account_id=ibis.null("string"), touch_at=day.cast(_UTC_TS), touch_day=day,
        kind=ibis.literal("activity"), channel=a.kind.coalesce(ibis.literal("task")) + ibis.literal(": ") + subtype,
        learner=ibis.null("string"), learner_name=ibis.null("string"), role=ibis.null("string"),
        activity_id=a.activity_id,
        activity_name=a.subject, course_id=ibis.null("string"), course_name=ibis.null("string"),
        program=ibis.null("string"), source_key=a.activity_id, opportunity_id=a.what_id,
    )


def _before_close(sources: pl.DataFrame, deals: pl.DataFrame, lookback_days: int) -> pl.DataFrame:
    """Each deal's touches inside the lookback and before its close day: journey_id, source_id, touch_at, days_before.

    One equality join per kind of link (owner, account, the deal itself), each followed by the
    range test, streamed so that a rep's every deal × every training is never held at once.
    """
    close, day = pl.col("close_day"), pl.col("touch_day")
    parts = []
    for key in ("unit_id", "account_id", "opportunity_id"):
        k = sources.lazy().select("source_id", key, "touch_day", "touch_at").filter(pl.col(key).is_not_null())
        j = deals.lazy().select("journey_id", key, "close_day").join(k, on=key)
        parts.append(j.filter((day < close) & (day >= close - pl.duration(days=lookback_days))).select(
            "journey_id", "source_id", "touch_at", (close - day).dt.total_days().cast(pl.Int32).alias("days_before")))
    return pl.concat(parts).collect(engine="streaming")


def build_journeys(
    con: BaseBackend,
    *,
    unit: str = "rep",
    scope: list[str] | None = None,
    lookback_days: int = 180,
    since: date | None = None,
    until: date | None = None,
    activities: list[str] | None = None,
    crm_touches: bool = True,
    named: Mapping[str, Sequence[str]] | None = None,
    deal_types: Sequence[str] = (),
) -> Journeys:
    """Every closed deal of the units in ``scope`` (all when None) and its touches.

    ``unit``: ``rep`` (training of the deal's owner) or ``account`` (training of the account's
    contacts). ``lookback_days``: how far before the close day a touch still counts.
    ``since``/``until``: deals closing in ``[since, until)``. ``activities``: only these
    activities (or activities of these courses) are training touches; None = every activity
    in the LMS, so the roll-up shows every program. ``crm_touches``: also campaign responses
    and deal activities, when the warehouse has them. ``named``: program name → activity (or
    course) ids whose touches take that name as their channel (the study's program).
    ``deal_types``: only deals of these types (Renewal, Upsell, …); all when empty.

    Raises
    ------
    ValueError
        An unknown unit or a lookback under one day.
    """
    if unit not in UNITS:
        raise ValueError(f"unit {unit!r}: expected one of {', '.join(UNITS)}")
    if lookback_days < 1:
        raise ValueError(f"lookback_days {lookback_days}: expected at least 1 day")
    require_tables(con, "crm_opportunity", "learning_record", "learner_identity", "crm_user")
    units = ibis.memtable(pa.table({"unit_id": pa.array(sorted(set(scope)), pa.string())})) if scope else None
    parts = [_training(con, unit, activities, named)]
    if crm_touches:
        parts += [p for p in (_campaigns(con), _activities(con)) if p is not None]
    union = ibis.union(*parts) if len(parts) > 1 else parts[0]
    # Deals and sources are numbered here, in a stable order, and joined in Polars: the engine gives
    # the few hundred thousand sources and the deals; the millions of touches never go back to it.
    s = _frame(union).sort(["kind", "source_key", "unit_id", "account_id"], nulls_last=True)
    s = s.with_row_index("source_id").with_columns(pl.col("source_id").cast(pl.Int64))
    d = _frame(_deals(con, unit, units, since, until, deal_types)).sort("opportunity_id")
    d = d.with_row_index("journey_id").with_columns(pl.col("journey_id").cast(pl.Int64))
    t = _before_close(s, d, lookback_days)
    cat = pl.Categorical
    d = d.select(
        "journey_id", "opportunity_id", "unit_id", "account_id", "converted", "value",
        pl.col("close_day").cast(pl.Datetime("us", "UTC")).alias("conversion_at"),
    )
    s = s.drop("touch_day", "touch_at").with_columns(pl.col("kind", "channel").cast(cat))
    # Kind and channel come from the few sources, not through the join: millions of touches carry
    # two small categorical codes instead of two strings each.
    t = t.with_columns(pl.col("touch_at").cast(pl.Datetime("us", "UTC")))
    t = pl.concat([t, by_row(s.select("kind", "channel"), t["source_id"])], how="horizontal")
    t = t.sort(["journey_id", "touch_at", "source_id"]).with_row_index("touch_id")
    t = t.with_columns(pl.col("touch_id").cast(pl.Int64))
    return Journeys(journeys=d, touches=t, sources=s, lookback_days=lookback_days)
