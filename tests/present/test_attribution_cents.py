"""attribution.csv's money: each touch in cents, each deal's touches adding up to the deal's total.

Checked against a hand-worked example and against the largest-remainder rule written plainly
(one deal at a time, in Python), on tables whose deals' rows are together or interleaved.
"""

from __future__ import annotations

import math
from decimal import Decimal

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from training_roi.present.attribution import _cents, _deals


def _rounded(table: pl.DataFrame) -> pl.DataFrame:
    table, deal = _deals(table)
    return _cents(table, "credited_value", deal)


def _plain(rows: list[tuple[str, float]]) -> dict[int, int]:
    """The largest-remainder rule, one deal at a time: row index → cents."""
    out: dict[int, int] = {}
    for deal in dict.fromkeys(d for d, _ in rows):
        mine = [(i, v * 100) for i, (d, v) in enumerate(rows) if d == deal]
        lost = round(math.fsum(c for _, c in mine)) - sum(math.floor(c) for _, c in mine)
        by_remainder = sorted(mine, key=lambda ic: (-(ic[1] - math.floor(ic[1])), ic[0]))
        extra = {i for i, _ in by_remainder[:lost]}
        out.update({i: math.floor(c) + (i in extra) for i, c in mine})
    return out


def test_a_third_of_a_deal_each_gives_the_extra_cent_to_the_first_touch():
    table = pl.DataFrame({"opportunity_id": ["A", "A", "A", "B", "B"],
                          "credited_value": [100 / 3, 100 / 3, 100 / 3, 10.005, 10.005]})
    got = _rounded(table)["credited_value"].to_list()
    assert got == [Decimal("33.34"), Decimal("33.33"), Decimal("33.33"), Decimal("10.01"), Decimal("10.00")]


def test_an_empty_table_keeps_its_columns():
    table = pl.DataFrame({"opportunity_id": [], "credited_value": []},
                         schema={"opportunity_id": pl.String, "credited_value": pl.Float64})
    got = _rounded(table)
    assert got.height == 0 and isinstance(got.schema["credited_value"], pl.Decimal)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("ABCDE"), st.integers(0, 10**9).map(lambda n: n / 997)),
                min_size=1, max_size=40),
       st.booleans())
def test_every_deal_adds_up_and_each_touch_follows_the_largest_remainder(rows, together):
    if together:  # as a study's attribution has them: each deal's touches one after another
        rows = sorted(rows, key=lambda r: r[0])
    table = pl.DataFrame({"opportunity_id": [d for d, _ in rows], "credited_value": [v for _, v in rows],
                          "row": list(range(len(rows)))})
    got = _rounded(table)
    cents = {r: int(v * 100) for r, v in zip(got["row"], got["credited_value"], strict=True)}
    assert cents == _plain(rows)
    for deal in {d for d, _ in rows}:
        total = math.fsum(v for d, v in rows if d == deal) * 100
        assert sum(c for r, c in cents.items() if rows[r][0] == deal) == round(total)


def test_a_missing_amount_stays_missing_and_the_rest_still_add_up():
    table = pl.DataFrame({"opportunity_id": ["A", "A", "A"], "credited_value": [100 / 3, None, 200 / 3]})
    assert _rounded(table)["credited_value"].to_list() == [Decimal("33.33"), None, Decimal("66.67")]
