"""Two-way fixed effects and its event study against statsmodels' dummy regressions and known effects."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
import polars as pl
import pytest
import statsmodels.api as sm
from scipy import stats

from training_roi.isolate.effect import NotApplicable
from training_roi.isolate.event_study import estimate_event_study, estimate_twfe_did
from training_roi.measure.panels import UnitPanel

START = 2024 * 12  # January 2024, as a month count


def growing(e: np.ndarray) -> np.ndarray:
    """An effect of 0.5 in the training month that grows by 0.5 each month after it."""
    return np.where(e >= 0, 0.5 * (e + 1), 0.0)


def simulated_panel(
    seed: int,
    *,
    units: int = 300,
    months: int = 24,
    never: float = 0.15,
    cohorts: tuple[int, int] = (3, 18),
    effect: Callable[[np.ndarray], np.ndarray] = growing,
    pre_trend: float = 0.0,
    noise: float = 1.0,
    denominator: bool = False,
) -> tuple[UnitPanel, np.ndarray]:
    """A staggered rollout with unit and month effects and a known effect by month since training.

    Each unit is trained in a month drawn uniformly from ``cohorts`` (inclusive, as indexes of
    the months), on the 15th, or never (share ``never``). ``pre_trend`` makes trained units
    drift by that much per month before their training (a violation of parallel trends). With
    ``denominator`` the outcome is a rate: successes out of a Poisson number of trials.

    Returns the panel and each unit's training month index (``inf`` for never).
    """
    rng = np.random.default_rng(seed)
    g = rng.integers(cohorts[0], cohorts[1] + 1, units).astype(float)
    g[rng.random(units) < never] = np.inf
    t = np.arange(months)
    e = t[None, :] - np.where(np.isfinite(g), g, 10**6)[:, None]  # never-trained: forever before
    drift = np.where(np.isfinite(g)[:, None] & (e < 0), pre_trend * e, 0.0)
    level = rng.normal(0, 2, units)[:, None] + (0.1 * t + np.sin(t / 2))[None, :] + drift + effect(e)
    dates = [date((START + k) // 12, (START + k) % 12 + 1, 1) for k in range(months)]
    trained = [dates[int(x)].replace(day=15) if np.isfinite(x) else None for x in g]
    cols: dict[str, object] = {
        "unit": [f"u{i:03d}" for i in range(units) for _ in range(months)],
        "period": dates * units,
        "treated_at": [x for x in trained for _ in range(months)],
    }
    schema = {"unit": pl.String, "period": pl.Date, "treated_at": pl.Date}
    if denominator:
        trials = rng.poisson(3, (units, months)).astype(float)
        p = 1 / (1 + np.exp(-level / 4))
        cols |= {"won": rng.binomial(trials.astype(int), np.clip(p, 0, 1)).astype(float).ravel(),
                 "closed": trials.ravel()}
        schema |= {"won": pl.Float64, "closed": pl.Float64}
        panel = UnitPanel(frame=pl.DataFrame(cols, schema=schema), outcome="win_rate", numerator="won",
                          denominator="closed")
    else:
        y = 10 + level + rng.normal(0, noise, (units, months))
        cols["y"] = y.ravel()
        schema["y"] = pl.Float64
        panel = UnitPanel(frame=pl.DataFrame(cols, schema=schema), outcome="y", numerator="y")
    return panel, g


@dataclass(frozen=True)
class Reference:
    """statsmodels' WLS coefficients with the nested-effects clustered covariance, and what follows from it."""

    params: np.ndarray
    cov: np.ndarray
    dof: int
    nobs: int

    @property
    def bse(self) -> np.ndarray:
        return np.sqrt(np.diag(self.cov))

    def conf_int(self, alpha: float = 0.05) -> np.ndarray:
        q = stats.t(self.dof).ppf(1 - alpha / 2)
        return np.column_stack([self.params - q * self.bse, self.params + q * self.bse])

    @property
    def pvalues(self) -> np.ndarray:
        return 2 * stats.t(self.dof).sf(np.abs(self.params / self.bse))


def dummy_regression(panel: UnitPanel, lo: int, hi: int, event: bool) -> Reference:
    """The WLS of statsmodels with every unit and month dummy written out, clustered by unit.

    The sample is rebuilt here from the frame with Polars: trained units from ``lo`` to ``hi``
    months around their training month (if trained after the first month), the others always.
    The covariance is statsmodels' cluster sandwich without its correction, times the nested
    small-sample factor G/(G−1)·(N−1)/(N−K) where K counts the columns but not the unit dummies
    and the constant (the unit effects, nested in the unit clusters).
    """
    f = panel.frame.with_columns(
        (pl.col("period").dt.year() * 12 + pl.col("period").dt.month() - 1).alias("m"),
        (pl.col("treated_at").dt.year() * 12 + pl.col("treated_at").dt.month() - 1).alias("g"),
    )
    first, last = f["m"].min(), f["m"].max()
    f = f.with_columns((pl.col("m") - pl.col("g")).alias("rel"))
    comparison = pl.col("g").is_null() | (pl.col("g") > last)
    trained = (pl.col("g") > first) & (pl.col("g") <= last) & pl.col("rel").is_between(lo, hi)
    f = f.filter(comparison | trained)
    w = f[panel.denominator].to_numpy() if panel.denominator else np.ones(f.height)
    f = f.filter(w > 0)
    w = w[w > 0]
    y = (f[panel.numerator] / (f[panel.denominator] if panel.denominator else 1)).to_numpy()
    units = f["unit"].to_numpy()
    unit_d = (units[:, None] == np.unique(units)[None, 1:]).astype(float)
    month_d = (f["m"].to_numpy()[:, None] == np.unique(f["m"].to_numpy())[None, 1:]).astype(float)
    rel = f["rel"].fill_null(-999).to_numpy()
    is_trained = ~f.select(comparison).to_series().to_numpy()
    if event:
        ks = [k for k in range(lo, hi + 1) if k != -1]
        x = np.column_stack([(is_trained & (rel == k)).astype(float) for k in ks])
    else:
        x = (is_trained & (rel >= 0)).astype(float)[:, None]
    design = np.column_stack([x, np.ones(len(y)), unit_d, month_d])
    codes = np.unique(units, return_inverse=True)[1]
    fit = sm.WLS(y, design, weights=w).fit(cov_type="cluster", cov_kwds={"groups": codes, "use_correction": False})
    n, g = len(y), int(codes.max()) + 1
    k = design.shape[1] - (1 + unit_d.shape[1])  # the regressors and the month dummies
    factor = g / (g - 1) * (n - 1) / (n - k)
    p = x.shape[1]
    return Reference(fit.params[:p], factor * fit.cov_params()[:p, :p], g - 1, n)


@pytest.mark.parametrize("denominator", [False, True])
def test_twfe_equals_statsmodels_dummy_regression_with_clustered_errors(denominator):
    panel, _ = simulated_panel(1, units=60, months=14, cohorts=(2, 11), never=0.3, denominator=denominator)
    if denominator:
        assert (panel.frame["closed"] == 0).any()  # months without deals drop out, weighted zero
    effect = estimate_twfe_did(panel, post_months=4, confidence=0.9)
    ref = dummy_regression(panel, -4, 3, event=False)
    assert effect.estimate == pytest.approx(ref.params[0], rel=1e-8)
    assert effect.std_error == pytest.approx(ref.bse[0], rel=1e-8)
    lo, hi = ref.conf_int(alpha=0.1)[0]
    assert (effect.ci_low, effect.ci_high) == (pytest.approx(lo, rel=1e-8), pytest.approx(hi, rel=1e-8))
    assert effect.p_value == pytest.approx(ref.pvalues[0], rel=1e-6)
    assert effect.details["unit_months"] == ref.nobs


def test_event_study_coefficients_and_pre_trend_wald_equal_statsmodels():
    panel, _ = simulated_panel(2, units=60, months=14, cohorts=(3, 10), never=0.3, denominator=True)
    effect = estimate_event_study(panel, leads=3, lags=3)
    ref = dummy_regression(panel, -3, 2, event=True)
    ks = [-3, -2, 0, 1, 2]
    table = {row["relative_month"]: row for row in effect.diagnostics["coefficients"]}
    assert sorted(table) == [-3, -2, -1, 0, 1, 2] and table[-1]["coefficient"] == 0
    for i, k in enumerate(ks):
        assert table[k]["coefficient"] == pytest.approx(ref.params[i], rel=1e-8, abs=1e-12)
        assert table[k]["std_error"] == pytest.approx(ref.bse[i], rel=1e-8)
        assert table[k]["ci_low"] == pytest.approx(ref.conf_int()[i][0], rel=1e-8)
    # The headline is the plain mean of the post coefficients, its variance from their covariance.
    a = np.zeros(len(ref.params))
    a[2:5] = 1 / 3
    assert effect.estimate == pytest.approx(float(a @ ref.params), rel=1e-8)
    assert effect.std_error == pytest.approx(float(np.sqrt(a @ ref.cov @ a)), rel=1e-8)
    b, v = ref.params[:2], ref.cov[:2, :2]
    wald = float(b @ np.linalg.solve(v, b))
    pre = effect.diagnostics["pre_trend"]
    assert pre["statistic"] == pytest.approx(wald, rel=1e-8)
    assert pre["p_value"] == pytest.approx(float(stats.chi2.sf(wald, 2)), rel=1e-6) and pre["df"] == 2


def test_noiseless_event_study_recovers_each_month_and_twfe_understates_a_growing_effect():
    panel, _ = simulated_panel(3, units=80, months=20, cohorts=(3, 14), noise=0.0)
    study = estimate_event_study(panel, leads=4, lags=5)
    coef = {row["relative_month"]: row["coefficient"] for row in study.diagnostics["coefficients"]}
    for k in range(-4, 5):
        assert coef[k] == pytest.approx(float(growing(np.array(k))), abs=1e-9)
    assert study.estimate == pytest.approx(np.mean(0.5 * np.arange(1, 6)), abs=1e-9)
    # Same data, one "after" indicator: earlier cohorts' growing effect leaks into the month
    # effects and, without any noise, TWFE lands at about 1.25 instead of the true mean 1.5.
    twfe = estimate_twfe_did(panel, post_months=5)
    assert twfe.estimate < 1.5 - 0.1
    assert any("staggered" in w for w in twfe.warnings)
    assert any("biased under staggered adoption" in a for a in twfe.assumptions)


def test_pre_trend_test_warns_when_trained_units_were_already_diverging():
    diverging, _ = simulated_panel(4, units=200, months=24, pre_trend=0.15, noise=0.5)
    flagged = estimate_event_study(diverging, leads=5, lags=4)
    assert flagged.diagnostics["pre_trend"]["p_value"] < 0.001
    assert flagged.warnings and flagged.warnings[0].startswith(
        "trained and comparison units were already diverging before training:")
    lead = {r["relative_month"]: r["coefficient"] for r in flagged.diagnostics["coefficients"]}
    assert lead[-5] == pytest.approx(-0.15 * 4, abs=0.15)  # 4 months before the reference month
    parallel, _ = simulated_panel(4, units=200, months=24, pre_trend=0.0, noise=0.5)
    clean = estimate_event_study(parallel, leads=5, lags=4)
    assert clean.diagnostics["pre_trend"]["p_value"] > 0.05 and not clean.warnings


def test_not_applicable_without_never_trained_units_or_pre_periods():
    everyone, _ = simulated_panel(5, units=40, months=12, cohorts=(2, 9), never=0.0)
    with pytest.raises(NotApplicable, match="no never-trained units"):
        estimate_twfe_did(everyone)
    with pytest.raises(NotApplicable, match="no never-trained units"):
        estimate_event_study(everyone)
    first_month, _ = simulated_panel(5, units=40, months=12, cohorts=(0, 0), never=0.5)
    with pytest.raises(NotApplicable, match="no month before training"):
        estimate_twfe_did(first_month)
    with pytest.raises(ValueError, match="leads must be at least 2"):
        estimate_event_study(first_month, leads=1)


def test_baseline_is_the_trained_units_pooled_level_before_training():
    panel, _ = simulated_panel(6, units=50, months=12, cohorts=(4, 8), denominator=True)
    f = panel.frame.with_columns(
        ((pl.col("period").dt.year() - pl.col("treated_at").dt.year()) * 12
         + pl.col("period").dt.month() - pl.col("treated_at").dt.month()).alias("rel"))
    pre = f.filter(pl.col("rel").is_between(-3, -1))
    assert estimate_twfe_did(panel, post_months=3).baseline == pytest.approx(panel.value(pre))


def _within_sample(panel: UnitPanel, post: int) -> pd.DataFrame:
    """The TWFE sample in pandas, rebuilt here: trained units from −post to post − 1 around training, others always."""
    f = panel.frame.with_columns(
        m=pl.col("period").dt.year() * 12 + pl.col("period").dt.month() - 1,
        g=pl.col("treated_at").dt.year() * 12 + pl.col("treated_at").dt.month() - 1,
    ).with_columns(rel=pl.col("m") - pl.col("g"))
    first, last = f["m"].min(), f["m"].max()
    comparison = pl.col("g").is_null() | (pl.col("g") > last)
    trained = (pl.col("g") > first) & (pl.col("g") <= last) & pl.col("rel").is_between(-post, post - 1)
    f = f.filter(comparison | trained).with_columns(
        w=pl.col(panel.denominator) if panel.denominator else pl.lit(1.0),
        d=(~comparison & (pl.col("rel") >= 0)).cast(pl.Float64)).filter(pl.col("w") > 0)
    df = f.select("unit", "m", "d", "w", y=pl.col(panel.numerator) / pl.col("w")).to_pandas()
    return df.set_index(["unit", "m"])


@pytest.mark.parametrize("denominator", [False, True])
def test_twfe_standard_error_equals_linearmodels_with_unit_effects_nested_in_the_clusters(denominator):
    """The clustered standard error of TWFE against linearmodels' PanelOLS, on a shared simulated panel.

    The nested small-sample factor is G/(G−1)·(N−1)/(N−K), K = the regressor and the T − 1
    month effects (the unit effects nested in the unit clusters are not counted). In
    linearmodels that is PanelOLS with ``entity_effects=True`` and the month effects as dummy
    regressors, fitted with ``cov_type="clustered", cluster_entity=True``, ``debiased=True`` (the
    default: (N−1)/(N−K) over the regressors) and ``group_debias=True`` (G/(G−1)); ``auto_df``
    (the default) then leaves the entity effects, nested in the entity clusters, out of K.
    With ``time_effects=True`` as well, PanelOLS counts every effect whenever the model has two
    (``auto_df`` only drops a single nested effect); ``auto_df=False, count_effects=False`` then
    counts none, K = 1, which differs from the nested K by exactly the T − 1 month effects.
    """
    from linearmodels import PanelOLS

    panel, _ = simulated_panel(7, units=80, months=16, cohorts=(2, 13), never=0.3, denominator=denominator)
    ours = estimate_twfe_did(panel, post_months=5)
    df = _within_sample(panel, 5)
    months = pd.get_dummies(df.index.get_level_values("m"), prefix="m", drop_first=True, dtype=float)
    months.index = df.index
    exog = pd.concat([df[["d"]], months], axis=1)
    nested = PanelOLS(df.y, exog, entity_effects=True, weights=df.w).fit(
        cov_type="clustered", cluster_entity=True, group_debias=True)
    assert ours.estimate == pytest.approx(nested.params["d"], rel=1e-8)
    assert ours.std_error == pytest.approx(nested.std_errors["d"], rel=1e-8)
    assert ours.details["unit_months"] == nested.nobs

    two_way = PanelOLS(df.y, df[["d"]], entity_effects=True, time_effects=True, weights=df.w)
    none = two_way.fit(cov_type="clustered", cluster_entity=True, group_debias=True, auto_df=False,
                       count_effects=False)
    n, t = nested.nobs, df.index.get_level_values("m").nunique()
    assert ours.estimate == pytest.approx(none.params["d"], rel=1e-8)
    assert ours.std_error == pytest.approx(none.std_errors["d"] * np.sqrt((n - 1) / (n - 1 - (t - 1))), rel=1e-8)
    # Its default counts every effect (K = 1 + units + T − 1, the factor this estimator used to
    # apply): wider by √((N − T)/(N − T − units)), about √(T/(T − 1)) with T periods per unit.
    full = two_way.fit(cov_type="clustered", cluster_entity=True, group_debias=True)
    units = df.index.get_level_values("unit").nunique()
    assert full.std_errors["d"] == pytest.approx(ours.std_error * np.sqrt((n - t) / (n - t - units)), rel=1e-8)
    assert full.std_errors["d"] > ours.std_error * 1.02


def test_an_event_time_without_observations_is_dropped_not_averaged_in_as_zero():
    # Noiseless: unit and month effects plus 3,621 from the training month on. Half the reps are
    # trained in the last month of the data, so event time +1 exists for nobody: the mean of the
    # identified lags is the truth, 3,621; counting the empty lag as 0 would report 1,810.5.
    rng = np.random.default_rng(8)
    units, months = 40, 10
    dates = [date(2024, 1 + k, 1) for k in range(months)]
    level, season = rng.normal(0, 500, units), rng.normal(0, 300, months)
    rows = []
    for u in range(units):
        trained = u % 2 == 0
        for k, d in enumerate(dates):
            effect = 3621.0 if trained and k == months - 1 else 0.0
            rows.append({"unit": f"u{u:02d}", "period": d, "treated_at": dates[-1].replace(day=12) if trained else None,
                         "revenue": 20000 + level[u] + season[k] + effect})
    panel = UnitPanel(frame=pl.DataFrame(rows), outcome="revenue", numerator="revenue")
    e = estimate_event_study(panel, leads=3, lags=2)
    assert e.estimate == pytest.approx(3621.0, rel=1e-9)
    table = {r["relative_month"]: r["coefficient"] for r in e.diagnostics["coefficients"]}
    assert sorted(table) == [-3, -2, -1, 0] and e.diagnostics["unidentified"] == [1]
    assert any(w.startswith("event time +1 (in months from training) has no trained unit-month") for w in e.warnings)
    assert e.details["lags_averaged"] == 1 and "(event times +0)" in e.assumptions[-1]


def test_sensitivity_to_parallel_trends_says_how_large_a_violation_the_effect_survives():
    """A clear step after training survives some violation of parallel trends; no effect survives none.

    Under relative magnitudes with M̄ = 0 the interval is the conventional one, so a step whose
    conventional interval excludes zero has a breakdown above 0, and a null effect's is 0.
    """
    rng = np.random.default_rng(5)
    months = [date(2023 + m // 12, m % 12 + 1, 1) for m in range(18)]

    def panel(effect: float) -> UnitPanel:
        rows = [{"unit": f"u{u:03d}", "period": m, "treated_at": date(2024, 1, 1) if u < 60 else None,
                 "y": 5.0 + (effect if u < 60 and m >= date(2024, 1, 1) else 0.0) + float(rng.normal(0, 0.3))}
                for u in range(120) for m in months]
        return UnitPanel(frame=pl.DataFrame(rows), outcome="y", numerator="y")

    strong = estimate_event_study(panel(1.0), leads=4, lags=4).diagnostics["sensitivity"]
    assert strong["restriction"] == "relative_magnitudes" and strong["breakdown"] > 0
    assert strong["verdict"].startswith("the effect stays above zero")
    assert [r["bound"] for r in strong["rows"]][:2] == [0.0, 0.25]
    null = estimate_event_study(panel(0.0), leads=4, lags=4)
    assert null.ci_low <= 0 <= null.ci_high  # no effect: the interval includes 0 already, so the breakdown is 0
    assert null.diagnostics["sensitivity"]["breakdown"] == 0


def test_few_clusters_take_the_wild_cluster_bootstrap_and_say_so():
    """With 10 units the interval comes from the wild cluster restricted bootstrap, not the clustered t-test.

    The bootstrap's p-value does not depend on the small-sample factor (it scales the statistic and
    every bootstrap statistic alike), so the same bootstrap on the regression with every unit and
    month dummy written out — an independent construction — gives the same p-value.
    """
    from training_roi.isolate.wild import wild_cluster_bootstrap

    rng = np.random.default_rng(11)
    months = [date(2024, m, 1) for m in range(1, 9)]
    rows = [{"unit": f"u{u}", "period": m, "treated_at": date(2024, 5, 1) if u < 5 else None,
             "y": float(u % 3) + (0.8 if u < 5 and m >= date(2024, 5, 1) else 0.0) + float(rng.normal(0, 1))}
            for u in range(10) for m in months]
    panel = UnitPanel(frame=pl.DataFrame(rows), outcome="y", numerator="y")
    e = estimate_twfe_did(panel, post_months=4)
    assert e.diagnostics["inference"].startswith("wild cluster")
    assert any("wild cluster" in w for w in e.warnings)
    assert e.ci_low < e.estimate < e.ci_high
    frame = pd.DataFrame(rows)
    frame["d"] = ((frame["unit"].str[1:].astype(int) < 5) & (frame["period"] >= date(2024, 5, 1))).astype(float)
    x = pd.get_dummies(frame[["unit", "period"]].astype(str), drop_first=True).astype(float)
    x.insert(0, "d", frame["d"])
    x.insert(0, "const", 1.0)
    full = wild_cluster_bootstrap(frame["y"].to_numpy(), x.to_numpy(), frame["unit"].to_numpy(), coef=1,
                                  weight_type="webb", seed=7, interval=False)
    assert full.estimate == pytest.approx(e.estimate, rel=1e-9)
    assert e.p_value == pytest.approx(full.p_value, abs=0.01)
    assert e.details["cr1_p_value"] != e.p_value
