"""The command line: exit codes, messages without tracebacks, JSON output, the schema document."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.builders import write
from training_roi.cli import app

runner = CliRunner()


def test_schema_document_is_current():
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    doc = Path(__file__).resolve().parents[1] / "docs" / "warehouse.md"
    assert result.stdout == doc.read_text(encoding="utf-8"), "run `make docs` to regenerate docs/warehouse.md"


def test_missing_folder_is_a_message_not_a_traceback(tmp_path: Path):
    result = runner.invoke(app, ["ingest", str(tmp_path / "nope"), "--db", str(tmp_path / "x.duckdb")])
    assert result.exit_code == 2
    assert "is not a folder" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_unknown_mapping_lists_the_shipped_ones(tmp_path: Path):
    result = runner.invoke(app, ["ingest", str(tmp_path), "--mapping", "hubspot"])
    assert result.exit_code == 2
    assert "salesforce_devorg" in result.stderr


def test_ingest_json_reports_counts(tmp_path: Path, realdata: Path):
    shutil.copytree(realdata / "salesforce_devorg", tmp_path / "org")
    result = runner.invoke(app, ["ingest", str(tmp_path / "org"), "--db", str(tmp_path / "x.duckdb"),
                                 "--mapping", "salesforce_devorg", "--json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    by_source = {s["source"]: s for s in data["ingest"]["sources"]}
    assert by_source["Opportunity"]["rows_loaded"] == 36
    assert data["quality"]["tables"]["crm_opportunity_history"] == 48
    assert any("36 of 36 opportunities (100.0%) have no owner" in w for w in data["quality"]["warnings"])


def test_refused_source_exits_1_after_the_summary(tmp_path: Path):
    write(tmp_path / "crm" / "Opportunity.csv", "Id,Amount\n006000000000001AAA,1\n")
    write(tmp_path / "costs.csv", "program,category,amount,date,note\nX,platform,10,2025-01-01,\n")
    result = runner.invoke(app, ["ingest", str(tmp_path), "--db", str(tmp_path / "x.duckdb")])
    assert result.exit_code == 1
    assert "refused" in result.stdout and "costs" in result.stdout


def test_quality_on_an_empty_warehouse_says_what_to_do(tmp_path: Path):
    result = runner.invoke(app, ["quality", "--db", str(tmp_path / "empty.duckdb")])
    assert result.exit_code == 2
    assert "training-roi ingest" in result.stderr


def test_real_xapi_files_through_a_mapping(tmp_path: Path, realdata: Path):
    mapping = write(tmp_path / "xapi.yaml", 'name: LRS dump\nsources:\n  xapi:\n    file: "**/*.json"\n')
    result = runner.invoke(app, ["ingest", str(realdata / "xapi"), "--db", str(tmp_path / "x.duckdb"),
                                 "--mapping", str(mapping), "--json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    (xapi,) = data["ingest"]["sources"]
    # 37 documents: 24 valid statements, 11 invalid on purpose, 2 cmi5 documents that are not statements.
    assert (xapi["rows_read"], xapi["rows_loaded"], xapi["rows_quarantined"]) == (37, 24, 13)
    assert data["quality"]["tables"]["lms_statement"] == 26  # the Group statement is three rows


def test_a_warehouse_that_does_not_exist_is_refused_not_created(tmp_path: Path):
    missing = tmp_path / "typo.duckdb"
    (tmp_path / "study.yaml").write_text("name: S\nprogram: {activities: [x]}\n", encoding="utf-8")
    for args in (["quality"], ["kpis"], ["report", str(tmp_path / "study.yaml")],
                 ["init-study", str(tmp_path / "s.yaml")]):
        result = runner.invoke(app, [*args, "--db", str(missing)])
        assert result.exit_code == 2, (args, result.output)
        assert f"no warehouse at {missing}" in result.stderr
        assert not missing.exists()


def test_a_warehouse_url_of_an_unknown_engine_is_refused_with_the_known_ones(tmp_path: Path):
    result = runner.invoke(app, ["quality", "--db", "nosuchengine://host/db"])
    assert result.exit_code == 2
    assert "nosuchengine:// is not an engine Ibis knows" in result.stderr and "duckdb://" in result.stderr


def test_an_output_folder_that_is_a_file_is_refused_before_any_work(tmp_path: Path):
    from training_roi.warehouse.connection import connect, ensure_tables

    con = connect(tmp_path / "w.duckdb")
    ensure_tables(con)
    con.disconnect()
    (tmp_path / "study.yaml").write_text("name: S\nprogram: {activities: [x]}\n", encoding="utf-8")
    (tmp_path / "out").write_text("a file", encoding="utf-8")
    result = runner.invoke(app, ["report", str(tmp_path / "study.yaml"), "--db", str(tmp_path / "w.duckdb"),
                                 "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "--out" in result.stderr and "is a file" in result.stderr


def test_version_and_a_stop_by_ctrl_c(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import training_roi
    import training_roi.warehouse.quality as quality
    from training_roi.warehouse.connection import connect, ensure_tables

    shown = runner.invoke(app, ["--version"])
    assert shown.exit_code == 0 and shown.stdout.strip() == f"training-roi {training_roi.__version__}"
    con = connect(tmp_path / "w.duckdb")
    ensure_tables(con)
    con.disconnect()

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(quality, "quality_report", interrupted)
    stopped = runner.invoke(app, ["quality", "--db", str(tmp_path / "w.duckdb")])
    assert stopped.exit_code == 130
    assert stopped.stderr.strip() == "stopped (Ctrl-C): nothing half-done was kept"
