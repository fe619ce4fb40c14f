"""The data folder of a scenario about the sales reps: every scenario but ``customer``.

One organisation and one pipeline per seed; the scenario decides who is trained and how (the daily
drills of ``microlessons``, the team go-lives of ``crm_golive``) and adds its own truth. The
course's time is a set of sessions (:mod:`training_roi.simulate.sessions`) that the statements and
the completion report describe, and ``truth_time.csv`` counts once; ``turnover`` changes the
organisation, ``long_cycles`` the deals' cycles, and the covariate worlds (``covariate_trends``,
``poor_overlap``, ``covariate_null``) each region's market trend and who enrols, with a
``covariate`` section in truth.json.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import polars as pl

from training_roi.simulate.costs import _costs_frame
from training_roi.simulate.crm import (
    _case_frame,
    _history_frame,
    _lead_frame,
    _opportunity_frame,
    _Responses,
    _task_frame,
)
from training_roi.simulate.crm_golive import _CRM_COURSE, _crm_costs_frame, _go_live, _golive_frames, _golive_truth
from training_roi.simulate.folder import _Folder
from training_roi.simulate.learners import _build_learners, _learners_frame
from training_roi.simulate.lms import _completions_frame, _sales_activities, _write_statements
from training_roi.simulate.markets import (
    _MARKETS_DEFINITIONS,
    _SUBGROUP_DEFINITIONS,
    _markets_diagnostics,
    _markets_truth,
    _subgroup_truth,
)
from training_roi.simulate.microlessons import (
    _assign_lessons,
    _dose_frames,
    _dose_truth,
    _Doses,
    _drill_activities,
    _drill_costs_frame,
    _drill_statements,
)
from training_roi.simulate.opportunities import _simulate_opportunities
from training_roi.simulate.org import _build_org
from training_roi.simulate.participant_time import (
    _TIME_DEFINITIONS,
    _course_completions_frame,
    _time_frame,
    _time_truth,
)
from training_roi.simulate.period import _NEVER, _Calendar
from training_roi.simulate.program import _SALES_COURSE
from training_roi.simulate.scenarios import (
    _CRM_BASE,
    _CRM_SCENARIOS,
    _DOSE_BASE,
    _DOSE_SCENARIOS,
    _course_scenario,
)
from training_roi.simulate.sessions import _draw_sessions, _question_activities, _session_statements, _Sessions
from training_roi.simulate.skills import (
    _SKILLS_DEFINITIONS,
    _answer_statements,
    _draw_skills,
    _Skills,
    _skills_activities,
    _skills_frame,
    _skills_truth,
    _skills_truth_frame,
)
from training_roi.simulate.statements import _ActivitySpec, _Stmts
from training_roi.simulate.surveys import _surveys_frame
from training_roi.simulate.tenure_effect import _TENURE_DEFINITIONS, _tenure_band, _tenure_mixture, _tenure_truth
from training_roi.simulate.training import _assign_training
from training_roi.simulate.truth import _truth, _truth_frames
from training_roi.simulate.turnover import _TURNOVER_DEFINITIONS, _turnover_columns, _turnover_truth


def _simulate_sales(out: Path, cal: _Calendar, *, scenario: str, reps: int, seed: int,
                    report: Callable[[str, float], None], effect_scale: float = 1.0) -> dict[str, int]:
    """Write the folder and truth of a scenario about the sales reps; return the data rows per file.

    ``effect_scale`` multiplies a course scenario's effect (:func:`~training_roi.simulate.scenarios._course_scenario`).
    """
    crm = _CRM_SCENARIOS.get(scenario)
    dose_scenario = _DOSE_SCENARIOS.get(scenario)
    sc = (_CRM_BASE if crm else _DOSE_BASE if dose_scenario is not None
          else _course_scenario(scenario, effect_scale))
    report("Building the organisation", 0.0)
    org = _build_org(cal, reps, seed, turnover=sc.turnover)
    learners = _build_learners(cal, org, seed)
    report("Rolling out the training program", 0.06)
    golive = _go_live(cal, org, crm, seed) if crm else None
    course = _SALES_COURSE if golive is None else _CRM_COURSE
    doses: _Doses | None = None
    sessions: _Sessions | None = None
    program: Callable[[np.random.Generator], _Stmts] | None = None
    activities: list[_ActivitySpec] | None = None
    skills: _Skills | None = None
    if dose_scenario is not None:
        training, doses = _assign_lessons(cal, org, learners, dose_scenario, seed)
        parent = len(_sales_activities())
        program = partial(_drill_statements, d=doses, parent=parent)
        activities = _drill_activities(doses.released.size)
        if dose_scenario.skill_effects:
            skills = _draw_skills(cal, org, learners, (training.roll_lo, training.roll_hi), dose_scenario, seed)
            doses.c_gain = skills.completion_gain(doses)
            program = partial(_with_answers, drills=program, sk=skills, first_item=len(activities) + 1)
            activities += _skills_activities(skills)
    else:
        training = _assign_training(cal, org, learners, sc, seed,
                                    window=None if golive is None else golive.training_window())
        sessions = _draw_sessions(cal, learners, training, seed)
        activities = _sales_activities(course)
        program = partial(_session_statements, tr=training, ss=sessions, questions=len(activities))
        activities += _question_activities(course)
    report("Simulating opportunities and their potential outcomes", 0.08)
    opps = _simulate_opportunities(cal, org, training, sc, seed, dose=doses)
    folder = _Folder(out)
    report("Writing CRM users, accounts and contacts", 0.14)
    folder.crm("User", org.users, bom=True)
    folder.crm("Account", org.accounts)
    folder.crm("Contact", org.contacts, bom=True)
    report("Writing opportunities", 0.20)
    folder.crm("Opportunity", _opportunity_frame(cal, org, opps, seed), bom=True)
    report("Writing opportunity history", 0.32)
    folder.crm("OpportunityHistory", _history_frame(cal, org, opps, seed))
    report("Writing leads, tasks and cases", 0.45)
    leads = _lead_frame(cal, org, opps, seed, golive=golive)
    folder.crm("Lead", leads.select(pl.exclude("^_.*$")))
    folder.crm("Task", _task_frame(cal, org, opps, seed,
                                   responses=None if golive is None else _Responses.of(cal, leads)))
    folder.crm("Case", _case_frame(cal, org, seed))

    report("Writing xAPI statements", 0.55)
    lms = _write_statements(out / "lms" / "statements.jsonl", cal, org, learners, training, seed,
                            lambda step, f: report(step, 0.55 + 0.33 * f), program=program, activities=activities)
    folder.files["lms/statements.jsonl"] = lms.lines
    report("Writing the LMS directory, completion report, surveys and costs", 0.9)
    folder.csv("lms/learners.csv", _learners_frame(cal, learners))
    completions = _completions_frame(cal, learners, seed)
    if sessions is not None:
        completions = pl.concat([completions, _course_completions_frame(learners, training, sessions, course)])
    folder.csv("lms/completions.csv", completions)
    folder.csv("surveys.csv", _surveys_frame(cal, org, learners, training, seed, course=course,
                                             while_employed=sc.turnover is not None))
    if doses is not None:
        costs = _drill_costs_frame(cal, training, learners, doses)
    else:
        costs = _costs_frame(cal, training, learners) if golive is None else _crm_costs_frame(cal, org, learners,
                                                                                              golive)
    folder.csv("costs.csv", costs)

    report("Computing the truth", 0.94)
    reps_df, trained_df, opp_df = _truth_frames(cal, org, learners, training, opps)
    dose_df = lead_df = None
    if doses is not None:
        reps_df, opp_df, dose_df = _dose_frames(cal, org, doses, reps_df, opp_df, opps)
    if golive is not None:
        reps_df, lead_df = _golive_frames(cal, org, golive, leads, reps_df)
    if sc.turnover is not None:
        reps_df = reps_df.with_columns(**_turnover_columns(cal, org.hire_day[:reps], org.leave_day[:reps]))
        opp_df = opp_df.with_columns(lost_at_departure0=opps.lost_at_departure0,
                                     lost_at_departure1=opps.lost_at_departure1)
    folder.csv("truth_reps.csv", reps_df, decimals=None)
    folder.csv("truth_trained.csv", trained_df)
    time_df = None if sessions is None else _time_frame(org, learners, training, sessions)
    if time_df is not None:
        folder.csv("truth_time.csv", time_df, decimals=None)
    if dose_df is not None:
        folder.csv("truth_doses.csv", dose_df)
    if skills is not None and doses is not None:
        folder.csv("skills.csv", _skills_frame(skills, doses.released.size))
        folder.parquet("truth_skills.parquet", _skills_truth_frame(cal, org, skills, doses, opps, training.roll_lo))
    folder.parquet("truth_opportunities.parquet", opp_df)
    if lead_df is not None:
        folder.parquet("truth_leads.parquet", lead_df)
    truth = _truth(cal, scenario, sc, seed, org, learners, training, opps, lms, folder.deleted, costs,
                   dict(folder.files))
    if doses is not None:
        truth = _dose_truth(truth, cal, dose_scenario or _DOSE_SCENARIOS["microlessons"], org, learners, training,
                            doses, opps)
    if skills is not None:
        truth = truth | {"knowledge_gaps": _skills_truth(skills),
                         "definitions": truth["definitions"] | _SKILLS_DEFINITIONS}
    if golive is not None and lead_df is not None:
        truth = _golive_truth(truth, golive, org, reps_df, lead_df, costs)
    if time_df is not None:
        truth = truth | {"participant_time": _time_truth(time_df, course),
                         "definitions": truth["definitions"] | _TIME_DEFINITIONS}
    if sc.turnover is not None:
        lost = np.where(opps.exposed, opps.lost_at_departure1, opps.lost_at_departure0) & ~opps.deleted
        truth = truth | {"turnover": _turnover_truth(cal, sc.turnover, org.hire_day[:reps], org.leave_day[:reps],
                                                     training.complete_s >= 0, lost),
                         "definitions": truth["definitions"] | _TURNOVER_DEFINITIONS}
    if sc.markets is not None:
        trained_rep = training.complete_day < _NEVER
        diagnostics = _markets_diagnostics(org, trained_rep, (training.roll_lo, training.roll_hi), owner=opps.owner,
                                           created_day=opps.created_day, won=opps.won,
                                           counted=opps.closed & ~opps.deleted)
        truth = truth | {"covariate": _markets_truth(org, sc.markets, training.eligible, trained_rep),
                         "diagnostics": truth["diagnostics"] | diagnostics,
                         "definitions": truth["definitions"] | _MARKETS_DEFINITIONS}
    if sc.win_logit_by_region is not None:
        counted = opps.closed & ~opps.deleted
        truth = truth | {"subgroups": _subgroup_truth(
            org, sc.win_logit_by_region, training.complete_day < _NEVER, (training.roll_lo, training.roll_hi),
            owner=opps.owner, created_day=opps.created_day, days_since=opps.days_since, counted=counted,
            won0=opps.won0, won1=opps.won1, p0=opps.p0, p1=opps.p1),
            "definitions": truth["definitions"] | _SUBGROUP_DEFINITIONS}
    if sc.win_logit_by_tenure is not None:
        counted = opps.closed & ~opps.deleted
        band = _tenure_band(org, training.complete_day, (training.roll_lo, training.roll_hi))
        truth = truth | {"subgroups": _tenure_truth(
            band, sc.win_logit_by_tenure, training.complete_day < _NEVER, (training.roll_lo, training.roll_hi),
            owner=opps.owner, created_day=opps.created_day, days_since=opps.days_since, counted=counted,
            won0=opps.won0, won1=opps.won1, p0=opps.p0, p1=opps.p1),
            "definitions": truth["definitions"] | _TENURE_DEFINITIONS,
            "effects": truth["effects"] | _tenure_mixture(band, sc.win_logit_by_tenure, training.complete_day < _NEVER)}
    folder.truth(truth)
    report("Done", 1.0)
    return folder.files


def _with_answers(rng: np.random.Generator, *, drills: Callable[[np.random.Generator], _Stmts], sk: _Skills,
                  first_item: int) -> _Stmts:
    """The drills' statements, then the skills check's answers (item ``i`` is activity ``first_item + i``)."""
    return _Stmts.concat([drills(rng), _answer_statements(rng, sk, first_item)], shift_refs=False)
