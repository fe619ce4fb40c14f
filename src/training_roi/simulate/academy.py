"""Scenario ``customer``'s academy: who at the customers takes the course, and the LMS files that record it.

The vendor's academy teaches the product to the customers' people. Bigger, more engaged accounts
adopt the course more often and earlier; a champion enrols first, colleagues follow. Some take the
live virtual class (in the completion report only), the others the online course (in xAPI). Also
the academy's directory, surveys and costs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson
import polars as pl

from training_roi.simulate.costs import _cost_frame, _CostLine
from training_roi.simulate.customer_accounts import _Customers
from training_roi.simulate.draws import _at_least, _enrol_intercept, _flag, _logistic, _stream
from training_roi.simulate.fields import _dates, _masked, _mixed_case, _uuid4
from training_roi.simulate.lms import _COMPLETION_SCHEMA
from training_roi.simulate.org import _Org
from training_roi.simulate.period import _DAY, _NEVER, _Calendar
from training_roi.simulate.scenarios import _CustomerScenario
from training_roi.simulate.statements import (
    _ADMIN_ACTOR,
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
from training_roi.simulate.surveys import _SURVEY_SCHEMA
from training_roi.simulate.training import _enrolment_progress, _Training

_ACADEMY = "Customer Academy"
_ACADEMY_HOME = "https://academy.example.com"
_ACADEMY_ACT = f"{_ACADEMY_HOME}/xapi/activities"
_ACADEMY_PROGRAM_ID = f"{_ACADEMY_ACT}/program/customer-academy"
_ACADEMY_COURSE_ID = f"{_ACADEMY_ACT}/course/platform-essentials"
_ACADEMY_COURSE_NAME = "Platform Essentials"
_ACADEMY_LESSONS = (
    ("01-workspace", "Setting Up Your Workspace"),
    ("02-data", "Importing and Cleaning Your Data"),
    ("03-automation", "Automations and Workflows"),
    ("04-reports", "Reports and Dashboards"),
    ("05-permissions", "Users, Roles and Permissions"),
    ("06-adoption", "Driving Adoption in Your Team"),
)
_ACADEMY_ASSESSMENT = 1 + len(_ACADEMY_LESSONS)  # activity index of the course's final assessment
# Academy content outside the course: (slug, title, kind). Finishing a module is not the course.
_ACADEMY_OTHER = (
    ("whats-new-aurora", 'What\'s New in "Aurora"', "video"),
    ("automation-office-hours", "Automation Office Hours (recording)", "video"),
    ("admin-tips", "Ten Tips for Admins", "module"),
    ("api-getting-started", "Getting Started with the API", "module"),
    ("community-live", "Customer Community Live, Q2", "video"),
)
# Who at the customers enrols, how, and who only browses.
_CS_ENROL_SHARE = 0.55  # contacts of an adopting account who enrol (its champion always does)
_CS_STRAY_ENROL = 0.03  # contacts of other accounts who enrol, and drop out
_CS_LIVE_SHARE = 0.25  # enrolments in the live virtual class (completion report only, no xAPI)
_CS_DROPOUT = 0.12  # enrolments of adopting accounts that are never completed
_CS_BROWSE_SHARE = 0.10  # contacts who use other academy content but never enrol in the course
_CS_OUTSIDER_BROWSE = 0.3  # outsiders (colleagues the CRM does not know) who use academy content


@dataclass
class _Academy:
    """The academy's roll-out: who enrols and completes, each account's training, the learners."""

    roll_lo: int  # day index the course launched
    roll_hi: int  # day index after which no one completes it
    adopted: np.ndarray  # per account: its people take the course
    train_s: np.ndarray  # per account: instant of its first contact's completion, -1 if none
    train_day: np.ndarray  # per account: UTC day index of it, _NEVER if none
    learners: np.ndarray  # per account: its contacts who completed the course
    enrolled: np.ndarray  # per person
    live: np.ndarray  # per person: in the live virtual class rather than the online course
    start_s: np.ndarray  # per person: enrolment instant (meaningful only when enrolled)
    complete_s: np.ndarray  # per person: instant of the course completion, -1 if none
    voided_only: np.ndarray  # per person: dropout whose only (spurious) completion was voided
    voided_then_real: np.ndarray  # per person: a spurious completion voided, then a real one
    person: np.ndarray  # per learner: person index
    learner_of: np.ndarray  # per person: learner index, -1 if not in the academy
    learner_id: pl.Series  # per learner
    name: pl.Series
    company: pl.Series
    title: pl.Series
    dir_email: pl.Series  # as written in learners.csv and completions.csv (some mixed case)
    mbox_email: pl.Series  # as written in statements (some mixed case)
    signup_day: np.ndarray
    offset_min: np.ndarray
    by_account: np.ndarray  # identified in statements only by the academy account (learner id)
    mixed_mbox: np.ndarray
    mixed_dir: np.ndarray
    online: _Training  # the online enrolments in the statement writer's terms (e_learner: learner index)


def _assign_academy(cal: _Calendar, org: _Org, cu: _Customers, sc: _CustomerScenario, seed: int) -> _Academy:
    """Decide which accounts take the course, who at them enrols and completes, and when.

    Bigger and more engaged accounts adopt the course more often and earlier; each adopting
    account has a champion who enrols, colleagues follow after the champion.
    """
    rng = _stream(seed, "academy")
    n_acc = cu.engagement.size
    n_p = cu.person_account.size
    roll_lo, roll_hi = cal.rollout_window(sc.rollout, 30)
    index = sc.adopt_engagement * cu.engagement + sc.adopt_size * cu.size
    adopted = rng.random(n_acc) < _logistic(_enrol_intercept(index, 1.0, sc.adopt_share) + index)
    acc = cu.person_account
    contact = np.arange(n_p) < cu.n_contacts
    u = rng.random(n_p)
    enrolled = u < np.where(adopted[acc], _CS_ENROL_SHARE, _CS_STRAY_ENROL)
    lowest = np.minimum.reduceat(u[: cu.n_contacts], org.con_start)
    enrolled[: cu.n_contacts] |= adopted[acc[: cu.n_contacts]] & (u[: cu.n_contacts] == lowest[acc[: cu.n_contacts]])
    live = enrolled & (rng.random(n_p) < _CS_LIVE_SHARE)
    completes = enrolled & adopted[acc] & (rng.random(n_p) >= _CS_DROPOUT)
    u_acc = rng.random(n_acc) ** np.exp(sc.timing_engagement * cu.engagement)  # engaged accounts first
    v = u_acc[acc] + (1.0 - u_acc[acc]) * 0.5 * rng.random(n_p)  # colleagues after their account's start
    offset = org.offset_min[org.acc_owner[acc]]
    would = cal.business_instants(np.full(n_p, roll_lo + 7), np.full(n_p, roll_hi), v,
                                  rng.integers(9 * 3600, 21 * 3600, n_p), offset)
    start_s = np.maximum(would - rng.integers(7 * _DAY, 45 * _DAY, n_p), (cal.start_day + roll_lo) * _DAY + 3600)
    complete_s = np.where(completes, would, -1)
    online = enrolled & ~live
    dropouts = np.flatnonzero(online & ~completes)
    completers = np.flatnonzero(online & completes)
    voided_only = _at_least(rng, dropouts, 0.3, 1)
    voided_then_real = _at_least(rng, completers, 0.03, 1 if completers.size >= 5 else 0)

    # The account's training: its contacts' completions only (outsiders cannot be linked to it).
    done = np.flatnonzero(completes & contact)
    train_s = np.full(n_acc, np.iinfo(np.int64).max)
    np.minimum.at(train_s, acc[done], would[done])
    trained = train_s < np.iinfo(np.int64).max
    train_s = np.where(trained, train_s, -1)
    train_day = np.where(trained, train_s // _DAY - cal.start_day, _NEVER)
    learners = np.bincount(acc[done], minlength=n_acc)

    # Academy learners: everyone enrolled, and people who only browse other content.
    browse = ~enrolled & (rng.random(n_p) < np.where(contact, _CS_BROWSE_SHARE, _CS_OUTSIDER_BROWSE))
    person = np.flatnonzero(enrolled | browse)
    n_l = person.size
    learner_of = np.full(n_p, -1, np.int64)
    learner_of[person] = np.arange(n_l)
    ids = rng.choice(9_000_000, size=n_l, replace=False) + 1_000_000
    browse_day = rng.integers(roll_lo, max(roll_lo + 1, cal.n_days - 14), n_l)
    signup_day = np.where(enrolled[person], start_s[person] // _DAY - cal.start_day, browse_day)
    by_account = rng.random(n_l) < 0.15
    mixed_mbox = rng.random(n_l) < 0.2
    mixed_dir = rng.random(n_l) < 0.08
    style = rng.integers(0, 2, n_l)
    emails = cu.email.gather(person).to_list()
    mbox = [_mixed_case(e, int(s)) if m else e for e, s, m in zip(emails, style, mixed_mbox, strict=True)]
    direct = [_mixed_case(e, 1) if m else e for e, m in zip(emails, mixed_dir, strict=True)]

    # Online enrolments, in the terms of the statement writer (as the sales course's).
    e_person = np.flatnonzero(online)
    e_completes = completes[e_person]
    e_start, e_would = start_s[e_person], would[e_person]
    progress = _enrolment_progress(cal, rng, start_s=e_start, would_s=e_would, completes=e_completes,
                                   n_lessons=len(_ACADEMY_LESSONS), voided_only=np.isin(e_person, voided_only),
                                   voided_then_real=np.isin(e_person, voided_then_real))
    none_b, none_i = np.zeros(0, bool), np.zeros(0, np.int64)  # per-rep fields: no reps are trained here
    flags = np.zeros(n_p, bool)
    return _Academy(
        roll_lo=roll_lo, roll_hi=roll_hi, adopted=adopted, train_s=train_s, train_day=train_day,
        learners=learners, enrolled=enrolled, live=live, start_s=start_s, complete_s=complete_s,
        voided_only=_flag(flags, voided_only), voided_then_real=_flag(flags, voided_then_real),
        person=person, learner_of=learner_of,
        learner_id=pl.Series([f"A{i}" for i in ids.tolist()], dtype=pl.String),
        name=cu.name.gather(person), company=org.account_name.gather(acc[person]), title=cu.title.gather(person),
        dir_email=pl.Series(direct, dtype=pl.String), mbox_email=pl.Series(mbox, dtype=pl.String),
        signup_day=signup_day, offset_min=offset[person], by_account=by_account, mixed_mbox=mixed_mbox,
        mixed_dir=mixed_dir,
        online=_Training(
            roll_lo=roll_lo, roll_hi=roll_hi, eligible=none_b, enrolled=none_b, complete_s=none_i,
            complete_day=none_i, dropout=none_b, voided_only=none_b, voided_then_real=none_b,
            e_learner=learner_of[e_person], e_start_s=e_start, e_lesson_hi_s=progress.lesson_hi_s,
            e_complete_s=np.where(e_completes, e_would, -1), e_lessons=progress.lessons,
            e_fail_first=progress.fail_first, e_spurious_s=progress.spurious_s, e_void_s=progress.void_s,
        ),
    )


def _academy_activities() -> list[_ActivitySpec]:
    """The academy course, its lessons and final assessment, then other academy content."""
    program = {"objectType": "Activity", "id": _ACADEMY_PROGRAM_ID, "definition": {"name": {"en-US": _ACADEMY}}}
    in_course = {"parent": [{"objectType": "Activity", "id": _ACADEMY_COURSE_ID}], "grouping": [program]}
    acts: list[_ActivitySpec] = [(_ACADEMY_COURSE_ID, _ACADEMY_COURSE_NAME, "course", {"grouping": [program]})]
    acts += [(f"{_ACADEMY_COURSE_ID}/lesson/{slug}", title, "lesson", in_course) for slug, title in _ACADEMY_LESSONS]
    acts.append((f"{_ACADEMY_COURSE_ID}/assessment", f"{_ACADEMY_COURSE_NAME}: Final Assessment", "quiz",
                 in_course))
    acts += [(f"{_ACADEMY_ACT}/{kind}/{slug}", title, kind, {}) for slug, title, kind in _ACADEMY_OTHER]
    return acts


def _academy_other_statements(rng: np.random.Generator, cal: _Calendar, ac: _Academy) -> _Stmts:
    """Learners' use of academy content outside the course, from their sign-up on."""
    n_ev = rng.poisson(0.6 * np.maximum(cal.n_days - ac.signup_day, 0) / 30.4375)
    who = np.repeat(np.arange(ac.person.size), n_ev)
    ne = who.size
    ts = cal.business_instants(ac.signup_day[who], np.full(ne, cal.n_days), rng.random(ne),
                               rng.integers(8 * 3600, 20 * 3600, ne), ac.offset_min[who])
    pick = rng.integers(0, len(_ACADEMY_OTHER), ne)
    video = np.array([kind == "video" for *_, kind in _ACADEMY_OTHER])[pick]
    return _Stmts.make(
        ne, learner=who, verb=np.where(video, _V["experienced"], _V["completed"]),
        activity=_ACADEMY_ASSESSMENT + 1 + pick, ts_ms=ts * 1000 + rng.integers(0, 1000, ne),
        completion=np.where(video, -1, 1), duration=rng.integers(120, 1800, ne), role=_ROLE_OTHER,
    )


def _write_academy_statements(path: Path, cal: _Calendar, ac: _Academy, seed: int,
                              report: Callable[[str, float], None]) -> _LmsCounts:
    """Write the academy's ``lms/statements.jsonl``, with the sales scenarios' kinds of mess.

    Each learner appears under one actor: their ``mbox`` (sometimes in mixed case) or, for some,
    only their academy account, which ``learners.csv`` resolves.
    """
    rng = _stream(seed, "academy-statements")
    st = _Stmts.concat([
        _program_statements(rng, ac.online, n_lessons=len(_ACADEMY_LESSONS), quiz_activity=_ACADEMY_ASSESSMENT),
        _academy_other_statements(rng, cal, ac),
    ])
    n = st.learner.size
    n_l = ac.person.size
    ids = _uuid4(rng, n)
    regs = _uuid4(rng, max(1, ac.online.e_learner.size))
    actor_json = [*_agents(ac.name.to_list(), ac.mbox_email.to_list(), ac.learner_id.to_list(), _ACADEMY_HOME),
                  orjson.dumps(_ADMIN_ACTOR).decode()]
    learner = np.maximum(st.learner, 0)
    by_account = (st.learner >= 0) & ac.by_account[learner]
    actor = np.where(st.learner >= 0, learner + n_l * by_account, 2 * n_l)
    offset = np.where(st.learner >= 0, ac.offset_min[learner], 0)
    as_z = (st.learner < 0) | (rng.random(n) < 0.3)
    tz, suffixes, local_ms = _time_zones(st, ac.offset_min, offset, as_z)
    written = _write_lines(path, rng, cal, st, ids=ids, regs=regs, actor_json=actor_json, actor=actor, tz=tz,
                           suffixes=suffixes, local_ms=local_ms, activities=_academy_activities(), report=report)
    valid = written.keep
    person = st.learner[valid] >= 0
    return _LmsCounts.of(
        written, st, tz,
        account_actor_statements=int(by_account[valid].sum()),
        mixed_case_email_statements=int((person & ~by_account[valid] & ac.mixed_mbox[learner[valid]]).sum()),
    )


def _academy_learners_frame(cal: _Calendar, ac: _Academy) -> pl.DataFrame:
    """Build the academy's ``lms/learners.csv``: department is the company, hire_date the sign-up."""
    return pl.DataFrame({
        "learner_id": ac.learner_id,
        "email": ac.dir_email,
        "name": ac.name,
        "department": ac.company,
        "title": ac.title,
        "hire_date": _dates(cal.start_day + ac.signup_day),
    })


def _academy_completions_frame(ac: _Academy, seed: int) -> pl.DataFrame:
    """Build ``lms/completions.csv``: the live virtual class of the course, which sends no xAPI."""
    rng = _stream(seed, "academy-completions")
    who = np.flatnonzero(ac.enrolled & ac.live)
    at = ac.learner_of[who]
    done = ac.complete_s[who] >= 0
    n = who.size
    score = rng.integers(70, 101, n)
    return pl.DataFrame({
        "learner_id": ac.learner_id.gather(at),
        "learner_email": ac.dir_email.gather(at),
        "course_id": _ACADEMY_COURSE_ID,
        "course_title": f"{_ACADEMY_COURSE_NAME} (live virtual class)",
        "program": _ACADEMY,
        "enrolled_at": _dates(ac.start_s[who] // _DAY),
        "completed_at": _masked(pl.from_epoch(pl.Series(np.where(done, ac.complete_s[who], 0)), time_unit="s")
                                .dt.strftime("%Y-%m-%dT%H:%M:%SZ"), done),
        "score": _masked(pl.Series(score), done),
        "passed": _masked(pl.Series(np.ones(n, bool)), done),
        "minutes": np.where(done, rng.integers(90, 181, n), 0),
    }).cast(_COMPLETION_SCHEMA).sort(["enrolled_at", "learner_id"], maintain_order=True)


def _academy_surveys_frame(cal: _Calendar, cu: _Customers, ac: _Academy, seed: int) -> pl.DataFrame:
    """Build ``surveys.csv``: the learners' reaction, and whether they apply it three months on."""
    rng = _stream(seed, "academy-surveys")
    who = np.flatnonzero(ac.complete_s >= 0)
    at = ac.learner_of[who]
    day = ac.complete_s[who] // _DAY
    centre = 4.1 + 0.15 * cu.engagement[cu.person_account[who]]
    frames = []
    asks = [(f"reaction.{q}", "reaction", 0.7, (0, 4)) for q in ("relevance", "satisfaction", "would_recommend")]
    asks.append(("application.used_in_daily_work", "application", 0.45, (80, 100)))
    for question, level, share, (lo, hi) in asks:
        answer = rng.random(who.size) < share
        when = day + rng.integers(lo, hi, who.size)
        score = np.clip(np.round(rng.normal(centre - 0.4 * (level == "application"), 0.8)), 1, 5).astype(np.int64)
        sel = np.flatnonzero(answer & (when < cal.start_day + cal.n_days))
        frames.append(pl.DataFrame({
            "respondent_email": ac.dir_email.gather(at[sel]), "role": "learner", "program": _ACADEMY,
            "level": level, "question": question, "score": score[sel],
            "confidence": pl.Series(np.full(sel.size, np.nan)).fill_nan(None), "submitted_at": _dates(when[sel]),
        }).cast(_SURVEY_SCHEMA))
    return pl.concat(frames).sort(["submitted_at", "respondent_email", "question"], maintain_order=True)


def _academy_costs_frame(cal: _Calendar, cu: _Customers, ac: _Academy) -> pl.DataFrame:
    """Build ``costs.csv``: the academy's cost lines, live-class facilitation, one shared line."""
    n_acc, n_l, d = cu.engagement.size, ac.person.size, cal.start_day
    lines: list[_CostLine] = [
        (_ACADEMY, "development", 50_000 + 40.0 * n_acc, d + ac.roll_lo - 90,
         f"Course design and production: {_ACADEMY_COURSE_NAME}, 6 lessons and a final assessment"),
        (_ACADEMY, "platform", 12_000 + 3.0 * n_l, d + ac.roll_lo - 14, "Academy LMS and LRS subscription, annual"),
        (_ACADEMY, "administration", 30_000.0, d + ac.roll_hi, "Academy program manager, 0.4 FTE"),
        (_ACADEMY, "evaluation", 6_000 + 5.0 * n_acc, min(d + ac.roll_hi + 90, d + cal.n_days - 1),
         "Evaluation: renewal and upsell analysis"),
        (None, "platform", 20_000 + 10.0 * n_acc, d + 10, "Customer success platform, shared across programs, annual"),
    ]
    live_day = ac.complete_s[ac.live & (ac.complete_s >= 0)] // _DAY - d
    for month, first, after in cal.months_before(min(ac.roll_hi + 31, cal.n_days)):
        cohort = int(((live_day >= first) & (live_day < after)).sum())
        if cohort:
            lines.append((_ACADEMY, "facilitation", 1_200 + 150.0 * cohort, min(d + after - 1, d + cal.n_days - 1),
                          f"Live virtual classes, {month:%B %Y}, {cohort} attendee" + ("s" if cohort > 1 else "")))
    return _cost_frame(lines)
