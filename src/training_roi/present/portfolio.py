"""The portfolio for people (a console table, a self-contained HTML page) and machines (portfolio.json).

The table and the page show every program in rank order with its cost, credited benefit, ROI and
its interval, net benefit, benefit–cost ratio, payback, the Phillips levels it reached and the
recommendation with its reason, then the totals; money as $1,234,567, percentages with one
decimal. The page has inline CSS and no scripts, so it opens offline. ``portfolio.json`` is
:meth:`~training_roi.portfolio.Portfolio.asdict` with money as exact decimal strings.
"""

from __future__ import annotations

import json
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape
from rich.table import Table

from training_roi._format import money, percent
from training_roi.evaluation.portfolio import (
    LEVEL_NAMES,
    LOW_REACTION,
    PORTFOLIO_SCHEMA,
    WEAK_APPLICATION,
    WEAK_PASS_RATE,
    Portfolio,
    ProgramRow,
)

__all__ = ["portfolio_document", "portfolio_table", "render_portfolio_html", "write_portfolio"]

_COLOURS = {"keep": "green", "improve": "cyan", "cut": "red", "evidence needed": "yellow"}


def _interval(row: ProgramRow) -> str:
    iv = row.roi_interval
    return f"{percent(iv[0])} to {percent(iv[1])}" if iv is not None else "—"


def _payback(row: ProgramRow) -> str:
    return "none" if row.payback_months is None else f"{float(row.payback_months):,.1f} months"


def _levels(row: ProgramRow) -> str:
    """``1 2 3 4 5`` with a dash for each level without data."""
    return " ".join(str(lv.level) if lv.reached else "–" for lv in row.levels)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in counts.items())


def portfolio_table(p: Portfolio) -> Table:
    """Every program in rank order, its figures and recommendation, and the totals as the footer."""
    t = Table(title=f"Portfolio: {p.totals.programs} programs ({p.totals.established} with an established effect)",
              title_justify="left", show_footer=True)
    t.add_column("#", justify="right", footer="")
    t.add_column("program", footer="[bold]total[/]")
    t.add_column("recommendation", footer="")
    t.add_column("effect", footer=f"{p.totals.established} of {p.totals.programs}")
    t.add_column("cost", justify="right", no_wrap=True, footer=f"[bold]{money(p.totals.cost)}[/]")
    t.add_column("benefit", justify="right", no_wrap=True, footer=f"[bold]{money(p.totals.benefit)}[/]")
    t.add_column("ROI (interval)", justify="right", footer=f"[bold]{percent(p.totals.roi_pct)}[/]")
    t.add_column("net benefit", justify="right", no_wrap=True, footer=money(p.totals.net_benefit))
    t.add_column("BCR", justify="right", footer=f"{float(p.totals.benefit_cost_ratio):.2f}")
    t.add_column("payback", justify="right", footer="")
    t.add_column("levels", no_wrap=True, footer="")
    t.add_column("why", footer="")
    for r in p.rows:
        action = r.recommendation.action
        t.add_row(
            str(r.rank), r.name, f"[{_COLOURS[action]}]{action}[/]",
            "[green]established[/]" if r.established else "[yellow]not established[/]",
            money(r.cost), money(r.benefit), f"{percent(r.roi_pct)}\n({_interval(r)})\nat {r.gross_margin:.0%} margin",
            money(r.net_benefit),
            f"{float(r.benefit_cost_ratio):.2f}", _payback(r), _levels(r), r.recommendation.reason,
        )
    t.caption = ("Ranked: established effects first, then by ROI. Levels: Phillips 1 reaction, 2 learning, "
                 "3 application, 4 impact, 5 ROI (– no data). Portfolio ROI = (Σ benefit − Σ cost) / Σ cost.")
    return t


def render_portfolio_html(p: Portfolio) -> str:
    """The portfolio as one self-contained HTML page, in the look of the study report."""
    env = Environment(loader=PackageLoader("training_roi.present", "templates"),
                      autoescape=select_autoescape(["html", "j2"]))
    return env.get_template("portfolio.html.j2").render(
        p=p, t=p.totals, schema=PORTFOLIO_SCHEMA, money=money, pct=percent, interval=_interval, payback=_payback,
        counts=_counts, level_names=LEVEL_NAMES, low_reaction=LOW_REACTION, weak_pass_rate=WEAK_PASS_RATE,
        weak_application=WEAK_APPLICATION,
    )


def portfolio_document(p: Portfolio) -> str:
    """The portfolio as JSON text, keys sorted so the same portfolio gives the same bytes."""
    return json.dumps(p.asdict(), sort_keys=True, indent=2, allow_nan=False) + "\n"


def write_portfolio(p: Portfolio, out_dir: Path) -> tuple[Path, Path]:
    """Write ``portfolio.json`` and ``portfolio.html`` into ``out_dir`` (created when missing); return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    doc, page = out_dir / "portfolio.json", out_dir / "portfolio.html"
    doc.write_text(portfolio_document(p), encoding="utf-8")
    page.write_text(render_portfolio_html(p), encoding="utf-8")
    return doc, page
