"""One attribution window's figures: every KPI's difference-in-differences, the credit, the money, the power.

The primary window and each sensitivity window are answered the same way (:func:`window_result`):
each KPI of the study by the windowed difference-in-differences with its naive references and
verdict, the credited effect of the design the study chose (:func:`design_of`), the seed model's
incremental revenue, benefit and ROI with intervals, the direct revenue estimate beside it, the
smallest lift the window could detect, and — for the primary window — the seed's per-learner rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import polars as pl
from ibis.backends import BaseBackend

from training_roi._format import describe_change
from training_roi.evaluation.results import WINDOWED_LABEL, KpiResult, LearnerRow, WindowResult
from training_roi.isolate import (
    Comparison,
    Effect,
    Resampling,
    UnitPanel,
    did_rate,
    estimate_icc,
    minimum_detectable_lift,
    naive_rates,
    power_warning,
)
from training_roi.measure import KPIS, KpiSpec, WindowPanel, unit_names
from training_roi.study import StudyError, StudyPlan
from training_roi.value import Credit, conservative_credit, seed_model, value_intervals, value_intervals_from_lift

__all__ = ["Design", "credit_of", "design_of", "window_result"]


@dataclass(frozen=True)
class Design:
    """Which estimate the credited value comes from, in every window, and why."""

    method: str
    """``did`` (the windowed difference-in-differences) or one of :data:`training_roi.isolate.METHODS`."""
    label: str
    reason: str
    effects: dict[int, Effect | None] = field(default_factory=dict)
    """The method's headline-KPI effect by window length (for a method other than ``did``)."""
    missing: dict[int, str] = field(default_factory=dict)
    """Why the method gave no effect in a window."""


def design_of(plan: StudyPlan, methods: Comparison | None,
              by_window: tuple[tuple[int, Comparison], ...]) -> Design:
    """The design that produces the credited value: the study's choice, or the recommended one.

    With ``isolation.method: all`` the credit follows the recommendation; when that is the
    comparison-group difference-in-differences, the windowed one is used (the same design,
    measured in each learner's own windows as the seed defines them).
    """
    choice = plan.isolation.method
    if choice == "did" or methods is None:
        return Design("did", WINDOWED_LABEL, "named by the study (isolation.method: did)")
    if choice == "all":
        chosen = methods.recommended
        if chosen in (None, "twfe"):
            reason = (f"recommended: {methods.reason}; measured in each learner's own windows" if chosen else
                      "no other method could be applied to this data")
            return Design("did", WINDOWED_LABEL, reason)
        reason = f"recommended: {methods.reason}"
    else:
        chosen, reason = choice, f"named by the study (isolation.method: {choice})"
    effects: dict[int, Effect | None] = {}
    missing: dict[int, str] = {}
    for days, comparison in ((plan.windows.primary_days, methods), *by_window):
        r = comparison.result(str(chosen))
        effects[days] = r.effect if r is not None else None
        if r is None or r.effect is None:
            missing[days] = (r.not_applicable or "") if r is not None else "the method was not run"
    first = methods.result(str(chosen))
    return Design(str(chosen), first.label if first else str(chosen), reason, effects, missing)


def _value_base(kpi: str, panel: WindowPanel, unit: str) -> tuple[Decimal, str]:
    """What the headline KPI's credited effect multiplies into incremental revenue, and the formula."""
    if kpi == "win_rate":
        return (Decimal(str(round(panel.post_pipeline, 2))),
                f"credited lift in win rate × pipeline value of the trained {unit}s' deals in the window "
                "(the seed model)")
    if kpi == "avg_won_deal_size":
        return (Decimal(panel.post_won_deals),
                f"credited change in average won deal size × deals the trained {unit}s won in the window")
    if kpi == "revenue_per_rep":
        return (Decimal(str(round(panel.post_exposure_months, 4))),
                f"credited change in revenue per {unit}-month × the trained {unit}s' months in the window")
    if kpi == "pipeline_created":
        (_,), (post_rate,) = panel.treated.rates()
        rate = float(post_rate) if post_rate == post_rate else 0.0
        return (Decimal(str(round(panel.post_exposure_months * rate, 4))),
                f"credited change in pipeline per {unit}-month × the trained {unit}s' months in the window × "
                "their post-training win rate")
    raise StudyError(f"headline_kpi {kpi}: cannot be turned into revenue; name it under kpis and lead with "
                     "win_rate, avg_won_deal_size, pipeline_created or revenue_per_rep")


def _kpi_result(kpi: str, panel: WindowPanel, plan: StudyPlan, resampling: Resampling | None) -> KpiResult:
    """One KPI's difference-in-differences, naive references and verdict in one window."""
    spec = KPIS[kpi]
    treated, comparison = panel.groups[kpi]
    did: Effect | None = None
    reason = ""
    if plan.isolation.comparison == "none":
        reason = "the study names no comparison group, so the program's effect cannot be isolated"
    elif resampling is not None:
        try:
            did = did_rate(treated, comparison, resampling=resampling)
        except ValueError as exc:
            reason = f"difference-in-differences is impossible here: {exc}"
    naive = naive_rates(treated, comparison, resampling=resampling) if resampling is not None else ()
    (tb,), (tp,) = treated.rates()
    (cb,), (cp,) = comparison.rates() if comparison.units else ((float("nan"),), (float("nan"),))
    credit = credit_of(did, spec, plan, reason)
    verdict = "not established"
    if credit.is_credited:
        verdict = "improved" if (credit.credited > 0) == spec.higher_is_better else "worsened"
    return KpiResult(kpi=kpi, label=spec.label_for(plan.unit), unit=spec.unit,
                     higher_is_better=spec.higher_is_better,
                     definition=spec.definition, trained_baseline=float(tb), trained_post=float(tp),
                     comparison_baseline=float(cb), comparison_post=float(cp), did=did, naive=tuple(naive),
                     credit=credit, verdict=verdict)


def credit_of(effect: Effect | None, spec: KpiSpec, plan: StudyPlan, reason: str) -> Credit:
    """The study's conservative rule applied to ``effect``; nothing credited (for ``reason``) without one."""
    if effect is not None and effect.baseline > 0 and effect.ci_low == effect.ci_low:
        return conservative_credit(effect.estimate, effect.baseline, interval=(effect.ci_low, effect.ci_high),
                                   min_relative_change=plan.min_relative_change,
                                   describe=lambda v: describe_change(v, spec.unit))
    reason = reason or f"the trained group has no baseline {spec.label} to compare with"
    return Credit(credited=0.0, estimate=effect.estimate if effect else 0.0, relative_change=0.0, is_credited=False,
                  reason=f"not credited: {reason}")


def window_result(con: BaseBackend, plan: StudyPlan, panel: WindowPanel, cost: Decimal,
                  resampling: Resampling | None, design: Design) -> WindowResult:
    """Every figure of one window; the per-learner table only for the primary window."""
    days = panel.window_days
    kpis = tuple(_kpi_result(k, panel, plan, resampling) for k in plan.kpis)
    head = next(k for k in kpis if k.kpi == plan.headline_kpi)
    effect, credit = head.did, head.credit
    if design.method != "did":
        effect = design.effects.get(days)
        credit = credit_of(effect, KPIS[plan.headline_kpi], plan,
                         "" if effect is not None else f"{design.label} cannot be applied to this data: "
                                                       f"{design.missing.get(days, 'it was not run')}")
    base, formula = _value_base(plan.headline_kpi, panel, plan.unit)
    credited = Decimal(str(credit.credited))
    margin = Decimal(str(plan.gross_margin))
    months = plan.windows.benefit_months(days)
    (rate_base,), (rate_post,) = panel.treated.rates()
    model = seed_model(
        baseline_conversion=Decimal(str(rate_base if rate_base == rate_base else 0)),
        post_conversion=Decimal(str(rate_post if rate_post == rate_post else 0)),
        adjusted_lift=credited, pipeline_value=base, total_cost=cost, gross_margin=margin, months_of_benefit=months,
    )
    intervals: dict[str, tuple[float, float]] = {}
    iv = None
    if effect is not None and design.method == "did" and effect.draws is not None:
        iv = value_intervals(effect.draws, float(base), float(cost), plan.gross_margin, effect.confidence)
    elif effect is not None and effect.ci_low == effect.ci_low and effect.ci_high == effect.ci_high:
        iv = value_intervals_from_lift((effect.ci_low, effect.ci_high), float(base), float(cost),
                                       plan.gross_margin, effect.confidence)
    if iv is not None:
        intervals = {"lift": iv.lift, "incremental_revenue": iv.incremental_revenue, "benefit": iv.benefit,
                     "roi_pct": iv.roi_pct}
    f = model.figures
    direct_revenue, direct_iv = _direct_revenue(panel, plan, resampling)
    pipeline = Decimal(str(round(panel.post_pipeline, 2)))
    # Each learner's share of the incremental revenue follows their pipeline: for win rate that is
    # exactly the seed's credited lift × the learner's pipeline.
    per_pipeline = credited if plan.headline_kpi == "win_rate" else (
        model.incremental_revenue / pipeline if pipeline else Decimal(0))
    learners = _learner_rows(con, panel, per_pipeline, cost, margin,
                             plan.unit) if days == plan.windows.primary_days else ()
    return WindowResult(
        window_days=days, trained_units=len(panel.treated.units), comparison_units=len(panel.comparison.units),
        headline_kpi=plan.headline_kpi, did=effect, naive=head.naive, credit=credit, kpis=kpis,
        design=design.method, design_label=design.label,
        opportunities_in_window=panel.post_opportunities, pipeline_value=pipeline,
        attributed_revenue=Decimal(str(round(panel.post_won_revenue, 2))), value_base=base, value_formula=formula,
        incremental_revenue=model.incremental_revenue, benefit=model.benefit, roi_pct=f.roi_pct,
        net_benefit=f.net_benefit, benefit_cost_ratio=f.benefit_cost_ratio, payback_months=f.payback_months,
        intervals=intervals, learners=learners,
        direct_incremental_revenue=direct_revenue, direct_interval=direct_iv,
        **_power(panel, next((k.did for k in kpis if k.kpi == "win_rate"), None), plan.unit),
    )


def _power(panel: WindowPanel, did: Effect | None, unit: str) -> dict[str, Any]:
    """The window's minimum detectable win-rate lift, and a warning when the estimate is below it.

    Deals of one unit are correlated (a strong rep wins more of them); the intra-unit correlation
    is estimated from the baseline windows of both groups, so the program's effect plays no part.
    """
    t, c = panel.treated, panel.comparison
    units = len(t.units) + len(c.units)
    deals = float(t.post_trials.sum() + c.post_trials.sum())
    base = float(t.base_successes.sum() / t.base_trials.sum()) if t.base_trials.sum() else float("nan")
    if not c.units or did is None or not deals or not 0 < base < 1:
        return {}
    ids = [*t.units, *c.units]
    frame = pl.DataFrame({
        "unit": ids, "period": [date(2000, 1, 1)] * units, "treated_at": [None] * units,
        "won": [*t.base_successes, *c.base_successes], "closed": [*t.base_trials, *c.base_trials],
    }, schema={"unit": pl.String, "period": pl.Date, "treated_at": pl.Date, "won": pl.Float64,
               "closed": pl.Float64})
    try:
        icc = estimate_icc(UnitPanel(frame=frame, outcome="win_rate", numerator="won", denominator="closed"))
    except ValueError:
        icc = 0.0
    share = len(t.units) / units
    try:
        mde = minimum_detectable_lift(units=units, deals_per_unit=deals / units, base_rate=base, treated_share=share,
                                      icc=icc)
    except ValueError as exc:  # too small to detect any lift at all: that is the warning
        return {"minimum_detectable_lift": None, "power_warning": f"the study is under-powered: {exc}"}
    warning = power_warning(did.estimate, units=units, deals_per_unit=deals / units, base_rate=base,
                            treated_share=share, icc=icc, unit=unit)
    return {"minimum_detectable_lift": mde, "power_warning": warning}


def _direct_revenue(panel: WindowPanel, plan: StudyPlan,
                    resampling: Resampling | None) -> tuple[Decimal | None, tuple[float, float] | None]:
    """Incremental revenue by difference-in-differences of won revenue per rep-month."""
    if plan.isolation.comparison == "none" or resampling is None:
        return None, None
    try:
        effect = did_rate(*panel.groups["revenue_per_rep"], resampling=resampling)
    except ValueError:
        return None, None
    scale = panel.post_exposure_months
    return (Decimal(str(round(effect.estimate * scale, 2))),
            (effect.ci_low * scale, effect.ci_high * scale))


def _learner_rows(con: BaseBackend, panel: WindowPanel, credited: Decimal, cost: Decimal,
                  margin: Decimal, unit: str) -> tuple[LearnerRow, ...]:
    """The seed's per-learner spreadsheet for one window; ``credited`` is revenue per unit of pipeline."""
    t = panel.treated
    n = len(t.units)
    if not n:
        return ()
    names = unit_names(con, unit, t.units)
    anchors = dict(zip(panel.anchors["unit_id"].to_pylist(), panel.anchors["anchor"].to_pylist(), strict=True))
    share = (cost / n).quantize(Decimal("0.01"))
    rows = []
    for i, member in enumerate(t.units):
        opps, pipeline, won = panel.treated_post.get(member, (0, 0.0, 0.0))
        base = t.base_successes[i] / t.base_trials[i] if t.base_trials[i] else None
        post = t.post_successes[i] / t.post_trials[i] if t.post_trials[i] else None
        pipe = Decimal(str(round(pipeline, 2)))
        incremental = (credited * pipe).quantize(Decimal("0.01"))
        email, name = names.get(member, (None, None))
        rows.append(LearnerRow(
            unit_id=member, learner=email or member, name=name, learners=panel.learners.get(member, 1),
            completion_date=anchors[member].isoformat(),
            opportunities_in_window=opps, pipeline_value=pipe, won_revenue=Decimal(str(round(won, 2))),
            baseline_conversion=None if base is None else float(base),
            post_conversion=None if post is None else float(post),
            lift=None if base is None or post is None else float(post - base),
            incremental_revenue=incremental, cost=share,
            roi_pct=((incremental * margin - share) / share * 100).quantize(Decimal("0.1")) if share else None,
        ))
    return tuple(rows)


