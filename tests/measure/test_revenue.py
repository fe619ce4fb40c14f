"""Booked and eventual revenue on a five-deal warehouse, every figure worked out by hand below.

One trained rep T (anchor 2025-03-01) and one comparison rep C (pseudo anchor 2025-03-01), a
60-day baseline and a 90-day window, the export taken on 2025-06-30:

    deal  rep  created     closed      won   amount   in T's/C's windows
    D1    T    2025-01-10  2025-03-15  yes   1,000    created in the baseline, closes in the window
    D2    T    2025-03-05  2025-04-20  yes   3,000    created and closes in the window
    D3    T    2025-03-20  open        —     5,000    created in the window, open at export (age 102 days)
    D4    C    2025-01-20  2025-02-10  yes   2,000    created and closes in the baseline
    D5    C    2025-03-10  2025-05-01  no    4,000    created and closes in the window

Booked (won revenue of deals created and closed inside a window): T baseline 0 (D1 was created in
it but closed after it), T post 3,000 (D2; D1 closes in the window but was created before training,
which cannot have changed it); C baseline 2,000 (D4), C post 0 (D5 was lost).
Eventual (deals created inside a window; won ones at their amount, open ones at amount × the
share won of past deals that stayed open as long): the closed deals' cycles are 64 (D1), 46 (D2),
21 (D4) and 52 (D5) days; D3 is 102 days old, age bucket 3 (90–119 days): no closed deal stayed
open 90 days, so its rate is unknown and it counts at 0. T baseline: D1 (created Jan 10) 1,000;
T post: D2 3,000 + D3 0 = 3,000; C baseline: D4 2,000; C post: D5 lost, 0.
The open-deal rates by age bucket (30 days): age 0 — 4 closed, 3 won → 0.75; age 1 (≥ 30 days) —
D1, D2, D5 → 2 of 3; age 2 (≥ 60 days) — D1 → 1 of 1; age 3 and up — none.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import ibis
import pytest

from tests.builders import put_rows
from training_roi.measure.revenue import open_win_rates, windows_revenue
from training_roi.warehouse.connection import ensure_tables

ANCHOR = date(2025, 3, 1)


def _deal(i: str, rep: str, created: str, close: str, closed: bool, won: bool, amount: int) -> dict[str, object]:
    return {"opportunity_id": i, "owner_id": rep, "account_id": "A", "amount": Decimal(amount),
            "created_at": datetime.fromisoformat(created + "T12:00:00").replace(tzinfo=UTC),
            "close_date": date.fromisoformat(close), "is_closed": closed, "is_won": won, "is_deleted": False}


@pytest.fixture
def five(con):
    ensure_tables(con)
    put_rows(con, "crm_opportunity", [
        _deal("D1", "T", "2025-01-10", "2025-03-15", True, True, 1000),
        _deal("D2", "T", "2025-03-05", "2025-04-20", True, True, 3000),
        _deal("D3", "T", "2025-03-20", "2025-07-31", False, False, 5000),
        _deal("D4", "C", "2025-01-20", "2025-02-10", True, True, 2000),
        _deal("D5", "C", "2025-03-10", "2025-05-01", True, False, 4000),
    ])
    return con


def test_open_win_rates_by_age(five):
    rates = {r["age"]: (r["closed"], r["won"], r["p"]) for r in open_win_rates(five).iter_rows(named=True)}
    assert rates[0] == (4, 3, 0.75)
    assert rates[1] == (3, 2, pytest.approx(2 / 3))
    assert rates[2] == (1, 1, 1.0)
    assert rates[3] == (0, 0, None)


def test_booked_and_eventual_revenue_by_hand(five):
    anchors = ibis.memtable({"unit_id": ["T", "C"], "anchor": [ANCHOR, ANCHOR], "base_anchor": [ANCHOR, ANCHOR]})
    rows = windows_revenue(five, anchors, baseline_days=60, windows=[90], as_of=date(2025, 6, 30),
                           win_rates=open_win_rates(five)).to_pyarrow().to_pylist()
    got = {(r["unit_id"], r["period"]): (float(r["booked"]), float(r["eventual"])) for r in rows}
    assert got[("T", "baseline")] == (0.0, 1000.0)
    assert got[("T", "post")] == (3000.0, 3000.0)
    assert got[("C", "baseline")] == (2000.0, 2000.0)
    assert got.get(("C", "post"), (0.0, 0.0)) == (0.0, 0.0)


def test_an_open_deal_counts_at_its_expected_value(five):
    # Exported on 2025-04-25 instead: D3 is 36 days old (age 1), so it counts at 5,000 × 2/3; D2 had not
    # closed yet in that export, but the rows say it closed, so the rows are what counts.
    anchors = ibis.memtable({"unit_id": ["T"], "anchor": [ANCHOR], "base_anchor": [ANCHOR]})
    rows = windows_revenue(five, anchors, baseline_days=60, windows=[90], as_of=date(2025, 4, 25),
                           win_rates=open_win_rates(five)).to_pyarrow().to_pylist()
    post = next(r for r in rows if r["period"] == "post")
    assert float(post["eventual"]) == pytest.approx(3000 + 5000 * 2 / 3, abs=1e-6)


def test_credit_never_exceeds_the_central_estimate():
    import numpy as np

    from training_roi.value import credit_revenue

    credited, _ = credit_revenue(100.0, observed=1_000.0, draws=np.full(100, 150.0))
    assert credited == Decimal("100.00")
