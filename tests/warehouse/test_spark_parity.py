"""The same pipeline on DuckDB and on Spark (PySpark local mode, through Ibis).

Spark is the scale-out engine of the design; this proves the stages use nothing DuckDB-specific:
ingest + link of a small simulated org give identical canonical tables on both engines, and the
default study answered from each warehouse (measure, isolate, value and attribute) gives the same
``result.json``.
"""

from __future__ import annotations

import importlib
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import ibis
import pytest
from ibis.backends import BaseBackend

from tests.builders import write_small_org
from training_roi.evaluation import Evaluation, evaluate
from training_roi.ingest.folder import ingest_folder
from training_roi.linking import link
from training_roi.present.result_json import result_document
from training_roi.study import Study
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
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.driver.memory", "2g")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield ibis.pyspark.connect(session)
    session.stop()


@pytest.fixture(scope="module")
def small_org(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About the smallest simulated org whose default study has every stage's figures.

    It has a trained and a comparison group and, with the training effect tripled, an established
    effect on revenue.
    """
    from training_roi.simulate import simulate

    out = tmp_path_factory.mktemp("org")
    simulate(out, reps=40, months=12, seed=11, effect_scale=3.0)
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


def _load(folder: Path, spark_con, tmp_path: Path) -> BaseBackend:
    """Ingest and link ``folder`` into a new DuckDB file and into the (emptied) Spark session; the DuckDB one."""
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
    return duck


def _compare(duck: BaseBackend, spark_con) -> int:
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
    assert _compare(_load(write_small_org(tmp_path / "org"), spark_con, tmp_path), spark_con) > 20


@pytest.fixture(scope="module")
def simulated(small_org: Path, spark_con, tmp_path_factory: pytest.TempPathFactory) -> BaseBackend:
    """The small org ingested and linked on both engines (once: Spark takes about a minute); the DuckDB warehouse.

    Set up after the hand-made org's test, which empties the shared Spark session first.
    """
    return _load(small_org, spark_con, tmp_path_factory.mktemp("simulated"))


def test_simulated_org_loads_and_links_identically(simulated: BaseBackend, spark_con):
    assert _compare(simulated, spark_con) > 1000  # small, but every table has rows


def test_result_json_identical_on_spark(simulated: BaseBackend, spark_con, small_org: Path,
                                       monkeypatch: pytest.MonkeyPatch):
    """The whole pipeline on Spark — measure, isolate, value, attribute — writes DuckDB's result.json.

    DuckDB's answer is the independent figure: other tests tie it to hand-worked and simulated truths.
    No field is left out: the document names no engine and counts no engine-specific rows.
    """
    course = json.loads((small_org / "truth.json").read_text())["program"]["course_activity_id"]
    study = Study.model_validate({"name": "Sales Excellence", "program": {"activities": [course]}})
    assert study.attribution.enabled  # the default: attribution runs too
    duck_answer, spark_answer = evaluate(simulated, study), evaluate(spark_con, study)
    assert isinstance(duck_answer, Evaluation) and isinstance(spark_answer, Evaluation)
    duck_doc, spark_doc = json.loads(result_document(duck_answer)), json.loads(result_document(spark_answer))
    assert duck_doc["established"] and duck_doc["attribution"]["by_channel"]  # every stage has figures
    assert duck_doc["headline"]["comparison_units"] > 0
    # benchmarks/spark.py's comparison: floats to 12 significant digits (Spark adds the few float sums it
    # does in the engine partition by partition), money and every other field exactly.
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2] / "benchmarks"))
    bench = importlib.import_module("spark")
    differences = bench.differences(bench.plain_floats(duck_doc), bench.plain_floats(spark_doc))
    assert not differences, f"{len(differences)} fields differ between DuckDB and Spark: {differences[:10]}"
