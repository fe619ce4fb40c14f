"""Revenue in a window after training, by two definitions, exact in cents: booked and eventual.

For a trained rep with completion day c and a window of W days (days ``[c + 1, c + W]``; no upper
bound for ``all``), over the rep's exposed, non-deleted deals:

* **booked** (``revenue_closing_in_window``): the deals' won revenue that closes in the window
  and before the period's end, each potential outcome with its own close day,
  Σ won1·amount1·[c < close1 ≤ c + W, close1 < end] − Σ won0·amount0·[c < close0 ≤ c + W, close0 < end];
* **eventual** (``revenue_created_in_window``): the deals created in the window, each worth, under
  each potential outcome, its won amount if it closes before the end, else its expected value
  p·amount (rounded to the cent per deal).

Both come with their treated and counterfactual terms and with what the CRM shows. The entries
sit beside :func:`training_roi.simulate.truth._window_truth`'s in each window of truth.json.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from training_roi.simulate.opportunities import _Opps


def _cents(x: np.ndarray) -> np.ndarray:
    """Return money amounts as integer cents, so that sums are exact."""
    return np.round(x * 100).astype(np.int64)


def _money(cents: np.ndarray) -> float:
    """Σ of integer cents in the org currency."""
    return int(cents.sum()) / 100


def _revenue_truth(n_days: int, o: _Opps, trained_owner: np.ndarray, window: int | None) -> dict[str, Any]:
    """Booked and eventual revenue of the trained reps' deals in ``window`` days after completion (None: any time).

    ``trained_owner`` is per deal: its owner is trained (completed the program at some time).
    """
    base = o.exposed & ~o.deleted
    limit = np.inf if window is None else window
    c0, c1 = _cents(o.amount0), _cents(o.amount1)
    close0, close1 = o.created_day + o.cycle0, o.created_day + o.cycle1
    # Days from completion to close: days_since counts from completion to creation.
    book0 = base & o.won0 & (o.days_since + o.cycle0 <= limit) & (close0 < n_days)
    book1 = base & o.won1 & (o.days_since + o.cycle1 <= limit) & (close1 < n_days)
    # What the CRM shows: every non-deleted deal of a trained rep closed won in the window, created before
    # the completion or after it.
    since_close = o.days_since + o.cycle
    shown = trained_owner & ~o.deleted & o.closed & o.won & (since_close >= 1) & (since_close <= limit)
    amount = _cents(o.amount)
    created = base & (o.days_since <= limit)
    value0 = np.where(close0 < n_days, np.where(o.won0, c0, 0), np.rint(o.p0 * c0).astype(np.int64))
    value1 = np.where(close1 < n_days, np.where(o.won1, c1, 0), np.rint(o.p1 * c1).astype(np.int64))
    return {
        "revenue_closing_in_window": (int(c1[book1].sum()) - int(c0[book0].sum())) / 100,
        "revenue_closing_in_window_treated": _money(c1[book1]),
        "revenue_closing_in_window_counterfactual": _money(c0[book0]),
        "revenue_closing_in_window_observed": _money(amount[shown]),
        "revenue_created_in_window": (int(value1[created].sum()) - int(value0[created].sum())) / 100,
        "revenue_created_in_window_treated": _money(value1[created]),
        "revenue_created_in_window_counterfactual": _money(value0[created]),
        "revenue_created_in_window_observed": _money(amount[created & o.closed & o.won]),
        "opportunities_open_at_end": int((created & ~o.closed).sum()),
    }


_REVENUE_DEFINITIONS = {
    "truth.windows.<W>.revenue_closing_in_window": (
        "definition (a), booked: Σ over the trained reps' exposed, non-deleted opportunities of won1·amount1·[its "
        "close day under treatment (created + cycle1) is within [completion_date + 1, completion_date + W] and "
        "before end] − won0·amount0·[its close day without treatment (created + cycle0) is within the same days "
        "and before end]; 'all': any close day after completion_date and before end. Exact in cents"
    ),
    "truth.windows.<W>.revenue_closing_in_window_treated / _counterfactual": (
        "the two terms of revenue_closing_in_window: Σ won1·amount1·[…] and Σ won0·amount0·[…]"
    ),
    "truth.windows.<W>.revenue_closing_in_window_observed": (
        "what the CRM shows: Σ Amount of the trained reps' non-deleted opportunities closed won (IsWon) with "
        "CloseDate within [completion_date + 1, completion_date + W] and before end, whether created after the "
        "completion (exposed: the treated term) or before it (not affected by training)"
    ),
    "truth.windows.<W>.revenue_created_in_window": (
        "definition (b), eventual: over the opportunities of truth.windows.<W> (exposed, non-deleted, created 1..W "
        "days after completion_date), Σ V1 − V0, where V_d = won_d·amount_d when the opportunity closes before end "
        "under outcome d (created + cycle_d < end), else its expected value p_d·amount_d rounded to the cent (it is "
        "still open at the export). Exact in cents"
    ),
    "truth.windows.<W>.revenue_created_in_window_treated / _counterfactual": (
        "the two terms of revenue_created_in_window: Σ V1 and Σ V0"
    ),
    "truth.windows.<W>.revenue_created_in_window_observed": (
        "what the CRM shows of them: Σ Amount of those closed won by the export (equal to won_revenue_observed)"
    ),
    "truth.windows.<W>.opportunities_open_at_end": (
        "of the window's opportunities, those still open at the export (IsClosed false, CloseDate after "
        "export_date)"
    ),
    "export_date": (
        "the day the exports are taken: the period's last day (end − 1 day). An opportunity open then has "
        "IsClosed false, an open StageName and its expected CloseDate after export_date"
    ),
}
