"""The lesson map in the report, on the simulated world where five lessons of about 130 matter."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from tests.builders import simulated_warehouse
from training_roi import Evaluation, Study, connect, evaluate
from training_roi.present.answer import write_answer
from training_roi.present.result_json import result_document


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    _, warehouse, truth = simulated_warehouse(tmp_path_factory.mktemp("lesson_map"), reps=2000, months=24, seed=3,
                                              scenario="lesson_map")
    con = connect(warehouse)
    yield con, truth
    con.disconnect()


def test_the_lessons_that_matter_stand_out(world, tmp_path: Path):
    con, truth = world
    study = Study.model_validate({
        "name": "drills", "program": {"name": truth["program"]["name"], "completion": "lessons",
                                      "activities": [truth["program"]["course_activity_id"]]},
        "isolation": {"bootstrap_replicates": 199}, "attribution": {"enabled": False},
        "forecast": {"enabled": False}, "insight": {"lesson_map": True}})
    answer = evaluate(con, study)
    assert isinstance(answer, Evaluation) and answer.lesson_map is not None
    m = answer.lesson_map
    real = set(truth["lesson_map"]["effective"])
    flagged = set(m.matters)
    assert len(flagged & real) >= 4, m.summary()
    assert len(flagged - real) <= 2, m.summary()
    assert m.table.height == len(truth["program"]["lesson_activity_ids"])
    doc = json.loads(result_document(answer))["lesson_map"]
    assert doc["evidence"] == "association" and set(doc["matters"]) == flagged
    files = write_answer(answer, tmp_path / "out")
    csv = pl.read_csv(files["lesson map"])
    assert csv.height == m.table.height and set(csv.filter(pl.col("matters"))["lesson"]) == flagged
    page = files["report"].read_text(encoding="utf-8")
    assert "Which lessons matter" in page and "choose which lessons" in page


def test_an_account_study_is_refused_a_lesson_map_by_name():
    from training_roi.errors import StudyError
    from training_roi.study import plan_study

    study = Study.model_validate({"name": "academy", "program": {"name": "p", "activities": ["c"]},
                                  "population": {"unit": "account"}, "insight": {"lesson_map": True}})
    with pytest.raises(StudyError, match=r"insight\.lesson_map maps the lessons of reps"):
        plan_study(study)


def test_exposure_is_the_share_of_the_measured_window_after_the_lesson():
    from datetime import date

    from training_roi.evaluation.lesson_map import exposure_shares

    anchors = pl.DataFrame({"unit": ["a"], "anchor": [date(2025, 1, 1)]})
    dates = pl.DataFrame({"unit": ["a"] * 5, "lesson": ["before", "in ramp", "mid", "last day", "after"],
                          "completed_on": [date(2024, 12, 1), date(2025, 1, 20), date(2025, 4, 1),
                                           date(2025, 6, 29), date(2025, 8, 1)]})
    # A 180-day window with a 30-day ramp: the change is measured over [2025-01-31, 2025-06-30), 150 days.
    got = dict(exposure_shares(dates, anchors, window_days=180, ramp_days=30).select("lesson", "share").iter_rows())
    assert got == pytest.approx({"before": 1.0, "in ramp": 1.0, "mid": 90 / 150, "last day": 1 / 150, "after": 0.0})
