"""Completion rules as cmi5's moveOn criteria, on hand-built statements whose every date is read off below.

Authoring tools send ``completed`` and ``passed`` in every combination: one of them, both, a
``completed`` whose result says ``success: true``, a ``failed`` before a ``completed``. Each rep
below is one such habit; each rule's expected dates are worked out from the statements by hand.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.builders import write
from training_roi.ingest.folder import ingest_folder
from training_roi.linking import link
from training_roi.measure import completions
from training_roi.study import load_study

COURSE = "https://lms.example.com/course/negotiation"
REPS = {f"00500000000000{i}AAA": f"r{i}@x.com" for i in range(1, 6)}
R1, R2, R3, R4, R5 = REPS


def _at(day: int) -> datetime:
    return datetime(2025, 3, day, 9, tzinfo=UTC)


def _statement(n: int, email: str, verb: str, day: int, result: dict | None = None) -> str:
    doc = {"id": f"00000000-0000-4000-8000-{n:012d}", "actor": {"mbox": f"mailto:{email}"},
           "verb": {"id": f"http://adlnet.gov/expapi/verbs/{verb}"}, "object": {"id": COURSE},
           "timestamp": _at(day).isoformat(), **({"result": result} if result else {})}
    return json.dumps(doc)


@pytest.fixture
def habits(tmp_path: Path, con):
    write(tmp_path / "crm" / "User.csv", "Id,Email\n" + "".join(f"{r},{e}\n" for r, e in REPS.items()))
    write(tmp_path / "lms" / "statements.jsonl", "\n".join([
        # R1: the tool sends passed only (a quiz), after a launch.
        _statement(1, REPS[R1], "launched", 1), _statement(2, REPS[R1], "passed", 2, {"success": True}),
        # R2: completed, then passed three days later.
        _statement(3, REPS[R2], "completed", 2, {"completion": True}),
        _statement(4, REPS[R2], "passed", 5, {"success": True}),
        # R3: one completed statement that also says success: true.
        _statement(5, REPS[R3], "completed", 3, {"completion": True, "success": True}),
        # R4: failed the quiz, then completed the content without passing.
        _statement(6, REPS[R4], "failed", 4, {"success": False}),
        _statement(7, REPS[R4], "completed", 6, {"completion": True, "success": False}),
        # R5: only looked at it.
        _statement(8, REPS[R5], "experienced", 7),
    ]) + "\n")
    ingest_folder(tmp_path, con)
    link(con)
    return con


@pytest.mark.parametrize(("rule", "expected"), [
    ("CompletedOrPassed", {R1: _at(2), R2: _at(2), R3: _at(3), R4: _at(6)}),
    ("completed", {R1: _at(2), R2: _at(2), R3: _at(3), R4: _at(6)}),
    ("Completed", {R2: _at(2), R3: _at(3), R4: _at(6)}),
    ("Passed", {R1: _at(2), R2: _at(5), R3: _at(3)}),
    ("passed", {R1: _at(2), R2: _at(5), R3: _at(3)}),
    ("CompletedAndPassed", {R2: _at(5), R3: _at(3)}),
    ("NotApplicable", {R1: _at(1), R2: _at(2), R3: _at(3), R4: _at(4), R5: _at(7)}),
])
def test_each_move_on_rule_dates_each_habit(habits, rule: str, expected: dict[str, datetime]):
    rows = completions(habits, [COURSE], rule=rule).to_pyarrow().to_pylist()
    assert {r["unit_id"]: r["completed_at"] for r in rows} == expected


def test_completed_and_passed_needs_both_inside_the_programs_dates(habits):
    # R2 completed on the 2nd and passed on the 5th: satisfied on the 5th, so a program ending on
    # the 4th does not count them; R3's single statement on the 3rd does.
    rows = completions(habits, [COURSE], rule="CompletedAndPassed", until=_at(4)).to_pyarrow().to_pylist()
    assert {r["unit_id"] for r in rows} == {R3}


def test_the_cmi5_sample_session_is_satisfied_at_its_completed_statement(tmp_path: Path, con, realdata: Path):
    # The AICC sample: moveOn CompletedAndPassed; passed at 18:47:49.542, completed at 18:47:52.984.
    shutil.copytree(realdata / "xapi" / "cmi5_09_completed_and_passed", tmp_path / "lms")
    write(tmp_path / "lms" / "learners.csv", "learner_id,email\nLearner,geo@x.com\n")
    write(tmp_path / "crm" / "User.csv", f"Id,Email\n{R1},geo@x.com\n")
    mapping = write(tmp_path / "m.yaml", 'name: cmi5\nsources:\n  xapi:\n    file: "lms/0*.json"\n'
                    '  learners:\n    file: lms/learners.csv\n')
    from training_roi.ingest.mapping import load_mapping

    ingest_folder(tmp_path, con, mapping=load_mapping(mapping))
    link(con)
    au = "http://example.org/cmi5/au-lms-id/4756b42214cb0cb4825b3c9b5c15053d6a6cf7f5"

    def first(rule: str) -> datetime | None:
        rows = completions(con, [au], rule=rule).to_pyarrow().to_pylist()
        return rows[0]["completed_at"] if rows else None

    assert first("CompletedAndPassed") == datetime(2016, 6, 9, 18, 47, 52, 984000, tzinfo=UTC)
    assert first("CompletedOrPassed") == first("Passed") == datetime(2016, 6, 9, 18, 47, 49, 542000, tzinfo=UTC)


def test_a_study_names_the_rule_and_an_unknown_one_is_refused_with_the_choices(tmp_path: Path):
    from training_roi.errors import StudyError

    good = write(tmp_path / "s.yaml", f"name: S\nprogram: {{activities: [{COURSE}], completion: CompletedAndPassed}}\n")
    assert load_study(good).program.completion == "CompletedAndPassed"
    bad = write(tmp_path / "b.yaml", f"name: S\nprogram: {{activities: [{COURSE}], completion: CompletedAndPass}}\n")
    with pytest.raises(StudyError, match=r"program\.completion.*CompletedAndPassed"):
        load_study(bad)
