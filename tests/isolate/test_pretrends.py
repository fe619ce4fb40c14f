"""Equivalence bounds and pre-test power against hand-worked figures, closed-form normal power and Monte Carlo."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from training_roi.isolate.pretrends import (
    PreTrendCheck,
    detectable_slope,
    equivalence_bound,
    equivalence_test,
    pretest_power,
    pretrend_check,
)

Z95 = 1.6448536269514722  # the normal's 95% quantile
Z975 = 1.959963984540054


def test_the_bound_with_a_diagonal_covariance_is_the_largest_gap_plus_z_standard_errors():
    # Equal standard errors: max|β| + z·se = 0.009 + 1.6449 × 0.002.
    beta, se = np.array([0.004, -0.009, 0.002]), 0.002
    assert equivalence_bound(beta, np.eye(3) * se**2) == pytest.approx(0.009 + Z95 * 0.002, rel=1e-12)
    # Unequal ones: the binding lead is the one with the largest |β_k| + z·se_k, here the first (0.004 + 0.0164).
    v = np.diag([0.01**2, 0.002**2, 0.002**2])
    assert equivalence_bound(beta, v) == pytest.approx(0.004 + Z95 * 0.01, rel=1e-12)
    # Correlation does not enter an intersection-union test.
    corr = v + 0.5 * np.sqrt(np.outer(np.diag(v), np.diag(v))) * (1 - np.eye(3))
    assert equivalence_bound(beta, corr) == equivalence_bound(beta, v)


def test_the_bound_uses_students_t_with_degrees_of_freedom():
    q = 1.8124611228107335  # t(10) 95% quantile
    assert equivalence_bound([0.01, 0.0], np.eye(2) * 0.003**2, dof=10) == pytest.approx(0.01 + q * 0.003, rel=1e-9)


def test_the_equivalence_test_agrees_with_the_bound_and_its_p_value_is_the_binding_one_sided_test():
    beta, v = np.array([0.004, -0.009]), np.eye(2) * 0.002**2
    bound = 0.009 + Z95 * 0.002
    assert equivalence_test(beta, v, bound * 1.001)[0]
    assert not equivalence_test(beta, v, bound * 0.999)[0]
    # At δ = 0.02 the binding test is lead 2 against β = −δ: P(Z ≥ (−0.009 + 0.02)/0.002) = Φ(−5.5).
    established, p = equivalence_test(beta, v, 0.02)
    assert established and p == pytest.approx(0.5 * math.erfc(5.5 / math.sqrt(2)), rel=1e-9)


def test_the_equivalence_test_keeps_its_level_at_the_boundary():
    # Monte Carlo: one lead sits exactly at the tolerance, the other well inside; the IU-TOST must reject at most α.
    rng = np.random.default_rng(3)
    se, tol = 0.01, 0.03
    draws = rng.normal([tol, 0.0], [se, se / 5], size=(4000, 2))
    rate = np.mean([equivalence_test(b, np.diag([se**2, se**2 / 25]), tol)[0] for b in draws])
    assert rate == pytest.approx(0.05, abs=3 * np.sqrt(0.05 * 0.95 / 4000))


def test_wald_power_is_the_noncentral_chi_square_tail():
    # Two leads at −3 and −2 (reference −1): a slope s puts −2s and −s in them; λ = s²(4/σ₁² + 1/σ₂²).
    s, s1, s2 = 0.01, 0.012, 0.008
    lam = s**2 * (4 / s1**2 + 1 / s2**2)
    expected = stats.ncx2.sf(stats.chi2.ppf(0.95, 2), 2, lam)
    assert pretest_power(np.diag([s1**2, s2**2]), s) == pytest.approx(expected, rel=1e-10)
    assert pretest_power(np.diag([s1**2, s2**2]), 0.0) == pytest.approx(0.05)


def test_wald_power_matches_a_simulation_of_the_test_itself():
    rng = np.random.default_rng(11)
    v = np.array([[1.0, 0.4, 0.2], [0.4, 1.0, 0.4], [0.2, 0.4, 1.0]]) * 0.01**2
    d = np.array([-3.0, -2.0, -1.0])
    slope = 0.004
    draws = rng.multivariate_normal(slope * d, v, size=200_000)
    wald = np.einsum("ij,jk,ik->i", draws, np.linalg.inv(v), draws)
    simulated = np.mean(wald > stats.chi2.ppf(0.95, 3))
    assert pretest_power(v, slope) == pytest.approx(simulated, abs=0.004)


def test_one_lead_the_power_and_detectable_slope_are_the_two_sided_z_tests():
    # One lead at −2 (distance −1): power = Φ(s/σ − 1.96) + Φ(−s/σ − 1.96), for the Wald and the "any" test alike.
    sigma = 0.02
    for s in (0.01, 0.03, 0.05):
        expected = stats.norm.cdf(s / sigma - Z975) + stats.norm.cdf(-s / sigma - Z975)
        assert pretest_power([[sigma**2]], s) == pytest.approx(expected, rel=1e-9)
        assert pretest_power([[sigma**2]], s, test="any") == pytest.approx(expected, abs=0.004)
    # 80% power at the textbook 1.96 + 0.8416 standard errors (the far tail adds nothing visible).
    assert detectable_slope([[sigma**2]], 0.8) == pytest.approx((Z975 + 0.8416212335729143) * sigma, rel=1e-5)
    assert detectable_slope([[sigma**2]], 0.5, test="any") == pytest.approx(Z975 * sigma, rel=0.01)


def test_the_detectable_slopes_have_the_power_they_claim():
    v = np.array([[2.0, 0.5], [0.5, 1.0]]) * 0.01**2
    for power in (0.5, 0.8):
        s = detectable_slope(v, power)
        assert pretest_power(v, s) == pytest.approx(power, abs=1e-9)
        s_any = detectable_slope(v, power, test="any")
        assert pretest_power(v, s_any, test="any") == pytest.approx(power, abs=0.002)
    assert detectable_slope(v, 0.04) == 0.0
    assert detectable_slope(v, 0.5) < detectable_slope(v, 0.8)


def test_periods_and_reference_place_the_trend():
    # Leads at −5 and −3 with reference −2: distances −3 and −1; the "usual" layout −3, −2 vs −1 is −2, −1.
    v = np.eye(2) * 0.01**2
    lam = 0.002**2 * (9 + 1) / 0.01**2
    assert pretest_power(v, 0.002, periods=[-5, -3], reference=-2) == pytest.approx(
        stats.ncx2.sf(stats.chi2.ppf(0.95, 2), 2, lam), rel=1e-10)
    with pytest.raises(ValueError, match="reference period"):
        pretest_power(v, 0.002, periods=[-2, -1], reference=-1)


def test_the_check_words_its_verdict():
    v = np.diag([0.01**2, 0.012**2])
    small = pretrend_check([0.004, -0.003], v, tolerance=0.05)
    assert isinstance(small, PreTrendCheck) and small.equivalent and not small.rejects
    assert small.verdict == f"pre-trends are small: gaps above {0.003 + Z95 * 0.012:.2g} ruled out"
    weak = pretrend_check([0.004, -0.003], v, tolerance=0.01)
    s50 = detectable_slope(v, 0.5)
    assert weak.verdict.startswith("the pre-period cannot tell")
    assert (f"with 2 pre-periods the test would detect a trend of {s50:.2g} per period only half the time"
            in weak.verdict)
    found = pretrend_check([0.05, -0.003], v)
    assert found.rejects and found.verdict.startswith("pre-trends found")
    assert found.p_value == pytest.approx(stats.chi2.sf(25 + 0.0625, 2))
    # Precise leads can differ from zero and still be small.
    precise = pretrend_check([0.004, 0.003], np.eye(2) * 0.001**2, tolerance=0.02)
    assert precise.rejects and precise.equivalent
    assert precise.verdict.startswith("pre-trends are small but not zero")
    neutral = pretrend_check([0.004, -0.003], v)
    assert neutral.equivalent is None and "only gaps above" in neutral.verdict


def test_the_check_reports_figures_and_a_compact_repr():
    v = np.diag([0.01**2, 0.012**2])
    c = pretrend_check([0.004, -0.003], v, slope=0.01, tolerance=0.05)
    assert c.periods == (-3, -2) and c.df == 2
    assert c.power == pytest.approx(pretest_power(v, 0.01))
    text = c.summary()
    assert "chi-square" in text and "50% of the time" in text and "tolerance" in text and "power at" in text
    assert repr(c).startswith("PreTrendCheck(leads=2, p_value=") and "\n" not in repr(c)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (([0.1, 0.2], np.eye(3)), "cov must be 2 × 2"),
        (([0.1], [[-1.0]]), "symmetric covariance"),
        (([], np.zeros((0, 0))), "non-empty"),
    ],
)
def test_bad_inputs_are_refused(args, message):
    with pytest.raises(ValueError, match=message):
        equivalence_bound(*args)
