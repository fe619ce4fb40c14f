"""Where the real third-party test files are, and helpers that write small input files for tests."""

from __future__ import annotations

import gc
import hashlib
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

DATA_DIR = Path(__file__).resolve().parent / "data"
"""Real third-party files the tests read; ``tests/data/README.md`` gives their sources and licences."""


def validation_script(name: str) -> ModuleType:
    """A script of ``validation/``, imported from its file (the folder is not a package).

    Its folder is on the import path while it loads, as when it is run, so that it imports what the
    scripts share (``pool``) as it does then.
    """
    folder = DATA_DIR.parents[1] / "validation"
    spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    sys.path.insert(0, str(folder))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(folder))
    return module


def write(path: Path, text: str, *, bom: bool = False, encoding: str = "utf-8") -> Path:
    """Write a test file, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode(encoding))
    return path


U1, U2, U3, U4, U5 = (f"00500000000000{i}AAA" for i in range(1, 6))
C1, A1 = "003000000000001AAA", "001000000000001AAA"
COURSE = "https://lms.example.com/course/sales-excellence"
HOME = "https://lms.example.com"


def statement(n: int, actor: dict, verb: str = "completed", **extra: object) -> dict:
    return {
        "id": f"00000000-0000-4000-8000-{n:012d}",
        "actor": actor,
        "verb": {"id": f"http://adlnet.gov/expapi/verbs/{verb}", "display": {"en-US": verb}},
        "object": {"id": COURSE, "definition": {"name": {"en-US": "Sales Excellence"}}},
        "timestamp": "2025-03-04T10:00:00-05:00",
        **extra,
    }


def mbox(email: str) -> dict:
    return {"mbox": f"mailto:{email}"}


def account(name: str) -> dict:
    return {"account": {"homePage": HOME, "name": name}}


def write_small_org(tmp_path: Path) -> Path:
    """A hand-made org where every link case (email, directory, sha1, ambiguous, …) occurs once."""
    write(tmp_path / "crm" / "User.csv", "Id,Email,FirstName,LastName\n"
          f"{U1},jane.doe@example.com,Jane,Doe\n{U2},shared@example.com,A,One\n"
          f"{U3},Shared@Example.com,B,Two\n{U4},,No,Email\n{U5},hashed@example.com,H,Ash\n")
    write(tmp_path / "crm" / "Contact.csv", f"Id,AccountId,Email\n{C1},{A1},cust@client.com\n")
    write(tmp_path / "lms" / "learners.csv", "learner_id,email,name,department,title,hire_date\n"
          "L100,Jane.Doe@Example.com,Jane,Sales,AE,2020-01-01\nL200,nobody@partner.com,Pat,Partner,,\n"
          "L300,cust@client.com,Cust,,,\n")
    sha = hashlib.sha1(b"mailto:hashed@example.com").hexdigest()
    statements = [
        statement(1, mbox("JANE.DOE@example.COM")),
        statement(2, account("L100"), "passed", result={"score": {"scaled": 0.9}, "success": True}),
        statement(3, account("L999")),
        statement(4, mbox("shared@example.com")),
        statement(5, {"mbox_sha1sum": sha}),
        statement(6, account("L300")),
        statement(7, mbox("late@example.com")),
        statement(8, {"mbox": "mailto:admin@example.com"}, "voided",
                  object={"objectType": "StatementRef", "id": "00000000-0000-4000-8000-000000000007"}),
    ]
    lines = [json.dumps(s) for s in statements] + [json.dumps(statements[0])]  # a duplicate
    write(tmp_path / "lms" / "statements.jsonl", "\n".join(lines) + "\n")
    return tmp_path


def put_rows(con, name: str, rows: list[dict]) -> None:
    """Append ``rows`` to the canonical table ``name``; fields a row leaves out are null."""
    import pyarrow as pa

    from training_roi.warehouse.load import append
    from training_roi.warehouse.schema import TABLES

    schema = TABLES[name].schema.to_pyarrow()
    append(con, name, pa.Table.from_pylist([{f: r.get(f) for f in schema.names} for r in rows], schema=schema))


def window_panel(con, activities: list[str], *, baseline_days: int, window_days: int, ramp_days: int = 0,
                 rule: str = "completed", min_score: float | None = None, seed: int = 7, scope=None,
                 comparison_units=None, unit: str = "rep", timezone: str = "UTC", program_start=None,
                 program_end=None, baseline_at_start: bool = False):
    """One window's panel from a warehouse, through the study's path: the cohort, then the panels."""
    from training_roi.measure import CohortRule, cohort, window_panels

    rule_ = CohortRule(tuple(activities), completion=rule, min_score=min_score, unit=unit, timezone=timezone,
                       start=program_start, end=program_end)
    return window_panels(con, cohort(con, rule_, scope=scope), baseline_days=baseline_days, windows=[window_days],
                         ramp_days=ramp_days, seed=seed, scope=scope, comparison_units=comparison_units,
                         baseline_at_start=baseline_at_start)[window_days]


def unit_panel(con, activities: list[str], *, kpi: str = "win_rate", unit: str = "rep", rule: str = "completed",
               scope=None):
    """The monthly panel of one KPI from a warehouse, through the study's path: the cohort, then the panel."""
    from training_roi.measure import CohortRule, cohort
    from training_roi.measure import unit_panel as build

    trained = cohort(con, CohortRule(tuple(activities), completion=rule, unit=unit), required=False)
    return build(con, trained, kpi=kpi, scope=scope)


def rename_cell(path: Path, column: str, row: int, value: str) -> str:
    """Set one cell of a CSV file (row from 0, after the header); return what it held."""
    import polars as pl

    frame = pl.read_csv(path, infer_schema=False)
    old = frame[column][row]
    frame = frame.with_columns(pl.when(pl.int_range(pl.len()) == row).then(pl.lit(value)).otherwise(pl.col(column))
                               .alias(column))
    frame.write_csv(path)
    return old


def simulated_with_trained_rep_named(data: Path, name: str) -> dict:
    """Simulate a small randomised org (40 reps × 14 months) whose first trained rep is called ``name``; its truth."""
    import polars as pl

    from training_roi.simulate import simulate

    simulate(data, reps=40, months=14, seed=11, scenario="randomised")
    truth = json.loads((data / "truth.json").read_text())
    trained = set(pl.read_csv(data / "truth_trained.csv", infer_schema=False)[:, 0].to_list())
    users = pl.read_csv(data / "crm" / "User.csv", infer_schema=False)
    row = next(i for i, uid in enumerate(users["Id"].to_list()) if uid in trained)
    rename_cell(data / "crm" / "User.csv", "Name", row, name)
    return truth


def ingest_and_report(data: Path, work: Path, truth: dict, name: str, **settings: object) -> Path:
    """Ingest ``data`` and report a study of its simulated program (with ``settings`` added) into work/out."""
    import yaml
    from typer.testing import CliRunner

    from training_roi.cli import app

    runner = CliRunner()
    db = work / "roi.duckdb"
    ingested = runner.invoke(app, ["ingest", str(data), "--db", str(db)])
    assert ingested.exit_code == 0, ingested.stderr
    study = work / "study.yaml"
    study.write_text(yaml.safe_dump({
        "name": name, "program": {"name": truth["program"]["name"],
                                  "activities": [truth["program"]["course_activity_id"]]},
        "costs": {"participant_time": {"hourly_rate": 60}}, "isolation": {"bootstrap_replicates": 200, "seed": 1},
        **settings,
    }), encoding="utf-8")
    out = work / "out"
    result = runner.invoke(app, ["report", str(study), "--db", str(db), "--out", str(out)])
    assert result.exit_code == 0, result.stderr
    # The commands ran in this process: a warehouse connection of theirs still waiting in a reference
    # cycle would keep a server started here from opening the file read-only (DuckDB refuses a second
    # configuration of one file in one process). The command line's own processes end instead.
    gc.collect()
    return out


def simulated_warehouse(root: Path, **simulate: object) -> tuple[Path, Path, dict]:
    """Simulate an org into root/data (``simulate``: its arguments), ingest and link it into root/roi.duckdb.

    Returns the data folder, the warehouse file and the simulation's truth.
    """
    from training_roi.ingest.folder import ingest_folder
    from training_roi.linking import link
    from training_roi.simulate import simulate as simulate_org
    from training_roi.warehouse.connection import connect

    simulate_org(root / "data", **simulate)  # type: ignore[arg-type]
    con = connect(root / "roi.duckdb")
    ingest_folder(root / "data", con)
    link(con)
    con.disconnect()
    return root / "data", root / "roi.duckdb", json.loads((root / "data" / "truth.json").read_text(encoding="utf-8"))
