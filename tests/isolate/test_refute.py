"""Refutation on synthetic panels where the right verdict is known."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from training_roi.isolate import Effect, UnitPanel, cluster_weights, effect_from_draws
from training_roi.isolate.refute import placebo_date, placebo_outcome, placebo_treatment, refute, subset_comparison

MONTHS = [date(2023 + (m // 12), m % 12 + 1, 1) for m in range(24)]
TRAINED_AT = date(2024, 7, 10)


def simple_did(panel: UnitPanel) -> Effect:
    """A plain before/after DiD around the first training month, bootstrapped over units (for the tests)."""
    f = panel.frame
    first = f["treated_at"].drop_nulls().min()
    cut = date(first.year, first.month, 1)
    per_unit = f.group_by("unit").agg(
        pl.col("treated_at").first().is_not_null().alias("trained"),
        pl.col(panel.numerator).filter(pl.col("period") < cut).mean().alias("pre"),
        pl.col(panel.numerator).filter(pl.col("period") >= cut).mean().alias("post"),
    ).sort("unit")
    change = (per_unit["post"] - per_unit["pre"]).to_numpy()
    trained = per_unit["trained"].to_numpy()
    t, c = change[trained], change[~trained]
    wt, wc = cluster_weights(len(t), replicates=300, seed=1), cluster_weights(len(c), replicates=300, seed=2)
    draws = wt @ t / len(t) - wc @ c / len(c)
    return effect_from_draws("simple", float(t.mean() - c.mean()), draws, baseline=1.0)


def panel(effect: float, pre_trend: float, seed: int = 0, n: int = 120) -> UnitPanel:
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n):
        trained = u < n // 2
        level = rng.normal(10, 1)
        for i, m in enumerate(MONTHS):
            after = trained and m >= date(2024, 7, 1)
            y = level + (pre_trend * i if trained else 0) + (effect if after else 0) + rng.normal(0, 0.5)
            rows.append({"unit": f"u{u:03d}", "period": m, "treated_at": TRAINED_AT if trained else None,
                         "revenue": y, "noise": rng.normal(0, 0.5)})
    return UnitPanel(frame=pl.DataFrame(rows), outcome="revenue", numerator="revenue")


def test_a_real_effect_survives_every_challenge():
    p = panel(effect=2.0, pre_trend=0.0)
    original = simple_did(p)
    assert original.estimate == pytest.approx(2.0, abs=0.3)
    results = {r.test: r for r in refute(p, simple_did, original, placebo=("noise", None))}
    assert set(results) == {"placebo date", "placebo treatment", "comparison subset", "placebo outcome"}
    assert all(r.passed for r in results.values()), results
    assert abs(results["placebo treatment"].estimate) < 0.5


def test_groups_already_drifting_apart_fail_the_placebo_date():
    p = panel(effect=0.0, pre_trend=0.15)  # trained units trend up before and after training
    original = simple_did(p)
    assert original.estimate > 1  # the plain DiD mistakes the trend for an effect
    r = placebo_date(p, simple_did, shift_months=6)
    assert not r.passed and r.estimate > 0.5
    assert "drifting" in r.explanation


def test_placebo_outcome_and_random_labels_find_nothing():
    p = panel(effect=2.0, pre_trend=0.0, seed=3)
    assert placebo_outcome(p, simple_did, numerator="noise").passed
    assert placebo_treatment(p, simple_did, seed=5).passed
    sub = subset_comparison(p, simple_did, simple_did(p), repeats=3)
    assert sub.passed and sub.ci_low <= sub.estimate <= sub.ci_high, sub
