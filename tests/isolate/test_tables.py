"""A pandas DataFrame or an Arrow table works wherever the family takes a table, with the figures worked by hand."""

from __future__ import annotations

from datetime import date

import pandas as pd
import polars as pl
import pytest

from tests.isolate.test_dose import _hand_panel
from training_roi.isolate import compare_methods, dose_changes, estimate_participant, randomise, write_assignment
from training_roi.measure.panels import UnitPanel


def test_survey_answers_as_pandas():
    answers = pd.DataFrame({"role": ["learner", "learner", "manager"], "score": [60.0, 40.0, 30.0],
                            "confidence": [80.0, 50.0, 90.0]})
    # 10 × 0.6 × 0.8 and 10 × 0.4 × 0.5 from the learners; 10 × 0.3 × 0.9 from the manager.
    assert estimate_participant(10.0, answers, baseline=1.0, role="learner", replicates=50).estimate == \
        pytest.approx((4.8 + 2.0) / 2)
    months = [date(2024, m, 1) for m in range(1, 5)]
    panel = UnitPanel(frame=pd.DataFrame({"unit": ["a"] * 4, "period": months, "treated_at": [date(2024, 3, 5)] * 4,
                                          "y": [10.0, 10.0, 14.0, 14.0]}), outcome="y", numerator="y")
    c = compare_methods(panel, post_months=2, methods=("participant",), surveys=answers, refutations=False,
                        replicates=50)
    effect = c.result("participant").effect  # type: ignore[union-attr]
    # The change 14 − 10 = 4 times the mean credited share (0.48 + 0.2 + 0.27) / 3.
    assert effect is not None and effect.estimate == pytest.approx(4 * (0.48 + 0.2 + 0.27) / 3)


def test_doses_as_pandas_and_assignments_from_pandas(tmp_path):
    doses = pd.DataFrame({"unit": ["a", "b", "zz"], "lessons": [1, 3, 2],
                          "first_lesson": [None, date(2024, 2, 20), date(2024, 1, 1)]})
    changes = dose_changes(_hand_panel(), doses=doses, pre_months=1, post_months=2)
    # As worked by hand in the dose tests: a +0.5, b −0.75, c 0 (d has no January deal; zz no panel).
    assert changes["unit"].to_list() == ["a", "b", "c"]
    assert changes["change"].to_list() == pytest.approx([0.5, -0.75, 0.0])
    reps = pd.DataFrame({"unit": [f"r{i}" for i in range(8)], "team": ["A", "B"] * 4})
    plan = randomise(reps, strata=["team"], waves=2, seed=1)
    assert plan.group_by("stratum", "wave").len().sort("stratum", "wave")["len"].to_list() == [2, 2, 2, 2]
    written = write_assignment(plan.to_pandas(), tmp_path / "waves.csv")
    assert pl.read_csv(written).columns == ["unit", "wave", "group"]
