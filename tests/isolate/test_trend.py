"""Trend-line projection against synthetic series with a known step, numpy's polyfit and statsmodels."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import patsy
import polars as pl
import pytest
import statsmodels.formula.api as smf
from scipy import stats

from training_roi.isolate import NotApplicable, UnitPanel
from training_roi.isolate.trend import estimate_trend


def months(first: date, n: int) -> list[date]:
    return [date(first.year + (first.month - 1 + i) // 12, (first.month - 1 + i) % 12 + 1, 1) for i in range(n)]


def season(m: date) -> float:
    return 3.0 * np.sin(2 * np.pi * m.month / 12)


def revenue_panel(treated: list[date | None], periods: list[date], *, step: float, step_from: date,
                  seasonal: bool = True, seed: int = 1) -> UnitPanel:
    """Revenue per unit-month: 50 + 0.2 per month (+ a seasonal swing) + ``step`` from ``step_from``.

    Untrained units follow a falling trend without any step: if they leaked into the trained
    series the estimate would be far off.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for u, t in enumerate(treated):
        for i, m in enumerate(periods):
            y = (50 + 0.2 * i + (season(m) if seasonal else 0.0)) if t is not None else 80 - 0.5 * i
            y += step if t is not None and m >= step_from else 0.0
            rows.append((f"u{u:02d}", m, t, y + rng.normal(0, 2.0)))
    frame = pl.DataFrame(rows, schema={"unit": pl.String, "period": pl.Date, "treated_at": pl.Date,
                                       "revenue": pl.Float64}, orient="row")
    return UnitPanel(frame=frame, outcome="revenue_per_rep", numerator="revenue")


def win_rate_panel(periods: list[date], go_live: date, *, step: float, seasonal: bool, seed: int,
                   reps: int = 25) -> UnitPanel:
    """Won / closed deals of ``reps`` reps, all trained at ``go_live``: rate 0.30 + 0.004 per month (+ season)."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(reps):
        for i, m in enumerate(periods):
            p = 0.30 + 0.004 * i + (0.02 * season(m) if seasonal else 0.0) + (step if m >= go_live else 0.0)
            closed = int(rng.integers(2, 12))
            rows.append((f"r{u:02d}", m, go_live, float(rng.binomial(closed, p)), float(closed)))
    frame = pl.DataFrame(rows, schema={"unit": pl.String, "period": pl.Date, "treated_at": pl.Date,
                                       "won": pl.Float64, "closed": pl.Float64}, orient="row")
    return UnitPanel(frame=frame, outcome="win_rate", numerator="won", denominator="closed")


def pooled(panel: UnitPanel) -> pd.DataFrame:
    """The trained units' monthly pooled rate, computed here with pandas."""
    df = panel.frame.filter(pl.col("treated_at").is_not_null()).to_pandas()
    g = df.groupby("period").agg(num=(panel.numerator, "sum"), den=(panel.denominator, "sum")).reset_index()
    g["y"] = g.num / g.den
    g["period"] = pd.to_datetime(g.period)
    return g


def test_recovers_a_known_step_over_trend_and_seasonality():
    periods = months(date(2021, 1, 1), 48)
    # 16 trained units, in the middle of March 2024 (March is the transition month); 8 never trained.
    treated = [date(2024, 3, 10)] * 8 + [date(2024, 3, 20)] * 8 + [None] * 8
    panel = revenue_panel(treated, periods, step=4.0, step_from=date(2024, 4, 1), seed=0)
    e = estimate_trend(panel, pre_months=36, post_months=6)
    assert e.details["seasonality"] == 1.0 and e.details["pre_months"] == 36 and e.details["post_months"] == 6
    assert e.details["trained_units"] == 16
    assert e.ci_low < 4.0 < e.ci_high
    assert e.estimate == pytest.approx(4.0, abs=0.6)
    assert e.details["slope_per_month"] == pytest.approx(0.2, abs=0.03)
    assert e.p_value < 0.001 and e.details["r_squared"] > 0.9
    assert "trend and seasonality would have continued" in e.assumptions[0]
    assert not any("seasonality not estimated" in w for w in e.warnings)
    series = e.diagnostics["series"]
    phases = dict(zip(series["month"], series["phase"], strict=True))
    assert phases["2024-02-01"] == "pre" and phases["2024-03-01"] == "transition" and phases["2024-04-01"] == "post"
    assert series["month"][0] == "2021-03-01" and series["month"][-1] == "2024-09-01"
    assert all(lo < m < hi for lo, m, hi in zip(series["low"], series["model"], series["high"], strict=True))
    # Without the month-of-year effects, the seasonal swing lands in the estimate and the residuals.
    flat = estimate_trend(panel, pre_months=36, post_months=6, seasonality=False)
    assert flat.details["r_squared"] < e.details["r_squared"]
    assert flat.details["residual_sd"] > 2 * e.details["residual_sd"]


def test_projection_without_seasonality_is_numpys_weighted_polyfit():
    periods = months(date(2023, 1, 1), 20)
    panel = win_rate_panel(periods, date(2024, 1, 1), step=0.05, seasonal=False, seed=3)
    e = estimate_trend(panel, pre_months=12, post_months=6, seasonality=False)
    g = pooled(panel)
    pre, post = g.iloc[:12], g.iloc[12:18]
    # WLS weighted by closed deals minimises Σ closed·r²; polyfit's w multiplies r, so w = √closed.
    t = np.arange(20, dtype=float)
    coef = np.polyfit(t[:12], pre.y, 1, w=np.sqrt(pre.den))
    projected = np.polyval(coef, t[12:18])
    assert e.estimate == pytest.approx(float(np.mean(post.y - projected)), rel=1e-9)
    assert e.details["projected_post"] == pytest.approx(float(projected.mean()), rel=1e-9)
    assert e.details["slope_per_month"] == pytest.approx(coef[0], rel=1e-9)
    assert e.baseline == pytest.approx(pre.num.sum() / pre.den.sum())
    resid = pre.y - np.polyval(coef, t[:12])
    mean_w = np.average(pre.y, weights=pre.den)
    r2 = 1 - np.sum(pre.den * resid**2) / np.sum(pre.den * (pre.y - mean_w) ** 2)
    assert e.details["r_squared"] == pytest.approx(r2, rel=1e-9)
    white = np.sqrt(pre.den.to_numpy()) * resid.to_numpy()
    assert e.details["durbin_watson"] == pytest.approx(np.sum(np.diff(white) ** 2) / np.sum(white**2), rel=1e-9)


def test_standard_error_is_statsmodels_prediction_of_the_post_mean():
    periods = months(date(2021, 7, 1), 36)
    panel = win_rate_panel(periods, date(2024, 1, 1), step=0.0, seasonal=True, seed=5)
    e = estimate_trend(panel, pre_months=30, post_months=6)
    assert e.details["seasonality"] == 1.0
    g = pooled(panel)
    g["t"] = np.arange(len(g), dtype=float) * 12  # another time unit and origin: the same fit
    g["moy"] = g.period.dt.month
    pre, post = g.iloc[:30], g.iloc[30:36]
    fit = smf.wls("y ~ t + C(moy)", data=pre, weights=pre.den).fit()
    assert e.details["projected_post"] == pytest.approx(float(fit.predict(post).mean()), rel=1e-9)
    mean_row = np.asarray(patsy.dmatrix(fit.model.data.model_spec, post)).mean(axis=0)
    se_mean = float(fit.get_prediction(mean_row[None, :], transform=False).se_mean[0])
    # The mean of 6 months' actual outcomes adds each month's noise, scale / closed deals, averaged.
    se = np.sqrt(se_mean**2 + fit.scale * np.mean(1 / post.den) / len(post))
    assert e.std_error == pytest.approx(se, rel=1e-8)
    assert e.details["dof"] == fit.df_resid == 30 - 13
    q = stats.t(fit.df_resid).ppf(0.975)
    assert e.ci_high - e.estimate == pytest.approx(q * se, rel=1e-8)
    assert e.ci_low < 0.0 < e.ci_high  # no step was simulated


def test_org_wide_go_live_with_no_comparison_group():
    # A CRM roll-out: every rep goes live on 2024-01-01; twelve months before it, six after.
    periods = months(date(2023, 1, 1), 18)
    panel = win_rate_panel(periods, date(2024, 1, 1), step=0.08, seasonal=False, seed=11, reps=100)
    assert panel.units["treated_at"].n_unique() == 1 and panel.units["treated_at"].null_count() == 0
    e = estimate_trend(panel)
    assert e.details["trained_units"] == 100 and e.details["seasonality"] == 0.0
    assert e.ci_low < 0.08 < e.ci_high and e.estimate == pytest.approx(0.08, abs=0.04)
    assert set(e.diagnostics["series"]["phase"]) == {"pre", "post"}  # go-live on the 1st: no transition
    assert any("seasonality not estimated: 12 pre-program" in w for w in e.warnings)
    assert not any("training went on" in w for w in e.warnings)


def test_interval_covers_the_simulated_step_about_95_percent_of_the_time():
    # 200 independent go-lives: the t interval from the prediction's standard error should cover
    # the true step in about 95% of them (binomial sd 1.5 points); too narrow an interval fails here.
    periods = months(date(2023, 1, 1), 18)
    effects = [estimate_trend(win_rate_panel(periods, date(2024, 1, 1), step=0.08, seasonal=False, seed=s, reps=10))
               for s in range(200)]
    assert 0.91 <= np.mean([e.ci_low < 0.08 < e.ci_high for e in effects]) <= 0.99


def test_unmodelled_seasonality_shows_as_autocorrelated_residuals():
    periods = months(date(2023, 1, 1), 18)
    panel = revenue_panel([date(2024, 1, 1)] * 20, periods, step=0.0, step_from=date(2024, 1, 1))
    e = estimate_trend(panel)
    assert e.details["seasonality"] == 0.0
    assert e.details["durbin_watson"] < 1.0
    assert any("strongly autocorrelated" in w for w in e.warnings)


def test_too_few_pre_months_or_nobody_trained_is_not_applicable():
    periods = months(date(2023, 9, 1), 10)
    panel = win_rate_panel(periods, date(2024, 1, 1), step=0.05, seasonal=False, seed=2)
    with pytest.raises(NotApplicable, match=r"at least 6 pre-program months .* have 4"):
        estimate_trend(panel)
    with pytest.raises(ValueError, match="pre_months is 3"):
        estimate_trend(panel, pre_months=3)
    untrained = UnitPanel(frame=panel.frame.with_columns(pl.lit(None, pl.Date).alias("treated_at")),
                          outcome="win_rate", numerator="won", denominator="closed")
    with pytest.raises(NotApplicable, match="no unit of the panel was trained"):
        estimate_trend(untrained)
    with pytest.raises(NotApplicable, match="nothing after the program start"):
        estimate_trend(panel, program_start=date(2025, 1, 1))
