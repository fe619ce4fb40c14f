"""Isolate: the program's effect, separated from everything else that changed."""

from training_roi.isolate.did import Effect, GroupWindows, Resampling, did_rate, naive_rates
from training_roi.isolate.estimates import estimate_participant, survey_estimates
from training_roi.isolate.estimator import NotApplicable, cluster_weights, effect_from_draws, effect_from_normal
from training_roi.isolate.panel import WindowPanel, window_panel, window_panels
from training_roi.isolate.trend import estimate_trend
from training_roi.isolate.unit_panel import UnitPanel

__all__ = [
    "Effect",
    "GroupWindows",
    "NotApplicable",
    "Resampling",
    "UnitPanel",
    "WindowPanel",
    "cluster_weights",
    "did_rate",
    "effect_from_draws",
    "effect_from_normal",
    "estimate_participant",
    "estimate_trend",
    "naive_rates",
    "survey_estimates",
    "window_panel",
    "window_panels",
]
