"""Two-way fixed-effects difference-in-differences on the unit panel, and its event study.

Both regress the outcome of each unit-period on unit fixed effects (a rep's own level), period
fixed effects (the market, the season, anything that moves every unit alike) and the treatment:
one "trained and after" indicator for :func:`estimate_twfe_did`, one indicator per period
relative to training for :func:`estimate_event_study`. Periods are the panel's grain (months by
default; see :class:`~training_roi.measure.panels.UnitPanel`), and the period that contains the
training is the first after it. A rate (won / closed deals) is the unit-period's rate weighted by
its denominator, so a period with no deals counts for nothing and a busy rep counts for more, as
in the pooled rates of the rest of the family; a unit-period without an outcome is left out.
Standard errors are cluster-robust by unit (a unit's periods are not independent draws), or by the
panel's ``cluster`` (a team, a region) when it names one, with
the small-sample factor that leaves out the unit effects nested in the clusters, as Stata's
``reghdfe`` and R's ``fixest`` do.

The event study's lead coefficients are the pre-trend test: if trained units were already
drifting away from the comparison before training, the parallel-trends assumption behind every
difference-in-differences is doubtful, and the report says so.

Two-way fixed effects is biased when training is staggered and the effect changes with time
since training (Goodman-Bacon 2021; de Chaisemartin & D'Haultfœuille 2020): units trained
earlier, whose effect is still growing, act as controls for units trained later.
:func:`training_roi.isolate.staggered.estimate_staggered` avoids those comparisons.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray
from scipy import linalg, sparse, stats

from training_roi.isolate.effect import (
    Effect,
    EstimatorSettings,
    FloatArray,
    NotApplicable,
    effect_from_normal,
    estimator,
    never_narrower,
)
from training_roi.isolate.honest import honest_sensitivity
from training_roi.isolate.pretrends import EQUIVALENCE_SHARE, pretrend_check
from training_roi.isolate.wild import FEW_CLUSTERS, cluster_inference
from training_roi.measure.panels import UnitPanel

__all__ = ["estimate_event_study", "estimate_twfe_did"]

BoolArray = NDArray[np.bool_]

_PARALLEL = ("parallel trends: without training, trained units' outcome would have moved like the "
             "never-trained units' outcome, period by period")
_NO_ANTICIPATION = "no anticipation: units did not change before the period they were trained in"
_NO_SPILLOVER = "no spill-over: training one unit does not change another unit's outcomes"


@dataclass(frozen=True, eq=False)
class _Grid:
    """The panel as unit × period arrays: the outcome's sums and each unit's training period.

    Columns are the panel's consecutive periods from its first to its last (period numbers of
    :meth:`UnitPanel.period_index`). ``den`` is the denominator, or 1 for every observed
    unit-period when the outcome has none (so ``num / den`` is the outcome either way, and
    ``den`` its weight); a unit-period that is not in the panel, or whose outcome is null, has
    weight 0 and enters nothing. ``cohort`` is the column of the unit's training period
    (negative before the first period, at or past ``len(labels)`` after the last), ``inf`` for
    never-trained units.
    """

    units: tuple[str, ...]
    labels: tuple[str, ...]
    noun: str
    num: FloatArray
    den: FloatArray
    cohort: FloatArray

    @classmethod
    def of(cls, panel: UnitPanel) -> _Grid:
        """The arrays of ``panel``."""
        f = panel.frame
        if f.is_empty():
            raise NotApplicable("the panel has no rows")
        known = f.select(panel.is_observed()).to_series().to_numpy()
        index = f.select(
            pl.col("unit"),
            panel.period_index("period").alias("m"),
            panel.period_index("treated_at").alias("g"),
        )
        units, u = np.unique(index["unit"].to_numpy().astype(str), return_inverse=True)
        m = index["m"].to_numpy()
        first, last = int(m.min()), int(m.max())
        t = m - first
        shape = (len(units), last - first + 1)
        num, den = np.zeros(shape), np.zeros(shape)
        values = f[panel.numerator].cast(pl.Float64).fill_null(0.0).fill_nan(0.0).to_numpy()
        np.add.at(num, (u[known], t[known]), values[known])
        weight = (np.ones(f.height) if panel.denominator is None
                  else f[panel.denominator].cast(pl.Float64).fill_null(0.0).fill_nan(0.0).to_numpy())
        np.add.at(den, (u[known], t[known]), weight[known])
        cohort = np.full(len(units), np.inf)
        g = index["g"].cast(pl.Float64).to_numpy()  # nulls become nan
        ok = np.isfinite(g)
        cohort[u[ok]] = g[ok] - first
        labels = tuple(panel.period_label(first + k) for k in range(shape[1]))
        return cls(tuple(str(x) for x in units), labels, panel.period_noun, num, den, cohort)

    def level(self, rows: NDArray[np.int64], cols: NDArray[np.int64]) -> float:
        """The outcome pooled over the unit-periods ``(rows, cols)``: Σ numerator / Σ denominator."""
        d = float(self.den[rows, cols].sum())
        return float(self.num[rows, cols].sum()) / d if d else float("nan")


@dataclass(frozen=True)
class _Fit:
    """Coefficients of the regressors of interest, their clustered covariance, and the sample's size.

    A regressor the data cannot identify (no observation, or collinear with the fixed effects)
    has ``identified`` False and NaN in ``beta`` and in its row and column of ``cov``.
    """

    beta: FloatArray
    cov: FloatArray
    identified: BoolArray
    clusters: int
    observations: int
    parameters: int
    """K of the small-sample factor: the regressors and the month effects, not the unit effects."""
    within: tuple[FloatArray, FloatArray, FloatArray, NDArray[np.int64]] | None = field(repr=False)
    """The demeaned outcome and regressors, the weights and each row's cluster: the regression a wild
    cluster bootstrap resamples (by Frisch–Waugh–Lovell, the same coefficients and scores). Only
    with fewer than :data:`~training_roi.isolate.wild.FEW_CLUSTERS` clusters, where it is used."""
    by_unit: tuple[FloatArray, int] | None = field(default=None, repr=False)
    """With clusters other than units: the covariance clustered by unit instead, and the number of units."""


def _identified(gram: FloatArray, p: int) -> BoolArray:
    """Which of the first ``p`` columns of a design have a coefficient the data determine, from its Gram matrix.

    A column is identified unless some combination of the columns that includes it is zero:
    with its columns scaled to unit length, unless it loads on an eigenvector of the Gram
    matrix with a (numerically) zero eigenvalue. An all-zero column (no observation) never is.
    Collinearity among the other columns (the month effects) leaves it identified.
    """
    norms = np.sqrt(np.clip(np.diag(gram), 0.0, None))
    out = norms[:p] > 0
    live = norms > 0
    scaled = gram[np.ix_(live, live)] / np.outer(norms[live], norms[live])
    values, vectors = np.linalg.eigh(scaled)
    null = vectors[:, values <= max(float(values.max()), 1.0) * 1e-10]
    if null.size:
        position = np.cumsum(live) - 1  # column → its position among the live columns
        for j in np.flatnonzero(out):
            out[j] = not bool((np.abs(null[position[j]]) > 1e-6).any())
    return np.asarray(out, dtype=np.bool_)


def _rank(gram: FloatArray) -> int:
    """The rank of a design from its Gram matrix: the eigenvalues of its column-scaled form above the null threshold.

    The same reading of "numerically zero" as :func:`_identified` (an eigenvalue at most 1e−10 of
    the largest), so the fit's degrees of freedom and its identified regressors agree.
    """
    norms = np.sqrt(np.clip(np.diag(gram), 0.0, None))
    live = norms > 0
    if not live.any():
        return 0
    values = np.linalg.eigvalsh(gram[np.ix_(live, live)] / np.outer(norms[live], norms[live]))
    return int((values > max(float(values.max()), 1.0) * 1e-10).sum())


def _fe_regression(y: FloatArray, x: FloatArray, w: FloatArray, unit: FloatArray, month: FloatArray,
                   cluster: NDArray[np.int64] | None = None) -> _Fit:
    """Weighted least squares of ``y`` on ``x`` with unit and period fixed effects, clustered by unit.

    ``cluster`` (per row; units nested in clusters) clusters the errors by it instead: the team
    of a go-live by team, whose units' outcomes move together.

    Unit effects are absorbed by demeaning within unit (the units can be many); period effects
    are explicit dummies (the periods are few). By Frisch–Waugh–Lovell the coefficients and
    residuals are those of the full dummy regression, and because each unit is its own cluster
    so is the cluster-robust covariance.

    The small-sample factor is the one of Stata's ``reghdfe`` and ``xtreg, fe`` with clustered
    errors and of R's ``fixest`` (``fixef.K = "nested"``): G/(G−1)·(N−1)/(N−K), where K counts
    the regressors and the period effects but not the unit effects, which are nested in the unit
    clusters (each cluster's own mean is already removed from its scores, so they use up no
    cluster's information). Counting them too, as a regression with every dummy written out
    does, inflates the variance by about T/(T−1) with T periods per unit.

    Regressors of ``x`` that the sample cannot identify are dropped from the fit
    (:class:`_Fit`); the others' estimates are those of the regression without them.
    """
    keep = w > 0
    y, x, w, unit, month = y[keep], x[keep], w[keep], unit[keep], month[keep]
    _, u = np.unique(unit, return_inverse=True)
    _, c = np.unique(cluster[keep], return_inverse=True) if cluster is not None else (None, u)
    months, mi = np.unique(month, return_inverse=True)
    p, n = x.shape[1], y.size
    # The regressors, then one dummy per period but the first, as a sparse matrix: event-time
    # indicators and period dummies have one or two entries in a row of dozens of columns.
    rows = np.flatnonzero(mi > 0)
    periods = sparse.csr_matrix((np.ones(rows.size), (rows, mi[rows] - 1)), shape=(n, max(len(months) - 1, 0)))
    z = sparse.hstack([sparse.csr_matrix(x), periods], format="csr")
    # Unit sums weighted by w, as one sparse product (units × rows, the weight in each row's column):
    # the within transformation's means without a demeaned copy of the rows.
    members = sparse.csr_matrix((w, (u, np.arange(n))))
    total = np.asarray(members.sum(axis=1)).ravel()
    z_sums, y_sums = (members @ z).toarray(), members @ y
    z_bar, y_bar = z_sums / total[:, None], y_sums / total
    # One weighted cross-product of the demeaned outcome and regressors answers everything the fit
    # needs from the rows (the rows can be millions; the regressors are a few dozen): which
    # regressors are identified, the normal equations and their rank. Demeaning within units,
    # Σ w (z − z̄)(z − z̄)′ = Σ w z z′ − Σ_units (Σ w z) z̄′, so it comes from the rows as they are.
    gram = (z.T @ z.multiply(w[:, None])).toarray() - z_sums.T @ z_bar
    gram = (gram + gram.T) / 2  # symmetric to the last bit, as the matrix it stands for
    moment = z.T @ (w * y) - z_sums.T @ y_bar
    identified = _identified(gram, p)
    columns = np.concatenate([identified, np.ones(z.shape[1] - p, dtype=bool)])
    g_kept = gram[np.ix_(columns, columns)]
    bread = np.linalg.pinv(g_kept, hermitian=True)
    coef = bread @ moment[columns]
    zc, zc_bar = z[:, np.flatnonzero(columns)], z_bar[:, columns]
    # The within residual, y − ȳ − (z − z̄)β, and each unit's score Σ w e (z − z̄) = Σ w e z − (Σ w e) z̄.
    resid = (y - zc @ coef) - (y_bar - zc_bar @ coef)[u]
    scaled = members.multiply(resid[None, :]).tocsr()  # w e in each row's column
    unit_scores = (scaled @ zc).toarray() - np.asarray(scaled.sum(axis=1)) * zc_bar
    rank = _rank(g_kept)
    g = int(c.max()) + 1 if n else 0
    if cluster is None:
        scores = unit_scores
    else:  # units are nested in the clusters: a cluster's scores are its units' sums
        of_unit = np.zeros(int(members.shape[0]), dtype=np.int64)
        of_unit[u] = c
        scores = sparse.csr_matrix((np.ones(of_unit.size), (of_unit, np.arange(of_unit.size))),
                                   shape=(g, of_unit.size)) @ unit_scores
    if g < 2 or n <= rank:
        raise NotApplicable("too few units or periods for a fixed-effects regression with clustered errors")
    q = int(identified.sum())

    def clustered(sums: FloatArray, groups: int) -> FloatArray:
        """The CR1 covariance of the regressors of interest from per-cluster score sums (NaN where unidentified)."""
        cov = groups / (groups - 1) * (n - 1) / (n - rank) * bread @ (sums.T @ sums) @ bread
        cov = (cov + cov.T) / 2  # a sandwich is symmetric and its variances not negative; rounding is neither
        np.fill_diagonal(cov, np.clip(np.diag(cov), 0.0, None))
        full = np.full((p, p), np.nan)
        full[np.ix_(identified, identified)] = cov[:q, :q]
        return full

    beta = np.full(p, np.nan)
    beta[identified] = coef[:q]
    by_unit = None
    if cluster is not None:
        units = int(members.shape[0])
        by_unit = (clustered(unit_scores, units), units)
    # The demeaned rows only where the wild cluster bootstrap will resample them (few clusters).
    within = (y - y_bar[u], zc.toarray() - zc_bar[u], w, c) if g < FEW_CLUSTERS else None
    return _Fit(beta=beta, cov=clustered(scores, g), identified=identified, clusters=g, observations=n,
                parameters=rank, within=within, by_unit=by_unit)


def _row_clusters(panel: UnitPanel, grid: _Grid, unit: FloatArray) -> NDArray[np.int64] | None:
    """Each sampled row's cluster code when the panel names a cluster column, else None (units are clusters)."""
    codes = panel.cluster_codes(grid.units)
    return None if codes is None else codes[np.asarray(unit, dtype=np.int64)]


def _check(confidence: float, **periods: int) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1 (got {confidence})")
    for name, value in periods.items():
        if value < 1:
            raise ValueError(f"{name} must be at least one period (got {value})")


def _sample(grid: _Grid, first: int, last: int) -> tuple[FloatArray, FloatArray, FloatArray, BoolArray]:
    """Unit-periods in the regression, and which trained units can enter it.

    Trained units enter from event time ``first`` to ``last`` (0 is the period that contains
    their training); never-trained units (and units trained after the data ends) in every
    period. Returns the flat unit index, period index, event time (``nan`` for comparison
    units) and the mask of trained units that can enter.

    Raises
    ------
    NotApplicable
        No comparison units, or no trained unit with periods both before and from its training.
    """
    n, t = grid.num.shape
    comparison = grid.cohort >= t
    if not comparison.any():
        raise NotApplicable("every unit was trained during the data: there are no never-trained units to "
                            "compare with (the staggered estimator with not-yet-trained controls can still apply)")
    trained = (grid.cohort >= 1) & (grid.cohort < t)
    if not trained.any():
        raise NotApplicable(f"no unit was trained after the first {grid.noun} of the data: there is no "
                            f"{grid.noun} before training to compare with")
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


def _baseline(grid: _Grid, trained: BoolArray, periods: int) -> float:
    """The trained units' outcome pooled over the ``periods`` periods before their training."""
    n, t = grid.num.shape
    unit, month = np.divmod(np.arange(n * t), t)
    rel = month - grid.cohort[unit]
    pre = trained[unit] & (rel >= -periods) & (rel < 0)
    return grid.level(unit[pre], month[pre])


def _has_both_sides(unit: FloatArray, rel: FloatArray, w: FloatArray) -> None:
    ok = np.isfinite(rel) & (w > 0)
    before = set(unit[ok & (rel < 0)].tolist())
    after = set(unit[ok & (rel >= 0)].tolist())
    if not before & after:
        raise NotApplicable("no trained unit has outcomes both before and after its training in the window")


def estimate_twfe_did(panel: UnitPanel, *, post_months: int = 6, confidence: float = 0.95) -> Effect:
    """Two-way fixed-effects difference-in-differences: the average effect over the first periods after training.

    Regresses each unit-period's outcome on unit and period fixed effects and a "trained and
    from the training period on" indicator. Trained units enter for ``post_months`` periods
    before training and ``post_months`` periods from the training period on (the period that
    contains the training counts as the first after it; periods are the panel's grain, months by
    default); never-trained units — and units trained after the data ends — are the comparison
    in every period. Units trained in the first period of the data or before have no period
    before training and are left out. Standard errors are clustered by unit (by the panel's
    ``cluster`` column when it names one), with the small-sample factor that does not count the
    unit effects nested in the clusters (see :func:`_fe_regression`); the interval uses
    Student's t with (clusters − 1) degrees of freedom, or the wild cluster restricted bootstrap
    with fewer than 30 clusters.

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
    fit = _fe_regression(y, treated[:, None], w, unit, month, _row_clusters(panel, grid, unit))
    if not fit.identified[0]:
        raise NotApplicable("the effect is not identified: the trained units' periods after training cannot be told "
                            "apart from the period effects")
    estimate, se = float(fit.beta[0]), float(np.sqrt(max(float(fit.cov[0, 0]), 0.0)))
    t = grid.num.shape[1]
    cohorts = np.unique(grid.cohort[trained])
    used = np.unique(unit[np.isfinite(rel) & (w > 0)]).size
    comparison = int((grid.cohort >= t).sum())
    noun = grid.noun
    warnings = list(panel.unobserved_warnings())
    if cohorts.size > 1:
        warnings.append(
            f"training is staggered over {cohorts.size} different {noun}s: if the effect grows or fades with "
            "time since training, two-way fixed effects is biased (earlier-trained units serve as controls "
            "for later ones); compare with the staggered estimator")
    if comparison < 10:
        warnings.append(f"only {comparison} never-trained units to compare with: the {noun} effects rest on few "
                        "units")
    effect = effect_from_normal(
        "two-way fixed effects DiD", estimate, se, baseline=_baseline(grid, trained, post_months),
        confidence=confidence, dof=fit.clusters - 1,
        assumptions=(
            _PARALLEL, _NO_ANTICIPATION, _NO_SPILLOVER,
            "biased under staggered adoption when the effect changes with time since training: two-way fixed "
            "effects also compares later-trained units with units trained earlier, whose effect is still "
            "growing, and can then understate the effect (even flip its sign)",
            f"one effect for the training {noun} and the {post_months - 1} {noun}s after it, averaged with "
            "regression weights (not the units' shares)",
            f"unit-{noun}s count by their denominator (closed deals for win rate)" if panel.denominator
            else f"every unit-{noun} counts alike",
        ),
        details={"trained_units": float(used), "comparison_units": float(comparison),
                 "unit_months": float(fit.observations), "cohorts": float(cohorts.size),
                 "post_months": float(post_months), "parameters": float(fit.parameters)},
        diagnostics={"outcome": panel.outcome, "grain": panel.grain, "window": [-post_months, post_months - 1],
                     "clusters": fit.clusters, **({"clustered_by": panel.cluster} if panel.cluster else {})},
        warnings=warnings,
    )
    effect = _few_clusters(effect, fit, confidence)
    return _no_narrower_than_units(effect, panel, fit, np.ones(1), confidence)


def _few_clusters(effect: Effect, fit: _Fit, confidence: float) -> Effect:
    """With fewer than :data:`~training_roi.isolate.wild.FEW_CLUSTERS` clusters, the wild cluster bootstrap's interval.

    A clustered t-test over-rejects when the clusters are few (a go-live by team, a handful of
    regions): the interval and p-value then come from the wild cluster restricted bootstrap of
    the same regression (:func:`training_roi.isolate.wild.cluster_inference`), and the result says so.
    """
    if fit.clusters >= FEW_CLUSTERS:
        return effect
    assert fit.within is not None  # kept by the fit whenever the clusters are few
    yt, zt, w, u = fit.within
    # Period effects the sample cannot tell apart (collinear after demeaning) are left out: the
    # coefficient of interest and its scores do not change, and the bootstrap needs a full-rank design.
    sw = np.sqrt(w)[:, None]
    _, r, order = linalg.qr(sw * zt[:, 1:], mode="economic", pivoting=True)
    diag = np.abs(np.diag(r)) if r.size else np.zeros(0)
    rank = int((diag > diag.max() * 1e-10).sum()) if diag.size else 0
    keep = np.concatenate([[0], 1 + np.sort(order[:rank])]).astype(np.int64)
    try:
        with np.errstate(invalid="ignore", divide="ignore"):
            test = cluster_inference(yt, zt[:, keep], u, 0, weights=w, confidence=confidence, seed=7)
    except (ValueError, np.linalg.LinAlgError):
        test = None
    if test is None or not (np.isfinite(test.p_value) and test.ci_low == test.ci_low and test.ci_high == test.ci_high):
        return replace(effect, warnings=(*effect.warnings, f"only {fit.clusters} clusters, and the wild cluster "
                                         "bootstrap could not be computed on this design: the clustered t-test's "
                                         "interval may be too narrow"))
    return replace(effect, ci_low=test.ci_low, ci_high=test.ci_high, p_value=test.p_value,
                   details={**effect.details, "cr1_p_value": effect.p_value},
                   diagnostics={**effect.diagnostics, "inference": test.method, "inference_reason": test.reason},
                   warnings=(*effect.warnings, test.reason))


def _named(events: list[int]) -> str:
    return ", ".join(f"{k:+d}" for k in events)


def estimate_event_study(panel: UnitPanel, *, leads: int = 6, lags: int = 6, confidence: float = 0.95,
                         challenged: bool = True) -> Effect:
    """The effect period by period relative to training, with a test of trends before training.

    Regresses each unit-period's outcome on unit and period fixed effects and one indicator per
    event time, from ``-leads`` to ``lags - 1`` (0 is the period that contains the training),
    the period before training (−1) being the reference. Periods are the panel's grain (months
    by default), and ``leads`` and ``lags`` count them. Trained units enter only in those
    periods; never-trained units (and units trained after the data ends) are the comparison in
    every period. The returned estimate is the plain average of the coefficients from the
    training period on; ``diagnostics["coefficients"]`` holds every coefficient with its
    standard error and interval, ready to plot (``relative_month`` is the event time in periods),
    and ``post_covariance`` the covariance of the identified coefficients from the training period
    on (event times ``post_months``), which any
    sum of them — a cumulative effect, a forecast — needs.

    An event time that no trained unit-period in the sample reaches (the data end too soon after
    the last training, say), or whose coefficient the fixed effects absorb, has no coefficient:
    it is left out of the table, of the average and of the pre-trend test — never counted as a
    zero effect — and a warning names it (``diagnostics["unidentified"]``).

    The pre-trend test is the joint Wald test that the identified lead coefficients are all
    zero (chi-square, cluster-robust covariance); when it rejects at 5% a warning says so.
    ``challenged=False`` leaves out what the lead coefficients cannot settle by the test alone —
    the equivalence check and the honest (Rambachan–Roth) sensitivity — for a caller that needs the
    coefficients only (the forecast).

    Raises
    ------
    ValueError
        ``leads`` below 2 (no lead to test) or ``lags`` below 1.
    NotApplicable
        No never-trained units, no trained unit observed both before and after its training, or
        no identified coefficient from the training period on.
    """
    _check(confidence, lags=lags)
    if leads < 2:
        raise ValueError(f"leads must be at least 2 periods (the period before training is the reference; got {leads})")
    grid = _Grid.of(panel)
    unit, month, rel, trained = _sample(grid, -leads, lags - 1)
    y, w = _outcome(grid, unit, month)
    _has_both_sides(unit, rel, w)
    relative = [k for k in range(-leads, lags) if k != -1]
    x = (rel[:, None] == np.array(relative, dtype=np.float64)[None, :]).astype(np.float64)
    fit = _fe_regression(y, x, w, unit, month, _row_clusters(panel, grid, unit))
    dropped = [k for k, ok in zip(relative, fit.identified, strict=True) if not ok]
    post = np.array([k >= 0 for k in relative]) & fit.identified
    if not post.any():
        raise NotApplicable(f"no event time from the training {grid.noun} on has a trained unit-{grid.noun} to "
                            f"estimate it from (event times {_named([k for k in relative if k >= 0])})")
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
        if not fit.identified[i]:
            continue
        b = float(fit.beta[i])
        table.append({"relative_month": k, "coefficient": b, "std_error": float(se[i]),
                      "ci_low": b - q * float(se[i]), "ci_high": b + q * float(se[i]), "reference": False})
    a = post / post.sum()
    beta, cov = np.where(fit.identified, fit.beta, 0.0), np.nan_to_num(fit.cov)
    estimate = float(a @ beta)
    std_error = float(np.sqrt(max(float(a @ cov @ a), 0.0)))
    lead = fit.identified & ~np.array([k >= 0 for k in relative])
    b_lead, v_lead = fit.beta[lead], fit.cov[np.ix_(lead, lead)]
    df = int(np.linalg.matrix_rank(v_lead)) if lead.any() else 0
    wald = float(b_lead @ np.linalg.pinv(v_lead) @ b_lead) if df else float("nan")
    p_value = float(stats.chi2.sf(wald, df)) if df else float("nan")
    noun = grid.noun
    warnings = list(panel.unobserved_warnings())
    if dropped:
        warnings.append(
            f"event time{'s' if len(dropped) > 1 else ''} {_named(dropped)} (in {noun}s from training) "
            f"{'have' if len(dropped) > 1 else 'has'} no trained unit-{noun} to estimate from: left out of the "
            "coefficients, the average and the pre-trend test rather than counted as no effect")
    if p_value < 0.05:
        warnings.append(
            "trained and comparison units were already diverging before training: the "
            f"{df} lead coefficients are jointly different from zero (chi-square {wald:.1f}, p = {p_value:.3f}); "
            "parallel trends is doubtful and the estimate may carry that earlier divergence")
    lead_periods = [k for k, ok in zip(relative, lead, strict=True) if ok]
    check = None
    if challenged and df == len(lead_periods) and df > 0:
        # What the leads can tell, beyond "the pre-test did not reject": the pre-period gaps they
        # rule out (TOST) against half the estimated effect, and the trend the test would catch.
        check = pretrend_check(b_lead, v_lead, periods=lead_periods, tolerance=EQUIVALENCE_SHARE * abs(estimate),
                               dof=dof)
        if not check.rejects and not check.equivalent:
            warnings.append(f"a pre-test that does not reject is not evidence of parallel trends: {check.verdict}")
    sensitivity = _sensitivity(relative, fit, post, confidence) if challenged else None
    comparison = int((grid.cohort >= grid.num.shape[1]).sum())
    used_lags = [k for k, ok in zip(relative, post, strict=True) if ok]
    effect = effect_from_normal(
        "event study (two-way fixed effects)", estimate, std_error,
        baseline=_baseline(grid, trained, leads), confidence=confidence, dof=dof,
        assumptions=(
            _PARALLEL, _NO_ANTICIPATION, _NO_SPILLOVER,
            f"{noun} effects are estimated from trained units too: with staggered training and effects that "
            f"differ between cohorts, a coefficient can mix in other {noun}s' effects",
            f"the estimate is the plain average of the {len(used_lags)} identified coefficients from the training "
            f"{noun} on (event times {_named(used_lags)})",
        ),
        details={"trained_units": float(np.unique(unit[np.isfinite(rel) & (w > 0)]).size),
                 "comparison_units": float(comparison), "unit_months": float(fit.observations),
                 "pre_trend_chi2": wald, "pre_trend_p_value": p_value, "lags_averaged": float(len(used_lags))},
        diagnostics={"outcome": panel.outcome, "grain": panel.grain, "coefficients": table, "reference_month": -1,
                     "unidentified": dropped,
                     "pre_trend": {"statistic": wald, "df": df, "p_value": p_value,
                                   "test": "joint Wald test that every lead coefficient is zero (chi-square)",
                                   "leads": lead_periods, "lead_coefficients": [float(b) for b in b_lead],
                                   "lead_covariance": [[float(c) for c in row] for row in v_lead],
                                   "tolerance": check.tolerance if check else None,
                                   "equivalence_bound": check.bound if check else None,
                                   "equivalent": check.equivalent if check else None,
                                   "detectable_slope_50": check.slope_50 if check else None,
                                   "detectable_slope_80": check.slope_80 if check else None,
                                   "verdict": check.verdict if check else None},
                     "sensitivity": sensitivity,
                     "post_months": [k for k, ok in zip(relative, post, strict=True) if ok],
                     "post_covariance": [[float(c) for c in row] for row in fit.cov[np.ix_(post, post)]],
                     "clusters": fit.clusters, **({"clustered_by": panel.cluster} if panel.cluster else {})},
        warnings=warnings,
    )
    return _no_narrower_than_units(effect, panel, fit, a, confidence)


def _no_narrower_than_units(effect: Effect, panel: UnitPanel, fit: _Fit, average: FloatArray,
                            confidence: float) -> Effect:
    """With the panel's clusters, ``effect``'s interval widened to the unit-clustered one where that is wider.

    ``average`` weighs the regressors into the estimate (one coefficient, or the mean of the
    post-training ones). See :func:`~training_roi.isolate.effect.never_narrower`.
    """
    if panel.cluster is None or fit.by_unit is None:
        return effect
    cov, units = fit.by_unit
    se = float(np.sqrt(max(float(average @ np.nan_to_num(cov) @ average), 0.0)))
    by_unit = effect_from_normal(effect.method, effect.estimate, se, baseline=effect.baseline, confidence=confidence,
                                 dof=units - 1)
    return never_narrower(effect, (by_unit.ci_low, by_unit.ci_high), by_unit.p_value, panel.cluster)


def _sensitivity(relative: list[int], fit: _Fit, post: BoolArray, confidence: float) -> dict[str, Any] | None:
    """How far parallel trends may fail before the average effect's interval reaches zero (Rambachan & Roth).

    Under *relative magnitudes* the trend gap may move after training by up to M̄ times its
    largest move between consecutive periods before training; the breakdown M̄ is the smallest
    at which the interval of the average post-period effect includes zero. Computed only when
    every event time of the window is identified (the restriction reads consecutive periods).
    """
    if not fit.identified.all() or not post.any() or post.all():
        return None
    order = np.argsort(relative)
    n_pre = int((~post).sum())
    beta = fit.beta[order]
    cov = fit.cov[np.ix_(order, order)]
    s = honest_sensitivity(beta, cov, n_pre, restriction="relative_magnitudes", confidence=confidence)
    return {"restriction": s.restriction, "breakdown": s.breakdown, "verdict": s.verdict, "n_pre": n_pre,
            "beta": [float(b) for b in beta], "cov": [[float(c) for c in row] for row in cov],
            "rows": [{"bound": r.bound, "lower": r.lower, "upper": r.upper, "ci_low": r.ci_low,
                      "ci_high": r.ci_high} for r in s.rows]}


@estimator("twfe", label="difference-in-differences (two-way fixed effects)", needs_comparison=True,
           refutable=True, position=10)
def _twfe(panel: UnitPanel, s: EstimatorSettings) -> Effect:
    return estimate_twfe_did(panel, post_months=s.post_months, confidence=s.confidence)


@estimator("event_study", label="event study (mean of the periods after training)", needs_comparison=True,
           refutable=True, position=20)
def _event_study(panel: UnitPanel, s: EstimatorSettings) -> Effect:
    # As many leads as lags, and at least two: the reference period and one lead to test.
    return estimate_event_study(panel, leads=max(2, s.post_months), lags=s.post_months, confidence=s.confidence)
