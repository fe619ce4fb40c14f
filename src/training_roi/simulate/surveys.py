"""``surveys.csv``: Phillips reaction, application and estimate answers about a program.

Learners answer in the days and months after completing it, their managers after the rollout;
skilled reps answer a little more favourably.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from training_roi.simulate.draws import _stream
from training_roi.simulate.fields import _dates
from training_roi.simulate.learners import _Learners
from training_roi.simulate.org import _Org
from training_roi.simulate.period import _DAY, _Calendar
from training_roi.simulate.program import _SALES_COURSE, _Course
from training_roi.simulate.training import _Training

_SURVEY_SCHEMA = pl.Schema({
    "respondent_email": pl.String(), "role": pl.String(), "program": pl.String(), "level": pl.String(),
    "question": pl.String(), "score": pl.Int64(), "confidence": pl.Float64(), "submitted_at": pl.Date(),
})


def _surveys_frame(cal: _Calendar, org: _Org, lr: _Learners, tr: _Training, seed: int, *,
                   course: _Course = _SALES_COURSE, while_employed: bool = False) -> pl.DataFrame:
    """Build ``surveys.csv``: Phillips reaction, application and estimate answers about ``course``'s program.

    With ``while_employed`` (scenario turnover) nobody answers after leaving.
    """
    rng = _stream(seed, "surveys")
    comp = np.flatnonzero(tr.e_complete_s >= 0)
    who = tr.e_learner[comp]
    day = tr.e_complete_s[comp] // _DAY
    skill = np.where(who < org.n_reps, org.skill[np.minimum(who, org.n_reps - 1)], 0.0)
    frames = []

    def answers(mask: np.ndarray, people: np.ndarray, role: str, level: str, question: str,
                score: np.ndarray, confidence: np.ndarray | None, when: np.ndarray) -> None:
        keep = mask & (when < cal.start_day + cal.n_days)
        if while_employed:
            keep &= when < cal.start_day + lr.leave_day[people]
        sel = np.flatnonzero(keep)
        frames.append(pl.DataFrame({
            "respondent_email": lr.dir_email.gather(people[sel]),
            "role": role, "program": course.program, "level": level, "question": question,
            "score": score[sel],
            "confidence": pl.Series(confidence[sel] if confidence is not None else np.full(sel.size, np.nan))
            .fill_nan(None),
            "submitted_at": _dates(when[sel]),
        }).cast(_SURVEY_SCHEMA))  # an empty selection would otherwise give Null-typed columns

    def likert(centre: np.ndarray | float, n: int) -> np.ndarray:
        return np.clip(np.round(rng.normal(centre, 0.8, n)), 1, 5).astype(np.int64)

    react = rng.random(comp.size) < 0.7
    when = day + rng.integers(0, 4, comp.size)
    for q in ("reaction.relevance", "reaction.satisfaction", "reaction.would_recommend"):
        answers(react, who, "learner", "reaction", q, likert(4.1 + 0.15 * skill, comp.size), None, when)
    apply_ = rng.random(comp.size) < 0.45
    when = day + rng.integers(80, 100, comp.size)
    for q in course.application:
        answers(apply_, who, "learner", "application", f"application.{q}", likert(3.6 + 0.2 * skill, comp.size),
                None, when)
    est = rng.random(comp.size) < 0.3
    when = day + rng.integers(90, 110, comp.size)
    answers(est, who, "learner", "estimate", "estimate.share_of_improvement_due_to_program",
            np.clip(np.round(rng.normal(35, 15, comp.size)), 0, 100).astype(np.int64),
            np.clip(np.round(rng.normal(65, 15, comp.size)), 0, 100), when)
    reps_trained = who[who < org.n_reps]
    managers = np.unique(org.manager[reps_trained]) if reps_trained.size else np.zeros(0, np.int64)
    managers = managers[managers >= 0]
    nm = managers.size
    when = np.full(nm, cal.start_day + tr.roll_hi) + rng.integers(60, 90, nm)
    answers(np.ones(nm, bool), managers, "manager", "application", "application.observed_behavior_change",
            likert(3.7, nm), None, when)
    answers(rng.random(nm) < 0.6, managers, "manager", "estimate", "estimate.share_of_improvement_due_to_program",
            np.clip(np.round(rng.normal(30, 12, nm)), 0, 100).astype(np.int64),
            np.clip(np.round(rng.normal(70, 12, nm)), 0, 100), when)
    out = pl.concat(frames)
    return out.sort(["submitted_at", "respondent_email", "question"], maintain_order=True)
