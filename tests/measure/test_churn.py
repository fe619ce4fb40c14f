"""A churn model's features on a hand-built org: each value worked out by hand, nothing dated after a renewal opened."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from tests.builders import put_rows as _put
from training_roi.measure.churn import CHURN_FEATURES, renewal_features
from training_roi.warehouse.connection import connect, ensure_tables


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _opp(i: str, kind: str, account: str, created: str, close: date, *, won: bool | None,
         deleted: bool = False) -> dict:
    return {"opportunity_id": i, "type": kind, "account_id": account, "owner_id": "U1", "close_date": close,
            "amount": 1000, "is_closed": won is not None, "is_won": bool(won), "created_at": _at(created),
            "is_deleted": deleted}


def _case(i: str, account: str, created: str, deleted: bool = False) -> dict:
    return {"case_id": i, "owner_id": "S1", "account_id": account, "created_at": _at(created), "is_deleted": deleted}


@pytest.fixture
def org(tmp_path: Path):
    con = connect(tmp_path / "w.duckdb")
    ensure_tables(con)
    _put(con, "crm_account", [
        {"account_id": "A1", "name": "Acme", "employees": 99, "owner_id": "U1", "created_at": _at("2022-03-01T10:00"),
         "is_deleted": False},
        {"account_id": "A2", "name": "Bolt", "employees": None, "owner_id": "U1",
         "created_at": _at("2024-03-01T10:00"), "is_deleted": False},
    ])
    _put(con, "crm_contact", [
        {"contact_id": "C1", "account_id": "A1", "email_norm": "a@acme.com", "created_at": _at("2022-04-01T00:00"),
         "is_deleted": False},
        {"contact_id": "C2", "account_id": "A1", "email_norm": "b@acme.com", "created_at": _at("2025-02-01T00:00"),
         "is_deleted": False},  # after R2 opened: not a feature of R2
        {"contact_id": "C3", "account_id": "A1", "email_norm": "c@acme.com", "created_at": _at("2022-04-01T00:00"),
         "is_deleted": True},
    ])
    _put(con, "crm_case", [
        _case("K1", "A1", "2024-07-15T09:00"),  # 170 days before R2 opens (2025-01-01): counts
        _case("K2", "A1", "2024-06-01T09:00"),  # 214 days before: outside the 180 days
        _case("K3", "A1", "2024-12-31T23:00"),  # the day before: counts
        _case("K4", "A1", "2025-01-01T08:00"),  # the opening day itself: not before it
        _case("K5", "A1", "2024-12-01T09:00", deleted=True),
        _case("K6", "A2", "2024-12-01T09:00"),
    ])
    _put(con, "crm_opportunity", [
        _opp("R1", "Renewal", "A1", "2024-01-05T10:00", date(2024, 3, 1), won=False),  # lost before R2 opened
        _opp("R2", "Renewal", "A1", "2025-01-01T10:00", date(2025, 3, 1), won=True),
        _opp("R3", "Renewal", "A2", "2025-01-10T10:00", date(2025, 3, 10), won=None),  # still open
        _opp("R4", "Renewal", "A2", "2025-01-10T10:00", date(2025, 3, 10), won=False, deleted=True),
        _opp("P1", "Upsell", "A1", "2024-02-01T10:00", date(2024, 3, 15), won=True),  # 292 days before R2
        _opp("P2", "Upsell", "A1", "2023-05-01T10:00", date(2023, 6, 1), won=True),  # over a year before
        _opp("P3", "Upsell", "A1", "2025-01-02T10:00", date(2025, 2, 1), won=True),  # after R2 opened
        _opp("P4", "Upsell", "A1", "2024-02-01T10:00", date(2024, 4, 1), won=False),  # lost: not counted
    ])
    yield con
    con.disconnect()


def test_features_are_what_was_known_when_each_renewal_opened(org) -> None:
    f = renewal_features(org, trained={"A1": date(2024, 12, 1), "A2": date(2025, 2, 1)})
    rows = {r["renewal_id"]: r for r in f.iter_rows(named=True)}
    assert set(rows) == {"R1", "R2", "R3"}  # the deleted renewal is left out; upsells are no renewal
    r2 = rows["R2"]
    assert r2["decided"] and r2["churned"] is False and r2["opened"] == date(2025, 1, 1)
    assert r2["employees_log"] == pytest.approx(math.log(100))
    assert r2["account_age_years"] == pytest.approx((date(2025, 1, 1) - date(2022, 3, 1)).days / 365.25)
    assert r2["contacts"] == 1  # C2 came later, C3 is deleted
    assert r2["cases_180d"] == 2  # K1 and K3
    assert r2["upsells_won_365d"] == 1  # P1; P2 is too old, P3 too late, P4 lost
    assert r2["renewals_lost_before"] == 1  # R1
    assert r2["trained"] == 1.0
    r1 = rows["R1"]
    assert r1["churned"] is True and r1["renewals_lost_before"] == 0 and r1["trained"] == 0.0  # not its own loss
    r3 = rows["R3"]
    assert not r3["decided"] and r3["churned"] is None
    assert r3["employees_log"] == 0.0 and r3["cases_180d"] == 1 and r3["contacts"] == 0
    assert r3["trained"] == 0.0  # trained after its renewal opened
    assert list(f.columns[-len(CHURN_FEATURES):]) == list(CHURN_FEATURES)


def test_a_back_dated_close_tells_no_renewal_what_happened_after_it_opened(org) -> None:
    """A close date set before the deal existed: it is known from its creation, and a renewal never counts itself."""
    _put(org, "crm_account", [{"account_id": "A3", "name": "Cog", "employees": 10, "owner_id": "U1",
                               "created_at": _at("2020-01-01T10:00"), "is_deleted": False}])
    _put(org, "crm_opportunity", [
        _opp("Q1", "Renewal", "A3", "2025-01-10T10:00", date(2025, 1, 5), won=False),  # lost, closed "before" it opened
        _opp("Q2", "Renewal", "A3", "2025-01-08T10:00", date(2025, 3, 1), won=True),
        _opp("Q3", "Upsell", "A3", "2025-02-01T10:00", date(2025, 1, 2), won=True),  # created after Q2 opened
    ])
    rows = {r["renewal_id"]: r for r in renewal_features(org, accounts=["A3"]).iter_rows(named=True)}
    assert rows["Q1"]["churned"] is True and rows["Q1"]["renewals_lost_before"] == 0  # not its own loss
    assert rows["Q2"]["renewals_lost_before"] == 0  # Q1 was created after Q2 opened
    assert rows["Q2"]["upsells_won_365d"] == 0  # Q3 too


def test_accounts_keep_the_study_population(org) -> None:
    f = renewal_features(org, accounts=["A2"])
    assert f["renewal_id"].to_list() == ["R3"]
