"""The KPI catalogue for the console: each KPI by month (or over the period), for the org or unit by unit.

At the org grain one row per KPI; at a finer grain (team, rep, account, activity) one row per KPI
and unit, labelled with the unit's name and id, sorted by name, facts without a unit last (``(no
owner)``…), the first ``limit`` units of each KPI followed by "… and K more" (the CSV and JSON
outputs hold every one), so a unit's figure is never mistaken for the org's. Every row says which
month its values belong to (``close month``, ``creation month``, …); provisional months are
starred, and the change shown is the latest complete month's.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

import polars as pl
from rich.console import RenderableType
from rich.table import Table

from training_roi._format import describe
from training_roi.measure import CATALOGUE, OPEN_SHARE_LIMIT
from training_roi.present.layout import fits, fitted

__all__ = ["kpi_label", "kpi_table", "kpi_unit", "unit_label"]


def kpi_unit(kpi: str) -> str:
    """A catalogue KPI's unit (rate, money, days, …): how its values and changes are written; a rate if unknown."""
    return CATALOGUE[kpi].unit if kpi in CATALOGUE else "rate"


def kpi_label(kpi: str) -> str:
    """A catalogue KPI's label as people read it (win rate), or its name when the catalogue has none."""
    return CATALOGUE[kpi].label if kpi in CATALOGUE else kpi


def _relative(row: dict[str, Any] | None, key: str) -> str:
    v = row.get(key) if row else None
    return "—" if not isinstance(v, float) else f"{v:+.1%}".replace("-", "−")


def unit_label(unit: str, names: Mapping[str, str]) -> str:
    """A unit as the console shows it: its name and id, or its id alone when it has no name."""
    name = names.get(unit)
    return f"{name} ({unit})" if name else unit


def _order(unit: str, names: Mapping[str, str]) -> tuple[bool, str, str]:
    """Units by name (then id), the placeholders of facts without a unit — "(no owner)" — last."""
    return unit.startswith("("), (names.get(unit) or unit).casefold(), unit


def _change(mine: dict[date, dict[str, Any]]) -> tuple[str, str]:
    """The latest complete month's change over a month and over a year, with the month named."""
    complete = [p for p, r in mine.items() if r["value"] is not None and not r.get("provisional")]
    if not complete:
        return "—", "—"
    latest = max(complete)
    row, when = mine[latest], latest.strftime("%b %Y")
    mom, yoy = _relative(row, "mom_rel"), _relative(row, "yoy_rel")
    return (f"{mom} ({when})" if mom != "—" else "—"), (f"{yoy} ({when})" if yoy != "—" else "—")


def kpi_table(frame: pl.DataFrame, names: list[str], *, monthly: bool, months: int, grain: str,
              limit: int = 20, unit_names: Mapping[str, str] | None = None,
              width: int | None = None) -> RenderableType:
    """The catalogue's values in ``frame`` (:func:`training_roi.measure.compute`, with changes when monthly).

    ``unit_names`` names the units of a finer grain (id → name); ids without a name show alone.
    With ``width`` (the terminal's), the oldest of the ``months`` are left out until the table fits,
    down to the latest month alone, and the table is then fitted (:func:`training_roi.present.layout.fitted`):
    no figure is ever cut.
    """
    periods: list[date] = sorted({p for p in frame["period"].to_list() if p is not None})[-months:] if monthly else []
    labels = unit_names or {}
    if width is None:
        return _table(frame, names, periods, monthly=monthly, grain=grain, limit=limit, labels=labels)
    shown = len(periods)
    table = _table(frame, names, periods, monthly=monthly, grain=grain, limit=limit, labels=labels)
    while shown > 1 and not fits(table, width):
        shown -= 1
        table = _table(frame, names, periods[-shown:], monthly=monthly, grain=grain, limit=limit, labels=labels,
                       hidden=len(periods) - shown)
    return fitted(table, width)


def _table(frame: pl.DataFrame, names: list[str], periods: list[date], *, monthly: bool, grain: str, limit: int,
           labels: Mapping[str, str], hidden: int = 0) -> Table:
    by_unit = grain != "org"
    t = Table(title=f"KPIs ({grain}{', monthly' if monthly else ''})", title_justify="left")
    t.add_column("KPI", no_wrap=True)
    t.add_column("month of", no_wrap=True)
    if by_unit:
        t.add_column(grain, no_wrap=True, min_width=18)
    for p in periods:
        t.add_column(p.strftime("%b %Y"), justify="right")
    t.add_column("over a month" if monthly else "value", justify="right")
    if monthly:
        t.add_column("over a year", justify="right")
    starred = cut = False
    for name in names:
        spec, rows = CATALOGUE[name], frame.filter(pl.col("kpi") == name)
        label = f"{spec.label}{'' if spec.higher_is_better else ' (lower is better)'}"
        basis = next(iter(rows["basis"].drop_nulls()), spec.period_label()) if "basis" in rows.columns else ""
        reason = rows["reason"].drop_nulls()
        if rows["value"].drop_nulls().is_empty():
            t.add_row(label, basis, *([""] if by_unit else []), *([""] * len(periods)),
                      f"[dim]unavailable: {reason[0] if reason.len() else 'no data'}[/]", *([""] if monthly else []))
            continue
        units: list[str | None] = [None]
        if by_unit:
            ids: set[str] = {u for u in rows["grain_id"].to_list() if u is not None}
            units = [*sorted(ids, key=lambda u: _order(u, labels))]
        for unit in units[:limit]:
            mine = rows.filter(pl.col("grain_id") == unit) if by_unit else rows
            cells = [unit_label(unit, labels)] if unit is not None else []
            if not monthly:
                t.add_row(label, basis, *cells, describe(mine["value"][0], spec.unit))
                continue
            by = {r["period"]: r for r in mine.iter_rows(named=True) if r["period"] is not None}
            shown = []
            for p in periods:
                r = by.get(p)
                if r is None:
                    shown.append("—")
                    continue
                star = bool(r.get("provisional")) and r["value"] is not None
                starred |= star
                shown.append(describe(r["value"], spec.unit) + (" *" if star else ""))
            t.add_row(label, basis, *cells, *shown, *_change(by))
        if len(units) > limit:
            cut = True
            t.add_row("", "", f"[dim]… and {len(units) - limit:,} more[/]", *([""] * len(periods)),
                      "", *([""] if monthly else []))
    notes = []
    if monthly:
        notes.append("rates pool numerators and denominators; the changes are the latest complete month's, "
                     "against complete months only")
        if starred:
            notes.append("* provisional: the month was not over when the data ends, or (outcomes by creation month) "
                         f"more than {OPEN_SHARE_LIMIT:.0%} of its deals are still open; --csv or --json gives the "
                         "reason for each")
    if hidden:
        notes.append(f"{hidden:,} earlier month{'s' if hidden > 1 else ''} not shown at this terminal width "
                     "(a wider terminal, --csv or --json has every one)")
    if "as_of" in frame.columns and (ends := sorted({d for d in frame["as_of"].to_list() if d is not None})):
        notes.append(f"the data ends {ends[-1].isoformat()}" if len(ends) == 1 else
                     f"the data ends between {ends[0].isoformat()} and {ends[-1].isoformat()}, by source")
    if cut:
        notes.append("--limit shows more units; --csv or --json has every one")
    t.caption = "; ".join(notes)
    return t
