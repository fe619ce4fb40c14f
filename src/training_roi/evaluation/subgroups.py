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

* value per unit = effect × the subgroup's untrained units' pace of the KPI's base (deals closed
  for a win rate, deals won for a deal size, by close date, per month each unit was there; none for
  revenue per unit-month, already money) × the primary window's months of benefit (after its ramp)
  × their average deal amount (pipeline created ÷ deals created; for a win rate) × gross margin,
  the pace and amount over the last :data:`RECENT_MONTHS` months of the data
  (:func:`recent_pipeline`);
* cost per unit = the cost categories that grow with each learner (``forecast.scale_up_costs``) ÷
  the trained units: what training one more unit costs, as in the forecast's scale-up;
* ROI = (value − cost) ÷ cost, its interval from the effect's simultaneous interval; when no cost
  grows with each learner there is no ROI per unit, and the table is ranked by value instead.

A study without a comparison group (``comparison.design: none``) gets no breakdown: it compares
trained with untrained units, which that study declines to do.

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
from training_roi.measure import DAYS_PER_MONTH, KPIS, monthly_panel
from training_roi.measure.covariates import unit_covariates, unit_labels
from training_roi.measure.panels import WindowPanel
from training_roi.measure.tenure import tenure
from training_roi.study import StudyPlan
from training_roi.value import CostBreakdown

__all__ = ["RECENT_MONTHS", "TENURE", "TENURE_BANDS", "WhoBenefits", "recent_pipeline", "subgroup_effects",
           "who_benefits"]

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
    interval, ``base_per_month`` and ``amount`` (the pipeline it is valued on), ``value_per_unit`` with
    ``value_low``/``value_high``, ``cost_per_unit``, ``roi`` with ``roi_low``/``roi_high``, ``evidence``,
    ``units_valued``; ordered by the lower end of ROI (of the value when there is no cost per unit; then
    of the effect), best first: the conservative ranking, which a subgroup estimated from few units does
    not top by luck."""
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
                "value_per_unit": _cents(row["value_per_unit"]), "value_low": _cents(row["value_low"]),
                "value_high": _cents(row["value_high"]), "cost_per_unit": _cents(row["cost_per_unit"]),
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
    if iso.comparison == "none":
        return ("no breakdown by subgroup: the study names no comparison group (comparison.design: none), and the "
                "breakdown compares trained with untrained units")
    months = float(plan.windows.benefit_months(plan.windows.primary_days))
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
    untrained = tuple(sorted(panel.comparison.units))
    recent = kept(recent_pipeline, con, unit=plan.unit, deal_types=plan.population.opportunity_types,
                  units=untrained, unit_months=unit_months)
    rollout, basis = _rollout(effects, recent, kpi=plan.headline_kpi, months=months, margin=plan.gross_margin,
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
    attributes = [n for n in dict.fromkeys(subgroups) if n != TENURE]
    labels_frame = unit_labels(con, unit, attributes, kept_units)
    labels: dict[str, list[str | None]] = {n: labels_frame[n].to_list() for n in attributes}
    if TENURE in subgroups:
        labels[TENURE] = _tenure_bands(con, panel, kept_units)
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
    measured from. A KPI per unit-month (revenue, pipeline) is averaged over every whole month of the
    range the data cover, with deals or not; a rate over the deals. Null where the range holds no
    month of data or, for a rate, no deal.
    """
    spec = KPIS[kpi]
    anchors = pl.from_arrow(panel.anchors.select(["unit_id", "base_anchor"]))
    sums = pl.from_arrow(unit_months.select(["unit_id", "month", *{spec.numerator, spec.denominator} - {"months"}]))
    assert isinstance(anchors, pl.DataFrame) and isinstance(sums, pl.DataFrame)
    hi = pl.col("base_anchor") - pl.duration(days=days)
    lo = hi - pl.duration(days=days)
    inside = (sums.join(anchors, on="unit_id")
              .filter((pl.col("month") >= lo) & (pl.col("month").dt.offset_by("1mo") <= hi)))
    if spec.denominator == "months":  # a KPI per unit-month: every whole month of the range in the data, deals or none
        start = sums["month"].min()
        first = pl.max_horizontal(pl.when(lo.dt.day() == 1).then(lo).otherwise(lo.dt.month_start().dt.offset_by("1mo")),
                                  pl.lit(start))
        last = hi.dt.month_start()
        whole = anchors.select("unit_id", den=(last.dt.year() * 12 + last.dt.month()
                                              - first.dt.year() * 12 - first.dt.month()).clip(0).cast(pl.Float64))
        totals = inside.group_by("unit_id").agg(num=pl.col(spec.numerator).cast(pl.Float64).sum())
        per = whole.join(totals, on="unit_id", how="left").with_columns(pl.col("num").fill_null(0.0))
    else:
        per = inside.group_by("unit_id").agg(num=pl.col(spec.numerator).cast(pl.Float64).sum(),
                                             den=pl.col(spec.denominator).cast(pl.Float64).sum())
    return (per.select(pl.col("unit_id").alias("unit"),
                    level=pl.when(pl.col("den") > 0).then(pl.col("num") / pl.col("den"))))


def recent_pipeline(con: BaseBackend, *, unit: str, deal_types: tuple[str, ...], units: tuple[str, ...],
                    unit_months: pa.Table) -> pl.DataFrame:
    """Each of ``units``' pipeline over the last :data:`RECENT_MONTHS` months of the data: what a unit is valued on.

    ``unit``, ``months`` (the months it was there in that range, from its tenure: a rep who joined
    mid-range counts its months, not the range's), ``closed`` and ``won`` (deals closed and won in
    the range, by close date: counting them by creation month would leave out the recent deals not
    yet closed), ``opportunities`` and ``pipeline_created`` (deals created in the range and their
    amounts, for the average deal amount). A unit with no deal in the range has zeros.
    """
    months = pl.from_arrow(unit_months.select(["month"]))
    assert isinstance(months, pl.DataFrame)
    last: date = months["month"].max()  # type: ignore[assignment]
    end_index = last.year * 12 + last.month  # the month after the last, 0-based
    end = date(end_index // 12, end_index % 12 + 1, 1)
    start_index = end_index - RECENT_MONTHS
    first = date(start_index // 12, start_index % 12 + 1, 1)
    closed = pl.from_arrow(monthly_panel(con, start=first, end=end, unit=unit, deal_types=deal_types, basis="close")
                           .to_pyarrow().select(["unit_id", "closed", "won"]))
    made = pl.from_arrow(unit_months.select(["unit_id", "month", "opportunities", "pipeline_created"]))
    assert isinstance(closed, pl.DataFrame) and isinstance(made, pl.DataFrame)
    present = tenure(con, unit)
    spans = [present.span(u, first, end) for u in units]
    frame = pl.DataFrame({"unit": list(units),
                          "months": [max((hi - lo).days, 0) / DAYS_PER_MONTH for lo, hi in spans]},
                         schema={"unit": pl.String, "months": pl.Float64})
    outcomes = closed.group_by("unit_id").agg(pl.col("closed", "won").cast(pl.Float64).sum())
    created = (made.filter(pl.col("month") >= first).group_by("unit_id")
               .agg(pl.col("opportunities", "pipeline_created").cast(pl.Float64).sum()))
    return (frame.join(outcomes.rename({"unit_id": "unit"}), on="unit", how="left", maintain_order="left")
            .join(created.rename({"unit_id": "unit"}), on="unit", how="left", maintain_order="left")
            .with_columns(pl.col("closed", "won", "opportunities", "pipeline_created").fill_null(0.0)))


def _rollout(effects: SubgroupEffects, recent: pl.DataFrame, *, kpi: str, months: float, margin: float, cost: float,
             evidence: str) -> tuple[pl.DataFrame, str]:
    """The roll-out table and the sentence saying how it values a unit."""
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


TENURE = "tenure"
"""A rep grouping besides the CRM's attributes: years with the org at the training (or drawn) date."""
TENURE_BANDS = ((1.0, "under 1 year"), (3.0, "1 to 3 years"), (float("inf"), "3 years and over"))
"""The tenure bands: each label applies below its number of years."""


def _tenure_bands(con: BaseBackend, panel: WindowPanel, units: list[str]) -> list[str | None]:
    """Each rep's tenure band at its anchor: years from its CRM user's creation (its hire) to the anchor day."""
    users = con.table("crm_user")
    hired = pl.from_arrow(users.select(users.user_id.cast("string").name("unit"),
                                       users.created_at.date().name("hired")).to_pyarrow())
    anchors = pl.from_arrow(panel.anchors.select(["unit_id", "anchor"]))
    assert isinstance(hired, pl.DataFrame) and isinstance(anchors, pl.DataFrame)
    years = (pl.DataFrame({"unit": units}, schema={"unit": pl.String})
             .join(anchors.rename({"unit_id": "unit"}), on="unit", how="left", maintain_order="left")
             .join(hired.unique("unit", keep="first"), on="unit", how="left", maintain_order="left")
             .select(((pl.col("anchor") - pl.col("hired")).dt.total_days() / 365.25).alias("years")))
    out: list[str | None] = []
    for y in years["years"].to_list():
        out.append(None if y is None or y < 0 else next(label for top, label in TENURE_BANDS if y < top))
    return out

