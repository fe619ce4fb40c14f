"""Periods at a grain: where dates (or integers) become consecutive period numbers, and back.

A unit panel holds one row per unit and period, at one grain: ``day``, ``week``, ``month``,
``quarter``, ``year``, or ``index`` for periods already numbered by integers (years as 2019,
2020, …, or survey waves 1, 2, 3). Every estimator counts time in periods — "the 6 periods
before training", "event time 0" — so each one turns the panel's ``period`` and ``treated_at``
into integers where consecutive periods differ by one. :class:`PeriodGrain` is the only place
that does it (:meth:`~training_roi.measure.panels.UnitPanel.period_index` calls it), so no
estimator holds its own calendar arithmetic and every estimator works at every grain.

A date belongs to the period that contains it: 15 March 2024 is in the month 2024-03, the
quarter 2024Q1, the year 2024. Weeks start on the weekday of the panel's periods (a panel of
Mondays has ISO weeks), so a training day in mid-week falls in the week that holds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl

__all__ = ["PERIOD_GRAINS", "PeriodGrain", "infer_grain", "week_start_of"]

PERIOD_GRAINS = ("day", "week", "month", "quarter", "year", "index")
"""The grains a unit panel can have, finest to coarsest; ``index`` numbers periods by integers."""

_EPOCH = date(1970, 1, 1)
"""Day 0 of Polars' dates; a Thursday (weekday 3)."""
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_NOUNS = {"day": "day", "week": "week", "month": "month", "quarter": "quarter", "year": "year", "index": "period"}
_CYCLE = {"month": 12, "quarter": 4}


@dataclass(frozen=True)
class PeriodGrain:
    """One grain's arithmetic: a date's period number, a number's first day and its label.

    ``week_start`` is the weekday weeks start on (0 = Monday … 6 = Sunday); it matters only at
    the ``week`` grain.
    """

    name: str = "month"
    week_start: int = 0

    def __post_init__(self) -> None:
        if self.name not in PERIOD_GRAINS:
            raise ValueError(f"grain {self.name!r}: expected one of {', '.join(PERIOD_GRAINS)}")
        if not 0 <= self.week_start <= 6:
            raise ValueError(f"week_start must be a weekday from 0 (Monday) to 6 (Sunday), not {self.week_start}")

    @property
    def calendar(self) -> bool:
        """Whether periods are dates (every grain but ``index``)."""
        return self.name != "index"

    @property
    def noun(self) -> str:
        """What one period is called in messages: ``month``, ``week``, … (``period`` for ``index``)."""
        return _NOUNS[self.name]

    @property
    def cycle(self) -> int | None:
        """Periods in a year, for seasonal effects: 12 months, 4 quarters; None where no season repeats exactly."""
        return _CYCLE.get(self.name)

    def number(self, expr: pl.Expr) -> pl.Expr:
        """The period number of each value of ``expr`` (a date, or an integer at the ``index`` grain).

        Consecutive periods differ by one; null stays null. A month is ``year × 12 + month − 1``,
        a quarter ``year × 4 + quarter − 1``, a day the days since 1970-01-01, a week the weeks
        since the first ``week_start`` weekday on or before it.
        """
        if self.name == "index":
            return expr.cast(pl.Int64)
        day = expr.cast(pl.Date)
        if self.name == "day":
            return day.cast(pl.Int64)
        if self.name == "week":
            # 1970-01-01 is a Thursday: days + 3 counts from a Monday, − week_start from the week's first day.
            return (day.cast(pl.Int64) + 3 - self.week_start) // 7
        year = day.dt.year().cast(pl.Int64)
        month = day.dt.month().cast(pl.Int64) - 1
        if self.name == "month":
            return year * 12 + month
        if self.name == "quarter":
            return year * 4 + month // 3
        return year

    def number_of(self, value: date | int) -> int:
        """The period number of one value (see :meth:`number`)."""
        out = pl.select(self.number(pl.lit(value))).item()
        return int(out)

    def start(self, number: int) -> date | int:
        """The first day of period ``number`` (the number itself at the ``index`` grain)."""
        n = int(number)
        if self.name == "index":
            return n
        if self.name == "day":
            return _EPOCH + timedelta(days=n)
        if self.name == "week":
            return _EPOCH + timedelta(days=7 * n - 3 + self.week_start)
        if self.name == "month":
            return date(n // 12, n % 12 + 1, 1)
        if self.name == "quarter":
            return date(n // 4, n % 4 * 3 + 1, 1)
        return date(n, 1, 1)

    def start_expr(self, number: pl.Expr) -> pl.Expr:
        """:meth:`start` of each period number of ``number``, as an expression (a date, or the integer)."""
        if self.name == "index":
            return number.cast(pl.Int64)
        if self.name == "day":
            return number.cast(pl.Int32).cast(pl.Date)
        if self.name == "week":
            return (number * 7 - 3 + self.week_start).cast(pl.Int32).cast(pl.Date)
        if self.name == "month":
            return pl.date(number // 12, number % 12 + 1, 1)
        if self.name == "quarter":
            return pl.date(number // 4, number % 4 * 3 + 1, 1)
        return pl.date(number, 1, 1)

    def label(self, number: int) -> str:
        """A readable name of period ``number``: ``2024-03``, ``2024Q1``, ``2024``, or a week's first day."""
        n = int(number)
        if self.name == "index":
            return str(n)
        if self.name == "month":
            return f"{n // 12:04d}-{n % 12 + 1:02d}"
        if self.name == "quarter":
            return f"{n // 4:04d}Q{n % 4 + 1}"
        if self.name == "year":
            return f"{n:04d}"
        start = self.start(n)
        assert isinstance(start, date)
        return start.isoformat()


def _week_start(days: pl.Series) -> int:
    """The weekday (0 = Monday) of the earliest date of ``days``."""
    first = days.min()
    assert isinstance(first, date)
    return first.weekday()


def week_start_of(periods: pl.Series) -> int:
    """The weekday a panel's weeks start on: that of its periods, which must all fall on one weekday.

    Raises
    ------
    ValueError
        The periods fall on different weekdays (they are not one row per week).
    """
    days = periods.drop_nulls().cast(pl.Date)
    if days.is_empty():
        return 0
    weekdays = sorted(set(days.dt.weekday().unique().to_list()))  # 1 = Monday … 7 = Sunday
    if len(weekdays) > 1:
        names = ", ".join(_WEEKDAYS[d - 1] for d in weekdays)
        raise ValueError(f"at the week grain every period is the first day of its week, on one weekday; the "
                         f"periods fall on {names}: pass one row per unit and week, or another grain")
    return _week_start(days)


def infer_grain(periods: pl.Series) -> str:
    """The grain of a panel's ``period`` values: ``index`` for integers, else the coarsest that separates the dates.

    For dates it is the coarsest of year, quarter, month, week and day at which no two distinct
    dates fall in the same period (monthly data labelled by the 1st or by the last day of the
    month are both months; a week's dates share a weekday).

    Raises
    ------
    ValueError
        Periods that are neither integers nor dates, or fewer than two distinct periods (any grain
        would fit: pass ``grain``).
    """
    dtype = periods.dtype
    if dtype.is_integer():
        return "index"
    if not dtype.is_temporal() or dtype == pl.Duration or dtype == pl.Time:
        raise ValueError(f"the period column holds {dtype}: expected dates (or integers for numbered periods)")
    days = periods.drop_nulls().cast(pl.Date).unique()
    if days.len() < 2:
        raise ValueError("the period column has fewer than two distinct periods, so its grain cannot be told from "
                         f"them: pass grain= ({', '.join(PERIOD_GRAINS)})")
    weekdays = days.dt.weekday().n_unique()
    for name in ("year", "quarter", "month", "week"):
        if name == "week" and weekdays > 1:
            continue
        grain = PeriodGrain(name, _week_start(days) if name == "week" else 0)
        if pl.DataFrame({"d": days}).select(grain.number(pl.col("d")).n_unique()).item() == days.len():
            return name
    return "day"
