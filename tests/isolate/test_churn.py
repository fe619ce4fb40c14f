"""The churn model on worlds whose churn probabilities are known: calibration, ranking and drivers against the truth."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, roc_auc_score

from training_roi.errors import NotApplicable
from training_roi.isolate.churn import fit_churn

NAMES = ("cases", "age", "noise")


def _world(n: int, seed: int, *, bend: bool) -> tuple[np.ndarray, np.ndarray]:
    """Features and true churn probabilities: cases raise churn (more steeply past two with ``bend``), age lowers it."""
    rng = np.random.default_rng(seed)
    cases = rng.poisson(1.0, n).astype(float)
    age = rng.uniform(0, 8, n)
    noise = rng.standard_normal(n)
    eta = -1.6 + 0.5 * cases - 0.15 * (age - 4) + (1.2 * np.maximum(cases - 2, 0) if bend else 0)
    return np.column_stack([cases, age, noise]), 1 / (1 + np.exp(-eta))


@pytest.mark.parametrize("bend", [False, True])
def test_probabilities_are_calibrated_against_the_truth(bend: bool) -> None:
    x, p = _world(2500, 1, bend=bend)
    churned = np.random.default_rng(2).random(p.size) < p
    fresh, p_fresh = _world(2000, 3, bend=bend)
    m = fit_churn(x, churned, np.arange(p.size), fresh, NAMES, seed=0)
    late = np.arange(p.size)[m.train:]
    truth_brier = brier_score_loss(churned[late], p[late])
    truth_auc = roc_auc_score(churned[late], p[late])
    assert m.model.brier < truth_brier + 0.01  # out of time, within a hundredth of knowing the truth
    assert m.model.auc is not None and m.model.auc > truth_auc - 0.04
    assert m.brier_prevalence > m.model.brier  # better than the churn rate for everyone
    # Reliability against the truth on accounts the model never saw: each fifth of predicted risk.
    order = np.argsort(m.probability)
    for part in np.array_split(order, 5):
        assert abs(m.probability[part].mean() - p_fresh[part].mean()) < 0.035
    assert sum(b.count for b in m.model.reliability) == m.test
    assert m.model.auc >= (m.baseline.auc or 0) - 0.02  # ranks as well as the logistic baseline, or nearly


def test_drivers_point_at_the_features_that_move_the_risk() -> None:
    x, p = _world(1500, 4, bend=False)
    churned = np.random.default_rng(5).random(p.size) < p
    score = np.array([[5.0, 4.0, 0.0], [0.0, 4.0, 0.0]])  # many cases; none
    m = fit_churn(x, churned, np.arange(p.size), score, NAMES, seed=0)
    assert m.probability[0] > m.probability[1]
    assert m.drivers[0, 0] > 0.1 and m.drivers[1, 0] < 0  # cases above the median raise the risk, none lowers it
    assert abs(m.drivers[0, 2]) < 0.05  # the noise feature barely moves it
    again = fit_churn(x, churned, np.arange(p.size), score, NAMES, seed=0)
    assert np.array_equal(again.probability, m.probability)  # reproducible from the seed


def test_too_few_decided_renewals_are_refused() -> None:
    x, p = _world(40, 6, bend=False)
    with pytest.raises(NotApplicable, match="a churn model needs at least 60"):
        fit_churn(x, p > 0.5, np.arange(40), x[:1], NAMES)
