"""The programs a warehouse holds, and the evidence that marks each one as a program.

A starter study (``training-roi init-study``) has to propose *the* program to measure, and a
warehouse rarely says which one that is in so many words. What marks a program is that someone
grouped courses under it and paid for it, not that many people completed something (a yearly
compliance course always has more completers than the sales program being measured). So a
candidate is gathered from every mark the sources carry, matched by name:

* **cost lines**: ``cost_line.program`` (costs.csv), with their total;
* **xAPI groupings**: ``learning_record.program`` of xAPI records, which holds the statement's
  ``context.contextActivities.grouping`` IRI (its last path segment is matched to the names of
  the other sources: ``…/program/sales-excellence`` is "Sales Excellence");
* **the completion report's program column**: ``learning_record.program`` of completions.csv rows;
* **course names**: a course that no source places in a program belongs to a program whose name
  its id or title spells out (``course/sales-excellence``, "Sales Excellence: Core Course").

Courses that no mark places in a program are candidates of their own, with no mark. Each
candidate counts its courses, its learners (people, once each: a learner known to the xAPI
statements and to the completion report is one person when both link to the same CRM record) and
whether they are reps (CRM users) or customers (CRM contacts). :func:`program_candidates` ranks
them by their marks, the learners only breaking ties.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

import ibis
import polars as pl
from ibis.backends import BaseBackend

__all__ = ["CourseOffer", "ProgramCandidate", "program_candidates"]


@dataclass(frozen=True)
class CourseOffer:
    """A course of a candidate program and how it was taken."""

    course_id: str
    title: str | None
    learners: int
    """People who completed the course itself."""
    records: int
    """Completion records of the course itself."""
    lesson_learners: int
    """People who completed at least one of its lessons (records whose parent is the course)."""


@dataclass(frozen=True)
class ProgramCandidate:
    """A program the warehouse holds, with the marks that make it one.

    ``name`` is the name the cost lines use when they name it (so a study's ``costs.programs``
    matches them), else the completion report's, else the course's title (a course with no mark),
    else words made from its grouping IRI's last segment (``named_from_grouping``).
    """

    name: str
    cost_total: Decimal
    cost_lines: int
    groupings: tuple[str, ...]
    """xAPI grouping IRIs its records carry."""
    reported: bool
    """The completion report's program column names it."""
    named_courses: tuple[str, ...]
    """Courses placed in it because their id or title spells its name (no source placed them)."""
    courses: tuple[CourseOffer, ...]
    """Its courses with any completion, most learners first."""
    learners: int
    """People who completed one of its courses or lessons."""
    unit: str
    """``rep`` when most of its linked learners are CRM users, ``account`` when most are contacts."""
    named_from_grouping: bool = False

    @property
    def marks(self) -> int:
        """How many kinds of program mark it carries (0 for a course no source places in a program)."""
        return sum((self.cost_lines > 0, bool(self.groupings), self.reported, bool(self.named_courses)))

    @property
    def by_lessons(self) -> bool:
        """Whether it is taken by lessons only: no course of it is completed as a whole, its lessons are."""
        return bool(self.courses) and all(c.records == 0 for c in self.courses)

    @property
    def activities(self) -> tuple[str, ...]:
        """The course ids whose completion marks a learner trained (with :attr:`by_lessons`: whose lessons)."""
        if self.by_lessons:
            return tuple(c.course_id for c in self.courses if c.lesson_learners)
        return tuple(c.course_id for c in self.courses if c.records)


def _slug(text: str) -> str:
    """A name reduced for matching across sources: lower case, words joined by ``-``."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _is_iri(text: str) -> bool:
    return bool(re.match(r"^[a-z][a-z0-9+.-]*:", text, re.IGNORECASE)) and "/" in text


def _iri_key(iri: str) -> str:
    """The matching key of a grouping IRI: its last non-empty path segment."""
    tail = [part for part in re.split(r"[/#?]", iri) if part]
    return _slug(tail[-1]) if tail else _slug(iri)


def program_candidates(con: BaseBackend) -> list[ProgramCandidate]:
    """Every program the warehouse holds (and every course no program claims), best evidence first.

    Ranked by: having completions at all (a program nobody took cannot be measured), having cost
    lines (ROI needs the program's cost), the number of kinds of mark, the cost total, then the
    learners and the name. Missing tables count as empty.
    """
    tables = set(con.list_tables())
    costs = _cost_programs(con) if "cost_line" in tables else {}
    taken = _taken(con) if {"learning_record", "learner_identity"} <= tables else _empty_taken()

    # Program marks of the learning records: xAPI groupings and the completion report's names.
    names: dict[str, str] = {_slug(n): n for n in costs}
    groupings: dict[str, set[str]] = {}
    reported: set[str] = set()
    course_keys: dict[str, set[str]] = {}
    for row in taken.select("source", "program", "course_id").unique().iter_rows(named=True):
        program = row["program"]
        if program is None or not str(program).strip():
            continue
        if row["source"] == "xapi" and _is_iri(program):
            key = _iri_key(program)
            groupings.setdefault(key, set()).add(program)
        else:
            key = _slug(program)
            reported.add(key)
            names.setdefault(key, program)
        course_keys.setdefault(key, set()).add(row["course_id"])

    # Courses no mark places in a program: a program whose name they spell claims them, else they
    # stand alone.
    placed = set().union(*course_keys.values()) if course_keys else set()
    titles = _titles(taken)
    named: dict[str, set[str]] = {}
    alone: dict[str, set[str]] = {}
    program_keys = sorted(set(names) | set(groupings), key=len, reverse=True)
    for course in sorted(set(taken["course_id"].to_list()) - placed):
        spelled = _slug(f"{course} {titles.get(course) or ''}")
        owner = next((k for k in program_keys if k and re.search(rf"(^|-){re.escape(k)}(-|$)", spelled)), None)
        if owner is not None:
            named.setdefault(owner, set()).add(course)
            course_keys.setdefault(owner, set()).add(course)
        else:
            alone[f"course:{course}"] = {course}

    out: list[ProgramCandidate] = []
    for key in sorted(set(names) | set(groupings) | set(course_keys)):
        grouped = tuple(sorted(groupings.get(key, ())))
        from_grouping = key not in names
        name = names.get(key) or key.replace("-", " ").title()
        out.append(_candidate(taken, name, course_keys.get(key, set()), costs.get(names.get(key, ""), None),
                              groupings=grouped, reported=key in reported,
                              named_courses=tuple(sorted(named.get(key, ()))), named_from_grouping=from_grouping))
    for courses in alone.values():
        (course,) = courses
        out.append(_candidate(taken, titles.get(course) or course, courses, None, groupings=(), reported=False,
                              named_courses=(), named_from_grouping=False))
    out.sort(key=lambda c: (c.learners == 0, c.cost_lines == 0, -c.marks, -c.cost_total, -c.learners, c.name))
    return out


def _candidate(taken: pl.DataFrame, name: str, courses: set[str], cost: tuple[Decimal, int] | None, *,
               groupings: tuple[str, ...], reported: bool, named_courses: tuple[str, ...],
               named_from_grouping: bool) -> ProgramCandidate:
    """One candidate from its courses' records (every record of those courses, whatever mark it carries)."""
    rows = taken.filter(pl.col("course_id").is_in(sorted(courses)))
    titles = _titles(rows)
    offers = []
    for course in sorted(courses):
        of = rows.filter(pl.col("course_id") == course)
        offers.append(CourseOffer(
            course_id=course, title=titles.get(course),
            learners=of.filter(pl.col("own") > 0)["person"].n_unique(), records=int(of["own"].sum()),
            lesson_learners=of.filter(pl.col("lessons") > 0)["person"].n_unique()))
    offers.sort(key=lambda c: (-max(c.learners, c.lesson_learners), c.course_id))
    people = rows.filter((pl.col("own") > 0) | (pl.col("lessons") > 0)).select("person", "kind").unique()
    contacts = people.filter(pl.col("kind") == "contact").height
    users = people.filter(pl.col("kind") == "user").height
    total, lines = cost if cost is not None else (Decimal(0), 0)
    return ProgramCandidate(name=name, cost_total=total, cost_lines=lines, groupings=groupings, reported=reported,
                            named_courses=named_courses, courses=tuple(offers),
                            learners=people["person"].n_unique(), unit="account" if contacts > users else "rep",
                            named_from_grouping=named_from_grouping)


def _cost_programs(con: BaseBackend) -> dict[str, tuple[Decimal, int]]:
    """Program name → (total, lines) of the cost lines that name a program."""
    c = con.table("cost_line")
    named = c.filter(c.program.notnull() & (c.program.strip() != ""))
    rows = named.group_by("program").aggregate(total=named.amount.sum(), lines=named.count()).to_pyarrow().to_pylist()
    return {str(r["program"]): (Decimal(str(r["total"] or 0)), int(r["lines"])) for r in rows}


_TAKEN_SCHEMA = {"source": pl.String, "program": pl.String, "course_id": pl.String, "person": pl.String,
                 "kind": pl.String, "title": pl.String, "own": pl.Int64, "lessons": pl.Int64}


def _empty_taken() -> pl.DataFrame:
    return pl.DataFrame(schema=_TAKEN_SCHEMA)


def _taken(con: BaseBackend) -> pl.DataFrame:
    """Completions per source, program mark, course and person: of the course itself and of its lessons.

    A person is the CRM user or contact the learner links to, else the learner's own key. The
    course's own completions count the completed or passed records about the course itself (what
    the default completion rule, ``CompletedOrPassed``, counts: a quiz-only course sends ``passed``
    alone); its lessons' count completed or passed records under it.
    """
    lr = con.table("learning_record")
    li = con.table("learner_identity")
    lr = lr.filter(lr.course_id.notnull() & lr.verb.isin(["completed", "passed"]))
    j = lr.left_join(li, lr.learner_key == li.learner_key)
    itself = j.activity_id == j.course_id
    person = ibis.coalesce("user:" + j.crm_user_id, "contact:" + j.crm_contact_id, "learner:" + j.learner_key)
    kind = ibis.cases((j.crm_user_id.notnull(), "user"), (j.crm_contact_id.notnull(), "contact"), else_="unlinked")
    grouped = j.group_by(source=j.source, program=j.program, course_id=j.course_id, person=person, kind=kind).aggregate(
        title=j.activity_name.max(where=itself),
        own=j.count(where=itself),
        lessons=j.count(where=~itself),
    )
    frame = pl.from_arrow(grouped.to_pyarrow())
    assert isinstance(frame, pl.DataFrame)
    return frame.cast(_TAKEN_SCHEMA)  # type: ignore[arg-type]


def _titles(taken: pl.DataFrame) -> dict[str, str]:
    """Each course's title from its own records (the most common)."""
    titled = taken.filter(pl.col("title").is_not_null())
    if titled.is_empty():
        return {}
    counted = titled.group_by("course_id", "title").len().sort(["course_id", "len", "title"],
                                                                  descending=[False, True, False])
    return {r["course_id"]: r["title"] for r in counted.unique("course_id", keep="first").iter_rows(named=True)}
