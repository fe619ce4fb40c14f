"""The LMS files of the sales scenarios: ``lms/statements.jsonl`` and ``lms/completions.csv``.

The statements are the program's course, everyday use of other content (videos, modules,
quizzes) and a few teams recorded as Group actors at a live kickoff; the completion report is a
yearly compliance course that every employee takes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import orjson
import polars as pl

from training_roi.simulate.draws import _stream
from training_roi.simulate.fields import _dates, _masked, _uuid4
from training_roi.simulate.learners import _Learners
from training_roi.simulate.org import _Org
from training_roi.simulate.period import _DAY, _add_months, _Calendar
from training_roi.simulate.program import _ACT, _LESSONS, _LMS_HOME, _PROGRAM, _PROGRAM_ID, _SALES_COURSE, _Course
from training_roi.simulate.statements import (
    _ADMIN_ACTOR,
    _ROLE_GROUP,
    _ROLE_OTHER,
    _V,
    _ActivitySpec,
    _agents,
    _LmsCounts,
    _program_statements,
    _Stmts,
    _time_zones,
    _write_lines,
)
from training_roi.simulate.training import _Training

# Other activities: (slug, title, kind, weight). The webinar belongs to the program (grouping)
# but is not the course: watching it is not completing the program.
_OTHER_ACTIVITIES = (
    ("product-aurora", 'Product Update: "Aurora" Release', "video", 3.0),
    ("pricing-2025", "Pricing & Packaging 2025", "module", 2.0),
    ("crm-basics", "CRM Basics: Logging Activities", "module", 2.0),
    ("security-awareness", "Security Awareness", "module", 2.0),
    ("negociation-fr", "Négociation avancée (FR)", "video", 0.5),
    ("demo-skills", "Running a Great Demo", "video", 2.0),
    ("competitor-intel", "Competitor Intelligence, Q3", "video", 2.0),
    ("product-quiz", "Product Knowledge Check", "quiz", 2.0),
    ("gdpr-sales", "GDPR for Sales Teams", "quiz", 1.0),
    ("time-management", "Time Management for Busy Sellers", "video", 1.0),
    ("se-kickoff-webinar", "Sales Excellence Kickoff Webinar (recording)", "video", 1.5),
    ("sales-kickoff-live", "Regional Sales Kickoff (live session)", "live", 0.0),
)
_N_PROGRAM_ACTIVITIES = 1 + len(_LESSONS)  # the course, then its lessons
_WEBINAR = _N_PROGRAM_ACTIVITIES + 10
_KICKOFF = _N_PROGRAM_ACTIVITIES + 11


def _other_statements(rng: np.random.Generator, cal: _Calendar, lr: _Learners) -> _Stmts:
    """Everyday LMS use outside the program: videos, modules and quizzes on other activities."""
    lo = np.clip(lr.hire_day, 0, cal.n_days)
    hi = np.clip(lr.leave_day, 0, cal.n_days)
    rate = np.where(lr.in_directory, 0.88, 2.0)  # events per month: ~52 statements per rep in 24 months
    n_ev = rng.poisson(rate * np.maximum(hi - lo, 0) / 30.4375)
    who = np.repeat(np.arange(lr.n), n_ev)
    ne = who.size
    ts = cal.business_instants(lo[who], hi[who], rng.random(ne), rng.integers(8 * 3600, 20 * 3600, ne),
                               lr.offset_min[who])
    weights = np.array([w for *_, w in _OTHER_ACTIVITIES])
    act = rng.choice(len(_OTHER_ACTIVITIES), size=ne, p=weights / weights.sum())
    kinds = np.array([{"video": 0, "module": 1, "quiz": 2, "live": 0}[k] for _, _, k, _ in _OTHER_ACTIVITIES])[act]
    per = np.where(kinds == 0, 1, 2)
    ev = np.repeat(np.arange(ne), per)
    pos = np.arange(ev.size) - np.repeat(np.cumsum(per) - per, per)
    k = kinds[ev]
    dur = rng.integers(90, 1500, ne)[ev]
    raw = rng.integers(40, 101, ne)[ev]
    verb = np.select(
        [k == 0, (k == 1) & (pos == 0), (k == 1) & (pos == 1), (k == 2) & (pos == 0)],
        [_V["experienced"], _V["launched"], _V["completed"], _V["completed"]],
        np.where(raw >= 70, _V["passed"], _V["failed"]),
    )
    is_quiz_result = (k == 2) & (pos == 1)
    return _Stmts.make(
        ev.size, learner=who[ev], verb=verb, activity=_N_PROGRAM_ACTIVITIES + act[ev],
        ts_ms=(ts[ev] + pos * dur) * 1000 + rng.integers(0, 1000, ev.size),
        completion=np.where((verb == _V["completed"]), 1, -1),
        duration=np.where(is_quiz_result | (verb == _V["launched"]), -1, dur),
        raw=np.where(is_quiz_result, raw, -1), success=np.where(is_quiz_result, (raw >= 70).astype(np.int64), -1),
        role=_ROLE_OTHER,
    )


def _group_statements(rng: np.random.Generator, cal: _Calendar, org: _Org, lr: _Learners) -> tuple[_Stmts, list[str]]:
    """A few Group actors: whole teams attending a live kickoff, recorded once per team."""
    managers = np.flatnonzero(org.kind == 1)
    n_groups = min(managers.size, max(2, org.n_reps // 400))
    chosen = np.sort(rng.choice(managers, size=n_groups, replace=False)) if n_groups else managers[:0]
    names = lr.name.to_list()
    mbox = lr.mbox_email.to_list()
    actors = []
    for g, m in enumerate(chosen.tolist()):
        team = np.flatnonzero(org.manager[: org.n_reps] == m)[:6]
        members = [{"objectType": "Agent", "name": names[i], "mbox": f"mailto:{mbox[i]}"} for i in team.tolist()]
        actors.append(orjson.dumps({"objectType": "Group", "name": f"Team {names[m]} ({g + 1})",
                                    "member": members}).decode())
    day = np.full(len(actors), cal.day_at(0.1))
    ts = cal.business_instants(day, day + 5, rng.random(len(actors)), np.full(len(actors), 15 * 3600),
                               np.zeros(len(actors), np.int64))
    st = _Stmts.make(len(actors), group=np.arange(len(actors)), verb=_V["experienced"], activity=_KICKOFF,
                     ts_ms=ts * 1000, duration=5400, role=_ROLE_GROUP)
    return st, actors


def _sales_activities(course: _Course = _SALES_COURSE) -> list[_ActivitySpec]:
    """The program's course (Sales Excellence's by default), its lessons, then the other activities, in index order."""
    sales = {"objectType": "Activity", "id": _PROGRAM_ID,
             "definition": {"name": {"en-US": _PROGRAM}}}
    program = {"objectType": "Activity", "id": course.program_id, "definition": {"name": {"en-US": course.program}}}
    course_ref = {"objectType": "Activity", "id": course.course_id}
    acts: list[_ActivitySpec] = [(course.course_id, course.title, "course", {"grouping": [program]})]
    for slug, title in course.lessons:
        acts.append((f"{course.course_id}/lesson/{slug}", title, "lesson",
                     {"parent": [course_ref], "grouping": [program]}))
    for i, (slug, title, kind, _) in enumerate(_OTHER_ACTIVITIES):
        ctx_acts = {"grouping": [sales]} if _N_PROGRAM_ACTIVITIES + i == _WEBINAR else {}
        acts.append((f"{_ACT}/{kind}/{slug}", title, kind, ctx_acts))
    return acts


def _write_statements(path: Path, cal: _Calendar, org: _Org, lr: _Learners, tr: _Training, seed: int,
                      report: Callable[[str, float], None], *,
                      program: Callable[[np.random.Generator], _Stmts] | None = None,
                      activities: list[_ActivitySpec] | None = None) -> _LmsCounts:
    """Write ``lms/statements.jsonl``: every statement rendered as one JSON line, plus the mess.

    Lines are rendered in chunks with vectorised string operations: JSON fragments that repeat
    (actors, verbs, activities, contexts) are encoded once with orjson and spliced in per line.
    ``program`` draws the program's statements (the Sales Excellence course's by default) and
    ``activities`` lists what their activity indices mean (the sales activities by default).
    """
    rng = _stream(seed, "statements")
    group_part, group_actors = _group_statements(rng, cal, org, lr)
    program_part = _program_statements(rng, tr) if program is None else program(rng)
    st = _Stmts.concat([program_part, _other_statements(rng, cal, lr), group_part])
    n = st.learner.size
    ids = _uuid4(rng, n)
    regs = _uuid4(rng, max(1, tr.e_learner.size))

    # Actor of each statement: index into [mbox actors, account actors, groups, administrator].
    actor_json = [*_agents(lr.name.to_list(), lr.mbox_email.to_list(), lr.learner_id.to_list(), _LMS_HOME),
                  *group_actors, orjson.dumps(_ADMIN_ACTOR).decode()]
    learner = np.maximum(st.learner, 0)
    by_account = lr.account_always[learner] | (rng.random(n) < 0.03)
    actor = np.where(st.learner >= 0, learner + lr.n * by_account,
                     np.where(st.group >= 0, 2 * lr.n + st.group, 2 * lr.n + len(group_actors)))
    # Time zones: most statements in the learner's own offset, some normalised to Z by the LMS.
    offset = np.where(st.learner >= 0, lr.offset_min[learner], 0)
    as_z = (st.learner < 0) | (rng.random(n) < 0.3) | ((offset == 0) & (rng.random(n) < 0.5))
    tz, suffixes, local_ms = _time_zones(st, lr.offset_min, offset, as_z)
    written = _write_lines(path, rng, cal, st, ids=ids, regs=regs, actor_json=actor_json, actor=actor, tz=tz,
                           suffixes=suffixes, local_ms=local_ms, activities=activities or _sales_activities(),
                           report=report)
    valid = written.keep
    learner_valid = st.learner[valid] >= 0
    acc = learner_valid & by_account[valid]
    return _LmsCounts.of(
        written, st, tz,
        account_actor_statements=int(acc.sum()),
        account_actor_unknown_learner_statements=int((acc & ~lr.in_directory[learner[valid]]).sum()),
        mixed_case_email_statements=int((learner_valid & ~by_account[valid] & lr.mixed_mbox[learner[valid]]).sum()),
        group_actor_statements=int((st.group[valid] >= 0).sum()),
    )


def _completions_frame(cal: _Calendar, lr: _Learners, seed: int) -> pl.DataFrame:
    """Build ``lms/completions.csv``: a yearly compliance course every employee must take."""
    rng = _stream(seed, "completions")
    frames = []
    for k in range(0, cal._months() // 12 + 1):
        day = (_add_months(cal.start, 1 + 12 * k) - cal.start).days
        if day >= cal.n_days - 30:
            break
        who = np.flatnonzero((lr.user >= 0) & (lr.hire_day <= day) & (lr.leave_day > day))
        n = who.size
        year = (cal.start + (_add_months(cal.start, 1 + 12 * k) - cal.start)).year
        enrolled_s = (cal.start_day + day) * _DAY + rng.integers(7 * 3600, 10 * 3600, n)
        completed_s = enrolled_s + rng.integers(3600, 40 * _DAY, n)
        done = (rng.random(n) < 0.92) & (completed_s < cal.end_s)
        score = rng.integers(55, 101, n)
        frames.append(pl.DataFrame({
            "learner_id": lr.learner_id.gather(who),
            "learner_email": lr.dir_email.gather(who),
            "course_id": f"CMP-COC-{year}",
            "course_title": f"Code of Conduct & Anti-Bribery {year}",
            "program": "Compliance",
            "enrolled_at": _dates(enrolled_s // _DAY),
            "completed_at": _masked(
                pl.from_epoch(pl.Series(completed_s), time_unit="s").dt.strftime("%Y-%m-%dT%H:%M:%SZ"), done),
            "score": _masked(pl.Series(score), done),
            "passed": _masked(pl.Series(score >= 70), done),
            "minutes": np.where(done, rng.integers(20, 56, n), rng.integers(0, 20, n)),
        }).cast(_COMPLETION_SCHEMA))
    return pl.concat(frames)


_COMPLETION_SCHEMA = pl.Schema({
    "learner_id": pl.String(), "learner_email": pl.String(), "course_id": pl.String(),
    "course_title": pl.String(), "program": pl.String(), "enrolled_at": pl.Date(),
    "completed_at": pl.String(), "score": pl.Int64(), "passed": pl.Boolean(), "minutes": pl.Int64(),
})
