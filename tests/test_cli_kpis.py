"""`training-roi kpis` on an export taken mid-month: period bases, provisional months, every unit labelled.

The figures expected are worked out here from the raw Opportunity.csv rows with Polars, never through
the product's own code.
"""

from __future__ import annotations

import csv
import io
import shutil
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from training_roi.cli import app

runner = CliRunner(env={"COLUMNS": "220"})  # wide enough that no cell wraps
CUT = date(2024, 8, 14)
"""The export is taken on this day, halfway through the simulated org's last month (August 2024)."""


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pl.DataFrame, pl.DataFrame]:
    """A simulated org's users and deals as exported on :data:`CUT`, with two deals nobody owns."""
    from training_roi.simulate import simulate

    root = tmp_path_factory.mktemp("kpis")
    simulate(root / "org", reps=20, months=8, seed=2)
    (root / "cut" / "crm").mkdir(parents=True)
    shutil.copy(root / "org" / "crm" / "User.csv", root / "cut" / "crm" / "User.csv")
    deals = pl.read_csv(root / "org" / "crm" / "Opportunity.csv", infer_schema=False)
    deals = deals.filter(pl.col("CreatedDate").str.slice(0, 10) <= CUT.isoformat())
    # A deal closing after the export was still open when it was taken.
    later = pl.col("CloseDate") > CUT.isoformat()
    deals = deals.with_columns(IsClosed=pl.when(later).then(pl.lit("false")).otherwise("IsClosed"),
                               IsWon=pl.when(later).then(pl.lit("false")).otherwise("IsWon"),
                               StageName=pl.when(later).then(pl.lit("Negotiation/Review")).otherwise("StageName"))
    ownerless = deals.filter((pl.col("IsClosed") == "true") & (pl.col("CloseDate") < "2024-06-01")).head(2)
    ownerless = ownerless.with_columns(Id=pl.Series(["006Dn0000zz0001", "006Dn0000zz0002"]), OwnerId=pl.lit(""))
    deals = pl.concat([deals, ownerless])
    deals.write_csv(root / "cut" / "crm" / "Opportunity.csv")
    users = pl.read_csv(root / "org" / "crm" / "User.csv", infer_schema=False)
    shown = runner.invoke(app, ["ingest", str(root / "cut"), "--db", str(root / "w.duckdb")])
    assert shown.exit_code == 0, shown.output
    return root / "w.duckdb", deals, users


def _closed(deals: pl.DataFrame) -> pl.DataFrame:
    return deals.filter((pl.col("IsDeleted") != "true") & (pl.col("IsClosed") == "true")).with_columns(
        month=pl.col("CloseDate").str.to_date().dt.truncate("1mo"), won=pl.col("IsWon") == "true")


def _read(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_the_month_cut_by_the_export_is_provisional_and_no_change_is_taken_from_it(export, tmp_path: Path):
    db, deals, _ = export
    shown = runner.invoke(app, ["kpis", "--db", str(db), "--kpi", "win_rate", "--kpi", "pipeline_created",
                                "--months", "3", "--csv", str(tmp_path / "k.csv")])
    assert shown.exit_code == 0, shown.output
    rows = _read((tmp_path / "k.csv").read_text(encoding="utf-8"))
    win = {r["period"]: r for r in rows if r["kpi"] == "win_rate"}
    # Win rate by close month, from the raw rows.
    by_month = _closed(deals).group_by("month").agg(rate=pl.col("won").mean())
    expected = {m.isoformat(): rate for m, rate in by_month.iter_rows()}
    assert {p: float(r["value"]) for p, r in win.items() if r["value"]} == pytest.approx(expected)
    assert {r["basis"] for r in win.values()} == {"close month"}
    assert {r["basis"] for r in rows if r["kpi"] == "pipeline_created"} == {"creation month"}
    # The data ends on the latest creation, or close of a closed deal, before the cut.
    created = deals["CreatedDate"].str.slice(0, 10).max()
    end = max(created, _closed(deals)["CloseDate"].max())  # type: ignore[type-var]
    assert end <= CUT.isoformat()
    august = win["2024-08-01"]
    assert august["provisional"] == "true"
    assert august["provisional_reason"] == f"the month was not over when the data ends ({end})"
    assert august["mom"] == "" and august["change_note"] == "no change computed: this month is provisional"
    assert [p for p, r in win.items() if r["provisional"] == "true"] == ["2024-08-01"]
    july = win["2024-07-01"]
    assert float(july["mom"]) == pytest.approx(expected["2024-07-01"] - expected["2024-06-01"])
    pipeline = [r for r in rows if r["kpi"] == "pipeline_created" and r["provisional"] == "true"]
    assert [r["period"] for r in pipeline] == ["2024-08-01"]
    # The console stars August and shows July's change, naming July.
    line = next(li for li in shown.stdout.splitlines() if li.startswith("│ win rate"))
    cells = [c.strip() for c in line.split("│")[1:-1]]
    assert cells[1] == "close month" and cells[-3].endswith(" *")
    change = (expected["2024-07-01"] - expected["2024-06-01"]) / expected["2024-06-01"]
    assert cells[-2] == f"{change:+.1%} (Jul 2024)".replace("-", "−")
    assert "provisional" in shown.stdout and "2024-08" in shown.stdout


def test_creation_months_with_many_deals_open_are_provisional(export, tmp_path: Path):
    db, deals, _ = export
    shown = runner.invoke(app, ["kpis", "--db", str(db), "--kpi", "win_rate", "--basis", "created",
                                "--csv", str(tmp_path / "k.csv")])
    assert shown.exit_code == 0, shown.output
    rows = _read((tmp_path / "k.csv").read_text(encoding="utf-8"))
    live = deals.filter(pl.col("IsDeleted") != "true").with_columns(
        month=pl.col("CreatedDate").str.slice(0, 10).str.to_date().dt.truncate("1mo"))
    share = live.group_by("month").agg(open=(pl.col("IsClosed") != "true").mean())
    maturing = {m.isoformat() for m, s in share.iter_rows() if s > 0.2} | {"2024-08-01"}
    assert {r["period"] for r in rows if r["provisional"] == "true"} == maturing
    assert len(maturing) > 1  # the months before the cut still hold open deals
    assert all(r["mom"] == "" for r in rows if r["period"] in maturing)
    assert {r["basis"] for r in rows} == {"creation month"}
    bad = runner.invoke(app, ["kpis", "--db", str(db), "--basis", "booked"])
    assert bad.exit_code == 2 and "--basis booked: expected one of close, created" in bad.stderr
    empty = runner.invoke(app, ["kpis", "--db", str(db), "--since", "2024-05-01", "--until", "2024-04-01"])
    assert empty.exit_code == 2 and "--since 2024-05-01 is not before --until 2024-04-01" in empty.stderr


def test_every_rep_is_listed_by_name_and_deals_without_an_owner_count(export, tmp_path: Path):
    db, deals, users = export
    closed = _closed(deals)
    org = runner.invoke(app, ["kpis", "--db", str(db), "--kpi", "win_rate", "--total", "--csv",
                              str(tmp_path / "org.csv")])
    assert org.exit_code == 0, org.output
    (total,) = _read((tmp_path / "org.csv").read_text(encoding="utf-8"))
    assert float(total["value"]) == pytest.approx(closed["won"].mean())  # the two ownerless deals included
    shown = runner.invoke(app, ["kpis", "--db", str(db), "--kpi", "win_rate", "--grain", "rep", "--total",
                                "--limit", "5", "--csv", str(tmp_path / "rep.csv")], terminal_width=220)
    assert shown.exit_code == 0, shown.output
    per_rep = {r["grain_id"]: r for r in _read((tmp_path / "rep.csv").read_text(encoding="utf-8"))}
    owners = set(deals.filter(pl.col("OwnerId") != "")["OwnerId"].to_list())
    assert set(per_rep) == owners | {"(no owner)"}
    assert float(per_rep["(no owner)"]["value"]) == pytest.approx(
        closed.filter(pl.col("OwnerId") == "")["won"].mean())
    named = dict(users.select("Id", "Name").iter_rows())
    assert all(per_rep[o]["name"] == named[o] for o in owners)
    # The console: the first five reps by name, each with its name and id, then how many more.
    lines = [li for li in shown.stdout.splitlines() if li.startswith("│ win rate")]
    first = sorted(owners, key=lambda o: (named[o].casefold(), o))[:5]
    assert [li.split("│")[3].strip() for li in lines] == [f"{named[o]} ({o})" for o in first]
    assert f"… and {len(owners) + 1 - 5} more" in shown.stdout
    every = runner.invoke(app, ["kpis", "--db", str(db), "--kpi", "win_rate", "--grain", "rep", "--total",
                                "--limit", "1000"], terminal_width=220)
    listed = [li.split("│")[3].strip() for li in every.stdout.splitlines() if li.startswith("│ win rate")]
    assert len(listed) == len(owners) + 1 and listed[-1] == "(no owner)" and "more" not in every.stdout


def test_the_help_states_the_rule_in_force():
    from training_roi.measure import OPEN_SHARE_LIMIT

    shown = runner.invoke(app, ["kpis", "--help"])
    text = " ".join(shown.stdout.replace("│", " ").split())
    assert f"more than {OPEN_SHARE_LIMIT:.0%} of its deals are still open" in text
    assert "by the month the deal closed" in text


def test_the_day_the_export_was_taken_decides_which_months_are_over(export, tmp_path: Path):
    db, _, _ = export

    def august(as_of: str) -> dict[str, str]:
        out = tmp_path / f"k-{as_of}.csv"
        shown = runner.invoke(app, ["kpis", "--db", str(db), "--kpi", "win_rate", "--as-of", as_of, "--csv", str(out)])
        assert shown.exit_code == 0, shown.output
        return next(r for r in _read(out.read_text(encoding="utf-8")) if r["period"] == "2024-08-01")

    # Taken on 20 August: the month was not over. Taken on 5 September: August is complete, and
    # its change over July is computed.
    assert august("2024-08-20")["provisional"] == "true" and august("2024-08-20")["mom"] == ""
    assert august("2024-08-20")["provisional_reason"] == "the month was not over when the data ends (2024-08-20)"
    done = august("2024-09-05")
    assert done["provisional"] == "false" and done["mom"] != "" and done["as_of"] == "2024-09-05"
    bad = runner.invoke(app, ["kpis", "--db", str(db), "--as-of", "5 Sept"])
    assert bad.exit_code == 2 and "--as-of" in bad.stderr
