"""Assessment answers item by item, and who the units are to an LMS: the facts of the knowledge gaps.

An assessment that reports each question (xAPI ``answered`` on the item, ``result.success`` true
or false) says which skills a learner has and lacks; a study's skill map says which skill each
item tests (:mod:`training_roi.isolate.next_lesson` turns the counts into gaps). Answers reach CRM
users through ``learner_identity``, as completions do; voided statements are already gone from
``learning_record``.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl
from ibis.backends import BaseBackend

__all__ = ["item_answers", "unit_directory"]


def item_answers(con: BaseBackend, items: Sequence[str]) -> pl.DataFrame:
    """Every answer to one of ``items`` by a CRM user: ``unit``, ``item``, ``answered_at`` (UTC), ``correct``.

    An answer without ``result.success`` says nothing of the skill and is not returned.
    """
    r = con.table("learning_record")
    li = con.table("learner_identity")
    r = r.filter((r.verb == "answered") & r.success.notnull() & r.activity_id.isin(list(items)))
    j = r.join(li, "learner_key")
    j = j.filter(j.crm_user_id.notnull())
    out = pl.from_arrow(j.select(unit=j.crm_user_id, item=j.activity_id, answered_at=j.occurred_at,
                                 correct=j.success).to_pyarrow())
    assert isinstance(out, pl.DataFrame)
    return out.sort("unit", "answered_at", "item")


def unit_directory(con: BaseBackend, units: Sequence[str]) -> pl.DataFrame:
    """The CRM users ``units`` as an LMS knows them: ``unit``, ``name``, ``email`` (as exported).

    Every user is read and the units picked in Polars: a filter on thousands of ids compiles slowly in Ibis.
    """
    u = con.table("crm_user")
    out = pl.from_arrow(u.select(unit=u.user_id, name=u.name, email=u.email).to_pyarrow())
    assert isinstance(out, pl.DataFrame)
    return out.filter(pl.col("unit").is_in(list(units))).unique("unit", keep="first").sort("unit")
