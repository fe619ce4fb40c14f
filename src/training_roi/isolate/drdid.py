"""Difference-in-differences with covariates: doubly robust, regression-adjusted and weighted.

Plain difference-in-differences assumes that, without training, the trained units' outcome would
have moved like the untrained units'. When something that differs between the groups also
drives the trend — tenure, territory, a rep's pre-period volume — that fails: a new rep who
takes the course would have improved anyway. *Conditional* parallel trends asks less: units with
the same covariates would have moved alike. Three estimators of the effect on the trained (ATT)
rest on it, each on two periods per unit (its outcome before and after training, ΔY = after −
before):

* :func:`reg_did` — the outcome regression (Heckman, Ichimura & Todd 1997): fit the untrained
  units' change on the covariates and compare each trained unit's change with its prediction.
  Right when the linear model of the change is right.
* :func:`ipw_did` — normalised inverse-probability weighting (Abadie 2005): weigh each untrained
  unit by its odds of training p/(1 − p) from a logistic model, weights normalised to sum to one.
  Right when the propensity model is right.
* :func:`dr_did` — the doubly robust estimator of Sant'Anna & Zhao (2020, J. Econometrics 219),
  both at once: the weighted comparison of changes net of the regression's prediction. Right when
  *either* model is right. Its default, "improved" form fits the propensity by inverse probability
  tilting (Graham, Pinto & Egel 2012: the untrained units' weights reproduce the trained units'
  covariate means exactly) and the regression by least squares weighted by those odds; the
  estimate is then locally efficient and its influence function needs no correction for either
  fit. ``propensity="logit"`` gives their "traditional" form (maximum likelihood, unweighted
  regression, influence function corrected for both fits).

Each returns a :class:`DiDFit`: the estimate, its influence function (one value per unit: how
much that unit moves the estimate), the analytic standard error sd(IF)/√n, and the overlap and
balance diagnostics with plain-word warnings. :meth:`DiDFit.effect` makes it an
:class:`~training_roi.isolate.effect.Effect`, optionally with a multiplier bootstrap of the
influence function (:func:`multiplier_draws`). :func:`estimate_drdid` runs them on a
:class:`~training_roi.measure.panels.UnitPanel` (registered as ``drdid``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import polars as pl
from numpy.typing import ArrayLike, NDArray
from scipy.special import expit

from training_roi.isolate.anchors import anchor_periods, window_sums
from training_roi.isolate.effect import (
    Effect,
    EstimatorSettings,
    FloatArray,
    NotApplicable,
    effect_from_draws,
    effect_from_normal,
    estimator,
)
from training_roi.isolate.matching import OFF_SUPPORT_BAR, SMD_BAR, _ess
from training_roi.measure.panels import UnitPanel

__all__ = ["TRIM", "DiDFit", "dr_did", "estimate_drdid", "ipw_did", "multiplier_draws", "reg_did"]

BoolArray = NDArray[np.bool_]

TRIM = 0.995
"""Untrained units with a propensity at or above this are left out of the weights (Sant'Anna & Zhao's default):
their odds would let one unit stand for hundreds of trained ones."""
ESS_SHARE_BAR = 0.1
"""Share of the smaller group that the weighted comparison should be worth (Kish's effective size): a vast pool
of unlike untrained units is no problem in itself, a comparison worth a tenth of the trained units is."""
ESS_MIN = 10.0
"""Effective number of comparison units below which the estimate leans on a handful of units."""
MIN_TRAINED = 2
"""Trained units with both windows needed to estimate anything."""
MIN_COMPARISON = 5
"""Untrained units with both windows needed (and at least two more than the model has coefficients)."""

_P_MAX = 1 - 1e-6
"""Propensities are capped here, so an untrained unit's odds stay finite."""
_STEP_TOL = 1e-10
"""Newton's method stops when no coefficient (on standardised covariates) moves more than this."""
_MAX_ITER = 200

Multipliers = Literal["rademacher", "mammen"]
Propensity = Literal["tilting", "logit"]


# Inputs and the two propensity models ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Data:
    """Validated arrays: the change, who was trained, the design and the unit weights (mean 1)."""

    dy: FloatArray
    d: BoolArray
    x: FloatArray
    """The covariates as given (n × k), for the balance table."""
    z: FloatArray
    """The design: an intercept and the covariates standardised (fits are invariant to that, and better conditioned)."""
    w: FloatArray
    names: tuple[str, ...]

    @property
    def n(self) -> int:
        return int(self.dy.size)


def _prepare(y0: ArrayLike, y1: ArrayLike, treated: ArrayLike, covariates: ArrayLike | None,
             weights: ArrayLike | None, names: Sequence[str] | None) -> _Data:
    before = np.asarray(y0, dtype=np.float64).ravel()
    after = np.asarray(y1, dtype=np.float64).ravel()
    d_raw = np.asarray(treated).ravel()
    n = d_raw.size
    if before.size != n or after.size != n:
        raise ValueError(f"y0, y1 and treated need one value per unit (got {before.size}, {after.size} and {n})")
    if not np.isin(d_raw, (0, 1)).all():
        raise ValueError("treated must hold 0 (untrained) or 1 (trained) for every unit")
    d = d_raw.astype(bool)
    x = (np.zeros((n, 0)) if covariates is None
         else np.asarray(covariates, dtype=np.float64).reshape(n, -1))
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    if w.size != n:
        raise ValueError(f"weights need one value per unit ({n}), not {w.size}")
    for label, a in (("y0", before), ("y1", after), ("covariates", x), ("weights", w)):
        if not np.isfinite(a).all():
            raise ValueError(f"{label} must be finite for every unit")
    if (w < 0).any() or w.sum() <= 0:
        raise ValueError("weights must be non-negative with a positive total")
    if not d.any() or d.all():
        raise ValueError("both trained and untrained units are needed")
    labels = tuple(names) if names is not None else tuple(f"x{i + 1}" for i in range(x.shape[1]))
    if len(labels) != x.shape[1]:
        raise ValueError(f"names: {len(labels)} names for {x.shape[1]} covariates")
    spread = x.std(axis=0)
    if (spread == 0).any():
        flat = ", ".join(lab for lab, s in zip(labels, spread, strict=True) if s == 0)
        raise ValueError(f"covariate {flat} is constant: it is the intercept again")
    z = np.column_stack([np.ones(n), (x - x.mean(axis=0)) / np.where(spread > 0, spread, 1.0)])
    wc = w * ~d
    if np.linalg.matrix_rank(z[wc > 0]) < z.shape[1]:
        raise ValueError("the covariates are collinear among the untrained units (or there are fewer untrained "
                         "units than coefficients): the outcome regression has no unique fit")
    return _Data(after - before, d, x, z, w / w.mean(), labels)


def _newton(objective: Any, start: FloatArray) -> tuple[FloatArray, bool]:
    """Minimise a smooth convex ``objective(gamma) -> (value, gradient, hessian)`` by damped Newton steps."""
    gamma = start.copy()
    value, grad, hess = objective(gamma)
    for _ in range(_MAX_ITER):
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            return gamma, False
        size = 1.0
        while True:
            trial = gamma - size * step
            with np.errstate(over="ignore", invalid="ignore"):
                new = objective(trial)
            if np.isfinite(new[0]) and new[0] <= value + 1e-12 * abs(value):
                break
            size /= 2
            if size < 1e-10:
                return gamma, False
        gamma, (value, grad, hess) = trial, new
        if np.max(np.abs(size * step)) < _STEP_TOL:
            return gamma, True
    return gamma, False


def _logit_coefficients(data: _Data) -> tuple[FloatArray, bool]:
    """The logistic model's coefficients by weighted maximum likelihood, and whether Newton's method converged."""
    z, d, w = data.z, data.d.astype(np.float64), data.w

    def negative_loglik(gamma: FloatArray) -> tuple[float, FloatArray, FloatArray]:
        eta = z @ gamma
        p = expit(eta)
        value = float(np.sum(w * (np.logaddexp(0.0, eta) - d * eta)))
        return value, z.T @ (w * (p - d)), (z * (w * p * (1 - p))[:, None]).T @ z

    share = float(np.average(d, weights=w))
    start = np.zeros(z.shape[1])
    start[0] = np.log(share / (1 - share))
    return _newton(negative_loglik, start)


def _logit(data: _Data) -> tuple[FloatArray, bool]:
    """The logistic propensity of every unit, and whether its fit converged."""
    gamma, ok = _logit_coefficients(data)
    return np.asarray(expit(data.z @ gamma), dtype=np.float64), ok


def _tilting(data: _Data) -> tuple[FloatArray, bool]:
    """The propensity by inverse probability tilting (Graham, Pinto & Egel 2012), from the logit's start.

    It minimises mean(w · [(1 − D) · exp(z'γ) − D · z'γ]), whose first-order condition is that the
    untrained units, weighted by their odds exp(z'γ) = p/(1 − p), reproduce the trained units'
    weighted covariate means (and total weight) exactly. No minimum exists when no weighting of the
    untrained can reach the trained units' means (no overlap); then it does not converge.
    """
    z, d, w = data.z, data.d.astype(np.float64), data.w
    n = data.n

    def loss(gamma: FloatArray) -> tuple[float, FloatArray, FloatArray]:
        eta = z @ gamma
        odds = np.exp(eta)
        value = float(np.sum(w * ((1 - d) * odds - d * eta)) / n)
        return value, z.T @ (w * ((1 - d) * odds - d)) / n, (z * (w * (1 - d) * odds)[:, None]).T @ z / n

    gamma, ok = _newton(loss, _logit_coefficients(data)[0])
    return np.asarray(expit(z @ gamma), dtype=np.float64), ok


def _wls(data: _Data, weights: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The least-squares fit of ΔY on the design with ``weights`` (zero outside the fit).

    Returns the fitted values of every unit and the coefficients' influence function (n × coefficients).
    """
    z = data.z
    gram = (z * weights[:, None]).T @ z / data.n
    beta = np.linalg.solve(gram, z.T @ (weights * data.dy) / data.n)
    fitted = z @ beta
    influence = (z * (weights * (data.dy - fitted))[:, None]) @ np.linalg.inv(gram)
    return fitted, influence


def _logit_influence(data: _Data, p: FloatArray) -> FloatArray:
    """The logistic coefficients' influence function: score × inverse information (n × coefficients)."""
    z, w = data.z, data.w
    info = (z * (w * p * (1 - p))[:, None]).T @ z / data.n
    return (z * (w * (data.d - p))[:, None]) @ np.linalg.inv(info)


# The fit and its diagnostics ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DiDFit:
    """One covariate-adjusted difference-in-differences: the estimate, its influence function, its caveats."""

    method: str
    """What was estimated, in words (the label an :class:`Effect` carries)."""
    estimate: float
    influence: FloatArray = field(repr=False)
    """Each unit's influence on the estimate: estimate − truth ≈ mean(influence), so its spread is the error's."""
    std_error: float
    """The analytic standard error, sd(influence) / √n (sd with n − 1, as Sant'Anna & Zhao's R package)."""
    propensity: FloatArray = field(repr=False)
    """Each unit's estimated probability of training (capped at 1 − 10⁻⁶)."""
    comparison_weights: FloatArray = field(repr=False)
    """The weight each untrained unit gets in the comparison (zero for trained units and trimmed ones)."""
    diagnostics: dict[str, Any] = field(default_factory=dict, repr=False)
    warnings: tuple[str, ...] = ()

    def draws(self, replicates: int, *, seed: int = 7, multipliers: Multipliers = "rademacher",
              cluster: ArrayLike | None = None) -> FloatArray:
        """``replicates`` bootstrap draws of the estimate: the estimate plus :func:`multiplier_draws`."""
        return self.estimate + multiplier_draws(self.influence, replicates=replicates, seed=seed,
                                                multipliers=multipliers, cluster=cluster)

    def effect(self, *, baseline: float = float("nan"), confidence: float = 0.95, replicates: int = 0,
               seed: int = 7, multipliers: Multipliers = "rademacher", cluster: ArrayLike | None = None,
               assumptions: Sequence[str] = (), details: Mapping[str, float] | None = None,
               diagnostics: Mapping[str, Any] | None = None, warnings: Sequence[str] = ()) -> Effect:
        """The :class:`Effect`, its interval from the analytic standard error or a multiplier bootstrap.

        With ``replicates`` > 0 the interval is the percentile interval of :meth:`draws` (which the
        Effect carries); with 0, the normal interval of the analytic standard error, which is in
        ``details["analytic_std_error"]`` either way. With ``cluster`` (a label per unit) both
        treat each cluster's summed influence as one draw. The fit's diagnostics and warnings come
        first, then ``diagnostics`` and ``warnings``.
        """
        se = self.std_error if cluster is None else _std_error(_cluster_sums(self.influence, cluster),
                                                               n=self.influence.size)
        det = {"analytic_std_error": se, **(details or {})}
        diag = {**self.diagnostics, **(diagnostics or {})}
        if replicates > 0:
            diag["bootstrap"] = f"multiplier bootstrap of the influence function ({multipliers} weights, by unit)"
            return effect_from_draws(self.method, self.estimate, self.draws(replicates, seed=seed,
                                                                            multipliers=multipliers, cluster=cluster),
                                     baseline=baseline, confidence=confidence, assumptions=assumptions,
                                     details=det, diagnostics=diag, warnings=(*self.warnings, *warnings))
        return effect_from_normal(self.method, self.estimate, se, baseline=baseline,
                                  confidence=confidence, assumptions=assumptions, details=det, diagnostics=diag,
                                  warnings=(*self.warnings, *warnings))


def multiplier_draws(influence: ArrayLike, *, replicates: int, seed: int = 7,
                     multipliers: Multipliers = "rademacher", cluster: ArrayLike | None = None) -> FloatArray:
    """Bootstrap deviations of an estimate from its influence function: (1/n) Σ_c ξ_c Σ_{i∈c} IF_i.

    Each cluster ``c`` (each unit, or each label of ``cluster``) gets one multiplier ξ per
    replicate, mean 0 and variance 1: Rademacher (±1, each with probability ½) or Mammen's two-point
    weights ((1 − √5)/2 with probability (√5 + 1)/(2√5), else (1 + √5)/2; third moment 1 too, for a
    skewed influence). Drawing multipliers instead of units keeps every fit fixed, so a replicate
    costs a matrix product (Kline & Santos 2012; Callaway & Sant'Anna 2021 use it for the same
    estimators). With ``seed`` the draws repeat exactly.
    """
    if replicates < 1:
        raise ValueError(f"replicates must be at least 1, not {replicates}")
    inf = np.asarray(influence, dtype=np.float64).ravel()
    n = inf.size
    if cluster is not None:
        inf = _cluster_sums(inf, cluster)
    rng = np.random.default_rng(seed)
    out = np.empty(replicates)
    chunk = max(1, 2_000_000 // max(inf.size, 1))  # bound the multiplier matrix's memory
    root5 = np.sqrt(5.0)
    for start in range(0, replicates, chunk):
        size = (min(chunk, replicates - start), inf.size)
        if multipliers == "rademacher":
            xi = rng.integers(0, 2, size=size) * 2.0 - 1.0
        elif multipliers == "mammen":
            low = rng.random(size) < (root5 + 1) / (2 * root5)
            xi = np.where(low, (1 - root5) / 2, (1 + root5) / 2)
        else:
            raise ValueError(f"multipliers must be 'rademacher' or 'mammen', not {multipliers!r}")
        out[start:start + size[0]] = xi @ inf / n
    return out


def _cluster_sums(influence: FloatArray, cluster: ArrayLike) -> FloatArray:
    """The influence summed within each cluster (one value per distinct label)."""
    labels = np.asarray(cluster).ravel()
    if labels.size != influence.size:
        raise ValueError(f"cluster needs one label per unit ({influence.size}), not {labels.size}")
    _, index = np.unique(labels, return_inverse=True)
    return np.bincount(index.ravel(), weights=influence).astype(np.float64)


def _std_error(influence: FloatArray, n: int | None = None) -> float:
    """sd(influence) · √G / n over its G values (clusters' sums, or units: then sd / √n)."""
    g = influence.size
    return float(np.std(influence, ddof=1) * np.sqrt(g) / (g if n is None else n))


def _weighted_moments(x: FloatArray, w: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Weighted means and variances of each column (reliability weights: with equal weights, n − 1)."""
    total = w.sum()
    mean = w @ x / total
    denom = total - (w @ w) / total
    var = w @ (x - mean) ** 2 / denom if denom > 0 else np.zeros(x.shape[1])
    return mean, var


def _balance(data: _Data, w_c: FloatArray) -> list[dict[str, Any]]:
    """Each covariate's means and standardised mean difference, before and after weighting the untrained.

    Both differences divide by the same spread, the groups' pooled standard deviation before
    weighting √((s²_trained + s²_untrained) / 2), so a smaller one after means closer means.
    """
    t = data.d
    xt, xc = data.x[t], data.x[~t]
    mt, vt = _weighted_moments(xt, data.w[t])
    mc, vc = _weighted_moments(xc, data.w[~t])
    scale = np.sqrt((vt + vc) / 2)
    scale = np.where(scale > 0, scale, data.x.std(axis=0))
    after = w_c[~t] @ xc / w_c[~t].sum()
    rows = []
    for i, name in enumerate(data.names):
        s = float(scale[i]) if scale[i] > 0 else 1.0
        rows.append({"feature": name, "mean_trained": float(mt[i]), "mean_comparison": float(mc[i]),
                     "smd_before": float((mt[i] - mc[i]) / s), "mean_comparison_after": float(after[i]),
                     "smd_after": float((mt[i] - after[i]) / s)})
    return rows


def _overlap(data: _Data, p: FloatArray, w_c: FloatArray, trim: float | None, model: str,
             notes: Sequence[str]) -> tuple[dict[str, Any], list[str]]:
    """Support, effective size and balance of a weighted comparison, and the warnings they call for."""
    t = data.d
    pt, pc = p[t], p[~t]
    used = w_c[~t] != 0
    top = float(pc[used].max()) if used.any() else float("nan")
    off = pt > top
    if trim is not None:
        off |= pt >= trim
    n_t, n_c = int(t.sum()), int((~t).sum())
    ess = _ess(w_c[~t])
    balance = _balance(data, w_c) if data.names else []
    trimmed = int(((pc >= trim) & ~used).sum()) if trim is not None else 0
    diag: dict[str, Any] = {
        "propensity_model": model, "trim": trim, "trained": n_t, "comparison": n_c,
        "propensity_trained": {"min": float(pt.min()), "max": float(pt.max())},
        "propensity_comparison": {"min": float(pc.min()), "max": float(pc.max())},
        "comparison_trimmed": trimmed, "trained_off_support": int(off.sum()),
        "share_trained_off_support": float(off.mean()),
        "effective_comparison_size": ess, "max_weight_share": float(np.abs(w_c).max() / np.abs(w_c).sum()),
        "balance": balance,
        "max_abs_smd_before": max((abs(r["smd_before"]) for r in balance), default=0.0),
        "max_abs_smd_after": max((abs(r["smd_after"]) for r in balance), default=0.0),
    }
    warns = list(notes)
    if off.mean() > OFF_SUPPORT_BAR:
        bound = f"above every untrained unit's ({top:.3g})" + (f" or at least {trim}" if trim is not None else "")
        warns.append(f"poor overlap: {off.mean():.1%} of trained units ({int(off.sum())} of {n_t}) have a propensity "
                     f"{bound}: nobody like them stayed untrained, so their comparison is extrapolated")
    if trimmed:
        warns.append(f"{trimmed} of {n_c} untrained units have a propensity of {trim} or more and are left out of "
                     "the weights (trimmed): some trained units have almost no untrained look-alikes")
    if ess < max(ESS_MIN, ESS_SHARE_BAR * min(n_t, n_c)):
        warns.append(f"after weighting, the {n_c} untrained units count as {ess:.1f} (Kish's effective sample size) "
                     f"for {n_t} trained units: a few untrained units carry the comparison")
    worst = [r for r in balance if abs(r["smd_after"]) >= SMD_BAR]
    if worst:
        listed = ", ".join(f"{r['feature']} {r['smd_after']:+.2f}" for r in worst)
        warns.append(f"balance not reached: standardised mean difference after weighting of {listed} "
                     f"(|SMD| < {SMD_BAR} is the usual bar)")
    return diag, warns


def _propensity_weights(data: _Data, p: FloatArray, trim: float | None) -> FloatArray:
    """The untrained units' weights w · p/(1 − p) (zero above ``trim`` and for trained units)."""
    kept = ~data.d & (p < trim if trim is not None else True)
    return np.where(kept, data.w * p / (1 - p), 0.0)


def _check_trim(trim: float | None) -> None:
    if trim is not None and not 0.5 < trim <= 1:
        raise ValueError(f"trim must be in (0.5, 1] or None, not {trim}")


_LOGIT_NOTE = ("the logistic propensity model did not converge: the covariates separate trained and untrained "
               "units almost perfectly (no overlap)")


# The three estimators -------------------------------------------------------------------------------------------------


def reg_did(y0: ArrayLike, y1: ArrayLike, treated: ArrayLike, covariates: ArrayLike | None = None, *,
            weights: ArrayLike | None = None, names: Sequence[str] | None = None,
            trim: float | None = TRIM) -> DiDFit:
    """The outcome-regression difference-in-differences (Heckman, Ichimura & Todd 1997) on two periods.

    ΔY = ``y1`` − ``y0`` of the untrained units is regressed on the covariates (least squares
    with ``weights``); the ATT is the trained units' weighted mean of ΔY minus its prediction.
    Without covariates it is the plain difference-in-differences. The influence function
    includes the regression's own estimation error (as in Sant'Anna & Zhao 2020).

    The regression weighs nobody, but it compares implicitly: the prediction is a weighted sum
    of the untrained units' changes whose weights (Chattopadhyay & Zubizarreta 2023) reproduce
    the trained units' covariate means exactly and may be negative (extrapolation). Those are the
    comparison weights of the diagnostics (``negative_weight_share`` counts the untrained units
    weighted below zero); a logistic propensity, fitted for the diagnostics only, tells the
    overlap (``trim`` only marks trained units off support here).

    Raises
    ------
    ValueError
        Inputs of different lengths, non-finite values, a group missing, or covariates collinear
        among the untrained units.
    """
    _check_trim(trim)
    data = _prepare(y0, y1, treated, covariates, weights, names)
    z, w, d = data.z, data.w, data.d
    wt = w * d
    fitted, beta_if = _wls(data, w * ~d)
    att = float(wt @ (data.dy - fitted) / wt.sum())
    m1 = wt @ z / data.n
    influence = (wt * (data.dy - fitted - att) - beta_if @ m1) / wt.mean()
    target = wt @ z / wt.sum()
    implied = np.where(d, 0.0, w * (z @ np.linalg.solve((z * (w * ~d)[:, None]).T @ z, target)))
    p, ok = _logit(data)
    p = np.minimum(p, _P_MAX)
    diag, warns = _overlap(data, p, implied, trim, "logistic (maximum likelihood), for the diagnostics only",
                           () if ok else (_LOGIT_NOTE,))
    diag["negative_weight_share"] = float((implied[~d] < 0).mean())
    return DiDFit("regression-adjusted difference-in-differences (Heckman, Ichimura & Todd)", att, influence,
                  _std_error(influence), p, implied, diag, tuple(warns))


def ipw_did(y0: ArrayLike, y1: ArrayLike, treated: ArrayLike, covariates: ArrayLike | None = None, *,
            weights: ArrayLike | None = None, names: Sequence[str] | None = None,
            trim: float | None = TRIM) -> DiDFit:
    """The normalised inverse-probability-weighted difference-in-differences (Abadie 2005) on two periods.

    A logistic model of training on the covariates (maximum likelihood with ``weights``) gives
    each unit a propensity p, capped at 1 − 10⁻⁶. The ATT is the trained units' weighted mean of
    ΔY minus the untrained units' mean of ΔY weighted by w · p/(1 − p), those weights normalised
    to sum to one (the "standardised" form, which stays within the range of the changes).
    Untrained units with p ≥ ``trim`` are left out. The influence function includes the
    propensity model's estimation error.

    Raises
    ------
    ValueError
        As :func:`reg_did`.
    """
    _check_trim(trim)
    data = _prepare(y0, y1, treated, covariates, weights, names)
    p, ok = _logit(data)
    p = np.minimum(p, _P_MAX)
    wt = data.w * data.d
    wc = _propensity_weights(data, p, trim)
    if not wc.any():
        raise ValueError(f"every untrained unit's propensity is at least {trim}: nothing is left to compare with")
    eta_t = wt @ data.dy / wt.sum()
    eta_c = wc @ data.dy / wc.sum()
    m2 = (wc * (data.dy - eta_c)) @ data.z / data.n
    influence = (wt * (data.dy - eta_t) / wt.mean()
                 - (wc * (data.dy - eta_c) + _logit_influence(data, p) @ m2) / wc.mean())
    diag, warns = _overlap(data, p, wc, trim, "logistic (maximum likelihood)", () if ok else (_LOGIT_NOTE,))
    return DiDFit("normalised inverse-probability-weighted difference-in-differences (Abadie)", float(eta_t - eta_c),
                  influence, _std_error(influence), p, wc, diag, tuple(warns))


def dr_did(y0: ArrayLike, y1: ArrayLike, treated: ArrayLike, covariates: ArrayLike | None = None, *,
           weights: ArrayLike | None = None, names: Sequence[str] | None = None,
           propensity: Propensity = "tilting", trim: float | None = TRIM) -> DiDFit:
    """The doubly robust difference-in-differences of Sant'Anna & Zhao (2020) on two periods.

    With ΔY = ``y1`` − ``y0``, a propensity p and the untrained units' regression m(X) of ΔY on
    the covariates, the ATT is

        mean_w[D · (ΔY − m)] / mean_w[D]  −  mean_w[(1 − D) · p/(1 − p) · (ΔY − m)] / mean_w[(1 − D) · p/(1 − p)]

    (means weighted by ``weights``): the trained units' change net of the prediction, minus the
    same for the untrained units weighted by their odds. It is consistent when either the
    propensity or the regression is right.

    ``propensity="tilting"`` (default, their "improved" estimator): p by inverse
    probability tilting, m by least squares among the untrained weighted by w · p/(1 − p). Both
    fits' first-order conditions make their estimation error vanish from the influence function,
    which is then w·D·(ΔY − m − τ₁)/mean(w·D) − w·odds·(1 − D)·(ΔY − m − τ₀)/mean(w·odds·(1 − D)); the
    estimator is locally efficient. Tilting reproduces the trained units' covariate means
    exactly, so balance of means after weighting holds by construction: the effective sample
    size and the support figures are the telling diagnostics. If tilting does not converge (no
    weighting of the untrained reaches the trained units' means) the logistic propensity is used
    instead, with a warning.

    ``propensity="logit"`` (their "traditional" estimator): p by maximum likelihood, m by
    least squares among the untrained weighted by w; the influence function carries both fits'
    estimation error.

    Untrained units with p ≥ ``trim`` are left out of the weights (and, with tilting, of the
    regression); p is capped at 1 − 10⁻⁶.

    Raises
    ------
    ValueError
        As :func:`reg_did`, or an unknown ``propensity``.
    """
    if propensity not in ("tilting", "logit"):
        raise ValueError(f"propensity must be 'tilting' or 'logit', not {propensity!r}")
    _check_trim(trim)
    data = _prepare(y0, y1, treated, covariates, weights, names)
    notes: list[str] = []
    improved = propensity == "tilting"
    if improved:
        p, ok = _tilting(data)
        if not ok:
            p, ok_logit = _logit(data)
            improved = False
            notes.append("inverse probability tilting did not converge (no weighting of the untrained units "
                         "reproduces the trained units' covariate means: poor overlap); the logistic propensity "
                         "and the traditional doubly robust estimator are used instead")
            if not ok_logit:
                notes.append(_LOGIT_NOTE)
    else:
        p, ok = _logit(data)
        if not ok:
            notes.append(_LOGIT_NOTE)
    p = np.minimum(p, _P_MAX)
    wt = data.w * data.d
    wc = _propensity_weights(data, p, trim)
    if not wc.any():
        raise ValueError(f"every untrained unit's propensity is at least {trim}: nothing is left to compare with")
    fitted, beta_if = _wls(data, wc if improved else data.w * ~data.d)
    r = data.dy - fitted
    eta_t = wt @ r / wt.sum()
    eta_c = wc @ r / wc.sum()
    inf_t = wt * (r - eta_t)
    inf_c = wc * (r - eta_c)
    if not improved:
        z, n = data.z, data.n
        inf_t = inf_t - beta_if @ (wt @ z / n)
        inf_c = inf_c + _logit_influence(data, p) @ ((wc * (r - eta_c)) @ z / n) - beta_if @ (wc @ z / n)
    influence = inf_t / wt.mean() - inf_c / wc.mean()
    model = "inverse probability tilting" if improved else "logistic (maximum likelihood)"
    diag, warns = _overlap(data, p, wc, trim, model, notes)
    diag["doubly_robust_form"] = "improved (locally efficient)" if improved else "traditional"
    label = ("doubly robust difference-in-differences (Sant'Anna & Zhao"
             + (", improved)" if improved else ", traditional)"))
    return DiDFit(label, float(eta_t - eta_c), influence, _std_error(influence), p, wc, diag, tuple(warns))


# On a unit panel ------------------------------------------------------------------------------------------------------


def _unit_windows(panel: UnitPanel, pre_months: int, post_months: int, seed: int) -> pl.DataFrame:
    """One row per unit: trained or not, its pooled outcome before and after its (reference) period, its weight.

    Anchors come from :func:`training_roi.isolate.anchors.anchor_periods`, as for the matched
    comparisons: a trained unit's is the period that contains its training; a never-trained
    unit's is drawn (``seed``) from the trained units' anchors, in an order set by the data, so
    renaming units changes nothing. ``before`` pools event times −``pre_months`` … −1, ``after``
    0 … ``post_months`` − 1 (the training period counts as after): Σ numerator / Σ denominator,
    or the mean per observed period without a denominator (null when the window holds no
    activity or no observed period). ``weight`` is Σ denominator over both windows (1 without a
    denominator).
    """
    anchors = anchor_periods(panel, seed)
    sums = window_sums(panel, anchors, {"pre": (-pre_months, -1), "post": (0, post_months - 1)})
    covariates = panel.units.select(pl.col("unit").cast(pl.String),
                                    *(pl.col(c).cast(pl.Float64) for c in panel.covariates))
    weight = (pl.col("pre_den") + pl.col("post_den")) if panel.denominator is not None else pl.lit(1.0)
    return (pl.concat([anchors.select("unit", "trained", "anchor"), sums.drop("unit")], how="horizontal")
            .join(covariates, on="unit", how="left", maintain_order="left")
            .with_columns(before=pl.when(pl.col("pre_den") > 0).then(pl.col("pre_num") / pl.col("pre_den")),
                          after=pl.when(pl.col("post_den") > 0).then(pl.col("post_num") / pl.col("post_den")),
                          weight=weight))


_ASSUMPTIONS = (
    "conditional parallel trends: without training, trained units' outcome would have changed from the months "
    "before to the months after like that of untrained units with the same covariates",
    "overlap: trained units have untrained look-alikes (no one's propensity is near 1); where they have none, the "
    "comparison is extrapolated by the outcome model",
    "no anticipation: units did not change before the month they were trained (that month counts as after "
    "training)",
    "doubly robust: the estimate is right if either the propensity model (logistic in the covariates) or the model "
    "of the untrained units' change (linear in the covariates) is right",
    "the covariates are not changed by training (attributes, or measured before it)",
    "the untrained units' reference months are drawn from the trained units' months, so both groups' windows span "
    "the same calendar months",
)

Method = Literal["dr", "reg", "ipw"]


def estimate_drdid(panel: UnitPanel, *, method: Method = "dr", pre_months: int = 6, post_months: int = 6,
                   trim: float | None = TRIM, confidence: float = 0.95, replicates: int = 999,
                   multipliers: Multipliers = "rademacher", seed: int = 7) -> Effect:
    """The effect on the trained by difference-in-differences with the panel's covariates (the ATT).

    Each unit's outcome is pooled over the ``pre_months`` months before its training month and
    over the training month and the ``post_months`` − 1 after it (event time 0, the month that
    holds ``treated_at``, counts as after training). A never-trained unit gets a reference month
    drawn with ``seed`` from the trained units' months — the same draw as the matched comparisons
    (:mod:`training_roi.isolate.matching`) — so both groups' windows span the same calendar
    months; units trained later are not comparisons. Units without activity in either window
    are left out (and counted). When the outcome is a rate, each unit weighs its denominator over
    both windows (a rep with more closed deals counts for more), in the models and in the means.

    ``method``: ``"dr"`` (default) the improved doubly robust estimator of Sant'Anna & Zhao
    (:func:`dr_did`), ``"reg"`` the outcome regression (:func:`reg_did`), ``"ipw"`` normalised
    inverse-probability weighting (:func:`ipw_did`). All three, and the plain difference-in-
    differences without covariates, are in ``details`` and ``diagnostics["estimators"]``, so a
    reader sees how much the covariates move the estimate.

    The interval is the percentile interval of a multiplier bootstrap of the influence function
    by unit (``replicates`` draws, ``multipliers`` weights, ``seed``), or with ``replicates=0``
    the normal interval of the analytic standard error.

    Raises
    ------
    ValueError
        Invalid windows, ``method``, ``confidence`` or ``replicates``.
    NotApplicable
        No covariates, nobody trained, no never-trained units, too few units with activity in
        both windows, or covariates that cannot be fitted (constant or collinear).
    """
    if method not in ("dr", "reg", "ipw"):
        raise ValueError(f"method must be 'dr', 'reg' or 'ipw', not {method!r}")
    if pre_months < 1 or post_months < 1:
        raise ValueError(f"pre_months and post_months must be at least 1, not {pre_months} and {post_months}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, not {confidence}")
    if replicates < 0:
        raise ValueError(f"replicates must be 0 (analytic interval) or more, not {replicates}")
    if not panel.covariates:
        raise NotApplicable("no covariates: use the plain difference-in-differences")
    f = _unit_windows(panel, pre_months, post_months, seed)
    if f.filter(~pl.col("trained")).is_empty():
        raise NotApplicable("every unit in the panel was trained: a comparison needs never-trained units")
    needed = ("before", "after", *panel.covariates)
    usable = f.filter(pl.all_horizontal(pl.col(c).is_not_null() for c in needed) & (pl.col("weight") > 0))
    gone = f.join(usable.select("unit"), on="unit", how="anti")
    left_out = {"trained": int(gone["trained"].sum()), "comparison": int((~gone["trained"]).sum())}
    d = usable["trained"].to_numpy().astype(bool)
    n_t, n_c = int(d.sum()), int((~d).sum())
    k = len(panel.covariates)
    if n_t < MIN_TRAINED:
        raise NotApplicable(f"only {n_t} trained units have activity (and covariates) in the {pre_months} "
                            f"{panel.period_noun}s before and the {post_months} from their training "
                            f"{panel.period_noun}: at least {MIN_TRAINED} are needed")
    if n_c < max(MIN_COMPARISON, k + 3):
        raise NotApplicable(f"only {n_c} never-trained units have activity (and covariates) around their reference "
                            f"month: {max(MIN_COMPARISON, k + 3)} are needed for {k} covariates")
    names = tuple(panel.covariates)
    x = usable.select(names).to_numpy().astype(np.float64)
    flat = [c for c, s in zip(names, x.std(axis=0), strict=True) if s == 0]
    if flat:
        raise NotApplicable(f"covariate {', '.join(flat)} takes one value among the units with activity: it cannot "
                            "adjust anything (leave it out of the panel's covariates)")
    y0, y1 = usable["before"].to_numpy(), usable["after"].to_numpy()
    w = usable["weight"].to_numpy().astype(np.float64)
    calls: dict[str, Callable[[], DiDFit]] = {
        "dr": lambda: dr_did(y0, y1, d, x, weights=w, names=names, trim=trim),
        "reg": lambda: reg_did(y0, y1, d, x, weights=w, names=names, trim=trim),
        "ipw": lambda: ipw_did(y0, y1, d, x, weights=w, names=names, trim=trim),
        "unadjusted": lambda: reg_did(y0, y1, d, None, weights=w),
    }
    try:
        fit = calls[method]()
    except ValueError as exc:
        raise NotApplicable(f"the covariates cannot be fitted: {exc}") from exc
    fits: dict[str, DiDFit] = {method: fit}
    for name, call in calls.items():  # the others, beside it, when they can be fitted
        if name != method:
            try:
                fits[name] = call()
            except ValueError:
                continue
    trained = usable.filter(pl.col("trained"))
    n0, d0 = float(trained["pre_num"].sum()), float(trained["pre_den"].sum())
    baseline = n0 / d0 if d0 > 0 else float("nan")
    wt = w[d]
    details = {**{f"{name}_did": v.estimate for name, v in fits.items()}, "trained_pre_level": baseline,
               "trained_change": float(wt @ (y1 - y0)[d] / wt.sum()), "trained_units": float(n_t),
               "comparison_units": float(n_c), "pre_months": float(pre_months), "post_months": float(post_months)}
    warns = list(panel.unobserved_warnings())
    if left_out["trained"]:
        warns.append(f"{left_out['trained']} trained units have no activity (or no covariates) before or after "
                     "their training month and are left out")
    return fit.effect(
        baseline=baseline, confidence=confidence, replicates=replicates, seed=seed, multipliers=multipliers,
        assumptions=(*_ASSUMPTIONS, "each unit counts in proportion to the outcome's denominator over both windows"
                     if panel.denominator else "each unit counts once: its outcome is its mean per month"),
        details=details,
        diagnostics={
            "outcome": panel.outcome,
            "estimators": {name: {"method": v.method, "estimate": v.estimate, "std_error": v.std_error}
                           for name, v in fits.items()},
            "units_without_activity": left_out,
            "reference_months": f"untrained units: drawn from the trained units' training months (seed {seed})",
        },
        warnings=warns,
    )


@estimator("drdid", label="doubly robust difference-in-differences", needs_comparison=True, refutable=True,
           position=35)
def _drdid(panel: UnitPanel, s: EstimatorSettings) -> Effect:
    return estimate_drdid(panel, pre_months=max(2, s.post_months), post_months=s.post_months, confidence=s.confidence,
                          replicates=s.replicates, seed=s.seed)
