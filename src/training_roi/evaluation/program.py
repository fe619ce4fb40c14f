"""The main job: a training study and a warehouse in, the answer with its uncertainty out.

One pass through the flow, for the primary window and every sensitivity window: measure (the
cohort — who was trained and when, computed once — and every KPI in each unit's own windows),
isolate (difference-in-differences with a cluster bootstrap, the naive figures as labelled
references, and with ``isolation.method`` other than ``did`` every other estimator side by side),
attribute (which touches the won revenue flows through, held to the lift), value (conservative
credit, pipeline value, incremental revenue, fully loaded cost, ROI with intervals, Phillips'
levels). The :class:`~training_roi.evaluation.results.Evaluation` it returns holds every figure,
the assumptions that produced them and the data they came from; presenters only format it. Same
data + same study = same evaluation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import ibis
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from ibis.backends import BaseBackend

from training_roi._format import describe_change, money, plural
from training_roi.attribute import attribute_study
from training_roi.evaluation.churn import ChurnRisk, churn_study
from training_roi.evaluation.costs import study_costs
from training_roi.evaluation.forecast import program_forecast
from training_roi.evaluation.lesson_map import lesson_map_study
from training_roi.evaluation.levels import application, phillips
from training_roi.evaluation.next_lesson import NextLessons, next_lesson_study
from training_roi.evaluation.results import Evaluation, WindowResult
from training_roi.evaluation.stages import kept
from training_roi.evaluation.subgroups import WhoBenefits, who_benefits
from training_roi.evaluation.windows import Design, design_of, window_result
from training_roi.isolate import (
    Comparison,
    Effect,
    LessonMap,
    NotApplicable,
    Resampling,
    compare_methods,
    effect_from_draws,
    estimate_dose_response,
    honest_sensitivity,
)
from training_roi.measure import (
    KPIS,
    Cohort,
    LessonSet,
    WindowPanel,
    cohort,
    data_end,
    lesson_dates,
    mark_provisional,
    monthly_panel,
    population_units,
    survey_estimates,
    unit_panel,
    window_opportunities,
    window_panels,
)
from training_roi.study import StudyError, StudyPlan
from training_roi.value import (
    CostBreakdown,
    Grid,
    Ranges,
    RevenueEstimate,
    Scenario,
    Tornado,
    WindowLever,
    effect_by_deal_size,
    roi_pct_from_lift,
    sensitivity,
    tornado,
    window_by_margin,
)
from training_roi.value.payback import Payback, payback_odds
from training_roi.warehouse.connection import require_lms_data, require_tables
from training_roi.warehouse.quality import quality_report

__all__ = ["Progress", "evaluate_program", "population_scope"]

Progress = Callable[[str, float], None]
"""Told what is being done and how far along the evaluation is (0 to 1)."""


def evaluate_program(con: BaseBackend, plan: StudyPlan, *, progress: Progress | None = None,
                     attribution_model: str | None = None) -> Evaluation:
    """Answer the training study ``plan`` from the warehouse ``con``.

    ``progress`` is told what is being done, and how far along it is (0 to 1).
    ``attribution_model`` overrides the model of the attribution table (every model is compared).

    Raises
    ------
    StudyError
        The study cannot be answered from this warehouse (nobody completed its activities, no
        cost, a group without deals); the message says which setting or data to change.
    WarehouseError
        No LMS data was loaded (the message says which files to load, and how).
    """
    tell = progress or _quiet
    require_tables(con, "crm_opportunity", "learning_record", "learner_identity", "cost_line")
    require_lms_data(con)
    tell("choosing the population and loading costs", 0.0)
    scope = population_scope(con, plan)
    costs = study_costs(con, plan)
    tell("finding who was trained and when", 0.05)
    trained = _cohort(con, plan, scope)
    tell("measuring every KPI in each window", 0.1)
    days = list(plan.windows.days)
    panels = _panels(con, plan, trained, scope)
    first = panels[days[0]]
    iso = plan.isolation
    # One set of bootstrap draws for every KPI and window: the groups are the same units throughout.
    resampling = Resampling.draw(
        len(first.treated.units), len(first.comparison.units), replicates=iso.replicates,
        confidence=iso.confidence, seed=iso.seed,
    ) if first.comparison.units else None
    if resampling is not None:
        resampling.prepare([panels[d].groups[k][0] for d in days for k in KPIS],
                           [panels[d].groups[k][1] for d in days for k in KPIS])
    methods: Comparison | None = None
    by_window: tuple[tuple[int, Comparison], ...] = ()
    if iso.methods:
        tell(f"estimating the effect by {plural(len(iso.methods), 'method')}", 0.25)
        methods, by_window = _compare(con, plan, trained, first)
    if iso.method == "dose":
        tell("estimating the effect per lesson", 0.25)
        design = _dose(con, plan, trained, first)
    else:
        design = design_of(plan, methods, by_window)
    tell("valuing each window", 0.6)
    results = tuple(window_result(con, plan, panels[d], costs.total, resampling, design) for d in days)
    primary = next(r for r in results if r.window_days == plan.windows.primary_days)
    if methods is not None:
        methods = _roi_sensitivity(plan, methods, primary, costs.total)
    tables, quality_warnings = kept(_quality, con)
    warnings = list(quality_warnings)
    chosen = primary.revenue.get(primary.revenue_definition)
    if primary.incremental_revenue <= 0:
        why = chosen.reason.removeprefix("not credited: ") if chosen is not None else primary.credit.why
        warnings.insert(0, f"no incremental revenue is credited: {why}")
    # Every deal's sums per unit and month, read once: the trend pools them by group, and the
    # forecast's panel is made of them.
    unit_months = kept(_unit_months, con, plan.unit, tuple(plan.population.opportunity_types))
    trend = _trend(con, unit_months, set(first.treated.units), set(first.comparison.units))
    if primary.power_warning:
        warnings.insert(1 if primary.incremental_revenue <= 0 else 0, primary.power_warning)
    if not costs.time_costed:  # among the first warnings, which every summary shows
        lead = (primary.incremental_revenue <= 0) + bool(primary.power_warning)
        warnings.insert(lead, costs.notes[0])
    if design.method != "did" and primary.did is not None:
        warnings.extend(f"{design.label}: {w}" for w in primary.did.warnings)
    if primary.revenue_definition != plan.revenue:
        warnings.append(f"value.revenue is {plan.revenue}, but {design.label} values its effect by the seed formula "
                        "(lift × pipeline): the credited revenue follows the design; the study's definition is shown "
                        "beside it, estimated by difference-in-differences")
    tell("measuring behaviour before and after training", 0.7)
    behaviour, applied = application(con, plan, panels[plan.windows.primary_days])
    attribution = None
    if plan.attribution.enabled:
        tell("attributing won deals to their touches", 0.8)
        try:
            attribution = kept(
                attribute_study, con, plan.attribution, program=plan.program, activities=plan.cohort.activities,
                unit=plan.unit,
                window_days=plan.windows.primary_days, since=plan.cohort.start or trained.first_day,
                incremental_revenue=float(primary.incremental_revenue), scope=scope, model=attribution_model,
                deal_types=plan.population.opportunity_types)
        except ValueError as exc:
            raise StudyError(f"study {plan.name}: attribution: {exc}") from exc
        warnings.extend(attribution.notes)
    tell("forecasting the months after training", 0.9)
    ahead, basis = program_forecast(con, plan, trained, panels[plan.windows.primary_days], costs, unit_months)
    subgroups: WhoBenefits | str | None = None
    if plan.study.insight.subgroups:
        tell("estimating the effect by subgroup", 0.92)
        subgroups = who_benefits(con, plan, panels[plan.windows.primary_days], costs, unit_months)
    lessons: LessonMap | str | None = None
    if plan.study.insight.lesson_map:
        tell("mapping the lessons", 0.93)
        lessons = lesson_map_study(con, plan, panels[plan.windows.primary_days])
    next_lessons: NextLessons | str | None = None
    if plan.study.insight.next_lesson is not None:
        tell("finding each rep's gaps and next lessons", 0.94)
        next_lessons = next_lesson_study(con, plan, panels[plan.windows.primary_days])
    churn: ChurnRisk | str | None = None
    if plan.study.insight.churn:
        tell("forecasting which accounts churn", 0.94)
        churn = churn_study(con, plan, trained, scope)
    tell("Phillips' five levels", 0.95)
    return Evaluation(plan.study, primary, results, costs, tables, tuple(warnings), trend,
                      _sensitivity(plan, primary, results, costs.total), methods, by_window,
                      kept(_opportunities, con, panels[plan.windows.primary_days], ramp_days=plan.windows.ramp_days,
                           unit=plan.unit, deal_types=plan.population.opportunity_types),
                      design.reason, attribution,
                      phillips(con, plan, primary, costs, behaviour), applied,
                      tornado=_tornado(plan, primary, results, costs), payback=_payback(plan, primary, costs),
                      grids=_grids(plan, primary, results, costs.total), forecast=ahead, forecast_basis=basis,
                      subgroups=subgroups if isinstance(subgroups, WhoBenefits) else None,
                      subgroups_basis=subgroups if isinstance(subgroups, str) else "",
                      lesson_map=lessons if isinstance(lessons, LessonMap) else None,
                      lesson_map_basis=lessons if isinstance(lessons, str) else "",
                      next_lesson=next_lessons if isinstance(next_lessons, NextLessons) else None,
                      next_lesson_basis=next_lessons if isinstance(next_lessons, str) else "",
                      churn=churn if isinstance(churn, ChurnRisk) else None,
                      churn_basis=churn if isinstance(churn, str) else "")


def _roi_sensitivity(plan: StudyPlan, methods: Comparison, primary: WindowResult, cost: Decimal) -> Comparison:
    """The comparison with how far parallel trends may fail before ROI can fall to 0, in its evidence.

    The seed's ROI is increasing in the win-rate lift (:func:`~training_roi.value.roi_pct_from_lift`),
    so the event study's sensitivity to trend violations (relative magnitudes) carries to the
    money: the smallest M̄ at which the interval of the lift reaches the break-even lift.
    """
    event = methods.result("event_study")
    effect = event.effect if event is not None else None
    sensitivity = effect.diagnostics.get("sensitivity") if effect is not None else None
    if (effect is None or plan.headline_kpi != "win_rate" or not isinstance(sensitivity, dict) or not cost
            or primary.value_base <= 0):
        return methods
    base, total = float(primary.value_base), float(cost)

    def roi(lift: float) -> float:
        return float(roi_pct_from_lift(lift, base, total, plan.gross_margin))

    result = honest_sensitivity(sensitivity["beta"], sensitivity["cov"], sensitivity["n_pre"],
                                restriction=sensitivity["restriction"], roi=roi, confidence=effect.confidence)
    evidence = {**methods.evidence, "roi_trend_sensitivity": result.verdict,
                "roi_trend_breakdown": result.roi_breakdown}
    return replace(methods, evidence=evidence)


def _quiet(description: str, fraction: float) -> None:
    """No progress to show."""


def population_scope(con: BaseBackend, plan: StudyPlan) -> list[str] | None:
    """The units in the study's population (CRM users or accounts), or None for every one with deals."""
    p = plan.population
    return population_units(con, unit=p.unit, roles=p.roles, departments=p.departments, titles=p.titles,
                            include=p.include, exclude=p.exclude, accounts=dict(p.accounts))


def _cohort(con: BaseBackend, plan: StudyPlan, scope: list[str] | None) -> Cohort:
    """Who was trained and when: once per evaluation, for every stage."""
    try:
        return cohort(con, plan.cohort, scope=scope)
    except ValueError as exc:
        raise StudyError(f"study {plan.name}: {exc}") from exc


def _panels(con: BaseBackend, plan: StudyPlan, trained: Cohort, scope: list[str] | None) -> dict[int, WindowPanel]:
    """The trained and comparison groups' figures in every window, from the cohort's anchors."""
    w = plan.windows
    try:
        return kept(
            window_panels, con, trained, baseline_days=w.baseline_days, windows=w.days, ramp_days=w.ramp_days,
            seed=plan.isolation.seed, scope=scope, comparison_units=plan.isolation.holdout,
            baseline_at_start=w.baseline_at_start, deal_types=plan.population.opportunity_types,
        )
    except ValueError as exc:
        raise StudyError(f"study {plan.name}: {exc}") from exc


DOSE_LABEL = "dose-response: the effect per lesson × the lessons each rep took"


def _dose(con: BaseBackend, plan: StudyPlan, trained: Cohort, panel: WindowPanel) -> Design:
    """A micro-lesson program's effect from the dose each unit took: per lesson, and in total, in every window.

    The per-lesson slope (:func:`training_roi.isolate.estimate_dose_response`, on the lessons done
    before each deal) times the lessons the trained units actually took before their deals
    (weighted by their deals) is the program's total effect on the trained units' outcome; its
    interval scales the slope's. It is an association unless lessons were assigned.
    """
    iso = plan.isolation
    units = sorted(set(panel.treated.units) | set(panel.comparison.units))
    try:
        monthly = unit_panel(con, trained, kpi=plan.headline_kpi, scope=units,
                             deal_types=plan.population.opportunity_types)
    except ValueError as exc:
        raise StudyError(f"study {plan.name}: isolation.method dose: {exc}") from exc
    doses = lesson_dates(con, plan.cohort.lessons or LessonSet(plan.cohort.activities))
    effects: dict[int, Effect | None] = {}
    missing: dict[int, str] = {}
    for days in plan.windows.days:
        try:
            per = estimate_dose_response(monthly, doses=doses, pre_months=plan.windows.baseline_months,
                                         post_months=plan.windows.post_months(days), confidence=iso.confidence,
                                         replicates=iso.replicates, seed=iso.seed)
        except (NotApplicable, ValueError) as exc:
            effects[days], missing[days] = None, str(exc)
            continue
        dose = per.details["mean_dose_weighted"]
        draws = per.draws * dose if per.draws is not None else np.array([per.estimate * dose])
        effects[days] = effect_from_draws(
            DOSE_LABEL, per.estimate * dose, draws, baseline=per.baseline, confidence=per.confidence,
            assumptions=(f"the program's total effect = the effect per lesson × the {dose:.1f} lessons the trained "
                         "units took before their deals, on average", *per.assumptions),
            details={**per.details, "per_lesson": per.estimate, "per_lesson_ci_low": per.ci_low,
                     "per_lesson_ci_high": per.ci_high, "per_lesson_p_value": per.p_value},
            diagnostics=per.diagnostics, warnings=per.warnings)
    reason = ("named by the study (isolation.method: dose): a micro-lesson program's effect grows with every "
              "lesson, so it is estimated per lesson and multiplied by the lessons each rep took")
    return Design("dose", DOSE_LABEL, reason, effects, missing)


def _compare(con: BaseBackend, plan: StudyPlan, trained: Cohort,
             panel: WindowPanel) -> tuple[Comparison, tuple[tuple[int, Comparison], ...]]:
    """Every estimator of the family (or the one the study names) on the headline KPI's monthly panel.

    The primary window's comparison carries the challenges; every other attribution window gets
    each method's estimate too (unchallenged), so a reader sees whether the designs agree across
    windows. A kept measurement (:mod:`training_roi.evaluation.stages`): a changed cost or margin
    compares the same estimates again.
    """
    iso, w = plan.isolation, plan.windows
    try:
        return kept(compared, con, trained, panel, kpi=plan.headline_kpi, deal_types=plan.population.opportunity_types,
                    covariates=tuple(iso.covariates), program=plan.program, randomised=iso.randomised,
                    confidence=iso.confidence, replicates=iso.replicates, seed=iso.seed, methods=iso.methods,
                    post_months={d: w.post_months(d) for d in (w.primary_days, *w.others)},
                    primary_days=w.primary_days)
    except ValueError as exc:
        raise StudyError(f"study {plan.name}: isolation.method {iso.method}: {exc}") from exc


def compared(con: BaseBackend, trained: Cohort, panel: WindowPanel, *, kpi: str, deal_types: tuple[str, ...],
             covariates: tuple[str, ...], program: str, randomised: bool, confidence: float, replicates: int,
             seed: int, methods: tuple[str, ...], post_months: dict[int, int],
             primary_days: int) -> tuple[Comparison, tuple[tuple[int, Comparison], ...]]:
    """The estimators ``methods`` on the monthly panel of ``kpi``: the primary window's, challenged, and the others'.

    ``post_months``: each window's months after training, the primary window's first.

    Raises
    ------
    ValueError
        The monthly panel cannot be made (no deals in the units' months).
    """
    units = set(panel.treated.units) | set(panel.comparison.units)
    monthly = unit_panel(con, trained, kpi=kpi, scope=sorted(units), deal_types=deal_types,
                         covariates=covariates)
    surveys = survey_estimates(con, program)

    def run(days: int, challenged: bool) -> Comparison:
        # The other windows' intervals come from fewer replicates (999 at most): they are shown for
        # agreement across windows; the primary window's figures keep the study's count.
        return compare_methods(monthly, post_months=post_months[days], randomised=randomised,
                               confidence=confidence, replicates=replicates if challenged else min(replicates, 999),
                               seed=seed, surveys=surveys, refutations=challenged, methods=methods)

    others = tuple((d, run(d, False)) for d in post_months if d != primary_days)
    return run(primary_days, True), others


def _opportunities(con: BaseBackend, panel: WindowPanel, *, ramp_days: int, unit: str,
                   deal_types: tuple[str, ...]) -> pa.Table:
    """The trained units' deals in their primary windows, in a stable order."""
    anchors = panel.anchors.filter(pc.field("trained")).select(["unit_id", "anchor"])
    rows = window_opportunities(con, ibis.memtable(anchors), window_days=panel.window_days,
                                ramp_days=ramp_days, unit=unit, deal_types=deal_types).to_pyarrow()
    return rows.sort_by([("unit_id", "ascending"), ("created", "ascending"), ("opportunity_id", "ascending")])


def _quality(con: BaseBackend) -> tuple[dict[str, int], tuple[str, ...]]:
    """The warehouse's row counts and data-quality warnings (neither depends on when they are read)."""
    report = quality_report(con)
    return dict(report.tables), tuple(report.warnings)


def _unit_months(con: BaseBackend, unit: str, deal_types: tuple[str, ...]) -> pa.Table:
    """Every deal's sums per unit and month (:func:`~training_roi.measure.monthly_panel`), read once."""
    return monthly_panel(con, unit=unit, deal_types=deal_types).to_pyarrow()


def _sensitivity(plan: StudyPlan, primary: WindowResult, results: tuple[WindowResult, ...],
                 cost: Decimal) -> tuple[Scenario, ...]:
    """The seed's sensitivity table around the headline KPI's estimated effect (the lifts the study names, if any)."""
    if primary.did is None:
        return ()
    levers = [WindowLever(w.window_days, w.did.estimate, w.value_base) for w in results if w.did is not None]
    rows = sensitivity(effect=primary.did.estimate, interval=(primary.did.ci_low, primary.did.ci_high),
                       value_base=primary.value_base, cost=cost, margin=Decimal(str(plan.gross_margin)),
                       windows=levers, primary_days=primary.window_days,
                       describe=lambda v: describe_change(v, KPIS[plan.headline_kpi].unit), lift=plan.lift_scenarios)
    return rows


def _central(window: WindowResult) -> RevenueEstimate | None:
    """A window's credited definition of incremental revenue, when the design gives a central estimate."""
    chosen = window.revenue.get(window.revenue_definition)
    return chosen if chosen is not None and chosen.estimate is not None else None


def _central_by_window(results: tuple[WindowResult, ...]) -> list[tuple[int, Decimal]]:
    """Each window's central incremental revenue, by its days (windows without one left out)."""
    return [(w.window_days, r.estimate) for w in results if (r := _central(w)) is not None and r.estimate is not None]


def _cost_lines(costs: CostBreakdown) -> dict[str, Decimal]:
    """The amounts that make the total, by category, with the allocated shared costs (not a category) beside them."""
    lines = dict(costs.by_category)
    if costs.shared_allocated:
        lines["shared costs"] = costs.shared_allocated
    return lines


def _tornado(plan: StudyPlan, primary: WindowResult, results: tuple[WindowResult, ...],
             costs: CostBreakdown) -> Tornado | None:
    """ROI at the central estimate of the credited definition, each assumption moved alone (None without one)."""
    chosen = _central(primary)
    if chosen is None or chosen.estimate is None:
        return None
    derived = bool(costs.participant_time)  # priced from learning records: moved by the hourly rate
    lines = {k.replace("_", " "): v for k, v in _cost_lines(costs).items()
             if not (derived and k == "participant_time")}
    windows = _central_by_window(results)
    ranges = Ranges()
    base, bars = tornado(revenue=chosen.estimate, interval=chosen.interval, margin=Decimal(str(plan.gross_margin)),
                         costs=lines, participant_time=costs.participant_time_amount if derived else Decimal(0),
                         windows=windows if len(windows) > 1 else (),
                         ramp=(plan.windows.ramp_days, plan.windows.primary_days), ranges=ranges, money=money)
    return Tornado(base, bars, ranges)


def _grids(plan: StudyPlan, primary: WindowResult, results: tuple[WindowResult, ...],
           cost: Decimal) -> tuple[Grid, ...]:
    """ROI over effect × deal size and window × gross margin, at the credited definition's central estimates."""
    chosen = _central(primary)
    if chosen is None or chosen.estimate is None or cost <= 0:
        return ()
    margin = Decimal(str(plan.gross_margin))
    effects = [(f"central estimate ({money(chosen.estimate)})", chosen.estimate)]
    if chosen.interval is not None:
        lo, hi = (Decimal(repr(v)).quantize(Decimal("0.01"), ROUND_HALF_UP) for v in chosen.interval)
        effects = [(f"interval's low end ({money(lo)})", lo), *effects, (f"interval's high end ({money(hi)})", hi)]
    grids = [effect_by_deal_size(revenue_at=effects, cost=cost, margin=margin)]
    windows = _central_by_window(results)
    margins = sorted({min(max(margin + step, Decimal("0.05")), Decimal(1))
                      for step in (Decimal("-0.2"), Decimal("-0.1"), Decimal(0), Decimal("0.1"), Decimal("0.2"))})
    if windows:
        grids.append(window_by_margin(windows=windows, cost=cost, margins=margins))
    return tuple(grids)


def _payback(plan: StudyPlan, primary: WindowResult, costs: CostBreakdown) -> Payback | None:
    """P(ROI > 0) and P(ROI > hurdle) from the credited definition's replicates and the declared cost ranges.

    Seeded by the study's hash and its isolation seed: the same study on the same data, the same figures.
    """
    chosen = _central(primary)
    if chosen is None or chosen.estimate is None:
        return None
    study = plan.study
    ranges = {k: (Decimal(str(lo)), Decimal(str(hi))) for k, (lo, hi) in study.costs.uncertainty.items()}
    hurdle = study.value.hurdle_rate
    try:
        return payback_odds(
            revenue_draws=chosen.draws, estimate=float(chosen.estimate), interval=chosen.interval,
            confidence=chosen.confidence, margin=plan.gross_margin, costs=_cost_lines(costs), ranges=ranges,
            hurdle_pct=None if hurdle is None else hurdle * 100,
            seed=int(study.hash[:8], 16) ^ study.isolation.seed)
    except ValueError as exc:
        raise StudyError(f"study {plan.name}: {exc}") from exc


_TREND_SUMS = ("opportunities", "closed", "won", "won_amount", "pipeline_created", "cycle_days_sum")
"""The additive columns of :func:`monthly_panel` the trend pools (money as exact decimals)."""


def _trend(con: BaseBackend, unit_months: pa.Table, trained: set[str],
           comparison: set[str]) -> tuple[dict[str, Any], ...]:
    """Every KPI per month of deal creation, pooled over the trained and the comparison units.

    ``unit_months``: every deal's sums per unit and month of creation (:func:`monthly_panel`).
    Per-unit-month KPIs divide by the group's size. Money stays exact decimals through the
    pooling, so the figures do not depend on the order rows arrive in. A month is
    ``provisional`` when it was not over when the data ends, or more than
    :data:`OPEN_SHARE_LIMIT` of the group's deals created in it are still open
    (:mod:`training_roi.measure.periods`).
    """
    groups = pl.DataFrame({"unit_id": [*sorted(trained), *sorted(comparison)],
                           "group": ["trained"] * len(trained) + ["comparison"] * len(comparison)},
                          schema={"unit_id": pl.String, "group": pl.String})
    sums = pl.from_arrow(unit_months.select(["unit_id", "month", *_TREND_SUMS]))
    assert isinstance(sums, pl.DataFrame)
    rows = sums.join(groups, on="unit_id").group_by("group", "month").agg(pl.col(*_TREND_SUMS).sum()).to_dicts()
    size = {"trained": len(trained), "comparison": len(comparison)}
    rows = sorted(rows, key=lambda r: (r["month"], r["group"]))
    months = pl.DataFrame({"grain_id": [r["group"] for r in rows], "period": [r["month"] for r in rows]},
                          schema={"grain_id": pl.String, "period": pl.Date})
    still_open = months.with_columns(share=pl.Series([
        (int(r["opportunities"]) - int(r["closed"])) / int(r["opportunities"]) if int(r["opportunities"]) else 0.0
        for r in rows], dtype=pl.Float64))
    marked = mark_provisional(months, as_of=data_end(con, ["crm_opportunity"]), open_share=still_open)
    out = []
    for r, provisional in zip(rows, marked["provisional"].to_list(), strict=True):
        closed, won, n = int(r["closed"]), int(r["won"]), size[r["group"]]
        out.append({
            "month": r["month"].isoformat(), "group": r["group"], "units": n,
            "opportunities": int(r["opportunities"]), "closed": closed, "won": won,
            "win_rate": won / closed if closed else None,
            "avg_won_deal_size": float(r["won_amount"]) / won if won else None,
            "sales_cycle_days": float(r["cycle_days_sum"]) / closed if closed else None,
            "pipeline_created": float(r["pipeline_created"]) / n if n else None,
            "revenue_per_rep": float(r["won_amount"]) / n if n else None,
            "provisional": provisional,
        })
    return tuple(out)
