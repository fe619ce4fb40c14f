"""Covariate-aware difference-in-differences against two reference packages, a known truth and hand-worked figures.

The references are independent implementations of Sant'Anna & Zhao's estimators: ``drdid`` (the
traditional doubly robust, outcome-regression and normalised IPW estimators for panel data) and
``differences`` (whose improved doubly robust estimator, with the propensity by inverse
probability tilting, ``drdid`` does not have). Their analytic standard error is sd(IF)/√n with
sd over n − 1, as in Sant'Anna & Zhao's R package.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import polars as pl
import pytest
import statsmodels.api as sm
from causaldata import cps_mixtape, nsw_mixtape
from differences.models.did.att_if import dr_improved_panel_att_if
from differences.models.did.pscore_cal import pscore_ipt
from differences.models.did.utility import wols_out_reg
from drdid.drdid import drdid_panel
from drdid.ipwd_did import std_ipw_did_panel
from drdid.reg_did import reg_did_panel

from training_roi.isolate import (
    ESTIMATORS,
    METHODS,
    EstimatorSettings,
    NotApplicable,
    UnitPanel,
    dr_did,
    estimate_drdid,
    ipw_did,
    multiplier_draws,
    reg_did,
)
from training_roi.isolate.drdid import _unit_windows
from training_roi.isolate.matching import unit_features

PARITY = 1e-6


def _se(influence: np.ndarray) -> float:
    return float(np.std(influence, ddof=1) / np.sqrt(influence.size))


def _improved_reference(dy, d, x, w=None) -> tuple[float, float]:
    """``differences``' improved doubly robust estimator, its tilting solved as tightly as its solver allows.

    Its own wrapper calls the trust-region solver at its default tolerance, which on these data
    stops with the tilting's first-order conditions off by up to 1e-4 (the estimate agrees to
    1e-11 but the standard error only to 1e-4); the same three steps with a tighter tolerance are
    the estimator solved to convergence. Weights are scaled to mean 1, as in Sant'Anna & Zhao's R package
    (the estimator does not depend on their scale; the solver's tolerance does).
    """
    n = d.size
    z = np.column_stack([np.ones(n), x])
    w = np.ones(n) if w is None else w / w.mean()
    p = None
    for tol in (1e-12, 1e-10, 1e-8):
        try:
            (p,) = pscore_ipt(treated=d.astype(float), exog=z, weights=w, tol=tol)
            break
        except ValueError:  # "trust algorithm did not converge" at this tolerance
            continue
    assert p is not None, "the reference's tilting did not converge"
    out = wols_out_reg(endog=dy, exog=z, weights=w, mask=d == 0, pscore_fit=p)
    att, inf = dr_improved_panel_att_if(endog=dy[:, None], treated=d[:, None].astype(float), weights=w[:, None],
                                        out_delta=out[:, None], ps_fit=p[:, None])
    return float(att), _se(np.asarray(inf).ravel())


def _reference(kind: str, y0, y1, d, x, w=None) -> tuple[float, float]:
    if kind == "dr":
        return _improved_reference(y1 - y0, d, x, w)
    function = {"dr_logit": drdid_panel, "reg": reg_did_panel, "ipw": std_ipw_did_panel}[kind]
    att, inf = function(y1, y0, d, x, w)
    return float(att), _se(np.asarray(inf))


def _ours(kind: str, y0, y1, d, x, w=None, names=None):
    if kind == "dr":
        return dr_did(y0, y1, d, x, weights=w, names=names)
    if kind == "dr_logit":
        return dr_did(y0, y1, d, x, weights=w, names=names, propensity="logit")
    return {"reg": reg_did, "ipw": ipw_did}[kind](y0, y1, d, x, weights=w, names=names)


KINDS = ("dr", "dr_logit", "reg", "ipw")


# A simulated panel with a known effect ------------------------------------------------------------------------------

def _simulate(n: int = 3000, seed: int = 2020) -> dict[str, np.ndarray | float]:
    """Covariates drive both who is trained and how the outcome trends; the effect varies with x1.

    Selection is logistic in (x1, x2) and the untrained change is linear in them, so every
    estimator's model is right. The truth is the trained units' own mean effect (the sample ATT).
    """
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    x2 = rng.binomial(1, 0.4, n).astype(float)
    d = rng.binomial(1, 1 / (1 + np.exp(-(-1.0 + 0.9 * x1 + 0.6 * x2))))
    level = 2 + x1 + rng.normal(size=n)
    effect = 1.0 + 0.5 * x1
    y0 = level + rng.normal(size=n)
    y1 = level + 0.5 + 1.5 * x1 + 1.0 * x2 + d * effect + rng.normal(size=n)
    return {"y0": y0, "y1": y1, "d": d, "x": np.column_stack([x1, x2]), "w": rng.uniform(0.5, 2.0, n),
            "truth": float(effect[d == 1].mean())}


@pytest.fixture(scope="module")
def sim():
    return _simulate()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("weighted", [False, True])
def test_parity_with_the_reference_packages_on_a_simulated_panel(sim, kind, weighted):
    w = sim["w"] if weighted else None
    ours = _ours(kind, sim["y0"], sim["y1"], sim["d"], sim["x"], w)
    att, se = _reference(kind, sim["y0"], sim["y1"], sim["d"], sim["x"], w)
    assert ours.estimate == pytest.approx(att, rel=PARITY)
    assert ours.std_error == pytest.approx(se, rel=PARITY)
    assert ours.influence.shape == (sim["d"].size,) and abs(ours.influence.mean()) < 1e-8 * ours.influence.std()


def test_adjusting_for_the_covariates_removes_the_bias_of_the_plain_did(sim):
    truth = sim["truth"]
    plain = reg_did(sim["y0"], sim["y1"], sim["d"])  # no covariates: the plain difference-in-differences
    # Without covariates the untrained units' change stands in for the trained units', but the trained
    # have higher x1 and x2, which raise the change by 1.5·x1 + x2: the plain DiD is biased upward.
    assert plain.estimate - truth > 10 * plain.std_error
    # Four standard errors: a correct estimator misses by more with probability 6e-5. Each SE is the
    # estimator's own (the sampling error of the population ATT, a bit more than the sample ATT's).
    for kind in KINDS:
        fit = _ours(kind, sim["y0"], sim["y1"], sim["d"], sim["x"])
        assert abs(fit.estimate - truth) < 4 * fit.std_error, (kind, fit.estimate, truth, fit.std_error)


# LaLonde: NSW trainees against CPS comparison units -----------------------------------------------------------------

BASIC = ("age", "educ", "black", "hisp", "marr", "nodegree")
# Dehejia & Wahba's and Sant'Anna & Zhao's fuller set: squares, 1974 earnings and unemployment. Earnings in
# thousands and squares scaled down only so the reference's tilting solver converges; the estimators are
# invariant to such rescaling.
FULL = ("age", "age2", "educ", "educ2", "black", "hisp", "marr", "nodegree", "re74k", "u74")


@pytest.fixture(scope="module")
def lalonde() -> dict[str, object]:
    nsw = nsw_mixtape.load_pandas().data
    cps = cps_mixtape.load_pandas().data
    df = pd.concat([nsw[nsw.treat == 1], cps], ignore_index=True)
    df = df.assign(age2=df.age**2 / 100, educ2=df.educ**2 / 10, re74k=df.re74 / 1000, u74=(df.re74 == 0) * 1.0)
    treated, control = nsw[nsw.treat == 1], nsw[nsw.treat == 0]
    return {
        "y0": df.re75.to_numpy(float), "y1": df.re78.to_numpy(float), "d": df.treat.to_numpy(int), "df": df,
        # The experiment's answer: randomised NSW trainees minus NSW controls.
        "benchmark_re78": float(treated.re78.mean() - control.re78.mean()),
        "benchmark_change": float((treated.re78 - treated.re75).mean() - (control.re78 - control.re75).mean()),
    }


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("covariates", [BASIC, FULL], ids=["basic", "full"])
def test_parity_with_the_reference_packages_on_lalonde(lalonde, kind, covariates):
    x = lalonde["df"][list(covariates)].to_numpy(float)
    ours = _ours(kind, lalonde["y0"], lalonde["y1"], lalonde["d"], x, names=covariates)
    att, se = _reference(kind, lalonde["y0"], lalonde["y1"], lalonde["d"], x)
    assert ours.estimate == pytest.approx(att, rel=PARITY)
    assert ours.std_error == pytest.approx(se, rel=PARITY)


def test_lalonde_against_the_experimental_benchmark(lalonde):
    # The experiment (185 NSW trainees, 260 randomised NSW controls): about $1,794 on 1978 earnings
    # (Dehejia & Wahba's figure) and $1,529 on the change from 1975.
    assert lalonde["benchmark_re78"] == pytest.approx(1794.34, abs=0.01)
    assert lalonde["benchmark_change"] == pytest.approx(1529.2, abs=0.1)
    bench = lalonde["benchmark_change"]
    plain = reg_did(lalonde["y0"], lalonde["y1"], lalonde["d"])
    x = lalonde["df"][list(FULL)].to_numpy(float)
    dr = dr_did(lalonde["y0"], lalonde["y1"], lalonde["d"], x, names=FULL)
    # CPS workers' earnings grew less than the trainees' would have: the plain DiD overstates the effect,
    # and the covariates close most of the gap; the experiment lies inside the DR interval.
    assert plain.estimate - bench > 3 * plain.std_error
    assert abs(dr.estimate - bench) < abs(plain.estimate - bench) / 3
    assert abs(dr.estimate - bench) < 1.96 * dr.std_error
    # 15,992 CPS workers, few like the trainees: a few hundred carry the comparison, and the logistic
    # weights leave age unbalanced (checked against statsmodels below).
    assert 100 < dr.diagnostics["effective_comparison_size"] < 1000


def test_ipw_balance_table_against_statsmodels_logit(lalonde):
    cols = ("age", "educ", "black", "hisp", "marr", "nodegree", "re74k", "u74")
    df, d = lalonde["df"], lalonde["d"].astype(bool)
    x = df[list(cols)].to_numpy(float)
    fit = ipw_did(lalonde["y0"], lalonde["y1"], d.astype(int), x, names=cols)
    p = sm.Logit(d.astype(float), sm.add_constant(x)).fit(disp=0, method="newton", tol=1e-12).predict()
    odds = p[~d] / (1 - p[~d])
    xt, xc = x[d], x[~d]
    scale = np.sqrt((xt.var(axis=0, ddof=1) + xc.var(axis=0, ddof=1)) / 2)
    before = (xt.mean(axis=0) - xc.mean(axis=0)) / scale
    after = (xt.mean(axis=0) - odds @ xc / odds.sum()) / scale
    table = {r["feature"]: r for r in fit.diagnostics["balance"]}
    for i, c in enumerate(cols):
        assert table[c]["smd_before"] == pytest.approx(before[i], rel=1e-6)
        assert table[c]["smd_after"] == pytest.approx(after[i], rel=1e-5, abs=1e-9)
    assert fit.diagnostics["effective_comparison_size"] == pytest.approx(odds.sum() ** 2 / (odds**2).sum(), rel=1e-6)
    unbalanced = [c for i, c in enumerate(cols) if abs(after[i]) >= 0.1]
    assert unbalanced == ["age"]
    assert any(w.startswith("balance not reached") and f"age {after[0]:+.2f}" in w for w in fit.warnings)
    # Tilting reproduces the trained units' means exactly (its first-order conditions): no imbalance left.
    dr = dr_did(lalonde["y0"], lalonde["y1"], d.astype(int), x, names=cols)
    assert dr.diagnostics["max_abs_smd_after"] < 1e-8
    assert not any(w.startswith("balance not reached") for w in dr.warnings)


# A hand-worked example ----------------------------------------------------------------------------------------------

# One binary covariate g. Stratum g = 0: trained changes 3, 5 and untrained 1, 2, 3; stratum g = 1:
# trained 6 and untrained 2, 4. Every model is saturated, so each estimator is the stratified
# comparison: (2 × (4 − 2) + 1 × (6 − 3)) / 3 = 7/3. The propensity is each stratum's trained share
# (2/5 and 1/3), the untrained units' odds 2/3 and 1/2: Kish's size (2/3·3 + 1/2·2)² / (3·4/9 + 2·1/4)
# = 9 / (11/6) = 54/11. Before weighting, g has mean 1/3 among the trained and 2/5 among the untrained,
# variances 1/3 and 3/10: SMD (1/3 − 2/5) / √((1/3 + 3/10)/2) = −0.11847.
HAND_DY = np.array([3.0, 5.0, 6.0, 1.0, 2.0, 3.0, 2.0, 4.0])
HAND_D = np.array([1, 1, 1, 0, 0, 0, 0, 0])
HAND_G = np.array([0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0])
HAND_Y0 = np.array([10.0, 0.0, 4.0, 7.0, 1.0, 2.0, 3.0, 5.0])


@pytest.mark.parametrize("kind", KINDS)
def test_a_saturated_model_is_the_stratified_comparison_by_hand(kind):
    fit = _ours(kind, HAND_Y0, HAND_Y0 + HAND_DY, HAND_D, HAND_G[:, None], names=("g",))
    assert fit.estimate == pytest.approx(7 / 3)
    diag = fit.diagnostics
    assert diag["propensity_trained"] == pytest.approx({"min": 1 / 3, "max": 2 / 5})
    assert diag["propensity_comparison"] == pytest.approx({"min": 1 / 3, "max": 2 / 5})
    assert (diag["trained_off_support"], diag["comparison_trimmed"]) == (0, 0)
    (row,) = diag["balance"]
    assert row["smd_before"] == pytest.approx((1 / 3 - 2 / 5) / np.sqrt((1 / 3 + 3 / 10) / 2))
    assert row["smd_after"] == pytest.approx(0, abs=1e-9)
    # The regression's implied weights are the same up to scale: it predicts each stratum's untrained mean,
    # 2/3 of the trained units are in g = 0, so 2/9 for each g = 0 unit and 1/6 for each g = 1 one.
    assert diag["effective_comparison_size"] == pytest.approx(54 / 11)
    assert any("count as 4.9 (Kish" in w for w in fit.warnings)
    if kind == "reg":
        assert np.allclose(fit.comparison_weights, [0, 0, 0, 2 / 9, 2 / 9, 2 / 9, 1 / 6, 1 / 6])
        assert diag["negative_weight_share"] == 0


def test_poor_overlap_is_counted_and_named():
    rng = np.random.default_rng(5)
    xc, xt = rng.normal(0, 1, 300), rng.normal(2, 1, 60)
    x = np.concatenate([xt, xc])
    d = np.r_[np.ones(60, int), np.zeros(300, int)]
    y0 = rng.normal(size=360)
    fit = dr_did(y0, y0 + x + d, d, x[:, None], names=("x",))
    # The propensity rises with x: a trained unit is above every untrained unit's propensity exactly when its
    # x is above every untrained unit's x (no untrained unit is trimmed here).
    assert fit.diagnostics["comparison_trimmed"] == 0
    off = int((xt > xc.max()).sum())
    assert off > 6 and fit.diagnostics["trained_off_support"] == off
    assert any(w.startswith(f"poor overlap: {off / 60:.1%} of trained units ({off} of 60)") for w in fit.warnings)
    assert fit.diagnostics["propensity_trained"]["max"] > fit.diagnostics["propensity_comparison"]["max"]


def test_separated_groups_fall_back_and_say_so():
    # Every trained unit's x is above every untrained unit's: no weighting of the untrained reaches the trained
    # units' mean (tilting has no solution) and the logistic fit runs off to infinity (perfect separation).
    x = np.r_[np.linspace(3, 4, 20), np.linspace(0, 2, 40)]
    d = np.r_[np.ones(20, int), np.zeros(40, int)]
    fit = dr_did(np.zeros(60), x + d, d, x[:, None], names=("x",))
    assert fit.diagnostics["doubly_robust_form"] == "traditional"
    assert any(w.startswith("inverse probability tilting did not converge") for w in fit.warnings)
    assert any("separate trained and untrained units" in w for w in fit.warnings)
    assert fit.diagnostics["share_trained_off_support"] == 1.0
    assert any(w.startswith("poor overlap: 100.0% of trained units (20 of 20)") for w in fit.warnings)


def test_inputs_are_checked():
    with pytest.raises(ValueError, match="collinear"):
        dr_did(HAND_Y0, HAND_Y0 + HAND_DY, HAND_D, np.column_stack([HAND_G, 2 * HAND_G]))
    with pytest.raises(ValueError, match="constant"):
        reg_did(HAND_Y0, HAND_Y0 + HAND_DY, HAND_D, np.ones((8, 1)))
    with pytest.raises(ValueError, match="0 \\(untrained\\) or 1"):
        ipw_did(HAND_Y0, HAND_Y0, HAND_D * 2, HAND_G)
    with pytest.raises(ValueError, match="propensity must be"):
        dr_did(HAND_Y0, HAND_Y0, HAND_D, HAND_G, propensity="probit")  # type: ignore[arg-type]


# The multiplier bootstrap -------------------------------------------------------------------------------------------

def test_multiplier_bootstrap_matches_the_analytic_error_and_repeats(sim):
    fit = dr_did(sim["y0"], sim["y1"], sim["d"], sim["x"])
    for kind in ("rademacher", "mammen"):
        draws = fit.draws(4000, seed=11, multipliers=kind)
        # Each draw's variance is Σ IF² / n², the analytic variance; 4,000 draws estimate its root within
        # about 1/√8000 ≈ 1.1%: 5% is over four of those.
        assert np.std(draws, ddof=1) == pytest.approx(fit.std_error, rel=0.05)
        assert np.array_equal(draws, fit.draws(4000, seed=11, multipliers=kind))
    effect = fit.effect(baseline=1.0, replicates=999, seed=3)
    assert effect.replicates == 999 and effect.draws is not None
    assert effect.ci_low < fit.estimate < effect.ci_high
    assert effect.details["analytic_std_error"] == fit.std_error
    analytic = fit.effect(baseline=1.0)
    assert analytic.replicates == 0
    assert analytic.ci_high - analytic.ci_low == pytest.approx(2 * 1.959964 * fit.std_error)


def test_mammen_multipliers_have_the_moments_that_define_them():
    # One unit with influence 1: each draw is its multiplier. Mean 0, variance 1, third moment 1.
    xi = multiplier_draws(np.array([1.0]), replicates=400_000, seed=1, multipliers="mammen")
    assert set(np.round(np.unique(xi), 9)) == {round((1 - 5**0.5) / 2, 9), round((1 + 5**0.5) / 2, 9)}
    assert xi.mean() == pytest.approx(0, abs=0.01)
    assert (xi**2).mean() == pytest.approx(1, abs=0.01)
    assert (xi**3).mean() == pytest.approx(1, abs=0.03)


def test_a_clustered_standard_error_by_hand():
    fit = reg_did(HAND_Y0, HAND_Y0 + HAND_DY, HAND_D, HAND_G[:, None])
    one_each = fit.effect(cluster=list("abcdefgh"))
    assert one_each.std_error == pytest.approx(fit.std_error)  # a cluster per unit: the usual error
    # Pairs: sums S_c of the influence; the error is √(G/(G − 1) · Σ (S_c − mean S)²) / n.
    s = fit.influence.reshape(4, 2).sum(axis=1)
    pairs = fit.effect(cluster=[0, 0, 1, 1, 2, 2, 3, 3])
    assert pairs.std_error == pytest.approx(np.sqrt(4 / 3 * ((s - s.mean()) ** 2).sum()) / 8)


def test_clusters_share_one_multiplier():
    # Two rows of the same unit are one cluster: the same draws as their influence summed into one row.
    inf = np.array([1.0, 2.0, -4.0, 0.5])
    clustered = multiplier_draws(inf, replicates=50, seed=2, cluster=["a", "a", "b", "c"])
    summed = multiplier_draws(np.array([3.0, -4.0, 0.5]), replicates=50, seed=2) * 3 / 4
    assert np.allclose(clustered, summed)


# On a unit panel ----------------------------------------------------------------------------------------------------

MONTHS = [date(2023, m, 1) for m in range(1, 13)]


def _rate_panel(seed: int = 3, n: int = 400) -> tuple[UnitPanel, pd.DataFrame]:
    """Monthly won / closed deals; trained units trained in July 2023; tenure and region drive both."""
    rng = np.random.default_rng(seed)
    tenure = np.minimum(rng.gamma(2.0, 2.0, n), 12.0)
    region = rng.binomial(1, 0.5, n).astype(float)
    trained = rng.random(n) < 1 / (1 + np.exp(-(-2.0 + 0.4 * tenure + 0.8 * region)))
    rows = []
    for i in range(n):
        for k, m in enumerate(MONTHS):
            closed = int(rng.poisson(4)) + 1
            p = 0.1 + 0.01 * tenure[i] + 0.05 * region[i] + (k >= 6) * (0.04 * tenure[i] + 0.1 * trained[i])
            rows.append({"unit": f"u{i:03d}", "period": m, "treated_at": date(2023, 7, 20) if trained[i] else None,
                         "won": int(rng.binomial(closed, p)), "closed": closed,
                         "tenure": tenure[i], "region": region[i]})
    frame = pl.DataFrame(rows, schema={"unit": pl.String, "period": pl.Date, "treated_at": pl.Date, "won": pl.Int64,
                                       "closed": pl.Int64, "tenure": pl.Float64, "region": pl.Float64})
    panel = UnitPanel(frame=frame, outcome="win_rate", numerator="won", denominator="closed",
                      covariates=("tenure", "region"))
    return panel, frame.to_pandas()


def test_a_panel_pools_the_windows_and_weighs_by_the_denominator_like_the_references():
    panel, df = _rate_panel()
    # By hand: the six months before July, and July (the month of training) with the five after it.
    df["post"] = pd.to_datetime(df["period"]).dt.month >= 7
    g = df.groupby(["unit", "post"])[["won", "closed"]].sum().unstack()
    units = df.groupby("unit")[["treated_at", "tenure", "region"]].first().loc[g.index]
    y0 = (g["won"][False] / g["closed"][False]).to_numpy()
    y1 = (g["won"][True] / g["closed"][True]).to_numpy()
    w = (g["closed"][False] + g["closed"][True]).to_numpy(float)
    d = units["treated_at"].notna().to_numpy(int)
    x = units[["tenure", "region"]].to_numpy(float)
    for method, kind in (("dr", "dr"), ("reg", "reg"), ("ipw", "ipw")):
        effect = estimate_drdid(panel, method=method, replicates=0)
        att, se = _reference(kind, y0, y1, d, x, w)
        assert effect.estimate == pytest.approx(att, rel=PARITY), method
        assert effect.std_error == pytest.approx(se, rel=PARITY), method
    effect = estimate_drdid(panel, replicates=0)
    assert effect.baseline == pytest.approx(g["won"][False][d == 1].sum() / g["closed"][False][d == 1].sum())
    plain, _ = _reference("reg", y0, y1, d, np.zeros((d.size, 0)), w)
    assert effect.details["unadjusted_did"] == pytest.approx(plain, rel=PARITY)
    # The simulated effect is +0.10 on every trained unit's rate; tenure also lifts the untrained units'
    # change, and the trained have more tenure: the plain DiD overstates, the adjusted one does not.
    assert abs(effect.estimate - 0.10) < 4 * effect.std_error
    plain_se = effect.diagnostics["estimators"]["unadjusted"]["std_error"]
    assert effect.details["unadjusted_did"] - 0.10 > 4 * plain_se


def test_the_month_of_training_counts_as_after_whatever_its_day():
    # The hand-worked example as a panel: Jan–Feb before, Mar–Apr after; trained on 31 March.
    months = [date(2024, m, 1) for m in range(1, 5)]
    rows = [{"unit": f"{'T' if d else 'C'}{i}", "period": m, "treated_at": date(2024, 3, 31) if d else None,
             "revenue": y0 + (dy if k >= 2 else 0.0), "g": g}
            for i, (y0, dy, d, g) in enumerate(zip(HAND_Y0, HAND_DY, HAND_D, HAND_G, strict=True))
            for k, m in enumerate(months)]
    panel = UnitPanel(frame=pl.DataFrame(rows), outcome="revenue_per_rep", numerator="revenue", covariates=("g",))
    effect = estimate_drdid(panel, pre_months=2, post_months=2, replicates=0)
    assert effect.estimate == pytest.approx(7 / 3)
    assert effect.baseline == pytest.approx(HAND_Y0[:3].mean())
    assert effect.details["trained_units"] == 3 and effect.details["comparison_units"] == 5


def test_staggered_cohorts_with_a_known_effect():
    # Two cohorts (April and September); a common calendar trend; x drives training and the trend.
    rng = np.random.default_rng(9)
    n = 600
    x = rng.normal(size=n)
    trained = rng.random(n) < 1 / (1 + np.exp(-(-0.5 + x)))
    cohort = np.where(rng.random(n) < 0.5, 4, 9)
    rows = [{"unit": f"u{i}", "period": m, "treated_at": date(2023, int(cohort[i]), 15) if trained[i] else None,
             "revenue": 10 + x[i] + 0.3 * k + 0.4 * x[i] * k + 2.0 * (trained[i] and k + 1 >= cohort[i])
             + rng.normal(), "x": x[i]}
            for i in range(n) for k, m in enumerate(MONTHS)]
    panel = UnitPanel(frame=pl.DataFrame(rows), outcome="revenue_per_rep", numerator="revenue", covariates=("x",))
    effect = estimate_drdid(panel, pre_months=3, post_months=3, replicates=499)
    assert abs(effect.estimate - 2.0) < 4 * effect.details["analytic_std_error"]
    assert effect.details["unadjusted_did"] - 2.0 > 4 * effect.details["analytic_std_error"]
    assert effect.replicates == 499


def test_untrained_units_get_the_matched_comparisons_reference_months():
    # Several cohorts: each never-trained unit's reference month is the pseudo month matching draws with the seed.
    rng = np.random.default_rng(1)
    rows = [{"unit": f"u{i}", "period": m, "treated_at": date(2023, 3 + i % 8, 5) if i % 3 == 0 else None,
             "revenue": float(rng.normal()), "x": float(i % 5)} for i in range(80) for m in MONTHS]
    panel = UnitPanel(frame=pl.DataFrame(rows), outcome="revenue_per_rep", numerator="revenue", covariates=("x",))
    pseudo = unit_features(panel, seed=7).filter(~pl.col("trained")).select("unit", "anchor")
    ours = _unit_windows(panel, 6, 6, seed=7).filter(~pl.col("trained")).select(
        "unit", pl.date(pl.col("anchor") // 12, pl.col("anchor") % 12 + 1, 1).alias("ours"))
    both = pseudo.join(ours, on="unit")
    assert both.height == 53 and (both["anchor"] == both["ours"]).all()


def test_registered_and_explained():
    panel, _ = _rate_panel(n=200)
    spec = ESTIMATORS["drdid"]
    assert "drdid" in METHODS and spec.label == "doubly robust difference-in-differences"
    assert spec.needs_comparison and spec.refutable
    effect = spec.run(panel, EstimatorSettings(post_months=6, replicates=199, seed=4))
    assert effect.replicates == 199 and effect.draws is not None
    text = " ".join(effect.assumptions)
    for phrase in ("conditional parallel trends", "overlap", "no anticipation", "denominator"):
        assert phrase in text
    for key in ("balance", "effective_comparison_size", "share_trained_off_support", "propensity_trained",
                "propensity_comparison", "estimators"):
        assert key in effect.diagnostics
    assert set(effect.diagnostics["estimators"]) == {"dr", "reg", "ipw", "unadjusted"}


def test_not_applicable_with_a_reason():
    panel, _ = _rate_panel(n=60)
    bare = UnitPanel(frame=panel.frame, outcome="win_rate", numerator="won", denominator="closed")
    with pytest.raises(NotApplicable, match="no covariates: use the plain difference-in-differences"):
        estimate_drdid(bare)
    everyone = panel.frame.with_columns(pl.lit(date(2023, 7, 1)).alias("treated_at"))
    with pytest.raises(NotApplicable, match="never-trained"):
        estimate_drdid(UnitPanel(frame=everyone, outcome="win_rate", numerator="won", denominator="closed",
                                 covariates=("tenure",)))
    nobody = panel.frame.with_columns(pl.lit(None, dtype=pl.Date).alias("treated_at"))
    with pytest.raises(NotApplicable, match="nobody in the panel was trained"):
        estimate_drdid(UnitPanel(frame=nobody, outcome="win_rate", numerator="won", denominator="closed",
                                 covariates=("tenure",)))
