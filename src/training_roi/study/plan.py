"""A study resolved once: the settings each stage takes, derived from the study file in one place.

A study file says things the way its user thinks of them (a baseline of 6 months, windows of
90/180/365 days with a 30-day ramp, a program running from March to June in Paris time, a rate of
$60 an hour). Each stage needs them in its own terms (days, whole months, a completion rule with
UTC bounds, decimal rates). :func:`plan_study` makes that translation once, so every stage of one
evaluation reads the same numbers — one cohort rule, one set of windows, one list of methods —
and no stage reads the study itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from training_roi.attribute.settings import Attribution
from training_roi.errors import StudyError
from training_roi.isolate import METHODS
from training_roi.measure import DAYS_PER_MONTH, CohortRule, LessonSet
from training_roi.measure.covariates import ATTRIBUTES, unknown_attributes
from training_roi.study.model import Insight, Rollout, Study
from training_roi.value import CostInputs, MonetisationRule

__all__ = ["IsolationPlan", "PopulationRule", "StudyPlan", "WindowPlan", "plan_study"]


@dataclass(frozen=True)
class WindowPlan:
    """The baseline and the attribution windows, in days and in months."""

    primary_days: int
    days: tuple[int, ...]
    """Every attribution window (the primary one among them), shortest first."""
    ramp_days: int
    baseline_days: int
    """The baseline in days: its months × the average month."""
    baseline_months: int
    baseline_at_start: bool
    """The baseline ends at the program's start for everyone (else at each unit's own anchor)."""

    @property
    def others(self) -> tuple[int, ...]:
        """The windows besides the primary one."""
        return tuple(d for d in self.days if d != self.primary_days)

    @property
    def ramp_months(self) -> int:
        """The ramp in whole months (months after the training month skipped before effects count)."""
        return round(self.ramp_days / DAYS_PER_MONTH)

    def post_months(self, days: int) -> int:
        """Whole months of a window after its ramp: what the monthly estimators count after training."""
        return max(1, round((days - self.ramp_days) / DAYS_PER_MONTH))

    def calendar_months(self, days: int) -> int:
        """Whole months a window spans from the training month, ramp included."""
        return max(1, round(days / DAYS_PER_MONTH))

    def benefit_months(self, days: int) -> Decimal:
        """Months of benefit a window credits (after its ramp), to two decimals: for payback."""
        return Decimal(str(round((days - self.ramp_days) / DAYS_PER_MONTH, 2)))


@dataclass(frozen=True)
class PopulationRule:
    """Who is in scope: units chosen by role, department, title or list."""

    unit: str
    roles: tuple[str, ...] = ()
    departments: tuple[str, ...] = ()
    titles: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    accounts: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """Accounts chosen by their fields: (field, values) pairs."""
    opportunity_types: tuple[str, ...] = ()
    """Only deals of these types count; all when empty."""


@dataclass(frozen=True)
class IsolationPlan:
    """How the effect is isolated: the comparison group, the methods to run, the one credited."""

    method: str
    """``did`` (the windowed difference-in-differences), ``all``, or one registered estimator."""
    methods: tuple[str, ...]
    """The registered estimators run side by side (none for ``did``)."""
    comparison: str
    """``untrained``, ``holdout`` or ``none``."""
    holdout: tuple[str, ...] | None
    """The holdout's CRM ids with ``comparison: holdout``."""
    replicates: int
    confidence: float
    seed: int
    covariates: tuple[str, ...] = ()
    """Unit attributes the covariate-aware designs condition on."""

    @property
    def randomised(self) -> bool:
        """Whether the comparison group is a holdout the study says was drawn at random."""
        return self.comparison == "holdout"


@dataclass(frozen=True)
class StudyPlan:
    """Everything an evaluation needs, resolved once from a :class:`~training_roi.study.Study`."""

    study: Study
    """The study as validated (its name, hash and settings go into every result)."""
    unit: str
    cohort: CohortRule
    population: PopulationRule
    windows: WindowPlan
    isolation: IsolationPlan
    kpis: tuple[str, ...]
    headline_kpi: str
    application_kpis: tuple[str, ...]
    min_relative_change: float
    gross_margin: float
    revenue: str
    """The revenue definition credited: ``booked``, ``eventual`` or ``seed``."""
    lift_scenarios: tuple[float, float] | None
    """The sensitivity table's pessimistic and optimistic effect of the headline KPI, when the study names them
    (``sensitivity.lift``); None: the ends of the estimated effect's interval."""
    costs: CostInputs
    attribution: Attribution
    insight: Insight
    monetisation: tuple[MonetisationRule, ...]
    intangibles: tuple[str, ...]
    rollout: Rollout | None

    @property
    def name(self) -> str:
        """The study's name."""
        return self.study.name

    @property
    def program(self) -> str:
        """The program's name (as in costs.csv)."""
        return self.study.program.name


def plan_study(study: Study, *, method: str | None = None) -> StudyPlan:
    """Resolve ``study`` into the settings of every stage.

    ``method`` overrides ``isolation.method`` (the command line's ``--method``); the study
    recorded in the plan then says so, and its hash follows.
    """
    if method is not None and method != study.isolation.method:
        study = study.model_copy(update={"isolation": study.isolation.model_copy(update={"method": method})})
    p, w, iso, pt = study.program, study.windows, study.isolation, study.costs.participant_time
    chosen = iso.method
    methods: tuple[str, ...] = () if chosen in ("did", "dose") else METHODS if chosen == "all" else (chosen,)
    comparison = study.comparison
    tenure = ("tenure",) if study.population.unit == "rep" else ()  # a grouping, not a covariate
    for key, names, extra in (("isolation.covariates", iso.covariates, ()),
                              ("insight.subgroups", study.insight.subgroups, tenure)):
        _known_attributes(study, key, [n for n in names if n not in extra], extra)
    if study.insight.lesson_map and study.population.unit != "rep":
        raise StudyError(f"study {study.name}: insight.lesson_map maps the lessons of reps (CRM users); a "
                         "customer-education study (population.unit: account) has its learners at accounts: set "
                         "insight.lesson_map to false")
    if study.insight.next_lesson is not None and study.population.unit != "rep":
        raise StudyError(f"study {study.name}: insight.next_lesson recommends lessons to reps (CRM users); a "
                         "customer-education study (population.unit: account) has its learners at accounts: remove "
                         "insight.next_lesson")
    if study.insight.churn and study.population.unit != "account":
        raise StudyError(f"study {study.name}: insight.churn forecasts which customer accounts churn at their renewal; "
                         "a study of reps (population.unit: rep) has no customers to score: set insight.churn to "
                         "false, or study a customer-education program with population.unit: account")
    return StudyPlan(
        study=study,
        unit=study.population.unit,
        cohort=CohortRule(activities=tuple(p.activities), completion=p.completion, min_score=p.min_score,
                          unit=study.population.unit, timezone=study.timezone, start=p.start, end=p.end,
                          lessons=LessonSet(tuple(p.activities), p.lesson_grouping, p.lesson_prefix)
                          if p.completion == "lessons" else None,
                          anchor=p.anchor, nth=p.nth_lesson),
        population=PopulationRule(unit=study.population.unit, roles=tuple(study.population.roles),
                                  departments=tuple(study.population.departments),
                                  titles=tuple(study.population.titles), include=tuple(study.population.include),
                                  exclude=tuple(study.population.exclude),
                                  accounts=tuple((k, tuple(v)) for k, v in sorted(study.population.accounts.items())),
                                  opportunity_types=tuple(study.population.opportunity_types)),
        windows=WindowPlan(primary_days=w.primary_days, days=tuple(sorted({w.primary_days, *w.sensitivity_days})),
                           ramp_days=w.ramp_days, baseline_days=round(study.baseline.months * DAYS_PER_MONTH),
                           baseline_months=study.baseline.months,
                           baseline_at_start=study.baseline.anchor == "program_start"),
        isolation=IsolationPlan(method=chosen, methods=methods, comparison=comparison.design,
                                holdout=tuple(comparison.holdout) if comparison.design == "holdout" else None,
                                replicates=iso.bootstrap_replicates, confidence=iso.confidence, seed=iso.seed,
                                covariates=tuple(iso.covariates)),
        kpis=tuple(study.kpis),
        headline_kpi=study.headline_kpi,
        application_kpis=tuple(study.application_kpis),
        min_relative_change=study.threshold.min_relative_change,
        gross_margin=study.value.gross_margin,
        revenue=study.value.revenue,
        lift_scenarios=study.sensitivity.lift,
        costs=CostInputs(
            programs=tuple(study.costs.programs or [p.name]), activities=tuple(p.activities),
            use_cost_lines=study.costs.use_cost_lines,
            minutes_per_learner=Decimal(str(pt.minutes_per_learner)) if pt.minutes_per_learner else None,
            time=pt.time,
            hourly_rate=Decimal(str(pt.hourly_rate)) if pt.hourly_rate is not None else None,
            hourly_rate_by_title={k: Decimal(str(v)) for k, v in pt.hourly_rate_by_role.items()} or None,
            shared_share=(Decimal(str(study.costs.share or 0)) if study.costs.shared_allocation == "share"
                          else Decimal(0)),
            employees_only=(study.population.unit == "account" and pt.hourly_rate is None
                            and not pt.hourly_rate_by_role),
            # No rate at all: the time is not costed, and every output says so.
            cost_time=pt.hourly_rate is not None or bool(pt.hourly_rate_by_role),
        ),
        attribution=study.attribution,
        insight=study.insight,
        monetisation=tuple(study.monetisation),
        intangibles=tuple(study.intangibles),
        rollout=study.rollout,
    )


def _known_attributes(study: Study, key: str, names: Sequence[str], extra: Sequence[str] = ()) -> None:
    """Refuse a study whose ``key`` names an attribute its unit does not have (``extra``: other names it may use)."""
    unknown = unknown_attributes(study.population.unit, names)
    if unknown:
        article = "an" if study.population.unit[0] in "aeiou" else "a"
        raise StudyError(f"study {study.name}: {key}: {', '.join(repr(c) for c in unknown)} is not an attribute of "
                         f"{article} {study.population.unit}: expected one of "
                         f"{', '.join([*ATTRIBUTES[study.population.unit], *extra])}")
