"""Phillips' levels of an evaluation: the behaviour before and after training (level 3) and the whole ROI (level 5).

Level 3 compares each trained rep's application KPIs (catalogue behaviour KPIs: activity volume,
tasks on time, data completeness, …) in whole calendar months before and after the training
month — skipping the ramp's months after it, as every other figure does — and charts both groups
by month. Level 5 adds the study's declared monetisation rules to the credited incremental
revenue × margin, against the same fully loaded cost.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import polars as pl
import pyarrow.compute as pc
from ibis.backends import BaseBackend

from training_roi.evaluation.results import WindowResult
from training_roi.evaluation.stages import kept
from training_roi.measure import CATALOGUE, WindowPanel, assigned, compute
from training_roi.study import StudyError, StudyPlan
from training_roi.value import Benefit, CostBreakdown, KpiImpact, PhillipsEvaluation, monetise, phillips_levels

__all__ = ["REVENUE_BENEFIT", "application", "phillips"]


REVENUE_BENEFIT = "incremental revenue × gross margin"
"""The name of Phillips level 5's first benefit: the credited incremental revenue × margin."""


def application(con: BaseBackend, plan: StudyPlan,
                panel: WindowPanel) -> tuple[pl.DataFrame | None, tuple[dict[str, Any], ...]]:
    """The application KPIs: each trained unit's before and after (Phillips level 3), and both groups by month.

    Months are whole calendar months: the baseline is the months before the completion month,
    the window the months after it, as many as the study's baseline and window cover. The
    monthly rows pool the trained and the comparison reps' numerators and denominators (the
    report's charts).
    """
    if not plan.application_kpis or plan.unit != "rep":
        return None, ()
    anchors = pl.from_arrow(panel.anchors.filter(pc.field("trained")).select(["unit_id", "anchor"]))
    assert isinstance(anchors, pl.DataFrame)
    if anchors.is_empty():
        return None, ()
    monthly = assigned(kept(compute, con, list(plan.application_kpis), monthly=True, grain="rep",
                            basis="created")).filter(
        pl.col("value").is_not_null())
    if monthly.is_empty():
        return None, ()
    return _before_after(plan, panel, monthly, anchors), _by_group(panel, monthly)


def _by_group(panel: WindowPanel, monthly: pl.DataFrame) -> tuple[dict[str, Any], ...]:
    """Application KPIs per month for the trained and the comparison reps, as trend-chart rows."""
    groups = pl.DataFrame({"grain_id": [*panel.treated.units, *panel.comparison.units],
                           "group": ["trained"] * len(panel.treated.units)
                           + ["comparison"] * len(panel.comparison.units)})
    # compute() returns rows in a fixed order; keeping it keeps each month's float sums the same every run.
    rows = monthly.join(groups, on="grain_id", maintain_order="left").group_by(
        "kpi", "period", "group", maintain_order=True).agg(
        pl.col("numerator").sum(), pl.col("denominator").sum(), pl.len().alias("reps")).sort("kpi", "period", "group")
    return tuple({"kpi": r["kpi"], "month": r["period"].isoformat(), "group": r["group"],
                  r["kpi"]: r["numerator"] / r["denominator"] if r["denominator"] else None,
                  "closed": r["denominator"], "reps": r["reps"]} for r in rows.iter_rows(named=True))


def _before_after(plan: StudyPlan, panel: WindowPanel, monthly: pl.DataFrame,
                  anchors: pl.DataFrame) -> pl.DataFrame | None:
    """Each trained unit's application KPIs pooled before and after its training month."""
    before = plan.windows.baseline_months
    ramp = plan.windows.ramp_months
    after = plan.windows.calendar_months(panel.window_days)
    month = pl.col("period").dt.year() * 12 + pl.col("period").dt.month()
    start = pl.col("anchor").dt.year() * 12 + pl.col("anchor").dt.month()
    rows = monthly.join(anchors.rename({"unit_id": "grain_id"}), on="grain_id").with_columns((month - start).alias("k"))
    pooled = rows.with_columns(pl.when(pl.col("k") < 0).then(pl.lit("before")).otherwise(pl.lit("after")).alias("when"))
    inside = ((pl.col("k") >= -before) & (pl.col("k") < 0)) | ((pl.col("k") > ramp) & (pl.col("k") <= after))
    pooled = pooled.filter(inside)
    sums = pooled.sort("kpi", "grain_id", "period").group_by("kpi", "grain_id", "when", maintain_order=True).agg(
        pl.col("numerator").sum(), pl.col("denominator").sum())
    sums = sums.with_columns((pl.col("numerator") / pl.col("denominator")).alias("value"))
    wide = sums.pivot(on="when", index=["kpi", "grain_id"], values="value")
    if not {"before", "after"} <= set(wide.columns):
        return None
    labels = {k: CATALOGUE[k].label for k in plan.application_kpis}
    # A fixed row order: the level's means are float sums, which must not depend on how rows arrive.
    return wide.select(pl.col("kpi").replace_strict(labels), pl.col("grain_id").alias("unit_id"), "before",
                       "after").sort("kpi", "unit_id")


def phillips(con: BaseBackend, plan: StudyPlan, primary: WindowResult, costs: CostBreakdown,
             behaviour: pl.DataFrame | None) -> PhillipsEvaluation:
    """The program's five levels: surveys, learning, application, the isolated KPIs, and the full ROI.

    Level 5 adds the study's declared monetisation rules (errors, penalties, turnover, time
    saved; a rule may name an isolated KPI effect by its KPI name) to the credited incremental
    revenue × margin, against the same fully loaded cost.
    """
    effects = {k.kpi: k.did for k in primary.kpis if k.did is not None}
    impact = [KpiImpact.of(k.label, k.did, verdict=k.verdict) for k in primary.kpis if k.did is not None]
    try:
        benefits = monetise(plan.monetisation, effects=effects)
    except ValueError as exc:
        raise StudyError(f"study {plan.name}: monetisation: {exc}") from exc
    if any(b.name == REVENUE_BENEFIT for b in benefits):
        raise StudyError(f"study {plan.name}: monetisation: {REVENUE_BENEFIT!r} is the credited revenue's own "
                         "benefit; name the rule differently")
    margin = Decimal(str(plan.gross_margin))
    revenue = primary.incremental_revenue.quantize(Decimal("0.01"))
    low_high = primary.intervals.get("benefit") if primary.incremental_revenue > 0 else None
    revenue_benefit = Benefit(
        REVENUE_BENEFIT, "revenue_margin", (revenue * margin).quantize(Decimal("0.01")),
        f"${revenue:,.2f} credited incremental revenue ({primary.value_formula}) × {float(margin):.1%} gross margin",
        {"revenue": revenue, "margin": margin}, "isolated effect", plan.headline_kpi,
        (Decimal(str(round(low_high[0], 2))), Decimal(str(round(low_high[1], 2)))) if low_high else None)
    benefits = (revenue_benefit, *benefits)
    months = plan.windows.benefit_months(primary.window_days)
    return phillips_levels(con, program=plan.program, activities=plan.cohort.activities, benefits=benefits,
                           cost=costs, impact=impact, behaviour=behaviour,
                           intangibles=plan.intangibles, months_of_benefit=months,
                           confidence=plan.isolation.confidence)


