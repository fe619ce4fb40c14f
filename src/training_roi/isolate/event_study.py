"""Two-way fixed-effects difference-in-differences on the monthly panel, and its event study.

Both regress the outcome of each unit-month on unit fixed effects (a rep's own level), month
fixed effects (the market, the season, anything that moves every unit alike) and the treatment:
one "trained and after" indicator for :func:`estimate_twfe_did`, one indicator per month relative
to training for :func:`estimate_event_study`. A rate (won / closed deals) is the unit-month's
rate weighted by its denominator, so a month with no deals counts for nothing and a busy rep
counts for more, as in the pooled rates of the rest of the family. Standard errors are
cluster-robust by unit (CR1: a unit's months are not independent draws).

The event study's lead coefficients are the pre-trend test: if trained units were already
drifting away from the comparison before training, the parallel-trends assumption behind every
difference-in-differences is doubtful, and the report says so.

Two-way fixed effects is biased when training is staggered and the effect changes with time
since training (Goodman-Bacon 2021; de Chaisemartin & D'Haultfœuille 2020): units trained
earlier, whose effect is still growing, act as controls for units trained later.
:func:`training_roi.isolate.staggered.estimate_staggered` avoids those comparisons.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl
from numpy.typing import NDArray
from scipy import sparse, stats

from training_roi.isolate.effect import (
    Effect,
    EstimatorSettings,
    FloatArray,
    NotApplicable,
    effect_from_normal,
    estimator,
)
from training_roi.measure.panels import UnitPanel

__all__ = ["estimate_event_study", "estimate_twfe_did"]

BoolArray = NDArray[np.bool_]

_PARALLEL = ("parallel trends: without training, trained units' outcome would have moved like the "
             "never-trained units' outcome, month by month")
_NO_ANTICIPATION = "no anticipation: units did not change before the month they were trained"
_NO_SPILLOVER = "no spill-over: training one unit does not change another unit's outcomes"


@dataclass(frozen=True, eq=False)
class _Grid:
    """The panel as unit × month arrays: the outcome's sums and each unit's training month.

    ``den`` is the denominator, or 1 for every observed unit-month when the outcome has none
    (so ``num / den`` is the outcome either way, and ``den`` its weight). ``cohort`` is the
    index of the unit's training month in ``months`` (negative before the first month, at or
    past ``len(months)`` after the last), ``inf`` for never-trained units.
    """

    units: tuple[str, ...]
    months: tuple[date, ...]
    num: FloatArray
    den: FloatArray
    cohort: FloatArray

    @classmethod
    def of(cls, panel: UnitPanel) -> _Grid:
        """The arrays of ``panel``; several rows of one unit-month are summed."""
        f = panel.frame
        if f.is_empty():
            raise NotApplicable("the panel has no rows")
        index = f.select(
            pl.col("unit").cast(pl.String),
            (pl.col("period").dt.year().cast(pl.Int64) * 12 + pl.col("period").dt.month() - 1).alias("m"),
            (pl.col("treated_at").dt.year().cast(pl.Int64) * 12 + pl.col("treated_at").dt.month() - 1).alias("g"),
        )
        units, u = np.unique(index["unit"].to_numpy().astype(str), return_inverse=True)
        m = index["m"].to_numpy()
        first, last = int(m.min()), int(m.max())
        t = m - first
        shape = (len(units), last - first + 1)
        num, den = np.zeros(shape), np.zeros(shape)
        np.add.at(num, (u, t), f[panel.numerator].cast(pl.Float64).fill_null(0.0).to_numpy())
        ones = np.ones(f.height)
        np.add.at(den, (u, t), ones if panel.denominator is None
                  else f[panel.denominator].cast(pl.Float64).fill_null(0.0).to_numpy())
        cohort = np.full(len(units), np.inf)
        g = index["g"].to_numpy().astype(np.float64)  # nulls become nan
        known = np.isfinite(g)
        cohort[u[known]] = g[known] - first
        months = tuple(date((first + k) // 12, (first + k) % 12 + 1, 1) for k in range(shape[1]))
        return cls(tuple(str(x) for x in units), months, num, den, cohort)

    def level(self, rows: NDArray[np.int64], cols: NDArray[np.int64]) -> float:
        """The outcome pooled over the unit-months ``(rows, cols)``: Σ numerator / Σ denominator."""
        d = float(self.den[rows, cols].sum())
        return float(self.num[rows, cols].sum()) / d if d else float("nan")


@dataclass(frozen=True)
class _Fit:
    """Coefficients of the regressors of interest, their CR1 covariance, and the sample's size."""

    beta: FloatArray
    cov: FloatArray
    clusters: int
    observations: int


def _fe_regression(y: FloatArray, x: FloatArray, w: FloatArray, unit: FloatArray, month: FloatArray) -> _Fit:
    """Weighted least squares of ``y`` on ``x`` with unit and month fixed effects, clustered by unit.

    Unit effects are absorbed by demeaning within unit (the units can be many); month effects
    are explicit dummies (the months are few). By Frisch–Waugh–Lovell the coefficients and
    residuals are those of the full dummy regression, and because each unit is its own cluster
    so is the cluster-robust covariance; the CR1 factor G/(G−1)·(N−1)/(N−K) counts every unit
    effect in K, as statsmodels does with the dummies written out.
    """
    keep = w > 0
    y, x, w, unit, month = y[keep], x[keep], w[keep], unit[keep], month[keep]
    _, u = np.unique(unit, return_inverse=True)
    months, mi = np.unique(month, return_inverse=True)
    dummies = np.zeros((y.size, max(len(months) - 1, 0)))
    rows = np.flatnonzero(mi > 0)
    dummies[rows, mi[rows] - 1] = 1.0
    z = np.column_stack([x, dummies])
    members = sparse.csr_matrix((np.ones(y.size), (u, np.arange(y.size))))
    total = members @ w
    both = np.column_stack([y, z])
    means = (members @ (w[:, None] * both)) / total[:, None]
    both = both - means[u]
    yt, zt = both[:, 0], both[:, 1:]
    sw = np.sqrt(w)
    coef, *_ = np.linalg.lstsq(sw[:, None] * zt, sw * yt, rcond=None)
    resid = yt - zt @ coef
    rank = int(np.linalg.matrix_rank(sw[:, None] * zt))
    bread = np.linalg.pinv(zt.T @ (w[:, None] * zt))
    scores = members @ ((w * resid)[:, None] * zt)
    n, g = y.size, int(total.size)
    k = g + rank
    if g < 2 or n <= k:
        raise NotApplicable("too few units or months for a fixed-effects regression with clustered errors")
    factor = g / (g - 1) * (n - 1) / (n - k)
    cov = factor * bread @ (scores.T @ scores) @ bread
    p = x.shape[1]
    return _Fit(beta=coef[:p], cov=cov[:p, :p], clusters=g, observations=n)


def _check(confidence: float, **months: int) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1 (got {confidence})")
    for name, value in months.items():
        if value < 1:
            raise ValueError(f"{name} must be at least one month (got {value})")


def _sample(grid: _Grid, first: int, last: int) -> tuple[FloatArray, FloatArray, FloatArray, BoolArray]:
    """Unit-months in the regression, and which trained units can enter it.

    Trained units enter from ``first`` to ``last`` months around their training month;
    never-trained units (and units trained after the data ends) in every month. Returns the
    flat unit index, month index, relative month (``nan`` for comparison units) and the mask of
    trained units that can enter.

    Raises
    ------
    NotApplicable
        No comparison units, or no trained unit with months both before and from its training.
    """
    n, t = grid.num.shape
    comparison = grid.cohort >= t
    if not comparison.any():
        raise NotApplicable("every unit was trained during the data: there are no never-trained units to "
                            "compare with (the staggered estimator with not-yet-trained controls can still apply)")
    trained = (grid.cohort >= 1) & (grid.cohort < t)
    if not trained.any():
        raise NotApplicable("no unit was trained after the first month of the data: there is no month "
                            "before training to compare with")
    unit, month = np.divmod(np.arange(n * t), t)
    rel = month - grid.cohort[unit]
    inside = (comparison[unit]) | (trained[unit] & (rel >= first) & (rel <= last))
    unit, month, rel = unit[inside], month[inside], rel[inside]
    rel = np.where(comparison[unit], np.nan, rel)
    return unit.astype(np.float64), month.astype(np.float64), rel, trained


def _outcome(grid: _Grid, unit: FloatArray, month: FloatArray) -> tuple[FloatArray, FloatArray]:
    ui, mi = unit.astype(np.int64), month.astype(np.int64)
    w = grid.den[ui, mi]
    with np.errstate(invalid="ignore", divide="ignore"):
        y = np.where(w > 0, grid.num[ui, mi] / np.where(w > 0, w, 1.0), 0.0)
    return y, w


def _baseline(grid: _Grid, trained: BoolArray, months: int) -> float:
    """The trained units' outcome pooled over the ``months`` months before their training."""
    n, t = grid.num.shape
    unit, month = np.divmod(np.arange(n * t), t)
    rel = month - grid.cohort[unit]
    pre = trained[unit] & (rel >= -months) & (rel < 0)
    return grid.level(unit[pre], month[pre])


def _has_both_sides(unit: FloatArray, rel: FloatArray, w: FloatArray) -> None:
    ok = np.isfinite(rel) & (w > 0)
    before = set(unit[ok & (rel < 0)].tolist())
    after = set(unit[ok & (rel >= 0)].tolist())
    if not before & after:
        raise NotApplicable("no trained unit has outcomes both before and after its training in the window")


def estimate_twfe_did(panel: UnitPanel, *, post_months: int = 6, confidence: float = 0.95) -> Effect:
    """Two-way fixed-effects difference-in-differences: the average effect over the first months after training.

    Regresses each unit-month's outcome on unit and month fixed effects and a "trained and
    from the training month on" indicator. Trained units enter for ``post_months`` months
    before training and ``post_months`` months from the training month on (the training month
    counts as the first); never-trained units — and units trained after the data ends — are the
    comparison in every month. Units trained in the first month of the data or before have no
    month before training and are left out. Standard errors are clustered by unit; the interval
    uses Student's t with (units − 1) degrees of freedom.

    Raises
    ------
    NotApplicable
        No never-trained units, or no trained unit observed both before and after its training.
    """
    _check(confidence, post_months=post_months)
    grid = _Grid.of(panel)
    unit, month, rel, trained = _sample(grid, -post_months, post_months - 1)
    y, w = _outcome(grid, unit, month)
    _has_both_sides(unit, rel, w)
    treated = (np.nan_to_num(rel, nan=-1.0) >= 0).astype(np.float64)
    fit = _fe_regression(y, treated[:, None], w, unit, month)
    estimate, se = float(fit.beta[0]), float(np.sqrt(fit.cov[0, 0]))
    t = grid.num.shape[1]
    cohorts = np.unique(grid.cohort[trained])
    used = np.unique(unit[np.isfinite(rel) & (w > 0)]).size
    comparison = int((grid.cohort >= t).sum())
    warnings = []
    if cohorts.size > 1:
        warnings.append(
            f"training is staggered over {cohorts.size} different months: if the effect grows or fades with "
            "time since training, two-way fixed effects is biased (earlier-trained units serve as controls "
            "for later ones); compare with the staggered estimator")
    if comparison < 10:
        warnings.append(f"only {comparison} never-trained units to compare with: the month effects rest on few units")
    return effect_from_normal(
        "two-way fixed effects DiD", estimate, se, baseline=_baseline(grid, trained, post_months),
        confidence=confidence, dof=fit.clusters - 1,
        assumptions=(
            _PARALLEL, _NO_ANTICIPATION, _NO_SPILLOVER,
            "biased under staggered adoption when the effect changes with time since training: two-way fixed "
            "effects also compares later-trained units with units trained earlier, whose effect is still "
            "growing, and can then understate the effect (even flip its sign)",
            f"one effect for the training month and the {post_months - 1} months after it, averaged with "
            "regression weights (not the units' shares)",
            "unit-months count by their denominator (closed deals for win rate)" if panel.denominator
            else "every unit-month counts alike",
        ),
        details={"trained_units": float(used), "comparison_units": float(comparison),
                 "unit_months": float(fit.observations), "cohorts": float(cohorts.size),
                 "post_months": float(post_months)},
        diagnostics={"outcome": panel.outcome, "window": [-post_months, post_months - 1],
                     "clusters": fit.clusters},
        warnings=warnings,
    )


def estimate_event_study(panel: UnitPanel, *, leads: int = 6, lags: int = 6, confidence: float = 0.95) -> Effect:
    """The effect month by month relative to training, with a test of trends before training.

    Regresses each unit-month's outcome on unit and month fixed effects and one indicator per
    month relative to training, from ``-leads`` to ``lags - 1`` (0 is the training month), the
    month before training (−1) being the reference. Trained units enter only in those months;
    never-trained units (and units trained after the data ends) are the comparison in every
    month. The returned estimate is the plain average of the ``lags`` coefficients from the
    training month on; ``diagnostics["coefficients"]`` holds every coefficient with its standard
    error and interval, ready to plot.

    The pre-trend test is the joint Wald test that the ``leads - 1`` lead coefficients are all
    zero (chi-square, cluster-robust covariance); when it rejects at 5% a warning says so.

    Raises
    ------
    ValueError
        ``leads`` below 2 (no lead to test) or ``lags`` below 1.
    NotApplicable
        No never-trained units, or no trained unit observed both before and after its training.
    """
    _check(confidence, lags=lags)
    if leads < 2:
        raise ValueError(f"leads must be at least 2 months (the month before training is the reference; got {leads})")
    grid = _Grid.of(panel)
    unit, month, rel, trained = _sample(grid, -leads, lags - 1)
    y, w = _outcome(grid, unit, month)
    _has_both_sides(unit, rel, w)
    relative = [k for k in range(-leads, lags) if k != -1]
    x = np.column_stack([(rel == k).astype(np.float64) for k in relative])
    fit = _fe_regression(y, x, w, unit, month)
    se = np.sqrt(np.clip(np.diag(fit.cov), 0.0, None))
    dof = fit.clusters - 1
    q = float(stats.t(dof).ppf(0.5 + confidence / 2))
    table = []
    for k in range(-leads, lags):
        if k == -1:
            table.append({"relative_month": -1, "coefficient": 0.0, "std_error": 0.0, "ci_low": 0.0,
                          "ci_high": 0.0, "reference": True})
            continue
        i = relative.index(k)
        b = float(fit.beta[i])
        table.append({"relative_month": k, "coefficient": b, "std_error": float(se[i]),
                      "ci_low": b - q * float(se[i]), "ci_high": b + q * float(se[i]), "reference": False})
    post = np.array([k >= 0 for k in relative])
    a = post / post.sum()
    estimate = float(a @ fit.beta)
    std_error = float(np.sqrt(a @ fit.cov @ a))
    lead = ~post
    b_lead, v_lead = fit.beta[lead], fit.cov[np.ix_(lead, lead)]
    df = int(np.linalg.matrix_rank(v_lead))
    wald = float(b_lead @ np.linalg.pinv(v_lead) @ b_lead)
    p_value = float(stats.chi2.sf(wald, df)) if df else float("nan")
    warnings = []
    if p_value < 0.05:
        warnings.append(
            "trained and comparison units were already diverging before training: the "
            f"{df} lead coefficients are jointly different from zero (chi-square {wald:.1f}, p = {p_value:.3f}); "
            "parallel trends is doubtful and the estimate may carry that earlier divergence")
    comparison = int((grid.cohort >= grid.num.shape[1]).sum())
    return effect_from_normal(
        "event study (two-way fixed effects)", estimate, std_error,
        baseline=_baseline(grid, trained, leads), confidence=confidence, dof=dof,
        assumptions=(
            _PARALLEL, _NO_ANTICIPATION, _NO_SPILLOVER,
            "month effects are estimated from trained units too: with staggered training and effects that "
            "differ between cohorts, a coefficient can mix in other months' effects",
            f"the estimate is the plain average of the coefficients of the training month and the {lags - 1} "
            "months after it",
        ),
        details={"trained_units": float(np.unique(unit[np.isfinite(rel) & (w > 0)]).size),
                 "comparison_units": float(comparison), "unit_months": float(fit.observations),
                 "pre_trend_chi2": wald, "pre_trend_p_value": p_value},
        diagnostics={"outcome": panel.outcome, "coefficients": table, "reference_month": -1,
                     "pre_trend": {"statistic": wald, "df": df, "p_value": p_value,
                                   "test": "joint Wald test that every lead coefficient is zero (chi-square)"},
                     "clusters": fit.clusters},
        warnings=warnings,
    )


@estimator("twfe", label="difference-in-differences (two-way fixed effects, monthly)", needs_comparison=True,
           refutable=True, position=10)
def _twfe(panel: UnitPanel, s: EstimatorSettings) -> Effect:
    return estimate_twfe_did(panel, post_months=s.post_months, confidence=s.confidence)


@estimator("event_study", label="event study (mean of the months after training)", needs_comparison=True,
           refutable=True, position=20)
def _event_study(panel: UnitPanel, s: EstimatorSettings) -> Effect:
    return estimate_event_study(panel, leads=s.post_months, lags=s.post_months, confidence=s.confidence)
