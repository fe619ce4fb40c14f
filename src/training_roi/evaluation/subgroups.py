"""Who benefits: the program's effect by subgroup, and where to roll it out next.

With ``insight.subgroups`` naming unit attributes (a rep's role or manager, an account's industry),
the headline KPI's change from each unit's baseline window to its primary window — the headline's
own windows, anchored at each completion (or a comparison unit's drawn date) to the day — is broken
down by every value of each (and, with ``insight.baseline_thirds``, by thirds of the units' earlier
record) with the doubly robust subgroup learner (:func:`training_roi.isolate.estimate_subgroups`): each subgroup's
effect on its trained units and on its not yet trained units, with intervals simultaneous over
every subgroup.

The roll-out table turns each subgroup's effect on the not yet trained into money and ROI per
unit trained next (:func:`training_roi.value.train_next.train_next`), on that subgroup's own
recent pipeline (:func:`recent_pipeline`) and the cost of training one more unit: the cost
categories that grow with each learner (``forecast.scale_up_costs``) ÷ the trained units, as in
the forecast's scale-up.

A study without a comparison group (``comparison.design: none``) gets no breakdown: it compares
trained with untrained units, which that study declines to do.

Each row says the strength of its evidence: ``randomised`` when the comparison is a random
holdout, else ``quasi-experimental`` (the learner's assumptions, and the caveat that the untrained
may gain less than look-alike trained units did, stand beside it).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from typing import Any

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
from training_roi.measure.tenure import hire_dates, tenure
from training_roi.study import StudyPlan
from training_roi.value import CostBreakdown
from training_roi.value.revenue import cents
from training_roi.value.train_next import RECENT_MONTHS, train_next

__all__ = ["TENURE", "TENURE_BANDS", "WhoBenefits", "recent_pipeline", "subgroup_effects", "who_benefits"]

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
    return None if value is None else cents(value)


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
    rollout, basis = train_next(effects, recent, kpi=plan.headline_kpi, months=months, margin=plan.gross_margin,
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
    if not panel.groups[kpi][0].units or not panel.groups[kpi][1].units:
        return "no breakdown by subgroup: it needs trained and comparison units"
    changes, left_out = panel.unit_changes(kpi)
    kept_units = changes["unit"].to_list()
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
        effects = estimate(changes["before"], changes["after"], changes["trained"], labels, covariates=cov,
                           covariate_names=covariates, weights=changes["weight"], learner=learner,
                           confidence=confidence, replicates=replicates, seed=seed, outcome=kpi)
    except NotApplicable as exc:
        return f"no breakdown by subgroup: {exc}"
    warnings = [f"{left_out:,} units have no {kpi} in their baseline or their window and are left out"] if left_out \
        else []
    labelled = changes.select("unit", "trained").with_columns(
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




TENURE = "tenure"
"""A rep grouping besides the CRM's attributes: years with the org at the training (or drawn) date."""
TENURE_BANDS = ((1.0, "under 1 year"), (3.0, "1 to 3 years"), (float("inf"), "3 years and over"))
"""The tenure bands: each label applies below its number of years."""


def _tenure_bands(con: BaseBackend, panel: WindowPanel, units: list[str]) -> list[str | None]:
    """Each rep's tenure band at its anchor: years from its CRM user's creation (its hire) to the anchor day."""
    hired = hire_dates(con)
    anchors = dict(zip(panel.anchors["unit_id"].to_pylist(), panel.anchors["anchor"].to_pylist(), strict=True))
    years = [(anchors[u] - hired[u]).days / 365.25 if u in hired and u in anchors else None for u in units]
    out: list[str | None] = []
    for y in years:
        out.append(None if y is None or y < 0 else next(label for top, label in TENURE_BANDS if y < top))
    return out

