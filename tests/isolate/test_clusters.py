"""Clusters other than units: a go-live by team, checked against linearmodels, wildboottest and simulated truth.

A CRM or a program rolled out team by team trains whole teams at once, and a team's reps share
their manager, territory and month-to-month luck: their outcomes move together. Standard errors
and resampling then have to be by team, and with few teams the wild cluster restricted bootstrap
replaces the clustered t-test (and the unit bootstrap, which treats the team's reps as
independent draws and is too narrow).
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import polars as pl
import pytest

from training_roi.isolate import (
    ESTIMATORS,
    EstimatorSettings,
    estimate_staggered,
    estimate_staggered_dr,
    estimate_twfe_did,
)
from training_roi.isolate.wild import linearized_inference, wild_cluster_bootstrap
from training_roi.measure.panels import UnitPanel


def team_panel(seed: int, *, teams: int, reps: int = 6, months: int = 14, waves: tuple[int, ...] = (6, 9),
               never: int = 0, shock: float = 0.0, effect: float = 0.5, noise: float = 1.0,
               denominator: bool = False) -> pl.DataFrame:
    """Teams going live in ``waves`` (month indexes), with a shock their reps share each month.

    Waves are spread evenly over the teams and the last ``never`` teams never go live; team and rep
    levels, a common season, a team-month shock of sd ``shock`` and a constant ``effect``.
    """
    rng = np.random.default_rng(seed)
    live = np.array([waves[t % len(waves)] for t in range(teams)], dtype=float)
    rng.shuffle(live)
    if never:
        live[-never:] = np.inf
    dates = [date(2023 + k // 12, k % 12 + 1, 1) for k in range(months)]
    team_shock = rng.normal(0, shock, (teams, months))
    season = np.sin(np.arange(months) / 2)
    rows = []
    for t in range(teams):
        level = rng.normal(0, 1)
        for r in range(reps):
            rep = level + rng.normal(0, 1)
            for m in range(months):
                mean = rep + season[m] + team_shock[t, m] + (effect if m >= live[t] else 0.0)
                if denominator:
                    n = float(rng.poisson(6))
                    p = 1 / (1 + np.exp(-(mean - 1)))
                    value = float(rng.binomial(int(n), p))
                else:
                    n, value = 1.0, mean + rng.normal(0, noise)
                rows.append((f"t{t:02d}r{r}", dates[m], dates[int(live[t])] if np.isfinite(live[t]) else None,
                             value, n, f"team{t:02d}"))
    return pl.DataFrame(rows, schema={"unit": pl.String, "period": pl.Date, "treated_at": pl.Date, "y": pl.Float64,
                                      "n": pl.Float64, "team": pl.String}, orient="row")


def panel_of(frame: pl.DataFrame, *, cluster: str | None = "team", denominator: bool = False) -> UnitPanel:
    return UnitPanel.from_data(frame, unit="unit", period="period", outcome="y", treated_at="treated_at",
                               denominator="n" if denominator else None, cluster=cluster)


# --------------------------------------------------------------------------------------------
# The panel
# --------------------------------------------------------------------------------------------


def test_a_unit_needs_one_cluster():
    frame = team_panel(1, teams=4, reps=2, months=4, waves=(2,))
    assert "clusters=4" in repr(panel_of(frame))
    with pytest.raises(ValueError, match=r"rows have no team \(unit 't00r0' first\)"):
        panel_of(frame.with_columns(team=pl.when(pl.col("unit") == "t00r0").then(None).otherwise(pl.col("team"))))
    moved = frame.with_columns(team=pl.when((pl.col("unit") == "t01r1") & (pl.col("period") > date(2023, 2, 1)))
                               .then(pl.lit("team03")).otherwise(pl.col("team")))
    with pytest.raises(ValueError, match="unit 't01r1' is in 2 clusters"):
        panel_of(moved)
    with pytest.raises(ValueError, match="no column 'squad'"):
        UnitPanel.from_data(frame, unit="unit", period="period", outcome="y", treated_at="treated_at", cluster="squad")


# --------------------------------------------------------------------------------------------
# Two-way fixed effects clustered by team
# --------------------------------------------------------------------------------------------


def _dummies(frame: pl.DataFrame, post: int) -> pd.DataFrame:
    """The TWFE sample (trained units −post … post − 1 around go-live, never-trained always) in pandas."""
    f = frame.with_columns(m=pl.col("period").dt.year() * 12 + pl.col("period").dt.month(),
                           g=pl.col("treated_at").dt.year() * 12 + pl.col("treated_at").dt.month())
    f = f.with_columns(rel=pl.col("m") - pl.col("g"))
    f = f.filter(pl.col("g").is_null() | pl.col("rel").is_between(-post, post - 1))
    f = f.with_columns(d=(pl.col("rel").fill_null(-1) >= 0).cast(pl.Float64))
    return f.select("unit", "m", "team", "d", "y").to_pandas().set_index(["unit", "m"])


def test_twfe_clustered_by_team_equals_linearmodels_with_units_nested_in_teams():
    from linearmodels import PanelOLS

    frame = team_panel(2, teams=40, reps=4, never=10, shock=0.4)
    ours = estimate_twfe_did(panel_of(frame), post_months=4)
    by_unit = estimate_twfe_did(panel_of(frame, cluster=None), post_months=4)
    df = _dummies(frame, 4)
    months = pd.get_dummies(df.index.get_level_values("m"), prefix="m", drop_first=True, dtype=float)
    months.index = df.index
    fit = PanelOLS(df.y, pd.concat([df[["d"]], months], axis=1), entity_effects=True).fit(
        cov_type="clustered", clusters=df[["team"]].astype("category").apply(lambda c: c.cat.codes),
        group_debias=True)
    assert ours.estimate == pytest.approx(fit.params["d"], rel=1e-9) == by_unit.estimate
    assert ours.std_error == pytest.approx(fit.std_errors["d"], rel=1e-8)
    assert ours.diagnostics["clusters"] == 40 and by_unit.diagnostics["clusters"] == 160
    assert ours.std_error > by_unit.std_error * 1.2  # team-month shocks: the reps of a team are not 4 draws


def test_twfe_with_13_teams_takes_the_wild_bootstrap_p_value_of_the_full_dummy_regression():
    # 13 teams: Rademacher signs, all 2^13 = 8,192 patterns enumerated here and in the reference, so the
    # p-values are the same number. The reference regresses on every unit and month dummy written out; the
    # restricted bootstrap's t-statistics do not depend on how the fixed effects are removed.
    wildboottest = pytest.importorskip("wildboottest.wildboottest")
    frame = team_panel(3, teams=13, reps=3, never=4, shock=0.4, effect=0.6)
    ours = estimate_twfe_did(panel_of(frame), post_months=4)
    assert ours.diagnostics["inference"] == "wild cluster restricted bootstrap (Rademacher weights)"
    df = _dummies(frame, 4).reset_index()
    x = pd.concat([df[["d"]], pd.get_dummies(df.unit, dtype=float),
                   pd.get_dummies(df.m, prefix="m", drop_first=True, dtype=float)], axis=1).to_numpy()
    teams = df.team.astype("category").cat.codes.to_numpy()
    r = np.zeros(x.shape[1])
    r[0] = 1.0
    wb = wildboottest.WildboottestCL(X=x, Y=df.y.to_numpy(), cluster=teams, R=r, B=9999, seed=1, parallel=False)
    wb.get_scores(bootstrap_type="11", impose_null=True)
    wb.get_weights(weights_type="rademacher")
    wb.get_numer()
    wb.get_denom()
    wb.get_tboot()
    wb.get_vcov()
    wb.get_tstat()
    p_ref = float(np.mean(np.abs(wb.t_boot) >= abs(float(np.ravel(wb.t_stat)[0])) * (1 - 1e-9)))
    assert 0.001 < p_ref < 0.5
    assert ours.p_value == pytest.approx(p_ref, abs=1e-12)
    assert ours.details["cr1_p_value"] != ours.p_value


# --------------------------------------------------------------------------------------------
# The linearized test of a smooth estimator
# --------------------------------------------------------------------------------------------


def test_linearized_inference_of_a_weighted_mean_is_the_test_of_the_mean_on_every_row():
    # A pooled rate Σ won / Σ closed is a weighted mean; its influence per cluster is s_g·(rate_g − rate).
    # The pseudo-regression (one row per cluster) and the regression of every row on a constant have the same
    # cluster scores up to one factor, so the wild bootstrap's p-value and interval are identical.
    rng = np.random.default_rng(4)
    g = rng.integers(0, 9, 500)
    closed = rng.poisson(5, 500).astype(float) + 1
    won = rng.binomial(closed.astype(int), 0.3 + 0.05 * rng.normal(size=9)[g].clip(-3, 3)).astype(float)
    rate = won.sum() / closed.sum()
    share = np.bincount(g, closed) / closed.sum()
    influence = share * (np.bincount(g, won) / np.bincount(g, closed) - rate)
    ours = linearized_inference(rate, influence, share, confidence=0.9)
    rows = wild_cluster_bootstrap(won / closed, np.ones(500), g, 0, weights=closed, confidence=0.9)
    assert ours.estimate == pytest.approx(rate, rel=1e-12)
    assert ours.p_value == pytest.approx(rows.p_value, abs=1e-12)
    assert (ours.ci_low, ours.ci_high) == pytest.approx((rows.ci_low, rows.ci_high), rel=1e-7)
    assert ours.std_error == pytest.approx(rows.std_error, rel=1e-9)  # CR1 with K = 1: G/(G−1) in both


# --------------------------------------------------------------------------------------------
# The staggered estimator by team
# --------------------------------------------------------------------------------------------


def test_staggered_with_every_unit_its_own_cluster_is_the_unit_bootstrap():
    frame = team_panel(5, teams=12, reps=4, shock=0.3)
    units = estimate_staggered(panel_of(frame, cluster=None), control="not_yet_treated", post_months=3)
    own = estimate_staggered(panel_of(frame.with_columns(team=pl.col("unit"))), control="not_yet_treated",
                             post_months=3)
    assert (own.estimate, own.ci_low, own.ci_high) == (units.estimate, units.ci_low, units.ci_high)
    assert own.diagnostics["inference"] == "cluster bootstrap over 48 clusters (team; percentile interval)"


def test_staggered_with_few_teams_uses_the_wild_bootstrap_and_matches_the_jackknife_by_team():
    frame = team_panel(6, teams=10, reps=8, shock=0.3, denominator=True)
    effect = estimate_staggered(panel_of(frame, denominator=True), control="not_yet_treated", post_months=3)
    assert effect.diagnostics["inference"] == "wild cluster restricted bootstrap (Webb weights)"
    assert any(w.startswith("only 10 clusters (fewer than 30)") for w in effect.warnings)
    assert effect.ci_low < effect.estimate < effect.ci_high
    # The delta method's standard error (CR1: G/(G−1)·Σ influence²) against the delete-one-team jackknife.
    teams = sorted(frame["team"].unique())
    leave_out = np.array([
        estimate_staggered(panel_of(frame.filter(pl.col("team") != t), cluster=None, denominator=True),
                           control="not_yet_treated", post_months=3, replicates=2).estimate for t in teams])
    g = len(teams)
    jackknife = np.sqrt((g - 1) / g * ((leave_out - leave_out.mean()) ** 2).sum())
    assert effect.std_error == pytest.approx(jackknife, rel=0.2)


def test_by_team_intervals_cover_the_truth_where_the_unit_bootstrap_does_not():
    # 12 teams of 8 reps, half live in month 6 and half in month 9, a shock shared by a team's reps each
    # month: 40 simulated roll-outs. Measured when this was written: by team 38/40, by rep 31/40.
    by_team = by_unit = 0
    for seed in range(40):
        frame = team_panel(100 + seed, teams=12, reps=8, shock=0.5, effect=0.5)
        team = estimate_staggered(panel_of(frame), control="not_yet_treated", post_months=3, seed=seed)
        unit = estimate_staggered(panel_of(frame, cluster=None), control="not_yet_treated", post_months=3,
                                  seed=seed)
        by_team += team.ci_low <= 0.5 <= team.ci_high
        by_unit += unit.ci_low <= 0.5 <= unit.ci_high
    assert by_team >= 35
    assert by_unit <= by_team - 3


def test_doubly_robust_staggered_sums_the_influence_by_team():
    frame = team_panel(7, teams=10, reps=8, shock=0.3, never=2)
    frame = frame.with_columns(x=pl.col("unit").str.slice(-1).cast(pl.Float64))
    by_team = estimate_staggered_dr(
        UnitPanel.from_data(frame, unit="unit", period="period", outcome="y", treated_at="treated_at",
                            covariates=["x"], cluster="team"), control="not_yet_treated", post_months=3)
    by_unit = estimate_staggered_dr(
        UnitPanel.from_data(frame, unit="unit", period="period", outcome="y", treated_at="treated_at",
                            covariates=["x"]), control="not_yet_treated", post_months=3)
    assert by_team.estimate == by_unit.estimate
    assert by_team.diagnostics["inference"] == "wild cluster restricted bootstrap (Webb weights)"
    assert by_team.diagnostics["clusters"] == 10
    assert by_team.ci_high - by_team.ci_low > by_unit.ci_high - by_unit.ci_low
    # The covariate (a rep's number within the team) is unrelated to the outcome, so the doubly robust estimate
    # is the unconditional one's, and its analytic influence summed by team gives the standard error that the
    # unconditional estimator's numerical derivatives by team give.
    plain = estimate_staggered(panel_of(frame), control="not_yet_treated", post_months=3)
    assert by_team.std_error == pytest.approx(plain.std_error, rel=0.05)


def test_an_estimator_that_resamples_units_says_so_when_the_panel_has_clusters():
    frame = team_panel(8, teams=10, reps=8, shock=0.3, never=4)
    settings = EstimatorSettings(post_months=3, replicates=99)
    trend = ESTIMATORS["trend"].run(panel_of(frame), settings)
    assert any("the panel clusters units by team, but this estimator's interval treats units as independent" in w
               for w in trend.warnings)
    twfe = ESTIMATORS["twfe"].run(panel_of(frame), settings)
    assert not any("treats units as independent" in w for w in twfe.warnings)
    assert not any("treats units as independent" in w for w in ESTIMATORS["trend"].run(
        panel_of(frame, cluster=None), settings).warnings)


def test_an_interval_by_team_is_never_narrower_than_the_one_by_rep():
    # No team shock: the teams' sums vary as independent reps' would, and with 10 of them the clustered spread is
    # under-estimated about as often as over-estimated. Wherever it is narrower, the reps' interval is reported.
    widened = 0
    for seed in range(8):
        frame = team_panel(300 + seed, teams=10, reps=6, shock=0.0)
        team = estimate_staggered(panel_of(frame), control="not_yet_treated", post_months=3, seed=seed)
        rep = estimate_staggered(panel_of(frame, cluster=None), control="not_yet_treated", post_months=3, seed=seed)
        assert team.ci_low <= rep.ci_low and team.ci_high >= rep.ci_high
        assert (team.details["unit_ci_low"], team.details["unit_ci_high"]) == (rep.ci_low, rep.ci_high)
        twfe = estimate_twfe_did(panel_of(frame.filter(pl.col("team") != "team00").with_columns(
            treated_at=pl.when(pl.col("team") < "team03").then(None).otherwise(pl.col("treated_at")))), post_months=3)
        assert twfe.ci_low <= twfe.details["unit_ci_low"] and twfe.ci_high >= twfe.details["unit_ci_high"]
        widened += any("the wider is reported" in w for w in team.warnings)
    assert 0 < widened < 8
