"""Scenario ``heterogeneous_tenure``: the program helps new reps most, and the truth by tenure band.

A rep's tenure is the days from their hire (User.csv's ``CreatedDate``) to their training's
completion day, or, for a rep never trained, to the middle of the rollout window (when they would
have been trained); their band is under 1 year, 1 to 3 years, or 3 years and over (365.25-day
years, as the product counts them). The effect on the log-odds of winning is the band's
(``win_logit_by_tenure``): new reps learn most from the course. Reps self-select as in ``selection``.
truth.json's ``subgroups`` section gives each band's effect on its trained reps (their deals created
1 to 180 days after training) and on its never-trained reps (their deals created in the rollout
window and the 180 days after it), as the region's do in ``heterogeneous``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from training_roi.simulate.markets import _group_effects
from training_roi.simulate.org import _Org
from training_roi.simulate.period import _NEVER

_BANDS = ("under 1 year", "1 to 3 years", "3 years and over")


def _tenure_band(org: _Org, complete_day: np.ndarray, roll: tuple[int, int]) -> np.ndarray:
    """Per rep: 0, 1 or 2, the tenure band at their training (the rollout's middle when never trained)."""
    reps = org.n_reps
    at = np.where(complete_day[:reps] < _NEVER, complete_day[:reps], (roll[0] + roll[1]) // 2)
    years = (at - org.hire_day[:reps]) / 365.25
    return np.where(years < 1, 0, np.where(years < 3, 1, 2)).astype(np.int64)


def _tenure_truth(band: np.ndarray, by_tenure: tuple[float, ...], trained: np.ndarray, roll: tuple[int, int], *,
                  owner: np.ndarray, created_day: np.ndarray, days_since: np.ndarray, counted: np.ndarray,
                  won0: np.ndarray, won1: np.ndarray, p0: np.ndarray, p1: np.ndarray) -> dict[str, Any]:
    """truth.json's ``subgroups`` section: each tenure band's effect on its trained and its never-trained reps."""
    after = counted & trained[owner] & (days_since >= 1) & (days_since <= 180)
    untrained = counted & ~trained[owner] & (created_day >= roll[0]) & (created_day < roll[1] + 180)
    deal_band = band[owner]
    out = {name: {"win_logit": by_tenure[b],
                  **_group_effects(after & (deal_band == b), untrained & (deal_band == b), owner=owner, won0=won0,
                                   won1=won1, p0=p0, p1=p1)}
           for b, name in enumerate(_BANDS)}
    return {"variable": "tenure", "warehouse_column": "crm_user.created_at", "bands": out}


def _tenure_mixture(band: np.ndarray, by_tenure: tuple[float, ...], trained: np.ndarray) -> dict[str, Any]:
    """truth.json's ``effects`` entries of this world: the bands' log-odds, and their mean over the trained reps."""
    values = np.array(by_tenure)[band[trained[: band.size]]]
    return {"win_logit": float(values.mean()) if values.size else None, "win_logit_by_tenure": list(by_tenure),
            "win_logit_is": "the mean of the bands' effects over the trained reps: no rep has it"}


_TENURE_DEFINITIONS = {
    "subgroups (heterogeneous_tenure)": (
        "scenario heterogeneous_tenure: the effect on the log-odds of winning by the rep's tenure band (days from "
        "CreatedDate to the training's completion day, or to the middle of the rollout window for a rep never "
        "trained, in 365.25-day years: under 1 year, 1 to 3 years, 3 years and over). bands: each band's "
        "win_logit, its trained and never-trained reps, att_win_rate (mean won1 − won0 over its trained reps' "
        "closed, non-deleted deals created 1 to 180 days after training) and atu_win_rate (the same over its "
        "never-trained reps' deals created from the rollout's start to 180 days after its end), each also as the "
        "expected p1 − p0"
    ),
}
