"""Statements checked one by one and collected as ``lms_statement`` rows, duplicates and quarantine.

:class:`Rows` is what every way of reading a file ends in: each statement is taken with its
line and raw text, loaded (its rows kept, its id remembered), counted as a duplicate of an id
already loaded, or quarantined with the field at fault and the reason. Rows are kept as tuples
and turned into Arrow every ``FLUSH_ROWS`` rows, the cheapest form for a million statements.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import pyarrow as pa

from training_roi.ingest.xapi.framing import repeated_key
from training_roi.ingest.xapi.statement import statement_rows
from training_roi.warehouse.batch import QuarantineRow

__all__ = ["FLUSH_ROWS", "RAW_LIMIT", "SOURCE", "Raw", "Rows", "cap", "gc_paused"]

SOURCE = "xapi"
FLUSH_ROWS = 32_768
RAW_LIMIT = 1 << 20
"""Quarantine keeps at most this many characters of a statement's (or a file's) raw text."""

Raw = bytes | str | Callable[[], str]
"""A statement's raw text, as read or decoded, or a function giving it when it is needed."""


class Rows:
    """Rows, ids seen, quarantine and counts of the statements read so far.

    One holds a whole ``read_xapi`` call (:class:`~training_roi.ingest.xapi.reader.Reader`
    extends it with the files), or one block of a large JSON-lines file read by a worker.
    """

    def __init__(self, arrow_schema: pa.Schema) -> None:
        self.schema = arrow_schema
        self.rows: list[tuple[Any, ...]] = []
        self.batches: list[pa.RecordBatch] = []
        self.seen: dict[str, int] = {}
        """Each id loaded, with the fingerprint of its content (:func:`fingerprint`)."""
        self.quarantine: list[QuarantineRow] = []
        self.read = 0
        self.loaded = 0
        self.duplicate = 0
        self.verbs: dict[str, str] = {}

    def lines(self, numbered: Iterable[tuple[int, bytes]], rel: str) -> None:
        """Read JSON lines: one statement a line; blank lines are skipped."""
        take = self.take
        loads = orjson.loads
        decode_error = orjson.JSONDecodeError
        for lineno, line in numbered:
            try:
                value = loads(line)
            except decode_error as exc:
                if line.strip():
                    self.read += 1
                    self.reject(rel, lineno, "", f"malformed JSON: {exc}", line)
                continue
            # may_repeat_keys(line), inlined: this loop runs once per statement of a large export.
            suspect = (
                line.count(b'"actor"') > 1
                or line.count(b'"verb"') > 1
                or line.count(b'"object"') > 1
                or line.count(b'"timestamp"') > 1
                or line.count(b'"result"') > 1
                or line.count(b'"score"') > 1
                or line.count(b'"success"') > 1
                or line.count(b'"completion"') > 1
            )
            take(value, rel, lineno, line, suspect)

    def take(self, value: object, rel: str, line: int, raw: Raw, suspect: bool) -> None:
        """Check one statement and load it, count it as a duplicate, or quarantine it."""
        self.read += 1
        if type(value) is not dict:
            self.reject(rel, line, "", f"not an xAPI statement: {_describe(value)}, not an object",
                        raw)
            return
        if "actor" not in value and "verb" not in value and "object" not in value:
            keys = ", ".join(list(value)[:8]) or "none"
            self.reject(rel, line, "", "not an xAPI statement: a JSON object with none of actor, "
                        f"verb or object (its keys: {keys})", raw)
            return
        faults: list[tuple[str, str]] = []
        if suspect:
            repeated = repeated_key(raw() if callable(raw) else raw)
            if repeated is not None:
                faults.append((repeated, f"the key {repeated.rsplit('.', 1)[-1]!r} appears more "
                               "than once in the same object, so the statement is ambiguous"))
        sid, rows = statement_rows(value, rel, line, faults, self.verbs)
        if faults:
            for field, reason in faults:
                self.reject(rel, line, field, reason, raw)
            return
        mark = fingerprint(rows)
        first = self.seen.get(sid)
        if first is not None:
            if first == mark:
                self.duplicate += 1
            else:
                self.reject(rel, line, "id", conflict(sid), raw)
            return
        self.seen[sid] = mark
        self.loaded += 1
        self.rows += rows
        if len(self.rows) >= FLUSH_ROWS:
            self.flush()

    def reject(self, rel: str, line: int, field: str, reason: str, raw: Raw) -> None:
        """Put a statement (or a whole file, line 0) in quarantine, with its raw text."""
        if callable(raw):
            raw = raw()
        elif isinstance(raw, bytes):
            raw = raw.decode("utf-8", "replace").removeprefix("\ufeff")
        self.quarantine.append(
            QuarantineRow(SOURCE, rel, line, field, reason, cap(raw.rstrip("\r\n")))
        )

    def flush(self) -> None:
        """Turn the rows collected so far into an Arrow record batch.

        Arrow reads the row tuples as one struct array, which turns rows into columns in C++
        (nearly twice as fast as transposing them in Python first).
        """
        if not self.rows:
            return
        rows = pa.array(self.rows, type=pa.struct(list(self.schema)))
        self.rows = []
        self.batches.append(pa.RecordBatch.from_struct_array(rows))


def fingerprint(rows: list[tuple[Any, ...]]) -> int:
    """What a statement says, as a number: its rows without where they were read (the last two columns).

    Two deliveries of one id with the same fingerprint are one statement; different ones are a
    conflict. Python's hash is enough: it is compared within one read, whose worker processes are
    forked from the reader and share its hash seed.
    """
    return hash(tuple(r[:-2] for r in rows))


def conflict(sid: str) -> str:
    """Why a statement whose id was loaded before with other content is quarantined."""
    return (f"statement id {sid} appears again with different content: the first delivery was loaded "
            "(a statement never changes under its id; one of the two is not what the LRS stored)")


def _describe(value: object) -> str:
    """Name the kind of JSON value that stands where a statement should."""
    if isinstance(value, list):
        return "a JSON array"
    if isinstance(value, str):
        return "a JSON string"
    if value is None:
        return "JSON null"
    if isinstance(value, bool):
        return "a JSON boolean"
    return "a JSON number"


def cap(text: str) -> str:
    """Cut a raw text kept in quarantine to ``RAW_LIMIT`` characters, saying how much was cut."""
    if len(text) <= RAW_LIMIT:
        return text
    return text[:RAW_LIMIT] + f"… [cut: {len(text) - RAW_LIMIT} more characters in the file]"


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while reading.

    Parsing allocates millions of short-lived dicts and keeps up to ``FLUSH_ROWS`` row tuples;
    the collector would walk them over and over (about 7% of the reading time on a 300,000
    statement file), while nothing read here forms a reference cycle, so reference counting
    frees it all anyway.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
