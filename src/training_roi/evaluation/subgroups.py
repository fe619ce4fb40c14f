"""Who benefits: the program's effect by subgroup, and where to roll it out next.

With ``insight.subgroups`` naming unit attributes (a rep's role or manager, an account's industry),
the headline KPI's change from each unit's baseline window to its primary window — the headline's
own windows, anchored at each completion (or a comparison unit's drawn date) to the day — is broken
down by every value of each (and, with ``insight.baseline_thirds``, by thirds of the units' earlier
record) with the doubly robust subgroup learner (:func:`training_roi.isolate.estimate_subgroups`): each subgroup's
effect on its trained units and on its not yet trained units, with intervals simultaneous over
every subgroup.

The roll-out table turns each subgroup's effect on the not yet trained into money and ROI per
unit trained next, by the seed's formula applied to that subgroup's own recent pipeline:

* value per unit = effect × the subgroup's untrained units' pace of the KPI's base per month
  (closed deals for a win rate, won deals for a deal size; none for revenue per unit-month,
  already money) × the primary window's months × their average deal amount (pipeline created ÷
  deals created; for a win rate) × gross margin, the pace and amount over the last
  :data:`RECENT_MONTHS` months of the data;
* cost per unit = the cost categories that grow with each learner (``forecast.scale_up_costs``) ÷
  the trained units: what training one more unit costs, as in the forecast's scale-up;
* ROI = (value − cost) ÷ cost, its interval from the effect's simultaneous interval.

Each row says the strength of its evidence: ``randomised`` when the comparison is a random
holdout, else ``quasi-experimental`` (the learner's assumptions, and the caveat that the untrained
may gain less than look-alike trained units did, stand beside it).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
from ibis.backends import BaseBackend

from training_roi.errors import NotApplicable
from training_roi.evaluation.stages import kept
from training_roi.isolate import SubgroupEffects
from training_roi.isolate import subgroup_effects as estimate
from training_roi.isolate.heterogeneity import BASELINE, Learner, thirds
from training_roi.measure import DAYS_PER_MONTH, KPIS
from training_roi.measure.covariates import unit_covariates, unit_labels
from training_roi.measure.panels import WindowPanel
from training_roi.study import StudyPlan
from training_roi.value import CostBreakdown

__all__ = ["RECENT_MONTHS", "WhoBenefits", "subgroup_effects", "who_benefits"]

RECENT_MONTHS = 12
"""The months at the end of the data whose pipeline a subgroup's untrained units are valued on."""

_BASE = {"win_rate": "closed", "avg_won_deal_size": "won", "revenue_per_rep": None}
"""The count per unit-month the effect of each KPI applies to (None: the KPI is money per unit-month already)."""


@dataclass(frozen=True)
class WhoBenefits:
    """The effect by subgroup, and the roll-out table: each subgroup's not yet trained units valued."""

    kpi: str
    effects: SubgroupEffects
    rollout: pl.DataFrame = field(repr=False)
    """Per subgroup: ``variable``, ``level``, ``untrained_units``, the effect on them and its simultaneous
    interval, ``base_per_month`` and ``amount`` (the pipeline it is valued on), ``value_per_unit``,
    ``cost_per_unit``, ``roi`` with ``roi_low``/``roi_high``, ``evidence``; ordered by the lower end of ROI
    (then of the effect), best first: the conservative ranking, which a subgroup estimated from few units
    does not top by luck."""
    evidence: str
    basis: str
    """How the roll-out table values a unit, in words (or why it has no money)."""

    def asdict(self) -> dict[str, Any]:
        """The result document's ``subgroups`` section: money as exact cents in text, ROI in percent."""
        e = self.effects
        return {
            "kpi": self.kpi, "method": e.method, "evidence": self.evidence, "confidence": e.confidence,
            "replicates": e.replicates, "critical_values": e.critical_values, "overall": e.overall,
            "differ": e.differ, "effects": e.table.to_dicts(), "rollout": self.rollout_rows(),
            "rollout_basis": self.basis, "assumptions": list(e.assumptions), "warnings": list(e.warnings),
            "diagnostics": e.diagnostics,
        }

    def rollout_rows(self) -> list[dict[str, Any]]:
        """The roll-out table's rows, money in cents (Decimal) and ROI in percent, best lower bound first."""
        out = []
        for row in self.rollout.iter_rows(named=True):
            out.append({
                "variable": row["variable"], "level": row["level"], "untrained_units": row["untrained_units"],
                "effect": row["effect"], "effect_low": row["effect_low"], "effect_high": row["effect_high"],
                "base_per_month": row["base_per_month"], "amount": _cents(row["amount"]),
                "value_per_unit": _cents(row["value_per_unit"]), "cost_per_unit": _cents(row["cost_per_unit"]),
                **{f"roi_pct{end}": None if row[f"roi{end}"] is None else round(row[f"roi{end}"] * 100, 1)
                   for end in ("", "_low", "_high")},
                "evidence": row["evidence"],
            })
        return out


def _cents(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(str(value)).quantize(Decimal("0.01"), ROUND_HALF_UP)


def who_benefits(con: BaseBackend, plan: StudyPlan, panel: WindowPanel, costs: CostBreakdown,
                 unit_months: pa.Table) -> WhoBenefits | str:
    """The effect by subgroup for the primary window's units, and the roll-out table; or why there is none.

    The estimate is a kept measurement (:mod:`training_roi.evaluation.stages`): a changed margin or
    cost values the same effects again.
    """
    insight = plan.study.insight
    iso = plan.isolation
    months = max(1, round(plan.windows.primary_days / DAYS_PER_MONTH))
    measured = kept(subgroup_effects, con, panel, kpi=plan.headline_kpi, unit=plan.unit, covariates=iso.covariates,
                    subgroups=tuple(insight.subgroups), baseline_thirds=insight.baseline_thirds,
                    learner=insight.learner, baseline_days=plan.windows.baseline_days, confidence=iso.confidence,
                    replicates=iso.replicates, seed=iso.seed, unit_months=unit_months)
    if isinstance(measured, str):
        return measured
    effects = measured
    evidence = "randomised" if iso.randomised else "quasi-experimental"
    variable = sum((costs.by_category.get(c, Decimal(0)) for c in plan.study.forecast.scale_up_costs), Decimal(0))
    cost = float(variable) / len(panel.treated.units)
    rollout, basis = _rollout(effects, unit_months, kpi=plan.headline_kpi,
                              untrained=set(panel.comparison.units), months=months, margin=plan.gross_margin,
                              cost=cost, evidence=evidence)
    return WhoBenefits(kpi=plan.headline_kpi, effects=effects, rollout=rollout, evidence=evidence, basis=basis)


def subgroup_effects(con: BaseBackend, panel: WindowPanel, *, kpi: str, unit: str, covariates: tuple[str, ...],
                     subgroups: tuple[str, ...], baseline_thirds: bool, learner: Learner, baseline_days: int,
                     confidence: float, replicates: int, seed: int,
                     unit_months: pa.Table) -> SubgroupEffects | str:
    """The KPI's effect by subgroup on the window panel's units (their labels in ``labels``); or why there is none.

    Each unit's outcome before and after is the headline's own: its baseline window and the primary
    window from its completion (a comparison unit's drawn date), to the day. A unit needs activity in
    both. Its earlier record, for the baseline thirds, is the KPI over the whole months of the
    ``baseline_days`` before its baseline window (:func:`_earlier_record`).
    """
    trained, compared = panel.groups[kpi]
    if not trained.units or not compared.units:
        return "no breakdown by subgroup: it needs trained and comparison units"
    units = [*trained.units, *compared.units]
    d = np.r_[np.ones(len(trained.units), bool), np.zeros(len(compared.units), bool)]
    base_n, base_d = np.r_[trained.base_successes, compared.base_successes], np.r_[trained.base_trials,
                                                                                    compared.base_trials]
    post_n, post_d = np.r_[trained.post_successes, compared.post_successes], np.r_[trained.post_trials,
                                                                                    compared.post_trials]
    usable = (base_d > 0) & (post_d > 0)
    kept_units = [u for u, ok in zip(units, usable, strict=True) if ok]
    labels_frame = unit_labels(con, unit, subgroups, kept_units)
    labels: dict[str, list[str | None]] = {n: labels_frame[n].to_list() for n in dict.fromkeys(subgroups)}
    cuts: list[float] = []
    if baseline_thirds:
        earlier = _earlier_record(panel, unit_months, kpi=kpi, days=baseline_days)
        level = pl.DataFrame({"unit": kept_units}).join(earlier, on="unit", how="left", maintain_order="left")
        third, cuts = thirds(level["level"].to_list())
        labels[BASELINE] = list(third)
    cov = None
    if covariates:
        frame, names = unit_covariates(con, unit, covariates, kept_units)
        cov = frame.select(names).to_numpy() if names else None
        covariates = names
    try:
        effects = estimate(base_n[usable] / base_d[usable], post_n[usable] / post_d[usable], d[usable], labels,
                           covariates=cov, covariate_names=covariates, weights=(base_d + post_d)[usable],
                           learner=learner, confidence=confidence, replicates=replicates, seed=seed, outcome=kpi)
    except NotApplicable as exc:
        return f"no breakdown by subgroup: {exc}"
    left_out = int((~usable).sum())
    warnings = [f"{left_out:,} units have no {kpi} in their baseline or their window and are left out"] if left_out \
        else []
    labelled = pl.DataFrame({"unit": kept_units, "trained": d[usable]}).with_columns(
        *(pl.Series(v, values, dtype=pl.String) for v, values in labels.items()))
    return replace(effects, labels=labelled, warnings=(*effects.warnings, *warnings),
                   diagnostics=effects.diagnostics | {"baseline_cut_points": cuts, "units_left_out": left_out,
                                                      "windows": "the headline's: each unit's baseline window and "
                                                                 "the primary window from its completion"})


def _earlier_record(panel: WindowPanel, unit_months: pa.Table, *, kpi: str, days: int) -> pl.DataFrame:
    """Each unit's KPI over the whole months inside the ``days`` before its baseline window: ``unit``, ``level``.

    Months, not days: the unit-month sums are what the evaluation holds, and a month that overlaps the
    baseline window is left out, so the record never shares a deal with the months the change is
    measured from. Null where the unit has no activity then.
    """
    spec = KPIS[kpi]
    anchors = pl.from_arrow(panel.anchors.select(["unit_id", "base_anchor"]))
    sums = pl.from_arrow(unit_months.select(["unit_id", "month", *{spec.numerator, spec.denominator} - {"months"}]))
    assert isinstance(anchors, pl.DataFrame) and isinstance(sums, pl.DataFrame)
    hi = pl.col("base_anchor") - pl.duration(days=days)
    lo = hi - pl.duration(days=days)
    den = pl.lit(1.0) if spec.denominator == "months" else pl.col(spec.denominator).cast(pl.Float64)
    inside = (sums.join(anchors, on="unit_id")
              .filter((pl.col("month") >= lo) & (pl.col("month").dt.offset_by("1mo") <= hi)))
    return (inside.group_by("unit_id")
            .agg(num=pl.col(spec.numerator).cast(pl.Float64).sum(), den=den.sum())
            .select(pl.col("unit_id").alias("unit"),
                    level=pl.when(pl.col("den") > 0).then(pl.col("num") / pl.col("den"))))


def _rollout(effects: SubgroupEffects, unit_months: pa.Table, *, kpi: str, untrained: set[str],
             months: int, margin: float, cost: float, evidence: str) -> tuple[pl.DataFrame, str]:
    """The roll-out table and the sentence saying how it values a unit."""
    labels = effects.labels if effects.labels is not None else pl.DataFrame({"unit": []}, schema={"unit": pl.String})
    labels = labels.drop("trained", strict=False)
    sums = pl.from_arrow(unit_months.select(["unit_id", "month", "opportunities", "closed", "won", "won_amount",
                                             "pipeline_created"]))
    assert isinstance(sums, pl.DataFrame)
    last: date = sums["month"].max()  # type: ignore[assignment]
    lo = last.year * 12 + last.month - RECENT_MONTHS  # the month RECENT_MONTHS − 1 before the last, 0-based
    first = date(lo // 12, lo % 12 + 1, 1)
    recent = (sums.filter((pl.col("month") >= first) & pl.col("unit_id").is_in(list(untrained)))
              .rename({"unit_id": "unit"}).join(labels, on="unit"))
    base = _BASE.get(kpi, "missing")
    money = base != "missing"
    rows: list[dict[str, Any]] = []
    for row in effects.table.iter_rows(named=True):
        variable, level = row["variable"], row["level"]
        est, low, high = row["atu_estimate"], row["atu_sim_low"], row["atu_sim_high"]
        out: dict[str, Any] = {"variable": variable, "level": level, "untrained_units": row["untrained_units"],
                               "effect": est, "effect_low": low, "effect_high": high, "base_per_month": None,
                               "amount": None, "value_per_unit": None, "cost_per_unit": cost if money else None,
                               "roi": None, "roi_low": None, "roi_high": None, "evidence": evidence}
        here = recent.filter(pl.col(variable) == level) if variable in recent.columns else None
        if money and est is not None and here is not None and here.height:
            unit_count = here["unit"].n_unique()
            unit_months_n = here.height
            scale = float(months) * margin
            if base is None:
                per = 1.0
                out["base_per_month"] = None
            else:
                per_month = float(here[base].sum()) / unit_months_n
                out["base_per_month"] = per_month
                per = per_month
            if kpi == "win_rate":
                made = float(here["opportunities"].sum())
                amount = float(here["pipeline_created"].sum()) / made if made else 0.0
                out["amount"] = amount
                per *= amount
            values = [None if x is None else x * per * scale for x in (est, low, high)]
            out["value_per_unit"] = values[0]
            if cost > 0:
                out["roi"], out["roi_low"], out["roi_high"] = (None if v is None else (v - cost) / cost for v in values)
            out["units_valued"] = unit_count
        rows.append(out)
    table = pl.DataFrame(rows, schema=_ROLLOUT_SCHEMA).sort(["roi_low", "effect_low"], descending=True,
                                                            nulls_last=True)
    if not money:
        return table, (f"the roll-out table has no money: the headline KPI {kpi} is not valued per unit (value the "
                       "win rate, the deal size or the revenue per unit-month)")
    what = {"win_rate": "the win-rate effect × closed deals per unit-month × the average deal amount (pipeline "
                        "created ÷ deals created)",
            "avg_won_deal_size": "the deal-size effect × won deals per unit-month",
            "revenue_per_rep": "the effect on revenue per unit-month"}[kpi]
    return table, (f"value per unit trained next = {what} of the subgroup's untrained units over the last "
                   f"{RECENT_MONTHS} months × {months} months (the primary window) × {margin:.1%} gross margin; cost "
                   "per unit = the cost categories that grow with each learner (forecast.scale_up_costs) ÷ the "
                   "trained units; intervals from the effect's simultaneous interval")


_ROLLOUT_SCHEMA: dict[str, Any] = {
    "variable": pl.String, "level": pl.String, "untrained_units": pl.Int64, "effect": pl.Float64,
    "effect_low": pl.Float64, "effect_high": pl.Float64, "base_per_month": pl.Float64, "amount": pl.Float64,
    "value_per_unit": pl.Float64, "cost_per_unit": pl.Float64, "roi": pl.Float64, "roi_low": pl.Float64,
    "roi_high": pl.Float64, "evidence": pl.String, "units_valued": pl.Int64,
}
