"""The probability of payback against figures worked by hand and closed-form laws."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from scipy import stats

from training_roi.value.payback import Payback, payback_odds


def test_without_cost_ranges_the_odds_are_shares_of_the_replicates():
    odds = payback_odds(revenue_draws=np.array([100.0, 200.0, 300.0, 400.0, np.nan]), estimate=250.0, interval=None,
                        confidence=0.95, margin=1.0, costs={"development": Decimal(250)}, hurdle_pct=20.0)
    assert odds is not None and odds.source == "replicates" and odds.seed is None and odds.draws == 5
    assert odds.prob_positive == pytest.approx(2 / 5)  # 300 and 400 exceed 250; the failed replicate does not
    assert odds.prob_hurdle == pytest.approx(1 / 5)  # ROI > 20% needs benefit > 300: only 400
    assert odds.roi_quantiles["p95"] == pytest.approx(60.0)  # (400 − 250) / 250
    assert odds.roi_quantiles["p5"] is None  # the failed replicate is the worst case


def test_a_declared_cost_range_is_a_triangular_law_around_the_cost_as_loaded():
    # Revenue certain at 1,000; cost 500 certain + 400 likely, at least 200, at most 800. P(1,000 > 500 + B) =
    # P(B < 500) = 1 − (800 − 500)² / ((800 − 200)(800 − 400)) = 0.625 for the triangular law.
    def odds_with(seed: int) -> Payback | None:
        return payback_odds(revenue_draws=np.full(50, 1_000.0), estimate=1_000.0, interval=None, confidence=0.95,
                            margin=1.0, costs={"platform": Decimal(500), "development": Decimal(400)},
                            ranges={"development": (Decimal(200), Decimal(800))}, seed=seed)

    odds = odds_with(3)
    assert odds is not None and odds.draws == 20_000 and odds.seed == 3
    assert odds.prob_positive == pytest.approx(0.625, abs=0.015)
    assert odds_with(3) == odds  # the same seed, the same figures


def test_without_replicates_the_interval_is_read_as_normal():
    odds = payback_odds(revenue_draws=None, estimate=1_000.0, interval=(800.0, 1_200.0), confidence=0.95,
                        margin=1.0, costs={"other": Decimal(900)}, seed=1)
    se = 400 / (2 * stats.norm.ppf(0.975))
    assert odds is not None and odds.source == "normal"
    assert odds.prob_positive == pytest.approx(stats.norm.sf((900 - 1_000) / se), abs=0.01)


@pytest.mark.parametrize(("ranges", "words"), [
    ({"travel": (Decimal(0), Decimal(10))}, "names 'travel', which is not a cost category"),
    ({"development": (Decimal(500), Decimal(900))}, "does not contain the cost as loaded, 400.00"),
])
def test_a_range_that_cannot_hold_is_refused_saying_why(ranges, words):
    with pytest.raises(ValueError, match=words):
        payback_odds(revenue_draws=np.ones(3), estimate=1.0, interval=None, confidence=0.95, margin=1.0,
                     costs={"development": Decimal(400)}, ranges=ranges)
