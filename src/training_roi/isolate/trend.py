"""Trend-line projection: the trained units' outcome against the continuation of its own past.

Phillips' "trend-line analysis" isolates a program's effect without a comparison group: fit the
trained units' monthly outcome before the program (a straight line, plus month-of-year effects
when two years of history allow it), project it over the months after, and credit the program
with the gap between what happened and the projection. It is an interrupted time series on one
aggregated series, so it also serves a change that reached everybody at once (an org-wide CRM
go-live), where no untrained unit is left to compare with.

The monthly outcome is pooled (Σ numerator / Σ denominator of the trained units, or the mean per
unit-month without a denominator) and the fit is weighted by the month's denominator (deals,
unit-months): a month with twice the deals has half the sampling variance. The uncertainty of
the post-period mean gap has two parts, both in the standard error: the projection's parameter
uncertainty (the fitted line could be off) and the months' own noise around it (the actual
months would scatter even if the line were exact), on Student's t with the fit's residual
degrees of freedom.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import polars as pl
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.stattools import durbin_watson

from training_roi.isolate.did import Effect, FloatArray
from training_roi.isolate.estimator import NotApplicable, effect_from_normal
from training_roi.isolate.unit_panel import UnitPanel

__all__ = ["MIN_PRE_MONTHS", "SEASONAL_PRE_MONTHS", "estimate_trend"]

MIN_PRE_MONTHS = 6
"""Fewest pre-program months a trend line is fitted on: fewer leave the slope to chance."""
SEASONAL_PRE_MONTHS = 24
"""Fewest pre-program months for month-of-year effects: each calendar month seen at least twice."""
_STRONG_AUTOCORRELATION = (1.0, 3.0)
"""Durbin–Watson outside this range: months far from independent (2 means no autocorrelation)."""


def _month_number(d: date) -> int:
    return d.year * 12 + d.month - 1


def _from_month_number(n: int) -> date:
    return date(n // 12, n % 12 + 1, 1)


def _design(months: list[date], origin: int, seasonal: bool) -> FloatArray:
    """Intercept, months since ``origin``, and (``seasonal``) indicators of February … December."""
    t = np.array([_month_number(m) - origin for m in months], dtype=np.float64)
    columns = [np.ones_like(t), t]
    if seasonal:
        moy = np.array([m.month for m in months])
        columns += [(moy == k).astype(np.float64) for k in range(2, 13)]
    return np.column_stack(columns)


def estimate_trend(
    panel: UnitPanel,
    *,
    program_start: date | None = None,
    pre_months: int = 12,
    post_months: int = 6,
    seasonality: bool = True,
    confidence: float = 0.95,
) -> Effect:
    """The program's effect as the trained units' outcome minus the projection of its pre-program trend.

    Parameters
    ----------
    panel
        The monthly unit panel. Only units trained before the end of the post period are used;
        untrained units are ignored (none are needed: an org-wide go-live works).
    program_start
        When the program began; by default the first training date. Months that end before it
        are the pre-period (the ``pre_months`` closest to it); months that begin on or after it
        are the post-period (the first ``post_months``). A month it falls inside is neither:
        part before, part after, it is shown in the diagnostics as the transition.
    pre_months, post_months
        How many months are fitted, and over how many the gap is averaged.
    seasonality
        Add month-of-year effects to the line. They need at least 24 pre months with an outcome
        (each calendar month seen twice); with fewer they are left out and a warning says so.
    confidence
        Level of the interval.

    Returns
    -------
    Effect
        ``estimate`` is the mean over the post months of (actual − projected); its standard
        error combines the projection's parameter uncertainty with the months' residual noise.
        ``diagnostics["series"]`` has each month's actual value, the model's value (fitted
        before, projected after) and its prediction interval, for a chart.

    Raises
    ------
    NotApplicable
        No trained unit, fewer than 6 pre-program months with an outcome, or no post month.
    ValueError
        ``pre_months`` below 6, ``post_months`` below 1, or ``confidence`` outside (0, 1).

    Examples
    --------
    >>> effect = estimate_trend(panel, pre_months=24, post_months=6)  # doctest: +SKIP
    >>> effect.estimate, effect.ci_low, effect.ci_high  # doctest: +SKIP
    """
    if pre_months < MIN_PRE_MONTHS:
        raise ValueError(f"pre_months is {pre_months}: a trend line needs at least {MIN_PRE_MONTHS} pre-program months")
    if post_months < 1:
        raise ValueError(f"post_months is {post_months}: at least one month after the program start is needed")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence is {confidence}: expected a level between 0 and 1, such as 0.95")
    trained = panel.units.filter(pl.col("treated_at").is_not_null())
    if trained.is_empty():
        raise NotApplicable("no unit of the panel was trained: a trend line projects the trained units' outcome")
    start = program_start if program_start is not None else trained["treated_at"].min()
    assert isinstance(start, date)
    start_month = date(start.year, start.month, 1)
    first_post = start_month if start.day == 1 else _from_month_number(_month_number(start_month) + 1)
    pre_first = _from_month_number(_month_number(start_month) - pre_months)
    post_end = _from_month_number(_month_number(first_post) + post_months)
    trained = trained.filter(pl.col("treated_at") < post_end)
    if trained.is_empty():
        raise NotApplicable(f"no unit was trained before {post_end:%Y-%m-%d}, the end of the post period")

    frame = panel.frame.filter(pl.col("unit").is_in(trained["unit"].implode()))
    den = pl.col(panel.denominator).sum() if panel.denominator is not None else pl.len().cast(pl.Float64)
    monthly = (frame.group_by("period").agg(num=pl.col(panel.numerator).sum().cast(pl.Float64),
                                            den=den.cast(pl.Float64))
               .filter(pl.col("den") > 0)
               .with_columns(value=pl.col("num") / pl.col("den"))
               .filter(pl.col("period") >= pre_first, pl.col("period") < post_end)
               .sort("period"))
    pre = monthly.filter(pl.col("period") < start_month)
    post = monthly.filter(pl.col("period") >= first_post)
    what = f"months with {panel.outcome} for the trained units"
    if pre.height < MIN_PRE_MONTHS:
        raise NotApplicable(
            f"a trend line needs at least {MIN_PRE_MONTHS} pre-program {what}; the {pre_months} months before "
            f"{start_month:%Y-%m} have {pre.height}")
    if post.is_empty():
        raise NotApplicable(f"no {what} from {first_post:%Y-%m} on: nothing after the program start to compare")

    warnings: list[str] = []
    pre_dates: list[date] = pre["period"].to_list()
    seasonal = seasonality and pre.height >= SEASONAL_PRE_MONTHS and len({m.month for m in pre_dates}) == 12
    if seasonality and not seasonal:
        warnings.append(
            f"seasonality not estimated: {pre.height} pre-program {what} (month-of-year effects need "
            f"{SEASONAL_PRE_MONTHS}, every calendar month); a seasonal swing would be read as the program's effect")
    if pre.height < pre_months:
        warnings.append(f"only {pre.height} of the {pre_months} requested pre-program months have data")
    if post.height < post_months:
        warnings.append(f"only {post.height} of the {post_months} requested post months have data")
    early = trained.filter(pl.col("treated_at") < start_month).height
    if early:
        warnings.append(f"{early} trained units were trained before {start_month:%Y-%m}: the pre-period "
                        "already includes trained months")
    last = trained["treated_at"].max()
    assert isinstance(last, date)
    if last > first_post:
        warnings.append(f"training went on until {last:%Y-%m-%d}, after the post period began ({first_post:%Y-%m}): "
                        "its early months mix trained and not-yet-trained units, diluting the effect")

    origin = _month_number(pre_first)
    weight_scale = float(pre["den"].sum()) / pre.height
    x_pre = _design(pre_dates, origin, seasonal)
    w_pre = pre["den"].to_numpy() / weight_scale
    fit = sm.WLS(pre["value"].to_numpy(), x_pre, weights=w_pre).fit()
    beta = np.asarray(fit.params, dtype=np.float64)
    cov = np.asarray(fit.cov_params(), dtype=np.float64)
    scale, dof = float(fit.scale), float(fit.df_resid)
    if dof < 1:
        raise NotApplicable(f"{pre.height} pre-program {what} leave no degrees of freedom for the trend's noise")

    post_dates: list[date] = post["period"].to_list()
    x_post = _design(post_dates, origin, seasonal)
    w_post = post["den"].to_numpy() / weight_scale
    projected = x_post @ beta
    actual = post["value"].to_numpy()
    point = float(np.mean(actual - projected))
    # Var(mean gap) = a'Σa (the projection's parameters, a = the post rows' mean) + σ²·mean(1/w)/m
    # (each month's own noise, σ²/w for a month of weight w, independent across months).
    mean_row = x_post.mean(axis=0)
    parameter_var = float(mean_row @ cov @ mean_row)
    noise_var = scale * float(np.mean(1 / w_post)) / post.height
    std_error = float(np.sqrt(parameter_var + noise_var))

    residuals = np.asarray(fit.wresid, dtype=np.float64)
    dw = float(durbin_watson(residuals))
    lag1 = float(np.corrcoef(residuals[:-1], residuals[1:])[0, 1]) if residuals.std() > 0 else float("nan")
    if not _STRONG_AUTOCORRELATION[0] <= dw <= _STRONG_AUTOCORRELATION[1]:
        warnings.append(f"the pre-program months' residuals are strongly autocorrelated (Durbin–Watson {dw:.2f}; "
                        "2 means none): the trend may be mis-specified and the interval is too narrow")
    if pre.height < 12:
        warnings.append(f"the trend is fitted on {pre.height} months: projections beyond a few months are fragile")

    baseline = float(pre["num"].sum()) / float(pre["den"].sum())
    assumptions = [
        ("without training the pre-period trend and seasonality would have continued; nothing else changed "
         "at the same time" if seasonal else
         "without training the pre-period trend would have continued; nothing else changed at the same time"),
        "the trained units' own past is the comparison: no untrained group is used",
    ]
    if seasonality and not seasonal:
        assumptions.append("no month-of-year pattern: too few pre-program months to estimate one")
    return effect_from_normal(
        "trend-line projection", point, std_error, baseline=baseline, confidence=confidence, dof=dof,
        assumptions=assumptions, warnings=warnings,
        details={
            "actual_post": float(actual.mean()), "projected_post": float(projected.mean()),
            "slope_per_month": float(beta[1]), "pre_months": float(pre.height), "post_months": float(post.height),
            "seasonality": float(seasonal), "r_squared": float(fit.rsquared), "durbin_watson": dw,
            "residual_sd": float(np.sqrt(scale)), "parameter_se": float(np.sqrt(parameter_var)),
            "noise_se": float(np.sqrt(noise_var)), "dof": dof, "trained_units": float(trained.height),
        },
        diagnostics={
            "program_start": start.isoformat(), "first_post_month": first_post.isoformat(),
            "r_squared": float(fit.rsquared), "durbin_watson": dw, "residual_lag1_autocorrelation": lag1,
            "series": _series(monthly, beta, cov, scale, dof, origin, seasonal, weight_scale, start_month,
                              first_post, confidence),
        },
    )


def _series(
    monthly: pl.DataFrame, beta: FloatArray, cov: FloatArray, scale: float, dof: float, origin: int,
    seasonal: bool, weight_scale: float, start_month: date, first_post: date, confidence: float,
) -> dict[str, Any]:
    """Each month's actual value, the model's value and its prediction interval, as JSON-able lists.

    The interval is where the month's outcome would fall without the program (parameter
    uncertainty and the month's own noise), so an actual month above it stands out on a chart.
    """
    months: list[date] = monthly["period"].to_list()
    x = _design(months, origin, seasonal)
    model = x @ beta
    se = np.sqrt(np.einsum("ij,jk,ik->i", x, cov, x) + scale * weight_scale / monthly["den"].to_numpy())
    q = float(stats.t(dof).ppf(0.5 + confidence / 2))
    phase = ["pre" if m < start_month else "post" if m >= first_post else "transition" for m in months]
    return {
        "month": [m.isoformat() for m in months], "phase": phase,
        "actual": [float(v) for v in monthly["value"]], "model": [float(v) for v in model],
        "low": [float(v) for v in model - q * se], "high": [float(v) for v in model + q * se],
    }
