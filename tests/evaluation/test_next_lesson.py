"""Knowledge gaps and next lessons in the report, on the simulated world where four skills' gaps cost deals.

The simulator's truth says what each rep's first lesson of each skill is worth; the product's first
recommendations must be worth clearly more than a random lesson and the most popular one.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tests.builders import simulated_warehouse, validation_script
from training_roi import Evaluation, Study, connect, evaluate
from training_roi.errors import StudyError
from training_roi.measure.lessons import lesson_dates
from training_roi.present.answer import write_answer
from training_roi.present.result_json import result_document
from training_roi.study import load_study, plan_study


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    data, warehouse, truth = simulated_warehouse(tmp_path_factory.mktemp("gaps"), reps=1500, months=24, seed=4,
                                                 scenario="knowledge_gaps")
    con = connect(warehouse)
    yield con, data, truth
    con.disconnect()


def _study(truth: dict, next_lesson: dict) -> dict:
    return {"name": "drills", "program": {"name": truth["program"]["name"], "completion": "lessons",
                                          "activities": [truth["program"]["course_activity_id"]]},
            "isolation": {"bootstrap_replicates": 199}, "attribution": {"enabled": False},
            "forecast": {"enabled": False}, "insight": {"next_lesson": next_lesson}}


def test_the_recommended_lessons_beat_random_and_most_popular(world, tmp_path: Path):
    con, data, truth = world
    (data / "study.yaml").write_text(json.dumps(_study(truth, {"skills_file": "skills.csv", "per_unit": 2})),
                                     encoding="utf-8")
    study = load_study(data / "study.yaml")
    answer = evaluate(con, study)
    assert isinstance(answer, Evaluation) and answer.next_lesson is not None, answer.next_lesson_basis
    nl = answer.next_lesson
    skill_map = dict(pl.read_csv(data / "skills.csv").iter_rows())
    assert len(study.insight.next_lesson.skills) == len(skill_map)  # the file's rows are in the study (its hash)
    done = lesson_dates(con, [truth["program"]["course_activity_id"]])
    policy_values = validation_script("next_lesson").policy_values
    values = policy_values(nl.recommendations, pl.read_parquet(data / "truth_skills.parquet"), skill_map, done, 4,
                           list(nl.effects.fitted))
    assert values.height > 1000
    rec, rnd, pop = (values[c].to_numpy() for c in ("recommended", "random", "popular"))
    for base in (rnd, pop):
        d = rec - base
        assert d.mean() - 1.96 * d.std(ddof=1) / np.sqrt(d.size) > 0.005  # half a point of win rate at least
    # Each rep gets at most two skills, none they have already taken a lesson in.
    assert nl.recommendations.group_by("unit").len()["len"].max() == 2
    taken = done.with_columns(skill=pl.col("lesson").replace_strict(skill_map)).select("unit", "skill").unique()
    assert nl.recommendations.join(taken, on=["unit", "skill"]).height == 0
    # The skills whose gaps cost deals rise more with the gap than those whose gaps do not.
    slopes = dict(nl.effects.table.select("skill", "per_gap").iter_rows())
    real = set(truth["knowledge_gaps"]["effective"])
    assert min(slopes[s] for s in real) > np.median([v for s, v in slopes.items() if s not in real])

    doc = json.loads(result_document(answer))["next_lesson"]
    assert doc["evidence"] == "association" and len(doc["recommendations"]) == nl.recommendations.height
    files = write_answer(answer, tmp_path / "out")
    csv = pl.read_csv(files["next lessons"])
    assert csv.height == nl.recommendations.height
    assert csv.columns[:6] == ["learner_email", "learner_name", "crm_user_id", "rank", "activity_id", "skill"]
    assert csv["activity_id"].is_in(list(skill_map)).all() and csv["evidence"].unique().to_list() == ["association"]
    assert csv["reason"].str.contains("over the average lesson").all()
    page = files["report"].read_text(encoding="utf-8")
    assert "Knowledge gaps and the next lesson" in page and "choose which lessons" in page
    from training_roi.present.next_lesson import next_lesson_lines

    standing = nl.recommendations.filter((pl.col("rank") == 1) & pl.col("established")).height
    line = next_lesson_lines(answer)[0]
    assert f"{standing:,} of " in line and ("none can be told from the average lesson" in line) == (standing == 0)
    _the_server_shows_people_only_to_those_who_may_read_them(doc, nl.recommendations)


def _the_server_shows_people_only_to_those_who_may_read_them(section: dict, recs: pl.DataFrame) -> None:
    from jinja2 import Environment, PackageLoader

    from training_roi.web.insight import insights_of
    from training_roi.web.results import without_people

    template = Environment(loader=PackageLoader("training_roi.web"), autoescape=True).get_template(
        "insight_next_lesson.html")
    names = recs["name"].drop_nulls().unique().to_list()
    for document, people in (({"next_lesson": section}, True), (without_people({"next_lesson": section}), False)):
        (insight,) = insights_of(document, kept={"next_lessons.csv"}, may_open=lambda _, p=people: p)
        assert insight.shown is not None and insight.shown.evidence == "association"
        assert len(insight.shown.figures["skills"]) == len(section["skills"])
        page = template.render(f=insight.shown.figures)
        assert ("First recommendations" in page) is people
        assert any(n in page for n in names) is people
        assert insight.files == (("next_lessons.csv",) if people else ())


def test_a_bad_skills_file_is_named_with_its_line_and_field(tmp_path: Path):
    (tmp_path / "skills.csv").write_text("activity_id,skill\nhttps://x/item/1,Pricing\nhttps://x/lesson/2,\n",
                                         encoding="utf-8")
    (tmp_path / "study.yaml").write_text(json.dumps(_study({"program": {"name": "p", "course_activity_id": "c"}},
                                                           {"skills_file": "skills.csv"})), encoding="utf-8")
    with pytest.raises(StudyError, match=r"skills\.csv line 3: field skill is empty"):
        load_study(tmp_path / "study.yaml")
    (tmp_path / "skills.csv").write_text("id;skill\n", encoding="utf-8")
    with pytest.raises(StudyError, match=r"line 1 must be the header activity_id,skill"):
        load_study(tmp_path / "study.yaml")


def test_an_account_study_is_refused_next_lessons_by_name():
    study = Study.model_validate({"name": "academy", "program": {"name": "p", "activities": ["c"]},
                                  "population": {"unit": "account"},
                                  "insight": {"next_lesson": {"skills": {"i": "s"}}}})
    with pytest.raises(StudyError, match=r"insight\.next_lesson recommends lessons to reps"):
        plan_study(study)
