"""The same load and link code on DuckDB and on Spark (PySpark local mode, through Ibis).

Spark is the scale-out engine of the design; this proves the stages use nothing DuckDB-specific:
ingest + link of a small simulated org give identical canonical tables on both engines.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import ibis
import pytest

from training_roi.ingest.folder import ingest_folder
from training_roi.link import link
from training_roi.simulate import simulate
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
    out = tmp_path_factory.mktemp("org")
    simulate(out, reps=25, months=12, seed=11)
    return out


def _normalise(value: object) -> object:
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


def test_load_and_link_give_identical_tables(small_org: Path, spark_con, tmp_path: Path):
    duck = connect(tmp_path / "parity.duckdb")
    duck_info = ingest_folder(small_org, duck)
    spark_info = ingest_folder(small_org, spark_con)
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
        duck_rows = _snapshot(duck, name)
        assert duck_rows == _snapshot(spark_con, name), f"{name} differs between DuckDB and Spark"
        compared += len(duck_rows)
    assert compared > 1000  # the org is small but not empty
