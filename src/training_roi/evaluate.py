"""The main job: a study and a warehouse in, the seed model's answer with its uncertainty out.

One pass through the flow — measure (KPIs in each learner's own windows), isolate (difference-
in-differences with a cluster bootstrap, the naive figures as labelled references), value
(conservative credit, pipeline value, incremental revenue, fully loaded cost, ROI with intervals)
— for the primary window and every sensitivity window. The :class:`Evaluation` it returns holds
every figure, the assumptions that produced them and the data they came from; presenters only
format it. Same data + same study = same evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import ibis
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from ibis.backends import BaseBackend

from training_roi.attribute.result import attribute_study
from training_roi.evaluation import RESULT_SCHEMA, WINDOWED_LABEL, Evaluation, KpiResult, LearnerRow, WindowResult
from training_roi.isolate import (
    METHODS,
    Comparison,
    Effect,
    Resampling,
    UnitPanel,
    WindowPanel,
    compare_methods,
    did_rate,
    estimate_icc,
    minimum_detectable_lift,
    naive_rates,
    power_warning,
    survey_estimates,
    window_panels,
)
from training_roi.measure import (
    CATALOGUE,
    DAYS_PER_MONTH,
    KPIS,
    KpiSpec,
    compute,
    describe_change,
    group_monthly,
    population_units,
    window_opportunities,
)
from training_roi.study import Study, StudyError
from training_roi.value import (
    Benefit,
    CostBreakdown,
    Credit,
    KpiImpact,
    PhillipsEvaluation,
    Scenario,
    WindowLever,
    conservative_credit,
    cost_breakdown,
    monetise,
    phillips_levels,
    seed_model,
    sensitivity,
    value_intervals,
    value_intervals_from_lift,
)
from training_roi.warehouse.connection import require_tables
from training_roi.warehouse.quality import quality_report

__all__ = ["RESULT_SCHEMA", "REVENUE_BENEFIT", "Evaluation", "KpiResult", "LearnerRow", "WindowResult", "evaluate",
           "population_scope", "study_costs"]


@dataclass(frozen=True)
class _Design:
    """Which estimate the credited value comes from, in every window, and why."""

    method: str
    """``did`` (the windowed difference-in-differences) or one of :data:`training_roi.isolate.METHODS`."""
    label: str
    reason: str
    effects: dict[int, Effect | None] = field(default_factory=dict)
    """The method's headline-KPI effect by window length (for a method other than ``did``)."""
    missing: dict[int, str] = field(default_factory=dict)
    """Why the method gave no effect in a window."""


def _design(study: Study, methods: Comparison | None, by_window: tuple[tuple[int, Comparison], ...]) -> _Design:
    """The design that produces the credited value: the study's choice, or the recommended one.

    With ``isolation.method: all`` the credit follows the recommendation; when that is the
    comparison-group difference-in-differences, the windowed one is used (the same design,
    measured in each learner's own windows as the seed defines them).
    """
    choice = study.isolation.method
    if choice == "did" or methods is None:
        return _Design("did", WINDOWED_LABEL, "named by the study (isolation.method: did)")
    if choice == "all":
        chosen = methods.recommended
        if chosen in (None, "twfe"):
            reason = (f"recommended: {methods.reason}; measured in each learner's own windows" if chosen else
                      "no other method could be applied to this data")
            return _Design("did", WINDOWED_LABEL, reason)
        reason = f"recommended: {methods.reason}"
    else:
        chosen, reason = choice, f"named by the study (isolation.method: {choice})"
    effects: dict[int, Effect | None] = {}
    missing: dict[int, str] = {}
    for days, comparison in ((study.windows.primary_days, methods), *by_window):
        r = comparison.result(str(chosen))
        effects[days] = r.effect if r is not None else None
        if r is None or r.effect is None:
            missing[days] = (r.not_applicable or "") if r is not None else "the method was not run"
    first = methods.result(str(chosen))
    return _Design(str(chosen), first.label if first else str(chosen), reason, effects, missing)


def population_scope(con: BaseBackend, study: Study) -> list[str] | None:
    """The units in the study's population (CRM users or accounts), or None for every one with deals."""
    p = study.population
    return population_units(con, unit=p.unit, roles=p.roles, departments=p.departments, titles=p.titles,
                            include=p.include, exclude=p.exclude)


def _panels(con: BaseBackend, study: Study, days: list[int], scope: list[str] | None) -> dict[int, WindowPanel]:
    """The trained and comparison groups' figures in every window, from one set of anchors."""
    iso, program = study.isolation, study.program
    holdout = study.comparison.holdout if study.comparison.design == "holdout" else None
    try:
        return window_panels(
            con, program.activities, baseline_days=round(study.baseline.months * DAYS_PER_MONTH),
            windows=days, ramp_days=study.windows.ramp_days, rule=program.completion,
            min_score=program.min_score, seed=iso.seed, scope=scope, comparison_units=holdout,
            unit=study.population.unit, timezone=study.timezone, program_start=program.start,
            program_end=program.end, baseline_at_start=study.baseline.anchor == "program_start",
        )
    except ValueError as exc:
        raise StudyError(f"study {study.name}: {exc}") from exc


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


def _kpi_result(kpi: str, panel: WindowPanel, study: Study, resampling: Resampling | None) -> KpiResult:
    """One KPI's difference-in-differences, naive references and verdict in one window."""
    spec = KPIS[kpi]
    treated, comparison = panel.groups[kpi]
    did: Effect | None = None
    reason = ""
    if study.comparison.design == "none":
        reason = "the study names no comparison group, so the program's effect cannot be isolated"
    elif resampling is not None:
        try:
            did = did_rate(treated, comparison, resampling=resampling)
        except ValueError as exc:
            reason = f"difference-in-differences is impossible here: {exc}"
    naive = naive_rates(treated, comparison, resampling=resampling) if resampling is not None else ()
    (tb,), (tp,) = treated.rates()
    (cb,), (cp,) = comparison.rates() if comparison.units else ((float("nan"),), (float("nan"),))
    credit = _credit(did, spec, study, reason)
    verdict = "not established"
    if credit.is_credited:
        verdict = "improved" if (credit.credited > 0) == spec.higher_is_better else "worsened"
    return KpiResult(kpi=kpi, label=spec.label_for(study.population.unit), unit=spec.unit,
                     higher_is_better=spec.higher_is_better,
                     definition=spec.definition, trained_baseline=float(tb), trained_post=float(tp),
                     comparison_baseline=float(cb), comparison_post=float(cp), did=did, naive=tuple(naive),
                     credit=credit, verdict=verdict)


def _credit(effect: Effect | None, spec: KpiSpec, study: Study, reason: str) -> Credit:
    """The study's conservative rule applied to ``effect``; nothing credited (for ``reason``) without one."""
    if effect is not None and effect.baseline > 0 and effect.ci_low == effect.ci_low:
        return conservative_credit(effect.estimate, effect.baseline, interval=(effect.ci_low, effect.ci_high),
                                   min_relative_change=study.threshold.min_relative_change,
                                   describe=lambda v: describe_change(v, spec.unit))
    reason = reason or f"the trained group has no baseline {spec.label} to compare with"
    return Credit(credited=0.0, estimate=effect.estimate if effect else 0.0, relative_change=0.0, is_credited=False,
                  reason=f"not credited: {reason}")


def _window(con: BaseBackend, study: Study, panel: WindowPanel, cost: Decimal,
            resampling: Resampling | None, design: _Design) -> WindowResult:
    """Every figure of one window; the per-learner table only for the primary window."""
    days = panel.window_days
    kpis = tuple(_kpi_result(k, panel, study, resampling) for k in study.kpis)
    head = next(k for k in kpis if k.kpi == study.headline_kpi)
    effect, credit = head.did, head.credit
    if design.method != "did":
        effect = design.effects.get(days)
        credit = _credit(effect, KPIS[study.headline_kpi], study,
                         "" if effect is not None else f"{design.label} cannot be applied to this data: "
                                                       f"{design.missing.get(days, 'it was not run')}")
    base, formula = _value_base(study.headline_kpi, panel, study.population.unit)
    credited = Decimal(str(credit.credited))
    margin = Decimal(str(study.value.gross_margin))
    months = Decimal(str(round((days - study.windows.ramp_days) / DAYS_PER_MONTH, 2)))
    (rate_base,), (rate_post,) = panel.treated.rates()
    model = seed_model(
        baseline_conversion=Decimal(str(rate_base if rate_base == rate_base else 0)),
        post_conversion=Decimal(str(rate_post if rate_post == rate_post else 0)),
        adjusted_lift=credited, pipeline_value=base, total_cost=cost, gross_margin=margin, months_of_benefit=months,
    )
    intervals: dict[str, tuple[float, float]] = {}
    iv = None
    if effect is not None and design.method == "did" and effect.draws is not None:
        iv = value_intervals(effect.draws, float(base), float(cost), study.value.gross_margin, effect.confidence)
    elif effect is not None and effect.ci_low == effect.ci_low and effect.ci_high == effect.ci_high:
        iv = value_intervals_from_lift((effect.ci_low, effect.ci_high), float(base), float(cost),
                                       study.value.gross_margin, effect.confidence)
    if iv is not None:
        intervals = {"lift": iv.lift, "incremental_revenue": iv.incremental_revenue, "benefit": iv.benefit,
                     "roi_pct": iv.roi_pct}
    f = model.figures
    direct_revenue, direct_iv = _direct_revenue(panel, study, resampling)
    pipeline = Decimal(str(round(panel.post_pipeline, 2)))
    # Each learner's share of the incremental revenue follows their pipeline: for win rate that is
    # exactly the seed's credited lift × the learner's pipeline.
    per_pipeline = credited if study.headline_kpi == "win_rate" else (
        model.incremental_revenue / pipeline if pipeline else Decimal(0))
    learners = _learner_rows(con, panel, per_pipeline, cost, margin,
                             study.population.unit) if days == study.windows.primary_days else ()
    return WindowResult(
        window_days=days, trained_units=len(panel.treated.units), comparison_units=len(panel.comparison.units),
        headline_kpi=study.headline_kpi, did=effect, naive=head.naive, credit=credit, kpis=kpis,
        design=design.method, design_label=design.label,
        opportunities_in_window=panel.post_opportunities, pipeline_value=pipeline,
        attributed_revenue=Decimal(str(round(panel.post_won_revenue, 2))), value_base=base, value_formula=formula,
        incremental_revenue=model.incremental_revenue, benefit=model.benefit, roi_pct=f.roi_pct,
        net_benefit=f.net_benefit, benefit_cost_ratio=f.benefit_cost_ratio, payback_months=f.payback_months,
        intervals=intervals, learners=learners,
        direct_incremental_revenue=direct_revenue, direct_interval=direct_iv,
        **_power(panel, next((k.did for k in kpis if k.kpi == "win_rate"), None), study.population.unit),
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


def _direct_revenue(panel: WindowPanel, study: Study,
                    resampling: Resampling | None) -> tuple[Decimal | None, tuple[float, float] | None]:
    """Incremental revenue by difference-in-differences of won revenue per rep-month."""
    if study.comparison.design == "none" or resampling is None:
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
    wanted = set(t.units)  # the user table is small: filter here rather than in a long IN list
    if unit == "account":
        names = {r["account_id"]: (r["name"], None)
                 for r in con.table("crm_account").select("account_id", "name").to_pyarrow().to_pylist()
                 if r["account_id"] in wanted}
    else:
        names = {r["user_id"]: (r["email"], r["name"])
                 for r in con.table("crm_user").select("user_id", "email", "name").to_pyarrow().to_pylist()
                 if r["user_id"] in wanted}
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


def study_costs(con: BaseBackend, study: Study) -> CostBreakdown:
    """The study's fully loaded cost, by its cost settings (programs, cost lines, participant time, shared share).

    Raises
    ------
    StudyError
        A rate is missing for time that must be costed, or there is no cost at all.
    """
    pt = study.costs.participant_time
    employees = None
    if study.population.unit == "account" and pt.hourly_rate is None and not pt.hourly_rate_by_role:
        # Customers' learning time is not the company's cost unless the study prices it.
        li = con.table("learner_identity")
        employees = li.filter(li.crm_user_id.notnull()).select("learner_key").to_pyarrow()["learner_key"].to_pylist()
    try:
        costs = cost_breakdown(
            con, programs=study.costs.programs or [study.program.name], activities=study.program.activities,
            learner_keys=employees, use_cost_lines=study.costs.use_cost_lines,
            minutes_per_learner=Decimal(str(pt.minutes_per_learner)) if pt.minutes_per_learner else None,
            hourly_rate=Decimal(str(pt.hourly_rate)) if pt.hourly_rate is not None else None,
            hourly_rate_by_title={k: Decimal(str(v)) for k, v in pt.hourly_rate_by_role.items()} or None,
            shared_share=Decimal(str(study.costs.share or 0)) if study.costs.shared_allocation == "share" else 0,
        )
    except ValueError as exc:
        raise StudyError(f"study {study.name}: costs: {exc} (set costs.participant_time.hourly_rate)") from exc
    if costs.total <= 0:
        raise StudyError(
            f"study {study.name}: costs: no cost found for program(s) {', '.join(study.costs.programs)} "
            "in costs.csv and no participant time: ROI needs the program's cost"
        )
    return costs


def evaluate(con: BaseBackend, study: Study) -> Evaluation:
    """Answer ``study`` from the warehouse ``con``.

    Raises
    ------
    StudyError
        The study cannot be answered from this warehouse (nobody completed its activities, no
        cost, a group without deals); the message says which setting or data to change.
    """
    require_tables(con, "crm_opportunity", "learning_record", "learner_identity", "cost_line")
    scope = population_scope(con, study)
    costs = study_costs(con, study)
    days = sorted({study.windows.primary_days, *study.windows.sensitivity_days})
    panels = _panels(con, study, days, scope)
    first = panels[days[0]]
    iso = study.isolation
    # One set of bootstrap draws for every KPI and window: the groups are the same units throughout.
    resampling = Resampling.draw(
        len(first.treated.units), len(first.comparison.units), replicates=iso.bootstrap_replicates,
        confidence=iso.confidence, seed=iso.seed,
    ) if first.comparison.units else None
    if resampling is not None:
        resampling.prepare([panels[d].groups[k][0] for d in days for k in KPIS],
                           [panels[d].groups[k][1] for d in days for k in KPIS])
    methods, by_window = _compare(con, study, scope, first) if iso.method != "did" else (None, ())
    design = _design(study, methods, by_window)
    results = tuple(_window(con, study, panels[d], costs.total, resampling, design) for d in days)
    primary = next(r for r in results if r.window_days == study.windows.primary_days)
    report = quality_report(con)
    warnings = list(report.warnings)
    if not primary.credit.is_credited:
        warnings.insert(0, f"the program's effect is not established ({primary.credit.why}): "
                           "no incremental revenue is credited")
    trend = _trend(con, set(panels[days[0]].treated.units), set(panels[days[0]].comparison.units),
                   study.population.unit)
    if primary.power_warning:
        warnings.insert(1 if not primary.credit.is_credited else 0, primary.power_warning)
    if design.method != "did" and primary.did is not None:
        warnings.extend(f"{design.label}: {w}" for w in primary.did.warnings)
    behaviour, application = _application(con, study, panels[study.windows.primary_days])
    attribution = None
    if study.attribution.enabled:
        try:
            attribution = attribute_study(con, study, incremental_revenue=float(primary.incremental_revenue),
                                          scope=scope)
        except ValueError as exc:
            raise StudyError(f"study {study.name}: attribution: {exc}") from exc
        warnings.extend(attribution.notes)
    return Evaluation(study, primary, results, costs, dict(report.tables), tuple(warnings), trend,
                      _sensitivity(study, primary, results, costs.total), methods, by_window,
                      _opportunities(con, study, panels[study.windows.primary_days]), design.reason, attribution,
                      _phillips(con, study, primary, costs, behaviour), application)


REVENUE_BENEFIT = "incremental revenue × gross margin"
"""The name of Phillips level 5's first benefit: the credited incremental revenue × margin."""


def _application(con: BaseBackend, study: Study,
                 panel: WindowPanel) -> tuple[pl.DataFrame | None, tuple[dict[str, Any], ...]]:
    """The application KPIs: each trained unit's before and after (Phillips level 3), and both groups by month.

    Months are whole calendar months: the baseline is the months before the completion month,
    the window the months after it, as many as the study's baseline and window cover. The
    monthly rows pool the trained and the comparison reps' numerators and denominators (the
    report's charts).
    """
    if not study.application_kpis or study.population.unit != "rep":
        return None, ()
    anchors = pl.from_arrow(panel.anchors.filter(pc.field("trained")).select(["unit_id", "anchor"]))
    assert isinstance(anchors, pl.DataFrame)
    if anchors.is_empty():
        return None, ()
    monthly = compute(con, study.application_kpis, monthly=True, grain="rep").filter(pl.col("value").is_not_null())
    if monthly.is_empty():
        return None, ()
    return _before_after(study, panel, monthly, anchors), _by_group(study, panel, monthly)


def _by_group(study: Study, panel: WindowPanel, monthly: pl.DataFrame) -> tuple[dict[str, Any], ...]:
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


def _before_after(study: Study, panel: WindowPanel, monthly: pl.DataFrame,
                  anchors: pl.DataFrame) -> pl.DataFrame | None:
    """Each trained unit's application KPIs pooled before and after its training month."""
    before = max(1, round(study.baseline.months))
    after = max(1, round(panel.window_days / DAYS_PER_MONTH))
    month = pl.col("period").dt.year() * 12 + pl.col("period").dt.month()
    start = pl.col("anchor").dt.year() * 12 + pl.col("anchor").dt.month()
    rows = monthly.join(anchors.rename({"unit_id": "grain_id"}), on="grain_id").with_columns((month - start).alias("k"))
    pooled = rows.with_columns(pl.when(pl.col("k") < 0).then(pl.lit("before")).otherwise(pl.lit("after")).alias("when"))
    inside = ((pl.col("k") >= -before) & (pl.col("k") < 0)) | ((pl.col("k") > 0) & (pl.col("k") <= after))
    pooled = pooled.filter(inside)
    sums = pooled.sort("kpi", "grain_id", "period").group_by("kpi", "grain_id", "when", maintain_order=True).agg(
        pl.col("numerator").sum(), pl.col("denominator").sum())
    sums = sums.with_columns((pl.col("numerator") / pl.col("denominator")).alias("value"))
    wide = sums.pivot(on="when", index=["kpi", "grain_id"], values="value")
    if not {"before", "after"} <= set(wide.columns):
        return None
    labels = {k: CATALOGUE[k].label for k in study.application_kpis}
    # A fixed row order: the level's means are float sums, which must not depend on how rows arrive.
    return wide.select(pl.col("kpi").replace_strict(labels), pl.col("grain_id").alias("unit_id"), "before",
                       "after").sort("kpi", "unit_id")


def _phillips(con: BaseBackend, study: Study, primary: WindowResult, costs: CostBreakdown,
              behaviour: pl.DataFrame | None) -> PhillipsEvaluation:
    """The program's five levels: surveys, learning, application, the isolated KPIs, and the full ROI.

    Level 5 adds the study's declared monetisation rules (errors, penalties, turnover, time
    saved; a rule may name an isolated KPI effect by its KPI name) to the credited incremental
    revenue × margin, against the same fully loaded cost.
    """
    effects = {k.kpi: k.did for k in primary.kpis if k.did is not None}
    impact = [KpiImpact.of(k.label, k.did, verdict=k.verdict) for k in primary.kpis if k.did is not None]
    try:
        benefits = monetise(study.monetisation, effects=effects)
    except ValueError as exc:
        raise StudyError(f"study {study.name}: monetisation: {exc}") from exc
    if any(b.name == REVENUE_BENEFIT for b in benefits):
        raise StudyError(f"study {study.name}: monetisation: {REVENUE_BENEFIT!r} is the credited revenue's own "
                         "benefit; name the rule differently")
    margin = Decimal(str(study.value.gross_margin))
    revenue = primary.incremental_revenue.quantize(Decimal("0.01"))
    low_high = primary.intervals.get("benefit") if primary.credit.is_credited else None
    revenue_benefit = Benefit(
        REVENUE_BENEFIT, "revenue_margin", (revenue * margin).quantize(Decimal("0.01")),
        f"${revenue:,.2f} credited incremental revenue ({primary.value_formula}) × {float(margin):.1%} gross margin",
        {"revenue": revenue, "margin": margin}, "isolated effect", study.headline_kpi,
        (Decimal(str(round(low_high[0], 2))), Decimal(str(round(low_high[1], 2)))) if low_high else None)
    benefits = (revenue_benefit, *benefits)
    months = Decimal(str(round((primary.window_days - study.windows.ramp_days) / DAYS_PER_MONTH, 2)))
    return phillips_levels(con, program=study.program.name, activities=study.program.activities, benefits=benefits,
                           cost=costs, impact=impact, behaviour=behaviour,
                           intangibles=study.intangibles, months_of_benefit=months,
                           confidence=study.isolation.confidence)


def _compare(con: BaseBackend, study: Study, scope: list[str] | None,
             panel: WindowPanel) -> tuple[Comparison, tuple[tuple[int, Comparison], ...]]:
    """Every estimator of the family (or the one the study names) on the headline KPI's monthly panel.

    The primary window's comparison carries the challenges; every other attribution window gets
    each method's estimate too (unchallenged), so a reader sees whether the designs agree across
    windows.
    """
    units = set(panel.treated.units) | set(panel.comparison.units)
    iso = study.isolation
    try:
        monthly = UnitPanel.from_warehouse(
            con, study.program.activities, kpi=study.headline_kpi, unit=study.population.unit,
            rule=study.program.completion, min_score=study.program.min_score, scope=sorted(units),
        )
    except ValueError as exc:
        raise StudyError(f"study {study.name}: isolation.method all: {exc}") from exc
    surveys = survey_estimates(con, study.program.name)
    chosen = METHODS if iso.method == "all" else (iso.method,)

    def months(days: int) -> int:
        return max(1, round((days - study.windows.ramp_days) / DAYS_PER_MONTH))

    def run(days: int, challenged: bool) -> Comparison:
        # The other windows' intervals come from fewer replicates (999 at most): they are shown for
        # agreement across windows; the primary window's figures keep the study's count.
        replicates = iso.bootstrap_replicates if challenged else min(iso.bootstrap_replicates, 999)
        return compare_methods(monthly, post_months=months(days), randomised=study.comparison.design == "holdout",
                               confidence=iso.confidence, replicates=replicates, seed=iso.seed,
                               surveys=surveys, refutations=challenged, methods=chosen)

    others = tuple((d, run(d, False)) for d in study.windows.sensitivity_days if d != study.windows.primary_days)
    return run(study.windows.primary_days, True), others


def _opportunities(con: BaseBackend, study: Study, panel: WindowPanel) -> pa.Table:
    """The trained units' deals in their primary windows, in a stable order."""
    anchors = panel.anchors.filter(pc.field("trained")).select(["unit_id", "anchor"])
    rows = window_opportunities(con, ibis.memtable(anchors), window_days=panel.window_days,
                                ramp_days=study.windows.ramp_days, unit=study.population.unit).to_pyarrow()
    return rows.sort_by([("unit_id", "ascending"), ("created", "ascending"), ("opportunity_id", "ascending")])


def _sensitivity(study: Study, primary: WindowResult, results: tuple[WindowResult, ...],
                 cost: Decimal) -> tuple[Scenario, ...]:
    """The seed's sensitivity table around the headline KPI's estimated effect."""
    if primary.did is None:
        return ()
    levers = [WindowLever(w.window_days, w.did.estimate, w.value_base) for w in results if w.did is not None]
    rows = sensitivity(effect=primary.did.estimate, interval=(primary.did.ci_low, primary.did.ci_high),
                       value_base=primary.value_base, cost=cost, margin=Decimal(str(study.value.gross_margin)),
                       windows=levers, primary_days=primary.window_days,
                       describe=lambda v: describe_change(v, KPIS[study.headline_kpi].unit))
    return rows


def _trend(con: BaseBackend, trained: set[str], comparison: set[str], unit: str) -> tuple[dict[str, Any], ...]:
    """Every KPI per month of deal creation, pooled over the trained and the comparison units.

    Per-unit-month KPIs divide by the group's size. Money is summed as exact decimals in the
    engine, so the figures do not depend on the order rows arrive in.
    """
    groups = ibis.memtable(pa.table({
        "unit_id": pa.array([*sorted(trained), *sorted(comparison)], pa.string()),
        "group": pa.array(["trained"] * len(trained) + ["comparison"] * len(comparison), pa.string()),
    }))
    rows = group_monthly(con, groups, unit=unit).to_pyarrow().to_pylist()
    size = {"trained": len(trained), "comparison": len(comparison)}
    out = []
    for r in sorted(rows, key=lambda r: (r["month"], r["group"])):
        closed, won, n = int(r["closed"]), int(r["won"]), size[r["group"]]
        out.append({
            "month": r["month"].isoformat(), "group": r["group"], "units": n,
            "opportunities": int(r["opportunities"]), "closed": closed, "won": won,
            "win_rate": won / closed if closed else None,
            "avg_won_deal_size": float(r["won_amount"]) / won if won else None,
            "sales_cycle_days": float(r["cycle_days_sum"]) / closed if closed else None,
            "pipeline_created": float(r["pipeline_created"]) / n if n else None,
            "revenue_per_rep": float(r["won_amount"]) / n if n else None,
        })
    return tuple(out)
