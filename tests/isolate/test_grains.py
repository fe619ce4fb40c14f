"""Every estimator at every grain: one simulated panel dated by days, weeks, months, quarters, years or integers."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
import statsmodels.api as sm

from training_roi.isolate import compare_methods, estimate_twfe_did
from training_roi.measure.panels import UnitPanel

UNITS, PERIODS, STEP = 160, 18, 1.0


def _simulated(seed: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Unit index, period index 0…17, training period (−1: never) and outcome of a known step of 1.0.

    ``y = level + 0.2 t + sin t + 1.0 · (t ≥ g) + noise``: 60% of units trained in periods 7 to 11.
    """
    rng = np.random.default_rng(seed)
    g = np.where(rng.random(UNITS) < 0.6, rng.integers(7, 12, UNITS), -1)
    unit, t = np.divmod(np.arange(UNITS * PERIODS), PERIODS)
    y = (rng.normal(10, 2, UNITS)[unit] + 0.2 * t + np.sin(t) + STEP * ((g[unit] >= 0) & (t >= g[unit]))
         + rng.normal(0, 0.5, unit.size))
    return unit, t, g, y


def _dated(grain: str, t: int, within: bool = False) -> date | int:
    """Period ``t`` at ``grain``: its first day, or (``within``) a day inside it — a training day."""
    if grain == "index":
        return 2001 + t
    if grain == "day":
        return date(2024, 1, 1) + timedelta(days=t)
    if grain == "week":
        return date(2024, 1, 1) + timedelta(weeks=t, days=2 if within else 0)  # Mondays; trained on Wednesdays
    if grain == "month":
        return date(2023 + t // 12, t % 12 + 1, 15 if within else 1)
    if grain == "quarter":
        return date(2020 + t // 4, t % 4 * 3 + 1, 1) + timedelta(days=40 if within else 0)
    return date(2000 + t, 7 if within else 1, 1)


def panel_at(grain: str) -> UnitPanel:
    unit, t, g, y = _simulated()
    frame = pl.DataFrame({
        "rep": [f"r{u:03d}" for u in unit], "when": [_dated(grain, int(k)) for k in t],
        "trained": [_dated(grain, int(g[u]), within=True) if g[u] >= 0 else None for u in unit], "y": y,
    })
    return UnitPanel.from_data(frame, unit="rep", period="when", outcome="y", treated_at="trained")


def _reference(post: int) -> tuple[float, float]:
    """The dummy regression of statsmodels on the period indexes alone (no dates), with the nested clustered factor."""
    unit, t, g, y = _simulated()
    rel = t - g[unit]
    trained = g[unit] >= 0
    keep = ~trained | ((rel >= -post) & (rel < post))  # trained units from −post to post − 1 around training
    unit, t, y, rel, trained = unit[keep], t[keep], y[keep], rel[keep], trained[keep]
    x = (trained & (rel >= 0)).astype(float)
    units = np.unique(unit)
    design = np.column_stack([x, np.ones(y.size), (unit[:, None] == units[None, 1:]).astype(float),
                              (t[:, None] == np.arange(1, PERIODS)[None, :]).astype(float)])
    fit = sm.OLS(y, design).fit(cov_type="cluster", cov_kwds={"groups": unit, "use_correction": False})
    n, k, clusters = y.size, 1 + PERIODS - 1, units.size
    factor = clusters / (clusters - 1) * (n - 1) / (n - k)
    return float(fit.params[0]), float(np.sqrt(fit.cov_params()[0, 0] * factor))


GRAINS = ("day", "week", "month", "quarter", "year", "index")


@pytest.mark.parametrize("grain", GRAINS)
def test_two_way_fixed_effects_is_the_same_regression_at_every_grain(grain):
    panel = panel_at(grain)
    assert panel.grain == grain  # inferred from the periods
    effect = estimate_twfe_did(panel, post_months=4)
    estimate, std_error = _reference(4)
    assert effect.estimate == pytest.approx(estimate, rel=1e-9)
    assert effect.std_error == pytest.approx(std_error, rel=1e-9)
    assert effect.ci_low < STEP < effect.ci_high


@pytest.fixture(scope="module")
def comparisons():
    return {grain: compare_methods(panel_at(grain), post_months=4, replicates=199, refutations=False,
                                   methods=("twfe", "event_study", "staggered", "psm", "ipw", "cem", "trend"))
            for grain in GRAINS}


def test_every_estimator_applies_at_every_grain_and_finds_the_step(comparisons):
    for grain, c in comparisons.items():
        for r in c.results:
            assert r.effect is not None, (grain, r.method, r.not_applicable)
            assert r.effect.ci_low < STEP < r.effect.ci_high, (grain, r.method)
        assert c.recommended is not None
    # The same periods in other clothes give the same figures: only the trend line's season differs.
    # Quarter-of-year effects need 5 quarters before training and get 11; month-of-year effects need
    # 13 months and get 11, so they are left out; days, weeks, years and numbered periods have none.
    reference = comparisons["index"]
    for grain, c in comparisons.items():
        for r, ref in zip(c.results, reference.results, strict=True):
            if r.method == "trend" and grain == "quarter":
                continue
            assert r.effect is not None and ref.effect is not None
            assert (r.effect.estimate, r.effect.ci_low, r.effect.ci_high) == pytest.approx(
                (ref.effect.estimate, ref.effect.ci_low, ref.effect.ci_high), rel=1e-9), (grain, r.method)
    seasonal = {g: comparisons[g].result("trend").effect.details["seasonality"] for g in GRAINS}  # type: ignore[union-attr]
    assert seasonal == {"day": 0.0, "week": 0.0, "month": 0.0, "quarter": 1.0, "year": 0.0, "index": 0.0}
