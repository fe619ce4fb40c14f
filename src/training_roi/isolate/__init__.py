"""Isolate: the program's effect, separated from everything else that changed."""

from training_roi.isolate.did import Effect, GroupWindows, did_rate, naive_rates
from training_roi.isolate.panel import WindowPanel, win_rate_panels, win_rate_windows

__all__ = [
    "Effect",
    "GroupWindows",
    "WindowPanel",
    "did_rate",
    "naive_rates",
    "win_rate_panels",
    "win_rate_windows",
]
