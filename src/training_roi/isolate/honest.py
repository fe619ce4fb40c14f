"""How wrong parallel trends may be before the conclusion changes (Rambachan & Roth 2023).

An event study's post-period coefficients estimate the effect only if, without training, the
trained units' outcome would have moved like the comparison's. Rambachan & Roth write the
coefficients as ``β = τ + δ``: the effect ``τ`` (zero before training) plus a *trend gap* ``δ``
that parallel trends sets to zero. Instead of assuming ``δ_post = 0`` they bound it by what the
pre-period shows, and report everything the data allow:

- **relative magnitudes** ``Δ^RM(M̄)``: from one post-period to the next, the gap changes by at
  most ``M̄`` times the largest change between consecutive pre-periods (``M̄ = 1``: no larger
  than the worst the pre-period has seen);
- **smoothness** ``Δ^SD(M)``: the gap's slope changes by at most ``M`` per period, before and
  after training (``M = 0``: the gap is a straight line, extrapolated from the pre-period).

For a target ``θ = l′τ_post`` (by default the average of the post-period effects) the
:func:`honest_identified_set` is every value compatible with the coefficients and the restriction, by
linear programming; :func:`honest_interval` adds the sampling uncertainty; the
:func:`breakdown_value` is the smallest ``M̄`` (or ``M``) at which the interval reaches zero — and
:func:`roi_breakdown` the smallest at which a return on investment at or below zero becomes
possible, for a sentence like "ROI stays above 0 unless the trend gap moves after training by
more than 1.4× its largest move before it". :func:`honest_sensitivity` runs a grid and words it.

Layout: ``beta`` holds the ``n_pre`` pre-period coefficients in time order, then the post-period
ones; the reference period between them (the one before training in
:func:`~training_roi.isolate.event_study.estimate_event_study`) is normalised to zero and has no
entry. ``cov`` is their joint covariance (e.g. cluster-robust).

The intervals here are simpler than Rambachan & Roth's conditional tests, valid but sometimes
wider; :func:`honest_interval` states each construction and its coverage.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import linalg, optimize, special

__all__ = [
    "Sensitivity",
    "SensitivityRow",
    "breakdown_value",
    "honest_identified_set",
    "honest_interval",
    "honest_sensitivity",
    "roi_breakdown",
]

FloatArray = NDArray[np.float64]
Roi = Callable[[float], float] | tuple[float, float]

RESTRICTIONS = ("relative_magnitudes", "smoothness")
_SUP_T_DRAWS = 200_000
_SEARCH_LIMIT = 1e6


# --------------------------------------------------------------------------------------------
# The problem: coefficients, their layout, the target
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Problem:
    beta: FloatArray
    cov: FloatArray
    n_pre: int
    target: FloatArray

    @property
    def n_post(self) -> int:
        return self.beta.size - self.n_pre

    @property
    def estimate(self) -> float:
        """The target under parallel trends: ``l′β_post``."""
        return float(self.target @ self.beta[self.n_pre:])

    @property
    def std_error(self) -> float:
        v = self.cov[self.n_pre:, self.n_pre:]
        return float(np.sqrt(max(float(self.target @ v @ self.target), 0.0)))


def _problem(beta: ArrayLike, cov: ArrayLike | None, n_pre: int, target: ArrayLike | None) -> _Problem:
    b = np.asarray(beta, dtype=np.float64).ravel()
    if not 1 <= n_pre < b.size:
        raise ValueError(f"n_pre must leave at least one pre- and one post-period coefficient "
                         f"(got n_pre={n_pre} of {b.size})")
    n_post = b.size - n_pre
    if target is None:
        weights = np.full(n_post, 1.0 / n_post)
    else:
        weights = np.asarray(target, dtype=np.float64).ravel()
        if weights.size != n_post:
            raise ValueError(f"target must weight the {n_post} post-period coefficients (got {weights.size})")
    v = np.zeros((b.size, b.size)) if cov is None else np.atleast_2d(np.asarray(cov, dtype=np.float64))
    if v.shape != (b.size, b.size):
        raise ValueError(f"cov must be {b.size} × {b.size} (got {v.shape[0]} × {v.shape[1]})")
    if not (np.all(np.isfinite(b)) and np.all(np.isfinite(v)) and np.all(np.isfinite(weights))):
        raise ValueError("beta, cov and target must be finite")
    if np.any(np.diag(v) < 0) or not np.allclose(v, v.T, atol=1e-12 * max(1.0, float(np.abs(v).max()))):
        raise ValueError("cov must be a symmetric covariance matrix")
    return _Problem(b, v, n_pre, weights)


def _restriction(name: str) -> str:
    if name not in RESTRICTIONS:
        raise ValueError(f"restriction must be one of {RESTRICTIONS} (got {name!r})")
    return name


def _check_bound(bound: float) -> None:
    if not bound >= 0:
        raise ValueError(f"the restriction's bound must be zero or positive (got {bound})")


def _differences(n: int, order: int) -> FloatArray:
    """The ``order``-th difference operator on a vector of ``n`` periods ((n − order) × n)."""
    return np.diff(np.eye(n), n=order, axis=0)


# --------------------------------------------------------------------------------------------
# Identified sets by linear programming
# --------------------------------------------------------------------------------------------


def _lp_range(objective: FloatArray, a_ub: FloatArray, b_ub: FloatArray,
              fixed: dict[int, float]) -> tuple[float, float] | None:
    """The smallest and largest ``objective′δ`` over ``{δ : A δ ≤ b}`` with some entries fixed (None if empty)."""
    bounds = [(fixed[i], fixed[i]) if i in fixed else (None, None) for i in range(objective.size)]
    ends = []
    for sign in (1.0, -1.0):
        res = optimize.linprog(sign * objective, A_ub=a_ub, b_ub=b_ub, bounds=bounds, method="highs")
        if res.status == 2:
            return None
        if res.status == 3:
            ends.append(-sign * np.inf)
            continue
        if res.status != 0:
            raise RuntimeError(f"linear program failed: {res.message}")
        ends.append(sign * float(res.fun))
    return ends[0], ends[1]


def _largest_pre_change(pre: FloatArray) -> float:
    """The largest change of the gap between consecutive pre-periods, the reference (zero) included."""
    return float(np.max(np.abs(np.diff(np.append(pre, 0.0)))))


def _gap_range(p: _Problem, restriction: str, bound: float, pre: FloatArray) -> tuple[float, float] | None:
    """The range of ``l′δ_post`` over the restriction, given the pre-period gaps ``pre``."""
    n = p.beta.size + 1  # the reference period included, at index n_pre
    objective = np.zeros(n)
    objective[p.n_pre + 1:] = p.target
    fixed = {i: float(pre[i]) for i in range(p.n_pre)} | {p.n_pre: 0.0}
    if restriction == "relative_magnitudes":
        rows = _differences(n, 1)[p.n_pre:]  # changes from the reference period on
        limit = bound * _largest_pre_change(pre)
    else:
        rows = _differences(n, 2)
        limit = bound
    a_ub = np.vstack([rows, -rows])
    return _lp_range(objective, a_ub, np.full(a_ub.shape[0], limit), fixed)


def honest_identified_set(beta: ArrayLike, n_pre: int, bound: float, *, restriction: str = "relative_magnitudes",
                   target: ArrayLike | None = None) -> tuple[float, float]:
    """Every value of the target compatible with the coefficients and the restriction (no sampling noise).

    With the pre-period gaps known (``δ_pre = β_pre``), the target is ``l′β_post − l′δ_post``
    and ``δ_post`` ranges over a polyhedron; the two ends are linear programs
    (``scipy.optimize.linprog``, HiGHS):

    - relative magnitudes: ``|δ_{t+1} − δ_t| ≤ M̄ · max_{s<0} |δ_{s+1} − δ_s|`` for every
      change from the reference period on;
    - smoothness: ``|(δ_{t+1} − δ_t) − (δ_t − δ_{t−1})| ≤ M`` at every period with both
      neighbours, pre-periods included.

    Parameters
    ----------
    beta
        The ``n_pre`` pre-period coefficients then the post-period ones (reference period left out).
    n_pre
        How many of ``beta`` are pre-period coefficients.
    bound
        ``M̄`` (relative magnitudes, a multiple) or ``M`` (smoothness, in the outcome's units per period²).
    restriction
        ``"relative_magnitudes"`` or ``"smoothness"``.
    target
        Weights ``l`` on the post-period effects; default their plain average.

    Returns
    -------
    tuple of float
        ``(lower, upper)``; ``(nan, nan)`` when the pre-period alone already breaks the
        smoothness restriction (the set is empty: the data refute that ``M``).
    """
    _check_bound(bound)
    p = _problem(beta, None, n_pre, target)
    gap = _gap_range(p, _restriction(restriction), bound, p.beta[:n_pre])
    if gap is None:
        return float("nan"), float("nan")
    return p.estimate - gap[1], p.estimate - gap[0]


# --------------------------------------------------------------------------------------------
# Confidence intervals
# --------------------------------------------------------------------------------------------


def _z(level: float) -> float:
    return float(special.ndtri(level))


@lru_cache(maxsize=256)
def _sup_t(corr: tuple[float, ...], k: int, level: float) -> float:
    """The ``level`` quantile of ``max_s |Z_s|`` for ``Z ~ N(0, corr)`` (a simultaneous band's critical value).

    Exact for one difference; otherwise simulated with a fixed seed (200,000 draws).
    """
    if k == 1:
        return _z(0.5 + level / 2)
    r = np.asarray(corr).reshape(k, k)
    w, q = np.linalg.eigh(r)
    root = q * np.sqrt(np.clip(w, 0.0, None))
    z = np.random.default_rng(20230).standard_normal((_SUP_T_DRAWS, k)) @ root.T
    return float(np.quantile(np.max(np.abs(z), axis=1), level))


@lru_cache(maxsize=256)
def _rm_unit(target: tuple[float, ...]) -> float:
    """``max l′δ_post`` when every post-period change is at most 1 in size (the set scales with ``M̄ · m``)."""
    p = _Problem(np.zeros(1 + len(target)), np.zeros((1, 1)), 1, np.asarray(target))
    gap = _gap_range(p, "relative_magnitudes", 1.0, np.array([-1.0]))
    assert gap is not None
    return gap[1]


def _pre_change_upper(p: _Problem, level: float) -> float:
    """An upper confidence bound at ``level`` for the largest pre-period change of the true gap.

    The changes ``Dβ_pre`` estimate ``Dδ_pre`` without bias (``τ_pre = 0``); a simultaneous
    (sup-t) band ``|Dβ̂ − Dδ| ≤ c·se`` covers all of them with probability ``level``, so
    ``max |Dδ| ≤ max (|Dβ̂| + c·se)`` with at least that probability.
    """
    d = _differences(p.n_pre + 1, 1)[:, : p.n_pre]
    changes = d @ p.beta[: p.n_pre]
    v = d @ p.cov[: p.n_pre, : p.n_pre] @ d.T
    se = np.sqrt(np.clip(np.diag(v), 0.0, None))
    c = 0.0
    if np.any(se > 0):
        keep = se > 0
        corr = v[np.ix_(keep, keep)] / np.outer(se[keep], se[keep])
        c = _sup_t(tuple(np.round(corr, 12).ravel().tolist()), int(keep.sum()), level)
    return float(np.max(np.abs(changes) + c * se))


def _cv(bias: float, alpha: float) -> float:
    """The 1 − α quantile of ``|N(bias, 1)|``: the critical value of a fixed-length CI with that worst-case bias."""
    b = abs(bias)
    lo, hi = b + _z(1 - alpha), b + _z(1 - alpha / 2)  # P(|N(b,1)| ≤ c) ≥ 1 − α holds at hi, fails below lo

    def excess(c: float) -> float:
        return float(special.ndtr(c - b) - special.ndtr(-c - b) - (1 - alpha))

    if excess(hi) <= 0:  # b = 0 (up to rounding): the two-sided normal quantile
        return hi
    if excess(lo) >= 0:
        return lo
    return float(optimize.brentq(excess, lo, hi, xtol=1e-14))


def _sd_bias_map(n_pre: int, n_post: int) -> FloatArray:
    """The map from the gap's second differences to the gap itself, when its slope at the reference is zero.

    Any gap with ``δ_ref = 0`` is ``s·t + K ε`` (``ε`` its second differences, ``s`` its slope
    at the reference); this returns ``K`` without the reference's row. The linear part
    ``s·t`` is free under smoothness, so an estimator is usable only if it ignores it.
    """
    n = n_pre + 1 + n_post
    rows = np.vstack([_differences(n, 2), np.eye(n)[n_pre], np.eye(n)[n_pre + 1] - np.eye(n)[n_pre]])
    k = np.linalg.inv(rows)[:, : n - 2]
    return np.asarray(np.delete(k, n_pre, axis=0), dtype=np.float64)


@lru_cache(maxsize=256)
def _flci(cov: tuple[float, ...], n_pre: int, target: tuple[float, ...], bound: float,
          alpha: float) -> tuple[tuple[float, ...], float]:
    """The affine estimator's pre-period weights and half-length of the fixed-length CI under smoothness.

    Minimises ``σ(v) · cv_α(M · b(v) / σ(v))`` over pre-period weights ``v`` that remove any
    linear trend (``Σ v_t t + Σ l_t t = 0``), ``b(v) = Σ |c_ε(v)|`` being the worst-case bias
    per unit of ``M``; the problem is solved with auxiliary variables ``a ≥ |c_ε|`` (SLSQP).
    """
    n_post = len(target)
    n = n_pre + n_post
    v_all = np.asarray(cov).reshape(n, n)
    weights_post = np.asarray(target)
    t_pre = np.arange(-n_pre, 0, dtype=np.float64)
    t_post = np.arange(1, n_post + 1, dtype=np.float64)
    k = _sd_bias_map(n_pre, n_post)
    base = -float(weights_post @ t_post) / float(t_pre @ t_pre) * t_pre
    null = linalg.null_space(t_pre[None, :])  # n_pre × (n_pre − 1)
    m = null.shape[1]

    def weights(u: FloatArray) -> FloatArray:
        return np.concatenate([base + null @ u, weights_post])

    def sd(u: FloatArray) -> float:
        w = weights(u)
        return float(np.sqrt(max(float(w @ v_all @ w), 1e-300)))

    def bias_weights(u: FloatArray) -> FloatArray:
        return np.asarray(weights(u) @ k, dtype=np.float64)

    def half(u: FloatArray, bias: float) -> float:
        s = sd(u)
        return s * _cv(bound * bias / s, alpha)

    u0 = np.zeros(m)
    scale = max(sd(u0), 1e-300)
    best = (u0, half(u0, float(np.abs(bias_weights(u0)).sum())))
    if m:
        c0 = np.abs(bias_weights(u0))
        x0 = np.concatenate([u0, c0])

        def objective(x: FloatArray) -> float:
            return half(x[:m], float(x[m:].sum())) / scale

        cons = [{"type": "ineq", "fun": lambda x: x[m:] - bias_weights(x[:m])},
                {"type": "ineq", "fun": lambda x: x[m:] + bias_weights(x[:m])}]
        res = optimize.minimize(objective, x0, method="SLSQP", constraints=cons,
                                options={"ftol": 1e-12, "maxiter": 500})
        u = np.asarray(res.x[:m], dtype=np.float64)
        candidate = half(u, float(np.abs(bias_weights(u)).sum()))  # re-evaluated: the exact worst case
        if candidate < best[1]:
            best = (u, candidate)
    return tuple(weights(best[0])[:n_pre].tolist()), best[1]


def _interval(p: _Problem, restriction: str, bound: float, confidence: float,
              pre_share: float) -> tuple[float, float]:
    alpha = 1 - confidence
    if restriction == "smoothness":
        v_pre, half = _flci(tuple(p.cov.ravel().tolist()), p.n_pre, tuple(p.target.tolist()),
                            float(bound), alpha)
        centre = float(np.asarray(v_pre) @ p.beta[: p.n_pre]) + p.estimate
        return centre - half, centre + half
    if bound == 0:
        half = _z(1 - alpha / 2) * p.std_error
        return p.estimate - half, p.estimate + half
    alpha_pre = pre_share * alpha
    m_upper = _pre_change_upper(p, 1 - alpha_pre)
    half = _z(1 - (alpha - alpha_pre) / 2) * p.std_error + bound * m_upper * _rm_unit(tuple(p.target.tolist()))
    return p.estimate - half, p.estimate + half


def honest_interval(beta: ArrayLike, cov: ArrayLike, n_pre: int, bound: float, *,
                        restriction: str = "relative_magnitudes", target: ArrayLike | None = None,
                        confidence: float = 0.95, pre_share: float = 0.5) -> tuple[float, float]:
    """A confidence interval for the target that stays valid when parallel trends fails within the restriction.

    **Relative magnitudes** (a Bonferroni union over the pre-period's uncertainty). The set at
    the estimate is ``l′β̂_post ± M̄ · m · U(l)``, where ``m`` is the largest pre-period change
    and ``U(l)`` the largest ``l′δ_post`` with every post-period change at most 1 (a linear
    program). The interval replaces ``m`` by an upper confidence bound ``m̄`` at level
    ``1 − pre_share·α`` (a simultaneous sup-t band over the pre-period changes) and widens by
    the target's sampling error at level ``1 − (1 − pre_share)·α``::

        l′β̂_post ± ( z · se(l′β̂_post) + M̄ · m̄ · U(l) ).

    *Coverage*: at least ``confidence`` for every trend gap in ``Δ^RM(M̄)`` and every effect,
    in the normal limit (both events hold together with probability at least ``1 − α`` by the
    union bound, and then the true target is inside; the band's critical value is simulated
    with a fixed seed, exact with one pre-period). It is conservative — often well above
    the nominal level — and at ``M̄ = 0`` it is the conventional interval (exact coverage when
    the post-period gap is zero). Rambachan & Roth's conditional tests are tighter.

    **Smoothness** (a fixed-length interval à la Armstrong & Kolesár, as in Rambachan & Roth §4):
    an affine estimator ``v′β̂_pre + l′β̂_post`` whose pre-period weights remove any linear
    trend; its bias is at most ``M · b(v)`` over ``Δ^SD(M)``, and the interval is the estimate
    ± ``σ_v · cv_α(M·b(v)/σ_v)``, ``cv_α(t)`` being the 1 − α quantile of ``|N(t, 1)|``. The
    weights minimise that length given ``cov`` alone (never the estimates). *Coverage*: at
    least ``confidence`` for every gap in ``Δ^SD(M)``, exactly that at the worst-case gap; the
    length is numerically, not provably, minimal — which affects its width, not its validity.

    Parameters
    ----------
    beta, cov
        Pre-period then post-period coefficients (reference period left out) and their covariance.
    n_pre
        How many of ``beta`` are pre-period coefficients.
    bound
        ``M̄`` (relative magnitudes) or ``M`` (smoothness).
    restriction
        ``"relative_magnitudes"`` or ``"smoothness"``.
    target
        Weights on the post-period effects; default their average.
    confidence
        The coverage aimed at.
    pre_share
        Relative magnitudes only: the share of ``α`` spent on the pre-period's largest change.
    """
    _check_bound(bound)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1 (got {confidence})")
    if not 0 < pre_share < 1:
        raise ValueError(f"pre_share must be between 0 and 1 (got {pre_share})")
    return _interval(_problem(beta, cov, n_pre, target), _restriction(restriction), bound, confidence, pre_share)


# --------------------------------------------------------------------------------------------
# Breakdown values
# --------------------------------------------------------------------------------------------


def _ends(p: _Problem, restriction: str, bound: float, confidence: float, basis: str) -> tuple[float, float]:
    if basis == "ci":
        return _interval(p, restriction, bound, confidence, 0.5)
    gap = _gap_range(p, restriction, bound, p.beta[: p.n_pre])
    return (float("nan"), float("nan")) if gap is None else (p.estimate - gap[1], p.estimate - gap[0])


def _smallest(reaches: Callable[[float], bool], start: float, rel_tol: float) -> float:
    """The smallest bound at which ``reaches`` turns true (0 if already at 0, inf if never up to the search limit).

    Doubling from ``start`` finds a bound where it holds, then bisection narrows the step; the
    answer is exact when ``reaches`` is monotone in the bound (it is for relative magnitudes, whose
    intervals are nested).
    """
    if reaches(0.0):
        return 0.0
    hi = start
    while not reaches(hi):
        hi *= 2
        if hi > _SEARCH_LIMIT * start:
            return float("inf")
    lo = 0.0
    while hi - lo > rel_tol * hi:
        if hi < 1e-12 * start:  # true for every positive bound: the interval jumps at 0 (see honest_interval)
            return 0.0
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if reaches(mid) else (mid, hi)
    return hi


def _basis(basis: str) -> str:
    if basis not in ("ci", "identified"):
        raise ValueError(f"basis must be 'ci' or 'identified' (got {basis!r})")
    return basis


def _start(p: _Problem, restriction: str) -> float:
    return 1.0 if restriction == "relative_magnitudes" else max(p.std_error, 1e-12 * max(1.0, abs(p.estimate)))


def breakdown_value(beta: ArrayLike, cov: ArrayLike, n_pre: int, *, restriction: str = "relative_magnitudes",
                    target: ArrayLike | None = None, confidence: float = 0.95, threshold: float = 0.0,
                    basis: str = "ci") -> float:
    """The smallest ``M̄`` (or ``M``) at which the interval reaches ``threshold`` (by default zero).

    Below it the conclusion "the effect is above (or below) the threshold" survives every trend
    gap the restriction allows. ``basis="ci"`` uses :func:`honest_interval` (sampling
    uncertainty included); ``basis="identified"`` the :func:`honest_identified_set` at the estimates.
    0 when the interval already contains the threshold under parallel trends; ``inf`` when no
    bound up to a million times the search's starting scale reaches it. Relative magnitudes'
    intervals are nested, so the answer is exact (to 10⁻⁶); smoothness' fixed-length intervals
    move with ``M``, and the bisection assumes they reach the threshold once and for good.
    """
    p = _problem(beta, cov, n_pre, target)
    kind, how = _restriction(restriction), _basis(basis)

    def reaches(bound: float) -> bool:
        lo, hi = _ends(p, kind, bound, confidence, how)
        return bool(lo <= threshold <= hi)  # an empty set (nan: the data refute the bound) does not

    return _smallest(reaches, _start(p, kind), 1e-6 if kind == "relative_magnitudes" else 1e-3)


def _roi_function(roi: Roi) -> Callable[[float], float]:
    if callable(roi):
        return roi
    a, b = (float(x) for x in roi)
    return lambda effect: a * effect + b


def roi_breakdown(beta: ArrayLike, cov: ArrayLike, n_pre: int, roi: Roi, *,
                  restriction: str = "relative_magnitudes", target: ArrayLike | None = None,
                  confidence: float = 0.95, basis: str = "ci") -> float:
    """The smallest ``M̄`` (or ``M``) at which a return on investment at or below zero becomes possible.

    ``roi`` maps the target effect to the ROI: a function (assumed monotone in the effect, so
    the interval's ends are its extremes) or ``(a, b)`` for ``ROI = a·effect + b``. The ROI is
    "possibly ≤ 0" at a bound when it is at or below zero at either end of the interval
    (:func:`honest_interval`, or the :func:`honest_identified_set` with ``basis="identified"``).
    0 when that is so already under parallel trends.
    """
    p = _problem(beta, cov, n_pre, target)
    kind, how, f = _restriction(restriction), _basis(basis), _roi_function(roi)

    def reaches(bound: float) -> bool:
        lo, hi = _ends(p, kind, bound, confidence, how)
        return not np.isnan(lo) and min(f(lo), f(hi)) <= 0  # an empty set (the data refute the bound) does not

    return _smallest(reaches, _start(p, kind), 1e-6 if kind == "relative_magnitudes" else 1e-3)


# --------------------------------------------------------------------------------------------
# A grid, in words
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SensitivityRow:
    """One bound of the grid: the identified set and the confidence interval under it."""

    bound: float
    lower: float
    upper: float
    ci_low: float
    ci_high: float

    def __repr__(self) -> str:
        return (f"SensitivityRow(bound={self.bound:.4g}, set=({self.lower:.4g}, {self.upper:.4g}), "
                f"ci=({self.ci_low:.4g}, {self.ci_high:.4g}))")


def _g(x: float) -> str:
    return "∞" if x == float("inf") else (f"{x:.2g}" if abs(x) < 1 else f"{x:.3g}")


@dataclass(frozen=True)
class Sensitivity:
    """How the target's interval widens as parallel trends is allowed to fail, and where it breaks down."""

    restriction: str
    target: tuple[float, ...]
    estimate: float
    """The target under parallel trends (``l′β̂_post``)."""
    std_error: float
    confidence: float
    rows: tuple[SensitivityRow, ...]
    breakdown: float
    """The smallest bound at which the confidence interval reaches zero."""
    roi_breakdown: float | None = None
    """The smallest bound at which ROI ≤ 0 becomes possible (None without a ROI mapping)."""

    def _violation(self, bound: float) -> str:
        if self.restriction == "relative_magnitudes":
            return (f"the trend gap moves after training by more than {_g(bound)}× its largest move "
                    "between periods before training")
        return f"the trend gap's slope changes by more than {_g(bound)} per period"

    @property
    def verdict(self) -> str:
        """One line: how large a violation of parallel trends the conclusion survives."""
        if self.roi_breakdown is not None:
            if self.roi_breakdown == 0:
                return "ROI at or below 0 is possible even if trends stay parallel after training"
            if self.roi_breakdown == float("inf"):
                return f"ROI stays above 0 for every {self._name} searched"
            return f"ROI stays above 0 unless {self._violation(self.roi_breakdown)}"
        if self.breakdown == 0:
            return "the effect is not distinguishable from zero even if trends stay parallel after training"
        side = "above" if self.estimate > 0 else "below"
        if self.breakdown == float("inf"):
            return f"the effect stays {side} zero for every {self._name} searched"
        return f"the effect stays {side} zero unless {self._violation(self.breakdown)}"

    @property
    def _name(self) -> str:
        return "M̄" if self.restriction == "relative_magnitudes" else "M"

    def summary(self) -> str:
        """The grid as a small table under the verdict."""
        title = "relative magnitudes (M̄)" if self.restriction == "relative_magnitudes" else "smoothness (M)"
        level = f"{self.confidence:.0%}"
        lines = [f"sensitivity to parallel trends, {title}: {self.verdict}",
                 f"  estimate under parallel trends {self.estimate:+.4g} (se {self.std_error:.3g})",
                 f"  {self._name:>8}  {'identified set':>24}  {level + ' interval':>24}"]
        for r in self.rows:
            ident = "empty (refuted)" if not np.isfinite(r.lower) else f"{r.lower:+.4g} to {r.upper:+.4g}"
            lines.append(f"  {r.bound:>8.3g}  {ident:>24}  {f'{r.ci_low:+.4g} to {r.ci_high:+.4g}':>24}")
        lines.append(f"  breakdown {self._name} = {_g(self.breakdown)} (interval reaches 0)"
                     + ("" if self.roi_breakdown is None else f"; ROI ≤ 0 possible from {_g(self.roi_breakdown)}"))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        extra = "" if self.roi_breakdown is None else f", roi_breakdown={self.roi_breakdown:.4g}"
        return (f"Sensitivity(restriction={self.restriction!r}, estimate={self.estimate:.4g}, "
                f"rows={len(self.rows)}, breakdown={self.breakdown:.4g}{extra})")


def honest_sensitivity(beta: ArrayLike, cov: ArrayLike, n_pre: int, *, restriction: str = "relative_magnitudes",
                       grid: Sequence[float] | None = None, target: ArrayLike | None = None,
                       confidence: float = 0.95, roi: Roi | None = None) -> Sensitivity:
    """The identified set and confidence interval over a grid of bounds, the breakdown values and a verdict.

    Parameters
    ----------
    beta, cov
        Pre-period then post-period coefficients (reference period left out) and their covariance.
    n_pre
        How many of ``beta`` are pre-period coefficients.
    restriction
        ``"relative_magnitudes"`` (grid of ``M̄``, default 0, 0.25, …, 2) or ``"smoothness"``
        (grid of ``M``, default 0, ¼, ½, ¾ and 1 times the target's standard error).
    grid
        The bounds to report.
    target
        Weights on the post-period effects; default their average.
    confidence
        The intervals' coverage.
    roi
        Optionally the map from the target to ROI (a monotone function, or ``(a, b)`` for
        ``a·effect + b``); the result then carries :func:`roi_breakdown`.
    """
    p = _problem(beta, cov, n_pre, target)
    kind = _restriction(restriction)
    if grid is None:
        grid = (np.arange(9) * 0.25).tolist() if kind == "relative_magnitudes" else \
            (np.arange(5) * 0.25 * p.std_error).tolist()
    rows = []
    for bound in grid:
        _check_bound(bound)
        lo, hi = _ends(p, kind, bound, confidence, "identified")
        c_lo, c_hi = _interval(p, kind, bound, confidence, 0.5)
        rows.append(SensitivityRow(float(bound), lo, hi, c_lo, c_hi))
    return Sensitivity(
        restriction=kind,
        target=tuple(p.target.tolist()),
        estimate=p.estimate,
        std_error=p.std_error,
        confidence=confidence,
        rows=tuple(rows),
        breakdown=breakdown_value(p.beta, p.cov, n_pre, restriction=kind, target=p.target, confidence=confidence),
        roi_breakdown=None if roi is None else roi_breakdown(p.beta, p.cov, n_pre, roi, restriction=kind,
                                                             target=p.target, confidence=confidence),
    )
