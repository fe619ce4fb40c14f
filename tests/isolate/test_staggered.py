"""The staggered estimator against the `differences` package, a hand-worked rate and known simulated truth."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import polars as pl
import pytest
from differences import ATTgt

from tests.isolate.test_event_study import START, growing, simulated_panel
from training_roi.isolate.effect import NotApplicable, cluster_weights
from training_roi.isolate.event_study import estimate_twfe_did
from training_roi.isolate.staggered import estimate_staggered
from training_roi.measure.panels import UnitPanel


def month(index: int) -> str:
    return f"{(START + index) // 12}-{(START + index) % 12 + 1:02d}"


# differences 0.3 calls pandas APIs that pandas 3.1 deprecates; not ours to fix.
@pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")
@pytest.mark.parametrize("control", ["never_treated", "not_yet_treated"])
def test_group_time_effects_and_aggregations_equal_the_differences_package(control):
    post = 3
    panel, g = simulated_panel(11, units=150, months=12, cohorts=(3, 10), never=0.25)
    effect = estimate_staggered(panel, control=control, post_months=post, replicates=50)

    f = panel.frame
    data = pd.DataFrame({
        "entity": np.repeat(np.arange(150), 12), "time": np.tile(np.arange(12), 150),
        "cohort": np.repeat(np.where(np.isfinite(g), g, np.nan), 12), "y": f["y"].to_numpy(),
    }).set_index(["entity", "time"])
    ref = ATTgt(data=data, cohort_column="cohort", base_period="universal")
    ref.filter_gt(base_period="universal", relative_period_start=-post, relative_period_end=post - 1)
    ref.fit(formula="y", est_method="reg", control_group=control, progress_bar=False)
    cells = ref.results()[("ATTgtElements", "", "ATT")]
    theirs = {(month(int(c)), month(int(t))): v for (c, _, t), v in cells.items() if t != c - 1}
    ours = {(r["cohort"], r["period"]): r["att"] for r in effect.diagnostics["group_time"]}
    assert ours.keys() == theirs.keys() and len(ours) > 30
    for key, value in theirs.items():
        assert ours[key] == pytest.approx(value, abs=1e-9)

    simple = ref.aggregate("simple")[("SimpleAggregation", "", "ATT")].iloc[0]
    assert effect.estimate == pytest.approx(simple, abs=1e-9)
    event = ref.aggregate("event")[("EventAggregation", "", "ATT")]
    dynamic = {r["relative_month"]: r["att"] for r in effect.diagnostics["dynamic"]}
    assert sorted(dynamic) == sorted(event.index.tolist()) == list(range(-post, post))
    for e, value in event.items():
        assert dynamic[e] == pytest.approx(value, abs=1e-9)


def test_recovers_a_growing_effect_that_two_way_fixed_effects_understates():
    # 300 reps over 24 months, 85% trained in monthly cohorts from month 4 to 19; the effect is
    # 0.5 in the training month and grows by 0.5 a month. Every cohort has its first six months
    # in the data, so the true average over event months 0…5 is exactly mean(0.5 … 3.0) = 1.75.
    panel, g = simulated_panel(21)
    assert np.isfinite(g).mean() > 0.8 and np.unique(g[np.isfinite(g)]).size == 16
    truth = float(np.mean(growing(np.arange(6))))
    assert truth == 1.75
    for control in ("never_treated", "not_yet_treated"):
        cs = estimate_staggered(panel, control=control, post_months=6)
        assert cs.ci_low <= truth <= cs.ci_high
        assert cs.estimate == pytest.approx(truth, abs=0.15)
        months = {r["relative_month"]: r["att"] for r in cs.diagnostics["dynamic"]}
        for e in range(6):
            assert months[e] == pytest.approx(0.5 * (e + 1), abs=0.25)
    # TWFE uses earlier-trained units, whose effect is still growing, as controls: their growth
    # is read as a month effect and subtracted, so the estimate is too low — below its own
    # interval's reach of the truth.
    twfe = estimate_twfe_did(panel, post_months=6)
    assert twfe.estimate < truth - 0.15
    assert twfe.ci_high < truth


def test_pooled_rate_group_time_effect_worked_by_hand():
    # Rep A trained in February; reps B and C never. Won / closed deals by month:
    #        Jan   Feb   Mar
    #   A    1/2   3/4   2/2
    #   B    1/4   1/2   0/1
    #   C    1/1   0/0   2/3
    # ATT(Feb) = (3/4 − 1/2) − ((1+0)/(2+0) − (1+1)/(4+1)) = 0.25 − 0.1 = 0.15
    # ATT(Mar) = (2/2 − 1/2) − ((0+2)/(1+3) − 2/5)         = 0.5 − 0.1  = 0.4
    won = [1, 3, 2, 1, 1, 0, 1, 0, 2]
    closed = [2, 4, 2, 4, 2, 1, 1, 0, 3]
    frame = pl.DataFrame({
        "unit": [u for u in "ABC" for _ in range(3)],
        "period": [date(2025, m, 1) for m in (1, 2, 3)] * 3,
        "treated_at": [date(2025, 2, 20)] * 3 + [None] * 6,
        "won": won, "closed": closed,
    }, schema={"unit": pl.String, "period": pl.Date, "treated_at": pl.Date, "won": pl.Float64,
               "closed": pl.Float64})
    panel = UnitPanel(frame=frame, outcome="win_rate", numerator="won", denominator="closed")
    effect = estimate_staggered(panel, post_months=2, replicates=20)
    cells = {r["period"]: r["att"] for r in effect.diagnostics["group_time"]}
    assert cells == {"2025-02": pytest.approx(0.15), "2025-03": pytest.approx(0.4)}
    assert effect.estimate == pytest.approx((0.15 + 0.4) / 2)
    assert effect.baseline == pytest.approx(0.5)  # A's January


def test_each_bootstrap_draw_is_the_estimate_on_the_resampled_units():
    panel, _ = simulated_panel(31, units=40, months=10, cohorts=(2, 7), never=0.3, noise=1.0)
    effect = estimate_staggered(panel, control="not_yet_treated", post_months=3, replicates=4, seed=5)
    assert effect.draws is not None
    counts = cluster_weights(40, replicates=4, seed=5)
    units = sorted(panel.frame["unit"].unique().to_list())
    for r in range(4):
        copies = [panel.frame.filter(pl.col("unit") == u).with_columns(pl.lit(f"{u}#{k}").alias("unit"))
                  for u, c in zip(units, counts[r], strict=True) for k in range(int(c))]
        resampled = UnitPanel(frame=pl.concat(copies), outcome="y", numerator="y")
        assert effect.draws[r] == pytest.approx(estimate_staggered(resampled, control="not_yet_treated",
                                                                   post_months=3, replicates=2).estimate)


def test_everyone_trained_needs_not_yet_trained_controls():
    panel, _ = simulated_panel(41, units=60, months=12, cohorts=(2, 8), never=0.0, noise=0.5)
    with pytest.raises(NotApplicable, match="control='not_yet_treated'"):
        estimate_staggered(panel)
    effect = estimate_staggered(panel, control="not_yet_treated", post_months=3, replicates=50)
    # The last cohort has no one left to compare with; its cells are dropped and said so.
    last = max(r["cohort"] for r in effect.diagnostics["group_time"])
    assert last < month(8)
    assert any("could not be estimated" in w for w in effect.warnings)
    with pytest.raises(ValueError, match="control must be"):
        estimate_staggered(panel, control="everyone")  # type: ignore[arg-type]
