"""The full report, read as a first-time reader reads the demo's: one answer first, detail folded, one voice.

The demo (a 300-rep org whose trained reps selected themselves, 24 months, seed 7) is the case
the report was reorganised for: its credited ROI, its central ROI, a sensitivity row, another
window's ROI and a direct revenue estimate all disagree, and its study is under-powered. Every
figure the tests look for is recomputed here from result.json's inputs (revenue, cost, margin,
pipeline) by the ROI formula, not read from the page; the page is parsed with the standard
library's HTML parser, which the product does not use to write it.
"""

from __future__ import annotations

import csv
import json
import re
from decimal import ROUND_HALF_UP, Decimal
from html import unescape
from html.parser import HTMLParser
from typing import Any

import pytest
from typer.testing import CliRunner

from training_roi._format import money, percent, plural
from training_roi.cli import app

SIGNING_HYPHEN = re.compile(r"(?<![0-9A-Za-z])-(?=\$?\d)")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The demo's files, its result document and what it printed."""
    root = tmp_path_factory.mktemp("demo")
    result = CliRunner().invoke(app, ["demo", "--dir", str(root)])
    assert result.exit_code == 0, result.stderr
    return {"root": root, "doc": json.loads((root / "result.json").read_text(encoding="utf-8")),
            "html": (root / "report.html").read_text(encoding="utf-8"), "stdout": result.stdout}


class _Outline(HTMLParser):
    """The report's outline: where each heading, section, fold and contents link lies."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, dict[str, str | None]]] = []
        self.events: list[tuple[str, str]] = []  # ("h2", text) / ("details", id) / ("nav", "") in order
        self.h2: list[dict[str, Any]] = []
        self.folds: dict[str, dict[str, Any]] = {}
        self.links: list[str] = []
        self._text: list[str] | None = None
        self._fold: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag in ("br", "input", "meta"):
            return
        self.stack.append((tag, a))
        if tag == "details":
            self._fold = a.get("id") or ""
            self.folds[self._fold] = {"open": "open" in a, "rows": 0, "order": len(self.events)}
            self.events.append(("details", self._fold))
        elif tag == "nav":
            self.events.append(("nav", ""))
        elif tag == "a" and any(t == "nav" for t, _ in self.stack):
            self.links.append(a.get("href") or "")
        elif tag == "h2":
            self._text = []
        elif tag == "tr" and self._fold is not None:
            self.folds[self._fold]["rows"] += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("br", "input", "meta"):
            return
        while self.stack:
            open_tag, _ = self.stack.pop()
            if open_tag == tag:
                break
        if tag == "h2" and self._text is not None:
            tags = [t for t, _ in self.stack]
            section = next((a.get("id") for t, a in reversed(self.stack) if t == "section"), None)
            self.h2.append({"text": "".join(self._text).strip(), "in_fold": tags[-2:] == ["details", "summary"],
                            "section": section})
            self.events.append(("h2", self.h2[-1]["text"]))
            self._text = None
        if tag == "details":
            self._fold = None

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)


def _outline(html: str) -> _Outline:
    parser = _Outline()
    parser.feed(html)
    return parser


def _text(html: str) -> str:
    """What a reader sees: no styles, charts or tags, entities decoded, spaces collapsed."""
    html = re.sub(r"<(style|svg)\b.*?</\1>", " ", html, flags=re.S)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def _answer(html: str) -> str:
    """The text of the answer section."""
    start = html.index('<section class="answer" id="answer">')
    return _text(html[start:html.index("</section>", start)])


def _roi(revenue: Decimal, margin: Decimal, cost: Decimal) -> str:
    """ROI as a reader sees it, by the product's formula: (revenue × margin − cost) ÷ cost, to one decimal."""
    benefit = (revenue * margin).quantize(Decimal("0.01"), ROUND_HALF_UP)
    return percent(((benefit - cost) / cost * 100).quantize(Decimal("0.1"), ROUND_HALF_UP))


def _row(html: str, label: str, table_class: str = "") -> str:
    """The text of the first table row with a cell that reads ``label`` (in a table of ``table_class``, when given)."""
    opening = f'<table class="{table_class}">' if table_class else "<table>"
    for table in re.findall(re.escape(opening) + r".*?</table>", html, flags=re.S):
        for row in table.split("<tr")[1:]:
            cells = re.findall(r"<t[dh]\b[^>]*>(.*?)</t[dh]>", row, flags=re.S)
            if any(_text(cell) == label for cell in cells):
                return _text("<tr" + row)
    raise AssertionError(f"no row has a cell reading {label!r}")


def test_the_answer_comes_first_and_every_other_section_folds(demo):
    html, doc = demo["html"], demo["doc"]
    outline = _outline(html)
    h2 = outline.h2
    assert h2[0] == {"text": "The answer", "in_fold": False, "section": "answer"}
    # Every other heading heads a fold: <details><summary><h2>.
    assert h2[1:] and all(h["in_fold"] for h in h2[1:]), [h["text"] for h in h2 if not h["in_fold"]]
    # The answer, then the contents, then the folds; the contents link the answer and every fold, in order.
    kinds = [kind for kind, _ in outline.events]
    assert kinds.index("nav") < kinds.index("details")
    assert outline.events[0] == ("h2", "The answer")
    assert outline.links == ["#answer", *(f"#{i}" for i in outline.folds)]
    assert set(outline.folds) >= {"kpis", "windows", "sensitivity", "cost", "learners", "attribution", "warnings"}
    # The per-learner table comes after sensitivity and cost, folded, one row per trained rep (and the header).
    order = list(outline.folds)
    assert order.index("learners") > order.index("sensitivity") and order.index("learners") > order.index("cost")
    assert outline.folds["learners"]["open"] is False
    assert outline.folds["learners"]["rows"] == doc["headline"]["trained_units"] + 1
    assert outline.folds["kpis"]["open"] and outline.folds["sensitivity"]["open"]
    assert "<script" not in html and 'src="http' not in html


def test_the_answer_names_the_credited_figure_and_relates_every_other_roi(demo):
    doc, answer = demo["doc"], _answer(demo["html"])
    head, cost = doc["headline"], Decimal(doc["costs"]["total"])
    margin = Decimal(str(doc["study"]["settings"]["value"]["gross_margin"]))
    credited = Decimal(head["incremental_revenue"])
    assert credited > 0  # the demo credits booked revenue at its lower bound
    assert f"The answer is the credited ROI, {_roi(credited, margin, cost)}" in answer
    # The central estimate of the credited definition.
    booked = Decimal(head["revenue"][head["revenue_definition"]]["estimate"])
    assert f"ROI at the central estimate, {_roi(booked, margin, cost)}" in answer
    # The sensitivity table's base row: the estimated lift × the pipeline (the seed formula), as if it were right.
    seed = (Decimal(str(head["did"]["estimate"])) * Decimal(head["pipeline_value"])).quantize(Decimal("0.01"))
    assert f"Sensitivity table, base row ROI {_roi(seed, margin, cost)}" in answer
    assert f"({money(seed)}), not the credited answer" in answer
    # Every other window: its own credited ROI, or "nothing credited".
    for w in doc["windows"]:
        if w["window_days"] == head["window_days"]:
            continue
        own = Decimal(w["incremental_revenue"])
        said = f"credited ROI {_roi(own, margin, cost)}" if own > 0 else "nothing credited"
        assert f"{w['window_days']} days, {said}" in answer, w["window_days"]
    assert any(Decimal(w["incremental_revenue"]) == 0 for w in doc["windows"])  # the 90-day window credits none
    # The other revenue definitions, one of whose intervals excludes zero, stand beside the answer.
    others = [r for k, r in head["revenue"].items() if k != head["revenue_definition"]]
    assert any(r["interval"][0] > 0 for r in others)
    assert "Other revenue definitions" in answer and "does not change the answer" in answer
    # The study is under-powered: the caution is in the answer, not only in the last list.
    assert head["power_warning"] and "under-powered" in head["power_warning"]
    assert "How sure: Under-powered" in answer
    assert _text(head["power_warning"]).replace("-", "−") in answer.replace("-", "−")


def test_every_figure_speaks_one_voice_in_the_report_and_the_console(demo):
    text, stdout, doc = _text(demo["html"]), demo["stdout"], demo["doc"]
    for shown in (text, stdout):
        assert not SIGNING_HYPHEN.findall(shown), [shown[max(m.start() - 30, 0):m.end() + 10]
                                                    for m in SIGNING_HYPHEN.finditer(shown)][:5]
        assert "(s)" not in shown
        assert "P(effect > 0)" not in shown
    # A behaviour rate at level 3 reads as percentages and points, never as a raw fraction (0.931).
    on_time = next(c for c in doc["phillips"]["application"]["behaviour"] if c["name"] == "tasks completed on time")
    before, after = (Decimal(repr(on_time[k])) * 100 for k in ("mean_before", "mean_after"))
    q = Decimal("0.1")
    assert (f"tasks completed on time: {before.quantize(q, ROUND_HALF_UP)}% → {after.quantize(q, ROUND_HALF_UP)}%"
            in text)
    assert f"{on_time['mean_before']:.3g} →" not in text and f"{on_time['mean_before']:.3g} →" not in stdout
    # The gross margin is a percentage wherever it is shown.
    margin = Decimal(str(doc["study"]["settings"]["value"]["gross_margin"])) * 100
    assert f"gross margin {margin.quantize(q)}%" in text
    assert f"gross margin {doc['study']['settings']['value']['gross_margin']};" not in text
    # A count of one is singular: the demo declares one monetised benefit at level 5.
    assert len(doc["phillips"]["roi"]["benefits"]) == 1
    assert "1 monetised benefit, fully loaded cost" in text


def test_counts_take_the_singular_for_one():
    assert plural(1, "rep") == "1 rep" and plural(2, "rep") == "2 reps" and plural(0, "rep") == "0 reps"
    assert plural(1, "category", "categories") == "1 category"
    assert plural(1_234, "category", "categories") == "1,234 categories"


def test_a_verdict_names_its_reason(demo):
    doc, html = demo["doc"], demo["html"]
    threshold = doc["study"]["settings"]["threshold"]["min_relative_change"]
    reasons = set()
    for k in doc["headline"]["kpis"]:
        did = k["did"]
        straddles = did["ci_low"] <= 0 <= did["ci_high"]
        small = abs(did["estimate"] / did["baseline"]) < threshold
        row = _row(html, k["label"] + (" (lower is better)" if not k["higher_is_better"] else ""))
        if straddles or small:
            assert "not established:" in row, row
            assert ("includes zero" in row) == straddles and ("threshold" in row) == small, row
            reasons.add((straddles, small))
        else:
            assert "not established" not in row and ("improved" in row or "worsened" in row), row
    # The demo has both kinds: an interval across zero, and a certain change under the threshold.
    assert (True, False) in reasons and (False, True) in reasons


def test_attribution_says_what_each_column_means_and_labels_what_is_not_held_to_the_lift(demo):
    doc, html, stdout = demo["doc"], demo["html"], demo["stdout"]
    at = doc["attribution"]
    program = at["calibration"]["program_channel"]
    for term in ("touches", "deals", "credited (raw)", "held to the lift", "standard"):
        assert f"<dt>{term}</dt>" in html
    kinds = []
    for r in at["by_channel"]:
        row = _row(html, r["channel"], "at")
        kinds.append(r["kind"])
        if r["kind"] != "training":
            assert "not held to any lift" in row and row.count(money(r["credited_value"])) == 1, row
        elif r["channel"] == program:
            assert money(at["calibration"]["calibrated_program_value"]) in row and "held to the lift: keeps" in row
        else:
            assert "$0" in row and "no lift established" in row, row
    assert {"training", "activity"} <= set(kinds)
    # In the table, every channel held to a lift comes before every channel that is not.
    table = html[html.index('<table class="at">'):]
    table = table[:table.index("</table>")]
    positions = {r["channel"]: table.index(f"<td>{r['channel']}</td>".replace("&", "&amp;"))
                 for r in at["by_channel"]}
    held = [positions[r["channel"]] for r in at["by_channel"] if r["kind"] == "training"]
    unheld = [positions[r["channel"]] for r in at["by_channel"] if r["kind"] != "training"]
    assert max(held) < min(unheld)
    assert positions[program] == min(held)
    # The console says it too.
    flat = " ".join(stdout.replace("│", " ").split())
    assert "not held" in flat and "not comparable with training's" in flat


def test_the_csv_files_are_rounded_and_still_add_up(demo):
    root, head = demo["root"], demo["doc"]["headline"]
    cents = re.compile(r"^-?\d+\.\d{2}$")
    with (root / "learners.csv").open(encoding="utf-8") as f:
        learners = list(csv.DictReader(f))
    assert len(learners) == head["trained_units"]
    by_unit = {r["unit_id"]: r for r in head["learners"]}
    for row in learners:
        for column in ("pipeline_value", "won_revenue", "incremental_revenue", "cost"):
            assert cents.match(row[column]), (column, row[column])
        for column in ("baseline_conversion", "post_conversion", "lift"):
            if row[column]:
                exact = by_unit[row["unit_id"]][column]
                assert len(row[column].split(".")[-1]) <= 4
                assert Decimal(row[column]) == Decimal(repr(exact)).quantize(Decimal("0.0001"), ROUND_HALF_UP)
    assert sum(Decimal(r["pipeline_value"]) for r in learners) == pytest.approx(Decimal(head["pipeline_value"]),
                                                                                abs=Decimal("0.01"))
    # attribution.csv: money in cents, and each deal's touches add up to its amount to the cent.
    deals: dict[str, tuple[Decimal, Decimal]] = {}
    with (root / "attribution.csv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            assert cents.match(row["credited_value"]) and cents.match(row["calibrated_value"]), row
            total, value = deals.get(row["opportunity_id"], (Decimal(0), Decimal(row["value"])))
            deals[row["opportunity_id"]] = (total + Decimal(row["credited_value"]), value)
    assert deals and all(total == value.quantize(Decimal("0.01")) for total, value in deals.values())



def test_the_forecast_section_shows_the_document_s_months_and_their_roi(demo):
    """The forecast's rows on the page are result.json's, and each ROI follows from its revenue, margin and cost."""
    f = demo["doc"]["forecast"]
    assert f["months"], f["basis"]
    page = unescape(re.sub(r"<[^>]+>", " ", demo["html"]))
    section = page[page.index("The months after training: forecast and scale-up"):]
    margin = Decimal(str(demo["doc"]["study"]["settings"]["value"]["gross_margin"]))
    for h in (6, 12, 18):
        m = f["months"][h - 1]
        assert m["month"] == h
        benefit = (Decimal(m["revenue"]) * margin).quantize(Decimal("0.01"), ROUND_HALF_UP)
        cost = Decimal(m["cost"])
        roi = ((benefit - cost) / cost * 100).quantize(Decimal("0.1"), ROUND_HALF_UP)
        assert Decimal(m["roi_pct"]) == roi
        assert f"{h} months" in section and f"ROI {percent(roi)}" in section
        assert money(Decimal(m["revenue"])) in section
    assert "payback" in section and "scale-up" in section and "rests on" in section
    # The month-by-month table has every month, measured ones first.
    parts = [m["measured"] for m in f["months"]]
    assert parts == sorted(parts, reverse=True) and len(parts) == 18
