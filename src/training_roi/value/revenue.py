"""Incremental revenue by a stated definition, credited by a rule that rarely over-credits, and ROI's odds.

Three definitions of what training added, each with its central estimate and interval:

* ``booked`` — won revenue of the trained units' deals created and closed inside the window, with
  training minus without (estimated by proportional difference-in-differences of that revenue per
  unit-month — the counterfactual grows by the comparison group's percentage change — × the
  trained units' months in the window);
* ``eventual`` — revenue of the deals **created** inside the window, open ones at their expected
  value, with training minus without (the same design on that revenue);
* ``seed`` — the seed article's formula, credited win-rate lift × the pipeline of the deals created
  in the window. It ignores any change in deal size and is kept, labelled, to reproduce the seed.

**Credit.** The central estimate is reported as estimated (unbiased under the design's
assumptions). The credited figure is the lower bound of its one-sided interval at the study's
confidence (95% by default) — how much the data say training added at least — and nothing when
that bound is not above zero or the central estimate is under the study's relative threshold (5%
of the revenue the trained units would have had without training). Crediting "the point estimate
when significant, else zero" selects the high estimates whenever power is low (the winner's
curse); the lower bound exceeds the truth only as often as the interval fails on that side, about
5% of the time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from training_roi._format import money
from training_roi._format import relative as signed_share

__all__ = ["DEFINITIONS", "CentralRoi", "RevenueEstimate", "central_roi", "credit_revenue"]

DEFINITIONS: dict[str, tuple[str, str]] = {
    "booked": ("booked revenue",
               "won revenue of the trained {unit}s' deals created and closed inside the window, with training "
               "minus without"),
    "eventual": ("eventual revenue",
                 "revenue of the trained {unit}s' deals created inside the window, open ones at their expected "
                 "value, with training minus without"),
    "seed": ("seed formula",
             "credited lift in win rate × pipeline of the trained {unit}s' deals created in the window (the seed "
             "model; it ignores any change in deal size)"),
}
"""Each definition's label and meaning, in words (``{unit}`` is the study's unit)."""

_CENT = Decimal("0.01")


def cents(value: float) -> Decimal:
    """A float amount in exact cents (its shortest decimal form, rounded half up)."""
    return Decimal(repr(float(value))).quantize(_CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class RevenueEstimate:
    """Incremental revenue by one definition: central estimate, interval, what the trained units booked, credit."""

    definition: str
    label: str
    meaning: str
    estimate: Decimal | None
    """The central estimate (cents); None when the design cannot estimate it."""
    interval: tuple[float, float] | None
    observed: Decimal
    """The trained units' revenue by this definition, as the CRM shows it (not all of it caused by training)."""
    credited: Decimal
    reason: str
    """Why this much is credited, in words."""
    confidence: float = 0.95
    draws: NDArray[np.float64] | None = field(default=None, repr=False, compare=False)

    def asdict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (money as exact decimal strings, without the draws)."""
        return {"definition": self.definition, "label": self.label, "meaning": self.meaning,
                "estimate": None if self.estimate is None else str(self.estimate),
                "interval": [round(v, 2) for v in self.interval] if self.interval else None,
                "observed": str(self.observed), "credited": str(self.credited), "reason": self.reason,
                "confidence": self.confidence}


def credit_revenue(estimate: float, *, observed: float, draws: NDArray[np.float64] | None = None,
                   interval: tuple[float, float] | None = None, confidence: float = 0.95,
                   min_relative_change: float = 0.05, describe: str = "incremental revenue") -> tuple[Decimal, str]:
    """The revenue to credit: the one-sided lower bound at ``confidence``, or nothing; and why, in words.

    The bound comes from the bootstrap ``draws`` when given, else from the two-sided ``interval``
    at ``confidence`` read as normal. Nothing is credited when the bound is not above zero, or when
    the central estimate is under ``min_relative_change`` of the counterfactual revenue
    (``observed − estimate``).
    """
    lower = _lower_bound(estimate, draws, interval, confidence)
    counterfactual = observed - estimate
    relative = estimate / counterfactual if counterfactual > 0 else (float("inf") if estimate > 0 else 0.0)
    level = f"{confidence:.0%}"
    if lower is None or lower != lower:
        return Decimal("0.00"), f"not credited: {describe} has no interval to bound it"
    if relative < min_relative_change:
        return Decimal("0.00"), (f"not credited: the central {describe} is {signed_share(relative)} of what the "
                                 "trained units would have had without training, under the threshold of "
                                 f"{min_relative_change:.1%}")
    if lower <= 0:
        return Decimal("0.00"), (f"not credited: {describe} may be zero or less at {level} confidence, its one-sided "
                                 f"lower bound being {money(lower)}")
    lower = min(lower, estimate)  # a skewed resampling can put the bound above the estimate: never credit more
    return cents(lower), (f"credited at its one-sided {level} lower bound: the data say training added at least "
                           f"{money(lower)} (central estimate {money(estimate)})")


def _lower_bound(estimate: float, draws: NDArray[np.float64] | None, interval: tuple[float, float] | None,
                 confidence: float) -> float | None:
    if draws is not None:
        # A draw that could not be computed is the worst case, never left out (that would raise the bound).
        worst = np.where(np.isnan(draws), -np.inf, draws)
        return float(np.quantile(worst, 1 - confidence, method="inverted_cdf")) if worst.size else None
    if interval is None:
        return None
    z_two, z_one = stats.norm.ppf(0.5 + confidence / 2), stats.norm.ppf(confidence)
    se = (interval[1] - interval[0]) / (2 * z_two)
    return float(estimate - z_one * se)


@dataclass(frozen=True)
class CentralRoi:
    """ROI at the central estimate of incremental revenue, its interval and the probability it is positive."""

    incremental_revenue: Decimal
    benefit: Decimal
    net_benefit: Decimal
    roi_pct: Decimal
    roi_interval: tuple[float, float] | None
    prob_positive: float | None
    """P(ROI > 0): the share of bootstrap replicates whose benefit exceeds the cost (normal when no draws)."""
    break_even_revenue: Decimal
    """The incremental revenue at which ROI = 0: cost / gross margin."""

    def asdict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {"incremental_revenue": str(self.incremental_revenue), "benefit": str(self.benefit),
                "net_benefit": str(self.net_benefit), "roi_pct": str(self.roi_pct),
                "roi_interval": [round(v, 2) for v in self.roi_interval] if self.roi_interval else None,
                "prob_positive": self.prob_positive, "break_even_revenue": str(self.break_even_revenue)}


def central_roi(estimate: RevenueEstimate, *, cost: Decimal, margin: Decimal) -> CentralRoi:
    """ROI at the central estimate, with its interval and P(ROI > 0) from the estimate's draws or interval."""
    revenue = estimate.estimate if estimate.estimate is not None else Decimal("0.00")
    benefit = (revenue * margin).quantize(_CENT, rounding=ROUND_HALF_UP)
    net = benefit - cost
    roi_pct = (net * 100 / cost).quantize(_CENT, rounding=ROUND_HALF_UP)
    m, c = float(margin), float(cost)
    interval: tuple[float, float] | None = None
    prob = None
    if estimate.interval is not None:
        lo, hi = estimate.interval
        interval = ((lo * m - c) / c * 100, (hi * m - c) / c * 100)
    if estimate.draws is not None and estimate.draws.size:
        prob = float(np.mean(np.nan_to_num(estimate.draws, nan=-np.inf) * m > c))
    elif estimate.interval is not None and estimate.estimate is not None:
        z = stats.norm.ppf(0.5 + estimate.confidence / 2)
        se = (estimate.interval[1] - estimate.interval[0]) / (2 * z)
        prob = float(stats.norm.sf((c / m - float(estimate.estimate)) / se)) if se > 0 else None
    return CentralRoi(revenue, benefit, net, roi_pct, interval, prob,
                      (cost / margin).quantize(_CENT, rounding=ROUND_HALF_UP))
