"""The forecast: cumulative benefit, cost and ROI month by month after training, and what scaling up would return.

Certification and enablement programs "may take 6–18 months to realize full value", so a short
window's ROI is not the program's. The forecast carries the *measured* effect forward:

* **the effect by month since training** — one coefficient per month from an event study of
  revenue per unit-month (:func:`training_roi.isolate.estimate_event_study`), with their
  covariance. Months the data measure use their own coefficient; later months hold the precision-
  weighted average of the last ``hold`` measured months (persistence), or let it fade with a half-
  life the study declares (decay). Holding is the assumption the data cannot test: it is stated with
  the result.
* **who is still there** — the share of trained units still employed in each month since
  training (measured, then held at its last measured value), times the trained units;
* **the cost schedule** — every cost is counted in full from month 0 (costs are incurred when
  people are trained), so the cumulative ROI can only rise as benefit accrues.

Cumulative incremental revenue through month *m* is a fixed linear combination *c*ₘ′β of the
coefficients, so its standard error is √(*c*ₘ′Σ*c*ₘ) exactly, and its interval uses the event
study's own reference law (Student's *t* with the clusters' degrees of freedom). ROI's interval
follows (ROI is increasing in benefit, cost being fixed), and P(ROI > 0) is the same law's tail.

**Scale-up** applies the per-unit effect path to the units not yet trained, at the costs that
grow with each learner (participant time, licences, travel by default); the fixed costs already
spent do not recur. Its interval is the same combination, scaled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import stats

__all__ = ["HORIZONS", "Cumulative", "EventPath", "Forecast", "ForecastMonth", "ScaleUp", "forecast", "measured_run"]

HORIZONS = (6, 12, 18)
"""The months after training the forecast is summarised at (6–12 for most programs, 18 for certifications)."""

_CENT = Decimal("0.01")
_TENTH = Decimal("0.1")


@dataclass(frozen=True)
class EventPath:
    """The measured effect on revenue per unit-month, month by month since training.

    ``effect[k]`` is month *k*'s coefficient (0 = the month of training), ``covariance`` their
    covariance; ``retention[k]`` the share of trained units still there in month *k* (exposure
    months over units that reached it). Months are consecutive from 0.
    """

    effect: NDArray[np.float64]
    covariance: NDArray[np.float64]
    retention: NDArray[np.float64]
    dof: int | None
    """Degrees of freedom of the reference law (clusters − 1); None: normal."""

    def __post_init__(self) -> None:
        k = self.effect.shape[0]
        if k == 0:
            raise ValueError("the event path needs at least the month of training")
        if self.covariance.shape != (k, k) or self.retention.shape != (k,):
            raise ValueError(f"{k} effects need a {k}×{k} covariance and {k} retention shares, got "
                             f"{self.covariance.shape} and {self.retention.shape}")


@dataclass(frozen=True)
class Cumulative:
    """Incremental revenue with its interval, and what it makes of the cost, summed to one month."""

    revenue: Decimal
    revenue_low: Decimal
    revenue_high: Decimal
    benefit: Decimal
    cost: Decimal
    net_benefit: Decimal
    roi_pct: Decimal | None
    roi_low: Decimal | None
    roi_high: Decimal | None
    prob_positive: float | None
    """P(ROI > 0) under the estimate's law; None without a cost."""

    def asdict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (money and percentages as strings, exact)."""
        return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class ForecastMonth(Cumulative):
    """Cumulative figures through the end of month ``month`` after training (1 = the month of training)."""

    month: int = 0
    measured: bool = False
    """True when every month up to this one has its own measured coefficient (no extrapolation)."""


@dataclass(frozen=True)
class ScaleUp(Cumulative):
    """What training the units not yet trained would return by ``month`` months after their training."""

    month: int = 0
    units: int = 0
    cost_per_unit: Decimal = Decimal(0)


def _cumulative(revenue: float, half: float, se: float, cost: Decimal, margin: float,
                dof: int | None) -> dict[str, Any]:
    """The fields of :class:`Cumulative` for a central revenue, its interval's half-width and standard error."""
    low, high = revenue - half, revenue + half
    benefit = _money(revenue * margin)
    return {"revenue": _money(revenue), "revenue_low": _money(low), "revenue_high": _money(high),
            "benefit": benefit, "cost": cost, "net_benefit": benefit - cost, "roi_pct": _roi(revenue * margin, cost),
            "roi_low": _roi(low * margin, cost), "roi_high": _roi(high * margin, cost),
            "prob_positive": _tail(revenue * margin - float(cost), margin * se, dof) if cost > 0 else None}


@dataclass(frozen=True)
class Forecast:
    """The month-by-month forecast for the trained cohort, and the scale-up to the rest."""

    months: tuple[ForecastMonth, ...]
    measured_months: int
    """Months since training the data measure (each with its own coefficient)."""
    held_months: tuple[int, ...]
    """The measured months (1-based) whose average effect later months hold."""
    half_life_months: float | None
    units: int
    confidence: float
    margin: float
    payback_month: int | None
    """The first month whose central cumulative net benefit is at least 0 (None: not within the horizon)."""
    sure_payback_month: int | None
    """The first month whose benefit's interval low end covers the cost (None: not within the horizon)."""
    scale_up: tuple[ScaleUp, ...]
    assumptions: tuple[str, ...]

    def at(self, month: int) -> ForecastMonth | None:
        """The cumulative figures through ``month`` (None beyond the horizon)."""
        return next((m for m in self.months if m.month == month), None)

    def asdict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {"months": [m.asdict() for m in self.months], "measured_months": self.measured_months,
                "held_months": list(self.held_months), "half_life_months": self.half_life_months,
                "units": self.units, "confidence": self.confidence, "margin": self.margin,
                "payback_month": self.payback_month, "sure_payback_month": self.sure_payback_month,
                "scale_up": [s.asdict() for s in self.scale_up], "assumptions": list(self.assumptions)}


def _money(value: float) -> Decimal:
    return Decimal(repr(float(value))).quantize(_CENT, ROUND_HALF_UP)


def _roi(benefit: float, cost: Decimal) -> Decimal | None:
    if cost <= 0:
        return None
    return (Decimal(repr(float(benefit))) / cost * 100 - 100).quantize(_TENTH, ROUND_HALF_UP)


def _hold_weights(covariance: NDArray[np.float64]) -> NDArray[np.float64]:
    """Weights of the precision-weighted (GLS) mean of correlated estimates of one level: Σ⁻¹1 / 1′Σ⁻¹1.

    The last measured months rest on the fewest units, so a plain average would let the noisiest
    month weigh as much as the best measured one. Equal weights when Σ is singular.
    """
    n = covariance.shape[0]
    ones = np.ones(n)
    try:
        solved = np.linalg.solve(covariance, ones)
    except np.linalg.LinAlgError:
        return np.full(n, 1.0 / n)
    total = float(ones @ solved)
    if not np.isfinite(total) or total <= 0 or (solved < 0).any():
        return np.full(n, 1.0 / n)
    return np.asarray(solved / total, dtype=np.float64)


def _path_matrix(measured: int, horizon: int, weights: NDArray[np.float64],
                 half_life: float | None) -> NDArray[np.float64]:
    """A (horizon × measured) matrix turning the measured coefficients into each month's effect.

    Measured months map to themselves; each later month is the weighted mean of the last
    ``len(weights)`` measured months, times ½^((k − last measured) / half-life) when a half-life is given.
    """
    a = np.zeros((horizon, measured))
    for k in range(min(measured, horizon)):
        a[k, k] = 1.0
    last, hold = measured - 1, weights.shape[0]
    for k in range(measured, horizon):
        fade = 0.5 ** ((k - last) / half_life) if half_life else 1.0
        a[k, measured - hold:] = fade * weights
    return a


def _tail(mean: float, se: float, dof: int | None) -> float:
    """P(X > 0) for X centred at ``mean`` with standard error ``se`` under the reference law."""
    if se <= 0:
        return float(mean > 0)
    law = stats.t(dof) if dof else stats.norm
    return float(law.sf(-mean / se))


def forecast(
    path: EventPath,
    *,
    units: int,
    cost: Decimal,
    margin: float,
    confidence: float = 0.95,
    horizon: int = max(HORIZONS),
    hold: int = 6,
    half_life_months: float | None = None,
    remaining_units: int = 0,
    variable_cost_per_unit: Decimal = Decimal(0),
) -> Forecast:
    """Cumulative revenue, benefit, cost and ROI for months 1 … ``horizon`` after training, with intervals.

    Parameters
    ----------
    path
        The measured effect per unit-month by month since training, its covariance and retention.
    units
        The trained units the forecast is for.
    cost
        The program's total cost (all of it counted from month 0).
    margin
        Gross margin: benefit = revenue × margin.
    confidence
        The intervals' level.
    horizon
        The months forecast.
    hold
        How many of the last measured months later months hold the precision-weighted average of
        (fewer when fewer are measured).
    half_life_months
        None: later months hold the effect; else it halves every this many months.
    remaining_units, variable_cost_per_unit
        The units not yet trained and what training one more costs: the scale-up.

    Raises
    ------
    ValueError
        A horizon, hold or half-life that is not positive, or a negative count.
    """
    if horizon < 1 or hold < 1 or (half_life_months is not None and half_life_months <= 0):
        raise ValueError("horizon, hold and half_life_months must be positive")
    if units < 0 or remaining_units < 0:
        raise ValueError("unit counts must not be negative")
    measured = path.effect.shape[0]
    hold = min(hold, measured)
    weights = _hold_weights(path.covariance[measured - hold:, measured - hold:])
    a = _path_matrix(measured, horizon, weights, half_life_months)
    retention = np.concatenate([path.retention, np.full(max(horizon - measured, 0), path.retention[-1])])[:horizon]
    # Row m − 1: the cumulative revenue per trained unit through month m, as weights on β.
    per_unit = np.cumsum(retention[:, None] * a, axis=0)
    mean = per_unit @ path.effect
    se = np.sqrt(np.clip(np.einsum("ij,jk,ik->i", per_unit, path.covariance, per_unit), 0.0, None))
    law = stats.t(path.dof) if path.dof else stats.norm
    q = float(law.ppf(0.5 + confidence / 2))
    months = [ForecastMonth(**_cumulative(units * mean[m - 1], units * q * se[m - 1], units * se[m - 1], cost, margin,
                                          path.dof), month=m, measured=m <= measured) for m in range(1, horizon + 1)]
    payback = next((f.month for f in months if f.net_benefit >= 0), None)
    sure = next((f.month for f in months if _money(float(f.revenue_low) * margin) >= cost), None)
    scale = tuple(ScaleUp(**_cumulative(remaining_units * mean[h - 1], remaining_units * q * se[h - 1],
                                        remaining_units * se[h - 1],
                                        (variable_cost_per_unit * remaining_units).quantize(_CENT, ROUND_HALF_UP),
                                        margin, path.dof), month=h, units=remaining_units,
                          cost_per_unit=variable_cost_per_unit)
                  for h in HORIZONS if h <= horizon and remaining_units > 0)
    held = tuple(range(measured - hold + 1, measured + 1))
    fade = (f"halves every {half_life_months:g} months" if half_life_months else "holds")
    assumptions = (
        f"months 1–{measured} after training use the effect measured in each month; later months the "
        "precision-weighted average of "
        f"month{'s' if hold > 1 else ''} {held[0]}{f'–{held[-1]}' if hold > 1 else ''}, which {fade}"
        if measured < horizon else f"every month of the {horizon} uses the effect measured in it",
        "the share of trained units still there in each month is as measured, then held at its last measured value",
        "every cost is counted in full from the month of training",
    )
    return Forecast(tuple(months), measured, held, half_life_months, units, confidence, margin, payback, sure, scale,
                    assumptions)


def measured_run(months: Sequence[int]) -> int:
    """How many months from 0 are measured without a gap (the coefficients a path can use)."""
    have = set(months)
    n = 0
    while n in have:
        n += 1
    return n
