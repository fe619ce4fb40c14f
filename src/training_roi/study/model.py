"""The study: every assumption of an ROI report, written down once in a YAML file.

A report has two inputs, the warehouse and a study. The study names the program (which courses
count, what counts as done), who is measured and against whom, the baseline and attribution
windows, the KPIs, the conservative threshold under which a change is not credited, the margin,
the costs and how the effect is isolated. Same data + same study = same numbers, and
:attr:`Study.hash` identifies the study in every saved result. Example (a minimal study: every
other setting takes its default)::

    name: Sales Excellence 2024
    program:
      activities: ["https://lms.example.com/xapi/activities/course/sales-excellence"]

``training-roi init-study`` writes a commented starter from what a warehouse holds
(:mod:`training_roi.study.starter`).
"""

from __future__ import annotations

import hashlib
import json
import zoneinfo
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from training_roi.attribute.settings import Attribution
from training_roi.errors import StudyError
from training_roi.files import FileRefused, load_yaml, parse_yaml, read_named_file, skill_map_rows
from training_roi.measure.covariates import ATTRIBUTES
from training_roi.measure.sales import KPIS as KPI_SPECS
from training_roi.methods import METHOD_CHOICES
from training_roi.value.costs import CATEGORIES as COST_CATEGORIES
from training_roi.value.monetise import MonetisationRule

__all__ = [
    "KPIS",
    "METHOD_CHOICES",
    "Attribution",
    "Baseline",
    "Comparison",
    "Costs",
    "Forecast",
    "Insight",
    "Isolation",
    "ParticipantTime",
    "Population",
    "Program",
    "Rollout",
    "Sensitivity",
    "Study",
    "StudyError",
    "Threshold",
    "Value",
    "Windows",
    "load_study",
    "study_from_text",
]

Kpi = Literal["win_rate", "avg_won_deal_size", "sales_cycle_days", "pipeline_created", "revenue_per_rep"]
#: The KPIs a study can measure, in the order reports show them.
KPIS: tuple[Kpi, ...] = get_args(Kpi)

_PositiveDays = Annotated[int, Field(gt=0)]
_Rate = Annotated[float, Field(ge=0)]


class _Strict(BaseModel):
    # Frozen so a study cannot drift after its hash was taken; extra="forbid" so a typo in a key
    # is an error rather than a silently ignored assumption.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Program(_Strict):
    """The training program: which LMS activities count and what counts as having done them."""

    name: str = Field(default="", description="program name; defaults to the study's name")
    activities: list[str] = Field(
        min_length=1, description="course/activity ids or IRIs that count; with completion: lessons, lessons or "
                                  "courses whose lessons count")
    completion: Literal["completed", "passed", "min_score", "lessons", "CompletedOrPassed", "Completed", "Passed",
                        "CompletedAndPassed", "NotApplicable"] = Field(
        default="completed", description="what makes a learner trained: a cmi5 moveOn criterion on the program's "
                                         "activities (CompletedOrPassed, Completed, Passed, CompletedAndPassed, "
                                         "NotApplicable; completed is CompletedOrPassed, passed is Passed), min_score, "
                                         "or, for micro-lessons, taking its lessons (see anchor)"
    )
    lesson_grouping: str | None = Field(default=None, description="with completion: lessons, records grouped under "
                                                                   "this IRI count as lessons too")
    lesson_prefix: str | None = Field(default=None, description="with completion: lessons, activities whose id "
                                                                 "starts with this count as lessons too")
    anchor: Literal["first", "last", "nth"] = Field(
        default="first", description="with completion: lessons, a learner is trained from their first lesson, their "
                                     "last, or their nth_lesson-th")
    nth_lesson: int = Field(default=1, ge=1, description="with anchor: nth, the lesson that marks a learner trained")
    min_score: float | None = Field(
        default=None, ge=0, le=100, validate_default=True, description="score 0–100, for completion: min_score"
    )
    start: date | None = Field(default=None, description="first day of the program")
    end: date | None = Field(default=None, description="last day of the program")

    @field_validator("activities")
    @classmethod
    def _no_blank_activity(cls, v: list[str]) -> list[str]:
        if any(not a.strip() for a in v):
            raise ValueError("activity ids must not be blank")
        return v

    @field_validator("min_score")
    @classmethod
    def _score_when_chosen(cls, v: float | None, info: ValidationInfo) -> float | None:
        if info.data.get("completion") == "min_score" and v is None:
            raise ValueError("is required when completion is min_score (a score from 0 to 100)")
        return v

    @model_validator(mode="after")
    def _lesson_settings_need_lessons(self) -> Program:
        lesson_only = {"lesson_grouping": self.lesson_grouping, "lesson_prefix": self.lesson_prefix,
                       "anchor": self.anchor != "first", "nth_lesson": self.nth_lesson != 1}
        given = [k for k, v in lesson_only.items() if v]
        if given and self.completion != "lessons":
            raise ValueError(f"{', '.join(given)} apply to a micro-lesson program: set completion: lessons")
        if self.nth_lesson != 1 and self.anchor != "nth":
            raise ValueError(f"nth_lesson applies with anchor: nth, got anchor: {self.anchor}")
        return self

    @field_validator("end")
    @classmethod
    def _end_after_start(cls, v: date | None, info: ValidationInfo) -> date | None:
        start = info.data.get("start")
        if v is not None and start is not None and v < start:
            raise ValueError(f"must be on or after program.start ({start}), got {v}")
        return v


AccountField = Literal["type", "industry", "billing_country", "billing_state", "owner_id"]
"""The account fields a customer-education population can be chosen by."""


class Population(_Strict):
    """Who is in scope. Empty filters mean everyone; ``exclude`` wins over every filter."""

    unit: Literal["rep", "account"] = "rep"
    roles: list[str] = Field(default_factory=list, description="CRM role ids")
    departments: list[str] = Field(default_factory=list)
    titles: list[str] = Field(default_factory=list)
    include: list[str] = Field(default_factory=list, description="CRM ids always in scope")
    exclude: list[str] = Field(default_factory=list, description="CRM ids never in scope")
    accounts: dict[AccountField, list[str]] = Field(
        default_factory=dict, description="with unit: account, the accounts whose fields hold these values, e.g. "
                                          "{type: [Customer - Direct, Customer - Channel], industry: [Technology]}")
    opportunity_types: list[str] = Field(
        default_factory=list, description="only deals of these types count (Opportunity.Type), e.g. [Renewal, Upsell]")

    @model_validator(mode="after")
    def _filters_fit_the_unit(self) -> Population:
        if self.unit == "account" and (self.roles or self.departments or self.titles):
            raise ValueError("roles, departments and titles choose reps; with unit: account choose accounts by "
                             "accounts (their fields) or list them under include/exclude")
        if self.unit == "rep" and self.accounts:
            raise ValueError("accounts chooses accounts (unit: account); reps are chosen by roles, departments, "
                             "titles or include/exclude")
        if any(not values for values in self.accounts.values()):
            raise ValueError("each field under accounts needs at least one value")
        return self


class Comparison(_Strict):
    """Against whom the trained are compared."""

    design: Literal["holdout", "untrained", "none"] = "untrained"
    holdout_file: str | None = Field(
        default=None, description="file with one CRM id per line (a CSV's first column), relative to the study"
    )
    holdout: list[str] = Field(
        default_factory=list, validate_default=True, description="CRM ids of the holdout group"
    )

    @model_validator(mode="before")
    @classmethod
    def _read_holdout_file(cls, data: Any, info: ValidationInfo) -> Any:
        # The file's ids join the list here, so the study's hash covers who was held out, not
        # only the file's name.
        if not isinstance(data, dict) or not data.get("holdout_file"):
            return data
        context = info.context or {}
        if context.get("no_files"):
            raise ValueError("holdout_file: a study sent to the server has no folder to read files from, so the "
                             "server reads no file a study names; list the CRM ids under comparison.holdout instead")
        base = Path(context.get("base", "."))
        path = base / str(data["holdout_file"])
        try:
            text = read_named_file(base, str(data["holdout_file"]), allow_outside=bool(context.get("allow_outside")))
        except FileRefused as exc:
            raise ValueError(f"holdout_file: {exc}") from exc
        except OSError as exc:
            raise ValueError(f"holdout_file: cannot read {path} ({exc})") from exc
        ids = []
        for line in text.splitlines():
            cell = line.split("#", 1)[0].split(",")[0].strip().strip('"').strip()
            if cell and cell.lower() not in ("id", "user_id", "crm_id", "ownerid"):
                ids.append(cell)
        if not ids:
            raise ValueError(f"holdout_file: {path} lists no CRM ids (one per line expected)")
        return {**data, "holdout": sorted(set(data.get("holdout") or []) | set(ids))}

    @field_validator("holdout")
    @classmethod
    def _holdout_given(cls, v: list[str], info: ValidationInfo) -> list[str]:
        if info.data.get("design") == "holdout" and not v and not info.data.get("holdout_file"):
            raise ValueError("design holdout needs a holdout list of CRM ids or a holdout_file, got neither")
        return v


class Baseline(_Strict):
    """The period before training that outcomes are compared with."""

    months: int = Field(default=6, gt=0)
    anchor: Literal["program_start", "completion"] = "completion"


class Windows(_Strict):
    """Attribution windows: how long after completion outcomes are credited to training."""

    primary_days: int = Field(default=180, gt=0)
    sensitivity_days: list[_PositiveDays] = Field(default_factory=lambda: [90, 180, 365], validate_default=True)
    ramp_days: int = Field(default=0, ge=0, validate_default=True)

    @field_validator("sensitivity_days")
    @classmethod
    def _with_primary(cls, v: list[int], info: ValidationInfo) -> list[int]:
        primary = info.data.get("primary_days")
        # The primary window is always among the sensitivity windows, so the headline figure is
        # one row of the sensitivity table rather than a number the table cannot reproduce.
        return sorted(set(v) | ({primary} if isinstance(primary, int) else set()))

    @field_validator("ramp_days")
    @classmethod
    def _ramp_inside_primary(cls, v: int, info: ValidationInfo) -> int:
        primary = info.data.get("primary_days")
        if isinstance(primary, int) and v >= primary:
            raise ValueError(f"must be less than windows.primary_days ({primary}), got {v}")
        return v


class Threshold(_Strict):
    """The conservative threshold: a relative change under it is not credited to training."""

    min_relative_change: float = Field(default=0.05, ge=0, lt=1)


class Value(_Strict):
    """How revenue becomes value: which revenue is credited, and the share of it that is profit."""

    gross_margin: float = Field(default=1.0, gt=0, le=1, description="share of revenue that is value; 1.0 = ROI on "
                                                                     "revenue, not profit")
    revenue: Literal["booked", "eventual", "seed"] = Field(
        default="booked",
        description="booked: won revenue of deals created and closed inside the window; eventual: revenue of deals "
                    "created inside it, open ones at their expected value; seed: credited lift × pipeline (the seed "
                    "model)",
    )
    hurdle_rate: float | None = Field(
        default=None, ge=-1, le=10,
        description="the ROI a program must beat, as a fraction (0.1 = an ROI of 10%, 1 = 100%): P(ROI > it) is "
                    "reported beside P(ROI > 0)",
    )


_Finite = Annotated[float, Field(allow_inf_nan=False)]


class Sensitivity(_Strict):
    """The sensitivity table's scenarios, where the study names them rather than taking them from the data."""

    lift: tuple[_Finite, _Finite] | None = Field(
        default=None,
        description="[pessimistic, optimistic] effect of the headline KPI in the sensitivity table's lift rows, in "
                    "the KPI's own units (a win-rate lift as a fraction: [0.01, 0.03] = 1 and 3 points); null = the "
                    "ends of the estimated effect's confidence interval",
    )

    @field_validator("lift", mode="before")
    @classmethod
    def _two_values(cls, v: Any) -> Any:
        if isinstance(v, list | tuple) and len(v) != 2:
            raise ValueError(f"needs two values, [pessimistic, optimistic], got {list(v)}")
        return v

    @field_validator("lift")
    @classmethod
    def _ordered(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is not None and v[0] > v[1]:
            raise ValueError(f"[pessimistic, optimistic] needs pessimistic ≤ optimistic, got [{v[0]}, {v[1]}]")
        return v


class ParticipantTime(_Strict):
    """What the learners' own time costs."""

    hourly_rate: float | None = Field(default=None, ge=0, description="one rate for everyone")
    hourly_rate_by_role: dict[str, _Rate] = Field(
        default_factory=dict, description="rate per role or title; wins over hourly_rate"
    )
    minutes_per_learner: float | None = Field(
        default=None, gt=0, description="minutes per learner: for learners with no recorded time, or for everyone"
    )
    time: Literal["recorded", "fixed"] = Field(
        default="recorded",
        description="recorded: each learner's time counted once (sessions, else the completion's total, else the "
                    "completion report), minutes_per_learner for those with none; fixed: minutes_per_learner for "
                    "everyone (the default when minutes_per_learner is given)",
    )

    @model_validator(mode="before")
    @classmethod
    def _fixed_when_minutes_alone(cls, data: Any) -> Any:
        if isinstance(data, dict) and "time" not in data and data.get("minutes_per_learner") is not None:
            return {**data, "time": "fixed"}
        return data

    @model_validator(mode="after")
    def _minutes_for_fixed(self) -> ParticipantTime:
        if self.time == "fixed" and self.minutes_per_learner is None:
            raise ValueError("time: fixed needs minutes_per_learner (the minutes every learner is costed at)")
        return self


class Costs(_Strict):
    """Which costs the ROI divides by."""

    use_cost_lines: bool = True
    programs: list[str] = Field(default_factory=list, description="program names in costs.csv; default the program")
    shared_allocation: Literal["none", "share"] = "none"
    share: float | None = Field(default=None, ge=0, le=1, validate_default=True)
    participant_time: ParticipantTime = ParticipantTime()
    uncertainty: dict[str, tuple[float, float]] = Field(
        default_factory=dict,
        description="cost categories whose amount is uncertain: [at least, at most] in the study's currency, each "
                    "containing the amount as loaded; P(ROI > 0) then draws each from a triangular law with its "
                    "mode at that amount",
    )

    @field_validator("uncertainty")
    @classmethod
    def _ranges(cls, v: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        for name, (low, high) in v.items():
            if name not in COST_CATEGORIES:
                raise ValueError(f"{name!r} is not a cost category (categories: {', '.join(COST_CATEGORIES)})")
            if not 0 <= low <= high:
                raise ValueError(f"{name}: [at least, at most] needs 0 ≤ at least ≤ at most, got [{low}, {high}]")
        return v

    @field_validator("share")
    @classmethod
    def _share_when_chosen(cls, v: float | None, info: ValidationInfo) -> float | None:
        if info.data.get("shared_allocation") == "share" and v is None:
            raise ValueError("is required when shared_allocation is share (a fraction from 0 to 1)")
        return v


class Isolation(_Strict):
    """How the program's effect is isolated and how sure we are of it."""

    method: str = Field(
        default="did",
        description="did: difference-in-differences in each learner's windows; all: every applicable "
                    "estimator side by side, the credited value following the recommended design; or one "
                    "named estimator, which then produces the credited value",
    )
    bootstrap_replicates: int = Field(default=2000, ge=100)
    confidence: float = Field(default=0.95, ge=0.5, le=0.999)
    seed: int = Field(default=7, ge=0)
    covariates: list[str] = Field(
        default_factory=list,
        description="unit attributes the covariate-aware designs (doubly robust DiD, matching) compare like with "
                    f"like on: for reps {', '.join(ATTRIBUTES['rep'])}; "
                    f"for accounts {', '.join(ATTRIBUTES['account'])} "
                    "(as population.accounts names them). Name the ones on which trained and untrained units differ "
                    "and whose markets may move differently",
    )

    @field_validator("method")
    @classmethod
    def _known_method(cls, v: str) -> str:
        if v not in METHOD_CHOICES:
            expected = ", ".join(repr(m) for m in METHOD_CHOICES[:-1]) + f" or {METHOD_CHOICES[-1]!r}"
            raise ValueError(f"must be one of {expected}, got {v!r}")
        return v


def _catalogued(v: list[str]) -> list[str]:
    from training_roi.measure.catalogue import CATALOGUE

    unknown = [k for k in v if k not in CATALOGUE]
    if unknown:
        raise ValueError(f"not in the KPI catalogue: {', '.join(unknown)} (see `training-roi kpis`)")
    return v


CatalogueKpis = Annotated[list[str], AfterValidator(_catalogued)]
"""KPI names of the catalogue (:data:`training_roi.measure.CATALOGUE`)."""


class Rollout(_Strict):
    """A CRM roll-out: when each team went live, which KPIs it should move, what a conversion is worth."""

    go_live: date | None = None
    """The org-wide go-live date (when every team went live together)."""
    go_live_by_team: dict[str, date] = Field(default_factory=dict)
    """A staged go-live: each team's manager (CRM user id) → the day the team went live."""
    kpis: CatalogueKpis = Field(default_factory=lambda: ["lead_conversion", "lead_response_hours",
                                                         "task_completion_rate", "win_rate"], min_length=1)
    method: Literal["auto", "staggered", "trend"] = "auto"
    """auto: the teams that went live later when the go-live was staged, else the trend line."""
    post_months: int = Field(default=6, ge=1, le=24)
    value_per_conversion: float | None = Field(default=None, gt=0)
    """Revenue a converted lead brings on average: turns the conversion lift into money."""

    @model_validator(mode="after")
    def _one_date(self) -> Rollout:
        if (self.go_live is None) == (not self.go_live_by_team):
            raise ValueError("give either go_live (one date for the whole org) or go_live_by_team, not both or "
                             "neither")
        return self


class Forecast(_Strict):
    """The month-by-month forecast after training and the scale-up to the units not yet trained."""

    enabled: bool = True
    horizon_months: int = Field(default=18, ge=1, le=60, description="months after training forecast (6, 12 and 18 "
                                                                     "are summarised)")
    hold_months: int = Field(default=6, ge=1, le=12, description="later months hold the precision-weighted average "
                                                                 "effect of this many last measured months")
    half_life_months: float | None = Field(default=None, gt=0, description="none: the effect holds after the last "
                                                                           "measured month; else it halves every "
                                                                           "this many months")
    fit_through: date | None = Field(default=None, description="deals created after this day are left out of the "
                                                               "forecast's fit (to test it against later months)")
    scale_up_costs: list[str] = Field(
        default_factory=lambda: ["participant_time", "licensing", "travel"],
        description="cost categories that grow with each learner: training one more unit costs their amount per "
                    "trained unit; the others are spent once")

    @field_validator("scale_up_costs")
    @classmethod
    def _categories(cls, v: list[str]) -> list[str]:
        unknown = [c for c in v if c not in COST_CATEGORIES]
        if unknown:
            raise ValueError(f"{', '.join(map(repr, unknown))} not a cost category (categories: "
                             f"{', '.join(COST_CATEGORIES)})")
        return v


class NextLesson(_Strict):
    """Each rep's knowledge gaps from an assessment's answers, and the lessons each should take next."""

    skills_file: str | None = Field(
        default=None, description="CSV of activity_id,skill relative to the study: every assessment item with the "
                                  "skill it tests and every lesson with the skill it teaches")
    skills: dict[str, str] = Field(default_factory=dict, description="activity id → skill (the file's rows join "
                                                                     "these)")
    per_unit: int = Field(default=3, ge=1, le=20, description="recommendations per rep")

    @model_validator(mode="before")
    @classmethod
    def _read_skills_file(cls, data: Any, info: ValidationInfo) -> Any:
        # The file's rows join the map here, so the study's hash covers the skills, not only the file's name.
        if not isinstance(data, dict) or not data.get("skills_file"):
            return data
        context = info.context or {}
        if context.get("no_files"):
            raise ValueError("skills_file: a study sent to the server has no folder to read files from; list the "
                             "activity ids and their skills under insight.next_lesson.skills instead")
        base = Path(context.get("base", "."))
        name = str(data["skills_file"])
        try:
            text = read_named_file(base, name, allow_outside=bool(context.get("allow_outside")))
        except FileRefused as exc:
            raise ValueError(f"skills_file: {exc}") from exc
        except OSError as exc:
            raise ValueError(f"skills_file: cannot read {base / name} ({exc})") from exc
        return {**data, "skills": {**skill_map_rows(text, name), **(data.get("skills") or {})}}

    @model_validator(mode="after")
    def _some_skills(self) -> NextLesson:
        if not self.skills:
            raise ValueError("next_lesson needs a skill map: skills_file (a CSV of activity_id,skill) or skills")
        return self


class Insight(_Strict):
    """For whom the program works and which lessons matter: effects by subgroup, where to train next, the lesson map."""

    subgroups: list[str] = Field(
        default_factory=list,
        description="unit attributes to break the effect down by (for reps "
                    f"{', '.join(ATTRIBUTES['rep'])} or tenure, years from hire to training in bands; for accounts "
                    f"{', '.join(ATTRIBUTES['account'])}): each value's "
                    "effect on the trained and on the not yet trained, and the roll-out table; empty = off",
    )
    baseline_thirds: bool = Field(
        default=True, description="with subgroups: also break the effect down by thirds of each unit's earlier "
                                  "record of the headline KPI")
    learner: Literal["linear", "boosting"] = Field(
        default="linear", description="the doubly robust learner's models: linear (ridge and logistic regressions) "
                                      "or boosting (gradient-boosted trees, for many units and non-linear patterns)")
    lesson_map: bool = Field(
        default=False, description="which of the program's lessons are associated with a larger change in the "
                                   "headline KPI than the average lesson, at the false-discovery rate fdr")
    fdr: float = Field(default=0.1, gt=0, le=0.5, description="the lesson map's false-discovery rate: among the "
                                                              "lessons flagged, the share expected to be flukes")
    next_lesson: NextLesson | None = Field(
        default=None, description="each rep's knowledge gaps from the assessment items' answers, and the lessons "
                                  "with the largest expected change in the headline KPI for that rep")
    churn: bool = Field(
        default=False, description="customer-side risk (account studies): each account's probability of churning "
                                   "at its open renewal, calibrated and checked out of time against a logistic "
                                   "baseline, with the features that drive it; trained against untrained accounts' "
                                   "churn, an association")


class Study(_Strict):
    """A whole study: every assumption of the report.

    Defaults that depend on other settings are resolved on validation (``program.name`` from
    ``name``, ``costs.programs`` from ``program.name``, ``headline_kpi`` from ``kpis``), so the
    validated model states everything the numbers depend on, and :attr:`hash` covers it.
    """

    name: str = Field(min_length=1)
    description: str = ""
    timezone: str = "UTC"
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    locale: str = Field(default="en_US", description="how figures are written (a CLDR locale: en_US, en_GB, de_DE, "
                                                     "fr_FR, …): grouping, decimal mark, where the currency goes")
    program: Program
    population: Population = Population()
    comparison: Comparison = Comparison()
    baseline: Baseline = Baseline()
    windows: Windows = Windows()
    kpis: list[Kpi] = Field(default_factory=lambda: list(KPIS), min_length=1)
    headline_kpi: Kpi = Field(default="win_rate", validate_default=True)
    threshold: Threshold = Threshold()
    value: Value = Value()
    costs: Costs = Costs()
    sensitivity: Sensitivity = Sensitivity()
    """Scenarios of the sensitivity table that the study names (by default they come from the estimate's interval)."""
    isolation: Isolation = Isolation()
    forecast: Forecast = Forecast()
    attribution: Attribution = Attribution()
    insight: Insight = Insight()
    """For whom the program works (off unless ``insight.subgroups`` names attributes)."""
    monetisation: list[MonetisationRule] = Field(default_factory=list)
    """Benefits beyond revenue (errors, penalties, turnover, time saved), each by a declared rule."""
    intangibles: list[str] = Field(default_factory=list)
    """Benefits the study names but does not turn into money (Phillips level 5 lists them)."""
    rollout: Rollout | None = None
    """A CRM roll-out study (its program is the CRM implementation); None for a training program."""
    application_kpis: CatalogueKpis = Field(
        default_factory=lambda: ["activity_volume", "task_completion_rate", "data_completeness"])
    """CRM behaviour KPIs of the catalogue compared before and after training (Phillips level 3)."""

    @model_validator(mode="before")
    @classmethod
    def _resolve_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        program = data.get("program")
        if isinstance(program, dict) and not program.get("name") and isinstance(data.get("name"), str):
            program = data["program"] = {**program, "name": data["name"]}
        costs = data.get("costs", {})
        named = isinstance(program, dict) and isinstance(program.get("name"), str) and program["name"]
        if named and isinstance(costs, dict) and not costs.get("programs"):
            data["costs"] = {**costs, "programs": [program["name"]]}
        kpis = data.get("kpis")
        if "headline_kpi" not in data and isinstance(kpis, list) and kpis and "win_rate" not in kpis:
            money = [k for k in kpis if k != "sales_cycle_days"]
            data["headline_kpi"] = money[0] if money else kpis[0]
        return data

    @field_validator("locale")
    @classmethod
    def _cldr(cls, v: str) -> str:
        from babel import Locale, UnknownLocaleError

        try:
            Locale.parse(v)
        except (UnknownLocaleError, ValueError, TypeError) as exc:
            raise ValueError(f"must be a locale such as 'en_US', 'en_GB' or 'de_DE', got {v!r}") from exc
        return v

    @field_validator("timezone")
    @classmethod
    def _iana(cls, v: str) -> str:
        try:
            zoneinfo.ZoneInfo(v)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError) as exc:  # "Europe" is a folder of zones
            raise ValueError(f"must be an IANA time zone name such as 'Europe/Paris' or 'UTC', got {v!r}") from exc
        return v

    @field_validator("currency", mode="before")
    @classmethod
    def _upper(cls, v: Any) -> Any:
        return v.strip().upper() if isinstance(v, str) else v

    @field_validator("headline_kpi")
    @classmethod
    def _headline_measured(cls, v: str, info: ValidationInfo) -> str:
        kpis = info.data.get("kpis")
        if kpis is not None and v not in kpis:
            raise ValueError(f"must be one of the study's kpis ({', '.join(kpis)}), got {v!r}")
        if v == "sales_cycle_days":
            raise ValueError("sales_cycle_days cannot be turned into revenue; keep it under kpis and lead with "
                             "win_rate, avg_won_deal_size, pipeline_created or revenue_per_rep")
        return v

    @field_validator("sensitivity")
    @classmethod
    def _lift_in_the_kpis_units(cls, v: Sensitivity, info: ValidationInfo) -> Sensitivity:
        # A win-rate lift written in points ([1, 3] for 1 and 3 points) would value 100 times the pipeline.
        kpi, lift = info.data.get("headline_kpi"), v.lift
        if lift is not None and kpi in KPI_SPECS and KPI_SPECS[kpi].unit == "rate" and not all(-1 <= x <= 1
                                                                                               for x in lift):
            raise ValueError(f"lift [{lift[0]}, {lift[1]}]: a change in {kpi} is a fraction from −1 to 1 "
                             "(0.01 = 1 point)")
        return v

    @model_validator(mode="after")
    def _lessons_are_reps(self) -> Study:
        if self.program.completion == "lessons" and self.population.unit != "rep":
            raise ValueError("program.completion: lessons measures reps' lessons; a customer-education study "
                             "(population.unit: account) is trained by completing its courses (completion: completed)")
        return self

    @property
    def hash(self) -> str:
        """First 16 hex characters of the SHA-256 of the study's canonical JSON.

        Canonical means validated (defaults filled in) and serialised with sorted keys, so the
        hash does not depend on key order or on whether a default was written out.
        """
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------
# Loading


def load_study(path: Path | str, *, allow_outside_files: bool = False) -> Study:
    """Load and validate a study file.

    Parameters
    ----------
    path
        The study's YAML file.
    allow_outside_files
        Read files the study names (``holdout_file``) from anywhere; by default only from the
        study's folder and below, so a study from someone else cannot make the product read
        (and copy into its results) a file elsewhere on the machine.

    Raises
    ------
    StudyError
        The file is missing, is not YAML, is not a mapping, or breaks the study's rules. One error
        lists every problem, each with its dotted key path (``windows.primary_days``) and what
        was expected.

    Examples
    --------
    >>> study = load_study("study.yaml")  # doctest: +SKIP
    >>> study.windows.primary_days, study.hash  # doctest: +SKIP
    (180, '3f0c9b1e2a7d4c55')
    """
    p = Path(path)
    if not p.exists():
        raise StudyError(f"study {p}: no such file")
    data = _parsed(lambda: load_yaml(p), str(p))
    return _validated(data, str(p), {"base": p.parent, "allow_outside": allow_outside_files})


def study_from_text(text: str | bytes, *, source: str = "study.yaml") -> Study:
    """Validate a study sent as text (to the server) with the rules and messages of :func:`load_study`.

    ``source`` names the study in messages where a file's path would be, so the text of a file
    ``study.yaml`` gets the very message ``training-roi report study.yaml`` prints. A study sent
    as text has no folder, so it may name no file (``holdout_file``): the server would otherwise
    read files of its own machine into a result.

    Raises
    ------
    StudyError
        The text is not UTF-8 or not YAML, is too large, is not a mapping, or breaks the study's rules.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise StudyError(f"study {source}: not UTF-8 text ({exc})") from exc
    body = text
    data = _parsed(lambda: parse_yaml(body, source), source)
    return _validated(data, source, {"no_files": True})


def _parsed(read: Callable[[], Any], label: str) -> Any:
    """The YAML ``read`` returns, its failures in the words of a study's user."""
    try:
        return read()
    except FileRefused as exc:
        raise StudyError(f"study {exc}") from exc
    except yaml.YAMLError as exc:
        raise StudyError(f"study {label}: not valid YAML ({exc})") from exc
    except UnicodeDecodeError as exc:
        raise StudyError(f"study {label}: not UTF-8 text ({exc})") from exc
    except OSError as exc:
        raise StudyError(f"study {label}: cannot be read ({exc})") from exc


def _validated(data: Any, label: str, context: dict[str, Any]) -> Study:
    """A study's settings validated, every problem listed with its key path in one :class:`StudyError`."""
    if not isinstance(data, dict):
        raise StudyError(f"study {label}: expected a YAML mapping of settings at the top level")
    try:
        return Study.model_validate(data, context=context)
    except ValidationError as exc:
        problems = [(_key_path(err["loc"]), _describe(err)) for err in exc.errors()]
        text = "; ".join(f"{key}: {msg}" for key, msg in problems)
        raise StudyError(f"study {label}: {text}", problems) from exc


def _key_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _settings_at(loc: tuple[int | str, ...]) -> list[str]:
    """The settings allowed where ``loc`` points, to tell a user what they may have meant."""
    model: type[BaseModel] = Study
    for part in loc:
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


def _describe(err: Any) -> str:
    """A pydantic error in the words of a study's user: what was expected, what was found."""
    kind, ctx, got = err["type"], err.get("ctx", {}), err.get("input")
    if kind == "extra_forbidden":
        allowed = _settings_at(tuple(err["loc"][:-1]))
        return "is not a study setting" + (f" (settings here: {', '.join(allowed)})" if allowed else "")
    if kind == "missing":
        return "is required"
    bounds = {
        "greater_than": ("greater than", "gt"),
        "greater_than_equal": ("at least", "ge"),
        "less_than": ("less than", "lt"),
        "less_than_equal": ("at most", "le"),
    }
    if kind in bounds:
        words, key = bounds[kind]
        return f"must be {words} {ctx[key]}, got {got!r}"
    if kind == "too_short":
        size = len(got) if isinstance(got, list | str) else got
        return f"must not be empty: list at least {ctx['min_length']}, got {size}"
    if kind == "literal_error":
        return f"must be one of {ctx['expected']}, got {got!r}"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    return f"{err['msg'][:1].lower()}{err['msg'][1:]}, got {got!r}"
