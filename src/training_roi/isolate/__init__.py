"""Isolate: the program's effect, separated from everything else that changed."""

from training_roi.isolate.did import Effect, GroupWindows, Resampling, did_rate, naive_rates
from training_roi.isolate.panel import WindowPanel, window_panel, window_panels
from training_roi.isolate.unit_panel import UnitPanel

__all__ = [
    "Effect",
    "GroupWindows",
    "Resampling",
    "UnitPanel",
    "WindowPanel",
    "did_rate",
    "naive_rates",
    "window_panel",
    "window_panels",
]
