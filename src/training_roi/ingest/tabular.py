"""Reading delimited files into typed columns, with a reason for every value that will not fit.

The fast path reads a whole file with Arrow's CSV reader (all columns as text) and converts each
field with vectorised Polars expressions; a value that is present but cannot be converted becomes
an error naming the row and the field instead of a silent null. Only a file with malformed rows
(wrong number of fields) takes the slow path through Python's ``csv`` module, which knows where
each record starts.

Row numbers are spreadsheet rows: the header is row 1, the first record row 2, which is what a
user sees when opening the file in Excel.
"""

from __future__ import annotations

import csv
import io
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from training_roi.errors import SourceError
from training_roi.ingest.mapping import value_key, value_keys
from training_roi.ingest.people import People
from training_roi.warehouse.batch import QuarantineRow

__all__ = [
    "CHUNK_ROWS",
    "FIELD_KINDS",
    "RESTART",
    "ROW",
    "Conversion",
    "Formats",
    "RawFile",
    "coerce",
    "iter_delimited",
    "read_delimited",
    "sf_id18",
]

ROW = "__row"
"""Name of the column holding each record's spreadsheet row number."""

FIELD_KINDS = ("id", "str", "email", "bool", "int", "float", "money", "date", "datetime")

_ISO_DATETIME = (
    "%Y-%m-%dT%H:%M:%S%.f%#z",
    "%Y-%m-%d %H:%M:%S%.f%#z",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M%#z",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d",
)
_ISO_DATE = ("%Y-%m-%d",)
_OFFSET_AFTER_TIME = r"(\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:\s*[AaPp][Mm])?)\s*(?:Z|[+-]\d{2}:?\d{2})$"
"""A UTC offset (or ``Z``) after a time of day: dropped from a date field, which keeps the day written."""
_TRUE = ("true", "t", "1", "yes", "y")
_FALSE = ("false", "f", "0", "no", "n")
_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


@dataclass(frozen=True)
class Formats:
    """How dates, datetimes and booleans are written in a file (the contract's by default).

    ``timezone`` is the zone of datetimes written without an offset (Salesforce exports UTC).
    """

    date: tuple[str, ...] = _ISO_DATE
    datetime: tuple[str, ...] = _ISO_DATETIME
    true: tuple[str, ...] = _TRUE
    false: tuple[str, ...] = _FALSE
    timezone: str = "UTC"


_CONTRACT = Formats()


@dataclass
class RawFile:
    """A delimited file read as text: one string column per header field, plus ``__row``."""

    rel: str
    frame: pl.DataFrame
    malformed: list[QuarantineRow]

    @property
    def columns(self) -> list[str]:
        """Header fields in file order."""
        return [c for c in self.frame.columns if c != ROW]


CHUNK_ROWS = 500_000
"""Records converted and staged at a time: memory stays flat however large the export."""


def iter_delimited(
    path: Path, rel: str, source: str, *, encoding: str = "utf-8", delimiter: str = ",",
    chunk_rows: int = CHUNK_ROWS,
) -> Iterator[RawFile]:
    """Read ``path`` as text columns, ``chunk_rows`` records at a time.

    A file with malformed rows (a wrong number of fields) is read again from its start on the
    slow path, which knows each record's row number: the stream then yields :data:`RESTART`
    once, and the consumer discards what it took from this file so far.

    Raises
    ------
    SourceError
        The file is not in ``encoding``, is empty, or has no header.
    """
    header = _read_header(path, rel, encoding, delimiter)
    malformed = False

    def on_invalid(_row: pacsv.InvalidRow) -> str:
        nonlocal malformed
        malformed = True
        return "skip"

    try:
        with _callback_errors() as caught:
            reader = pacsv.open_csv(
                path,
                read_options=pacsv.ReadOptions(encoding=_arrow_encoding(encoding), block_size=BLOCK_BYTES,
                                               column_names=header, skip_rows=1),
                parse_options=pacsv.ParseOptions(
                    delimiter=delimiter, newlines_in_values=True, invalid_row_handler=on_invalid
                ),
                convert_options=pacsv.ConvertOptions(
                    column_types={name: pa.string() for name in header},
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                ),
            )
        first_row = 2
        pending: list[pa.RecordBatch] = []
        pending_rows = 0
        batches = iter(reader)
        while True:
            with _callback_errors() as more:
                batch = next(batches, None)
            caught += more
            if caught:  # Arrow could not even hand a malformed row to the handler: bytes not in the encoding
                raise SourceError(rel, _not_in_encoding(path, encoding) or f"is not {encoding} text")
            if batch is None:
                break
            if malformed:
                break
            pending.append(batch)
            pending_rows += batch.num_rows
            if pending_rows >= chunk_rows:
                yield _chunk(rel, pending, first_row)
                first_row += pending_rows
                pending, pending_rows = [], 0
        if not malformed:
            if pending or first_row == 2:
                yield _chunk(rel, pending, first_row, header)
            return
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise SourceError(rel, _unreadable(path, encoding, str(exc))) from exc
    if first_row > 2:
        yield RESTART
    yield from _read_slowly(path, rel, source, header, encoding, delimiter, chunk_rows)


@contextmanager
def _callback_errors() -> Iterator[list[BaseException]]:
    """Collect the exceptions raised in Arrow's callbacks, which Python would otherwise print and ignore.

    Arrow builds the text of a malformed row before calling the row handler; when the row is not
    valid in the file's encoding that fails inside Arrow, and Python reports it as "Exception
    ignored" on standard error, a traceback the user did nothing to deserve.
    """
    caught: list[BaseException] = []
    previous = sys.unraisablehook

    def keep(unraisable: Any) -> None:
        caught.append(unraisable.exc_value)

    sys.unraisablehook = keep
    try:
        yield caught
    finally:
        sys.unraisablehook = previous


BLOCK_BYTES = 1 << 24
"""Bytes Arrow reads at a time; one field cannot be larger."""


def _unreadable(path: Path, encoding: str, error: str) -> str:
    """Why Arrow could not read a file, in words: the line that is not in ``encoding``, or a field too large."""
    if "straddl" in error or "block size" in error:
        return (f"has a field larger than {BLOCK_BYTES >> 20} MiB (one cell of one row): refused, as no field "
                "of the contract holds that much; check the file is the export you meant")
    if "UTF8" in error or "utf-8" in error.lower():
        return _not_in_encoding(path, encoding) or f"cannot be read as {encoding} CSV ({error})"
    return f"cannot be read as {encoding} CSV ({error})"


def _not_in_encoding(path: Path, encoding: str) -> str | None:
    """The first line of ``path`` that is not ``encoding`` text, said for the user; None when every line is."""
    with path.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            try:
                line.decode(encoding)
            except UnicodeDecodeError as exc:
                return (f"is not {encoding} text at line {number:,} (byte {exc.start + 1} of the line): "
                        f"re-export it as UTF-8 or name its encoding in a column mapping")
    return None


RESTART = RawFile("", pl.DataFrame(), [])
"""Marker in a stream of chunks: discard what this file gave so far, it is read again."""


def read_delimited(
    path: Path, rel: str, source: str, *, encoding: str = "utf-8", delimiter: str = ","
) -> RawFile:
    """Read a whole file at once (see :func:`iter_delimited`, which reads in chunks)."""
    chunks = [c for c in iter_delimited(path, rel, source, encoding=encoding, delimiter=delimiter,
                                        chunk_rows=1 << 62) if c is not RESTART]
    frame = pl.concat([c.frame for c in chunks], how="vertical")
    return RawFile(rel, frame, [m for c in chunks for m in c.malformed])


def _chunk(rel: str, batches: list[pa.RecordBatch], first_row: int, header: list[str] | None = None) -> RawFile:
    if batches:
        frame = pl.from_arrow(pa.Table.from_batches(batches))
    else:
        frame = pl.DataFrame({name: pl.Series(name, [], pl.String) for name in header or []})
    assert isinstance(frame, pl.DataFrame)
    frame = frame.with_columns(pl.int_range(first_row, first_row + frame.height, dtype=pl.Int64).alias(ROW))
    return RawFile(rel, frame, [])


def _arrow_encoding(encoding: str) -> str:
    return "utf8" if encoding.lower().replace("-", "") in ("utf8", "utf8sig") else encoding


def _read_header(path: Path, rel: str, encoding: str, delimiter: str) -> list[str]:
    try:
        with path.open(encoding="utf-8-sig" if encoding.lower() in ("utf-8", "utf8") else encoding,
                       newline="") as fh:
            header = next(csv.reader(fh, delimiter=delimiter), None)
    except UnicodeDecodeError as exc:
        raise SourceError(rel, _not_in_encoding(path, encoding) or f"is not {encoding} text ({exc})") from exc
    if not header or not any(h.strip() for h in header):
        raise SourceError(rel, "has no header row")
    if any("\x00" in h for h in header):  # UTF-16 read as UTF-8 looks like this: a NUL after each letter
        raise SourceError(rel, f"has NUL characters in its header, as a UTF-16 file read as {encoding} has: "
                          "re-export it as UTF-8 or name its encoding in a column mapping")
    # A byte-order mark or spaces around a name (an export glued from two files, a hand edit) do not
    # make another column: names are compared without them.
    names = [h.replace("\ufeff", "").strip() for h in header]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise SourceError(rel, "appears twice in the header", column=name)
        seen.add(name)
    return names


def _read_slowly(
    path: Path, rel: str, source: str, header: list[str], encoding: str, delimiter: str, chunk_rows: int
) -> Iterator[RawFile]:
    """Read a file that has malformed rows record by record, so each keeps its row number."""
    width = len(header)
    enc = "utf-8-sig" if encoding.lower() in ("utf-8", "utf8") else encoding

    def chunk(columns: list[list[str]], rows: list[int], malformed: list[QuarantineRow]) -> RawFile:
        frame = pl.DataFrame({n: pl.Series(n, c, pl.String) for n, c in zip(header, columns, strict=True)})
        return RawFile(rel, frame.with_columns(pl.Series(ROW, rows, pl.Int64)), malformed)

    columns: list[list[str]] = [[] for _ in header]
    rows: list[int] = []
    malformed: list[QuarantineRow] = []
    with path.open(encoding=enc, newline="") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        next(reader)
        for number, record in enumerate(reader, start=2):
            if not record:
                continue
            if len(record) != width:
                buf = io.StringIO()
                csv.writer(buf, delimiter=delimiter, lineterminator="").writerow(record)
                malformed.append(
                    QuarantineRow(source, rel, number, "",
                                  f"has {len(record)} fields where the header has {width}",
                                  buf.getvalue())
                )
                continue
            rows.append(number)
            for col, value in zip(columns, record, strict=True):
                col.append(value)
            if len(rows) >= chunk_rows:
                yield chunk(columns, rows, malformed)
                columns, rows, malformed = [[] for _ in header], [], []
    yield chunk(columns, rows, malformed)


def sf_id18(value: str) -> str:
    """The case-safe 18-character form of a 15-character Salesforce id (others unchanged).

    Salesforce compares 15-character ids case-sensitively; the 3-character suffix encodes which
    letters are upper case, so the 18-character form can be compared anywhere.
    """
    if len(value) != 15 or not value.isalnum():
        return value
    suffix = ""
    for chunk in (value[0:5], value[5:10], value[10:15]):
        bits = sum(1 << i for i, ch in enumerate(chunk) if "A" <= ch <= "Z")
        suffix += _ID_CHARS[bits]
    return value + suffix


def _blank_to_null(text: pl.Series) -> pl.Series:
    stripped = text.str.strip_chars()
    return stripped.set(stripped == "", None)


def _first_fit(text: pl.Series, attempts: list[Callable[[pl.Series], pl.Series]]) -> pl.Series:
    """Apply the parsers in turn, each only while some present values are still unparsed.

    Clean files pay for one parse per column; only a file that mixes forms pays for more.
    """
    result = attempts[0](text)
    for attempt in attempts[1:]:
        missing = result.is_null() & text.is_not_null()
        if not missing.any():
            break
        result = result.zip_with(~missing, attempt(text))
    return result


def _arrow_iso(raw: pl.Series, kind: str, zone: str) -> pl.Series | None:
    """Arrow's vectorised ISO 8601 parser, when every value of the column is ISO 8601.

    It is an order of magnitude faster than format-driven parsing, but fails the whole column
    on one odd value: then the caller parses value by value and names the odd ones.
    """
    arr = raw.to_arrow().cast(pa.large_string())
    targets = [pa.date32()] if kind == "date" else [pa.timestamp("us", tz="UTC"), pa.timestamp("us")]
    for target in targets:
        try:
            out = pc.cast(arr, target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        series = pl.Series(raw.name, out)
        if target == pa.timestamp("us"):  # no offsets at all: the file's zone says which instant
            series = series.dt.replace_time_zone(zone, ambiguous="earliest", non_existent="null")
            series = series.dt.convert_time_zone("UTC")
        return series
    return None


def _parse(kind: str, raw: pl.Series, formats: Formats, fmt: tuple[str, ...] | None) -> pl.Series:
    """Turn the stripped text ``raw`` into ``kind``; a value that does not fit becomes null."""
    if kind == "str":
        return raw
    if kind == "email":
        return raw.str.strip_prefix("mailto:").str.strip_prefix("MAILTO:")
    if kind == "id":
        if not raw.str.len_chars().eq(15).any():
            return raw  # no 15-character ids: nothing to convert
        return raw.map_elements(sf_id18, return_dtype=pl.String, skip_nulls=True)
    if kind == "bool":
        low = raw.str.to_lowercase()
        out = pl.Series(raw.name, [None] * len(raw), pl.Boolean)
        out = out.set(low.is_in([t.lower() for t in formats.true]).fill_null(False), True)
        return out.set(low.is_in([f.lower() for f in formats.false]).fill_null(False), False)
    if kind == "int":
        number = raw.str.replace_all(",", "").cast(pl.Float64, strict=False)
        whole = number == number.round(0)
        return number.set(~whole.fill_null(False), None).cast(pl.Int64, strict=False)
    if kind == "float":
        return raw.str.replace_all(",", "").str.strip_suffix("%").cast(pl.Float64, strict=False)
    if kind == "money":
        return raw.str.replace_all(r"[$,\s]", "").cast(pl.Decimal(18, 2), strict=False)
    if kind in ("date", "datetime") and fmt is None and formats == _CONTRACT:
        fast = _arrow_iso(raw, kind, formats.timezone)
        if fast is not None:
            return fast
    if kind == "date":
        def as_date(f: str) -> Callable[[pl.Series], pl.Series]:
            return lambda t: t.str.to_date(format=f, strict=False)

        def date_of(f: str) -> Callable[[pl.Series], pl.Series]:
            # A datetime where a date is expected keeps its calendar date as written: the offset
            # (dropped below, with the format's %z) says where it was written, not another day.
            return lambda t: t.str.to_datetime(format=f, strict=False, time_unit="us").dt.date()

        dates = [as_date(f) for f in fmt or formats.date]
        timed = [f.replace("%#z", "").replace("%z", "").strip() for f in fmt or formats.datetime if "%H" in f
                 or "%I" in f]
        timed = list(dict.fromkeys(timed))
        dates += [date_of(f) for f in timed]
        return _first_fit(raw.str.replace(_OFFSET_AFTER_TIME, "${1}"), dates)
    if kind == "datetime":
        def parser(f: str) -> Callable[[pl.Series], pl.Series]:
            if "%z" in f:
                return lambda t: t.str.to_datetime(format=f, strict=False, time_unit="us", time_zone="UTC")
            return lambda t: (
                t.str.to_datetime(format=f, strict=False, time_unit="us")
                .dt.replace_time_zone(formats.timezone, ambiguous="earliest", non_existent="null")
                .dt.convert_time_zone("UTC")
            )
        return _first_fit(raw, [parser(f) for f in fmt or formats.datetime])
    raise ValueError(f"unknown field kind {kind!r}; expected one of {FIELD_KINDS}")


_DTYPES: dict[str, pl.DataType] = {
    "id": pl.String(), "str": pl.String(), "email": pl.String(), "bool": pl.Boolean(), "int": pl.Int64(),
    "float": pl.Float64(), "money": pl.Decimal(18, 2), "date": pl.Date(), "datetime": pl.Datetime("us", "UTC"),
}

_EXPECTED = {
    "bool": "true or false",
    "int": "a whole number",
    "float": "a number",
    "money": "an amount such as 1234.50",
    "date": "a date",
    "datetime": "a date and time",
    "id": "an id",
}


@dataclass(frozen=True)
class Conversion:
    """One target column made from source columns: how, and with which format/value map.

    ``columns``: the file's columns that may hold the value, in order of preference — each row
    takes the first that is not empty (none: the export lacks the field). ``match``: how a field
    naming a CRM user names them (``id``, ``name`` or ``email``; see :mod:`.people`). ``skip``:
    values that count as empty when choosing among ``columns`` (a lost deal's actual revenue of
    ``$0.00``, where its estimate is its value). ``bounds``: the range a number must lie in.
    """

    target: str
    columns: tuple[str, ...]
    kind: str
    fmt: tuple[str, ...] | None = None
    values: tuple[tuple[str, str], ...] = ()
    required: bool = False
    allowed: tuple[str, ...] = ()
    match: str = "id"
    skip: tuple[str, ...] = ()
    bounds: tuple[float, float] | None = None

    @property
    def column(self) -> str | None:
        """The columns as a user reads them in a message (``Actual Close Date / Est. Close Date``)."""
        return " / ".join(self.columns) if self.columns else None


ValueMisses = dict[tuple[str, str, str], Counter[str]]
"""Per field (target, column, what became of them): the cells its value map did not name, counted."""


def _mapped(text: pl.Series, conv: Conversion, misses: ValueMisses | None) -> pl.Series:
    """``text`` through the field's value map, matched case- and space-insensitively; what missed it, counted.

    ``""`` maps empty cells, ``"*"`` every other value (and empty cells when there is no ``""``);
    without ``"*"`` a value not in the map passes through unchanged. Every value that the map's
    keys did not name is counted in ``misses``, so a map that misses (``won`` for ``Won``, a
    stage the map forgot) is reported rather than silently turned into the fallback.
    """
    values = dict(conv.values)
    mapping = {value_key(k): v for k, v in values.items() if k not in ("*", "")}
    fallback = values.get("*")
    keys = value_keys(text)
    hit = keys.is_in(list(mapping))
    otherwise = text if fallback is None else pl.Series([fallback] * text.len(), dtype=pl.String)
    out = keys.replace_strict(mapping, default=otherwise, return_dtype=pl.String)
    if "" in values:
        out = pl.select(pl.when(text.is_null()).then(pl.lit(values[""])).otherwise(out)).to_series()
    if misses is not None:
        fate = f"became {fallback!r} (the map's '*')" if fallback is not None else "were kept as they are"
        counts = misses.setdefault((conv.target, conv.column or conv.target, fate), Counter())
        for value, n in text.filter(text.is_not_null() & ~hit).value_counts(name="n").iter_rows():
            counts[value] += n
    return out


def miss_notes(misses: ValueMisses, source: str, rel: str) -> list[str]:
    """One note per field whose value map did not name some of a file's values: how many, and the commonest."""
    notes = []
    for (target, column, fate), counts in sorted(misses.items()):
        if not counts:
            continue
        top = counts.most_common()
        shown = ", ".join(f"{v!r} ×{n:,}" for v, n in top[:5])
        more = f" and {len(top) - 5:,} more" if len(top) > 5 else ""
        notes.append(f"{rel}: {source}.{target} ({column}): {sum(counts.values()):,} values not in the value map "
                     f"{fate}: {shown}{more}")
    return notes


def _text(frame: pl.DataFrame, columns: tuple[str, ...], skip: tuple[str, ...] = ()) -> pl.Series:
    """The stripped text of the first of ``columns`` that is not empty (nor one of ``skip``), row by row.

    The last column is taken as it is: ``skip`` only passes over a column when another follows.
    """
    parts = [_blank_to_null(frame[c]) for c in columns]
    if len(parts) == 1:
        return parts[0]
    if skip:
        passed = [value_key(v) for v in skip]
        parts = [p.set(value_keys(p).is_in(passed).fill_null(False), None) for p in parts[:-1]] + parts[-1:]
    return pl.select(pl.coalesce(parts)).to_series().alias(columns[0])


def _shown(record: dict[str, object], conv: Conversion) -> tuple[str, object]:
    """The column that supplied a row's value for ``conv``, and the value as written there."""
    for c in conv.columns:
        cell = record[c]
        if cell is not None and str(cell).strip():
            return c, cell
    return conv.column or conv.target, ""


def coerce(
    raw: RawFile, conversions: list[Conversion], formats: Formats, source: str, misses: ValueMisses | None = None,
    people: People | None = None,
) -> tuple[pl.DataFrame, list[QuarantineRow]]:
    """Convert text columns to typed target columns; return the typed rows and the row errors.

    A row with any error is left out of the result and reported once per faulty field, with
    the raw record so nothing is lost. A required field that is empty is an error too. Value
    maps are applied first (:func:`_mapped`); what they did not name is counted in ``misses``.
    A field naming users by name or email is resolved through ``people``; a name shared by two
    users is an error.
    """
    frame = raw.frame
    height = frame.height
    typed_cols: list[pl.Series] = [frame[ROW]]
    checks: list[tuple[str, pl.Series, str]] = []
    for conv in conversions:
        if not conv.columns:
            typed_cols.append(pl.Series(conv.target, [None] * height, dtype=_DTYPES[conv.kind]))
            continue
        text = _text(frame, conv.columns, conv.skip)
        if conv.values:
            text = _mapped(text, conv, misses)
        if conv.match != "id":
            if people is None:
                raise ValueError(f"{conv.target}: matched by {conv.match} but no index of people was given")
            value, ambiguous = people.resolve(text, conv.match, frame[ROW], raw.rel)
            typed_cols.append(value.alias(conv.target))
            checks.append((conv.target, ambiguous, f"one user: it names several ({conv.match})"))
            if conv.required:
                checks.append((conv.target, text.is_null(), "a value (the field is required)"))
            continue
        value = _parse(conv.kind, text, formats, conv.fmt)
        if conv.allowed:
            value = value.str.to_lowercase()
            checks.append((conv.target, value.is_not_null() & ~value.is_in(list(conv.allowed)),
                           "one of " + ", ".join(conv.allowed)))
        typed_cols.append(value.alias(conv.target))
        if conv.kind == "email":  # one @ between non-blank parts: a name or an id here is a column mix-up
            checks.append((conv.target, value.is_not_null() & ~value.str.contains(r"^[^@\s]+@[^@\s]+$"),
                           "an email address"))
        if conv.kind not in ("str", "email"):
            expected = _EXPECTED[conv.kind]
            if conv.fmt:
                expected += f" in the format {' or '.join(conv.fmt)}"
            checks.append((conv.target, text.is_not_null() & value.is_null(), expected))
        if conv.kind == "float":  # "NaN" and "inf" parse as floats but are no measurement
            checks.append((conv.target, (value.is_nan() | value.is_infinite()).fill_null(False), "a finite number"))
        if conv.bounds is not None:
            low, high = conv.bounds
            number = value.cast(pl.Float64)
            outside = ((number < low) | (number > high)).fill_null(False)
            if conv.kind == "float":
                outside = outside & value.is_finite().fill_null(False)
            checks.append((conv.target, outside, f"between {low:g} and {high:g}"))
        if conv.required:
            checks.append((conv.target, text.is_null(), "a value (the field is required)"))
    flagged = frame.with_columns(*[c.alias(f"__bad{i}") for i, (_, c, _) in enumerate(checks)])
    bad_cols = [f"__bad{i}" for i in range(len(checks))]
    any_bad = pl.any_horizontal(bad_cols) if bad_cols else pl.lit(False)
    errors: list[QuarantineRow] = []
    bad_rows = flagged.filter(any_bad)
    if bad_rows.height:
        columns = raw.columns
        for record in bad_rows.iter_rows(named=True):
            raw_text = _record_text(record, columns)
            for i, (target, _, expected) in enumerate(checks):
                if not record[f"__bad{i}"]:
                    continue
                conv = next(c for c in conversions if c.target == target)
                column, shown = _shown(record, conv)
                if expected.startswith("a value"):
                    reason = f"{column} is empty but required"
                elif expected.startswith("one user") and people is not None:
                    who = ", ".join(people.candidates(str(shown), conv.match))
                    reason = (f"{column} {shown!r} is the {conv.match} of several users ({who}): give their id "
                              "or email instead")
                elif expected.startswith("one of"):
                    reason = f"{column} {shown!r} is not {expected}"
                elif conv.kind == "datetime" and _skipped(str(shown), formats.timezone):
                    reason = (f"{column} {shown!r} is not a time that exists in {formats.timezone}: the clocks "
                              "skipped it when daylight saving began")
                else:
                    reason = f"{column} {shown!r} is not {expected}"
                errors.append(QuarantineRow(source, raw.rel, record[ROW], column, reason, raw_text))
    typed = pl.DataFrame(typed_cols).filter(~flagged.select(any_bad).to_series())
    return typed, errors


def _skipped(text: str, zone: str) -> bool:
    """Whether ``text`` is a well-formed local time that ``zone`` skips (a daylight-saving gap)."""
    try:
        local = datetime.fromisoformat(text.strip())
    except ValueError:
        return False
    if local.tzinfo is not None:
        return False
    tz = ZoneInfo(zone)
    there_and_back = local.replace(tzinfo=tz).astimezone(UTC).astimezone(tz).replace(tzinfo=None)
    return there_and_back != local


def _record_text(record: dict[str, object], columns: list[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow([record[c] for c in columns])
    return buf.getvalue()
