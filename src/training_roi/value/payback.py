"""The probability of payback: P(ROI > 0) and P(ROI > the study's hurdle rate), with cost uncertainty.

The revenue side of the uncertainty is the design's own: its resampling replicates of incremental
revenue (or, without replicates, a normal law matching its interval). The cost side is what the
study declares: a range per cost category (``costs.uncertainty``), read as a triangular law from
the low to the high amount with its mode at the cost as loaded — the usual reading of a
"likely, at least, at most" estimate. Without declared ranges the cost is certain and the
probabilities are exact shares of the replicates; with them, a Monte Carlo of ``draws`` joint
draws, seeded, so the same study on the same data gives the same figures.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["Payback", "payback_odds"]

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
"""The points of the ROI distribution reported."""


@dataclass(frozen=True)
class Payback:
    """How likely the program pays back, and the distribution of its ROI."""

    prob_positive: float
    hurdle_pct: float | None
    """The study's hurdle rate, as an ROI in percent (None when the study names none)."""
    prob_hurdle: float | None
    roi_quantiles: dict[str, float | None]
    """ROI in percent at the 5th, 25th, 50th, 75th and 95th percentiles (keys ``p5`` … ``p95``; None where
    replicates that could not be computed reach it)."""
    draws: int
    cost_ranges: dict[str, tuple[Decimal, Decimal]]
    """The declared cost ranges drawn from (empty: the cost was certain)."""
    source: str
    """``replicates`` (the design's resampling), ``normal`` (its interval read as normal)."""
    seed: int | None

    def asdict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {"prob_positive": self.prob_positive, "hurdle_pct": self.hurdle_pct, "prob_hurdle": self.prob_hurdle,
                "roi_quantiles": self.roi_quantiles, "draws": self.draws,
                "cost_ranges": {k: [str(lo), str(hi)] for k, (lo, hi) in self.cost_ranges.items()},
                "source": self.source, "seed": self.seed}


def _triangular(rng: np.random.Generator, low: float, mode: float, high: float, n: int) -> NDArray[np.float64]:
    if high == low:
        return np.full(n, low)
    return rng.triangular(low, mode, high, n)


def payback_odds(
    *,
    revenue_draws: NDArray[np.float64] | None,
    estimate: float | None,
    interval: tuple[float, float] | None,
    confidence: float,
    margin: float,
    costs: Mapping[str, Decimal],
    ranges: Mapping[str, tuple[Decimal, Decimal]] | None = None,
    hurdle_pct: float | None = None,
    seed: int = 0,
    draws: int = 20_000,
) -> Payback | None:
    """P(ROI > 0), P(ROI > hurdle) and ROI's quantiles; None when revenue has neither replicates nor an interval.

    Parameters
    ----------
    revenue_draws
        The design's resampling replicates of incremental revenue (a replicate that could not be
        computed counts as the worst case, as in the credit).
    estimate, interval, confidence
        The central estimate and its interval, used (as a normal law) when there are no replicates.
    margin
        Gross margin.
    costs
        The cost lines as loaded, by category (their sum is the cost).
    ranges
        Declared (low, high) amounts for some categories; each must contain the amount as loaded.
    hurdle_pct
        The ROI, in percent, a program must beat (None: no hurdle).
    seed, draws
        The Monte Carlo's seed and size (used when ranges are declared, or revenue is a normal law).

    Raises
    ------
    ValueError
        A range names a category that is not among the costs, or does not contain its amount.
    """
    ranges = dict(ranges or {})
    for name, (low, high) in ranges.items():
        if name not in costs:
            raise ValueError(f"costs.uncertainty names {name!r}, which is not a cost category of this program "
                             f"(categories: {', '.join(sorted(costs))})")
        if not low <= costs[name] <= high:
            raise ValueError(f"costs.uncertainty.{name}: the range {low:,.2f} to {high:,.2f} does not contain the "
                             f"cost as loaded, {costs[name]:,.2f}")
    rng = np.random.default_rng(seed)
    if revenue_draws is not None and revenue_draws.size:
        revenue = np.nan_to_num(revenue_draws.astype(float), nan=-np.inf)
        source = "replicates"
        if ranges:
            revenue = rng.choice(revenue, size=draws, replace=True)
    elif interval is not None and estimate is not None:
        from scipy import stats

        z = stats.norm.ppf(0.5 + confidence / 2)
        se = (interval[1] - interval[0]) / (2 * z)
        revenue = rng.normal(estimate, se, draws) if se > 0 else np.full(draws, estimate)
        source = "normal"
    else:
        return None
    n = revenue.size
    cost = np.full(n, float(sum((v for k, v in costs.items() if k not in ranges), Decimal(0))))
    for name, (low, high) in ranges.items():
        cost = cost + _triangular(rng, float(low), float(costs[name]), float(high), n)
    benefit = revenue * margin
    with np.errstate(invalid="ignore", divide="ignore"):
        roi = np.where(cost > 0, (benefit - cost) / cost * 100, np.nan)
    finite = np.where(np.isfinite(roi), roi, -np.inf)  # a replicate that could not be computed: the worst case
    points = (float(np.quantile(finite, q, method="inverted_cdf")) for q in QUANTILES)
    quantiles = {f"p{round(q * 100)}": (v if np.isfinite(v) else None) for q, v in zip(QUANTILES, points, strict=True)}
    return Payback(
        prob_positive=float(np.mean(benefit > cost)),
        hurdle_pct=hurdle_pct,
        prob_hurdle=None if hurdle_pct is None else float(np.mean(finite > hurdle_pct)),
        roi_quantiles=quantiles, draws=n, cost_ranges=ranges, source=source,
        seed=seed if (ranges or source == "normal") else None,
    )
