"""Customer-success KPIs on a hand-built org: every expected value is worked out by hand below."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from tests.builders import put_rows as _put
from training_roi.measure.catalogue import compute
from training_roi.warehouse.connection import connect, ensure_tables

JAN, FEB, MAR = date(2025, 1, 1), date(2025, 2, 1), date(2025, 3, 1)



def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _case(i: str, account: str, created: str, closed: str | None, fields: str | None, deleted: bool = False) -> dict:
    return {"case_id": i, "owner_id": "U1", "account_id": account, "created_at": _at(created),
            "closed_at": _at(closed) if closed else None, "custom_fields": fields, "is_deleted": deleted}


def _answer(i: int, email: str, question: str, score: float, day: str) -> dict:
    return {"response_key": f"r{i}", "email_norm": email, "level": "reaction", "question": question, "score": score,
            "submitted_at": _at(day + "T12:00")}


def _opp(i: str, kind: str, account: str, owner: str, close: date, *, won: bool | None, amount: float) -> dict:
    return {"opportunity_id": i, "type": kind, "account_id": account, "owner_id": owner, "close_date": close,
            "amount": amount, "is_closed": won is not None, "is_won": bool(won), "created_at": _at("2024-10-01T00:00"),
            "is_deleted": False}


@pytest.fixture
def org(tmp_path: Path):
    con = connect(tmp_path / "w.duckdb")
    ensure_tables(con)
    _put(con, "crm_user", [{"user_id": "U1", "email_norm": "u1@x.com", "manager_id": "M1"},
                           {"user_id": "U2", "email_norm": "u2@x.com", "manager_id": "M1"}])
    _put(con, "crm_contact", [{"contact_id": "K1", "account_id": "A1", "email_norm": "buyer@a.com",
                               "is_deleted": False}])
    _put(con, "crm_case", [
        _case("K1", "A1", "2025-01-03T09:00", "2025-01-05T09:00", '{"CSAT__c": "4"}'),
        _case("K2", "A1", "2025-01-20T09:00", "2025-02-02T09:00", '{"CSAT__c": 5}'),  # a number, dated by its close
        _case("K3", "A2", "2025-02-10T09:00", None, '{"CSAT__c": "2", "Tier__c": "Gold"}'),  # open: its creation
        _case("K4", "A2", "2025-02-11T09:00", "2025-02-12T09:00", '{"CSAT__c": "9"}'),  # not on a 1–5 scale
        _case("K5", "A2", "2025-02-11T09:00", "2025-02-12T09:00", '{"Other__c": "1"}'),
        _case("K6", "A2", "2025-02-11T09:00", "2025-02-12T09:00", None),
        _case("K7", "A2", "2025-02-11T09:00", "2025-02-12T09:00", '{"CSAT__c": "1"}', deleted=True),
    ])
    _put(con, "survey_response", [
        _answer(1, "u1@x.com", "nps_program", 10, "2025-01-10"),  # a rep: promoter
        _answer(2, "buyer@a.com", "NPS", 9, "2025-01-11"),  # a customer contact: promoter
        _answer(3, "other@z.com", "q_nps", 8, "2025-01-12"),  # passive
        _answer(4, "other@z.com", "nps", 3, "2025-02-12"),  # detractor
        _answer(5, "other@z.com", "reaction_overall", 5, "2025-02-12"),  # not an NPS question
        _answer(6, "other@z.com", "nps", 11, "2025-02-12"),  # off the 0–10 scale
    ])
    _put(con, "crm_opportunity", [
        _opp("N1", "New Business", "A6", "U1", date(2024, 12, 10), won=True, amount=5000),
        _opp("R1", "Renewal", "A1", "U1", date(2025, 1, 15), won=True, amount=1000),
        _opp("R2", "Renewal", "A2", "U1", date(2025, 1, 20), won=False, amount=500),
        _opp("R3", "Renewal", "A3", "U2", date(2025, 2, 10), won=True, amount=2000),
        _opp("R4", "Renewal", "A4", "U2", date(2025, 2, 25), won=None, amount=900),  # still open: no outcome
        _opp("R5", "Subscription Renewal", "A5", "U2", date(2025, 2, 28), won=False, amount=300),
        _opp("R6", "Renewal", "A6", "U2", date(2025, 2, 5), won=True, amount=700),
        _opp("P1", "Upsell", "A1", "U1", date(2025, 1, 25), won=True, amount=200),
        _opp("P2", "Existing Customer - Upgrade", "A3", "U2", date(2025, 2, 15), won=True, amount=100),
        _opp("P3", "Upsell", "A2", "U1", date(2025, 2, 15), won=False, amount=999),
    ])
    yield con
    con.disconnect()


def _values(con, kpi: str, **kw: object) -> dict:
    frame = compute(con, [kpi], **kw)
    assert frame["reason"].is_null().all(), frame["reason"].to_list()
    return {(r["grain_id"], r["period"]): r["value"] for r in frame.iter_rows(named=True)}


def test_csat(org):
    # January: K1 = 4. February: K2 = 5 (closed 2 February), K3 = 2 (open, created 10 February).
    # K4 (9) is off the scale, K5 and K6 have no CSAT, K7 is deleted.
    assert _values(org, "csat") == {("org", JAN): 4.0, ("org", FEB): pytest.approx((5 + 2) / 2)}
    assert _values(org, "csat", monthly=False) == {("org", None): pytest.approx((4 + 5 + 2) / 3)}
    assert _values(org, "csat", monthly=False, grain="account") == {("A1", None): 4.5, ("A2", None): 2.0}


def test_csat_from_another_field(org):
    frame = compute(org, ["csat"], case_score_field="Satisfaction__c")
    assert frame["value"].to_list() == [None]
    assert "crm_case" in frame["reason"][0] and "Satisfaction__c" in frame["reason"][0]
    with pytest.raises(ValueError, match="case score field"):
        compute(org, ["csat"], case_score_field="CSAT__c') OR 1=1")


def test_nps(org):
    # January: two promoters and a passive among three answers → (2 − 0) / 3 × 100.
    # February: one detractor (the 5 is another question, the 11 is off the scale) → −100.
    assert _values(org, "nps") == {("org", JAN): pytest.approx(200 / 3), ("org", FEB): -100.0}
    assert _values(org, "nps", monthly=False) == {("org", None): pytest.approx((2 - 1) / 4 * 100)}
    # By rep: U1's one answer is a promoter; the other three (the buyer's promoter, a passive, a
    # detractor) are no rep's and count under "(no owner)": (1 − 1) / 3. By account likewise: the
    # buyer's promoter is A1's; u1's promoter, the passive and the detractor are no account's.
    assert _values(org, "nps", monthly=False, grain="rep") == {("U1", None): 100.0, ("(no owner)", None): 0.0}
    assert _values(org, "nps", monthly=False, grain="account") == {("A1", None): 100.0, ("(no account)", None): 0.0}


def test_churn_rate(org):
    # January: R1 renewed, R2 lost. February: R3, R6 renewed, R5 lost; R4 is open (no outcome yet).
    assert _values(org, "churn_rate") == {("org", JAN): 0.5, ("org", FEB): pytest.approx(1 / 3)}
    assert _values(org, "churn_rate", monthly=False) == {("org", None): pytest.approx(2 / 5)}
    assert _values(org, "churn_rate", monthly=False, grain="rep") == {("U1", None): 0.5,
                                                                      ("U2", None): pytest.approx(1 / 3)}


def test_net_revenue_retention(org):
    # January: starting 1,000 + 500 due; 500 churned; 200 upsell → (1,500 + 200 − 500) / 1,500.
    # February: starting 2,000 + 300 + 700; 300 churned; 100 upsell (an "Upgrade"; P3 was lost).
    assert _values(org, "net_revenue_retention") == {("org", JAN): pytest.approx(1200 / 1500),
                                                     ("org", FEB): pytest.approx(2800 / 3000)}
    assert _values(org, "net_revenue_retention", monthly=False) == {("org", None): pytest.approx(4000 / 4500)}
    team = _values(org, "net_revenue_retention", monthly=False, grain="team")
    assert team == {("M1", None): pytest.approx(4000 / 4500)}


def test_customer_lifetime_value(org):
    # Customers from their first won month to February (the last closed deal): A6 from December (3
    # months), A1 from January (2), A3 from February (1) = 6 account-months. Won: 9,000 in all.
    # Revenue per account-year = 9,000 × 0.5 margin / 6 × 12 = 9,000; churn 2 of 5 renewals → 22,500.
    got = _values(org, "customer_lifetime_value", monthly=False, gross_margin=0.5)
    assert got == {("org", None): pytest.approx(9000 * 0.5 / 6 * 12 / (2 / 5))}
    # From January: 4,000 won over 5 account-months (A6 two, A1 two, A3 one).
    got = _values(org, "customer_lifetime_value", monthly=False, gross_margin=0.5, since=JAN, until=MAR)
    assert got == {("org", None): pytest.approx(4000 * 0.5 / 5 * 12 / (2 / 5))}
    frame = compute(org, ["customer_lifetime_value"], monthly=False)
    assert frame["reason"].to_list() == ["no gross margin given"]


def test_renewal_kpis_need_renewals(tmp_path: Path):
    con = connect(tmp_path / "w.duckdb")
    ensure_tables(con)
    _put(con, "crm_opportunity", [_opp("N1", "New Business", "A1", "U1", date(2025, 1, 5), won=True, amount=10)])
    frame = compute(con, ["churn_rate", "net_revenue_retention", "nps"])
    assert frame["value"].null_count() == 3
    assert "crm_opportunity" in frame["reason"][0] and "renewal" in frame["reason"][0]
    assert frame["reason"][2] == "survey_response is empty"
    con.disconnect()
