"""Where to train next: each subgroup's not yet trained units valued, against the cost of training one more.

The seed's formula applied to a subgroup's own recent pipeline:

* value per unit = the effect on the subgroup's untrained units × their pace of the KPI's base
  (deals closed for a win rate, deals won for a deal size, by close date, per month each unit was
  there; none for revenue per unit-month, already money) × the months of benefit (the primary
  window after its ramp) × their average deal amount (pipeline created ÷ deals created; for a win
  rate) × gross margin, the pace and amount over the last :data:`RECENT_MONTHS` months of the data;
* ROI = (value − cost) ÷ cost, its interval from the effect's simultaneous interval; when no cost
  grows with each learner there is no ROI per unit, and the table is ranked by value instead.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from training_roi.isolate import SubgroupEffects

__all__ = ["RECENT_MONTHS", "train_next"]

RECENT_MONTHS = 12
"""The months at the end of the data whose pipeline a subgroup's untrained units are valued on."""

_BASE = {"win_rate": "closed", "avg_won_deal_size": "won", "revenue_per_rep": None}
"""The count per unit-month the effect of each KPI applies to (None: the KPI is money per unit-month already)."""


def train_next(effects: SubgroupEffects, recent: pl.DataFrame, *, kpi: str, months: float, margin: float, cost: float,
             evidence: str) -> tuple[pl.DataFrame, str]:
    """The roll-out table and the sentence saying how it values a unit.

    ``effects``: the effects by subgroup, with each unit's labels; ``recent``: the untrained units'
    pipeline (``unit``, ``months``, ``closed``, ``won``, ``opportunities``, ``pipeline_created``);
    ``months``: the months of benefit; ``cost``: what training one more unit costs.
    """
    labels = effects.labels if effects.labels is not None else pl.DataFrame({"unit": []}, schema={"unit": pl.String})
    here_all = recent.join(labels.filter(~pl.col("trained")).drop("trained"), on="unit")
    base = _BASE.get(kpi, "missing")
    money = base != "missing"
    rows: list[dict[str, Any]] = []
    for row in effects.table.iter_rows(named=True):
        variable, level = row["variable"], row["level"]
        est, low, high = row["atu_estimate"], row["atu_sim_low"], row["atu_sim_high"]
        out: dict[str, Any] = {"variable": variable, "level": level, "untrained_units": row["untrained_units"],
                               "effect": est, "effect_low": low, "effect_high": high, "base_per_month": None,
                               "amount": None, "value_per_unit": None, "value_low": None, "value_high": None,
                               "cost_per_unit": cost if money else None, "roi": None, "roi_low": None,
                               "roi_high": None, "evidence": evidence, "units_valued": None}
        here = here_all.filter(pl.col(variable) == level) if variable in here_all.columns else None
        present = float(here["months"].sum()) if here is not None else 0.0
        if money and est is not None and here is not None and present > 0:
            per = 1.0
            if base is not None:
                per = float(here[base].sum()) / present
                out["base_per_month"] = per
            if kpi == "win_rate":
                made = float(here["opportunities"].sum())
                amount = float(here["pipeline_created"].sum()) / made if made else 0.0
                out["amount"] = amount
                per *= amount
            values = [x * per * months * margin for x in (est, low, high)]
            out["value_per_unit"], out["value_low"], out["value_high"] = values
            if cost > 0:
                out["roi"], out["roi_low"], out["roi_high"] = ((v - cost) / cost for v in values)
            out["units_valued"] = here.height
        rows.append(out)
    ranked_by = ["roi_low", "effect_low"] if cost > 0 else ["value_low", "effect_low"]
    table = pl.DataFrame(rows, schema=_ROLLOUT_SCHEMA).sort(ranked_by, descending=True, nulls_last=True,
                                                            maintain_order=True)
    if not money:
        return table, (f"the roll-out table has no money: the headline KPI {kpi} is not valued per unit (value the "
                       "win rate, the deal size or the revenue per unit-month)")
    what = {"win_rate": "the win-rate effect × deals closed per unit-month × the average deal amount (pipeline "
                        "created ÷ deals created)",
            "avg_won_deal_size": "the deal-size effect × deals won per unit-month",
            "revenue_per_rep": "the effect on revenue per unit-month"}[kpi]
    ranking = ("ranked by the low end of ROI" if cost > 0 else
               "no cost grows with each learner (forecast.scale_up_costs), so there is no ROI per unit: ranked by "
               "the low end of the value")
    return table, (f"value per unit trained next = {what} of the subgroup's untrained units over the last "
                   f"{RECENT_MONTHS} months (deals by close date, per month each unit was there) × {months:g} months "
                   f"of benefit (the primary window after its ramp) × {margin:.1%} gross margin; cost per unit = the "
                   "cost categories that grow with each learner (forecast.scale_up_costs) ÷ the trained units; "
                   f"intervals from the effect's simultaneous interval; {ranking}")


_ROLLOUT_SCHEMA: dict[str, Any] = {
    "variable": pl.String, "level": pl.String, "untrained_units": pl.Int64,
    **dict.fromkeys(("effect", "effect_low", "effect_high", "base_per_month", "amount", "value_per_unit", "value_low",
                     "value_high", "cost_per_unit", "roi", "roi_low", "roi_high"), pl.Float64),
    "evidence": pl.String, "units_valued": pl.Int64,
}
