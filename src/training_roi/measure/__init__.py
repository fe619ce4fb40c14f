"""Measure: the one stage that reads facts from the warehouse.

KPIs per unit and period (the catalogue; sales, process, customer and learning KPIs), who is in
the study's population, who was trained and when (the cohort, computed once per evaluation), and
the panels the isolation stage works on — all as Ibis expressions that run where the warehouse
runs, with only small per-unit results pulled into Python.
"""

from training_roi.measure.catalogue import (
    BASES,
    CATALOGUE,
    GRAINS,
    UNASSIGNED,
    KpiDef,
    Options,
    Source,
    assigned,
    availability,
    changes,
    compute,
    describe,
    kpi_expression,
    named_kpis,
)
from training_roi.measure.cohort import Cohort, CohortRule, cohort
from training_roi.measure.inventory import Offer, warehouse_offer
from training_roi.measure.lessons import LessonSet, lesson_counts, lesson_dates, lesson_times
from training_roi.measure.panels import GroupWindows, UnitPanel, WindowPanel, unit_panel, window_panels
from training_roi.measure.periods import OPEN_SHARE_LIMIT, data_end, mark_provisional
from training_roi.measure.population import (
    employee_learners,
    grain_names,
    population_units,
    rep_attributes,
    team_ids,
    unit_names,
)
from training_roi.measure.programs import CourseOffer, ProgramCandidate, program_candidates
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
from training_roi.measure.surveys import survey_estimates

__all__ = [
    "BASES",
    "CATALOGUE",
    "DAYS_PER_MONTH",
    "GRAINS",
    "KPIS",
    "KPI_NAMES",
    "OPEN_SHARE_LIMIT",
    "UNASSIGNED",
    "UNITS",
    "Cohort",
    "CohortRule",
    "CourseOffer",
    "GroupWindows",
    "KpiDef",
    "KpiSpec",
    "LessonSet",
    "Offer",
    "Options",
    "ProgramCandidate",
    "Source",
    "UnitPanel",
    "WindowPanel",
    "assigned",
    "availability",
    "changes",
    "cohort",
    "completions",
    "compute",
    "data_end",
    "describe",
    "describe_change",
    "describe_value",
    "employee_learners",
    "grain_names",
    "group_monthly",
    "kpi_expression",
    "lesson_counts",
    "lesson_dates",
    "lesson_times",
    "mark_provisional",
    "monthly_panel",
    "named_kpis",
    "population_units",
    "program_candidates",
    "rep_attributes",
    "survey_estimates",
    "team_ids",
    "unit_names",
    "unit_panel",
    "warehouse_offer",
    "window_kpis",
    "window_opportunities",
    "window_panels",
    "windows_kpis",
]
