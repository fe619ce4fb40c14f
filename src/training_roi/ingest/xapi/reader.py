"""``read_xapi``: xAPI statement files read into one batch of ``lms_statement`` rows and quarantine.

:class:`Reader` tells each file's form from its content (see :mod:`.framing`), reads JSON lines
in blocks (by worker processes for a large file, see :mod:`.parallel`) and documents (one
statement, an array, an LRS page) whole, keeps what precedes the fault of a file cut short, and
refuses a file that is not UTF-8 as a whole. Each statement goes through :class:`.rows.Rows`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, BinaryIO

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from training_roi.errors import SourceError
from training_roi.ingest.xapi.framing import (
    BOM,
    RESULT_KEYS,
    WATCHED_KEYS,
    first_lines,
    line_blocks,
    looks_like_statement,
    may_repeat_keys,
    statement_spans,
    utf8_problem,
)
from training_roi.ingest.xapi.parallel import Block, Workers
from training_roi.ingest.xapi.rows import RAW_LIMIT, SOURCE, Rows, cap, conflict, gc_paused
from training_roi.ingest.xapi.statement import SPINE
from training_roi.warehouse import schema
from training_roi.warehouse.batch import Batch

__all__ = ["Reader", "read_xapi"]

_TABLE = "lms_statement"


class Reader(Rows):
    """Everything one ``read_xapi`` call read: the rows of :class:`Rows`, plus notes on files.

    It recognises each file's form, reads JSON lines in blocks (``workers`` read the blocks of a
    large file) and whole documents at once, and gives the result as one :class:`Batch`.
    """

    def __init__(
        self,
        arrow_schema: pa.Schema,
        progress: Callable[[int], None] | None = None,
        workers: Workers | None = None,
    ) -> None:
        super().__init__(arrow_schema)
        self.workers = workers or Workers(1)
        self.notes: list[str] = []
        self.progress = progress

    def file(self, path: Path, rel: str) -> None:
        """Read one file, whichever of the four forms it has."""
        try:
            with path.open("rb") as fh:
                first, more = first_lines(fh)
                if not first.strip():
                    self.notes.append(f"{rel}: empty file, no statements")
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
                data = fh.read().removeprefix(BOM)
        except OSError as exc:
            raise SourceError(rel, f"cannot be read ({exc.strerror or exc})") from exc
        problem = utf8_problem(data)
        if problem is not None:
            self.refuse(rel, problem, data)
            return
        self.document(data, rel, path)

    def refuse(self, rel: str, problem: str, data: bytes) -> None:
        """Quarantine a whole file that is not UTF-8 (line 0: no statement in it is counted)."""
        raw = data[:RAW_LIMIT].decode("utf-8", "replace")
        self.reject(rel, 0, "", f"the file is not UTF-8 text ({problem}); save it as UTF-8 "
                    "and ingest it again", raw)
        self.notes.append(f"{rel}: refused, not UTF-8 ({problem})")

    def jsonl(self, path: Path, rel: str, fh: BinaryIO) -> None:
        """Read a JSON-lines file in blocks of whole lines, in worker processes when large.

        Blocks are merged only once all are read, so that a file with a block that is not
        UTF-8 is refused as a whole rather than half loaded.
        """
        spans = line_blocks(fh)
        blocks: list[Block] = []
        for block in self.workers.read(path, rel, spans, self.schema):
            if block.utf8_problem is not None:
                fh.seek(0)
                self.refuse(rel, block.utf8_problem, fh.read(RAW_LIMIT))
                return
            blocks.append(block)
            if self.progress is not None:
                self.progress(self.read + sum(b.read for b in blocks))
        line_offset, first = 0, len(self.quarantine)
        for block in blocks:
            self.merge(block, line_offset, path, rel)
            line_offset += block.newlines
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

    def document(self, data: bytes, rel: str, path: Path) -> None:
        """Read a whole-file JSON document: one statement, an array, or an LRS page."""
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            self.malformed(data, rel, str(exc), path)
            return
        if type(value) is dict and not any(k in value for k in SPINE):
            statements = value.get("statements")
            if type(statements) is list:
                more = value.get("more")
                if more:
                    self.notes.append(
                        f"{rel}: the LRS page says more statements are available ({more}); "
                        "only this page was read"
                    )
                self.elements(statements, data, rel)
                return
        if type(value) is list:
            self.elements(value, data, rel)
            return
        self.take(value, rel, 1, data, may_repeat_keys(data))

    def elements(self, values: list[Any], data: bytes, rel: str) -> None:
        """Read the statements of an array or page; statement ``i`` (from 0) is line ``i + 1``."""
        text = ""
        spans: list[tuple[int, int]] = []

        def span_text(i: int) -> str:
            nonlocal text, spans
            if not text:
                text = data.decode("utf-8")
                spans = statement_spans(text)[0]
            if i < len(spans):
                return text[spans[i][0] : spans[i][1]]
            return orjson.dumps(values[i]).decode()

        # Cheap test on the whole text first: only when some element may repeat a key are the
        # elements' own texts located and tested one by one.
        results = [v["result"] for v in values if type(v) is dict and type(v.get("result")) is dict]
        suspicious = any(
            data.count(f'"{name}"'.encode())
            > sum(1 for v in (results if name in RESULT_KEYS else values)
                  if type(v) is dict and name in v)
            for name in WATCHED_KEYS
        )
        for i, value in enumerate(values):
            self.take(value, rel, i + 1, functools.partial(span_text, i),
                      suspicious and may_repeat_keys(span_text(i)))

    def malformed(self, data: bytes, rel: str, error: str, path: Path) -> None:
        """Read a document that does not parse: keep what precedes the fault, or JSON lines."""
        text = data.decode("utf-8")
        spans, fault, at = statement_spans(text)
        if spans:
            for i, (start, end) in enumerate(spans):
                piece = text[start:end]
                self.take(orjson.loads(piece), rel, i + 1, piece, may_repeat_keys(piece))
            line = len(spans) + 1
            self.read += 1
            self.reject(rel, line, "", f"{fault or 'malformed JSON: ' + error}; statement "
                        f"{line} onwards could not be read", cap(text[at:]))
            self.notes.append(f"{rel}: malformed after statement {len(spans)}; "
                              f"the first {len(spans)} statements were read")
            return
        # JSON lines whose first line is broken: the next line is a statement on its own.
        lines = data.split(b"\n")
        jsonl = path.suffix.lower() in (".jsonl", ".ndjson")
        if not jsonl:
            filled = [line for line in lines if line.strip()][1:2]
            jsonl = bool(filled) and looks_like_statement(filled[0])
        if jsonl:
            self.lines(enumerate(lines, start=1), rel)
            return
        self.read += 1
        self.reject(rel, 1, "", f"malformed JSON: {error}", cap(text))

    def batch(self, files: int) -> Batch:
        """Return everything read as a :class:`Batch`."""
        self.flush()
        if self.progress is not None:
            self.progress(self.read)
        table = pa.Table.from_batches(self.batches, schema=self.schema)
        untimed = pc.count_distinct(
            pc.filter(table["statement_id"], pc.is_null(table["timestamp"]))
        ).as_py()
        if untimed:
            self.notes.append(
                f"{untimed} statement(s) have neither timestamp nor stored, so when they happened "
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
    files: Sequence[tuple[Path, str]], *, progress: Callable[[int], None] | None = None
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
        JSON-lines file, and once at the end (for a progress display).

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
    reader = Reader(schema.table(_TABLE).schema.to_pyarrow(), progress, workers)
    try:
        with gc_paused():
            for path, rel in files:
                reader.file(Path(path), rel)
            return reader.batch(len(files))
    finally:
        workers.close()
