"""What a program cost, as facts: its cost lines, and each participant's learning time counted once.

Learning time reaches the warehouse several times over: an LMS that reports sessions sends a
``terminated`` statement with each session's duration, the course's ``completed`` statement with
the total time since launch, lesson statements with their own durations, and the completion report
repeats the total in minutes. Summing them counts the same hours three or four times. Each
participant's time is therefore taken from **one** source, the first of these that holds any
minutes for them (:data:`TIME_SOURCES`):

1. ``sessions`` — the durations of their ``terminated`` statements (each session once);
2. ``completion`` — the durations of their ``completed`` statements about a course itself (the
   total time of each completion), or, when none carries one, of their ``passed`` statements;
3. ``report`` — the minutes of their rows in the LMS completion report (completions.csv), finished
   or not: time spent on a course not yet completed is a cost too.

Lesson durations, answers and attempts are never summed into time: they describe the same
sessions again. A participant is a person — the CRM user or contact their LMS identities link to,
else the email the LMS directory gives them (partners and contractors), else the identity itself —
so one person's two LMS accounts are one participant.
"""

from __future__ import annotations

from collections.abc import Iterable

import ibis
import ibis.expr.types as ir
import polars as pl
from ibis.backends import BaseBackend

__all__ = ["TIME_SOURCES", "cost_lines", "participant_minutes"]

TIME_SOURCES = ("sessions", "completion", "report")
"""Where a participant's minutes come from, in order of precedence."""


def cost_lines(con: BaseBackend) -> pl.DataFrame:
    """The cost lines summed per program and category, in a fixed order.

    Columns: ``program`` (None for shared lines), ``category``, ``amount`` (exact) and ``lines``.
    """
    t = con.table("cost_line")
    program = ibis.cases((t.program.isnull() | (t.program.strip() == ""), ibis.null("string")), else_=t.program)
    t = t.mutate(program=program)
    out = pl.from_arrow(t.group_by(["program", "category"]).aggregate(amount=t.amount.sum(), lines=t.count())
                        .to_pyarrow())
    assert isinstance(out, pl.DataFrame)
    return out.sort(["program", "category"], nulls_last=True)


def participant_minutes(con: BaseBackend, *, programs: Iterable[str], activities: Iterable[str] = (),
                        learner_keys: Iterable[str] | None = None) -> pl.DataFrame:
    """Each participant of the programs, their title and their learning minutes by the precedence rule.

    A record is the program's when it names one of ``programs``, or (``activities``) is one of the
    program's activities or belongs to one of its courses. ``learner_keys``: only these LMS
    identities are participants; their records that name no program count too.

    The rule of precedence applies to each of a person's courses; a person's minutes are the sum
    over their courses. A duration of zero holds no time (``PT0S`` on a statement).

    Returns
    -------
    polars.DataFrame
        ``person``, ``title`` (the CRM user's title, or null), ``sessions``, ``completion``,
        ``report`` (the minutes counted from each source, null where none), ``minutes`` (their sum,
        null when no source holds any) and ``source`` (the sources used, joined by ``+``, or null),
        one row per participant, sorted by person.
    """
    names, ours_activities = sorted(set(programs)), sorted(set(activities))
    r = con.table("learning_record")
    own = r.program.isin(names)
    if ours_activities:
        own |= r.activity_id.isin(ours_activities) | r.course_id.isin(ours_activities)
    if learner_keys is not None:
        keys = sorted(set(learner_keys))
        if not ours_activities:  # no activities to recognise the program by: the learners' unnamed records
            own |= r.program.isnull()
        r = r.filter(r.learner_key.isin(keys) & own)
    else:
        r = r.filter(own)
    li = con.table("learner_identity").select("learner_key", "crm_user_id", "crm_contact_id", "email_norm")
    users = con.table("crm_user").select(u_id="user_id", title="title")
    j = r.left_join(li, "learner_key")
    j = j.left_join(users, j.crm_user_id == users.u_id)
    # One person, whatever identities the LMS knew them by: a CRM user or contact, else one email (an
    # account actor and an mbox of the same partner resolve to it through the LMS directory).
    j = j.mutate(person=ibis.coalesce(j.crm_user_id, j.crm_contact_id, "email:" + j.email_norm, j.learner_key),
                 course=ibis.coalesce(j.course_id, j.activity_id))
    xapi = j.source == "xapi"
    course_itself = j.activity_id == j.course_id
    # The rule applies course by course: one course reported by sessions and another only by the
    # completion report are both counted, each once.
    per = j.group_by(["person", "course"]).aggregate(
        title=j.title.max(),
        sessions=_minutes(j, xapi & (j.verb == "terminated")),
        completed=_minutes(j, xapi & (j.verb == "completed") & course_itself),
        passed=_minutes(j, xapi & (j.verb == "passed") & course_itself),
        report=_minutes(j, j.source == "completions"),
    )
    frame = pl.from_arrow(per.to_pyarrow())
    assert isinstance(frame, pl.DataFrame)
    frame = frame.with_columns(pl.coalesce("completed", "passed").alias("completion")).drop("completed", "passed")
    source = pl.when(pl.col("sessions").is_not_null()).then(pl.lit("sessions")).when(
        pl.col("completion").is_not_null()).then(pl.lit("completion")).when(
        pl.col("report").is_not_null()).then(pl.lit("report")).otherwise(pl.lit(None, pl.String))
    frame = frame.with_columns(pl.coalesce(*TIME_SOURCES).alias("minutes"), source.alias("source"))
    by_source = [pl.col("minutes").filter(pl.col("source") == name).sum().alias(name) for name in TIME_SOURCES]
    people = frame.group_by("person").agg(
        pl.col("title").max(),
        *by_source,
        pl.col("minutes").sum().alias("minutes"),
        pl.col("source").drop_nulls().unique().sort().str.join("+").alias("source"),
        pl.col("minutes").is_not_null().any().alias("timed"),
    )
    people = people.with_columns(
        *(pl.when(pl.col(name) > 0).then(pl.col(name)) for name in TIME_SOURCES),
        pl.when(pl.col("timed")).then(pl.col("minutes")).alias("minutes"),
        pl.when(pl.col("source") != "").then(pl.col("source")).alias("source"),
    )
    return people.select("person", "title", *TIME_SOURCES, "minutes", "source").sort("person")


def _minutes(j: ir.Table, where: ir.BooleanValue) -> ir.FloatingScalar:
    """The minutes of the records ``where`` holds, summed exactly (null when none carries any minutes)."""
    kept = where & j.minutes.notnull() & (j.minutes > 0)
    return j.minutes.cast("decimal(38, 6)").sum(where=kept).cast("float64")
