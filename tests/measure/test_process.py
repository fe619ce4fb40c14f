"""Process KPIs on a hand-built org: every expected value is worked out by hand below."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from tests.builders import put_rows as _put
from training_roi.measure.catalogue import compute
from training_roi.warehouse.connection import connect, ensure_tables

JAN, FEB, MAR = date(2025, 1, 1), date(2025, 2, 1), date(2025, 3, 1)
NOV, DEC = date(2024, 11, 1), date(2024, 12, 1)



def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _act(i: str, owner: str, created: str, *, kind: str = "event", due: date | None = None, **kw: object) -> dict:
    return {"activity_id": i, "kind": kind, "owner_id": owner, "created_at": _at(created), "activity_date": due,
            "is_deleted": False, **kw}


@pytest.fixture
def org(tmp_path: Path):
    con = connect(tmp_path / "w.duckdb")
    ensure_tables(con)
    _put(con, "crm_user", [
        {"user_id": "U1", "manager_id": "M1", "is_active": True, "created_at": _at("2024-12-01T00:00")},
        {"user_id": "U2", "manager_id": "M1", "is_active": True, "created_at": _at("2024-12-01T00:00")},
        {"user_id": "U3", "manager_id": "M2", "is_active": True, "created_at": _at("2025-02-15T00:00")},
        {"user_id": "U4", "manager_id": "M2", "is_active": False, "created_at": _at("2024-12-01T00:00")},
    ])
    _put(con, "crm_lead", [
        {"lead_id": "L1", "owner_id": "U1", "created_at": _at("2025-01-05T10:00"), "is_deleted": False},
        {"lead_id": "L2", "owner_id": "U1", "created_at": _at("2025-01-20T10:00"), "is_deleted": False},
        {"lead_id": "L3", "owner_id": "U2", "created_at": _at("2025-02-03T10:00"), "is_deleted": False},
        {"lead_id": "L4", "owner_id": "U4", "created_at": _at("2025-02-10T10:00"), "is_deleted": False},  # unanswered
        {"lead_id": "L5", "owner_id": "U2", "created_at": _at("2025-02-10T10:00"), "is_deleted": True},
    ])
    _put(con, "crm_case", [
        {"case_id": "C1", "owner_id": "U1", "account_id": "A1", "created_at": _at("2025-01-10T08:00"),
         "closed_at": _at("2025-01-11T08:00"), "is_closed": True, "is_deleted": False},
        {"case_id": "C2", "owner_id": "U1", "account_id": "A1", "created_at": _at("2025-01-15T00:00"),
         "closed_at": _at("2025-01-16T12:00"), "is_closed": True, "is_deleted": False},
        {"case_id": "C3", "owner_id": "U3", "account_id": "A2", "created_at": _at("2025-02-01T00:00"),
         "closed_at": _at("2025-02-01T06:00"), "is_closed": True, "is_deleted": False},
        {"case_id": "C4", "owner_id": "U3", "account_id": "A2", "created_at": _at("2025-02-02T00:00"),
         "is_closed": False, "is_deleted": False},  # open and untouched: no response yet
    ])
    _put(con, "crm_activity", [
        _act("E1", "U1", "2025-01-05T13:00", who_id="L1"),
        _act("E2", "U1", "2025-01-06T09:00", who_id="L1"),
        _act("E3", "U1", "2025-01-19T10:00", who_id="L2"),  # before the lead existed
        _act("E4", "U1", "2025-01-21T22:00", who_id="L2"),
        _act("E5", "U2", "2025-02-03T11:30", who_id="L3"),
        _act("E6", "U2", "2025-02-11T09:00", who_id="L5"),  # on a deleted lead
        _act("E7", "U1", "2025-01-10T12:00", what_id="C1"),
        _act("E8", "U3", "2025-02-01T10:00", what_id="C3"),  # after C3 was closed
        _act("T1", "U1", "2025-01-02T09:00", kind="task", due=date(2025, 1, 10), is_closed=True,
             completed_at=_at("2025-01-09T15:00")),
        _act("T2", "U1", "2025-01-02T09:00", kind="task", due=date(2025, 1, 10), is_closed=True,
             completed_at=_at("2025-01-10T23:00")),
        _act("T3", "U1", "2025-01-03T09:00", kind="task", due=date(2025, 1, 15), is_closed=True,
             completed_at=_at("2025-01-16T08:00")),
        _act("T4", "U2", "2024-12-28T09:00", kind="task", due=date(2025, 1, 20), is_closed=False),
        _act("T5", "U2", "2025-02-01T09:00", kind="task", due=date(2025, 2, 5), is_closed=True),
        _act("T6", "U2", "2025-02-01T09:00", kind="task", due=date(2025, 3, 31), is_closed=False),
        {**_act("D1", "U3", "2025-03-05T09:00", kind="task", due=date(2025, 3, 5)), "is_deleted": True},
    ])
    _put(con, "crm_opportunity", [
        {"opportunity_id": "O1", "owner_id": "U1", "account_id": "A1", "amount": 100, "close_date": date(2025, 3, 1),
         "stage_name": "Prospecting", "created_at": _at("2024-11-01T10:00"), "is_closed": False, "is_deleted": False},
        {"opportunity_id": "O2", "owner_id": "U1", "close_date": date(2025, 3, 1), "stage_name": "Qualification",
         "created_at": _at("2024-11-15T10:00"), "is_closed": False, "is_deleted": False},
        {"opportunity_id": "O3", "owner_id": "U2", "account_id": "A2", "amount": 50, "close_date": date(2025, 1, 20),
         "stage_name": "Closed Won", "created_at": _at("2024-12-10T10:00"), "is_closed": True, "is_won": True,
         "is_deleted": False},
        {"opportunity_id": "O4", "owner_id": "U2", "account_id": "A2", "amount": 10, "close_date": date(2025, 2, 1),
         "stage_name": " ", "created_at": _at("2024-12-20T10:00"), "is_closed": False, "is_deleted": False},
        {"opportunity_id": "O5", "owner_id": "U2", "created_at": _at("2024-12-20T10:00"), "is_deleted": True},
    ])
    _put(con, "crm_opportunity_history", [
        {"history_id": "H1", "opportunity_id": "O1", "created_at": _at("2024-11-01T10:00"), "is_deleted": False},
        {"history_id": "H2", "opportunity_id": "O1", "created_at": _at("2024-12-25T10:00"), "is_deleted": False},
        {"history_id": "H3", "opportunity_id": "O3", "created_at": _at("2024-12-10T10:00"), "is_deleted": False},
        {"history_id": "H4", "opportunity_id": "O4", "created_at": _at("2025-01-05T10:00"), "is_deleted": False},
    ])
    yield con
    con.disconnect()


def _values(con, kpi: str, **kw: object) -> dict:
    frame = compute(con, [kpi], **kw)
    assert frame["reason"].is_null().all(), frame["reason"].to_list()
    return {(r["grain_id"], r["period"]): r["value"] for r in frame.iter_rows(named=True)}


def test_lead_response_hours(org):
    # L1: 10:00 → E1 13:00 = 3 h. L2: E3 came before the lead; E4 on the 21st at 22:00 = 36 h.
    # L3: 10:00 → 11:30 = 1.5 h. L4 was never answered; L5 is deleted.
    assert _values(org, "lead_response_hours") == {("org", JAN): pytest.approx((3 + 36) / 2),
                                                   ("org", FEB): pytest.approx(1.5)}
    assert _values(org, "lead_response_hours", monthly=False) == {("org", None): pytest.approx((3 + 36 + 1.5) / 3)}
    assert _values(org, "lead_response_hours", monthly=False, grain="rep") == {
        ("U1", None): pytest.approx(19.5), ("U2", None): pytest.approx(1.5)}
    assert _values(org, "lead_response_hours", monthly=False, grain="team") == {("M1", None): pytest.approx(13.5)}


def test_case_response_hours(org):
    # C1: activity after 4 h, closed after 24 h → 4 h. C2: no activity, closed after 36 h.
    # C3: closed after 6 h, before its activity (10 h) → 6 h. C4: open and untouched, left out.
    assert _values(org, "case_response_hours") == {("org", JAN): pytest.approx((4 + 36) / 2),
                                                   ("org", FEB): pytest.approx(6)}
    assert _values(org, "case_response_hours", monthly=False, grain="account") == {
        ("A1", None): pytest.approx(20), ("A2", None): pytest.approx(6)}


def test_task_completion_rate(org):
    # January: T1 (done the day before), T2 (23:00 UTC on the due day) on time; T3 a day late; T4 still
    # open past its due date. February: T5 closed without a completion time cannot be on time.
    # T6 is due after the export's last activity (11 February): not late yet, left out.
    assert _values(org, "task_completion_rate") == {("org", JAN): pytest.approx(2 / 4), ("org", FEB): 0.0}
    assert _values(org, "task_completion_rate", monthly=False, grain="rep") == {
        ("U1", None): pytest.approx(2 / 3), ("U2", None): 0.0}


def test_activity_volume(org):
    # By ActivityDate, else the creation day. U1: 8 in January (E1-E4, E7, T1-T3), one month.
    # U2: T4 in January, E5 E6 T5 in February, T6 in March: 5 over three months. U3: E8 in February.
    assert _values(org, "activity_volume") == {("org", JAN): pytest.approx((8 + 1) / 2),
                                               ("org", FEB): pytest.approx((3 + 1) / 2), ("org", MAR): 1.0}
    assert _values(org, "activity_volume", monthly=False) == {("org", None): pytest.approx(14 / 5)}
    assert _values(org, "activity_volume", monthly=False, grain="team") == {
        ("M1", None): pytest.approx((8 + 5) / 4), ("M2", None): 1.0}


def test_data_completeness(org):
    # November: O1 4 of 4, O2 2 of 4 (no amount, no account). December: O3 4, O4 3 (blank stage).
    assert _values(org, "data_completeness") == {("org", NOV): pytest.approx(6 / 8), ("org", DEC): pytest.approx(7 / 8)}
    assert _values(org, "data_completeness", monthly=False) == {("org", None): pytest.approx(13 / 16)}


def test_stale_opportunities(org):
    # End of November: O1 (changed 1 Nov) and O2 (created 15 Nov): neither 30 days old by 1 Dec − 30 days.
    # End of December (cut 2 Dec): O1 changed 25 Dec, O2 last touched 15 Nov (stale), O3 closes 20 Jan,
    # O4 created 20 Dec. End of January (cut 2 Jan): O1 stale, O2 stale, O3 closed, O4 changed 5 Jan.
    assert _values(org, "stale_opportunities") == {("org", NOV): 0.0, ("org", DEC): pytest.approx(1 / 4),
                                                   ("org", JAN): pytest.approx(2 / 3)}
    assert _values(org, "stale_opportunities", monthly=False) == {("org", None): pytest.approx(3 / 9)}
    assert _values(org, "stale_opportunities", monthly=False, grain="rep") == {
        ("U1", None): pytest.approx(3 / 6), ("U2", None): 0.0}


def test_system_adoption(org):
    # Licensed: U1, U2, and U3 from February (when it was created); U4 is inactive. January: U1 owns
    # records created then, U2 none (T4 was created in December) → 1 of 2. February: U2 (E5, L3) and U3
    # (C3, E8) but not U1 → 2 of 3.
    window = {"since": JAN, "until": MAR}
    assert _values(org, "system_adoption", **window) == {("org", JAN): 0.5, ("org", FEB): pytest.approx(2 / 3)}
    assert _values(org, "system_adoption", monthly=False, **window) == {("org", None): pytest.approx(3 / 5)}
    assert _values(org, "system_adoption", grain="team", **window) == {
        ("M1", JAN): 0.5, ("M1", FEB): 0.5, ("M2", FEB): 1.0}


def test_a_window_keeps_only_its_facts(org):
    # From 15 January: L2 (36 h) and L3 (1.5 h) only.
    got = _values(org, "lead_response_hours", monthly=False, since=date(2025, 1, 15), until=MAR)
    assert got == {("org", None): pytest.approx((36 + 1.5) / 2)}


def test_tasks_without_completion_times_are_unavailable(tmp_path: Path):
    con = connect(tmp_path / "w.duckdb")
    ensure_tables(con)
    _put(con, "crm_activity", [_act("T1", "U1", "2025-01-02T09:00", kind="task", due=date(2025, 1, 10),
                                    is_closed=True)])
    frame = compute(con, ["task_completion_rate", "lead_response_hours"])
    assert frame["value"].to_list() == [None, None]
    assert frame["reason"].to_list() == ["crm_activity.completed_at is empty in every row", "crm_lead is empty"]
    con.disconnect()
