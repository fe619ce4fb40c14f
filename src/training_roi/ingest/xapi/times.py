"""ISO 8601 times and durations as xAPI writes them: ``timestamp``, ``stored``, ``result.duration``.

Timestamps become aware UTC datetimes plus the offset they were written with (the warehouse keeps
both); durations become seconds. Both are parsed for every statement of an export, so the common
forms take a fast path and repeated values are cached.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta, timezone, tzinfo

import isodate

__all__ = ["offset_minutes", "parse_duration", "parse_timestamp"]

_MINUTE = timedelta(minutes=1)
# A calendar year/month in a duration ("P1M") has no fixed length; the mean Gregorian one is
# the least surprising stand-in for "time spent".
_YEAR_SECONDS = 365.2425 * 86400.0
_MONTH_SECONDS = _YEAR_SECONDS / 12.0


def parse_timestamp(text: str) -> tuple[datetime, int]:
    """Parse an ISO 8601 timestamp into an aware UTC datetime and its original offset.

    A timestamp without a time zone is taken as UTC (offset 0), which is what an LRS does.

    Parameters
    ----------
    text
        The timestamp as written, e.g. ``"2016-06-09T18:47:34.847Z"``.

    Returns
    -------
    tuple[datetime, int]
        The instant in UTC and the offset it was written with, in minutes east of UTC.

    Raises
    ------
    ValueError
        ``text`` is not an ISO 8601 date-time.

    Examples
    --------
    >>> parse_timestamp("2013-05-18T07:32:34+02:00")
    (datetime.datetime(2013, 5, 18, 5, 32, 34, tzinfo=datetime.timezone.utc), 120)

    """
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise ValueError(f"{text!r} is not an ISO 8601 timestamp") from None
    offset = moment.utcoffset()
    if offset is None:
        return moment.replace(tzinfo=UTC), 0
    if not offset:
        return (moment if moment.tzinfo is UTC else moment.replace(tzinfo=UTC)), 0
    return moment.astimezone(UTC), offset // _MINUTE


def parse_duration(text: str) -> float:
    """Convert an ISO 8601 duration (xAPI ``result.duration``) to seconds.

    Results are cached (an export repeats the same durations). The usual ``PT#H#M#S`` form is
    read directly, several times faster than ``isodate``; anything else (days, weeks, fractional
    hours or minutes, the alternative ``PYYYY-MM-DDThh:mm:ss`` form) goes through ``isodate``.
    A year or month counts as the mean Gregorian one.

    Parameters
    ----------
    text
        The duration, e.g. ``"PT14M30S"``.

    Returns
    -------
    float
        Seconds, never negative.

    Raises
    ------
    ValueError
        ``text`` is not an ISO 8601 duration, or is negative.

    Examples
    --------
    >>> parse_duration("PT1H0M0S")
    3600.0
    >>> parse_duration("P1DT30M")
    88200.0

    """
    if type(text) is not str:
        raise ValueError(f"{text!r} is not an ISO 8601 duration (it is not text)")
    return _duration_seconds(text)


@functools.lru_cache(maxsize=1 << 16)
def _duration_seconds(text: str) -> float:
    seconds = _fast_duration(text)
    return seconds if seconds is not None else _isodate_duration(text)


def _fast_duration(text: str) -> float | None:
    """``PT#H#M#S`` (integer hours and minutes, decimal seconds) in seconds; None otherwise."""
    if not text.startswith("PT") or len(text) < 4 or not text.isascii():
        return None
    rest = text[2:]
    total = 0.0
    hours, sep, tail = rest.partition("H")
    if sep:
        if not hours.isdigit():
            return None
        total = int(hours) * 3600.0
        rest = tail
    minutes, sep, tail = rest.partition("M")
    if sep:
        if not minutes.isdigit():
            return None
        total += int(minutes) * 60.0
        rest = tail
    if rest:
        if rest[-1] != "S":
            return None
        whole, dot, frac = rest[:-1].partition(".")
        if not whole.isdigit() or (dot and not frac.isdigit()):
            return None
        total += float(rest[:-1])
    return total


def _isodate_duration(text: str) -> float:
    try:
        # isodate reads "PT" as zero and "P1DT" as a day; ISO 8601 wants a part after the T.
        if text.endswith("T"):
            raise ValueError(text)
        value = isodate.parse_duration(text)
    except (isodate.ISO8601Error, ValueError, TypeError, ArithmeticError):
        raise ValueError(f"{text!r} is not an ISO 8601 duration (such as PT14M30S)") from None
    # A plain timedelta unless the text has years or months, which make an isodate.Duration.
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    else:
        tdelta: timedelta = value.tdelta
        seconds = (
            tdelta.total_seconds()
            + float(value.years) * _YEAR_SECONDS
            + float(value.months) * _MONTH_SECONDS
        )
    if seconds < 0:
        raise ValueError(f"{text!r} is a negative duration; time spent cannot be negative")
    return seconds


@functools.lru_cache(maxsize=256)
def _zone_minutes(zone: tzinfo) -> int:
    return zone.utcoffset(None) // _MINUTE  # type: ignore[operator]


def offset_minutes(zone: tzinfo, moment: datetime) -> int:
    """Minutes east of UTC of ``moment`` (fixed-offset zones, as ISO 8601 writes them, cached)."""
    if type(zone) is timezone:
        return _zone_minutes(zone)
    return moment.utcoffset() // _MINUTE  # type: ignore[operator]
