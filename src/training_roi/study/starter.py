"""A commented starter study, written from what the warehouse holds.

``training-roi init-study`` writes it: every setting with its default and a one-line comment, and
the warehouse's own programs (with the evidence that marks each), courses, cost-line programs,
departments, titles and dates beside the settings that name them, so a user edits choices rather
than inventing ids.

The program proposed is the one the evidence marks best (:func:`training_roi.measure.program_candidates`:
cost lines, xAPI groupings, the completion report's program column, course names — not the
number of completers, which a yearly compliance course always wins), with its courses, its
completion rule (``lessons`` when only its lessons are completed) and its unit (accounts when its
learners are customers' contacts). As written, the starter runs: ``training-roi report`` answers
it without an edit, participant time left out of the cost and saying so until an hourly rate is
set.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from ibis.backends import BaseBackend

from training_roi._format import money
from training_roi.isolate import METHODS
from training_roi.measure import ProgramCandidate, warehouse_offer
from training_roi.measure.covariates import ATTRIBUTES
from training_roi.study.model import KPIS
from training_roi.warehouse.connection import require_lms_data

__all__ = ["starter_study"]


def starter_study(con: BaseBackend) -> str:
    """A commented starter study built from what the warehouse holds.

    Every setting is written out with its default and a one-line comment saying what it means;
    comments list what the warehouse offers (every program with its evidence and every course, the
    cost-line programs, the departments and titles of CRM users, the range of close dates) so a user
    edits choices rather than inventing ids. The program proposed is the best-marked one; the text
    loads with :func:`load_study` and ``training-roi report`` answers it as it is, except on a
    warehouse whose LMS data holds no completion: there ``program.activities`` is an empty
    placeholder the user must fill in, and the header says so.

    Parameters
    ----------
    con
        The warehouse (an Ibis backend with the canonical tables; missing tables count as empty).

    Raises
    ------
    WarehouseError
        No LMS data was loaded: a training study has nothing to measure (the message says what to load).
    """
    require_lms_data(con)
    offer = warehouse_offer(con)
    candidates = offer.candidates
    programs, close_range = offer.programs, offer.close_range
    departments, titles = offer.departments, offer.titles
    chosen = candidates[0] if candidates and candidates[0].activities else None

    program_name = chosen.name if chosen else (programs[0][0] if programs else "My training program")
    unit = chosen.unit if chosen else "rep"
    q = _quote
    out = [
        "# training-roi study: every assumption of the ROI report, written down once.",
        "# Same data + same study = same numbers. Edit the values; the comments say what each one means.",
    ]
    if chosen is None:
        out += [
            "# FILL IN: the warehouse has no completions yet, so program.activities is empty.",
            "# List the course ids of the program there before running the report.",
        ]
    elif chosen.cost_lines == 0 and programs:
        out += [
            f"# CHECK: no line of costs.csv names {chosen.name}: ROI needs the program's cost. Add its lines to",
            "# costs.csv, or name the cost lines' program under costs.programs.",
        ]
    out += [
        f"name: {q(program_name + ' ROI study')}  # title of the study, shown on the report",
        'description: ""  # free text: what the program is and why it is measured',
        'timezone: "UTC"  # IANA time zone in which dates and windows are counted',
        'currency: "USD"  # ISO 4217 code of the CRM amounts and the costs',
        'locale: "en_US"  # how figures are written: en_US ($1,234,567), en_GB, de_DE (1.234.567 €), fr_FR, …',
        "",
        "program:",
        *_candidate_lines(candidates),
        f"  name: {q(program_name)}  # the program's name, as in costs.csv",
        *_activity_lines(candidates, chosen),
        f"  completion: {'lessons' if chosen and chosen.by_lessons else 'CompletedOrPassed'}  # what makes a learner "
        "trained: a cmi5 moveOn criterion (CompletedOrPassed, Completed, Passed, CompletedAndPassed, NotApplicable), "
        "min_score, or lessons (micro-lessons: the activities are lessons, or courses whose lessons count)",
        "  anchor: first  # with completion: lessons, trained from the first lesson, the last, or the nth_lesson-th",
        "  min_score: null  # with completion: min_score, the score (0–100) a learner needs",
        "  start: null  # first day of the program (YYYY-MM-DD); null = from the first completion",
        "  end: null  # last day of the program (YYYY-MM-DD); null = open-ended",
        "",
        "population:  # who is in scope; empty filters mean everyone",
        f"  unit: {unit}  # rep (learners are CRM users) or account (customer education: learners are its contacts)",
        "  roles: []  # CRM role ids to keep",
        f"  departments: []  # departments to keep; in the warehouse: {_listing(departments)}",
        f"  titles: []  # titles to keep; in the warehouse: {_listing(titles)}",
        "  include: []  # CRM ids always in scope",
        "  exclude: []  # CRM ids never in scope (wins over every filter)",
        "  accounts: {}  # unit: account: accounts whose fields hold these values, e.g. {type: [Customer - Direct]}",
        "  opportunity_types: []  # only deals of these types count, e.g. [Renewal, Upsell]; empty = every deal",
        "",
        "comparison:",
        "  design: untrained  # holdout (a list of ids), untrained (everyone in scope not trained) or none",
        "  holdout: []  # with design: holdout, the CRM ids held out of training",
        "  holdout_file: null  # or a file with one CRM id per line",
        "",
        "baseline:",
        "  months: 6  # length of the period before training that outcomes are compared with",
        "  anchor: completion  # baseline ends at each learner's completion or at the program_start",
        "",
        "windows:",
        f"  primary_days: 180  # days after completion credited to training{_range_note(close_range)}",
        "  sensitivity_days: [90, 180, 365]  # other windows reported to show how much the window matters",
        "  ramp_days: 0  # days after completion before effects are counted (must be under primary_days)",
        "",
        f"kpis: [{', '.join(KPIS)}]  # outcomes measured",
        "headline_kpi: win_rate  # the KPI the report leads with (one of kpis)",
        "",
        "threshold:",
        "  min_relative_change: 0.05  # a relative change under this (5%) is not credited to training",
        "",
        "value:",
        "  gross_margin: 1.0  # share of revenue that is value (1.0 = ROI on revenue, not profit: set your margin)",
        "  revenue: booked  # booked: won revenue of deals created and closed in the window; eventual: deals "
        "created in it, open ones at expected value; seed: lift × pipeline",
        "",
        "costs:",
        "  use_cost_lines: true  # count the lines of costs.csv",
        f"  programs: [{q(program_name)}]  # program names in costs.csv that count; "
        f"in the warehouse: {_listing(programs)}",
        "  shared_allocation: none  # shared cost lines (no program): none, or share to charge a fraction",
        "  share: null  # with shared_allocation: share, the fraction (0–1) charged to this program",
        "  participant_time:  # what the learners' own time costs",
        "    hourly_rate: null  # loaded hourly cost of a participant, e.g. 60; null = participant time not costed: "
        "the report says so and its cost is not fully loaded (set your rate)",
        "    hourly_rate_by_role: {}  # rate per CRM title (the titles above), e.g. {Account Executive: 60}; "
        "wins over hourly_rate",
        "    minutes_per_learner: null  # minutes for learners the LMS recorded no time for (or everyone's, "
        "with time: fixed)",
        "    time: recorded  # recorded: each learner's time once (sessions, else the completion's total, else the "
        "completion report); fixed: minutes_per_learner for everyone",
        "",
        "sensitivity:  # the sensitivity table's scenarios",
        "  lift: null  # [pessimistic, optimistic] effect of the headline KPI, in its units (a win-rate lift as a "
        "fraction: [0.01, 0.03] = 1 and 3 points); null = the ends of the estimated effect's interval",
        "",
        "isolation:",
        "  method: did  # did: difference-in-differences in each learner's windows; all: every applicable method "
        f"side by side, crediting the recommended one; one of {', '.join(METHODS)}; or dose (micro-lessons: the "
        "effect per lesson × the lessons each rep took)",
        "  bootstrap_replicates: 2000  # resamples behind the confidence interval (at least 100)",
        "  confidence: 0.95  # confidence level of the interval",
        "  seed: 7  # random seed, so the interval is the same on every run",
        "  covariates: []  # unit attributes trained and untrained units differ on, for the covariate-aware designs: "
        f"{', '.join(ATTRIBUTES['rep'])} (reps); {', '.join(ATTRIBUTES['account'])} (accounts)",
        "",
        "forecast:  # cumulative benefit, cost and ROI month by month after training, and the scale-up",
        "  enabled: true",
        "  horizon_months: 18  # months after training forecast (6, 12 and 18 are summarised)",
        "  hold_months: 6  # after the last measured month, the effect holds the precision-weighted average of this "
        "many last measured months",
        "  half_life_months: null  # null: the effect holds; else it halves every this many months",
        "  fit_through: null  # a date: deals created after it are left out of the fit (to test it on them)",
        "  scale_up_costs: [participant_time, licensing, travel]  # cost categories that grow with each learner",
        "",
        "attribution:  # which training touches the revenue flows through (a table beside the lift)",
        "  model: linear  # first_touch, last_touch, linear, time_decay, position_based, markov or shapley",
        "  lookback_days: null  # how long before a deal's close a touch counts; null = the primary window",
        "  half_life_days: 30  # time_decay: a touch this many days before the close counts half",
        "  first_share: 0.4  # position_based: the first touch's share",
        "  last_share: 0.4  # position_based: the last touch's share",
        "  markov_order: 1  # markov: how many previous touches a step depends on",
        "  learner_split: equal  # several learners on one deal: equal, recency or role",
        "  role_weights: {}  # with learner_split: role, e.g. {Account Executive: 2}",
        "  crm_touches: true  # campaign responses and deal activities compete for credit",
        "  all_programs: true  # every LMS program is a touch; false = only this study's program",
        "",
        "insight:  # for whom the program works: its effect by subgroup, and where to roll it out next",
        "  subgroups: []  # unit attributes to break the effect down by, e.g. [role, manager]: "
        f"{', '.join(ATTRIBUTES['rep'])} or tenure (reps); {', '.join(ATTRIBUTES['account'])} (accounts); empty = off",
        "  baseline_thirds: true  # also by thirds of each unit's earlier record of the headline KPI",
        "  learner: linear  # the doubly robust learner's models: linear or boosting (gradient-boosted trees)",
        "  lesson_map: false  # which lessons are associated with a larger change than the average lesson",
        "  fdr: 0.1  # the lesson map's false-discovery rate: the share of flagged lessons expected to be flukes",
        "  # next_lesson: {skills_file: skills.csv, per_unit: 3}  # each rep's gaps from assessment answers and the",
        "  #   lessons to take next; skills.csv: activity_id,skill for every assessment item and every lesson",
        "  churn: false  # account studies: each account's calibrated churn risk at its open renewal, with its drivers",
        "",
        "# Benefits beyond revenue (Phillips level 5), each by a rule: error_cost, compliance_penalty, turnover,",
        "# time_saved or revenue_margin; a rule either declares its change or names an isolated KPI effect, e.g.",
        "#   - {name: errors avoided, rule: error_cost, errors_avoided: 120, cost_per_error: 250}",
        "monetisation: []",
        "intangibles: []  # benefits named but not turned into money, e.g. [better customer conversations]",
        "application_kpis: [activity_volume, task_completion_rate, data_completeness]  # behaviour before/after "
        "training (Phillips level 3)",
        "rollout: null  # a CRM roll-out instead: {go_live: 2025-01-01} or {go_live_by_team: {<manager id>: date}},",
        "#   kpis: [lead_conversion, lead_response_hours], value_per_conversion: 12000",
        "",
    ]
    return "\n".join(out)


def _evidence(c: ProgramCandidate) -> str:
    """What marks a candidate as a program, in words: its cost, groupings, report column, course names, learners."""
    marks = []
    if c.cost_lines:
        marks.append(f"cost lines {money(c.cost_total)} ({c.cost_lines:,} lines)")
    marks += [f"xAPI grouping {g}" for g in c.groupings]
    if c.named_from_grouping:
        marks.append("named from its grouping id")
    if c.reported:
        marks.append("program column of the completion report")
    if c.named_courses:
        marks.append(f"courses named for it: {', '.join(c.named_courses)}")
    if not marks:
        marks.append("a course in no program")
    who = "learners (customers' contacts)" if c.unit == "account" else "learners"
    return "; ".join([*marks, f"{c.learners:,} {who}"])


def _candidate_lines(candidates: list[ProgramCandidate]) -> list[str]:
    """Every program candidate as a comment, the proposed one first, with its evidence."""
    if not candidates:
        return []
    out = ["  # Programs in the warehouse, by the evidence that marks each (the first is proposed; to measure another,",
           "  # put its name under name and its courses under activities):"]
    for c in candidates:
        out.append(f"  #   {_quote(c.name)}: {_evidence(c)}; courses: {', '.join(x.course_id for x in c.courses)}")
    return out


def _activity_lines(candidates: list[ProgramCandidate], chosen: ProgramCandidate | None) -> list[str]:
    """``activities``: the proposed program's courses, every other course commented out beside them."""
    if chosen is None:
        return ["  activities: []  # FILL IN: course/activity ids whose completion counts as trained"]
    out = ["  activities:  # course/activity ids whose completion counts as trained; keep the program's"]
    listed: set[str] = set()
    for c in [chosen, *(x for x in candidates if x is not chosen)]:
        for course in c.courses:
            if course.course_id in listed:
                continue
            listed.add(course.course_id)
            title = _one_line(course.title) if course.title is not None else course.course_id
            taken = (f"completed by {course.learners:,} learners ({course.records:,} completion records)"
                     if course.records else f"lessons taken by {course.lesson_learners:,} learners")
            program = f" ({c.name})" if c.marks else ""
            line = f"- {_quote(course.course_id)}  # {title}{program} — {taken}"
            out.append(f"    {line}" if c is chosen and course.course_id in chosen.activities else f"    # {line}")
    return out


def _quote(text: str) -> str:
    # A JSON string is a valid double-quoted YAML scalar, whatever characters it holds.
    return json.dumps(text, ensure_ascii=False)


def _one_line(text: Any) -> str:
    return " ".join(str(text).split()) if text is not None else "(no name)"


def _listing(items: list[tuple[str, int]]) -> str:
    if not items:
        return "none yet"
    return ", ".join(f"{_one_line(v)} ({n})" for v, n in items)


def _range_note(close_range: tuple[date, date] | None) -> str:
    if close_range is None:
        return "; no opportunities in the warehouse yet"
    return f"; opportunities close from {close_range[0]} to {close_range[1]}"
