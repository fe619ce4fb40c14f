"""Which lessons matter, on the study's own windows: the lesson map of :mod:`training_roi.isolate.lesson_map`.

With ``insight.lesson_map``, each unit of the primary window (the trained, anchored at their
completion — for a micro-lesson program, the lesson the study anchors on — and the comparison
units at their drawn dates) has its change in the headline KPI from its baseline window to its
window, and an exposure to every lesson of the program: the share of its window (after the ramp,
as the change is measured) that came after it first completed the lesson (1 for a lesson done
before the window opened, 0 for one never done or done after it closed). The lessons are the
program's (``program.activities`` with ``program.lesson_grouping`` or ``lesson_prefix``): a course's
lessons, or a drill series'.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import numpy as np
import polars as pl
from ibis.backends import BaseBackend

from training_roi.errors import NotApplicable
from training_roi.evaluation.stages import kept
from training_roi.isolate.lesson_map import LessonMap, lesson_map
from training_roi.measure import LessonSet, WindowPanel
from training_roi.measure.lessons import lesson_dates
from training_roi.study import StudyPlan

__all__ = ["exposure_shares", "lesson_map_study", "measure_lesson_map"]


def lesson_map_study(con: BaseBackend, plan: StudyPlan, panel: WindowPanel) -> LessonMap | str:
    """The study's lesson map for its primary window's units, or why there is none (a kept measurement)."""
    p = plan.study.program
    lessons = plan.cohort.lessons or LessonSet(tuple(p.activities), p.lesson_grouping, p.lesson_prefix)
    return kept(measure_lesson_map, con, panel, lessons=lessons, kpi=plan.headline_kpi,
                window_days=panel.window_days, ramp_days=plan.windows.ramp_days, fdr=plan.study.insight.fdr,
                confidence=plan.isolation.confidence)


def measure_lesson_map(con: BaseBackend, panel: WindowPanel, *, lessons: LessonSet, kpi: str, window_days: int,
                       ramp_days: int, fdr: float, confidence: float) -> LessonMap | str:
    """The lesson map of ``kpi`` over the window panel's units, or why there is none."""
    changes, left_out = panel.unit_changes(kpi)
    if changes.is_empty():
        return f"no lesson map: no unit has {kpi} in both its baseline and its window"
    dates = lesson_dates(con, lessons)
    if dates.is_empty():
        return "no lesson map: nobody completed a lesson of the program"
    anchors = pl.from_arrow(panel.anchors.select(["unit_id", "anchor"]))
    assert isinstance(anchors, pl.DataFrame)
    names = sorted(dates["lesson"].unique().to_list())
    shares = exposure_shares(dates, anchors.rename({"unit_id": "unit"}), window_days=window_days, ramp_days=ramp_days)
    row = {u: i for i, u in enumerate(changes["unit"].to_list())}
    column = {name: j for j, name in enumerate(names)}
    shares = shares.filter(pl.col("unit").is_in(list(row)))
    exposure = np.zeros((changes.height, len(names)))
    exposure[[row[u] for u in shares["unit"]], [column[n] for n in shares["lesson"]]] = shares["share"].to_numpy()
    try:
        result = lesson_map(changes["after"] - changes["before"], exposure, names,
                            weights=changes["weight"].to_numpy(), fdr=fdr, confidence=confidence, outcome=kpi)
    except NotApplicable as exc:
        return f"no lesson map: {exc}"
    if left_out:
        result = replace(result, warnings=(*result.warnings, f"{left_out:,} units have no {kpi} in their baseline "
                                                             "or their window and are left out"))
    return result


def exposure_shares(dates: pl.DataFrame, anchors: pl.DataFrame, *, window_days: int, ramp_days: int) -> pl.DataFrame:
    """Each unit's exposure to each lesson it completed: ``unit``, ``lesson``, ``share``.

    ``dates`` (``unit``, ``lesson``, ``completed_on``) and ``anchors`` (``unit``, ``anchor``). The change
    is measured over ``[anchor + ramp_days, anchor + window_days)``; the share is the part of that span
    from the lesson's day on: 1 for a lesson done before it opened, 0 for one done on its last day
    or later.
    """
    measured = window_days - ramp_days
    return (dates.join(anchors, on="unit")
            .with_columns(start=pl.col("anchor") + timedelta(days=ramp_days),
                          end=pl.col("anchor") + timedelta(days=window_days))
            .select("unit", "lesson", share=((pl.col("end") - pl.max_horizontal("completed_on", "start"))
                                             .dt.total_days() / measured).clip(0.0, 1.0)))

