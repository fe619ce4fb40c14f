"""Revenue of a unit's windows by the two definitions a finance reviewer asks about.

* **Booked**: won revenue of the deals created **and closed** inside the window — what the books
  show for the period from deals training could have touched (a deal created before training and
  closing after it is the same with or without it, so it is left out of both groups alike).
* **Eventual**: revenue of the deals **created** inside the window, whether or not they have closed:
  won deals at their amount, lost deals at nothing, deals still open at their expected value — the
  amount × the share of the org's past deals that, having stayed open as long, ended won.

Both are summed per unit for its baseline and for each post window, anchored as the KPIs are
(:func:`training_roi.measure.sales.windows_kpis`), as exact decimals; the isolation stage turns
them into per-unit-month rates and compares trained with comparison units.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import ibis
import ibis.expr.types as ir
import polars as pl
from ibis.backends import BaseBackend

from training_roi.measure.sales import _opportunities

__all__ = ["AGE_MONTHS", "open_win_rates", "windows_revenue"]

AGE_MONTHS = 24
"""Open deals older than this many 30-day months share the last age's win rate."""

_P = "decimal(12, 10)"
_MONEY = "decimal(38, 10)"


def open_win_rates(con: BaseBackend, unit: str = "rep", deal_types: Sequence[str] = ()) -> pl.DataFrame:
    """The share of closed deals won among those that stayed open at least each age.

    Ages in 30-day months, 0 to :data:`AGE_MONTHS`. Columns ``age``, ``closed``, ``won``, ``p``
    (null where no deal stayed open so long).
    """
    t = _opportunities(con, unit, deal_types)
    closed = t.filter(t.closed & t.cycle_days.notnull())
    age = ibis.least((closed.cycle_days.clip(lower=0) // 30).cast("int64"), AGE_MONTHS)
    counts = closed.group_by(age=age).aggregate(closed=closed.count(), won=closed.won.sum())
    frame = pl.from_arrow(counts.to_pyarrow())
    assert isinstance(frame, pl.DataFrame)
    ages = pl.DataFrame({"age": list(range(AGE_MONTHS + 1))}, schema={"age": pl.Int64})
    frame = ages.join(frame.with_columns(pl.col("age").cast(pl.Int64)), on="age", how="left").fill_null(0)
    # A deal that closed at age k stayed open through every younger age: counts accumulate from the top.
    frame = frame.sort("age", descending=True).with_columns(
        pl.col("closed").cum_sum(), pl.col("won").cum_sum()).sort("age")
    return frame.with_columns(
        pl.when(pl.col("closed") > 0).then(pl.col("won") / pl.col("closed")).otherwise(None).alias("p"))


def windows_revenue(
    con: BaseBackend,
    anchors: ir.Table,
    *,
    baseline_days: int,
    windows: list[int],
    ramp_days: int = 0,
    unit: str = "rep",
    as_of: date,
    win_rates: pl.DataFrame,
    deal_types: Sequence[str] = (),
) -> ir.Table:
    """Booked and eventual revenue per unit in its baseline and each post window.

    ``anchors``: (unit_id, anchor[, base_anchor]) as for the KPIs. ``as_of``: the day the export
    was taken (an open deal's age is counted to it). ``win_rates``: :func:`open_win_rates`.
    Returns unit_id, period (``baseline`` or ``post``), window_days (null for the baseline),
    ``booked`` and ``eventual``. A unit with no deal in its baseline or any post window has no
    row (its sums are zero).
    """
    t = _opportunities(con, unit, deal_types)
    base_anchor = anchors.base_anchor if "base_anchor" in anchors.columns else anchors.anchor
    a = anchors.select(a_unit=anchors.unit_id, anchor=anchors.anchor.cast("date"), base_anchor=base_anchor.cast("date"))
    j = t.join(a, t.unit_id == a.a_unit)
    close_day = j.created + j.cycle_days.fill_null(0).as_interval("D")
    j = j.mutate(
        made=j.created.delta(j.anchor, unit="day"), made_base=j.created.delta(j.base_anchor, unit="day"),
        shut=close_day.delta(j.anchor, unit="day"), shut_base=close_day.delta(j.base_anchor, unit="day"),
    )
    bounds = sorted({int(w) for w in windows})
    in_base_made = (j.made_base >= -baseline_days) & (j.made_base < 0)
    # Only the deals some sum below can hold are valued (most of a unit's deals are in no window):
    # those created in its baseline, or after the ramp and before the longest window ends (a booked
    # deal counts only when it closed after it was created, so it too was created before that end).
    j = j.filter(in_base_made | ((j.made >= ramp_days) & (j.made < bounds[-1])))
    rates = ibis.memtable(win_rates.select(pl.col("age").alias("r_age"), pl.col("p").fill_null(0.0)))
    age = ibis.least((ibis.literal(as_of).delta(j.created, unit="day").clip(lower=0) // 30).cast("int64"),
                     AGE_MONTHS)
    j = j.mutate(age=age)
    j = j.left_join(rates, j.age == rates.r_age)
    amount = j.amount.fill_null(0).cast(_MONEY)
    open_value = amount * j.p.fill_null(0.0).cast(_P)
    j = j.mutate(
        booked_amount=(j.closed & j.won).ifelse(amount, ibis.literal(0).cast(_MONEY)),
        eventual_amount=ibis.cases((j.won & j.closed, amount), (~j.closed, open_value),
                                   else_=ibis.literal(0).cast(_MONEY)),
    )
    zero = ibis.literal(0).cast(_MONEY)
    in_base_shut = j.closed & in_base_made & (j.shut_base < 0) & (j.shut_base >= j.made_base)
    base = j.group_by("unit_id").aggregate(
        booked=in_base_shut.ifelse(j.booked_amount, zero).sum(),
        eventual=in_base_made.ifelse(j.eventual_amount, zero).sum(),
    ).mutate(period=ibis.literal("baseline"), window_days=ibis.null().cast("int64"))
    lengths = ibis.memtable({"window_days": bounds})
    parts = []
    for column, offset, amount_column in (("booked", "shut", "booked_amount"), ("eventual", "made", "eventual_amount")):
        # A booked deal belongs to the shortest window holding its close (it was created earlier, inside it).
        keep = (j.made >= ramp_days) & (j[offset] < bounds[-1])
        if column == "booked":
            keep &= j.closed & (j.shut >= j.made)  # a close before creation is a data error, not a booking
        piece = j.filter(keep)
        piece = piece.mutate(bucket=ibis.cases(*((piece[offset] < w, w) for w in bounds)))
        sums = piece.group_by(["unit_id", "bucket"]).aggregate(value=piece[amount_column].sum())
        nested = sums.cross_join(lengths).filter(lambda r: r.bucket <= r.window_days)
        parts.append(nested.group_by(["unit_id", "window_days"]).aggregate(**{column: nested.value.sum()}))
    booked, eventual = parts
    post = booked.outer_join(eventual, ["unit_id", "window_days"])
    post = post.select(
        unit_id=ibis.coalesce(post.unit_id, post.unit_id_right), window_days=ibis.coalesce(post.window_days,
                                                                                          post.window_days_right),
        booked=post.booked.fill_null(zero), eventual=post.eventual.fill_null(zero),
    ).mutate(period=ibis.literal("post"))
    return base.union(post.select(base.columns))
