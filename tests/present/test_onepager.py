"""The executive one-pager: one PDF page whose text holds the headline figures, nothing drawn off the page.

The PDF is read back with three libraries that did not write it: pypdf counts its pages and
extracts its text; pdfplumber says where every character lies, so text running past the page's
edge (an overflow) is caught whatever the figures; PDFium renders the page to pixels, whose ink
(text, rules and charts alike) must lie inside the margins the page is laid out in. The figures
are compared with result.json.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pdfplumber
import pytest
from pypdf import PdfReader

from tests.builders import ingest_and_report, simulated_with_trained_rep_named
from tests.present.pixels import ink
from training_roi._format import money, percent
from training_roi.present.onepager import MARGINS

LONG = "Sales Excellence 2025 — a pilot cohort with a name as long as a board memo's title, and then some"


def _plain(text: str) -> str:
    """Text as extracted, with the true minus sign and spacing normalised (a Latin-1 font writes '-')."""
    return " ".join(text.replace("−", "-").split())


@pytest.mark.slow
def test_the_one_pager_is_one_page_with_the_headline_figures_and_nothing_off_it(tmp_path: Path):
    data = tmp_path / "data"
    truth = simulated_with_trained_rep_named(data, "Ana Rep")
    out = ingest_and_report(data, tmp_path, truth, LONG, value={"hurdle_rate": 0.1})
    doc = json.loads((out / "result.json").read_text())
    central, payback = doc["headline"]["central"], doc["payback"]
    # Without cost ranges the odds are exact shares of the replicates: the central ROI's own P(ROI > 0).
    assert payback["prob_positive"] == central["prob_positive"] and payback["seed"] is None
    assert payback["hurdle_pct"] == 10.0 and payback["prob_hurdle"] <= payback["prob_positive"]
    effect = doc["grids"][0]
    middle = effect["column_values"].index("+0%")
    central_row = next(i for i, label in enumerate(effect["row_values"]) if label.startswith("central"))
    assert Decimal(effect["roi_pct"][central_row][middle]) == Decimal(central["roi_pct"]).quantize(Decimal("0.1"))
    reader = PdfReader(out / "summary.pdf")
    assert len(reader.pages) == 1
    text = _plain(reader.pages[0].extract_text())
    for figure in (percent(Decimal(central["roi_pct"])), money(Decimal(central["net_benefit"])),
                   money(Decimal(central["break_even_revenue"])), f"P(ROI > 0) {central['prob_positive']:.1%}",
                   f"P(ROI > 10.0%, the hurdle) {payback['prob_hurdle']:.1%}"):
        assert _plain(figure) in text, figure
    assert "What would change the answer most" in text and "The five Phillips levels" in text
    # The levels as a strip, in order across the page: reaction to ROI, level 5 with the credited ROI.
    strip = [text.index(f"{i} {name}") for i, name in enumerate(("reaction", "learning", "application", "impact",
                                                                   "ROI"), 1)]
    assert strip == sorted(strip)
    assert _plain(f"5 ROI ✓ ROI {percent(Decimal(doc['phillips']['roi']['figures']['roi_pct']))}") in text
    with pdfplumber.open(out / "summary.pdf") as pdf:
        page = pdf.pages[0]
        chars = page.chars
        assert len(chars) > 500
        assert min(c["x0"] for c in chars) >= 20 and max(c["x1"] for c in chars) <= page.width - 20
        assert min(c["top"] for c in chars) >= 20 and max(c["bottom"] for c in chars) <= page.height - 20
        assert len(page.images) == 3  # the effect by window, the trend and the tornado charts
    drawn = ink(out / "summary.pdf")
    assert drawn.outside(MARGINS) == []
    # Not blank: ink from the top margin to below the middle of the page, across most of its width.
    assert drawn.share > 0.03 and drawn.top < 2 * MARGINS[1] and drawn.bottom > drawn.height / 2
    assert drawn.right - drawn.left > 0.8 * (drawn.width - MARGINS[0] - MARGINS[2])
    html = _plain((out / "summary.html").read_text(encoding="utf-8"))
    assert _plain(percent(Decimal(central["roi_pct"]))) in html and "<script" not in html


def test_a_page_that_would_run_long_gives_way_section_by_section(tmp_path: Path):
    import vl_convert as vlc

    from training_roi.present.levels import LevelCell
    from training_roi.present.onepager import Figure, Summary, fit

    long = "a figure explained at length, " * 12
    summary = Summary(
        title=LONG, subtitle="program · window", answer="The program did not pay back its cost. " * 10,
        how_sure=(long * 2, long * 2), figures=tuple(Figure(f"figure {i}", "−$1,234,567", long) for i in range(4)),
        levels=tuple(LevelCell(f"{i} level", i % 2 == 0, long[:46]) for i in range(1, 6)), design=long,
        drivers=(long, long, long), data=long,
    )
    chart = vlc.vegalite_to_png('{"mark": "bar", "data": {"values": [{"a": 1}]}, "encoding": {"x": {"field": "a"}}}')
    fit(summary, [chart, chart], tmp_path / "long.pdf")
    assert len(PdfReader(tmp_path / "long.pdf").pages) == 1
    with pdfplumber.open(tmp_path / "long.pdf") as pdf:
        page = pdf.pages[0]
        assert max(c["bottom"] for c in page.chars) <= page.height - 20
        text = _plain(page.extract_text())
    assert "How the effect was isolated, and the data" in text  # the last section is still there
    assert "The five Phillips levels" not in text  # it gave way
    drawn = ink(tmp_path / "long.pdf")
    assert drawn.outside(MARGINS) == []  # as pixels: nothing in the margins, the bottom one included
    assert drawn.share > 0.05 and drawn.bottom > 0.75 * drawn.height  # a full page, not a blank one


def test_the_pixel_check_sees_ink_in_a_margin_and_a_blank_page(tmp_path: Path):
    from fpdf import FPDF

    def page(*texts: tuple[float, float]) -> Path:
        pdf = FPDF(unit="pt", format="letter")
        pdf.add_page()
        pdf.set_font("Helvetica", size=10)
        for x, y in texts:
            pdf.text(x, y, "ink")
        path = tmp_path / f"page{len(list(tmp_path.glob('*.pdf')))}.pdf"
        pdf.output(str(path))
        return path

    inside = ink(page((100, 100), (400, 700)))
    assert inside.outside(MARGINS) == [] and 0 < inside.share < 0.01
    assert 99 <= inside.left <= 101 and 690 <= inside.bottom <= 703  # the words where they were written
    assert ink(page((100, 100), (590, 400))).outside(MARGINS) == ["right"]  # 22 points from the edge
    assert ink(page((10, 10), (100, 785))).outside(MARGINS) == ["left", "top", "bottom"]
    blank = ink(page())
    assert blank.share == 0 and blank.outside(MARGINS) == []
