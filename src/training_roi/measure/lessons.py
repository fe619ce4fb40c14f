"""Lessons each rep completed, and when: the doses of a micro-lesson program.

Micro-learning has no single "trained" date: reps take a few lessons or many, over weeks. The
dose-response estimator (:func:`training_roi.isolate.estimate_dose_response`) reads the doses
measured here: one row per rep and lesson with its date (so a deal is credited only with the
lessons done before it), or one row per rep with a count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir
import polars as pl
from ibis.backends import BaseBackend

__all__ = ["LessonSet", "lesson_counts", "lesson_dates", "lesson_times"]


@dataclass(frozen=True)
class LessonSet:
    """Which records are a micro-lesson program's lessons.

    ``activities`` names lessons, or courses whose lessons count (a record of one of their
    lessons counts; the course's own record does not: finishing a course is not one more lesson);
    ``grouping``: every record grouped under this IRI (xAPI ``context.contextActivities.grouping``)
    counts too; ``prefix``: every activity whose id starts with it.
    """

    activities: tuple[str, ...] = ()
    grouping: str | None = None
    prefix: str | None = None


def _lesson_records(con: BaseBackend, lessons: LessonSet | Sequence[str]) -> ir.Table:
    """Completed (or passed) lesson records of the set that reach a CRM user (``crm_user_id``)."""
    chosen = lessons if isinstance(lessons, LessonSet) else LessonSet(tuple(lessons))
    activities = list(chosen.activities)
    r = con.table("learning_record")
    li = con.table("learner_identity")
    r = r.filter(r.verb.isin(["completed", "passed"]))
    parents = {row["course_id"] for row in
               r.filter(r.course_id.isin(activities) & (r.activity_id != r.course_id))
               .select("course_id").distinct().to_pyarrow().to_pylist()} if activities else set()
    lesson = r.activity_id.isin(activities) if activities else ibis.literal(False)
    if parents:
        lesson = (lesson & ~r.activity_id.isin(sorted(parents))) | (
            r.course_id.isin(sorted(parents)) & (r.activity_id != r.course_id))
    if chosen.grouping:
        lesson |= (r.program == chosen.grouping) & (r.activity_id != chosen.grouping)
    if chosen.prefix:
        lesson |= r.activity_id.startswith(chosen.prefix)
    if chosen.grouping or chosen.prefix:
        # A course that has lessons under it is not one more lesson, however the set was named.
        courses = {row["course_id"] for row in r.filter(r.activity_id != r.course_id).select("course_id")
                   .distinct().to_pyarrow().to_pylist()}
        if courses:
            lesson &= ~r.activity_id.isin(sorted(courses))
    r = r.filter(lesson)
    j = r.join(li, "learner_key")
    return j.filter(j.crm_user_id.notnull())


def lesson_times(con: BaseBackend, lessons: LessonSet | Sequence[str]) -> pl.DataFrame:
    """Each distinct lesson each CRM user completed, at the moment they first completed it (UTC).

    ``unit``, ``lesson`` and ``first_at``, sorted by unit, time and lesson: what the cohort of a
    micro-lesson program is anchored on (the first, the last or the n-th lesson).
    """
    j = _lesson_records(con, lessons)
    out = j.group_by(unit=j.crm_user_id, lesson=j.activity_id).agg(first_at=j.occurred_at.min())
    frame = pl.from_arrow(out.to_pyarrow())
    assert isinstance(frame, pl.DataFrame)
    return frame.sort("unit", "first_at", "lesson")


def lesson_counts(con: BaseBackend, activities: LessonSet | Sequence[str]) -> pl.DataFrame:
    """Distinct lessons each CRM user completed, and when they completed the first one.

    ``activities`` names lessons, or courses whose lessons count: a completed (or passed)
    record counts when its activity is named, or when it belongs to a named course (its
    ``course_id``) without being the course itself — finishing a course is not one more lesson.
    Records reach CRM users through ``learner_identity``, as completions do; unlinked learners
    are left out. Repeating a lesson counts it once.

    Returns
    -------
    polars.DataFrame
        ``unit`` (the CRM user id), ``lessons`` (distinct lessons completed) and
        ``first_lesson`` (the UTC day of the first completed lesson), one row per user with at
        least one lesson, sorted by unit.
    """
    j = _lesson_records(con, activities)
    out = j.group_by(unit=j.crm_user_id).agg(lessons=j.activity_id.nunique(), first_at=j.occurred_at.min())
    table = out.to_pyarrow()
    return pl.DataFrame({
        "unit": table["unit"].to_pylist(),
        "lessons": table["lessons"].to_pylist(),
        "first_lesson": [t.date() for t in table["first_at"].to_pylist()],
    }, schema={"unit": pl.String, "lessons": pl.Int64, "first_lesson": pl.Date}).sort("unit")


def lesson_dates(con: BaseBackend, activities: LessonSet | Sequence[str]) -> pl.DataFrame:
    """Each distinct lesson each CRM user completed, on the day they first completed it: the dated doses.

    The same lessons as :func:`lesson_counts` (its ``lessons`` is the number of rows per unit
    here, its ``first_lesson`` their earliest ``completed_on``), with dates, so that a deal is
    credited only with the lessons done before it (:func:`estimate_dose_response`).

    Returns
    -------
    polars.DataFrame
        ``unit`` (the CRM user id), ``lesson`` (the activity id) and ``completed_on`` (the UTC
        day of its first completion), one row per user and lesson, sorted by unit and date.
    """
    j = _lesson_records(con, activities)
    out = j.group_by(unit=j.crm_user_id, lesson=j.activity_id).agg(first_at=j.occurred_at.min())
    frame = pl.from_arrow(out.to_pyarrow())
    assert isinstance(frame, pl.DataFrame)
    return (frame.select(pl.col("unit").cast(pl.String), pl.col("lesson").cast(pl.String),
                         completed_on=pl.col("first_at").dt.date())
            .sort("unit", "completed_on", "lesson"))
