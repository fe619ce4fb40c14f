"""Knowledge gaps and the next lesson, on the study's own windows (:mod:`training_roi.isolate.next_lesson`).

With ``insight.next_lesson``, the study's skill map tags every assessment item with the skill it
tests and every lesson with the skill it teaches. The line of each skill's first lesson against the
rep's gap is fitted on the primary window's units: each unit's change in the headline KPI from its
baseline window to its window, its exposure to each skill (the share of its window after its first
lesson of the skill, as in the lesson map) and its gaps from the answers it gave *before* its
anchor (so a gap is not the lesson's result). The recommendations are for every unit of the
panel with the KPI in both windows (the units of the fit), from *all* its answers (its gaps now),
among the skills it has not yet taken a lesson in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from ibis.backends import BaseBackend

from training_roi.errors import NotApplicable
from training_roi.evaluation.lesson_map import exposure_shares
from training_roi.evaluation.stages import kept
from training_roi.isolate.next_lesson import SELF_SELECTION, GapEffects, gap_effects, recommend, skill_gaps
from training_roi.measure import LessonSet, WindowPanel
from training_roi.measure.lessons import lesson_times
from training_roi.measure.skills import item_answers, unit_directory
from training_roi.study import StudyPlan

__all__ = ["NextLessons", "measure_next_lessons", "next_lesson_study"]


@dataclass(frozen=True)
class NextLessons:
    """The skills' lines against the gap, and each unit's recommended lessons with their reasons.

    ``recommendations``: ``unit``, ``name``, ``email``, ``rank``, ``skill``, ``lesson`` (activity
    id), ``gap``, ``answers`` (answers given, a repeated item counted again), ``expected``, ``low``,
    ``high``, ``versus_average``, ``versus_low``, ``versus_high`` (the lead over the average lesson,
    its band simultaneous over skills and gaps) and ``established``
    (:class:`~training_roi.isolate.next_lesson.Recommendations`); one row per unit and rank, units in
    order.
    """

    effects: GapEffects
    recommendations: pl.DataFrame
    per_unit: int
    units: int
    answered: int
    caveat: str = SELF_SELECTION
    warnings: tuple[str, ...] = field(default=())

    @property
    def evidence(self) -> str:
        """The strength of the evidence: an association (lessons are chosen, not assigned)."""
        return self.effects.evidence

    def asdict(self) -> dict[str, Any]:
        """result.json's ``next_lesson`` section: the skills' lines, then every recommendation (person rows)."""
        e = self.effects
        return {"kpi": e.outcome, "evidence": e.evidence, "caveat": self.caveat, "confidence": e.confidence,
                "units": self.units, "answered": self.answered, "per_unit": self.per_unit,
                "fitted_on": e.units, "skills": e.table.to_dicts(),
                "recommendations": self.recommendations.with_columns(pl.col(pl.Float64).round(6)).to_dicts(),
                "warnings": list(self.warnings)}


def next_lesson_study(con: BaseBackend, plan: StudyPlan, panel: WindowPanel) -> NextLessons | str:
    """The study's knowledge gaps and next lessons for its primary window's units, or why there are none."""
    p = plan.study.program
    settings = plan.study.insight.next_lesson
    assert settings is not None
    lessons = plan.cohort.lessons or LessonSet(tuple(p.activities), p.lesson_grouping, p.lesson_prefix)
    return kept(measure_next_lessons, con, panel, lessons=lessons, skills=tuple(sorted(settings.skills.items())),
                kpi=plan.headline_kpi, window_days=panel.window_days, ramp_days=plan.windows.ramp_days,
                per_unit=settings.per_unit, confidence=plan.isolation.confidence, timezone=plan.study.timezone)


def measure_next_lessons(con: BaseBackend, panel: WindowPanel, *, lessons: LessonSet,
                         skills: tuple[tuple[str, str], ...], kpi: str, window_days: int, ramp_days: int,
                         per_unit: int, confidence: float, timezone: str = "UTC") -> NextLessons | str:
    """Gaps, the skills' lines and the recommendations over the window panel's units, or why there are none."""
    tag = dict(skills)
    changes, left_out = panel.unit_changes(kpi)
    if changes.is_empty():
        return f"no next lessons: no unit has {kpi} in both its baseline and its window"
    times = lesson_times(con, lessons)
    if times.is_empty():
        return "no next lessons: nobody completed a lesson of the program"
    done = times.with_columns(skill=pl.col("lesson").replace_strict(tag, default=None))
    untagged = done.filter(pl.col("skill").is_null())["lesson"].n_unique()
    done = done.drop_nulls("skill")
    lesson_ids = set(times["lesson"].unique().to_list())
    items = sorted(a for a in tag if a not in lesson_ids)
    answers = item_answers(con, items).with_columns(skill=pl.col("item").replace_strict(tag))
    names = sorted(set(done["skill"].unique().to_list()) & set(answers["skill"].unique().to_list()))
    warns = []
    if untagged:
        warns.append(f"{untagged:,} lessons of the program have no skill in the skill map and are not recommended")
    unmeasured = sorted(set(done["skill"].unique().to_list()) - set(names))
    if unmeasured:
        warns.append(f"no assessment item tests {', '.join(unmeasured)}: no gap can be measured, and their lessons "
                     "are not recommended")
    if not names:
        return ("no next lessons: no skill has both an assessment item answered by a linked rep and a lesson "
                "completed")
    anchors = pl.from_arrow(panel.anchors.select(["unit_id", "anchor"]))
    assert isinstance(anchors, pl.DataFrame)
    anchors = anchors.rename({"unit_id": "unit"})
    units = changes["unit"].to_list()
    column = {s: j for j, s in enumerate(names)}
    row = {u: i for i, u in enumerate(units)}
    # The model's gaps: answers given before the unit's anchor (both days in the study's time zone) and
    # before its first lesson of the skill (an instant: with the anchor on a later lesson, or lessons
    # before the program's start, a unit can take a skill's lesson before its anchor), so that a
    # lesson's result is not taken for the gap it closed.
    first_of_skill = done.group_by("unit", "skill").agg(first_lesson=pl.col("first_at").min())
    before = (answers.join(anchors, on="unit")
              .join(first_of_skill, on=["unit", "skill"], how="left")
              .filter((pl.col("answered_at").dt.convert_time_zone(timezone).dt.date() < pl.col("anchor"))
                      & (pl.col("first_lesson").is_null() | (pl.col("answered_at") < pl.col("first_lesson")))))
    n_before, k_before = _counts(before, row, column)
    gap_model, _ = skill_gaps(n_before, k_before)
    # Each unit's exposure to a skill runs from the day of its first lesson of it, as in the lesson map.
    firsts = first_of_skill.filter(pl.col("skill").is_in(names)).select(
        "unit", lesson=pl.col("skill"), completed_on=pl.col("first_lesson").dt.date())
    shares = exposure_shares(firsts, anchors, window_days=window_days, ramp_days=ramp_days)
    shares = shares.filter(pl.col("unit").is_in(units))
    exposure = np.zeros((len(units), len(names)))
    exposure[[row[u] for u in shares["unit"]], [column[s] for s in shares["lesson"]]] = shares["share"].to_numpy()
    measured = ~np.isnan(gap_model).any(axis=0)
    if not measured.all():
        warns.append(f"{', '.join(n for n, m in zip(names, measured, strict=True) if not m)}: nobody answered "
                     "their items before their anchor, so they are not recommended")
    keep = np.flatnonzero(measured)
    if keep.size == 0:
        return "no next lessons: no unit answered an assessment item before its anchor"
    kept_names = [names[j] for j in keep]
    try:
        effects = gap_effects(changes["after"] - changes["before"], exposure[:, keep], gap_model[:, keep],
                              kept_names, weights=changes["weight"].to_numpy(), confidence=confidence, outcome=kpi)
    except NotApplicable as exc:
        return f"no next lessons: {exc}"
    # The recommendations: every answer (the gaps now) and every lesson done so far.
    n_all, k_all = _counts(answers, row, column)
    gap_now, _ = skill_gaps(n_all[:, keep], k_all[:, keep])
    covered = np.zeros((len(units), len(kept_names)), bool)
    mine = done.filter(pl.col("unit").is_in(units) & pl.col("skill").is_in(kept_names))
    index = {s: j for j, s in enumerate(kept_names)}
    covered[[row[u] for u in mine["unit"]], [index[s] for s in mine["skill"]]] = True
    recs = recommend(units, gap_now, n_all[:, keep], covered, kept_names, effects, per_unit=per_unit).table
    table = _with_lessons(recs, done, times).join(unit_directory(con, units), on="unit", how="left")
    table = table.select("unit", "name", "email", "rank", "skill", "lesson", "gap", "answers", "expected", "low",
                         "high", "versus_average", "versus_low", "versus_high", "established").sort("unit", "rank")
    if left_out:
        warns.append(f"{left_out:,} units have no {kpi} in their baseline or their window: they are left out of "
                     "the fit and get no next lessons")
    answered = int((n_all.sum(axis=1) > 0).sum())
    if answered < len(units):
        warns.append(f"{len(units) - answered:,} of {len(units):,} units answered no assessment item: their gaps are "
                     "each skill's average")
    return NextLessons(effects=effects, recommendations=table, per_unit=per_unit, units=len(units),
                       answered=answered, warnings=(*warns, *effects.warnings))


def _counts(answers: pl.DataFrame, row: dict[str, int], column: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """Units × skills: items answered, and answered correctly."""
    n = np.zeros((len(row), len(column)))
    k = np.zeros((len(row), len(column)))
    a = (answers.join(pl.DataFrame({"unit": list(row), "i": list(row.values())}), on="unit")
         .join(pl.DataFrame({"skill": list(column), "j": list(column.values())}), on="skill"))
    if a.height:
        i, j = a["i"].to_numpy(), a["j"].to_numpy()
        np.add.at(n, (i, j), 1.0)
        np.add.at(k, (i, j), a["correct"].cast(pl.Float64).to_numpy())
    return n, k


def _with_lessons(recs: pl.DataFrame, done: pl.DataFrame, times: pl.DataFrame) -> pl.DataFrame:
    """Each recommendation's lesson: the skill's most-taken lesson the unit has not done (ties by id)."""
    popular = done.group_by("skill", "lesson").agg(takers=pl.len())
    taken = times.select("unit", "lesson").unique().with_columns(taken=pl.lit(True))
    first = (recs.select("unit", "skill").join(popular, on="skill")
             .join(taken, on=["unit", "lesson"], how="left").filter(pl.col("taken").is_null())
             .sort(["unit", "skill", "takers", "lesson"], descending=[False, False, True, False])
             .group_by("unit", "skill", maintain_order=True).first().select("unit", "skill", "lesson"))
    return recs.join(first, on=["unit", "skill"], how="left")
