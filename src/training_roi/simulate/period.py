"""The simulated period: day indices, calendar months, and instants on business days.

Every part of the simulator counts time in day indices from the period's start (UTC dates) and in
UTC epoch seconds; ``_NEVER`` stands for a day that never comes (a rep never trained).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import numpy as np

_DAY = 86_400
_NEVER = 1 << 40  # a day index far beyond any simulated period ("never happens")


def _add_months(d: date, n: int) -> date:
    """Return ``d`` plus ``n`` calendar months, the day clamped to the month's length."""
    y, m = divmod(d.month - 1 + n, 12)
    year, month = d.year + y, m + 1
    days = [31, 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28,
            31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
    return date(year, month, min(d.day, days))


def _iso_date(epoch_day: int) -> str:
    """Return an epoch day number as ``YYYY-MM-DD``."""
    return date.fromordinal(date(1970, 1, 1).toordinal() + int(epoch_day)).isoformat()


@dataclass(frozen=True)
class _Calendar:
    """The simulated period ``[start, end)`` as day indices, with each day's calendar month."""

    start: date
    end: date
    start_day: int  # epoch day number of ``start``
    n_days: int
    month_of_year: np.ndarray  # per day index: 0 (January) … 11 (December)

    @classmethod
    def make(cls, start: date, months: int) -> _Calendar:
        """Return the calendar of ``months`` months from ``start``."""
        end = _add_months(start, months)
        start_day = (start - date(1970, 1, 1)).days
        n_days = (end - start).days
        days = np.arange(start_day, start_day + n_days).astype("datetime64[D]")
        moy = days.astype("datetime64[M]").astype(np.int64) % 12
        return cls(start, end, start_day, n_days, moy.astype(np.int8))

    def month_of_period(self) -> np.ndarray:
        """Per day index: the calendar month of the period it falls in (0 for the first month, 1, …)."""
        return np.asarray(np.cumsum(np.diff(self.month_of_year, prepend=self.month_of_year[:1]) != 0))

    @property
    def start_s(self) -> int:
        """Start as UTC epoch seconds."""
        return self.start_day * _DAY

    @property
    def end_s(self) -> int:
        """End (exclusive) as UTC epoch seconds."""
        return (self.start_day + self.n_days) * _DAY

    def day_at(self, fraction: float) -> int:
        """Return the day index at the first of the month nearest ``fraction`` of the period."""
        months = round(fraction * self._months())
        return (_add_months(self.start, months) - self.start).days

    def rollout_window(self, rollout: tuple[float, float], min_days: int) -> tuple[int, int]:
        """Return a roll-out's days ``[lo, hi)``, at least ``min_days`` long and ending before the last day.

        Both ends are at the firsts of the months nearest the fractions ``rollout`` of the period.
        """
        lo = self.day_at(rollout[0])
        return lo, min(self.n_days - 1, max(lo + min_days, self.day_at(rollout[1])))

    def months_before(self, day: int) -> Iterator[tuple[date, int, int]]:
        """Yield the months of the period (counted from ``start``) that begin before day index ``day``.

        Each comes as its first date and the day indices ``[first, after)`` it spans.
        """
        k = 0
        while (first := (_add_months(self.start, k) - self.start).days) < day:
            k += 1
            yield _add_months(self.start, k - 1), first, (_add_months(self.start, k) - self.start).days

    def _months(self) -> int:
        return (self.end.year - self.start.year) * 12 + self.end.month - self.start.month

    def business_instants(self, lo: np.ndarray, hi: np.ndarray, u: np.ndarray,
                          local_seconds: np.ndarray, offset_min: np.ndarray) -> np.ndarray:
        """Return UTC epoch seconds on business days in ``[lo, hi)`` at a local time of day.

        ``u`` in [0, 1) picks the business day (so callers can skew timing), ``local_seconds`` is
        the local time of day and ``offset_min`` the UTC offset of the person's time zone. Results
        are clamped into the period.
        """
        lo = np.asarray(lo, np.int64)
        hi = np.maximum(np.asarray(hi, np.int64), lo + 1)
        a = (self.start_day + lo).astype("datetime64[D]")
        b = (self.start_day + hi).astype("datetime64[D]")
        nb = np.busday_count(a, b)
        k = np.minimum(np.floor(u * nb).astype(np.int64), np.maximum(nb - 1, 0))
        bday = np.busday_offset(a, k, roll="forward").astype(np.int64)
        anyday = self.start_day + lo + np.floor(u * (hi - lo)).astype(np.int64)
        day = np.where(nb > 0, bday, anyday)
        ts = day * _DAY + np.asarray(local_seconds, np.int64) - np.asarray(offset_min, np.int64) * 60
        # A local working hour on the first or last day can fall outside the period in UTC: move
        # it by a day rather than piling such instants up on the boundary.
        ts = np.where(ts < self.start_s, ts + _DAY, np.where(ts >= self.end_s, ts - _DAY, ts))
        return np.clip(ts, self.start_s, self.end_s - 1)
