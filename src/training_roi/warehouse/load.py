"""Loading batches into canonical tables: idempotent, by record key, through Ibis only.

A batch replaces the records it carries (same key) and adds new ones; records it does not carry
stay. Loading the same batch twice therefore leaves the same table, and a newer export updates
changed records without duplicating them. Tables are rewritten as a whole from an Ibis expression
(old rows not in the batch ∪ the batch), which every Ibis engine can run: no MERGE dialects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir
import pyarrow as pa
from ibis.backends import BaseBackend

from training_roi.ingest.batch import Batch, QuarantineRow, quarantine_table
from training_roi.warehouse.schema import table

__all__ = ["LoadCounts", "load_batch", "refresh_voided", "replace_quarantine", "replace_table", "stage"]


@dataclass(frozen=True)
class LoadCounts:
    """What a load did to a table: records new to it and records replaced."""

    new: int
    replaced: int


def replace_table(con: BaseBackend, name: str, expr: ir.Table) -> None:
    """Rewrite table ``name`` as ``expr`` (which may read ``name`` itself).

    DuckDB builds the new table under a temporary name before swapping it in; engines that
    cannot overwrite a table they are reading (Spark) get the result materialised first.
    """
    if con.name == "duckdb":
        con.create_table(name, expr, overwrite=True)
        return
    tmp = f"_{name}_next"
    con.create_table(tmp, expr, overwrite=True)
    con.create_table(name, con.table(tmp), overwrite=True)
    con.drop_table(tmp)


def stage(con: BaseBackend, name: str, rows: pa.Table) -> ir.Table:
    """Make Arrow ``rows`` joinable with the warehouse's tables, as ``name``.

    Spark gets the Arrow table directly: Ibis would pass it through pandas, where a missing
    string becomes the text "NaN" under pandas 3, and Spark would store that instead of null.
    """
    if con.name == "duckdb":
        return ibis.memtable(rows)  # DuckDB reads the Arrow buffers in place: no copy
    if con.name == "pyspark":
        session = con._session  # the SparkSession the Ibis backend wraps
        session.createDataFrame(rows).write.saveAsTable(name, mode="overwrite", format="parquet")
    else:
        con.create_table(name, rows, overwrite=True)
    return con.table(name)


def _is_empty(t: ir.Table) -> bool:
    return t.limit(1).count().to_pyarrow().as_py() == 0


def _drop_staged(con: BaseBackend, name: str) -> None:
    if name in con.list_tables():
        con.drop_table(name)


def load_batch(con: BaseBackend, batch: Batch, *, replace_files: Sequence[str] = ()) -> LoadCounts:
    """Load a batch into its canonical table by key; return how many records were new.

    ``replace_files``: rows previously loaded from these files are removed first (for reports
    without record ids, where re-reading a file is the truth about that file).
    """
    spec = table(batch.table)
    keys = list(spec.key)
    current = con.table(spec.name)
    if _is_empty(current):  # a first load: nothing to replace, append as is
        con.insert(spec.name, batch.rows)
        return LoadCounts(new=batch.rows.num_rows, replaced=0)
    staged = stage(con, f"_{spec.name}_batch", batch.rows)
    matched = current.semi_join(staged, keys).count().to_pyarrow().as_py()
    if replace_files:
        current = current.filter(~current.source_file.isin(list(replace_files)))
    kept = current.anti_join(staged, keys).select(spec.names)
    replace_table(con, spec.name, kept.union(staged.select(spec.names)))
    _drop_staged(con, f"_{spec.name}_batch")
    return LoadCounts(new=batch.rows.num_rows - int(matched), replaced=int(matched))


def replace_quarantine(con: BaseBackend, source: str, files: Sequence[str], rows: list[QuarantineRow]) -> None:
    """Replace the quarantine rows of ``source`` for ``files`` with ``rows``."""
    current = con.table("quarantine")
    kept = current.filter(~((current.source == source) & current.source_file.isin(list(files) or [""])))
    new = quarantine_table(rows)
    if new.num_rows:
        staged = stage(con, "_quarantine_batch", new)
        replace_table(con, "quarantine", kept.union(staged.select(table("quarantine").names)))
        _drop_staged(con, "_quarantine_batch")
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
    marked = joined.mutate(
        is_voided=(joined.target_id.notnull() & joined.voided_statement_id.isnull()).fill_null(False)
    ).select(table("lms_statement").names)
    replace_table(con, "lms_statement", marked)
    final = con.table("lms_statement")
    return int(final.filter(final.is_voided).count().to_pyarrow().as_py())
