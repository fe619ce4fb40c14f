"""Simulate → ingest → link, checked against the simulator's known truth.

The simulator writes the mess real exports have (mixed-case emails, account actors resolvable only
through the directory, duplicate statement ids, voided completions, time-zone offsets, malformed
lines, learners without a CRM user) and records how much of each it wrote. The warehouse must
account for every piece, and the trained reps it derives must be exactly the true ones.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from training_roi.cli import app
from training_roi.ingest.folder import ingest_folder
from training_roi.linking import link
from training_roi.simulate import simulate
from training_roi.warehouse.connection import connect
from training_roi.warehouse.quality import quality_report


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("org")
    simulate(out, reps=120, months=18, seed=5, scenario="selection")
    return out, json.loads((out / "truth.json").read_text())


@pytest.fixture(scope="module")
def warehouse(org, tmp_path_factory: pytest.TempPathFactory):
    folder, _ = org
    con = connect(tmp_path_factory.mktemp("wh") / "roi.duckdb")
    info = ingest_folder(folder, con)
    linked = link(con)
    return con, info, linked


def _source(info, name):
    return next(s for s in info.sources if s.source == name)


def test_every_row_is_accounted_for(org, warehouse):
    _, truth = org
    con, info, _ = warehouse
    assert info.ok
    for s in info.sources:
        assert s.rows_read == s.rows_loaded + s.rows_quarantined + s.rows_duplicate, s.source
    for name, table in (("Opportunity", "crm_opportunity"), ("User", "crm_user"), ("Account", "crm_account")):
        assert _source(info, name).rows_read == truth["files"][f"crm/{name}.csv"]
        assert con.table(table).count().to_pyarrow().as_py() == truth["files"][f"crm/{name}.csv"]


def test_xapi_mess_is_handled_as_the_truth_says(org, warehouse):
    folder, truth = org
    con, info, _ = warehouse
    mess = truth["mess"]
    xapi = _source(info, "xapi")
    assert xapi.rows_duplicate == mess["duplicate_statements"]
    assert xapi.rows_quarantined == mess["malformed_lines"]
    q = con.table("quarantine")
    bad = q.filter(q.source == "xapi").to_pyarrow().to_pylist()
    assert len({r["source_line"] for r in bad}) == mess["malformed_lines"]
    assert all(r["source_line"] > 0 for r in bad)
    st = con.table("lms_statement")
    assert st.filter(st.is_voided).count().to_pyarrow().as_py() == mess["voided_completions"]
    # Time zones, checked against Python's own reading of the raw lines.
    expected: dict[str, datetime] = {}
    for line in (folder / "lms" / "statements.jsonl").read_text(encoding="utf-8").splitlines():
        try:
            s = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(s, dict) and s.get("timestamp"):
            expected[s["id"].lower()] = datetime.fromisoformat(s["timestamp"])
    loaded = {r["statement_id"]: r for r in st.select("statement_id", "timestamp", "timestamp_offset_minutes")
              .distinct().to_pyarrow().to_pylist()}
    assert set(loaded) == set(expected)
    assert all(loaded[i]["timestamp"] == t for i, t in expected.items())
    assert all(loaded[i]["timestamp_offset_minutes"] * 60 == t.utcoffset().total_seconds() for i, t in expected.items())
    assert sum(t.utcoffset().total_seconds() != 0 for t in expected.values()) > 0


def test_trained_reps_derived_from_the_warehouse_are_exactly_the_true_ones(org, warehouse):
    folder, truth = org
    con, _, _ = warehouse
    course = truth["program"]["course_activity_id"]
    rec = con.table("learning_record")
    ids = con.table("learner_identity")
    done = rec.filter((rec.verb == "completed") & (rec.activity_id == course))
    joined = done.join(ids, "learner_key").filter(ids.crm_user_id.notnull())
    first = joined.group_by(user_id=joined.crm_user_id).agg(first=joined.occurred_at.min())
    derived = {
        r["user_id"]: r["first"].date().isoformat() for r in first.to_pyarrow().to_pylist()
    }
    expected = pl.read_csv(folder / truth["trained"]["file"], infer_schema=False)
    expected = dict(zip(expected["user_id"], expected["completion_date"], strict=True))
    assert len(expected) == truth["trained"]["reps"] > 10
    assert derived == expected


def test_link_accounts_for_learners_without_a_crm_user(org, warehouse):
    _, truth = org
    _, _, linked = warehouse
    assert linked.directory_learners_without_crm == truth["mess"]["learners_without_crm_user"]
    assert linked.ambiguous == 0


def test_quality_report_warns_about_missing_amounts(org, warehouse):
    folder, truth = org
    con, _, _ = warehouse
    report = quality_report(con)
    opps = pl.read_csv(folder / "crm" / "Opportunity.csv", infer_schema=False)
    n = opps.filter((pl.col("IsDeleted") == "false") & pl.col("Amount").is_null()).height
    assert 0 < n <= truth["mess"]["opportunities_without_amount"]
    assert any(w.startswith(f"{n:,} of ") and "have no amount" in w for w in report.warnings)


def test_reingesting_the_same_folder_changes_nothing(org, warehouse):
    folder, _ = org
    con, _, _ = warehouse
    names = ("crm_opportunity", "lms_statement", "quarantine", "learning_record", "learner_identity")
    before = {n: con.table(n).to_pyarrow().sort_by([(c, "ascending") for c in con.table(n).columns[:2]])
              for n in names}
    info = ingest_folder(folder, con)
    link(con)
    assert all(s.new == 0 for s in info.sources)
    after = {n: con.table(n).to_pyarrow().sort_by([(c, "ascending") for c in con.table(n).columns[:2]])
             for n in names}
    for n in names:
        assert after[n].equals(before[n]), n


def test_demo_command_runs_the_main_job(tmp_path: Path):
    result = CliRunner().invoke(app, ["demo", "--dir", str(tmp_path / "demo"), "--reps", "30", "--months", "12"])
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "Link: LMS learners" in result.stdout
    assert "Warnings" in result.stdout
    assert "Training ROI" in result.stdout
    assert "Simulated truth" in result.stdout
    assert (tmp_path / "demo" / "roi.duckdb").exists()
    assert json.loads((tmp_path / "demo" / "result.json").read_text())["schema"] == "training-roi/result/2"
