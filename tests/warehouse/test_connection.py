"""Opening the warehouse and the engine-specific helpers it confines."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from training_roi.errors import WarehouseError
from training_roi.warehouse.connection import connect, require_tables, utc_day


def test_utc_day_is_the_calendar_day_of_the_utc_instant(tmp_path: Path):
    con = connect(tmp_path / "w.duckdb")
    instants = [datetime(2024, 2, 29, 23, 59, 59, 999_999, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC),
                datetime(1969, 12, 31, 12, tzinfo=UTC), datetime(2025, 3, 30, 1, 30, tzinfo=UTC)]
    t = con.create_table("t", pa.table({"ts": pa.array(instants, pa.timestamp("us", tz="UTC"))}))
    days = t.select(d=utc_day(con, t.ts)).to_pyarrow()["d"].to_pylist()
    assert days == [i.date() for i in instants]
    assert days == t.select(d=t.ts.date()).to_pyarrow()["d"].to_pylist()  # the engine's own cast agrees


def test_missing_tables_are_named_with_the_command_that_makes_them(tmp_path: Path):
    con = connect(tmp_path / "w.duckdb")
    with pytest.raises(WarehouseError, match="no crm_opportunity table: run `training-roi ingest"):
        require_tables(con, "crm_opportunity")


def test_voided_flags_updated_in_place_equal_a_rewrite_of_the_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """DuckDB updates only the flags that change; the generic engine rewrites the table: the same result."""
    from training_roi.warehouse import engine as engines
    from training_roi.warehouse.connection import ensure_tables
    from training_roi.warehouse.load import refresh_voided
    from training_roi.warehouse.schema import table

    schema = table("lms_statement").schema.to_pyarrow()

    def row(sid: str, actor: str | None, voids: str | None, flag: bool) -> dict[str, object]:
        return {**dict.fromkeys(schema.names), "statement_id": sid, "actor_key": actor,
                "voided_statement_id": voids, "is_voided": flag, "source_file": "s.jsonl", "source_line": 1}

    rows = [
        row("a", "mbox:x", None, False),  # voided by v1 (both learners of a group statement)
        row("a", "mbox:y", None, False),
        row("b", "mbox:x", None, True),  # marked voided, but nothing voids it (any more)
        row("v1", "mbox:z", "a", False),
        row("v2", "mbox:z", "v1", False),  # a voiding statement cannot be voided
        row("c", "mbox:x", None, False),
        row("n", None, None, False),  # a key part null: updated in place, not added again
        row("v3", "mbox:z", "n", False),
    ]
    results = []
    for generic in (False, True):
        con = connect(tmp_path / f"w{generic}.duckdb")
        ensure_tables(con)
        con.insert("lms_statement", pa.Table.from_pylist(rows, schema=schema))
        if generic:
            monkeypatch.setattr(engines, "_ENGINES", {})
        assert refresh_voided(con) == 3
        t = con.table("lms_statement").order_by(["statement_id", "actor_key"]).to_pyarrow()
        results.append(t)
    assert results[0].equals(results[1])
    assert dict(zip(zip(results[0]["statement_id"].to_pylist(), results[0]["actor_key"].to_pylist(), strict=True),
                    results[0]["is_voided"].to_pylist(), strict=True)) == {
        ("a", "mbox:x"): True, ("a", "mbox:y"): True, ("b", "mbox:x"): False, ("c", "mbox:x"): False,
        ("v1", "mbox:z"): False, ("v2", "mbox:z"): False, ("n", None): True, ("v3", "mbox:z"): False}


def test_a_table_refreshed_in_place_equals_one_written_again_and_keeps_the_rows_that_did_not_change(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Only the rows that changed are written on DuckDB; the same rows as the generic engine's rewrite.

    DuckDB writes only the rows whose key is new, gone or whose values differ, and leaves the
    untouched rows where they were; the generic engine writes the whole table.
    """
    from training_roi.warehouse import engine as engines
    from training_roi.warehouse.connection import ensure_tables
    from training_roi.warehouse.load import refresh_table
    from training_roi.warehouse.schema import table

    schema = table("learner_identity").schema.to_pyarrow()

    def row(key: str | None, user: str | None, status: str = "linked") -> dict[str, object]:
        return {**dict.fromkeys(schema.names), "learner_key": key, "crm_user_id": user, "status": status}

    before = [row("mbox:a", "005A"), row("mbox:b", "005B"), row("mbox:c", None, "unlinked"),
              row("mbox:d", "005D"), row(None, None, "unlinked")]
    after = [row("mbox:a", "005A"),  # unchanged
             row("mbox:b", "005X"),  # a value changed
             row("mbox:c", None, "unlinked"),  # unchanged, with nulls
             row("mbox:e", "005E"),  # new ("mbox:d" is gone)
             row(None, None, "ambiguous")]  # a null key whose row changed
    expected = pa.Table.from_pylist(sorted(after, key=lambda r: (r["learner_key"] is None, r["learner_key"] or "")),
                                    schema=schema)
    for generic in (False, True):
        con = connect(tmp_path / f"w{generic}.duckdb")
        ensure_tables(con)
        con.insert("learner_identity", pa.Table.from_pylist(before, schema=schema))
        kept = dict(con.con.execute("SELECT learner_key, rowid FROM learner_identity").fetchall())
        if generic:
            monkeypatch.setattr(engines, "_ENGINES", {})
        refresh_table(con, "learner_identity", con.create_table("_next", pa.Table.from_pylist(after, schema=schema)))
        assert con.table("learner_identity").order_by("learner_key").to_pyarrow().equals(expected)
        if not generic:  # the rows that did not change were not written again; the changed one was
            now = dict(con.con.execute("SELECT learner_key, rowid FROM learner_identity").fetchall())
            assert [now[k] for k in ("mbox:a", "mbox:c")] == [kept[k] for k in ("mbox:a", "mbox:c")]
            assert now["mbox:b"] >= len(before)
        # A row repeated a different number of times, and rows under a null key, come out as written.
        repeated = [row("mbox:a", "005A"), row("mbox:a", "005A"), row(None, None), row(None, None)]
        refresh_table(con, "learner_identity", con.create_table("_again", pa.Table.from_pylist(
            [*repeated, row("mbox:c", None, "unlinked")], schema=schema), overwrite=True))
        refresh_table(con, "learner_identity", con.create_table("_again", pa.Table.from_pylist(
            repeated[1:3], schema=schema), overwrite=True))
        assert sorted(map(str, con.table("learner_identity").to_pyarrow().to_pylist())) == sorted(
            map(str, repeated[1:3]))
        # A table of an older layout (a column fewer) is made again in the schema's.
        con.con.execute("ALTER TABLE learner_identity DROP COLUMN detail")
        refresh_table(con, "learner_identity", con.create_table("_again", pa.Table.from_pylist(
            after, schema=schema), overwrite=True))
        assert con.table("learner_identity").order_by("learner_key").to_pyarrow().equals(expected)


def test_a_warehouse_another_process_holds_is_waited_for_then_opened(tmp_path: Path, monkeypatch) -> None:
    """The server copies the warehouse under a shared lock for a moment: a load that starts then waits, not fails."""
    import subprocess
    import sys
    import time

    import duckdb

    import training_roi.warehouse.connection as connection

    db = tmp_path / "roi.duckdb"
    duckdb.connect(str(db)).close()
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time\n"
                               f"con = duckdb.connect({str(db)!r}, read_only=True)\n"
                               "print('held', flush=True)\ntime.sleep(1.5)\ncon.close()\n"],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    start = time.monotonic()
    con = connection.connect(db)
    waited = time.monotonic() - start
    holder.wait(timeout=30)
    assert 0.5 < waited < connection.LOCK_WAIT_SECONDS
    assert con.list_tables() == []
    # Held longer than the wait: the error names the lock, after the wait.
    monkeypatch.setattr(connection, "LOCK_WAIT_SECONDS", 0.5)
    del con
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, time\n"
                               f"con = duckdb.connect({str(db)!r}, read_only=True)\n"
                               "print('held', flush=True)\ntime.sleep(5)\n"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(WarehouseError, match="lock"):
            connection.connect(db)
    finally:
        holder.kill()
        holder.wait()
