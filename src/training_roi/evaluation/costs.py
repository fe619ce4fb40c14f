"""A study's fully loaded cost, by its cost settings: the one place training and roll-out studies load it."""

from __future__ import annotations

from ibis.backends import BaseBackend

from training_roi.measure import employee_learners
from training_roi.study import StudyError, StudyPlan
from training_roi.value import CostBreakdown, cost_breakdown

__all__ = ["study_costs"]


def study_costs(con: BaseBackend, plan: StudyPlan) -> CostBreakdown:
    """The study's fully loaded cost: its programs' cost lines, participant time and a share of shared costs.

    Raises
    ------
    StudyError
        A rate is missing for time that must be costed, or there is no cost at all.
    """
    c = plan.costs
    # Customers' learning time is not the company's cost unless the study prices it.
    employees = employee_learners(con) if c.employees_only else None
    try:
        costs = cost_breakdown(
            con, programs=c.programs, activities=c.activities, learner_keys=employees,
            use_cost_lines=c.use_cost_lines, minutes_per_learner=c.minutes_per_learner, time=c.time,
            hourly_rate=c.hourly_rate,
            hourly_rate_by_title=c.hourly_rate_by_title, shared_share=c.shared_share,
        )
    except ValueError as exc:
        hint = " (set costs.participant_time.hourly_rate)" if "hourly rate" in str(exc) else ""
        raise StudyError(f"study {plan.name}: costs: {exc}{hint}") from exc
    if costs.total <= 0:
        raise StudyError(
            f"study {plan.name}: costs: no cost found for program(s) {', '.join(plan.study.costs.programs)} "
            "in costs.csv and no participant time: ROI needs the program's cost"
        )
    return costs
