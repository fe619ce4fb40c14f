"""``read_xapi``: xAPI statement files read into one batch of ``lms_statement`` rows and quarantine.

:class:`Reader` tells each file's form from its content (see :mod:`.framing`), reads JSON lines
in blocks (by worker processes for a large file, see :mod:`.parallel`) and documents (an array,
an LRS page) a statement at a time (see :mod:`.document`), keeps what precedes the fault of a
file cut short, and refuses a file that is not UTF-8 as a whole. Each statement goes through :class:`.rows.Rows`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from training_roi.errors import SourceError
from training_roi.ingest.xapi import document as documents
from training_roi.ingest.xapi.document import Document, limit_text, utf8_problem_in
from training_roi.ingest.xapi.framing import (
    BOM,
    first_lines,
    line_blocks,
    looks_like_statement,
    may_repeat_keys,
)
from training_roi.ingest.xapi.parallel import PARALLEL_MIN_BYTES, Block, Workers
from training_roi.ingest.xapi.rows import RAW_LIMIT, SOURCE, Rows, cap, conflict, gc_paused
from training_roi.warehouse import schema
from training_roi.warehouse.batch import Batch

__all__ = ["Reader", "read_xapi"]

_TABLE = "lms_statement"
PROGRESS_EVERY = 65_536
"""Statements of an array or page between two progress reports."""


class Reader(Rows):
    """Everything one ``read_xapi`` call read: the rows of :class:`Rows`, plus notes on files.

    It recognises each file's form, reads JSON lines in blocks (``workers`` read the blocks of a
    large file) and arrays and pages a statement at a time, and gives the result as one :class:`Batch`.
    """

    def __init__(
        self,
        arrow_schema: pa.Schema,
        progress: Callable[[int], None] | None = None,
        workers: Workers | None = None,
        sink: Callable[[pa.Table], None] | None = None,
    ) -> None:
        super().__init__(arrow_schema)
        self.workers = workers or Workers(1)
        self.notes: list[str] = []
        self.progress = progress
        self.sink = sink
        self.counted = 0
        self.timestamp_at = arrow_schema.get_field_index("timestamp")
        self.untimed = 0
        """Statements loaded with neither timestamp nor stored (counted as their rows are handed on)."""

    def flush(self) -> None:
        """Turn the rows collected so far into Arrow, and hand them to the sink if there is one."""
        super().flush()
        self.drain()

    def drain(self) -> None:
        """Count the untimed statements of the batches read so far; hand them to the sink if there is one."""
        for batch in self.batches[self.counted :]:
            untimed = pc.filter(batch.column(0), pc.is_null(batch.column(self.timestamp_at)))
            self.untimed += pc.count_distinct(untimed).as_py()
        self.counted = len(self.batches)
        if self.sink is not None and self.batches:
            self.sink(pa.Table.from_batches(self.batches, schema=self.schema))
            self.batches, self.counted = [], 0

    def file(self, path: Path, rel: str) -> None:
        """Read one file, whichever of the four forms it has."""
        try:
            with path.open("rb") as fh:
                first, more = first_lines(fh)
                if not first.strip():
                    self.notes.append(f"{rel}: empty file, no statements")
                    return
                # Checked whole first (a quick pass), so that a file with a bad byte anywhere is
                # refused as a whole rather than half loaded, and rows can be handed on as read.
                fh.seek(0)
                problem = utf8_problem_in(fh)
                if problem is not None:
                    fh.seek(0)
                    self.refuse(rel, problem, fh.read(RAW_LIMIT))
                    return
                # JSON lines when the first line is a whole JSON value and others follow; a
                # document spread over lines has a first line that does not parse alone.
                if more:
                    try:
                        orjson.loads(first)
                    except orjson.JSONDecodeError:
                        pass
                    else:
                        self.jsonl(path, rel, fh)
                        return
                fh.seek(0)
                self.document(fh, rel, path)
        except OSError as exc:
            raise SourceError(rel, f"cannot be read ({exc.strerror or exc})") from exc

    def refuse(self, rel: str, problem: str, data: bytes) -> None:
        """Quarantine a whole file that is not UTF-8 (line 0: no statement in it is counted)."""
        raw = data[:RAW_LIMIT].decode("utf-8", "replace")
        self.reject(rel, 0, "", f"the file is not UTF-8 text ({problem}); save it as UTF-8 "
                    "and ingest it again", raw)
        self.notes.append(f"{rel}: refused, not UTF-8 ({problem})")

    def jsonl(self, path: Path, rel: str, fh: BinaryIO) -> None:
        """Read a JSON-lines file (known to be UTF-8) in blocks of whole lines, in worker processes when large.

        Each block is handed on as soon as it is read.
        """
        line_offset, first = 0, len(self.quarantine)
        for block in self.workers.read(path, rel, line_blocks(fh), self.schema):
            if block.utf8_problem is not None:  # checked above: the file changed while being read
                raise SourceError(rel, f"changed while it was read ({block.utf8_problem}); ingest it again")
            self.merge(block, line_offset, path, rel)
            line_offset += block.newlines
            if self.progress is not None:
                self.progress(self.read)
        # In line order, as one block would have them (conflicts across blocks are found at the merge).
        self.quarantine[first:] = sorted(self.quarantine[first:], key=lambda q: q.source_line)

    def merge(self, block: Block, line_offset: int, path: Path, rel: str) -> None:
        """Add a block's results: number its lines in the file, drop ids loaded before it.

        An id loaded before with the same content is a duplicate; with other content, a conflict
        quarantined with the line read again from ``path``.
        """
        self.read += block.read
        self.loaded += block.loaded
        self.duplicate += block.duplicate
        self.quarantine.extend(
            replace(q, source_line=q.source_line + line_offset) for q in block.quarantine
        )
        seen = self.seen
        line_at = self.schema.get_field_index("source_line")
        for batch in block.batches:
            if line_offset:
                lines = pc.add(batch.column(line_at), pa.scalar(line_offset, pa.int64()))
                batch = batch.set_column(line_at, self.schema.field(line_at), lines)
            ids = batch.column(0).to_pylist()
            keep = [sid not in seen for sid in ids]
            if not all(keep):
                again = {sid for sid, kept in zip(ids, keep, strict=True) if not kept}
                clash = {sid for sid in again if seen[sid] != block.fingerprints[sid]}
                self.loaded -= len(again)
                self.duplicate += len(again - clash)
                if clash:
                    lines = batch.column(line_at).to_pylist()
                    at = sorted({line for sid, line in zip(ids, lines, strict=True) if sid in clash})
                    for line, text in zip(at, _lines_of(path, at), strict=True):
                        sid = next(i for i, n in zip(ids, lines, strict=True) if n == line)
                        self.reject(rel, line, "id", conflict(sid), text)
                batch = batch.filter(pa.array(keep, pa.bool_()))
            for sid in ids:
                seen.setdefault(sid, block.fingerprints[sid])
            self.batches.append(batch)
        self.drain()

    def document(self, fh: BinaryIO, rel: str, path: Path) -> None:
        """Read a JSON document: an array or LRS page a statement at a time, one statement whole.

        Statement ``i`` of an array or page (from 1) is line ``i``. What precedes a fault is kept
        and the rest quarantined as one statement; a document that is not JSON at all may be JSON
        lines whose first line is broken.
        """
        doc = Document(fh, raw_limit=RAW_LIMIT)
        for number, text in enumerate(doc.elements(), start=1):
            self.element(text, rel, number)
            if self.progress is not None and number % PROGRESS_EVERY == 0:
                self.progress(self.read)
        if doc.form == "statement":
            self.single(path, rel)
            return
        if doc.more:
            self.notes.append(f"{rel}: the LRS page says more statements are available ({doc.more}); "
                              "only this page was read")
        if doc.fault is None:
            return
        if doc.count == 0:
            if self.broken_first_line(path, rel):
                return
            fh.seek(0)
            self.read += 1
            self.reject(rel, 1, "", doc.fault, fh.read(RAW_LIMIT).removeprefix(BOM).decode("utf-8", "replace"))
            return
        line = doc.count + 1
        self.read += 1
        self.reject(rel, line, "", f"{doc.fault}; statement {line} onwards could not be read", doc.fault_text)
        self.notes.append(f"{rel}: malformed after statement {doc.count}; "
                          f"the first {doc.count} statements were read")

    def element(self, text: str, rel: str, number: int) -> None:
        """Read one element of an array or page: parsed as a JSON line is, or quarantined."""
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError as exc:  # what orjson refuses and the standard library reads: NaN
            self.read += 1
            self.reject(rel, number, "", f"malformed JSON: {exc}", text)
            return
        self.take(value, rel, number, text, may_repeat_keys(text))

    def single(self, path: Path, rel: str) -> None:
        """Read a file holding one statement (line 1), or JSON lines whose first line is broken."""
        size = path.stat().st_size
        if size > documents.STATEMENT_LIMIT:
            self.read += 1
            with path.open("rb") as fh:
                head = fh.read(RAW_LIMIT).decode("utf-8", "replace")
            self.reject(rel, 1, "", f"one statement of {size / 2**20:,.1f} MiB: a statement longer than "
                        f"{limit_text()} is not read", head)
            return
        data = path.read_bytes().removeprefix(BOM)
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            if self.broken_first_line(path, rel):
                return
            self.read += 1
            self.reject(rel, 1, "", f"malformed JSON: {exc}", cap(data.decode("utf-8")))
            return
        self.take(value, rel, 1, data, may_repeat_keys(data))

    def broken_first_line(self, path: Path, rel: str) -> bool:
        """Read a file as JSON lines when it is named so, or its second line is a statement on its own."""
        with path.open("rb") as fh:
            jsonl = path.suffix.lower() in (".jsonl", ".ndjson")
            if not jsonl:
                filled = (line for line in fh if line.strip())
                next(filled, None)
                second = next(filled, None)
                jsonl = second is not None and looks_like_statement(second)
            if not jsonl:
                return False
            fh.seek(0)
            self.lines(((n, line.removesuffix(b"\n").removeprefix(BOM if n == 1 else b""))
                        for n, line in enumerate(fh, start=1)), rel)
        return True

    def batch(self, files: int) -> Batch:
        """Return everything read as a :class:`Batch`."""
        self.flush()
        if self.progress is not None:
            self.progress(self.read)
        table = pa.Table.from_batches(self.batches, schema=self.schema)
        if self.untimed:
            self.notes.append(
                f"{self.untimed} statement(s) have neither timestamp nor stored, so when they happened "
                "is unknown (an LRS sets both: these did not come straight from one)"
            )
        return Batch(
            source=SOURCE,
            table=_TABLE,
            rows=table,
            rows_read=self.read,
            rows_loaded=self.loaded,
            quarantine=self.quarantine,
            rows_duplicate=self.duplicate,
            files=files,
            notes=self.notes,
        )


def _size(path: Path) -> int:
    """A file's size in bytes, 0 when it cannot be told (reading it then says why)."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _lines_of(path: Path, numbers: list[int]) -> list[bytes]:
    """The text of the given lines (1-based, ascending) of a file, read again for the quarantine."""
    wanted, out = iter(numbers), []
    target = next(wanted, None)
    with path.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            if number == target:
                out.append(line)
                target = next(wanted, None)
                if target is None:
                    break
    return out


def read_xapi(
    files: Sequence[tuple[Path, str]],
    *,
    progress: Callable[[int], None] | None = None,
    sink: Callable[[pa.Table], None] | None = None,
) -> Batch:
    """Read xAPI statement files into a batch for the ``lms_statement`` table.

    Each file may be JSON lines, one statement, a JSON array of statements or an LRS page
    (``{"statements": [...], "more": "..."}``), whatever its extension. A statement's
    ``source_line`` is its line in a JSON-lines file, its position (from 1) in an array or
    page, and 1 for a file holding one statement; a file that is not UTF-8 is quarantined as a
    whole with line 0 and counts no statements. On Linux, JSON-lines files of 32 MiB or more
    are read by one worker process per CPU.

    Parameters
    ----------
    files
        ``(path, name relative to the data folder)`` pairs; the name is what rows and
        quarantine report as ``source_file``.
    progress
        Called with the number of statements read so far, after each 16 MiB block of a
        JSON-lines file and every 65,536 statements of an array or page, and once at the end
        (for a progress display).
    sink
        When given, rows are handed to it as they are read (a few tens of thousands at a time,
        a JSON-lines file once all its blocks are read) instead of being gathered in the
        returned batch, whose ``rows`` are then empty: memory then does not grow with the
        export. Everything else (counts, quarantine, notes) is as without it.

    Returns
    -------
    Batch
        ``source="xapi"``, ``table="lms_statement"``; ``rows_read`` counts statements,
        ``rows_loaded`` the statements loaded (a Group's statement is one statement but one row
        per member), ``rows_duplicate`` repeated statement ids.

    Raises
    ------
    SourceError
        A file cannot be opened or read at all.

    Examples
    --------
    >>> batch = read_xapi([(Path("data/lms/statements.jsonl"), "lms/statements.jsonl")])
    ... # doctest: +SKIP
    >>> batch.rows_read == batch.rows_loaded + batch.rows_quarantined + batch.rows_duplicate
    ... # doctest: +SKIP
    True

    """
    workers = Workers()
    if sink is not None and any(_size(Path(path)) >= PARALLEL_MIN_BYTES for path, _ in files):
        workers.warm()  # forked before the sink's writer thread starts
    reader = Reader(schema.table(_TABLE).schema.to_pyarrow(), progress, workers, sink)
    try:
        with gc_paused():
            for path, rel in files:
                reader.file(Path(path), rel)
            return reader.batch(len(files))
    finally:
        workers.close()
