"""The pipeline: every opportunity, with both potential outcomes and the one the CRM shows.

The structural parameters of the sales model (recorded in truth.json) come first. Every deal
draws its random numbers once, and its untreated and its treated outcome are functions of the same
draws (common random numbers), so the effect on each deal is known exactly. :func:`_observe` turns
the potential outcomes into the deal the CRM shows, in the sales and the customer scenarios alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import polars as pl

from training_roi.simulate.draws import _logistic, _stream
from training_roi.simulate.fields import _id_counters, _salesforce_ids
from training_roi.simulate.markets import _market_logit
from training_roi.simulate.org import _Org
from training_roi.simulate.period import _DAY, _NEVER, _Calendar
from training_roi.simulate.scenarios import _Scenario
from training_roi.simulate.tenure_effect import _tenure_band
from training_roi.simulate.training import _Training
from training_roi.simulate.turnover import (
    _close_at_departure,
    _deal_days,
    _ramp_exposure,
    _ramp_quantile,
    _ramp_win_logit,
)

# Structural parameters of the sales model (recorded in truth.json).
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

_LEAD_SOURCES = ("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Trade Show",
                 "Employee Referral", "Other")
_OPEN_STAGES = (("Prospecting", 10), ("Qualification", 20), ("Needs Analysis", 25),
                ("Value Proposition", 50), ("Proposal/Price Quote", 75), ("Negotiation/Review", 90))


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
    # turnover only: closed lost on the owner's last day because still open then, without / with training
    lost_at_departure0: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    lost_at_departure1: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))

    @property
    def n(self) -> int:
        """Number of opportunities."""
        return self.owner.size


class _LessonDose(Protocol):
    """What the pipeline reads of a dose of lessons (the daily drills of scenario ``microlessons``)."""

    win_logit_per_lesson: float  # β: log-odds of winning per distinct lesson completed before a deal
    trend_per_year: float  # each rep's own untreated log-odds trend per year and unit of engagement
    engagement: np.ndarray  # per rep

    def lessons_before(self, owner: np.ndarray, day: np.ndarray) -> np.ndarray:
        """Lessons each rep in ``owner`` completed on UTC dates before day index ``day``."""
        ...

    @property
    def own_effects(self) -> bool:
        """Whether some lessons have an effect of their own (then :meth:`effect_before` gives it)."""
        ...

    def effect_before(self, owner: np.ndarray, day: np.ndarray) -> np.ndarray:
        """The log-odds added by the lessons each rep in ``owner`` completed before day index ``day``."""
        ...


def _simulate_opportunities(cal: _Calendar, org: _Org, tr: _Training, sc: _Scenario, seed: int,
                            dose: _LessonDose | None = None) -> _Opps:
    """Draw the pipeline and both potential outcomes of every deal; observe one of them.

    All random numbers come from a stream that does not depend on the scenario, so every
    scenario of a seed has the same deals and only their exposure to training differs.
    With ``dose`` (scenario ``microlessons``) the treated outcome is the one at the lessons the
    owner had done before the deal, and the untreated log-odds carry each rep's own trend; no
    random number is drawn for either, so the deals stay the same.
    With ``sc.turnover`` (scenario turnover) reps create deals only while employed, new reps ramp
    up, and a leaver's deals still open on their last day are closed lost
    (:mod:`training_roi.simulate.turnover`); with ``sc.cycle_median`` cycles are longer. With
    ``sc.markets`` (the covariate worlds) each region's market adds its own trend to the untreated
    log-odds (:mod:`training_roi.simulate.markets`); no random number is drawn for it.
    """
    rng = _stream(seed, "opportunities")
    reps = org.n_reps
    t = sc.turnover
    hire = org.hire_day[:reps]
    if t is None:
        lo, hi = org.rep_days(cal.n_days)
        exposure = np.maximum(hi - lo, 0)
    else:
        lo, hi = _deal_days(hire, org.leave_day[:reps], cal.n_days)
        exposure = _ramp_exposure(lo, hi, hire, t.ramp_days)
    rate = _OPPS_PER_REP_MONTH * np.exp(_SKILL_RATE * org.skill - _SKILL_RATE**2 / 2)
    count = rng.poisson(rate * exposure / 30.4375)
    owner = np.repeat(np.arange(reps), count)
    n = owner.size
    u_day = rng.random(n)
    if t is not None:
        u_day = _ramp_quantile(u_day, lo[owner], hi[owner], hire[owner], t.ramp_days)
    created = cal.business_instants(lo[owner], hi[owner], u_day, rng.integers(8 * 3600, 18 * 3600, n),
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
    if t is not None:
        eta0 = eta0 + _ramp_win_logit(day, hire[owner], t)
    if sc.markets is not None:
        eta0 = eta0 + _market_logit(org, sc.markets, owner, years)
    amount0 = np.round(
        _AMOUNT_MEDIAN * np.array(_TYPE_AMOUNT)[typ]
        * np.exp(_AMOUNT_SIGMA * z_amount + _AMOUNT_SKILL * skill + _AMOUNT_TREND_PER_YEAR * years), -1
    )
    amount0 = np.maximum(amount0, 500.0)
    median = _CYCLE_MEDIAN if sc.cycle_median is None else sc.cycle_median
    cycle0 = np.maximum(3, np.round(median * np.array(_TYPE_CYCLE)[typ] * np.exp(_CYCLE_SIGMA * z_cycle)))
    cycle0 = cycle0.astype(np.int64)

    comp_day = tr.complete_day[owner]
    days_since = day - comp_day
    exposed = (comp_day < _NEVER) & (days_since >= 1)
    # The effect's size: full at once, or growing with time since completion (staggered).
    # For deals never exposed it is the full effect: what training would have done.
    ramp = np.clip(days_since / max(sc.ramp_days, 1), 0.0, 1.0)
    scale = np.where(exposed, ramp, 1.0) if sc.ramp_days else np.ones(n)
    effect = sc.win_logit if sc.win_logit_by_region is None else np.array(sc.win_logit_by_region)[org.region[owner]]
    if sc.win_logit_by_tenure is not None:
        band = _tenure_band(org, tr.complete_day, (tr.roll_lo, tr.roll_hi))
        effect = np.array(sc.win_logit_by_tenure)[band[owner]]
    eta1 = eta0 + effect * scale
    lessons_before = np.zeros(0, np.int64)
    if dose is not None:
        eta0 = eta0 + dose.trend_per_year * dose.engagement[owner] * (day - tr.roll_lo) / 365.25
        lessons_before = dose.lessons_before(owner, day)
        if dose.own_effects:  # some lessons have an effect of their own (scenarios lesson_map, knowledge_gaps)
            eta1 = eta0 + dose.effect_before(owner, day)
        else:
            eta1 = eta0 + dose.win_logit_per_lesson * lessons_before
    amount1 = np.round(amount0 * (1.0 + sc.deal_size * scale), 2)
    cycle1 = np.maximum(1, np.round(cycle0 * (1.0 - sc.cycle * scale))).astype(np.int64)
    leave = org.leave_day[owner]
    last_day = None if t is None else np.where(leave < cal.n_days, leave - 1, _NEVER)
    return _observe(cal, rng, owner=owner, account=account, created_s=created, created_day=day, typ=typ,
                    lead_source=lead_source, u_win=u_win, eta0=eta0, eta1=eta1, amount0=amount0, amount1=amount1,
                    cycle0=cycle0, cycle1=cycle1, exposed=exposed, days_since=days_since, deleted=deleted,
                    u_missing=u_missing, u_stage=u_stage, lessons_before=lessons_before, last_day=last_day)


def _observe(cal: _Calendar, rng: np.random.Generator, *, owner: np.ndarray, account: np.ndarray,
             created_s: np.ndarray, created_day: np.ndarray, typ: np.ndarray, lead_source: np.ndarray,
             u_win: np.ndarray, eta0: np.ndarray, eta1: np.ndarray, amount0: np.ndarray, amount1: np.ndarray,
             cycle0: np.ndarray, cycle1: np.ndarray, exposed: np.ndarray, days_since: np.ndarray,
             deleted: np.ndarray, u_missing: np.ndarray, u_stage: np.ndarray,
             lessons_before: np.ndarray, last_day: np.ndarray | None = None) -> _Opps:
    """Draw both outcomes of every deal from its one uniform, observe the exposed one, and close or stage it.

    ``eta0`` / ``eta1`` are the untreated / treated log-odds of winning; ``won = u_win < p`` under
    either (common random numbers). The CRM shows the treated outcome, amount and cycle of exposed
    deals and the untreated ones of the others; a deal closes if its cycle ends within the period,
    else it sits at an open stage. With ``last_day`` (per deal: its owner's last day, scenario
    turnover) a deal still open on it is closed lost that day, under either outcome. The ids come
    last from ``rng``, after every other draw.
    """
    p0, p1 = _logistic(eta0), _logistic(eta1)
    won0, won1 = u_win < p0, u_win < p1
    lost0 = lost1 = np.zeros(0, bool)
    if last_day is not None:
        cycle0, won0, lost0 = _close_at_departure(created_day, cycle0, won0, last_day)
        cycle1, won1, lost1 = _close_at_departure(created_day, cycle1, won1, last_day)
    won = np.where(exposed, won1, won0)
    amount = np.where(exposed, amount1, amount0)
    cycle = np.where(exposed, cycle1, cycle0)
    close_day = created_day + cycle
    closed = close_day < cal.n_days
    won = won & closed
    elapsed = (cal.n_days - created_day) / cycle
    stage = np.where(closed, -1, np.minimum(len(_OPEN_STAGES) - 1, np.floor(elapsed * u_stage * 6.99)).astype(np.int64))
    # Real exports lack an amount on some deals that never closed won; never on won ones.
    amount_missing = ~won & (u_missing < 0.04)
    opp_id = _salesforce_ids("006", _id_counters(rng, owner.size))
    return _Opps(
        owner=owner, account=account, created_s=created_s, created_day=created_day, type=typ,
        lead_source=lead_source, u_win=u_win, p0=p0, p1=p1, won0=won0, won1=won1,
        amount0=amount0, amount1=amount1, cycle0=cycle0, cycle1=cycle1, exposed=exposed,
        days_since=days_since, won=won, amount=amount, cycle=cycle, close_day=close_day,
        closed=closed, deleted=deleted, amount_missing=amount_missing, stage=stage, opp_id=opp_id,
        lessons_before=lessons_before, lost_at_departure0=lost0, lost_at_departure1=lost1,
    )
