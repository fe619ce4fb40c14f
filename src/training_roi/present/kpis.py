"""The KPI catalogue for the console: each KPI by month (or over the period), for the org or unit by unit.

At the org grain one row per KPI; at a finer grain (team, rep, account, activity) one row per KPI
and unit, labelled with the unit, in a stable order, the first ``limit`` units of each KPI (the CSV
and JSON outputs hold every one), so a unit's figure is never mistaken for the org's.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import polars as pl
from rich.console import RenderableType
from rich.table import Table

from training_roi._format import describe
from training_roi.measure import CATALOGUE
from training_roi.present.layout import fits, fitted

__all__ = ["kpi_table"]


def _relative(row: dict[str, Any] | None, key: str) -> str:
    v = row.get(key) if row else None
    return "—" if not isinstance(v, float) else f"{v:+.1%}".replace("-", "−")


def kpi_table(frame: pl.DataFrame, names: list[str], *, monthly: bool, months: int, grain: str,
              limit: int = 20, width: int | None = None) -> RenderableType:
    """The catalogue's values in ``frame`` (:func:`training_roi.measure.compute`, with changes when monthly).

    With ``width`` (the terminal's), the oldest of the ``months`` are left out until the table fits,
    down to the latest month alone, and the table is then fitted (:func:`training_roi.present.layout.fitted`):
    no figure is ever cut.
    """
    periods: list[date] = sorted({p for p in frame["period"].to_list() if p is not None})[-months:] if monthly else []
    if width is None:
        return _table(frame, names, periods, monthly=monthly, grain=grain, limit=limit)
    shown = len(periods)
    table = _table(frame, names, periods, monthly=monthly, grain=grain, limit=limit)
    while shown > 1 and not fits(table, width):
        shown -= 1
        table = _table(frame, names, periods[-shown:], monthly=monthly, grain=grain, limit=limit,
                       hidden=len(periods) - shown)
    return fitted(table, width)


def _table(frame: pl.DataFrame, names: list[str], periods: list[date], *, monthly: bool, grain: str, limit: int,
           hidden: int = 0) -> Table:
    by_unit = grain != "org"
    t = Table(title=f"KPIs ({grain}{', monthly' if monthly else ''})", title_justify="left")
    t.add_column("KPI")
    if by_unit:
        t.add_column(grain, no_wrap=True, min_width=18)
    for p in periods:
        t.add_column(p.strftime("%b %Y"), justify="right")
    t.add_column("latest month over month" if monthly else "value", justify="right")
    if monthly:
        t.add_column("over a year", justify="right")
    left_out = 0
    for name in names:
        spec, rows = CATALOGUE[name], frame.filter(pl.col("kpi") == name)
        label = f"{spec.label}{'' if spec.higher_is_better else ' (lower is better)'}"
        reason = rows["reason"].drop_nulls()
        if rows["value"].drop_nulls().is_empty():
            t.add_row(label, *([""] if by_unit else []), *([""] * len(periods)),
                      f"[dim]unavailable: {reason[0] if reason.len() else 'no data'}[/]", *([""] if monthly else []))
            continue
        units = sorted({u for u in rows["grain_id"].to_list() if u is not None}) if by_unit else [None]
        left_out += max(0, len(units) - limit)
        for unit in units[:limit]:
            mine = rows.filter(pl.col("grain_id") == unit) if by_unit else rows
            cells = [str(unit)] if by_unit else []
            if not monthly:
                t.add_row(label, *cells, describe(mine["value"][0], spec.unit))
                continue
            by = {r["period"]: r for r in mine.iter_rows(named=True)}
            shown = [p for p in periods if p in by and by[p]["value"] is not None]
            last = by[shown[-1]] if shown else None  # the KPI's own latest month: sources end at different dates
            t.add_row(label, *cells, *(describe(by[p]["value"], spec.unit) if p in by else "—" for p in periods),
                      _relative(last, "mom_rel"), _relative(last, "yoy_rel"))
    notes = []
    if monthly:
        notes.append("rates pool numerators and denominators; months where the data is partial (the first and last) "
                     "and recent months with open deals read low")
    if hidden:
        notes.append(f"{hidden:,} earlier month{'s' if hidden > 1 else ''} not shown at this terminal width "
                     "(a wider terminal, --csv or --json has every one)")
    if left_out:
        notes.append(f"{left_out:,} more rows of units not shown (--limit; --csv or --json has every one)")
    t.caption = "; ".join(notes)
    return t
