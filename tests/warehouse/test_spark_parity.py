"""The same load and link code on DuckDB and on Spark (PySpark local mode, through Ibis).

Spark is the scale-out engine of the design; this proves the stages use nothing DuckDB-specific:
ingest + link of a small simulated org give identical canonical tables on both engines.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import ibis
import pytest

from tests.builders import write_small_org
from training_roi.ingest.folder import ingest_folder
from training_roi.linking import link
from training_roi.warehouse.connection import connect
from training_roi.warehouse.schema import TABLES

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def spark_con(tmp_path_factory: pytest.TempPathFactory):
    from pyspark.sql import SparkSession

    where = tmp_path_factory.mktemp("spark")
    session = (
        SparkSession.builder.master("local[2]")
        .appName("training-roi-parity")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.warehouse.dir", str(where / "warehouse"))
        .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={where}")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.driver.memory", "2g")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield ibis.pyspark.connect(session)
    session.stop()


@pytest.fixture(scope="module")
def small_org(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from training_roi.simulate import simulate

    out = tmp_path_factory.mktemp("org")
    simulate(out, reps=25, months=12, seed=11)
    return out


def _normalise(value: object) -> object:
    if isinstance(value, datetime):  # the same instant, whichever way the engine labels UTC
        return (value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, Decimal):
        return str(value.quantize(Decimal("0.01")))
    if isinstance(value, float):
        return round(value, 9)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _snapshot(con, name: str) -> list[tuple]:
    spec = TABLES[name]
    rows = con.table(name).select(spec.names).to_pyarrow().to_pylist()
    return sorted((tuple(_normalise(r[c]) for c in spec.names) for r in rows), key=repr)


def _compare(folder: Path, spark_con, tmp_path: Path) -> int:
    for name in spark_con.list_tables():  # the session is shared: start from an empty warehouse
        spark_con.drop_table(name)
    duck = connect(tmp_path / "parity.duckdb")
    duck_info = ingest_folder(folder, duck)
    spark_info = ingest_folder(folder, spark_con)
    assert duck_info.ok and spark_info.ok
    assert [(s.source, s.rows_loaded, s.rows_quarantined) for s in duck_info.sources] == [
        (s.source, s.rows_loaded, s.rows_quarantined) for s in spark_info.sources
    ]
    duck_link, spark_link = link(duck), link(spark_con)
    assert duck_link.asdict() == spark_link.asdict()
    compared = 0
    for name, spec in TABLES.items():
        if spec.layer == "audit" and name != "quarantine":
            continue
        duck_rows, spark_rows = _snapshot(duck, name), _snapshot(spark_con, name)
        differences = [
            (col, d[i], s[i])
            for d, s in zip(duck_rows, spark_rows, strict=False)
            for i, col in enumerate(spec.names)
            if d[i] != s[i]
        ]
        assert len(duck_rows) == len(spark_rows), f"{name}: {len(duck_rows)} rows on DuckDB, {len(spark_rows)} on Spark"
        assert not differences, f"{name} differs between DuckDB and Spark: {differences[:5]}"
        compared += len(duck_rows)
    return compared


def test_hand_made_org_links_identically(spark_con, tmp_path: Path):
    assert _compare(write_small_org(tmp_path / "org"), spark_con, tmp_path) > 20


def test_simulated_org_loads_and_links_identically(small_org: Path, spark_con, tmp_path: Path):
    assert _compare(small_org, spark_con, tmp_path) > 1000  # small, but every table has rows
