"""The program's roll-out: which reps enrol, who completes the course and when, dropouts, voided completions.

A sales scenario's assignment (self-selection, random waves, monthly waves, enrolment by region, or
the go-live's team windows) decides who enrols and when they would complete; partner staff enrol too.
:func:`_enrolment_progress` draws how each enrolment goes, here and in the customer academy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from training_roi.simulate.draws import _at_least, _enrol_intercept, _flag, _logistic, _stream
from training_roi.simulate.learners import _Learners
from training_roi.simulate.markets import _enrol_probability
from training_roi.simulate.org import _Org
from training_roi.simulate.period import _DAY, _NEVER, _add_months, _Calendar
from training_roi.simulate.program import _LESSONS
from training_roi.simulate.scenarios import _Scenario

_DROPOUT_SHARE = 0.06  # enrolled reps who never complete (at least one when five or more enrol)


@dataclass
class _Training:
    """The program's roll-out: per rep, and per LMS enrolment (reps and partners)."""

    roll_lo: int  # first day index of the rollout window
    roll_hi: int  # day index after it
    eligible: np.ndarray  # per rep: employed through the rollout window
    enrolled: np.ndarray  # per rep: assigned to / chose the program
    complete_s: np.ndarray  # per rep: instant of the real course completion, -1 if none
    complete_day: np.ndarray  # per rep: UTC day index of it, _NEVER if none
    dropout: np.ndarray  # per rep: enrolled but never completed
    voided_only: np.ndarray  # per rep: dropout whose only (spurious) completion was voided
    voided_then_real: np.ndarray  # per rep: a spurious completion voided, then a real one
    e_learner: np.ndarray  # per enrolment: learner index
    e_start_s: np.ndarray
    e_lesson_hi_s: np.ndarray  # lessons happen in [start, lesson_hi)
    e_complete_s: np.ndarray  # -1: did not complete
    e_lessons: np.ndarray  # lessons done (1–6)
    e_fail_first: np.ndarray  # failed the course quiz once before passing
    e_spurious_s: np.ndarray  # a wrongly recorded completion, later voided (-1: none)
    e_void_s: np.ndarray  # when it was voided


def _assign_training(cal: _Calendar, org: _Org, learners: _Learners, sc: _Scenario, seed: int, *,
                     window: tuple[np.ndarray, np.ndarray] | None = None) -> _Training:
    """Decide per scenario who is trained and when, including dropouts and voided completions.

    ``window`` (scenario crm_golive) gives each rep's days ``[lo, hi)`` to complete in: every
    eligible rep enrols, whatever the scenario's assignment says. Assignment ``random_employed``
    (scenario turnover) makes every rep employed for a while in the rollout window eligible, and a
    random share of them complete within the days they are employed there. Assignment ``by_region``
    (the covariate worlds, :mod:`training_roi.simulate.markets`) enrols each eligible rep with their
    region's probability; completions fall uniformly in the roll-out window.
    """
    rng = _stream(seed, "training")
    reps = org.n_reps
    roll_lo, roll_hi = cal.rollout_window(sc.rollout, 20)
    t = sc.turnover if sc.assignment == "random_employed" else None
    if t is None:
        eligible = org.employed_through(roll_lo, roll_hi)
    else:
        emp_lo = np.maximum(roll_lo, org.hire_day[:reps] + t.train_after_hire_days)
        emp_hi = np.minimum(roll_hi, org.leave_day[:reps] - t.train_before_leave_days)
        eligible = emp_hi - emp_lo >= 14
    elig = np.flatnonzero(eligible)
    skill = org.skill
    u_enrol, u_time = rng.random(reps), rng.random(reps)
    local = rng.integers(9 * 3600, 22 * 3600, reps)  # learners also finish courses in the evening
    perm = rng.permutation(elig)
    lo = np.full(reps, roll_lo, np.int64)
    hi = np.full(reps, roll_hi, np.int64)
    u = u_time.copy()
    enrolled = np.zeros(reps, bool)
    if window is not None:
        enrolled = eligible.copy()
        lo, hi = window
    elif t is not None:
        chosen = perm[: int(np.rint(sc.enrol_share * elig.size))]
        enrolled[chosen] = True
        lo[chosen], hi[chosen] = emp_lo[chosen], emp_hi[chosen]
    elif sc.assignment == "random_waves":
        k = int(np.rint(sc.enrol_share * elig.size))
        chosen = perm[:k]
        enrolled[chosen] = True
        edges = roll_lo + (roll_hi - roll_lo) * np.arange(sc.waves + 1) // sc.waves
        wave = np.arange(k) % sc.waves
        lo[chosen], hi[chosen] = edges[wave], edges[wave + 1]
    elif sc.assignment == "by_region":  # the region alone decides, completion uniform in the window
        assert sc.markets is not None
        enrolled = eligible & (u_enrol < _enrol_probability(org, sc.markets))
    else:
        a = _enrol_intercept(skill[elig], sc.selection_skill, sc.enrol_share) if elig.size else 0.0
        enrolled = eligible & (u_enrol < _logistic(a + sc.selection_skill * skill))
        if sc.assignment == "self_select":
            u = u_time ** np.exp(sc.timing_skill * skill)  # keen (skilled) reps finish first
        else:
            edges = np.array(sorted({
                min(max((_add_months(cal.start, m) - cal.start).days, roll_lo), roll_hi)
                for m in range(cal._months() + 1)
            }))
            edges = edges[(edges >= roll_lo) & (edges <= roll_hi)]
            wave = rng.integers(0, max(1, edges.size - 1), reps)
            lo, hi = edges[wave], edges[np.minimum(wave + 1, edges.size - 1)]
    would = cal.business_instants(lo, hi, u, local, org.offset_min[:reps])

    enrolled_idx = np.flatnonzero(enrolled)
    dropouts = _at_least(rng, enrolled_idx, _DROPOUT_SHARE, 1 if enrolled_idx.size >= 5 else 0)
    completers = np.setdiff1d(enrolled_idx, dropouts)
    voided_only = _at_least(rng, dropouts, 0.3, 1)
    voided_then_real = _at_least(rng, completers, 0.03, 1 if completers.size >= 5 else 0)
    complete_s = np.full(reps, -1, np.int64)
    complete_s[completers] = would[completers]
    complete_day = np.full(reps, _NEVER, np.int64)
    complete_day[completers] = complete_s[completers] // _DAY - cal.start_day

    # Partner staff take the course too; they are trained but are not reps.
    ext = np.arange(learners.n_users, learners.n_users + learners.n_ext)
    ext_enrolled = ext[rng.random(ext.size) < 0.35]
    ext_would = cal.business_instants(
        np.full(ext_enrolled.size, roll_lo), np.full(ext_enrolled.size, roll_hi), rng.random(ext_enrolled.size),
        rng.integers(9 * 3600, 22 * 3600, ext_enrolled.size), learners.offset_min[ext_enrolled],
    )
    ext_drop = rng.random(ext_enrolled.size) < 0.1

    e_learner = np.concatenate([enrolled_idx, ext_enrolled])
    e_would = np.concatenate([would[enrolled_idx], ext_would])
    e_completes = np.concatenate([~np.isin(enrolled_idx, dropouts), ~ext_drop])
    ne = e_learner.size
    span = rng.integers(7 * _DAY, 45 * _DAY, ne)
    e_start = np.maximum(e_would - span, cal.start_s + 3600)
    is_rep = np.arange(ne) < enrolled_idx.size
    until_s = None
    if t is not None:  # only while employed: from the day after the hire to the last day
        e_start = np.maximum(e_start, (cal.start_day + learners.hire_day[e_learner] + 1) * _DAY)
        until_s = np.minimum((cal.start_day + learners.leave_day[e_learner] - 1) * _DAY, cal.end_s)
    progress = _enrolment_progress(cal, rng, start_s=e_start, would_s=e_would, completes=e_completes,
                                   n_lessons=len(_LESSONS), voided_only=np.isin(e_learner, voided_only) & is_rep,
                                   voided_then_real=np.isin(e_learner, voided_then_real) & is_rep, until_s=until_s)
    flags = np.zeros(reps, bool)
    return _Training(
        roll_lo=roll_lo, roll_hi=roll_hi, eligible=eligible, enrolled=enrolled,
        complete_s=complete_s, complete_day=complete_day,
        dropout=_flag(flags, dropouts), voided_only=_flag(flags, voided_only),
        voided_then_real=_flag(flags, voided_then_real),
        e_learner=e_learner, e_start_s=e_start, e_lesson_hi_s=progress.lesson_hi_s,
        e_complete_s=np.where(e_completes, e_would, -1), e_lessons=progress.lessons,
        e_fail_first=progress.fail_first, e_spurious_s=progress.spurious_s, e_void_s=progress.void_s,
    )


class _Progress(NamedTuple):
    """How each enrolment goes, from its start to its completion or its dropping out."""

    lesson_hi_s: np.ndarray  # lessons happen in [start, lesson_hi)
    lessons: np.ndarray  # lessons done
    fail_first: np.ndarray  # failed the course quiz once before passing
    spurious_s: np.ndarray  # a wrongly recorded completion, later voided (-1: none)
    void_s: np.ndarray  # when it was voided (-1: none)


def _enrolment_progress(cal: _Calendar, rng: np.random.Generator, *, start_s: np.ndarray, would_s: np.ndarray,
                        completes: np.ndarray, n_lessons: int, voided_only: np.ndarray,
                        voided_then_real: np.ndarray, until_s: np.ndarray | None = None) -> _Progress:
    """Draw each enrolment's lessons, a failed first quiz, and a wrongly recorded completion.

    Completers (``completes``; they complete at ``would_s``) do all ``n_lessons`` lessons up to
    30 hours before; the others do 1 to ``n_lessons`` − 1 and stop 2–20 days after ``start_s``, and
    before ``until_s`` when given (the learner's last day).
    A wrong completion is recorded 45 seconds after the start (``voided_then_real``) or an hour
    after the last lesson (``voided_only``), and voided half a day to 10 days later.
    """
    ne = start_s.size
    drop_span = rng.integers(2 * _DAY, 20 * _DAY, ne)
    lesson_hi = np.where(completes, np.maximum(start_s + 3600, would_s - 30 * 3600),
                         np.minimum(start_s + drop_span, cal.end_s - 3 * 3600))
    if until_s is not None:
        lesson_hi = np.where(completes, lesson_hi, np.maximum(np.minimum(lesson_hi, until_s), start_s + 3600))
    lessons = np.where(completes, n_lessons, rng.integers(1, n_lessons, ne))
    fail = completes & (rng.random(ne) < 0.12)
    spurious = np.full(ne, -1, np.int64)
    spurious[voided_then_real] = start_s[voided_then_real] + 45
    spurious[voided_only] = lesson_hi[voided_only] + 3600
    void = np.where(spurious >= 0, np.minimum(spurious + rng.integers(_DAY // 2, 10 * _DAY, ne), cal.end_s - 1), -1)
    return _Progress(lesson_hi, lessons, fail, spurious, void)
