"""Trend-line projection against synthetic panels with a known step, and statsmodels' weighted least squares."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import polars as pl
import pytest
import statsmodels.formula.api as smf

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


def rollout_panel(*, seed: int, units: int = 60, n_months: int = 30, step: float = 0.05, shock_sd: float = 0.0,
                  first_training: int = 14, spread: int = 8, untrained: int = 10) -> UnitPanel:
    """Win rates of reps trained over ``spread`` months, each lifted by ``step`` from its own training.

    Each rep has its own level; the org drifts up 0.3 points a month, with a month-of-year swing
    (±4 points) and, with ``shock_sd``, a shock shared by every rep in a calendar month. A rep
    trained on the 1st is lifted from that month, otherwise from the next (the training month
    is part before, part after; here it gets half the step, and the estimator counts it as
    after). Untrained reps are lifted from the start of the data: if the estimator read them, it
    would be off by ``step``.
    """
    rng = np.random.default_rng(seed)
    periods = months(date(2023, 1, 1), n_months)
    t = np.arange(n_months)
    start = rng.integers(first_training, first_training + spread, units)
    day = np.where(rng.random(units) < 0.3, 1, rng.integers(2, 29, units))
    level = rng.normal(0.35, 0.06, units)
    moy = np.array([m.month for m in periods])
    shock = rng.normal(0.0, shock_sd, n_months)
    lift = np.where(t[None, :] > start[:, None], step, 0.0)
    lift = np.where((t[None, :] == start[:, None]) & (day[:, None] == 1), step, lift)
    lift = np.where((t[None, :] == start[:, None]) & (day[:, None] > 1), step / 2, lift)
    rate = level[:, None] + 0.003 * t[None, :] + 0.04 * np.sin(2 * np.pi * moy / 12)[None, :] + shock[None, :] + lift
    closed = rng.poisson(6, (units, n_months)).astype(float)
    won = rng.binomial(closed.astype(int), np.clip(rate, 0.01, 0.99)).astype(float)
    trained = [date(periods[s].year, periods[s].month, int(d)) for s, d in zip(start, day, strict=True)]
    frame = pl.DataFrame({
        "unit": np.repeat([f"r{i:03d}" for i in range(units)], n_months), "period": periods * units,
        "treated_at": [d for d in trained for _ in t], "won": won.ravel(), "closed": closed.ravel(),
    }, schema_overrides={"period": pl.Date, "treated_at": pl.Date})
    rest = pl.DataFrame({
        "unit": np.repeat([f"z{i:03d}" for i in range(untrained)], n_months), "period": periods * untrained,
        "treated_at": [None] * (untrained * n_months), "won": np.full(untrained * n_months, 5.0),
        "closed": np.full(untrained * n_months, 6.0),
    }, schema_overrides={"period": pl.Date, "treated_at": pl.Date})
    return UnitPanel(frame=pl.concat([frame, rest]), outcome="win_rate", numerator="won", denominator="closed")


def event_rows(panel: UnitPanel, pre_months: int, post_months: int) -> pd.DataFrame:
    """The trained units' unit-months in pandas with months since training and their window, worked out here.

    The month that holds the training day is month 0 and the first of the post window.
    """
    df = panel.frame.filter(pl.col("treated_at").is_not_null(), pl.col("closed") > 0).to_pandas()
    period, trained = pd.to_datetime(df.period), pd.to_datetime(df.treated_at)
    df["k"] = (period.dt.year - trained.dt.year) * 12 + (period.dt.month - trained.dt.month)
    pre = (df.k >= -pre_months) & (df.k < 0)
    post = (df.k >= 0) & (df.k < post_months)
    df["phase"] = np.select([pre, post], ["pre", "post"], "none")
    df["moy"] = period.dt.month
    df["y"] = df.won / df.closed
    return df


def test_recovers_a_known_step_over_trend_and_seasonality():
    periods = months(date(2021, 1, 1), 48)
    # 16 trained units, in the middle of March 2024, lifted from March on (the month that holds
    # the training is the first after it); 8 never trained.
    treated = [date(2024, 3, 10)] * 8 + [date(2024, 3, 20)] * 8 + [None] * 8
    panel = revenue_panel(treated, periods, step=4.0, step_from=date(2024, 3, 1), seed=0)
    e = estimate_trend(panel, pre_months=36, post_months=6)
    assert e.details["seasonality"] == 1.0 and e.details["pre_months"] == 36 and e.details["post_months"] == 6
    assert e.details["trained_units"] == 16 and e.details["pre_unit_months"] == 16 * 36
    assert e.ci_low < 4.0 < e.ci_high
    assert e.estimate == pytest.approx(4.0, abs=0.6)
    assert e.details["slope_per_month"] == pytest.approx(0.2, abs=0.03)
    assert e.p_value < 0.01
    assert "pre-training trend and month-of-year pattern" in e.assumptions[0]
    assert "market-wide shift" in e.assumptions[0]
    assert not any("seasonality not estimated" in w for w in e.warnings)
    series = e.diagnostics["series"]
    phases = dict(zip(series["month_since_training"], series["phase"], strict=True))
    assert phases[-1.0] == "pre" and phases[0.0] == "post" and phases[5.0] == "post"
    assert series["month_since_training"][0] == -36 and series["month_since_training"][-1] == 5
    assert all(lo < m < hi for lo, m, hi in zip(series["low"], series["model"], series["high"], strict=True))
    # The units' own noise is the simulated sd of 2. Without the month-of-year effects, the
    # seasonal swing (3·sin, sd 2.1 over the year) is shared by every unit in a month: it lands
    # in the month shocks, and widens the interval.
    assert e.details["residual_sd"] == pytest.approx(2.0, rel=0.1)
    assert e.details["month_shock_sd"] < 0.5
    flat = estimate_trend(panel, pre_months=36, post_months=6, seasonality=False)
    assert flat.details["r_squared"] < e.details["r_squared"]
    assert flat.details["residual_sd"] == pytest.approx(2.0, rel=0.1)
    assert flat.details["month_shock_sd"] == pytest.approx(3 / np.sqrt(2), rel=0.3)
    assert flat.std_error > 2 * e.std_error


@pytest.mark.parametrize("seasonal", [True, False])
def test_estimate_is_statsmodels_wls_with_unit_levels_projected_over_each_units_post_months(seasonal):
    panel = rollout_panel(seed=4, units=40)
    e = estimate_trend(panel, pre_months=12, post_months=6, seasonality=seasonal, replicates=99)
    assert e.details["seasonality"] == float(seasonal)
    df = event_rows(panel, 12, 6)
    pre, post = df[df.phase == "pre"], df[df.phase == "post"].copy()
    formula = "y ~ C(unit) + k" + (" + C(moy)" if seasonal else "")
    fit = smf.wls(formula, data=pre, weights=pre.closed).fit()
    post["projected"] = fit.predict(post)
    gap = float((post.won - post.closed * post.projected).sum() / post.closed.sum())
    assert e.estimate == pytest.approx(gap, rel=1e-9)
    assert e.details["slope_per_month"] == pytest.approx(fit.params["k"], rel=1e-9)
    assert e.details["projected_post"] == pytest.approx(np.average(post.projected, weights=post.closed), rel=1e-9)
    assert e.baseline == pytest.approx(pre.won.sum() / pre.closed.sum(), rel=1e-12)
    assert e.details["pre_unit_months"] == len(pre) and e.details["post_unit_months"] == len(post)
    assert e.details["dof"] == fit.df_resid
    assert e.details["trained_units"] == 40  # the ten untrained reps are not read


def test_a_rollout_over_months_is_measured_from_each_units_own_training():
    # Reps trained over eight months, each lifted by 5 points from its own training. Pooled on
    # the calendar from the first training (the program_start), the early post months still
    # hold untrained reps and the gap is diluted; measured from each rep's date it is not.
    # Five orgs of 200 reps: the mean of five estimates has a standard error under 0.8 points.
    own, calendar = [], []
    for seed in range(5):
        panel = rollout_panel(seed=seed, units=200, n_months=36, first_training=20, step=0.05)
        e = estimate_trend(panel, replicates=199)
        assert e.details["seasonality"] == 1.0 and e.details["calendar_pre_months"] >= 13
        assert e.details["slope_per_month"] == pytest.approx(0.003, abs=0.003)
        first = panel.units["treated_at"].min()
        assert isinstance(first, date)
        c = estimate_trend(panel, program_start=first, replicates=199)
        assert any("training went on" in w for w in c.warnings)
        assert "measured from the program start" in c.assumptions[2]
        own.append(e.estimate)
        calendar.append(c.estimate)
    assert np.mean(own) == pytest.approx(0.05, abs=0.02)
    assert np.mean(calendar) < 0.025


@pytest.mark.slow
def test_interval_covers_a_known_step_with_month_shocks_and_its_se_matches_the_spread():
    # 150 rollouts of 60 reps with a shock shared by every rep in each calendar month (sd 4
    # points): the interval must cover the true step ~95% of the time (binomial sd 1.8 points),
    # its standard error match the spread of the estimates, and the shocks be found. Resampling
    # reps alone would miss them: its standard error is well below the spread.
    effects = [estimate_trend(rollout_panel(seed=s, units=60, shock_sd=0.04, n_months=36, first_training=20),
                              replicates=199, seed=s) for s in range(150)]
    estimates = np.array([e.estimate for e in effects])
    spread = estimates.std(ddof=1)
    assert 0.91 <= np.mean([e.ci_low < 0.05 < e.ci_high for e in effects]) <= 0.99
    assert np.mean([e.std_error for e in effects]) == pytest.approx(spread, rel=0.2)
    assert abs(estimates.mean() - 0.05) < 3 * spread / np.sqrt(estimates.size)
    assert np.median([e.details["month_shock_sd"] for e in effects]) == pytest.approx(0.04, rel=0.25)
    assert np.mean([e.details["bootstrap_se"] for e in effects]) < 0.9 * spread


def test_org_wide_go_live_with_no_comparison_group():
    # A CRM roll-out: every rep goes live on 2024-01-01; twelve months before it, six after.
    periods = months(date(2023, 1, 1), 18)
    panel = win_rate_panel(periods, date(2024, 1, 1), step=0.08, seasonal=False, seed=11, reps=100)
    assert panel.units["treated_at"].n_unique() == 1 and panel.units["treated_at"].null_count() == 0
    e = estimate_trend(panel)
    assert e.details["trained_units"] == 100 and e.details["seasonality"] == 0.0
    assert e.ci_low < 0.08 < e.ci_high and e.estimate == pytest.approx(0.08, abs=0.04)
    assert set(e.diagnostics["series"]["phase"]) == {"pre", "post"}
    assert any("seasonality not estimated" in w and "span 12 calendar months" in w for w in e.warnings)
    assert not any("training went on" in w for w in e.warnings)


def test_interval_covers_the_simulated_step_about_95_percent_of_the_time_with_ten_units():
    # 200 independent go-lives of 10 reps: with so few units the bootstrap alone is too narrow;
    # spread by the small-sample factor the interval covers the true step in about 95% of them
    # (binomial sd 1.5 points).
    periods = months(date(2023, 1, 1), 18)
    effects = [estimate_trend(win_rate_panel(periods, date(2024, 1, 1), step=0.08, seasonal=False, seed=s, reps=10),
                              replicates=199, seed=s) for s in range(200)]
    assert 0.91 <= np.mean([e.ci_low < 0.08 < e.ci_high for e in effects]) <= 0.99
    assert effects[0].details["small_sample_factor"] == pytest.approx(np.sqrt(10 / 9) * 2.262 / 1.960, rel=1e-3)
    assert any("only 10 trained units" in w for w in effects[0].warnings)


def test_unmodelled_seasonality_shows_as_autocorrelated_residuals():
    periods = months(date(2023, 1, 1), 18)
    panel = revenue_panel([date(2024, 1, 1)] * 20, periods, step=0.0, step_from=date(2024, 1, 1))
    e = estimate_trend(panel)
    assert e.details["seasonality"] == 0.0
    assert e.details["durbin_watson"] < 1.0
    assert any("strongly autocorrelated" in w for w in e.warnings)


def test_units_without_an_outcome_before_training_are_left_out():
    panel = rollout_panel(seed=3, units=30)
    # Two reps trained in the first month of the data: no month before training to set their level.
    frame = panel.frame.with_columns(
        pl.when(pl.col("unit").is_in(["r000", "r001"])).then(pl.lit(date(2023, 1, 15)))
        .otherwise(pl.col("treated_at")).alias("treated_at"))
    e = estimate_trend(UnitPanel(frame=frame, outcome="win_rate", numerator="won", denominator="closed"),
                       replicates=99)
    assert e.details["trained_units"] == 28 and e.details["units_left_out"] == 2
    assert any("2 trained units have no win_rate in the 12 months before their training" in w for w in e.warnings)


def test_too_few_pre_months_or_nobody_trained_is_not_applicable():
    periods = months(date(2023, 9, 1), 10)
    panel = win_rate_panel(periods, date(2024, 1, 1), step=0.05, seasonal=False, seed=2)
    with pytest.raises(NotApplicable, match=r"at least 6 pre-program months .* have 4"):
        estimate_trend(panel)
    with pytest.raises(ValueError, match="pre_months is 3"):
        estimate_trend(panel, pre_months=3)
    with pytest.raises(ValueError, match="replicates is 1"):
        estimate_trend(panel, replicates=1)
    untrained = UnitPanel(frame=panel.frame.with_columns(pl.lit(None, pl.Date).alias("treated_at")),
                          outcome="win_rate", numerator="won", denominator="closed")
    with pytest.raises(NotApplicable, match="no unit of the panel was trained"):
        estimate_trend(untrained)
    with pytest.raises(NotApplicable, match="nothing after the program start"):
        estimate_trend(panel, program_start=date(2025, 1, 1))
    with pytest.raises(NotApplicable, match="no unit was trained before 2023-04-01"):
        estimate_trend(panel, program_start=date(2022, 10, 1))
    late = UnitPanel(frame=panel.frame.with_columns(pl.lit(date(2025, 1, 1), pl.Date).alias("treated_at")),
                     outcome="win_rate", numerator="won", denominator="closed")
    with pytest.raises(NotApplicable, match="nothing after the program start"):
        estimate_trend(late)
