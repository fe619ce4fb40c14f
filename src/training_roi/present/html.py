"""The HTML report: one self-contained file that opens offline (inline CSS and SVG, no scripts).

It shows the headline with its intervals, the KPIs and their trends for trained vs comparison units, every
attribution window, the naive references labelled biased, the cost breakdown, the seed's
per-learner spreadsheet, the assumptions, the data counts and the warnings.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from training_roi._format import describe_change, describe_value, money, percent, points
from training_roi.attribute import MODELS
from training_roi.attribute.result import TOP_LEARNERS
from training_roi.evaluation.results import RESULT_SCHEMA, Evaluation
from training_roi.measure import CATALOGUE
from training_roi.present.charts import trend_chart
from training_roi.present.levels import level_rows

__all__ = ["render_html", "write_html"]


def _pts(value: float | None) -> str:
    return "—" if value is None else points(value)


def _pct(value: float | Decimal) -> str:
    return percent(value)


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def render_html(ev: Evaluation) -> str:
    """The report as HTML text."""
    env = Environment(loader=PackageLoader("training_roi.present", "templates"),
                      autoescape=select_autoescape(["html", "j2"]))
    p = ev.primary
    s = ev.study
    noun = s.population.unit
    assumptions = [
        f"program: activities {', '.join(s.program.activities)}, completion rule {s.program.completion}",
        f"baseline: {s.baseline.months} months before each learner's completion; attribution window "
        f"{s.windows.primary_days} days (sensitivity {', '.join(map(str, s.windows.sensitivity_days))}), "
        f"ramp {s.windows.ramp_days} days",
        f"comparison: {s.comparison.design}; each comparison {noun} is measured at a completion date drawn "
        f"from the trained {noun}s' dates",
        f"conservative threshold: a KPI change under {s.threshold.min_relative_change:.1%} relative is not credited, "
        "nor one whose interval includes zero; revenue is credited at the one-sided "
        f"{s.isolation.confidence:.0%} lower bound of its estimate, and not at all under the threshold",
        f"revenue credited: {p.revenue[p.revenue_definition].label if p.revenue_definition in p.revenue else '—'} "
        f"(value.revenue: {s.value.revenue})",
        f"gross margin {s.value.gross_margin}; costs from costs.csv for {', '.join(s.costs.programs)} plus "
        + ("participant time at the study's hourly rate" if ev.costs.time_costed else
           "no participant time: the study gives no hourly rate, so the cost is not fully loaded"),
        f"uncertainty: cluster bootstrap over {noun}s, {s.isolation.bootstrap_replicates:,} replicates, seed "
        f"{s.isolation.seed}, {s.isolation.confidence:.0%} percentile intervals",
        f"incremental revenue = {p.value_formula}"
        + ("; the seed's formula ignores any change in deal size" if p.headline_kpi == "win_rate" else ""),
        "windows that run past the last deal in the warehouse count only the months the data covers",
        *(p.did.assumptions if p.did else ()),
    ]
    completions = [r.completion_date for r in p.learners]
    charts = [trend_chart(list(ev.trend), completions, title=f"{k.label} by month of deal creation", kpi=k.kpi,
                          label=k.label, unit=k.unit) for k in p.kpis]
    for kpi in s.application_kpis:  # behaviour in the CRM (Phillips level 3), same groups, same period shaded
        spec = CATALOGUE[kpi]
        rows = [r for r in ev.application_trend if r["kpi"] == kpi]
        if rows:
            charts.append(trend_chart(rows, completions, title=f"{spec.label} by month (behaviour in the CRM)",
                                      kpi=kpi, label=spec.label, unit=spec.unit, x_title="month"))
    head = next(k for k in p.kpis if k.kpi == p.headline_kpi)
    by_window = _methods_by_window(ev)
    value_base = {
        "win_rate": f"pipeline value {money(p.value_base)}",
        "avg_won_deal_size": f"{float(p.value_base):,.0f} won deals",
        "revenue_per_rep": f"{float(p.value_base):,.1f} {noun}-months",
    }.get(head.kpi, f"{float(p.value_base):,.1f} {noun}-months × win rate")
    return env.get_template("report.html.j2").render(
        ev=ev, p=p, iv=p.intervals, chosen=p.revenue.get(p.revenue_definition),
        schema=RESULT_SCHEMA, charts=charts, assumptions=assumptions, head=head,
        value_base=value_base, money=money, pts=_pts, pct=_pct, rate=_rate, Decimal=Decimal,
        change=describe_change, value=describe_value, noun=noun, by_window=by_window,
        models=[m for m in MODELS if ev.attribution is not None and m in ev.attribution.comparison.columns],
        top_learners=TOP_LEARNERS, levels=level_rows(ev.phillips) if ev.phillips is not None else [],
    )


def _methods_by_window(ev: Evaluation) -> dict[str, Any]:
    """Each method's estimate in every attribution window: window lengths and one row per method."""
    if ev.methods is None:
        return {"days": [], "rows": []}
    comparisons = sorted([(ev.primary.window_days, ev.methods), *ev.methods_by_window])
    rows = []
    for result in ev.methods.results:
        cells = []
        for _, c in comparisons:
            r = c.result(result.method)
            cells.append(r.effect if r is not None else None)
        rows.append({"label": result.label, "cells": cells})
    return {"days": [d for d, _ in comparisons], "rows": rows}


def write_html(ev: Evaluation, out_dir: Path) -> Path:
    """Write ``report.html`` into ``out_dir``; return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "report.html"
    path.write_text(render_html(ev), encoding="utf-8")
    return path
