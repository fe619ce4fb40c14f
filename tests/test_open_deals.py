"""Open deals without a close date (as CRMs other than Salesforce export them) change no answer.

A simulated org is reported twice: as exported, and with every open deal's expected close date
emptied. Open deals must all load in both, and the study's answer — effect, interval, value,
ROI — must be the same, since only closed deals' dates enter it.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from training_roi.cli import app
from training_roi.simulate import simulate

runner = CliRunner()

pytestmark = pytest.mark.slow


def _report(data: Path, root: Path, study: Path) -> dict:
    db = root / "roi.duckdb"
    ingested = runner.invoke(app, ["ingest", str(data), "--db", str(db), "--json"])
    assert ingested.exit_code == 0, ingested.stderr
    result = runner.invoke(app, ["report", str(study), "--db", str(db), "--out", str(root / "out"), "--json"])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_open_deals_without_a_close_date_give_the_same_answer(tmp_path: Path):
    exported = tmp_path / "exported" / "data"
    simulate(exported, reps=120, months=18, seed=5, scenario="selection")
    truth = json.loads((exported / "truth.json").read_text())
    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump({
        "name": "Open deals",
        "program": {"name": truth["program"]["name"], "activities": [truth["program"]["course_activity_id"]]},
        "costs": {"participant_time": {"hourly_rate": 60}},
        "isolation": {"bootstrap_replicates": 300, "seed": 5},
    }), encoding="utf-8")

    undated = tmp_path / "undated" / "data"
    shutil.copytree(exported, undated)
    path = undated / "crm" / "Opportunity.csv"
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    header = list(rows[0])
    emptied = 0
    for row in rows:
        if row["IsClosed"].lower() == "false":
            row["CloseDate"] = ""
            emptied += 1
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, header)
        writer.writeheader()
        writer.writerows(rows)
    assert emptied > 50

    a = _report(exported, tmp_path / "exported", study)
    b = _report(undated, tmp_path / "undated", study)
    assert a["data"]["crm_opportunity"] == b["data"]["crm_opportunity"] == len(rows)
    assert a["headline"] == b["headline"]
