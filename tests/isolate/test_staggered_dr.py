"""The doubly robust staggered estimator against the `differences` package and a known simulated truth."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import polars as pl
import pytest
from differences import ATTgt

from training_roi.isolate import compare
from training_roi.isolate.drdid import dr_did
from training_roi.isolate.effect import ESTIMATORS, NotApplicable
from training_roi.isolate.staggered import estimate_staggered
from training_roi.isolate.staggered_dr import estimate_staggered_dr
from training_roi.measure.panels import UnitPanel

PERIODS = 8
COHORTS = (3, 4, 5)
BETA = np.array([0.6, -0.4])
"""Each covariate's effect on the outcome's slope per period."""


def tau(e: np.ndarray) -> np.ndarray:
    """The effect at event time e: 1 in the training period, 0.5 more each period after it."""
    return np.where(e >= 0, 1.0 + 0.5 * e, 0.0)


def simulate(seed: int, units: int = 800) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Covariates x (units × 2), cohorts g (inf = never trained) and outcomes y (units × periods).

    y_it = a_i + 0.2 t + (β'x_i) t + τ(t − g_i) 1{t ≥ g_i} + ε_it, with a_i, ε_it standard normal.
    Training (never, or in period 3, 4 or 5) follows a multinomial logit in x, so cohorts differ
    from the never-trained in x, and through β'x in their trend.
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(units, 2))
    scores = np.column_stack([np.zeros(units), 0.8 * x[:, 0] - 0.5 * x[:, 1] - 0.6,
                              0.5 * x[:, 0] + 0.4 * x[:, 1] - 0.6, -0.3 * x[:, 0] + 0.8 * x[:, 1] - 0.6])
    p = np.exp(scores)
    p /= p.sum(axis=1, keepdims=True)
    choice = (rng.random(units)[:, None] > p.cumsum(axis=1)).sum(axis=1)
    g = np.array([np.inf, *COHORTS])[choice]
    t = np.arange(PERIODS)
    e = t[None, :] - np.where(np.isfinite(g), g, 10**6)[:, None]
    y = (rng.normal(size=units)[:, None] + 0.2 * t[None, :] + (x @ BETA)[:, None] * t[None, :] + tau(e)
         + rng.normal(size=(units, PERIODS)))
    return x, g, y


def as_panel(x: np.ndarray, g: np.ndarray, y: np.ndarray, covariates: tuple[str, ...] = ("x1", "x2")) -> UnitPanel:
    n, periods = y.shape
    dates = [date(2024, m + 1, 1) for m in range(periods)]
    frame = pl.DataFrame({
        "unit": [f"u{i:04d}" for i in range(n) for _ in range(periods)],
        "period": dates * n,
        "treated_at": [dates[int(c)].replace(day=15) if np.isfinite(c) else None for c in g for _ in range(periods)],
        "y": y.ravel(), "x1": np.repeat(x[:, 0], periods), "x2": np.repeat(x[:, 1], periods),
    }, schema_overrides={"treated_at": pl.Date})
    return UnitPanel.from_data(frame, unit="unit", period="period", outcome="y", treated_at="treated_at",
                               covariates=list(covariates))


@pytest.fixture(scope="module")
def world() -> tuple[np.ndarray, np.ndarray, np.ndarray, UnitPanel]:
    x, g, y = simulate(1)
    return x, g, y, as_panel(x, g, y)


# differences 0.3 calls pandas APIs that pandas 3.1 deprecates; not ours to fix.
@pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")
@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.parametrize(("theirs", "propensity"), [("dr", "logit"), ("dr-ipt", "tilting")])
def test_group_time_effects_and_the_simple_aggregate_equal_the_differences_package(world, theirs, propensity):
    x, g, y, panel = world
    n = y.shape[0]
    ours = estimate_staggered_dr(panel, post_months=PERIODS, propensity=propensity, replicates=0)
    data = pd.DataFrame({
        "entity": np.repeat(np.arange(n), PERIODS), "time": np.tile(np.arange(PERIODS), n),
        "cohort": np.repeat(np.where(np.isfinite(g), g, np.nan), PERIODS), "y": y.ravel(),
        "x1": np.repeat(x[:, 0], PERIODS), "x2": np.repeat(x[:, 1], PERIODS),
    }).set_index(["entity", "time"])
    ref = ATTgt(data=data, cohort_column="cohort", base_period="varying")
    ref.fit(formula="y ~ x1 + x2", est_method=theirs, control_group="never_treated", progress_bar=False)
    results = ref.results()
    att, se = results[("ATTgtElements", "", "ATT")], results[("ATTgtElements", "analytic", "std_error")]
    mine = {(r["cohort"], r["period"]): r for r in ours.diagnostics["group_time"]}
    # 12 effects after training, and 9 placebo effects before it (t from 1 to g − 1, base t − 1).
    assert len(att) == len(mine) == 21 and sum(not r["placebo"] for r in mine.values()) == 12
    for c, b, t in att.index:
        assert b == (c - 1 if t >= c else t - 1)
        row = mine[(f"2024-{int(c) + 1:02d}", f"2024-{int(t) + 1:02d}")]
        assert row["att"] == pytest.approx(att[(c, b, t)], rel=1e-6)
        # Their standard deviation divides by n, ours by n − 1; with tilting the two stop the fit at other tolerances.
        assert row["std_error"] == pytest.approx(se[(c, b, t)] * np.sqrt(n / (n - 1)), rel=1e-4)
    simple = ref.aggregate("simple")
    assert ours.estimate == pytest.approx(simple[("SimpleAggregation", "", "ATT")].iloc[0], rel=1e-6)
    assert ours.std_error == pytest.approx(
        simple[("SimpleAggregation", "analytic", "std_error")].iloc[0] * np.sqrt(n / (n - 1)), rel=1e-4)
    event = ref.aggregate("event")
    dynamic = {r["relative_month"]: r for r in ours.diagnostics["dynamic"]}
    assert sorted(dynamic) == sorted(event.index) == list(range(1 - max(COHORTS), PERIODS - min(COHORTS)))
    for e in event.index:
        assert dynamic[e]["att"] == pytest.approx(event[("EventAggregation", "", "ATT")][e], rel=1e-6)
        assert dynamic[e]["std_error"] == pytest.approx(
            event[("EventAggregation", "analytic", "std_error")][e] * np.sqrt(n / (n - 1)), rel=1e-4)


def test_recovers_the_effect_where_the_unconditional_estimator_is_biased(world):
    """Known truth, and the unconditional estimator's bias, from the simulation's equation.

    y_it = a_i + 0.2 t + (β'x_i) t + τ(t − g_i) 1{t ≥ g_i} + ε_it with β = (0.6, −0.4) and
    τ(e) = 1 + 0.5 e. For cohort g and t ≥ g, the change from g − 1 to t is
    0.2 (t − g + 1) + (β'x)(t − g + 1) + τ(t − g) + noise for a cohort unit and the same without
    τ for a never-trained one. Conditional on x the trends are parallel, and the untrained units'
    change is linear in x (the outcome model is right), so ATT(g, t) = τ(t − g). The data hold
    cohorts 3, 4, 5 until period 7, so cohort g has event times 0 … 7 − g and the simple
    aggregate is Σ_g n_g Σ_{e ≤ 7−g} τ(e) / Σ_g n_g (8 − g), n_g the cohort's units.

    The unconditional estimator compares cohort means: its ATT(g, t) is τ(t − g) plus
    β'(x̄_g − x̄_never)(t − g + 1) plus noise, because training is selected on x (a multinomial
    logit) and x drives the slope; the sample version of that bias is computed below.
    """
    x, g, _, panel = world
    cells = [(c, e) for c in COHORTS for e in range(PERIODS - c)]
    sizes = {c: int((g == c).sum()) for c in COHORTS}
    weight = np.array([sizes[c] for c, _ in cells], dtype=float)
    truth = float(weight @ tau(np.array([e for _, e in cells])) / weight.sum())
    gap = {c: float((x[g == c].mean(axis=0) - x[~np.isfinite(g)].mean(axis=0)) @ BETA) for c in COHORTS}
    bias = float(weight @ np.array([gap[c] * (e + 1) for c, e in cells]) / weight.sum())

    dr = estimate_staggered_dr(panel, post_months=PERIODS, replicates=999, seed=3)
    plain = estimate_staggered(panel, post_months=PERIODS, replicates=199)
    assert 1.5 < truth < 2.0 and bias > 0.4
    assert abs(dr.estimate - truth) < 3 * dr.std_error
    # Before training, conditional on x, nothing happens: the placebo event-time effects are near zero.
    placebo = [r for r in dr.diagnostics["dynamic"] if r["placebo"]]
    assert len(placebo) == 4 and all(abs(r["att"]) < 3 * r["std_error"] for r in placebo)
    assert dr.ci_low < truth < dr.ci_high
    assert plain.estimate - truth > 5 * dr.std_error
    assert plain.estimate - truth == pytest.approx(bias, abs=3 * plain.std_error)
    assert not plain.ci_low <= truth <= plain.ci_high
    # The interval is the multiplier bootstrap's; its spread agrees with the analytic standard error.
    assert dr.replicates == 999 and dr.std_error == dr.details["analytic_std_error"]
    assert float(np.std(dr.draws, ddof=1)) == pytest.approx(dr.std_error, rel=0.1)
    again = estimate_staggered_dr(panel, post_months=PERIODS, replicates=999, seed=3)
    assert (again.ci_low, again.ci_high) == (dr.ci_low, dr.ci_high)
    normal = estimate_staggered_dr(panel, post_months=PERIODS, replicates=0)
    assert normal.replicates == 0 and normal.estimate == dr.estimate
    assert normal.ci_high - normal.ci_low == pytest.approx(2 * 1.959964 * dr.std_error, rel=1e-5)


def test_each_cell_is_dr_did_on_the_cohort_and_the_never_trained_with_denominator_weights():
    rng = np.random.default_rng(5)
    x, g, y = simulate(2, units=300)
    trials = rng.poisson(4, y.shape).astype(float)
    wins = rng.binomial(trials.astype(int), 1 / (1 + np.exp(-y / 4))).astype(float)
    n = y.shape[0]
    dates = [date(2024, m + 1, 1) for m in range(PERIODS)]
    frame = pl.DataFrame({
        "unit": [f"u{i:04d}" for i in range(n) for _ in range(PERIODS)], "period": dates * n,
        "treated_at": [dates[int(c)].replace(day=15) if np.isfinite(c) else None for c in g for _ in range(PERIODS)],
        "won": wins.ravel(), "closed": trials.ravel(),
        "x1": np.repeat(x[:, 0], PERIODS), "x2": np.repeat(x[:, 1], PERIODS),
    }, schema_overrides={"treated_at": pl.Date})
    panel = UnitPanel.from_data(frame, unit="unit", period="period", outcome="won", denominator="closed",
                                treated_at="treated_at", covariates=["x1", "x2"])
    effect = estimate_staggered_dr(panel, post_months=2, replicates=0)
    cell = next(r for r in effect.diagnostics["group_time"] if r["cohort"] == "2024-05" and r["period"] == "2024-06")
    b, t = 3, 5
    use = ((g == 4) | ~np.isfinite(g)) & (trials[:, b] > 0) & (trials[:, t] > 0)
    fit = dr_did(wins[use, b] / trials[use, b], wins[use, t] / trials[use, t], (g == 4)[use], x[use],
                 weights=trials[use, b] + trials[use, t])
    assert cell["att"] == pytest.approx(fit.estimate, rel=1e-10)
    assert effect.details["group_time_effects"] == 6  # 3 cohorts × event times 0 and 1


def test_not_applicable_without_covariates_and_tiny_cohorts_are_skipped_and_counted(world):
    x, g, y, _ = world
    with pytest.raises(NotApplicable, match="no covariates"):
        estimate_staggered_dr(as_panel(x, g, y, covariates=()))
    g = g.copy()
    g[np.flatnonzero(np.isfinite(g))[0]] = 6  # a cohort of one unit in period 6: its two cells are skipped
    effect = estimate_staggered_dr(as_panel(x, g, y), post_months=PERIODS, replicates=0)
    assert effect.details["skipped_group_time_effects"] == 2
    assert any("2 of 14 cohort-month effects were skipped" in w for w in effect.warnings)
    assert {r["cohort"] for r in effect.diagnostics["group_time"]} == {"2024-04", "2024-05", "2024-06"}


def test_not_yet_trained_controls_and_overlap_warnings_of_the_worst_cell(world):
    x, g, y, panel = world
    effect = estimate_staggered_dr(panel, control="not_yet_treated", post_months=3, replicates=0)
    cells = {(r["cohort"], r["period"]): r for r in effect.diagnostics["group_time"]}
    # Cohort 3 in period 3 may compare with cohorts 4 and 5 too; in period 4 with cohort 5 only.
    never = int((~np.isfinite(g)).sum())
    assert cells[("2024-04", "2024-04")]["controls"] == never + int(((g == 4) | (g == 5)).sum())
    assert cells[("2024-04", "2024-05")]["controls"] == never + int((g == 5).sum())
    # Separating covariates: the logistic fits warn and the worst cell is named.
    strong = x.copy()
    strong[:, 0] = x[:, 0] + 3.0 * np.isfinite(g)
    poor = estimate_staggered_dr(as_panel(strong, g, y), post_months=3, replicates=0)
    assert poor.diagnostics["share_trained_off_support"] > 0
    assert any(w.startswith("overlap:") and "cohort 2024-" in w for w in poor.warnings)


def test_registered_for_comparisons():
    entry = ESTIMATORS["staggered_dr"]
    assert entry.label == "staggered cohorts, doubly robust (Callaway & Sant'Anna)" and entry.needs_comparison
    assert "staggered_dr" in compare.METHODS
