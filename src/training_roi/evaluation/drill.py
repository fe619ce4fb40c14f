"""A program's effect drilled down — org → group → rep — with an interval at every level, never a bare point.

The org level is the study's own difference-in-differences of win rate in its primary window,
recomputed here on the same panel (the same groups, the same seeded bootstrap), so it equals the
answer's. The level between the org and the rep is a **group** of reps, by one of three groupings
(:data:`GROUPINGS`): the **team** (the reps sharing a manager), the **department**
(``crm_user.department``) or the **second line** (the reps under their manager's manager). Teams
of six to ten reps, half of them trained, never reach the :data:`MIN_UNITS` trained reps an
interval needs; a department or a second-line group often does. Every grouping is read from the
CRM once, beside the panel, so choosing one costs no new panel.

A group gets the same estimator on its own trained and comparison reps, with its own cluster
bootstrap; a group with fewer than :data:`MIN_UNITS` comparison reps of its own is compared with
the whole comparison group, and says so; its reps' rows are compared with the same group. A
**rep** is one unit: their change in win rate from the baseline to the post window, beside the
comparison's change, with the interval of the difference of two proportions (Newcombe's hybrid
score, statsmodels) for the rep's own change; one rep's change is not the program's effect, and
the page says so.

Each level's verdict is "improved" or "worsened" only when its interval excludes zero, else "not
established". The group intervals are not adjusted for looking at many groups at once: with
twenty groups, about one would exclude zero by chance alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

import numpy as np
from ibis.backends import BaseBackend
from statsmodels.stats.proportion import confint_proportions_2indep

from training_roi.evaluation.program import _cohort, _panels, population_scope
from training_roi.isolate import did_rate
from training_roi.measure import GroupWindows, WindowPanel, grain_names
from training_roi.study import Study
from training_roi.study.plan import plan_study

__all__ = ["GROUPINGS", "MIN_UNITS", "Drill", "Grouping", "LevelRow", "drill", "enough", "group_rows", "groupings",
           "org_row", "rep_rows"]

NO_TEAM = "(no manager)"
"""The team (and the second-line group) of reps without a manager in the CRM."""

NO_DEPARTMENT = "(no department)"
"""The department of reps whose CRM user has none (or a blank one)."""

GROUPINGS = ("team", "department", "second_line")
"""The levels between the org and the rep, in the order the pages offer them."""

MIN_UNITS = 10
"""Units a group needs for a cluster-bootstrap interval of its own: with fewer, resampling them
understates the spread (the percentile interval of five reps covers far less than 95%), so a team
with fewer trained reps has no interval and its effect is not established; a team with fewer
comparison reps is compared with the whole comparison group."""


@dataclass(frozen=True)
class LevelRow:
    """One org, team or rep: both groups' win rates before and after, and the effect with its interval."""

    key: str
    name: str
    trained_units: int
    comparison_units: int
    trained_baseline: float | None
    trained_post: float | None
    comparison_baseline: float | None
    comparison_post: float | None
    trained_deals: int
    """Closed deals of the trained units, baseline and post windows together."""
    effect: float | None
    interval: tuple[float, float] | None
    verdict: str
    note: str = ""


@dataclass(frozen=True)
class Grouping:
    """One way to group the units between the org and the rep: each unit's group, each group's units and name."""

    by: str
    group_of: Mapping[str, str]
    members: Mapping[str, frozenset[str]]
    """Each group's units, trained and comparison."""
    names: Mapping[str, str]
    """Each group's name as those who read people see it (a manager's name for a team)."""


def _grouping(by: str, group_of: Mapping[str, str], names: Mapping[str, str]) -> Grouping:
    """The grouping that puts each unit in ``group_of[unit]``."""
    grouped: dict[str, set[str]] = {}
    for unit, group in group_of.items():
        grouped.setdefault(group, set()).add(unit)
    return Grouping(by=by, group_of=dict(group_of), members={g: frozenset(u) for g, u in grouped.items()},
                    names={g: names.get(g, g) for g in grouped})


@dataclass(frozen=True)
class Drill:
    """The primary window's panel of a study, with each unit's group in every grouping and the names the pages show."""

    study: Study
    window_days: int
    baseline_days: int
    panel: WindowPanel
    groupings: Mapping[str, Grouping]
    """Each grouping of :data:`GROUPINGS` by its name."""
    treated_at: dict[str, int]
    """Each trained unit's position in the panel's trained group (a 20,000-rep org has thousands of teams)."""
    comparison_at: dict[str, int]
    unit_names: dict[str, str]
    anchors: dict[str, date]
    """Each trained unit's training date (the start of its windows)."""
    seed: int
    replicates: int
    confidence: float

    @property
    def team_of(self) -> Mapping[str, str]:
        """Each unit's team (its manager's id)."""
        return self.groupings["team"].group_of


def _managers(con: BaseBackend, ids: Iterable[str]) -> dict[str, str | None]:
    """Each CRM user of ``ids`` that the CRM knows, with their manager (None when they have none)."""
    users = con.table("crm_user")
    rows = users.filter(users.user_id.isin(sorted(set(ids)))).select("user_id", "manager_id").to_pyarrow()
    return {r["user_id"]: r["manager_id"] for r in rows.to_pylist()}


def groupings(con: BaseBackend, units: Iterable[str]) -> dict[str, Grouping]:
    """Every grouping of :data:`GROUPINGS` of ``units`` (CRM user ids), read from ``crm_user``.

    A unit the CRM does not know, or without a manager, is in the team and the second-line group
    :data:`NO_TEAM`; without a department (or a blank one), in :data:`NO_DEPARTMENT`. A rep's second
    line is their manager's manager; when their manager has none (the top of the org, or a manager
    the CRM does not know), it is their manager: a second-line group is the reps under one person,
    directly or through one manager, so a manager at the top keeps their own reps with those of the
    managers under them.
    """
    units = sorted(set(units))
    users = con.table("crm_user")
    rows = users.filter(users.user_id.isin(units)).select("user_id", "manager_id", "department").to_pyarrow()
    known = {r["user_id"]: r for r in rows.to_pylist()}
    team_of = {u: (known[u]["manager_id"] if u in known else None) or NO_TEAM for u in units}
    department_of = {u: ((known[u]["department"] or "").strip() if u in known else "") or NO_DEPARTMENT
                     for u in units}
    above = _managers(con, [t for t in team_of.values() if t != NO_TEAM])
    second_of = {u: t if t == NO_TEAM else (above.get(t) or t) for u, t in team_of.items()}
    teams = grain_names(con, "team", [t for t in set(team_of.values()) if t != NO_TEAM])
    heads = grain_names(con, "rep", [s for s in set(second_of.values()) if s != NO_TEAM])
    return {"team": _grouping("team", team_of, teams),
            "department": _grouping("department", department_of, {}),
            "second_line": _grouping("second_line", second_of, {s: f"reps under {n}" for s, n in heads.items()})}


def drill(con: BaseBackend, study: Study) -> Drill:
    """The figures the drill-down reads, measured once for ``study`` on the warehouse ``con``."""
    plan = plan_study(study)
    scope = population_scope(con, plan)
    panel = _panels(con, plan, _cohort(con, plan, scope), scope)[plan.windows.primary_days]
    units = sorted(set(panel.treated.units) | set(panel.comparison.units))
    anchors = {r["unit_id"]: r["anchor"] for r in panel.anchors.to_pylist() if r["trained"]}
    return Drill(study=study, window_days=plan.windows.primary_days, baseline_days=plan.windows.baseline_days,
                 panel=panel, groupings=groupings(con, units),
                 treated_at={u: i for i, u in enumerate(panel.treated.units)},
                 comparison_at={u: i for i, u in enumerate(panel.comparison.units)},
                 unit_names=grain_names(con, "rep", units), anchors=anchors,
                 seed=plan.isolation.seed, replicates=plan.isolation.replicates,
                 confidence=plan.isolation.confidence)


def _subset(group: GroupWindows, at: dict[str, int], keep: frozenset[str]) -> GroupWindows:
    """The units of ``group`` in ``keep``, in the group's order: ``at`` gives each unit's position in it."""
    index = sorted(at[u] for u in keep if u in at)
    return GroupWindows(units=tuple(group.units[i] for i in index), base_successes=group.base_successes[index],
                        base_trials=group.base_trials[index], post_successes=group.post_successes[index],
                        post_trials=group.post_trials[index])


def _rate(successes: float, trials: float) -> float | None:
    return float(successes / trials) if trials else None


def _verdict(interval: tuple[float, float] | None) -> str:
    if interval is None:
        return "not established"
    if interval[0] > 0:
        return "improved"
    if interval[1] < 0:
        return "worsened"
    return "not established"


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def _level(key: str, name: str, trained: GroupWindows, comparison: GroupWindows, d: Drill, note: str,
           minimum: int = 0) -> LevelRow:
    """One level's figures; its interval from the cluster bootstrap when it has at least ``minimum`` trained units."""
    effect = interval = None
    reason = note
    if len(trained.units) < minimum:
        reason = _join(note, f"only {len(trained.units)} trained reps: too few for an interval of their own "
                             f"(at least {minimum})")
    else:
        try:
            e = did_rate(trained, comparison, replicates=d.replicates, confidence=d.confidence, seed=d.seed)
            effect, interval = e.estimate, (e.ci_low, e.ci_high)
            if not all(np.isfinite(interval)):
                effect = interval = None
        except ValueError as exc:
            reason = _join(note, f"no estimate: {exc}")
    return LevelRow(key=key, name=name, trained_units=len(trained.units), comparison_units=len(comparison.units),
                    trained_baseline=_rate(trained.base_successes.sum(), trained.base_trials.sum()),
                    trained_post=_rate(trained.post_successes.sum(), trained.post_trials.sum()),
                    comparison_baseline=_rate(comparison.base_successes.sum(), comparison.base_trials.sum()),
                    comparison_post=_rate(comparison.post_successes.sum(), comparison.post_trials.sum()),
                    trained_deals=int(trained.base_trials.sum() + trained.post_trials.sum()),
                    effect=effect, interval=interval, verdict=_verdict(interval), note=reason)


def org_row(d: Drill) -> LevelRow:
    """The whole org: the study's own difference-in-differences of win rate in its primary window."""
    return _level("org", "the whole org", d.panel.treated, d.panel.comparison, d, "")


def _comparison(d: Drill, members: frozenset[str]) -> tuple[GroupWindows, str]:
    """The comparison a group's row and its reps' rows are set against, and the note that says which.

    The group's own comparison reps when it has at least :data:`MIN_UNITS` of them with closed deals
    in both windows; else the whole comparison group (a handful of reps is too few to stand for the
    group's trend). The group's row and its reps' rows use this one rule, so that a page never shows
    two comparison rates for the same group.
    """
    own = _subset(d.panel.comparison, d.comparison_at, members)
    if len(own.units) < MIN_UNITS or not own.base_trials.sum() or not own.post_trials.sum():
        return d.panel.comparison, (f"{len(own.units)} comparison reps of its own: compared with the whole "
                                    "comparison group")
    return own, ""


def group_rows(d: Drill, by: str = "team") -> list[LevelRow]:
    """Every group of the grouping ``by`` with trained reps: its own difference-in-differences, largest first."""
    grouping = d.groupings[by]
    treated = d.panel.treated
    rows = []
    for group in sorted({grouping.group_of[u] for u in treated.units}):
        members = grouping.members[group]
        comparison, note = _comparison(d, members)
        rows.append(_level(group, grouping.names.get(group, group), _subset(treated, d.treated_at, members),
                           comparison, d, note, minimum=MIN_UNITS))
    return sorted(rows, key=lambda r: (-r.trained_units, r.name))


def enough(d: Drill, by: str) -> tuple[int, int]:
    """How many groups of the grouping ``by`` have at least :data:`MIN_UNITS` trained reps, of those with any.

    A count of trained reps per group, without an estimate: what the pages quote to suggest a
    grouping whose groups are large enough for an interval of their own.
    """
    group_of = d.groupings[by].group_of
    trained: dict[str, int] = {}
    for unit in d.panel.treated.units:
        trained[group_of[unit]] = trained.get(group_of[unit], 0) + 1
    return sum(n >= MIN_UNITS for n in trained.values()), len(trained)


def rep_rows(d: Drill, group: str, by: str = "team") -> list[LevelRow]:
    """A group's trained reps: each one's own change, with its interval, beside the group's comparison's change."""
    treated = d.panel.treated
    members = d.groupings[by].members.get(group, frozenset())
    comparison, _ = _comparison(d, members)
    cb = _rate(comparison.base_successes.sum(), comparison.base_trials.sum())
    cp = _rate(comparison.post_successes.sum(), comparison.post_trials.sum())
    rows = []
    for i, unit in enumerate(treated.units):
        if unit not in members:
            continue
        bs, bt, ps, pt = (float(a[i]) for a in (treated.base_successes, treated.base_trials, treated.post_successes,
                                                treated.post_trials))
        interval = None
        change = None
        if bt and pt:
            change = ps / pt - bs / bt
            low, high = confint_proportions_2indep(ps, pt, bs, bt, method="newcomb", compare="diff",
                                                   alpha=1 - d.confidence)
            interval = (float(low), float(high))
        rows.append(LevelRow(key=unit, name=d.unit_names.get(unit, unit), trained_units=1,
                             comparison_units=len(comparison.units), trained_baseline=_rate(bs, bt),
                             trained_post=_rate(ps, pt), comparison_baseline=cb, comparison_post=cp,
                             trained_deals=int(bt + pt), effect=change, interval=interval,
                             verdict=_verdict(interval),
                             note="" if change is not None else "no closed deals in the baseline or the post window"))
    return sorted(rows, key=lambda r: r.name)
