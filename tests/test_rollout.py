"""A CRM roll-out study on a simulated go-live whose true effects are known."""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

from training_roi.cli import app
from training_roi.ingest.folder import ingest_folder
from training_roi.linking import link
from training_roi.simulate import simulate
from training_roi.warehouse.connection import connect

runner = CliRunner()
VALUE = 12_000


@pytest.fixture(scope="module")
def golive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    root = tmp_path_factory.mktemp("golive")
    simulate(root / "data", reps=300, months=24, seed=11, scenario="crm_golive")
    truth = json.loads((root / "data" / "truth.json").read_text())
    con = connect(root / "roi.duckdb")
    ingest_folder(root / "data", con)
    link(con)
    con.disconnect()
    study = {"name": "CRM rollout", "program": {"name": "CRM rollout",
                                                "activities": [truth["program"]["course_activity_id"]]},
             "rollout": {"go_live_by_team": {t["team_id"]: t["go_live_date"] for t in truth["crm"]["teams"]},
                         "value_per_conversion": VALUE},
             "costs": {"participant_time": {"hourly_rate": 60}}, "isolation": {"bootstrap_replicates": 999}}
    (root / "study.yaml").write_text(yaml.safe_dump(study), encoding="utf-8")
    return root, root / "roi.duckdb", truth


def test_a_staged_go_live_recovers_the_true_effects_and_benefit(golive, tmp_path: Path):
    root, db, truth = golive
    result = runner.invoke(app, ["report", str(root / "study.yaml"), "--db", str(db), "--out", str(tmp_path),
                                 "--json"])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["schema"] == "training-roi/rollout/1" and doc["method"] == "staggered"
    teams = len(truth["crm"]["teams"])
    assert doc["inference"].startswith(f"by team ({teams} teams): ")  # a team goes live at once: its reps are one draw
    assert ("wild cluster restricted bootstrap" in doc["inference"]) == (teams < 30)
    kpis = {k["kpi"]: k for k in doc["kpis"]}
    overall = truth["crm"]["overall"]
    conversion, response = kpis["lead_conversion"]["effect"], kpis["lead_response_hours"]["effect"]
    assert conversion["ci_low"] <= overall["att_conversion_rate"] <= conversion["ci_high"]
    assert response["ci_low"] <= overall["att_first_response_hours"] <= response["ci_high"] < 0
    placebo = kpis["win_rate"]["effect"]  # the go-live changes no deal: its interval holds 0
    assert placebo["ci_low"] <= 0 <= placebo["ci_high"]
    # The benefit: true incremental conversions × value × margin, inside the benefit's interval.
    benefit = doc["benefits"][0]
    true_benefit = overall["incremental_conversions"] * VALUE
    assert float(benefit["interval"][0]) <= true_benefit <= float(benefit["interval"][1])
    # Costs from costs.csv (independently summed) and ROI = (benefits − costs) / costs × 100.
    costs = pl.read_csv(root / "data" / "costs.csv").filter(pl.col("program") == "CRM rollout")
    listed = sum(Decimal(str(a)) for a in costs["amount"].to_list())
    cost = Decimal(doc["costs"]["total"])
    assert cost >= listed  # plus the participants' time in CRM Basics
    total = sum(Decimal(b["amount"]) for b in doc["benefits"])
    assert Decimal(doc["roi"]["roi_pct"]).quantize(Decimal("0.01")) == ((total - cost) / cost * 100).quantize(
        Decimal("0.01"))
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "What the go-live changed" in html and "go-live" in html and "<svg" in html
    # Response time is lower-is-better: the page gives the chance it fell, P(improvement), never P(effect > 0).
    assert "P(improvement)" in html and "P(effect &gt; 0)" not in html
    row = next(r for r in html.split("<tr>") if "lead first-response time (lower is better)" in r)
    fell = (1 - Decimal(repr(response["prob_positive"]))) * 100
    assert f">{fell.quantize(Decimal('0.1'), ROUND_HALF_UP)}%<" in row


def test_an_org_wide_go_live_uses_the_trend_line_and_unknown_teams_are_refused(golive, tmp_path: Path):
    root, db, truth = golive
    study = yaml.safe_load((root / "study.yaml").read_text())
    study["rollout"] = {"go_live": truth["crm"]["go_live_dates"][0], "kpis": ["lead_response_hours"]}
    (tmp_path / "org.yaml").write_text(yaml.safe_dump(study), encoding="utf-8")
    result = runner.invoke(app, ["report", str(tmp_path / "org.yaml"), "--db", str(db), "--out", str(tmp_path),
                                 "--json"])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["method"] == "trend" and doc["go_live"] == {"*": truth["crm"]["go_live_dates"][0]}
    assert doc["inference"] == "bootstrap over reps"
    assert doc["kpis"][0]["effect"]["estimate"] < 0  # half the teams went live then: response time falls
    study["rollout"] = {"go_live_by_team": {"005NOBODY": "2025-01-01"}}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(study), encoding="utf-8")
    bad = runner.invoke(app, ["report", str(tmp_path / "bad.yaml"), "--db", str(db), "--out", str(tmp_path)])
    assert bad.exit_code == 2 and "manage no CRM user" in bad.stderr
