"""How much the months before training can tell about parallel trends.

An event study's lead (pre-period) coefficients are the usual check of parallel trends: if
trained units were already drifting away from the comparison before training, the drift would
show there. The habit "the pre-trend test does not reject (p ≥ 0.05), so trends are parallel"
reads too much into them. With two or three noisy leads the test has little power, and failing
to reject is not evidence of parallel trends (Roth 2022, "Pretest with caution"). This module
turns the leads into two statements that do carry evidence:

- **what the data rule out** — an equivalence test (:func:`equivalence_test`,
  :func:`equivalence_bound`): for a tolerance δ, whether every pre-period gap ``|β_k|`` is
  established to be below δ at level α, and the smallest δ for which that is established
  ("the data rule out pre-period gaps larger than δ");
- **what the conventional test could have seen** — the power of the joint Wald pre-test against
  a linear pre-trend of a given slope (:func:`pretest_power`), and the slopes it would detect
  half the time and 80% of the time (:func:`detectable_slope`).

:func:`pretrend_check` computes both and words a verdict. Every function works on plain arrays:
the lead coefficients and their covariance, as any event study reports them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize, stats

__all__ = [
    "EQUIVALENCE_SHARE",
    "PreTrendCheck",
    "detectable_slope",
    "equivalence_bound",
    "equivalence_test",
    "pretest_power",
    "pretrend_check",
]

FloatArray = NDArray[np.float64]

_TESTS = ("wald", "any")
_SIMULATIONS = 100_000

EQUIVALENCE_SHARE = 0.5
"""Pre-period gaps must be ruled out above this share of the estimated effect for parallel trends to count as shown.

Half the effect: a violation that large could still halve (or double) the answer, so ruling out
anything bigger is the least a pre-period must establish before the design leans on it."""


def _coefficients(coefficients: ArrayLike, cov: ArrayLike) -> tuple[FloatArray, FloatArray]:
    beta = np.atleast_1d(np.asarray(coefficients, dtype=np.float64))
    v = np.atleast_2d(np.asarray(cov, dtype=np.float64))
    if beta.ndim != 1 or beta.size == 0:
        raise ValueError("coefficients must be a non-empty vector of pre-period coefficients")
    if v.shape != (beta.size, beta.size):
        raise ValueError(f"cov must be {beta.size} × {beta.size} (got {v.shape[0]} × {v.shape[1]})")
    if not (np.all(np.isfinite(beta)) and np.all(np.isfinite(v))):
        raise ValueError("coefficients and cov must be finite")
    if np.any(np.diag(v) < 0) or not np.allclose(v, v.T, rtol=1e-8, atol=1e-12 * max(1.0, float(np.abs(v).max()))):
        raise ValueError("cov must be a symmetric covariance matrix")
    return beta, v


def _cov(cov: ArrayLike) -> FloatArray:
    v = np.atleast_2d(np.asarray(cov, dtype=np.float64))
    if v.ndim != 2 or v.shape[0] != v.shape[1] or v.shape[0] == 0:
        raise ValueError("cov must be a square covariance matrix of the pre-period coefficients")
    return _coefficients(np.zeros(v.shape[0]), v)[1]


def _alpha(alpha: float) -> None:
    if not 0 < alpha < 0.5:
        raise ValueError(f"alpha must be between 0 and 0.5 (got {alpha})")


def _distances(k: int, periods: Sequence[int] | None, reference: int) -> FloatArray:
    """How many periods each coefficient lies from the reference period (negative before it).

    A linear pre-trend of slope ``s`` per period puts ``s × distance`` in each coefficient, since
    coefficients are measured relative to the reference period.
    """
    if periods is None:
        periods = list(range(reference - k, reference))
    p = np.asarray(periods, dtype=np.float64)
    if p.shape != (k,):
        raise ValueError(f"periods must name one period per coefficient ({k}; got {p.size})")
    if np.any(p == reference):
        raise ValueError(f"the reference period {reference} has no coefficient (it is normalised to zero)")
    return p - reference


def _quantile(level: float, dof: float | None) -> float:
    return float(stats.norm.ppf(level) if dof is None else stats.t(dof).ppf(level))


# --------------------------------------------------------------------------------------------
# Equivalence: what the data rule out
# --------------------------------------------------------------------------------------------


def equivalence_bound(coefficients: ArrayLike, cov: ArrayLike, *, alpha: float = 0.05,
                      dof: float | None = None) -> float:
    """The smallest tolerance δ for which the data establish every pre-period gap is below δ.

    The intersection-union two one-sided tests (TOST) establish ``|β_k| < δ`` for every k at
    level α when, for every k, both one-sided tests reject: ``β̂_k + q·se_k < δ`` and
    ``β̂_k − q·se_k > −δ``, with ``q`` the normal's (or Student's t with ``dof``) 1 − α quantile.
    No multiplicity correction is needed: the null "some gap is at least δ" is a union, and it
    is rejected only if each of its parts is (Berger 1982). The bound is therefore

        δ* = max_k ( |β̂_k| + q·se_k ),

    and "the data rule out pre-period gaps larger than δ*" is a statement with a 1 − α
    guarantee, unlike "the pre-trend test did not reject". Only the variances are used; the
    test is valid whatever the correlation between leads (and conservative when they are
    strongly correlated).

    Parameters
    ----------
    coefficients, cov
        The pre-period (lead) coefficients and their covariance matrix.
    alpha
        The level of each one-sided test (0.05 gives a 90% two-sided band per coefficient).
    dof
        Degrees of freedom for Student's t quantiles (e.g. clusters − 1), or None for normal ones.
    """
    _alpha(alpha)
    beta, v = _coefficients(coefficients, cov)
    se = np.sqrt(np.diag(v))
    return float(np.max(np.abs(beta) + _quantile(1 - alpha, dof) * se))


def equivalence_test(coefficients: ArrayLike, cov: ArrayLike, tolerance: float, *, alpha: float = 0.05,
                     dof: float | None = None) -> tuple[bool, float]:
    """Whether every pre-period gap is established below ``tolerance`` (intersection-union TOST).

    Returns ``(established, p_value)``: the p-value is the largest of the 2·k one-sided
    p-values (``P(T ≥ (β̂_k + δ)/se_k)`` and ``P(T ≤ (β̂_k − δ)/se_k)`` under the boundary nulls
    ``β_k = −δ`` and ``β_k = δ``), and equivalence is established when it is below ``alpha`` —
    exactly when :func:`equivalence_bound` is below ``tolerance``.
    """
    _alpha(alpha)
    if not tolerance > 0:
        raise ValueError(f"tolerance must be positive (got {tolerance})")
    beta, v = _coefficients(coefficients, cov)
    se = np.sqrt(np.diag(v))
    dist = stats.norm if dof is None else stats.t(dof)
    with np.errstate(divide="ignore", invalid="ignore"):
        upper = dist.cdf((beta - tolerance) / se)  # null β_k ≥ δ
        lower = dist.sf((beta + tolerance) / se)   # null β_k ≤ −δ
    p_each = np.where(se > 0, np.maximum(upper, lower), np.where(np.abs(beta) < tolerance, 0.0, 1.0))
    p = float(np.max(p_each))
    return p < alpha, p


# --------------------------------------------------------------------------------------------
# Power: what the conventional pre-test could have seen
# --------------------------------------------------------------------------------------------


def _wald(v: FloatArray) -> tuple[FloatArray, int]:
    return np.asarray(np.linalg.pinv(v), dtype=np.float64), int(np.linalg.matrix_rank(v))


def _any_draws(v: FloatArray, seed: int) -> FloatArray:
    """Standardised normal noise of the coefficients, ``_SIMULATIONS`` × k (a fixed seed: same answer every run)."""
    rng = np.random.default_rng(seed)
    se = np.sqrt(np.diag(v))
    root = np.linalg.cholesky(v + 1e-14 * np.eye(len(v)) * max(1.0, float(np.abs(v).max())))
    return (rng.standard_normal((_SIMULATIONS, len(v))) @ root.T) / se


def pretest_power(cov: ArrayLike, slope: float, *, periods: Sequence[int] | None = None, reference: int = -1,
                  alpha: float = 0.05, test: str = "wald", seed: int = 7) -> float:
    """The probability that the conventional pre-test rejects when the pre-trend is linear with ``slope``.

    Under a linear pre-trend of ``slope`` per period the pre-period coefficients are normal with
    mean ``slope × (period − reference)`` and covariance ``cov``.

    ``test="wald"`` is the joint Wald test that every lead is zero (chi-square with rank(cov)
    degrees of freedom, as :func:`~training_roi.isolate.event_study.estimate_event_study` runs
    it); its power is exact: ``P(χ²_k(λ) > χ²_{k,1−α})`` with noncentrality
    ``λ = slope² · d′ cov⁻¹ d``. ``test="any"`` is the informal "some lead is individually
    significant at α (two-sided)"; its power is simulated from the joint normal with ``seed``
    (100,000 draws, so about ±0.003).

    Parameters
    ----------
    cov
        Covariance of the pre-period coefficients.
    slope
        The trend's change per period, in the outcome's units.
    periods, reference
        Each coefficient's period relative to training and the reference period (default: the
        k periods just before ``reference = -1``, as the event study lays them out).
    alpha
        The pre-test's level.
    test
        ``"wald"`` (joint chi-square test) or ``"any"`` (some lead significant on its own).
    seed
        Seed of the simulation behind ``test="any"``.
    """
    _alpha(alpha)
    if test not in _TESTS:
        raise ValueError(f"test must be one of {_TESTS} (got {test!r})")
    v = _cov(cov)
    d = _distances(len(v), periods, reference)
    if test == "wald":
        inv, df = _wald(v)
        if df == 0:
            return float("nan")
        lam = float(slope**2 * d @ inv @ d)
        return float(stats.ncx2.sf(stats.chi2.ppf(1 - alpha, df), df, lam)) if lam > 0 else alpha
    z = _any_draws(v, seed)
    c = float(stats.norm.ppf(1 - alpha / 2))
    return float(np.mean(np.max(np.abs(z + slope * d / np.sqrt(np.diag(v))), axis=1) > c))


def detectable_slope(cov: ArrayLike, power: float = 0.5, *, periods: Sequence[int] | None = None,
                     reference: int = -1, alpha: float = 0.05, test: str = "wald", seed: int = 7) -> float:
    """The (positive) linear pre-trend slope that the conventional pre-test detects with probability ``power``.

    Roth (2022) reports the slopes detected 50% and 80% of the time: trends smaller than those
    pass the pre-test more often than not, so passing it says little about them. For the Wald
    test the noncentrality with the required power is found exactly (root of the noncentral
    chi-square's survival function) and turned into a slope, ``sqrt(λ / d′ cov⁻¹ d)``; for
    ``test="any"`` the simulated power (common draws, ``seed``) is solved for the slope.
    A ``power`` at or below ``alpha`` needs no trend at all (0).
    """
    _alpha(alpha)
    if not 0 < power < 1:
        raise ValueError(f"power must be between 0 and 1 (got {power})")
    if test not in _TESTS:
        raise ValueError(f"test must be one of {_TESTS} (got {test!r})")
    v = _cov(cov)
    d = _distances(len(v), periods, reference)
    if power <= alpha:
        return 0.0
    if test == "wald":
        inv, df = _wald(v)
        info = float(d @ inv @ d)
        if df == 0 or info <= 0:
            return float("inf")
        crit = float(stats.chi2.ppf(1 - alpha, df))
        hi = 1.0
        while stats.ncx2.sf(crit, df, hi) < power:
            hi *= 2
        lam = optimize.brentq(lambda x: float(stats.ncx2.sf(crit, df, x)) - power, 0.0, hi, xtol=1e-12)
        return float(np.sqrt(lam / info))
    z = _any_draws(v, seed)
    scale = d / np.sqrt(np.diag(v))
    c = float(stats.norm.ppf(1 - alpha / 2))

    def excess(s: float) -> float:
        return float(np.mean(np.max(np.abs(z + s * scale), axis=1) > c)) - power

    hi = 1.0 / float(np.max(np.abs(scale)))
    while excess(hi) < 0:
        hi *= 2
    return float(optimize.brentq(excess, 0.0, hi, xtol=1e-10 * hi))


# --------------------------------------------------------------------------------------------
# The check, in words
# --------------------------------------------------------------------------------------------


def _g(x: float) -> str:
    return f"{x:.2g}" if abs(x) < 1 else f"{x:.3g}"


@dataclass(frozen=True)
class PreTrendCheck:
    """What the pre-period coefficients can and cannot tell about parallel trends."""

    coefficients: tuple[float, ...]
    std_errors: tuple[float, ...]
    periods: tuple[int, ...]
    """Each coefficient's period relative to training (the reference period has none)."""
    reference: int
    alpha: float
    wald: float
    """The joint Wald statistic that every lead is zero (the conventional pre-test)."""
    df: int
    p_value: float
    """The conventional pre-test's p-value (chi-square with ``df`` degrees of freedom)."""
    bound: float
    """The smallest δ for which the data establish every pre-period gap is below δ (TOST)."""
    slope_50: float
    """The linear pre-trend (per period) the conventional test detects half the time."""
    slope_80: float
    """The linear pre-trend (per period) the conventional test detects 80% of the time."""
    tolerance: float | None = None
    equivalent: bool | None = None
    """Whether every gap is established below ``tolerance`` (None without a tolerance)."""
    equivalence_p_value: float | None = None
    slope: float | None = None
    power: float | None = None
    """The conventional test's power against a linear trend of ``slope`` (None without one)."""

    @property
    def rejects(self) -> bool:
        """Whether the conventional pre-test finds the leads jointly different from zero at ``alpha``."""
        return bool(self.p_value < self.alpha)

    @property
    def verdict(self) -> str:
        """One line in words: pre-trends found, small (ruled out above a bound), or not knowable."""
        k = len(self.coefficients)
        periods = f"{k} pre-period{'s' if k != 1 else ''}"
        if self.rejects and self.equivalent:
            return (f"pre-trends are small but not zero: the {periods} differ from zero jointly "
                    f"(p = {self.p_value:.2g}), yet gaps above {_g(self.bound)} are ruled out")
        if self.rejects:
            return (f"pre-trends found: the {periods} are jointly different from zero (p = {self.p_value:.2g}); "
                    "parallel trends is doubtful")
        if self.equivalent:
            return f"pre-trends are small: gaps above {_g(self.bound)} ruled out"
        weak = (f"with {periods} the test would detect a trend of {_g(self.slope_50)} per period "
                "only half the time")
        if self.tolerance is not None:
            return (f"the pre-period cannot tell: gaps up to {_g(self.bound)} are not ruled out "
                    f"(tolerance {_g(self.tolerance)}); {weak}")
        return f"no pre-trend found, but only gaps above {_g(self.bound)} are ruled out: {weak}"

    def summary(self) -> str:
        """The check in a few lines: the conventional test, what it could see, what the data rule out."""
        level = f"{self.alpha:.0%}"
        lines = [
            self.verdict,
            "  leads         " + ", ".join(f"{p:+d}: {b:+.3g} ({s:.2g})" for p, b, s in
                                            zip(self.periods, self.coefficients, self.std_errors, strict=True)),
            f"  joint test    chi-square {self.wald:.2f} on {self.df} df, p = {self.p_value:.3g}",
            f"  its power     a linear trend of {_g(self.slope_50)}/period is detected 50% of the time, "
            f"{_g(self.slope_80)}/period 80%",
            f"  equivalence   gaps above {_g(self.bound)} ruled out (two one-sided tests per lead at {level})",
        ]
        if self.tolerance is not None:
            lines.append(f"  tolerance     {_g(self.tolerance)}: "
                         + ("established" if self.equivalent else "not established")
                         + f" (p = {self.equivalence_p_value:.3g})")
        if self.slope is not None and self.power is not None:
            lines.append(f"  power at {_g(self.slope)}/period  {self.power:.0%}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return (f"PreTrendCheck(leads={len(self.coefficients)}, p_value={self.p_value:.3g}, bound={self.bound:.4g}, "
                f"slope_50={self.slope_50:.4g}, slope_80={self.slope_80:.4g})")


def pretrend_check(
    coefficients: ArrayLike,
    cov: ArrayLike,
    *,
    periods: Sequence[int] | None = None,
    reference: int = -1,
    tolerance: float | None = None,
    slope: float | None = None,
    alpha: float = 0.05,
    dof: float | None = None,
    test: str = "wald",
    seed: int = 7,
) -> PreTrendCheck:
    """The conventional pre-test, its power, and the equivalence bound, with a verdict in words.

    Parameters
    ----------
    coefficients, cov
        The pre-period (lead) coefficients of an event study and their covariance (e.g.
        cluster-robust), relative to the reference period.
    periods, reference
        Each coefficient's period relative to training, and the reference period whose
        coefficient is normalised to zero. Default: the periods just before ``reference = -1``
        (for three leads, −4, −3, −2), as :func:`estimate_event_study` lays them out.
    tolerance
        The largest pre-period gap that would not matter (in the outcome's units, e.g. a
        fraction of the effect); when given, the verdict says whether the data rule out larger
        gaps.
    slope
        Optionally, a linear pre-trend whose detection probability the result reports.
    alpha
        The level of the conventional test and of each one-sided equivalence test.
    dof
        Degrees of freedom for the equivalence test's t quantiles (e.g. clusters − 1).
    test
        The conventional test whose power is reported: ``"wald"`` (joint, exact power) or
        ``"any"`` (some lead individually significant, simulated power).
    seed
        Seed of the simulation behind ``test="any"`` (the answer is the same on every run).
    """
    beta, v = _coefficients(coefficients, cov)
    d = _distances(beta.size, periods, reference)
    inv, df = _wald(v)
    wald = float(beta @ inv @ beta)
    p_value = float(stats.chi2.sf(wald, df)) if df else float("nan")
    equivalent: bool | None = None
    eq_p: float | None = None
    if tolerance is not None:
        equivalent, eq_p = equivalence_test(beta, v, tolerance, alpha=alpha, dof=dof)
    return PreTrendCheck(
        coefficients=tuple(float(b) for b in beta),
        std_errors=tuple(float(s) for s in np.sqrt(np.diag(v))),
        periods=tuple(int(p) for p in d + reference),
        reference=reference,
        alpha=alpha,
        wald=wald,
        df=df,
        p_value=p_value,
        bound=equivalence_bound(beta, v, alpha=alpha, dof=dof),
        slope_50=detectable_slope(v, 0.5, periods=periods, reference=reference, alpha=alpha, test=test, seed=seed),
        slope_80=detectable_slope(v, 0.8, periods=periods, reference=reference, alpha=alpha, test=test, seed=seed),
        tolerance=tolerance,
        equivalent=equivalent,
        equivalence_p_value=eq_p,
        slope=slope,
        power=None if slope is None else pretest_power(v, slope, periods=periods, reference=reference, alpha=alpha,
                                                        test=test, seed=seed),
    )
