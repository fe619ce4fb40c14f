"""One attribution window's figures: every KPI's difference-in-differences, the credit, the money, the power.

The primary window and each sensitivity window are answered the same way (:func:`window_result`):
each KPI of the study by the windowed difference-in-differences with its naive references and
verdict, the credited effect of the design the study chose (:func:`design_of`), the seed model's
incremental revenue, benefit and ROI with intervals, the direct revenue estimate beside it, the
smallest lift the window could detect, and — for the primary window — the seed's per-learner rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
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
    did_ratio,
    estimate_icc,
    minimum_detectable_lift,
    naive_rates,
    power_warning,
)
from training_roi.measure import KPIS, KpiSpec, WindowPanel, unit_names
from training_roi.study import StudyError, StudyPlan
from training_roi.value import (
    DEFINITIONS,
    Credit,
    RevenueEstimate,
    ValueIntervals,
    central_roi,
    conservative_credit,
    credit_revenue,
    roi,
    value_intervals,
    value_intervals_from_lift,
)

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
    margin = Decimal(str(plan.gross_margin))
    months = plan.windows.benefit_months(days)
    seed_iv = None
    # The replicates whose rate is undefined (a resample without closed deals in a window) are left out,
    # as the effect's own interval leaves them out, so the money's interval is the lift's.
    draws = effect.draws[np.isfinite(effect.draws)] if effect is not None and effect.draws is not None else None
    if effect is not None and design.method == "did" and draws is not None and draws.size:
        seed_iv = value_intervals(draws, float(base), float(cost), plan.gross_margin, effect.confidence)
    elif effect is not None and effect.ci_low == effect.ci_low and effect.ci_high == effect.ci_high:
        seed_iv = value_intervals_from_lift((effect.ci_low, effect.ci_high), float(base), float(cost),
                                            plan.gross_margin, effect.confidence)
    revenue = {**_revenue(panel, plan, resampling),
               "seed": _seed_revenue(plan, panel, effect, base, seed_iv, formula, credit.reason)}
    definition = plan.revenue if design.method == "did" else "seed"
    chosen = revenue[definition]
    credited = chosen.credited
    benefit = (credited * margin).quantize(_CENT, ROUND_HALF_UP)  # as every other money figure: ties away from 0
    f = roi(benefit, cost, months_of_benefit=months)
    central = central_roi(chosen, cost=cost, margin=margin) if chosen.estimate is not None else None
    # The seed's break-even lift: the effect whose revenue (effect × value base) pays the cost.
    break_even = float(cost / (margin * base)) if definition == "seed" and base > 0 else None
    intervals: dict[str, tuple[float, float]] = {}
    if chosen.interval is not None:
        lo, hi = chosen.interval
        m, c = plan.gross_margin, float(cost)
        intervals = {"incremental_revenue": (lo, hi), "benefit": (lo * m, hi * m),
                     "roi_pct": ((lo * m - c) / c * 100, (hi * m - c) / c * 100)}
    if seed_iv is not None:
        intervals["lift"] = seed_iv.lift
    pipeline = Decimal(str(round(panel.post_pipeline, 2)))
    # Each learner's share of the credited incremental revenue follows their pipeline.
    per_pipeline = credited / pipeline if pipeline else Decimal(0)
    learners = _learner_rows(con, panel, per_pipeline, cost, margin,
                             plan.unit) if days == plan.windows.primary_days else ()
    power_effect = effect if plan.headline_kpi == "win_rate" else next(
        (k.did for k in kpis if k.kpi == "win_rate"), None)
    return WindowResult(
        window_days=days, trained_units=len(panel.treated.units), comparison_units=len(panel.comparison.units),
        headline_kpi=plan.headline_kpi, did=effect, naive=head.naive, credit=credit, kpis=kpis,
        design=design.method, design_label=design.label,
        opportunities_in_window=panel.post_opportunities, pipeline_value=pipeline,
        attributed_revenue=Decimal(str(round(panel.post_won_revenue, 2))), value_base=base,
        value_formula=chosen.meaning,
        incremental_revenue=credited, benefit=benefit, roi_pct=f.roi_pct.quantize(_CENT, ROUND_HALF_UP),
        net_benefit=f.net_benefit, benefit_cost_ratio=f.benefit_cost_ratio.quantize(Decimal("0.0001")),
        payback_months=None if f.payback_months is None else f.payback_months.quantize(_CENT, ROUND_HALF_UP),
        intervals=intervals, learners=learners, revenue=revenue, revenue_definition=definition, central=central,
        break_even_effect=break_even,
        tenure_note=panel.tenure_note,
        **_power(panel, power_effect, plan, design),
    )


_CENT = Decimal("0.01")


def _revenue(panel: WindowPanel, plan: StudyPlan, resampling: Resampling | None) -> dict[str, RevenueEstimate]:
    """Booked and eventual incremental revenue, and their credit.

    Each is the proportional difference-in-differences of revenue per unit-month (the trained
    units' counterfactual grows by the comparison group's percentage change) × the trained units'
    months in the window: revenue moves with the market by percentages, and the units that sell
    more — often those who chose training — would otherwise be credited with their larger absolute
    growth (a bias of about a tenth of the effect in simulated self-selected orgs).
    """
    out: dict[str, RevenueEstimate] = {}
    for name, (treated, comparison) in panel.revenue.items():
        label, meaning = DEFINITIONS[name]
        meaning = meaning.format(unit=plan.unit)
        observed = Decimal(str(round(panel.post_revenue.get(name, 0.0), 2)))
        months = float(treated.post_trials.sum())
        why = ("the study names no comparison group" if plan.isolation.comparison == "none"
               else "there is no comparison group to difference with" if resampling is None else "")
        effect = None
        if not why:
            try:
                effect = did_ratio(treated, comparison, resampling=resampling)
            except ValueError as exc:
                why = f"difference-in-differences is impossible here: {exc}"
        if effect is None or effect.draws is None:
            out[name] = RevenueEstimate(name, label, meaning, None, None, observed, Decimal("0.00"),
                                        f"not credited: {why}")
            continue
        draws = effect.draws * months
        central = effect.estimate * months
        credited, reason = credit_revenue(central, observed=float(observed), draws=draws,
                                          confidence=plan.isolation.confidence,
                                          min_relative_change=plan.min_relative_change, describe=label)
        out[name] = RevenueEstimate(name, label, meaning, Decimal(str(round(central, 2))),
                                    (effect.ci_low * months, effect.ci_high * months), observed, credited, reason,
                                    plan.isolation.confidence, draws)
    return out


def _seed_revenue(plan: StudyPlan, panel: WindowPanel, effect: Effect | None, base: Decimal,
                  iv: ValueIntervals | None, formula: str, why: str) -> RevenueEstimate:
    """The seed formula's incremental revenue: the headline KPI's effect × its value base, credited by the same rule.

    Its central estimate uses the effect as estimated; its credit, the one-sided lower bound of the
    effect × the value base (and nothing under the threshold), as for every other definition.
    """
    label, _ = DEFINITIONS["seed"]
    observed = Decimal(str(round(panel.post_won_revenue, 2)))
    if effect is None or effect.estimate != effect.estimate:
        return RevenueEstimate("seed", label, formula, None, None, observed, Decimal("0.00"),
                               why if why.startswith("not credited") else f"not credited: {why}",
                               plan.isolation.confidence)
    scale = float(base)
    central = effect.estimate * scale
    draws = effect.draws * scale if effect.draws is not None else None
    interval = iv.incremental_revenue if iv is not None else None
    credited, reason = credit_revenue(central, observed=float(observed), draws=draws, interval=interval,
                                      confidence=plan.isolation.confidence,
                                      min_relative_change=plan.min_relative_change,
                                      describe="the seed formula's revenue")
    return RevenueEstimate("seed", label, formula, Decimal(str(round(central, 2))), interval, observed, credited,
                           reason, plan.isolation.confidence, draws)


def _power(panel: WindowPanel, did: Effect | None, plan: StudyPlan, design: Design) -> dict[str, Any]:
    """The window's minimum detectable win-rate lift, and a warning when the estimate is below it.

    Deals of one unit are correlated (a strong rep wins more of them); the intra-unit correlation
    is estimated from the baseline windows of both groups, so the program's effect plays no part.
    """
    t, c = panel.treated, panel.comparison
    unit = plan.unit
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
    if warning is not None:
        warning = f"{design.label}: {warning}"
    target = max(abs(did.estimate), plan.min_relative_change * base)
    factor = (mde / target) ** 2 if target > 0 else float("inf")
    settle = None
    if factor > 1 and factor != float("inf"):
        more_units = math.ceil(units * (factor - 1))
        more_months = math.ceil(plan.windows.calendar_months(panel.window_days) * (factor - 1))
        settle = (f"a lift of {describe_change(target, 'rate')} would be established with about {factor:,.1f}× the "
                  f"closed deals: about {more_units:,} more {unit}s at today's deals per {unit} (a larger holdout), "
                  f"or about {more_months:,} more months of deals after training")
    return {"minimum_detectable_lift": mde, "power_warning": warning, "settle": settle}


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


