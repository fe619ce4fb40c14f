"""Scenario ``turnover``: reps joining and leaving during the period, and what that does to their deals.

The model, on top of the organisation's own few hires and leavers (:func:`_more_turnover` draws
from a stream of its own, so the rest of the org is the seed's):

* a share of the reps hired before the period is hired during it instead, on a day in
  ``[1, hire_span × period)``: User.CreatedDate and learners.csv hire_date are that day;
* a share of the reps still there at the end leaves on a day in
  ``[max(leave_from × period, hire + min_tenure_days), period − 1)``: User.IsActive is false;
* a rep creates deals from the day after their hire until two days before their last day (the
  day before they leave), so that every deal's UTC CreatedDate falls after the hire and before the
  last day whatever the rep's time zone; a new rep's rate of creating deals grows linearly from 0 at hire to full
  after ``ramp_days`` (:func:`_ramp_exposure`, :func:`_ramp_quantile`), and their deals' log-odds
  of winning start ``ramp_win_logit`` lower, fading linearly over ``ramp_win_days`` of tenure;
* a leaver's deals still open on their last day are closed lost that day, under either potential
  outcome (:func:`_close_at_departure`): with training a deal may close, won, before the rep leaves
  where without it it would still have been open, and the truth counts that;
* training is only possible while employed: completion falls in
  ``[hire + train_after_hire_days, leave − train_before_leave_days)`` within the rollout window,
  and a dropout's lessons stop before the last day.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from training_roi.simulate.draws import _stream
from training_roi.simulate.fields import _dates, _masked
from training_roi.simulate.period import _NEVER, _Calendar
from training_roi.simulate.scenarios import _Turnover


def _more_turnover(cal: _Calendar, kind: np.ndarray, hire: np.ndarray, leave: np.ndarray, seed: int,
                   t: _Turnover) -> tuple[np.ndarray, np.ndarray]:
    """Return every user's hire and leave day with the scenario's additional hires and leavers among the reps."""
    rng = _stream(seed, "turnover")
    n = kind.size
    u_hire, u_leave, u_day = rng.random(n), rng.random(n), rng.random(n)
    hire_day = rng.integers(1, max(2, int(t.hire_span * cal.n_days)), n)
    staying = (kind == 0) & (leave >= _NEVER)
    new = staying & (hire < 0) & (u_hire < t.hire_share)
    hire = np.where(new, hire_day, hire)
    lo = np.maximum(int(t.leave_from * cal.n_days), hire + t.min_tenure_days)
    hi = cal.n_days - 1
    left = staying & (lo < hi) & (u_leave < t.leave_share)
    leave = np.where(left, lo + np.floor(u_day * (hi - lo)).astype(np.int64), leave)
    return hire, leave


def _deal_days(hire: np.ndarray, leave: np.ndarray, n_days: int) -> tuple[np.ndarray, np.ndarray]:
    """Per rep: the (local) days ``[lo, hi)`` they create deals on: after the hire day, ending a day before the last."""
    return np.clip(hire + 1, 0, n_days), np.clip(leave - 2, 0, n_days)


def _ramp_cumulative(x: np.ndarray, ramp: int) -> np.ndarray:
    """∫₀ˣ min(1, s / ramp) ds: a new rep's exposure, in full-rate days, over their first ``x`` days."""
    return np.where(x <= ramp, x * x / (2 * ramp), ramp / 2 + (x - ramp))


def _ramp_exposure(lo: np.ndarray, hi: np.ndarray, hire: np.ndarray, ramp: int) -> np.ndarray:
    """Per rep: the full-rate days in ``[lo, hi)`` when the rate grows linearly over ``ramp`` days from hire."""
    a, b = (lo - hire).astype(float), np.maximum(hi - hire, lo - hire).astype(float)
    return np.asarray(_ramp_cumulative(b, ramp) - _ramp_cumulative(a, ramp), dtype=np.float64)


def _ramp_quantile(u: np.ndarray, lo: np.ndarray, hi: np.ndarray, hire: np.ndarray, ramp: int) -> np.ndarray:
    """Map uniforms to fractions of ``[lo, hi)`` distributed as the ramped rate (the inverse of its CDF)."""
    a, b = (lo - hire).astype(float), np.maximum(hi - hire, lo - hire + 1).astype(float)
    fa, fb = _ramp_cumulative(a, ramp), _ramp_cumulative(b, ramp)
    y = fa + u * (fb - fa)
    x = np.where(y <= ramp / 2, np.sqrt(2 * ramp * y), y - ramp / 2 + ramp)
    return np.asarray(np.clip((x - a) / (b - a), 0.0, np.nextafter(1.0, 0.0)), dtype=np.float64)


def _ramp_win_logit(day: np.ndarray, hire: np.ndarray, t: _Turnover) -> np.ndarray:
    """The log-odds a deal created on ``day`` loses to its owner's short tenure (``hire``: the owner's hire day)."""
    return np.asarray(t.ramp_win_logit * np.clip(1.0 - (day - hire) / t.ramp_win_days, 0.0, 1.0), dtype=np.float64)


def _close_at_departure(created_day: np.ndarray, cycle: np.ndarray, won: np.ndarray,
                        last_day: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Close lost, on the owner's last day, the deals that would still be open then (one potential outcome).

    Returns the cycle, won and a flag per deal: closed lost at its owner's departure.
    """
    cut = created_day + cycle > last_day
    return np.where(cut, last_day - created_day, cycle), won & ~cut, cut


def _turnover_columns(cal: _Calendar, hire: np.ndarray, leave: np.ndarray) -> dict[str, pl.Series]:
    """Columns of truth_reps.csv: each rep's hire date and, for leavers, the day they left."""
    left = leave < cal.n_days
    return {
        "hire_date": _dates(cal.start_day + hire),
        "leave_date": _masked(_dates(cal.start_day + np.where(left, leave, 0)), left),
    }


_TURNOVER_DEFINITIONS = {
    "turnover": (
        "scenario turnover: reps hired during the period (hire day ≥ 1: User.CreatedDate and learners.csv "
        "hire_date on it) and reps who left during it (User.IsActive false; truth_reps.csv leave_date, the first "
        "day no longer employed; their last day is leave_date − 1). A rep creates deals after their "
        "User.CreatedDate (from the day after the hire, in their time zone) and on UTC dates before their last "
        "day; their deals still open on their last day are closed lost that day (CloseDate = last day), not "
        "reassigned. Training completes while employed: on or after hire_date + train_after_hire_days and before "
        "leave_date − train_before_leave_days"
    ),
    "turnover.reps_hired / reps_left / reps_hired_or_left": (
        "reps hired during the period, reps who left during it, and reps who did either (share_hired_or_left: of "
        "all reps); trained_* / untrained_* split them by truth_reps.csv trained"
    ),
    "turnover.deals_closed_at_departure": (
        "non-deleted opportunities closed lost on their owner's last day because they were still open then, as "
        "observed (truth_opportunities.parquet lost_at_departure0 / lost_at_departure1: without / with "
        "training)"
    ),
    "turnover.ramp": (
        "a rep's deal creation rate is min(1, days since hire / ramp_days) of the full rate, and a deal's "
        "untreated log-odds of winning include ramp_win_logit × max(0, 1 − days since hire / ramp_win_days)"
    ),
    "potential outcomes (turnover)": (
        "as in the other scenarios, except that a deal still open on its owner's last day under one potential "
        "outcome is closed lost that day under it: won_d = U < p_d and created + cycle_d ≤ last day, cycle_d cut "
        "to last day − created"
    ),
}


def _turnover_truth(cal: _Calendar, t: _Turnover, hire: np.ndarray, leave: np.ndarray, trained: np.ndarray,
                    lost_at_departure: np.ndarray) -> dict[str, Any]:
    """The ``turnover`` section of truth.json: the model's numbers, who joined and left, and their deals."""
    hired, left = hire >= 1, leave < cal.n_days
    either = hired | left
    return {
        "hire_share": t.hire_share, "leave_share": t.leave_share, "hire_span": t.hire_span,
        "leave_from": t.leave_from, "min_tenure_days": t.min_tenure_days, "ramp_days": t.ramp_days,
        "ramp_win_logit": t.ramp_win_logit, "ramp_win_days": t.ramp_win_days,
        "train_after_hire_days": t.train_after_hire_days, "train_before_leave_days": t.train_before_leave_days,
        "open_deals_at_departure": "closed lost on the owner's last day",
        "reps_hired": int(hired.sum()),
        "reps_left": int(left.sum()),
        "reps_hired_or_left": int(either.sum()),
        "share_hired_or_left": round(float(either.mean()), 6) if either.size else 0.0,
        "trained_hired": int((hired & trained).sum()),
        "trained_left": int((left & trained).sum()),
        "untrained_hired": int((hired & ~trained).sum()),
        "untrained_left": int((left & ~trained).sum()),
        "deals_closed_at_departure": int(lost_at_departure.sum()),
    }
