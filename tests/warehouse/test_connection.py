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
