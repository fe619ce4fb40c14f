"""The value stage: fully loaded cost, monetised benefit, ROI and its interval.

Quick start::

    from training_roi.value import cost_breakdown, roi
    cost = cost_breakdown(con, programs="Sales Excellence", hourly_rate=60, shared_share="0.25")
    print(roi(benefit=50_000, cost=cost.total))
"""

from __future__ import annotations

from training_roi.value.costs import CATEGORIES, CostBreakdown, ParticipantTime, cost_breakdown
from training_roi.value.roi import (
    Credit,
    ROIFigures,
    SeedModel,
    ValueIntervals,
    conservative_credit,
    percentile_interval,
    roi,
    roi_interval,
    roi_pct_from_lift,
    seed_model,
    value_intervals,
    value_intervals_from_lift,
)
from training_roi.value.sensitivity import Scenario, WindowLever, sensitivity

__all__ = [
    "CATEGORIES",
    "CostBreakdown",
    "Credit",
    "ParticipantTime",
    "ROIFigures",
    "Scenario",
    "SeedModel",
    "ValueIntervals",
    "WindowLever",
    "conservative_credit",
    "cost_breakdown",
    "percentile_interval",
    "roi",
    "roi_interval",
    "roi_pct_from_lift",
    "seed_model",
    "sensitivity",
    "value_intervals",
    "value_intervals_from_lift",
]
