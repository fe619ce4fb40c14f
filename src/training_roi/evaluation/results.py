"""What a study's answer holds: every figure, per window and per KPI, with its uncertainty and origin.

These are the objects :func:`training_roi.evaluation.evaluate` returns and the presenters format
(console, result.json, report.html, spreadsheets). :meth:`Evaluation.asdict` is the result
document, whose fields docs/result.md describes.
"""

from __future__ import annotations

import html
from dataclasses import asdict, dataclass, field, replace
from decimal import Decimal
from typing import Any

import pyarrow as pa

from training_roi._format import describe_change, money, percent
from training_roi.attribute.result import AttributionResult
from training_roi.evaluation.churn import ChurnRisk
from training_roi.evaluation.next_lesson import NextLessons
from training_roi.evaluation.subgroups import WhoBenefits
from training_roi.isolate import Comparison, Effect, LessonMap
from training_roi.measure import KPIS
from training_roi.study import Study
from training_roi.value import (
    CentralRoi,
    CostBreakdown,
    Credit,
    PhillipsEvaluation,
    RevenueEstimate,
    Scenario,
    Tornado,
)
from training_roi.value.forecast import Forecast
from training_roi.value.payback import Payback
from training_roi.value.sensitivity import Grid

__all__ = ["RESULT_SCHEMA", "WINDOWED_LABEL", "Evaluation", "KpiResult", "LearnerRow", "WindowResult"]

RESULT_SCHEMA = "training-roi/result/2"
"""Version of the result document; bumped when a field changes meaning or disappears."""

WINDOWED_LABEL = "difference-in-differences in each learner's own windows"
"""The study's default design: the seed's windows around every learner's completion."""


@dataclass(frozen=True)
class LearnerRow:
    """One row of the seed's spreadsheet: a trained unit in the primary window.

    The lift per learner is the raw change of their own conversion (noisy for one rep); the
    incremental revenue applies the *group's* credited lift to the learner's pipeline, and the
    cost is the total divided equally among trained learners: both stated in the report.
    """

    unit_id: str
    learner: str
    """The rep's email, or the account's name (customer education)."""
    name: str | None
    learners: int
    """How many learners of the unit completed: 1 for a rep, often several for an account."""
    completion_date: str
    opportunities_in_window: int
    pipeline_value: Decimal
    won_revenue: Decimal
    baseline_conversion: float | None
    post_conversion: float | None
    lift: float | None
    incremental_revenue: Decimal
    cost: Decimal
    roi_pct: Decimal | None


@dataclass(frozen=True)
class KpiResult:
    """One KPI in one window: both groups' levels, the difference-in-differences and its verdict.

    Levels are pooled over each group (Σ numerator / Σ denominator, see
    :class:`training_roi.measure.KpiSpec`). The verdict applies the study's conservative rule:
    a change is established only when its interval excludes 0 and it reaches the threshold.
    """

    kpi: str
    label: str
    unit: str
    higher_is_better: bool
    definition: str
    trained_baseline: float
    trained_post: float
    comparison_baseline: float
    comparison_post: float
    did: Effect | None
    naive: tuple[Effect, ...]
    credit: Credit
    verdict: str
    """``improved``, ``worsened`` (an established change in the wrong direction) or ``not established``."""

    def asdict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        out = asdict(self)
        out["did"] = self.did.asdict() if self.did else None
        out["naive"] = [n.asdict() for n in self.naive]
        return out


@dataclass(frozen=True)
class WindowResult:
    """Every figure of one attribution window.

    ``did`` (the effect of the design that produces the credited value: ``design``), ``naive``
    and ``credit`` are the headline KPI's; ``kpis`` has every KPI of the study by windowed
    difference-in-differences. Incremental revenue is the headline KPI's credited effect ×
    ``value_base``, as ``value_formula`` states (for win rate: × pipeline value, the seed model).
    """

    window_days: int
    trained_units: int
    comparison_units: int
    headline_kpi: str
    did: Effect | None
    naive: tuple[Effect, ...]
    credit: Credit
    kpis: tuple[KpiResult, ...]
    opportunities_in_window: int
    pipeline_value: Decimal
    attributed_revenue: Decimal
    value_base: Decimal
    value_formula: str
    incremental_revenue: Decimal
    benefit: Decimal
    roi_pct: Decimal
    net_benefit: Decimal
    benefit_cost_ratio: Decimal
    payback_months: Decimal | None
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    learners: tuple[LearnerRow, ...] = ()
    revenue: dict[str, RevenueEstimate] = field(default_factory=dict)
    """Incremental revenue by each definition (``booked``, ``eventual``, ``seed``): central estimate, interval,
    the trained units' observed revenue, and the credit."""
    revenue_definition: str = "booked"
    """The definition the credited figures follow (the study's ``value.revenue``; ``seed`` under another design)."""
    central: CentralRoi | None = None
    """ROI at the central estimate of the credited definition, its interval and P(ROI > 0)."""
    break_even_effect: float | None = None
    """The headline KPI's effect at which ROI = 0 when the credited revenue is the seed formula's (effect × value
    base): cost ÷ (gross margin × value base), in the KPI's units; None under another definition or without a base."""
    tenure_note: str = ""
    """How units joining and leaving shaped the groups."""
    settle: str | None = None
    """What would establish an effect the study could not: more units or more months, in words."""
    minimum_detectable_lift: float | None = None
    """The smallest win-rate lift this many units and deals detect with 80% power (5% two-sided)."""
    power_warning: str | None = None
    design: str = "did"
    """The method behind ``did`` and the credit: ``did`` (windowed) or an estimator of the family."""
    design_label: str = WINDOWED_LABEL

    def asdict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        revenue, central = self.revenue, self.central
        out = asdict(replace(self, revenue={}, central=None))
        out["did"] = self.did.asdict() if self.did else None
        out["naive"] = [n.asdict() for n in self.naive]
        out["kpis"] = [k.asdict() for k in self.kpis]
        out["revenue"] = {k: v.asdict() for k, v in revenue.items()}
        out["central"] = central.asdict() if central is not None else None
        return out


@dataclass(frozen=True)
class Evaluation:
    """The answer to a study: per window figures, costs, the data used, warnings."""

    study: Study
    primary: WindowResult
    windows: tuple[WindowResult, ...]
    costs: CostBreakdown
    data: dict[str, int]
    warnings: tuple[str, ...]
    trend: tuple[dict[str, Any], ...] = ()
    """Every KPI by month of deal creation for trained and comparison reps (for the trend charts)."""
    sensitivity: tuple[Scenario, ...] = ()
    """Outcomes under pessimistic, base and optimistic lift, window and deal size."""
    methods: Comparison | None = None
    """With ``isolation.method: all``: every applicable estimator side by side, and the recommended one."""
    methods_by_window: tuple[tuple[int, Comparison], ...] = ()
    """With ``isolation.method: all``: the same estimators in every other attribution window (unchallenged)."""
    opportunities: pa.Table | None = field(default=None, compare=False, repr=False)
    """The trained units' deals in their primary windows, one per row (the seed's spreadsheet);
    written as opportunities.csv, not into result.json."""
    design_reason: str = ""
    """Why the credited value comes from the primary window's ``design``."""
    attribution: AttributionResult | None = field(default=None, compare=False, repr=False)
    """Which touches the won revenue flows through, and training's share held to the lift."""
    phillips: PhillipsEvaluation | None = field(default=None, compare=False, repr=False)
    """The program's five Phillips levels, level 5 with every declared benefit."""
    application_trend: tuple[dict[str, Any], ...] = field(default=(), compare=False, repr=False)
    """The application KPIs by month for trained and comparison reps (the report's charts; not in result.json)."""
    tornado: Tornado | None = None
    """ROI at the central estimate with each assumption moved over its range alone (None without an estimate)."""
    payback: Payback | None = None
    """P(ROI > 0) and P(ROI > the study's hurdle rate) with the declared cost ranges (None without an estimate)."""
    grids: tuple[Grid, ...] = ()
    """ROI over two assumptions at once (effect × deal size, window × gross margin), with each row's break-even."""
    forecast: Forecast | None = None
    """Cumulative benefit, cost and ROI for each month after training, and the scale-up (None: see forecast_basis)."""
    forecast_basis: str = ""
    """What the forecast rests on, or why there is none."""
    subgroups: WhoBenefits | None = field(default=None, compare=False, repr=False)
    """With ``insight.subgroups``: the effect by subgroup and the roll-out table (None: see subgroups_basis)."""
    subgroups_basis: str = ""
    """Why there is no breakdown by subgroup ("" when there is one or none was asked for)."""
    lesson_map: LessonMap | None = field(default=None, compare=False, repr=False)
    """With ``insight.lesson_map``: which lessons stand out against the average lesson (None: see lesson_map_basis)."""
    lesson_map_basis: str = ""
    """Why there is no lesson map ("" when there is one or none was asked for)."""
    next_lesson: NextLessons | None = field(default=None, compare=False, repr=False)
    """With ``insight.next_lesson``: each unit's gaps and recommended lessons (None: see next_lesson_basis)."""
    next_lesson_basis: str = ""
    """Why there are no next lessons ("" when there are or none were asked for)."""
    churn: ChurnRisk | None = field(default=None, compare=False, repr=False)
    """With ``insight.churn``: the accounts' churn risk at their open renewals (None: see churn_basis)."""
    churn_basis: str = ""
    """Why there is no churn risk ("" when there is one or none was asked for)."""

    @property
    def established(self) -> bool:
        """Whether the program's effect on revenue is established: the primary window credits some revenue.

        The headline KPI's own verdict (``primary.credit``) can differ: a win-rate lift can be
        established while revenue is not (deal sizes fell), and the other way round.
        """
        return self.primary.incremental_revenue > 0

    def headline(self) -> list[str]:
        """The answer in words, for the top of every output: did it pay off, by how much, how sure, and why.

        Never a bare ROI: an effect that is not established is said in words, with the central ROI
        and its interval, the probability that ROI is positive, the smallest effect the study could
        detect and what would settle it. Gross margin stands next to every ROI.
        """
        p, c = self.primary, self.primary.central
        chosen = p.revenue.get(p.revenue_definition)
        margin = self.study.value.gross_margin
        on = f"at {margin:.1%} gross margin" + (" (ROI on revenue, not profit)" if margin == 1 else "")
        central = ""
        if c is not None:
            iv = c.roi_interval
            central = (f"central ROI {percent(c.roi_pct)}" + (f" [{percent(iv[0])} to {percent(iv[1])}]" if iv else "")
                       + (f", P(ROI > 0) = {c.prob_positive:.1%}" if c.prob_positive is not None else ""))
        credited = chosen is not None and chosen.credited > 0
        if credited:
            verdict = "paid off" if p.roi_pct > 0 else "did not pay back its cost"
            lines = [f"The program {verdict}: ROI {percent(p.roi_pct)} {on} on the credited "
                     f"{money(p.incremental_revenue)} ({chosen.reason if chosen else ''}); {central}."]
        else:
            why = chosen.reason if chosen is not None else p.credit.reason
            lines = [f"The program's effect on revenue is not established ({why.removeprefix('not credited: ')}): "
                     f"nothing is credited. {central[:1].upper() + central[1:]} {on}."]
            mde = p.minimum_detectable_lift
            lift = p.did if p.headline_kpi == "win_rate" else next(
                (k.did for k in p.kpis if k.kpi == "win_rate"), None)
            if mde is not None and lift is not None:
                lines.append(f"The smallest win-rate lift this study could detect is {describe_change(mde, 'rate')}; "
                             f"{p.design_label} measured {describe_change(lift.estimate, 'rate')}."
                             + (f" To settle it: {p.settle}." if p.settle else ""))
        if chosen is not None and chosen.estimate is not None:
            iv = chosen.interval
            lines.append(f"Incremental revenue, {chosen.label} ({chosen.meaning}): central {money(chosen.estimate)}"
                         + (f" [{money(iv[0])} to {money(iv[1])}]" if iv else "")
                         + f"; credited {money(chosen.credited)}; the trained {self.study.population.unit}s' "
                         f"revenue counted this way (not all of it caused by training): {money(chosen.observed)}.")
        others = [r for k, r in p.revenue.items() if k != p.revenue_definition and r.estimate is not None]
        if others:
            lines.append("Beside it: " + "; ".join(
                f"{r.label} {money(r.estimate or 0)}" + (f" [{money(r.interval[0])} to {money(r.interval[1])}]"
                                                         if r.interval else "") for r in others) + ".")
        cost = (f"Fully loaded cost {money(self.costs.total)}" if self.costs.time_costed else
                f"Cost {money(self.costs.total)}, participant time not costed (no hourly rate: not fully loaded)")
        lines.append(f"{cost}; break-even incremental revenue "
                     f"{money(c.break_even_revenue) if c is not None else '—'} {on}.")
        if p.design == "dose" and p.did is not None and "per_lesson" in p.did.details:
            d = p.did.details
            lines.append(f"Per lesson: {describe_change(d['per_lesson'], KPIS[p.headline_kpi].unit)} {p.headline_kpi} "
                         f"[{describe_change(d['per_lesson_ci_low'], 'rate')} to "
                         f"{describe_change(d['per_lesson_ci_high'], 'rate')}], × {d['mean_dose_weighted']:.1f} "
                         "lessons taken before each deal on average (an association: engagement is self-selected).")
        if p.tenure_note:
            lines.append(p.tenure_note[:1].upper() + p.tenure_note[1:] + ".")
        return lines

    def summary(self) -> str:
        """The answer in a few lines: did it pay off, by how much, how sure, and what it rests on."""
        p = self.primary
        unit = self.study.population.unit
        lines = [f"{self.study.name} (study {self.study.hash}), {p.window_days}-day window, {p.design_label}"]
        if p.did is not None:
            kpi, level = p.headline_kpi, f"{p.did.confidence:.0%}"
            lines.append(f"  {kpi}: {_change(p.did.estimate, kpi)} "
                         f"[{level}: {_change(p.did.ci_low, kpi)} to {_change(p.did.ci_high, kpi)}]"
                         f", P(effect > 0) {p.did.prob_positive:.1%}")
        lines += [f"  {line}" for line in self.headline()]
        lines.append(f"  data: {p.trained_units:,} trained and {p.comparison_units:,} comparison {unit}s, "
                     f"{p.opportunities_in_window:,} deals in the trained {unit}s' windows")
        lines += [f"  warning: {w}" for w in self.warnings[:3]]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return (f"Evaluation(study={self.study.name!r}, hash={self.study.hash!r}, established={self.established}, "
                f"roi_pct={self.primary.roi_pct})")

    def _repr_html_(self) -> str:
        return "<pre>" + html.escape(self.summary()) + "</pre>"

    def asdict(self) -> dict[str, Any]:
        """The result document (schema :data:`RESULT_SCHEMA`)."""
        document: dict[str, Any] = _no_nan({
            "schema": RESULT_SCHEMA,
            "study": {"name": self.study.name, "hash": self.study.hash, "settings": self.study.model_dump(mode="json")},
            "established": self.established,
            "design": {"method": self.primary.design, "label": self.primary.design_label,
                       "reason": self.design_reason},
            "headline": self.primary.asdict(),
            "windows": [w.asdict() for w in self.windows],
            "costs": self.costs.asdict(),
            "data": self.data,
            "warnings": list(self.warnings),
            "trend": list(self.trend),
            "sensitivity": [asdict(r) for r in self.sensitivity],
            "tornado": self.tornado.asdict() if self.tornado is not None else None,
            "payback": self.payback.asdict() if self.payback is not None else None,
            "grids": [g.asdict() for g in self.grids],
            "forecast": {"basis": self.forecast_basis,
                         **(self.forecast.asdict() if self.forecast is not None else {})},
            "methods": _methods_document(self.methods, self.methods_by_window),
            "attribution": self.attribution.asdict() if self.attribution is not None else None,
            "phillips": self.phillips.asdict() if self.phillips is not None else None,
        })
        if self.lesson_map is not None or self.lesson_map_basis:  # only when insight.lesson_map asks for it
            document["lesson_map"] = _no_nan({"basis": self.lesson_map_basis,
                                              **(_lesson_map_document(self.lesson_map) if self.lesson_map else {})})
        if self.next_lesson is not None or self.next_lesson_basis:  # only when insight.next_lesson asks for it
            document["next_lesson"] = _no_nan({"basis": self.next_lesson_basis,
                                               **(self.next_lesson.asdict() if self.next_lesson else {})})
        if self.subgroups is not None or self.subgroups_basis:  # only when insight.subgroups asks for it
            document["subgroups"] = _no_nan({"basis": self.subgroups_basis,
                                             **(self.subgroups.asdict() if self.subgroups is not None else {})})
        if self.churn is not None or self.churn_basis:  # only when insight.churn asks for it
            document["churn"] = _no_nan({"basis": self.churn_basis,
                                         **(self.churn.asdict() if self.churn is not None else {})})
        return document


def _lesson_map_document(m: LessonMap) -> dict[str, Any]:
    return {"kpi": m.outcome, "evidence": m.evidence, "caveat": m.caveat, "fdr": m.fdr, "confidence": m.confidence,
            "units": m.units, "takers": m.takers, "matters": m.matters, "lessons": m.table.to_dicts(),
            "warnings": list(m.warnings), "diagnostics": m.diagnostics}


def _change(value: float, kpi: str) -> str:
    return describe_change(value, KPIS[kpi].unit)


def _methods_document(c: Comparison | None, by_window: tuple[tuple[int, Comparison], ...]) -> dict[str, Any] | None:
    if c is None:
        return None

    def results(comparison: Comparison) -> list[dict[str, Any]]:
        return [{"method": r.method, "label": r.label, "effect": r.effect.asdict() if r.effect else None,
                 "not_applicable": r.not_applicable, "refutations": [asdict(x) for x in r.refutations]}
                for r in comparison.results]

    return {
        "recommended": c.recommended, "reason": c.reason, "evidence": _no_nan(dict(c.evidence)), "results": results(c),
        "windows": [{"window_days": d, "recommended": w.recommended, "results": results(w)} for d, w in by_window],
    }


def _no_nan(value: Any) -> Any:
    """NaN (an undefined rate) becomes None, which JSON can say."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_no_nan(v) for v in value]
    return value
