"""Loading batches into canonical tables: idempotent, by record key, through Ibis only.

A batch replaces the records it carries (same key) and adds new ones; records it does not carry
stay. Loading the same batch twice therefore leaves the same table, and a newer export updates
changed records without duplicating them. Generic engines rewrite the table from an Ibis expression
(old rows not in the batch ∪ the batch); DuckDB deletes the rows replaced and inserts the batch
(:meth:`~training_roi.warehouse.engine.Engine.merge`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import ibis.expr.types as ir
import pyarrow as pa
from ibis.backends import BaseBackend

from training_roi.warehouse.batch import QuarantineRow, quarantine_table
from training_roi.warehouse.connection import count_write, row_count
from training_roi.warehouse.engine import engine
from training_roi.warehouse.schema import table

__all__ = [
    "LoadCounts",
    "Staging",
    "append",
    "refresh_table",
    "refresh_voided",
    "replace_quarantine",
    "replace_table",
    "stage",
    "unstage",
    "upsert",
]


@dataclass(frozen=True)
class LoadCounts:
    """What a load did to a table: records new to it and records replaced."""

    new: int
    replaced: int


def replace_table(con: BaseBackend, name: str, expr: ir.Table) -> None:
    """Rewrite table ``name`` as ``expr`` (which may read ``name`` itself)."""
    count_write(con, name)
    engine(con).overwrite(name, expr)


def refresh_table(con: BaseBackend, name: str, expr: ir.Table) -> None:
    """Make table ``name`` hold the rows of ``expr`` (which must not read ``name``), as :func:`replace_table`.

    For a table derived again after each load: where the engine allows it, only the rows of the
    schema's key values whose rows are new, gone or different are written.
    """
    count_write(con, name)
    engine(con).refresh(name, expr, table(name).key)


def stage(con: BaseBackend, name: str, rows: pa.Table) -> ir.Table:
    """Make Arrow ``rows`` joinable with the warehouse's tables, as ``name``; see :func:`unstage`."""
    return engine(con).register(name, rows)


def unstage(con: BaseBackend, name: str) -> None:
    """Forget rows put in by :func:`stage`."""
    engine(con).unregister(name)


def append(con: BaseBackend, name: str, rows: pa.Table) -> None:
    """Append Arrow ``rows`` (named like the table's columns) to table ``name``."""
    count_write(con, name)
    _append(con, name, rows)


def _append(con: BaseBackend, name: str, rows: pa.Table) -> None:
    """:func:`append`, uncounted: a source's chunks, counted once by its :class:`Staging`."""
    staged = stage(con, f"_append_{name}", rows)
    try:
        con.insert(name, staged.select(con.table(name).columns))
    finally:
        unstage(con, f"_append_{name}")


def _is_empty(t: ir.Table) -> bool:
    return row_count(t.limit(1)) == 0


def _drop_staged(con: BaseBackend, name: str) -> None:
    if name in con.list_tables():
        con.drop_table(name)


class Staging:
    """A source's rows gathered in the engine before they replace anything.

    A large export arrives in chunks; each is appended to a staging table, so memory stays flat
    and the engine (which can spill to disk) holds the rows. Only when every file of the source
    has been read does :meth:`merge` put them into the canonical table, so a file that fails
    half-way leaves the warehouse as it was.
    """

    #: Chunks smaller than this are gathered before they are written: each write has a fixed cost
    #: (tens of milliseconds in Ibis), which a sync's many small pages paid once per page.
    GATHER_ROWS = 65_536

    def __init__(self, con: BaseBackend, table_name: str) -> None:
        self.con = con
        self.spec = table(table_name)
        self.rows = 0
        self._gathered: list[pa.Table] = []
        self._gathered_rows = 0
        self._writer: ThreadPoolExecutor | None = None
        self._pending: list[Future[None]] = []
        # Into an empty table the rows can go straight away: undoing a failed source is then
        # emptying it again, and the large first load is written once instead of twice.
        self.direct = _is_empty(con.table(table_name))
        self.name = table_name if self.direct else f"_stage_{table_name}"
        if self.direct:
            count_write(con, table_name)  # the rows go straight into it
            return
        if self.name in con.list_tables():
            con.drop_table(self.name)
        # A temporary table lives in memory and spills to a temporary file, never to the warehouse
        # file: staging costs no second compressed write. Spark has no temporary tables.
        con.create_table(self.name, schema=self.spec.schema, temp=engine(con).temporary_tables)

    def add(self, rows: pa.Table) -> None:
        """Append typed rows (the canonical table's columns).

        On DuckDB the write happens on a background thread while the caller converts the next
        chunk (both release the GIL), with at most two chunks in flight to bound memory.
        """
        if not rows.num_rows:
            return
        self.rows += rows.num_rows
        if rows.num_rows < self.GATHER_ROWS:
            self._gathered.append(rows)
            self._gathered_rows += rows.num_rows
            if self._gathered_rows < self.GATHER_ROWS:
                return
            rows = self._take_gathered()
        elif self._gathered:
            self._write(self._take_gathered())
        self._write(rows)

    def _take_gathered(self) -> pa.Table:
        rows = pa.concat_tables(self._gathered, promote_options="default")
        self._gathered, self._gathered_rows = [], 0
        return rows

    def _write(self, rows: pa.Table) -> None:
        if not engine(self.con).background_writes:
            _append(self.con, self.name, rows)
            return
        if self._writer is None:
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="training-roi-load")
        while len(self._pending) >= 2:
            self._pending.pop(0).result()
        self._pending.append(self._writer.submit(_append, self.con, self.name, rows))

    def flush(self) -> None:
        """Write what is gathered, wait for every background write; re-raise the first failure."""
        try:
            if self._gathered:
                self._write(self._take_gathered())
            for future in self._pending:
                future.result()
        finally:
            self._pending = []
            if self._writer is not None:
                self._writer.shutdown(wait=True)
                self._writer = None

    def discard_file(self, source_file: str) -> None:
        """Forget the rows taken from ``source_file`` (it is being read again)."""
        self.flush()
        t = self.con.table(self.name)
        replace_table(self.con, self.name, t.filter(t.source_file != source_file))
        self.rows = row_count(self.con.table(self.name))

    def repeated_keys(self) -> pa.Table:
        """Every staged row whose key occurs more than once (usually none), for a decision."""
        self.flush()
        t = self.con.table(self.name)
        keys = list(self.spec.key)
        counts = t.group_by(keys).agg(_n=t.count())
        repeated = counts.filter(counts._n > 1).drop("_n")
        return t.semi_join(repeated, keys).to_pyarrow()

    def remove(self, where: list[tuple[str, int]]) -> None:
        """Drop the rows at these (source_file, source_line) places."""
        if not where:
            return
        places = stage(self.con, "_stage_remove", pa.table({
            "r_file": pa.array([w[0] for w in where], pa.string()),
            "r_line": pa.array([w[1] for w in where], pa.int64()),
        }))
        t = self.con.table(self.name)
        kept = t.anti_join(places, (t.source_file == places.r_file) & (t.source_line == places.r_line))
        replace_table(self.con, self.name, kept.select(self.spec.names))
        unstage(self.con, "_stage_remove")
        self.rows -= len(where)

    def merge(self, *, replace_files: Sequence[str] = ()) -> LoadCounts:
        """Put the staged rows into the canonical table by key; drop the staging table."""
        self.flush()
        if self.direct:
            return LoadCounts(new=self.rows, replaced=0)
        con, spec = self.con, self.spec
        keys = list(spec.key)
        current = con.table(spec.name)
        matched = row_count(current.semi_join(con.table(self.name), keys))
        count_write(con, spec.name)
        engine(con).merge(spec.name, self.name, keys, replace_files)
        self.drop()
        return LoadCounts(new=self.rows - matched, replaced=matched)

    def drop(self) -> None:
        """Abandon the staged rows (after a failure, or once merged)."""
        self._gathered, self._gathered_rows = [], 0
        with contextlib.suppress(Exception):  # rows being abandoned: a failed write changes nothing
            self.flush()
        if self.direct:
            count_write(self.con, self.name)
            self.con.truncate_table(self.name)
        else:
            _drop_staged(self.con, self.name)


def upsert(con: BaseBackend, name: str, rows: pa.Table) -> None:
    """Put ``rows`` (the table's columns) into table ``name``, replacing the rows with the same key.

    For the warehouse's own bookkeeping (run logs, watermarks, audit rows): a few rows, merged
    straight from Arrow. Staging them as a source's rows are staged cost ten queries and a thread
    per row, a tenth of a second each time a sync logged its progress.
    """
    name_staged = f"_upsert_{name}"
    count_write(con, name)
    stage(con, name_staged, rows)
    try:
        engine(con).merge(name, name_staged, table(name).key)
    finally:
        unstage(con, name_staged)


def replace_quarantine(con: BaseBackend, source: str, files: Sequence[str], rows: list[QuarantineRow]) -> None:
    """Replace the quarantine rows of ``source`` for ``files`` with ``rows``."""
    current = con.table("quarantine")
    kept = current.filter(~((current.source == source) & current.source_file.isin(list(files) or [""])))
    new = quarantine_table(rows)
    if new.num_rows:
        staged = stage(con, "_quarantine_batch", new)
        replace_table(con, "quarantine", kept.union(staged.select(table("quarantine").names)))
        unstage(con, "_quarantine_batch")
    else:
        replace_table(con, "quarantine", kept)


def refresh_voided(con: BaseBackend) -> int:
    """Mark every statement cancelled by a voiding statement; return how many are voided.

    Per xAPI, a voiding statement cannot itself be voided, so a target that is a voiding
    statement stays valid.
    """
    st = con.table("lms_statement")
    targets = (
        st.filter(st.voided_statement_id.notnull())
        .select(target_id=st.voided_statement_id)
        .distinct()
    )
    joined = st.left_join(targets, st.statement_id == targets.target_id)
    voided = (joined.target_id.notnull() & joined.voided_statement_id.isnull()).fill_null(False)
    # Only the statements whose flag changes: a sync's few new statements flip a few flags of a million.
    flipped = joined.filter(joined.is_voided.isnull() | (joined.is_voided != voided))
    marked = flipped.mutate(is_voided=voided).select(table("lms_statement").names)
    count_write(con, "lms_statement")
    engine(con).set_column("lms_statement", table("lms_statement").key, "is_voided", marked)
    final = con.table("lms_statement")
    return row_count(final.filter(final.is_voided))
