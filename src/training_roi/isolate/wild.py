"""Inference with few clusters: the wild cluster restricted bootstrap.

A training program is often rolled out by team, region or office, so the units whose outcomes
move together — the clusters — are few. The cluster-robust (CR1) standard error estimates a
variance from one score sum per cluster; with a handful of clusters that estimate is noisy and
biased down, and the t-test over-rejects, even with Student's t on G − 1 degrees of freedom
(Cameron, Gelbach & Miller 2008; MacKinnon & Webb 2017). The wild cluster *restricted* (WCR)
bootstrap keeps close to its level: it imposes the null hypothesis, re-draws the restricted
residuals cluster by cluster with random signs, and compares the CR1 t-statistic with its
bootstrap distribution.

- :func:`wild_cluster_bootstrap` — the WCR bootstrap (Roodman et al. 2019's "11" variant: CR1
  in the original and every bootstrap regression) for one coefficient of a (weighted) linear
  regression: p-value and confidence interval by test inversion. Rademacher weights (±1), or
  Webb's six-point weights when clusters are few (G ≤ 12: 2^G sign draws are too few distinct
  values for a smooth p-value; Webb 2023); every possible draw is enumerated when there are no
  more of them than ``draws``, so the p-value then has no simulation error.
- :func:`choose_inference` — the rule, in words: with fewer than about 30 clusters, the wild
  cluster bootstrap; otherwise the CR1 t-test. :func:`cluster_inference` applies it.
- :func:`linearized_inference` — the same rule for an estimator that is not a regression but a
  smooth function of sums over units (a pooled rate's difference-in-differences, the group-time
  estimator): its first-order expansion in each cluster's weight (the cluster's influence) is a
  weighted mean of one pseudo-outcome per cluster, and the test of that mean is the test above.
  :func:`multiplier_weights` draws the matching wild (multiplier) bootstrap weights per cluster.

Everything takes plain arrays: the outcome, the regressors (fixed effects as dummy columns), the
cluster of each row and optional weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import sparse, stats

__all__ = ["ClusterTest", "InferenceChoice", "choose_inference", "cluster_inference", "linearized_inference",
           "multiplier_weights", "wild_cluster_bootstrap"]

FloatArray = NDArray[np.float64]

FEW_CLUSTERS = 30
"""Below this many clusters the CR1 t-test is not trusted and the wild cluster bootstrap is used."""
WEBB_CLUSTERS = 12
"""At or below this many clusters Webb's six-point weights replace Rademacher's."""
_WEIGHTS = ("auto", "rademacher", "webb")
_WEBB = np.sqrt(np.array([3.0, 2.0, 1.0, 1.0, 2.0, 3.0]) / 2) * np.array([-1, -1, -1, 1, 1, 1])
_CHUNK = 4_000_000  # cluster × draw cells per block of the bootstrap


# --------------------------------------------------------------------------------------------
# The rule
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InferenceChoice:
    """Which inference suits a number of clusters, and why."""

    clusters: int
    bootstrap: bool
    """Whether to use the wild cluster restricted bootstrap (else the CR1 t-test)."""
    weights: str | None
    """``"webb"`` or ``"rademacher"`` for the bootstrap; None for the t-test."""
    enumerated: bool
    """Whether every possible bootstrap draw is enumerated (no simulation error)."""
    reason: str

    @property
    def method(self) -> str:
        """The method's name as a report shows it."""
        if not self.bootstrap:
            return "cluster-robust t-test (CR1)"
        return f"wild cluster restricted bootstrap ({'Webb' if self.weights == 'webb' else 'Rademacher'} weights)"


def _draw_count(clusters: int, weights: str) -> int:
    return int((6 if weights == "webb" else 2) ** clusters)


def choose_inference(clusters: int, *, draws: int = 9999, threshold: int = FEW_CLUSTERS,
                     weights: str = "auto") -> InferenceChoice:
    """The inference that keeps its level with ``clusters`` clusters, with the reason in words.

    Fewer than ``threshold`` (about 30) clusters → the wild cluster restricted bootstrap, since
    the CR1 t-test over-rejects there; with at most 12 clusters, Webb's six-point weights (the
    2^G Rademacher sign patterns are too few); all draws enumerated when they number at most
    ``draws``. From ``threshold`` clusters on, the CR1 t-test on G − 1 degrees of freedom.
    ``weights`` other than ``"auto"`` forces the bootstrap with those weights.
    """
    if clusters < 2:
        raise ValueError(f"cluster-robust inference needs at least two clusters (got {clusters})")
    if weights not in _WEIGHTS:
        raise ValueError(f"weights must be one of {_WEIGHTS} (got {weights!r})")
    if weights == "auto" and clusters >= threshold:
        return InferenceChoice(clusters, False, None, False,
                               f"{clusters} clusters: enough for the cluster-robust (CR1) t-test on "
                               f"{clusters - 1} degrees of freedom to keep its level")
    return _bootstrap_choice(clusters, draws, weights, threshold)


def _bootstrap_choice(clusters: int, draws: int, weights: str, threshold: int) -> InferenceChoice:
    """The bootstrap's weights and whether to enumerate them, with the reason."""
    kind = weights if weights != "auto" else ("webb" if clusters <= WEBB_CLUSTERS else "rademacher")
    count = _draw_count(clusters, kind)
    enumerated = count <= draws
    if clusters < threshold:
        reason = (f"only {clusters} clusters (fewer than {threshold}): the cluster-robust t-test over-rejects "
                  f"when its variance rests on {clusters} cluster sums, so the p-value and interval come from "
                  "the wild cluster restricted bootstrap")
    else:
        reason = f"{clusters} clusters; the wild cluster restricted bootstrap as asked"
    if kind == "webb" and weights == "auto":
        reason += (f"; with {WEBB_CLUSTERS} or fewer clusters Rademacher signs allow only 2^{clusters} = "
                   f"{2**clusters:,} distinct draws, so Webb's six-point weights are used")
    if enumerated:
        reason += f"; all {count:,} possible draws are enumerated (no simulation error)"
    return InferenceChoice(clusters, True, kind, enumerated, reason)


# --------------------------------------------------------------------------------------------
# The regression and its bootstrap
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Design:
    """The regression with weights folded in (rows × √w), its clusters and its CR1 fit."""

    y: FloatArray
    x: FloatArray
    members: sparse.csr_matrix  # clusters × rows
    bread: FloatArray  # (X′X)⁻¹
    beta: FloatArray
    cov: FloatArray  # CR1
    factor: float  # G/(G−1) · (N−1)/(N−K)

    @property
    def clusters(self) -> int:
        return int(self.members.shape[0])


def _design(y: ArrayLike, x: ArrayLike, clusters: ArrayLike, weights: ArrayLike | None) -> _Design:
    yy = np.asarray(y, dtype=np.float64).ravel()
    xx = np.asarray(x, dtype=np.float64)
    if xx.ndim == 1:
        xx = xx[:, None]
    labels = np.asarray(clusters).ravel()
    if xx.shape[0] != yy.size or labels.size != yy.size:
        raise ValueError(f"y, x and clusters must have one row per observation (got {yy.size}, {xx.shape[0]}, "
                         f"{labels.size})")
    w = np.ones(yy.size) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    if w.size != yy.size or np.any(w < 0) or not np.all(np.isfinite(w)):
        raise ValueError("weights must be one finite, non-negative number per observation")
    if not (np.all(np.isfinite(yy)) and np.all(np.isfinite(xx))):
        raise ValueError("y and x must be finite")
    keep = w > 0
    yy, xx, labels, w = yy[keep], xx[keep], labels[keep], w[keep]
    _, g = np.unique(labels, return_inverse=True)
    n, k = xx.shape
    root = np.sqrt(w)
    yw, xw = root * yy, root[:, None] * xx
    if np.linalg.matrix_rank(xw) < k:
        raise ValueError("the regressors are collinear: drop a column (a fixed effect, or the constant)")
    members = sparse.csr_matrix((np.ones(n), (g, np.arange(n))))
    clusters_n = int(members.shape[0])
    if clusters_n < 2:
        raise ValueError("cluster-robust inference needs at least two clusters")
    if n <= k:
        raise ValueError(f"{n} observations cannot estimate {k} coefficients")
    bread = np.asarray(np.linalg.inv(xw.T @ xw), dtype=np.float64)
    beta = bread @ (xw.T @ yw)
    scores = members @ (xw * (yw - xw @ beta)[:, None])
    factor = clusters_n / (clusters_n - 1) * (n - 1) / (n - k)
    cov = factor * bread @ (scores.T @ scores) @ bread
    return _Design(yw, xw, members, bread, beta, cov, factor)


def _weight_draws(kind: str, clusters: int, draws: int, enumerated: bool, seed: int) -> FloatArray:
    """Cluster × draw matrix of bootstrap weights: every pattern when ``enumerated``, else seeded draws."""
    if enumerated:
        base = 6 if kind == "webb" else 2
        codes = np.arange(base**clusters)
        digits = (codes[None, :] // base ** np.arange(clusters)[:, None]) % base
    else:
        rng = np.random.default_rng(seed)
        digits = rng.integers(0, 6 if kind == "webb" else 2, size=(clusters, draws))
    return np.asarray(_WEBB[digits] if kind == "webb" else digits * 2.0 - 1.0, dtype=np.float64)


@dataclass(frozen=True, eq=False)
class _Bootstrap:
    """The bootstrap t-statistics as functions of the null value ``r`` (all pieces are affine or quadratic in it).

    Restricted residuals are ``ũ(r) = u₀ − r·u₁`` (``u₀`` the residual of y, ``u₁`` of the tested
    column, on the other columns), so the numerator of every bootstrap t is ``n₀ − r·n₁`` and its
    CR1 variance ``c·(a − 2rb + r²d)``.
    """

    n0: FloatArray
    n1: FloatArray
    a: FloatArray
    b: FloatArray
    d: FloatArray
    factor: float

    def t(self, r: float) -> FloatArray:
        with np.errstate(divide="ignore", invalid="ignore"):
            var = self.factor * np.maximum(self.a - 2 * r * self.b + r * r * self.d, 0.0)
            return np.asarray((self.n0 - r * self.n1) / np.sqrt(var), dtype=np.float64)


def _bootstrap(design: _Design, coef: int, v: FloatArray) -> _Bootstrap:
    x, y, members = design.x, design.y, design.members
    others = np.delete(x, coef, axis=1)
    col = x[:, coef]
    if others.shape[1]:
        proj_y = np.linalg.lstsq(others, y, rcond=None)[0]
        proj_x = np.linalg.lstsq(others, col, rcond=None)[0]
        u0, u1 = y - others @ proj_y, col - others @ proj_x
    else:
        u0, u1 = y.copy(), col.copy()
    a_j = design.bread[:, coef]
    s0 = members @ (x * u0[:, None])  # clusters × k restricted scores at r = 0
    s1 = members @ (x * u1[:, None])
    c0, c1 = s0 @ a_j, s1 @ a_j
    q = members @ ((x @ a_j)[:, None] * (x @ design.bread))  # row g: a′ X_g′X_g (X′X)⁻¹
    h0, h1 = q @ s0.T, q @ s1.T
    g, draws = v.shape
    out = {name: np.empty(draws) for name in ("n0", "n1", "a", "b", "d")}
    step = max(1, _CHUNK // max(g, 1))
    for start in range(0, draws, step):
        vb = v[:, start:start + step]
        z0 = c0[:, None] * vb - h0 @ vb
        z1 = c1[:, None] * vb - h1 @ vb
        block = slice(start, start + vb.shape[1])
        out["n0"][block], out["n1"][block] = c0 @ vb, c1 @ vb
        out["a"][block] = np.einsum("gb,gb->b", z0, z0)
        out["b"][block] = np.einsum("gb,gb->b", z0, z1)
        out["d"][block] = np.einsum("gb,gb->b", z1, z1)
    return _Bootstrap(out["n0"], out["n1"], out["a"], out["b"], out["d"], design.factor)


_TIE = 1e-9


def _p_value(boot: _Bootstrap, estimate: float, se: float, r: float) -> float:
    """The share of bootstrap ``|t*|`` at or above the original ``|t|`` at the null value ``r`` (two-sided).

    Ties count as exceeding (within a relative 10⁻⁹): a weight vector that is the same in every
    cluster reproduces the original sample, so its ``|t*|`` equals ``|t|`` up to rounding — with
    enumeration two of the 2^G Rademacher patterns always do. Counting them makes the p-value at
    least 2/2^G and the enumerated test a randomisation test that keeps its level when the
    errors are symmetric, instead of leaving the answer to rounding.
    """
    t = abs(estimate - r) / se
    with np.errstate(invalid="ignore"):
        return float(np.mean(np.abs(boot.t(r)) >= t * (1 - _TIE)))


def _invert(boot: _Bootstrap, estimate: float, se: float, alpha: float, direction: float) -> float:
    """The end of ``{r : p(r) > α}`` on one side of the estimate, by bracketing and bisection.

    The bootstrap draws are the same for every ``r`` (common random numbers), so ``p(r)`` is a
    step function and the bisection finds where it crosses α to within 10⁻⁸ standard errors.
    """
    inside, step = estimate, 2.0 * se
    outside = estimate + direction * step
    while _p_value(boot, estimate, se, outside) > alpha:
        inside, step = outside, step * 2
        outside = estimate + direction * step
        if step > 1e8 * se:
            return direction * float("inf")
    while abs(outside - inside) > 1e-8 * se:
        mid = (inside + outside) / 2
        if _p_value(boot, estimate, se, mid) > alpha:
            inside = mid
        else:
            outside = mid
    return (inside + outside) / 2


# --------------------------------------------------------------------------------------------
# The result
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterTest:
    """A test and interval for one coefficient with clustered errors: bootstrap or CR1 t, with both figures."""

    method: str
    coefficient: int
    estimate: float
    std_error: float
    """The CR1 standard error."""
    null: float
    t_stat: float
    """The CR1 t-statistic against ``null``."""
    p_value: float
    ci_low: float
    ci_high: float
    confidence: float
    clusters: int
    cr1_p_value: float
    """The CR1 t-test's p-value (Student's t, clusters − 1 degrees of freedom), for comparison."""
    cr1_ci: tuple[float, float]
    reason: str
    draws: int = 0
    """Bootstrap draws (0 for the t-test); with ``enumerated`` every possible pattern."""
    weights: str | None = None
    enumerated: bool = False
    seed: int | None = None

    @property
    def bootstrap(self) -> bool:
        """Whether the p-value and interval come from the wild cluster bootstrap."""
        return self.draws > 0

    def summary(self) -> str:
        """The test in a few lines: estimate, p-value and interval, the CR1 figures beside them, the reason."""
        level = f"{self.confidence:.0%}"
        lines = [
            f"{self.method}, coefficient {self.coefficient} ({self.clusters} clusters)",
            f"  estimate     {self.estimate:+.4g}  (CR1 se {self.std_error:.3g}, t = {self.t_stat:.3g} against "
            f"{self.null:g})",
            f"  p-value      {self.p_value:.3g}    [{level}: {self.ci_low:+.4g} to {self.ci_high:+.4g}]",
        ]
        if self.bootstrap:
            lines.append(f"  CR1 t-test   p = {self.cr1_p_value:.3g}    [{level}: {self.cr1_ci[0]:+.4g} to "
                         f"{self.cr1_ci[1]:+.4g}]")
            lines.append(f"  draws        {self.draws:,} {self.weights}"
                         + (" (all enumerated)" if self.enumerated else f" (seed {self.seed})"))
        lines.append(f"  why          {self.reason}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return (f"ClusterTest(method={self.method!r}, estimate={self.estimate:.6g}, p_value={self.p_value:.3g}, "
                f"ci=({self.ci_low:.6g}, {self.ci_high:.6g}), clusters={self.clusters})")


def _coef_index(coef: int, k: int) -> int:
    if not -k <= coef < k:
        raise ValueError(f"coef must index one of the {k} regressors (got {coef})")
    return coef % k


def _check(confidence: float, draws: int) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1 (got {confidence})")
    if draws < 99:
        raise ValueError(f"draws must be at least 99 (got {draws})")


def wild_cluster_bootstrap(
    y: ArrayLike,
    x: ArrayLike,
    clusters: ArrayLike,
    coef: int,
    *,
    weights: ArrayLike | None = None,
    null: float = 0.0,
    draws: int = 9999,
    weight_type: str = "auto",
    seed: int = 7,
    confidence: float = 0.95,
    interval: bool = True,
) -> ClusterTest:
    """The wild cluster restricted bootstrap test of one coefficient, and its interval by test inversion.

    The regression ``y = Xβ + u`` (weighted least squares with ``weights``: every row scaled by
    √w) is fitted with CR1 standard errors clustered by ``clusters``. To test ``β_coef = r`` the
    model is re-fitted with the null imposed, and each bootstrap sample is
    ``y* = Xβ̃ + ũ·v_g``: the restricted fit plus the restricted residuals multiplied by one
    weight ``v_g`` per cluster (Rademacher ±1, or Webb's ±√½, ±1, ±√(3/2)). The bootstrap
    t-statistic uses the same CR1 formula; the p-value is the share of ``|t*|`` at or above
    the original ``|t|``. All bootstrap t-statistics are computed at once without re-fitting
    (Roodman et al. 2019), and because the restricted residuals are affine in ``r`` the test
    is cheap at any null value: the interval ``{r : p(r) > 1 − confidence}`` is found by
    bisection on each side, with the same draws throughout. With very few clusters no null
    value may be rejectable (Webb weights and 3 clusters give at most 216 patterns, 6 of which
    tie with the original sample: p ≥ 1/36), and the interval is then unbounded (±inf).

    Parameters
    ----------
    y, x
        The outcome and the regressors (rows × columns; include the constant and any fixed
        effects as columns).
    clusters
        The cluster of each row (any labels).
    coef
        The column of ``x`` whose coefficient is tested.
    weights
        Optional non-negative row weights (rows with weight 0 are dropped).
    null
        The value of the coefficient under the null hypothesis.
    draws
        Bootstrap draws; when the possible weight patterns (2^G or 6^G) number no more than
        this, every one is used instead (exact).
    weight_type
        ``"auto"`` (Webb for 12 clusters or fewer, else Rademacher), ``"rademacher"`` or ``"webb"``.
    seed
        Seed of the draws (not used when they are enumerated).
    confidence
        The interval's coverage; the test's level is ``1 − confidence``.
    interval
        Whether to invert the test for the interval (the p-value alone is cheaper).
    """
    _check(confidence, draws)
    if weight_type not in _WEIGHTS:
        raise ValueError(f"weight_type must be one of {_WEIGHTS} (got {weight_type!r})")
    design = _design(y, x, clusters, weights)
    choice = _bootstrap_choice(design.clusters, draws, weight_type, FEW_CLUSTERS)
    return _wild(design, _coef_index(coef, design.x.shape[1]), coef, choice, null=null, draws=draws, seed=seed,
                 confidence=confidence, interval=interval)


def _wild(design: _Design, j: int, coef: int, choice: InferenceChoice, *, null: float, draws: int, seed: int,
          confidence: float, interval: bool) -> ClusterTest:
    kind = choice.weights or "rademacher"
    v = _weight_draws(kind, design.clusters, draws, choice.enumerated, seed)
    boot = _bootstrap(design, j, v)
    estimate, se = float(design.beta[j]), float(np.sqrt(design.cov[j, j]))
    alpha = 1 - confidence
    lo, hi = ((_invert(boot, estimate, se, alpha, -1.0), _invert(boot, estimate, se, alpha, 1.0)) if interval
              else (float("nan"), float("nan")))
    cr1 = _cr1(estimate, se, null, design.clusters, confidence)
    return ClusterTest(
        method=choice.method, coefficient=coef, estimate=estimate, std_error=se, null=float(null),
        t_stat=(estimate - null) / se, p_value=_p_value(boot, estimate, se, null), ci_low=lo, ci_high=hi,
        confidence=confidence, clusters=design.clusters, cr1_p_value=cr1[0], cr1_ci=cr1[1],
        reason=choice.reason, draws=int(v.shape[1]), weights=kind, enumerated=choice.enumerated,
        seed=None if choice.enumerated else seed,
    )


def _cr1(estimate: float, se: float, null: float, clusters: int,
         confidence: float) -> tuple[float, tuple[float, float]]:
    dist = stats.t(clusters - 1)
    q = float(dist.ppf(0.5 + confidence / 2))
    p = float(2 * dist.sf(abs((estimate - null) / se))) if se > 0 else float("nan")
    return p, (estimate - q * se, estimate + q * se)


def cluster_inference(
    y: ArrayLike,
    x: ArrayLike,
    clusters: ArrayLike,
    coef: int,
    *,
    weights: ArrayLike | None = None,
    null: float = 0.0,
    draws: int = 9999,
    seed: int = 7,
    confidence: float = 0.95,
    threshold: int = FEW_CLUSTERS,
) -> ClusterTest:
    """Test one coefficient with the inference :func:`choose_inference` picks for the number of clusters.

    Fewer than ``threshold`` clusters: :func:`wild_cluster_bootstrap` (weights chosen
    automatically); otherwise the CR1 t-test on clusters − 1 degrees of freedom. The result's
    ``reason`` says which and why. Parameters are those of :func:`wild_cluster_bootstrap`.
    """
    _check(confidence, draws)
    design = _design(y, x, clusters, weights)
    choice = choose_inference(design.clusters, draws=draws, threshold=threshold)
    if choice.bootstrap:
        return _wild(design, _coef_index(coef, design.x.shape[1]), coef, choice, null=null, draws=draws, seed=seed,
                     confidence=confidence, interval=True)
    j = _coef_index(coef, design.x.shape[1])
    estimate, se = float(design.beta[j]), float(np.sqrt(design.cov[j, j]))
    p, ci = _cr1(estimate, se, null, design.clusters, confidence)
    return ClusterTest(method=choice.method, coefficient=coef, estimate=estimate, std_error=se, null=float(null),
                       t_stat=(estimate - null) / se, p_value=p, ci_low=ci[0], ci_high=ci[1], confidence=confidence,
                       clusters=design.clusters, cr1_p_value=p, cr1_ci=ci, reason=choice.reason)


def linearized_inference(
    estimate: float,
    influence: ArrayLike,
    sizes: ArrayLike,
    *,
    draws: int = 9999,
    seed: int = 7,
    confidence: float = 0.95,
    threshold: int = FEW_CLUSTERS,
) -> ClusterTest:
    """Test and interval for a smooth estimator from each cluster's influence on it.

    ``influence[g]`` is the derivative of the estimate with respect to a common weight on every
    unit of cluster ``g`` (at weight 1): the estimate moves by about Σ_g δ_g·influence[g] when
    each cluster's weight moves by δ_g. For an estimator built from ratios and means of sums
    over units, that expansion is the weighted mean of the pseudo-outcomes
    ``z_g = estimate + influence[g] / s_g`` with weights ``s_g`` (``sizes`` as shares), whose
    CR1 variance, one cluster per pseudo-outcome, is G/(G−1)·Σ influence[g]² — the delta
    method's variance with the small-sample factor. Its test is :func:`cluster_inference`'s: the
    wild cluster restricted bootstrap with fewer than ``threshold`` clusters (imposing the null
    shifts each cluster's pseudo-outcome by its share), else the CR1 t-test on G − 1 degrees of
    freedom. The influences are centred first (an estimate that does not change when every
    weight is scaled alike has influences summing to zero; numerical derivatives nearly do).
    """
    d = np.asarray(influence, dtype=np.float64).ravel()
    share = np.asarray(sizes, dtype=np.float64).ravel()
    if d.size != share.size or d.size < 2:
        raise ValueError(f"influence and sizes need one value per cluster, at least two (got {d.size}, {share.size})")
    if np.any(share <= 0) or not np.all(np.isfinite(share)) or not np.all(np.isfinite(d)):
        raise ValueError("sizes must be positive and influences finite")
    share = share / share.sum()
    d = d - share * d.sum()
    z = estimate + d / share
    return cluster_inference(z, np.ones(d.size), np.arange(d.size), 0, weights=share, draws=draws, seed=seed,
                             confidence=confidence, threshold=threshold)


def multiplier_weights(clusters: int, replicates: int, *, seed: int = 7) -> FloatArray:
    """Wild bootstrap weights, one per cluster and replicate (replicates × clusters), mean 0 and variance 1.

    Webb's six-point weights for 12 clusters or fewer, else Rademacher signs, as
    :func:`choose_inference` picks them; ``estimate + Σ_g v_g·influence[g]`` over these rows is the
    wild (multiplier) bootstrap of a linearized estimator (Callaway & Sant'Anna's clustered
    multiplier bootstrap).
    """
    kind = "webb" if clusters <= WEBB_CLUSTERS else "rademacher"
    return _weight_draws(kind, clusters, replicates, False, seed).T
