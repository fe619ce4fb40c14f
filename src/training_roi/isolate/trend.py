"""Trend-line projection: each trained unit's outcome against the continuation of its own past.

Phillips' "trend-line analysis" isolates a program's effect without a comparison group: fit the
trained units' outcome before the program, project it over the months after, and credit the
program with the gap between what happened and the projection. It also serves a change that
reached everybody at once (an org-wide CRM go-live), where no untrained unit is left to compare.

Each trained unit is measured against its own training date (event time): its pre-period is its
periods before the period that contains its training, its post-period that period and the ones
after it (the training period counts as after, as everywhere in the family; see
:class:`~training_roi.measure.panels.UnitPanel`). Periods are the panel's grain, months by
default. Had the pre- and post-periods been calendar periods of the pooled group, a rollout
spread over many months would mix trained and not-yet-trained units in the early post periods
(diluting the gap) and leave few pre periods before the first training. The line is fitted on
the pre-training unit-periods of all trained units at once,

    y_ut = α_u + β · (periods since u's training) + γ_period-of-year(t) + noise,

weighted by the unit-period's denominator (deals; one per unit-period without a denominator;
unit-periods without an outcome are left out): each unit keeps its own level α_u (the units seen
far before training are not the ones seen just before it), they share the slope β, and the
period-of-year effects γ (month of year, quarter of year) are estimated when the pre-training
unit-periods cover every period of the year over more than a year. The projection of a post
unit-period is α_u + β·k + γ; the estimate is the post unit-periods' outcome minus it, pooled
(Σ numerator − Σ denominator × projection, over Σ denominator).

The uncertainty has three parts, all in the interval: the projection's (the line is refitted on
every bootstrap resample of units), the units' own period-to-period noise (resampled with them),
and shocks common to every unit in a calendar period (a good or bad month for the whole market,
which no resampling of units reproduces), whose variance is estimated from the pre-training
residuals by moments and added to each bootstrap draw as a normal term. With few units the
bootstrap draws are spread by the usual small-sample factor (√(G/(G−1)) and Student's t with
G − 1 degrees of freedom).

Without a comparison group, anything else that changed around the units' training dates (a
market-wide shift, a new product, a reorganisation) is credited to the program: the trend line
is unbiased only where nothing but training changed, and the result's assumptions say so.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from typing import Any

import numpy as np
import polars as pl
from scipy import sparse, stats

from training_roi.isolate.effect import (
    Effect,
    EstimatorSettings,
    FloatArray,
    NotApplicable,
    cluster_weights,
    effect_from_draws,
    estimator,
)
from training_roi.measure.panels import UnitPanel

__all__ = ["MIN_PRE_MONTHS", "estimate_trend"]

MIN_PRE_MONTHS = 6
"""Fewest periods before training (event times with an outcome) a trend line is fitted on."""
_STRONG_AUTOCORRELATION = 1.0
"""Durbin–Watson below this: neighbouring periods' residuals move together (2 means independent), the
mark of a line that does not follow the periods before training."""
_FEW_UNITS = 20
"""Fewer trained units than this: a bootstrap over so few units is a rough guide to the uncertainty."""
_SHOCK_MONTHS = 3.0
"""Fewest calendar periods' worth of residual information (tr(B)²/tr(B²)) to estimate period shocks from."""

IntArray = np.ndarray[Any, np.dtype[np.int64]]


def _design(k: FloatArray, calendar: IntArray, cycle: int | None) -> FloatArray:
    """Periods since training and, with a ``cycle``, indicators of the season's periods but the first; no intercept.

    ``calendar`` is the period number (:meth:`UnitPanel.period_index`), whose remainder by the
    cycle (12 months, 4 quarters) is the period of the year.
    """
    columns = [k]
    if cycle:
        season = calendar % cycle
        columns += [(season == m).astype(np.float64) for m in range(1, cycle)]
    return np.column_stack(columns)


def _sums(group: IntArray, n_groups: int, weight: FloatArray) -> sparse.csr_array:
    """The matrix that sums rows into groups, weighted: (groups × rows) @ values."""
    return sparse.csr_array((weight, (group, np.arange(group.size))), shape=(n_groups, group.size))


@dataclass(frozen=True)
class _Rows:
    """Unit-months of the trained units in their pre or post window, with an outcome."""

    unit: IntArray  # index of the unit among the units with a pre-training outcome
    calendar: IntArray  # months since year 0
    k: FloatArray  # months since the unit's training month
    y: FloatArray  # the unit-month's outcome (numerator / denominator, or numerator)
    w: FloatArray  # its weight (denominator, or 1)
    num: FloatArray
    pre: np.ndarray[Any, np.dtype[np.bool_]]
    post: np.ndarray[Any, np.dtype[np.bool_]]


@dataclass(frozen=True)
class _Fit:
    """The within-unit weighted least-squares line, in sums a bootstrap can re-weight by unit."""

    xbar: FloatArray  # units × p: each unit's weighted pre-period mean of the design
    ybar: FloatArray  # units: its weighted pre-period mean outcome
    gram: FloatArray  # units × p × p: Σ w (x − x̄_u)(x − x̄_u)'
    cross: FloatArray  # units × p: Σ w (x − x̄_u)(y − ȳ_u)
    post_gap: FloatArray  # units: Σ_post w (y − ȳ_u)
    post_design: FloatArray  # units × p: Σ_post w (x − x̄_u)
    post_weight: FloatArray  # units: Σ_post w

    def solve(self, weights: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Slope coefficients and the pooled post gap, one row per row of unit ``weights``.

        A resample whose units cannot identify the line (a month of the year nobody in it saw)
        gives NaN.
        """
        units, p = self.cross.shape
        a = (weights @ self.gram.reshape(units, p * p)).reshape(-1, p, p)
        b = weights @ self.cross
        beta = np.full(b.shape, np.nan)
        ok = np.linalg.matrix_rank(a, hermitian=True) == p
        beta[ok] = np.linalg.solve(a[ok], b[ok][..., None])[..., 0]
        with np.errstate(invalid="ignore", divide="ignore"):
            gap = (weights @ self.post_gap - np.einsum("rp,rp->r", weights @ self.post_design, beta)) / (
                weights @ self.post_weight)
        return beta, gap


def _fit(rows: _Rows, x: FloatArray, n_units: int) -> _Fit:
    """The line's per-unit sums: each unit's level is its pre-period mean, the slope is fitted within units."""
    pre, post = rows.pre, rows.post
    p = x.shape[1]
    s_pre = _sums(rows.unit[pre], n_units, rows.w[pre])
    w_u = s_pre @ np.ones(int(pre.sum()))
    xbar = (s_pre @ x[pre]) / w_u[:, None]
    ybar = (s_pre @ rows.y[pre]) / w_u
    xd = x[pre] - xbar[rows.unit[pre]]
    yd = rows.y[pre] - ybar[rows.unit[pre]]
    gram = np.stack([s_pre @ (xd * xd[:, [j]]) for j in range(p)], axis=1)
    s_post = _sums(rows.unit[post], n_units, rows.w[post])
    return _Fit(xbar=xbar, ybar=ybar, gram=gram, cross=s_pre @ (xd * yd[:, None]),
                post_gap=s_post @ (rows.y[post] - ybar[rows.unit[post]]),
                post_design=s_post @ (x[post] - xbar[rows.unit[post]]),
                post_weight=s_post @ np.ones(int(post.sum())))


@dataclass(frozen=True)
class _Noise:
    """Residual variances of the pre-training unit-months: a unit-month's own, and a month's shock."""

    unit_month: float  # σ²: a unit-month of weight w varies by σ²/w around the line
    shock: float  # σ²_m: a calendar month moves every unit's outcome together by this variance
    shock_months: float  # effective number of calendar months the shock variance is estimated from
    dof: float  # residual degrees of freedom of the unit-months


def _noise(rows: _Rows, x: FloatArray, fit: _Fit, residual: FloatArray) -> _Noise:
    """Method-of-moments variances of y_ut = line + δ_t + ε_ut, Var(δ_t) = σ²_m, Var(ε_ut) = σ²/w.

    In the weighted (whitened) regression with annihilator M and Z the calendar months'
    indicators (scaled by √w), E[e'e] = σ²(n − units − p) + σ²_m tr(B) and
    E[‖Z'e‖²] = σ² tr(B) + σ²_m tr(B²), with B = Z'MZ: two equations, two variances.
    """
    pre = rows.pre
    unit, w = rows.unit[pre], rows.w[pre]
    n_units, p = fit.cross.shape
    months, month = np.unique(rows.calendar[pre], return_inverse=True)
    xd = x[pre] - fit.xbar[unit]
    by_month = _sums(month, months.size, w)
    by_unit_month = sparse.csr_array((w, (unit, month)), shape=(n_units, months.size)).toarray()
    within = np.diag(by_month @ np.ones(unit.size)) - by_unit_month.T @ (by_unit_month
                                                                         / by_unit_month.sum(axis=1)[:, None])
    f = by_month @ xd
    b = within - f @ np.linalg.solve(fit.gram.sum(axis=0), f.T)
    dof = float(unit.size - n_units - p)
    q1 = float(np.sum(w * residual**2))
    q2 = float(np.sum((by_month @ residual) ** 2))
    tr_b, tr_b2 = float(np.trace(b)), float(np.sum(b * b))
    det = dof * tr_b2 - tr_b**2
    shock = max(0.0, (dof * q2 - tr_b * q1) / det) if det > 1e-12 * max(dof * tr_b2, 1.0) else 0.0
    unit_month = (q1 - shock * tr_b) / dof
    return _Noise(unit_month=unit_month, shock=shock, shock_months=tr_b**2 / tr_b2 if tr_b2 > 0 else 0.0, dof=dof)


def _shock_influence(rows: _Rows, x: FloatArray, fit: _Fit) -> tuple[IntArray, FloatArray]:
    """Each calendar month's weight in the estimate: a shock δ_t moves the estimate by L_t·δ_t.

    The estimate is linear in the outcomes; L_t sums its coefficients over month t's unit-months
    (post months enter positively, pre months through the units' levels and the line).
    """
    pre, post = rows.pre, rows.post
    d_total = float(fit.post_weight.sum())
    m = fit.post_design.sum(axis=0)
    g_inv_m = np.linalg.solve(fit.gram.sum(axis=0), m)
    unit = rows.unit
    w_pre_u = _sums(unit[pre], fit.ybar.size, rows.w[pre]) @ np.ones(int(pre.sum()))
    coef = np.zeros(rows.y.size)
    coef[post] = rows.w[post] / d_total
    xd = x[pre] - fit.xbar[unit[pre]]
    coef[pre] = -(rows.w[pre] / d_total) * (fit.post_weight[unit[pre]] / w_pre_u[unit[pre]] + xd @ g_inv_m)
    months, month = np.unique(rows.calendar, return_inverse=True)
    return months, np.bincount(month, weights=coef, minlength=months.size).astype(np.float64)


def estimate_trend(
    panel: UnitPanel,
    *,
    program_start: date | int | None = None,
    pre_months: int = 12,
    post_months: int = 6,
    seasonality: bool = True,
    confidence: float = 0.95,
    replicates: int = 999,
    seed: int = 7,
) -> Effect:
    """The program's effect as the trained units' outcome minus the projection of their pre-training trend.

    Parameters
    ----------
    panel
        The unit panel, at any grain (months by default). Only trained units are used;
        untrained units are ignored (none are needed: an org-wide go-live works).
    program_start
        An org-wide start (a date, or a period number at the ``index`` grain) that replaces
        every unit's own training date (a go-live that reached everybody at once); units
        trained after the post period are then left out. By default each unit is measured
        against its own training date.
    pre_months, post_months
        Each unit's periods before its training period that the line is fitted on, and its
        periods from training on over which the gap is averaged. As everywhere in the family
        the period that contains the training is the first after it (event time 0), so the post
        periods are event times 0 to ``post_months − 1``. Both count periods of the grain.
    seasonality
        Add period-of-year effects (month of year, or quarter of year; other grains have none,
        and a warning says so). They need the pre-training unit-periods to span a year and one
        period more (13 months, 5 quarters: every period of the year, one of them twice); with
        fewer they are left out and a warning says so.
    confidence
        Level of the interval.
    replicates, seed
        Bootstrap resamples of units, and the seed of their draws.

    Returns
    -------
    Effect
        ``estimate`` is the post unit-months' pooled outcome minus their pooled projection; the
        interval is a percentile interval of bootstrap draws over units (the line refitted on
        each) plus the common month shocks. ``diagnostics["series"]`` has, for each month
        relative to training, the pooled actual value, the model's value (fitted before,
        projected after) and its prediction interval, for a chart.

    Raises
    ------
    NotApplicable
        No trained unit, fewer than 6 months before training with an outcome, no month after
        it, or too few unit-months to measure their noise.
    ValueError
        ``pre_months`` below 6, ``post_months`` below 1, ``confidence`` outside (0, 1) or
        ``replicates`` below 2.

    Examples
    --------
    >>> effect = estimate_trend(panel, pre_months=12, post_months=6)  # doctest: +SKIP
    >>> effect.estimate, effect.ci_low, effect.ci_high  # doctest: +SKIP
    """
    if pre_months < MIN_PRE_MONTHS:
        raise ValueError(f"pre_months is {pre_months}: a trend line needs at least {MIN_PRE_MONTHS} pre-program "
                         "periods")
    if post_months < 1:
        raise ValueError(f"post_months is {post_months}: at least one period after training is needed")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence is {confidence}: expected a level between 0 and 1, such as 0.95")
    if replicates < 2:
        raise ValueError(f"replicates is {replicates}: the bootstrap needs at least 2")
    trained = panel.units.filter(pl.col("treated_at").is_not_null()).select("unit", "treated_at")
    if trained.is_empty():
        raise NotApplicable("no unit of the panel was trained: a trend line projects the trained units' outcome")
    noun = panel.period_noun
    warnings: list[str] = list(panel.unobserved_warnings())
    if program_start is not None:
        calendar = panel.calendar
        first_post = calendar.number_of(program_start)
        post_end = first_post + post_months
        at = trained.select(panel.period_index("treated_at")).to_series()
        trained = trained.filter(at < post_end)
        if trained.is_empty():
            raise NotApplicable(f"no unit was trained before {panel.period_start(post_end)}, the end of the post "
                                "period")
        at = trained.select(panel.period_index("treated_at")).to_series()
        early = int((at < first_post).sum())
        if early:
            warnings.append(f"{early} trained units were trained before {panel.period_label(first_post)}: the "
                            "pre-period already includes trained periods")
        last = int(at.max())  # type: ignore[arg-type]
        if last > first_post:
            warnings.append(f"training went on until {panel.period_label(last)}, after the post period began "
                            f"({panel.period_label(first_post)}): its early {noun}s mix trained and not-yet-trained "
                            "units, diluting the effect")
        trained = trained.with_columns(pl.lit(program_start, dtype=panel.frame.schema["treated_at"])
                                       .alias("treated_at"))

    rows, series_frame, units, left_out = _rows(panel, trained, pre_months, post_months)
    what = f"{noun}s with {panel.outcome} for the trained units"
    pre_k = np.unique(rows.k[rows.pre])
    if pre_k.size < MIN_PRE_MONTHS:
        raise NotApplicable(
            f"a trend line needs at least {MIN_PRE_MONTHS} pre-program {what}; the {pre_months} {noun}s before "
            f"training have {pre_k.size}")
    if not rows.post.any():
        raise NotApplicable(f"no {what} after their training: nothing after the program start to compare")

    n_units = len(units)
    if n_units < 2:
        raise NotApplicable(f"only one trained unit has {panel.outcome} before its training: the uncertainty of a "
                            "trend line is measured across units")
    calendar_pre = np.unique(rows.calendar[rows.pre])
    span = int(calendar_pre.max() - calendar_pre.min() + 1)
    cycle = panel.calendar.cycle
    # Season effects need every season before training and one of them twice (13 months, 5 quarters),
    # so the season is not taken for the slope.
    seasonal = bool(seasonality and cycle and span >= cycle + 1 and np.unique(calendar_pre % cycle).size == cycle)
    if seasonal:
        x = _design(rows.k, rows.calendar, cycle)
        fit = _fit(rows, x, n_units)
        seasonal = bool(np.linalg.matrix_rank(fit.gram.sum(axis=0), hermitian=True) == x.shape[1])
    if not seasonal:
        x = _design(rows.k, rows.calendar, None)
        fit = _fit(rows, x, n_units)
        if np.linalg.matrix_rank(fit.gram.sum(axis=0), hermitian=True) < 1:
            raise NotApplicable(f"no trained unit has two pre-program {what}: there is no trend to fit")
    if seasonality and not seasonal:
        warnings.append(
            f"seasonality not estimated: the pre-program {what} span {span} calendar {noun}s ({noun}-of-year "
            f"effects need every calendar {noun} over at least {cycle + 1}, some seen in two years); a "
            "seasonal swing would be read as the program's effect" if cycle else
            f"seasonality not estimated: at the {panel.grain} grain no season repeats in whole periods; a seasonal "
            "swing would be read as the program's effect")

    if rows.pre.sum() - n_units - x.shape[1] < 1:
        raise NotApplicable(f"{int(rows.pre.sum())} pre-program unit-{noun}s of {n_units} units leave no degrees of "
                            "freedom for the trend's noise")
    (beta,), (point,) = fit.solve(np.ones((1, n_units)))
    residual = (rows.y[rows.pre] - fit.ybar[rows.unit[rows.pre]]) - (x[rows.pre] - fit.xbar[rows.unit[rows.pre]]) @ beta
    noise = _noise(rows, x, fit, residual)
    months, influence = _shock_influence(rows, x, fit)
    shocks_known = noise.shock_months >= _SHOCK_MONTHS
    shock_sd = float(np.sqrt(noise.shock)) if shocks_known else float("nan")
    if not shocks_known:
        noise = replace(noise, shock=0.0)
    shock_se = float(np.sqrt(noise.shock * np.sum(influence**2)))
    betas, gaps = fit.solve(cluster_weights(n_units, replicates=replicates, seed=seed))
    # Few units: a bootstrap over G clusters is too narrow by about √(G/(G−1)) and by the gap
    # between Student's t with G − 1 degrees of freedom and the normal; the draws are spread by
    # both (a few percent with a hundred units), keeping their shape.
    q = 0.5 + confidence / 2
    spread = np.sqrt(n_units / (n_units - 1)) * float(stats.t(n_units - 1).ppf(q) / stats.norm.ppf(q))
    draws = point + spread * (gaps - point) + np.random.default_rng([seed, 1]).standard_normal(replicates) * shock_se

    pooled_pre = _pooled_residuals(rows, residual)
    energy = float(np.sum(pooled_pre**2))
    # No residual at all (a perfectly straight pre-period) leaves autocorrelation undefined, not infinite.
    dw = float(np.sum(np.diff(pooled_pre) ** 2)) / energy if pooled_pre.size > 2 and energy > 0 else float("nan")
    lag1 = (float(np.corrcoef(pooled_pre[:-1], pooled_pre[1:])[0, 1])
            if pooled_pre.size > 2 and pooled_pre.std() > 0 else float("nan"))
    if dw < _STRONG_AUTOCORRELATION:
        warnings.append(f"the pre-program months' residuals are strongly autocorrelated (Durbin–Watson {dw:.2f}; "
                        "2 means none): the trend may be mis-specified and its projection off")
    if pre_k.size < 12:
        warnings.append(f"the trend is fitted on {pre_k.size} {noun}s before training: projections beyond a few "
                        f"{noun}s are fragile")
    if left_out:
        warnings.append(f"{left_out} trained units have no {panel.outcome} in the {pre_months} {noun}s before their "
                        "training and were left out: their level before training is unknown")
    if n_units < _FEW_UNITS:
        warnings.append(f"only {n_units} trained units: a bootstrap over so few units is a rough guide to the "
                        "uncertainty")
    if not shocks_known:
        warnings.append(f"too few calendar {noun}s before training to tell {noun}-wide shocks from the trend and the "
                        "season: the interval leaves such shocks out")

    pre_w = float(rows.w[rows.pre].sum())
    post_w = float(rows.w[rows.post].sum())
    baseline = float(rows.num[rows.pre].sum()) / pre_w
    actual_post = float(rows.num[rows.post].sum()) / post_w
    yd = rows.y[rows.pre] - fit.ybar[rows.unit[rows.pre]]
    total = float(np.sum(rows.w[rows.pre] * yd**2))
    r_squared = 1 - float(np.sum(rows.w[rows.pre] * residual**2)) / total if total > 0 else float("nan")
    gap_draws = gaps[np.isfinite(gaps)]
    assumptions = [
        ("without training each trained unit's outcome would have continued its own pre-training trend"
         + (f" and {noun}-of-year pattern" if seasonal else "")
         + " (units keep their own levels and share one slope); nothing else changed around their training "
         "dates — a market-wide shift or a new product at that time would be credited to the program"),
        "the trained units' own past is the comparison: no untrained group is used",
        "each unit is measured from its own training date" if program_start is None else
        f"every trained unit is measured from the program start, {program_start}",
    ]
    if seasonality and not seasonal:
        assumptions.append("no month-of-year pattern: too few pre-program months to estimate one")
    return effect_from_draws(
        "trend-line projection", float(point), draws, baseline=baseline, confidence=confidence,
        assumptions=assumptions, warnings=warnings,
        details={
            "actual_post": actual_post, "projected_post": actual_post - float(point),
            "slope_per_month": float(beta[0]), "pre_months": float(pre_k.size),
            "post_months": float(np.unique(rows.k[rows.post]).size),
            "pre_unit_months": float(rows.pre.sum()), "post_unit_months": float(rows.post.sum()),
            "calendar_pre_months": float(span), "seasonality": float(seasonal), "r_squared": r_squared,
            "durbin_watson": dw, "residual_sd": float(np.sqrt(noise.unit_month * rows.pre.sum() / pre_w)),
            "month_shock_sd": shock_sd,
            "month_shock_se": shock_se, "small_sample_factor": spread,
            "bootstrap_se": float(np.std(gap_draws, ddof=1)) if gap_draws.size > 1 else float("nan"),
            "dof": noise.dof, "trained_units": float(n_units), "units_left_out": float(left_out),
        },
        diagnostics={
            "measured_from": "each unit's training date" if program_start is None else str(program_start),
            "r_squared": r_squared, "durbin_watson": dw, "residual_lag1_autocorrelation": lag1,
            "calendar_months": [panel.period_label(int(m)) for m in months],
            "month_shock_influence": [float(v) for v in influence],
            "series": _series(series_frame, cycle if x.shape[1] > 1 else None, fit, beta, betas, noise, confidence),
        },
    )


def _rows(panel: UnitPanel, trained: pl.DataFrame, pre_months: int,
          post_months: int) -> tuple[_Rows, pl.DataFrame, list[str], int]:
    """The trained units' observed unit-periods in their pre and post windows (event times −pre…−1 and 0…post−1).

    Units with no outcome before training are left out (counted): their level is unknown.
    """
    den = (pl.col(panel.denominator) if panel.denominator is not None else pl.lit(1.0)).cast(pl.Float64)
    frame = (panel.observed.select("unit", "period", pl.col(panel.numerator).cast(pl.Float64).alias("num"),
                                   den.alias("w"))
             .join(trained.rename({"treated_at": "trained_on"}), on="unit")
             .with_columns(calendar=panel.period_index("period"),
                           k=panel.period_index("period") - panel.period_index("trained_on"))
             .with_columns(phase=pl.when((pl.col("k") >= -pre_months) & (pl.col("k") < 0)).then(pl.lit("pre"))
                           .when((pl.col("k") >= 0) & (pl.col("k") < post_months)).then(pl.lit("post")))
             .filter(pl.col("phase").is_not_null(), pl.col("w") > 0))
    with_pre = frame.filter(pl.col("phase") == "pre")["unit"].unique().sort()
    left_out = frame.filter(pl.col("phase") == "post")["unit"].n_unique() - frame.filter(
        pl.col("phase") == "post", pl.col("unit").is_in(with_pre.implode()))["unit"].n_unique()
    units: list[str] = with_pre.to_list()
    frame = (frame.join(pl.DataFrame({"unit": units, "index": np.arange(len(units))},
                                     schema={"unit": frame.schema["unit"], "index": pl.Int64}), on="unit")
             .sort("index", "period"))
    rows = _Rows(
        unit=frame["index"].to_numpy(), calendar=frame["calendar"].to_numpy(),
        k=frame["k"].to_numpy().astype(np.float64), y=(frame["num"] / frame["w"]).to_numpy(),
        w=frame["w"].to_numpy(), num=frame["num"].to_numpy(),
        pre=(frame["phase"] == "pre").to_numpy(), post=(frame["phase"] == "post").to_numpy())
    return rows, frame, units, left_out


def _pooled_residuals(rows: _Rows, residual: FloatArray) -> FloatArray:
    """The pre-training residuals pooled by month since training, scaled to equal variance (√Σw)."""
    k, index = np.unique(rows.k[rows.pre], return_inverse=True)
    w = rows.w[rows.pre]
    weight = np.bincount(index, weights=w, minlength=k.size)
    return np.bincount(index, weights=w * residual, minlength=k.size) / np.sqrt(weight)


def _series(frame: pl.DataFrame, cycle: int | None, fit: _Fit, beta: FloatArray, betas: FloatArray,
            noise: _Noise, confidence: float) -> dict[str, Any]:
    """For each period relative to training: pooled actual, model value and its prediction interval.

    The model's value pools each unit's line (its level, the slope, the season) over the same
    unit-months as the actual value; the interval is where the pooled outcome would fall without
    the program (the line's bootstrap spread, the noise of the units' levels and of the
    unit-months, the month shocks), so a month above it stands out on a chart.
    """
    k = frame["k"].to_numpy().astype(np.float64)
    x = _design(k, frame["calendar"].to_numpy(), cycle)
    unit = frame["index"].to_numpy()
    w = frame["w"].to_numpy()
    event, at = np.unique(k, return_inverse=True)
    weight = np.bincount(at, weights=w, minlength=event.size)
    by_event = _sums(at, event.size, w)
    level = by_event @ fit.ybar[unit] / weight
    slope = by_event @ (x - fit.xbar[unit]) / weight[:, None]
    model = level + slope @ beta
    ok = np.isfinite(betas).all(axis=1)
    spread = (slope @ betas[ok].T).var(axis=1, ddof=1) if ok.sum() > 1 else np.zeros(event.size)
    pre_weight = _sums(unit, fit.ybar.size, w * (frame["phase"] == "pre").to_numpy()) @ np.ones(unit.size)
    unit_share = sparse.csr_array((w, (at, unit)), shape=(event.size, fit.ybar.size)).toarray() / weight[:, None]
    level_var = noise.unit_month * (unit_share**2) @ (1 / pre_weight)
    calendar, month = np.unique(frame["calendar"].to_numpy(), return_inverse=True)
    share = sparse.csr_array((w, (at, month)), shape=(event.size, calendar.size)).toarray() / weight[:, None]
    se = np.sqrt(spread + level_var + noise.unit_month / weight + noise.shock * np.sum(share**2, axis=1))
    q = float(stats.norm.ppf(0.5 + confidence / 2))
    actual = np.bincount(at, weights=frame["num"].to_numpy(), minlength=event.size) / weight
    phase = ["pre" if e < 0 else "post" for e in event]
    units_at = frame.group_by("k").agg(pl.col("unit").n_unique()).sort("k")["unit"].to_list()
    return {
        "month_since_training": [float(e) for e in event], "phase": phase,
        "units": [float(n) for n in units_at], "weight": [float(v) for v in weight],
        "actual": [float(v) for v in actual], "model": [float(v) for v in model],
        "low": [float(v) for v in model - q * se], "high": [float(v) for v in model + q * se],
    }


@estimator("trend", label="trend line of the trained group", needs_comparison=False, refutable=False, position=70)
def _trend(panel: UnitPanel, s: EstimatorSettings) -> Effect:
    return estimate_trend(panel, post_months=s.post_months, confidence=s.confidence, replicates=s.replicates,
                          seed=s.seed)
