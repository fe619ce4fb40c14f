"""Scenario ``microlessons``: a dose of daily drills, and the truth about the effect per lesson.

The Sales Excellence program releases one short lesson (a "drill") every business day of its
rollout window, all under one parent activity (``…/program/daily-drills``, lessons
``…/lesson/001`` …, verb completed with a duration). Reps take part or not and do as many drills
as they like, from none to about 60: engagement is a count, not a date. The model:

* engagement_i = ρ·skill_i + √(1 − ρ²)·ε_i, ε_i ~ N(0, 1), per rep (ρ = engagement_skill);
* an eligible rep (employed through the window) takes part with probability
  logistic(a + take_engagement·engagement_i), a set so that take_share of them do;
* a participant's first drill is on business day ⌊U^exp(timing_engagement·engagement_i) ·
  start_spread · D⌋ of the D release days (engaged reps start earlier); they complete
  K_i = min(1 + Poisson(λ_i), max_lessons, days left) distinct drills, λ_i = lessons_median ·
  exp(lessons_engagement·engagement_i + lessons_sigma·Z_i): the first, then K_i − 1 drills of
  later release days chosen at random, each on its release day at a local time of day;
* a deal's untreated log-odds η0 are the sales model's plus the rep's own trend,
  ``model.dose.trend_per_year`` · engagement_i · (days since the rollout start) / 365.25: engaged
  reps improve without lessons too, which a before/after comparison cannot tell from the
  lessons' effect;
* p(L) = logistic(η0 + β·L) is a deal's win probability had its owner completed L distinct
  lessons on UTC dates before its created date (a lesson counts from the day after it is done,
  as a course completion in the other scenarios); β = ``effects.win_logit_per_lesson``. Amounts
  and cycles do not depend on lessons.

Repeating a drill, launching one without completing it, and a completion that is later voided
add no lesson and no effect. Partner staff do drills too; they own no deals. The truth:

* per deal (``truth_opportunities.parquet``): p0 = p(0), p1 = p(``lessons_before``), won0/won1
  with the same uniform draw; the CRM shows won1;
* ``truth["dose"]["ame_per_lesson"]``, the estimand: over W, the closed, non-deleted deals of
  reps with lessons created 1..180 days after the rep's first lesson, the mean of
  dp/dL = β·p1·(1 − p1): the average marginal effect of one lesson on the win rate (0.002 = 0.2
  points per lesson). ``change_per_lesson_completed`` = Σ_W (p1 − p0) / Σ_W K, with K the owner's
  total lessons, is what a regression of before/after changes on total lesson counts targets when
  lessons are not self-selected; it is lower, as lessons done after a deal do not help it;
* ``truth_doses.csv`` has each rep's ``lessons`` (distinct lessons completed; repeats, lessons
  only launched and voided completions do not count) and ``first_lesson_date`` (UTC).
  ``truth["program"]["course_activity_id"]`` is the parent, the lessons' ``course_id``: the
  program's first exposure is a rep's first lesson (``truth_trained.csv``), but no statement is
  about the parent itself, so completion rules that need a record of the course find none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from training_roi.simulate.costs import _cost_frame, _CostLine, _lms_subscription
from training_roi.simulate.draws import _at_least, _enrol_intercept, _logistic, _stream
from training_roi.simulate.fields import _dates, _masked
from training_roi.simulate.learners import _Learners
from training_roi.simulate.lms import _sales_activities
from training_roi.simulate.opportunities import _Opps
from training_roi.simulate.org import _Org
from training_roi.simulate.period import _DAY, _NEVER, _Calendar
from training_roi.simulate.program import _ACT, _PROGRAM, _PROGRAM_ID
from training_roi.simulate.scenarios import _DoseScenario
from training_roi.simulate.statements import (
    _ROLE_COMPLETED,
    _ROLE_LESSON,
    _ROLE_SPURIOUS,
    _ROLE_VOID,
    _V,
    _ActivitySpec,
    _Stmts,
)
from training_roi.simulate.training import _Training
from training_roi.simulate.truth import _PRIMARY_WINDOW

_DRILLS_ID = f"{_ACT}/program/daily-drills"
_DRILLS_NAME = "Sales Excellence: Daily Drills"
_DRILL_TOPICS = (
    "Open With a Question", "Quantify the Pain", "Map the Buying Committee", "Handle the Price Objection",
    "Trade, Don't Discount", "Confirm Next Steps", "A Follow-up in Two Minutes", "Spot a Stalled Deal",
    "Talk to the CFO", "Ask for the Close", "Qualify Out Early", "Tell a Customer Story",
)
_DAY_KEY = 1 << 24  # day indices are far below this: rep × _DAY_KEY + day is a sortable key


def _drill_iri(k: int) -> str:
    """Return the activity id of drill ``k`` (0-based): ``…/program/daily-drills/lesson/001`` and on."""
    return f"{_DRILLS_ID}/lesson/{k + 1:03d}"


@dataclass
class _Doses:
    """Every lesson of the daily drills that learners completed, and each rep's dose.

    Completions are sorted by learner, then time; the learner index is the CRM user index for
    CRM users (reps first), as in :class:`_Learners`.
    """

    win_logit_per_lesson: float
    trend_per_year: float
    start_day: int  # the calendar's start as an epoch day number
    lesson_logit: np.ndarray  # per drill: its own effect on the log-odds of winning (zeros: only the uniform one)
    engagement: np.ndarray  # per rep
    released: np.ndarray  # per drill: the day index (a business day) it was released and done
    lessons: np.ndarray  # per rep: distinct drills completed (K)
    first_s: np.ndarray  # per rep: instant of the first drill completed, -1 if none
    learner: np.ndarray  # per participant (reps, then partners): learner index
    count: np.ndarray  # per participant: drills completed
    c_learner: np.ndarray  # per completion: learner index
    c_lesson: np.ndarray  # drill number (0-based)
    c_s: np.ndarray  # UTC epoch seconds
    c_dur: np.ndarray  # seconds spent
    r_learner: np.ndarray  # per repeated completion of a drill already done
    r_lesson: np.ndarray
    r_s: np.ndarray
    r_dur: np.ndarray
    x_learner: np.ndarray  # per drill launched and never completed
    x_lesson: np.ndarray
    x_s: np.ndarray
    v_learner: np.ndarray  # per wrongly recorded completion (of a drill never done), voided later
    v_lesson: np.ndarray
    v_s: np.ndarray
    v_void_s: np.ndarray
    c_gain: np.ndarray | None = None  # per completion: log-odds it adds by closing a gap (scenario knowledge_gaps)

    @property
    def own_effects(self) -> bool:
        """Whether some lessons have an effect of their own (``lesson_map``) or close gaps (``knowledge_gaps``)."""
        return bool(self.lesson_logit.any() or (self.c_gain is not None and self.c_gain.any()))

    def lessons_before(self, owner: np.ndarray, day: np.ndarray) -> np.ndarray:
        """Drills each rep in ``owner`` completed on UTC dates before day index ``day``."""
        rep = self.c_learner < self.lessons.size
        key = self.c_learner[rep] * _DAY_KEY + (self.c_s[rep] // _DAY - self.start_day)
        owner = np.asarray(owner, np.int64)
        before = (np.searchsorted(key, owner * _DAY_KEY + day, side="left")
                  - np.searchsorted(key, owner * _DAY_KEY, side="left"))
        return np.asarray(before, dtype=np.int64)

    def effect_before(self, owner: np.ndarray, day: np.ndarray) -> np.ndarray:
        """The log-odds the drills each rep in ``owner`` completed on UTC dates before day ``day`` add.

        The uniform effect per lesson, plus each drill's own effect (scenario ``lesson_map``), plus
        the gaps closed (scenario ``knowledge_gaps``: :attr:`c_gain`).
        """
        rep = self.c_learner < self.lessons.size
        key = self.c_learner[rep] * _DAY_KEY + (self.c_s[rep] // _DAY - self.start_day)
        owner = np.asarray(owner, np.int64)
        hi = np.searchsorted(key, owner * _DAY_KEY + day, side="left")
        lo = np.searchsorted(key, owner * _DAY_KEY, side="left")
        own = self.lesson_logit[self.c_lesson[rep]] + (0.0 if self.c_gain is None else self.c_gain[rep])
        total = np.concatenate([[0.0], np.cumsum(own)])
        return np.asarray(self.win_logit_per_lesson * (hi - lo) + total[hi] - total[lo], dtype=np.float64)


def _assign_lessons(cal: _Calendar, org: _Org, lr: _Learners, dsc: _DoseScenario, seed: int
                    ) -> tuple[_Training, _Doses]:
    """Decide who does which daily drills and when; return them as a roll-out and as doses.

    The roll-out (:class:`_Training`) dates each rep's exposure to their first drill, so the
    sales scenarios' truth, surveys and diagnostics read it unchanged.
    """
    rng = _stream(seed, "daily-drills")
    reps = org.n_reps
    roll_lo, roll_hi = cal.rollout_window(dsc.rollout, 20)
    eligible = org.employed_through(roll_lo, roll_hi)
    elig = np.flatnonzero(eligible)
    rho = dsc.engagement_skill
    engagement = rho * org.skill + math.sqrt(1.0 - rho**2) * rng.standard_normal(reps)
    a = _enrol_intercept(engagement[elig], dsc.take_engagement, dsc.take_share) if elig.size else 0.0
    takes = eligible & (rng.random(reps) < _logistic(a + dsc.take_engagement * engagement))
    partners = _at_least(rng, np.arange(lr.n_users, lr.n_users + lr.n_ext), dsc.partner_share, 1)
    who = np.concatenate([np.flatnonzero(takes), partners])
    eng = np.concatenate([engagement[takes], rng.standard_normal(partners.size)])
    n = who.size

    days = np.arange(roll_lo, roll_hi)
    released = days[np.is_busday((cal.start_day + days).astype("datetime64[D]"))]
    n_rel = released.size
    first = np.minimum(np.floor(rng.random(n) ** np.exp(dsc.timing_engagement * eng) * dsc.start_spread * n_rel)
                       .astype(np.int64), n_rel - 1)
    rate = dsc.lessons_median * np.exp(dsc.lessons_engagement * eng + dsc.lessons_sigma * rng.standard_normal(n))
    count = np.minimum(1 + rng.poisson(rate), np.minimum(dsc.max_lessons, n_rel - first))
    # Each learner's drills after the first, in random order: the first count − 1 are done, the
    # next one is the wrongly recorded completion (if any), then those launched and left.
    col = np.arange(n_rel)
    keys = np.where(col[None, :] > first[:, None], rng.random((n, n_rel)), 2.0)
    order = np.argsort(keys, axis=1, kind="stable")
    later = n_rel - 1 - first  # drills released after the first
    rank = col[None, :]
    done = rank < (count - 1)[:, None]
    c_row = np.concatenate([np.arange(n), np.nonzero(done)[0]])
    c_pos = np.concatenate([first, order[done]])
    m = c_row.size
    offset = lr.offset_min[who]
    c_s = cal.business_instants(released[c_pos], released[c_pos] + 1, np.zeros(m),
                                rng.integers(7 * 3600, 21 * 3600, m), offset[c_row])
    c_dur = rng.integers(90, 480, m)
    sort = np.lexsort((c_s, who[c_row]))
    c_row, c_pos, c_s, c_dur = c_row[sort], c_pos[sort], c_s[sort], c_dur[sort]

    rep_rows = np.flatnonzero(who < reps)
    first_s = np.full(reps, -1, np.int64)
    row_first = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(row_first, c_row, c_s)
    row_last = np.full(n, -1, np.int64)
    np.maximum.at(row_last, c_row, c_s)
    first_s[who[rep_rows]] = row_first[rep_rows]
    lessons = np.zeros(reps, np.int64)
    lessons[who[rep_rows]] = count[rep_rows]

    again = np.flatnonzero(rng.random(m) < dsc.repeat_share)
    again_day = c_s[again] // _DAY - cal.start_day
    r_s = cal.business_instants(again_day + 1, again_day + 11, rng.random(again.size),
                                rng.integers(7 * 3600, 21 * 3600, again.size), offset[c_row[again]])
    keep = r_s > c_s[again]  # a repeat squeezed against the period's end is dropped
    again, r_s = again[keep], r_s[keep]
    spare = count - 1 < later
    voided = _at_least(rng, np.flatnonzero(spare), dsc.void_share, 1)
    v_pos = order[voided, count[voided] - 1]
    v_s = cal.business_instants(released[v_pos], released[v_pos] + 1, np.zeros(voided.size),
                                rng.integers(7 * 3600, 21 * 3600, voided.size), offset[voided])
    v_void_s = np.minimum(v_s + rng.integers(_DAY // 2, 10 * _DAY, voided.size), cal.end_s - 1)
    n_left = rng.binomial(count, dsc.unfinished_share)
    left = (rank >= count[:, None]) & (rank < (count + n_left)[:, None]) & (rank < later[:, None])
    x_row = np.nonzero(left)[0]
    x_pos = order[left]
    x_s = cal.business_instants(released[x_pos], released[x_pos] + 1, np.zeros(x_row.size),
                                rng.integers(7 * 3600, 21 * 3600, x_row.size), offset[x_row])

    complete_day = np.where(first_s >= 0, first_s // _DAY - cal.start_day, _NEVER)
    flags = np.zeros(reps, bool)
    training = _Training(
        roll_lo=roll_lo, roll_hi=roll_hi, eligible=eligible, enrolled=lessons > 0, complete_s=first_s,
        complete_day=complete_day, dropout=flags, voided_only=flags, voided_then_real=flags,
        e_learner=who, e_start_s=row_first, e_lesson_hi_s=row_last, e_complete_s=row_first, e_lessons=count,
        e_fail_first=np.zeros(n, bool), e_spurious_s=np.full(n, -1, np.int64), e_void_s=np.full(n, -1, np.int64),
    )
    doses = _Doses(
        win_logit_per_lesson=dsc.win_logit_per_lesson, trend_per_year=dsc.trend_per_year, start_day=cal.start_day,
        lesson_logit=_lesson_logit(dsc, released.size),
        engagement=engagement, released=released, lessons=lessons, first_s=first_s, learner=who, count=count,
        c_learner=who[c_row], c_lesson=c_pos, c_s=c_s, c_dur=c_dur,
        r_learner=who[c_row[again]], r_lesson=c_pos[again], r_s=r_s,
        r_dur=rng.integers(60, 300, again.size),
        x_learner=who[x_row], x_lesson=x_pos, x_s=x_s,
        v_learner=who[voided], v_lesson=v_pos, v_s=v_s, v_void_s=v_void_s,
    )
    return training, doses


def _lesson_logit(dsc: _DoseScenario, n_lessons: int) -> np.ndarray:
    """Each drill's own effect on the log-odds of winning (zero but for the scenario's ``lesson_effects``)."""
    out = np.zeros(n_lessons)
    for drill, logit in dsc.lesson_effects:
        if drill >= n_lessons:
            raise ValueError(f"drill {drill + 1} has an effect, but only {n_lessons} drills are released: simulate "
                             "more months")
        out[drill] = logit
    return out


def _drill_activities(n_lessons: int) -> list[_ActivitySpec]:
    """The sales activities (as in the other scenarios), then the drills' parent and its lessons."""
    program = {"objectType": "Activity", "id": _PROGRAM_ID, "definition": {"name": {"en-US": _PROGRAM}}}
    in_drills = {"parent": [{"objectType": "Activity", "id": _DRILLS_ID}], "grouping": [program]}
    acts = _sales_activities()
    acts.append((_DRILLS_ID, _DRILLS_NAME, "course", {"grouping": [program]}))
    acts += [(_drill_iri(k), f"Daily Drill {k + 1:03d}: {_DRILL_TOPICS[k % len(_DRILL_TOPICS)]}", "lesson",
              in_drills) for k in range(n_lessons)]
    return acts


def _drill_statements(rng: np.random.Generator, d: _Doses, parent: int) -> _Stmts:
    """Statements of the drills: launched then completed (with a duration), repeats, drills left, voids.

    ``parent`` is the activity index of the drills' parent; drill ``k`` is activity ``parent + 1 + k``.
    """
    def done(learner: np.ndarray, lesson: np.ndarray, s: np.ndarray, dur: np.ndarray,
             role: int) -> list[_Stmts]:
        k = learner.size
        act = parent + 1 + lesson
        launched = _Stmts.make(k, learner=learner, verb=_V["launched"], activity=act,
                               ts_ms=(s - dur) * 1000 - rng.integers(2_000, 30_000, k), role=_ROLE_LESSON)
        completed = _Stmts.make(k, learner=learner, verb=_V["completed"], activity=act,
                                ts_ms=s * 1000 + rng.integers(0, 1000, k), completion=1, duration=dur, role=role)
        return [launched, completed]

    parts = done(d.c_learner, d.c_lesson, d.c_s, d.c_dur, _ROLE_COMPLETED)
    parts += done(d.r_learner, d.r_lesson, d.r_s, d.r_dur, _ROLE_LESSON)
    parts.append(_Stmts.make(d.x_learner.size, learner=d.x_learner, verb=_V["launched"],
                             activity=parent + 1 + d.x_lesson,
                             ts_ms=d.x_s * 1000 + rng.integers(0, 1000, d.x_learner.size), role=_ROLE_LESSON))
    nv = d.v_learner.size
    parts.append(_Stmts.make(nv, learner=d.v_learner, verb=_V["completed"], activity=parent + 1 + d.v_lesson,
                             ts_ms=d.v_s * 1000 + rng.integers(0, 1000, nv), completion=1,
                             duration=rng.integers(0, 20, nv), role=_ROLE_SPURIOUS))
    first_spurious = sum(p.learner.size for p in parts[:-1])
    parts.append(_Stmts.make(nv, verb=_V["voided"], ref=first_spurious + np.arange(nv),
                             ts_ms=d.v_void_s * 1000 + rng.integers(0, 1000, nv), role=_ROLE_VOID))
    return _Stmts.concat(parts, shift_refs=False)


def _drill_costs_frame(cal: _Calendar, tr: _Training, lr: _Learners, d: _Doses) -> pl.DataFrame:
    """Build ``costs.csv`` of the drills: production per lesson, app seats per active learner, the rest."""
    reps = tr.eligible.size
    n_rel = d.released.size
    day = cal.start_day
    development = 15_000 + 400.0 * n_rel
    lines: list[_CostLine] = [
        (_PROGRAM, "development", development, day + tr.roll_lo - 60,
         f'Production of {n_rel} daily micro-lessons (vendor "BrightPath Learning", SOW 2024-131)'),
        (_PROGRAM, "platform", 6_000 + 1.5 * lr.n, day + tr.roll_lo - 14,
         "Micro-learning app and LRS connector, annual"),
        (_PROGRAM, "administration", 30_000 * max(1.0, reps / 500) ** 0.5, day + tr.roll_hi,
         "Program management, 0.3 FTE, incl. daily release scheduling"),
        (_PROGRAM, "evaluation", 9_000 + 3.0 * reps, min(day + tr.roll_hi + 90, day + cal.n_days - 1),
         "Evaluation: dose-response analysis, analyst time"),
        _lms_subscription(cal, lr),
    ]
    done_day = d.c_s // _DAY - day
    for month, first, after in cal.months_before(min(tr.roll_hi + 1, cal.n_days)):
        active = np.unique(d.c_learner[(done_day >= first) & (done_day < after)]).size
        if active:
            lines.append((_PROGRAM, "licensing", 6.0 * active, min(day + after - 1, day + cal.n_days - 1),
                          f"App seats, {active} active learners, {month:%B %Y}"))
    return _cost_frame(lines)


_DOSE_DEFINITIONS = {
    "program.course_activity_id": (
        "scenario microlessons: the daily drills' parent activity (…/program/daily-drills). No statement is about "
        "it: every drill names it as its context parent, so it is the drills' course_id in the warehouse. "
        "Completions of the program count from the first drill (the first exposure), not from a course completion"
    ),
    "program.lesson_activity_ids": "the drills, one released per business day of the rollout window",
    "effects.win_logit_per_lesson": (
        "β: each distinct drill completed adds β to the log-odds of winning of the deals its rep creates on later "
        "UTC dates; p(L) = logistic(η0 + β·L)"
    ),
    "effects.deal_size / cycle / ramp_days": "0: lessons change neither amounts nor cycle lengths",
    "trained": (
        "a rep is trained (exposed to the drills) from their first drill: the UTC date of the earliest non-voided "
        "xAPI 'completed' statement on a drill (an activity whose context parent is course_activity_id). "
        "completion_date in truth_trained.csv is that date"
    ),
    "exposed": (
        "an opportunity is exposed when its owner had completed a drill on a UTC date before the UTC date of its "
        "CreatedDate; days_since_completion = created date − the owner's first-drill date"
    ),
    "potential outcomes": (
        "every opportunity draws U ~ Uniform once; won(L) = U < p(L). p0/won0 are at L = 0, p1/won1 at "
        "lessons_before (truth_opportunities.parquet): the drills its owner completed on UTC dates before its "
        "created date, so p1 = p0 when there are none. Observed outcomes are won1; amounts and cycles do not "
        "depend on lessons (amount1 = amount0, cycle1 = cycle0). η0, the untreated log-odds, includes the "
        "owner's own trend (model.dose.trend_per_year)"
    ),
    "lessons": (
        "distinct drills a rep completed: non-voided xAPI 'completed' statements on activities whose context "
        "parent is course_activity_id. A drill completed twice counts once; a drill launched and never completed, "
        "or whose only completion was voided, does not count. truth_doses.csv: user_id, lessons, "
        "first_lesson_date (UTC date of the first, empty without lessons), one row per rep"
    ),
    "dose": (
        "exact dose-response truth over W: the closed, non-deleted opportunities of reps with at least one drill, "
        "created 1..window_days days after the owner's first_lesson_date (the closed opportunities of "
        "truth.windows.180). L_j = lessons_before, K_j = the owner's lessons in total"
    ),
    "dose.ame_per_lesson": (
        "the estimand: average marginal effect of one lesson on the win rate, mean over W of dp/dL at L_j = "
        "β·p1·(1 − p1), in proportion units per lesson (0.002 = 0.2 points per lesson)"
    ),
    "dose.change_per_lesson_completed": (
        "Σ_W (p1 − p0) / Σ_W K_j: the learners' expected change in win rate in the window per lesson they complete "
        "in total; lower than ame_per_lesson because lessons done after a deal do not help it. A regression of "
        "reps' before/after changes on their total lessons, free of selection, targets this"
    ),
    "dose.att_win_rate_expected": "mean over W of p1 − p0: the expected win-rate effect of the lessons on W",
    "dose.mean_lessons_before_deal / mean_lessons_completed_per_deal": "means of L_j and of K_j over W",
    "model.dose.trend_per_year": (
        "η0 includes trend_per_year · engagement · (days since rollout_start) / 365.25 per rep: engaged reps, who "
        "do more lessons, improve without them too"
    ),
    "diagnostics.lessons_skill_correlation / lessons_engagement_correlation": (
        "Pearson correlations over eligible reps of their lessons with skill and engagement: the self-selection"
    ),
    "mess.voided_completions": (
        "drill 'completed' statements cancelled by a 'voided' statement (object StatementRef), each on a drill "
        "its learner never completed otherwise"
    ),
}


def _dose_truth(truth: dict[str, Any], cal: _Calendar, dsc: _DoseScenario, org: _Org, lr: _Learners,
                tr: _Training, d: _Doses, o: _Opps) -> dict[str, Any]:
    """Turn the sales scenarios' truth.json into the drills': program, effects, model, dose, definitions."""
    beta = dsc.win_logit_per_lesson
    w = o.exposed & ~o.deleted & o.closed & (o.days_since <= _PRIMARY_WINDOW)
    p0, p1 = o.p0[w], o.p1[w]
    total = d.lessons[o.owner[w]]
    n = int(w.sum())
    learners = d.lessons > 0
    eligible = tr.eligible
    partners = d.learner >= lr.n_users

    def corr(x: np.ndarray, y: np.ndarray) -> float | None:
        return float(np.corrcoef(x, y)[0, 1]) if x.size > 2 and x.std() > 0 and y.std() > 0 else None

    dose = {
        "estimand": "ame_per_lesson",
        "window_days": _PRIMARY_WINDOW,
        "win_logit_per_lesson": beta,
        "ame_per_lesson": float((beta * p1 * (1 - p1)).mean()) if n else None,
        "change_per_lesson_completed": float((p1 - p0).sum() / total.sum()) if n else None,
        "att_win_rate_expected": float((p1 - p0).mean()) if n else None,
        "opportunities": n,
        "reps": int(np.unique(o.owner[w]).size),
        "mean_lessons_before_deal": float(o.lessons_before[w].mean()) if n else None,
        "mean_lessons_completed_per_deal": float(total.mean()) if n else None,
        "learners": int(learners.sum()),
        "eligible_reps": int(eligible.sum()),
        "lessons_completed": int(d.lessons.sum()),
        "mean_lessons_per_learner": float(d.lessons[learners].mean()) if learners.any() else None,
        "max_lessons": int(d.lessons.max()) if d.lessons.size else 0,
        "lessons_released": int(d.released.size),
        "repeated_completions": int(d.r_learner.size),
        "launched_not_completed": int(d.x_learner.size),
        "partner_learners": int(partners.sum()),
        "file": "truth_doses.csv",
    }
    model = {k: v for k, v in truth["model"].items()
             if k not in ("assignment", "enrol_share", "selection_skill", "timing_skill", "dropout_share")}
    model["dose"] = {
        "engagement_skill": dsc.engagement_skill, "take_share": dsc.take_share,
        "take_engagement": dsc.take_engagement, "lessons_median": dsc.lessons_median,
        "lessons_engagement": dsc.lessons_engagement, "lessons_sigma": dsc.lessons_sigma,
        "max_lessons": dsc.max_lessons, "start_spread": dsc.start_spread,
        "timing_engagement": dsc.timing_engagement, "trend_per_year": dsc.trend_per_year,
        "repeat_share": dsc.repeat_share, "unfinished_share": dsc.unfinished_share,
        "partner_share": dsc.partner_share, "void_share": dsc.void_share,
    }
    trained = truth["trained"]
    definitions = {k: v for k, v in truth["definitions"].items() if not k.startswith("effects.")} | _DOSE_DEFINITIONS
    return truth | {
        "scenario_description": dsc.description,
        "program": truth["program"] | {
            "course_activity_id": _DRILLS_ID,
            "course_title": _DRILLS_NAME,
            "lesson_activity_ids": [_drill_iri(k) for k in range(d.released.size)],
        },
        "effects": {"scale": "log-odds", "win_logit_per_lesson": beta, "deal_size": 0.0, "cycle": 0.0,
                    "ramp_days": 0},
        "model": model,
        "dose": dose,
        "trained": {
            "reps": trained["reps"],
            "eligible_reps": trained["eligible_reps"],
            "partner_learners_trained": int(partners.sum()),
            "by_completion_month": trained["by_completion_month"],
            "file": trained["file"],
            "reps_file": trained["reps_file"],
            "doses_file": "truth_doses.csv",
            "opportunities_file": trained["opportunities_file"],
        },
        "diagnostics": truth["diagnostics"] | {
            "lessons_skill_correlation": corr(d.lessons[eligible], org.skill[eligible]),
            "lessons_engagement_correlation": corr(d.lessons[eligible], d.engagement[eligible]),
        },
        "definitions": definitions | (_LESSON_MAP_DEFINITIONS if dsc.lesson_effects else {}),
        **({"lesson_map": _lesson_map_truth(d, o)} if dsc.lesson_effects else {}),
    }


_LESSON_MAP_DEFINITIONS = {
    "lesson_map": (
        "scenario lesson_map: the lessons with an effect of their own. lessons: every drill's activity id, "
        "win_logit (its effect on the log-odds of winning of the deals created after it, 0 for most), reps (reps "
        "who completed it) and, for those with an effect, ame_win_rate: over its reps' closed, non-deleted deals "
        "created 1 to 180 days after it, the mean of win_logit × p1 × (1 − p1), the average marginal effect of "
        "having done it on the win rate. effective: the ids of the lessons with an effect"
    ),
}


def _lesson_map_truth(d: _Doses, o: _Opps) -> dict[str, Any]:
    """truth.json's ``lesson_map``: each drill's own effect, who did it, and its marginal effect on the win rate."""
    rep = d.c_learner < d.lessons.size
    learner, lesson = d.c_learner[rep], d.c_lesson[rep]
    day = d.c_s[rep] // _DAY - d.start_day
    counted = o.closed & ~o.deleted
    lessons = []
    for k in range(d.released.size):
        who = learner[lesson == k]
        row: dict[str, Any] = {"activity_id": _drill_iri(k), "win_logit": float(d.lesson_logit[k]),
                               "reps": int(who.size)}
        if d.lesson_logit[k] and who.size:
            done = np.full(d.lessons.size, _NEVER, np.int64)
            done[who] = day[lesson == k]
            since = o.created_day - done[o.owner]
            w = counted & (since >= 1) & (since <= _PRIMARY_WINDOW)
            row["ame_win_rate"] = float((d.lesson_logit[k] * o.p1[w] * (1 - o.p1[w])).mean()) if w.any() else None
        lessons.append(row)
    return {"lessons": lessons, "effective": [r["activity_id"] for r in lessons if r["win_logit"]]}


def _dose_frames(cal: _Calendar, org: _Org, d: _Doses, reps_df: pl.DataFrame,
                 opp_df: pl.DataFrame, o: _Opps) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Return truth_reps.csv and truth_opportunities.parquet with the doses, and truth_doses.csv."""
    has = d.first_s >= 0
    doses = pl.DataFrame({
        "user_id": org.user_id.head(org.n_reps),
        "lessons": d.lessons,
        "first_lesson_date": _masked(_dates(np.where(has, d.first_s // _DAY, cal.start_day)), has),
    })
    reps_df = reps_df.with_columns(engagement=pl.Series(np.round(d.engagement, 6)), lessons=pl.Series(d.lessons))
    opp_df = opp_df.with_columns(lessons_before=pl.Series(o.lessons_before))
    return reps_df, opp_df, doses
