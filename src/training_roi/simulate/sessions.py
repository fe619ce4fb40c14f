"""The time learners spend on the program's course: sessions, and the xAPI that reports them.

Every enrolment of the sales scenarios' course (reps and partner staff) is a sequence of
sessions with true durations, drawn once (:func:`_draw_sessions`) from a stream of its own:

* the lessons done (all six for a completer, fewer for a dropout) fall into sessions of one to
  a few consecutive lessons, back to back, each lesson lasting 4 to 15 minutes; sessions do not
  overlap and the lessons' sessions end before ``lesson_hi``;
* a completer who failed the quiz once took it in a session of its own about a day before
  completing; the completing session is the passed quiz attempt, ending at the completion instant;
* some completers come back for one review session (a lesson again) after completing.

A session's length is the sum of what it holds: its lessons and its quiz attempts. How the LMS
reports the time depends on the tool the learner took the course through (``_KINDS``):

* ``sessions``: a cmi5-style course. Each session starts with ``launched`` and ``initialized``
  and ends with ``terminated`` on the course activity, whose ``result.duration`` is the session's
  length; each lesson is ``experienced`` with its own duration (the same time again); quiz
  attempts are ``passed`` / ``failed`` on the course with the attempt's duration, and each of
  their questions is ``answered`` with its own (the same time again, twice); the course
  ``completed`` statement carries the total of the sessions up to and including the completing
  one;
* ``completion_total``: a tool that sends no sessions: lessons ``experienced`` without a duration,
  quiz attempts and their questions with theirs, and the course ``completed`` with the total time;
* ``completions_csv``: no xAPI at all about the course; the completion report lists the enrolment;
* ``none``: statements without any duration (lessons, quiz, the completion): nothing recorded.

The completion report (``lms/completions.csv``) also lists about half of the xAPI enrolments of
the first two kinds, with ``minutes`` = the same total rounded to whole minutes
(:mod:`training_roi.simulate.participant_time`). Enrolments with a voided completion are of kind
``sessions`` (the voiding is xAPI).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training_roi.simulate.draws import _at_least, _stream
from training_roi.simulate.learners import _Learners
from training_roi.simulate.period import _DAY, _Calendar
from training_roi.simulate.program import _LESSONS, _Course
from training_roi.simulate.statements import (
    _ROLE_COMPLETED,
    _ROLE_LESSON,
    _ROLE_QUIZ,
    _ROLE_SPURIOUS,
    _ROLE_VOID,
    _V,
    _ActivitySpec,
    _Stmts,
)
from training_roi.simulate.training import _Training

_KINDS = ("sessions", "completion_total", "completions_csv", "none")
_SESSIONS, _TOTAL, _REPORT_ONLY, _NONE = range(len(_KINDS))
_KIND_SHARE = ((_REPORT_ONLY, 0.10), (_TOTAL, 0.14), (_NONE, 0.06))  # of the enrolments; the rest: sessions
_ALSO_IN_REPORT = 0.5  # xAPI enrolments (sessions, completion_total) the completion report lists too
_NEW_SESSION = 0.55  # chance that a lesson after the first starts a new session
_REVISIT_SHARE = 0.10  # completers of kind sessions who come back for a review session
_GAP = 600  # seconds at least between two sessions of one learner
_QUESTIONS = 5  # questions of the course's quiz, each answered in every attempt
_MIN_ANSWER = 30  # seconds at least on a question


@dataclass
class _Sessions:
    """The course's sessions: per enrolment (as :class:`_Training`'s), per session, lesson and quiz attempt."""

    kind: np.ndarray  # per enrolment: index into _KINDS
    in_report: np.ndarray  # per enrolment: listed in lms/completions.csv
    until_completion_s: np.ndarray  # seconds of the sessions up to the completion (dropouts: all of them)
    seconds: np.ndarray  # seconds of all sessions: the true time
    sessions: np.ndarray  # number of sessions
    pass_raw: np.ndarray  # score of the passed quiz (completers)
    s_enrol: np.ndarray  # per session: enrolment
    s_start: np.ndarray  # UTC epoch seconds
    s_len: np.ndarray  # seconds
    l_enrol: np.ndarray  # per lesson played: enrolment
    l_lesson: np.ndarray  # lesson index (0-based)
    l_end: np.ndarray  # UTC epoch seconds it ended
    l_dur: np.ndarray  # seconds
    l_review: np.ndarray  # played again in a review session (no lesson completion)
    q_enrol: np.ndarray  # per quiz attempt: enrolment
    q_end: np.ndarray  # UTC epoch seconds
    q_dur: np.ndarray
    q_raw: np.ndarray
    q_passed: np.ndarray
    a_attempt: np.ndarray  # per question answered: quiz attempt (index into q_*)
    a_question: np.ndarray  # question index (0-based)
    a_end: np.ndarray  # UTC epoch seconds
    a_dur: np.ndarray  # seconds; an attempt's questions add up to its duration
    a_correct: np.ndarray


def _groups(enrol: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per item: the sum of ``values`` over the items before it with the same ``enrol`` (items sorted by it)."""
    total = np.cumsum(values) - values
    first = np.searchsorted(enrol, enrol)
    return np.asarray(total - total[first], dtype=np.int64)


def _draw_sessions(cal: _Calendar, lr: _Learners, tr: _Training, seed: int) -> _Sessions:
    """Draw every enrolment's sessions, lessons and quiz attempts, and the tool that reports them."""
    rng = _stream(seed, "sessions")
    ne, nl = tr.e_learner.size, len(_LESSONS)
    dur = rng.integers(240, 900, (ne, nl))
    done = np.arange(nl)[None, :] < tr.e_lessons[:, None]
    brk = (rng.random((ne, nl)) < _NEW_SESSION) | (np.arange(nl)[None, :] == 0)
    frac = np.sort(rng.random((ne, nl)), axis=1)
    frac[:, 0] = 0.0
    q_fail_dur, q_pass_dur = rng.integers(300, 900, ne), rng.integers(300, 900, ne)
    fail_raw, pass_raw = rng.integers(40, 70, ne), rng.integers(70, 101, ne)
    fail_before = rng.integers(20 * 3600, 28 * 3600, ne)
    u_revisit, revisit_after = rng.random(ne), rng.integers(_DAY, 60 * _DAY, ne)
    review_lesson, review_dur = rng.integers(0, nl, ne), rng.integers(120, 600, ne)
    u_report = rng.random(ne)
    kind = np.full(ne, _SESSIONS, np.int64)
    completes = tr.e_complete_s >= 0
    clean = tr.e_spurious_s < 0
    for pool, minimum in ((np.flatnonzero(completes & clean), 1), (np.flatnonzero(~completes & clean), 0)):
        for k, share in _KIND_SHARE:
            chosen = _at_least(rng, pool, share, minimum if pool.size >= 8 else 0)
            kind[chosen] = k
            pool = np.setdiff1d(pool, chosen)

    # Lesson sessions: lessons back to back, sessions in order with at least _GAP between them.
    e_of, j_of = np.nonzero(done)
    l_dur = dur[e_of, j_of]
    sess_local = (np.cumsum(brk & done, axis=1) - 1)[e_of, j_of]
    n_lsess = (brk & done).sum(axis=1)
    first_sess = np.concatenate([[0], np.cumsum(n_lsess)[:-1]])
    l_sess = first_sess[e_of] + sess_local
    s_enrol = np.repeat(np.arange(ne), n_lsess)
    s_len = np.bincount(l_sess, weights=l_dur, minlength=s_enrol.size).astype(np.int64)
    s_pos = np.arange(s_enrol.size) - first_sess[s_enrol]
    busy = np.bincount(s_enrol, weights=s_len + _GAP, minlength=ne).astype(np.int64)
    avail = np.maximum(tr.e_lesson_hi_s - tr.e_start_s - busy, 0)
    s_start = (tr.e_start_s[s_enrol] + np.floor(frac[s_enrol, s_pos] * avail[s_enrol]).astype(np.int64)
               + _groups(s_enrol, s_len + _GAP))
    l_end = s_start[l_sess] + _groups(l_sess, l_dur) + l_dur
    last_end = np.zeros(ne, np.int64)
    np.maximum.at(last_end, s_enrol, s_start + s_len)

    # Quiz sessions of completers: a failed attempt about a day before, the passed one completing the course.
    comp = np.flatnonzero(completes)
    fail = comp[tr.e_fail_first[comp]]
    f_end = np.maximum(tr.e_complete_s[fail] - fail_before[fail], last_end[fail] + _GAP + q_fail_dur[fail])
    p_end = tr.e_complete_s[comp]
    # Review sessions after the completion, before the period's end and the learner's last day.
    until = np.minimum(cal.end_s - 2 * 3600, (cal.start_day + lr.leave_day[tr.e_learner] - 1) * _DAY)
    r_start = tr.e_complete_s + revisit_after
    rev = np.flatnonzero(completes & (kind == _SESSIONS) & (u_revisit < _REVISIT_SHARE)
                         & (r_start + review_dur < until))
    r_dur = review_dur[rev]

    q_enrol = np.concatenate([fail, comp])
    q_dur = np.concatenate([q_fail_dur[fail], q_pass_dur[comp]])
    parts_enrol = np.concatenate([s_enrol, fail, comp, rev])
    parts_start = np.concatenate([s_start, f_end - q_fail_dur[fail], p_end - q_pass_dur[comp], r_start[rev]])
    parts_len = np.concatenate([s_len, q_fail_dur[fail], q_pass_dur[comp], r_dur])
    review = np.concatenate([np.zeros(parts_enrol.size - rev.size, bool), np.ones(rev.size, bool)])
    order = np.lexsort((parts_start, parts_enrol))
    # Each attempt's questions, back to back: their durations add up to the attempt's.
    q_end = np.concatenate([f_end, p_end])
    q_raw = np.concatenate([fail_raw[fail], pass_raw[comp]])
    cuts = np.sort(rng.integers(0, q_dur[:, None] - _QUESTIONS * _MIN_ANSWER + 1, (q_dur.size, _QUESTIONS - 1)), axis=1)
    bounds = np.concatenate([np.zeros((q_dur.size, 1), np.int64), cuts,
                             (q_dur - _QUESTIONS * _MIN_ANSWER)[:, None]], axis=1)
    a_dur = np.diff(bounds, axis=1) + _MIN_ANSWER
    a_end = (q_end - q_dur)[:, None] + np.cumsum(a_dur, axis=1)
    a_correct = rng.random((q_dur.size, _QUESTIONS)) < q_raw[:, None] / 100
    seconds = np.bincount(parts_enrol, weights=parts_len, minlength=ne).astype(np.int64)
    until_completion = seconds - np.bincount(parts_enrol[review], weights=parts_len[review],
                                             minlength=ne).astype(np.int64)
    return _Sessions(
        kind=kind,
        in_report=(kind == _REPORT_ONLY) | ((kind <= _TOTAL) & (u_report < _ALSO_IN_REPORT)),
        until_completion_s=until_completion, seconds=seconds,
        sessions=np.bincount(parts_enrol, minlength=ne), pass_raw=pass_raw,
        s_enrol=parts_enrol[order], s_start=parts_start[order], s_len=parts_len[order],
        l_enrol=np.concatenate([e_of, rev]), l_lesson=np.concatenate([j_of, review_lesson[rev]]),
        l_end=np.concatenate([l_end, r_start[rev] + r_dur]), l_dur=np.concatenate([l_dur, r_dur]),
        l_review=np.concatenate([np.zeros(e_of.size, bool), np.ones(rev.size, bool)]),
        q_enrol=q_enrol, q_end=q_end, q_dur=q_dur, q_raw=q_raw,
        q_passed=np.concatenate([np.zeros(fail.size, bool), np.ones(comp.size, bool)]),
        a_attempt=np.repeat(np.arange(q_dur.size), _QUESTIONS), a_question=np.tile(np.arange(_QUESTIONS), q_dur.size),
        a_end=a_end.ravel(), a_dur=a_dur.ravel(), a_correct=a_correct.ravel(),
    )


def _question_activities(course: _Course) -> list[_ActivitySpec]:
    """The questions of the course's quiz as activities (their context parent: the course)."""
    parent = {"parent": [{"objectType": "Activity", "id": course.course_id}],
              "grouping": [{"objectType": "Activity", "id": course.program_id, "definition": {
                  "name": {"en-US": course.program}}}]}
    return [(f"{course.course_id}/quiz/question-{k + 1}", f"{course.title}: Quiz, Question {k + 1}", "question",
             parent) for k in range(_QUESTIONS)]


def _session_statements(rng: np.random.Generator, *, tr: _Training, ss: _Sessions, questions: int) -> _Stmts:
    """The course's statements (activity 0, lessons 1…) as each enrolment's tool reports its sessions.

    ``questions`` is the activity index of the quiz's first question (:func:`_question_activities`).

    Millisecond offsets order the statements of one instant: a session's last lesson or quiz
    attempt, then the course completion, then ``terminated``.
    """
    kind = ss.kind
    xapi = kind != _REPORT_ONLY
    timed = kind == _SESSIONS

    def ms(seconds: np.ndarray, lo: int, hi: int) -> np.ndarray:
        return np.asarray(seconds * 1000 + rng.integers(lo, hi, seconds.size), dtype=np.int64)

    s = timed[ss.s_enrol]
    s_enrol, s_start, s_len = ss.s_enrol[s], ss.s_start[s], ss.s_len[s]
    launched = _Stmts.make(s_enrol.size, learner=tr.e_learner[s_enrol], verb=_V["launched"], activity=0,
                           reg=s_enrol, ts_ms=ms(s_start, 0, 100), role=_ROLE_LESSON)
    initialized = _Stmts.make(s_enrol.size, learner=tr.e_learner[s_enrol], verb=_V["initialized"], activity=0,
                              reg=s_enrol, ts_ms=ms(s_start, 100, 200), role=_ROLE_LESSON)
    terminated = _Stmts.make(s_enrol.size, learner=tr.e_learner[s_enrol], verb=_V["terminated"], activity=0,
                             reg=s_enrol, ts_ms=ms(s_start + s_len, 600, 1000), duration=s_len, role=_ROLE_LESSON)
    lo = xapi[ss.l_enrol]
    l_enrol = ss.l_enrol[lo]
    experienced = _Stmts.make(
        l_enrol.size, learner=tr.e_learner[l_enrol], verb=_V["experienced"], activity=1 + ss.l_lesson[lo],
        reg=l_enrol, ts_ms=ms(ss.l_end[lo], 0, 300), duration=np.where(timed[l_enrol], ss.l_dur[lo], -1),
        role=_ROLE_LESSON,
    )
    lc = lo & ~ss.l_review
    lesson_done = _Stmts.make(
        int(lc.sum()), learner=tr.e_learner[ss.l_enrol[lc]], verb=_V["completed"], activity=1 + ss.l_lesson[lc],
        reg=ss.l_enrol[lc], ts_ms=ms(ss.l_end[lc], 300, 600), completion=1, role=_ROLE_LESSON,
    )
    q = xapi[ss.q_enrol]
    q_enrol = ss.q_enrol[q]
    quiz = _Stmts.make(
        q_enrol.size, learner=tr.e_learner[q_enrol], verb=np.where(ss.q_passed[q], _V["passed"], _V["failed"]),
        activity=0, reg=q_enrol, ts_ms=ms(ss.q_end[q], 0, 300), raw=ss.q_raw[q],
        success=ss.q_passed[q].astype(np.int64), duration=np.where(kind[q_enrol] != _NONE, ss.q_dur[q], -1),
        role=_ROLE_QUIZ,
    )
    a = xapi[ss.q_enrol[ss.a_attempt]]
    a_enrol = ss.q_enrol[ss.a_attempt[a]]
    answered = _Stmts.make(
        a_enrol.size, learner=tr.e_learner[a_enrol], verb=_V["answered"], activity=questions + ss.a_question[a],
        reg=a_enrol, ts_ms=ss.a_end[a] * 1000 - rng.integers(1, 300, a_enrol.size),
        success=ss.a_correct[a].astype(np.int64), duration=np.where(kind[a_enrol] != _NONE, ss.a_dur[a], -1),
        role=_ROLE_QUIZ,
    )
    comp = np.flatnonzero((tr.e_complete_s >= 0) & xapi)
    completed = _Stmts.make(
        comp.size, learner=tr.e_learner[comp], verb=_V["completed"], activity=0, reg=comp,
        ts_ms=ms(tr.e_complete_s[comp], 300, 600), completion=1,
        duration=np.where(kind[comp] != _NONE, ss.until_completion_s[comp], -1), role=_ROLE_COMPLETED,
    )
    bad = np.flatnonzero(tr.e_spurious_s >= 0)
    spurious = _Stmts.make(
        bad.size, learner=tr.e_learner[bad], verb=_V["completed"], activity=0, reg=bad,
        ts_ms=tr.e_spurious_s[bad] * 1000 + rng.integers(0, 1000, bad.size), completion=1,
        duration=rng.integers(0, 60, bad.size), role=_ROLE_SPURIOUS,
    )
    parts = [launched, initialized, terminated, experienced, lesson_done, quiz, answered, completed, spurious]
    first_spurious = sum(p.learner.size for p in parts) - bad.size
    voids = _Stmts.make(
        bad.size, verb=_V["voided"], ref=first_spurious + np.arange(bad.size),
        ts_ms=tr.e_void_s[bad] * 1000 + rng.integers(0, 1000, bad.size), role=_ROLE_VOID,
    )
    return _Stmts.concat([*parts, voids], shift_refs=False)
