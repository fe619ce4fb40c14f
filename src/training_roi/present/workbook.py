"""The seed's spreadsheet as a workbook a reviewer can change: ``roi_model.xlsx``, with live formulas.

The seed article asks for a reproducible spreadsheet whose columns carry the model — lift,
pipeline value, incremental revenue, total cost, ROI — as formulas. The workbook has:

* **Model** — the answer as a chain of formulas: lift × value base = incremental revenue,
  × gross margin = benefit, − total cost = net benefit, ÷ total cost = ROI, with the
  benefit–cost ratio, payback, and the break-even revenue and lift (where ROI = 0); every input
  is a named cell of **Assumptions** or **Costs**;
* **Assumptions** — the credited lift (per unit of the value base), the value base, a deal-size
  change (0 as measured), the gross margin and the months of benefit, each with where it came from;
* **Costs** — each cost line; participant time as minutes × an hourly rate, shared costs as their
  total × the program's share, so changing a rate or a share moves the total;
* **Sensitivity** — the seed's pessimistic / base / optimistic rows for lift, window and deal size,
  their money as formulas of each row's effect and value base and of the margin and cost;
* **Learners** and **Opportunities** — the per-learner and per-deal tables (as the CSV files).

As written, every formula gives the product's own figure to the cent (``result.json``); a changed
assumption recomputes what the product gives for that assumption. Money is rounded to the cent
where the product rounds it (``ROUND``, half away from zero, as ``ROUND_HALF_UP``). Text from the
data is always written as text, never as a formula, whatever character it starts with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import polars as pl
import xlsxwriter
from xlsxwriter.worksheet import Worksheet

from training_roi.evaluation.results import Evaluation
from training_roi.measure import KPIS
from training_roi.present.spreadsheet import learners_frame, opportunities_frame
from training_roi.study.plan import plan_study
from training_roi.value import CostBreakdown
from training_roi.value.sensitivity import Scenario

__all__ = ["CostLine", "WorkbookModel", "model_of", "write_workbook"]

FILE_NAME = "roi_model.xlsx"
_CENT = Decimal("0.01")
MAX_DATA_ROWS = 10_000
"""Rows a data sheet shows (the CSV files hold every row): writing cells is the workbook's cost (about 1.2 s per
10,000 rows of 14 columns), a sheet is for reading and filtering, not for holding an org, and the
model's formulas do not read these sheets; a sheet could hold 1,048,576."""


@dataclass(frozen=True)
class CostLine:
    """One line of the Costs sheet: an amount, minutes × an hourly rate, or a total × a share."""

    label: str
    amount: Decimal | None = None
    minutes: Decimal | None = None
    hourly_rate: Decimal | None = None
    shared_total: Decimal | None = None
    share: Decimal | None = None


@dataclass(frozen=True)
class WorkbookModel:
    """What the Model, Assumptions, Costs and Sensitivity sheets hold."""

    title: str
    lift: float
    """Incremental revenue credited per unit of the value base (for the seed's model: the win-rate lift)."""
    lift_note: str
    value_base: Decimal
    value_base_note: str
    gross_margin: Decimal
    months_of_benefit: Decimal | None
    costs: tuple[CostLine, ...]
    scenarios: tuple[Scenario, ...] = ()
    currency: str = "USD"
    base_is_money: bool = True
    """Whether the value base is money (pipeline, revenue) rather than a count (rep-months, won deals)."""
    effect_is_rate: bool = True
    """Whether the headline KPI's effect (the Sensitivity sheet's effect column) is a rate."""


def _cost_lines(costs: CostBreakdown) -> tuple[CostLine, ...]:
    """The cost breakdown as lines: participant time priced per group when it was derived."""
    lines: list[CostLine] = []
    for category, amount in costs.by_category.items():
        label = category.replace("_", " ")
        if category == "participant_time" and costs.participant_time:
            lines += [CostLine(f"participant time ({p.title or 'all participants'})", minutes=p.minutes,
                               hourly_rate=p.hourly_rate) for p in costs.participant_time]
        elif category == "participant_time" and not costs.time_costed:
            lines.append(CostLine("participant time (recorded, not costed: no hourly rate given)", Decimal(0)))
        else:
            lines.append(CostLine(label, amount))
    if costs.shared_total:
        lines.append(CostLine("shared costs (share allocated to the program)", shared_total=costs.shared_total,
                              share=costs.shared_share))
    return tuple(lines)


def model_of(ev: Evaluation) -> WorkbookModel:
    """The workbook's inputs from an evaluation: its credited definition of revenue and its costs."""
    p = ev.primary
    chosen = p.revenue.get(p.revenue_definition)
    unit = ev.study.population.unit
    effect_is_rate = KPIS[p.headline_kpi].unit == "rate"
    base_is_money = True
    if (p.revenue_definition == "seed" or chosen is None) and p.headline_kpi == "win_rate":
        base, base_note = p.value_base, f"pipeline value of the trained {unit}s' deals created in the window"
        lift_note = "win-rate lift credited (the lower bound of its interval, or 0 when not established)"
    elif p.revenue_definition == "seed" or chosen is None:
        base, base_is_money = p.value_base, False
        base_note = f"what the headline KPI's effect multiplies: incremental revenue = {p.value_formula}"
        lift_note = "the headline KPI's effect credited, per unit of the value base (0 when not established)"
    else:
        base = chosen.observed
        base_note = (f"{chosen.label} of the trained {unit}s in the window ({chosen.meaning}); "
                     "not all of it caused by training")
        lift_note = (f"share of that {chosen.label} credited to training (the lower bound of its interval, "
                     "or 0 when not established)")
    lift = float(p.incremental_revenue / base) if base else 0.0
    months = plan_study(ev.study).windows.benefit_months(p.window_days)
    return WorkbookModel(
        title=f"{ev.study.name}: ROI model ({p.window_days}-day window)", lift=lift, lift_note=lift_note,
        value_base=base, value_base_note=base_note, gross_margin=Decimal(str(ev.study.value.gross_margin)),
        months_of_benefit=months, costs=_cost_lines(ev.costs), scenarios=ev.sensitivity,
        currency=ev.study.currency, base_is_money=base_is_money, effect_is_rate=effect_is_rate,
    )


def _half_up(value: Decimal) -> Decimal:
    return value.quantize(_CENT, ROUND_HALF_UP)


def _line_amount(line: CostLine) -> Decimal:
    """A cost line's amount, as its formula gives it."""
    if line.minutes is not None and line.hourly_rate is not None:
        return _half_up(line.minutes * line.hourly_rate / 60)
    if line.shared_total is not None and line.share is not None:
        return _half_up(line.shared_total * line.share)
    return line.amount or Decimal(0)


def _total(lines: Sequence[CostLine]) -> Decimal:
    """The cost lines' total, as the Costs sheet's SUM gives it."""
    return sum((_line_amount(line) for line in lines), Decimal(0))


def figures(m: WorkbookModel) -> dict[str, Any]:
    """Every Model figure as its formula gives it with the assumptions as written (the values cached in the file).

    A spreadsheet that shows stored values rather than recomputing (a viewer, a mail preview,
    LibreOffice's default for .xlsx files) then still shows the answer.
    """
    base = m.value_base
    revenue = _half_up(Decimal(repr(m.lift)) * base)
    benefit = _half_up(revenue * m.gross_margin)
    cost = _total(m.costs)
    net = benefit - cost
    out: dict[str, Any] = {
        "ModelLift": m.lift, "AdjustedBase": float(base), "IncrementalRevenue": float(revenue),
        "ModelMargin": float(m.gross_margin), "Benefit": float(benefit), "ModelCost": float(cost),
        "NetBenefit": float(net), "ROI": float(net) / float(cost) if cost > 0 else "#N/A",
        "BenefitCostRatio": float(benefit) / float(cost) if cost > 0 else "#N/A",
        "BreakEvenRevenue": float(cost) / float(m.gross_margin),
        "BreakEvenLift": float(cost) / (float(m.gross_margin) * float(base)) if base > 0 else "#N/A",
        "TotalCost": float(cost),
    }
    if m.months_of_benefit is not None:
        out["PaybackMonths"] = (float(cost) / (float(benefit) / float(m.months_of_benefit)) if benefit > 0
                                else "not reached")
    return out


class _Formats:
    """The workbook's cell formats, made once."""

    def __init__(self, book: xlsxwriter.Workbook, currency: str) -> None:
        sign = "$" if currency == "USD" else ""
        suffix = "" if currency == "USD" else f' "{currency}"'
        self.title = book.add_format({"bold": True, "font_size": 14})
        self.header = book.add_format({"bold": True, "bg_color": "#DDE4EE", "bottom": 1, "text_wrap": True,
                                       "valign": "top"})
        money = f'{sign}#,##0.00{suffix};−{sign}#,##0.00{suffix}'
        self.money = book.add_format({"num_format": money})
        self.money_input = book.add_format({"num_format": money, "bg_color": "#FFF7D6"})
        self.money_bold = book.add_format({"num_format": money, "bold": True})
        self.pct = book.add_format({"num_format": "0.0%;−0.0%"})
        self.pct_bold = book.add_format({"num_format": "0.0%;−0.0%", "bold": True})
        self.pct_input = book.add_format({"num_format": "0.0000%;−0.0000%", "bg_color": "#FFF7D6"})
        self.pct_fine = book.add_format({"num_format": "0.0000%;−0.0000%"})
        self.number = book.add_format({"num_format": "#,##0.00"})
        self.number_input = book.add_format({"num_format": "#,##0.00", "bg_color": "#FFF7D6"})
        self.ratio = book.add_format({"num_format": "0.0000"})
        self.wrap = book.add_format({"text_wrap": True, "valign": "top"})
        self.text = book.add_format({})


def _name(book: xlsxwriter.Workbook, name: str, sheet: str, row: int, col: int) -> None:
    """Name one cell (absolute), so formulas read as the model's words."""
    book.define_name(name, f"='{sheet}'!${chr(ord('A') + col)}${row + 1}")


def _sheet(book: xlsxwriter.Workbook, f: _Formats, name: str, title: str,
           columns: Sequence[tuple[str, int]]) -> Worksheet:
    """A sheet with a title on row 1, column heads on row 3 (frozen), and the columns' widths."""
    ws: Worksheet = book.add_worksheet(name)
    ws.write_string(0, 0, title, f.title)
    for col, (head, width) in enumerate(columns):
        ws.write_string(2, col, head, f.header)
        ws.set_column(col, col, width)
    ws.freeze_panes(3, 0)
    return ws


def _assumptions(book: xlsxwriter.Workbook, f: _Formats, m: WorkbookModel) -> None:
    ws = _sheet(book, f, "Assumptions", "Assumptions (yellow cells can be changed; the Model sheet follows)",
                [("assumption", 22), ("value", 18), ("where it comes from", 90)])
    lift_format = f.pct_input if m.effect_is_rate or m.base_is_money else f.number_input
    rows: list[tuple[str, str, Any, Any, str]] = [
        ("Lift", "lift (credited)", m.lift, lift_format, m.lift_note),
        ("ValueBase", "value base", float(m.value_base), f.money_input if m.base_is_money else f.number_input,
         m.value_base_note),
        ("DealSizeChange", "deal-size change", 0.0, f.pct_input,
         "relative change applied to the value base (the seed's ±10% deal-size scenario); 0 = as measured"),
        ("GrossMargin", "gross margin", float(m.gross_margin), f.pct_input,
         "share of incremental revenue that is benefit (100% = ROI on revenue, not profit)"),
    ]
    if m.months_of_benefit is not None:
        rows.append(("MonthsOfBenefit", "months of benefit", float(m.months_of_benefit), f.number_input,
                     "months the benefit accrues over (for payback)"))
    for i, (name, label, value, fmt, note) in enumerate(rows, start=3):
        ws.write_string(i, 0, label)
        ws.write_number(i, 1, value, fmt)
        ws.write_string(i, 2, note, f.wrap)
        _name(book, name, "Assumptions", i, 1)


def _costs(book: xlsxwriter.Workbook, f: _Formats, lines: Sequence[CostLine]) -> None:
    ws = _sheet(book, f, "Costs", "Fully loaded cost (yellow cells can be changed)",
                [("cost line", 52), ("minutes", 15), ("hourly rate", 15), ("shared total", 15), ("share", 15),
                 ("amount", 15)])
    first = 3
    for i, line in enumerate(lines, start=first):
        ws.write_string(i, 0, line.label)
        if line.minutes is not None and line.hourly_rate is not None:
            ws.write_number(i, 1, float(line.minutes), f.number)
            ws.write_number(i, 2, float(line.hourly_rate), f.money_input)
            ws.write_formula(i, 5, f"=ROUND(B{i + 1}*C{i + 1}/60,2)", f.money, float(_line_amount(line)))
        elif line.shared_total is not None and line.share is not None:
            ws.write_number(i, 3, float(line.shared_total), f.money)
            ws.write_number(i, 4, float(line.share), f.pct_input)
            ws.write_formula(i, 5, f"=ROUND(D{i + 1}*E{i + 1},2)", f.money, float(_line_amount(line)))
        else:
            ws.write_number(i, 5, float(line.amount or 0), f.money_input)
    total = first + len(lines)
    ws.write_string(total, 0, "total (fully loaded)", f.header)
    ws.write_formula(total, 5, f"=SUM(F{first + 1}:F{total})", f.money_bold, float(_total(lines)))
    _name(book, "TotalCost", "Costs", total, 5)


def _model(book: xlsxwriter.Workbook, f: _Formats, m: WorkbookModel) -> None:
    ws = _sheet(book, f, "Model", m.title, [("figure", 22), ("value", 18), ("formula", 60)])
    payback = ("=IF(Benefit>0,TotalCost/(Benefit/MonthsOfBenefit),\"not reached\")"
               if m.months_of_benefit is not None else None)
    rows: list[tuple[str, str, str, Any]] = [
        ("ModelLift", "lift (credited)", "=Lift", f.pct if m.effect_is_rate or m.base_is_money else f.number),
        ("AdjustedBase", "value base", "=ValueBase*(1+DealSizeChange)", f.money if m.base_is_money else f.number),
        ("IncrementalRevenue", "incremental revenue", "=ROUND(Lift*AdjustedBase,2)", f.money),
        ("ModelMargin", "gross margin", "=GrossMargin", f.pct),
        ("Benefit", "benefit", "=ROUND(IncrementalRevenue*GrossMargin,2)", f.money),
        ("ModelCost", "total cost", "=TotalCost", f.money),
        ("NetBenefit", "net benefit", "=Benefit-TotalCost", f.money_bold),
        ("ROI", "ROI", "=IF(TotalCost>0,NetBenefit/TotalCost,NA())", f.pct_bold),
        ("BenefitCostRatio", "benefit-cost ratio", "=IF(TotalCost>0,Benefit/TotalCost,NA())", f.ratio),
        ("BreakEvenRevenue", "break-even incremental revenue", "=TotalCost/GrossMargin", f.money),
        ("BreakEvenLift", "break-even lift", "=IF(AdjustedBase>0,TotalCost/(GrossMargin*AdjustedBase),NA())",
         f.pct_fine),
    ]
    if payback is not None:
        rows.append(("PaybackMonths", "payback (months)", payback, f.number))
    cached = figures(m)
    for i, (name, label, formula, fmt) in enumerate(rows, start=3):
        ws.write_string(i, 0, label)
        ws.write_formula(i, 1, formula, fmt, cached[name])
        ws.write_string(i, 2, formula.removeprefix("="))
        _name(book, name, "Model", i, 1)


def _sensitivity(book: xlsxwriter.Workbook, f: _Formats, m: WorkbookModel) -> None:
    ws = _sheet(book, f, "Sensitivity", "Sensitivity: pessimistic, base and optimistic lift, window and deal size "
                "(each row applies its estimated effect)",
                [("lever", 12), ("case", 12), ("assumption", 48), ("effect", 16), ("value base", 16),
                 ("incremental revenue", 16), ("benefit", 16), ("net benefit", 16), ("ROI", 16)])
    cost = float(_total(m.costs))
    for i, s in enumerate(m.scenarios, start=3):
        r = i + 1
        ws.write_string(i, 0, s.lever)
        ws.write_string(i, 1, s.case)
        ws.write_string(i, 2, s.assumption, f.wrap)
        ws.write_number(i, 3, s.effect, f.pct if m.effect_is_rate else f.number)
        ws.write_number(i, 4, float(s.value_base), f.money if m.base_is_money else f.number)
        ws.write_formula(i, 5, f"=ROUND(D{r}*E{r},2)", f.money, float(s.incremental_revenue))
        ws.write_formula(i, 6, f"=ROUND(F{r}*GrossMargin,2)", f.money, float(s.benefit))
        ws.write_formula(i, 7, f"=G{r}-TotalCost", f.money, float(s.net_benefit))
        ws.write_formula(i, 8, f"=IF(TotalCost>0,H{r}/TotalCost,NA())", f.pct,
                         float(s.net_benefit) / cost if cost > 0 else "#N/A")


_MONEY_COLUMNS = {"pipeline_value", "won_revenue", "incremental_revenue", "cost", "amount"}
_NUMBER_COLUMNS = {"roi_pct"}
"""Columns the CSV files write as exact decimal text that the sheets hold as numbers."""


def _table(book: xlsxwriter.Workbook, f: _Formats, name: str, frame: pl.DataFrame, total: int | None = None) -> None:
    """A data sheet: a frozen header, a filter, widths from the content; text always as text.

    At most :data:`MAX_DATA_ROWS` rows (the CSV file beside the workbook has them all, ``total``
    when the frame was cut before it came here); each column is converted once and written with
    the one writer its type needs.
    """
    ws: Worksheet = book.add_worksheet(name)
    if frame.is_empty() and not frame.columns:
        ws.write_string(0, 0, "no rows")
        return
    for col, head in enumerate(frame.columns):
        ws.write_string(0, col, head, f.header)
    shown = frame.head(MAX_DATA_ROWS)
    columns: list[tuple[list[Any], Any, Any]] = []
    for column in shown.columns:
        series = shown[column]
        if column in _MONEY_COLUMNS and series.dtype == pl.String:
            columns.append((series.cast(pl.Float64, strict=False).to_list(), ws.write_number, f.money))
        elif column in _NUMBER_COLUMNS and series.dtype == pl.String:
            columns.append((series.cast(pl.Float64, strict=False).to_list(), ws.write_number, f.number))
        elif series.dtype == pl.Boolean:
            columns.append((series.to_list(), ws.write_boolean, None))
        elif series.dtype.is_numeric():
            columns.append((series.cast(pl.Float64).to_list(), ws.write_number, None))
        else:
            columns.append((series.cast(pl.String).to_list(), ws.write_string, None))
    for r in range(shown.height):
        for c, (values, write, fmt) in enumerate(columns):
            v = values[r]
            if v is not None and v == v:  # NaN (a number that is not one) is left blank, as None is
                write(r + 1, c, v, fmt)
    rows = max(frame.height, total or 0)
    if rows > shown.height:
        ws.write_string(shown.height + 1, 0, f"… and {rows - shown.height:,} more rows: every row is in "
                        f"{name.lower()}.csv")
    for c, column in enumerate(frame.columns):
        longest = max([len(column), *(len(str(v)) for v in frame[column].head(500).to_list() if v is not None)])
        ws.set_column(c, c, min(max(longest + 2, 10), 60))
    ws.freeze_panes(1, 0)
    ws.autofilter(0, 0, shown.height, len(frame.columns) - 1)


def write_model_workbook(m: WorkbookModel, path: Path, *, learners: pl.DataFrame | None = None,
                         opportunities: pl.DataFrame | None = None, opportunities_total: int | None = None) -> Path:
    """Write the workbook of ``m`` (and the data sheets given) to ``path``; return it.

    ``opportunities_total`` is how many opportunities there are when the frame given holds only the first.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    # Text is never turned into a formula or a number by the writer: a name such as =HYPERLINK(…)
    # stays the text it was.
    # Rows are written in order, so the writer keeps one row in memory at a time (constant_memory).
    book = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False, "strings_to_numbers": False,
                                           "strings_to_urls": False, "constant_memory": True})
    f = _Formats(book, m.currency)
    _model(book, f, m)
    _assumptions(book, f, m)
    _costs(book, f, m.costs)
    if m.scenarios:
        _sensitivity(book, f, m)
    if learners is not None:
        _table(book, f, "Learners", learners)
    if opportunities is not None:
        _table(book, f, "Opportunities", opportunities, opportunities_total)
    book.close()
    return path


def write_workbook(ev: Evaluation, out_dir: Path) -> Path:
    """Write ``roi_model.xlsx`` for an evaluation into ``out_dir``; return its path."""
    total = ev.opportunities.num_rows if ev.opportunities is not None else 0
    return write_model_workbook(model_of(ev), out_dir / FILE_NAME, learners=learners_frame(ev),
                                opportunities=opportunities_frame(ev, limit=MAX_DATA_ROWS), opportunities_total=total)
