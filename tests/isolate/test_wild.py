"""The wild cluster restricted bootstrap against the wildboottest package, statsmodels and Monte Carlo truth."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm

from training_roi.isolate.wild import (
    ClusterTest,
    choose_inference,
    cluster_inference,
    wild_cluster_bootstrap,
)

wildboottest = pytest.importorskip("wildboottest.wildboottest", reason="wildboottest (the dev extra) is not installed")


def reference(y: np.ndarray, x: np.ndarray, clusters: np.ndarray, coef: int, *, null: float = 0.0,
              draws: int = 9999, weights: str = "rademacher", seed: int = 1) -> tuple[float, float]:
    """The reference package's WCR "11" p-value and CR1 t-statistic; a null r ≠ 0 is tested as 0 on y − r·x_coef.

    The p-value is the share of the reference's bootstrap |t*| at or above its |t| — ties counted, as our
    documented convention does (the package's own ``pvalue`` counts only strict excesses, and the draws that
    reproduce the original sample tie with it up to rounding).
    """
    r = np.zeros(x.shape[1])
    r[coef] = 1.0
    wb = wildboottest.WildboottestCL(X=x, Y=y - null * x[:, coef], cluster=clusters, R=r, B=draws, seed=seed,
                                     parallel=False)
    wb.get_scores(bootstrap_type="11", impose_null=True)
    wb.get_weights(weights_type=weights)
    wb.get_numer()
    wb.get_denom()
    wb.get_tboot()
    wb.get_vcov()
    wb.get_tstat()
    t = float(np.ravel(wb.t_stat)[0])
    return float(np.mean(np.abs(wb.t_boot) >= abs(t) * (1 - 1e-9))), t


def data(seed: int, clusters: int, n: int = 400, effect: float = 0.3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A regression with a cluster-level treatment (a few clusters trained), a covariate and cluster shocks."""
    rng = np.random.default_rng(seed)
    g = rng.integers(0, clusters, n)
    x = np.column_stack([np.ones(n), rng.normal(size=n), (g < max(2, clusters // 3)).astype(float)])
    y = x @ np.array([1.0, 0.2, effect]) + rng.normal(size=clusters)[g] + rng.normal(size=n)
    return y, x, g


# --------------------------------------------------------------------------------------------
# Parity with wildboottest
# --------------------------------------------------------------------------------------------


def test_full_enumeration_gives_the_reference_p_value_exactly():
    # 8 clusters: all 2^8 = 256 Rademacher patterns, in both implementations, so the p-values are the same numbers.
    y, x, g = data(3, 8)
    for null in (0.0, 0.25, -0.4, 1.0):
        ours = wild_cluster_bootstrap(y, x, g, 2, null=null, weight_type="rademacher", interval=False)
        p_ref, t_ref = reference(y, x, g, 2, null=null)
        assert ours.enumerated and ours.draws == 256
        assert ours.p_value == pytest.approx(p_ref, abs=1e-12)
        assert ours.t_stat == pytest.approx(t_ref, rel=1e-10)


def test_random_draws_agree_with_the_reference_to_monte_carlo_precision():
    # Webb weights with 10 clusters and Rademacher with 16 (2^16 > 9,999: drawn, not enumerated). Different
    # generators, so the two p-values differ by simulation error only: each has sd √(p(1 − p)/B).
    for clusters, kind, seed in ((10, "webb", 4), (16, "rademacher", 5)):
        y, x, g = data(seed, clusters, effect=0.35)
        ours = wild_cluster_bootstrap(y, x, g, 2, weight_type=kind, interval=False, seed=11)
        p_ref, _ = reference(y, x, g, 2, weights=kind, seed=12)
        assert not ours.enumerated and ours.draws == 9999
        assert 0.01 < p_ref < 0.99
        assert abs(ours.p_value - p_ref) < 4 * np.sqrt(2 * p_ref * (1 - p_ref) / 9999)


def test_the_interval_ends_where_the_reference_test_switches_from_accepting_to_rejecting():
    y, x, g = data(7, 8)
    ours = wild_cluster_bootstrap(y, x, g, 2, weight_type="rademacher")
    eps = 1e-4 * ours.std_error
    for end, inward in ((ours.ci_low, 1.0), (ours.ci_high, -1.0)):
        assert reference(y, x, g, 2, null=end + inward * eps)[0] > 0.05
        assert reference(y, x, g, 2, null=end - inward * eps)[0] <= 0.05
    assert ours.ci_low < ours.estimate < ours.ci_high


def test_weights_make_it_weighted_least_squares():
    # Weighted: the CR1 standard error is statsmodels' WLS one, and the bootstrap is the reference's on the
    # √w-scaled rows (which is what weighted least squares is).
    y, x, g = data(9, 8)
    w = np.random.default_rng(2).uniform(0.2, 3.0, y.size)
    ours = wild_cluster_bootstrap(y, x, g, 2, weights=w, weight_type="rademacher")
    fit = sm.WLS(y, x, weights=w).fit(cov_type="cluster", cov_kwds={"groups": g})
    assert ours.estimate == pytest.approx(fit.params[2], rel=1e-10)
    assert ours.std_error == pytest.approx(fit.bse[2], rel=1e-10)
    root = np.sqrt(w)
    assert ours.p_value == pytest.approx(reference(root * y, root[:, None] * x, g, 2)[0], abs=1e-12)
    # A row of weight zero is the same as no row.
    w0 = w.copy()
    w0[:25] = 0.0
    dropped = wild_cluster_bootstrap(y[25:], x[25:], g[25:], 2, weights=w[25:], weight_type="rademacher")
    assert wild_cluster_bootstrap(y, x, g, 2, weights=w0, weight_type="rademacher").p_value == dropped.p_value


def test_the_cr1_figures_are_statsmodels_cluster_robust_ones():
    y, x, g = data(12, 40)
    fit = sm.OLS(y, x).fit(cov_type="cluster", cov_kwds={"groups": g, "df_correction": True}, use_t=True)
    result = cluster_inference(y, x, g, 2)
    assert not result.bootstrap and result.method == "cluster-robust t-test (CR1)"
    assert result.std_error == pytest.approx(fit.bse[2], rel=1e-10)
    assert result.p_value == pytest.approx(fit.pvalues[2], rel=1e-8)
    assert (result.ci_low, result.ci_high) == pytest.approx(tuple(fit.conf_int()[2]), rel=1e-8)


# --------------------------------------------------------------------------------------------
# Monte Carlo: with few clusters the CR1 t-test over-rejects, the bootstrap does not
# --------------------------------------------------------------------------------------------


def test_with_eight_clusters_the_bootstrap_keeps_its_level_where_the_t_test_does_not():
    # 8 clusters of unequal size, 2 of them treated, cluster shocks and noisier treated clusters; no effect.
    reps = 400
    bootstrap, t_test = [], []
    for seed in range(reps):
        rng = np.random.default_rng(seed)
        sizes = rng.integers(10, 80, 8)
        g = np.repeat(np.arange(8), sizes)
        d = (g < 2).astype(float)
        x = np.column_stack([np.ones(g.size), d, rng.normal(size=g.size)])
        y = rng.normal(size=8)[g] + rng.normal(size=g.size) * (1 + d)
        r = wild_cluster_bootstrap(y, x, g, 1, draws=399, interval=False, seed=seed)
        bootstrap.append(r.p_value < 0.05)
        t_test.append(r.cr1_p_value < 0.05)
    mc = np.sqrt(0.05 * 0.95 / reps)
    assert np.mean(bootstrap) <= 0.05 + 2.5 * mc
    assert np.mean(t_test) >= 0.05 + 4 * mc  # CR1 with t(G − 1) rejects far more often than 5%


# --------------------------------------------------------------------------------------------
# The rule, and the result
# --------------------------------------------------------------------------------------------


def test_the_rule_picks_the_bootstrap_below_thirty_clusters_and_says_why():
    few = choose_inference(8)
    assert few.bootstrap and few.weights == "webb" and not few.enumerated
    assert few.reason.startswith("only 8 clusters (fewer than 30): the cluster-robust t-test over-rejects")
    assert "2^8 = 256 distinct draws, so Webb's six-point weights" in few.reason
    assert few.method == "wild cluster restricted bootstrap (Webb weights)"
    tiny = choose_inference(5)
    assert tiny.enumerated and "all 7,776 possible draws are enumerated" in tiny.reason
    middle = choose_inference(13)
    assert middle.weights == "rademacher" and middle.enumerated  # 2^13 = 8,192 ≤ 9,999
    assert choose_inference(20).weights == "rademacher" and not choose_inference(20).enumerated
    many = choose_inference(30)
    assert not many.bootstrap and many.weights is None and "enough for the cluster-robust (CR1) t-test" in many.reason
    assert choose_inference(30, weights="rademacher").bootstrap
    with pytest.raises(ValueError, match="at least two clusters"):
        choose_inference(1)


def test_cluster_inference_follows_the_rule_and_the_result_reads_well():
    y, x, g = data(3, 8)
    labels = np.array([f"team {k}" for k in g])
    result = cluster_inference(y, x, labels, -1)
    assert isinstance(result, ClusterTest) and result.bootstrap and result.weights == "webb"
    assert result.coefficient == -1 and result.clusters == 8
    assert result.p_value == wild_cluster_bootstrap(y, x, g, 2).p_value
    text = result.summary()
    assert "CR1 t-test" in text and "why" in text and "Webb" in text
    assert repr(result).startswith("ClusterTest(method='wild cluster restricted bootstrap") and "\n" not in repr(result)
    again = wild_cluster_bootstrap(y, x, g, 2, seed=7)
    assert (again.p_value, again.ci_low) == (result.p_value, result.ci_low)  # seeded: the same every run


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"coef": 3}, "coef must index"),
        ({"weight_type": "mammen"}, "weight_type must be"),
        ({"draws": 10}, "draws must be at least 99"),
        ({"confidence": 1.2}, "confidence must be"),
    ],
)
def test_bad_arguments_are_refused(kwargs, message):
    y, x, g = data(3, 8)
    args = {"coef": 2, **kwargs}
    coef = args.pop("coef")
    with pytest.raises(ValueError, match=message):
        wild_cluster_bootstrap(y, x, g, coef, **args)


def test_collinear_regressors_and_a_single_cluster_are_refused():
    y, x, g = data(3, 8)
    with pytest.raises(ValueError, match="collinear"):
        wild_cluster_bootstrap(y, np.column_stack([x, x[:, 2]]), g, 2)
    with pytest.raises(ValueError, match="at least two clusters"):
        wild_cluster_bootstrap(y, x, np.zeros(y.size), 2)
