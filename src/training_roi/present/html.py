"""The HTML report: one self-contained file that opens offline (inline CSS and SVG, no scripts).

It opens with the answer — the one-pager's facts (:mod:`training_roi.present.executive`), which
figure is the answer and how every other ROI in the report relates to it, the under-power
caution — and a table of contents; the detail follows in sections that fold
(``<details>``, no JavaScript): the KPIs, their trends for trained vs comparison units, revenue
by definition, every attribution window and method, sensitivity, cost, the Phillips levels,
attribution, the naive references labelled biased, the seed's per-learner spreadsheet (folded),
the assumptions, the data counts and the warnings. Every figure is worded by the product's one
voice (:mod:`training_roi._format`): a true minus sign, rates as percentages with one decimal,
counts in the singular or plural.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from training_roi._format import (
    describe_change,
    describe_value,
    money,
    percent,
    plural,
    points,
    probability,
    relative,
    true_minus,
)
from training_roi.attribute import MODELS
from training_roi.attribute.result import TOP_LEARNERS
from training_roi.evaluation.results import RESULT_SCHEMA, Evaluation
from training_roi.measure import CATALOGUE
from training_roi.present.attribution import LEGEND, channel_rows, standard
from training_roi.present.charts import forecast_chart, trend_chart
from training_roi.present.churn import churn_context
from training_roi.present.executive import executive, value_base_text
from training_roi.present.forecast import forecast_rows, forecast_table
from training_roi.present.lesson_map import lesson_lines, lesson_rows
from training_roi.present.levels import level_rows
from training_roi.present.next_lesson import next_lesson_lines, next_lesson_rows, recommendation_rows
from training_roi.present.subgroups import rollout_rows, subgroup_lines, subgroup_rows
from training_roi.present.verdicts import IMPROVEMENT, IMPROVEMENT_MEANS, improvement, verdict

__all__ = ["render_html", "write_html"]


def _pts(value: float | None) -> str:
    return "—" if value is None else points(value)


def _pct(value: float | Decimal) -> str:
    return percent(value)


def _rate(value: float | None) -> str:
    return describe_value(value, "rate")


_TIME_SOURCES = {"sessions": "from sessions", "completion": "from the completion's total time",
                 "report": "from the completion report", "fixed": "at the study's minutes per learner",
                 "none": "with no time recorded"}


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
        f"gross margin {percent(s.value.gross_margin * 100)}; costs from costs.csv for "
        f"{', '.join(s.costs.programs)} plus "
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
    return env.get_template("report.html.j2").render(
        ev=ev, p=p, iv=p.intervals, chosen=p.revenue.get(p.revenue_definition), top=executive(ev),
        schema=RESULT_SCHEMA, charts=charts, assumptions=assumptions, head=head,
        value_base=value_base_text(ev), money=money, pts=_pts, pct=_pct, rate=_rate, Decimal=Decimal,
        change=describe_change, value=describe_value, relative=relative, probability=probability,
        improvement=improvement, verdict=verdict, plural=plural, minus=true_minus, noun=noun,
        by_window=by_window, IMPROVEMENT=IMPROVEMENT, IMPROVEMENT_MEANS=IMPROVEMENT_MEANS,
        time_sources=_TIME_SOURCES, legend=LEGEND, channels=channel_rows(ev.attribution) if ev.attribution else [],
        standard=standard,
        models=[m for m in MODELS if ev.attribution is not None and m in ev.attribution.comparison.columns],
        top_learners=TOP_LEARNERS, levels=level_rows(ev.phillips) if ev.phillips is not None else [],
        forecast_rows=forecast_rows(ev.forecast, ev.forecast_basis, noun), forecast_table=forecast_table(ev.forecast),
        forecast_chart=forecast_chart(ev.forecast) if ev.forecast is not None else "",
        subgroup_rows=subgroup_rows(ev), rollout_rows=rollout_rows(ev), subgroup_lines=subgroup_lines(ev),
        lesson_rows=lesson_rows(ev), lesson_lines=lesson_lines(ev),
        next_lesson_rows=next_lesson_rows(ev), recommendation_rows=recommendation_rows(ev),
        next_lesson_lines=next_lesson_lines(ev),
        **churn_context(ev),
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
