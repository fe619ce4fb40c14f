"""The main job: a study and a warehouse in, the seed model's answer with its uncertainty out.

One pass through the flow — measure (KPIs in each learner's own windows), isolate (difference-
in-differences with a cluster bootstrap, the naive figures as labelled references), value
(conservative credit, pipeline value, incremental revenue, fully loaded cost, ROI with intervals)
— for the primary window and every sensitivity window. The :class:`Evaluation` it returns holds
every figure, the assumptions that produced them and the data they came from; presenters only
format it. Same data + same study = same evaluation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

import polars as pl
from ibis.backends import BaseBackend

from training_roi.isolate import Effect, WindowPanel, did_rate, naive_rates, win_rate_panels
from training_roi.measure import monthly_panel
from training_roi.study import Study, StudyError
from training_roi.value import CostBreakdown, Credit, conservative_credit, cost_breakdown, seed_model, value_intervals
from training_roi.warehouse.connection import require_tables
from training_roi.warehouse.quality import quality_report

__all__ = ["RESULT_SCHEMA", "Evaluation", "LearnerRow", "WindowResult", "evaluate"]

RESULT_SCHEMA = "training-roi/result/1"
"""Version of the result document; bumped when a field changes meaning or disappears."""

_DAYS_PER_MONTH = 30.4375


@dataclass(frozen=True)
class LearnerRow:
    """One row of the seed's spreadsheet: a trained unit in the primary window.

    The lift per learner is the raw change of their own conversion (noisy for one rep); the
    incremental revenue applies the *group's* credited lift to the learner's pipeline, and the
    cost is the total divided equally among trained learners: both stated in the report.
    """

    unit_id: str
    learner: str
    name: str | None
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
class WindowResult:
    """Every figure of one attribution window."""

    window_days: int
    trained_units: int
    comparison_units: int
    did: Effect | None
    naive: tuple[Effect, ...]
    credit: Credit
    opportunities_in_window: int
    pipeline_value: Decimal
    attributed_revenue: Decimal
    incremental_revenue: Decimal
    benefit: Decimal
    roi_pct: Decimal
    net_benefit: Decimal
    benefit_cost_ratio: Decimal
    payback_months: Decimal | None
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    learners: tuple[LearnerRow, ...] = ()
    direct_incremental_revenue: Decimal | None = None
    """Incremental revenue estimated directly: DiD of won revenue per rep-day × days × trained reps.

    Unlike the seed's formula it counts a change in deal size too; shown beside it, not credited.
    """
    direct_interval: tuple[float, float] | None = None

    def asdict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        out = asdict(self)
        out["did"] = self.did.asdict() if self.did else None
        out["naive"] = [n.asdict() for n in self.naive]
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
    """Win rate by month of creation for trained and comparison reps (for the trend chart)."""

    @property
    def established(self) -> bool:
        """Whether the program's effect is established in the primary window (and credited)."""
        return self.primary.credit.is_credited

    def asdict(self) -> dict[str, Any]:
        """The result document (schema :data:`RESULT_SCHEMA`)."""
        return _no_nan({
            "schema": RESULT_SCHEMA,
            "study": {"name": self.study.name, "hash": self.study.hash, "settings": self.study.model_dump(mode="json")},
            "established": self.established,
            "headline": self.primary.asdict(),
            "windows": [w.asdict() for w in self.windows],
            "costs": self.costs.asdict(),
            "data": self.data,
            "warnings": list(self.warnings),
            "trend": list(self.trend),
        })


def _no_nan(value: Any) -> Any:
    """NaN (an undefined rate) becomes None, which JSON can say."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_no_nan(v) for v in value]
    return value


def _scope(con: BaseBackend, study: Study) -> list[str] | None:
    """The CRM users in the study's population, or None for every deal owner."""
    p = study.population
    if not (p.roles or p.departments or p.titles or p.include or p.exclude):
        return None
    users = con.table("crm_user")
    keep = users.user_id.notnull()
    if p.roles:
        keep &= users.role_id.isin(p.roles)
    if p.departments:
        keep &= users.department.isin(p.departments)
    if p.titles:
        keep &= users.title.isin(p.titles)
    chosen = set(users.filter(keep).select("user_id").to_pyarrow()["user_id"].to_pylist())
    if not (p.roles or p.departments or p.titles):  # no filter: everyone who owns deals, then the lists
        o = con.table("crm_opportunity")
        chosen |= set(o.select("owner_id").distinct().to_pyarrow()["owner_id"].to_pylist()) - {None}
    chosen |= set(p.include)
    chosen -= set(p.exclude)
    return sorted(chosen)


def _panels(con: BaseBackend, study: Study, days: list[int], scope: list[str] | None) -> dict[int, WindowPanel]:
    """The trained and comparison groups' counts in every window, from one set of anchors."""
    iso, program = study.isolation, study.program
    holdout = study.comparison.holdout if study.comparison.design == "holdout" else None
    try:
        return win_rate_panels(
            con, program.activities, baseline_days=round(study.baseline.months * _DAYS_PER_MONTH),
            windows=days, ramp_days=study.windows.ramp_days, rule=program.completion,
            min_score=program.min_score, seed=iso.seed, scope=scope, comparison_units=holdout,
        )
    except ValueError as exc:
        raise StudyError(f"study {study.name}: {exc}") from exc


def _window(con: BaseBackend, study: Study, days: int, panel: WindowPanel, cost: Decimal) -> WindowResult:
    """Every figure of one window; the per-learner table only for the primary window."""
    iso = study.isolation
    did: Effect | None = None
    reason = ""
    if study.comparison.design == "none":
        reason = "the study names no comparison group, so the program's effect cannot be isolated"
    else:
        try:
            did = did_rate(panel.treated, panel.comparison, replicates=iso.bootstrap_replicates,
                           confidence=iso.confidence, seed=iso.seed)
        except ValueError as exc:
            reason = f"difference-in-differences is impossible here: {exc}"
    naive = naive_rates(panel.treated, panel.comparison, replicates=iso.bootstrap_replicates,
                        confidence=iso.confidence, seed=iso.seed) if panel.comparison.units else ()
    (base,), (post,) = panel.treated.rates()
    if did is not None and did.baseline > 0:
        credit = conservative_credit(
            did.estimate, did.baseline, min_relative_change=study.threshold.min_relative_change,
            interval=(did.ci_low, did.ci_high),
        )
    else:
        credit = Credit(credited=0.0, estimate=did.estimate if did else 0.0, relative_change=0.0, is_credited=False,
                        reason=reason or "the trained group has no baseline conversion to compare with")
    pipeline = Decimal(str(round(panel.post_pipeline, 2)))
    model = seed_model(
        baseline_conversion=Decimal(str(base)), post_conversion=Decimal(str(post)),
        adjusted_lift=Decimal(str(credit.credited)), pipeline_value=pipeline, total_cost=cost,
        gross_margin=Decimal(str(study.value.gross_margin)),
    )
    intervals: dict[str, tuple[float, float]] = {}
    if did is not None and did.draws is not None:
        iv = value_intervals(did.draws, float(pipeline), float(cost), study.value.gross_margin, iso.confidence)
        intervals = {"lift": iv.lift, "incremental_revenue": iv.incremental_revenue, "benefit": iv.benefit,
                     "roi_pct": iv.roi_pct}
    f = model.figures
    direct_revenue, direct_iv = _direct_revenue(panel, study, days)
    learners = _learner_rows(con, panel, Decimal(str(credit.credited)), cost,
                             Decimal(str(study.value.gross_margin))) if days == study.windows.primary_days else ()
    return WindowResult(
        window_days=days, trained_units=len(panel.treated.units), comparison_units=len(panel.comparison.units),
        did=did, naive=tuple(naive), credit=credit, opportunities_in_window=panel.post_opportunities,
        pipeline_value=pipeline, attributed_revenue=Decimal(str(round(panel.post_won_revenue, 2))),
        incremental_revenue=model.incremental_revenue, benefit=model.benefit, roi_pct=f.roi_pct,
        net_benefit=f.net_benefit, benefit_cost_ratio=f.benefit_cost_ratio, payback_months=f.payback_months,
        intervals=intervals, learners=learners,
        direct_incremental_revenue=direct_revenue, direct_interval=direct_iv,
    )


def _direct_revenue(panel: WindowPanel, study: Study, days: int) -> tuple[Decimal | None, tuple[float, float] | None]:
    """Incremental revenue by difference-in-differences of won revenue per rep-day."""
    if study.comparison.design == "none" or not panel.comparison_revenue.units:
        return None, None
    iso = study.isolation
    effect = did_rate(panel.treated_revenue, panel.comparison_revenue, replicates=iso.bootstrap_replicates,
                      confidence=iso.confidence, seed=iso.seed + 2)
    scale = (days - study.windows.ramp_days) * len(panel.treated_revenue.units)
    return (Decimal(str(round(effect.estimate * scale, 2))),
            (effect.ci_low * scale, effect.ci_high * scale))


def _learner_rows(con: BaseBackend, panel: WindowPanel, credited: Decimal, cost: Decimal,
                  margin: Decimal) -> tuple[LearnerRow, ...]:
    """The seed's per-learner spreadsheet for one window."""
    t = panel.treated
    n = len(t.units)
    if not n:
        return ()
    wanted = set(t.units)  # the user table is small: filter here rather than in a long IN list
    names = {r["user_id"]: (r["email"], r["name"])
             for r in con.table("crm_user").select("user_id", "email", "name").to_pyarrow().to_pylist()
             if r["user_id"] in wanted}
    anchors = dict(zip(panel.anchors["unit_id"].to_pylist(), panel.anchors["anchor"].to_pylist(), strict=True))
    share = (cost / n).quantize(Decimal("0.01"))
    rows = []
    for i, unit in enumerate(t.units):
        opps, pipeline, won = panel.treated_post.get(unit, (0, 0.0, 0.0))
        base = t.base_successes[i] / t.base_trials[i] if t.base_trials[i] else None
        post = t.post_successes[i] / t.post_trials[i] if t.post_trials[i] else None
        pipe = Decimal(str(round(pipeline, 2)))
        incremental = (credited * pipe).quantize(Decimal("0.01"))
        email, name = names.get(unit, (None, None))
        rows.append(LearnerRow(
            unit_id=unit, learner=email or unit, name=name, completion_date=anchors[unit].isoformat(),
            opportunities_in_window=opps, pipeline_value=pipe, won_revenue=Decimal(str(round(won, 2))),
            baseline_conversion=None if base is None else float(base),
            post_conversion=None if post is None else float(post),
            lift=None if base is None or post is None else float(post - base),
            incremental_revenue=incremental, cost=share,
            roi_pct=((incremental * margin - share) / share * 100).quantize(Decimal("0.1")) if share else None,
        ))
    return tuple(rows)


def evaluate(con: BaseBackend, study: Study) -> Evaluation:
    """Answer ``study`` from the warehouse ``con``.

    Raises
    ------
    StudyError
        The study cannot be answered from this warehouse (nobody completed its activities, no
        cost, a group without deals); the message says which setting or data to change.
    """
    require_tables(con, "crm_opportunity", "learning_record", "learner_identity", "cost_line")
    if study.population.unit != "rep":
        raise StudyError(f"study {study.name}: population.unit: only 'rep' can be evaluated in this version "
                         "(account-level designs for customer education are not built yet)")
    if study.comparison.holdout_file:
        raise StudyError(f"study {study.name}: comparison.holdout_file: not read in this version; "
                         "list the holdout CRM ids under comparison.holdout")
    scope = _scope(con, study)
    pt = study.costs.participant_time
    try:
        costs = cost_breakdown(
            con, programs=study.costs.programs or [study.program.name], activities=study.program.activities,
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
    days = sorted({study.windows.primary_days, *study.windows.sensitivity_days})
    panels = _panels(con, study, days, scope)
    results = tuple(_window(con, study, d, panels[d], costs.total) for d in days)
    primary = next(r for r in results if r.window_days == study.windows.primary_days)
    report = quality_report(con)
    warnings = list(report.warnings)
    if not primary.credit.is_credited:
        warnings.insert(0, f"the program's effect is not established: {primary.credit.reason}; "
                           "no incremental revenue is credited")
    trend = _trend(con, {r.unit_id for r in primary.learners}, scope)
    return Evaluation(study, primary, results, costs, dict(report.tables), tuple(warnings), trend)


def _trend(con: BaseBackend, trained: set[str], scope: list[str] | None) -> tuple[dict[str, Any], ...]:
    """Pooled win rate per month of creation, trained vs comparison reps."""
    frame = pl.from_arrow(monthly_panel(con).select("unit_id", "month", "closed", "won").to_pyarrow())
    assert isinstance(frame, pl.DataFrame)
    if scope is not None:
        frame = frame.filter(pl.col("unit_id").is_in(list(scope)))
    summed = (
        frame.with_columns(pl.when(pl.col("unit_id").is_in(list(trained))).then(pl.lit("trained"))
                           .otherwise(pl.lit("comparison")).alias("group"))
        .group_by("month", "group").agg(pl.col("closed").sum(), pl.col("won").sum())
        .sort("month", "group")
    )
    return tuple(
        {"month": r["month"].isoformat(), "group": r["group"], "closed": int(r["closed"]), "won": int(r["won"]),
         "win_rate": r["won"] / r["closed"] if r["closed"] else None}
        for r in summed.iter_rows(named=True)
    )
