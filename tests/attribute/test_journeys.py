"""Journeys from the warehouse, on a hand-built org whose touches are listed by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from tests.builders import put_rows as _put
from training_roi.attribute import Attribution, attribute_study, build_journeys, linear, split_among_learners
from training_roi.warehouse.connection import connect, ensure_tables

X, Y, Z, W = (f"https://lms.example.com/course/{c}" for c in ("x", "y", "z", "w"))



def _at(day: str) -> datetime:
    return datetime.fromisoformat(day + "T10:00:00").replace(tzinfo=UTC)


def _record(n: int, learner: str, activity: str, day: str, verb: str = "completed", course: str | None = None) -> dict:
    return {"record_key": f"r{n}", "learner_key": learner, "source": "xapi", "verb": verb, "activity_id": activity,
            "activity_name": activity.rsplit("/", 1)[-1].upper(), "course_id": course or activity,
            "occurred_at": _at(day)}


@pytest.fixture
def org(tmp_path: Path):
    con = connect(tmp_path / "w.duckdb")
    ensure_tables(con)
    _put(con, "crm_user", [{"user_id": "U1", "title": "Account Executive", "is_active": True},
                           {"user_id": "U2", "title": "SDR", "is_active": True}])
    _put(con, "crm_contact", [{"contact_id": f"C{i}", "account_id": "A1", "title": t, "is_deleted": False}
                              for i, t in ((3, "Admin"), (4, "Analyst"), (5, "Admin"))])
    _put(con, "learner_identity", [
        {"learner_key": "L1", "crm_user_id": "U1", "status": "linked"},
        {"learner_key": "L2", "crm_user_id": "U2", "status": "linked"},
        *({"learner_key": f"L{i}", "crm_contact_id": f"C{i}", "crm_account_id": "A1", "status": "linked"}
          for i in (3, 4, 5)),
    ])
    _put(con, "learning_record", [
        _record(1, "L1", X, "2025-01-10"), _record(2, "L1", X, "2025-01-10", verb="passed"),  # one completion
        _record(3, "L1", Y, "2025-02-01"), _record(4, "L1", X, "2025-03-01"),  # a retake is no new touch
        _record(5, "L1", W, "2025-03-15"),  # on the close day: cannot have moved the deal
        _record(6, "L1", Z, "2025-06-15"),  # after the close
        _record(7, "L1", Z, "2024-09-01", verb="attempted"),  # not a completion
        _record(8, "L3", X, "2025-02-10"), _record(9, "L4", X, "2025-02-11"), _record(10, "L5", X, "2025-02-12"),
    ])
    _put(con, "crm_opportunity", [
        {"opportunity_id": "O1", "owner_id": "U1", "account_id": "A1", "amount": 1000, "close_date": date(2025, 3, 15),
         "created_at": _at("2024-12-01"), "is_closed": True, "is_won": True, "is_deleted": False},
        {"opportunity_id": "O2", "owner_id": "U1", "account_id": "A2", "amount": 500, "close_date": date(2025, 4, 1),
         "created_at": _at("2025-01-01"), "is_closed": True, "is_won": False, "is_deleted": False},
        {"opportunity_id": "O3", "owner_id": "U2", "account_id": "A2", "amount": 700, "close_date": date(2025, 5, 1),
         "created_at": _at("2025-01-01"), "is_closed": False, "is_won": False, "is_deleted": False},
    ])
    _put(con, "crm_activity", [
        {"activity_id": "T1", "kind": "task", "what_id": "O1", "subtype": "Call", "activity_date": date(2025, 3, 10),
         "is_deleted": False},
        {"activity_id": "T2", "kind": "task", "what_id": "O9", "subtype": "Call", "activity_date": date(2025, 3, 10),
         "is_deleted": False},
    ])
    _put(con, "crm_campaign", [{"campaign_id": "CA1", "name": "Spring webinar", "type": "Webinar",
                                "is_deleted": False}])
    _put(con, "crm_campaign_member", [
        {"member_id": "M1", "campaign_id": "CA1", "contact_id": "C3", "has_responded": True,
         "first_responded_date": date(2025, 3, 1), "created_at": _at("2025-02-20"), "is_deleted": False},
        {"member_id": "M2", "campaign_id": "CA1", "contact_id": "C4", "has_responded": False,  # no response
         "created_at": _at("2025-02-20"), "is_deleted": False},
    ])
    yield con
    con.disconnect()


def test_a_deals_journey_holds_exactly_the_touches_before_its_close(org):
    j = build_journeys(org, lookback_days=90)
    assert j.journeys["opportunity_id"].to_list() == ["O1", "O2"]  # open deals are not journeys
    o1 = j.journeys.filter(pl.col("opportunity_id") == "O1")["journey_id"][0]
    touches = j.touches.filter(pl.col("journey_id") == o1).join(j.sources, on="source_id").sort("touch_id")
    # In time order; W, Z and the retake are out; the account's campaign response counts on its day.
    assert touches["activity_id"].to_list() == [X, Y, "CA1", "T1"]
    assert touches["days_before"].to_list() == [64, 42, 14, 5]
    assert touches["channel"].cast(pl.String).to_list() == ["training: X", "training: Y", "campaign: Webinar",
                                                            "task: call"]
    o2 = j.journeys.filter(pl.col("opportunity_id") == "O2")["journey_id"][0]
    late = j.touches.filter(pl.col("journey_id") == o2).join(j.sources, on="source_id").sort("touch_id")
    assert late["activity_id"].to_list() == [X, Y, W]  # W counts for the deal closing later
    assert j.counts == {"journeys": 2, "converted": 1, "with_training": 2, "training_touches": 5,
                        "campaign_touches": 1, "activity_touches": 1}
    # A shorter lookback drops the older touches; the study's program takes its own name.
    short = build_journeys(org, lookback_days=50, named={"Sales Excellence": [X]}, crm_touches=False)
    kept = short.touches.join(short.sources, on="source_id").sort("touch_id")
    assert sorted(kept["activity_id"].to_list()) == [W, Y]  # O1: Y (42 days); O2: W (17 days)
    assert "training: Sales Excellence" not in kept["channel"].cast(pl.String).to_list()
    named = build_journeys(org, lookback_days=90, named={"Sales Excellence": [X]})
    assert "training: Sales Excellence" in named.sources["channel"].cast(pl.String).to_list()


def test_an_accounts_three_learners_share_its_training_credit_once(org):
    j = build_journeys(org, unit="account", lookback_days=90)
    o1 = j.journeys.filter(pl.col("opportunity_id") == "O1")
    assert o1["unit_id"][0] == "A1"
    touches = j.touches.join(j.sources.select("source_id", pl.col("learner").alias("learner_key"), "role"),
                             on="source_id").with_columns(
        pl.col("journey_id", "touch_id").cast(pl.String), pl.col("channel").cast(pl.String))
    journeys = j.journeys.select(pl.col("journey_id").cast(pl.String), "converted", "value", "conversion_at")
    table = linear(touches, journeys)
    # Three learners' completions, a campaign response and a call: linear gives each touch a fifth.
    assert table["share"].sum() == pytest.approx(1.0) and table["credited_value"].sum() == pytest.approx(1000)
    by_role = split_among_learners(table, rule="role", role_weights={"Admin": 1.0, "Analyst": 2.0})
    learners = by_role.filter(pl.col("learner_key").is_not_null()).sort("learner_key")
    assert learners["credited_value"].to_list() == pytest.approx([600 / 4, 600 / 2, 600 / 4])
    assert by_role["credited_value"].sum() == pytest.approx(1000)  # split, never counted three times


def test_bad_settings_are_refused_with_the_setting_named(org):
    with pytest.raises(ValueError, match="lookback_days 0"):
        build_journeys(org, lookback_days=0)
    with pytest.raises(ValueError, match="unit 'team'"):
        build_journeys(org, unit="team")


def test_the_model_comparison_credits_what_the_table_credits_on_a_half_cent(tmp_path: Path):
    """Four account deals whose calls earn $584.545 in all under the linear model (a half cent).

    O1 $176.12 (two trained contacts and a call: the call gets a third), O2 $746.07 and O3 $82.72
    (one contact and a call: half), O4 $334.33 (two contacts and a call: a third). The comparison's
    linear column and the table's roll-up add the same touches: they must round it the same way.
    """
    accounts = {1: "A1", 2: "A1", 3: "A2", 4: "A3", 5: "A4", 6: "A4"}
    con = connect(tmp_path / "w.duckdb")
    ensure_tables(con)
    _put(con, "crm_user", [{"user_id": "U1", "title": "AE", "is_active": True}])
    _put(con, "crm_contact", [{"contact_id": f"C{i}", "account_id": a, "title": "Admin", "is_deleted": False}
                              for i, a in accounts.items()])
    _put(con, "learner_identity", [{"learner_key": f"L{i}", "crm_contact_id": f"C{i}", "crm_account_id": a,
                                    "status": "linked"} for i, a in accounts.items()])
    _put(con, "learning_record", [_record(i, f"L{i}", X, f"2025-02-0{i}") for i in accounts])
    _put(con, "crm_activity", [{"activity_id": f"T{k}", "kind": "task", "what_id": f"O{k}", "subtype": "Call",
                                "activity_date": date(2025, 3, 10), "is_deleted": False} for k in range(1, 5)])
    amounts = ["176.12", "746.07", "82.72", "334.33"]
    _put(con, "crm_opportunity", [
        {"opportunity_id": f"O{k}", "owner_id": "U1", "account_id": f"A{k}", "amount": Decimal(amounts[k - 1]),
         "close_date": date(2025, 3, 15), "created_at": _at("2025-01-01"), "is_closed": True, "is_won": True,
         "is_deleted": False} for k in range(1, 5)])
    result = attribute_study(con, Attribution(), program="X", activities=[X], unit="account", window_days=180,
                             since=None, incremental_revenue=10.0, model="linear")
    calls = result.by_channel.filter(pl.col("channel") == "task: call")["credited_value"].item()
    assert calls == pytest.approx(584.545, abs=0.006)
    compared = result.comparison.filter(pl.col("channel") == "task: call")["linear"].item()
    assert compared == calls
