"""Isolate: the program's effect, separated from everything else that changed."""

from training_roi.isolate.compare import METHODS, Comparison, MethodResult, compare_methods
from training_roi.isolate.design import (
    RolloutPlan,
    estimate_icc,
    minimum_detectable_lift,
    plan_rollout,
    power_for_lift,
    power_warning,
    randomise,
    write_assignment,
)
from training_roi.isolate.did import Effect, GroupWindows, Resampling, did_rate, naive_rates
from training_roi.isolate.dose import (
    SELF_SELECTION,
    dose_changes,
    estimate_dose_response,
    lesson_counts,
    lesson_dates,
)
from training_roi.isolate.estimates import estimate_participant, survey_estimates
from training_roi.isolate.estimator import NotApplicable, cluster_weights, effect_from_draws, effect_from_normal
from training_roi.isolate.event_study import estimate_event_study, estimate_twfe_did
from training_roi.isolate.matching import estimate_cem, estimate_ipw, estimate_psm, unit_features
from training_roi.isolate.panel import WindowPanel, window_panel, window_panels
from training_roi.isolate.staggered import estimate_staggered
from training_roi.isolate.trend import estimate_trend
from training_roi.isolate.unit_panel import UnitPanel

__all__ = [
    "METHODS",
    "SELF_SELECTION",
    "Comparison",
    "Effect",
    "GroupWindows",
    "MethodResult",
    "NotApplicable",
    "Resampling",
    "RolloutPlan",
    "UnitPanel",
    "WindowPanel",
    "cluster_weights",
    "compare_methods",
    "did_rate",
    "dose_changes",
    "effect_from_draws",
    "effect_from_normal",
    "estimate_cem",
    "estimate_dose_response",
    "estimate_event_study",
    "estimate_icc",
    "estimate_ipw",
    "estimate_participant",
    "estimate_psm",
    "estimate_staggered",
    "estimate_trend",
    "estimate_twfe_did",
    "lesson_counts",
    "lesson_dates",
    "minimum_detectable_lift",
    "naive_rates",
    "plan_rollout",
    "power_for_lift",
    "power_warning",
    "randomise",
    "survey_estimates",
    "unit_features",
    "window_panel",
    "window_panels",
    "write_assignment",
]
