"""Scenario ``knowledge_gaps``: latent skills, a skills check answered item by item, and lessons that close gaps.

The daily drills of ``microlessons`` each teach one skill: drill ``k``'s topic, ``k mod 12`` of
:data:`~training_roi.simulate.microlessons._DRILL_TOPICS`. The model:

* every rep has a latent level θ_rs ~ N(0, 1) in each skill s, independent between skills and of
  the rep's overall skill; the rep's **gap** in s is max(0, −θ_rs);
* before the drills roll out (in the 45 to 5 days before the rollout window), ``check_share`` of
  the eligible reps take the Skills Check (``…/assessment/skills-check``): ``items_per_skill``
  items per skill, each an xAPI ``answered`` statement on a ``cmi.interaction`` activity under that
  parent, with ``result.success`` true with probability logistic(1.2·θ_rs − b_i + 0.4), b_i ~ N(0,
  0.6²) the item's difficulty;
* the **first** drill of skill s a rep completes closes their gap in it: it adds γ_s·gap_rs to the
  log-odds of winning of the deals they create on later UTC dates (``_Doses.c_gain``); further
  drills of the same skill add nothing. γ_s is ``skill_effects`` (0.3 for four skills, 0 for the
  other eight). Engagement and the untreated trend are those of ``microlessons``: engaged reps do
  more drills and improve anyway.

Written beside the export: ``skills.csv`` (``activity_id``, ``skill``: every item and every drill,
the tags an LMS catalogue carries), and the truth ``truth_skills.parquet``, one row per rep and
skill: ``user_id``, ``skill``, ``theta``, ``gap``, ``gain_logit`` (γ_s·gap_rs: what the skill's
first lesson adds to the rep's log-odds), ``gain_win_rate`` (gain_logit·p̄(1 − p̄), p̄ the rep's
mean untreated win probability over their closed deals created from the rollout's start: the
lesson's effect on the rep's win rate, to first order), ``covered_on`` (the UTC date of the rep's
first drill of the skill, empty if none) and ``answers``/``correct`` (their skills-check items).
truth.json's ``knowledge_gaps`` section names the skills, their γ and the files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from training_roi.simulate.draws import _logistic, _stream
from training_roi.simulate.learners import _Learners
from training_roi.simulate.microlessons import _DRILL_TOPICS, _Doses, _drill_iri
from training_roi.simulate.opportunities import _Opps
from training_roi.simulate.org import _Org
from training_roi.simulate.period import _DAY, _Calendar
from training_roi.simulate.program import _ACT
from training_roi.simulate.scenarios import _DoseScenario
from training_roi.simulate.statements import _ROLE_QUIZ, _V, _ActivitySpec, _Stmts

_CHECK_ID = f"{_ACT}/assessment/skills-check"
_CHECK_NAME = "Skills Check"
_SKILLS = _DRILL_TOPICS
_DISCRIMINATION = 1.2  # logit slope of a correct answer on the latent level
_EASE = 0.4  # logit of a correct answer at level 0 and difficulty 0
_DIFFICULTY_SD = 0.6


def _item_iri(i: int) -> str:
    """Return the activity id of skills-check item ``i`` (0-based)."""
    return f"{_CHECK_ID}/item/{i + 1:02d}"


@dataclass
class _Skills:
    """Every rep's latent level in each skill, and the skills check's answers."""

    theta: np.ndarray  # reps × skills
    gamma: np.ndarray  # per skill: log-odds per unit of gap closed by the skill's first drill
    item_skill: np.ndarray  # per item: its skill
    item_difficulty: np.ndarray
    a_learner: np.ndarray  # per answer: the rep (learner index = CRM user index)
    a_item: np.ndarray
    a_s: np.ndarray  # UTC epoch seconds
    a_correct: np.ndarray

    @property
    def gap(self) -> np.ndarray:
        """Reps × skills: max(0, −θ)."""
        return np.asarray(np.maximum(0.0, -self.theta), dtype=np.float64)

    def completion_gain(self, d: _Doses) -> np.ndarray:
        """Per drill completion of ``d``: what it adds to its rep's log-odds (the first drill of a skill only)."""
        reps = self.theta.shape[0]
        gain = np.zeros(d.c_learner.size)
        rep = np.flatnonzero(d.c_learner < reps)
        skill = d.c_lesson[rep] % len(_SKILLS)
        # Completions are sorted by learner, then time: a key's first index is the rep's first drill of the skill.
        _, first = np.unique(d.c_learner[rep] * len(_SKILLS) + skill, return_index=True)
        at = rep[first]
        gain[at] = self.gamma[skill[first]] * self.gap[d.c_learner[at], skill[first]]
        return gain


def _draw_skills(cal: _Calendar, org: _Org, lr: _Learners, roll: tuple[int, int], dsc: _DoseScenario,
                 seed: int) -> _Skills:
    """Draw the reps' levels and the skills check's answers (taken before the drills' rollout window)."""
    rng = _stream(seed, "skills")
    reps, n_skills = org.n_reps, len(_SKILLS)
    theta = rng.standard_normal((reps, n_skills))
    gamma = np.zeros(n_skills)
    for skill, logit in dsc.skill_effects:
        gamma[skill] = logit
    item_skill = np.repeat(np.arange(n_skills), dsc.items_per_skill)
    difficulty = _DIFFICULTY_SD * rng.standard_normal(item_skill.size)
    roll_lo, roll_hi = roll
    takers = np.flatnonzero(org.employed_through(roll_lo, roll_hi) & (rng.random(reps) < dsc.check_share))
    lo, hi = max(roll_lo - 45, 0), max(roll_lo - 5, 1)
    start = cal.business_instants(np.full(takers.size, lo), np.full(takers.size, hi), rng.random(takers.size),
                                  rng.integers(8 * 3600, 18 * 3600, takers.size), lr.offset_min[takers])
    n_items = item_skill.size
    learner = np.repeat(takers, n_items)
    item = np.tile(np.arange(n_items), takers.size)
    # Each taker's answers follow one another from their start, 15 to 90 seconds apart.
    steps = rng.integers(15, 90, (takers.size, n_items))
    seconds = np.repeat(start, n_items) + np.cumsum(steps, axis=1).ravel()
    p = _logistic(_DISCRIMINATION * theta[learner, item_skill[item]] - difficulty[item] + _EASE)
    correct = rng.random(learner.size) < p
    return _Skills(theta=theta, gamma=gamma, item_skill=item_skill, item_difficulty=difficulty, a_learner=learner,
                   a_item=item, a_s=seconds.astype(np.int64), a_correct=correct)


def _skills_activities(sk: _Skills) -> list[_ActivitySpec]:
    """The skills check and its items (context parent: the check), to append to the statements' activities."""
    parent = {"parent": [{"objectType": "Activity", "id": _CHECK_ID}]}
    acts: list[_ActivitySpec] = [(_CHECK_ID, _CHECK_NAME, "quiz", {})]
    acts += [(_item_iri(i), f"{_CHECK_NAME}, Item {i + 1:02d}: {_SKILLS[s]}", "question", parent)
             for i, s in enumerate(sk.item_skill)]
    return acts


def _answer_statements(rng: np.random.Generator, sk: _Skills, first_item: int) -> _Stmts:
    """The skills check's ``answered`` statements; item ``i`` is activity ``first_item + i``."""
    n = sk.a_learner.size
    return _Stmts.make(n, learner=sk.a_learner, verb=_V["answered"], activity=first_item + sk.a_item,
                       ts_ms=sk.a_s * 1000 + rng.integers(0, 1000, n), success=sk.a_correct.astype(np.int64),
                       duration=rng.integers(10, 90, n), role=_ROLE_QUIZ)


def _skills_frame(sk: _Skills, n_lessons: int) -> pl.DataFrame:
    """``skills.csv``: every item and every drill with the skill it tests or teaches."""
    return pl.DataFrame({
        "activity_id": [_item_iri(i) for i in range(sk.item_skill.size)] + [_drill_iri(k) for k in range(n_lessons)],
        "skill": [_SKILLS[s] for s in sk.item_skill] + [_SKILLS[k % len(_SKILLS)] for k in range(n_lessons)],
    })


def _skills_truth_frame(cal: _Calendar, org: _Org, sk: _Skills, d: _Doses, o: _Opps, roll_lo: int) -> pl.DataFrame:
    """``truth_skills.parquet``: per rep and skill, the level, the gap, what closing it is worth, when it was."""
    reps, n_skills = sk.theta.shape
    counted = o.closed & ~o.deleted & (o.created_day >= roll_lo)
    total = np.bincount(o.owner[counted], weights=o.p0[counted], minlength=reps)[:reps]
    deals = np.bincount(o.owner[counted], minlength=reps)[:reps]
    overall = float(o.p0[counted].mean()) if counted.any() else 0.5
    p_bar = np.where(deals > 0, total / np.maximum(deals, 1), overall)
    gain = sk.gamma[None, :] * sk.gap
    covered = np.full((reps, n_skills), -1, np.int64)
    rep = np.flatnonzero(d.c_learner < reps)
    skill = d.c_lesson[rep] % n_skills
    day = d.c_s[rep] // _DAY
    order = np.argsort(-d.c_s[rep], kind="stable")  # latest first, so the earliest write wins
    covered[d.c_learner[rep][order], skill[order]] = day[order]
    answers = np.zeros((reps, n_skills), np.int64)
    right = np.zeros((reps, n_skills), np.int64)
    np.add.at(answers, (sk.a_learner, sk.item_skill[sk.a_item]), 1)
    np.add.at(right, (sk.a_learner, sk.item_skill[sk.a_item]), sk.a_correct.astype(np.int64))
    has = covered.ravel() >= 0
    dates = (np.where(has, covered.ravel(), cal.start_day)).astype("datetime64[D]")
    return pl.DataFrame({
        "user_id": np.repeat(org.user_id.head(reps).to_numpy(), n_skills),
        "skill": np.tile(np.array(_SKILLS, dtype=object), reps),
        "theta": np.round(sk.theta.ravel(), 6),
        "gap": np.round(sk.gap.ravel(), 6),
        "gain_logit": np.round(gain.ravel(), 6),
        "gain_win_rate": np.round((gain * (p_bar * (1 - p_bar))[:, None]).ravel(), 8),
        "covered_on": pl.Series(dates).cast(pl.Date).to_numpy(),
        "answers": answers.ravel(),
        "correct": right.ravel(),
    }).with_columns(covered_on=pl.when(pl.Series(has)).then(pl.col("covered_on")))


_SKILLS_DEFINITIONS = {
    "knowledge_gaps": (
        "scenario knowledge_gaps: each drill teaches one skill (skills.csv: every skills-check item and every drill "
        "with its skill). skills: each skill's name and win_logit_per_gap γ; a rep's gap in a skill is max(0, −θ), "
        "θ ~ N(0, 1) their latent level; the rep's first drill of the skill adds γ·gap to the log-odds of winning of "
        "the deals they create on later UTC dates, later drills of the skill add nothing. truth_skills.parquet: per "
        "rep and skill, theta, gap, gain_logit = γ·gap, gain_win_rate = gain_logit·p̄(1 − p̄) (p̄ the rep's mean "
        "untreated win probability over their closed deals created from the rollout's start: the win-rate effect "
        "of taking a lesson of the skill next, the value a recommendation policy is scored by), covered_on (first "
        "drill of the skill) and the skills-check answers and correct answers"
    ),
}


def _skills_truth(sk: _Skills) -> dict[str, Any]:
    """truth.json's ``knowledge_gaps`` section."""
    return {
        "skills": [{"skill": name, "win_logit_per_gap": float(sk.gamma[s])} for s, name in enumerate(_SKILLS)],
        "effective": [name for s, name in enumerate(_SKILLS) if sk.gamma[s]],
        "assessment_activity_id": _CHECK_ID,
        "items": int(sk.item_skill.size),
        "check_takers": int(np.unique(sk.a_learner).size),
        "answers": int(sk.a_learner.size),
        "skills_file": "skills.csv",
        "file": "truth_skills.parquet",
    }
