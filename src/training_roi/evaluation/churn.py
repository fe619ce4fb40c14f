"""Customer-side risk: which accounts are about to churn, why, and whether trained accounts' risk differs.

With ``insight.churn`` (an account study: customer education), every renewal of the study's
accounts gets the facts the CRM held when it opened (:func:`training_roi.measure.churn.renewal_features`);
the renewals already decided fit the churn model of :mod:`training_roi.isolate.churn`, checked out
of time against a logistic baseline, and the renewals still open are scored: each account's churn
probability and the features that drive it.

Trained against untrained: the observed churn of decided renewals — of accounts trained before the
renewal opened, against every other renewal — with a Wilson interval for each group and Newcombe's
hybrid score interval for the difference, and the mean predicted risk of the open ones. That
difference is always an **association**, even in a study whose comparison is a randomised
holdout: who completes the training is not drawn at random, and the two groups' renewals come from
different periods (an account's renewals before its training count as untrained). Every output
says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import polars as pl
from ibis.backends import BaseBackend
from scipy.stats import norm

from training_roi.errors import NotApplicable
from training_roi.evaluation.stages import kept
from training_roi.isolate.churn import ChurnModel, fit_churn
from training_roi.measure import Cohort
from training_roi.measure.churn import CHURN_FEATURES, renewal_features
from training_roi.study import StudyPlan

__all__ = ["ChurnRisk", "GroupRisk", "churn_risk", "churn_study", "driver_text"]

_DRIVERS_SHOWN = 3
"""Drivers named per account: the features whose ablation moves its probability most."""


@dataclass(frozen=True)
class GroupRisk:
    """Trained or untrained accounts' renewals: observed churn of the decided, mean predicted risk of the open."""

    group: str
    decided: int
    churned: int
    observed: float | None
    low: float | None
    high: float | None
    open: int
    predicted: float | None


@dataclass(frozen=True)
class ChurnRisk:
    """The churn model's check, the open renewals' risk with drivers, and trained against untrained."""

    fit: ChurnModel
    accounts: pl.DataFrame
    """One row per open renewal, highest probability first: churn_risk.csv's columns."""
    groups: tuple[GroupRisk, ...]
    difference: float | None
    """Observed churn of trained − untrained accounts' decided renewals (None without both)."""
    difference_low: float | None
    difference_high: float | None
    evidence: str
    confidence: float
    warnings: tuple[str, ...] = field(default=())

    def check_document(self) -> dict[str, Any]:
        """result.json's ``churn.check``: both models' out-of-time check against the churn rate for everyone."""
        f = self.fit

        def check(c: Any) -> dict[str, Any]:
            return {"brier": c.brier, "auc": c.auc,
                    "reliability": [{"predicted": r.predicted, "observed": r.observed, "count": r.count}
                                    for r in c.reliability]}

        return {"train_renewals": f.train, "test_renewals": f.test, "churn_rate_train": f.churn_rate_train,
                "churn_rate_test": f.churn_rate_test, "brier_prevalence": f.brier_prevalence,
                "model": check(f.model), "baseline": check(f.baseline)}

    def asdict(self) -> dict[str, Any]:
        """result.json's ``churn`` section (without its ``basis``)."""
        f = self.fit
        return {
            "evidence": self.evidence, "confidence": self.confidence, "seed": f.seed, "scoring_model": f.chosen,
            "features": {name: CHURN_FEATURES.get(name, name) for name in f.features},
            "check": self.check_document(),
            "trained_vs_untrained": {
                "groups": [vars(g) for g in self.groups], "difference": self.difference,
                "difference_low": self.difference_low, "difference_high": self.difference_high},
            "accounts": self.accounts.with_columns(pl.col("due").cast(pl.String), pl.col("opened").cast(pl.String))
            .to_dicts(),
            "warnings": list(self.warnings),
        }


def churn_study(con: BaseBackend, plan: StudyPlan, trained: Cohort, scope: list[str] | None) -> ChurnRisk | str:
    """The study's churn risk over its accounts, or why there is none (a kept measurement)."""
    iso = plan.isolation
    return kept(churn_risk, con, trained=trained.anchor_of(), accounts=scope, seed=iso.seed,
                confidence=iso.confidence, evidence="association")


def _wilson(k: int, n: int, z: float) -> tuple[float | None, float | None]:
    if not n:
        return None, None
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def driver_text(row: dict[str, Any], names: tuple[str, ...]) -> str:
    """An account's drivers in words: each feature's value and its ablation in points, largest first."""
    shifts = sorted(((row[f"d_{n}"], n) for n in names), key=lambda t: -abs(t[0]))
    parts = []
    for shift, name in shifts[:_DRIVERS_SHOWN]:
        if abs(shift) < 0.0005:
            continue
        value = row[name]
        shown = f"{value:,.1f}" if name in ("employees_log", "account_age_years") else f"{value:,.0f}"
        sign = "+" if shift > 0 else "−"
        parts.append(f"{CHURN_FEATURES.get(name, name)} {shown} ({sign}{abs(shift) * 100:.1f} pts)")
    return "; ".join(parts)


def churn_risk(con: BaseBackend, *, trained: dict[str, date], accounts: list[str] | None, seed: int,
               confidence: float, evidence: str) -> ChurnRisk | str:
    """Fit, check and score the churn model on the warehouse's renewals; or say why there is none."""
    frame = renewal_features(con, trained=trained, accounts=accounts)
    if frame.is_empty():
        return ("no churn risk: no renewal opportunity (an opportunity whose Type names a renewal) in the study's "
                "accounts")
    names = tuple(CHURN_FEATURES)
    decided = frame.filter(pl.col("decided"))
    open_ = frame.filter(~pl.col("decided"))
    try:
        fit = fit_churn(decided.select(names).to_numpy(), decided["churned"].to_numpy(),
                        decided["due"].fill_null(decided["opened"]).to_numpy(), open_.select(names).to_numpy(),
                        names, seed=seed)
    except NotApplicable as exc:
        return f"no churn risk: {exc}"
    scored = open_.with_columns(pl.Series("probability", fit.probability),
                                *(pl.Series(f"d_{n}", fit.drivers[:, j]) for j, n in enumerate(names)))
    drivers = [driver_text(r, names) for r in scored.iter_rows(named=True)]
    table = (scored.with_columns(pl.Series("drivers", drivers, dtype=pl.String),
                                 pl.col("trained").cast(pl.Boolean), pl.lit(evidence).alias("evidence"))
             .select("account_id", "account_name", "owner_id", "renewal_id", "opened", "due", "amount",
                     "probability", "drivers", "trained", "evidence")
             .sort(["probability", "account_id"], descending=[True, False]))
    z = float(norm.ppf(0.5 + confidence / 2))
    groups = []
    for label, flag in (("trained", 1.0), ("untrained", 0.0)):
        d = decided.filter(pl.col("trained") == flag)
        k, n = int(d["churned"].sum()), d.height
        low, high = _wilson(k, n, z)
        o = scored.filter(pl.col("trained") == flag)["probability"].to_numpy()
        groups.append(GroupRisk(group=label, decided=n, churned=k, observed=k / n if n else None, low=low, high=high,
                                open=o.size, predicted=float(o.mean()) if o.size else None))
    t, u = groups
    diff = low_d = high_d = None
    warnings: list[str] = []
    if t.observed is not None and u.observed is not None:
        diff = t.observed - u.observed
        # Newcombe's hybrid score interval (his method 10), from the groups' Wilson intervals: unlike a
        # Wald interval it keeps a width when a group's churn is 0 or 1.
        assert t.low is not None and t.high is not None and u.low is not None and u.high is not None
        low_d = diff - math.sqrt((t.observed - t.low) ** 2 + (u.high - u.observed) ** 2)
        high_d = diff + math.sqrt((t.high - t.observed) ** 2 + (u.observed - u.low) ** 2)
    else:
        warnings.append("no decided renewal of a trained account, or none of an untrained one: no comparison")
    if np.ptp(fit.test_model) < 1e-9:
        warnings.append("the boosted stumps forecast one probability for every later renewal: too few decided "
                        "renewals to split on")
    reference = frame["opened"].max()
    stale = open_.filter(pl.col("due") < pl.lit(reference) - timedelta(days=30)).height if reference else 0
    if stale:
        warnings.append(f"{stale:,} open renewals were due more than 30 days before the latest renewal in the data "
                        "opened: check that they are still live before acting on their risk")
    if fit.chosen == "logistic":
        warnings.append(f"the logistic baseline forecast better out of time (Brier {fit.baseline.brier:.4f} against "
                        f"{fit.model.brier:.4f}): it scores the open renewals")
    if fit.model.brier >= fit.brier_prevalence and fit.baseline.brier >= fit.brier_prevalence:
        warnings.append(f"neither model beat the churn rate itself out of time (Brier {fit.brier_prevalence:.4f}): "
                        "the probabilities carry little news about which account churns")
    if not open_.height:
        warnings.append("no renewal is open: nothing to score")
    return ChurnRisk(fit=fit, accounts=table, groups=tuple(groups), difference=diff, difference_low=low_d,
                     difference_high=high_d, evidence=evidence, confidence=confidence, warnings=tuple(warnings))

