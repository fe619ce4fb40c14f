"""The money formulas: the seed's and Phillips' worked examples, crediting rules, properties."""

from __future__ import annotations

import doctest
import importlib
from decimal import Decimal, localcontext
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import training_roi.value
from training_roi.value import (
    conservative_credit,
    percentile_interval,
    roi,
    roi_interval,
    roi_pct_from_lift,
    seed_model,
    value_intervals,
)

# The package re-exports the function `roi`, which hides the module of the same name.
roi_module = importlib.import_module("training_roi.value.roi")

cents = st.integers(min_value=-(10**11), max_value=10**11).map(lambda n: Decimal(n).scaleb(-2))
positive_cents = st.integers(min_value=1, max_value=10**11).map(lambda n: Decimal(n).scaleb(-2))


def test_all_is_sorted_and_exported():
    names = training_roi.value.__all__
    # The order ruff keeps (RUF022): constants, then classes, then functions, each alphabetical.
    assert names == sorted(names, key=lambda n: (not n.isupper(), not n[0].isupper(), n))
    for name in names:
        assert hasattr(training_roi.value, name)


def test_doctests():
    assert doctest.testmod(roi_module).failed == 0


def test_seed_worked_example():
    total_cost = sum(Decimal(x) for x in ("5000", "8000", "2000", "1000"))
    m = seed_model(
        baseline_conversion="0.08",
        post_conversion="0.11",
        adjusted_lift="0.02",
        opportunities=50,
        average_deal_size=10_000,
        total_cost=total_cost,
    )
    assert m.raw_lift == Decimal("0.03")
    assert m.pipeline_value == 500_000
    assert m.incremental_revenue == 10_000
    assert m.benefit == 10_000
    assert m.figures.cost == 16_000
    assert m.figures.net_benefit == -6_000
    assert m.figures.roi_pct == Decimal("-37.5")
    assert m.figures.payback_months == Decimal("19.2")  # 16,000 / (10,000 / 12)
    assert "ignores changes in deal size" in str(m)
    assert m.asdict()["figures"]["roi_pct"] == str(m.figures.roi_pct)


def test_seed_model_pipeline_given_directly_and_margin():
    m = seed_model(
        baseline_conversion="0.08", post_conversion="0.11", adjusted_lift="0.02",
        pipeline_value=500_000, total_cost=16_000, gross_margin="0.5",
    )
    assert m.incremental_revenue == 10_000 and m.benefit == 5_000
    assert m.figures.roi_pct == Decimal("-68.75")


def test_seed_model_rejects_inconsistent_or_missing_pipeline():
    common = {"baseline_conversion": "0.08", "post_conversion": "0.11", "adjusted_lift": "0.02", "total_cost": 1}
    with pytest.raises(ValueError, match="differs"):
        seed_model(**common, opportunities=50, average_deal_size=10_000, pipeline_value=1)
    with pytest.raises(ValueError, match="pipeline_value"):
        seed_model(**common)
    with pytest.raises(ValueError, match="together"):
        seed_model(**common, opportunities=50)


def test_phillips_worked_example():
    f = roi(50_000, 20_000)
    assert (f.benefit, f.cost, f.net_benefit) == (50_000, 20_000, 30_000)
    assert f.roi_pct == 150
    assert f.benefit_cost_ratio == Decimal("2.5")
    assert f.payback_months == Decimal("4.8")
    assert "150.0" in str(f)
    assert f.asdict()["roi_pct"] == "150"


@pytest.mark.parametrize("cost", [0, -1, "-0.01"])
def test_roi_refuses_non_positive_cost(cost):
    with pytest.raises(ValueError, match="cost must be positive"):
        roi(100, cost)


def test_roi_refuses_floats():
    with pytest.raises(TypeError, match="not float"):
        roi(0.1, 1)  # type: ignore[arg-type]


def test_payback_is_none_without_positive_benefit():
    assert roi(0, 100).payback_months is None
    assert roi(-5, 100).payback_months is None


def test_credit_under_threshold():
    c = conservative_credit(0.002, 0.08, min_relative_change=0.05, interval=(0.001, 0.003))
    assert c.credited == 0 and not c.is_credited and c.estimate == 0.002
    assert "under the threshold" in c.reason and "includes zero" not in c.reason


def test_credit_interval_with_zero():
    c = conservative_credit(0.02, 0.08, min_relative_change=0.05, interval=(-0.001, 0.04))
    assert c.credited == 0 and not c.is_credited
    assert "includes zero" in c.reason and "threshold" not in c.reason


def test_credit_both_reasons():
    c = conservative_credit(0.001, 0.08, min_relative_change=0.05, interval=(-0.01, 0.01))
    assert "threshold" in c.reason and "includes zero" in c.reason


def test_credit_passes():
    c = conservative_credit(0.02, 0.08, min_relative_change=0.05, interval=(0.005, 0.035))
    assert c.credited == 0.02 and c.is_credited and c.relative_change == pytest.approx(0.25)
    assert c.reason.startswith("credited")


def test_credit_established_harm_is_credited_negative():
    c = conservative_credit(-0.02, 0.08, min_relative_change=0.05, interval=(-0.03, -0.01))
    assert c.credited == -0.02


def test_credit_validates_inputs():
    with pytest.raises(ValueError, match="baseline"):
        conservative_credit(0.02, 0, min_relative_change=0.05, interval=(0.0, 0.1))
    with pytest.raises(ValueError, match="lo ≤ hi"):
        conservative_credit(0.02, 0.08, min_relative_change=0.05, interval=(0.1, 0.0))


@given(cents, positive_cents)
def test_roi_sign_is_sign_of_net_benefit(benefit, cost):
    f = roi(benefit, cost)
    assert (f.roi_pct > 0) == (f.net_benefit > 0)
    assert (f.roi_pct < 0) == (f.net_benefit < 0)
    assert (f.roi_pct == 0) == (f.net_benefit == 0)


@given(cents, positive_cents)
def test_roi_pct_is_correctly_rounded_ratio_minus_one(benefit, cost):
    exact = (Fraction(benefit) / Fraction(cost) - 1) * 100
    with localcontext() as ctx:
        ctx.prec = roi_module.PRECISION
        expected = Decimal(exact.numerator) / Decimal(exact.denominator)
    assert roi(benefit, cost).roi_pct == expected


@given(
    cents,
    st.integers(min_value=0, max_value=10),
    st.integers(min_value=0, max_value=10),
    st.integers(min_value=-2, max_value=2),
)
def test_roi_pct_equals_b_over_c_minus_one_in_decimal(benefit, twos, fives, shift):
    # A cost of 2^i·5^j (scaled by a power of ten) makes b/c terminate, so the Decimal
    # expression is exact and must match to the last digit.
    cost = Decimal(2**twos * 5**fives).scaleb(shift)
    assert roi(benefit, cost).roi_pct == (benefit / cost - 1) * 100


replicates = st.lists(st.floats(min_value=-0.5, max_value=0.5, allow_nan=False), min_size=1, max_size=300)
pipelines = st.floats(min_value=0, max_value=1e9)
costs = st.floats(min_value=0.01, max_value=1e8)
margins = st.floats(min_value=0, max_value=1)
confidences = st.floats(min_value=0.5, max_value=0.99)


@given(replicates, pipelines, costs, margins, confidences)
def test_roi_interval_equals_percentiles_of_per_replicate_roi(reps, pipeline, cost, margin, confidence):
    direct = [(lift * pipeline * margin - cost) / cost * 100.0 for lift in reps]
    assert roi_interval(np.array(reps), pipeline, cost, margin, confidence) == percentile_interval(direct, confidence)
    iv = value_intervals(reps, pipeline, cost, margin, confidence)
    assert iv.lift == percentile_interval(reps, confidence)
    assert iv.incremental_revenue == percentile_interval([x * pipeline for x in reps], confidence)
    assert iv.benefit == percentile_interval([x * pipeline * margin for x in reps], confidence)


@given(replicates, pipelines, costs, margins, confidences)
def test_interval_contains_median_replicate(reps, pipeline, cost, margin, confidence):
    median = np.quantile(np.array(reps), 0.5, method="inverted_cdf")
    point = float(roi_pct_from_lift(median, pipeline, cost, margin))
    lo, hi = roi_interval(reps, pipeline, cost, margin, confidence)
    assert lo <= point <= hi


def test_interval_validates_inputs():
    with pytest.raises(ValueError, match="cost"):
        roi_interval([0.01], 1.0, 0.0)
    with pytest.raises(ValueError, match="non-empty"):
        roi_interval([], 1.0, 1.0)
    with pytest.raises(ValueError, match="confidence"):
        roi_interval([0.01], 1.0, 1.0, confidence=1.0)
