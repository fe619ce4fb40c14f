"""Rule-based attribution: first touch, last touch, linear, time decay and position based.

A rule splits each won deal's revenue over the touches that came before its close date, by their
position or age alone; it says nothing about what would have happened without a touch. The seed
calls these "attributed revenue (conservative)": a supporting table next to the incremental lift,
never a substitute for it.

Every model here (and in :mod:`training_roi.attribute.markov` and
:mod:`training_roi.attribute.shapley`) returns the same *attribution table*: one row per eligible
touch of a converted journey, all the touch columns untouched, plus ``model``, ``share`` (the
touch's share of its journey's conversion; a journey's shares sum to 1) and ``credited_value``
(share × value). A touch is *eligible* when it happened at or before its journey's
``conversion_at`` (the close date): a touch after the close cannot have caused it. Touches are
ordered by ``touch_at``, ties broken by ``touch_id``, so every result is deterministic.
"""

from __future__ import annotations

import numpy as np
import polars as pl

__all__ = ["first_touch", "last_touch", "linear", "position_based", "rule_table", "time_decay", "won_only"]

RULES = ("first_touch", "last_touch", "linear", "time_decay", "position_based")
"""The rule-based models, by name."""

TOUCH_COLUMNS = ("journey_id", "touch_id", "touch_at", "channel")
JOURNEY_COLUMNS = ("journey_id", "converted", "value", "conversion_at")
OUTPUT_COLUMNS = ("model", "share", "credited_value")

# Working columns joined onto the touches; the double underscore keeps them clear of user columns.
GROUP = "__journey"
POSITION = "__position"
COUNT = "__touches"
CONVERTED = "__converted"
VALUE = "__value"
CONVERSION_AT = "__conversion_at"
_WORKING = (GROUP, POSITION, COUNT, CONVERTED, VALUE, CONVERSION_AT)
_UTC = pl.Datetime("us", "UTC")
_DAY_US = 86_400_000_000.0


_KEY = (pl.String, pl.Int64, pl.Int32, pl.UInt32, pl.UInt64)
"""Identifiers may be text or integers (a warehouse's journeys number their deals)."""


_TEXT = (pl.String, pl.Categorical, pl.Enum)
"""Channels may be text or categorical (a warehouse's journeys carry them as codes)."""


def _require(frame: pl.DataFrame, name: str,
             columns: dict[str, type[pl.DataType] | tuple[type[pl.DataType], ...]]) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValueError(f"{name} lacks the column(s) {', '.join(missing)}; it has {', '.join(frame.columns)}")
    for column, kind in columns.items():
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not isinstance(frame.schema[column], kinds):
            expected = " or ".join(k.__name__ for k in kinds)
            raise ValueError(f"{name}.{column} must be {expected}, not {frame.schema[column]}")


def ordered_touches(touches: pl.DataFrame, journeys: pl.DataFrame, *, converted_only: bool) -> pl.DataFrame:
    """Eligible touches joined to their journey, in time order, with position and count per journey.

    Shared by every model so that all of them see the same touches in the same order. The working
    columns (``GROUP``, ``POSITION``, ``COUNT``, ``CONVERTED``, ``VALUE``, ``CONVERSION_AT``) are
    appended; :func:`finish` removes them.
    """
    _require(touches, "touches", {"journey_id": _KEY, "touch_id": _KEY, "touch_at": pl.Datetime,
                                  "channel": _TEXT})
    _require(journeys, "journeys", {"journey_id": _KEY, "converted": pl.Boolean, "value": pl.Float64,
                                    "conversion_at": pl.Datetime})
    clash = [c for c in (*OUTPUT_COLUMNS, *_WORKING) if c in touches.columns]
    if clash:
        raise ValueError(f"touches has column(s) {', '.join(clash)}, which the attribution table adds; rename them")
    facts = journeys.select(
        "journey_id",
        pl.int_range(pl.len(), dtype=pl.UInt32).alias(GROUP),
        pl.col("converted").fill_null(False).alias(CONVERTED),
        pl.col("value").fill_null(0.0).alias(VALUE),
        pl.col("conversion_at").cast(_UTC).alias(CONVERSION_AT),
    )
    if _numbered(facts["journey_id"]) and touches.schema["journey_id"].is_integer():
        # Journeys numbered 0, 1, … in row order (a warehouse's are): each touch's journey is a row
        # number, so its facts are taken by position instead of by a join of millions of rows.
        known = _kept(touches, pl.col("journey_id").is_between(0, facts.height - 1))
        joined = pl.concat([known, facts.drop("journey_id")[known["journey_id"].to_numpy()]], how="horizontal")
        if converted_only:
            joined = joined.filter(pl.col(CONVERTED))
    else:
        if converted_only:
            facts = facts.filter(pl.col(CONVERTED))
        try:
            joined = touches.join(facts, on="journey_id", how="inner", validate="m:1", maintain_order="left")
        except pl.exceptions.ComputeError as error:
            raise ValueError("journeys must have one row per journey_id; some journey_id appears twice") from error
    eligible = _kept(joined, pl.col(CONVERSION_AT).is_null() | (pl.col("touch_at").cast(_UTC) <= pl.col(CONVERSION_AT)))
    # Sorting on the journey's row number rather than its id string is twice as fast on millions of rows;
    # touches that already come in that order (a warehouse's journeys do) are not sorted again.
    if not _in_order(eligible):
        eligible = eligible.sort(GROUP, "touch_at", "touch_id")
    ordered = eligible.with_columns(pl.col(GROUP).rle_id().set_sorted())
    same_journey = pl.col(GROUP) == pl.col(GROUP).shift(1)
    twins = ordered.select(same_journey & (pl.col("touch_id") == pl.col("touch_id").shift(1))).to_series()
    if twins.any():
        duplicated = ordered.filter(twins)["touch_id"][0]
        raise ValueError(f"touches.touch_id must be unique; {duplicated!r} appears more than once in its journey")
    # Rows of a journey are contiguous and run ids count 0, 1, …: positions come from run lengths.
    group = ordered[GROUP].to_numpy()
    counts = np.bincount(group)
    starts = np.cumsum(counts) - counts
    return ordered.with_columns(
        pl.Series(POSITION, np.arange(group.size, dtype=np.uint32) - starts[group].astype(np.uint32)),
        pl.Series(COUNT, counts[group].astype(np.uint32)),
    )


def _kept(frame: pl.DataFrame, keep: pl.Expr) -> pl.DataFrame:
    """The rows where ``keep`` holds (not where it is missing); the frame itself, not a copy, when all do.

    Millions of touches usually all pass: copying them to drop none is what this saves.
    """
    mask = frame.select(keep.fill_null(False)).to_series()
    return frame if mask.all() else frame.filter(mask)


def _numbered(ids: pl.Series) -> bool:
    """Whether ``ids`` are the integers 0, 1, 2, … in order."""
    if not ids.dtype.is_integer() or ids.null_count() or ids.is_empty():
        return False
    return bool(ids[0] == 0 and (ids.diff().slice(1) == 1).all())


def _in_order(frame: pl.DataFrame) -> bool:
    """Whether the rows are already sorted by journey, touch time and touch id, none of them missing."""
    if frame.select(pl.any_horizontal(pl.col("touch_at", "touch_id").is_null().any())).item():
        return False
    g, t, i = pl.col(GROUP), pl.col("touch_at"), pl.col("touch_id")
    after = (g > g.shift(1)) | ((g == g.shift(1)) & ((t > t.shift(1)) | ((t == t.shift(1)) & (i > i.shift(1)))))
    return bool(frame.select(after.slice(1).all()).item())


def finish(ordered: pl.DataFrame, share: pl.Expr, model: str) -> pl.DataFrame:
    """The attribution table: converted journeys only, touch columns, then model, share and value."""
    return (
        ordered.filter(pl.col(CONVERTED))
        .with_columns(pl.lit(model).alias("model"), share.cast(pl.Float64).alias("share"))
        .with_columns((pl.col("share") * pl.col(VALUE)).alias("credited_value"))
        .drop(_WORKING)
    )


def won_only(ordered: pl.DataFrame) -> pl.DataFrame:
    """The won journeys' rows of ``ordered_touches(..., converted_only=False)``, as ``converted_only=True`` gives them.

    Lets one ordering of every journey serve the Markov chain (which learns from lost journeys
    too) and every model that credits only won ones: the rows, their order, positions and counts
    are those of the won journeys alone, and the journeys are numbered again from 0.
    """
    won = ordered.filter(pl.col(CONVERTED))
    return won.with_columns(pl.col(GROUP).rle_id().set_sorted())


def rule_table(ordered: pl.DataFrame, model: str, *, half_life_days: float = 7.0, first: float = 0.4,
               last: float = 0.4) -> pl.DataFrame:
    """The attribution table of the rule ``model`` (:data:`RULES`) on touches already ordered.

    ``ordered`` comes from :func:`ordered_touches` (or :func:`won_only`): the models of one study
    share one ordering of millions of touches instead of sorting them once each.
    """
    if model == "first_touch":
        return finish(ordered, (pl.col(POSITION) == 0).cast(pl.Float64), "first_touch")
    if model == "last_touch":
        return finish(ordered, (pl.col(POSITION) == pl.col(COUNT) - 1).cast(pl.Float64), "last_touch")
    if model == "linear":
        return finish(ordered, 1.0 / pl.col(COUNT), "linear")
    if model == "time_decay":
        return _time_decay(ordered, half_life_days)
    if model == "position_based":
        return _position_based(ordered, first, last)
    raise ValueError(f"rule {model!r}: expected one of {', '.join(RULES)}")


def first_touch(touches: pl.DataFrame, journeys: pl.DataFrame) -> pl.DataFrame:
    """All the credit to the first recorded touch before the conversion (the seed's first-touch)."""
    return rule_table(ordered_touches(touches, journeys, converted_only=True), "first_touch")


def last_touch(touches: pl.DataFrame, journeys: pl.DataFrame) -> pl.DataFrame:
    """All the credit to the last touch at or before the conversion."""
    return rule_table(ordered_touches(touches, journeys, converted_only=True), "last_touch")


def linear(touches: pl.DataFrame, journeys: pl.DataFrame) -> pl.DataFrame:
    """Equal credit to every touch of the journey (the seed's equal-weight multi-touch)."""
    return rule_table(ordered_touches(touches, journeys, converted_only=True), "linear")


def time_decay(touches: pl.DataFrame, journeys: pl.DataFrame, *, half_life_days: float = 7.0) -> pl.DataFrame:
    """Credit halving every ``half_life_days`` before the conversion, normalised per journey.

    A touch ``d`` days before the close weighs ``2 ** (-d / half_life_days)``; shares are the
    weights divided by their journey's sum. Recent touches count more, on the view that what a
    buyer saw last week moved the deal more than what they saw last quarter.

    Examples
    --------
    With a 7-day half-life, touches 14 and 7 days before the close weigh 1/4 and 1/2, so they
    receive 1/3 and 2/3 of the credit.
    """
    return rule_table(ordered_touches(touches, journeys, converted_only=True), "time_decay",
                      half_life_days=half_life_days)


def _time_decay(ordered: pl.DataFrame, half_life_days: float) -> pl.DataFrame:
    if not half_life_days > 0:
        raise ValueError(f"half_life_days must be positive, not {half_life_days}")
    touched = pl.col("touch_at").cast(_UTC)
    # Windows are computed one level at a time: nested window expressions are very slow in Polars.
    ordered = ordered.with_columns(pl.coalesce(pl.col(CONVERSION_AT), touched.max().over(GROUP)).alias("__end"))
    ordered = ordered.with_columns(((pl.col("__end") - touched).dt.total_microseconds() / _DAY_US).alias("__days"))
    # Ages count from the journey's most recent touch, so that old journeys do not underflow to 0/0.
    ordered = ordered.with_columns(
        (2.0 ** (-(pl.col("__days") - pl.col("__days").min().over(GROUP)) / half_life_days)).alias("__weight")
    )
    weight = pl.col("__weight") / pl.col("__weight").sum().over(GROUP)
    return finish(ordered, weight, "time_decay").drop("__end", "__days", "__weight")


def position_based(touches: pl.DataFrame, journeys: pl.DataFrame, *, first: float = 0.4,
                   last: float = 0.4) -> pl.DataFrame:
    """U-shaped credit: ``first`` to the first touch, ``last`` to the last, the rest shared between.

    With three touches or more, the middle touches share ``1 - first - last`` equally. A single
    touch gets all the credit. With two touches there is no middle, so the first and last weights
    are renormalised to sum to 1: the first gets ``first / (first + last)`` (an even split when
    both are 0).
    """
    return rule_table(ordered_touches(touches, journeys, converted_only=True), "position_based",
                      first=first, last=last)


def _position_based(ordered: pl.DataFrame, first: float, last: float) -> pl.DataFrame:
    if first < 0 or last < 0 or first + last > 1:
        raise ValueError(f"first and last must be non-negative and sum to at most 1, not {first} and {last}")
    n, position = pl.col(COUNT), pl.col(POSITION)
    ends = first + last
    pair_first, pair_last = (first / ends, last / ends) if ends > 0 else (0.5, 0.5)
    share = (
        pl.when(n == 1).then(1.0)
        .when(n == 2).then(pl.when(position == 0).then(pair_first).otherwise(pair_last))
        .when(position == 0).then(first)
        .when(position == n - 1).then(last)
        .otherwise((1.0 - ends) / (n - 2))
    )
    return finish(ordered, share, "position_based")
