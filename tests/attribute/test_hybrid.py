"""The hybrid: training's attributed credit never exceeds the incremental revenue the lift established."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from training_roi.attribute import calibrate

PROGRAM = "training: Sales Excellence"
_rows = st.lists(st.tuples(st.sampled_from([("training", PROGRAM), ("training", "training: GDPR"),
                                            ("activity", "task: call"), ("campaign", "campaign: Webinar")]),
                           st.floats(min_value=0, max_value=1e7, allow_nan=False)), min_size=1, max_size=40)


@given(rows=_rows, incremental=st.floats(min_value=-1e6, max_value=1e8, allow_nan=False))
def test_calibrated_training_credit_never_exceeds_the_lift(rows, incremental):
    table = pl.DataFrame({"kind": [k for (k, _), _ in rows], "channel": [c for (_, c), _ in rows],
                          "credited_value": [v for _, v in rows]})
    out, cal = calibrate(table, program_channel=PROGRAM, incremental_revenue=incremental)
    program = out.filter(pl.col("channel") == PROGRAM)
    raw = float(program["credited_value"].sum())
    held = float(program["calibrated_value"].sum())
    assert held <= max(incremental, 0.0) * (1 + 1e-9) + 1e-6
    assert held == pytest.approx(min(raw, max(incremental, 0.0)), rel=1e-9, abs=1e-6)  # all of it when it fits
    assert cal.raw_program_value == pytest.approx(raw) and cal.calibrated_program_value == pytest.approx(held)
    others = out.filter((pl.col("kind") == "training") & (pl.col("channel") != PROGRAM))
    assert others["calibrated_value"].sum() == 0  # no lift was established for other programs
    crm = out.filter(pl.col("kind") != "training")
    assert crm["calibrated_value"].to_list() == crm["credited_value"].to_list()  # the lift says nothing of them


def test_without_an_established_effect_training_keeps_nothing():
    table = pl.DataFrame({"kind": ["training", "activity"], "channel": [PROGRAM, "task: call"],
                          "credited_value": [600.0, 400.0]})
    out, cal = calibrate(table, program_channel=PROGRAM, incremental_revenue=0)
    assert out["calibrated_value"].to_list() == [0.0, 400.0] and cal.factor == 0
    half, cal = calibrate(table, program_channel=PROGRAM, incremental_revenue=300)
    assert half["calibrated_value"].to_list() == [300.0, 400.0] and cal.factor == 0.5
