"""Customer-side churn risk on the simulated customer world, whose every renewal's churn probability is known."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import brier_score_loss, roc_auc_score

from tests.builders import simulated_warehouse
from training_roi import Evaluation, Study, connect, evaluate
from training_roi.errors import StudyError
from training_roi.measure.churn import renewal_features
from training_roi.present.churn import churn_lines, write_churn_risk
from training_roi.present.result_json import result_document
from training_roi.study import plan_study


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    data, warehouse, truth = simulated_warehouse(tmp_path_factory.mktemp("churn"), reps=150, months=24, seed=5,
                                                 scenario="customer")
    con = connect(warehouse)
    study = Study.model_validate({
        "name": "academy", "program": {"name": truth["program"]["name"],
                                       "activities": [truth["program"]["course_activity_id"]]},
        "population": {"unit": "account"}, "isolation": {"bootstrap_replicates": 100},
        "attribution": {"enabled": False}, "forecast": {"enabled": False}, "insight": {"churn": True}})
    answer = evaluate(con, study)
    assert isinstance(answer, Evaluation)
    renewals = pl.read_parquet(data / "truth_opportunities.parquet").filter(pl.col("type") == "Renewal")
    yield con, answer, renewals
    con.disconnect()


def test_the_check_holds_against_the_truth(world) -> None:
    """Out of time, the model's Brier score is near that of the true probabilities, and no worse than the churn rate."""
    con, answer, truth = world
    r = answer.churn
    assert r is not None, answer.churn_basis
    f = renewal_features(con).filter(pl.col("decided"))
    late = f[np.argsort(f["due"].to_numpy(), kind="stable")[r.fit.train:]]
    assert late.height == r.fit.test
    joined = late.join(truth, left_on="renewal_id", right_on="opportunity_id")
    y, p = joined["churned"].to_numpy().astype(int), joined["churn_probability"].to_numpy()
    scoring = r.fit.model if r.fit.chosen == "boosting" else r.fit.baseline
    assert scoring.brier == min(r.fit.model.brier, r.fit.baseline.brier)
    assert scoring.brier < brier_score_loss(y, p) + 0.01  # within a hundredth of knowing the true probabilities
    assert r.fit.model.brier < brier_score_loss(y, p) + 0.015 and r.fit.model.brier < r.fit.brier_prevalence
    # The truth also knows each account's engagement, which the CRM holds only through its proxies (cases,
    # upsells): the model ranks somewhat below it.
    assert scoring.auc is not None and roc_auc_score(y, p) - 0.08 < scoring.auc
    # Trees cannot extrapolate past the ages and dates they were fitted on, so out of time the straight
    # baseline may rank better here, where the true log-odds are straight; the trees stay close.
    assert r.fit.model.auc is not None and r.fit.model.auc > (r.fit.baseline.auc or 0) - 0.08
    assert sum(b.count for b in r.fit.model.reliability) == r.fit.test


def test_open_renewals_are_scored_near_their_true_churn_probability(world) -> None:
    """By fifths of predicted risk, the mean prediction is near the mean true probability of those renewals."""
    _, answer, truth = world
    r = answer.churn
    assert r is not None and r.accounts.height > 50
    joined = r.accounts.join(truth, left_on="renewal_id", right_on="opportunity_id")
    assert joined.height == r.accounts.height and not joined["is_closed"].any()
    order = np.argsort(joined["probability"].to_numpy())
    predicted, actual = joined["probability"].to_numpy(), joined["churn_probability"].to_numpy()
    for part in np.array_split(order, 5):
        assert abs(predicted[part].mean() - actual[part].mean()) < 0.08
    top, bottom = order[-len(order) // 5:], order[: len(order) // 5]
    assert actual[top].mean() > actual[bottom].mean() + 0.1  # the list ranks the truly risky first


def test_trained_against_untrained_is_an_association_matching_the_files(world) -> None:
    _, answer, truth = world
    r = answer.churn
    assert r is not None and r.evidence == "association"
    closed = truth.filter(pl.col("is_closed") & ~pl.col("is_deleted"))
    lost = ~pl.when(pl.col("exposed")).then(pl.col("won1")).otherwise(pl.col("won0"))
    by = {g: closed.filter(pl.col("exposed") == g).select(lost.mean()).item() for g in (True, False)}
    trained, untrained = r.groups
    assert trained.observed == pytest.approx(by[True], abs=0.02)
    assert untrained.observed == pytest.approx(by[False], abs=0.02)
    assert r.difference is not None and r.difference_low is not None and r.difference_high is not None
    assert r.difference_low < r.difference < r.difference_high
    # Newcombe's hybrid score interval from the groups' Wilson intervals (Newcombe 1998, method 10).
    assert r.difference_low == pytest.approx(
        r.difference - ((trained.observed - trained.low) ** 2 + (untrained.high - untrained.observed) ** 2) ** 0.5)
    assert r.difference_high == pytest.approx(
        r.difference + ((trained.high - trained.observed) ** 2 + (untrained.observed - untrained.low) ** 2) ** 0.5)
    assert any("(association)" in line for line in churn_lines(answer))


def test_a_randomised_holdout_does_not_make_the_churn_comparison_randomised(world) -> None:
    con, answer, _ = world
    untrained = sorted(set(answer.churn.accounts.filter(~pl.col("trained"))["account_id"]))[:20]
    study = answer.study.model_copy(update={"comparison": answer.study.comparison.model_copy(
        update={"design": "holdout", "holdout": untrained})})
    held = evaluate(con, study)
    assert isinstance(held, Evaluation) and held.churn is not None
    assert held.churn.evidence == "association" and (held.churn.accounts["evidence"] == "association").all()


def test_result_and_csv_hold_the_churn_only_when_asked(world, tmp_path: Path) -> None:
    _, answer, _ = world
    doc = json.loads(result_document(answer))["churn"]
    assert doc["evidence"] == "association" and doc["basis"] == ""
    assert doc["check"]["test_renewals"] == answer.churn.fit.test
    path = write_churn_risk(answer, tmp_path)
    assert path is not None
    csv = pl.read_csv(path)
    assert csv.columns[:9] == ["account_id", "account_name", "owner_id", "renewal_id", "opened", "due", "amount",
                               "probability", "drivers"]
    assert csv.height == answer.churn.accounts.height and (csv["evidence"] == "association").all()
    unasked = replace(answer, churn=None, churn_basis="")
    assert "churn" not in json.loads(result_document(unasked))
    assert write_churn_risk(unasked, tmp_path / "none") is None and not (tmp_path / "none").exists()


def test_the_server_shows_accounts_only_to_those_who_may_read_people(world) -> None:
    from jinja2 import Environment, PackageLoader

    from training_roi.web.insight import insights_of
    from training_roi.web.results import without_people

    _, answer, _ = world
    section = json.loads(result_document(answer))["churn"]
    template = Environment(loader=PackageLoader("training_roi.web"), autoescape=True).get_template("insight_churn.html")
    top = answer.churn.accounts.row(0, named=True)["account_name"]
    for document, people in (({"churn": section}, True), (without_people({"churn": section}), False)):
        (insight,) = insights_of(document, kept={"churn_risk.csv"}, may_open=lambda _, p=people: p)
        assert insight.shown is not None and insight.shown.evidence == "association"
        figures = insight.shown.figures
        chosen = next(c for c in figures["checks"] if c["scores"] == "yes")
        fit = answer.churn.fit
        scored = fit.model if fit.chosen == "boosting" else fit.baseline
        assert chosen["brier"] == f"{scored.brier:.4f}" and len(figures["reliability"]) == len(scored.reliability)
        page = template.render(f=figures)
        assert ("Accounts most at risk" in page) is people and (top in page) is people
        assert insight.files == (("churn_risk.csv",) if people else ())


def test_a_rep_study_is_refused_churn_by_name() -> None:
    study = Study.model_validate({"name": "sales", "program": {"name": "p", "activities": ["c"]},
                                  "insight": {"churn": True}})
    with pytest.raises(StudyError, match=r"insight\.churn forecasts which customer accounts churn"):
        plan_study(study)
