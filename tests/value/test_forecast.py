"""The forecast's arithmetic, against a two-month example worked by hand.

Measured: month 0 effect 100, month 1 effect 200 per unit-month, covariance [[4, 1], [1, 9]];
half the trained units are still there from month 1 on; 10 trained units; cost $1,000; margin 0.5.
The held level is the precision-weighted mean of the two months: Σ⁻¹1 = [8, 3] / 35, so the
weights are 8/11 and 3/11 and the level (8 × 100 + 3 × 200) / 11 = 1,400 / 11.
"""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pytest

from training_roi.value.forecast import EventPath, forecast, measured_run

Z95 = 1.959963984540054  # the standard normal's 97.5th percentile


def _path(**kw: object) -> EventPath:
    return EventPath(effect=np.array([100.0, 200.0]), covariance=np.array([[4.0, 1.0], [1.0, 9.0]]),
                     retention=np.array([1.0, 0.5]), dof=kw.get("dof"))  # type: ignore[arg-type]


def _var(c0: float, c1: float) -> float:
    """c′Σc for Σ = [[4, 1], [1, 9]], written out."""
    return 4 * c0 * c0 + 2 * 1 * c0 * c1 + 9 * c1 * c1


def test_cumulative_revenue_and_its_interval_match_the_hand_worked_example():
    f = forecast(_path(), units=10, cost=Decimal("1000"), margin=0.5, horizon=4, hold=2)
    level = 1400 / 11
    # Per unit, month by month: 100 × 1, 200 × 0.5, then the held level × 0.5 twice.
    cumulative = [100, 200, 200 + level / 2, 200 + level]
    # Weights on (β0, β1) of each cumulative sum.
    weights = [(1, 0), (1, 0.5), (1 + 0.5 * 8 / 11, 0.5 + 0.5 * 3 / 11), (1 + 8 / 11, 0.5 + 3 / 11)]
    for m, (total, (c0, c1)) in enumerate(zip(cumulative, weights, strict=True), start=1):
        month = f.at(m)
        assert month is not None
        assert float(month.revenue) == pytest.approx(10 * total, abs=0.006)
        half = 10 * Z95 * math.sqrt(_var(c0, c1))
        assert float(month.revenue_low) == pytest.approx(10 * total - half, abs=0.006)
        assert float(month.revenue_high) == pytest.approx(10 * total + half, abs=0.006)
        assert month.measured is (m <= 2)
        assert month.cost == Decimal("1000")
    # Month 2: benefit 2,000 × 0.5 = 1,000 = cost: ROI 0.0%, paid back (net benefit ≥ 0) that month.
    two = f.at(2)
    assert two is not None and two.roi_pct == Decimal("0.0") and two.net_benefit == Decimal("0.00")
    assert f.payback_month == 2
    assert two.prob_positive == pytest.approx(0.5)
    # Month 4: ROI = (10 × cumulative × 0.5 − 1,000) / 1,000.
    four = f.at(4)
    assert four is not None
    assert float(four.roi_pct or 0) == pytest.approx((10 * cumulative[3] * 0.5 - 1000) / 10, abs=0.05)


def test_a_half_life_fades_the_held_effect_and_student_t_widens_the_interval():
    f = forecast(_path(dof=9), units=10, cost=Decimal("1000"), margin=1.0, horizon=4, hold=2, half_life_months=1)
    level = 1400 / 11
    # Month index 2 is one month after the last measured (1): × ½; month index 3: × ¼.
    expected = 200 + 0.5 * level * 0.5 + 0.5 * level * 0.25
    four = f.at(4)
    assert four is not None
    assert float(four.revenue) == pytest.approx(10 * expected, abs=0.006)
    c0, c1 = 1 + 0.5 * (0.5 + 0.25) * 8 / 11, 0.5 + 0.5 * (0.5 + 0.25) * 3 / 11
    t975 = 2.262157162740992  # Student's t with 9 degrees of freedom, 97.5th percentile (tables)
    assert float(four.revenue_high) - float(four.revenue) == pytest.approx(10 * t975 * math.sqrt(_var(c0, c1)),
                                                                            abs=0.006)


def test_scale_up_applies_the_per_unit_path_to_the_units_not_yet_trained():
    f = forecast(_path(), units=10, cost=Decimal("1000"), margin=0.5, horizon=18, hold=2, remaining_units=4,
                 variable_cost_per_unit=Decimal("25"))
    level = 1400 / 11
    six = 200 + 4 * 0.5 * level  # months 0–5 per unit
    s = next(x for x in f.scale_up if x.month == 6)
    assert s.units == 4 and s.cost == Decimal("100.00")
    assert float(s.revenue) == pytest.approx(4 * six, abs=0.006)
    assert float(s.net_benefit) == pytest.approx(4 * six * 0.5 - 100, abs=0.011)
    assert [x.month for x in f.scale_up] == [6, 12, 18]


def test_a_forecast_that_never_pays_back_says_so():
    path = EventPath(effect=np.array([-5.0]), covariance=np.array([[1.0]]), retention=np.array([1.0]), dof=None)
    f = forecast(path, units=3, cost=Decimal("50"), margin=1.0, horizon=6, hold=1)
    assert f.payback_month is None and f.sure_payback_month is None
    assert all(m.net_benefit < 0 for m in f.months)


def test_the_measured_run_stops_at_the_first_gap_and_bad_shapes_are_refused():
    assert measured_run([0, 1, 2, 4, 5]) == 3
    assert measured_run([1, 2]) == 0
    with pytest.raises(ValueError, match="covariance"):
        EventPath(effect=np.array([1.0, 2.0]), covariance=np.eye(3), retention=np.ones(2), dof=None)
    with pytest.raises(ValueError, match="positive"):
        forecast(_path(), units=1, cost=Decimal(1), margin=1.0, horizon=0)
