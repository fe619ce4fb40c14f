"""A study's fully loaded cost, by its cost settings: the one place training and roll-out studies load it."""

from __future__ import annotations

from ibis.backends import BaseBackend

from training_roi.measure import employee_learners
from training_roi.study import StudyError, StudyPlan
from training_roi.value import CostBreakdown, cost_breakdown

__all__ = ["study_costs"]


def study_costs(con: BaseBackend, plan: StudyPlan) -> CostBreakdown:
    """The study's fully loaded cost: its programs' cost lines, participant time and a share of shared costs.

    With no hourly rate in the study the participants' time is not costed; the breakdown says so
    (:attr:`~training_roi.value.CostBreakdown.time_costed`) and the evaluations put it among their
    warnings.

    Raises
    ------
    StudyError
        Rates per title leave some titles without one, or there is no cost at all.
    """
    c = plan.costs
    # Customers' learning time is not the company's cost unless the study prices it.
    employees = employee_learners(con) if c.employees_only else None
    try:
        costs = cost_breakdown(
            con, programs=c.programs, activities=c.activities, learner_keys=employees,
            use_cost_lines=c.use_cost_lines, minutes_per_learner=c.minutes_per_learner, time=c.time,
            hourly_rate=c.hourly_rate,
            hourly_rate_by_title=c.hourly_rate_by_title, shared_share=c.shared_share, cost_time=c.cost_time,
        )
    except ValueError as exc:
        raise StudyError(f"study {plan.name}: costs: {exc}") from exc
    if costs.total <= 0:
        time = ("participant time is not costed (set costs.participant_time.hourly_rate)" if not costs.time_costed
                else "no participant time")
        raise StudyError(
            f"study {plan.name}: costs: no cost found for program(s) {', '.join(c.programs)} "
            f"in costs.csv and {time}: ROI needs the program's cost"
        )
    return costs
