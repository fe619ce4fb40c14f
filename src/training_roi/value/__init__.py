"""The value stage: fully loaded cost, monetised benefit, ROI and its interval.

Quick start::

    from training_roi.value import cost_breakdown, roi
    cost = cost_breakdown(con, programs="Sales Excellence", hourly_rate=60, shared_share="0.25")
    print(roi(benefit=50_000, cost=cost.total))
"""

from __future__ import annotations

from training_roi.value.costs import CATEGORIES, CostBreakdown, CostInputs, ParticipantTime, cost_breakdown
from training_roi.value.monetise import (
    Benefit,
    Change,
    CompliancePenalty,
    ErrorCost,
    MonetisationRule,
    RevenueMargin,
    TimeSaved,
    Turnover,
    monetise,
    parse_rules,
)
from training_roi.value.phillips import (
    ApplicationLevel,
    ImpactLevel,
    KpiImpact,
    LearningLevel,
    PairedChange,
    PhillipsEvaluation,
    QuestionSummary,
    ROILevel,
    SurveyLevel,
    phillips_levels,
)
from training_roi.value.revenue import DEFINITIONS, CentralRoi, RevenueEstimate, central_roi, credit_revenue
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
from training_roi.value.sensitivity import (
    Grid,
    Ranges,
    Scenario,
    Tornado,
    TornadoBar,
    WindowLever,
    effect_by_deal_size,
    sensitivity,
    tornado,
    window_by_margin,
)

__all__ = [
    "CATEGORIES",
    "DEFINITIONS",
    "ApplicationLevel",
    "Benefit",
    "CentralRoi",
    "Change",
    "CompliancePenalty",
    "CostBreakdown",
    "CostInputs",
    "Credit",
    "ErrorCost",
    "Grid",
    "ImpactLevel",
    "KpiImpact",
    "LearningLevel",
    "MonetisationRule",
    "PairedChange",
    "ParticipantTime",
    "PhillipsEvaluation",
    "QuestionSummary",
    "ROIFigures",
    "ROILevel",
    "Ranges",
    "RevenueEstimate",
    "RevenueMargin",
    "Scenario",
    "SeedModel",
    "SurveyLevel",
    "TimeSaved",
    "Tornado",
    "TornadoBar",
    "Turnover",
    "ValueIntervals",
    "WindowLever",
    "central_roi",
    "conservative_credit",
    "cost_breakdown",
    "credit_revenue",
    "effect_by_deal_size",
    "monetise",
    "parse_rules",
    "percentile_interval",
    "phillips_levels",
    "roi",
    "roi_interval",
    "roi_pct_from_lift",
    "seed_model",
    "sensitivity",
    "tornado",
    "value_intervals",
    "value_intervals_from_lift",
    "window_by_margin",
]
