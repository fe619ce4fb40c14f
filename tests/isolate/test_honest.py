"""Honest parallel-trends sensitivity against hand-worked sets, closed-form intervals and Monte Carlo coverage."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import optimize, stats

from training_roi.isolate.honest import (
    Sensitivity,
    breakdown_value,
    honest_identified_set,
    honest_interval,
    honest_sensitivity,
    roi_breakdown,
)

Z9875 = 2.241402727604947  # the normal's 98.75% quantile: a two-sided 97.5% interval (α/2 each side's share)
Z975 = 1.959963984540054

RM = "relative_magnitudes"
SD = "smoothness"


# --------------------------------------------------------------------------------------------
# Identified sets, worked by hand
# --------------------------------------------------------------------------------------------


def test_relative_magnitudes_with_no_change_allowed_is_the_point_estimate():
    # M̄ = 0: no post-period change of the gap, so δ_post = δ_ref = 0 whatever the pre-period did.
    beta = [0.3, -0.2, 0.05, 0.07, 0.09]
    assert honest_identified_set(beta, 2, 0.0) == pytest.approx((0.07, 0.07))
    assert honest_identified_set(beta, 2, 0.0, target=[0, 0, 1]) == pytest.approx((0.09, 0.09))


def test_one_pre_period_change_of_d_moves_the_bounds_by_d_per_post_period():
    # One pre-period coefficient −d: the gap rose by d into the reference period. With M̄ = 1 each post-period
    # change is at most d, so δ_t ∈ [−t·d, t·d] and the effect in post-period t is β_t ∓ t·d.
    d, post = 0.02, [0.10, 0.12, 0.15]
    beta = [-d, *post]
    for t in (1, 2, 3):
        lo, hi = honest_identified_set(beta, 1, 1.0, target=np.eye(3)[t - 1])
        assert (lo, hi) == pytest.approx((post[t - 1] - t * d, post[t - 1] + t * d), abs=1e-12)
    # Their average: half-width d·(1 + 2 + 3)/3 = 2d; with M̄ = 1.5 it is 1.5 × 2d.
    mean = np.mean(post)
    assert honest_identified_set(beta, 1, 1.0) == pytest.approx((mean - 2 * d, mean + 2 * d), abs=1e-12)
    assert honest_identified_set(beta, 1, 1.5) == pytest.approx((mean - 3 * d, mean + 3 * d), abs=1e-12)


def test_relative_magnitudes_takes_the_largest_pre_period_change_including_into_the_reference():
    # Pre-period gaps −0.05, −0.04 then 0 at the reference: changes 0.01 and 0.04, so m = 0.04.
    beta = [-0.05, -0.04, 0.2]
    assert honest_identified_set(beta, 2, 0.5) == pytest.approx((0.2 - 0.02, 0.2 + 0.02), abs=1e-12)


def test_smoothness_extrapolates_the_pre_trend_and_allows_m_of_curvature():
    # Two pre-periods, two post-periods, target their average. The gap's slope into the reference is −δ₋₁, so
    # δ₁ = −δ₋₁ + ε₀ and δ₂ = −2δ₋₁ + 2ε₀ + ε₁ (ε the second differences, |ε| ≤ M): the average gap is
    # −1.5·δ₋₁ + 1.5·ε₀ + 0.5·ε₁, and the target is l′β_post + 1.5·β₋₁ ∓ 2M.
    beta = [-0.02, -0.01, 0.05, 0.08]
    centre = 0.065 + 1.5 * -0.01
    assert honest_identified_set(beta, 2, 0.0, restriction=SD) == pytest.approx((centre, centre), abs=1e-12)
    assert honest_identified_set(beta, 2, 0.003, restriction=SD) == pytest.approx((centre - 0.006, centre + 0.006),
                                                                                  abs=1e-12)
    # The pre-period's own curvature β₋₂ − 2β₋₁ (+ 0 at the reference) is 0.02 here: below it the set is empty.
    curved = [0.0, -0.01, 0.05, 0.08]  # β₋₂ − 2β₋₁ = 0.02
    assert np.isnan(honest_identified_set(curved, 2, 0.019, restriction=SD)[0])
    assert np.isfinite(honest_identified_set(curved, 2, 0.021, restriction=SD)[0])


def test_identified_sets_grow_with_the_bound():
    beta = [-0.03, 0.01, -0.01, 0.05, 0.04, 0.08]
    # The pre-period's second differences are −0.06 and 0.03: smoothness needs M ≥ 0.06.
    for kind, grid in ((RM, [0, 0.3, 0.7, 1, 2, 5]), (SD, [0.06, 0.07, 0.1, 0.2])):
        sets = [honest_identified_set(beta, 3, b, restriction=kind) for b in grid]
        for (lo1, hi1), (lo2, hi2) in itertools.pairwise(sets):
            assert lo2 <= lo1 + 1e-12 and hi2 >= hi1 - 1e-12
            assert lo2 < lo1 and hi2 > hi1


# --------------------------------------------------------------------------------------------
# Confidence intervals, worked by hand
# --------------------------------------------------------------------------------------------


def test_the_relative_magnitudes_interval_is_the_stated_bonferroni_construction():
    # One pre-period coefficient (−0.02, se 0.01) and three post-periods (se 0.01 each, independent).
    # m̄ = 0.02 + z_{0.9875}·0.01; the average's se is 0.01/√3; U(average) = (1 + 2 + 3)/3 = 2.
    beta = [-0.02, 0.10, 0.12, 0.15]
    cov = np.eye(4) * 0.01**2
    se = 0.01 / np.sqrt(3)
    m_upper = 0.02 + Z9875 * 0.01
    for mbar in (0.5, 1.0, 2.0):
        half = Z9875 * se + mbar * m_upper * 2
        assert honest_interval(beta, cov, 1, mbar) == pytest.approx((0.1233333 - half, 0.1233333 + half), abs=1e-6)
    # M̄ = 0 is the conventional interval.
    assert honest_interval(beta, cov, 1, 0.0) == pytest.approx((0.12333333 - Z975 * se, 0.12333333 + Z975 * se))


def test_the_relative_magnitudes_interval_uses_a_simultaneous_band_over_several_pre_changes():
    # Two independent pre-period changes: the sup-t critical value c solves (2Φ(c) − 1)² = 0.975.
    beta = [-0.04, -0.02, 0.1]
    # Changes β₋₁ − β₋₂ = 0.02 and 0 − β₋₁ = 0.02; var(β₋₂) = 2s², cov(β₋₂, β₋₁) = s², var(β₋₁) = s² makes
    # them independent, each with standard error s.
    s = 0.01
    cov = np.array([[2 * s**2, s**2, 0], [s**2, s**2, 0], [0, 0, s**2]])
    c = optimize.brentq(lambda x: (2 * stats.norm.cdf(x) - 1) ** 2 - 0.975, 1, 4)
    m_upper = 0.02 + c * s  # both changes are 0.02 with se s
    lo, hi = honest_interval(beta, cov, 2, 1.0)
    assert (hi - lo) / 2 == pytest.approx(Z9875 * s + m_upper, rel=2e-3)


def test_the_smoothness_interval_with_one_pre_period_is_the_fixed_length_interval_by_hand():
    # One pre- and one post-period: trend-removing weights are forced (θ̂ = β₁ + β₋₁, the linear extrapolation),
    # the bias is ε₀ itself (at most M), so the interval is θ̂ ± σ·cv(M/σ) with cv the folded normal's quantile.
    beta = [-0.01, 0.05]
    cov = np.array([[0.0001, 0.00003], [0.00003, 0.0002]])
    sigma = np.sqrt(0.0001 + 0.0002 + 2 * 0.00003)
    for m in (0.0, 0.005, 0.05):
        half = sigma * stats.foldnorm.ppf(0.95, m / sigma)
        assert honest_interval(beta, cov, 1, m, restriction=SD) == pytest.approx((0.04 - half, 0.04 + half),
                                                                                     rel=1e-9)


def _worst_bias(v: np.ndarray, n_pre: int, m: float) -> float:
    """The largest |v′δ| over gaps with δ_ref = 0 and |second differences| ≤ m, by a linear program written here."""
    n = v.size + 1
    full = np.insert(v, n_pre, 0.0)
    d2 = np.diff(np.eye(n), n=2, axis=0)
    bounds = [(0.0, 0.0) if i == n_pre else (None, None) for i in range(n)]
    out = []
    for sign in (1, -1):
        res = optimize.linprog(-sign * full, A_ub=np.vstack([d2, -d2]), b_ub=np.full(2 * len(d2), m), bounds=bounds)
        out.append(np.inf if res.status == 3 else -res.fun)
    return max(out)


def test_the_smoothness_interval_is_as_short_as_a_brute_force_search():
    # Two pre-periods, one post-period: the trend-removing weights on (−2, −1, +1) are v = (a, 1 − 2a, 1)
    # (−2a − (1 − 2a) + 1 = 0). The worst bias is M × that at M = 1 (a linear program written here); scan a on a
    # grid, polish the best with a bounded scalar search, and compare the shortest interval with ours.
    cov = np.array([[1.5, 0.4, 0.1], [0.4, 1.0, 0.2], [0.1, 0.2, 1.2]]) * 0.01**2
    beta = [0.0, 0.0, 0.0]

    def weights(a: float) -> np.ndarray:
        return np.array([a, 1 - 2 * a, 1.0])

    unit_bias = {a: _worst_bias(weights(a), 2, 1.0) for a in np.linspace(-2, 2, 161)}
    for m in (0.0, 0.004, 0.02):
        def half(a: float, m: float = m) -> float:
            v = weights(a)
            sigma = np.sqrt(v @ cov @ v)
            bias = m * (unit_bias[a] if a in unit_bias else _worst_bias(v, 2, 1.0))
            return float(sigma * stats.foldnorm.ppf(0.95, bias / sigma))

        start = min(unit_bias, key=half)
        polished = optimize.minimize_scalar(half, bounds=(start - 0.03, start + 0.03), method="bounded",
                                            options={"xatol": 1e-7})
        best = min(half(start), float(polished.fun))
        lo, hi = honest_interval(beta, cov, 2, m, restriction=SD)
        assert (hi - lo) / 2 == pytest.approx(best, rel=1e-4)


def test_intervals_widen_with_the_bound_and_contain_the_identified_set_at_the_estimate():
    beta = np.array([-0.03, 0.01, -0.01, 0.05, 0.04, 0.08])
    cov = (np.eye(6) + 0.3) * 0.005**2
    for kind, grid in ((RM, [0, 0.25, 0.5, 1, 2]), (SD, [0.06, 0.07, 0.1, 0.2])):
        cis = [honest_interval(beta, cov, 3, b, restriction=kind) for b in grid]
        widths = [hi - lo for lo, hi in cis]
        assert all(w2 > w1 for w1, w2 in itertools.pairwise(widths))
        for b, (lo, hi) in zip(grid, cis, strict=True):
            s_lo, s_hi = honest_identified_set(beta, 3, b, restriction=kind)
            assert lo < s_lo and s_hi < hi
        if kind == RM:
            assert all(lo2 <= lo1 and hi2 >= hi1 for (lo1, hi1), (lo2, hi2) in itertools.pairwise(cis))


# --------------------------------------------------------------------------------------------
# Monte Carlo coverage with a violation inside the restriction
# --------------------------------------------------------------------------------------------


def _coverage(kind: str, delta: np.ndarray, tau_post: np.ndarray, cov: np.ndarray, n_pre: int, bound: float,
              reps: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    theta = float(tau_post.mean())
    beta = delta + np.concatenate([np.zeros(n_pre), tau_post])
    draws = rng.multivariate_normal(beta, cov, size=reps)
    hits = 0
    for b in draws:
        lo, hi = honest_interval(b, cov, n_pre, bound, restriction=kind)
        hits += lo <= theta <= hi
    return hits / reps


def test_relative_magnitudes_intervals_cover_under_a_violation_at_the_boundary():
    # Pre-period gap −0.02, −0.01 (changes 0.01, 0.01); after training it keeps rising by 0.01 a period — the
    # most M̄ = 1 allows. The conventional interval misses often; the M̄ = 1 interval keeps its 95%.
    cov = (np.eye(4) * 0.7 + 0.3) * 0.006**2
    delta = np.array([-0.02, -0.01, 0.01, 0.02])
    tau = np.array([0.03, 0.05])
    reps = 1500
    floor = 0.95 - 3 * np.sqrt(0.05 * 0.95 / reps)
    assert _coverage(RM, delta, tau, cov, 2, 1.0, reps, 5) >= floor
    assert _coverage(RM, delta, tau, cov, 2, 0.0, reps, 5) < 0.85


def test_smoothness_intervals_cover_under_curvature_at_the_bound():
    # A gap that is a parabola through the reference: second differences exactly M everywhere, plus a linear
    # trend (which smoothness allows at no cost). Coverage must be at least 95%.
    m = 0.004
    t = np.array([-3, -2, -1, 1, 2], dtype=float)
    delta = m * t**2 / 2 + 0.01 * t
    cov = (np.eye(5) * 0.8 + 0.2) * 0.008**2
    tau = np.array([0.02, 0.03])
    reps = 1500
    floor = 0.95 - 3 * np.sqrt(0.05 * 0.95 / reps)
    assert _coverage(SD, delta, tau, cov, 3, m, reps, 8) >= floor
    assert _coverage(SD, delta, tau, cov, 3, 0.0, reps, 8) < 0.8


# --------------------------------------------------------------------------------------------
# Breakdown values
# --------------------------------------------------------------------------------------------


def test_the_breakdown_value_is_where_the_interval_reaches_zero_by_hand():
    # As in the Bonferroni test: the interval reaches 0 when z·se + M̄·m̄·2 = estimate.
    beta = [-0.02, 0.10, 0.12, 0.15]
    cov = np.eye(4) * 0.01**2
    se = 0.01 / np.sqrt(3)
    m_upper = 0.02 + Z9875 * 0.01
    expected = (0.37 / 3 - Z9875 * se) / (m_upper * 2)
    assert breakdown_value(beta, cov, 1) == pytest.approx(expected, rel=1e-5)
    # Without sampling noise (the identified set): estimate / (m · 2).
    assert breakdown_value(beta, cov, 1, basis="identified") == pytest.approx((0.37 / 3) / (0.02 * 2), rel=1e-5)
    # Already compatible with zero under parallel trends: 0.
    assert breakdown_value([-0.02, 0.01, 0.0, 0.0], cov, 1) == 0.0
    # Significant at 5% under parallel trends (t = 2.1) but not once α is split (2.1 < 2.24): any M̄ > 0 reaches 0.
    beta_edge = [-0.02, *(np.full(3, 2.1 * se))]
    assert breakdown_value(beta_edge, cov, 1) == 0.0


def test_the_roi_breakdown_for_an_affine_map_by_hand_and_for_a_function():
    # ROI = 8·effect − 0.4 is at or below zero once the effect can be 0.05 or less.
    beta = [-0.02, 0.10, 0.12, 0.15]
    cov = np.eye(4) * 0.01**2
    se = 0.01 / np.sqrt(3)
    m_upper = 0.02 + Z9875 * 0.01
    expected = (0.37 / 3 - 0.05 - Z9875 * se) / (m_upper * 2)
    assert roi_breakdown(beta, cov, 1, (8.0, -0.4)) == pytest.approx(expected, rel=1e-5)
    assert roi_breakdown(beta, cov, 1, lambda e: 8.0 * e - 0.4) == pytest.approx(expected, rel=1e-5)
    assert roi_breakdown(beta, cov, 1, (8.0, -0.4), basis="identified") == pytest.approx(
        (0.37 / 3 - 0.05) / 0.04, rel=1e-5)
    # A map decreasing in the effect (a cost per unit of effect) looks at the upper end instead.
    assert roi_breakdown(beta, cov, 1, (-1.0, 0.5), basis="identified") == pytest.approx((0.5 - 0.37 / 3) / 0.04,
                                                                                          rel=1e-5)
    assert roi_breakdown(beta, cov, 1, (8.0, -5.0)) == 0.0


def test_the_smoothness_breakdown_is_where_its_interval_reaches_zero():
    beta = [-0.01, 0.05]
    cov = np.array([[0.0001, 0.00003], [0.00003, 0.0002]])
    sigma = np.sqrt(0.00036)
    # θ̂ = 0.04 reaches zero when σ·cv(M/σ) = 0.04.
    expected = optimize.brentq(lambda m: sigma * stats.foldnorm.ppf(0.95, m / sigma) - 0.04, 0, 1)
    assert breakdown_value(beta, cov, 1, restriction=SD) == pytest.approx(expected, rel=2e-3)


# --------------------------------------------------------------------------------------------
# The grid, in words
# --------------------------------------------------------------------------------------------


def test_the_sensitivity_grid_words_the_verdict():
    beta = [-0.02, 0.10, 0.12, 0.15]
    cov = np.eye(4) * 0.01**2
    s = honest_sensitivity(beta, cov, 1, roi=(8.0, -0.4))
    assert isinstance(s, Sensitivity) and len(s.rows) == 9 and s.rows[0].bound == 0
    assert s.rows[4].lower == pytest.approx(0.37 / 3 - 0.04) and s.rows[4].bound == 1.0
    assert s.breakdown == pytest.approx(breakdown_value(beta, cov, 1))
    expected = roi_breakdown(beta, cov, 1, (8.0, -0.4))
    assert s.verdict == (f"ROI stays above 0 unless the trend gap moves after training by more than {expected:.2g}× "
                         "its largest move between periods before training")
    plain = honest_sensitivity(beta, cov, 1, grid=[0, 1])
    assert plain.verdict.startswith("the effect stays above zero unless the trend gap moves")
    null = honest_sensitivity([-0.02, 0.01, 0.0, 0.0], cov, 1, grid=[0, 1])
    assert null.verdict.startswith("the effect is not distinguishable from zero")
    smooth = honest_sensitivity(beta, cov, 1, restriction=SD)
    assert len(smooth.rows) == 5 and "slope changes by more than" in smooth.verdict
    text = s.summary()
    assert "identified set" in text and "breakdown M̄" in text and "ROI ≤ 0 possible" in text
    assert repr(s).startswith("Sensitivity(restriction='relative_magnitudes'") and "\n" not in repr(s)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: honest_identified_set([0.1, 0.2], 2, 1.0), "n_pre must leave"),
        (lambda: honest_identified_set([0.1, 0.2], 1, -1.0), "zero or positive"),
        (lambda: honest_identified_set([0.1, 0.2], 1, 1.0, restriction="bogus"), "restriction must be"),
        (lambda: honest_identified_set([0.1, 0.2, 0.3], 1, 1.0, target=[1.0]), "target must weight"),
        (lambda: honest_interval([0.1, 0.2], np.eye(3), 1, 1.0), "cov must be 2 × 2"),
        (lambda: breakdown_value([0.1, 0.2], np.eye(2), 1, basis="other"), "basis must be"),
    ],
)
def test_bad_inputs_are_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call()
