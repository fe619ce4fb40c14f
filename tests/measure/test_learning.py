"""Learning KPIs on a hand-built LMS: every expected value is worked out by hand below."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from tests.builders import put_rows as _put
from training_roi.measure.catalogue import compute
from training_roi.warehouse.connection import connect, ensure_tables

JAN, FEB = date(2025, 1, 1), date(2025, 2, 1)
X, LESSON, Y = "https://lms.example.com/x", "https://lms.example.com/x/lesson-1", "https://lms.example.com/y"



def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _rec(i: int, learner: str, verb: str, activity: str, when: str, *, source: str = "xapi", **kw: object) -> dict:
    return {"record_key": f"r{i}", "learner_key": learner, "source": source, "verb": verb, "activity_id": activity,
            "course_id": X if activity == LESSON else activity, "occurred_at": _at(when), **kw}


@pytest.fixture
def lms(tmp_path: Path):
    con = connect(tmp_path / "w.duckdb")
    ensure_tables(con)
    _put(con, "crm_user", [{"user_id": "U1", "manager_id": "M1"}, {"user_id": "U2", "manager_id": "M1"}])
    _put(con, "lms_learner", [{"learner_id": f"D{i}", "email_norm": e}
                              for i, e in ((1, "a@x.com"), (2, "b@x.com"), (3, "c@x.com"), (4, "d@x.com"))])
    _put(con, "learner_identity", [
        {"learner_key": "lms:D1", "learner_id": "D1", "email_norm": "a@x.com", "crm_user_id": "U1"},
        {"learner_key": "mbox:a@x.com", "email_norm": "a@x.com", "crm_user_id": "U1"},  # the same rep, in xAPI
        {"learner_key": "lms:D2", "learner_id": "D2", "email_norm": "b@x.com", "crm_user_id": "U2"},
        {"learner_key": "lms:D3", "learner_id": "D3", "email_norm": "c@x.com", "crm_contact_id": "K3",
         "crm_account_id": "A1"},  # a customer
        {"learner_key": "lms:D4", "learner_id": "D4", "email_norm": "d@x.com"},
        {"learner_key": "mbox:z@x.com", "email_norm": "z@x.com"},  # not in the directory
    ])
    _put(con, "learning_record", [
        _rec(1, "mbox:a@x.com", "attempted", X, "2025-01-05T10:00", minutes=10.0),
        _rec(2, "mbox:a@x.com", "passed", X, "2025-01-05T11:00", score_pct=80.0, success=True, minutes=5.0),
        _rec(3, "mbox:a@x.com", "experienced", LESSON, "2025-01-07T10:00"),
        _rec(4, "lms:D1", "completed", Y, "2025-02-01T10:00", source="completions", score_pct=90.0, success=True,
             minutes=30.0),
        _rec(5, "lms:D2", "failed", X, "2025-01-10T10:00", score_pct=40.0, success=False, minutes=20.0),
        _rec(6, "lms:D2", "attempted", X, "2025-01-10T09:00"),
        _rec(7, "lms:D3", "completed", X, "2025-02-03T10:00", minutes=15.0),
        _rec(8, "mbox:z@x.com", "failed", X, "2025-02-04T10:00", score_pct=50.0, success=False),
        _rec(9, "lms:D2", "completed", Y, "2025-02-20T10:00", source="completions", score_pct=55.0, success=False,
             minutes=25.0),
    ])
    _put(con, "lms_completion", [
        {"completion_key": "c1", "learner_id": "D1", "email_norm": "a@x.com", "course_id": Y,
         "enrolled_at": _at("2025-01-20T00:00"), "completed_at": _at("2025-02-01T10:00")},
        {"completion_key": "c2", "learner_id": "D2", "email_norm": "b@x.com", "course_id": Y,
         "enrolled_at": _at("2025-02-10T00:00"), "completed_at": _at("2025-02-20T10:00")},
        {"completion_key": "c3", "learner_id": "D4", "email_norm": "d@x.com", "course_id": Y,
         "enrolled_at": _at("2025-01-25T00:00")},  # enrolled, never completed
    ])
    yield con
    con.disconnect()


def _values(con, kpi: str, **kw: object) -> dict:
    frame = compute(con, [kpi], **kw)
    assert frame["reason"].is_null().all(), frame["reason"].to_list()
    return {(r["grain_id"], r["period"]): r["value"] for r in frame.iter_rows(named=True)}


def test_enrolment_rate(lms):
    # Four registered learners. January: D1 (as mbox:a@x.com, by email) and D2. February: D1, D2, D3.
    # z@x.com learns but is not in the directory.
    assert _values(lms, "enrolment_rate") == {("org", JAN): 2 / 4, ("org", FEB): 3 / 4}
    assert _values(lms, "enrolment_rate", monthly=False) == {("org", None): 5 / 8}
    # Learners of no account (reps and the unknown z) hold the rest of the org's 5 of 8: 4 of 6.
    assert _values(lms, "enrolment_rate", monthly=False, grain="account") == {
        ("A1", None): 1 / 2, ("(no account)", None): pytest.approx(4 / 6)}


def test_completion_rate(lms):
    # Started in January: c1 (done), c3 (not), (a, X) passed, (a, lesson) only experienced, (D2, X)
    # failed. In February: c2 (done), (D3, X) completed, (z, X) failed.
    assert _values(lms, "completion_rate") == {("org", JAN): 2 / 5, ("org", FEB): pytest.approx(2 / 3)}
    assert _values(lms, "completion_rate", monthly=False) == {("org", None): 4 / 8}
    assert _values(lms, "completion_rate", monthly=False, grain="activity") == {
        (X, None): 2 / 4, (LESSON, None): 0.0, (Y, None): pytest.approx(2 / 3)}
    # Enrolments of learners who are no CRM user (the customer, z) hold the rest of the org's 4 of 8: 1 of 3.
    assert _values(lms, "completion_rate", monthly=False, grain="rep") == {
        ("U1", None): pytest.approx(2 / 3), ("U2", None): pytest.approx(1 / 2),
        ("(no CRM user)", None): pytest.approx(1 / 3)}


def test_time_spent_minutes(lms):
    # Learner-months with time: U1 January 10 + 5, U2 January 20; U1 February 30, U2 February 25,
    # the customer K3 February 15. z recorded no time.
    assert _values(lms, "time_spent_minutes") == {("org", JAN): pytest.approx(35 / 2),
                                                  ("org", FEB): pytest.approx(70 / 3)}
    assert _values(lms, "time_spent_minutes", monthly=False) == {("org", None): pytest.approx(105 / 5)}
    # The customer K3's 15 minutes in one learner-month belong to no team's rep.
    assert _values(lms, "time_spent_minutes", monthly=False, grain="team") == {
        ("M1", None): pytest.approx(90 / 4), ("(no CRM user)", None): pytest.approx(15.0)}


def test_assessment_score(lms):
    # January: 80, 40. February: 90, 50, 55.
    assert _values(lms, "assessment_score") == {("org", JAN): 60.0, ("org", FEB): pytest.approx(195 / 3)}
    assert _values(lms, "assessment_score", monthly=False) == {("org", None): pytest.approx(315 / 5)}
    assert _values(lms, "assessment_score", monthly=False, grain="activity") == {
        (X, None): pytest.approx(170 / 3), (Y, None): pytest.approx(145 / 2)}


def test_pass_rate(lms):
    # xAPI: r2 passed, r5 failed, r8 failed; completion report: r4 passed, r9 not.
    assert _values(lms, "pass_rate") == {("org", JAN): 0.5, ("org", FEB): pytest.approx(1 / 3)}
    assert _values(lms, "pass_rate", monthly=False) == {("org", None): pytest.approx(2 / 5)}


def test_engagement_frequency(lms):
    # Days with a record: U1 January 5 and 7, February 1; U2 January 10, February 20; K3 February 3;
    # z February 4 → January 3 days / 2 learners, February 4 days / 4 learners.
    assert _values(lms, "engagement_frequency") == {("org", JAN): 1.5, ("org", FEB): 1.0}
    assert _values(lms, "engagement_frequency", monthly=False) == {("org", None): pytest.approx(7 / 6)}
    # K3 and z, no CRM users: one day each in one learner-month each.
    assert _values(lms, "engagement_frequency", monthly=False, grain="rep") == {
        ("U1", None): 1.5, ("U2", None): 1.0, ("(no CRM user)", None): 1.0}


def test_learning_kpis_without_the_sources(tmp_path: Path):
    con = connect(tmp_path / "w.duckdb")
    ensure_tables(con)
    _put(con, "learning_record", [_rec(1, "mbox:a@x.com", "attempted", X, "2025-01-05T10:00")])
    frame = compute(con, ["enrolment_rate", "time_spent_minutes", "pass_rate", "completion_rate"])
    assert frame["reason"].to_list() == [
        "lms_learner is empty",
        "learning_record.minutes is empty in every row",
        "no passed or failed record in learning_record (xAPI passed/failed, or the completion report's passed)",
        None,
    ]
    # The attempt is an enrolment that was not completed: a true zero, not a missing value.
    assert frame["value"].to_list() == [None, None, None, 0.0]
    con.disconnect()
