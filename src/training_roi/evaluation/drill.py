"""A program's effect drilled down — org → team → rep — with an interval at every level, never a bare point.

The org level is the study's own difference-in-differences of win rate in its primary window,
recomputed here on the same panel (the same groups, the same seeded bootstrap), so it equals the
answer's. A **team** (the reps sharing a manager) gets the same estimator on its own trained and
comparison reps, with its own cluster bootstrap; a team without comparison reps of its own is
compared with the whole comparison group, and says so. A **rep** is one unit: their change in win
rate from the baseline to the post window, beside the comparison group's change, with the
interval of the difference of two proportions (Newcombe's hybrid score, statsmodels) for the rep's
own change; one rep's change is not the program's effect, and the page says so.

Each level's verdict is "improved" or "worsened" only when its interval excludes zero, else "not
established". The team intervals are not adjusted for looking at many teams at once: with twenty
teams, about one would exclude zero by chance alone.
"""

from __future__ import annotations

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

__all__ = ["Drill", "LevelRow", "drill", "rep_rows", "team_rows"]

NO_TEAM = "(no manager)"
"""The team of reps without a manager in the CRM."""

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
class Drill:
    """The primary window's panel of a study, with each unit's team and the names the pages show."""

    study: Study
    window_days: int
    baseline_days: int
    panel: WindowPanel
    team_of: dict[str, str]
    members: dict[str, frozenset[str]]
    """Each team's units, trained and comparison."""
    treated_at: dict[str, int]
    """Each trained unit's position in the panel's trained group (a 20,000-rep org has thousands of teams)."""
    comparison_at: dict[str, int]
    team_names: dict[str, str]
    unit_names: dict[str, str]
    anchors: dict[str, date]
    """Each trained unit's training date (the start of its windows)."""
    seed: int
    replicates: int
    confidence: float


def drill(con: BaseBackend, study: Study) -> Drill:
    """The figures the drill-down reads, measured once for ``study`` on the warehouse ``con``."""
    plan = plan_study(study)
    scope = population_scope(con, plan)
    panel = _panels(con, plan, _cohort(con, plan, scope), scope)[plan.windows.primary_days]
    units = sorted(set(panel.treated.units) | set(panel.comparison.units))
    users = con.table("crm_user")
    rows = users.filter(users.user_id.isin(units)).select("user_id", "manager_id").to_pyarrow().to_pylist()
    team_of = {r["user_id"]: r["manager_id"] or NO_TEAM for r in rows}
    team_of.update({u: NO_TEAM for u in units if u not in team_of})
    teams = grain_names(con, "team", [t for t in set(team_of.values()) if t != NO_TEAM])
    grouped: dict[str, set[str]] = {}
    for unit, team in team_of.items():
        grouped.setdefault(team, set()).add(unit)
    anchors = {r["unit_id"]: r["anchor"] for r in panel.anchors.to_pylist() if r["trained"]}
    return Drill(study=study, window_days=plan.windows.primary_days, baseline_days=plan.windows.baseline_days,
                 panel=panel, team_of=team_of, members={t: frozenset(u) for t, u in grouped.items()},
                 treated_at={u: i for i, u in enumerate(panel.treated.units)},
                 comparison_at={u: i for i, u in enumerate(panel.comparison.units)},
                 team_names={**teams, NO_TEAM: NO_TEAM}, unit_names=grain_names(con, "rep", units), anchors=anchors,
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


def team_rows(d: Drill) -> list[LevelRow]:
    """Every team with trained reps: its own difference-in-differences, largest team first."""
    treated, comparison = d.panel.treated, d.panel.comparison
    rows = []
    for team in sorted({d.team_of[u] for u in treated.units}):
        members = d.members[team]
        own = _subset(comparison, d.comparison_at, members)
        note = ""
        if len(own.units) < MIN_UNITS or not own.base_trials.sum() or not own.post_trials.sum():
            own, note = comparison, (f"{len(own.units)} comparison reps of its own: compared with the whole "
                                     "comparison group")
        rows.append(_level(team, d.team_names.get(team, team), _subset(treated, d.treated_at, members), own, d, note,
                           minimum=MIN_UNITS))
    return sorted(rows, key=lambda r: (-r.trained_units, r.name))


def rep_rows(d: Drill, team: str) -> list[LevelRow]:
    """A team's trained reps: each one's own change, with its interval, beside the comparison's change."""
    treated = d.panel.treated
    members = d.members.get(team, frozenset())
    comparison = _subset(d.panel.comparison, d.comparison_at, members)
    if not comparison.units or not comparison.base_trials.sum() or not comparison.post_trials.sum():
        comparison = d.panel.comparison
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
