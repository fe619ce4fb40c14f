"""Which customer accounts are about to churn: calibrated probabilities, on plain arrays.

A churn model here answers a forecasting question — *how likely is this renewal to be lost?* —
not a causal one. It learns from renewals already decided (lost = churned) the pattern of the
facts known when each renewal opened, and scores the renewals still open.

**The model.** Gradient-boosted stumps (scikit-learn's ``HistGradientBoostingClassifier`` with trees
of depth 1: a sum of step functions, one per feature, so a feature's effect may bend — a third
support case may matter more than the first — without hand-made terms) inside
``CalibratedClassifierCV``. Boosted trees rank well but their raw
scores are not probabilities (shrinkage and early stopping pull them toward the middle), and a
probability is what a customer-success team plans with. The calibration is Platt's sigmoid over
cross-validated folds rather than isotonic regression: with the few hundred renewals a year most
companies have, isotonic steps over-fit, and a two-parameter map is enough to straighten a
monotone distortion. Three folds: each calibrator sees a third of the renewals, and the model
is fitted three times rather than five on the 20,000-rep org's hundred thousand renewals.

**The baseline.** A plain ``LogisticRegression`` on the standardised features. Logistic
regression is calibrated by construction when the log-odds are linear in the features, and unlike
trees it extrapolates (out of time, accounts are older than the past held them), so it is the
honest benchmark: the boosted model earns its place only if it scores no worse (Brier) and ranks
at least as well (AUC) out of time.

**Out of time.** Decided renewals are ordered by their due date; the model is fitted on the
earlier ``1 − test_share`` and checked on the later rest, as it will be used (fitted on the
past, scoring the future). Brier scores, AUC and a reliability curve
(``sklearn.calibration.calibration_curve``, bins of equal counts) are read on that later part;
then the model that scores is refitted on every decided renewal to score the open ones.

**Which model scores.** The one with the lower out-of-time Brier score (:attr:`ChurnModel.chosen`).

**Drivers, per account.** For each scored renewal and feature: the change in the scoring model's
probability when that feature alone is set to its median among the decided renewals — a local
ablation, not a causal effect and not a Shapley value (features that move together share their
credit unevenly). The largest absolute changes are each account's drivers.

Everything is seeded: the folds of the calibration and the trees' own randomness.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray
from sklearn.calibration import CalibratedClassifierCV, calibration_curve
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from training_roi.errors import NotApplicable

__all__ = ["MIN_DECIDED", "ChurnCheck", "ChurnModel", "Reliability", "fit_churn"]

FloatArray = NDArray[np.float64]

MIN_DECIDED = 60
"""Fewer decided renewals than this, or fewer than 10 of each outcome, and no model is fitted."""
_MIN_EACH = 10


@dataclass(frozen=True)
class Reliability:
    """One bin of a reliability curve: the mean predicted probability, the share observed, how many."""

    predicted: float
    observed: float
    count: int


class ChurnCheck(NamedTuple):
    """How one model did out of time: Brier score, AUC and its reliability curve on the later renewals."""

    brier: float
    auc: float | None
    reliability: tuple[Reliability, ...]


@dataclass(frozen=True)
class ChurnModel:
    """The fitted churn model, its out-of-time check against the baseline, and the open renewals' scores.

    ``probability`` and ``drivers`` are per scored row (in the order given): the calibrated
    churn probability and each feature's local ablation (probability − probability with the
    feature at its median), one column per feature.
    """

    features: tuple[str, ...]
    train: int
    test: int
    churn_rate_train: float
    churn_rate_test: float
    model: ChurnCheck
    baseline: ChurnCheck
    brier_prevalence: float
    """The Brier score of predicting the training churn rate for everyone: the bar any model must clear."""
    chosen: str
    """The model that scores the open renewals: ``boosting`` (the calibrated trees) unless the logistic
    baseline had the lower Brier score out of time, then ``logistic`` — a churn list should come from
    the model that forecast better, and where the log-odds are linear in the features the baseline can."""
    probability: FloatArray
    drivers: FloatArray
    medians: FloatArray
    seed: int
    test_rows: NDArray[np.int64]
    """The later decided renewals (positions in the input) the check was read on."""
    test_model: FloatArray
    """The boosted model's out-of-time probabilities of those renewals (fitted on the earlier ones)."""
    test_baseline: FloatArray
    """The baseline's."""


def _boosted(seed: int, folds: int, rows: int) -> CalibratedClassifierCV:
    # Stumps: renewals are few and noisy, and on the simulated customer worlds (600 to 3,000 decided
    # renewals) boosted stumps — an additive model of a step function per feature — ranked and scored
    # better out of time than trees of depth 2 or 3, which learn one year's noise as an interaction.
    # A fixed 100 rounds, no early stopping: scikit-learn would switch it on past 10,000 rows, holding out a
    # tenth and changing the model with the data's size; a hundred small steps of stumps cannot over-fit much.
    # A leaf of 30 renewals, or a tenth of what each calibration fold fits on when that is fewer: with
    # a leaf of 30, fewer than about 130 decided renewals left no split at all, only the churn rate.
    leaf = int(max(5, min(30, rows * (folds - 1) / folds // 10)))
    trees = HistGradientBoostingClassifier(max_iter=100, learning_rate=0.05, max_depth=1, max_leaf_nodes=2,
                                           min_samples_leaf=leaf, l2_regularization=1.0, early_stopping=False,
                                           random_state=seed)
    return CalibratedClassifierCV(trees, method="sigmoid", cv=folds)


def _logistic() -> Any:
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))


def _folds(y: NDArray[np.int64]) -> int:
    return int(max(2, min(3, np.bincount(y, minlength=2).min())))


def _check(y: NDArray[np.int64], p: FloatArray, bins: int) -> ChurnCheck:
    auc = float(roc_auc_score(y, p)) if 0 < y.sum() < y.size else None
    n_bins = max(1, min(bins, y.size // 10))
    observed, predicted = calibration_curve(y, p, n_bins=n_bins, strategy="quantile")
    edges = np.quantile(p, np.linspace(0, 1, n_bins + 1))
    counts = np.bincount(np.searchsorted(edges[1:-1], p), minlength=n_bins)  # the bins calibration_curve uses
    counts = counts[counts > 0]
    rel = tuple(Reliability(float(a), float(b), int(c)) for a, b, c in zip(predicted, observed, counts, strict=True))
    return ChurnCheck(brier=float(brier_score_loss(y, p)), auc=auc, reliability=rel)


def fit_churn(x: FloatArray, churned: NDArray[np.bool_], due: NDArray[Any], score: FloatArray,
              features: Sequence[str], *, seed: int = 0, test_share: float = 0.3, bins: int = 5) -> ChurnModel:
    """Fit the calibrated churn model on decided renewals, check it out of time, score ``score``.

    ``x`` (decided renewals × features), ``churned`` (lost), ``due`` (their due dates, any
    sortable type: the out-of-time split's order), ``score`` (open renewals × the same features).
    Raises :class:`NotApplicable` with the reason when the decided renewals are too few.
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(churned, bool).astype(np.int64)
    score = np.asarray(score, np.float64).reshape(-1, x.shape[1] if x.ndim == 2 else len(features))
    if x.shape[0] < MIN_DECIDED or min(y.sum(), y.size - y.sum()) < _MIN_EACH:
        raise NotApplicable(f"{x.shape[0]:,} decided renewals ({int(y.sum()):,} lost): a churn model needs at "
                            f"least {MIN_DECIDED} and {_MIN_EACH} of each outcome")
    if not 0 < test_share < 1:
        raise ValueError(f"test share {test_share}: expected a share between 0 and 1, such as 0.3")
    order = np.argsort(np.asarray(due), kind="stable")
    cut = round(x.shape[0] * (1 - test_share))
    early, late = order[:cut], order[cut:]
    if min(y[early].sum(), early.size - y[early].sum()) < _MIN_EACH or late.size < 10:
        raise NotApplicable("the earlier renewals hold too few of one outcome to fit on, or the later too few "
                            "to check on")
    boosted = _boosted(seed, _folds(y[early]), early.size).fit(x[early], y[early])
    logistic = _logistic().fit(x[early], y[early])
    p_model = boosted.predict_proba(x[late])[:, 1]
    p_base = logistic.predict_proba(x[late])[:, 1]
    rate = float(y[early].mean())
    prevalence = float(brier_score_loss(y[late], np.full(late.size, rate)))

    chosen = "boosting" if brier_score_loss(y[late], p_model) <= brier_score_loss(y[late], p_base) else "logistic"
    final = (_boosted(seed, _folds(y), y.size) if chosen == "boosting" else _logistic()).fit(x, y)
    medians = np.median(x, axis=0)
    prob = final.predict_proba(score)[:, 1] if score.shape[0] else np.zeros(0)
    drivers = np.zeros((score.shape[0], x.shape[1]))
    for j in range(x.shape[1] if score.shape[0] else 0):
        ablated = score.copy()
        ablated[:, j] = medians[j]
        drivers[:, j] = prob - final.predict_proba(ablated)[:, 1]
    return ChurnModel(
        features=tuple(features), train=int(early.size), test=int(late.size), churn_rate_train=rate,
        churn_rate_test=float(y[late].mean()), model=_check(y[late], p_model, bins),
        baseline=_check(y[late], p_base, bins), brier_prevalence=prevalence, chosen=chosen, probability=prob,
        drivers=drivers, medians=medians, seed=seed, test_rows=late.astype(np.int64), test_model=p_model,
        test_baseline=p_base,
    )
