"""The command line: exit codes, messages without tracebacks, JSON output, the schema document."""

from __future__ import annotations

import json
import os
import re
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
    assert stopped.stderr.strip() == "stopped (Ctrl-C): the warehouse was not changed and no file was written"


_STUDY = "name: S\nprogram: {activities: [x]}\n"


@pytest.mark.parametrize("args", [
    ["quality"], ["kpis"], ["link"], ["report", "study.yaml"], ["portfolio", "study.yaml"],
    ["attribute", "study.yaml"], ["init-study", "s.yaml"], ["design", "plan.csv"],
])
@pytest.mark.parametrize("url", [False, True])
def test_every_command_that_reads_refuses_a_missing_warehouse_and_creates_none(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], url: bool):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "study.yaml").write_text(_STUDY, encoding="utf-8")
    missing = tmp_path / "typo.duckdb"
    result = runner.invoke(app, [*args, "--db", f"duckdb://{missing}" if url else str(missing)])
    assert result.exit_code == 2, result.output
    assert f"no warehouse at {missing}" in result.stderr and "training-roi ingest DATA_DIR --db" in result.stderr
    assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study.yaml"]  # no warehouse, no output file


@pytest.fixture
def empty_warehouse(tmp_path: Path) -> Path:
    from training_roi.warehouse.connection import connect, ensure_tables

    con = connect(tmp_path / "w.duckdb")
    ensure_tables(con)
    con.disconnect()
    (tmp_path / "study.yaml").write_text(_STUDY, encoding="utf-8")
    return tmp_path / "w.duckdb"


@pytest.mark.parametrize("command", ["report", "portfolio", "attribute"])
def test_an_out_folder_under_a_file_is_refused_before_the_evaluation(
        tmp_path: Path, empty_warehouse: Path, monkeypatch: pytest.MonkeyPatch, command: str):
    import training_roi.evaluation as evaluation

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the evaluation ran")

    for name in ("evaluate", "evaluate_portfolio", "evaluate_attribution"):
        monkeypatch.setattr(evaluation, name, never)
    (tmp_path / "taken").write_text("a file", encoding="utf-8")
    for out, says in ((tmp_path / "taken", "is a file, not a folder"),
                      (tmp_path / "taken" / "sub", f"cannot be created: {tmp_path / 'taken'} is a file")):
        result = runner.invoke(app, [command, str(tmp_path / "study.yaml"), "--db", str(empty_warehouse),
                                     "--out", str(out)])
        assert result.exit_code == 2, result.output
        assert result.stderr.strip() == f"error: --out {out}: {says}"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs a folder its user cannot write")
def test_an_out_folder_that_cannot_be_written_is_refused(tmp_path: Path, empty_warehouse: Path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        result = runner.invoke(app, ["report", str(tmp_path / "study.yaml"), "--db", str(empty_warehouse),
                                     "--out", str(locked / "answer")])
    finally:
        locked.chmod(0o700)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: --out {locked / 'answer'}: cannot be created in {locked}")
    assert not (locked / "answer").exists()


def test_file_outputs_that_are_folders_are_refused_before_any_work(tmp_path: Path, empty_warehouse: Path):
    (tmp_path / "dir.csv").mkdir()
    kpis = runner.invoke(app, ["kpis", "--db", str(empty_warehouse), "--csv", str(tmp_path / "dir.csv")])
    assert kpis.exit_code == 2 and f"--csv {tmp_path / 'dir.csv'}: is a folder, not a file" in kpis.stderr
    design = runner.invoke(app, ["design", str(tmp_path / "dir.csv"), "--db", str(empty_warehouse)])
    assert design.exit_code == 2 and "ASSIGNMENT" in design.stderr and "is a folder" in design.stderr


def _org(tmp_path: Path, seed: int) -> Path:
    from training_roi.simulate import simulate

    simulate(tmp_path / f"org{seed}", reps=12, months=6, seed=seed)
    return tmp_path / f"org{seed}"


def _counts(db: Path) -> dict[str, int]:
    from training_roi.warehouse.connection import connect, row_count

    con = connect(db, create=False)
    counts = {t: row_count(con.table(t)) for t in con.list_tables()}
    con.disconnect()
    return counts


def test_ctrl_c_during_ingest_leaves_the_source_being_read_as_it_was(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch):
    import training_roi.ingest.folder as folder

    db = tmp_path / "w.duckdb"
    first, second = _org(tmp_path, 1), _org(tmp_path, 2)
    assert runner.invoke(app, ["ingest", str(first), "--db", str(db)]).exit_code == 0
    before = _counts(db)
    real = folder.split_duplicates

    def stop_in_opportunities(*args: object, **kwargs: object) -> object:
        if args[2] == "Opportunity":  # its rows are staged: the stop comes part-way through the source
            raise KeyboardInterrupt
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(folder, "split_duplicates", stop_in_opportunities)
    stopped = runner.invoke(app, ["ingest", str(second), "--db", str(db)])
    assert stopped.exit_code == 130
    last = stopped.stderr.splitlines()[-1]
    assert last.startswith("stopped (Ctrl-C): the sources read in full before the stop are loaded")
    after = _counts(db)
    assert after["crm_opportunity"] == before["crm_opportunity"]
    assert after["crm_user"] > before["crm_user"]  # the second org's users, read in full before the stop
    # Into an empty warehouse the rows go straight into the table; the stop empties it again.
    fresh = tmp_path / "fresh.duckdb"
    assert runner.invoke(app, ["ingest", str(second), "--db", str(fresh)]).exit_code == 130
    assert _counts(fresh)["crm_opportunity"] == 0


def test_ctrl_c_while_writing_the_answer_says_the_files_may_be_incomplete(
        tmp_path: Path, empty_warehouse: Path, monkeypatch: pytest.MonkeyPatch):
    import training_roi.evaluation as evaluation
    import training_roi.present.answer as answer

    monkeypatch.setattr(evaluation, "evaluate", lambda *a, **k: object())

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(answer, "write_answer", interrupted)
    result = runner.invoke(app, ["report", str(tmp_path / "study.yaml"), "--db", str(empty_warehouse),
                                 "--out", str(tmp_path / "answer")])
    assert result.exit_code == 130
    assert result.stderr.splitlines()[-1] == (f"stopped (Ctrl-C) while writing into {tmp_path / 'answer'}: the "
                                              "warehouse was not changed; the files there may be incomplete")


def _numbers(text: str) -> list[str]:
    return re.findall(r"[$−+-]?\d[\d,]*(?:\.\d+)?%?", text)


def test_at_80_columns_every_number_is_printed_in_full(tmp_path: Path):
    # The same tables at 200 columns and at 80: the same figures, none cut, no line wider than 80.
    org = _org(tmp_path, 3)
    db = tmp_path / "w.duckdb"
    assert runner.invoke(app, ["ingest", str(org), "--db", str(db)]).exit_code == 0
    for args in (["kpis", "--total"], ["kpis", "--months", "1"], ["quality"]):
        wide = runner.invoke(app, [*args, "--db", str(db)], env={"COLUMNS": "200"})
        narrow = runner.invoke(app, [*args, "--db", str(db)], env={"COLUMNS": "80"})
        assert wide.exit_code == narrow.exit_code == 0, narrow.output
        assert max(len(line) for line in narrow.stdout.splitlines()) <= 80
        assert max(len(line) for line in wide.stdout.splitlines()) > 80  # the wide one really was wider
        assert "…" not in narrow.stdout
        # Every figure of the wide table is printed whole in the narrow one (whose list layout may repeat
        # the month headers): a figure cut ("339,2…") would be missing.
        assert set(_numbers(wide.stdout)) <= set(_numbers(narrow.stdout)), args


def test_at_80_columns_the_monthly_kpis_show_the_latest_months_that_fit(tmp_path: Path):
    org = _org(tmp_path, 4)
    db = tmp_path / "w.duckdb"
    assert runner.invoke(app, ["ingest", str(org), "--db", str(db)]).exit_code == 0
    narrow = runner.invoke(app, ["kpis", "--db", str(db), "--months", "6"], env={"COLUMNS": "80"})
    assert narrow.exit_code == 0
    assert max(len(line) for line in narrow.stdout.splitlines()) <= 80 and "…" not in narrow.stdout
    assert "earlier months not shown at this terminal width" in " ".join(narrow.stdout.split())


def test_a_duckdb_url_with_a_query_opens_the_warehouse_it_names(tmp_path: Path):
    from training_roi.warehouse.connection import connect, ensure_tables

    con = connect(tmp_path / "w.duckdb")
    ensure_tables(con)
    con.disconnect()
    result = runner.invoke(app, ["quality", "--db", f"duckdb://{tmp_path / 'w.duckdb'}?read_only=true", "--json"])
    assert result.exit_code == 0, result.output
    missing = runner.invoke(app, ["quality", "--db", f"duckdb://{tmp_path / 'typo.duckdb'}?read_only=true"])
    assert missing.exit_code == 2 and f"no warehouse at {tmp_path / 'typo.duckdb'}:" in missing.stderr


def test_a_message_quoting_brackets_is_printed_whole(tmp_path: Path, empty_warehouse: Path):
    # PyYAML's message quotes the line it stopped at: "name: [unclosed", a caret, then what it expected.
    study = tmp_path / "bad.yaml"
    study.write_text("name: [unclosed\n", encoding="utf-8")
    result = runner.invoke(app, ["report", str(study), "--db", str(empty_warehouse), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "name: [unclosed" in result.stderr and "expected ',' or ']'" in result.stderr


def test_loading_the_command_line_leaves_the_statistics_stack_unloaded():
    # `sync`, `push`, `ingest` and `quality` start in a fraction of a second only while registering the
    # commands imports neither scikit-learn nor SciPy; the commands that need them import them when run.
    import subprocess
    import sys

    heavy = "{'sklearn', 'scipy', 'statsmodels', 'matplotlib'}"
    code = f"import training_roi.cli, sys; print(sorted(m for m in sys.modules if m.split('.')[0] in {heavy}))"
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.strip() == "[]"


def test_the_help_lists_the_same_estimators_and_models_as_the_registry():
    from training_roi.attribute import MODELS
    from training_roi.isolate import METHODS
    from training_roi.methods import ATTRIBUTION_MODELS, ESTIMATOR_NAMES

    assert ESTIMATOR_NAMES == METHODS
    assert ATTRIBUTION_MODELS == MODELS


def test_the_command_line_runs_linear_algebra_on_one_thread_unless_told_otherwise():
    # OpenBLAS reads OPENBLAS_NUM_THREADS when NumPy loads; the command line sets it first (unless the user
    # did). threadpoolctl (which scikit-learn brings) reports what the loaded libraries use.
    import subprocess
    import sys

    probe = ("import training_roi.cli, numpy, scipy.linalg\n"
             "from threadpoolctl import threadpool_info\n"
             "print(sorted({i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas'}))")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    ours = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
    assert ours.stdout.strip() == "[1]", ours.stderr
