"""A unit-period without an outcome is unobserved: left out of every estimator, never counted as zero."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest
import statsmodels.formula.api as smf

from tests.isolate.test_event_study import dummy_regression, simulated_panel
from tests.isolate.test_matching import _tiny, psm_on_baseline
from tests.isolate.test_trend import event_rows, rollout_panel
from training_roi.isolate import (
    ESTIMATORS,
    EstimatorSettings,
    NotApplicable,
    compare_methods,
    estimate_staggered,
    estimate_trend,
    estimate_twfe_did,
)
from training_roi.measure.panels import UnitPanel


def _holes(panel: UnitPanel, column: str, share: float, seed: int) -> tuple[UnitPanel, UnitPanel]:
    """The panel with ``share`` of its ``column`` set to null, and the panel with those rows dropped."""
    rng = np.random.default_rng(seed)
    hole = rng.random(panel.frame.height) < share
    holed = panel.frame.with_columns(pl.when(pl.Series(hole)).then(None).otherwise(pl.col(column)).alias(column))
    return UnitPanel(frame=holed, outcome=panel.outcome, numerator=panel.numerator,
                     denominator=panel.denominator), UnitPanel(frame=panel.frame.filter(~pl.Series(hole)),
                                                               outcome=panel.outcome, numerator=panel.numerator,
                                                               denominator=panel.denominator)


@pytest.mark.parametrize("denominator", [False, True])
def test_twfe_leaves_null_outcomes_out_as_statsmodels_does_with_the_rows_dropped(denominator):
    panel, _ = simulated_panel(12, units=60, months=14, cohorts=(2, 11), never=0.3, denominator=denominator)
    column = "won" if denominator else "y"
    holed, dropped = _holes(panel, column, 0.1, seed=1)
    n = holed.unobserved
    assert n > 50
    effect = estimate_twfe_did(holed, post_months=4)
    ref = dummy_regression(dropped, -4, 3, event=False)  # statsmodels on the rows that have an outcome
    assert effect.estimate == pytest.approx(ref.params[0], rel=1e-8)
    assert effect.std_error == pytest.approx(ref.bse[0], rel=1e-8)
    assert effect.details["unit_months"] == ref.nobs
    assert any(w.startswith(f"{n} of {panel.frame.height:,} unit-months have no") and "not counted as zero" in w
               for w in effect.warnings)


def test_a_null_denominator_makes_the_unit_period_unobserved_too():
    panel, _ = simulated_panel(13, units=60, months=12, cohorts=(3, 9), never=0.3, denominator=True)
    holed, dropped = _holes(panel, "closed", 0.1, seed=2)
    ours = estimate_staggered(holed, post_months=3, replicates=50)
    assert ours.estimate == pytest.approx(estimate_staggered(dropped, post_months=3, replicates=50).estimate,
                                          rel=1e-12)
    assert any("have no win_rate (a null or NaN won or closed)" in w for w in ours.warnings)


def test_matching_reads_the_other_months_of_a_unit_with_a_missing_month():
    # The hand-worked panel of the matching tests, with T1's and C3's April missing: their levels
    # are constant over the post window (March, April), so March alone gives the same level and the
    # same matched difference-in-differences as the complete panel. Read as zeros they would not.
    frame = _tiny().frame.with_columns(
        pl.when(((pl.col("unit") == "C3") & (pl.col("period") == date(2024, 4, 1)))
                | ((pl.col("unit") == "T1") & (pl.col("period") == date(2024, 4, 1))))
        .then(None).otherwise(pl.col("revenue")).alias("revenue"))
    panel = UnitPanel(frame=frame, outcome="revenue_per_rep", numerator="revenue")
    e = psm_on_baseline(panel, pre_months=2, post_months=2, replicates=200)
    assert e.diagnostics["matches"] == {"T1": ["C3"], "T2": ["C5"], "T3": ["C6"]}
    assert e.estimate == pytest.approx(((4 - 1) + (3 - 2) + (1.5 - -1)) / 3)
    assert any(w.startswith("2 of 60 unit-months have no revenue_per_rep") for w in e.warnings)


def test_trend_line_fits_and_projects_the_observed_unit_months_only():
    panel = rollout_panel(seed=5, units=40)
    holed, _ = _holes(panel, "won", 0.08, seed=3)
    e = estimate_trend(holed, pre_months=12, post_months=6, replicates=99)
    df = event_rows(holed, 12, 6).dropna(subset=["won"])
    pre, post = df[df.phase == "pre"], df[df.phase == "post"].copy()
    fit = smf.wls("y ~ C(unit) + k + C(moy)", data=pre, weights=pre.closed).fit()
    post["projected"] = fit.predict(post)
    assert e.estimate == pytest.approx(float((post.won - post.closed * post.projected).sum() / post.closed.sum()),
                                       rel=1e-9)
    assert e.details["pre_unit_months"] == len(pre) and e.details["post_unit_months"] == len(post)


def test_participant_change_pools_the_observed_months():
    # One trained rep (March 2024) and one comparison rep; revenue 10 in January and February, 16 and
    # a missing month after: the change is 16 − 10 = 6, half of it credited by a fully sure learner.
    months = [date(2024, m, 1) for m in range(1, 5)]
    frame = pl.DataFrame({"unit": ["a"] * 4 + ["b"] * 4, "period": months * 2,
                          "treated_at": [date(2024, 3, 20)] * 4 + [None] * 4,
                          "revenue": [10.0, 10.0, 16.0, None, 5.0, 5.0, 5.0, 5.0]})
    panel = UnitPanel(frame=frame, outcome="revenue", numerator="revenue")
    surveys = pl.DataFrame({"role": ["learner"], "score": [50.0], "confidence": [100.0]})
    c = compare_methods(panel, post_months=2, methods=("participant",), surveys=surveys, refutations=False,
                        replicates=20)
    effect = c.result("participant").effect  # type: ignore[union-attr]
    assert effect is not None and effect.estimate == pytest.approx(3.0) and effect.baseline == pytest.approx(10.0)
    assert any("1 of 8 unit-months have no revenue" in w for w in effect.warnings)


def test_every_estimator_that_runs_says_how_many_unit_periods_it_left_out():
    panel, _ = simulated_panel(9, units=200, months=24, cohorts=(10, 12), never=0.4, denominator=True)
    frame = panel.frame.with_columns(size=pl.col("unit").str.slice(-1).cast(pl.Float64))
    holes, _ = _holes(UnitPanel(frame=frame, outcome=panel.outcome, numerator=panel.numerator,
                                denominator=panel.denominator), panel.numerator, 0.03, 4)
    holed = UnitPanel(frame=holes.frame, outcome=panel.outcome, numerator=panel.numerator,
                      denominator=panel.denominator, covariates=("size",))
    settings = EstimatorSettings(post_months=3, replicates=99)
    ran = []
    for name, spec in ESTIMATORS.items():
        try:
            effect = spec.run(holed, settings)
        except NotApplicable:
            continue
        ran.append(name)
        assert any(f"of {holed.frame.height:,} unit-months have no" in w for w in effect.warnings), name
    assert {"drdid", "twfe", "staggered", "staggered_dr", "psm"} <= set(ran)
