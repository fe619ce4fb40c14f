"""The executive one-pager: did it pay off, by how much, how sure — ``summary.html`` and ``summary.pdf``.

The seed article ends with "a one-page executive summary showing incremental revenue and ROI
under conservative assumptions"; the people who decide read it in their inbox. :func:`summary_of`
gathers what the page says from an evaluation — the answer in words, the credited ROI (the
answer), ROI and net benefit at the central estimate with their intervals, P(ROI > 0), the
break-even beside what was measured, payback and the under-power caution (all worded once, in
:mod:`training_roi.present.executive`, which the full report opens with too), the forecast at 6,
12 and 18 months, the Phillips levels as a strip, the design and why, the three assumptions that
move the answer most (from the tornado) and the data behind it — and two writers lay it out:
an HTML page that opens offline and prints on one page, and a one-page PDF drawn with fpdf2 (pure
Python: no browser, no system library), its charts rendered by Vega's own renderer.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from training_roi._format import money, percent
from training_roi.evaluation.results import Evaluation
from training_roi.present.charts import effect_spec, png_of, svg_of, tornado_chart, trend_spec
from training_roi.present.executive import Figure, executive
from training_roi.present.forecast import forecast_rows
from training_roi.present.levels import LevelCell, level_strip

__all__ = ["MARGINS", "Figure", "Summary", "fit", "summary_of", "write_summary"]


@dataclass(frozen=True)
class Summary:
    """Everything the one-pager says, as text."""

    title: str
    subtitle: str
    answer: str
    how_sure: tuple[str, ...]
    figures: tuple[Figure, ...]
    levels: tuple[LevelCell, ...]
    """Phillips' five levels as a strip: which have data, and each one's first figure."""
    design: str
    drivers: tuple[str, ...]
    data: str
    caution: str = ""
    """The under-power warning, when the study could not detect the effect it measured."""
    outlook: tuple[tuple[str, str], ...] = ()
    """The forecast: ROI at 6, 12 and 18 months after training, payback, scale-up (label, sentence)."""


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def summary_of(ev: Evaluation) -> Summary:
    """What the one-pager says about ``ev``."""
    p, s = ev.primary, ev.study
    unit = s.population.unit
    top = executive(ev)
    levels = level_strip(ev)
    drivers: tuple[str, ...] = ()
    if ev.tornado is not None:
        drivers = tuple(f"{b.assumption}: ROI {percent(b.low_roi_pct)} ({b.low}) to {percent(b.high_roi_pct)} "
                        f"({b.high})" for b in ev.tornado.bars[:3])
    design = f"{p.design_label}" + (f": {ev.design_reason}" if ev.design_reason else "")
    data = (f"{p.trained_units:,} trained and {p.comparison_units:,} comparison {unit}s; "
            f"{p.opportunities_in_window:,} deals worth {money(p.pipeline_value)} created by the trained {unit}s in "
            f"their {p.window_days}-day windows; {ev.data.get('crm_opportunity', 0):,} opportunities and "
            f"{ev.data.get('lms_statement', 0):,} learning statements in the warehouse; study {s.hash}")
    return Summary(
        title=_short(s.name, 120),
        subtitle=_short(f"{s.program.name} · {p.window_days}-day attribution window · {s.currency} · "
                        f"gross margin {s.value.gross_margin:.0%}", 160),
        answer=_short(top.answer, 420), how_sure=tuple(_short(line, 340) for line in top.how_sure[:2]),
        figures=top.figures, levels=levels, design=_short(design, 300),
        drivers=tuple(_short(d, 220) for d in drivers), data=_short(data, 400), caution=_short(top.caution, 520),
        outlook=tuple((label, _short(text, 260)) for label, text in forecast_rows(ev.forecast, ev.forecast_basis, unit)
                      if label != "rests on"),
    )


Specs = tuple[str, str, str]
"""The page's charts as Vega-Lite specifications: the effect with its interval, the trend, the tornado."""


def _chart_specs(ev: Evaluation) -> Specs:
    """The page's three charts ("" when one has no data): the effect by window, the trend, the tornado."""
    p = ev.primary
    head = next(k for k in p.kpis if k.kpi == p.headline_kpi)
    windows = [{"window": f"{w.window_days} days", "estimate": w.did.estimate, "low": w.did.ci_low,
                "high": w.did.ci_high, "primary": w.window_days == p.window_days}
               for w in ev.windows if w.did is not None]
    effect = effect_spec(windows, label=head.label, unit=head.unit, size=(170, 110))
    trend = trend_spec(list(ev.trend), [r.completion_date for r in p.learners],
                       title=f"{head.label}: trained vs comparison", kpi=head.kpi, label=head.label, unit=head.unit,
                       size=(230, 110))
    bars = tornado_chart(ev.tornado, size=(170, 110), spec=True) if ev.tornado is not None else ""
    return effect, trend, bars


def render_summary_html(ev: Evaluation, *, summary: Summary | None = None,
                        specs: Specs | None = None) -> str:
    """The one-pager as HTML text (inline CSS and SVG; prints on one US Letter page).

    ``summary`` and ``specs`` (the page's words and chart specifications) when the caller made them already.
    """
    env = Environment(loader=PackageLoader("training_roi.present", "templates"),
                      autoescape=select_autoescape(["html", "j2"]))
    effect, trend, bars = (svg_of(spec) if spec else "" for spec in (specs or _chart_specs(ev)))
    return env.get_template("summary.html.j2").render(s=summary or summary_of(ev), effect=effect, trend=trend,
                                                      tornado=bars)


# --- the PDF ------------------------------------------------------------------------------------------------------

_FONT_PLACES = ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/dejavu/DejaVuSans.ttf",
                "/Library/Fonts/Arial Unicode.ttf", "C:/Windows/Fonts/arial.ttf")
_LATIN1 = str.maketrans({"−": "-", "–": "-", "—": "-", "…": "...", "≥": ">=", "≤": "<=", "×": "x", "·": "-",
                         "→": "->", "’": "'", "“": '"', "”": '"', "≈": "~"})


MARGINS = (40, 36, 40, 30)
"""The page's margins in points — left, top, right, bottom — inside which everything is drawn: a layout whose
last line would end in the bottom margin gives way (:func:`fit`)."""


class _Page:
    """A US Letter page drawn top to bottom; text in a Unicode font when the system has one."""

    def __init__(self) -> None:
        from fpdf import FPDF

        self.pdf = FPDF(orientation="P", unit="pt", format="letter")
        self.pdf.set_auto_page_break(False)
        left, top, right, _ = MARGINS
        self.pdf.set_margins(left, top, right)
        self.pdf.add_page()
        self.unicode = False
        for place in _FONT_PLACES:
            if Path(place).is_file():
                self.pdf.add_font("body", "", place)
                bold = Path(place.replace("DejaVuSans.ttf", "DejaVuSans-Bold.ttf"))
                self.pdf.add_font("body", "B", str(bold) if bold.is_file() else place)
                self.unicode = True
                break
        self.family = "body" if self.unicode else "Helvetica"
        self.width = self.pdf.w - left - right

    def text(self, value: str) -> str:
        return value if self.unicode else value.translate(_LATIN1).encode("latin-1", "replace").decode("latin-1")

    def para(self, value: str, size: float, *, bold: bool = False, colour: tuple[int, int, int] = (34, 34, 34),
             gap: float = 4) -> None:
        self.pdf.set_font(self.family, "B" if bold else "", size)
        self.pdf.set_text_color(*colour)
        self.pdf.multi_cell(self.width, size * 1.25, self.text(value), new_x="LMARGIN", new_y="NEXT", align="L")
        self.pdf.ln(gap)

    def figures(self, figures: tuple[Figure, ...]) -> None:
        n = max(len(figures), 1)
        w = (self.width - 8 * (n - 1)) / n
        top = self.pdf.get_y()
        bottom = top
        for i, f in enumerate(figures):
            x = self.pdf.l_margin + i * (w + 8)
            self.pdf.set_xy(x, top)
            self.pdf.set_font(self.family, "", 7.5)
            self.pdf.set_text_color(90, 90, 90)
            self.pdf.multi_cell(w, 9, self.text(f.label), new_x="LEFT", new_y="NEXT", align="L")
            self.pdf.set_font(self.family, "B", 14)
            self.pdf.set_text_color(20, 20, 20)
            self.pdf.multi_cell(w, 17, self.text(f.value), new_x="LEFT", new_y="NEXT", align="L")
            self.pdf.set_font(self.family, "", 7)
            self.pdf.set_text_color(90, 90, 90)
            self.pdf.multi_cell(w, 8.5, self.text(f.note), new_x="LEFT", new_y="NEXT", align="L")
            bottom = max(bottom, self.pdf.get_y())
        self.pdf.set_xy(self.pdf.l_margin, bottom + 8)

    def rows(self, heading: str, rows: tuple[tuple[str, str], ...], *, label_width: float = 70) -> None:
        self.para(heading, 9.5, bold=True, gap=1)
        for label, value in rows:
            self.pdf.set_font(self.family, "B", 7.5)
            self.pdf.set_text_color(34, 34, 34)
            self.pdf.cell(label_width, 9.5, self.text(label))
            self.pdf.set_font(self.family, "", 7.5)
            self.pdf.multi_cell(self.width - label_width, 9.5, self.text(value), new_x="LMARGIN", new_y="NEXT",
                                align="L")
        self.pdf.ln(4)

    def strip(self, heading: str, cells: tuple[LevelCell, ...]) -> None:
        """Boxes side by side, shaded where the level has data."""
        self.para(heading, 9.5, bold=True, gap=2)
        gap = 4
        w = (self.width - gap * (len(cells) - 1)) / len(cells)
        top = self.pdf.get_y()
        bottom = top
        for i, c in enumerate(cells):
            x = self.pdf.l_margin + i * (w + gap)
            self.pdf.set_xy(x + 3, top + 2)
            self.pdf.set_font(self.family, "B", 7.5)
            self.pdf.set_text_color(*((20, 70, 40) if c.reached else (120, 120, 120)))
            self.pdf.multi_cell(w - 6, 9, self.text(c.level + (" ✓" if c.reached and self.unicode else "")),
                                new_x="LEFT", new_y="NEXT", align="L")
            self.pdf.set_font(self.family, "", 6.5)
            self.pdf.set_text_color(*((34, 34, 34) if c.reached else (120, 120, 120)))
            self.pdf.multi_cell(w - 6, 8, self.text(c.figure), new_x="LEFT", new_y="NEXT", align="L")
            bottom = max(bottom, self.pdf.get_y() + 2)
        for i, c in enumerate(cells):  # the boxes behind the words, now that the tallest is known
            x = self.pdf.l_margin + i * (w + gap)
            self.pdf.set_draw_color(*((90, 150, 110) if c.reached else (200, 200, 200)))
            self.pdf.rect(x, top, w, bottom - top)
        self.pdf.set_xy(self.pdf.l_margin, bottom + 6)

    def images(self, pngs: list[bytes], height: float) -> None:
        if not pngs:
            return
        w = (self.width - 10 * (len(pngs) - 1)) / len(pngs)
        top = self.pdf.get_y()
        for i, png in enumerate(pngs):
            self.pdf.image(io.BytesIO(png), x=self.pdf.l_margin + i * (w + 10), y=top, w=w, h=height,
                           keep_aspect_ratio=True)
        self.pdf.set_y(top + height + 6)


def _draw(s: Summary, pngs: list[bytes], *, with_levels: bool) -> _Page:
    """Lay the one-pager out once; the caller checks it fits."""
    page = _Page()
    page.para(s.title, 16, bold=True, gap=0)
    page.para(s.subtitle, 8, colour=(100, 100, 100), gap=6)
    page.para(s.answer, 10.5, bold=True, gap=3)
    if s.caution:
        page.para(s.caution, 7.5, colour=(150, 70, 0), gap=2)
    for line in s.how_sure:
        page.para(line, 7.5, colour=(80, 80, 80), gap=2)
    page.pdf.ln(4)
    page.figures(s.figures)
    page.images(pngs, 150)
    if s.drivers:
        page.rows("What would change the answer most", tuple((f"{i}.", d) for i, d in enumerate(s.drivers, 1)),
                  label_width=14)
    if s.outlook:
        page.rows("The months after training (cumulative, forecast)", s.outlook)
    if s.levels and with_levels:
        page.strip("The five Phillips levels (framed: measured)", s.levels)
    page.rows("How the effect was isolated, and the data", (("design", s.design), ("data", s.data)))
    return page


def write_summary_pdf(ev: Evaluation, path: Path, *, summary: Summary | None = None,
                      specs: Specs | None = None) -> Path:
    """Draw the one-pager as a one-page PDF at ``path`` (``summary`` and ``specs`` as for the HTML).

    Should the page run long (long names, many uncertain costs), the Phillips levels (which the
    full report holds) give way, then the charts: never a second page, never text off the page.
    """
    return fit(summary or summary_of(ev),
               [png_of(spec, scale=2) for spec in (specs or _chart_specs(ev)) if spec], path)


def fit(s: Summary, pngs: list[bytes], path: Path) -> Path:
    """Write the page of ``s`` with the charts ``pngs`` at ``path``, leaving out what does not fit."""
    for charts, with_levels in ((pngs, True), (pngs, False), ([], False)):
        page = _draw(s, charts, with_levels=with_levels)
        if page.pdf.get_y() <= page.pdf.h - MARGINS[3]:
            break
    path.parent.mkdir(parents=True, exist_ok=True)
    page.pdf.output(str(path))
    return path


def write_summary(ev: Evaluation, out_dir: Path) -> tuple[Path, Path]:
    """Write ``summary.html`` and ``summary.pdf`` into ``out_dir``; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    html = out_dir / "summary.html"
    summary, specs = summary_of(ev), _chart_specs(ev)  # once, for both pages
    html.write_text(render_summary_html(ev, summary=summary, specs=specs), encoding="utf-8")
    return html, write_summary_pdf(ev, out_dir / "summary.pdf", summary=summary, specs=specs)
