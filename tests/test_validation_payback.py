"""The calibration check of ``validation/payback.py``, against figures worked by hand and a closed-form law.

Its tables (Wilson intervals, reliability bins, Brier scores) are checked on hand-made runs, and
the product's P(ROI > 0) over orgs without an effect against its expectation under an unbiased
estimate.
"""

from __future__ import annotations

import math
from pathlib import Path
from types import ModuleType

import pytest
from scipy.stats import norm

from tests.builders import validation_script


@pytest.fixture(scope="module")
def payback() -> ModuleType:
    """The calibration script."""
    return validation_script("payback")


def _runs(pairs: list[tuple[float, float]]) -> list[dict[str, float]]:
    return [{"prob_positive": p, "roi_truth": roi} for p, roi in pairs]


def test_the_wilson_interval_is_the_score_interval(payback: ModuleType) -> None:
    # 3 of 10: p̂ = 0.3, z = 1.96; centre (p̂ + z²/2n) / (1 + z²/n), half-width z√(p̂(1 − p̂)/n + z²/4n²) / (1 + z²/n).
    z, n, p = 1.959963984540054, 10, 0.3
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert payback.wilson(3, 10) == pytest.approx((centre - half, centre + half), abs=1e-9)
    assert payback.wilson(3, 10) == pytest.approx((0.1078, 0.6032), abs=1e-4)  # the published 3-of-10 interval


def test_the_reliability_table_bins_the_forecasts_and_counts_who_paid_back(payback: ModuleType) -> None:
    runs = _runs([(0.1, -50.0), (0.15, 20.0), (0.2, -10.0), (0.5, 5.0), (0.55, -5.0), (0.59, 1.0), (0.8, 30.0),
                  (1.0, 0.0), (0.95, 40.0)])
    rows = payback.reliability(runs)
    assert [r["runs"] for r in rows] == [2, 1, 3, 0, 3]  # 0.2 opens the second bin; 0.8 and 1.0 are in the last
    assert rows[0]["predicted"] == pytest.approx(0.125) and rows[0]["observed"] == pytest.approx(0.5)
    assert rows[2]["predicted"] == pytest.approx(1.64 / 3) and rows[2]["observed"] == pytest.approx(2 / 3)
    assert rows[3]["predicted"] is None and rows[3]["interval"] is None
    assert rows[4]["observed"] == pytest.approx(2 / 3)  # an ROI of exactly 0 does not pay back


def test_the_brier_score_and_its_constant_reference(payback: ModuleType) -> None:
    score, reference = payback.brier(_runs([(0.9, 10.0), (0.2, -10.0), (0.6, -1.0), (0.5, 3.0)]))
    assert score == pytest.approx((0.01 + 0.04 + 0.36 + 0.25) / 4)
    assert reference == pytest.approx(0.25)  # half paid back: a constant 0.5 scores 0.25


def test_each_seed_draws_its_own_effect_scale_in_the_range(payback: ModuleType) -> None:
    scales = [payback.effect_scale(seed, (-0.5, 1.5)) for seed in range(1, 201)]
    assert all(-0.5 <= s <= 1.5 for s in scales) and payback.effect_scale(7) == payback.effect_scale(7)
    assert sum(s < 0.5 for s in scales) == pytest.approx(100, abs=25)  # uniform: half below the middle
    assert payback.effect_scale(3, (0.0, 0.0)) == 0.0


@pytest.mark.slow
def test_without_an_effect_p_of_payback_averages_its_expected_value(payback: ModuleType,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Zero effect, certain cost: the product's P(ROI > 0) over orgs is, on average, what an unbiased estimate says.

    The estimate of a zero effect is about normal around 0 with the interval's standard error s, and the
    replicates spread about it by s, so P = Φ((estimate − c) / s) for the break-even revenue c = cost ÷ margin,
    and over orgs E[P] = Φ(−c / (s√2)). The margin puts c near half a standard error (E[P] ≈ 0.37): P ≡ 0 (the
    credited figure, zero here, read instead of the estimate), P ≡ 1 and P(ROI < 0) in its place (≈ 0.63) all fail.
    """
    monkeypatch.syspath_prepend(str(Path(payback.__file__).parent))  # it imports from validation/money.py
    runs = [payback.one_run(seed, scenario="randomised", reps=300, months=24, replicates=1000, margin=0.3,
                            revenue="booked", scales=(0.0, 0.0)) for seed in range(1, 13)]
    assert all(r["revenue_truth"] == 0 and r["roi_truth"] == pytest.approx(-100.0) for r in runs)
    expected = []
    for r in runs:
        se = (r["interval"][1] - r["interval"][0]) / (2 * norm.ppf(0.975))
        expected.append(norm.cdf(-(r["cost"] / 0.3) / (se * math.sqrt(2))))
    mean_p = sum(r["prob_positive"] for r in runs) / len(runs)
    mean_expected = sum(expected) / len(expected)
    assert 0.25 < mean_expected < 0.45  # the margin did put c near half a standard error
    assert mean_p == pytest.approx(mean_expected, abs=0.2)
