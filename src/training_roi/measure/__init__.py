"""Measure: KPIs per unit and period, from the canonical tables, as Ibis expressions."""

from training_roi.measure.population import population_units
from training_roi.measure.sales import (
    DAYS_PER_MONTH,
    KPI_NAMES,
    KPIS,
    UNITS,
    KpiSpec,
    completions,
    describe_change,
    describe_value,
    group_monthly,
    monthly_panel,
    window_kpis,
    window_opportunities,
    windows_kpis,
)

__all__ = [
    "DAYS_PER_MONTH",
    "KPIS",
    "KPI_NAMES",
    "UNITS",
    "KpiSpec",
    "completions",
    "describe_change",
    "describe_value",
    "group_monthly",
    "monthly_panel",
    "population_units",
    "window_kpis",
    "window_opportunities",
    "windows_kpis",
]
