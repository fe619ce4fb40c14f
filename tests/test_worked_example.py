"""The seed article's worked example, shipped as a study (docs/worked-example/), answered end to end.

The oracle is the article's own arithmetic: lift 3% raw, 2% after the comparison group; 50
opportunities of $10,000 in the window, so $500,000 of pipeline; 0.02 × $500,000 = $10,000 of
incremental revenue; costs LMS $5,000 + content $8,000 + instructor time $2,000 + admin $1,000 =
$16,000; ROI ($10,000 − $16,000) / $16,000 = −37.5%; break-even lift 16,000 / 500,000 = 3.2%; and
"vary lift: 1%, 2%, 3%". The first test recounts those figures from the example's raw files with
the standard library alone, so the files are shown to hold the article's example before the
product's answer is compared with it.
"""

from __future__ import annotations

import csv
import json
import re
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from html.parser import HTMLParser
from pathlib import Path

import pytest
from pypdf import PdfReader
from typer.testing import CliRunner

from tests.present.pixels import ink
from training_roi.cli import app
from training_roi.present.onepager import MARGINS

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "worked-example"
DATA = EXAMPLE / "data"

# The article's figures, worked by hand.
PIPELINE = Decimal(50 * 10_000)
INCREMENTAL = Decimal("0.02") * PIPELINE  # 10,000
COST = Decimal(5_000 + 8_000 + 2_000 + 1_000)  # 16,000
ROI_PCT = (INCREMENTAL - COST) / COST * 100  # −37.5
BREAK_EVEN_LIFT = COST / PIPELINE  # 0.032
# Vary lift 1%, 2%, 3%: (5,000 − 16,000) / 16,000 = −68.75 and (15,000 − 16,000) / 16,000 = −6.25, half up.
SCENARIOS = {"pessimistic": (0.01, Decimal("-68.8")), "base": (0.02, Decimal("-37.5")),
             "optimistic": (0.03, Decimal("-6.3"))}


def _plain(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example ingested into a fresh warehouse and reported through the command line."""
    work = tmp_path_factory.mktemp("worked-example")
    runner = CliRunner()
    db = work / "roi.duckdb"
    ingested = runner.invoke(app, ["ingest", str(DATA), "--db", str(db)])
    assert ingested.exit_code == 0, ingested.stderr
    out = work / "out"
    reported = runner.invoke(app, ["report", str(EXAMPLE / "study.yaml"), "--db", str(db), "--out", str(out)])
    assert reported.exit_code == 0, reported.stderr
    return out


def _rows(name: str) -> list[dict[str, str]]:
    with (DATA / name).open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_the_example_files_hold_the_articles_figures():
    trained = {}
    for line in (DATA / "lms" / "statements.jsonl").read_text(encoding="utf-8").splitlines():
        s = json.loads(line)
        trained[s["actor"]["mbox"].removeprefix("mailto:")] = date.fromisoformat(s["timestamp"][:10])
    owners = {u["Id"]: u["Email"] for u in _rows("crm/User.csv")}
    (anchor,) = set(trained.values())  # everyone completed on one day, so the comparison's dates are that day too
    counts: dict[tuple[bool, str], list[int]] = {}
    pipeline = Decimal(0)
    deals_in_window = 0
    for o in _rows("crm/Opportunity.csv"):
        created = date.fromisoformat(o["CreatedDate"][:10])
        period = ("before" if anchor - timedelta(days=183) <= created < anchor  # 6 months of 30.4375 days
                  else "after" if anchor <= created < anchor + timedelta(days=180) else None)
        assert period is not None, o["Id"]
        is_trained = owners[o["OwnerId"]] in trained
        won, closed = counts.setdefault((is_trained, period), [0, 0])
        counts[is_trained, period] = [won + (o["IsWon"] == "true"), closed + (o["IsClosed"] == "true")]
        if is_trained and period == "after":
            pipeline += Decimal(o["Amount"])
            deals_in_window += 1
    rate = {k: Fraction(won, closed) for k, (won, closed) in counts.items()}
    raw = rate[True, "after"] - rate[True, "before"]
    control = rate[False, "after"] - rate[False, "before"]
    assert raw == Fraction(3, 100) and raw - control == Fraction(2, 100)  # lift 3% raw, 2% adjusted
    assert (deals_in_window, pipeline) == (50, PIPELINE)
    costs = {c["note"]: (c["category"], Decimal(c["amount"])) for c in _rows("costs.csv")}
    assert costs == {"LMS": ("platform", Decimal(5_000)), "content": ("development", Decimal(8_000)),
                     "instructor time": ("facilitation", Decimal(2_000)),
                     "admin": ("administration", Decimal(1_000))}
    assert sum(amount for _, amount in costs.values()) == COST


def test_result_json_gives_the_articles_answer(report: Path):
    doc = json.loads((report / "result.json").read_text(encoding="utf-8"))
    p = doc["headline"]
    assert (p["window_days"], p["trained_units"], p["comparison_units"]) == (180, 2, 4)
    assert p["revenue_definition"] == "seed"
    assert p["did"]["estimate"] == pytest.approx(0.02, abs=1e-12)
    assert p["did"]["details"]["trained_post"] - p["did"]["details"]["trained_baseline"] == pytest.approx(0.03)
    # Every rep alike: the bootstrap has nothing to vary, the interval is the estimate and so is the credit.
    assert p["did"]["ci_low"] == pytest.approx(0.02, abs=1e-12) == p["did"]["ci_high"]
    assert p["opportunities_in_window"] == 50 and Decimal(p["pipeline_value"]) == PIPELINE
    assert Decimal(p["incremental_revenue"]) == INCREMENTAL == Decimal(p["central"]["incremental_revenue"])
    assert Decimal(doc["costs"]["total"]) == COST
    assert Decimal(p["roi_pct"]) == ROI_PCT == Decimal(p["central"]["roi_pct"])
    assert Decimal(p["net_benefit"]) == INCREMENTAL - COST
    assert Decimal(p["central"]["break_even_revenue"]) == COST
    assert Decimal(repr(p["break_even_effect"])) == BREAK_EVEN_LIFT
    # The learners' 8 recorded hours are priced at the study's $0 an hour: costed, adding nothing, no warning.
    costs = doc["costs"]
    assert costs["participant_time_costed"] and costs["by_category"]["participant_time"] == "0.00"
    assert costs["time_sources"]["completion"] == {"participants": 2, "minutes": "480"}
    assert not any("not fully loaded" in w or "participant time" in w for w in doc["warnings"])


def test_the_sensitivity_table_varies_the_lift_as_the_article_does(report: Path):
    doc = json.loads((report / "result.json").read_text(encoding="utf-8"))
    lift = {r["case"]: r for r in doc["sensitivity"] if r["lever"] == "lift"}
    assert set(lift) == set(SCENARIOS)
    for case, (effect, roi_pct) in SCENARIOS.items():
        assert lift[case]["effect"] == pytest.approx(effect, abs=1e-12), case
        assert Decimal(lift[case]["incremental_revenue"]) == Decimal(str(effect)) * PIPELINE, case
        assert Decimal(lift[case]["roi_pct"]) == roi_pct, case

    class Table(HTMLParser):
        """The report's rows whose first cell is ``lift``, as their cells' text."""

        def __init__(self) -> None:
            super().__init__()
            self.rows: list[list[str]] = []
            self.cells: list[str] | None = None

        def handle_starttag(self, tag: str, attrs: object) -> None:
            if tag == "tr":
                self.cells = []
            elif tag == "td" and self.cells is not None:
                self.cells.append("")

        def handle_endtag(self, tag: str) -> None:
            if tag == "tr" and self.cells:
                self.rows.append(self.cells)
            if tag == "tr":
                self.cells = None

        def handle_data(self, data: str) -> None:
            if self.cells:
                self.cells[-1] += data

    table = Table()
    table.feed((report / "report.html").read_text(encoding="utf-8"))
    shown = [(r[1], r[-1]) for r in table.rows if r[0] == "lift"]
    assert shown == [("pessimistic", "−68.8%"), ("base", "−37.5%"), ("optimistic", "−6.3%")]


def test_the_one_pager_says_minus_37_5_percent_on_one_page(report: Path):
    reader = PdfReader(report / "summary.pdf")
    assert len(reader.pages) == 1
    pdf = _plain(reader.pages[0].extract_text())
    html = _plain(re.sub(r"<[^>]+>", " ", (report / "summary.html").read_text(encoding="utf-8")))
    for text in (pdf, html):
        assert "ROI −37.5%" in text  # the answer's sentence, with a true minus sign
        assert "−$6,000" in text and "$10,000" in text and "$16,000" in text  # net benefit, revenue, cost
        assert "50 deals worth $500,000" in text
        assert "break-even at +3.2 pts in win rate" in text
        assert "not fully loaded" not in text
    drawn = ink(report / "summary.pdf")  # rendered: drawn inside the margins, and not blank
    assert drawn.outside(MARGINS) == [] and drawn.share > 0.03


@pytest.mark.libreoffice
def test_the_workbook_recomputes_the_articles_model(report: Path, tmp_path: Path):
    from tests.spreadsheet_engine import number, recalculate, value

    sheets = recalculate(report / "roi_model.xlsx", tmp_path)
    assert value(sheets, "Model", "incremental revenue").quantize(Decimal("0.01")) == INCREMENTAL
    assert value(sheets, "Model", "total cost") == COST
    assert value(sheets, "Model", "ROI") * 100 == ROI_PCT
    assert value(sheets, "Model", "break-even lift") == BREAK_EVEN_LIFT
    lift_rows = [r for r in sheets["Sensitivity"] if r and r[0] == "lift"]
    assert [(number(r[8]) * 100).quantize(Decimal("0.1"), "ROUND_HALF_UP") for r in lift_rows] == [
        roi_pct for _, roi_pct in SCENARIOS.values()]
