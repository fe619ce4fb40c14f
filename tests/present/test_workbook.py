"""The workbook ``roi_model.xlsx``, recomputed by a real spreadsheet engine (LibreOffice, headless).

Oracles: the seed article's worked example (lift 2%, 50 deals of $10,000, costs $16,000: ROI
−37.5%) and its lift scenarios worked by hand; and, for a simulated org, the product's own
result.json, which the workbook's formulas must give to the cent — also after a reviewer changes
an assumption cell.
"""

from __future__ import annotations

import json
import re
import zipfile
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from tests.builders import ingest_and_report, simulated_with_trained_rep_named
from tests.spreadsheet_engine import number, recalculate, value
from training_roi.present.workbook import CostLine, WorkbookModel, write_model_workbook
from training_roi.value.roi import roi
from training_roi.value.sensitivity import sensitivity

pytestmark = pytest.mark.libreoffice
REP = '=HYPERLINK("http://attacker.example","Sandra")'


def _seed_model() -> WorkbookModel:
    costs = (CostLine("LMS", Decimal(5000)), CostLine("content", Decimal(8000)),
             CostLine("instructor time", minutes=Decimal(2400), hourly_rate=Decimal(50)),  # 40 h × $50
             CostLine("admin", Decimal(1000)))
    return WorkbookModel(
        title="Seed worked example", lift=0.02, lift_note="adjusted lift after control",
        value_base=Decimal(500_000), value_base_note="50 opportunities × $10,000", gross_margin=Decimal(1),
        months_of_benefit=Decimal(12), costs=costs,
        scenarios=sensitivity(effect=0.02, interval=(0.01, 0.03), value_base=Decimal(500_000), cost=Decimal(16_000)),
    )


def _set_cell(workbook: Path, sheet_file: str, ref: str, value: float) -> None:
    """Change one number cell in the file, as a reviewer typing into it would."""
    with zipfile.ZipFile(workbook) as z:
        parts = {name: z.read(name) for name in z.namelist()}
    xml = parts[sheet_file].decode()
    pattern = re.compile(rf'(<c r="{ref}"[^>]*><v>)[^<]*(</v>)')
    assert pattern.search(xml), f"no number in {ref}"
    parts[sheet_file] = pattern.sub(rf"\g<1>{value!r}\g<2>", xml).encode()
    with zipfile.ZipFile(workbook, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in parts.items():
            z.writestr(name, data)


def test_the_seed_worked_example_recomputes_to_its_figures(tmp_path: Path):
    path = write_model_workbook(_seed_model(), tmp_path / "seed.xlsx")
    sheets = recalculate(path, tmp_path)
    assert value(sheets, "Model", "incremental revenue") == 10_000
    assert value(sheets, "Model", "total cost") == 16_000
    assert float(value(sheets, "Model", "ROI")) == pytest.approx(-0.375, abs=1e-12)
    assert value(sheets, "Model", "break-even incremental revenue") == 16_000
    assert float(value(sheets, "Model", "break-even lift")) == pytest.approx(0.032, abs=1e-12)  # 16,000 / 500,000
    assert value(sheets, "Costs", "instructor time", 5) == 2_000
    lift_rows = [r for r in sheets["Sensitivity"] if r and r[0] == "lift"]
    # Worked by hand: (5,000 − 16,000) / 16,000 and (15,000 − 16,000) / 16,000.
    assert [float(number(r[8])) for r in lift_rows] == pytest.approx([-0.6875, -0.375, -0.0625])
    # A viewer that shows the values stored in the file, without computing, shows the same answer.
    cached = recalculate(path, tmp_path, recalc=False)
    for sheet in ("Model", "Costs", "Sensitivity"):
        assert cached[sheet] == sheets[sheet], sheet


def test_a_changed_assumption_recomputes_roi(tmp_path: Path):
    path = write_model_workbook(_seed_model(), tmp_path / "seed.xlsx")
    _set_cell(path, "xl/worksheets/sheet2.xml", "B4", 0.03)  # Assumptions: lift 2% → 3%
    _set_cell(path, "xl/worksheets/sheet3.xml", "C6", 75.0)  # Costs: instructor rate $50 → $75
    sheets = recalculate(path, tmp_path)
    # 3% × $500,000 = $15,000; cost 5,000 + 8,000 + 40 h × $75 + 1,000 = $17,000.
    assert value(sheets, "Model", "total cost") == 17_000
    assert float(value(sheets, "Model", "ROI")) == pytest.approx(-2_000 / 17_000, abs=1e-12)
    assert float(value(sheets, "Model", "payback (months)")) == pytest.approx(17_000 / (15_000 / 12), abs=1e-9)


@pytest.mark.slow
def test_a_reports_workbook_gives_the_reports_figures_to_the_cent(tmp_path: Path):
    data = tmp_path / "data"
    truth = simulated_with_trained_rep_named(data, REP)
    out = ingest_and_report(data, tmp_path, truth, "Workbook", value={"gross_margin": 0.6, "revenue": "seed"})
    doc = json.loads((out / "result.json").read_text())
    p = doc["headline"]
    sheets = recalculate(out / "roi_model.xlsx", tmp_path)
    cached = recalculate(out / "roi_model.xlsx", tmp_path, recalc=False)
    assert cached["Model"] == sheets["Model"] and cached["Sensitivity"] == sheets["Sensitivity"]

    def money(label: str) -> Decimal:
        return value(sheets, "Model", label).quantize(Decimal("0.01"))

    assert money("incremental revenue") == Decimal(p["incremental_revenue"])
    assert money("benefit") == Decimal(p["benefit"])
    assert money("total cost") == Decimal(doc["costs"]["total"])
    assert money("net benefit") == Decimal(p["net_benefit"])
    roi_cell = value(sheets, "Model", "ROI") * 100
    assert roi_cell.quantize(Decimal("0.01")) == Decimal(p["roi_pct"])
    # The tornado starts from the central ROI and moves the effect over the central estimate's interval.
    tornado = doc["tornado"]
    assert Decimal(tornado["roi_pct"]) == Decimal(p["central"]["roi_pct"]).quantize(Decimal("0.1"))
    bars = {b["assumption"]: b for b in tornado["bars"]}
    assert {"effect", "deal size", "gross margin", "hourly rate"} <= set(bars)
    effect = bars["effect"]
    assert Decimal(effect["low_roi_pct"]) <= Decimal(tornado["roi_pct"]) <= Decimal(effect["high_roi_pct"])
    rows = [r for r in sheets["Sensitivity"][3:] if r and r[0]]
    assert len(rows) == len(doc["sensitivity"]) >= 6
    for row, scenario in zip(rows, doc["sensitivity"], strict=True):
        assert number(row[5]).quantize(Decimal("0.01")) == Decimal(scenario["incremental_revenue"])
        assert (number(row[8]) * 100).quantize(Decimal("0.1")) == Decimal(scenario["roi_pct"])
    # Text from the data is text: the hostile name is kept as written, never run as a formula.
    assert any(REP in row for row in sheets["Learners"])
    assert not any(c == "Sandra" for row in sheets["Learners"] for c in row)
    # A reviewer's change: the lift set to the one estimated (not credited) and gross margin 60% → 80% give
    # the product's own figures for those assumptions.
    base_case = next(sc for sc in doc["sensitivity"] if sc["lever"] == "lift" and sc["case"] == "base")
    _set_cell(out / "roi_model.xlsx", "xl/worksheets/sheet2.xml", "B4", base_case["effect"])
    _set_cell(out / "roi_model.xlsx", "xl/worksheets/sheet2.xml", "B7", 0.8)
    changed = recalculate(out / "roi_model.xlsx", tmp_path / "again")
    assert value(changed, "Model", "incremental revenue").quantize(Decimal("0.01")) == Decimal(
        base_case["incremental_revenue"]) != 0
    benefit = (Decimal(base_case["incremental_revenue"]) * Decimal("0.8")).quantize(Decimal("0.01"))
    expected = roi(benefit, Decimal(doc["costs"]["total"])).roi_pct.quantize(Decimal("0.01"))
    assert (value(changed, "Model", "ROI") * 100).quantize(Decimal("0.01")) == expected


def test_a_data_sheet_longer_than_a_sheet_holds_says_where_the_rest_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from training_roi.present import workbook

    monkeypatch.setattr(workbook, "MAX_DATA_ROWS", 3)
    frame = pl.DataFrame({"opportunity_id": [f"O{i}" for i in range(5)], "amount": ["10.00"] * 5})
    path = write_model_workbook(_seed_model(), tmp_path / "big.xlsx", opportunities=frame)
    rows = recalculate(path, tmp_path)["Opportunities"]
    assert [r[0] for r in rows[1:4]] == ["O0", "O1", "O2"] and [float(r[1]) for r in rows[1:4]] == [10.0] * 3
    assert rows[4][0] == "… and 2 more rows: every row is in opportunities.csv"
