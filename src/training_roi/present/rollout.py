"""A CRM roll-out's answer for people: the console panel and the self-contained HTML page."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
from jinja2 import Environment, PackageLoader, select_autoescape
from rich.console import Group
from rich.table import Table

from training_roi._format import money, percent, probability
from training_roi.evaluation.rollout import ROLLOUT_SCHEMA, RolloutEvaluation
from training_roi.measure import CATALOGUE, describe
from training_roi.present.charts import monthly_chart
from training_roi.present.verdicts import IMPROVEMENT, IMPROVEMENT_MEANS, improvement

__all__ = ["rollout_document", "rollout_panel", "write_rollout"]


def _change(value: float | None, unit: str) -> str:
    """A change: a rate's in percentage points, anything else in its unit, signed."""
    if value is not None and unit == "rate":
        return f"{value * 100:+.1f} pts".replace("-", "−")
    text = describe(value, unit)
    return text if value is None or value < 0 else "+" + text


def rollout_panel(ev: RolloutEvaluation) -> Group:
    """The KPI changes, benefits, costs and ROI of a roll-out, as Rich tables."""
    t = Table(title=f"{ev.study.name}: what the go-live changed ({ev.method})", title_justify="left")
    for col in ("KPI", "before", "after", "isolated effect (interval)", IMPROVEMENT):
        t.add_column(col, justify="left" if col == "KPI" else "right")
    for k in ev.kpis:
        e = k.effect
        t.add_row(k.label + ("" if k.higher_is_better else " (lower is better)"), describe(k.before, k.unit),
                  describe(k.after, k.unit),
                  f"{_change(e.estimate, k.unit)} ({_change(e.ci_low, k.unit)} to {_change(e.ci_high, k.unit)})"
                  if e else f"[dim]{k.not_applicable}[/]",
                  probability(improvement(e, k.higher_is_better)))
    f = ev.figures
    money_table = Table(title="Benefits, costs and ROI", title_justify="left")
    money_table.add_column("item")
    money_table.add_column("amount", justify="right")
    money_table.add_column("how")
    for b in ev.benefits:
        money_table.add_row(b.name, money(b.amount), b.formula)
    money_table.add_row("fully loaded cost", money(ev.costs.total), ", ".join(
        f"{c} {money(a)}" for c, a in ev.costs.by_category.items() if a))
    around = f" (interval {percent(ev.roi_interval[0])} to {percent(ev.roi_interval[1])})" if ev.roi_interval else ""
    money_table.add_row("[bold]ROI[/]", f"[bold]{percent(f.roi_pct)}[/]",
                        f"(benefits − costs) / costs × 100{around}; net {money(f.net_benefit)}")
    warn = "\n".join(f"! {w}" for w in ev.warnings)
    how = f"Intervals: {ev.inference}" if ev.inference else ""
    return Group(t, money_table, *([how] if how else []), *([warn] if warn else []))


def rollout_document(ev: RolloutEvaluation) -> str:
    """The roll-out's result document as JSON text, keys sorted so the same answer gives the same bytes."""
    return json.dumps(ev.asdict(), sort_keys=True, indent=2, default=str) + "\n"


def write_rollout(ev: RolloutEvaluation, out_dir: Path) -> tuple[Path, Path]:
    """Write ``result.json`` and ``report.html`` for a roll-out into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    result = out_dir / "result.json"
    result.write_text(rollout_document(ev), encoding="utf-8")
    marks = sorted({d.isoformat() for d in ev.go_live.values()})
    charts = []
    for kpi in ev.study.rollout.kpis if ev.study.rollout else []:
        spec = CATALOGUE[kpi]
        rows = [{"month": r["period"].isoformat(), "value": r["value"]}
                for r in ev.monthly.filter(pl.col("kpi") == kpi).iter_rows(named=True)]
        charts.append(monthly_chart(rows, marks, title=f"{spec.label} by month", label=spec.label, unit=spec.unit))
    env = Environment(loader=PackageLoader("training_roi.present", "templates"), autoescape=select_autoescape())
    html = env.get_template("rollout.html.j2").render(
        ev=ev, schema=ROLLOUT_SCHEMA, money=money, pct=percent, value=describe, change=_change, charts=charts,
        probability=probability, improvement=improvement, IMPROVEMENT=IMPROVEMENT, IMPROVEMENT_MEANS=IMPROVEMENT_MEANS,
        go_live=sorted((t, d.isoformat()) for t, d in ev.go_live.items()))
    page = out_dir / "report.html"
    page.write_text(html, encoding="utf-8")
    return result, page
