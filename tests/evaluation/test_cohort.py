"""One cohort per evaluation: every stage sees the same trained units on the same days.

The warehouse is built so that the definitions the stages once used on their own would disagree:
a completion late on February 28th in UTC is already March 1st in the study's time zone
(Pacific/Kiritimati, UTC+14); one rep took the course before the program's start and retook it
during the program; another took it only before the program's start.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.builders import put_rows
from training_roi.evaluation import Evaluation, evaluate
from training_roi.study import Study
from training_roi.warehouse.connection import connect, ensure_tables

COURSE = "https://lms.example.com/course/core"
ZONE = "Pacific/Kiritimati"


def _deals(rep: str) -> list[dict[str, Any]]:
    """Three deals a month from September 2024 to August 2025, won in a pattern that varies by rep and month."""
    rows = []
    for m in range(12):
        year, month = (2024, 9 + m) if m < 4 else (2025, m - 3)
        for k in range(3):
            won = (m + k + int(rep[1:])) % 3 == 0 or (m * k) % 5 == 1
            rows.append({"opportunity_id": f"{rep}-{m}-{k}", "owner_id": rep, "account_id": "A1", "amount": 1000,
                         "created_at": datetime(year, month, 5 + k, 12, tzinfo=UTC),
                         "close_date": date(year, month, 25), "is_closed": True, "is_won": won,
                         "is_deleted": False})
    return rows


def _done(n: int, learner: str, at: datetime) -> dict[str, Any]:
    return {"record_key": f"r{n}", "learner_key": learner, "source": "xapi", "verb": "completed",
            "activity_id": COURSE, "activity_name": "Core", "course_id": COURSE, "occurred_at": at, "minutes": 60.0}


@pytest.fixture
def warehouse(tmp_path: Path):
    con = connect(tmp_path / "w.duckdb")
    ensure_tables(con)
    reps = ("R1", "R2", "R3", "R4")
    put_rows(con, "crm_user", [{"user_id": r, "email": f"{r.lower()}@example.com", "title": "AE",
                                "is_active": True} for r in reps])
    put_rows(con, "learner_identity", [{"learner_key": f"L{r}", "crm_user_id": r, "status": "linked"}
                                       for r in reps])
    put_rows(con, "learning_record", [
        _done(1, "LR1", datetime(2025, 2, 28, 23, 30, tzinfo=UTC)),  # March 1st in Kiritimati
        _done(2, "LR2", datetime(2024, 12, 10, 2, tzinfo=UTC)),  # before the program's start …
        _done(3, "LR2", datetime(2025, 3, 10, 2, tzinfo=UTC)),  # … and retaken during it
        _done(4, "LR3", datetime(2024, 11, 5, 2, tzinfo=UTC)),  # only before the program's start
    ])
    put_rows(con, "crm_opportunity", [row for r in reps for row in _deals(r)])
    put_rows(con, "cost_line", [{"cost_key": "c1", "program": "Core", "category": "content", "amount": 5000,
                                 "source_file": "costs.csv", "source_line": 2}])
    yield con
    con.disconnect()


def test_every_stage_sees_one_cohort(warehouse, monkeypatch: pytest.MonkeyPatch):
    import training_roi.evaluation.levels as levels
    import training_roi.evaluation.program as program

    seen: dict[str, Any] = {"cohorts": []}

    def spy(name: str, module: Any, attr: str, keep: Any) -> None:
        real = getattr(module, attr)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            out = real(*args, **kwargs)
            keep(args, kwargs, out)
            return out
        monkeypatch.setattr(module, attr, wrapper)

    spy("cohort", program, "cohort", lambda a, k, out: seen["cohorts"].append(out))
    spy("unit panel", program, "unit_panel", lambda a, k, out: seen.__setitem__("unit_panel", out))
    spy("attribution", program, "attribute_study", lambda a, k, out: seen.__setitem__("since", k["since"]))
    spy("application", program, "application", lambda a, k, out: seen.__setitem__("l3_panel", a[2]))
    assert levels  # level 3 reads the window panel the spy above captures

    study = Study.model_validate({
        "name": "Core", "timezone": ZONE,
        "program": {"activities": [COURSE], "start": "2025-01-01", "end": "2025-06-30"},
        "costs": {"participant_time": {"hourly_rate": 60}}, "isolation": {"bootstrap_replicates": 200},
    })
    answer = evaluate(warehouse, study, method="all")
    assert isinstance(answer, Evaluation)

    # Who was trained, computed once, by hand: R1 on March 1st (local day), R2 on its retake.
    [trained] = seen["cohorts"]
    assert dict(zip(trained.units, trained.anchors, strict=True)) == {"R1": date(2025, 3, 1),
                                                                      "R2": date(2025, 3, 10)}
    assert trained.outside == frozenset({"R3"})
    # The windows: the same units on the same days; R3 (trained before the program) is no comparison.
    assert {r.unit_id: r.completion_date for r in answer.primary.learners} == {"R1": "2025-03-01",
                                                                              "R2": "2025-03-10"}
    assert (answer.primary.trained_units, answer.primary.comparison_units) == (2, 1)
    # The monthly panel every other estimator reads: the same training days, and the same units.
    units = {r["unit"]: r["treated_at"] for r in seen["unit_panel"].units.iter_rows(named=True)}
    assert units == {"R1": date(2025, 3, 1), "R2": date(2025, 3, 10), "R4": None}
    # Attribution counts deals from the program's start; level 3 reads the windows' anchors.
    assert seen["since"] == date(2025, 1, 1)
    l3 = seen["l3_panel"].anchors.to_pylist()
    assert {r["unit_id"]: r["anchor"] for r in l3 if r["trained"]} == {"R1": date(2025, 3, 1),
                                                                        "R2": date(2025, 3, 10)}


def test_attribution_starts_at_the_first_training_of_the_cohort_without_program_dates(warehouse,
                                                                                       monkeypatch: pytest.MonkeyPatch):
    import training_roi.evaluation.program as program

    since: list[date | None] = []
    real = program.attribute_study

    def spy(*args: Any, **kwargs: Any) -> Any:
        since.append(kwargs["since"])
        return real(*args, **kwargs)
    monkeypatch.setattr(program, "attribute_study", spy)
    study = Study.model_validate({"name": "Core", "timezone": ZONE, "program": {"activities": [COURSE]},
                                  "population": {"exclude": ["R3"]},
                                  "costs": {"participant_time": {"hourly_rate": 60}},
                                  "isolation": {"bootstrap_replicates": 200}})
    evaluate(warehouse, study)
    # R2's first completion, on its local day; R3 (out of the population) does not count.
    assert since == [date(2024, 12, 10)]
