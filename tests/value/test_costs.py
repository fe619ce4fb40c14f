"""Fully loaded cost on a small warehouse whose totals are worked out by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from training_roi.study.model import ParticipantTime as ParticipantTimeSetting
from training_roi.value import CATEGORIES, cost_breakdown
from training_roi.warehouse.connection import connect, ensure_tables
from training_roi.warehouse.schema import table

WHEN = datetime(2025, 3, 4, 15, tzinfo=UTC)


def insert(con, name: str, rows: list[dict]) -> None:
    con.insert(name, pa.Table.from_pylist(rows, schema=table(name).schema.to_pyarrow()))


def cost(key: str, program: str | None, category: str, amount: str) -> dict:
    return {"cost_key": key, "program": program, "category": category, "amount": Decimal(amount),
            "date": date(2025, 1, 15)}


def record(key: str, learner: str, program: str | None, minutes: float | None) -> dict:
    return {"record_key": key, "learner_key": learner, "program": program, "minutes": minutes,
            "occurred_at": WHEN, "source": "completions"}


@pytest.fixture
def wh(tmp_path: Path):
    con = connect(tmp_path / "w.duckdb")
    ensure_tables(con)
    insert(con, "cost_line", [
        cost("c1", "SX", "development", "5000.00"),
        cost("c2", "SX", "licensing", "3000.00"),
        cost("c3", "SX", "facilitation", "2000.00"),
        cost("c4", "SX", "development", "1000.50"),
        cost("c5", "Other", "development", "9999.00"),
        cost("s1", None, "platform", "4000.00"),
        cost("s2", None, "administration", "1000.00"),
        cost("s3", "", "other", "1000.00"),
    ])
    insert(con, "learning_record", [
        record("r1", "L1", "SX", 90.0),
        record("r2", "L1", None, 30.0),
        record("r3", "L2", "SX", 60.0),
        record("r4", "L3", "SX", 120.0),
        record("r5", "L2", "Other", 45.0),
        record("r6", "L2", "SX", None),
    ])
    insert(con, "learner_identity", [
        {"learner_key": "L1", "crm_user_id": "U1", "status": "linked"},
        {"learner_key": "L2", "crm_user_id": "U2", "status": "linked"},
    ])
    insert(con, "crm_user", [
        {"user_id": "U1", "title": "Account Executive"},
        {"user_id": "U2", "title": "SDR"},
    ])
    yield con
    con.disconnect()


def test_hand_worked_total_with_single_rate_and_shared_allocation(wh):
    b = cost_breakdown(wh, programs="SX", hourly_rate=60, shared_share="0.25")
    assert list(b.by_category) == list(CATEGORIES)
    assert b.by_category["development"] == Decimal("6000.50")
    assert b.by_category["licensing"] == Decimal("3000.00")
    assert b.by_category["facilitation"] == Decimal("2000.00")
    # SX records: 90 + 60 + 120 minutes = 4.5 h × 60 = 270.00 (the record without minutes is noted).
    assert b.participant_time_source == "learning records"
    assert b.participant_hours == Decimal("4.5")
    assert b.participant_rate == 60
    assert b.participant_time_amount == Decimal("270.00")
    # Shared: 4000 + 1000 (null program) + 1000 (empty program) = 6000 × 0.25 = 1500.00.
    assert b.shared_total == Decimal("6000.00")
    assert b.shared_allocated == Decimal("1500.00")
    assert b.total == Decimal("6000.50") + 3000 + 2000 + 270 + 1500
    # Every participant's minutes come from the completion report here; nobody is left without time.
    assert b.time_sources == {"report": (3, Decimal("270"))}
    assert not any("no learning time" in n for n in b.notes)
    # What costs.csv holds that this cost leaves out: the other program, and the shared lines' other 75%.
    assert b.excluded == {"(shared, not allocated)": Decimal("4500.00"), "Other": Decimal("9999.00")}
    assert b.asdict()["total"] == "12770.50"
    assert "12,770.50" in str(b)


def test_learner_keys_take_their_unnamed_records_too(wh):
    b = cost_breakdown(wh, programs=["SX"], learner_keys=["L1", "L2"], hourly_rate=60)
    # L1: 90 (SX) + 30 (no program); L2: 60 (SX); L2's "Other" record is not this program's.
    assert b.participant_time_amount == Decimal("180.00")
    assert b.shared_allocated == 0
    assert b.total == Decimal("11000.50") + 180


def test_per_title_rates_with_default_for_the_rest(wh):
    b = cost_breakdown(wh, programs="SX", hourly_rate_by_title={"Account Executive": 100, "SDR": 40},
                       hourly_rate=50)
    by_title = {p.title: (p.minutes, p.hourly_rate, p.amount) for p in b.participant_time}
    assert by_title == {
        "Account Executive": (90, 100, Decimal("150.00")),
        "SDR": (60, 40, Decimal("40.00")),
        None: (120, 50, Decimal("100.00")),  # L3 is not linked: the default rate applies
    }
    assert b.participant_rate is None
    assert b.participant_time_amount == Decimal("290.00")
    assert b.total == Decimal("11000.50") + 290


def test_per_title_rates_without_default_name_the_uncovered_learners(wh):
    with pytest.raises(ValueError, match=r"\(no title\)"):
        cost_breakdown(wh, programs="SX", hourly_rate_by_title={"Account Executive": 100, "SDR": 40})


def test_learning_time_without_a_rate_is_refused(wh):
    with pytest.raises(ValueError, match="fully loaded"):
        cost_breakdown(wh, programs="SX")


def test_per_title_rates_leaving_a_title_out_name_the_study_keys_that_exist(wh):
    with pytest.raises(ValueError, match="no hourly rate covers") as info:
        cost_breakdown(wh, programs="SX", hourly_rate_by_title={"Account Executive": 100, "SDR": 40})
    message = str(info.value)
    assert "costs.participant_time.hourly_rate " in message
    assert "costs.participant_time.hourly_rate_by_role" in message and "hourly_rate_by_title" not in message
    # … and those keys are the study's own.
    assert {"hourly_rate", "hourly_rate_by_role"} <= set(ParticipantTimeSetting.model_fields)


def test_time_not_costed_is_left_out_and_said(wh):
    b = cost_breakdown(wh, programs="SX", cost_time=False)
    assert b.participant_time_source == "not costed" and not b.time_costed
    # The SX records' 90 + 60 + 120 minutes are recorded, none costed: the total is the lines alone.
    assert b.uncosted_minutes == Decimal("270")
    assert b.participant_time_amount == 0
    assert b.total == Decimal("6000.50") + 3000 + 2000
    assert b.notes[0].startswith("participant time is not costed")
    assert "4.5 hours" in b.notes[0] and "3 participants are left out" in b.notes[0]
    doc = b.asdict()
    assert doc["participant_time_costed"] is False and doc["uncosted_minutes"] == "270"


def test_participant_time_lines_are_not_counted_twice(wh):
    insert(wh, "cost_line", [cost("p1", "SX", "participant_time", "500.00")])
    b = cost_breakdown(wh, programs="SX", hourly_rate=60)
    assert b.participant_time_source == "cost lines"
    assert b.participant_time == ()
    assert b.participant_time_amount == Decimal("500.00")
    assert b.total == Decimal("11000.50") + 500
    assert any("twice" in n for n in b.notes)


def test_derived_time_is_rounded_once_to_the_cent(wh):
    insert(wh, "learning_record", [record("r7", "L9", "Tiny", 7.0)])
    insert(wh, "cost_line", [cost("t1", "Tiny", "other", "1.00")])
    b = cost_breakdown(wh, programs="Tiny", hourly_rate=100)
    assert b.participant_time_amount == Decimal("11.67")  # 7/60 × 100 = 11.666…


def test_arguments_are_validated(wh):
    with pytest.raises(ValueError, match="shared_share"):
        cost_breakdown(wh, programs="SX", hourly_rate=60, shared_share="1.5")
    with pytest.raises(ValueError, match="at least one"):
        cost_breakdown(wh, programs=[], hourly_rate=60)


def test_fixed_minutes_per_learner_and_participant_time_only(wh):
    # SX learners: L1, L2 and L3 (L2's record without minutes counts as a participant too).
    b = cost_breakdown(wh, programs="SX", hourly_rate=60, minutes_per_learner=90, use_cost_lines=False)
    assert b.participant_hours == Decimal("4.5")       # 3 learners × 90 minutes
    assert b.participant_time_amount == Decimal("270.00")
    assert b.total == Decimal("270.00")                # no cost line, no shared cost
    assert b.shared_total == 0
    assert any("not used" in n for n in b.notes)
    assert b.time_sources == {"fixed": (3, Decimal("270"))}
    per_title = cost_breakdown(wh, programs="SX", hourly_rate=40, hourly_rate_by_title={"SDR": 30},
                               minutes_per_learner=60)
    # One hour each: L1 (Account Executive) and L3 (no title) at the default $40, L2 (SDR) at $30.
    assert per_title.participant_time_amount == Decimal("110.00")


def xapi(key: str, learner: str, verb: str, activity: str, minutes: float | None, course: str = "C") -> dict:
    return {"record_key": key, "learner_key": learner, "verb": verb, "activity_id": activity, "course_id": course,
            "minutes": minutes, "occurred_at": WHEN, "source": "xapi"}


def test_each_participants_time_counts_once_by_the_rule_of_precedence(wh):
    # Worked by hand. The course C of program "P" (its records name no program, as xAPI's rarely do).
    insert(wh, "learning_record", [
        # U1 (two LMS identities, one person): two sessions of 40 and 35 minutes; the completed
        # statement's total (75), the lesson durations (30 + 45) and the report (80) say it again.
        xapi("a1", "L1", "terminated", "C", 40.0), xapi("a2", "L1b", "terminated", "C", 35.0),
        xapi("a3", "L1", "completed", "C", 75.0), xapi("a4", "L1", "experienced", "C/lesson1", 30.0),
        xapi("a5", "L1b", "experienced", "C/lesson2", 45.0),
        {**record("a6", "L1", None, 80.0), "activity_id": "C", "course_id": "C"},
        # U2: no sessions; the completed total (50) wins over passed (50 again) and the report (55).
        xapi("b1", "L2", "completed", "C", 50.0), xapi("b2", "L2", "passed", "C", 50.0),
        {**record("b3", "L2", None, 55.0), "activity_id": "C", "course_id": "C"},
        # U3: only the completion report's minutes.
        {**record("c1", "L3", None, 20.0), "activity_id": "C", "course_id": "C"},
        # U4: only lesson durations and an answer: no recorded time for the course.
        xapi("d1", "L4", "experienced", "C/lesson1", 12.0), xapi("d2", "L4", "answered", "C/q1", 3.0),
    ])
    insert(wh, "learner_identity", [{"learner_key": "L1b", "crm_user_id": "U1", "status": "linked"},
                                    {"learner_key": "L4", "crm_user_id": "U4", "status": "linked"}])
    insert(wh, "cost_line", [cost("p1", "P", "development", "100.00")])
    b = cost_breakdown(wh, programs="P", activities=["C"], hourly_rate=60)
    by_person = {r["person"]: (r["minutes"], r["source"]) for r in b.participants.iter_rows(named=True)}
    assert by_person == {"U1": (75.0, "sessions"), "U2": (50.0, "completion"), "L3": (20.0, "report"),
                         "U4": (None, "none")}
    assert b.time_sources == {"completion": (1, Decimal("50")), "none": (1, Decimal("0")),
                              "report": (1, Decimal("20")), "sessions": (1, Decimal("75"))}
    assert b.participant_time_amount == Decimal("145.00")  # (75 + 50 + 20) minutes × $60 / 60
    assert any("1 participant has no learning time recorded" in n for n in b.notes)
    # A fixed time fills only the participant with none recorded (U4: 30 minutes), or replaces everyone's.
    filled = cost_breakdown(wh, programs="P", activities=["C"], hourly_rate=60, minutes_per_learner=30,
                            time="recorded")
    assert filled.participant_time_amount == Decimal("175.00")
    assert filled.time_sources["fixed"] == (1, Decimal("30"))
    fixed = cost_breakdown(wh, programs="P", activities=["C"], hourly_rate=60, minutes_per_learner=30)
    assert fixed.participant_time_amount == Decimal("120.00") and fixed.time_sources == {"fixed": (4, Decimal("120"))}


def test_a_program_name_that_matches_no_cost_line_is_refused_with_the_names_present(wh):
    with pytest.raises(ValueError, match=r"names the program 'SXX'; the lines name 'SX', 'Other'"):
        cost_breakdown(wh, programs="SXX", hourly_rate=60)
    # Cost lines of no program at all (participant time only) are no error.
    only_time = cost_breakdown(wh, programs="SXX", hourly_rate=60, use_cost_lines=False)
    assert only_time.by_category["development"] == 0


def test_the_rule_applies_course_by_course_and_a_zero_duration_holds_no_time(wh):
    # U1: a 60-minute session on C1 and only a completion-report row (90) on C2 → 150 minutes.
    # U2: a PT0S session on C1 (holds nothing) and a 45-minute report row on C1 → 45 minutes.
    insert(wh, "learning_record", [
        xapi("e1", "L1", "terminated", "C1", 60.0, course="C1"),
        {**record("e2", "L1", None, 90.0), "activity_id": "C2", "course_id": "C2"},
        xapi("e3", "L2", "terminated", "C1", 0.0, course="C1"),
        {**record("e4", "L2", None, 45.0), "activity_id": "C1", "course_id": "C1"},
    ])
    insert(wh, "cost_line", [cost("q1", "Q", "development", "100.00")])
    b = cost_breakdown(wh, programs="Q", activities=["C1", "C2"], hourly_rate=60)
    by_person = {r["person"]: (r["minutes"], r["source"]) for r in b.participants.iter_rows(named=True)}
    assert by_person == {"U1": (150.0, "report+sessions"), "U2": (45.0, "report")}
    assert b.time_sources == {"report": (2, Decimal("135")), "sessions": (1, Decimal("60"))}
    assert b.participant_time_amount == Decimal("195.00")
    assert b.asdict()["time_sources"]["sessions"]["minutes"] == "60"


def test_only_the_programs_records_of_employees_are_their_time(wh):
    # Customer education costs employees only; an employee's learning of another course is not this program's.
    insert(wh, "learning_record", [xapi("f1", "L1", "terminated", "CP", 60.0, course="CP"),
                                   xapi("f2", "L2", "terminated", "X", 120.0, course="X")])
    insert(wh, "cost_line", [cost("r1", "R", "development", "100.00")])
    b = cost_breakdown(wh, programs="R", activities=["CP"], learner_keys=["L1", "L2"], hourly_rate=60)
    assert b.participant_time_amount == Decimal("60.00") and b.time_sources == {"sessions": (1, Decimal("60"))}
