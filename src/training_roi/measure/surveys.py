"""Survey answers a study reads: the participants' and managers' estimates of the program's share.

Phillips' isolation by asking the people who were there
(:func:`training_roi.isolate.estimate_participant`) works on these answers.
"""

from __future__ import annotations

import polars as pl
from ibis.backends import BaseBackend

__all__ = ["survey_estimates"]


def survey_estimates(con: BaseBackend, program: str) -> pl.DataFrame:
    """The estimate answers about ``program`` in the warehouse ``con``: one row per answer.

    Columns: ``email_norm``, ``role``, ``question``, ``score`` (the % of the improvement the
    respondent attributes to the program), ``confidence`` (0–100) and ``submitted_at``, in the
    order they were submitted. Empty when nobody answered an estimate question about it.
    """
    s = con.table("survey_response")
    s = s.filter((s.level == "estimate") & (s.program == program))
    expr = s.select("email_norm", "role", "question", "score", "confidence", "submitted_at").order_by(
        ["submitted_at", "email_norm", "question"])
    frame = pl.from_arrow(expr.to_pyarrow())
    assert isinstance(frame, pl.DataFrame)
    return frame
