"""Participant and manager estimates against Phillips' worked arithmetic and the warehouse's survey rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tests.builders import write
from training_roi.ingest.folder import ingest_folder
from training_roi.isolate import NotApplicable
from training_roi.isolate.estimates import estimate_participant
from training_roi.measure import survey_estimates


def answers(*rows: tuple[str, float | None, float | None]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"role": pl.String, "score": pl.Float64, "confidence": pl.Float64},
                        orient="row")


def test_phillips_worked_example():
    # 10 units of improvement, 60 % of it put down to the program at 80 % confidence: 10 × 0.6 × 0.8.
    e = estimate_participant(10.0, answers(("learner", 60, 80)), baseline=40.0, replicates=50)
    assert e.estimate == pytest.approx(4.8)
    assert e.relative == pytest.approx(4.8 / 40)
    # Three answers: 4.8, 10 × 0.5 × 1.0 = 5.0 and 10 × 0.2 × 0.5 = 1.0; the program gets their mean.
    e = estimate_participant(10.0, answers(("learner", 60, 80), ("learner", 50, 100), ("learner", 20, 50)),
                             baseline=40.0, replicates=200)
    assert e.estimate == pytest.approx((4.8 + 5.0 + 1.0) / 3)
    assert e.details["mean_share"] == pytest.approx(130 / 300) and e.details["adjusted_share"] == pytest.approx(0.36)
    assert e.method == "participant and manager estimates (opinion)"
    assert "not a causal estimate" in e.assumptions[0]
    # What a self-report can know: between none of the observed change and all of it; never credited.
    assert (e.ci_low, e.ci_high) == (0.0, 10.0) and e.interval_includes_zero
    assert e.p_value != e.p_value and "opinion, not a measurement" in " ".join(e.warnings)
    worse = estimate_participant(-4.0, answers(("learner", 60, 80)), baseline=40.0, replicates=50)
    assert (worse.ci_low, worse.ci_high) == (-4.0, 0.0)


def test_roles_are_filtered():
    frame = answers(("learner", 60, 80), ("learner", 40, 50), ("manager", 30, 100), ("manager", 10, 100))
    learner = estimate_participant(20.0, frame, baseline=1.0, role="learner", replicates=200)
    manager = estimate_participant(20.0, frame, baseline=1.0, role="manager", replicates=200)
    both = estimate_participant(20.0, frame, baseline=1.0, replicates=200)
    assert learner.estimate == pytest.approx(20 * (0.48 + 0.20) / 2)
    assert manager.estimate == pytest.approx(20 * (0.30 + 0.10) / 2)
    assert both.estimate == pytest.approx((learner.estimate + manager.estimate) / 2)
    assert (learner.method, manager.method) == ("participant estimate (opinion)", "manager estimate (opinion)")
    assert both.diagnostics["answers_by_role"] == {"learner": 2.0, "manager": 2.0}
    with pytest.raises(ValueError, match="role 'boss'"):
        estimate_participant(20.0, frame, baseline=1.0, role="boss")


def test_missing_and_impossible_answers_count_as_zero():
    frame = answers(("learner", 50, 100), ("learner", None, None), ("learner", 80, None), ("learner", 150, 90))
    e = estimate_participant(8.0, frame, baseline=1.0, replicates=200)
    assert e.estimate == pytest.approx(8 * 0.5 / 4)  # one usable answer of four
    assert e.details["unanswered"] == 2 and e.details["out_of_range"] == 1
    assert any("2 of 4 answers lack a share or a confidence: counted as 0" in w for w in e.warnings)
    assert any("1 of 4 answers lie outside 0–100" in w for w in e.warnings)


def test_the_answers_spread_agrees_with_the_standard_error_of_a_mean():
    rng = np.random.default_rng(4)
    n = 60
    frame = answers(*(("learner", float(s), float(c))
                      for s, c in zip(rng.integers(0, 101, n), rng.integers(30, 101, n), strict=True)))
    e = estimate_participant(12.0, frame.to_arrow(), baseline=100.0, replicates=4000)
    credits = 12.0 * frame["score"].to_numpy() / 100 * frame["confidence"].to_numpy() / 100
    assert e.estimate == pytest.approx(credits.mean())
    assert e.details["answers_replicates"] == 4000
    # Resampling respondents: the draws' spread is the plug-in standard error of their mean. It is how
    # much the answers disagree, reported beside the estimate, not the effect's interval.
    se = e.details["answers_std_error"]
    assert se == pytest.approx(credits.std(ddof=0) / np.sqrt(n), rel=0.05)
    spread = e.details["answers_spread_high"] - e.details["answers_spread_low"]
    assert spread == pytest.approx(2 * 1.96 * se, rel=0.1)
    assert (e.ci_low, e.ci_high) == (0.0, 12.0)


def test_no_answers_is_not_applicable():
    with pytest.raises(NotApplicable, match="no estimate answers"):
        estimate_participant(5.0, answers(), baseline=1.0)
    with pytest.raises(NotApplicable, match="no estimate answers from managers"):
        estimate_participant(5.0, answers(("learner", 50, 50)), baseline=1.0, role="manager")
    with pytest.raises(ValueError, match="no column confidence"):
        estimate_participant(5.0, pl.DataFrame({"role": ["learner"], "score": [50.0]}), baseline=1.0)


SURVEYS = """respondent_email,role,program,level,question,score,confidence,submitted_at
Ann@x.com,learner,Sales Excellence,estimate,estimate.share,60,80,2025-05-01
bob@x.com,learner,Sales Excellence,estimate,estimate.share,40,50,2025-05-02
cy@x.com,learner,Sales Excellence,estimate,estimate.share,70,,2025-05-03
mia@x.com,manager,Sales Excellence,estimate,estimate.share,30,90,2025-05-04
ann@x.com,learner,Sales Excellence,reaction,reaction.relevance,5,,2025-03-01
zed@x.com,learner,Negotiation,estimate,estimate.share,90,90,2025-05-01
"""


def test_estimates_read_from_the_warehouse(con, tmp_path: Path):
    write(tmp_path / "surveys.csv", SURVEYS)
    ingest_folder(tmp_path, con)
    rows = survey_estimates(con, "Sales Excellence")
    assert rows["email_norm"].to_list() == ["ann@x.com", "bob@x.com", "cy@x.com", "mia@x.com"]
    assert rows["role"].to_list() == ["learner", "learner", "learner", "manager"]
    learners = estimate_participant(10.0, rows, baseline=30.0, role="learner", replicates=300)
    # 10 × 0.6 × 0.8, 10 × 0.4 × 0.5, and cy's answer without a confidence counts as 0.
    assert learners.estimate == pytest.approx((4.8 + 2.0 + 0.0) / 3)
    assert learners.ci_low <= learners.estimate <= learners.ci_high
    managers = estimate_participant(10.0, rows, baseline=30.0, role="manager", replicates=300)
    assert managers.estimate == pytest.approx(10 * 0.3 * 0.9)
    assert survey_estimates(con, "Coaching").is_empty()
    with pytest.raises(NotApplicable, match="no estimate answers"):
        estimate_participant(10.0, survey_estimates(con, "Coaching"), baseline=30.0)
