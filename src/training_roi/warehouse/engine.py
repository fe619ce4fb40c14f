"""The one adapter for what differs between the warehouse's engines (DuckDB, Spark, other Ibis backends).

Stage code is written once as Ibis expressions. A few things Ibis leaves to each engine, and they
are answered here and nowhere else:

* putting Arrow rows beside the warehouse's tables for a join (DuckDB reads the buffers in place;
  Spark is handed the Arrow table, never pandas, where a missing string would become "NaN");
* overwriting a table from an expression that reads it (Spark cannot, so the result is
  materialised first);
* merging staged rows into a table by key (DuckDB deletes the rows replaced and inserts the
  staged ones; other engines rewrite the table);
* temporary tables (DuckDB's live in memory and spill to a temporary file; Spark has none);
* writing on a background thread while the caller prepares the next chunk (safe on DuckDB);
* the UTC calendar day of a timestamp (on DuckDB integer arithmetic on the epoch, several times
  faster than a cast through the time-zone library).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import pyarrow as pa
from ibis.backends import BaseBackend

__all__ = ["Engine", "engine"]

_DAY_US = 86_400_000_000


@ibis.udf.scalar.builtin(name="epoch_us")  # type: ignore[untyped-decorator]
def _epoch_us(ts: dt.Timestamp(timezone="UTC")) -> dt.int64:  # type: ignore[valid-type]
    """DuckDB's microseconds since the epoch (a built-in function)."""
    raise NotImplementedError  # a declaration: DuckDB runs the function, Python never does


class Engine:
    """What an Ibis backend can do, and how: the generic behaviour, right for any engine."""

    #: Whether temporary tables exist (and stay out of the warehouse file).
    temporary_tables = False
    #: Whether a table may be written on a background thread while the caller works on.
    background_writes = False

    def __init__(self, con: BaseBackend) -> None:
        self.con = con

    def register(self, name: str, rows: pa.Table) -> ir.Table:
        """Make Arrow ``rows`` joinable with the warehouse's tables, as ``name``; see :meth:`unregister`."""
        self.con.create_table(name, rows, overwrite=True)
        return self.con.table(name)

    def unregister(self, name: str) -> None:
        """Forget rows put in by :meth:`register`."""
        if name in self.con.list_tables():
            self.con.drop_table(name)

    def overwrite(self, name: str, expr: ir.Table) -> None:
        """Rewrite table ``name`` as ``expr``, which may read ``name`` itself."""
        tmp = f"_{name}_next"
        self.con.create_table(tmp, expr, overwrite=True)
        self.con.create_table(name, self.con.table(tmp), overwrite=True)
        self.con.drop_table(tmp)

    def merge(self, name: str, staged: str, keys: Sequence[str], replace_files: Sequence[str] = ()) -> None:
        """Put the rows of table ``staged`` into table ``name``, replacing its rows with the same ``keys``.

        Rows taken from ``replace_files`` (``source_file``) go first. Both tables have the same columns.
        """
        current = self.con.table(name)
        rows = self.con.table(staged).select(current.columns)
        if replace_files:
            current = current.filter(~current.source_file.isin(list(replace_files)))
        self.overwrite(name, current.anti_join(rows, list(keys)).select(rows.columns).union(rows))

    def refresh(self, name: str, expr: ir.Table, keys: Sequence[str]) -> None:
        """Make table ``name`` hold the rows of ``expr`` (which must not read ``name``).

        An engine that can change rows in place writes only the rows of the ``keys`` whose rows are
        new, gone or different, instead of the whole table.
        """
        self.overwrite(name, expr)

    def set_column(self, name: str, keys: Sequence[str], column: str, value: ir.Table) -> None:
        """Set ``column`` of table ``name`` to the same column of ``value``, matching rows by ``keys``.

        ``value`` holds rows of table ``name``, all its columns, with ``column`` computed anew: every
        row, or only those whose value may change (the others keep theirs). ``value`` may read
        ``name``. An engine that can update rows in place changes only those whose value differs,
        instead of writing the table again.
        """
        current = self.con.table(name)
        rows = value.select(current.columns)
        same = [current[k].identical_to(rows[k]) for k in keys]  # a key part may be null
        self.overwrite(name, current.anti_join(rows, same).select(current.columns).union(rows))

    def utc_day(self, ts: ir.TimestampValue) -> ir.DateValue:
        """The UTC calendar day of a UTC timestamp column (the session time zone is UTC)."""
        return ts.date()


class _DuckDB(Engine):
    temporary_tables = True
    background_writes = True

    def register(self, name: str, rows: pa.Table) -> ir.Table:
        # Ibis memtables are avoided on purpose: Ibis 12 keeps every one registered, so a long
        # ingest would hold every chunk it ever loaded in memory.
        self._raw.register(name, rows)
        return self.con.table(name)

    def unregister(self, name: str) -> None:
        self._raw.unregister(name)

    def overwrite(self, name: str, expr: ir.Table) -> None:
        # DuckDB builds the new table under a temporary name before swapping it in; in one
        # transaction, a process killed half-way leaves the old table and no temporary one.
        self._raw.execute("BEGIN TRANSACTION")
        try:
            self.con.create_table(name, expr, overwrite=True)
        except BaseException:
            self._raw.execute("ROLLBACK")
            raise
        self._raw.execute("COMMIT")

    def merge(self, name: str, staged: str, keys: Sequence[str], replace_files: Sequence[str] = ()) -> None:
        # A DELETE of the rows replaced and an INSERT, in one transaction: rewriting the whole table
        # made each load of a sync cost as much as the table's size, however few rows it brought.
        columns = ", ".join(f'"{c}"' for c in self.con.table(name).columns)
        match = " AND ".join(f't."{k}" = s."{k}"' for k in keys)
        self._raw.execute("BEGIN TRANSACTION")
        try:
            if replace_files:
                marks = ", ".join("?" for _ in replace_files)
                self._raw.execute(f'DELETE FROM "{name}" WHERE source_file IN ({marks})', list(replace_files))
            self._raw.execute(f'DELETE FROM "{name}" AS t USING "{staged}" AS s WHERE {match}')
            self._raw.execute(f'INSERT INTO "{name}" ({columns}) SELECT {columns} FROM "{staged}"')
        except BaseException:
            self._raw.execute("ROLLBACK")
            raise
        self._raw.execute("COMMIT")

    def refresh(self, name: str, expr: ir.Table, keys: Sequence[str]) -> None:
        # A derived table (the learning records of a million statements) mostly stays as it was when
        # a sync brings a few rows: counting each row's hash by key, here and in the table, takes
        # about a quarter of the time of writing it again. The keys whose rows are new, gone, different or
        # repeated a different number of times are deleted and written again, in one transaction.
        if expr.schema() != self.con.table(name).schema():  # an older layout: made again from the expression
            self.overwrite(name, expr)
            return
        columns = ", ".join(f'"{c}"' for c in self.con.table(name).columns)
        source = self.con.compile(expr)
        changed, current = f"_{name}_changed", f'"{name}"'
        k = ", ".join(f'"{c}"' for c in keys)
        on = " AND ".join(f'a."{c}" IS NOT DISTINCT FROM b."{c}"' for c in keys)
        picked = ", ".join(f'coalesce(a."{c}", b."{c}") AS "{c}"' for c in keys)

        def counts(rows: str) -> str:
            return f"SELECT {k}, hash({columns}) AS h, count(*) AS n FROM {rows} GROUP BY ALL"

        self._raw.execute(
            f'CREATE OR REPLACE TEMP TABLE "{changed}" AS SELECT DISTINCT {picked} '
            f'FROM ({counts(f"({source})")}) AS a FULL JOIN ({counts(current)}) AS b '
            f"ON {on} AND a.h = b.h WHERE a.n IS DISTINCT FROM b.n"
        )
        match = " AND ".join(f't."{c}" IS NOT DISTINCT FROM c."{c}"' for c in keys)
        self._raw.execute("BEGIN TRANSACTION")
        try:
            self._raw.execute(f'DELETE FROM "{name}" AS t USING "{changed}" AS c WHERE {match}')
            self._raw.execute(f'INSERT INTO "{name}" ({columns}) SELECT {columns} FROM ({source}) AS t '
                              f'SEMI JOIN "{changed}" AS c ON {match}')
        except BaseException:
            self._raw.execute("ROLLBACK")
            raise
        self._raw.execute("COMMIT")
        self._raw.execute(f'DROP TABLE "{changed}"')

    def set_column(self, name: str, keys: Sequence[str], column: str, value: ir.Table) -> None:
        # An UPDATE of the rows that change: rewriting a table of a million statements to flip a
        # few flags took more memory and time than loading it.
        source = self.con.compile(value.select(*keys, column))
        match = " AND ".join(f't."{k}" IS NOT DISTINCT FROM v."{k}"' for k in keys)
        self._raw.execute(
            f'UPDATE "{name}" AS t SET "{column}" = v."{column}" FROM ({source}) AS v '
            f'WHERE {match} AND t."{column}" IS DISTINCT FROM v."{column}"'
        )

    def utc_day(self, ts: ir.TimestampValue) -> ir.DateValue:
        days = (_epoch_us(ts) // _DAY_US).cast("int32")
        return cast(ir.DateValue, ibis.date(1970, 1, 1) + days.as_interval("D"))

    @property
    def _raw(self) -> Any:
        return self.con.con  # the DuckDB connection Ibis wraps


class _Spark(Engine):
    def register(self, name: str, rows: pa.Table) -> ir.Table:
        session = self.con._session  # the SparkSession Ibis wraps
        session.createDataFrame(rows).write.saveAsTable(name, mode="overwrite", format="parquet")
        return self.con.table(name)


_ENGINES: dict[str, type[Engine]] = {"duckdb": _DuckDB, "pyspark": _Spark}


def engine(con: BaseBackend) -> Engine:
    """The adapter for ``con``'s engine."""
    return _ENGINES.get(con.name, Engine)(con)
