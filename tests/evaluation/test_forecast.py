"""The forecast on a simulated org, against the simulator's truth of the months held out from its fit.

A 36-month org whose program rolls out in months 15–24; the forecast is fitted on deals created in
the first 27 months only (``forecast.fit_through``), so months 7 to 12 after training of most reps
are in no fit. The truth (:mod:`training_roi.simulate.after_training`) is the expected incremental
revenue per trained rep, summed month by month since training.
"""

from __future__ import annotations

import pytest

from training_roi import Study, evaluate
from training_roi.simulate.after_training import incremental_per_trained_rep


def _study(course: str, **forecast: object) -> Study:
    return Study.model_validate({
        "name": "forecast", "program": {"name": "Sales Excellence", "activities": [course]},
        "costs": {"participant_time": {"hourly_rate": 60}}, "value": {"gross_margin": 0.6},
        "isolation": {"bootstrap_replicates": 200}, "attribution": {"enabled": False}, "forecast": forecast})


@pytest.fixture(scope="module")
def org(simulated_org):
    """The shared 300-rep, 36-month org (tests/evaluation/conftest.py)."""
    return simulated_org


def test_the_forecast_covers_the_held_out_months_truth(org):
    con, course, folder = org
    truth = incremental_per_trained_rep(folder, 18)
    ev = evaluate(con, _study(course, fit_through="2026-03-31"))
    f = ev.forecast
    assert f is not None, ev.forecast_basis
    assert "left out of the fit" in ev.forecast_basis
    assert f.measured_months < 12  # the cut-off leaves later months to the extrapolation
    for h in (12, 18):
        m = f.at(h)
        assert m is not None and not m.measured
        low, high = float(m.revenue_low) / f.units, float(m.revenue_high) / f.units
        assert low <= truth[h] <= high, (h, low, truth[h], high)
    # The cumulative figures are consistent with the cost and the margin at every month.
    for m in f.months:
        assert m.net_benefit == m.benefit - m.cost
        assert m.roi_low is not None and m.roi_pct is not None and m.roi_high is not None
        assert m.roi_low <= m.roi_pct <= m.roi_high


def test_without_a_cut_off_more_months_are_measured_and_the_document_carries_the_forecast(org):
    con, course, _ = org
    cut = evaluate(con, _study(course, fit_through="2026-03-31")).forecast
    full = evaluate(con, _study(course))
    assert cut is not None and full.forecast is not None
    assert full.forecast.measured_months > cut.measured_months
    doc = full.asdict()["forecast"]
    assert [m["month"] for m in doc["months"]] == list(range(1, 19))
    assert doc["units"] == full.primary.trained_units
    assert {s["month"] for s in doc["scale_up"]} == {6, 12, 18}
    assert all(s["units"] == full.primary.comparison_units for s in doc["scale_up"])


def test_a_study_can_turn_the_forecast_off(org):
    con, course, _ = org
    ev = evaluate(con, _study(course, enabled=False))
    assert ev.forecast is None and "not requested" in ev.forecast_basis
    assert ev.asdict()["forecast"] == {"basis": ev.forecast_basis}


def test_joining_and_leaving_units_months_outside_their_steady_state_are_left_out_of_the_fit():
    """A rep hired in March 2024 is unobserved through August (6 months); one leaving mid-October from July on."""
    from datetime import date

    import polars as pl

    from training_roi.evaluation.forecast import _without_ramp
    from training_roi.measure.panels import UnitPanel
    from training_roi.measure.tenure import Tenure

    months = [date(2024, m, 1) for m in range(1, 13)]
    frame = pl.DataFrame({
        "unit": [u for u in ("hired", "leaver", "stayer") for _ in months],
        "period": months * 3, "treated_at": [None] * 36,
        "won_amount": [1000.0] * 36, "months": [1.0] * 36,
    }, schema_overrides={"treated_at": pl.Date})
    panel = UnitPanel(frame, outcome="revenue_per_rep", numerator="won_amount", denominator="months")
    steady, (joined, left) = _without_ramp(panel, Tenure(start={"hired": date(2024, 3, 10)},
                                                         end={"leaver": date(2024, 10, 15)}))
    assert (joined, left) == (1, 1)
    observed = steady.observed.group_by("unit").agg(pl.col("period").min().alias("first"),
                                                    pl.col("period").max().alias("last"))
    seen = {r["unit"]: (r["first"], r["last"]) for r in observed.iter_rows(named=True)}
    assert seen["hired"] == (date(2024, 9, 1), date(2024, 12, 1))  # March + 6 months: from September
    assert seen["leaver"] == (date(2024, 1, 1), date(2024, 6, 1))  # October − 3 months: up to June
    assert seen["stayer"] == (date(2024, 1, 1), date(2024, 12, 1))
