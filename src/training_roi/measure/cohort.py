"""Who was trained, and when: the cohort of a study, computed once per evaluation.

Every later figure depends on it — the windows anchored at each unit's training, the monthly
panels the estimators read, the deals attribution considers, the behaviour before and after
training (Phillips level 3) — so it is decided here, once, by one rule, and handed to each of
them. A unit (a rep, or an account for customer education) is trained from its **first
qualifying completion** of the program's activities:

* *qualifying* follows the study's completion rule (a cmi5 moveOn criterion — ``completed`` is
  ``CompletedOrPassed``, ``passed`` is ``Passed`` — or ``min_score``; see
  :data:`training_roi.measure.sales.COMPLETION_RULES`)
  and only a record about one of the program's activities counts (finishing a lesson is not
  finishing its course); for a micro-lesson program (``lessons``) the unit's first, last or n-th
  distinct lesson dates it instead, and units short of the n-th lesson are neither trained nor
  comparisons;
* completions count only on the program's days (``start`` to ``end``, both included), read in
  the study's time zone;
* the **anchor** is the day of that completion in the study's time zone.

Units that completed the program's activities only outside the program's dates are neither
trained nor clean comparisons (they took the training, just not in this program's time): they
are kept apart in :attr:`Cohort.outside`, and comparison groups leave them out.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import polars as pl
import pyarrow as pa
from ibis.backends import BaseBackend

from training_roi.measure.lessons import LessonSet, lesson_times
from training_roi.measure.sales import completions

__all__ = ["Cohort", "CohortRule", "cohort"]


@dataclass(frozen=True)
class CohortRule:
    """What makes a unit trained: the program's activities, the completion rule, its dates and time zone."""

    activities: tuple[str, ...]
    completion: str = "completed"
    """A rule of :data:`training_roi.measure.sales.COMPLETION_RULES`, or ``lessons``."""
    min_score: float | None = None
    unit: str = "rep"
    """``rep`` (learners are CRM users) or ``account`` (learners are the account's contacts)."""
    timezone: str = "UTC"
    start: date | None = None
    """The program's first day: earlier completions do not count."""
    end: date | None = None
    """The program's last day: later completions do not count."""
    lessons: LessonSet | None = None
    """With ``completion`` ``lessons``: which records are the program's lessons (a micro-lesson program)."""
    anchor: str = "first"
    """With lessons: a unit is trained from its ``first`` lesson, its ``last``, or its ``nth``."""
    nth: int = 1
    """With ``anchor`` ``nth``: the lesson (1 = the first) that marks a unit trained."""

    @property
    def dated(self) -> bool:
        """Whether the program's dates restrict which completions count."""
        return self.start is not None or self.end is not None


@dataclass(frozen=True)
class Cohort:
    """The trained units, each with its anchor day and how many of its learners completed."""

    rule: CohortRule
    units: tuple[str, ...]
    """Trained units, sorted."""
    anchors: tuple[date, ...]
    """Each trained unit's anchor: the day (in the study's time zone) of its first qualifying completion."""
    learners: tuple[int, ...]
    """Each trained unit's learners who completed (1 for a rep; often several for an account)."""
    outside: frozenset[str] = frozenset()
    """Units in scope that completed the program's activities only outside the program's dates."""

    def __post_init__(self) -> None:
        if not len(self.units) == len(self.anchors) == len(self.learners):
            raise ValueError("a cohort needs one anchor and one learner count per unit")

    @property
    def first_day(self) -> date | None:
        """The earliest anchor (None for an empty cohort)."""
        return min(self.anchors) if self.anchors else None

    def anchor_of(self) -> dict[str, date]:
        """Unit → anchor."""
        return dict(zip(self.units, self.anchors, strict=True))

    def learners_of(self) -> dict[str, int]:
        """Unit → learners who completed."""
        return dict(zip(self.units, self.learners, strict=True))

    def frame(self) -> pl.DataFrame:
        """``unit`` and ``treated_at`` (the anchor), one row per trained unit: the estimators' convention."""
        return pl.DataFrame({"unit": list(self.units), "treated_at": list(self.anchors)},
                            schema={"unit": pl.String, "treated_at": pl.Date})

    def table(self) -> pa.Table:
        """``unit_id`` and ``anchor``, one row per trained unit (for joins in the engine)."""
        return pa.table({"unit_id": pa.array(self.units, pa.string()), "anchor": pa.array(self.anchors, pa.date32())})


def _bounds(rule: CohortRule) -> tuple[datetime | None, datetime | None]:
    zone = ZoneInfo(rule.timezone)
    since = None if rule.start is None else datetime.combine(rule.start, time(), zone)
    until = None if rule.end is None else datetime.combine(rule.end + timedelta(days=1), time(), zone)
    return since, until


def _first(con: BaseBackend, rule: CohortRule, since: datetime | None,
           until: datetime | None) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = completions(
        con, list(rule.activities), rule=rule.completion, min_score=rule.min_score, unit=rule.unit, since=since,
        until=until).to_pyarrow().to_pylist()
    return rows


def _lesson_anchors(con: BaseBackend, rule: CohortRule, since: datetime | None,
                    until: datetime | None) -> tuple[list[dict[str, object]], set[str]]:
    """A micro-lesson program's trained units, dated by their first, last or n-th lesson on the program's days.

    Returns the rows (``unit_id``, ``completed_at``, ``learners``) and every unit with any lesson at
    all (those short of the n-th lesson, or with lessons only outside the dates, are neither trained
    nor comparisons).
    """
    times = lesson_times(con, rule.lessons or LessonSet(rule.activities))
    every = set(times["unit"].to_list())
    if since is not None:
        times = times.filter(pl.col("first_at") >= since.astimezone(UTC))
    if until is not None:
        times = times.filter(pl.col("first_at") < until.astimezone(UTC))
    per = times.group_by("unit", maintain_order=True).agg(pl.col("first_at"))
    rows: list[dict[str, object]] = []
    for unit, stamps in per.iter_rows():
        if rule.anchor == "nth" and len(stamps) < rule.nth:
            continue
        at = stamps[0] if rule.anchor == "first" else stamps[-1] if rule.anchor == "last" else stamps[rule.nth - 1]
        rows.append({"unit_id": unit, "completed_at": at, "learners": 1})
    return rows, every


def cohort(con: BaseBackend, rule: CohortRule, *, scope: Collection[str] | None = None,
           required: bool = True) -> Cohort:
    """The units trained by ``rule``'s program, among ``scope`` (every unit when None).

    ``required``: an empty cohort is an error (a study needs somebody trained); False returns it
    empty (a panel of micro-lessons, where the doses, not a completion, say who took part).

    Raises
    ------
    ValueError
        Nobody completed the program's activities (among the units in scope, on its dates).
    """
    since, until = _bounds(rule)
    ever: set[str] | None = None
    if rule.completion == "lessons":
        done, ever = _lesson_anchors(con, rule, since, until)
    else:
        done = _first(con, rule, since, until)
    if not done and not required:
        return Cohort(rule, (), (), ())
    if not done:
        who = "learners linked to CRM users" if rule.unit == "rep" else "learners linked to contacts of accounts"
        what = "a lesson of" if rule.completion == "lessons" else "the program's activities"
        raise ValueError(f"nobody completed {what} ({', '.join(rule.activities)}) among {who}"
                         + ("" if rule.completion == "lessons" or rule.unit != "rep" else
                            "; for a micro-lesson program set program.completion: lessons"))
    allowed = set(scope) if scope is not None else None
    if allowed is not None:
        done = [r for r in done if str(r["unit_id"]) in allowed]
        if not done and not required:
            return Cohort(rule, (), (), ())
        if not done:
            raise ValueError("nobody in the study's population completed the program's activities")
    done.sort(key=lambda r: str(r["unit_id"]))
    zone = ZoneInfo(rule.timezone)
    units = tuple(str(r["unit_id"]) for r in done)
    anchors = tuple(_local_day(r["completed_at"], zone) for r in done)
    learners = tuple(int(str(r["learners"])) for r in done)
    outside: frozenset[str] = frozenset()
    if ever is None and rule.dated:
        ever = {str(r["unit_id"]) for r in _first(con, rule, None, None)}
    if ever is not None:
        outside = frozenset(u for u in ever - set(units) if allowed is None or u in allowed)
    return Cohort(rule, units, anchors, learners, outside)


def _local_day(at: object, zone: ZoneInfo) -> date:
    if not isinstance(at, datetime):
        raise TypeError(f"a completion time must be a datetime, got {type(at).__name__}")
    return at.astimezone(zone).date()
