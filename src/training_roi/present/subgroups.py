"""Who benefits, in words and rows: the effect by subgroup and the roll-out table, for the report and the console.

One source for what every output says about subgroups: each subgroup's effect on its trained and
its not yet trained units with the interval simultaneous over every subgroup, whether the effect
differs between a variable's levels (established or not, said in words), and the roll-out table
ranked by the lower end of ROI, each row labelled by the strength of its evidence.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from training_roi._format import describe_change, money, percent, spreadsheet_safe
from training_roi.evaluation import Evaluation
from training_roi.measure import KPIS

__all__ = ["rollout_rows", "subgroup_lines", "subgroup_rows", "write_subgroups"]

_SHOWN = 12
"""Roll-out rows the report and the console show (subgroups.csv holds every row)."""


def _unit(kpi: str) -> str:
    return KPIS[kpi].unit if kpi in KPIS else "rate"


def _interval(low: float | None, high: float | None, unit: str) -> str:
    if low is None or high is None:
        return "—"
    return f"{describe_change(low, unit)} to {describe_change(high, unit)}"


def subgroup_rows(ev: Evaluation) -> list[dict[str, Any]]:
    """Each subgroup's row for the report: variable, level, units, effects on the trained and untrained."""
    wb = ev.subgroups
    if wb is None:
        return []
    unit = _unit(wb.kpi)
    rows = []
    for r in wb.effects.table.iter_rows(named=True):
        estimated = r["att_estimate"] is not None
        rows.append({
            "variable": r["variable"], "level": r["level"], "trained": f"{r['trained_units']:,}",
            "untrained": f"{r['untrained_units']:,}",
            "att": describe_change(r["att_estimate"], unit) if estimated else "not estimated (too few units)",
            "att_interval": _interval(r["att_sim_low"], r["att_sim_high"], unit) if estimated else "",
            "atu": describe_change(r["atu_estimate"], unit) if estimated else "",
            "atu_interval": _interval(r["atu_sim_low"], r["atu_sim_high"], unit) if estimated else "",
            "established": ("established" if estimated and (r["att_sim_low"] > 0 or r["att_sim_high"] < 0)
                            else "not established"),
        })
    return rows


def rollout_rows(ev: Evaluation) -> list[dict[str, str]]:
    """The roll-out table's first rows, formatted: where to train next, by the lower end of ROI."""
    wb = ev.subgroups
    if wb is None:
        return []
    unit = _unit(wb.kpi)
    out = []
    for r in wb.rollout_rows()[:_SHOWN]:
        roi = ("—" if r["roi_pct"] is None else
               f"{percent(r['roi_pct'])} [{percent(r['roi_pct_low'])} to {percent(r['roi_pct_high'])}]")
        out.append({"subgroup": f"{r['variable']} = {r['level']}", "untrained": f"{r['untrained_units']:,}",
                    "effect": describe_change(r["effect"], unit) if r["effect"] is not None else "not estimated",
                    "interval": _interval(r["effect_low"], r["effect_high"], unit),
                    "value": money(r["value_per_unit"]) if r["value_per_unit"] is not None else "—",
                    "cost": money(r["cost_per_unit"]) if r["cost_per_unit"] is not None else "—",
                    "roi": roi, "evidence": r["evidence"]})
    return out


def subgroup_lines(ev: Evaluation) -> list[str]:
    """The console's few lines: whether the effect differs by each variable, and the best and worst subgroups."""
    wb = ev.subgroups
    if wb is None:
        return [ev.subgroups_basis[:1].upper() + ev.subgroups_basis[1:]] if ev.subgroups_basis else []
    e = wb.effects
    level = f"{e.confidence:.0%}"
    lines = []
    for variable, test in e.differ.items():
        said = "established" if test["p_value"] < 1 - e.confidence else "not established"
        lines.append(f"The effect differs by {variable}: {said} (Wald test, p = {test['p_value']:.3g}).")
    best = rollout_rows(ev)[:3]
    if best:
        lines.append(f"Where to train next ({wb.evidence}; {level} intervals simultaneous over every subgroup):")
        lines += [f"  {r['subgroup']}: {r['untrained']} not yet trained, effect {r['effect']} [{r['interval']}], "
                  f"value {r['value']} against {r['cost']} each, ROI {r['roi']}" for r in best]
    return lines


def write_subgroups(ev: Evaluation, out_dir: Path) -> Path | None:
    """Write ``subgroups.csv`` (every subgroup: its effects, intervals, p- and q-values, and its roll-out row).

    Money in cents, ROI in percent; a level that would start a spreadsheet formula is written inert.
    None when the study asked for no breakdown (or none could be made).
    """
    wb = ev.subgroups
    if wb is None:
        return None
    rollout = pl.DataFrame(wb.rollout_rows(), schema_overrides={"amount": pl.String, "value_per_unit": pl.String,
                                                                 "cost_per_unit": pl.String},
                           infer_schema_length=None)
    money_columns = ["amount", "value_per_unit", "cost_per_unit", "roi_pct", "roi_pct_low", "roi_pct_high",
                     "base_per_month", "evidence"]
    table = (wb.effects.table.drop("att_ess", "atu_ess")
             .join(rollout.select("variable", "level", *money_columns), on=["variable", "level"], how="left",
                   maintain_order="left")
             .with_columns(pl.lit(wb.kpi).alias("kpi")))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "subgroups.csv"
    spreadsheet_safe(table).write_csv(path)
    return path

