"""Simulate a sales org with a training program, and write down exactly what the program did.

The simulator writes a data folder in the shapes of the data contract (``docs/data-contract.md``):
Salesforce export CSVs, xAPI statements, the LMS directory and a completion report, surveys,
costs, with the mess real exports have, plus ``truth.json``: the program's true effect, computed
exactly.

Quick start::

    from training_roi.simulate import simulate
    info = simulate("demo-data", reps=200, months=24, scenario="selection")
    print(info)

:data:`SCENARIOS` names and describes the scenarios. ``selection``, ``randomised``, ``null`` and
``staggered`` train sales reps in different ways (self-selected, at random, with no effect, in
monthly waves with an effect that grows); the outcomes are their deals.

Three sales scenarios hold the worlds that break the money figures. ``turnover``: about 30 % of
the reps join or leave during a 24-month period, trained and untrained alike; new reps ramp up,
a leaver's open deals are closed lost on their last day, and training happens only while
employed (:mod:`training_roi.simulate.turnover`). ``long_cycles``: median cycles of 4 to 7 months,
so many deals created after training are still open at the export. ``deal_size``: training raises
amounts by 12 % and changes neither win probability nor cycle.

Three sales scenarios hold the worlds where trained and untrained reps differ in an observable
attribute, their region (``UserRoleId`` and ``Region__c`` in User.csv), whose markets trend apart:
the EMEA and APAC markets grow while North America's shrink, and the region decides who enrols.
``covariate_trends``: 90 % of eligible EMEA and APAC reps enrol against 10 % elsewhere, with the
effect of ``selection``; a difference-in-differences without covariates credits the markets'
divergence to training (more than twice the effect), one that conditions on the region does not.
``poor_overlap``: 98 % against 3 %, so most trained reps have almost no untrained peers of their
region. ``covariate_null``: ``covariate_trends`` with no effect. truth.json's ``covariate`` section
names the attribute and gives each region's trend, enrolment probability and counts
(:mod:`training_roi.simulate.markets`). ``heterogeneous``: reps self-select as in ``selection``, and
the effect differs by region (none in North America - West, most in EMEA); truth.json's
``subgroups`` section gives each region's effect on its trained and on its never-trained reps.
``heterogeneous_tenure``: the effect differs by the rep's tenure at training (most under 1 year,
none from 3 years on), with the truth by band in the same section
(:mod:`training_roi.simulate.tenure_effect`).

Every sales scenario's truth.json has, per window, the revenue by two definitions, booked
(``revenue_closing_in_window``) and eventual (``revenue_created_in_window``), exact in cents
(:mod:`training_roi.simulate.revenue`). Except in ``microlessons``, the course's time is a set of
sessions that the statements and the completion report describe in several overlapping ways
(:mod:`training_roi.simulate.sessions`), counted once in ``truth_time.csv`` and in truth.json's
``participant_time`` (:mod:`training_roi.simulate.participant_time`).

Scenario ``customer`` is customer education: the learners are contacts of customer accounts taking
the vendor's academy course, the outcomes are the accounts' renewals and upsells, and the truth is
about accounts (``truth["unit"] == "account"``; per account in ``truth_trained.csv``). The CRM
users are the same as in the sales scenarios of a seed; the reps become the account managers.

Scenario ``microlessons`` is a dose: the program releases a short lesson (a "drill") every
business day of its rollout window, reps complete anywhere from none to about 60 of them, and
each distinct lesson done before a deal raises its log-odds of winning by a known amount. The
exact model and the ``dose`` section of truth.json are described in
:mod:`training_roi.simulate.microlessons`.
``lesson_map`` is the same drills where only five lessons of about 130 matter.
``knowledge_gaps``: each drill teaches one of twelve skills, reps' latent levels are measured item
by item by a skills check (xAPI ``answered``) before the drills, and a rep's first lesson of a skill
closes their gap in it, worth something in four skills; ``skills.csv`` tags every item and drill
with its skill, and ``truth_skills.parquet`` says what each rep's next lesson of each skill is
worth (:mod:`training_roi.simulate.skills`).

Scenario ``crm_golive`` is a CRM implementation, program "CRM rollout": the sales teams (a manager
and their reps) go live on a new CRM in waves (half halfway through the period, the rest at two
thirds). The new CRM shortens every lead's first response (the first Task on the lead, ``WhoId``)
by a known factor and converts leads it would otherwise have lost; it does nothing to deals, so
the sales KPIs are a placebo. ``truth["crm"]`` has each team's go-live date and the exact effect
on the leads created after it, per team and overall; ``truth_leads.parquet`` both potential
outcomes per lead. Reps complete the course "CRM Basics" in their team's first go-live weeks.

Why potential outcomes with common random numbers: every opportunity draws its random numbers
once, and both its untreated and its treated outcome are functions of the same draws. The effect on
each single deal is therefore known, and the truth is a sum over deals rather than an estimate
with noise of its own. Estimators run on the files can then be scored against it.

Why one random stream per part (:func:`~training_roi.simulate.draws._stream`): each file draws
from its own generator, seeded from the seed and a CRC of the part's name, so a change to how one
file is written does not change the others, and the same seed gives the same organisation and
pipeline in every scenario (only the training differs).

The modules, from the ground up: ``period`` (the simulated calendar), ``draws`` (random streams
and shared draws), ``fields`` (values as the exports spell them), ``scenarios`` (the scenario
definitions), ``program`` (the Sales Excellence course), ``org`` (users, teams, accounts,
contacts), ``learners`` (the LMS population), ``training`` (who completes the course, when),
``opportunities`` (the pipeline and its potential outcomes), ``crm`` (the Salesforce files),
``statements`` and ``lms`` (xAPI statements and the LMS reports), ``sessions`` (the course's
sessions and their statements), ``surveys``, ``costs``, ``revenue`` (the two revenue
definitions), ``participant_time`` (the time truth), ``truth`` (truth.json and the truth files),
``folder`` (the files written and their rows), ``sales`` (the folder of a sales scenario), and the
scenarios with a model of their own: ``turnover``; ``markets`` (the covariate worlds);
``customer_accounts``, ``academy`` and ``customer``; ``microlessons``; ``crm_golive``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from training_roi.simulate.customer import _simulate_customers
from training_roi.simulate.fields import _salesforce_ids as _salesforce_ids  # re-exported: the id generator
from training_roi.simulate.period import _Calendar
from training_roi.simulate.sales import _simulate_sales
from training_roi.simulate.scenarios import _COURSE_SCENARIOS, _CUSTOMER_SCENARIO, DEFAULT_SCENARIO, SCENARIOS

__all__ = ["DEFAULT_SCENARIO", "SCENARIOS", "SimulationInfo", "simulate"]


@dataclass(frozen=True)
class SimulationInfo:
    """What :func:`simulate` wrote: where, with which settings, how many rows, how long it took.

    Prints as a short table for people (``str(info)``) and serialises for machines
    (``info.asdict()``).
    """

    out_dir: Path
    scenario: str
    seed: int
    reps: int
    months: int
    files: dict[str, int]
    seconds: float

    def asdict(self) -> dict[str, Any]:
        """The info as plain JSON-ready values (paths as strings)."""
        return {
            "out_dir": str(self.out_dir),
            "scenario": self.scenario,
            "seed": self.seed,
            "reps": self.reps,
            "months": self.months,
            "files": dict(self.files),
            "seconds": self.seconds,
        }

    def __str__(self) -> str:
        head = (
            f"Simulated scenario {self.scenario!r}: {self.reps:,} reps × {self.months} months, "
            f"seed {self.seed}, in {self.seconds:.1f} s → {self.out_dir}"
        )
        width = max((len(k) for k in self.files), default=0)
        rows = [f"  {name:<{width}}  {n:>12,} rows" for name, n in self.files.items()]
        return "\n".join([head, *rows])


def simulate(
    out_dir: Path | str,
    *,
    reps: int = 200,
    months: int = 24,
    seed: int = 7,
    scenario: str = DEFAULT_SCENARIO,
    start: date = date(2024, 1, 1),
    progress: Callable[[str, float], None] | None = None,
    effect_scale: float = 1.0,
) -> SimulationInfo:
    """Simulate a sales org with a training program and write its data folder and truth.

    Parameters
    ----------
    out_dir
        Folder to write (created if missing; files in it are overwritten).
    reps
        Number of sales reps (CRM users who own opportunities), at least 1. In scenario
        ``customer`` they are account managers, each owning about six customer accounts.
    months
        Length of the simulated period in months, 6 to 240. The program rolls out mid-period.
    seed
        Non-negative seed. Same arguments give byte-identical files.
    scenario
        One of :data:`SCENARIOS`: who gets trained and what training does. ``microlessons``
        also writes ``truth_doses.csv`` (lessons per rep) and a ``dose`` section in truth.json;
        ``crm_golive`` writes ``truth_leads.parquet`` (per lead) and a ``crm`` section;
        ``turnover`` a ``turnover`` section and hire and leave dates in ``truth_reps.csv``. The
        sales scenarios but ``microlessons`` write ``truth_time.csv`` (participant time).
    start
        First day of the period; the period is ``[start, start + months)``.
    progress
        Called as ``progress(step_description, fraction_done)`` while working.
    effect_scale
        Multiplies the course's effect on deals (log-odds of winning, deal size, cycle) in the
        scenarios of a sales course (not ``customer``, ``microlessons`` or the CRM go-lives): 0 for
        none, 2 for twice the scenario's, negative for a program that harms. truth.json's
        ``effects`` are the scaled ones; the org, who is trained and every draw stay the seed's.

    Returns
    -------
    SimulationInfo
        Where the files are, their data rows, and how long it took.

    Raises
    ------
    ValueError
        For an unknown scenario (the message lists the valid ones) or an argument out of range.

    Examples
    --------
    >>> import tempfile
    >>> info = simulate(tempfile.mkdtemp(), reps=20, months=12, scenario="randomised")
    >>> info.files["crm/Opportunity.csv"] > 0
    True
    """
    began = time.perf_counter()
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; valid scenarios: {', '.join(SCENARIOS)}")
    for arg, value, lo, hi in (("reps", reps, 1, 10_000_000), ("months", months, 6, 240),
                               ("seed", seed, 0, 2**63 - 1)):
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise ValueError(f"{arg} must be an integer from {lo} to {hi}, got {value!r}")
    if isinstance(effect_scale, bool) or not isinstance(effect_scale, int | float) or not math.isfinite(effect_scale):
        raise ValueError(f"effect_scale must be a finite number, got {effect_scale!r}")
    if effect_scale != 1 and scenario not in _COURSE_SCENARIOS:
        raise ValueError(f"effect_scale applies to the sales course scenarios ({', '.join(_COURSE_SCENARIOS)}), "
                         f"not to {scenario!r}")
    if not isinstance(start, date):
        raise ValueError(f"start must be a date, got {start!r}")
    if isinstance(start, datetime):
        start = start.date()
    out = Path(out_dir)
    (out / "crm").mkdir(parents=True, exist_ok=True)
    (out / "lms").mkdir(parents=True, exist_ok=True)

    def report(step: str, fraction: float) -> None:
        if progress is not None:
            progress(step, fraction)

    cal = _Calendar.make(start, months)
    if scenario == _CUSTOMER_SCENARIO:
        files = _simulate_customers(out, cal, reps=reps, seed=seed, report=report)
    else:
        files = _simulate_sales(out, cal, scenario=scenario, reps=reps, seed=seed, report=report,
                                effect_scale=float(effect_scale))
    return SimulationInfo(out_dir=out, scenario=scenario, seed=seed, reps=reps, months=months, files=files,
                          seconds=time.perf_counter() - began)
