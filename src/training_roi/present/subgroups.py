"""Who benefits, in words and rows: the effect by subgroup and the roll-out table, for every output that shows them.

One source for what every output says about subgroups — from the evaluation for the report and
the console, from ``result.json``'s rows for the server: each subgroup's effect on its trained and
its not yet trained units with the interval simultaneous over every subgroup, whether the effect
differs between a variable's levels (established or not, said in words), and the roll-out table
ranked by the lower end of ROI, each row labelled by the strength of its evidence.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl

from training_roi._format import describe_change, money, percent, spreadsheet_safe
from training_roi.evaluation import Evaluation
from training_roi.present.kpis import kpi_unit

__all__ = ["SHOWN", "differ_lines", "effect_rows", "rollout_rows", "subgroup_lines", "subgroup_rows", "worded_rollout",
           "write_subgroups"]

SHOWN = 12
"""Roll-out rows the report, the console and the server show (subgroups.csv holds every row)."""



def _interval(low: float | None, high: float | None, unit: str) -> str:
    if low is None or high is None:
        return "—"
    return f"{describe_change(low, unit)} to {describe_change(high, unit)}"


def _amount(value: Any) -> str:
    """Money of a roll-out row, whether exact (a Decimal) or as result.json keeps it (its text)."""
    return "—" if value is None else money(Decimal(str(value)))


def _q(value: float | None) -> str:
    return "—" if value is None else f"{value:.3g}"


def effect_rows(kpi: str, effects: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each subgroup's row, worded: variable, level, units, the effects on the trained and the untrained.

    ``effects`` are rows as ``result.json``'s ``subgroups.effects`` holds them (and the learner's
    table has them): for each of ``att_`` and ``atu_`` the estimate with its simultaneous interval
    (``…_interval``), its pointwise one (``…_pointwise``) and its q-value; ``established`` says
    whether the simultaneous interval on the trained excludes zero, in words.
    """
    unit = kpi_unit(kpi)
    rows = []
    for r in effects:
        estimated = r["att_estimate"] is not None
        worded: dict[str, Any] = {
            "variable": r["variable"], "level": r["level"], "trained": f"{r['trained_units']:,}",
            "untrained": f"{r['untrained_units']:,}", "estimated": estimated,
            "established": ("established" if estimated and (r["att_sim_low"] > 0 or r["att_sim_high"] < 0)
                            else "not established"),
        }
        for side in ("att", "atu"):
            if not estimated:  # fewer than 10 trained or untrained units: no figures, said once
                worded.update({side: "" if side == "atu" else "not estimated (too few units)",
                               f"{side}_interval": "", f"{side}_pointwise": "", f"{side}_q": ""})
                continue
            worded.update({side: describe_change(r[f"{side}_estimate"], unit),
                           f"{side}_interval": _interval(r[f"{side}_sim_low"], r[f"{side}_sim_high"], unit),
                           f"{side}_pointwise": _interval(r[f"{side}_low"], r[f"{side}_high"], unit),
                           f"{side}_q": _q(r[f"{side}_q_value"])})
        rows.append(worded)
    return rows


def subgroup_rows(ev: Evaluation) -> list[dict[str, Any]]:
    """Each subgroup's row for the report (:func:`effect_rows` of the learner's table)."""
    wb = ev.subgroups
    return [] if wb is None else effect_rows(wb.kpi, wb.effects.table.iter_rows(named=True))


def worded_rollout(kpi: str, rollout: Iterable[dict[str, Any]]) -> list[dict[str, str]]:
    """Roll-out rows, worded: ``rollout`` as ``result.json``'s ``subgroups.rollout`` holds them, best first."""
    unit = kpi_unit(kpi)
    out = []
    for r in rollout:
        roi = ("—" if r["roi_pct"] is None else
               f"{percent(r['roi_pct'])} [{percent(r['roi_pct_low'])} to {percent(r['roi_pct_high'])}]")
        out.append({"subgroup": f"{r['variable']} = {r['level']}", "untrained": f"{r['untrained_units']:,}",
                    "effect": describe_change(r["effect"], unit) if r["effect"] is not None else "not estimated",
                    "interval": _interval(r["effect_low"], r["effect_high"], unit),
                    "value": _amount(r["value_per_unit"]), "cost": _amount(r["cost_per_unit"]),
                    "roi": roi, "evidence": r["evidence"]})
    return out


def rollout_rows(ev: Evaluation) -> list[dict[str, str]]:
    """The roll-out table's first rows, formatted: where to train next, by the lower end of ROI."""
    wb = ev.subgroups
    return [] if wb is None else worded_rollout(wb.kpi, wb.rollout_rows()[:SHOWN])


def differ_lines(differ: dict[str, dict[str, Any]], confidence: float) -> list[str]:
    """Whether the effect on the trained differs between each variable's levels, in words (a Wald test each)."""
    lines = []
    for variable, test in differ.items():
        said = "established" if test["p_value"] < 1 - confidence else "not established"
        lines.append(f"The effect differs by {variable}: {said} (Wald test, p = {test['p_value']:.3g}).")
    return lines


def subgroup_lines(ev: Evaluation) -> list[str]:
    """The console's few lines: whether the effect differs by each variable, and the best and worst subgroups."""
    wb = ev.subgroups
    if wb is None:
        return [ev.subgroups_basis[:1].upper() + ev.subgroups_basis[1:]] if ev.subgroups_basis else []
    e = wb.effects
    level = f"{e.confidence:.0%}"
    lines = differ_lines(e.differ, e.confidence)
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

