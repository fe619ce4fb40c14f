"""Opening the warehouse: one DuckDB file by default, or any Ibis backend.

Stages receive an Ibis backend and use only Ibis expressions on it, so the same load, link,
measurement and attribution code runs on DuckDB on a laptop and on Spark (or another Ibis engine)
for an org that outgrows one machine; on PySpark in local mode the default study's result.json is
tested to be DuckDB's.
"""

from __future__ import annotations

import time
from importlib.metadata import entry_points
from pathlib import Path

import ibis
import ibis.expr.types as ir
import pyarrow as pa
from ibis.backends import BaseBackend

from training_roi.errors import WarehouseError
from training_roi.warehouse.engine import engine
from training_roi.warehouse.schema import TABLES
from training_roi.warehouse.target import DEFAULT_DB, duckdb_file

__all__ = ["DEFAULT_DB", "connect", "count_write", "ensure_tables", "require_lms_data", "require_tables", "row_count",
           "table_writes", "utc_day"]

LOCK_WAIT_SECONDS = 15.0
"""How long opening a DuckDB file waits while another process holds its lock — the server copying
the warehouse for its snapshot takes a few seconds — before it gives up and says who holds it."""


def connect(target: str | Path | BaseBackend = DEFAULT_DB, *, create: bool = True) -> BaseBackend:
    """Open the warehouse.

    Parameters
    ----------
    target
        A path to a DuckDB file, an Ibis connection URL such as ``"duckdb://roi.duckdb"`` or
        ``"postgres://user@host/db"`` (its Ibis backend installed), or an open Ibis backend (returned
        as is; this is how a Spark session is used: ``connect(ibis.pyspark.connect(spark))``).
    create
        Whether a DuckDB file that does not exist yet is created (ingest); commands that read a
        warehouse pass False, so a mistyped path is an error rather than an empty warehouse.

    Raises
    ------
    WarehouseError
        The file is missing (with ``create=False``), the URL names an engine Ibis does not know or
        whose backend is not installed, or the engine refuses the connection.
    """
    if isinstance(target, BaseBackend):
        return target
    text = str(target)
    if "://" in text:
        scheme = text.split("://", 1)[0].lower()
        known = sorted(e.name for e in entry_points(group="ibis.backends"))
        if scheme not in known:
            raise WarehouseError(f"cannot open the warehouse {text}: {scheme}:// is not an engine Ibis knows "
                                 f"(a DuckDB file path, or a URL of {', '.join(f'{k}://' for k in known)})")
    # A duckdb:// URL's file is its path, without the query (``?read_only=true``).
    file = duckdb_file(text)
    if not create and file not in (None, "", ":memory:") and not Path(str(file)).is_file():
        raise WarehouseError(f"no warehouse at {file}: run `training-roi ingest DATA_DIR --db {text}` first, "
                             "or name the warehouse with --db")
    try:
        if "://" in text:
            return ibis.connect(text)
        path = Path(text)
        if path.parent != Path(""):
            path.parent.mkdir(parents=True, exist_ok=True)
        con = _open_duckdb(path)
        # Row order carries no meaning in the warehouse (every read sorts or aggregates), and
        # letting DuckDB drop it makes large loads faster and lighter.
        con.raw_sql("SET preserve_insertion_order = false")
        # DuckDB draws a progress bar on standard output for a query of more than two seconds: it
        # broke the JSON a command prints with --json (a sync's link over a million statements).
        con.raw_sql("SET enable_progress_bar = false")
        return con
    except Exception as exc:  # the engine's own errors vary; the user needs the target named
        raise WarehouseError(f"cannot open the warehouse {text}: {exc}") from exc


def _open_duckdb(path: Path, wait: float | None = None) -> BaseBackend:
    """Open a DuckDB file, waiting up to ``wait`` seconds (default :data:`LOCK_WAIT_SECONDS`) for a lock to go."""
    give_up = time.monotonic() + (LOCK_WAIT_SECONDS if wait is None else wait)
    while True:
        try:
            return ibis.duckdb.connect(str(path))
        except Exception as exc:
            if "Could not set lock" not in str(exc) or time.monotonic() >= give_up:
                raise
            time.sleep(0.25)


def ensure_tables(con: BaseBackend) -> None:
    """Create every canonical table that does not exist yet, empty, with its schema.

    A table made again (one dropped by hand) counts as written: the sources loaded into it before
    are read again by the next ingest.
    """
    present = set(con.list_tables())
    made = [t.name for t in TABLES.values() if t.name not in present]
    for name in made:
        con.create_table(name, schema=TABLES[name].schema)
    for name in made:
        count_write(con, name)


def count_write(con: BaseBackend, name: str) -> None:
    """Count a write of table ``name`` as it begins (``table_write``; the warehouse's own bookkeeping is not counted).

    An ingest reads a source's unchanged files again only when a table its last load wrote or
    read has been written since (``source_load``): every write of a table (the loads of
    :mod:`training_roi.warehouse.load`, a table made again here) counts first, so one stopped
    half-way still counts.
    """
    spec = TABLES.get(name)
    if spec is None or spec.layer == "audit" or "table_write" not in con.list_tables():
        return
    t = con.table("table_write")
    now = t.filter(t.name == name).writes.max().to_pyarrow().as_py()
    e = engine(con)
    e.register("_table_write", pa.table({"name": [name], "writes": pa.array([(now or 0) + 1], pa.int64())}))
    try:
        e.merge("table_write", "_table_write", ["name"])
    finally:
        e.unregister("_table_write")


def table_writes(con: BaseBackend) -> dict[str, int]:
    """Each counted table's writes so far (:func:`count_write`); a table never written is absent."""
    if "table_write" not in con.list_tables():
        return {}
    rows = con.table("table_write").to_pyarrow().to_pylist()
    return {r["name"]: int(r["writes"]) for r in rows}


def require_tables(con: BaseBackend, *names: str) -> None:
    """Fail with a clear message when a stage's input tables are missing."""
    missing = sorted(set(names) - set(con.list_tables()))
    if missing:
        raise WarehouseError(
            f"the warehouse has no {', '.join(missing)} table: run `training-roi ingest DATA_DIR` first"
        )


_LMS_TABLES = ("lms_statement", "lms_completion", "learning_record")
_LMS_SOURCES = ("xapi", "completions", "learners")


def require_lms_data(con: BaseBackend) -> None:
    """Fail with one sentence when no LMS data was loaded: a training study has nothing to measure.

    A warehouse holding only CRM data (or whose LMS rows were all quarantined) would otherwise fail
    later on the first thing that needs learners (no completions, no participant time, no cost),
    none of which names the cause.
    """
    tables = set(con.list_tables())
    if any(t in tables and row_count(con.table(t)) for t in _LMS_TABLES):
        return
    quarantined = 0
    if "quarantine" in tables:
        q = con.table("quarantine")
        quarantined = row_count(q.filter(q.source.isin(list(_LMS_SOURCES))))
    held = (f" ({quarantined:,} LMS rows were quarantined: `training-roi quality` says why)" if quarantined
            else "")
    raise WarehouseError(
        f"no LMS data was loaded{held}: the warehouse holds no xAPI statements and no completion report, so "
        "nobody can be found trained; put the LMS exports in the data folder (xAPI statements as lms/*.jsonl or "
        "lms/*.json, the completion report as lms/completions.csv) and run `training-roi ingest DATA_DIR --db …`"
    )


def row_count(expr: ir.Table) -> int:
    """The number of rows of a table expression, executed in the engine."""
    return int(expr.count().to_pyarrow().as_py())


def utc_day(con: BaseBackend, ts: ir.TimestampValue) -> ir.DateValue:
    """The UTC calendar day of a UTC timestamp column, in the engine (:meth:`Engine.utc_day`)."""
    return engine(con).utc_day(ts)
