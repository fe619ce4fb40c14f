"""No file the product writes for a spreadsheet can run a formula (OWASP CSV injection).

A simulated org is given hostile names — a rep called ``=HYPERLINK(…)``, an account ``@SUM(…)``,
a deal ``-2+3+cmd|…`` — and every CSV the product writes from it is read back: a cell beginning
with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is either a plain number or starts
with the quote that makes it inert, and the hostile names do reach the files (so the check is not
vacuous).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from tests.builders import ingest_and_report, rename_cell, simulated_with_trained_rep_named
from training_roi._format import spreadsheet_safe
from training_roi.cli import app

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


@pytest.mark.parametrize("kind", [pl.Categorical, pl.Enum([REP, "-1234.50", "-cmd", "@x", "\tx", "Ana"])])
def test_the_guard_reads_categorical_cells_as_their_text(kind: pl.DataType):
    cells = [REP, "-1234.50", "-cmd", "@x", "\tx", "Ana", None, REP]
    frame = pl.DataFrame({"t": pl.Series(cells).cast(kind), "safe": pl.Series(["Ana", "Bo", None] * 2 + ["Ana"] * 2)
                          .cast(pl.Categorical)})
    out = spreadsheet_safe(frame)
    assert out["t"].to_list() == ["'" + REP, "-1234.50", "'-cmd", "'@x", "'\tx", "Ana", None, "'" + REP]
    assert out.schema["safe"] == pl.Categorical  # nothing to guard: left as it is


@pytest.mark.slow
def test_every_csv_written_from_hostile_names_is_inert(tmp_path: Path):
    data = tmp_path / "data"
    truth = simulated_with_trained_rep_named(data, REP)
    rename_cell(data / "lms" / "learners.csv", "name", 0, REP)
    rename_cell(data / "crm" / "Account.csv", "Name", 0, ACCOUNT)
    for i in range(5):
        rename_cell(data / "crm" / "Opportunity.csv", "Name", i, DEAL)
    out = ingest_and_report(data, tmp_path, truth, "Hostile")
    db = tmp_path / "roi.duckdb"
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
