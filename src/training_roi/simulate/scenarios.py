"""The scenarios: who is trained, when, and what training does; and :data:`SCENARIOS`, their registry.

The sales scenarios (selection, randomised, null, staggered, turnover, long_cycles, deal_size,
covariate_trends, poor_overlap, covariate_null) are a :class:`_Scenario` each; ``turnover`` adds reps
joining and leaving (:class:`_Turnover`), ``long_cycles`` a longer median sales cycle, and the three
covariate worlds regional markets that move apart with enrolment that follows the region
(:class:`_Markets`).
Customer education, micro-lessons and the CRM go-live have parameters of their own
(:class:`_CustomerScenario`, :class:`_DoseScenario`, :class:`_CrmScenario`); the last two also
carry a :class:`_Scenario` with no course effect (``_DOSE_BASE``, ``_CRM_BASE``) for the sales
model's shared code. truth.json records these numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from training_roi._format import percent


@dataclass(frozen=True)
class _Turnover:
    """Reps hired and leaving during the period, and how new reps ramp up.

    A leaver creates no deal in their last days, and their deals still open on their last day are
    closed lost that day (:mod:`training_roi.simulate.turnover`). The shares add to the
    organisation's own few (8 % of reps hired in the first 60 % of the period, 5 % leaving in its
    second half), drawn from a stream of their own so that the rest of the org stays the seed's.
    """

    hire_share: float  # of the reps not yet hired mid-period, the share hired during the period
    leave_share: float  # share of all reps who leave during the period
    hire_span: float  # hires fall on days [1, hire_span × period)
    leave_from: float  # leavers leave on days [leave_from × period, period − 1)
    min_tenure_days: int  # a rep hired in the period stays at least this long before leaving
    ramp_days: int  # a new rep's deal creation grows linearly from 0 at hire to full after this many days
    ramp_win_logit: float  # log-odds of winning of a deal created on the hire day, relative to a tenured rep
    ramp_win_days: int  # … fading linearly to 0 over this many days of tenure
    train_after_hire_days: int  # a rep completes training at the earliest this many days after hire
    train_before_leave_days: int  # … and at the latest this many days before leaving


_TURNOVER = _Turnover(
    hire_share=0.10, leave_share=0.15, hire_span=0.85, leave_from=0.1, min_tenure_days=90, ramp_days=90,
    ramp_win_logit=-0.5, ramp_win_days=180, train_after_hire_days=21, train_before_leave_days=14,
)


@dataclass(frozen=True)
class _Markets:
    """Regional markets that move apart over the period, and enrolment that follows the region.

    A rep's region is an attribute the CRM export carries: ``UserRoleId`` (every rep of a region
    has the role "Sales Rep - <region>"; the warehouse's ``crm_user.role_id``) and ``Region__c``.
    The markets of the ``growth`` regions add ``growth_trend`` to the untreated log-odds of winning
    per year from the period's start, the others ``other_trend`` (both on top of the model's common
    trend). An eligible rep enrols with a probability set by their region alone, at random within
    it, and completes at a uniformly random moment of the roll-out window, whatever their skill.

    Why: trained reps then come mostly from the growth regions, whose win rates rise anyway, so a
    difference-in-differences without covariates credits the markets' divergence to training;
    within a region trained and untrained reps are alike, so trends are parallel given the region
    and a design that conditions on it recovers the effect.
    """

    growth: tuple[str, ...]  # regions whose market grows (names of the org's regions)
    growth_trend: float  # extra log-odds of winning per year in the growth regions, from the period's start
    other_trend: float  # … in the other regions
    enrol_growth: float  # probability that an eligible rep of a growth region enrols
    enrol_other: float  # … of another region


@dataclass(frozen=True)
class _Scenario:
    """The parameters that make one scenario: who is trained, when, and what training does."""

    description: str
    assignment: str  # "self_select", "random_waves", "monthly_waves" or "random_employed"
    enrol_share: float  # share of eligible reps enrolled
    selection_skill: float  # logit slope of enrolment on skill (self_select, monthly_waves)
    timing_skill: float  # how much earlier skilled reps complete (self_select)
    win_logit: float  # effect on the log-odds of winning
    deal_size: float  # relative effect on amount
    cycle: float  # relative reduction of the sales cycle
    ramp_days: int  # 0: full effect at once; else the effect grows linearly over this many days
    rollout: tuple[float, float]  # rollout window as fractions of the period
    waves: int  # number of assignment waves (random_waves)
    cycle_median: float | None = None  # median sales cycle of a New Business deal in days (None: the model's)
    turnover: _Turnover | None = None  # reps joining and leaving during the period beyond the model's few
    markets: _Markets | None = None  # regional markets apart and enrolment by region (assignment "by_region")
    win_logit_by_region: tuple[float, ...] | None = None  # per region of _REGIONS, replaces win_logit (heterogeneous)
    win_logit_by_tenure: tuple[float, ...] | None = None  # per tenure band, replaces win_logit (heterogeneous_tenure)


_SCENARIO_PARAMS: dict[str, _Scenario] = {
    "selection": _Scenario(
        description=(
            "reps self-select into training by skill, with a market trend and Q4 seasonality: "
            "naive comparisons overstate a modest positive effect"
        ),
        assignment="self_select", enrol_share=0.45, selection_skill=1.2, timing_skill=0.35,
        win_logit=0.12, deal_size=0.03, cycle=0.05, ramp_days=0, rollout=(0.42, 0.67), waves=0,
    ),
    "randomised": _Scenario(
        description=(
            "a random half of eligible reps is assigned to training in three waves; same trend, "
            "seasonality and effect as 'selection'"
        ),
        assignment="random_waves", enrol_share=0.5, selection_skill=0.0, timing_skill=0.0,
        win_logit=0.12, deal_size=0.03, cycle=0.05, ramp_days=0, rollout=(0.42, 0.67), waves=3,
    ),
    "null": _Scenario(
        description="like 'selection' (self-selection, trend, seasonality) but the true effect is exactly zero",
        assignment="self_select", enrol_share=0.45, selection_skill=1.2, timing_skill=0.35,
        win_logit=0.0, deal_size=0.0, cycle=0.0, ramp_days=0, rollout=(0.42, 0.67), waves=0,
    ),
    "staggered": _Scenario(
        description=(
            "almost every rep is trained in monthly waves over a long rollout and the effect grows "
            "over 180 days after completion: the two-way fixed effects trap"
        ),
        assignment="monthly_waves", enrol_share=0.9, selection_skill=0.3, timing_skill=0.0,
        win_logit=0.25, deal_size=0.06, cycle=0.08, ramp_days=180, rollout=(0.25, 0.85), waves=0,
    ),
}
# The worlds that test the money figures: the randomised roll-out with reps joining and leaving,
# with long sales cycles, and with an effect on deal size alone.
_SCENARIO_PARAMS |= {
    "turnover": replace(
        _SCENARIO_PARAMS["randomised"],
        description=(
            "about 30 % of the reps join or leave during a 24-month period (new reps ramp up over months; a leaver's "
            "open deals are closed lost on their last day), trained and untrained alike; half the reps employed "
            "in a wide rollout window are trained at random while employed, with the effect of 'selection'"
        ),
        assignment="random_employed", rollout=(0.25, 0.8), waves=0, turnover=_TURNOVER,
    ),
    "long_cycles": replace(
        _SCENARIO_PARAMS["randomised"],
        description=(
            "sales cycles of 4 to 7 months at the median (New Business 210 days): many deals created after "
            "training are still open when the export is taken; a random half is trained in three waves, with "
            "the effect of 'selection'"
        ),
        cycle_median=210.0,
    ),
    "deal_size": replace(
        _SCENARIO_PARAMS["randomised"],
        description=(
            "training raises deal amounts by 12 % and leaves win probability and cycle length exactly as they "
            "were; a random half is trained in three waves"
        ),
        win_logit=0.0, deal_size=0.12, cycle=0.0,
    ),
}


# The worlds where trained and untrained reps differ in an observable attribute (their region) whose
# markets trend apart: difference-in-differences without covariates fails, conditioning on the region
# does not. Growth regions: EMEA and APAC, about 30 % of the reps.
_MARKETS = _Markets(growth=("EMEA", "APAC"), growth_trend=0.55, other_trend=-0.45, enrol_growth=0.9,
                    enrol_other=0.1)
_SCENARIO_PARAMS |= {
    "covariate_trends": replace(
        _SCENARIO_PARAMS["selection"],
        description=(
            "the EMEA and APAC markets grow while North America's shrink (win-rate trends apart by region), and "
            "90 % of eligible EMEA and APAC reps enrol against 10 % elsewhere; the region is in the export "
            "(UserRoleId): difference-in-differences without covariates credits the markets to training, "
            "conditioning on the region removes it; the effect of 'selection'"
        ),
        assignment="by_region", enrol_share=0.34, selection_skill=0.0, timing_skill=0.0, markets=_MARKETS,
    ),
    "poor_overlap": replace(
        _SCENARIO_PARAMS["selection"],
        description=(
            "like 'covariate_trends' but enrolment is nearly decided by the region (98 % of eligible EMEA and APAC "
            "reps, 3 % elsewhere): most trained reps come from regions with almost no untrained peers, so the "
            "comparison rests on a few reps and a good estimator says the overlap is poor; the effect of "
            "'selection'"
        ),
        assignment="by_region", enrol_share=0.315, selection_skill=0.0, timing_skill=0.0,
        markets=replace(_MARKETS, enrol_growth=0.98, enrol_other=0.03),
    ),
}
_SCENARIO_PARAMS["covariate_null"] = replace(
    _SCENARIO_PARAMS["covariate_trends"],
    description=(
        "like 'covariate_trends' (markets apart by region, enrolment by region) but the true effect is exactly "
        "zero: what a design credits here is false crediting"
    ),
    win_logit=0.0, deal_size=0.0, cycle=0.0,
)


# The world where the effect differs by region (observable: UserRoleId, Region__c): North America West
# gains nothing, Central and East a little, APAC more and EMEA most. Reps self-select by skill as in
# 'selection'; win_logit is the reps' share-weighted mean of the regions' effects, for reference only.
_BY_REGION = (0.0, 0.08, 0.08, 0.35, 0.2)
_SCENARIO_PARAMS["heterogeneous"] = replace(
    _SCENARIO_PARAMS["selection"],
    description=(
        "the effect on the log-odds of winning differs by region (North America - West none, Central and East "
        "+0.08, APAC +0.2, EMEA +0.35); reps self-select by skill, with the trend and seasonality of 'selection': "
        "an average effect hides where the program works"
    ),
    win_logit=0.126, win_logit_by_region=_BY_REGION,  # 0.126: the mean over the regions' shares of reps
)


# The world where the effect differs by tenure (observable: the CRM user's CreatedDate, the hire):
# reps in their first year gain most, reps of 1 to 3 years some, reps of 3 years and over nothing.
_SCENARIO_PARAMS["heterogeneous_tenure"] = replace(
    _SCENARIO_PARAMS["selection"],
    description=(
        "the effect on the log-odds of winning differs by tenure at training (under 1 year +0.4, 1 to 3 years "
        "+0.15, 3 years and over none); reps self-select by skill, with the trend and seasonality of 'selection'"
    ),
    # win_logit is a placeholder: truth.json replaces it with the bands' mean over the trained reps.
    win_logit=0.07, win_logit_by_tenure=(0.4, 0.15, 0.0),
)

_COURSE_SCENARIOS = tuple(_SCENARIO_PARAMS)
"""The scenarios of a sales course whose effect :func:`_course_scenario` can scale."""


def _course_scenario(name: str, effect_scale: float = 1.0) -> _Scenario:
    """The course scenario ``name`` with its effect on deals multiplied by ``effect_scale``.

    Why: a question asked over many orgs (is the probability of payback calibrated?) needs programs
    whose true effect differs from org to org, some paying back and some not, in the same world.
    The log-odds of winning, the relative deal-size change and the relative cycle reduction are all
    multiplied, so the effect keeps its make-up; 0 is the scenario without an effect, a negative
    scale a program that harms. Who is trained, when, and every random draw stay the seed's.

    Raises
    ------
    ValueError
        The scale would make a deal amount or a cycle length zero or negative (a deal-size or
        cycle change of 100% or more).
    """
    sc = _SCENARIO_PARAMS[name]
    if effect_scale == 1.0:
        return sc
    scaled = replace(sc, win_logit=sc.win_logit * effect_scale, deal_size=sc.deal_size * effect_scale,
                     cycle=sc.cycle * effect_scale,
                     win_logit_by_region=None if sc.win_logit_by_region is None
                     else tuple(x * effect_scale for x in sc.win_logit_by_region),
                     win_logit_by_tenure=None if sc.win_logit_by_tenure is None
                     else tuple(x * effect_scale for x in sc.win_logit_by_tenure))
    if scaled.deal_size <= -1 or scaled.cycle >= 1:
        def signed(change: float) -> str:
            return ("+" if change >= 0 else "") + percent(change * 100)

        raise ValueError(f"effect_scale {f'{effect_scale:g}'.replace('-', '−')} makes scenario {name!r} change "
                         f"deal sizes by {signed(scaled.deal_size)} and cycles by {signed(-scaled.cycle)}: amounts "
                         "or cycles would vanish; keep both changes above −100%")
    return scaled


@dataclass(frozen=True)
class _CustomerScenario:
    """Customer education: which accounts' contacts take the course, and what it does to the account."""

    description: str
    adopt_share: float  # share of customer accounts whose people take the course
    adopt_engagement: float  # logit slope of adoption on the account's engagement
    adopt_size: float  # logit slope of adoption on its standardised log headcount
    timing_engagement: float  # how much earlier engaged accounts complete
    renewal_logit: float  # effect on the log-odds of winning a renewal
    upsell_logit: float  # effect on the log-odds of winning an upsell
    rollout: tuple[float, float]  # course launch and last completions, as fractions of the period


_CUSTOMER_SCENARIO = "customer"
_CUSTOMER = _CustomerScenario(
    description=(
        "customer education: contacts of customer accounts take the vendor's academy course; bigger, more "
        "engaged accounts train more and earlier, and training raises the account's renewal and upsell win "
        "rates: naive comparisons of accounts overstate it"
    ),
    adopt_share=0.4, adopt_engagement=1.0, adopt_size=0.6, timing_engagement=0.35,
    renewal_logit=0.4, upsell_logit=0.3, rollout=(0.33, 0.75),
)


@dataclass(frozen=True)
class _DoseScenario:
    """Micro-lessons: who takes how many daily drills, when, and what one lesson does."""

    description: str
    win_logit_per_lesson: float  # effect of each distinct lesson completed on the log-odds of winning
    engagement_skill: float  # correlation of a rep's engagement with their skill
    take_share: float  # share of eligible reps who complete at least one lesson
    take_engagement: float  # logit slope of taking part on engagement
    lessons_median: float  # a participant does 1 + Poisson(rate) lessons; the rate's median is this
    lessons_engagement: float  # log-rate of lessons per unit of engagement
    lessons_sigma: float  # log-normal spread of the rate between reps with the same engagement
    max_lessons: int  # nobody does more lessons than this
    start_spread: float  # first lessons fall in the first this-share of the drills' business days
    timing_engagement: float  # how much earlier engaged reps start
    trend_per_year: float  # each rep's own untreated log-odds trend per year and unit of engagement
    repeat_share: float  # lesson completions done once more, days later (a lesson counts once)
    unfinished_share: float  # lessons launched and never completed, per lesson completed
    partner_share: float  # partner staff who take drills too (they own no deals)
    void_share: float  # learners with a wrongly recorded lesson completion, voided later
    rollout: tuple[float, float]  # first and last drill release as fractions of the period
    lesson_effects: tuple[tuple[int, float], ...] = ()  # (drill, log-odds): lessons with an effect of their own
    skill_effects: tuple[tuple[int, float], ...] = ()  # (skill, log-odds per unit of gap): drills that close gaps
    check_share: float = 0.85  # with skill_effects: eligible reps who take the skills check before the drills
    items_per_skill: int = 3  # with skill_effects: the skills check's items per skill


_DOSE_SCENARIO = "microlessons"
_DOSE = _DoseScenario(
    description=(
        "daily micro-lessons: reps complete 0 to about 60 short lessons, more of them the stronger and more "
        "engaged they are (and engaged reps are improving anyway); each lesson raises the log-odds of winning "
        "by a fixed amount for the deals created after it: a dose effect that accumulates"
    ),
    win_logit_per_lesson=0.01, engagement_skill=0.5, take_share=0.65, take_engagement=1.0, lessons_median=10.0,
    lessons_engagement=0.5, lessons_sigma=0.8, max_lessons=60, start_spread=0.6, timing_engagement=0.35,
    trend_per_year=0.10, repeat_share=0.04, unfinished_share=0.08, partner_share=0.35, void_share=0.02,
    rollout=(0.42, 0.67),
)
# The lesson map's world: the same drills and engagement, but only five lessons do anything (each +0.35
# log-odds of winning for the deals created after it); the other lessons, about 125, do nothing.
_LESSON_MAP_SCENARIO = "lesson_map"
_LESSON_MAP = replace(
    _DOSE,
    description=(
        "daily micro-lessons as in 'microlessons' (engaged reps do more lessons and improve anyway), but only five "
        "lessons matter, each raising the log-odds of winning by 0.35 for the deals created after it; the other "
        "lessons do nothing: which lessons matter is the question"
    ),
    win_logit_per_lesson=0.0, lesson_effects=((4, 0.35), (19, 0.35), (33, 0.35), (52, 0.35), (77, 0.35)),
)
# The knowledge gaps' world: every drill teaches one of twelve skills (its topic); reps have a latent
# level in each, which a skills check before the drills measures item by item; the first drill of a
# skill closes the rep's gap in it, and four skills' gaps cost deals (simulate/skills.py).
_KNOWLEDGE_GAPS_SCENARIO = "knowledge_gaps"
_KNOWLEDGE_GAPS = replace(
    _DOSE,
    description=(
        "daily micro-lessons as in 'microlessons', each teaching one of twelve skills; reps differ in each skill, "
        "and a skills check before the drills records their answers item by item; a rep's first lesson in a skill "
        "closes their gap in it, raising the log-odds of winning by 0.3 per unit of gap in four of the skills and "
        "by nothing in the other eight: which lesson each rep should take next is the question"
    ),
    win_logit_per_lesson=0.0, skill_effects=((1, 0.3), (3, 0.3), (5, 0.3), (9, 0.3)),
)
_DOSE_SCENARIOS = {_DOSE_SCENARIO: _DOSE, _LESSON_MAP_SCENARIO: _LESSON_MAP,
                   _KNOWLEDGE_GAPS_SCENARIO: _KNOWLEDGE_GAPS}
# What the sales model's shared functions read of a scenario: the drills are no course and the
# course effect is zero; the lessons' effect enters through ``_Doses``.
_DOSE_BASE = _Scenario(
    description=_DOSE.description, assignment="daily_drills", enrol_share=_DOSE.take_share, selection_skill=0.0,
    timing_skill=0.0, win_logit=0.0, deal_size=0.0, cycle=0.0, ramp_days=0, rollout=_DOSE.rollout, waves=0,
)


@dataclass(frozen=True)
class _CrmScenario:
    """A CRM go-live: when the sales teams go live, and what the new CRM does to their leads."""

    description: str
    go_live: tuple[float, ...]  # fractions of the period at which the waves of teams go live (first of a month)
    response_median_hours: float  # median first response to a lead in the old CRM
    response_team_sigma: float  # log-sd of the teams' typical first-response times
    response_sigma: float  # log-sd of a lead's first-response time around its team's typical one
    response_factor: float  # the new CRM multiplies every lead's first-response time by this
    conversion_points: float  # leads the new CRM converts in addition, per lead (expected; 0.06 = 6 points)
    training_days: int  # reps complete CRM Basics within this many days from their team's go-live
    seat_month: float  # CRM licence per user and month, from the user's team's go-live
    response_team_month_sigma: float = 0.0  # log-sd of a shock shared by a team's leads in one month (either CRM)


_CRM_SCENARIO = "crm_golive"
_CRM = _CrmScenario(
    description=(
        "a CRM implementation: half the sales teams go live halfway through the period (month 12 of 24), the rest "
        "at two thirds (month 16); the new CRM cuts the first response to a lead from a median of 30 to 12 hours "
        "and converts 6 points more leads, and leaves win rates, deal sizes and cycles alone (a placebo)"
    ),
    go_live=(12 / 24, 16 / 24), response_median_hours=30.0, response_team_sigma=0.25, response_sigma=0.8,
    response_factor=0.4, conversion_points=0.06, training_days=14, seat_month=95.0,
)
_CRM_TEAM_MONTHS_SCENARIO = "crm_golive_team_months"
_CRM_TEAM_MONTHS = replace(
    _CRM,
    description=(
        "the CRM go-live of crm_golive, and a team's first responses also share a shock each month (log-sd 0.5: a "
        "manager away, a campaign, a leaver), in either CRM: a team's reps are not independent draws, and the "
        "intervals have to be by team"
    ),
    response_team_month_sigma=0.5,
)
_CRM_SCENARIOS = {_CRM_SCENARIO: _CRM, _CRM_TEAM_MONTHS_SCENARIO: _CRM_TEAM_MONTHS}
"""The CRM go-live worlds by name (the same sales model, :data:`_CRM_BASE`)."""

# What the sales model's shared functions read: CRM Basics is the course, it changes no deal, and
# it is completed in the days after each team's go-live (``_assign_training``'s ``window``).
_CRM_BASE = _Scenario(
    description=_CRM.description, assignment="team_golive", enrol_share=1.0, selection_skill=0.0, timing_skill=0.0,
    win_logit=0.0, deal_size=0.0, cycle=0.0, ramp_days=0, rollout=(_CRM.go_live[0], _CRM.go_live[-1] + 1 / 24),
    waves=len(_CRM.go_live),
)

SCENARIOS: dict[str, str] = {name: s.description for name, s in _SCENARIO_PARAMS.items()} | {
    _CUSTOMER_SCENARIO: _CUSTOMER.description, _DOSE_SCENARIO: _DOSE.description,
    _LESSON_MAP_SCENARIO: _LESSON_MAP.description, _KNOWLEDGE_GAPS_SCENARIO: _KNOWLEDGE_GAPS.description,
    **{name: crm.description for name, crm in _CRM_SCENARIOS.items()}}
"""Scenario name → one-line description."""

DEFAULT_SCENARIO = "selection"
"""The scenario used when none is named: self-selection, where naive comparisons mislead."""
