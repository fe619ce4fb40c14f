"""The training facts a push writes into the CRM, per person, from the warehouse, the study and its result.

Nothing here is measured anew: who was trained and on which day is the study's cohort
(:func:`training_roi.measure.cohort`, the rule every report uses, among the study's population);
who is held out is the study's holdout list; whether the effect is established, and the effect
credited, are the report's own verdict in ``result.json`` (the headline KPI's ``credit``). For
each person:

* ``program`` — the study's program name (also for the people held out of it);
* ``completed`` — the day the unit counts as trained (its first qualifying completion, in the
  study's time zone), as 2026-12-05; empty for a person held out who was not trained;
* ``cohort`` — the month of that day (2026-12), the cohort the staggered designs group units by;
* ``holdout`` — whether the unit is in the study's holdout group;
* ``effect`` — for a trained person, the headline KPI's credited effect in words ("win rate
  +3.2 pts") once the report has established it (the KPI's interval excludes zero and the change
  reaches the study's threshold), else "not established"; empty for a person held out who was
  not trained.

For a rep study the persons are the CRM users. For a customer-education study (accounts) they are
the contacts: those linked to a learner of a trained account, and every contact of an account held
out, each carrying the facts of their account.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ibis.backends import BaseBackend

from training_roi._format import describe_change
from training_roi.errors import TrainingRoiError
from training_roi.evaluation.program import population_scope
from training_roi.measure import cohort
from training_roi.study import StudyPlan
from training_roi.sync.push import NOT_ESTABLISHED, PersonFacts, Value

__all__ = ["credited_effect", "training_facts"]


def credited_effect(result: Mapping[str, Any]) -> str:
    """The headline KPI's credited effect in words ("win rate +3.2 pts") once the study has established it.

    Established is the report's own verdict on the headline KPI (``headline.credit.is_credited``:
    its interval excludes zero and the change reaches the study's threshold); until then the
    effect is "not established", as the KPI's verdict says it.
    """
    headline = result.get("headline") or {}
    credit = headline.get("credit") or {}
    if not credit.get("is_credited") or credit.get("credited") is None:
        return NOT_ESTABLISHED
    kpis = headline.get("kpis", [])
    kpi: dict[str, Any] = next((k for k in kpis if k.get("kpi") == headline.get("headline_kpi")), {})
    label = str(kpi.get("label") or headline.get("headline_kpi", "effect"))
    return f"{label} {describe_change(float(credit['credited']), str(kpi.get('unit', 'rate')))}"


def _unit_facts(con: BaseBackend, plan: StudyPlan, effect: str) -> dict[str, dict[str, Value]]:
    trained = cohort(con, plan.cohort, scope=population_scope(con, plan), required=False)
    held = set(plan.isolation.holdout or ())
    facts: dict[str, dict[str, Value]] = {}
    for unit, day in trained.anchor_of().items():
        facts[unit] = {"program": plan.program, "completed": day.isoformat(), "cohort": day.strftime("%Y-%m"),
                       "holdout": unit in held, "effect": effect}
    for unit in sorted(held - set(facts)):
        facts[unit] = {"program": plan.program, "completed": None, "cohort": None, "holdout": True, "effect": None}
    return facts


def training_facts(con: BaseBackend, plan: StudyPlan, result: Mapping[str, Any]) -> list[PersonFacts]:
    """Each person's facts (see the module's description), sorted by CRM record id.

    Raises
    ------
    TrainingRoiError
        ``result`` was written for another study, or another version of it (its hash differs):
        the effect it holds may not be this study's.
    """
    written_for = (result.get("study") or {}).get("hash")
    if written_for != plan.study.hash:
        raise TrainingRoiError(f"the results were written for {'another version of ' if written_for else ''}the "
                               f"study ({written_for or 'no study hash'}, not {plan.study.hash}): run "
                               "`training-roi report` with this study again before pushing")
    units = _unit_facts(con, plan, credited_effect(result))
    if plan.unit == "rep":
        return [PersonFacts(u, v) for u, v in sorted(units.items())]
    # An account's trained people are its contacts who are learners; every contact of an account held out is.
    li = con.table("learner_identity")
    learners = li.filter(li.crm_contact_id.notnull() & li.crm_account_id.isin(list(units) or [""]))
    pairs = learners.select(contact=li.crm_contact_id, account=li.crm_account_id).distinct().to_pyarrow().to_pylist()
    held = [u for u, v in units.items() if v["holdout"]]
    c = con.table("crm_contact")
    held_contacts = c.filter(c.account_id.isin(held or [""]) & ~c.is_deleted.fill_null(False))
    pairs += held_contacts.select(contact=c.contact_id, account=c.account_id).to_pyarrow().to_pylist()
    contacts = {str(p["contact"]): units[str(p["account"])] for p in pairs}
    return [PersonFacts(c, v) for c, v in sorted(contacts.items())]
