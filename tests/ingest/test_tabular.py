"""Field conversion of delimited files, checked against Python's own parsing (property tests)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from training_roi.ingest.tabular import ROW, Conversion, Formats, RawFile, coerce, read_delimited


def _raw(values: list[str | None], column: str = "v") -> RawFile:
    frame = pl.DataFrame({column: pl.Series(values, dtype=pl.String)})
    frame = frame.with_columns(pl.int_range(2, frame.height + 2, dtype=pl.Int64).alias(ROW))
    return RawFile("f.csv", frame, [])


def _convert(values: list[str | None], kind: str, formats: Formats | None = None, **kw: object):
    typed, errors = coerce(_raw(values), [Conversion("out", "v", kind, **kw)], formats or Formats(), "test")
    return typed["out"].to_list(), errors


offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
moments = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2060, 1, 1))


@settings(max_examples=200, deadline=None)
@given(moment=moments, tz=offsets, style=st.sampled_from(["Z", "offset", "ms", "space"]))
def test_iso_datetimes_with_any_offset_give_the_same_utc_instant(moment: datetime, tz: timezone, style: str):
    aware = moment.replace(microsecond=moment.microsecond // 1000 * 1000, tzinfo=tz)
    if style == "Z":
        aware = aware.astimezone(UTC)
        text = aware.strftime("%Y-%m-%dT%H:%M:%S.") + f"{aware.microsecond // 1000:03d}Z"
    elif style == "ms":
        text = aware.isoformat(timespec="milliseconds")
    elif style == "space":
        text = aware.isoformat(sep=" ")
    else:
        text = aware.isoformat()
    (value,), errors = _convert([text], "datetime")
    assert errors == []
    assert value == aware.astimezone(UTC)


@settings(max_examples=100, deadline=None)
@given(moment=moments)
def test_naive_datetimes_are_read_in_the_declared_zone(moment: datetime):
    moment = moment.replace(microsecond=0)
    values, errors = _convert([moment.isoformat()], "datetime", Formats(timezone="America/New_York"))
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("America/New_York")
    expected = moment.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if expected.astimezone(zone).replace(tzinfo=None) != moment:  # a time the clocks skip (spring forward)
        assert values == [] and len(errors) == 1
        assert "is not a time that exists in America/New_York" in errors[0].reason
    else:
        assert values == [expected] and errors == []


@settings(max_examples=100, deadline=None)
@given(cents=st.integers(min_value=-(10**15), max_value=10**15), grouped=st.booleans(), dollar=st.booleans())
def test_money_is_exact(cents: int, grouped: bool, dollar: bool):
    amount = Decimal(cents) / 100
    text = f"{abs(amount):,.2f}" if grouped else f"{abs(amount):.2f}"
    text = ("-" if amount < 0 else "") + ("$" if dollar else "") + text
    (value,), errors = _convert([text], "money")
    assert errors == []
    assert value == amount


def test_values_that_do_not_fit_are_errors_with_row_and_field():
    values, errors = _convert(["true", "FALSE", "Yes", "maybe", "", None], "bool")
    assert values == [True, False, True, None, None]
    assert [(e.source_line, e.field, e.reason) for e in errors] == [(5, "v", "v 'maybe' is not true or false")]


def test_dates_accept_datetimes_but_not_ambiguous_forms():
    values, errors = _convert(["2025-03-04", "2025-03-04T23:30:00.000Z", "03/04/2025"], "date")
    assert values[:2] == [datetime(2025, 3, 4).date()] * 2
    assert [e.source_line for e in errors] == [4]


def test_declared_formats_replace_the_contract_ones():
    values, errors = _convert(["04.03.2025", "2025-03-04"], "date", fmt=("%d.%m.%Y",))
    assert values == [datetime(2025, 3, 4).date()]
    assert "in the format %d.%m.%Y" in errors[0].reason


def test_fifteen_character_ids_become_eighteen():
    values, _ = _convert(["001bm00001ZL8U9", "001bm00001ZL8U9AAL", "x"], "id")
    assert values == ["001bm00001ZL8U9AAL", "001bm00001ZL8U9AAL", "x"]


def test_malformed_rows_keep_their_spreadsheet_row(tmp_path: Path):
    path = tmp_path / "a.csv"
    path.write_text('a,b\n1,2\n"x\ny",3\n4\n5,6\n', encoding="utf-8")
    raw = read_delimited(path, "a.csv", "test")
    assert raw.frame[ROW].to_list() == [2, 3, 5]
    assert [(m.source_line, m.reason) for m in raw.malformed] == [(4, "has 1 fields where the header has 2")]


def test_a_local_time_the_clocks_skip_is_quarantined_with_that_reason():
    values, errors = _convert(["2025-03-09T02:30:00", "2025-03-09T03:30:00"], "datetime",
                              Formats(timezone="America/New_York"))
    assert values == [datetime(2025, 3, 9, 7, 30, tzinfo=UTC)]  # 03:30 EDT
    assert [e.source_line for e in errors] == [2]
    assert "is not a time that exists in America/New_York" in errors[0].reason
