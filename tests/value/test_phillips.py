"""Phillips' five levels on small hand-built warehouses, each figure worked out independently."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from statistics import median

import polars as pl
import pytest
import scipy.stats

from tests.builders import put_rows as _put
from training_roi.isolate.did import Effect
from training_roi.value import cost_breakdown, roi
from training_roi.value.monetise import parse_rules
from training_roi.value.phillips import KpiImpact, phillips_levels
from training_roi.warehouse.connection import connect, ensure_tables

COURSE = "https://lms.example.com/course/sales"
PRE, POST, QUIZ = (f"{COURSE}/{name}" for name in ("sales-pre-test", "sales-post-test", "module-1-quiz"))
OTHER = "https://lms.example.com/course/other-pre-test"



def _at(day: int) -> datetime:
    return datetime(2025, 3, day, 10, tzinfo=UTC)


def answer(n: int, email: str | None, question: str, score: float | None, *, level: str = "reaction",
           program: str = "P", role: str = "learner") -> dict:
    return {"response_key": f"s{n}", "email_norm": email, "respondent_email": email, "role": role,
            "program": program, "level": level, "question": question, "score": score}


def rec(n: int, learner: str, activity: str, day: int, *, score: float | None = None, verb: str = "scored",
        success: bool | None = None, course: str = COURSE) -> dict:
    return {"record_key": f"r{n:02d}", "learner_key": learner, "source": "xapi", "verb": verb,
            "activity_id": activity, "activity_name": activity.rsplit("/", 1)[-1], "course_id": course,
            "occurred_at": _at(day), "score_pct": score, "success": success}


REACTION = [  # (email, Q1, Q2); e answers Q2 with 7, off the 1–5 scale; d leaves Q2 blank
    ("a@x.com", 5, 5), ("b@x.com", 4, 5), ("c@x.com", 4, 2), ("d@x.com", 2, None),
]


@pytest.fixture
def wh(tmp_path: Path):
    con = connect(tmp_path / "w.duckdb")
    ensure_tables(con)
    answers = []
    for email, q1, q2 in REACTION:
        answers += [answer(len(answers), email, "Q1", q1), answer(len(answers) + 1, email, "Q2", q2)]
    answers += [
        answer(20, "e@x.com", "Q2", 7.0),
        answer(21, "a@x.com", "Q1", 1, program="Other"),  # another program
        answer(22, "a@x.com", "share", 60, level="estimate"),  # an isolation estimate, not a reaction
        answer(23, "a@x.com", "uses it", 3, level="application"),
        answer(24, "b@x.com", "uses it", 5, level="application"),
        answer(25, "m@x.com", "uses it", 4, level="application", role="manager"),
    ]
    _put(con, "survey_response", answers)
    _put(con, "learning_record", [
        # pre-test: the first attempt counts (L1 50, not the retake 70); L4 never took the post-test
        rec(1, "L1", PRE, 1, score=50), rec(2, "L1", PRE, 2, score=70), rec(3, "L2", PRE, 1, score=60),
        rec(4, "L3", PRE, 1, score=40), rec(5, "L4", PRE, 1, score=55, verb="failed", success=False),
        # post-test: the last attempt counts (L2 75, not 65); L5 took no pre-test
        rec(6, "L1", POST, 9, score=80, verb="passed", success=True),
        rec(7, "L2", POST, 9, score=65, verb="failed", success=False),
        rec(8, "L2", POST, 10, score=75, verb="passed", success=True),
        rec(9, "L3", POST, 9, score=70, verb="failed", success=False), rec(10, "L5", POST, 9, score=90),
        # a quiz: L1 fails then passes; L2's "passed" carries no success flag (the verb decides)
        rec(11, "L1", QUIZ, 5, score=60, verb="failed", success=False),
        rec(12, "L1", QUIZ, 6, score=85, verb="passed", success=True), rec(13, "L2", QUIZ, 5, score=90, verb="passed"),
        rec(14, "L1", COURSE, 9, verb="completed"), rec(15, "L2", COURSE, 10, verb="completed"),
        rec(16, "L1", OTHER, 1, score=10, course=OTHER), rec(17, "L1", OTHER, 9, score=99, course=OTHER),
    ])
    yield con
    con.disconnect()


def evaluate(con, **kwargs):
    return phillips_levels(con, program="P", activities=[COURSE], benefits=kwargs.pop("benefits", ()),
                           cost=kwargs.pop("cost", 1), **kwargs)


def test_level1_reaction_per_question_and_overall(wh):
    r = evaluate(wh).reaction
    q1, q2 = r.questions
    assert (q1.question, q1.n, q1.mean) == ("Q1", 4, (5 + 4 + 4 + 2) / 4)
    assert q1.distribution == {1: 0, 2: 1, 3: 0, 4: 2, 5: 1}
    assert (q2.n, q2.mean, q2.off_scale, q2.unanswered) == (3, 4.0, 1, 1)
    assert q2.distribution == {1: 0, 2: 1, 3: 0, 4: 0, 5: 2}
    assert r.n == 7 and r.overall_mean == pytest.approx((5 + 4 + 4 + 2 + 5 + 5 + 2) / 7)
    assert (r.respondents, r.source_rows, r.by_role) == (5, 9, {"learner": 9})


def test_level2_scores_and_pass_rate_use_each_learners_last_attempt(wh):
    le = evaluate(wh).learning
    finals = [80, 75, 70, 90, 85, 90]  # post-test L1, L2 (retake), L3, L5; quiz L1 (retake), L2
    assert le.scores_n == 6
    assert le.score_mean == pytest.approx(sum(finals) / 6)
    assert le.score_median == median(finals) == 82.5
    assert le.score_rows == 8  # 5 post-test and 3 quiz scores; pre-tests and the other course left out
    # last outcomes: post L1 pass, L2 pass (retake), L3 fail; quiz L1 pass (retake), L2 pass (verb)
    assert (le.passed, le.failed, le.pass_rate) == (4, 1, 0.8)
    assert le.decided_rows == 7
    assert le.source_rows == 15  # every record of the course and its lessons, none of the other course


def test_level2_pre_post_gain_with_a_paired_t_interval(wh):
    change = evaluate(wh, confidence=0.9).learning.pre_post
    pre, post = [50, 60, 40], [80, 75, 70]  # L1, L2, L3: first pre-test score, last post-test score
    expected = scipy.stats.ttest_rel(post, pre).confidence_interval(confidence_level=0.9)
    assert change is not None and change.name == "pre/post test gain"
    assert (change.n, change.mean_before, change.mean_after) == (3, 50.0, 75.0)
    assert change.mean_change == pytest.approx(25.0)
    assert change.interval == pytest.approx((expected.low, expected.high))
    assert change.source_rows == 8  # L1 3, L2 3, L3 2 scored pre/post records


def test_pre_and_post_tests_marked_only_by_name_pair_up(tmp_path: Path):
    con = connect(tmp_path / "w.duckdb")
    ensure_tables(con)
    first, final = f"{COURSE}/a1", f"{COURSE}/b7"
    named = [rec(1, "L1", first, 1, score=30), rec(2, "L1", final, 9, score=70),
             rec(3, "L2", first, 1, score=50), rec(4, "L2", final, 9, score=60),
             rec(5, "L3", f"{COURSE}/presentation", 1, score=10)]  # "presentation" is not a pre-test
    for row, name in zip(named, ["Pre-Quiz", "Final Posttest", "Pre-Quiz", "Final Posttest", "Presentation"],
                         strict=True):
        row["activity_name"] = name
    _put(con, "learning_record", named)
    change = evaluate(con).learning.pre_post
    assert change is not None and (change.n, change.mean_change) == (2, 25.0)
    assert evaluate(con).learning.scores_n == 3  # the post-tests and the presentation, not the pre-tests
    con.disconnect()


def test_level2_falls_back_to_attempts_before_and_after_completion(tmp_path: Path):
    con = connect(tmp_path / "w.duckdb")
    ensure_tables(con)
    _put(con, "learning_record", [
        rec(1, "L1", QUIZ, 1, score=40), rec(2, "L1", COURSE, 5, verb="completed"),
        rec(3, "L1", QUIZ, 10, score=70), rec(4, "L1", QUIZ, 12, score=80),  # before 40, after 80
        rec(5, "L2", QUIZ, 2, score=50), rec(6, "L2", QUIZ, 3, score=55),  # first before: 50
        rec(7, "L2", COURSE, 4, verb="completed"), rec(8, "L2", QUIZ, 6, score=75),
        rec(9, "L3", QUIZ, 1, score=60), rec(10, "L3", COURSE, 2, verb="completed"),  # nothing after
        rec(11, "L4", QUIZ, 1, score=20), rec(12, "L4", QUIZ, 9, score=90),  # never completed
    ])
    change = evaluate(con).learning.pre_post
    expected = scipy.stats.ttest_rel([80, 75], [40, 50]).confidence_interval()
    assert change is not None and change.name == "gain between attempts before and after completion"
    assert (change.n, change.mean_change, change.source_rows) == (2, 32.5, 6)
    assert change.interval == pytest.approx((expected.low, expected.high))
    con.disconnect()


def test_level3_application_survey_and_behaviour_changes(wh):
    behaviour = pl.DataFrame({
        "kpi": ["calls"] * 4 + ["meetings"] * 3,
        "unit_id": ["U1", "U2", "U3", "U4", "U1", "U2", "U3"],
        "before": [10.0, 12.0, 8.0, 9.0, 2.0, None, 3.0],
        "after": [14.0, 13.0, 11.0, 9.0, 3.0, 4.0, 5.0],
    })
    a = evaluate(wh, behaviour=behaviour).application
    assert (a.survey.n, a.survey.overall_mean, a.survey.by_role) == (3, 4.0, {"learner": 2, "manager": 1})
    calls, meetings = a.behaviour
    expected = scipy.stats.ttest_rel([14, 13, 11, 9], [10, 12, 8, 9]).confidence_interval()
    assert (calls.name, calls.n, calls.mean_change) == ("calls", 4, 2.0)
    assert calls.interval == pytest.approx((expected.low, expected.high))
    assert (meetings.n, meetings.dropped, meetings.source_rows, meetings.mean_change) == (2, 1, 3, 1.5)
    assert a.behaviour_rows == 7
    with pytest.raises(ValueError, match="'calls' has unit 'U1' more than once"):
        evaluate(wh, behaviour=behaviour.vstack(behaviour.head(1)))
    with pytest.raises(ValueError, match="no column after"):
        evaluate(wh, behaviour=behaviour.drop("after"))


def test_level4_records_the_effects_as_given(wh):
    did = Effect(method="did", estimate=0.02, ci_low=0.005, ci_high=0.035, p_value=0.01, std_error=0.008,
                 confidence=0.95, replicates=2000, prob_positive=0.99, baseline=0.08)
    impact = evaluate(wh, impact=[KpiImpact.of("win_rate", did, verdict="credited")]).impact
    assert impact.effects == (KpiImpact("win_rate", 0.02, (0.005, 0.035), "credited", "did"),)
    assert str(impact.effects[0]) == "win_rate: +0.02 [+0.005, +0.035] by did: credited"


def test_level5_reproduces_the_seed_worked_example(wh):
    # The seed: a program that cost $20,000 and produced $50,000 of benefits returns 150 %.
    _put(wh, "cost_line", [{"cost_key": "c1", "program": "P", "category": "development", "amount": Decimal(12_000)},
                           {"cost_key": "c2", "program": "P", "category": "facilitation", "amount": Decimal(8_000)}])
    cost = cost_breakdown(wh, programs="P")
    benefits = [b.benefit() for b in parse_rules([
        {"name": "sales", "rule": "revenue_margin", "revenue": 100_000, "margin": 0.3},  # $30,000
        {"name": "errors", "rule": "error_cost", "errors_avoided": 100, "cost_per_error": 200},  # $20,000
    ])]
    ev = evaluate(wh, benefits=benefits, cost=cost, intangibles=["better morale"])
    f = ev.roi.figures
    assert (f.benefit, f.cost, f.net_benefit) == (Decimal(50_000), Decimal(20_000), Decimal(30_000))
    assert (f.roi_pct, f.benefit_cost_ratio, f.payback_months) == (Decimal(150), Decimal("2.5"), Decimal("4.8"))
    assert f == roi(50_000, 20_000)
    assert ev.roi.intangibles == ("better morale",)
    assert "ROI 150.0%" in str(ev) and "benefits $50,000 vs cost $20,000" in str(ev)
    out = json.loads(json.dumps(ev.asdict()))
    assert Decimal(out["roi"]["figures"]["roi_pct"]) == 150
    assert [b["amount"] for b in out["roi"]["benefits"]] == ["30000.0", "20000"]
    assert out["reaction"]["questions"][0]["distribution"] == {"1": 0, "2": 1, "3": 0, "4": 2, "5": 1}
    assert out["learning"]["pre_post"]["n"] == 3


def test_a_program_without_data_reports_empty_levels(wh):
    ev = phillips_levels(wh, program="Nobody", activities=["https://nowhere"], benefits=(), cost=100)
    assert (ev.reaction.n, ev.reaction.overall_mean, ev.reaction.source_rows) == (0, None, 0)
    assert (ev.learning.source_rows, ev.learning.pass_rate, ev.learning.pre_post) == (0, None, None)
    assert ev.roi.figures.roi_pct == -100
    with pytest.raises(ValueError, match="at least one"):
        phillips_levels(wh, program="P", activities=[], benefits=(), cost=100)
