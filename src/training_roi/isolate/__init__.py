"""Isolate: the program's effect, separated from everything else that changed."""

from training_roi.isolate.did import Effect, GroupWindows, Resampling, did_rate, naive_rates
from training_roi.isolate.estimator import NotApplicable, cluster_weights, effect_from_draws, effect_from_normal
from training_roi.isolate.panel import WindowPanel, window_panel, window_panels
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
    "naive_rates",
    "window_panel",
    "window_panels",
]
