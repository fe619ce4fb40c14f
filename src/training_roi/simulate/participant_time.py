"""Participant time: the course's rows of the completion report, and the truth about the time spent.

The sessions (:mod:`training_roi.simulate.sessions`) are the one truth. The completion report
lists some enrolments with ``minutes`` = their time up to the completion (dropouts: all their
time), rounded to whole minutes. ``truth_time.csv`` has, per learner who spent time on the course,
the true time and what the LMS records give by the precedence rule

    sessions (Σ terminated) → completion total (the completed statement's duration)
    → completions.csv minutes → nothing recorded,

and truth.json's ``participant_time`` section the totals, by CRM title and by rung.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from training_roi.simulate.fields import _dates, _masked
from training_roi.simulate.learners import _Learners
from training_roi.simulate.lms import _COMPLETION_SCHEMA
from training_roi.simulate.org import _Org
from training_roi.simulate.period import _DAY
from training_roi.simulate.program import _Course
from training_roi.simulate.sessions import _KINDS, _SESSIONS, _TOTAL, _Sessions
from training_roi.simulate.training import _Training

_RUNGS = ("sessions", "completion_total", "completions_csv", "none")


def _report_minutes(ss: _Sessions) -> np.ndarray:
    """Per enrolment: the minutes the completion report shows (the time up to completion, to the nearest minute)."""
    return np.asarray(np.rint(ss.until_completion_s / 60), dtype=np.int64)


def _course_completions_frame(lr: _Learners, tr: _Training, ss: _Sessions, course: _Course) -> pl.DataFrame:
    """The completion report's rows of the program's course: one per enrolment it lists, with its minutes."""
    who = np.flatnonzero(ss.in_report)
    learner = tr.e_learner[who]
    done = tr.e_complete_s[who] >= 0
    return pl.DataFrame({
        "learner_id": lr.learner_id.gather(learner),
        "learner_email": lr.dir_email.gather(learner),
        "course_id": course.course_id,
        "course_title": course.title,
        "program": course.program,
        "enrolled_at": _dates(tr.e_start_s[who] // _DAY),
        "completed_at": _masked(pl.from_epoch(pl.Series(np.where(done, tr.e_complete_s[who], 0)), time_unit="s")
                                .dt.strftime("%Y-%m-%dT%H:%M:%SZ"), done),
        "score": _masked(pl.Series(ss.pass_raw[who]), done),
        "passed": _masked(pl.Series(np.ones(who.size, bool)), done),
        "minutes": _report_minutes(ss)[who],
    }).cast(_COMPLETION_SCHEMA).sort(["enrolled_at", "learner_id"], maintain_order=True)


def _recorded(tr: _Training, ss: _Sessions) -> tuple[np.ndarray, np.ndarray]:
    """Per enrolment: the rung of the precedence rule that gives its time (index into ``_RUNGS``) and the seconds."""
    completes = tr.e_complete_s >= 0
    report = np.where(ss.in_report, _report_minutes(ss) * 60, 0)
    rung = np.select(
        [ss.kind == _SESSIONS, (ss.kind == _TOTAL) & completes, ss.in_report],
        [0, 1, 2], 3,
    )
    seconds = np.select([rung == 0, rung == 1, rung == 2], [ss.seconds, ss.until_completion_s, report], 0)
    return rung, seconds


def _reported(tr: _Training, ss: _Sessions) -> list[str]:
    """Per enrolment: the record kinds that carry its time, ``;``-separated (empty: none)."""
    completes = tr.e_complete_s >= 0
    flags = (
        ("terminated", ss.kind == _SESSIONS),
        ("experienced", ss.kind == _SESSIONS),
        ("quiz", completes & ((ss.kind == _SESSIONS) | (ss.kind == _TOTAL))),
        ("answered", completes & ((ss.kind == _SESSIONS) | (ss.kind == _TOTAL))),
        ("completed", completes & ((ss.kind == _SESSIONS) | (ss.kind == _TOTAL))),
        ("completions_csv", ss.in_report),
    )
    return [";".join(name for name, on in flags if on[i]) for i in range(ss.kind.size)]


def _time_frame(org: _Org, lr: _Learners, tr: _Training, ss: _Sessions) -> pl.DataFrame:
    """``truth_time.csv``: per learner who spent time on the course, the true and the recorded time."""
    learner = tr.e_learner
    user = lr.user[learner]
    is_user = user >= 0
    rung, recorded = _recorded(tr, ss)
    at = np.maximum(user, 0)
    return pl.DataFrame({
        "learner_id": lr.learner_id.gather(learner),
        "email": lr.dir_email.gather(learner).str.to_lowercase(),
        "user_id": _masked(org.user_id.gather(at), is_user),
        "title": _masked(org.users["Title"].gather(at), is_user),
        "completed": tr.e_complete_s >= 0,
        "tool": pl.Series(_KINDS).gather(ss.kind),
        "reported": pl.Series(_reported(tr, ss), dtype=pl.String),
        "rung": pl.Series(_RUNGS).gather(rung),
        "sessions": ss.sessions,
        "seconds": ss.seconds,
        "minutes": np.round(ss.seconds / 60, 4),
        "seconds_recorded": recorded,
        "minutes_recorded": np.round(recorded / 60, 4),
    }).sort("learner_id")


def _minutes(seconds: int) -> float:
    """Seconds as minutes, to 4 decimals."""
    return round(seconds / 60, 4)


def _totals(df: pl.DataFrame) -> dict[str, Any]:
    """Learners, true and recorded minutes of the rows of ``df`` (truth_time.csv)."""
    return {"learners": df.height, "minutes": _minutes(int(df["seconds"].sum())),
            "minutes_recorded": _minutes(int(df["seconds_recorded"].sum()))}


def _time_truth(df: pl.DataFrame, course: _Course) -> dict[str, Any]:
    """truth.json's ``participant_time``: the true and the recorded minutes, in total, by CRM title and by rung."""
    users = df.filter(pl.col("user_id").is_not_null())
    by_title = {str(g["title"][0]): _totals(g) for g in users.partition_by("title", maintain_order=False)}
    by_rung = {r: _totals(df.filter(pl.col("rung") == r)) for r in _RUNGS}
    return {
        "course_activity_id": course.course_id,
        "file": "truth_time.csv",
        "learners": df.height,
        "completers": int(df["completed"].sum()),
        "seconds": int(df["seconds"].sum()),
        "minutes": _minutes(int(df["seconds"].sum())),
        "minutes_recorded": _minutes(int(df["seconds_recorded"].sum())),
        "sessions": int(df["sessions"].sum()),
        "crm_users": _totals(users),
        "partners": _totals(df.filter(pl.col("user_id").is_null())),
        "by_title": dict(sorted(by_title.items())),
        "by_rung": by_rung,
        "by_tool": {k: _totals(df.filter(pl.col("tool") == k)) for k in _KINDS},
    }


_TIME_DEFINITIONS = {
    "participant_time": (
        "the time learners spent on the program's course (course_activity_id, its lessons and its quiz), in "
        "sessions with true durations, each counted once. Other LMS content is not the course, not even the "
        "kickoff webinar recording grouped under the program. truth_time.csv has one row per learner who "
        "enrolled (reps and partner staff; user_id and the CRM User Title empty for partners); learners without "
        "a row spent no time on it"
    ),
    "participant_time.records": (
        "how the LMS reports a learner's time depends on the tool (truth_time.csv tool): 'sessions': each "
        "session ends with a 'terminated' statement on the course activity whose result.duration is the "
        "session's length; lessons are 'experienced' with their durations, quiz attempts ('passed' / "
        "'failed' on the course) carry theirs and so does each 'answered' question of an attempt (activities "
        "…/quiz/question-<k>, context parent the course): the same time again (Σ terminated = Σ experienced + "
        "Σ quiz attempts = Σ experienced + Σ answered); the course 'completed' statement carries the total of the "
        "sessions up to and including the completing one (a review session after it adds to the sessions, not to "
        "that total). 'completion_total': no session statements; lessons experienced without durations, quiz "
        "attempts and answers with theirs, 'completed' with the total. 'completions_csv': no statement about the "
        "course; the completion "
        "report lists the enrolment. 'none': statements without durations and no report row. "
        "lms/completions.csv lists every 'completions_csv' enrolment and about half of the 'sessions' and "
        "'completion_total' ones (course_id = course_activity_id), minutes = the time up to the completion "
        "(dropouts: all their time) rounded to the nearest whole minute, halves to even"
    ),
    "participant_time.minutes": "Σ of the true time of every learner (seconds / 60, 4 decimals); seconds: exact",
    "participant_time.minutes_recorded": (
        "what the records give, learner by learner, by the precedence rule: the sum of their non-voided "
        "'terminated' durations on the course when there are any (rung 'sessions'), else the duration of their "
        "'completed' statement on the course ('completion_total'), else their completions.csv minutes for the "
        "course ('completions_csv'), else nothing ('none'). It falls short of minutes by the report's rounding "
        "and by the time of learners whose tool recorded none"
    ),
    "participant_time.crm_users / partners / by_title / by_rung / by_tool": (
        "learners, minutes and minutes_recorded of the learners who are CRM users, of partner staff (no CRM "
        "user), per CRM User Title, per rung (truth_time.csv rung) and per tool (truth_time.csv tool)"
    ),
    "truth_time.csv": (
        "per learner: learner_id, email (lower case), user_id and title (CRM), completed (the course), tool, "
        "reported (the record kinds that carry their time: terminated, experienced, quiz, answered, completed, "
        "completions_csv), rung, sessions, seconds and minutes (true), seconds_recorded and minutes_recorded"
    ),
}
