"""The learning evidence of every LMS source, in one shape: ``learning_record``.

xAPI statements (voided ones and voiding ones left out; scores scaled to 0–100; durations in
minutes; a lesson rolls up to its course through its parent) and the rows of the LMS completion
report (``completed`` when they carry a completion date, else ``attempted``) become records keyed
by the learner identities of :mod:`training_roi.linking.identity`, so
every later stage reads one table whatever the LMS delivered.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir
from ibis.backends import BaseBackend

__all__ = ["learning_records"]


def learning_records(con: BaseBackend) -> ir.Table:
    """Learning evidence from xAPI statements (voided ones and voiding ones left out) and completions."""
    st = con.table("lms_statement")
    st = st.filter(~st.is_voided & st.voided_statement_id.isnull() & (st.object_type == "Activity"))
    span = st.score_max - st.score_min
    score = ibis.coalesce(
        st.score_scaled * 100,
        ibis.cases((span > 0, (st.score_raw - st.score_min) / span * 100), else_=ibis.null().cast("float64")),
    )
    from_xapi = st.select(
        record_key=st.statement_id + "|" + st.actor_key,
        learner_key=st.actor_key,
        source=ibis.literal("xapi"),
        verb=st.verb,
        activity_id=st.activity_id,
        activity_name=st.activity_name,
        course_id=ibis.coalesce(st.parent_id, st.activity_id),
        program=st.grouping_id,
        occurred_at=st.timestamp,
        score_pct=score,
        success=st.success,
        minutes=st.duration_seconds / 60,
    )
    # Every row of the completion report is evidence: a completed one is a completion; one not yet
    # completed an attempt (its minutes are time spent all the same), dated by its enrolment.
    done = con.table("lms_completion")
    finished = done.completed_at.notnull()
    from_completions = done.select(
        record_key=done.completion_key,
        learner_key=ibis.coalesce("lms:" + done.learner_id, "mbox:" + done.email_norm),
        source=ibis.literal("completions"),
        verb=finished.ifelse(ibis.literal("completed"), ibis.literal("attempted")),
        activity_id=done.course_id,
        activity_name=done.course_title,
        course_id=done.course_id,
        program=done.program,
        occurred_at=ibis.coalesce(done.completed_at, done.enrolled_at),
        # An unfinished enrolment's partial score or "not passed" is no outcome: only its time counts.
        score_pct=finished.ifelse(done.score, ibis.null().cast("float64")),
        success=finished.ifelse(done.passed, ibis.null().cast("boolean")),
        minutes=done.minutes,
    )
    return from_xapi.union(from_completions)
