"""``costs.csv``: the program's cost lines, and the LMS platform that all programs share.

:func:`_cost_frame` turns cost lines into the file's rows; the other programs (the daily drills,
the CRM go-live, the customer academy) write their own lines with it.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from training_roi.simulate.fields import _dates
from training_roi.simulate.learners import _Learners
from training_roi.simulate.period import _DAY, _Calendar
from training_roi.simulate.program import _PROGRAM
from training_roi.simulate.training import _Training

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
        _lms_subscription(cal, lr),
    ]
    # Monthly per-seat licence invoices and coaching sessions during the rollout.
    for month, first, after in cal.months_before(min(tr.roll_hi + 60, cal.n_days)):
        if first + 31 <= tr.roll_lo:
            continue
        lines.append((_PROGRAM, "licensing", 40.0 * enrolled, d + first,
                      f"Content licence, {enrolled} seats, {month:%B %Y}"))
        cohort = int(((completion_day >= first) & (completion_day < after)).sum())
        if cohort:
            lines.append((_PROGRAM, "facilitation", 3_000 + 250.0 * cohort, min(d + first + 14, d + cal.n_days - 1),
                          f"Live coaching sessions, {month:%B %Y} cohort of {cohort}, incl. coach travel"))
    return _cost_frame(lines)


def _lms_subscription(cal: _Calendar, lr: _Learners) -> _CostLine:
    """The cost line of the LMS platform that all the employer's programs share: none of the program's own."""
    return (None, "platform", 24_000 + 20.0 * lr.n, cal.start_day + 10,
            "LMS platform subscription, shared across all programs, annual")
