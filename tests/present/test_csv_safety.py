"""No file the product writes for a spreadsheet can run a formula (OWASP CSV injection).

A simulated org is given hostile names — a rep called ``=HYPERLINK(…)``, an account ``@SUM(…)``,
a deal ``-2+3+cmd|…`` — and every CSV the product writes from it is read back: a cell beginning
with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is either a plain number or starts
with the quote that makes it inert, and the hostile names do reach the files (so the check is not
vacuous).
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

from training_roi._format import spreadsheet_safe
from training_roi.cli import app
from training_roi.simulate import simulate

runner = CliRunner()
REP = '=HYPERLINK("http://attacker.example","Sandra")'
ACCOUNT = "@SUM(1+1)*cmd|' /C calc'!A0"
DEAL = "-2+3+cmd|' /C calc'!A0"
_NUMBER = re.compile(r"^[+\-]?(\d+\.?\d*|\.\d+)([eE][+\-]?\d+)?$")


def _cells(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as fh:
        return [cell for row in csv.reader(fh) for cell in row]


def _dangerous(cell: str) -> bool:
    return bool(cell) and cell[0] in "=+-@\t\r" and not _NUMBER.match(cell)


def test_the_guard_on_hand_made_cells():
    frame = pl.DataFrame({"t": [REP, "-1234.50", "-cmd", "@x", "\tx", "Ana", None], "n": [1, 2, 3, 4, 5, 6, 7]})
    assert spreadsheet_safe(frame)["t"].to_list() == ["'" + REP, "-1234.50", "'-cmd", "'@x", "'\tx", "Ana", None]


def _rename(path: Path, column: str, row: int, value: str) -> str:
    frame = pl.read_csv(path, infer_schema=False)
    old = frame[column][row]
    frame = frame.with_columns(pl.when(pl.int_range(pl.len()) == row).then(pl.lit(value)).otherwise(pl.col(column))
                               .alias(column))
    frame.write_csv(path)
    return old


@pytest.mark.slow
def test_every_csv_written_from_hostile_names_is_inert(tmp_path: Path):
    data = tmp_path / "data"
    simulate(data, reps=40, months=14, seed=11, scenario="randomised")
    truth = json.loads((data / "truth.json").read_text())
    trained = set(pl.read_csv(data / "truth_trained.csv", infer_schema=False)[:, 0].to_list())
    users = pl.read_csv(data / "crm" / "User.csv", infer_schema=False)
    row = next(i for i, uid in enumerate(users["Id"].to_list()) if uid in trained)
    _rename(data / "crm" / "User.csv", "Name", row, REP)
    _rename(data / "lms" / "learners.csv", "name", 0, REP)
    _rename(data / "crm" / "Account.csv", "Name", 0, ACCOUNT)
    for i in range(5):
        _rename(data / "crm" / "Opportunity.csv", "Name", i, DEAL)
    db = tmp_path / "roi.duckdb"
    assert runner.invoke(app, ["ingest", str(data), "--db", str(db)]).exit_code == 0
    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump({
        "name": "Hostile", "program": {"name": truth["program"]["name"],
                                       "activities": [truth["program"]["course_activity_id"]]},
        "costs": {"participant_time": {"hourly_rate": 60}}, "isolation": {"bootstrap_replicates": 200, "seed": 1},
    }), encoding="utf-8")
    out = tmp_path / "out"
    result = runner.invoke(app, ["report", str(study), "--db", str(db), "--out", str(out)])
    assert result.exit_code == 0, result.stderr
    for grain in ("rep", "account"):
        kpis = runner.invoke(app, ["kpis", "--db", str(db), "--grain", grain, "--total", "--csv",
                                   str(out / f"kpis-{grain}.csv")])
        assert kpis.exit_code == 0, kpis.stderr
    written = sorted(out.glob("*.csv"))
    assert {p.name for p in written} >= {"learners.csv", "opportunities.csv", "attribution.csv", "kpis-rep.csv",
                                         "kpis-account.csv"}
    every = {p.name: _cells(p) for p in written}
    for name, cells in every.items():
        assert not [c for c in cells if _dangerous(c)], name
    seen = {c for cells in every.values() for c in cells}
    assert "'" + REP in seen and "'" + ACCOUNT in seen
