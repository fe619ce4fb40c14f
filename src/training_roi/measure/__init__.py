"""Measure: KPIs per unit and period, from the canonical tables, as Ibis expressions."""

from training_roi.measure.sales import KPI_NAMES, completions, monthly_panel, window_kpis, windows_kpis

__all__ = ["KPI_NAMES", "completions", "monthly_panel", "window_kpis", "windows_kpis"]
