"""The program's forecast from the warehouse: the event study of revenue per unit-month, carried forward.

Measures what :func:`training_roi.value.forecast.forecast` needs — the effect on revenue won per
unit-month in each month since training (an event study on the monthly panel of the trained and
comparison units of the primary window, deals dated by creation), the share of trained units still
there in each month, the units not yet trained, the cost that grows with each learner — and
hands them over. A study without enough months before training for the event study's leads, or
whose training month has no coefficient, gets no forecast and the reason why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import polars as pl
import pyarrow as pa
from ibis.backends import BaseBackend

from training_roi._format import plural
from training_roi.evaluation.stages import kept
from training_roi.isolate import NotApplicable, estimate_event_study
from training_roi.measure import Cohort, WindowPanel, unit_panel
from training_roi.measure.panels import UnitPanel
from training_roi.measure.tenure import Tenure, tenure
from training_roi.study import StudyPlan
from training_roi.value import CostBreakdown
from training_roi.value.forecast import EventPath, Forecast, forecast, measured_run

__all__ = ["event_path", "program_forecast"]

_LEADS = 6
"""Months before training the event study compares (its pre-trend check); at least 2 are needed."""

_SUPPORT = 0.5
"""A month since training is measured when at least this share of the trained units reach it in the data."""

RAMP_MONTHS = 6
"""A unit that joins during the data is left out of the fit for its first months: a new rep's ramp-up
(fewer deals, lower win odds) is a trend of its own that unit fixed effects cannot absorb, and would
pass for a calendar trend the trained units did not follow."""

WIND_DOWN_MONTHS = 3
"""A unit that leaves during the data is left out of the fit for its last months: its deals still open
when it leaves are closed lost, a fall that is its departure, not the market's or training's."""

OUTCOME = "revenue_per_rep"
"""The outcome forecast: revenue won per unit-month (deals dated by their creation month)."""


def program_forecast(con: BaseBackend, plan: StudyPlan, trained: Cohort, panel: WindowPanel,
                     costs: CostBreakdown, unit_months: pa.Table | None = None) -> tuple[Forecast | None, str]:
    """The forecast for the primary window's trained units and the scale-up to its comparison units.

    ``unit_months``: the study's unit-month sums over every month (:func:`~training_roi.measure.monthly_panel`),
    when the evaluation has read them; a fit cut off by ``forecast.fit_through`` reads its own.

    Returns the forecast (None when it cannot be made) and a sentence: what it rests on, or why
    there is none. The event study is a kept measurement (:mod:`training_roi.evaluation.stages`):
    a changed cost or margin carries the same path forward again.
    """
    settings = plan.study.forecast
    if not settings.enabled:
        return None, "not requested (forecast.enabled is false)"
    measured = kept(event_path, con, trained, panel, unit=plan.unit, deal_types=plan.population.opportunity_types,
                    horizon=settings.horizon_months, fit_through=settings.fit_through,
                    confidence=plan.isolation.confidence, unit_months=unit_months)
    if isinstance(measured, str):
        return None, measured
    path, basis, units, others = measured
    variable = sum((costs.by_category.get(c, Decimal(0)) for c in settings.scale_up_costs), Decimal(0))
    per_unit = (variable / units).quantize(Decimal("0.01"), ROUND_HALF_UP)
    result = forecast(path, units=units, cost=costs.total, margin=plan.gross_margin,
                      confidence=plan.isolation.confidence, horizon=settings.horizon_months,
                      hold=settings.hold_months, half_life_months=settings.half_life_months,
                      remaining_units=others, variable_cost_per_unit=per_unit)
    return result, basis


def event_path(con: BaseBackend, trained: Cohort, panel: WindowPanel, *, unit: str, deal_types: Sequence[str],
               horizon: int, fit_through: date | None, confidence: float,
               unit_months: pa.Table | None) -> tuple[EventPath, str, int, int] | str:
    """The effect on revenue per unit-month in each month since training, measured; or why it cannot be.

    Returns the path, the sentence saying what it rests on, and how many trained and comparison units
    it covers; or the sentence saying why there is no forecast.
    """
    treated, others = sorted(panel.treated.units), sorted(panel.comparison.units)
    if not treated or not others:
        return "no forecast: it needs trained and comparison units"
    end = fit_through + timedelta(days=1) if fit_through else None
    try:
        monthly = unit_panel(con, trained, kpi=OUTCOME, scope=[*treated, *others], end=end,
                             deal_types=deal_types, sums=unit_months if end is None else None)
    except ValueError as exc:
        return f"no forecast: {exc}"
    steady, settling = _without_ramp(monthly, panel.tenure if panel.tenure is not None else tenure(con, unit))
    index = monthly.frame.select(period=monthly.period_index("period"), cohort=monthly.period_index("treated_at"))
    periods = index["period"].to_numpy()
    first, last = int(periods.min()), int(periods.max())
    cohorts = index["cohort"].drop_nulls().to_numpy()
    cohorts = cohorts[(cohorts > first) & (cohorts <= last)]
    if cohorts.size == 0:
        return "no forecast: no unit was trained inside the months the data cover"
    leads = min(_LEADS, int(cohorts.max()) - first)
    if leads < 2:
        return "no forecast: fewer than two months of data before training to check the trends against"
    lags = min(horizon, last - int(cohorts.min()) + 1)
    try:
        study = estimate_event_study(steady, leads=leads, lags=lags, confidence=confidence, challenged=False)
    except (NotApplicable, ValueError) as exc:
        return f"no forecast: {exc}"
    post = [int(k) for k in study.diagnostics["post_months"]]
    retention, reached = _retention(monthly, measured_run(post))
    # A month since training that fewer than half the trained units have reached rests on the
    # earliest cohorts alone: it is left to the extrapolation rather than measured on so few.
    run = int(np.argmax(reached < _SUPPORT)) if (reached < _SUPPORT).any() else reached.shape[0]
    if run == 0:
        return "no forecast: the month of training has no coefficient"
    cov = np.asarray(study.diagnostics["post_covariance"], dtype=np.float64)
    keep = [post.index(k) for k in range(run)]
    coefficients = {row["relative_month"]: row["coefficient"] for row in study.diagnostics["coefficients"]}
    path = EventPath(effect=np.array([coefficients[k] for k in range(run)], dtype=np.float64),
                     covariance=cov[np.ix_(keep, keep)], retention=retention[:run],
                     dof=int(study.diagnostics["clusters"]) - 1)
    basis = (f"an event study of revenue won per {unit}-month (deals dated by creation) over "
             f"{len(treated):,} trained and {len(others):,} comparison {unit}s, {plural(run, 'month')} since training "
             "measured")
    joined, left = settling
    if joined or left:
        basis += (f"; left out of the fit: the first {RAMP_MONTHS} months of the {plural(joined, unit)} "
                  "who joined during the data (their ramp-up) and the last "
                  f"{WIND_DOWN_MONTHS} of the {left:,} who left (deals closed lost as they left)")
    if fit_through:
        basis += f", deals created after {fit_through:%B} {fit_through.day}, {fit_through.year} left out of the fit"
    return path, basis, len(treated), len(others)


def _without_ramp(monthly: UnitPanel, present: Tenure) -> tuple[UnitPanel, tuple[int, int]]:
    """``monthly`` without the months of joining and leaving units that are not their steady state.

    A unit that joins during the data is left out for its first :data:`RAMP_MONTHS` months, one
    that leaves for its last :data:`WIND_DOWN_MONTHS` (deals created then are closed lost when it
    leaves). Returns the panel and how many of its units joined, and left, during the data.
    """
    first = min(monthly.periods)
    joined = {u: _add_months(d, RAMP_MONTHS) for u, d in present.start.items() if d > first}  # type: ignore[operator]
    left = {u: _add_months(d, -WIND_DOWN_MONTHS) for u, d in present.end.items()}
    if not joined and not left:
        return monthly, (0, 0)
    units = sorted(set(joined) | set(left))
    bounds = pl.DataFrame({"unit": units, "settled": [joined.get(u) for u in units],
                           "leaving": [left.get(u) for u in units]},
                          schema={"unit": pl.String, "settled": pl.Date, "leaving": pl.Date})
    f = monthly.frame.join(bounds, on="unit", how="left")
    off = (pl.col("settled").is_not_null() & (pl.col("period") < pl.col("settled"))) | (
        pl.col("leaving").is_not_null() & (pl.col("period") >= pl.col("leaving")))
    columns = [c for c in (monthly.numerator, monthly.denominator) if c is not None]
    f = f.with_columns(pl.when(off).then(None).otherwise(pl.col(c)).alias(c) for c in columns).drop(
        "settled", "leaving")
    present_units = set(monthly.frame["unit"].unique().to_list())
    return replace(monthly, frame=f), (len(set(joined) & present_units), len(set(left) & present_units))


def _add_months(day: date, months: int) -> date:
    n = day.year * 12 + day.month - 1 + months
    return date(n // 12, n % 12 + 1, 1)


def _retention(monthly: UnitPanel, months: int) -> tuple[np.ndarray, np.ndarray]:
    """Each month since training: the share of trained units still there, and the share it is in the data for.

    Still there: exposure months over the units whose month it is in the data. Reached: those units
    over every trained unit.
    """
    last = monthly.frame.select(monthly.period_index("period").max()).item()
    den = monthly.denominator or ""
    f = (monthly.frame.filter(pl.col("treated_at").is_not_null())
         .with_columns(k=monthly.event_time(), start=monthly.period_index("treated_at"))
         .filter((pl.col("k") >= 0) & (pl.col("k") < months)))
    reached = f.group_by("unit").agg(pl.col("start").first()).with_columns(reach=pl.lit(last) - pl.col("start"))
    total = max(reached.height, 1)
    shares, support = [], []
    for k in range(months):
        units = int((reached["reach"] >= k).sum())
        exposure = float(f.filter(pl.col("k") == k)[den].fill_null(0).fill_nan(0).sum()) if den else float(units)
        shares.append(min(exposure / units, 1.0) if units else 1.0)
        support.append(units / total)
    return np.array(shares, dtype=np.float64), np.array(support, dtype=np.float64)
