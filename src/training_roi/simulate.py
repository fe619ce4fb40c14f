"""Simulate a sales org with a training program, and write down exactly what the program did.

The simulator writes a data folder in the shapes of the data contract (``docs/data-contract.md``:
Salesforce export CSVs, xAPI statements, the LMS directory and a completion report, surveys,
costs) with the mess real exports have, plus ``truth.json``: the program's true effect, computed exactly.

Quick start::

    from training_roi.simulate import simulate
    info = simulate("demo-data", reps=200, months=24, scenario="selection")
    print(info)

Why potential outcomes with common random numbers: every opportunity draws its random numbers
once, and both its untreated and its treated outcome are functions of the same draws. The effect on
each single deal is therefore known, and the truth is a sum over deals rather than an estimate
with noise of its own. Estimators run on the files can then be scored against it.

Scenario ``customer`` is customer education: the learners are contacts of customer accounts taking
the vendor's academy course, the outcomes are the accounts' renewals and upsells, and the truth is
about accounts (``truth["unit"] == "account"``; per account in ``truth_trained.csv``). The CRM
users are the same as in the sales scenarios of a seed; the reps become the account managers.

Scenario ``microlessons`` is a dose: the program releases a short lesson (a "drill") every
business day of its rollout window, all under one parent activity (``…/program/daily-drills``,
lessons ``…/lesson/001`` …, verb completed with a duration). Reps complete anywhere from none to
about 60 of them, self-selected: engagement = 0.5·skill + √0.75·N(0, 1), and more engaged reps
take part more often, start earlier and do more lessons. The model, exactly:

* p(L) = logistic(η0 + β·L) is a deal's win probability had its owner completed L distinct
  lessons on UTC dates before its created date (a lesson counts from the day after it is done,
  as a course completion in the other scenarios); β = ``effects.win_logit_per_lesson``. Amounts
  and cycles do not depend on lessons. η0 is the sales model's log-odds plus the rep's own trend,
  ``model.dose.trend_per_year`` · engagement · years since the rollout start: engaged reps improve
  without lessons too, which a before/after comparison cannot tell from the lessons' effect.
* Per deal (``truth_opportunities.parquet``): p0 = p(0), p1 = p(``lessons_before``), won0/won1
  with the same uniform draw; the CRM shows won1.
* ``truth["dose"]["ame_per_lesson"]``, the estimand: over W, the closed, non-deleted deals of
  reps with lessons created 1..180 days after the rep's first lesson, the mean of
  dp/dL = β·p1·(1 − p1): the average marginal effect of one lesson on the win rate (0.002 = 0.2
  points per lesson). ``change_per_lesson_completed`` = Σ_W (p1 − p0) / Σ_W K, with K the owner's
  total lessons, is what a regression of before/after changes on total lesson counts targets when
  lessons are not self-selected; it is lower, as lessons done after a deal do not help it.
* ``truth_doses.csv`` has each rep's ``lessons`` (distinct lessons completed; repeats, lessons
  only launched and voided completions do not count) and ``first_lesson_date`` (UTC).
  ``truth["program"]["course_activity_id"]`` is the parent, the lessons' ``course_id``: the
  program's first exposure is a rep's first lesson (``truth_trained.csv``), but no statement is
  about the parent itself, so completion rules that need a record of the course find none.

Scenario ``crm_golive`` is a CRM implementation, program "CRM rollout": the sales teams (a manager
and their reps) go live on a new CRM in waves (half halfway through the period, the rest at two
thirds). The new CRM shortens every lead's first response (the first Task on the lead, ``WhoId``)
by a known factor and converts leads it would otherwise have lost; it does nothing to deals, so
the sales KPIs are a placebo. ``truth["crm"]`` has each team's go-live date and the exact effect
on the leads created after it, per team and overall; ``truth_leads.parquet`` both potential
outcomes per lead. Reps complete the course "CRM Basics" in their team's first go-live weeks.

Why one random stream per part (``_stream``): each file draws from its own generator, seeded from
the seed and a CRC of the part's name, so a change to how one file is written does not change the
others, and the same seed gives the same organisation and pipeline in every scenario (only the
training differs).
"""

from __future__ import annotations

import math
import time
import unicodedata
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import orjson
import polars as pl
import pyarrow as pa

__all__ = ["DEFAULT_SCENARIO", "SCENARIOS", "SimulationInfo", "simulate"]

_DAY = 86_400
_NEVER = 1 << 40  # a day index far beyond any simulated period ("never happens")

# --------------------------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Scenario:
    """The parameters that make one scenario: who is trained, when, and what training does."""

    description: str
    assignment: str  # "self_select", "random_waves" or "monthly_waves"
    enrol_share: float  # share of eligible reps enrolled
    selection_skill: float  # logit slope of enrolment on skill (self_select, monthly_waves)
    timing_skill: float  # how much earlier skilled reps complete (self_select)
    win_logit: float  # effect on the log-odds of winning
    deal_size: float  # relative effect on amount
    cycle: float  # relative reduction of the sales cycle
    ramp_days: int  # 0: full effect at once; else the effect grows linearly over this many days
    rollout: tuple[float, float]  # rollout window as fractions of the period
    waves: int  # number of assignment waves (random_waves)


_SCENARIO_PARAMS: dict[str, _Scenario] = {
    "selection": _Scenario(
        description=(
            "reps self-select into training by skill, with a market trend and Q4 seasonality: "
            "naive comparisons overstate a modest positive effect"
        ),
        assignment="self_select", enrol_share=0.45, selection_skill=1.2, timing_skill=0.35,
        win_logit=0.12, deal_size=0.03, cycle=0.05, ramp_days=0, rollout=(0.42, 0.67), waves=0,
    ),
    "randomised": _Scenario(
        description=(
            "a random half of eligible reps is assigned to training in three waves; same trend, "
            "seasonality and effect as 'selection'"
        ),
        assignment="random_waves", enrol_share=0.5, selection_skill=0.0, timing_skill=0.0,
        win_logit=0.12, deal_size=0.03, cycle=0.05, ramp_days=0, rollout=(0.42, 0.67), waves=3,
    ),
    "null": _Scenario(
        description="like 'selection' (self-selection, trend, seasonality) but the true effect is exactly zero",
        assignment="self_select", enrol_share=0.45, selection_skill=1.2, timing_skill=0.35,
        win_logit=0.0, deal_size=0.0, cycle=0.0, ramp_days=0, rollout=(0.42, 0.67), waves=0,
    ),
    "staggered": _Scenario(
        description=(
            "almost every rep is trained in monthly waves over a long rollout and the effect grows "
            "over 180 days after completion: the two-way fixed effects trap"
        ),
        assignment="monthly_waves", enrol_share=0.9, selection_skill=0.3, timing_skill=0.0,
        win_logit=0.25, deal_size=0.06, cycle=0.08, ramp_days=180, rollout=(0.25, 0.85), waves=0,
    ),
}



@dataclass(frozen=True)
class _CustomerScenario:
    """Customer education: which accounts' contacts take the course, and what it does to the account."""

    description: str
    adopt_share: float  # share of customer accounts whose people take the course
    adopt_engagement: float  # logit slope of adoption on the account's engagement
    adopt_size: float  # logit slope of adoption on its standardised log headcount
    timing_engagement: float  # how much earlier engaged accounts complete
    renewal_logit: float  # effect on the log-odds of winning a renewal
    upsell_logit: float  # effect on the log-odds of winning an upsell
    rollout: tuple[float, float]  # course launch and last completions, as fractions of the period


_CUSTOMER_SCENARIO = "customer"
_CUSTOMER = _CustomerScenario(
    description=(
        "customer education: contacts of customer accounts take the vendor's academy course; bigger, more "
        "engaged accounts train more and earlier, and training raises the account's renewal and upsell win "
        "rates: naive comparisons of accounts overstate it"
    ),
    adopt_share=0.4, adopt_engagement=1.0, adopt_size=0.6, timing_engagement=0.35,
    renewal_logit=0.4, upsell_logit=0.3, rollout=(0.33, 0.75),
)


@dataclass(frozen=True)
class _DoseScenario:
    """Micro-lessons: who takes how many daily drills, when, and what one lesson does."""

    description: str
    win_logit_per_lesson: float  # effect of each distinct lesson completed on the log-odds of winning
    engagement_skill: float  # correlation of a rep's engagement with their skill
    take_share: float  # share of eligible reps who complete at least one lesson
    take_engagement: float  # logit slope of taking part on engagement
    lessons_median: float  # a participant does 1 + Poisson(rate) lessons; the rate's median is this
    lessons_engagement: float  # log-rate of lessons per unit of engagement
    lessons_sigma: float  # log-normal spread of the rate between reps with the same engagement
    max_lessons: int  # nobody does more lessons than this
    start_spread: float  # first lessons fall in the first this-share of the drills' business days
    timing_engagement: float  # how much earlier engaged reps start
    trend_per_year: float  # each rep's own untreated log-odds trend per year and unit of engagement
    repeat_share: float  # lesson completions done once more, days later (a lesson counts once)
    unfinished_share: float  # lessons launched and never completed, per lesson completed
    partner_share: float  # partner staff who take drills too (they own no deals)
    void_share: float  # learners with a wrongly recorded lesson completion, voided later
    rollout: tuple[float, float]  # first and last drill release as fractions of the period


_DOSE_SCENARIO = "microlessons"
_DOSE = _DoseScenario(
    description=(
        "daily micro-lessons: reps complete 0 to about 60 short lessons, more of them the stronger and more "
        "engaged they are (and engaged reps are improving anyway); each lesson raises the log-odds of winning "
        "by a fixed amount for the deals created after it: a dose effect that accumulates"
    ),
    win_logit_per_lesson=0.01, engagement_skill=0.5, take_share=0.65, take_engagement=1.0, lessons_median=10.0,
    lessons_engagement=0.5, lessons_sigma=0.8, max_lessons=60, start_spread=0.6, timing_engagement=0.35,
    trend_per_year=0.10, repeat_share=0.04, unfinished_share=0.08, partner_share=0.35, void_share=0.02,
    rollout=(0.42, 0.67),
)
# What the sales model's shared functions read of a scenario: the drills are no course and the
# course effect is zero; the lessons' effect enters through ``_Doses``.
_DOSE_BASE = _Scenario(
    description=_DOSE.description, assignment="daily_drills", enrol_share=_DOSE.take_share, selection_skill=0.0,
    timing_skill=0.0, win_logit=0.0, deal_size=0.0, cycle=0.0, ramp_days=0, rollout=_DOSE.rollout, waves=0,
)


@dataclass(frozen=True)
class _CrmScenario:
    """A CRM go-live: when the sales teams go live, and what the new CRM does to their leads."""

    description: str
    go_live: tuple[float, ...]  # fractions of the period at which the waves of teams go live (first of a month)
    response_median_hours: float  # median first response to a lead in the old CRM
    response_team_sigma: float  # log-sd of the teams' typical first-response times
    response_sigma: float  # log-sd of a lead's first-response time around its team's typical one
    response_factor: float  # the new CRM multiplies every lead's first-response time by this
    conversion_points: float  # leads the new CRM converts in addition, per lead (expected; 0.06 = 6 points)
    training_days: int  # reps complete CRM Basics within this many days from their team's go-live
    seat_month: float  # CRM licence per user and month, from the user's team's go-live


_CRM_SCENARIO = "crm_golive"
_CRM = _CrmScenario(
    description=(
        "a CRM implementation: half the sales teams go live halfway through the period (month 12 of 24), the rest "
        "at two thirds (month 16); the new CRM cuts the first response to a lead from a median of 30 to 12 hours "
        "and converts 6 points more leads, and leaves win rates, deal sizes and cycles alone (a placebo)"
    ),
    go_live=(12 / 24, 16 / 24), response_median_hours=30.0, response_team_sigma=0.25, response_sigma=0.8,
    response_factor=0.4, conversion_points=0.06, training_days=14, seat_month=95.0,
)
# What the sales model's shared functions read: CRM Basics is the course, it changes no deal, and
# it is completed in the days after each team's go-live (``_assign_training``'s ``window``).
_CRM_BASE = _Scenario(
    description=_CRM.description, assignment="team_golive", enrol_share=1.0, selection_skill=0.0, timing_skill=0.0,
    win_logit=0.0, deal_size=0.0, cycle=0.0, ramp_days=0, rollout=(_CRM.go_live[0], _CRM.go_live[-1] + 1 / 24),
    waves=len(_CRM.go_live),
)

SCENARIOS: dict[str, str] = {name: s.description for name, s in _SCENARIO_PARAMS.items()} | {
    _CUSTOMER_SCENARIO: _CUSTOMER.description, _DOSE_SCENARIO: _DOSE.description,
    _CRM_SCENARIO: _CRM.description}
"""Scenario name → one-line description."""

DEFAULT_SCENARIO = "selection"
"""The scenario used when none is named: self-selection, where naive comparisons mislead."""

# --------------------------------------------------------------------------------------------
# Structural parameters of the sales model (recorded in truth.json)
# --------------------------------------------------------------------------------------------

_OPPS_PER_REP_MONTH = 4.9
_SKILL_RATE = 0.10  # log-rate of opportunity creation per skill unit
_BASE_WIN_LOGIT = -1.25
_SKILL_WIN_LOGIT = 0.35
_TREND_WIN_LOGIT_PER_YEAR = 0.15
# Log-odds shift by the calendar month of CreatedDate: Q4 strong, January and summer weak.
_SEASON = (-0.12, -0.06, 0.02, -0.02, 0.0, 0.04, -0.06, -0.06, 0.02, 0.06, 0.10, 0.14)
_TYPES = ("New Business", "Renewal", "Upsell")
_TYPE_SHARE = (0.70, 0.18, 0.12)
_TYPE_WIN_LOGIT = (0.0, 1.2, 0.4)
_TYPE_AMOUNT = (1.0, 0.8, 0.5)
_TYPE_CYCLE = (1.0, 0.6, 0.8)
_AMOUNT_MEDIAN = 25_000.0
_AMOUNT_SIGMA = 0.55
_AMOUNT_SKILL = 0.05
_AMOUNT_TREND_PER_YEAR = 0.03
_CYCLE_MEDIAN = 52.0
_CYCLE_SIGMA = 0.40
_DROPOUT_SHARE = 0.06
_LEAD_CONVERSION = 0.2  # share of leads converted into an opportunity
_WINDOWS = (90, 180, 365)
_PRIMARY_WINDOW = 180

_ORG_DOMAIN = "example.com"
_LMS_HOME = "https://lms.example.com"
_ACT = "https://lms.example.com/xapi/activities"
_PROGRAM = "Sales Excellence"
_PROGRAM_ID = f"{_ACT}/program/sales-excellence"
_COURSE_ID = f"{_ACT}/course/sales-excellence"
_COURSE_NAME = "Sales Excellence: Core Course"
_LESSONS = (
    ("01-discovery", "Discovery Questions That Uncover Pain"),
    ("02-value", "Value Selling in Five Minutes"),
    ("03-objections", "Handling Objections"),
    ("04-negotiation", "Negotiating Without Discounting"),
    ("05-closing", "Closing and Mutual Action Plans"),
    ("06-pipeline", "Pipeline Hygiene"),
)


class _Course(NamedTuple):
    """A program's course as the LMS knows it: names, activity ids and (six) lessons."""

    program: str
    program_id: str
    course_id: str
    title: str
    lessons: tuple[tuple[str, str], ...]  # (slug, title); as many as _LESSONS, so other activities keep their index
    application: tuple[str, str]  # the two level-3 (application) survey questions


_SALES_COURSE = _Course(_PROGRAM, _PROGRAM_ID, _COURSE_ID, _COURSE_NAME, _LESSONS,
                        ("used_discovery_framework", "frequency_of_use"))
_CRM_COURSE = _Course("CRM rollout", f"{_ACT}/program/crm-rollout", f"{_ACT}/course/crm-basics",
                      "CRM Basics: Working in the New CRM", (
                          ("01-leads", "Capturing and Assigning Leads"),
                          ("02-first-response", "Responding to a New Lead Within the Hour"),
                          ("03-activities", "Logging Calls, Emails and Tasks"),
                          ("04-conversion", "Converting a Lead: Account, Contact, Opportunity"),
                          ("05-pipeline", "Opportunities and the Pipeline View"),
                          ("06-mobile", "The CRM on Your Phone"),
                      ), ("logs_every_lead_contact", "frequency_of_use"))
_VERBS = ("launched", "initialized", "experienced", "completed", "passed", "failed", "terminated", "voided")
_V = {v: i for i, v in enumerate(_VERBS)}

# --------------------------------------------------------------------------------------------
# Public result
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Small vectorised building blocks
# --------------------------------------------------------------------------------------------


def _stream(seed: int, name: str) -> np.random.Generator:
    """Return the random generator of one part of the simulation.

    Seeded from ``seed`` and a CRC-32 of ``name`` (never Python's salted ``hash()``), so parts
    are independent of each other and of the order in which they run.
    """
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, zlib.crc32(name.encode())])))


def _fixed_width(chars: np.ndarray) -> pl.Series:
    """Turn an ``(n, w)`` array of ASCII codes into a string Series without a Python loop."""
    n, w = chars.shape
    data = np.ascontiguousarray(chars, dtype=np.uint8).tobytes()
    offsets = np.arange(0, (n + 1) * w, w, dtype=np.int64) if n else np.zeros(1, np.int64)
    arr = pa.Array.from_buffers(pa.large_string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    return pl.Series(pl.from_arrow(arr)).cast(pl.String)


_BASE62 = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", np.uint8)
_SUFFIX = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", np.uint8)
_POD = b"Dn0"  # pod identifier and reserved character of this org's ids


def _salesforce_ids(prefix: str, counters: np.ndarray) -> pl.Series:
    """Build 18-character Salesforce ids (15-character id + case-safe suffix), vectorised.

    The 15-character id is the key prefix, a pod identifier, a reserved ``0`` and a 9-digit
    base-62 counter. The suffix encodes, per 5-character chunk, which characters are upper case:
    bit ``i`` is set when character ``i`` is ``A``–``Z``, and the 5-bit number indexes
    ``A–Z0–5``. That makes the 18-character form safe to compare case-insensitively.
    """
    counters = np.asarray(counters, dtype=np.int64)
    n = counters.size
    head = np.frombuffer(prefix.encode() + _POD, np.uint8)
    chars = np.empty((n, 18), np.uint8)
    chars[:, :6] = head
    # Base-62 digits with float64 arithmetic, much faster than int64 division and exact because
    # one int64 split leaves both halves far below 2**53.
    high, low = np.divmod(counters, 62**4)
    for cols, part in ((range(14, 10, -1), low), (range(10, 5, -1), high)):
        rest = part.astype(np.float64)
        for col in cols:
            quotient = np.floor(rest / 62.0)
            chars[:, col] = _BASE62[(rest - quotient * 62.0).astype(np.intp)]
            rest = quotient
    upper = ((chars[:, :15] >= 65) & (chars[:, :15] <= 90)).view(np.uint8).reshape(n, 3, 5)
    bits = upper[:, :, 0] | upper[:, :, 1] << 1 | upper[:, :, 2] << 2 | upper[:, :, 3] << 3 | upper[:, :, 4] << 4
    chars[:, 15:] = _SUFFIX[bits]
    return _fixed_width(chars)


def _id_counters(rng: np.random.Generator, n: int, order: np.ndarray | None = None) -> np.ndarray:
    """Return increasing, unique record counters; later records (by ``order``) get larger ones."""
    base = int(rng.integers(62**5, 62**6))
    steps = rng.integers(1, 4, n).cumsum()
    counters = base + steps
    if order is None:
        return counters
    ranks = np.empty(n, np.int64)
    ranks[np.argsort(order, kind="stable")] = np.arange(n)
    return counters[ranks]


_HEX = np.frombuffer(b"0123456789abcdef", np.uint8)


def _uuid4(rng: np.random.Generator, n: int) -> pl.Series:
    """Return ``n`` random (version 4) UUID strings drawn from ``rng``: reproducible statement ids."""
    raw = rng.integers(0, 256, (n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    hexed = np.empty((n, 32), np.uint8)
    hexed[:, 0::2] = _HEX[raw >> 4]
    hexed[:, 1::2] = _HEX[raw & 0x0F]
    out = np.full((n, 36), ord("-"), np.uint8)
    for lo, hi, at in ((0, 8, 0), (8, 12, 9), (12, 16, 14), (16, 20, 19), (20, 32, 24)):
        out[:, at : at + hi - lo] = hexed[:, lo:hi]
    return _fixed_width(out)


def _pick(rng: np.random.Generator, options: tuple[str, ...] | list[str], n: int,
          p: tuple[float, ...] | None = None) -> pl.Series:
    """Draw ``n`` values from ``options`` (with probabilities ``p``) as a string Series."""
    probs = None if p is None else np.asarray(p, float) / np.sum(p)
    idx = rng.choice(len(options), size=n, p=probs)
    return pl.Series(list(options), dtype=pl.String).gather(idx)


def _sf_datetime(seconds: np.ndarray) -> pl.Series:
    """Format UTC epoch seconds as Salesforce export datetimes (``2025-03-04T15:02:11.000Z``)."""
    return pl.from_epoch(pl.Series(np.asarray(seconds, np.int64)), time_unit="s").dt.strftime(
        "%Y-%m-%dT%H:%M:%S.000Z"
    )


def _dates(epoch_days: np.ndarray) -> pl.Series:
    """Return epoch day numbers as a polars Date Series (written ``YYYY-MM-DD``)."""
    return pl.Series(np.asarray(epoch_days, np.int32)).cast(pl.Date)


def _masked(values: pl.Series, keep: np.ndarray) -> pl.Series:
    """Return ``values`` with nulls where ``keep`` is false (an empty CSV field)."""
    return pl.select(pl.when(pl.Series(keep)).then(values)).to_series()


def _at_least(rng: np.random.Generator, candidates: np.ndarray, share: float, minimum: int) -> np.ndarray:
    """Choose ``share`` of ``candidates`` (at least ``minimum``, if there are that many), sorted.

    Small test orgs still get every kind of mess, so the tests always have something to find.
    """
    n = candidates.size
    k = min(n, max(minimum, int(np.rint(share * n))))
    return np.sort(rng.choice(candidates, size=k, replace=False)) if k else candidates[:0]


def _slug(text: str) -> str:
    """Fold a name to the lower-case ASCII letters used in email addresses (José → jose)."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return "".join(c for c in folded if "a" <= c <= "z")


def _mixed_case(email: str, style: int) -> str:
    """Spell an address with upper-case letters, as people and some LMSs do.

    ``jane.doe@example.com`` becomes ``Jane.Doe@Example.COM`` (style 0) or ``Jane.Doe@example.com``
    (style 1): the same mailbox, compared case-insensitively.
    """
    local, _, domain = email.partition("@")
    local = ".".join(p[:1].upper() + p[1:] for p in local.split("."))
    if style == 0:
        parts = domain.split(".")
        domain = ".".join([p[:1].upper() + p[1:] for p in parts[:-1]] + [parts[-1].upper()])
    return f"{local}@{domain}"


def _add_months(d: date, n: int) -> date:
    """Return ``d`` plus ``n`` calendar months, the day clamped to the month's length."""
    y, m = divmod(d.month - 1 + n, 12)
    year, month = d.year + y, m + 1
    days = [31, 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28,
            31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
    return date(year, month, min(d.day, days))


def _logistic(x: np.ndarray) -> np.ndarray:
    """Return the logistic function of ``x``."""
    return 1.0 / (1.0 + np.exp(-x))


def _iso_date(epoch_day: int) -> str:
    """Return an epoch day number as ``YYYY-MM-DD``."""
    return date.fromordinal(date(1970, 1, 1).toordinal() + int(epoch_day)).isoformat()


# --------------------------------------------------------------------------------------------
# Calendar
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Calendar:
    """The simulated period ``[start, end)`` as day indices, with each day's calendar month."""

    start: date
    end: date
    start_day: int  # epoch day number of ``start``
    n_days: int
    month_of_year: np.ndarray  # per day index: 0 (January) … 11 (December)

    @classmethod
    def make(cls, start: date, months: int) -> _Calendar:
        """Return the calendar of ``months`` months from ``start``."""
        end = _add_months(start, months)
        start_day = (start - date(1970, 1, 1)).days
        n_days = (end - start).days
        days = np.arange(start_day, start_day + n_days).astype("datetime64[D]")
        moy = days.astype("datetime64[M]").astype(np.int64) % 12
        return cls(start, end, start_day, n_days, moy.astype(np.int8))

    @property
    def start_s(self) -> int:
        """Start as UTC epoch seconds."""
        return self.start_day * _DAY

    @property
    def end_s(self) -> int:
        """End (exclusive) as UTC epoch seconds."""
        return (self.start_day + self.n_days) * _DAY

    def day_at(self, fraction: float) -> int:
        """Return the day index at the first of the month nearest ``fraction`` of the period."""
        months = round(fraction * self._months())
        return (_add_months(self.start, months) - self.start).days

    def _months(self) -> int:
        return (self.end.year - self.start.year) * 12 + self.end.month - self.start.month

    def business_instants(self, lo: np.ndarray, hi: np.ndarray, u: np.ndarray,
                          local_seconds: np.ndarray, offset_min: np.ndarray) -> np.ndarray:
        """Return UTC epoch seconds on business days in ``[lo, hi)`` at a local time of day.

        ``u`` in [0, 1) picks the business day (so callers can skew timing), ``local_seconds`` is
        the local time of day and ``offset_min`` the UTC offset of the person's time zone. Results
        are clamped into the period.
        """
        lo = np.asarray(lo, np.int64)
        hi = np.maximum(np.asarray(hi, np.int64), lo + 1)
        a = (self.start_day + lo).astype("datetime64[D]")
        b = (self.start_day + hi).astype("datetime64[D]")
        nb = np.busday_count(a, b)
        k = np.minimum(np.floor(u * nb).astype(np.int64), np.maximum(nb - 1, 0))
        bday = np.busday_offset(a, k, roll="forward").astype(np.int64)
        anyday = self.start_day + lo + np.floor(u * (hi - lo)).astype(np.int64)
        day = np.where(nb > 0, bday, anyday)
        ts = day * _DAY + np.asarray(local_seconds, np.int64) - np.asarray(offset_min, np.int64) * 60
        # A local working hour on the first or last day can fall outside the period in UTC: move
        # it by a day rather than piling such instants up on the boundary.
        ts = np.where(ts < self.start_s, ts + _DAY, np.where(ts >= self.end_s, ts - _DAY, ts))
        return np.clip(ts, self.start_s, self.end_s - 1)


# --------------------------------------------------------------------------------------------
# Word lists
# --------------------------------------------------------------------------------------------

_FIRST = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David",
    "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah",
    "Charles", "Karen", "Christopher", "Lisa", "Daniel", "Nancy", "Matthew", "Betty", "Anthony",
    "Margaret", "Mark", "Sandra", "Donald", "Ashley", "Steven", "Kimberly", "Paul", "Emily",
    "Andrew", "Donna", "Joshua", "Michelle", "Kenneth", "Carol", "Kevin", "Amanda", "Brian",
    "Dorothy", "George", "Melissa", "Timothy", "Deborah", "Ronald", "Stephanie", "Jason",
    "Rebecca", "Edward", "Sharon", "Jeffrey", "Laura", "Ryan", "Cynthia", "Jacob", "Kathleen",
    "Gary", "Amy", "Nicholas", "Angela", "Eric", "Shirley", "Jonathan", "Anna", "Priya", "Wei",
    "Aisha", "Mohammed", "Sofia", "Lukas", "Chloé", "José", "Zoë", "Søren", "Ingrid", "Hiroshi",
    "Mei", "Arjun", "Fatima", "Olga", "Mateo", "Léa", "Noah", "Emma", "Liam", "Olivia", "Ananya",
    "Kenji", "Yuki", "Thandiwe", "Siobhan", "Rafael", "Nadia", "Björn",
)
_LAST = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor",
    "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez",
    "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright",
    "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall",
    "Rivera", "Campbell", "Mitchell", "Carter", "Roberts", "O'Brien", "O'Connor", "D'Souza",
    "McCarthy", "MacDonald", "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Dubois",
    "Lefèvre", "Rossi", "Bianchi", "Kowalski", "Nowak", "Novák", "Jansen", "de Vries",
    "van der Berg", "Andersen", "Nielsen", "Johansson", "Lindqvist", "Tanaka", "Suzuki", "Sato",
    "Watanabe", "Kim", "Park", "Chen", "Wang", "Li", "Zhang", "Liu", "Singh", "Patel", "Sharma",
    "Gupta", "Khan", "Ahmed", "Okafor", "Mensah", "Dlamini", "Silva", "Santos", "Oliveira",
    "Pereira", "Costa", "Núñez", "Castillo", "Morales", "Ortiz", "Gutierrez", "Chavez", "Ramos",
    "Ruiz", "Alvarez", "Mendoza", "Vasquez", "Jimenez", "Moreno", "Romero", "Herrera", "Medina",
    "Aguilar", "Fernández", "Kelly", "Murphy", "Sullivan", "Byrne", "Walsh", "Ryan", "Doyle",
)
_COMPANY = (
    "Northwind", "Blue Ridge", "Acme", "Globex", "Initech", "Umbrella", "Cyberdyne", "Hooli",
    "Vandelay", "Soylent", "Tyrell", "Oceanic", "Pied Piper", "Massive Dynamic", "Aperture",
    "Contoso", "Fabrikam", "Litware", "Tailspin", "Wide World", "Adventure Works", "Proseware",
    "Lucerne", "Alpine", "Coho", "Fourth Coffee", "Margie's", "Trey", "Woodgrove", "Humongous",
    "Bellows", "Silverline", "Redwood", "Granite", "Harbor", "Summit", "Pioneer", "Keystone",
    "Evergreen", "Lakeside", "Sunrise", "Ironclad", "Bluebird", "Copperleaf", "Nordlicht",
    "Sakura", "Kestrel", "Meridian", "Orchid", "Tundra",
)
# (name part, Salesforce Industry picklist value)
_CORE = (
    ("Logistics", "Transportation"), ("Health", "Healthcare"), ("Foods", "Food & Beverage"),
    ("Systems", "Technology"), ("Energy", "Energy"), ("Capital", "Finance"),
    ("Robotics", "Machinery"), ("Media", "Media"), ("Pharma", "Biotechnology"),
    ("Textiles", "Apparel"), ("Analytics", "Technology"), ("Manufacturing", "Manufacturing"),
    ("Software", "Technology"), ("Retail", "Retail"), ("Insurance", "Insurance"),
    ("Telecom", "Telecommunications"), ("Motors", "Manufacturing"), ("Consulting", "Consulting"),
    ("Hospitality", "Hospitality"), ("Construction", "Construction"),
)
_CO_SUFFIX = (", Inc.", " Inc.", " LLC", " Ltd", " GmbH", " Group", " & Co.", " Corp.", ", LLC", " plc", "")
# (region, [(country, [states], utc offset minutes)], share of reps)
_REGIONS: tuple[tuple[str, tuple[tuple[str, tuple[str, ...], int], ...], float], ...] = (
    ("North America - West", (("United States", ("CA", "WA", "OR", "AZ", "CO", "UT"), -480),), 0.25),
    ("North America - Central", (("United States", ("TX", "IL", "MN", "MO", "WI"), -360),), 0.20),
    ("North America - East", (("United States", ("NY", "MA", "GA", "FL", "NC", "PA", "NJ"), -300),), 0.25),
    ("EMEA", (("United Kingdom", (), 0), ("Germany", (), 60), ("France", (), 60),
              ("Netherlands", (), 60), ("South Africa", (), 120)), 0.20),
    ("APAC", (("Australia", (), 600), ("Singapore", (), 480), ("Japan", (), 540), ("India", (), 330)), 0.10),
)
_REP_TITLES = ("Account Executive", "Senior Account Executive", "Enterprise Account Executive",
               "Account Executive, Mid-Market")
_CONTACT_TITLES = ("Chief Executive Officer", "CFO", "VP, Procurement", "Director of Operations", "IT Manager",
                   "Head of Sales", "Procurement Specialist", "COO", "VP, Engineering",
                   "Office Manager")
_LEAD_SOURCES = ("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Trade Show",
                 "Employee Referral", "Other")
_OPEN_STAGES = (("Prospecting", 10), ("Qualification", 20), ("Needs Analysis", 25),
                ("Value Proposition", 50), ("Proposal/Price Quote", 75), ("Negotiation/Review", 90))
_PHRASES = {
    0: ("New Logo", "Platform Purchase", "Pilot, Phase 1", "Enterprise Agreement", "50 Seats",
        "250 Seats", "Starter Package", "Services Engagement"),
    1: ("Annual Renewal", "Renewal, 3-Year", "Support Renewal", "Subscription Renewal"),
    2: ("Upsell - Analytics Add-on", "Seat Expansion", "Premium Support Upgrade", "Add-on: API Access"),
}

# --------------------------------------------------------------------------------------------
# The organisation: users, accounts, contacts
# --------------------------------------------------------------------------------------------


@dataclass
class _Org:
    """CRM users (reps first), accounts and contacts, with the latent traits the model uses."""

    n_reps: int
    kind: np.ndarray  # per user: 0 rep, 1 manager, 2 vice president, 3 support, 4 other
    region: np.ndarray  # per user: index into _REGIONS (-1: none)
    country: np.ndarray  # per user: index into the region's countries
    offset_min: np.ndarray  # per user: UTC offset of their time zone
    hire_day: np.ndarray  # per user: day index of hire (negative: before the period)
    leave_day: np.ndarray  # per user: day index they left (_NEVER: still there)
    skill: np.ndarray  # per rep: latent selling skill ~ N(0, 1)
    manager: np.ndarray  # per user: manager user index (-1: none)
    first: pl.Series
    last: pl.Series
    email: pl.Series  # lower case, unique
    user_id: pl.Series
    users: pl.DataFrame  # User.csv
    acc_start: np.ndarray  # per rep: first account index
    acc_selling: np.ndarray  # per rep: number of accounts with pipeline (the last one is a prospect)
    acc_owner: np.ndarray  # per account: rep index
    account_id: pl.Series
    account_name: pl.Series
    account_domain: pl.Series
    account_deleted: np.ndarray
    accounts: pl.DataFrame  # Account.csv
    con_start: np.ndarray  # per account: first contact index
    con_count: np.ndarray  # per account: number of contacts
    contact_id: pl.Series
    contacts: pl.DataFrame  # Contact.csv


def _people(rng: np.random.Generator, n: int) -> tuple[pl.Series, pl.Series, pl.Series]:
    """Draw first names, last names and their email local parts (``first.last``)."""
    fi = rng.integers(0, len(_FIRST), n)
    li = rng.integers(0, len(_LAST), n)
    first = pl.Series(_FIRST, dtype=pl.String).gather(fi)
    last = pl.Series(_LAST, dtype=pl.String).gather(li)
    local = pl.select(
        pl.concat_str([
            pl.Series([_slug(x) for x in _FIRST]).gather(fi), pl.lit("."),
            pl.Series([_slug(x) for x in _LAST]).gather(li),
        ])
    ).to_series()
    return first, last, local


def _unique_emails(local: pl.Series, domain: str) -> pl.Series:
    """Make addresses unique the way IT departments do: ``jane.doe``, then ``jane.doe2``."""
    df = pl.DataFrame({"local": local}).with_columns(k=pl.int_range(pl.len()).over("local"))
    return df.select(
        pl.concat_str([
            pl.col("local"),
            pl.when(pl.col("k") > 0).then((pl.col("k") + 1).cast(pl.String)).otherwise(pl.lit("")),
            pl.lit("@" + domain),
        ])
    ).to_series()


def _company_names(rng: np.random.Generator, n: int) -> tuple[pl.Series, pl.Series, np.ndarray]:
    """Draw company names (some with commas and quotes, as real ones), domains and industries."""
    pi = rng.integers(0, len(_COMPANY), n)
    ci = rng.integers(0, len(_CORE), n)
    si = rng.integers(0, len(_CO_SUFFIX), n)
    quoted = rng.random(n) < 0.01
    prefix = pl.Series(_COMPANY).gather(pi)
    prefix = pl.select(
        pl.when(pl.Series(quoted)).then(pl.concat_str([pl.lit('"'), prefix, pl.lit('"')])).otherwise(prefix)
    ).to_series()
    name = pl.select(
        pl.concat_str([prefix, pl.lit(" "), pl.Series([c for c, _ in _CORE]).gather(ci),
                       pl.Series(_CO_SUFFIX).gather(si)])
    ).to_series()
    domain = pl.select(
        pl.concat_str([pl.Series([_slug(c) for c in _COMPANY]).gather(pi),
                       pl.Series([_slug(c) for c, _ in _CORE]).gather(ci), pl.lit(".com")])
    ).to_series()
    return name, domain, ci


def _build_org(cal: _Calendar, reps: int, seed: int) -> _Org:
    """Create the CRM users, accounts and contacts of an org with ``reps`` sales reps."""
    rng = _stream(seed, "org")
    # Reps, grouped by region so that teams of about eight share a region and a manager.
    rep_region = np.sort(rng.choice(len(_REGIONS), size=reps, p=[r[2] for r in _REGIONS]))
    skill = rng.standard_normal(reps)
    team_of_rep = np.zeros(reps, np.int64)
    team_region: list[int] = []
    for r in range(len(_REGIONS)):
        members = np.flatnonzero(rep_region == r)
        if members.size == 0:
            continue
        n_teams = math.ceil(members.size / 8)
        team_of_rep[members] = len(team_region) + np.arange(members.size) * n_teams // members.size
        team_region += [r] * n_teams
    n_mgr = len(team_region)
    vp_regions = sorted(set(team_region))
    n_vp = len(vp_regions)
    n_sup = max(2, round(reps / 25))
    n_oth = max(2, round(reps / 50))
    n = reps + n_mgr + n_vp + n_sup + n_oth
    kind = np.concatenate([np.zeros(reps), np.ones(n_mgr), np.full(n_vp, 2), np.full(n_sup, 3),
                           np.full(n_oth, 4)]).astype(np.int8)
    region = np.concatenate([rep_region, team_region, vp_regions, np.full(n_sup + n_oth, -1)]).astype(np.int64)
    country = np.zeros(n, np.int64)
    offset = np.zeros(n, np.int64)
    for r, (_, countries, _) in enumerate(_REGIONS):
        at = np.flatnonzero(region == r)
        country[at] = rng.integers(0, len(countries), at.size)
        offset[at] = np.array([c[2] for c in countries])[country[at]]
    offset[region < 0] = -300
    manager = np.full(n, -1, np.int64)
    manager[:reps] = reps + team_of_rep
    vp_index = {r: reps + n_mgr + i for i, r in enumerate(vp_regions)}
    manager[reps : reps + n_mgr] = [vp_index[r] for r in team_region]
    # Tenure: most people were hired before the period; some reps join during it, some leave.
    tenure = np.exp(rng.normal(math.log(900), 0.7, n)).astype(np.int64) + 30
    hire = -tenure
    new = (kind == 0) & (rng.random(n) < 0.08)
    hire[new] = rng.integers(0, max(1, int(0.6 * cal.n_days)), int(new.sum()))
    leave = np.full(n, _NEVER, np.int64)
    left = (kind == 0) & ~new & (rng.random(n) < 0.05)
    leave[left] = rng.integers(int(0.5 * cal.n_days), cal.n_days, int(left.sum()))

    first, last, local = _people(rng, n)
    email = _unique_emails(local, _ORG_DOMAIN)
    user_id = _salesforce_ids("005", _id_counters(rng, n, hire))
    role_names = (
        [f"Sales Rep - {r[0]}" for r in _REGIONS] + [f"Sales Manager - {r[0]}" for r in _REGIONS]
        + [f"VP Sales - {r[0]}" for r in _REGIONS] + ["Customer Support", "Operations"]
    )
    role_id = _salesforce_ids("00E", _id_counters(rng, len(role_names)))
    nreg = len(_REGIONS)
    role = np.where(kind <= 2, kind * nreg + np.maximum(region, 0), np.where(kind == 3, 3 * nreg, 3 * nreg + 1))
    rep_title = rng.choice(len(_REP_TITLES), size=n, p=[0.55, 0.25, 0.12, 0.08])
    rep_title = np.where((tenure > 3 * 365) & (rep_title == 0), 1, rep_title)
    other_titles = ("Marketing Manager", "Sales Operations Analyst", "Sales Enablement Manager",
                    "System Administrator")
    other_depts = ("Marketing", "Sales Operations", "Enablement", "IT")
    oth_pick = rng.integers(0, len(other_titles), n)
    title = pl.select(
        pl.when(pl.Series(kind == 0)).then(pl.Series(_REP_TITLES).gather(rep_title))
        .when(pl.Series(kind == 1)).then(pl.lit("Regional Sales Manager"))
        .when(pl.Series(kind == 2)).then(pl.lit("Vice President, Sales"))
        .when(pl.Series(kind == 3)).then(pl.lit("Customer Support Engineer"))
        .otherwise(pl.Series(other_titles).gather(oth_pick))
    ).to_series()
    dept = pl.select(
        pl.when(pl.Series(kind <= 2)).then(pl.lit("Sales"))
        .when(pl.Series(kind == 3)).then(pl.lit("Customer Support"))
        .otherwise(pl.Series(other_depts).gather(oth_pick))
    ).to_series()
    region_name = _masked(pl.Series([r[0] for r in _REGIONS]).gather(np.maximum(region, 0)), region >= 0)
    hire_ts = cal.business_instants(hire, hire + 1, rng.random(n), rng.integers(8 * 3600, 18 * 3600, n),
                                    offset)
    hire_ts = np.where(hire < 0, (cal.start_day + hire) * _DAY + rng.integers(8 * 3600, 18 * 3600, n) - offset * 60,
                       hire_ts)
    users = pl.DataFrame({
        "Id": user_id,
        "Username": pl.select(pl.concat_str([email, pl.lit(".crm")])).to_series(),
        "Email": email,
        "FirstName": first,
        "LastName": last,
        "Name": pl.select(pl.concat_str([first, pl.lit(" "), last])).to_series(),
        "IsActive": leave >= cal.n_days,
        "UserRoleId": pl.Series(role_id).gather(role),
        "ManagerId": _masked(user_id.gather(np.maximum(manager, 0)), manager >= 0),
        "Department": dept,
        "Title": title,
        "CreatedDate": _sf_datetime(hire_ts),
        "Region__c": region_name,
    })

    # Accounts: each rep owns a few customer accounts with pipeline and one prospect account.
    selling = 1 + rng.poisson(4.5, reps)
    per_rep = selling + 1
    acc_start = np.concatenate([[0], np.cumsum(per_rep)[:-1]])
    n_acc = int(per_rep.sum())
    acc_owner = np.repeat(np.arange(reps), per_rep)
    is_prospect = np.zeros(n_acc, bool)
    is_prospect[acc_start + selling] = True
    acc_created = cal.start_s - rng.integers(30 * _DAY, 6 * 365 * _DAY, n_acc)
    acc_name, acc_domain, core = _company_names(rng, n_acc)
    employees = np.exp(rng.normal(math.log(400), 1.4, n_acc)).astype(np.int64) + 5
    revenue = np.round(employees * np.exp(rng.normal(math.log(180_000), 0.5, n_acc)), -3)
    acc_region = rep_region[acc_owner]
    acc_country_idx = country[acc_owner]
    countries_flat = [(r, c) for r, reg in enumerate(_REGIONS) for c in range(len(reg[1]))]
    cflat = _flat_country(acc_region, acc_country_idx)
    country_names = [_REGIONS[r][1][c][0] for r, c in countries_flat]
    states = [_REGIONS[r][1][c][1] for r, c in countries_flat]
    state_pick = rng.random(n_acc)
    n_states = np.array([len(s) for s in states])[cflat]
    state_off = np.concatenate([[0], np.cumsum([len(s) for s in states])[:-1]])[cflat]
    all_states = [s for group in states for s in group] or [""]
    state_idx = state_off + np.floor(state_pick * np.maximum(n_states, 1)).astype(np.int64)
    acc_deleted = is_prospect & (rng.random(n_acc) < 0.03)
    account_id = _salesforce_ids("001", _id_counters(rng, n_acc, acc_created))
    acc_type = pl.select(
        pl.when(pl.Series(is_prospect)).then(pl.lit("Prospect"))
        .otherwise(_pick(rng, ("Customer - Direct", "Customer - Channel"), n_acc, (0.8, 0.2)))
    ).to_series()
    tier = np.where(employees >= 2000, "Enterprise", np.where(employees >= 200, "Mid-Market", "SMB"))
    accounts = pl.DataFrame({
        "Id": account_id,
        "IsDeleted": acc_deleted,
        "Name": acc_name,
        "Type": acc_type,
        "Industry": pl.Series([i for _, i in _CORE]).gather(core),
        "AnnualRevenue": revenue.astype(np.int64),
        "NumberOfEmployees": employees,
        "OwnerId": user_id.gather(acc_owner),
        "BillingState": _masked(pl.Series(all_states).gather(np.minimum(state_idx, len(all_states) - 1)),
                                n_states > 0),
        "BillingCountry": pl.Series(country_names).gather(cflat),
        "CreatedDate": _sf_datetime(acc_created),
        "Tier__c": pl.Series(tier),
    })

    # Contacts: a few per account, at the account's domain.
    con_count = 1 + rng.poisson(1.5, n_acc)
    con_start = np.concatenate([[0], np.cumsum(con_count)[:-1]])
    n_con = int(con_count.sum())
    con_acc = np.repeat(np.arange(n_acc), con_count)
    cfirst, clast, clocal = _people(rng, n_con)
    con_created = acc_created[con_acc] + (rng.random(n_con) * (cal.start_s - acc_created[con_acc])).astype(np.int64)
    contact_id = _salesforce_ids("003", _id_counters(rng, n_con, con_created))
    contacts = pl.DataFrame({
        "Id": contact_id,
        "IsDeleted": acc_deleted[con_acc] | (rng.random(n_con) < 0.003),
        "AccountId": account_id.gather(con_acc),
        "FirstName": cfirst,
        "LastName": clast,
        "Email": pl.select(pl.concat_str([clocal, pl.lit("@"), acc_domain.gather(con_acc)])).to_series(),
        "Title": _pick(rng, _CONTACT_TITLES, n_con),
        "CreatedDate": _sf_datetime(con_created),
        "Buying_Role__c": _pick(rng, ("Decision Maker", "Economic Buyer", "Champion", "Influencer",
                                      "Evaluator"), n_con),
    })
    return _Org(
        n_reps=reps, kind=kind, region=region, country=country, offset_min=offset, hire_day=hire,
        leave_day=leave, skill=skill, manager=manager, first=first, last=last, email=email,
        user_id=user_id, users=users, acc_start=acc_start, acc_selling=selling, acc_owner=acc_owner,
        account_id=account_id, account_name=acc_name, account_domain=acc_domain,
        account_deleted=acc_deleted, accounts=accounts, con_start=con_start, con_count=con_count,
        contact_id=contact_id, contacts=contacts,
    )


def _flat_country(region: np.ndarray, country: np.ndarray) -> np.ndarray:
    """Map (region, country-within-region) pairs to an index over all countries, vectorised."""
    sizes = np.array([len(r[1]) for r in _REGIONS])
    first = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return first[region] + country


# --------------------------------------------------------------------------------------------
# The LMS directory
# --------------------------------------------------------------------------------------------

_PARTNER_DOMAINS = ("northstar-partners.com", "channelpro.example.net", "contractor.example.org")


@dataclass
class _Learners:
    """Everyone who appears in the LMS: CRM users (same index), partners, and orphans.

    Orphans are learner ids seen in statements (account actors) but missing from the directory,
    e.g. accounts deleted from the LMS: they can never be linked.
    """

    n_users: int
    n_ext: int
    n_orphan: int
    user: np.ndarray  # CRM user index, -1 for partners and orphans
    learner_id: pl.Series
    dir_email: pl.Series  # as written in learners.csv (some mixed case)
    mbox_email: pl.Series  # as written in statements (some mixed case)
    name: pl.Series
    department: pl.Series
    title: pl.Series
    hire_day: np.ndarray
    leave_day: np.ndarray
    offset_min: np.ndarray
    account_always: np.ndarray  # identified only by an account actor
    mixed_mbox: np.ndarray
    mixed_dir: np.ndarray
    in_directory: np.ndarray

    @property
    def n(self) -> int:
        """Number of learners."""
        return self.user.size


def _build_learners(cal: _Calendar, org: _Org, seed: int) -> _Learners:
    """Create the LMS population: every CRM user, plus partner staff and a few orphan ids."""
    rng = _stream(seed, "learners")
    n_users = org.kind.size
    n_ext = max(3, round(0.06 * org.n_reps))
    n_orphan = max(1, round(org.n_reps / 4000))
    n = n_users + n_ext + n_orphan
    efirst, elast, elocal = _people(rng, n_ext + n_orphan)
    edomain = pl.Series(_PARTNER_DOMAINS).gather(rng.integers(0, len(_PARTNER_DOMAINS), n_ext + n_orphan))
    eemail = pl.select(pl.concat_str([elocal, pl.lit("@"), edomain])).to_series()
    is_contractor = rng.random(n_ext + n_orphan) < 0.3
    email = pl.concat([org.email, eemail])
    ids = rng.choice(9_000_000, size=n, replace=False) + 1_000_000
    learner_id = pl.Series([f"L{i}" for i in ids.tolist()], dtype=pl.String)
    user = np.concatenate([np.arange(n_users), np.full(n_ext + n_orphan, -1)])
    ext_offset = np.array([-300, -360, -480, 0, 60])[rng.integers(0, 5, n_ext + n_orphan)]
    ext_hire = -rng.integers(30, 1500, n_ext + n_orphan)
    ext_leave = np.full(n_ext + n_orphan, _NEVER, np.int64)
    # Orphans: short-lived LMS accounts somewhere in the period.
    o_start = rng.integers(0, max(1, cal.n_days - 120), n_orphan)
    ext_hire[n_ext:] = o_start
    ext_leave[n_ext:] = o_start + 120
    in_directory = np.concatenate([np.ones(n_users + n_ext, bool), np.zeros(n_orphan, bool)])
    mixed_mbox = (rng.random(n) < 0.25) & in_directory
    mixed_dir = (rng.random(n) < 0.08) & in_directory
    style = rng.integers(0, 2, n)
    emails = email.to_list()
    mbox = [_mixed_case(e, int(s)) if m else e for e, s, m in zip(emails, style, mixed_mbox, strict=True)]
    direct = [_mixed_case(e, 1) if m else e for e, m in zip(emails, mixed_dir, strict=True)]
    account_always = (rng.random(n) < 0.15) | ~in_directory
    return _Learners(
        n_users=n_users, n_ext=n_ext, n_orphan=n_orphan, user=user, learner_id=learner_id,
        dir_email=pl.Series(direct, dtype=pl.String), mbox_email=pl.Series(mbox, dtype=pl.String),
        name=pl.concat([
            pl.select(pl.concat_str([org.first, pl.lit(" "), org.last])).to_series(),
            pl.select(pl.concat_str([efirst, pl.lit(" "), elast])).to_series(),
        ]),
        department=pl.concat([
            org.users["Department"],
            pl.select(pl.when(pl.Series(is_contractor)).then(pl.lit("Contractor"))
                      .otherwise(pl.lit("Partner - Channel Sales"))).to_series(),
        ]),
        title=pl.concat([
            org.users["Title"],
            pl.select(pl.when(pl.Series(is_contractor)).then(pl.lit("Contract Sales Consultant"))
                      .otherwise(pl.lit("Channel Account Manager"))).to_series(),
        ]),
        hire_day=np.concatenate([org.hire_day, ext_hire]),
        leave_day=np.concatenate([org.leave_day, ext_leave]),
        offset_min=np.concatenate([org.offset_min, ext_offset]),
        account_always=account_always, mixed_mbox=mixed_mbox, mixed_dir=mixed_dir,
        in_directory=in_directory,
    )


# --------------------------------------------------------------------------------------------
# Training: who enrols, who completes, when
# --------------------------------------------------------------------------------------------


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


def _enrol_intercept(skill: np.ndarray, slope: float, share: float) -> float:
    """Solve for the intercept that makes ``mean(logistic(a + slope·skill)) == share``."""
    lo, hi = -20.0, 20.0
    for _ in range(80):
        mid = (lo + hi) / 2
        if _logistic(mid + slope * skill).mean() < share:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _assign_training(cal: _Calendar, org: _Org, learners: _Learners, sc: _Scenario, seed: int, *,
                     window: tuple[np.ndarray, np.ndarray] | None = None) -> _Training:
    """Decide per scenario who is trained and when, including dropouts and voided completions.

    ``window`` (scenario crm_golive) gives each rep's days ``[lo, hi)`` to complete in: every
    eligible rep enrols, whatever the scenario's assignment says.
    """
    rng = _stream(seed, "training")
    reps = org.n_reps
    roll_lo = cal.day_at(sc.rollout[0])
    roll_hi = min(cal.n_days - 1, max(roll_lo + 20, cal.day_at(sc.rollout[1])))
    eligible = (org.hire_day[:reps] < roll_lo) & (org.leave_day[:reps] > roll_hi)
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
    elif sc.assignment == "random_waves":
        k = int(np.rint(sc.enrol_share * elig.size))
        chosen = perm[:k]
        enrolled[chosen] = True
        edges = roll_lo + (roll_hi - roll_lo) * np.arange(sc.waves + 1) // sc.waves
        wave = np.arange(k) % sc.waves
        lo[chosen], hi[chosen] = edges[wave], edges[wave + 1]
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
    drop_span = rng.integers(2 * _DAY, 20 * _DAY, ne)
    e_lesson_hi = np.where(e_completes, np.maximum(e_start + 3600, e_would - 30 * 3600),
                           np.minimum(e_start + drop_span, cal.end_s - 3 * 3600))
    e_lessons = np.where(e_completes, len(_LESSONS), rng.integers(1, len(_LESSONS), ne))
    e_fail = e_completes & (rng.random(ne) < 0.12)
    is_vo = np.isin(e_learner, voided_only) & (np.arange(ne) < enrolled_idx.size)
    is_vr = np.isin(e_learner, voided_then_real) & (np.arange(ne) < enrolled_idx.size)
    e_spurious = np.full(ne, -1, np.int64)
    e_spurious[is_vr] = e_start[is_vr] + 45
    e_spurious[is_vo] = e_lesson_hi[is_vo] + 3600
    e_void = np.where(e_spurious >= 0, np.minimum(e_spurious + rng.integers(_DAY // 2, 10 * _DAY, ne),
                                                  cal.end_s - 1), -1)
    flags = np.zeros(reps, bool)
    return _Training(
        roll_lo=roll_lo, roll_hi=roll_hi, eligible=eligible, enrolled=enrolled,
        complete_s=complete_s, complete_day=complete_day,
        dropout=_flag(flags, dropouts), voided_only=_flag(flags, voided_only),
        voided_then_real=_flag(flags, voided_then_real),
        e_learner=e_learner, e_start_s=e_start, e_lesson_hi_s=e_lesson_hi,
        e_complete_s=np.where(e_completes, e_would, -1), e_lessons=e_lessons, e_fail_first=e_fail,
        e_spurious_s=e_spurious, e_void_s=e_void,
    )


def _flag(template: np.ndarray, where: np.ndarray) -> np.ndarray:
    """Return a boolean array shaped like ``template``, true at the indices ``where``."""
    out = np.zeros_like(template, dtype=bool)
    out[where] = True
    return out


# --------------------------------------------------------------------------------------------
# Opportunities and their potential outcomes
# --------------------------------------------------------------------------------------------


@dataclass
class _Opps:
    """Every opportunity with both potential outcomes and the observed one."""

    owner: np.ndarray  # rep index
    account: np.ndarray
    created_s: np.ndarray
    created_day: np.ndarray  # UTC day index
    type: np.ndarray
    lead_source: np.ndarray  # index into _LEAD_SOURCES, -1: empty
    u_win: np.ndarray
    p0: np.ndarray
    p1: np.ndarray
    won0: np.ndarray
    won1: np.ndarray
    amount0: np.ndarray
    amount1: np.ndarray
    cycle0: np.ndarray
    cycle1: np.ndarray
    exposed: np.ndarray  # owner completed the program before the CreatedDate (UTC dates)
    days_since: np.ndarray  # created_day - owner's completion day (meaningless if never trained)
    won: np.ndarray
    amount: np.ndarray
    cycle: np.ndarray
    close_day: np.ndarray
    closed: np.ndarray
    deleted: np.ndarray
    amount_missing: np.ndarray
    stage: np.ndarray  # open: index into _OPEN_STAGES; closed: -1
    opp_id: pl.Series = field(default_factory=lambda: pl.Series([], dtype=pl.String))
    lessons_before: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # microlessons only

    @property
    def n(self) -> int:
        """Number of opportunities."""
        return self.owner.size


def _simulate_opportunities(cal: _Calendar, org: _Org, tr: _Training, sc: _Scenario, seed: int,
                            dose: _Doses | None = None) -> _Opps:
    """Draw the pipeline and both potential outcomes of every deal; observe one of them.

    All random numbers come from a stream that does not depend on the scenario, so every
    scenario of a seed has the same deals and only their exposure to training differs.
    With ``dose`` (scenario ``microlessons``) the treated outcome is the one at the lessons the
    owner had done before the deal, and the untreated log-odds carry each rep's own trend; no
    random number is drawn for either, so the deals stay the same.
    """
    rng = _stream(seed, "opportunities")
    reps = org.n_reps
    lo = np.clip(org.hire_day[:reps], 0, cal.n_days)
    hi = np.clip(org.leave_day[:reps], 0, cal.n_days)
    exposure = np.maximum(hi - lo, 0)
    rate = _OPPS_PER_REP_MONTH * np.exp(_SKILL_RATE * org.skill - _SKILL_RATE**2 / 2)
    count = rng.poisson(rate * exposure / 30.4375)
    owner = np.repeat(np.arange(reps), count)
    n = owner.size
    created = cal.business_instants(lo[owner], hi[owner], rng.random(n), rng.integers(8 * 3600, 18 * 3600, n),
                                    org.offset_min[owner])
    order = np.argsort(created, kind="stable")
    owner, created = owner[order], created[order]
    day = created // _DAY - cal.start_day
    years = day / 365.25
    skill = org.skill[owner]

    u_win = rng.random(n)
    typ = rng.choice(len(_TYPES), size=n, p=_TYPE_SHARE)
    z_amount = rng.standard_normal(n)
    z_cycle = rng.standard_normal(n)
    lead_source = np.where(rng.random(n) < 0.05, -1, rng.integers(0, len(_LEAD_SOURCES), n))
    account = org.acc_start[owner] + np.floor(rng.random(n) * org.acc_selling[owner]).astype(np.int64)
    deleted = rng.random(n) < 0.004
    u_missing = rng.random(n)
    u_stage = rng.random(n)

    eta0 = (_BASE_WIN_LOGIT + _SKILL_WIN_LOGIT * skill + np.array(_TYPE_WIN_LOGIT)[typ]
            + _TREND_WIN_LOGIT_PER_YEAR * years + np.array(_SEASON)[cal.month_of_year[day]])
    amount0 = np.round(
        _AMOUNT_MEDIAN * np.array(_TYPE_AMOUNT)[typ]
        * np.exp(_AMOUNT_SIGMA * z_amount + _AMOUNT_SKILL * skill + _AMOUNT_TREND_PER_YEAR * years), -1
    )
    amount0 = np.maximum(amount0, 500.0)
    cycle0 = np.maximum(3, np.round(_CYCLE_MEDIAN * np.array(_TYPE_CYCLE)[typ] * np.exp(_CYCLE_SIGMA * z_cycle)))
    cycle0 = cycle0.astype(np.int64)

    comp_day = tr.complete_day[owner]
    days_since = day - comp_day
    exposed = (comp_day < _NEVER) & (days_since >= 1)
    # The effect's size: full at once, or growing with time since completion (staggered).
    # For deals never exposed it is the full effect: what training would have done.
    ramp = np.clip(days_since / max(sc.ramp_days, 1), 0.0, 1.0)
    scale = np.where(exposed, ramp, 1.0) if sc.ramp_days else np.ones(n)
    eta1 = eta0 + sc.win_logit * scale
    lessons_before = np.zeros(0, np.int64)
    if dose is not None:
        eta0 = eta0 + dose.trend_per_year * dose.engagement[owner] * (day - tr.roll_lo) / 365.25
        lessons_before = dose.lessons_before(owner, day)
        eta1 = eta0 + dose.win_logit_per_lesson * lessons_before
    p0, p1 = _logistic(eta0), _logistic(eta1)
    won0, won1 = u_win < p0, u_win < p1
    amount1 = np.round(amount0 * (1.0 + sc.deal_size * scale), 2)
    cycle1 = np.maximum(1, np.round(cycle0 * (1.0 - sc.cycle * scale))).astype(np.int64)

    won = np.where(exposed, won1, won0)
    amount = np.where(exposed, amount1, amount0)
    cycle = np.where(exposed, cycle1, cycle0)
    close_day = day + cycle
    closed = close_day < cal.n_days
    won = won & closed
    elapsed = (cal.n_days - day) / cycle
    stage = np.where(closed, -1, np.minimum(len(_OPEN_STAGES) - 1, np.floor(elapsed * u_stage * 6.99)).astype(np.int64))
    # Real exports lack an amount on some deals that never closed won; never on won ones.
    amount_missing = ~won & (u_missing < 0.04)
    opp_id = _salesforce_ids("006", _id_counters(rng, n))
    return _Opps(
        owner=owner, account=account, created_s=created, created_day=day, type=typ,
        lead_source=lead_source, u_win=u_win, p0=p0, p1=p1, won0=won0, won1=won1,
        amount0=amount0, amount1=amount1, cycle0=cycle0, cycle1=cycle1, exposed=exposed,
        days_since=days_since, won=won, amount=amount, cycle=cycle, close_day=close_day,
        closed=closed, deleted=deleted, amount_missing=amount_missing, stage=stage, opp_id=opp_id,
        lessons_before=lessons_before,
    )


# --------------------------------------------------------------------------------------------
# CRM files
# --------------------------------------------------------------------------------------------


def _write_csv(df: pl.DataFrame, path: Path, *, bom: bool = False, decimals: int | None = 2) -> int:
    """Write ``df`` as an export CSV (quoted where needed, ``true``/``false``); return its rows.

    Floats are money in these files, hence two decimals by default.
    """
    df.write_csv(path, include_bom=bom, float_precision=decimals)
    return df.height


def _region_names(org: _Org, users: np.ndarray) -> pl.Series:
    """Return the Region__c value of each user in ``users``."""
    region = org.region[users]
    return _masked(pl.Series([r[0] for r in _REGIONS]).gather(np.maximum(region, 0)), region >= 0)


def _opportunity_frame(cal: _Calendar, org: _Org, o: _Opps, seed: int) -> pl.DataFrame:
    """Build Opportunity.csv: observed outcomes only, as the CRM shows them."""
    rng = _stream(seed, "opportunity-file")
    phrases = [p for t in range(len(_TYPES)) for p in _PHRASES[t]]
    sizes = np.array([len(_PHRASES[t]) for t in range(len(_TYPES))])
    first = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    phrase = first[o.type] + np.floor(rng.random(o.n) * sizes[o.type]).astype(np.int64)
    stage_names = pl.Series([s for s, _ in _OPEN_STAGES])
    stage_prob = np.array([p for _, p in _OPEN_STAGES])
    stage = pl.select(
        pl.when(pl.Series(o.closed & o.won)).then(pl.lit("Closed Won"))
        .when(pl.Series(o.closed)).then(pl.lit("Closed Lost"))
        .otherwise(stage_names.gather(np.maximum(o.stage, 0)))
    ).to_series()
    prob = np.where(o.closed, np.where(o.won, 100, 0), stage_prob[np.maximum(o.stage, 0)])
    return pl.DataFrame({
        "Id": o.opp_id,
        "IsDeleted": o.deleted,
        "AccountId": org.account_id.gather(o.account),
        "OwnerId": org.user_id.gather(o.owner),
        "Name": pl.select(pl.concat_str([org.account_name.gather(o.account), pl.lit(" - "),
                                         pl.Series(phrases).gather(phrase)])).to_series(),
        "Type": pl.Series(_TYPES).gather(o.type),
        "StageName": stage,
        "Amount": pl.Series(np.where(o.amount_missing, np.nan, o.amount)).fill_nan(None),
        "Probability": prob.astype(np.int64),
        "CloseDate": _dates(cal.start_day + o.close_day),
        "LeadSource": _masked(pl.Series(_LEAD_SOURCES).gather(np.maximum(o.lead_source, 0)), o.lead_source >= 0),
        "IsClosed": o.closed,
        "IsWon": o.won,
        "CreatedDate": _sf_datetime(o.created_s),
        "Region__c": _region_names(org, o.owner),
    })


def _history_frame(cal: _Calendar, org: _Org, o: _Opps, seed: int) -> pl.DataFrame:
    """Build OpportunityHistory.csv: the stage at creation, and the stage entered since."""
    rng = _stream(seed, "opportunity-history")
    n = o.n
    guess = o.created_day + np.maximum(7, np.round(o.cycle * rng.uniform(0.6, 1.3, n))).astype(np.int64)
    close_s = cal.business_instants(o.close_day, o.close_day + 1, np.zeros(n), rng.integers(9 * 3600, 18 * 3600, n),
                                    org.offset_min[o.owner])
    close_s = np.maximum(close_s, o.created_s + 60)
    moved = ~o.closed & (o.stage > 0)
    moved_s = o.created_s + (rng.uniform(0.3, 0.95, n) * (cal.end_s - o.created_s)).astype(np.int64)
    idx = np.concatenate([np.arange(n), np.flatnonzero(o.closed), np.flatnonzero(moved)])
    part = np.concatenate([np.zeros(n, np.int8), np.ones(int(o.closed.sum()), np.int8),
                           np.full(int(moved.sum()), 2, np.int8)])
    ts = np.where(part == 0, o.created_s[idx], np.where(part == 1, close_s[idx], moved_s[idx]))
    order = np.lexsort((part, ts))
    idx, part, ts = idx[order], part[order], ts[order]
    names = [s for s, _ in _OPEN_STAGES] + ["Closed Won", "Closed Lost"]
    probs = np.array([p for _, p in _OPEN_STAGES] + [100, 0])
    forecast = ["Pipeline", "Pipeline", "Pipeline", "Pipeline", "Best Case", "Commit", "Closed", "Omitted"]
    closed_code = np.where(o.won, len(_OPEN_STAGES), len(_OPEN_STAGES) + 1)
    code = np.where(part == 0, 0, np.where(part == 1, closed_code[idx], o.stage[idx]))
    amount = np.where(o.amount_missing[idx], np.nan, o.amount[idx])
    return pl.DataFrame({
        "Id": _salesforce_ids("008", _id_counters(rng, idx.size)),
        "OpportunityId": o.opp_id.gather(idx),
        "CreatedById": org.user_id.gather(o.owner[idx]),
        "CreatedDate": _sf_datetime(ts),
        "StageName": pl.Series(names).gather(code),
        "Amount": pl.Series(amount).fill_nan(None),
        "ExpectedRevenue": pl.Series(amount * probs[code] / 100.0).fill_nan(None),
        "CloseDate": _dates(cal.start_day + np.where(part == 0, guess[idx], o.close_day[idx])),
        "Probability": probs[code],
        "ForecastCategory": pl.Series(forecast).gather(code),
        "IsDeleted": o.deleted[idx],
        "Region__c": _region_names(org, o.owner[idx]),
    })


def _lead_frame(cal: _Calendar, org: _Org, o: _Opps, seed: int, *, golive: _GoLive | None = None) -> pl.DataFrame:
    """Build Lead.csv: about one lead per rep and month, a fifth converted into opportunities.

    With ``golive`` (scenario crm_golive) conversions and first responses are potential outcomes
    (:meth:`_GoLive.leads`), and the frame also holds their truth in columns named ``_…``.
    """
    rng = _stream(seed, "leads")
    reps = org.n_reps
    lo = np.clip(org.hire_day[:reps], 0, cal.n_days)
    hi = np.clip(org.leave_day[:reps], 0, cal.n_days)
    exposure = np.maximum(hi - lo, 0).astype(float)
    total = int(rng.poisson(exposure.sum() / 30.4375))
    cand = np.flatnonzero(~o.deleted & (o.created_day >= 30))
    conv = np.sort(rng.choice(cand, size=min(round(_LEAD_CONVERSION * total), cand.size), replace=False))
    n_open = max(0, total - conv.size)
    owner_open = rng.choice(reps, size=n_open, p=exposure / exposure.sum())
    created_open = cal.business_instants(lo[owner_open], hi[owner_open], rng.random(n_open),
                                         rng.integers(8 * 3600, 18 * 3600, n_open), org.offset_min[owner_open])
    created_conv = np.maximum(o.created_s[conv] - rng.integers(_DAY, 30 * _DAY, conv.size), cal.start_s)
    n = n_open + conv.size
    is_conv = np.concatenate([np.zeros(n_open, bool), np.ones(conv.size, bool)])
    owner = np.concatenate([owner_open, o.owner[conv]])
    created = np.concatenate([created_open, created_conv])
    age_days = (cal.end_s - created) // _DAY
    u = rng.random(n)
    status = np.where(is_conv, 0, np.where(age_days < 30, np.where(u < 0.5, 1, 2), np.where(u < 0.85, 3, 2)))
    statuses = ("Closed - Converted", "Open - Not Contacted", "Working - Contacted", "Closed - Not Converted")
    src_open = np.where(rng.random(n_open) < 0.05, -1, rng.integers(0, len(_LEAD_SOURCES), n_open))
    source = np.concatenate([src_open, o.lead_source[conv]])
    first, last, local = _people(rng, n)
    company, domain, _ = _company_names(rng, n)
    opp = np.concatenate([np.full(n_open, -1), conv])  # the opportunity a lead became, -1: none
    conv_day, conv_acc = o.created_day[opp], o.account[opp]  # read only where converted
    truth: dict[str, np.ndarray] = {}
    if golive is not None:
        status, conv_day, conv_acc, truth = golive.leads(cal, org, owner, created, status, conv_day, conv_acc, seed)
    converted = status == 0
    return pl.DataFrame({
        "Id": _salesforce_ids("00Q", _id_counters(rng, n, created)),
        "IsDeleted": rng.random(n) < 0.005,
        "FirstName": first,
        "LastName": last,
        "Company": company,
        "Email": pl.select(pl.concat_str([local, pl.lit("@"), domain])).to_series(),
        "Status": pl.Series(statuses).gather(status),
        "LeadSource": _masked(pl.Series(_LEAD_SOURCES).gather(np.maximum(source, 0)), source >= 0),
        "OwnerId": org.user_id.gather(owner),
        "CreatedDate": _sf_datetime(created),
        "IsConverted": converted,
        "ConvertedDate": _masked(_dates(cal.start_day + conv_day), converted),
        "ConvertedAccountId": _masked(org.account_id.gather(conv_acc), converted),
        "ConvertedContactId": _masked(org.contact_id.gather(org.con_start[conv_acc]), converted),
        "ConvertedOpportunityId": _masked(o.opp_id.gather(np.maximum(opp, 0)), opp >= 0),
        "Lead_Score__c": rng.integers(0, 101, n),
        **truth,
    }).sort("CreatedDate", maintain_order=True)


def _task_frame(cal: _Calendar, org: _Org, o: _Opps, seed: int, *,
                responses: _Responses | None = None) -> pl.DataFrame:
    """Build Task.csv: a couple of calls, emails and to-dos per rep and month, on their deals.

    With ``responses`` (scenario crm_golive) the first response to each lead follows them: a call
    or an email on the lead (``WhoId``), created at the response, like the others in every other way.
    """
    rng = _stream(seed, "tasks")
    m = int(np.rint(2.0 * o.n / _OPPS_PER_REP_MONTH))  # tasks on deals
    opp = np.sort(rng.integers(0, o.n, m))
    limit = np.where(o.closed[opp], (cal.start_day + o.close_day[opp]) * _DAY, cal.end_s - 1)
    created = o.created_s[opp] + (rng.random(m) * np.maximum(limit - o.created_s[opp], 0)).astype(np.int64)
    owner, deleted = o.owner[opp], o.deleted[opp]
    if responses is not None:
        created = np.concatenate([created, responses.at_s])
        owner, deleted = np.concatenate([owner, responses.owner]), np.concatenate([deleted, responses.deleted])
    n = created.size
    activity_day = created // _DAY + rng.integers(0, 6, n)
    end_day = cal.start_day + cal.n_days
    done = (activity_day < end_day - 2) & (rng.random(n) < 0.92)
    completed_s = np.clip(activity_day * _DAY + rng.integers(13 * 3600, 23 * 3600, n), created + 60, cal.end_s - 1)
    subtype = rng.choice(3, size=n, p=(0.45, 0.40, 0.15))
    subtype[m:] = np.minimum(subtype[m:], 1)  # a lead is answered by a call or an email, not a to-do
    subjects = (("Call", "Discovery call", "Follow-up call"),
                ("Email: Proposal sent", "Email: Follow up", "Email: Pricing, next steps"),
                ("Send contract", "Prepare demo", "Update mutual action plan"))
    subject = subtype * 3 + rng.integers(0, 3, n)
    acc = o.account[opp]
    who = org.con_start[acc] + np.floor(rng.random(m) * org.con_count[acc]).astype(np.int64)
    on_opp = rng.random(m) < 0.75
    what = pl.select(pl.when(pl.Series(on_opp)).then(o.opp_id.gather(opp))
                     .otherwise(org.account_id.gather(acc))).to_series()
    who_id, account_id = org.contact_id.gather(who), org.account_id.gather(acc)
    if responses is not None:
        none = pl.repeat(None, n - m, dtype=pl.String, eager=True)
        who_id, what, account_id = (pl.concat([who_id, responses.lead_id]), pl.concat([what, none]),
                                    pl.concat([account_id, none]))
    not_done = np.where(rng.random(n) < 0.6, "Not Started", "In Progress")
    return pl.DataFrame({
        "Id": _salesforce_ids("00T", _id_counters(rng, n, created)),
        "IsDeleted": deleted | ((rng.random(n) < 0.003) & (np.arange(n) < m)),  # a response goes with its lead
        "OwnerId": org.user_id.gather(owner),
        "WhoId": who_id,
        "WhatId": what,
        "AccountId": account_id,
        "Subject": pl.Series([s for group in subjects for s in group]).gather(subject),
        "TaskSubtype": pl.Series(("Call", "Email", "Task")).gather(subtype),
        "ActivityDate": _dates(activity_day),
        "Status": pl.Series(np.where(done, "Completed", not_done)),
        "Priority": _pick(rng, ("Normal", "High"), n, (0.85, 0.15)),
        "IsClosed": done,
        "CreatedDate": _sf_datetime(created),
        "CompletedDateTime": _masked(_sf_datetime(completed_s), done),
        "Call_Result__c": _masked(_pick(rng, ("Connected", "Left Voicemail", "No Answer"), n), subtype == 0),
    })


def _case_frame(cal: _Calendar, org: _Org, seed: int) -> pl.DataFrame:
    """Build Case.csv: support cases of customer accounts with a CSAT__c score once closed."""
    rng = _stream(seed, "cases")
    reps = org.n_reps
    n = int(rng.poisson(0.25 * reps * cal.n_days / 30.4375))
    rep = rng.integers(0, reps, n)
    acc = org.acc_start[rep] + np.floor(rng.random(n) * org.acc_selling[rep]).astype(np.int64)
    contact = org.con_start[acc] + np.floor(rng.random(n) * org.con_count[acc]).astype(np.int64)
    support = np.flatnonzero(org.kind == 3)
    owner = support[rng.integers(0, support.size, n)]
    created = np.sort(cal.business_instants(np.zeros(n), np.full(n, cal.n_days), rng.random(n),
                                            rng.integers(7 * 3600, 19 * 3600, n), np.full(n, -300)))
    closed_s = created + 3600 + rng.exponential(72 * 3600, n).astype(np.int64)
    is_closed = (closed_s < cal.end_s) & (rng.random(n) >= 0.03)
    open_status = _pick(rng, ("New", "Working", "Escalated"), n, (0.3, 0.5, 0.2))
    csat = rng.choice(np.arange(1, 6), size=n, p=(0.05, 0.07, 0.15, 0.35, 0.38))
    return pl.DataFrame({
        "Id": _salesforce_ids("500", _id_counters(rng, n)),
        "IsDeleted": rng.random(n) < 0.002,
        "CaseNumber": pl.Series([f"{i:08d}" for i in range(1001, 1001 + n)], dtype=pl.String),
        "AccountId": org.account_id.gather(acc),
        "ContactId": org.contact_id.gather(contact),
        "OwnerId": org.user_id.gather(owner),
        "Subject": _pick(rng, ("Cannot log in", "Invoice question", "Feature request: export, CSV",
                               'Error "500" on dashboard', "Integration not syncing", "Onboarding help"), n),
        "Status": pl.select(pl.when(pl.Series(is_closed)).then(pl.lit("Closed")).otherwise(open_status)).to_series(),
        "Priority": _pick(rng, ("Low", "Medium", "High"), n, (0.3, 0.5, 0.2)),
        "Origin": _pick(rng, ("Phone", "Email", "Web", "Chat"), n, (0.25, 0.4, 0.25, 0.1)),
        "CreatedDate": _sf_datetime(created),
        "ClosedDate": _masked(_sf_datetime(np.minimum(closed_s, cal.end_s - 1)), is_closed),
        "IsClosed": is_closed,
        "CSAT__c": _masked(pl.Series(csat), is_closed),
    })


# --------------------------------------------------------------------------------------------
# LMS: xAPI statements
# --------------------------------------------------------------------------------------------

_TYPE_IRI = {
    "course": "http://adlnet.gov/expapi/activities/course",
    "lesson": "http://adlnet.gov/expapi/activities/lesson",
    "module": "http://adlnet.gov/expapi/activities/module",
    "video": "https://w3id.org/xapi/video/activity-type/video",
    "quiz": "http://adlnet.gov/expapi/activities/assessment",
    "live": "http://adlnet.gov/expapi/activities/meeting",
}
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
_ADMIN_ACTOR = {"objectType": "Agent", "name": "LMS Administrator", "mbox": "mailto:lms-admin@example.com"}
_AUTHORITY = orjson.dumps(
    {"objectType": "Agent", "name": "Example LMS", "account": {"homePage": _LMS_HOME, "name": "lrs-client"}}
).decode()
_ROLE_OTHER, _ROLE_LESSON, _ROLE_COMPLETED, _ROLE_SPURIOUS, _ROLE_VOID, _ROLE_GROUP, _ROLE_QUIZ = range(7)


@dataclass
class _Stmts:
    """Statements as parallel arrays (one entry per statement), rendered to JSON at the end."""

    learner: np.ndarray  # learner index, -1: none (administrator, group)
    group: np.ndarray  # group index, -1: none
    verb: np.ndarray  # index into _VERBS
    activity: np.ndarray  # activity index, -1: the object is a StatementRef
    ref: np.ndarray  # statement index a voiding statement targets, -1: none
    reg: np.ndarray  # registration (enrolment) index, -1: none
    completion: np.ndarray  # result.completion: -1 absent, 0 false, 1 true
    success: np.ndarray  # result.success: -1 absent, 0 false, 1 true
    raw: np.ndarray  # result.score.raw (0–100), -1 absent
    duration: np.ndarray  # result.duration in seconds, -1 absent
    ts_ms: np.ndarray  # when it happened, UTC epoch milliseconds
    role: np.ndarray  # what the statement is for the truth (_ROLE_*)

    @classmethod
    def make(cls, n: int, **columns: np.ndarray | int) -> _Stmts:
        """Return ``n`` statements; columns not given are absent (-1)."""
        out = {}
        for f in fields(cls):
            value = columns.get(f.name, -1)
            out[f.name] = np.broadcast_to(np.asarray(value, np.int64), (n,)).copy()
        return cls(**out)

    @classmethod
    def concat(cls, parts: list[_Stmts], *, shift_refs: bool = True) -> _Stmts:
        """Concatenate parts.

        With ``shift_refs``, each part's ``ref`` indices count from the part's own start and are
        shifted by its offset; without, they already count from the start of the result.
        """
        offset = 0
        refs = []
        for p in parts:
            refs.append(np.where(p.ref >= 0, p.ref + offset * shift_refs, -1))
            offset += p.learner.size
        out = {f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)}
        out["ref"] = np.concatenate(refs)
        return cls(**out)

    def take(self, idx: np.ndarray) -> _Stmts:
        """Return the statements at ``idx`` (``ref`` keeps pointing at global indices)."""
        return _Stmts(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})


def _program_statements(rng: np.random.Generator, tr: _Training, *, n_lessons: int = len(_LESSONS),
                        quiz_activity: int = 0) -> _Stmts:
    """Statements of a course (activity 0, lessons 1…): lessons, quiz, completion, voided mistakes.

    ``quiz_activity`` is the activity the quiz's passed / failed statements are about: the course
    itself (the Sales Excellence course), or a final assessment of its own (the academy's).
    """
    ne = tr.e_learner.size
    nl = n_lessons
    frac = np.sort(rng.random((ne, nl)), axis=1)
    frac[:, 0] = 0.0
    start_ms = tr.e_start_s * 1000
    span_ms = np.maximum(tr.e_lesson_hi_s - tr.e_start_s, 3600) * 1000 - 20 * 60 * 1000
    t0 = start_ms[:, None] + (frac * span_ms[:, None]).astype(np.int64)
    dur = rng.integers(240, 900, (ne, nl))
    steps = np.stack([np.zeros_like(dur), np.full_like(dur, 3), np.full_like(dur, 8), dur, dur + 3], axis=2)
    lesson_verbs = np.array([_V["launched"], _V["initialized"], _V["experienced"], _V["completed"], _V["terminated"]])
    done = (np.arange(nl)[None, :] < tr.e_lessons[:, None])
    mask = np.broadcast_to(done[:, :, None], (ne, nl, 5))
    shape = (ne, nl, 5)
    b_learner = np.broadcast_to(tr.e_learner[:, None, None], shape)[mask]
    b_reg = np.broadcast_to(np.arange(ne)[:, None, None], shape)[mask]
    b_act = np.broadcast_to(1 + np.arange(nl)[None, :, None], shape)[mask]
    b_verb = np.broadcast_to(lesson_verbs[None, None, :], shape)[mask]
    b_ts = (t0[:, :, None] + steps * 1000)[mask]
    b_dur = np.where(b_verb == _V["completed"], np.broadcast_to(dur[:, :, None], shape)[mask],
                     np.where(b_verb == _V["terminated"], np.broadcast_to(dur[:, :, None] + 3, shape)[mask], -1))
    lessons = _Stmts.make(
        b_learner.size, learner=b_learner, verb=b_verb, activity=b_act, reg=b_reg, ts_ms=b_ts,
        completion=np.where(b_verb == _V["completed"], 1, -1), duration=b_dur, role=_ROLE_LESSON,
    )
    total_s = (dur * done).sum(axis=1)

    comp = np.flatnonzero(tr.e_complete_s >= 0)
    fail = comp[tr.e_fail_first[comp]]
    failed = _Stmts.make(
        fail.size, learner=tr.e_learner[fail], verb=_V["failed"], activity=quiz_activity, reg=fail,
        ts_ms=(tr.e_complete_s[fail] - rng.integers(20 * 3600, 28 * 3600, fail.size)) * 1000
        + rng.integers(0, 1000, fail.size),
        raw=rng.integers(40, 70, fail.size), success=0, duration=rng.integers(300, 900, fail.size),
        role=_ROLE_QUIZ,
    )
    passed = _Stmts.make(
        comp.size, learner=tr.e_learner[comp], verb=_V["passed"], activity=quiz_activity, reg=comp,
        ts_ms=(tr.e_complete_s[comp] - rng.integers(60, 180, comp.size)) * 1000 + rng.integers(0, 1000, comp.size),
        raw=rng.integers(70, 101, comp.size), success=1, duration=rng.integers(300, 900, comp.size),
        role=_ROLE_QUIZ,
    )
    completed = _Stmts.make(
        comp.size, learner=tr.e_learner[comp], verb=_V["completed"], activity=0, reg=comp,
        ts_ms=tr.e_complete_s[comp] * 1000 + rng.integers(0, 1000, comp.size), completion=1,
        duration=total_s[comp], role=_ROLE_COMPLETED,
    )
    bad = np.flatnonzero(tr.e_spurious_s >= 0)
    spurious = _Stmts.make(
        bad.size, learner=tr.e_learner[bad], verb=_V["completed"], activity=0, reg=bad,
        ts_ms=tr.e_spurious_s[bad] * 1000 + rng.integers(0, 1000, bad.size), completion=1,
        duration=rng.integers(0, 60, bad.size), role=_ROLE_SPURIOUS,
    )
    first_spurious = lessons.learner.size + failed.learner.size + passed.learner.size + completed.learner.size
    voids = _Stmts.make(
        bad.size, verb=_V["voided"], ref=first_spurious + np.arange(bad.size),
        ts_ms=tr.e_void_s[bad] * 1000 + rng.integers(0, 1000, bad.size), role=_ROLE_VOID,
    )
    return _Stmts.concat([lessons, failed, passed, completed, spurious, voids], shift_refs=False)


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


_ActivitySpec = tuple[str, str, str, dict[str, Any]]  # (IRI, title, kind, contextActivities)


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


def _activity_json(acts: list[_ActivitySpec]) -> tuple[list[str], list[str], list[str]]:
    """Return per activity: the object JSON, the full context JSON, and its tail after ``{``.

    The tail lets a registration be spliced in front without re-encoding per statement.
    """
    objects, full, tail = [], [], []
    for iri, title, kind, ctx_acts in acts:
        objects.append(orjson.dumps({"objectType": "Activity", "id": iri,
                                     "definition": {"name": {"en-US": title}, "type": _TYPE_IRI[kind]}}).decode())
        ctx: dict[str, Any] = {}
        if ctx_acts:
            ctx["contextActivities"] = ctx_acts
        ctx["platform"] = "Example LMS"
        ctx["language"] = "en-US"
        text = orjson.dumps(ctx).decode()
        full.append(text)
        tail.append(text[1:])
    return objects, full, tail


@dataclass
class _LmsCounts:
    """What the statements file holds, for truth.json's mess counts."""

    lines: int = 0
    statements: int = 0
    duplicate_statements: int = 0
    malformed_lines: int = 0
    voided_completions: int = 0
    account_actor_statements: int = 0
    account_actor_unknown_learner_statements: int = 0
    mixed_case_email_statements: int = 0
    group_actor_statements: int = 0
    timestamps_with_offset: int = 0
    program_completions: int = 0


def _offset_text(minutes: int) -> str:
    """Return a UTC offset as ``+02:00`` / ``-05:00``."""
    sign = "+" if minutes >= 0 else "-"
    h, m = divmod(abs(minutes), 60)
    return f"{sign}{h:02d}:{m:02d}"


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
    names = lr.name.to_list()
    mboxes = lr.mbox_email.to_list()
    lids = lr.learner_id.to_list()
    actor_json = [orjson.dumps({"objectType": "Agent", "name": nm, "mbox": f"mailto:{mb}"}).decode()
                  for nm, mb in zip(names, mboxes, strict=True)]
    actor_json += [orjson.dumps({"objectType": "Agent", "name": nm,
                                 "account": {"homePage": _LMS_HOME, "name": lid}}).decode()
                   for nm, lid in zip(names, lids, strict=True)]
    actor_json += [*group_actors, orjson.dumps(_ADMIN_ACTOR).decode()]
    learner = np.maximum(st.learner, 0)
    by_account = lr.account_always[learner] | (rng.random(n) < 0.03)
    actor = np.where(st.learner >= 0, learner + lr.n * by_account,
                     np.where(st.group >= 0, 2 * lr.n + st.group, 2 * lr.n + len(group_actors)))
    # Time zones: most statements in the learner's own offset, some normalised to Z by the LMS.
    offsets = sorted({int(x) for x in lr.offset_min.tolist()} | {0})
    suffixes = ["Z"] + [_offset_text(m) for m in offsets]
    offset = np.where(st.learner >= 0, lr.offset_min[learner], 0)
    as_z = (st.learner < 0) | (rng.random(n) < 0.3) | ((offset == 0) & (rng.random(n) < 0.5))
    tz = np.where(as_z, 0, 1 + np.searchsorted(np.array(offsets), offset))
    local_ms = st.ts_ms + np.where(as_z, 0, offset) * 60_000
    written = _write_lines(path, rng, cal, st, ids=ids, regs=regs, actor_json=actor_json, actor=actor, tz=tz,
                           suffixes=suffixes, local_ms=local_ms, activities=activities or _sales_activities(),
                           report=report)
    valid = written.keep
    learner_valid = st.learner[valid] >= 0
    acc = learner_valid & by_account[valid]
    return _LmsCounts(
        lines=written.lines,
        statements=int(valid.size),
        duplicate_statements=int(written.duplicates.size),
        malformed_lines=int(written.lost.size + 2),
        voided_completions=int((st.role == _ROLE_SPURIOUS).sum()),
        account_actor_statements=int(acc.sum()),
        account_actor_unknown_learner_statements=int((acc & ~lr.in_directory[learner[valid]]).sum()),
        mixed_case_email_statements=int((learner_valid & ~by_account[valid] & lr.mixed_mbox[learner[valid]]).sum()),
        group_actor_statements=int((st.group[valid] >= 0).sum()),
        timestamps_with_offset=int((tz[valid] > 0).sum()),
        program_completions=int((st.role == _ROLE_COMPLETED).sum()),
    )


@dataclass(frozen=True)
class _Lines:
    """What :func:`_write_lines` wrote: lines, the statements kept whole, and the mess added."""

    lines: int
    keep: np.ndarray  # statement indices written as well-formed lines (sorted)
    duplicates: np.ndarray  # statement indices written a second time
    lost: np.ndarray  # statement indices whose line was truncated


def _write_lines(path: Path, rng: np.random.Generator, cal: _Calendar, st: _Stmts, *, ids: pl.Series,
                 regs: pl.Series, actor_json: list[str], actor: np.ndarray, tz: np.ndarray, suffixes: list[str],
                 local_ms: np.ndarray, activities: list[_ActivitySpec],
                 report: Callable[[str, float], None]) -> _Lines:
    """Write statements as JSON lines in order of storage, with duplicates and malformed lines.

    ``actor`` indexes ``actor_json``, ``tz`` indexes ``suffixes`` and ``activities`` lists the
    activities that ``st.activity`` indexes; ``local_ms`` is each timestamp in its own offset.
    """
    n = st.learner.size
    delay = np.where(rng.random(n) < 0.85, rng.integers(200, 90_000, n), rng.integers(300_000, 36 * 3600_000, n))
    stored_ms = st.ts_ms + delay

    # Mess: lost (truncated) lines, duplicates, and two lines that are not statements at all.
    others = np.flatnonzero(st.role == _ROLE_OTHER)
    lost = _at_least(rng, others, 1 / 300_000, 2)
    keep = np.setdiff1d(np.arange(n), lost)
    dups = _at_least(rng, keep, 0.002, 2)
    line_stmt = np.concatenate([keep, dups, lost, [0, 0]])
    special = np.concatenate([np.zeros(keep.size + dups.size, np.int8), np.ones(lost.size, np.int8), [2, 3]])
    key = np.concatenate([stored_ms[keep], stored_ms[dups] + rng.integers(3600_000, 72 * 3600_000, dups.size),
                          stored_ms[lost], rng.integers(cal.start_s * 1000, cal.end_s * 1000, 2)])
    order = np.lexsort((np.arange(key.size), key))

    look = {
        "ids": ids, "regs": regs, "actors": pl.Series(actor_json, dtype=pl.String),
        "verbs": pl.Series([orjson.dumps({"id": f"http://adlnet.gov/expapi/verbs/{v}",
                                          "display": {"en-US": v}}).decode() for v in _VERBS]),
        "suffix": pl.Series(suffixes),
    }
    objects, ctx_full, ctx_tail = _activity_json(activities)
    look |= {"objects": pl.Series(objects), "ctx_full": pl.Series(ctx_full), "ctx_tail": pl.Series(ctx_tail)}
    chunk = 200_000
    with path.open("wb") as fh:
        for begin in range(0, order.size, chunk):
            at = order[begin : begin + chunk]
            s = line_stmt[at]
            lines = _render(st.take(s), s, actor[s], tz[s], local_ms[s], stored_ms[s], look)
            sp = special[at]
            if (sp > 0).any():
                fix = np.flatnonzero(sp > 0)
                values = []
                for i in fix.tolist():
                    if sp[i] == 1:
                        text = lines[i]
                        values.append(text[: max(10, int(len(text) * rng.uniform(0.3, 0.8)))])
                    elif sp[i] == 2:
                        values.append('"--- LRS export: page 2 of statements ---"')
                    else:
                        values.append("<html><body><h1>502 Bad Gateway</h1></body></html>")
                lines = lines.scatter(fix, values)
            pl.DataFrame({"line": lines}).write_csv(fh, include_header=False, quote_style="never")
            report("Writing xAPI statements", min(1.0, (begin + at.size) / order.size))

    return _Lines(lines=int(order.size), keep=keep, duplicates=dups, lost=lost)


def _render(st: _Stmts, s: np.ndarray, actor: np.ndarray, tz: np.ndarray, local_ms: np.ndarray,
            stored_ms: np.ndarray, look: dict[str, pl.Series]) -> pl.Series:
    """Render statements as JSON lines with polars string operations (no per-line Python)."""
    act = np.maximum(st.activity, 0)
    df = pl.DataFrame({
        "id": look["ids"].gather(s),
        "actor": look["actors"].gather(actor),
        "verb": look["verbs"].gather(st.verb),
        "obj": look["objects"].gather(act),
        "is_ref": st.activity < 0,
        "ref": look["ids"].gather(np.maximum(st.ref, 0)),
        "has_reg": st.reg >= 0,
        "reg": look["regs"].gather(np.maximum(st.reg, 0)),
        "ctx_full": look["ctx_full"].gather(act),
        "ctx_tail": look["ctx_tail"].gather(act),
        "raw": st.raw, "success": st.success, "completion": st.completion, "dur": st.duration,
        "ts": pl.from_epoch(pl.Series(local_ms), time_unit="ms").dt.strftime("%Y-%m-%dT%H:%M:%S%.3f"),
        "tz": look["suffix"].gather(tz),
        "stored": pl.from_epoch(pl.Series(stored_ms), time_unit="ms").dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ"),
    })
    c = pl.col
    d = c("dur")
    duration = pl.concat_str([
        pl.lit("PT"),
        pl.when(d >= 3600).then(pl.concat_str([(d // 3600).cast(pl.String), pl.lit("H")])).otherwise(pl.lit("")),
        pl.when((d % 3600) >= 60).then(pl.concat_str([((d % 3600) // 60).cast(pl.String), pl.lit("M")]))
        .otherwise(pl.lit("")),
        pl.when(((d % 60) > 0) | (d == 0)).then(pl.concat_str([(d % 60).cast(pl.String), pl.lit("S")]))
        .otherwise(pl.lit("")),
    ])
    inner = pl.concat_str([
        pl.when(c("raw") >= 0).then(pl.concat_str([
            pl.lit('"score":{"scaled":'), (c("raw") / 100).cast(pl.String), pl.lit(',"raw":'),
            c("raw").cast(pl.String), pl.lit(',"min":0,"max":100}')])),
        pl.when(c("success") >= 0).then(pl.when(c("success") == 1).then(pl.lit('"success":true'))
                                        .otherwise(pl.lit('"success":false'))),
        pl.when(c("completion") >= 0).then(pl.when(c("completion") == 1).then(pl.lit('"completion":true'))
                                           .otherwise(pl.lit('"completion":false'))),
        pl.when(d >= 0).then(pl.concat_str([pl.lit('"duration":"'), duration, pl.lit('"')])),
    ], separator=",", ignore_nulls=True)
    result = pl.when(inner != "").then(pl.concat_str([pl.lit(',"result":{'), inner, pl.lit("}")])).otherwise(pl.lit(""))
    obj = pl.when(c("is_ref")).then(pl.concat_str([pl.lit('{"objectType":"StatementRef","id":"'), c("ref"),
                                                   pl.lit('"}')])).otherwise(c("obj"))
    context = (
        pl.when(c("is_ref")).then(pl.lit(""))
        .when(c("has_reg")).then(pl.concat_str([pl.lit(',"context":{"registration":"'), c("reg"), pl.lit('",'),
                                                c("ctx_tail")]))
        .otherwise(pl.concat_str([pl.lit(',"context":'), c("ctx_full")]))
    )
    line = pl.concat_str([
        pl.lit('{"id":"'), c("id"), pl.lit('","actor":'), c("actor"), pl.lit(',"verb":'), c("verb"),
        pl.lit(',"object":'), obj, result, context, pl.lit(',"timestamp":"'), c("ts"), c("tz"),
        pl.lit('","stored":"'), c("stored"), pl.lit('","authority":'), pl.lit(_AUTHORITY),
        pl.lit(',"version":"1.0.3"}'),
    ])
    return df.select(line.alias("line")).to_series()


# --------------------------------------------------------------------------------------------
# LMS directory, completion report, surveys, costs
# --------------------------------------------------------------------------------------------


def _learners_frame(cal: _Calendar, lr: _Learners) -> pl.DataFrame:
    """Build ``lms/learners.csv``: the LMS directory (orphan ids are, by definition, missing)."""
    keep = np.flatnonzero(lr.in_directory)
    return pl.DataFrame({
        "learner_id": lr.learner_id.gather(keep),
        "email": lr.dir_email.gather(keep),
        "name": lr.name.gather(keep),
        "department": lr.department.gather(keep),
        "title": lr.title.gather(keep),
        "hire_date": _dates(cal.start_day + lr.hire_day[keep]),
    })


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


_SURVEY_SCHEMA = pl.Schema({
    "respondent_email": pl.String(), "role": pl.String(), "program": pl.String(), "level": pl.String(),
    "question": pl.String(), "score": pl.Int64(), "confidence": pl.Float64(), "submitted_at": pl.Date(),
})
_COMPLETION_SCHEMA = pl.Schema({
    "learner_id": pl.String(), "learner_email": pl.String(), "course_id": pl.String(),
    "course_title": pl.String(), "program": pl.String(), "enrolled_at": pl.Date(),
    "completed_at": pl.String(), "score": pl.Int64(), "passed": pl.Boolean(), "minutes": pl.Int64(),
})


def _surveys_frame(cal: _Calendar, org: _Org, lr: _Learners, tr: _Training, seed: int, *,
                   course: _Course = _SALES_COURSE) -> pl.DataFrame:
    """Build ``surveys.csv``: Phillips reaction, application and estimate answers about ``course``'s program."""
    rng = _stream(seed, "surveys")
    comp = np.flatnonzero(tr.e_complete_s >= 0)
    who = tr.e_learner[comp]
    day = tr.e_complete_s[comp] // _DAY
    skill = np.where(who < org.n_reps, org.skill[np.minimum(who, org.n_reps - 1)], 0.0)
    frames = []

    def answers(mask: np.ndarray, people: np.ndarray, role: str, level: str, question: str,
                score: np.ndarray, confidence: np.ndarray | None, when: np.ndarray) -> None:
        sel = np.flatnonzero(mask & (when < cal.start_day + cal.n_days))
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


_CostLine = tuple[str | None, str, float, int, str]  # program (None: shared), category, amount, epoch day, note


def _cost_frame(lines: list[_CostLine]) -> pl.DataFrame:
    """Return cost lines as the rows of ``costs.csv``."""
    return pl.DataFrame({
        "program": pl.Series([p for p, *_ in lines], dtype=pl.String),
        "category": [c for _, c, *_ in lines],
        "amount": [round(a, 2) for _, _, a, _, _ in lines],
        "date": _dates(np.array([x for *_, x, _ in lines])),
        "note": [n for *_, n in lines],
    }, schema_overrides={"amount": pl.Float64})


def _costs_frame(cal: _Calendar, tr: _Training, lr: _Learners) -> pl.DataFrame:
    """Build ``costs.csv``: the program's cost lines, plus one shared platform line."""
    reps = tr.enrolled.size
    enrolled = tr.e_learner.size
    completion_day = tr.e_complete_s[tr.e_complete_s >= 0] // _DAY - cal.start_day
    d = cal.start_day
    development = 60_000 + 20.0 * reps
    lines: list[_CostLine] = [  # program None: a shared cost
        (_PROGRAM, "development", development, d + tr.roll_lo - 60,
         'Instructional design and production of 6 micro-lessons (vendor "BrightPath Learning", SOW 2024-117)'),
        (_PROGRAM, "development", 0.25 * development, d + tr.roll_lo - 30,
         "Sales playbook adaptation, regional examples"),
        (_PROGRAM, "platform", 6_000 + 1.5 * lr.n, d + tr.roll_lo - 14, "LRS add-on for xAPI tracking, annual"),
        (_PROGRAM, "administration", 45_000 * max(1.0, reps / 500) ** 0.5, d + tr.roll_hi,
         "Program management, 0.5 FTE for the rollout"),
        (_PROGRAM, "evaluation", 9_000 + 3.0 * reps, min(d + tr.roll_hi + 90, d + cal.n_days - 1),
         'Evaluation: survey tool, analyst time, "Impact Review" workshop'),
        (None, "platform", 24_000 + 20.0 * lr.n, d + 10,
         "LMS platform subscription, shared across all programs, annual"),
    ]
    # Monthly per-seat licence invoices and coaching sessions during the rollout.
    month = 0
    while True:
        first = (_add_months(cal.start, month) - cal.start).days
        month += 1
        if first >= tr.roll_hi + 60 or first >= cal.n_days:
            break
        if first + 31 <= tr.roll_lo:
            continue
        stamp = _add_months(cal.start, month - 1)
        lines.append((_PROGRAM, "licensing", 40.0 * enrolled, d + first,
                      f"Content licence, {enrolled} seats, {stamp:%B %Y}"))
        next_first = (_add_months(cal.start, month) - cal.start).days
        cohort = int(((completion_day >= first) & (completion_day < next_first)).sum())
        if cohort:
            lines.append((_PROGRAM, "facilitation", 3_000 + 250.0 * cohort, min(d + first + 14, d + cal.n_days - 1),
                          f"Live coaching sessions, {stamp:%B %Y} cohort of {cohort}, incl. coach travel"))
    return _cost_frame(lines)


# --------------------------------------------------------------------------------------------
# Truth
# --------------------------------------------------------------------------------------------

_MODEL_VERSION = 1

_DEFINITIONS = {
    "scenario": "name of the scenario simulated; scenario_description says what it means",
    "start": "first day of the simulated period (UTC date)",
    "end": "first day after the simulated period (exclusive): the period is [start, end)",
    "program.rollout_start / rollout_end": "window in which the program's completions were scheduled",
    "effects.win_logit": "structural effect of training on the log-odds of winning a deal",
    "effects.deal_size": "structural effect on deal size: amount1 = amount0 × (1 + deal_size × ramp)",
    "effects.cycle": "structural effect on cycle length: cycle1 = cycle0 × (1 − cycle × ramp), in days",
    "effects.ramp_days": (
        "0: full effect from the day after completion; else ramp = min(1, days since completion / ramp_days)"
    ),
    "trained": (
        "a rep (CRM User) is trained when the LMS holds a non-voided xAPI 'completed' statement on the "
        "course activity; completion_date is the UTC date of the earliest such statement's timestamp. A rep "
        "whose only course completion was voided is not trained"
    ),
    "exposed": (
        "an opportunity is exposed (treated) when its owner is trained and the UTC date of its CreatedDate is "
        "after the owner's completion_date; days_since_completion = created date − completion_date"
    ),
    "potential outcomes": (
        "every opportunity draws U ~ Uniform once; won0 = U < p0 and won1 = U < p1 (common random numbers); "
        "amount0/amount1 and cycle0/cycle1 are the untreated/treated deal size and cycle length in days. "
        "Observed values are the treated ones for exposed opportunities, else the untreated ones. "
        "For opportunities never exposed, the treated values are what full-strength training would have done"
    ),
    "truth.windows.<W>": (
        "exact effect on the opportunities of trained reps created 1..W days after their completion_date "
        "(W = 90, 180, 365; 'all' = any time after), not deleted (IsDeleted false). Opportunities after the "
        "period's end do not exist, so long windows are cut at end"
    ),
    "truth.windows.<W>.opportunities": "number of such opportunities (open or closed)",
    "truth.windows.<W>.closed": "those closed (CloseDate before end) as observed, i.e. under treatment",
    "truth.windows.<W>.att_win_rate": "mean of won1 − won0 over the closed ones, in proportion units (0.02 = 2 points)",
    "truth.windows.<W>.att_avg_won_deal_size": (
        "average amount1 of the closed deals won under treatment minus average amount0 of the closed deals that "
        "would have been won without it (the 'average won deal size' KPI, treated minus counterfactual)"
    ),
    "truth.windows.<W>.att_cycle_days": "mean of cycle1 − cycle0 over the closed ones, in days (negative = faster)",
    "truth.windows.<W>.incremental_revenue": (
        "Σ (won1·amount1 − won0·amount0) over the closed ones, in the org currency"
    ),
    "truth.windows.<W>.won_revenue_observed": "Σ won1·amount1 over the closed ones (what the CRM shows)",
    "truth.windows.<W>.won_revenue_counterfactual": "Σ won0·amount0 over the closed ones (had they not been trained)",
    "truth.windows.<W>.incremental_won_deals": "Σ (won1 − won0) over the closed ones",
    "truth.windows.<W>.incremental_revenue_booked": (
        "Σ won1·amount1·[closes before end under treatment] − Σ won0·amount0·[closes before end without], over "
        "all the window's opportunities: also credits deals that close within the period only because training "
        "shortened their cycle"
    ),
    "truth.windows.<W>.reps": "number of trained reps with at least one opportunity in the window",
    "diagnostics": (
        "naive comparisons computed from the observed data, to show the traps: they are not the truth. "
        "pre-period = opportunities created before rollout_start; post-period = created on or after rollout_end; "
        "win rates over closed, non-deleted opportunities"
    ),
    "mess.duplicate_statements": "statements written twice with the same id (extra lines; the copies are identical)",
    "mess.malformed_lines": (
        "lines of statements.jsonl that are not a JSON object (truncated lines, a JSON string, HTML)"
    ),
    "mess.voided_completions": (
        "course 'completed' statements cancelled by a 'voided' statement (object StatementRef); equals the number "
        "of voiding statements"
    ),
    "mess.account_actor_statements": "well-formed statements whose actor is identified only by account (learner id)",
    "mess.account_actor_unknown_learner_statements": "of those, statements whose learner id is not in learners.csv",
    "mess.mixed_case_email_statements": (
        "statements whose actor mbox has upper-case letters (e.g. mailto:Jane.Doe@Example.COM)"
    ),
    "mess.mixed_case_email_learners": "learners whose mbox is written with upper-case letters in their statements",
    "mess.mixed_case_directory_emails": "rows of learners.csv whose email has upper-case letters",
    "mess.learners_without_crm_user": "rows of learners.csv (partners, contractors) with no CRM User of that email",
    "mess.timestamps_with_offset": "statements whose timestamp carries a non-Z offset such as -05:00 or +02:00",
    "mess.is_deleted_rows": "rows with IsDeleted = true per Salesforce object",
    "mess.opportunities_without_amount": "Opportunity rows with an empty Amount (never on won deals)",
    "files": "data rows written per file (CSV rows without the header, JSON lines including mess)",
}


def _cents(x: np.ndarray) -> np.ndarray:
    """Return money amounts as integer cents, so that sums are exact."""
    return np.round(x * 100).astype(np.int64)


def _window_truth(cal: _Calendar, o: _Opps, window: int | None) -> dict[str, Any]:
    """Return the exact effect on the opportunities created within ``window`` days of completion."""
    sel = o.exposed & ~o.deleted
    if window is not None:
        sel &= o.days_since <= window
    closed = sel & o.closed
    c0, c1 = _cents(o.amount0), _cents(o.amount1)
    w0, w1 = closed & o.won0, closed & o.won1
    b0 = sel & o.won0 & (o.created_day + o.cycle0 < cal.n_days)
    b1 = sel & o.won1 & (o.created_day + o.cycle1 < cal.n_days)
    n_closed = int(closed.sum())
    both_won = w0.any() and w1.any()
    return {
        "opportunities": int(sel.sum()),
        "closed": n_closed,
        "reps": int(np.unique(o.owner[sel]).size),
        "att_win_rate": float((o.won1[closed].astype(np.int64) - o.won0[closed]).mean()) if n_closed else None,
        "att_avg_won_deal_size": round(float(c1[w1].mean() - c0[w0].mean()) / 100, 4) if both_won else None,
        "att_cycle_days": float((o.cycle1[closed] - o.cycle0[closed]).mean()) if n_closed else None,
        "incremental_revenue": int(c1[w1].sum() - c0[w0].sum()) / 100,
        "won_revenue_observed": int(c1[w1].sum()) / 100,
        "won_revenue_counterfactual": int(c0[w0].sum()) / 100,
        "incremental_won_deals": int(w1.sum() - w0.sum()),
        "incremental_revenue_booked": int(c1[b1].sum() - c0[b0].sum()) / 100,
    }


def _win_rate(mask: np.ndarray, o: _Opps) -> float | None:
    """Return the observed win rate over the closed, non-deleted opportunities in ``mask``."""
    m = mask & o.closed & ~o.deleted
    return float(o.won[m].mean()) if m.any() else None


def _diff(a: float | None, b: float | None) -> float | None:
    """Return ``a − b``, or None when either is unknown."""
    return None if a is None or b is None else a - b


def _diagnostics(org: _Org, tr: _Training, o: _Opps) -> dict[str, Any]:
    """Naive comparisons on observed data: the numbers a careless analysis would report."""
    trained = tr.complete_day < _NEVER
    owner_trained = trained[o.owner]
    pre = o.created_day < tr.roll_lo
    post = o.created_day >= tr.roll_hi
    pre_t, pre_u = _win_rate(pre & owner_trained, o), _win_rate(pre & ~owner_trained, o)
    post_t, post_u = _win_rate(post & owner_trained, o), _win_rate(post & ~owner_trained, o)
    before = owner_trained & (o.days_since >= -_PRIMARY_WINDOW) & (o.days_since <= 0)
    after = owner_trained & (o.days_since >= 1) & (o.days_since <= _PRIMARY_WINDOW)
    b, a = _win_rate(before, o), _win_rate(after, o)
    return {
        "skill_mean_trained": float(org.skill[trained].mean()) if trained.any() else None,
        "skill_mean_untrained": float(org.skill[~trained].mean()) if (~trained).any() else None,
        "pre_period_win_rate_trained": pre_t,
        "pre_period_win_rate_untrained": pre_u,
        "post_period_win_rate_trained": post_t,
        "post_period_win_rate_untrained": post_u,
        "naive_trained_minus_untrained_post": _diff(post_t, post_u),
        "naive_before_after_trained_180d": _diff(a, b),
    }


def _truth_frames(cal: _Calendar, org: _Org, lr: _Learners, tr: _Training,
                  o: _Opps) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Return truth_reps.csv, truth_trained.csv and truth_opportunities.parquet as frames."""
    reps = org.n_reps
    trained = tr.complete_day < _NEVER
    comp_date = _masked(_dates(cal.start_day + np.where(trained, tr.complete_day, 0)), trained)
    comp_ts = _masked(_sf_datetime(np.where(trained, tr.complete_s, cal.start_s)), trained)
    reps_df = pl.DataFrame({
        "user_id": org.user_id.head(reps),
        "email": org.email.head(reps),
        "learner_id": lr.learner_id.head(reps),
        "region": _region_names(org, np.arange(reps)),
        "skill": np.round(org.skill, 6),
        "eligible": tr.eligible,
        "enrolled": tr.enrolled,
        "dropout": tr.dropout,
        "voided_only": tr.voided_only,
        "voided_then_real": tr.voided_then_real,
        "trained": trained,
        "completion_date": comp_date,
        "completion_timestamp": comp_ts,
    })
    trained_df = (
        reps_df.filter(pl.col("trained"))
        .select("user_id", "email", "learner_id", "completion_date")
        .sort(["completion_date", "user_id"])
    )
    ever = tr.complete_day[o.owner] < _NEVER
    opp_df = pl.DataFrame({
        "opportunity_id": o.opp_id,
        "owner_id": org.user_id.gather(o.owner),
        "created_date": _dates(cal.start_day + o.created_day),
        "exposed": o.exposed,
        "days_since_completion": _masked(pl.Series(o.days_since), ever),
        "is_deleted": o.deleted,
        "is_closed": o.closed,
        "p0": o.p0, "p1": o.p1,
        "won0": o.won0, "won1": o.won1,
        "amount0": o.amount0, "amount1": o.amount1,
        "cycle0": o.cycle0, "cycle1": o.cycle1,
    })
    return reps_df, trained_df, opp_df


def _truth(cal: _Calendar, name: str, sc: _Scenario, seed: int, org: _Org, lr: _Learners, tr: _Training,
           o: _Opps, lms: _LmsCounts, deleted: dict[str, int], costs: pl.DataFrame,
           files: dict[str, int]) -> dict[str, Any]:
    """Assemble truth.json: settings, structural parameters, the exact effect, and the mess."""
    trained = tr.complete_day < _NEVER
    months = [_iso_date(cal.start_day + d)[:7] for d in tr.complete_day[trained].tolist()]
    by_month = {m: months.count(m) for m in sorted(set(months))}
    user_emails = set(org.email.to_list())
    directory = lr.dir_email.filter(pl.Series(lr.in_directory)).to_list()
    return {
        "generator": {"module": "training_roi.simulate", "model_version": _MODEL_VERSION},
        "scenario": name,
        "scenario_description": sc.description,
        "seed": seed,
        "reps": org.n_reps,
        "months": cal._months(),
        "start": cal.start.isoformat(),
        "end": cal.end.isoformat(),
        "program": {
            "name": _PROGRAM,
            "program_activity_id": _PROGRAM_ID,
            "course_activity_id": _COURSE_ID,
            "course_title": _COURSE_NAME,
            "lesson_activity_ids": [f"{_COURSE_ID}/lesson/{slug}" for slug, _ in _LESSONS],
            "rollout_start": _iso_date(cal.start_day + tr.roll_lo),
            "rollout_end": _iso_date(cal.start_day + tr.roll_hi),
        },
        "effects": {"win_logit": sc.win_logit, "deal_size": sc.deal_size, "cycle": sc.cycle,
                    "ramp_days": sc.ramp_days},
        "model": {
            "opportunities_per_rep_month": _OPPS_PER_REP_MONTH,
            "skill_log_rate": _SKILL_RATE,
            "base_win_logit": _BASE_WIN_LOGIT,
            "skill_win_logit": _SKILL_WIN_LOGIT,
            "trend_win_logit_per_year": _TREND_WIN_LOGIT_PER_YEAR,
            "season_win_logit_by_month": list(_SEASON),
            "types": {t: {"share": s, "win_logit": w, "amount_factor": a, "cycle_factor": c}
                      for t, s, w, a, c in zip(_TYPES, _TYPE_SHARE, _TYPE_WIN_LOGIT, _TYPE_AMOUNT, _TYPE_CYCLE,
                                               strict=True)},
            "amount_median": _AMOUNT_MEDIAN, "amount_log_sigma": _AMOUNT_SIGMA,
            "amount_skill": _AMOUNT_SKILL, "amount_trend_per_year": _AMOUNT_TREND_PER_YEAR,
            "cycle_median_days": _CYCLE_MEDIAN, "cycle_log_sigma": _CYCLE_SIGMA,
            "assignment": sc.assignment, "enrol_share": sc.enrol_share,
            "selection_skill": sc.selection_skill, "timing_skill": sc.timing_skill,
            "dropout_share": _DROPOUT_SHARE,
        },
        "truth": {
            "primary_window_days": _PRIMARY_WINDOW,
            "windows": {str(w): _window_truth(cal, o, w) for w in _WINDOWS} | {"all": _window_truth(cal, o, None)},
        },
        "trained": {
            "reps": int(trained.sum()),
            "eligible_reps": int(tr.eligible.sum()),
            "enrolled_reps": int(tr.enrolled.sum()),
            "dropout_reps": int(tr.dropout.sum()),
            "voided_only_reps": int(tr.voided_only.sum()),
            "voided_then_real_reps": int(tr.voided_then_real.sum()),
            "partner_learners_trained": int((tr.e_complete_s[tr.e_learner >= lr.n_users] >= 0).sum()),
            "by_completion_month": by_month,
            "file": "truth_trained.csv",
            "reps_file": "truth_reps.csv",
            "opportunities_file": "truth_opportunities.parquet",
        },
        "diagnostics": _diagnostics(org, tr, o),
        "mess": {
            "duplicate_statements": lms.duplicate_statements,
            "malformed_lines": lms.malformed_lines,
            "voided_completions": lms.voided_completions,
            "account_actor_statements": lms.account_actor_statements,
            "account_actor_unknown_learner_statements": lms.account_actor_unknown_learner_statements,
            "mixed_case_email_statements": lms.mixed_case_email_statements,
            "mixed_case_email_learners": int(lr.mixed_mbox.sum()),
            "mixed_case_directory_emails": int(lr.mixed_dir.sum()),
            "learners_without_crm_user": sum(1 for e in directory if e.lower() not in user_emails),
            "group_actor_statements": lms.group_actor_statements,
            "timestamps_with_offset": lms.timestamps_with_offset,
            "statements_distinct": lms.statements,
            "is_deleted_rows": deleted,
            "opportunities_without_amount": int(o.amount_missing.sum()),
        },
        "costs": {
            "program_total": round(float(costs.filter(pl.col("program") == _PROGRAM)["amount"].sum()), 2),
            "shared_total": round(float(costs.filter(pl.col("program").is_null())["amount"].sum()), 2),
        },
        "files": files,
        "definitions": _DEFINITIONS,
    }


# --------------------------------------------------------------------------------------------
# Customer education: the learners are contacts of customer accounts
# --------------------------------------------------------------------------------------------
#
# The org's account managers (the CRM users who are reps in the sales scenarios) own a book of
# customer accounts. The vendor's academy teaches the product to the customers' people; the
# outcome is the account's later business: renewals and upsells. An account is trained from its
# first contact's completion of the course, and every unit of the truth is an account.

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
_AM_TITLES = dict(zip(_REP_TITLES, ("Account Manager", "Senior Account Manager", "Enterprise Account Manager",
                                    "Account Manager, Mid-Market"), strict=True))

# Structural parameters of the customer model (recorded in truth.json).
_RENEWAL, _UPSELL = _TYPES.index("Renewal"), _TYPES.index("Upsell")
_CS_ACCOUNTS_PER_MANAGER = 5.0  # accounts per account manager: 1 + Poisson(this)
_CS_EMPLOYEES_MEDIAN = 400.0
_CS_EMPLOYEES_SIGMA = 1.2  # log-sd of headcount; "size" is log headcount standardised by these two
_CS_CONTACTS_LOG_RATE = 0.6  # contacts: 1 + Poisson(exp(0.6 + 0.35·size)), at most 6
_CS_CONTACTS_SIZE = 0.35
_CS_MAX_CONTACTS = 6
_CS_ARR_MEDIAN = 18_000.0  # annual contract value of a median account
_CS_ARR_HEADCOUNT = 0.6  # elasticity of contract value with headcount
_CS_ARR_SIGMA = 0.35
_CS_RENEWAL_LEAD_DAYS = (60, 120)  # a renewal opens this many days before the contract anniversary
_CS_RENEWAL_CLOSE_SD = 8.0  # days around the anniversary a renewal closes
_CS_UPSELLS_PER_YEAR = 0.6  # upsell opportunities per median account and year
_CS_UPSELL_SIZE = 0.4  # log-rate of upsell opportunities per unit of size
_CS_UPSELL_ENGAGEMENT = 0.3  # … and per unit of engagement
_CS_UPSELL_AMOUNT_SHARE = 0.3  # median upsell amount as a share of the contract value
_CS_UPSELL_AMOUNT_SIGMA = 0.5
_CS_UPSELL_CYCLE_MEDIAN = 40.0
# Log-odds of winning, per type: (intercept, per unit of engagement, per unit of size).
_CS_WIN_LOGIT = {_RENEWAL: (1.3, 0.6, 0.15), _UPSELL: (-0.5, 0.5, 0.2)}
_CS_ENROL_SHARE = 0.55  # contacts of an adopting account who enrol (its champion always does)
_CS_STRAY_ENROL = 0.03  # contacts of other accounts who enrol, and drop out
_CS_LIVE_SHARE = 0.25  # enrolments in the live virtual class (completion report only, no xAPI)
_CS_DROPOUT = 0.12  # enrolments of adopting accounts that are never completed
_CS_BROWSE_SHARE = 0.10  # contacts who use other academy content but never enrol in the course
_CS_OUTSIDERS = 0.04  # academy learners at customer domains who are no CRM contact, per contact
_CS_OUTSIDER_BROWSE = 0.3


@dataclass
class _Customers:
    """The customer accounts' latent traits, and everyone at them who could use the academy.

    People are the accounts' contacts (indices ``0 … n_contacts − 1``, in Contact.csv order), then
    outsiders: colleagues at the same companies whom the CRM does not know.
    """

    employees: np.ndarray  # per account
    size: np.ndarray  # per account: standardised log headcount
    engagement: np.ndarray  # per account: latent engagement with the product ~ N(0, 1)
    arr: np.ndarray  # per account: annual contract value at the start of the period
    anniversary: np.ndarray  # per account: day index (0–364) of its first contract anniversary
    n_contacts: int
    person_account: np.ndarray  # per person: account index
    email: pl.Series  # per person: lower case, unique
    name: pl.Series
    title: pl.Series


def _unique_addresses(local: pl.Series, domain: pl.Series) -> pl.Series:
    """Make addresses unique per domain: ``jane.doe@acme.com``, then ``jane.doe2@acme.com``."""
    df = pl.DataFrame({"local": local, "domain": domain}).with_columns(
        k=pl.int_range(pl.len()).over("local", "domain"))
    return df.select(
        pl.concat_str([
            pl.col("local"),
            pl.when(pl.col("k") > 0).then((pl.col("k") + 1).cast(pl.String)).otherwise(pl.lit("")),
            pl.lit("@"), pl.col("domain"),
        ])
    ).to_series()


def _build_customers(cal: _Calendar, org: _Org, seed: int) -> tuple[_Org, _Customers]:
    """Give the org's reps, as account managers, a book of customer accounts with contacts.

    The CRM users are the org's own (the same people as in the sales scenarios of the seed), the
    reps retitled; accounts and contacts are drawn anew, with the traits the customer model uses.
    """
    rng = _stream(seed, "customer-accounts")
    reps = org.n_reps
    per_rep = 1 + rng.poisson(_CS_ACCOUNTS_PER_MANAGER, reps)
    acc_start = np.concatenate([[0], np.cumsum(per_rep)[:-1]])
    n_acc = int(per_rep.sum())
    acc_owner = np.repeat(np.arange(reps), per_rep)
    acc_created = cal.start_s - rng.integers(60 * _DAY, 6 * 365 * _DAY, n_acc)
    acc_name, acc_domain, core = _company_names(rng, n_acc)
    log_emp = rng.normal(math.log(_CS_EMPLOYEES_MEDIAN), _CS_EMPLOYEES_SIGMA, n_acc)
    size = (log_emp - math.log(_CS_EMPLOYEES_MEDIAN)) / _CS_EMPLOYEES_SIGMA
    employees = np.exp(log_emp).astype(np.int64) + 5
    engagement = rng.standard_normal(n_acc)
    arr = np.round(_CS_ARR_MEDIAN * np.exp(_CS_ARR_HEADCOUNT * _CS_EMPLOYEES_SIGMA * size
                                           + _CS_ARR_SIGMA * rng.standard_normal(n_acc)), -2)
    anniversary = rng.integers(0, 365, n_acc)
    health = np.clip(np.round(60 + 12 * engagement + 8 * rng.standard_normal(n_acc)), 0, 100).astype(np.int64)
    revenue = np.round(employees * np.exp(rng.normal(math.log(180_000), 0.5, n_acc)), -3)
    # Accounts are in their manager's country, as in the sales scenarios.
    cflat = _flat_country(org.region[acc_owner], org.country[acc_owner])
    countries = [c for _, group, _ in _REGIONS for c in group]
    n_states = np.array([len(c[1]) for c in countries])[cflat]
    state_off = np.concatenate([[0], np.cumsum([len(c[1]) for c in countries])[:-1]])[cflat]
    all_states = [s for c in countries for s in c[1]]
    state_idx = state_off + np.floor(rng.random(n_acc) * np.maximum(n_states, 1)).astype(np.int64)
    account_id = _salesforce_ids("001", _id_counters(rng, n_acc, acc_created))
    accounts = pl.DataFrame({
        "Id": account_id,
        "IsDeleted": np.zeros(n_acc, bool),
        "Name": acc_name,
        "Type": _pick(rng, ("Customer - Direct", "Customer - Channel"), n_acc, (0.8, 0.2)),
        "Industry": pl.Series([i for _, i in _CORE]).gather(core),
        "AnnualRevenue": revenue.astype(np.int64),
        "NumberOfEmployees": employees,
        "OwnerId": org.user_id.gather(acc_owner),
        "BillingState": _masked(pl.Series(all_states).gather(np.minimum(state_idx, len(all_states) - 1)),
                                n_states > 0),
        "BillingCountry": pl.Series([c[0] for c in countries]).gather(cflat),
        "CreatedDate": _sf_datetime(acc_created),
        "Tier__c": pl.Series(np.where(employees >= 2000, "Enterprise",
                                      np.where(employees >= 200, "Mid-Market", "SMB"))),
        "ARR__c": arr,
        "Health_Score__c": health,
    })

    # Contacts (1–6, more at bigger accounts), then outsiders at the same companies.
    con_count = np.minimum(_CS_MAX_CONTACTS,
                           1 + rng.poisson(np.exp(_CS_CONTACTS_LOG_RATE + _CS_CONTACTS_SIZE * size)))
    con_start = np.concatenate([[0], np.cumsum(con_count)[:-1]])
    n_con = int(con_count.sum())
    con_acc = np.repeat(np.arange(n_acc), con_count)
    n_out = max(2, round(_CS_OUTSIDERS * n_con))
    person_account = np.concatenate([con_acc, np.sort(rng.integers(0, n_acc, n_out))])
    first, last, local = _people(rng, n_con + n_out)
    email = _unique_addresses(local, acc_domain.gather(person_account))
    title = _pick(rng, _CONTACT_TITLES, n_con + n_out)
    con_created = acc_created[con_acc] + (rng.random(n_con) * (cal.start_s - acc_created[con_acc])).astype(np.int64)
    contact_id = _salesforce_ids("003", _id_counters(rng, n_con, con_created))
    contacts = pl.DataFrame({
        "Id": contact_id,
        "IsDeleted": np.zeros(n_con, bool),
        "AccountId": account_id.gather(con_acc),
        "FirstName": first.head(n_con),
        "LastName": last.head(n_con),
        "Email": email.head(n_con),
        "Title": title.head(n_con),
        "CreatedDate": _sf_datetime(con_created),
        "Buying_Role__c": _pick(rng, ("Decision Maker", "Economic Buyer", "Champion", "Influencer", "User"), n_con),
    })
    org = replace(
        org, users=org.users.with_columns(pl.col("Title").replace(_AM_TITLES)), acc_start=acc_start,
        acc_selling=per_rep, acc_owner=acc_owner, account_id=account_id, account_name=acc_name,
        account_domain=acc_domain, account_deleted=np.zeros(n_acc, bool), accounts=accounts,
        con_start=con_start, con_count=con_count, contact_id=contact_id, contacts=contacts,
    )
    customers = _Customers(
        employees=employees, size=size, engagement=engagement, arr=arr, anniversary=anniversary,
        n_contacts=n_con, person_account=person_account, email=email,
        name=pl.select(pl.concat_str([first, pl.lit(" "), last])).to_series(), title=title,
    )
    return org, customers


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
    roll_lo = cal.day_at(sc.rollout[0])
    roll_hi = min(cal.n_days - 1, max(roll_lo + 30, cal.day_at(sc.rollout[1])))
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
    ne = e_person.size
    e_completes = completes[e_person]
    e_start, e_would = start_s[e_person], would[e_person]
    drop_span = rng.integers(2 * _DAY, 20 * _DAY, ne)
    e_lesson_hi = np.where(e_completes, np.maximum(e_start + 3600, e_would - 30 * 3600),
                           np.minimum(e_start + drop_span, cal.end_s - 3 * 3600))
    nl = len(_ACADEMY_LESSONS)
    e_lessons = np.where(e_completes, nl, rng.integers(1, nl, ne))
    e_fail = e_completes & (rng.random(ne) < 0.12)
    is_vo, is_vr = np.isin(e_person, voided_only), np.isin(e_person, voided_then_real)
    e_spurious = np.full(ne, -1, np.int64)
    e_spurious[is_vr] = e_start[is_vr] + 45
    e_spurious[is_vo] = e_lesson_hi[is_vo] + 3600
    e_void = np.where(e_spurious >= 0, np.minimum(e_spurious + rng.integers(_DAY // 2, 10 * _DAY, ne),
                                                  cal.end_s - 1), -1)
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
            e_learner=learner_of[e_person], e_start_s=e_start, e_lesson_hi_s=e_lesson_hi,
            e_complete_s=np.where(e_completes, e_would, -1), e_lessons=e_lessons, e_fail_first=e_fail,
            e_spurious_s=e_spurious, e_void_s=e_void,
        ),
    )


def _simulate_renewals(cal: _Calendar, org: _Org, cu: _Customers, ac: _Academy, sc: _CustomerScenario,
                       seed: int) -> _Opps:
    """Draw every account's renewals and upsells and both potential outcomes; observe one of them.

    A renewal opens ahead of each contract anniversary and closes around it; upsells arrive at a
    rate that grows with the account's size and engagement and that training does not change.
    Training shifts the log-odds of winning, per type, from the day after the account's training.
    """
    rng = _stream(seed, "customer-opportunities")
    n_acc = cu.engagement.size
    k = cal.n_days // 365 + 2
    due_all = cu.anniversary[:, None] + 365 * np.arange(k)[None, :]
    lead = rng.integers(_CS_RENEWAL_LEAD_DAYS[0], _CS_RENEWAL_LEAD_DAYS[1] + 1, (n_acc, k))
    opens = due_all - lead
    valid = (opens >= 0) & (opens < cal.n_days)
    r_acc = np.broadcast_to(np.arange(n_acc)[:, None], (n_acc, k))[valid]
    rate = _CS_UPSELLS_PER_YEAR * np.exp(_CS_UPSELL_SIZE * cu.size + _CS_UPSELL_ENGAGEMENT * cu.engagement
                                         - (_CS_UPSELL_SIZE**2 + _CS_UPSELL_ENGAGEMENT**2) / 2)
    u_acc = np.repeat(np.arange(n_acc), rng.poisson(rate * cal.n_days / 365.25))
    account = np.concatenate([r_acc, u_acc])
    typ = np.concatenate([np.full(r_acc.size, _RENEWAL), np.full(u_acc.size, _UPSELL)])
    due = np.concatenate([due_all[valid], np.full(u_acc.size, -1)])
    lo = np.concatenate([opens[valid], rng.integers(0, cal.n_days, u_acc.size)])
    n = account.size
    created = cal.business_instants(lo, np.minimum(lo + 5, cal.n_days), rng.random(n),
                                    rng.integers(8 * 3600, 18 * 3600, n), org.offset_min[org.acc_owner[account]])
    order = np.argsort(created, kind="stable")
    account, typ, due, created = account[order], typ[order], due[order], created[order]
    owner = org.acc_owner[account]
    day = created // _DAY - cal.start_day
    years = day / 365.25
    renewal = typ == _RENEWAL

    u_win = rng.random(n)
    z_amount = rng.standard_normal(n)
    z_cycle = rng.standard_normal(n)
    deleted = rng.random(n) < 0.004
    u_missing = rng.random(n)
    u_stage = rng.random(n)

    coef = np.array([_CS_WIN_LOGIT.get(t, (0.0, 0.0, 0.0)) for t in range(len(_TYPES))])[typ]
    eta0 = (coef[:, 0] + coef[:, 1] * cu.engagement[account] + coef[:, 2] * cu.size[account]
            + _TREND_WIN_LOGIT_PER_YEAR * years + np.array(_SEASON)[cal.month_of_year[day]])
    eta1 = eta0 + np.where(renewal, sc.renewal_logit, sc.upsell_logit)
    p0, p1 = _logistic(eta0), _logistic(eta1)
    won0, won1 = u_win < p0, u_win < p1
    arr = cu.arr[account] * np.exp(_AMOUNT_TREND_PER_YEAR * years)
    amount0 = np.where(renewal, np.round(arr * np.exp(0.05 * z_amount), -1),
                       np.round(_CS_UPSELL_AMOUNT_SHARE * arr * np.exp(_CS_UPSELL_AMOUNT_SIGMA * z_amount), -1))
    amount0 = np.maximum(amount0, 500.0)
    cycle0 = np.where(renewal, due - day + np.round(_CS_RENEWAL_CLOSE_SD * z_cycle),
                      np.round(_CS_UPSELL_CYCLE_MEDIAN * np.exp(_CYCLE_SIGMA * z_cycle)))
    cycle0 = np.maximum(3, cycle0).astype(np.int64)

    train = ac.train_day[account]
    days_since = day - train
    exposed = (train < _NEVER) & (days_since >= 1)
    won = np.where(exposed, won1, won0)
    close_day = day + cycle0
    closed = close_day < cal.n_days
    won = won & closed
    elapsed = (cal.n_days - day) / cycle0
    stage = np.where(closed, -1, np.minimum(len(_OPEN_STAGES) - 1, np.floor(elapsed * u_stage * 6.99)).astype(np.int64))
    amount_missing = ~won & (u_missing < 0.04)
    opp_id = _salesforce_ids("006", _id_counters(rng, n))
    return _Opps(
        owner=owner, account=account, created_s=created, created_day=day, type=typ,
        lead_source=np.full(n, -1, np.int64), u_win=u_win, p0=p0, p1=p1, won0=won0, won1=won1,
        amount0=amount0, amount1=amount0.copy(), cycle0=cycle0, cycle1=cycle0.copy(), exposed=exposed,
        days_since=days_since, won=won, amount=amount0, cycle=cycle0, close_day=close_day,
        closed=closed, deleted=deleted, amount_missing=amount_missing, stage=stage, opp_id=opp_id,
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
    names = ac.name.to_list()
    actor_json = [orjson.dumps({"objectType": "Agent", "name": nm, "mbox": f"mailto:{mb}"}).decode()
                  for nm, mb in zip(names, ac.mbox_email.to_list(), strict=True)]
    actor_json += [orjson.dumps({"objectType": "Agent", "name": nm,
                                 "account": {"homePage": _ACADEMY_HOME, "name": lid}}).decode()
                   for nm, lid in zip(names, ac.learner_id.to_list(), strict=True)]
    actor_json.append(orjson.dumps(_ADMIN_ACTOR).decode())
    learner = np.maximum(st.learner, 0)
    by_account = (st.learner >= 0) & ac.by_account[learner]
    actor = np.where(st.learner >= 0, learner + n_l * by_account, 2 * n_l)
    offsets = sorted({int(x) for x in ac.offset_min.tolist()} | {0})
    offset = np.where(st.learner >= 0, ac.offset_min[learner], 0)
    as_z = (st.learner < 0) | (rng.random(n) < 0.3)
    tz = np.where(as_z, 0, 1 + np.searchsorted(np.array(offsets), offset))
    local_ms = st.ts_ms + np.where(as_z, 0, offset) * 60_000
    written = _write_lines(path, rng, cal, st, ids=ids, regs=regs, actor_json=actor_json, actor=actor, tz=tz,
                           suffixes=["Z"] + [_offset_text(m) for m in offsets], local_ms=local_ms,
                           activities=_academy_activities(), report=report)
    valid = written.keep
    person = st.learner[valid] >= 0
    return _LmsCounts(
        lines=written.lines,
        statements=int(valid.size),
        duplicate_statements=int(written.duplicates.size),
        malformed_lines=int(written.lost.size + 2),
        voided_completions=int((st.role == _ROLE_SPURIOUS).sum()),
        account_actor_statements=int(by_account[valid].sum()),
        mixed_case_email_statements=int((person & ~by_account[valid] & ac.mixed_mbox[learner[valid]]).sum()),
        timestamps_with_offset=int((tz[valid] > 0).sum()),
        program_completions=int((st.role == _ROLE_COMPLETED).sum()),
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
    month = 0
    while (first := (_add_months(cal.start, month) - cal.start).days) < min(ac.roll_hi + 31, cal.n_days):
        month += 1
        after = (_add_months(cal.start, month) - cal.start).days
        cohort = int(((live_day >= first) & (live_day < after)).sum())
        if cohort:
            lines.append((_ACADEMY, "facilitation", 1_200 + 150.0 * cohort, min(d + after - 1, d + cal.n_days - 1),
                          f"Live virtual classes, {_add_months(cal.start, month - 1):%B %Y}, {cohort} attendee"
                          + ("s" if cohort > 1 else "")))
    return _cost_frame(lines)


_CUSTOMER_DEFINITIONS = {
    "unit": "what the truth is about: 'account', the customer accounts whose contacts are the academy's learners",
    "effects.renewal_win_logit": "structural effect of the account's training on the log-odds of winning a renewal",
    "effects.upsell_win_logit": (
        "structural effect on the log-odds of winning an upsell (the upsell rate: the share of upsell "
        "opportunities the account buys); how many upsell opportunities arise does not change"
    ),
    "effects.deal_size / cycle / ramp_days": (
        "0: training changes neither amounts nor cycle lengths and works in full from the day after training"
    ),
    "trained": (
        "an account is trained when one of its contacts (a CRM Contact of the account, linked by email) completed "
        "the course: a non-voided xAPI 'completed' statement on the course activity, or a completions.csv row of "
        "the course with completed_at. training_date is the UTC date of the earliest such completion over the "
        "account's contacts. Learners who are no contact (outsiders) do not train an account, a voided completion "
        "does not count, and passing the final assessment (its own activity) is not completing the course"
    ),
    "learners": "number of the account's contacts who completed the course",
    "exposed": (
        "an opportunity is exposed (treated) when its account is trained and the UTC date of its CreatedDate is "
        "after the account's training_date; days_since_training = created date − training_date"
    ),
    "truth.windows.<W>": (
        "exact effect on the opportunities (renewals and upsells) of trained accounts created 1..W days after the "
        "account's training_date (W = 90, 180, 365; 'all' = any time after), not deleted (IsDeleted false). "
        "Opportunities after the period's end do not exist, so long windows are cut at end"
    ),
    "truth.windows.<W>.accounts": "number of trained accounts with at least one opportunity in the window",
    "truth.windows.<W>.reps": "number of account managers (CRM users) who own those opportunities",
    "truth.windows.<W>.by_type": "opportunities, closed, att_win_rate and incremental_revenue per opportunity Type",
    "truth.windows.<W>.att_win_rate_expected": (
        "mean of p1 − p0 over the closed ones: the win-rate effect these deals were expected to get, of which "
        "att_win_rate is the realised draw (with few deals the two differ by chance)"
    ),
    "diagnostics": (
        "naive comparisons of trained and untrained accounts on the observed data, to show the traps: they are not "
        "the truth. pre-period = opportunities created before rollout_start; post-period = created on or after "
        "rollout_end; win rates over closed, non-deleted opportunities"
    ),
    "mess.learners_without_crm_contact": (
        "rows of learners.csv whose email is no CRM contact's: colleagues at customers the CRM does not know"
    ),
    "mess.not_simulated": "kinds of mess of the sales scenarios that this scenario does not write",
}


def _account_window_truth(cal: _Calendar, o: _Opps, window: int | None) -> dict[str, Any]:
    """The exact effect in one window (as the sales scenarios'), with accounts and a split by type."""
    out = _window_truth(cal, o, window)
    sel = o.exposed & ~o.deleted
    if window is not None:
        sel &= o.days_since <= window
    closed_all = sel & o.closed
    c0, c1 = _cents(o.amount0), _cents(o.amount1)
    by_type = {}
    for t in (_RENEWAL, _UPSELL):
        closed = sel & o.closed & (o.type == t)
        by_type[_TYPES[t]] = {
            "opportunities": int((sel & (o.type == t)).sum()),
            "closed": int(closed.sum()),
            "att_win_rate": float((o.won1[closed].astype(np.int64) - o.won0[closed]).mean()) if closed.any() else None,
            "incremental_revenue": int(c1[closed & o.won1].sum() - c0[closed & o.won0].sum()) / 100,
        }
    expected = float((o.p1[closed_all] - o.p0[closed_all]).mean()) if closed_all.any() else None
    return out | {"accounts": int(np.unique(o.account[sel]).size), "att_win_rate_expected": expected,
                  "by_type": by_type}


def _academy_diagnostics(cu: _Customers, ac: _Academy, o: _Opps) -> dict[str, Any]:
    """Naive comparisons of trained and untrained accounts: what a careless analysis would report."""
    trained = ac.train_day < _NEVER
    acc_trained = trained[o.account]
    pre, post = o.created_day < ac.roll_lo, o.created_day >= ac.roll_hi
    pre_t, pre_u = _win_rate(pre & acc_trained, o), _win_rate(pre & ~acc_trained, o)
    post_t, post_u = _win_rate(post & acc_trained, o), _win_rate(post & ~acc_trained, o)
    since = o.created_day - ac.train_day[o.account]
    before = acc_trained & (since >= -_PRIMARY_WINDOW) & (since <= 0)
    after = acc_trained & (since >= 1) & (since <= _PRIMARY_WINDOW)

    def mean(x: np.ndarray) -> float | None:
        return float(x.mean()) if x.size else None

    return {
        "engagement_mean_trained": mean(cu.engagement[trained]),
        "engagement_mean_untrained": mean(cu.engagement[~trained]),
        "employees_median_trained": float(np.median(cu.employees[trained])) if trained.any() else None,
        "employees_median_untrained": float(np.median(cu.employees[~trained])) if (~trained).any() else None,
        "pre_period_win_rate_trained": pre_t,
        "pre_period_win_rate_untrained": pre_u,
        "post_period_win_rate_trained": post_t,
        "post_period_win_rate_untrained": post_u,
        "naive_trained_minus_untrained_post": _diff(post_t, post_u),
        "naive_before_after_trained_180d": _diff(_win_rate(after, o), _win_rate(before, o)),
    }


def _academy_truth_frames(cal: _Calendar, org: _Org, cu: _Customers, ac: _Academy,
                          o: _Opps) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Return truth_accounts.csv, truth_trained.csv, truth_learners.csv and truth_opportunities.parquet."""
    n_acc = cu.engagement.size
    trained = ac.train_day < _NEVER
    acc = cu.person_account
    contact = np.arange(acc.size) < cu.n_contacts
    accounts = pl.DataFrame({
        "account_id": org.account_id,
        "name": org.account_name,
        "owner_id": org.user_id.gather(org.acc_owner),
        "employees": cu.employees,
        "size": np.round(cu.size, 6),
        "engagement": np.round(cu.engagement, 6),
        "arr": cu.arr,
        "contacts": org.con_count,
        "adopted": ac.adopted,
        "enrolled_contacts": np.bincount(acc[ac.enrolled & contact], minlength=n_acc),
        "trained": trained,
        "training_date": _masked(_dates(cal.start_day + np.where(trained, ac.train_day, 0)), trained),
        "training_timestamp": _masked(_sf_datetime(np.where(trained, ac.train_s, cal.start_s)), trained),
        "learners": ac.learners,
    })
    trained_df = (accounts.filter(pl.col("trained")).select("account_id", "training_date", "learners")
                  .sort(["training_date", "account_id"]))
    p = ac.person
    done = ac.complete_s[p] >= 0
    learners = pl.DataFrame({
        "learner_id": ac.learner_id,
        "email": cu.email.gather(p),
        "contact_id": _masked(org.contact_id.gather(np.minimum(p, cu.n_contacts - 1)), contact[p]),
        "account_id": org.account_id.gather(acc[p]),
        "is_contact": contact[p],
        "enrolled": ac.enrolled[p],
        "format": _masked(pl.Series(np.where(ac.live[p], "live", "online")), ac.enrolled[p]),
        "completed": done,
        "completion_date": _masked(_dates(np.where(done, ac.complete_s[p], 0) // _DAY), done),
        "voided_only": ac.voided_only[p],
        "voided_then_real": ac.voided_then_real[p],
        "account_actor": ac.by_account,
    })
    ever = ac.train_day[o.account] < _NEVER
    opps = pl.DataFrame({
        "opportunity_id": o.opp_id,
        "account_id": org.account_id.gather(o.account),
        "owner_id": org.user_id.gather(o.owner),
        "type": pl.Series(_TYPES).gather(o.type),
        "created_date": _dates(cal.start_day + o.created_day),
        "exposed": o.exposed,
        "days_since_training": _masked(pl.Series(o.days_since), ever),
        "is_deleted": o.deleted,
        "is_closed": o.closed,
        "p0": o.p0, "p1": o.p1,
        "won0": o.won0, "won1": o.won1,
        "amount0": o.amount0, "amount1": o.amount1,
        "cycle0": o.cycle0, "cycle1": o.cycle1,
    })
    return accounts, trained_df, learners, opps


def _academy_truth(cal: _Calendar, sc: _CustomerScenario, seed: int, org: _Org, cu: _Customers, ac: _Academy,
                   o: _Opps, lms: _LmsCounts, deleted: dict[str, int], costs: pl.DataFrame,
                   files: dict[str, int]) -> dict[str, Any]:
    """Assemble truth.json of the customer scenario: the same structure, at the account level."""
    trained = ac.train_day < _NEVER
    months = [_iso_date(cal.start_day + d)[:7] for d in ac.train_day[trained].tolist()]
    contact = np.arange(cu.person_account.size) < cu.n_contacts
    done = ac.complete_s >= 0
    dropouts = ac.enrolled & ~done
    mess = {
        "duplicate_statements": lms.duplicate_statements,
        "malformed_lines": lms.malformed_lines,
        "voided_completions": lms.voided_completions,
        "account_actor_statements": lms.account_actor_statements,
        "mixed_case_email_statements": lms.mixed_case_email_statements,
        "mixed_case_email_learners": int(ac.mixed_mbox.sum()),
        "mixed_case_directory_emails": int(ac.mixed_dir.sum()),
        "learners_without_crm_contact": int((~contact[ac.person]).sum()),
        "timestamps_with_offset": lms.timestamps_with_offset,
        "statements_distinct": lms.statements,
        "is_deleted_rows": deleted,
        "opportunities_without_amount": int(o.amount_missing.sum()),
        "not_simulated": ["group actors", "learner ids missing from the directory", "one learner under two actors",
                          "deleted accounts and contacts", "leads"],
    }
    return {
        "generator": {"module": "training_roi.simulate", "model_version": _MODEL_VERSION},
        "scenario": _CUSTOMER_SCENARIO,
        "scenario_description": sc.description,
        "seed": seed,
        "reps": org.n_reps,
        "months": cal._months(),
        "start": cal.start.isoformat(),
        "end": cal.end.isoformat(),
        "unit": "account",
        "program": {
            "name": _ACADEMY,
            "program_activity_id": _ACADEMY_PROGRAM_ID,
            "course_activity_id": _ACADEMY_COURSE_ID,
            "course_title": _ACADEMY_COURSE_NAME,
            "lesson_activity_ids": [f"{_ACADEMY_COURSE_ID}/lesson/{slug}" for slug, _ in _ACADEMY_LESSONS],
            "assessment_activity_id": f"{_ACADEMY_COURSE_ID}/assessment",
            "rollout_start": _iso_date(cal.start_day + ac.roll_lo),
            "rollout_end": _iso_date(cal.start_day + ac.roll_hi),
        },
        "effects": {"scale": "log-odds", "renewal_win_logit": sc.renewal_logit, "upsell_win_logit": sc.upsell_logit,
                    "deal_size": 0.0, "cycle": 0.0, "ramp_days": 0},
        "model": {
            "accounts_per_manager": 1 + _CS_ACCOUNTS_PER_MANAGER,
            "employees_median": _CS_EMPLOYEES_MEDIAN, "employees_log_sigma": _CS_EMPLOYEES_SIGMA,
            "contacts_log_rate": _CS_CONTACTS_LOG_RATE, "contacts_size": _CS_CONTACTS_SIZE,
            "max_contacts": _CS_MAX_CONTACTS,
            "arr_median": _CS_ARR_MEDIAN, "arr_headcount_elasticity": _CS_ARR_HEADCOUNT, "arr_log_sigma": _CS_ARR_SIGMA,
            "renewal_lead_days": list(_CS_RENEWAL_LEAD_DAYS), "renewal_close_sd_days": _CS_RENEWAL_CLOSE_SD,
            "upsells_per_year": _CS_UPSELLS_PER_YEAR, "upsell_size_log_rate": _CS_UPSELL_SIZE,
            "upsell_engagement_log_rate": _CS_UPSELL_ENGAGEMENT, "upsell_amount_share": _CS_UPSELL_AMOUNT_SHARE,
            "upsell_amount_log_sigma": _CS_UPSELL_AMOUNT_SIGMA, "upsell_cycle_median_days": _CS_UPSELL_CYCLE_MEDIAN,
            "win_logit": {_TYPES[t]: {"intercept": a, "engagement": b, "size": c}
                          for t, (a, b, c) in _CS_WIN_LOGIT.items()},
            "trend_win_logit_per_year": _TREND_WIN_LOGIT_PER_YEAR,
            "season_win_logit_by_month": list(_SEASON),
            "amount_trend_per_year": _AMOUNT_TREND_PER_YEAR,
            "adopt_share": sc.adopt_share, "adopt_engagement": sc.adopt_engagement, "adopt_size": sc.adopt_size,
            "timing_engagement": sc.timing_engagement, "enrol_share": _CS_ENROL_SHARE,
            "stray_enrol_share": _CS_STRAY_ENROL, "live_class_share": _CS_LIVE_SHARE, "dropout_share": _CS_DROPOUT,
        },
        "truth": {
            "primary_window_days": _PRIMARY_WINDOW,
            "windows": {str(w): _account_window_truth(cal, o, w) for w in _WINDOWS}
            | {"all": _account_window_truth(cal, o, None)},
        },
        "trained": {
            "accounts": int(trained.sum()),
            "customer_accounts": int(trained.size),
            "adopted_accounts": int(ac.adopted.sum()),
            "learners": int(ac.learners.sum()),
            "enrolled_people": int(ac.enrolled.sum()),
            "completions_online": int((done & ~ac.live).sum()),
            "completions_live_class": int((done & ac.live).sum()),
            "outsiders_completed": int((done & ~contact).sum()),
            "dropouts": int(dropouts.sum()),
            "voided_only_learners": int(ac.voided_only.sum()),
            "voided_then_real_learners": int(ac.voided_then_real.sum()),
            "by_training_month": {m: months.count(m) for m in sorted(set(months))},
            "file": "truth_trained.csv",
            "accounts_file": "truth_accounts.csv",
            "learners_file": "truth_learners.csv",
            "opportunities_file": "truth_opportunities.parquet",
        },
        "diagnostics": _academy_diagnostics(cu, ac, o),
        "mess": mess,
        "costs": {
            "program_total": round(float(costs.filter(pl.col("program") == _ACADEMY)["amount"].sum()), 2),
            "shared_total": round(float(costs.filter(pl.col("program").is_null())["amount"].sum()), 2),
        },
        "files": files,
        "definitions": {k: v for k, v in _DEFINITIONS.items()
                        if not k.startswith("effects.") and (not k.startswith("mess.") or k[5:] in mess)}
        | _CUSTOMER_DEFINITIONS,
    }


def _simulate_customers(out: Path, cal: _Calendar, *, reps: int, seed: int,
                        report: Callable[[str, float], None]) -> dict[str, int]:
    """Write the customer scenario's folder and truth; return the data rows per file."""
    sc = _CUSTOMER
    report("Building the organisation and its customers", 0.0)
    org, cu = _build_customers(cal, _build_org(cal, reps, seed), seed)
    report("Rolling out the customer academy", 0.06)
    ac = _assign_academy(cal, org, cu, sc, seed)
    report("Simulating renewals, upsells and their potential outcomes", 0.08)
    opps = _simulate_renewals(cal, org, cu, ac, sc, seed)
    files: dict[str, int] = {}
    deleted: dict[str, int] = {}
    report("Writing CRM users, accounts, contacts and opportunities", 0.14)
    for obj, df, bom in (
        ("User", org.users, True), ("Account", org.accounts, False), ("Contact", org.contacts, True),
        ("Opportunity", _opportunity_frame(cal, org, opps, seed), True),
        ("OpportunityHistory", _history_frame(cal, org, opps, seed), False),
        ("Task", _task_frame(cal, org, opps, seed), False), ("Case", _case_frame(cal, org, seed), False),
    ):
        files[f"crm/{obj}.csv"] = _write_csv(df, out / "crm" / f"{obj}.csv", bom=bom)
        if "IsDeleted" in df.columns:
            deleted[obj] = int(df["IsDeleted"].sum())
    report("Writing xAPI statements", 0.5)
    lms = _write_academy_statements(out / "lms" / "statements.jsonl", cal, ac, seed,
                                    lambda step, f: report(step, 0.5 + 0.38 * f))
    files["lms/statements.jsonl"] = lms.lines
    report("Writing the academy directory, completion report, surveys and costs", 0.9)
    files["lms/learners.csv"] = _write_csv(_academy_learners_frame(cal, ac), out / "lms" / "learners.csv")
    files["lms/completions.csv"] = _write_csv(_academy_completions_frame(ac, seed), out / "lms" / "completions.csv")
    files["surveys.csv"] = _write_csv(_academy_surveys_frame(cal, cu, ac, seed), out / "surveys.csv")
    costs = _academy_costs_frame(cal, cu, ac)
    files["costs.csv"] = _write_csv(costs, out / "costs.csv")

    report("Computing the truth", 0.94)
    accounts_df, trained_df, learners_df, opp_df = _academy_truth_frames(cal, org, cu, ac, opps)
    files["truth_accounts.csv"] = _write_csv(accounts_df, out / "truth_accounts.csv", decimals=None)
    files["truth_trained.csv"] = _write_csv(trained_df, out / "truth_trained.csv")
    files["truth_learners.csv"] = _write_csv(learners_df, out / "truth_learners.csv")
    opp_df.write_parquet(out / "truth_opportunities.parquet", compression="zstd", statistics=True)
    files["truth_opportunities.parquet"] = opp_df.height
    truth = _academy_truth(cal, sc, seed, org, cu, ac, opps, lms, deleted, costs, dict(files))
    (out / "truth.json").write_bytes(orjson.dumps(truth, option=orjson.OPT_INDENT_2) + b"\n")
    files["truth.json"] = 1
    report("Done", 1.0)
    return files


# --------------------------------------------------------------------------------------------
# Micro-lessons: a dose of daily drills
# --------------------------------------------------------------------------------------------
#
# Scenario ``microlessons``. The Sales Excellence program releases one short lesson (a "drill")
# every business day of its rollout window, all under one parent activity. Reps take part or
# not and do as many drills as they like: engagement is a count, not a date. The model:
#
# * engagement_i = ρ·skill_i + √(1 − ρ²)·ε_i, ε_i ~ N(0, 1), per rep (ρ = engagement_skill);
# * an eligible rep (employed through the window) takes part with probability
#   logistic(a + take_engagement·engagement_i), a set so that take_share of them do;
# * a participant's first drill is on business day ⌊U^exp(timing_engagement·engagement_i) ·
#   start_spread · D⌋ of the D release days (engaged reps start earlier); they complete
#   K_i = min(1 + Poisson(λ_i), max_lessons, days left) distinct drills, λ_i = lessons_median ·
#   exp(lessons_engagement·engagement_i + lessons_sigma·Z_i): the first, then K_i − 1 drills of
#   later release days chosen at random, each on its release day at a local time of day;
# * a deal's untreated log-odds are the sales model's η0 plus the rep's own trend,
#   trend_per_year · engagement_i · (days since the first release) / 365.25, so reps who do more
#   lessons would have improved anyway (the self-selection a before/after design cannot remove);
# * p(L) = logistic(η0 + β·L) is the deal's win probability had its owner completed L lessons
#   before it, β = win_logit_per_lesson; a lesson counts for the deals its rep creates on later
#   UTC dates (from the day after it is done, as a course completion in the other scenarios).
#   L_j, the lessons its owner had actually completed, gives the observed outcome.
#
# Repeating a drill, launching one without completing it, and a completion that is later voided
# add no lesson and no effect. Partner staff do drills too; they own no deals.

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

    def lessons_before(self, owner: np.ndarray, day: np.ndarray) -> np.ndarray:
        """Drills each rep in ``owner`` completed on UTC dates before day index ``day``."""
        rep = self.c_learner < self.lessons.size
        key = self.c_learner[rep] * _DAY_KEY + (self.c_s[rep] // _DAY - self.start_day)
        owner = np.asarray(owner, np.int64)
        return (np.searchsorted(key, owner * _DAY_KEY + day, side="left")
                - np.searchsorted(key, owner * _DAY_KEY, side="left")).astype(np.int64)


def _assign_lessons(cal: _Calendar, org: _Org, lr: _Learners, dsc: _DoseScenario, seed: int
                    ) -> tuple[_Training, _Doses]:
    """Decide who does which daily drills and when; return them as a roll-out and as doses.

    The roll-out (:class:`_Training`) dates each rep's exposure to their first drill, so the
    sales scenarios' truth, surveys and diagnostics read it unchanged.
    """
    rng = _stream(seed, "daily-drills")
    reps = org.n_reps
    roll_lo = cal.day_at(dsc.rollout[0])
    roll_hi = min(cal.n_days - 1, max(roll_lo + 20, cal.day_at(dsc.rollout[1])))
    eligible = (org.hire_day[:reps] < roll_lo) & (org.leave_day[:reps] > roll_hi)
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
        engagement=engagement, released=released, lessons=lessons, first_s=first_s, learner=who, count=count,
        c_learner=who[c_row], c_lesson=c_pos, c_s=c_s, c_dur=c_dur,
        r_learner=who[c_row[again]], r_lesson=c_pos[again], r_s=r_s,
        r_dur=rng.integers(60, 300, again.size),
        x_learner=who[x_row], x_lesson=x_pos, x_s=x_s,
        v_learner=who[voided], v_lesson=v_pos, v_s=v_s, v_void_s=v_void_s,
    )
    return training, doses


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
        (None, "platform", 24_000 + 20.0 * lr.n, day + 10,
         "LMS platform subscription, shared across all programs, annual"),
    ]
    done_day = d.c_s // _DAY - day
    month = 0
    while (first := (_add_months(cal.start, month) - cal.start).days) < min(tr.roll_hi + 1, cal.n_days):
        month += 1
        after = (_add_months(cal.start, month) - cal.start).days
        active = np.unique(d.c_learner[(done_day >= first) & (done_day < after)]).size
        if active:
            lines.append((_PROGRAM, "licensing", 6.0 * active, min(day + after - 1, day + cal.n_days - 1),
                          f"App seats, {active} active learners, {_add_months(cal.start, month - 1):%B %Y}"))
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
    definitions = {k: v for k, v in _DEFINITIONS.items() if not k.startswith("effects.")} | _DOSE_DEFINITIONS
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
        "definitions": definitions,
    }


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



# --------------------------------------------------------------------------------------------
# CRM go-live: the program is a new CRM, and its effect is on leads
# --------------------------------------------------------------------------------------------
#
# Scenario ``crm_golive``. The sales teams (a manager and the reps who report to them) move to a
# new CRM in waves: the teams are spread at random and evenly over the go-live dates (the first
# of a month). A lead is exposed when its owner's team is live on the UTC date it is created. Per
# lead, with common random numbers:
#
# * first response: r0 = exp(τ_team + σ·Z) hours in the old CRM, τ_team ~ N(log median, team σ),
#   and r1 = factor·r0 in the new one, both in whole seconds. The response is a task its owner
#   logs on the lead (WhoId) that long after the lead's CreatedDate; one after the period's end is
#   not in Task.csv (the lead looks unanswered);
# * conversion: leads converted into an opportunity convert either way; of the others a share
#   q = conversion_points / (1 − _LEAD_CONVERSION) converts in the new CRM only, 1–30 days after
#   creation if that is within the period, into the owner's prospect account, with no opportunity.
#
# The CRM shows r1 and converted1 for exposed leads, r0 and converted0 for the others. Deals do not
# change (the pipeline of the seed with no effect at all), so the sales KPIs are a placebo. Reps
# complete the CRM Basics course in the first ``training_days`` days of their team's go-live.


@dataclass(frozen=True)
class _Responses:
    """First responses to leads, as the tasks that record them."""

    owner: np.ndarray  # user index: the lead's owner
    lead_id: pl.Series  # the task's WhoId
    at_s: np.ndarray  # its CreatedDate, UTC epoch seconds
    deleted: np.ndarray  # its lead is deleted, and the task with it

    @classmethod
    def of(cls, cal: _Calendar, leads: pl.DataFrame) -> _Responses:
        """The responses within the period to the leads of :func:`_lead_frame` (with its truth columns)."""
        r = leads.filter(pl.col("_respond_s") < cal.end_s)
        return cls(owner=r["_owner"].to_numpy(), lead_id=r["Id"], at_s=r["_respond_s"].to_numpy(),
                   deleted=r["IsDeleted"].to_numpy())


@dataclass(frozen=True)
class _GoLive:
    """When each sales team goes live on the new CRM, and how fast it answers leads in the old one."""

    sc: _CrmScenario
    manager: np.ndarray  # per team: the manager's user index
    team: np.ndarray  # per rep: team index
    day: np.ndarray  # per team: go-live day index
    log_hours: np.ndarray  # per team: τ, the log of its typical first-response hours in the old CRM

    def training_window(self) -> tuple[np.ndarray, np.ndarray]:
        """Each rep's days ``[lo, hi)`` to complete CRM Basics in: the first days of the team's go-live."""
        lo = self.day[self.team]
        return lo, lo + self.sc.training_days

    def leads(self, cal: _Calendar, org: _Org, owner: np.ndarray, created: np.ndarray, status: np.ndarray,
              conv_day: np.ndarray, conv_acc: np.ndarray, seed: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Draw the leads' potential outcomes in the old and the new CRM; return what the CRM shows.

        ``status`` (0: converted), ``conv_day`` and ``conv_acc`` are the leads' in the old CRM. They
        come back as observed, with the truth columns; a lead answered is no longer "not contacted".
        """
        rng = _stream(seed, "crm-golive-leads")
        n, sc, team = owner.size, self.sc, self.team[owner]
        day = created // _DAY - cal.start_day
        exposed = day >= self.day[team]
        hours = np.exp(self.log_hours[team] + sc.response_sigma * rng.standard_normal(n))
        r0 = np.maximum(60, np.rint(3600 * hours)).astype(np.int64)
        r1 = np.maximum(60, np.rint(sc.response_factor * r0)).astype(np.int64)
        converted0 = status == 0
        lag = rng.integers(1, 31, n)
        converted1 = converted0 | ((rng.random(n) < sc.conversion_points / (1 - _LEAD_CONVERSION))
                                   & (day + lag < cal.n_days))
        respond_s = created + np.where(exposed, r1, r0)
        gained = exposed & converted1 & ~converted0
        status = np.where(gained, 0, np.where((status == 1) & (respond_s < cal.end_s), 2, status))
        truth = {"_owner": owner, "_exposed": exposed, "_response_s0": r0, "_response_s1": r1,
                 "_respond_s": respond_s, "_converted0": converted0, "_converted1": converted1}
        return (status, np.where(gained, day + lag, conv_day),
                np.where(gained, org.acc_start[owner] + org.acc_selling[owner], conv_acc), truth)


def _go_live(cal: _Calendar, org: _Org, sc: _CrmScenario, seed: int) -> _GoLive:
    """Spread the sales teams at random and evenly over the go-live waves; draw their response habits."""
    rng = _stream(seed, "crm-golive")
    manager = np.flatnonzero(org.kind == 1)
    waves = np.array([cal.day_at(f) for f in sc.go_live])
    wave = np.empty(manager.size, np.int64)
    wave[rng.permutation(manager.size)] = np.arange(manager.size) % waves.size
    log_hours = math.log(sc.response_median_hours) + sc.response_team_sigma * rng.standard_normal(manager.size)
    return _GoLive(sc=sc, manager=manager, team=np.searchsorted(manager, org.manager[: org.n_reps]),
                   day=waves[wave], log_hours=log_hours)


def _crm_costs_frame(cal: _Calendar, org: _Org, lr: _Learners, g: _GoLive) -> pl.DataFrame:
    """Build ``costs.csv`` of the CRM rollout: implementation, seats from each team's go-live, training, support."""
    d, program, users = cal.start_day, _CRM_COURSE.program, org.kind.size
    first, last = int(g.day.min()), int(g.day.max())
    lines: list[_CostLine] = [
        (program, "development", 80_000 + 120.0 * users, d + first - 90,
         'Implementation partner "Northwind Consulting": configuration, integrations (SOW CRM-2024-07)'),
        (program, "development", 15_000 + 25.0 * users, d + first - 30,
         "Data migration: leads, accounts, contacts and open opportunities"),
        (program, "evaluation", 8_000 + 2.0 * users, min(d + last + 120, d + cal.n_days - 1),
         "Evaluation: lead response and conversion analysis"),
        (None, "platform", 24_000 + 20.0 * lr.n, d + 10,
         "LMS platform subscription, shared across all programs, annual"),
    ]
    for day in np.unique(g.day).tolist():
        teams = np.flatnonzero(g.day == day)
        reps = int(np.isin(g.team, teams).sum())
        lines.append((program, "facilitation", 2_500 + 150.0 * reps, min(d + day + g.sc.training_days,
                                                                          d + cal.n_days - 1),
                      f"CRM Basics sessions for the {_iso_date(d + day)} go-live: {teams.size} teams, {reps} reps"))
    live_from = g.day[g.team]
    employed_from, employed_until = org.hire_day[: org.n_reps], org.leave_day[: org.n_reps]
    for k in range(cal._months()):
        month, day = _add_months(cal.start, k), (_add_months(cal.start, k) - cal.start).days
        if day < first:
            continue
        seats = int(((live_from <= day) & (employed_from <= day) & (employed_until > day)).sum()
                    + (g.day <= day).sum())  # the live teams' reps in post, and their managers
        hypercare = bool(((day >= g.day) & (day < g.day + 45)).any())
        month_end = d + (_add_months(cal.start, k + 1) - cal.start).days - 1
        lines += [(program, "licensing", g.sc.seat_month * seats, d + day,
                   f"CRM licences, {seats} users, {month:%B %Y}"),
                  (program, "administration", 12_000.0 if hypercare else 5_000.0, month_end,
                   f"CRM administration and support desk{', go-live hypercare' if hypercare else ''}, {month:%B %Y}")]
    return _cost_frame(lines)


def _golive_frames(cal: _Calendar, org: _Org, g: _GoLive, leads: pl.DataFrame,
                   reps_df: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Return truth_reps.csv with each rep's team and go-live date, and truth_leads.parquet."""
    team_id, go_live = org.user_id.gather(g.manager), _dates(cal.start_day + g.day)
    team = g.team[leads["_owner"].to_numpy()]
    reps_df = reps_df.with_columns(team_id=team_id.gather(g.team), go_live_date=go_live.gather(g.team))
    lead_df = pl.DataFrame({
        "lead_id": leads["Id"],
        "owner_id": leads["OwnerId"],
        "team_id": team_id.gather(team),
        "created_date": leads["CreatedDate"].str.slice(0, 10).str.to_date(),
        "go_live_date": go_live.gather(team),
        "exposed": leads["_exposed"],
        "is_deleted": leads["IsDeleted"],
        "response_seconds0": leads["_response_s0"],
        "response_seconds1": leads["_response_s1"],
        "responded": leads["_respond_s"] < cal.end_s,
        "converted0": leads["_converted0"],
        "converted1": leads["_converted1"],
    })
    return reps_df, lead_df


def _lead_figures() -> list[pl.Expr]:
    """The exact effect on the exposed leads as aggregations: per team (``group_by``) or overall."""
    live = pl.col("exposed") & ~pl.col("is_deleted")
    answered = live & pl.col("responded")
    h0, h1 = (pl.col(f"response_seconds{k}").filter(answered) / 3600 for k in (0, 1))
    c0, c1 = (pl.col(f"converted{k}").filter(live).cast(pl.Int64) for k in (0, 1))
    return [
        live.sum().alias("leads"),
        answered.sum().alias("leads_answered"),
        (h1 - h0).mean().alias("att_first_response_hours"),
        h1.mean().alias("mean_first_response_hours_observed"),
        h0.mean().alias("mean_first_response_hours_counterfactual"),
        h1.median().alias("median_first_response_hours_observed"),
        h0.median().alias("median_first_response_hours_counterfactual"),
        (c1 - c0).mean().alias("att_conversion_rate"),
        c1.mean().alias("conversion_rate_observed"),
        c0.mean().alias("conversion_rate_counterfactual"),
        (c1 - c0).sum().alias("incremental_conversions"),
    ]


_CRM_DEFINITIONS = {
    "crm": (
        "scenario crm_golive: the program is a new CRM that each sales team (a manager and the reps with that "
        "ManagerId) starts using on its go_live_date; its effect is on leads, not deals"
    ),
    "crm.teams.<i>.go_live_date": "the UTC date the team goes live; team_id is the manager's User Id",
    "lead exposed": (
        "a lead is exposed when the UTC date of its CreatedDate is on or after its owner's team's go_live_date"
    ),
    "lead potential outcomes": (
        "every lead draws Z once: response_seconds0 = round(3600·exp(τ_team + σ·Z)) in the old CRM, "
        "response_seconds1 = round(first_response_factor · response_seconds0) in the new one; converted0 / converted1 "
        "whether it converts within the period either way. The CRM shows the new CRM's outcomes for exposed leads, "
        "the old one's for the others. truth_leads.parquet has both, per lead. For leads never exposed the new "
        "CRM's outcomes are what it would have done"
    ),
    "first response": (
        "hours from a lead's CreatedDate to the CreatedDate of the first Task on it (WhoId = the lead's Id). A "
        "response after the period's end is not in Task.csv: the lead is not 'responded'"
    ),
    "crm.overall / crm.teams": (
        "exact effect on the exposed, non-deleted leads (IsDeleted false), overall and per team. The response "
        "figures are over those of them responded within the period (leads_answered); the conversion figures over "
        "all of them (leads)"
    ),
    "crm.*.att_first_response_hours": "mean of response_seconds1 − response_seconds0, in hours (negative: faster)",
    "crm.*.mean_ / median_first_response_hours_observed / _counterfactual": (
        "mean / median of response_seconds1 / response_seconds0, in hours"
    ),
    "crm.*.att_conversion_rate": "mean of converted1 − converted0, in proportion units (0.06 = 6 points)",
    "crm.*.incremental_conversions": "Σ (converted1 − converted0): leads converted only thanks to the new CRM",
    "effects.first_response_factor": "structural: response_seconds1 = factor × response_seconds0, for every lead",
    "effects.conversion_points": (
        "structural: leads not converted in the old CRM convert in the new one with probability "
        "conversion_points / (1 − model.crm.lead_conversion_share), i.e. that many points more in expectation"
    ),
    "effects.win_logit / deal_size / cycle": "0: the new CRM does nothing to deals; the sales KPIs are a placebo",
    "diagnostics.naive_before_after_*": (
        "observed mean over the non-deleted leads created on or after their team's go-live minus over those "
        "created before it (first response: of the leads responded within the period)"
    ),
}


def _golive_truth(truth: dict[str, Any], g: _GoLive, org: _Org, reps_df: pl.DataFrame, leads: pl.DataFrame,
                  costs: pl.DataFrame) -> dict[str, Any]:
    """Turn the sales scenarios' truth.json into the go-live's: program, effects, model, the leads' truth, costs."""
    sc = g.sc
    teams = (
        reps_df.group_by("team_id", "go_live_date").agg(reps=pl.len())
        .join(pl.DataFrame({"team_id": org.user_id.gather(g.manager), "manager": org.users["Name"].gather(g.manager),
                            "region": _region_names(org, g.manager)}), on="team_id")
        .join(leads.group_by("team_id").agg(_lead_figures()), on="team_id", how="left")
        .sort("go_live_date", "team_id")
    )
    shown = {k: pl.when(pl.col("exposed")).then(f"{k}1").otherwise(f"{k}0") for k in ("response_seconds", "converted")}
    naive = {exposed: (hours, rate) for exposed, hours, rate in leads.filter(~pl.col("is_deleted")).group_by("exposed")
             .agg(shown["response_seconds"].filter(pl.col("responded")).mean() / 3600,
                  shown["converted"].cast(pl.Int64).mean()).iter_rows()}
    before, after = naive.get(False, (None, None)), naive.get(True, (None, None))
    program = _CRM_COURSE.program
    mine = costs.filter(pl.col("program") == program)
    model = {k: v for k, v in truth["model"].items()
             if k not in ("assignment", "enrol_share", "selection_skill", "timing_skill")}
    return truth | {
        "scenario_description": sc.description,
        "program": truth["program"] | {
            "name": program, "program_activity_id": _CRM_COURSE.program_id,
            "course_activity_id": _CRM_COURSE.course_id, "course_title": _CRM_COURSE.title,
            "lesson_activity_ids": [f"{_CRM_COURSE.course_id}/lesson/{slug}" for slug, _ in _CRM_COURSE.lessons],
        },
        "effects": {"first_response_factor": sc.response_factor, "conversion_points": sc.conversion_points,
                    "win_logit": 0.0, "deal_size": 0.0, "cycle": 0.0, "ramp_days": 0},
        "model": model | {"crm": {
            "go_live_fractions": list(sc.go_live), "response_median_hours": sc.response_median_hours,
            "response_team_log_sigma": sc.response_team_sigma, "response_log_sigma": sc.response_sigma,
            "lead_conversion_share": _LEAD_CONVERSION, "training_days": sc.training_days,
            "licence_per_user_month": sc.seat_month}},
        "crm": {
            "go_live_dates": sorted({t["go_live_date"].isoformat() for t in teams.to_dicts()}),
            "overall": leads.select(_lead_figures()).to_dicts()[0],
            "teams": teams.to_dicts(),
            "leads_file": "truth_leads.parquet",
        },
        "diagnostics": truth["diagnostics"] | {
            "naive_before_after_first_response_hours": _diff(after[0], before[0]),
            "naive_before_after_conversion_rate": _diff(after[1], before[1]),
        },
        "costs": truth["costs"] | {
            "program_total": round(float(mine["amount"].sum()), 2),
            "by_category": {c: round(float(a), 2) for c, a in mine.group_by("category").agg(pl.col("amount").sum())
                            .sort("category").iter_rows()},
        },
        "definitions": {k: v for k, v in truth["definitions"].items() if not k.startswith("effects.")}
        | _CRM_DEFINITIONS,
    }


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def simulate(
    out_dir: Path | str,
    *,
    reps: int = 200,
    months: int = 24,
    seed: int = 7,
    scenario: str = DEFAULT_SCENARIO,
    start: date = date(2024, 1, 1),
    progress: Callable[[str, float], None] | None = None,
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
        ``crm_golive`` writes ``truth_leads.parquet`` (per lead) and a ``crm`` section.
    start
        First day of the period; the period is ``[start, start + months)``.
    progress
        Called as ``progress(step_description, fraction_done)`` while working.

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
        written = _simulate_customers(out, cal, reps=reps, seed=seed, report=report)
        return SimulationInfo(out_dir=out, scenario=scenario, seed=seed, reps=reps, months=months, files=written,
                              seconds=time.perf_counter() - began)
    sc = {_DOSE_SCENARIO: _DOSE_BASE, _CRM_SCENARIO: _CRM_BASE}.get(scenario) or _SCENARIO_PARAMS[scenario]
    report("Building the organisation", 0.0)
    org = _build_org(cal, reps, seed)
    learners = _build_learners(cal, org, seed)
    report("Rolling out the training program", 0.06)
    golive = _go_live(cal, org, _CRM, seed) if scenario == _CRM_SCENARIO else None
    course = _SALES_COURSE if golive is None else _CRM_COURSE
    doses: _Doses | None = None
    program: Callable[[np.random.Generator], _Stmts] | None = None
    activities: list[_ActivitySpec] | None = None
    if scenario == _DOSE_SCENARIO:
        training, doses = _assign_lessons(cal, org, learners, _DOSE, seed)
        parent = len(_sales_activities())
        program = partial(_drill_statements, d=doses, parent=parent)
        activities = _drill_activities(doses.released.size)
    else:
        training = _assign_training(cal, org, learners, sc, seed,
                                    window=None if golive is None else golive.training_window())
        activities = _sales_activities(course)
    report("Simulating opportunities and their potential outcomes", 0.08)
    opps = _simulate_opportunities(cal, org, training, sc, seed, dose=doses)
    files: dict[str, int] = {}
    deleted: dict[str, int] = {}

    def crm(obj: str, df: pl.DataFrame, *, bom: bool = False) -> None:
        files[f"crm/{obj}.csv"] = _write_csv(df, out / "crm" / f"{obj}.csv", bom=bom)
        if "IsDeleted" in df.columns:
            deleted[obj] = int(df["IsDeleted"].sum())

    report("Writing CRM users, accounts and contacts", 0.14)
    crm("User", org.users, bom=True)
    crm("Account", org.accounts)
    crm("Contact", org.contacts, bom=True)
    report("Writing opportunities", 0.20)
    crm("Opportunity", _opportunity_frame(cal, org, opps, seed), bom=True)
    report("Writing opportunity history", 0.32)
    crm("OpportunityHistory", _history_frame(cal, org, opps, seed))
    report("Writing leads, tasks and cases", 0.45)
    leads = _lead_frame(cal, org, opps, seed, golive=golive)
    crm("Lead", leads.select(pl.exclude("^_.*$")))
    crm("Task", _task_frame(cal, org, opps, seed, responses=None if golive is None else _Responses.of(cal, leads)))
    crm("Case", _case_frame(cal, org, seed))

    report("Writing xAPI statements", 0.55)
    lms = _write_statements(out / "lms" / "statements.jsonl", cal, org, learners, training, seed,
                            lambda step, f: report(step, 0.55 + 0.33 * f), program=program, activities=activities)
    files["lms/statements.jsonl"] = lms.lines
    report("Writing the LMS directory, completion report, surveys and costs", 0.9)
    files["lms/learners.csv"] = _write_csv(_learners_frame(cal, learners), out / "lms" / "learners.csv")
    files["lms/completions.csv"] = _write_csv(_completions_frame(cal, learners, seed), out / "lms" / "completions.csv")
    files["surveys.csv"] = _write_csv(_surveys_frame(cal, org, learners, training, seed, course=course),
                                      out / "surveys.csv")
    if doses is not None:
        costs = _drill_costs_frame(cal, training, learners, doses)
    else:
        costs = _costs_frame(cal, training, learners) if golive is None else _crm_costs_frame(cal, org, learners,
                                                                                              golive)
    files["costs.csv"] = _write_csv(costs, out / "costs.csv")

    report("Computing the truth", 0.94)
    reps_df, trained_df, opp_df = _truth_frames(cal, org, learners, training, opps)
    dose_df = lead_df = None
    if doses is not None:
        reps_df, opp_df, dose_df = _dose_frames(cal, org, doses, reps_df, opp_df, opps)
    if golive is not None:
        reps_df, lead_df = _golive_frames(cal, org, golive, leads, reps_df)
    files["truth_reps.csv"] = _write_csv(reps_df, out / "truth_reps.csv", decimals=None)
    files["truth_trained.csv"] = _write_csv(trained_df, out / "truth_trained.csv")
    if dose_df is not None:
        files["truth_doses.csv"] = _write_csv(dose_df, out / "truth_doses.csv")
    opp_df.write_parquet(out / "truth_opportunities.parquet", compression="zstd", statistics=True)
    files["truth_opportunities.parquet"] = opp_df.height
    if lead_df is not None:
        lead_df.write_parquet(out / "truth_leads.parquet", compression="zstd", statistics=True)
        files["truth_leads.parquet"] = lead_df.height
    truth = _truth(cal, scenario, sc, seed, org, learners, training, opps, lms, deleted, costs, dict(files))
    if doses is not None:
        truth = _dose_truth(truth, cal, _DOSE, org, learners, training, doses, opps)
    if golive is not None and lead_df is not None:
        truth = _golive_truth(truth, golive, org, reps_df, lead_df, costs)
    (out / "truth.json").write_bytes(orjson.dumps(truth, option=orjson.OPT_INDENT_2) + b"\n")
    files["truth.json"] = 1
    report("Done", 1.0)
    return SimulationInfo(out_dir=out, scenario=scenario, seed=seed, reps=reps, months=months, files=files,
                          seconds=time.perf_counter() - began)
