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
