"""Window figures of every KPI on a tiny org whose every number is worked out by hand below."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tests.builders import unit_panel, window_panel, write
from tests.measure.test_sales import COURSE, OPPS, R1, R2
from training_roi.ingest.folder import ingest_folder
from training_roi.isolate import Resampling, did_rate
from training_roi.linking import link

MONTH = 30.4375


@pytest.fixture
def org(tmp_path: Path, con):
    write(tmp_path / "crm" / "User.csv", f"Id,Email\n{R1},a@x.com\n{R2},b@x.com\n")
    write(tmp_path / "crm" / "Opportunity.csv", OPPS.format(r1=R1, r2=R2))
    write(tmp_path / "lms" / "completions.csv",
          "learner_id,learner_email,course_id,course_title,program,enrolled_at,completed_at,score,passed,minutes\n"
          f"L1,A@x.com,{COURSE},X,P,2025-01-01,2025-02-15T12:00:00Z,60,false,30\n")
    ingest_folder(tmp_path, con)
    link(con)
    return con


@pytest.fixture
def panel(org):
    return window_panel(org, [COURSE], baseline_days=60, window_days=30)


def test_every_kpi_in_the_learners_own_windows(panel):
    # Rep 1 completed on 2025-02-15; rep 2 (the only comparison rep) gets that date too.
    # Baseline [2024-12-17, 2025-02-15) is cut to the first deal (2025-01-01): 45 days.
    # Post [2025-02-15, 2025-03-17) is cut after the last deal (2025-03-01): 15 days.
    g = {k: v[0] for k, v in panel.groups.items()}
    assert g["win_rate"].units == (R1,)
    assert (g["win_rate"].base_successes[0], g["win_rate"].base_trials[0]) == (1, 2)   # 1,000 won; 3,000 lost
    assert (g["win_rate"].post_successes[0], g["win_rate"].post_trials[0]) == (2, 2)   # 2,000 and 4,000 won
    size = g["avg_won_deal_size"]
    assert size.base_successes[0] / size.base_trials[0] == pytest.approx(1000)
    assert size.post_successes[0] / size.post_trials[0] == pytest.approx(3000)
    cycle = g["sales_cycle_days"]
    assert cycle.base_successes[0] / cycle.base_trials[0] == pytest.approx((30 + 10) / 2)
    assert cycle.post_successes[0] / cycle.post_trials[0] == pytest.approx((10 + 30) / 2)
    pipe = g["pipeline_created"]
    assert pipe.base_trials[0] == pytest.approx(45 / MONTH)
    assert pipe.post_trials[0] == pytest.approx(15 / MONTH)
    assert pipe.base_successes[0] / pipe.base_trials[0] == pytest.approx(4500 * MONTH / 45)
    assert pipe.post_successes[0] / pipe.post_trials[0] == pytest.approx(6000 * MONTH / 15)
    assert panel.post_pipeline == 6000 and panel.post_won_revenue == 6000 and panel.post_won_deals == 2
    assert panel.post_exposure_months == pytest.approx(15 / MONTH)
    assert panel.treated_post == {R1: (2, 6000.0, 6000.0)}
    comparison = panel.groups["win_rate"][1]
    assert comparison.units == (R2,)
    assert (comparison.base_successes[0], comparison.base_trials[0]) == (0, 1)
    assert comparison.post_trials[0] == 0


def test_revenue_per_rep_month_difference_in_differences(panel):
    treated, comparison = panel.groups["revenue_per_rep"]
    effect = did_rate(treated, comparison, replicates=200)
    # Rep 1: 1,000 over 45 days before, 6,000 over 15 days after; rep 2 won nothing in either.
    assert effect.estimate == pytest.approx(6000 * MONTH / 15 - 1000 * MONTH / 45)
    with pytest.raises(ValueError, match="no closed deals"):
        did_rate(*panel.groups["win_rate"], replicates=200)  # rep 2 closed nothing after


def test_one_resampling_serves_every_kpi_and_equals_its_own_seed():
    rng = np.random.default_rng(3)
    from training_roi.isolate import GroupWindows

    def group(n: int) -> GroupWindows:
        t = rng.integers(5, 30, (2, n)).astype(float)
        return GroupWindows(tuple(map(str, range(n))), np.floor(t[0] * 0.3), t[0], np.floor(t[1] * 0.4), t[1])

    treated, comparison = group(9), group(13)
    shared = Resampling.draw(9, 13, replicates=400, seed=11)
    assert shared.replicates == 400
    a = did_rate(treated, comparison, resampling=shared)
    b = did_rate(treated, comparison, replicates=400, seed=11)
    assert a.draws is not None and b.draws is not None
    np.testing.assert_array_equal(a.draws, b.draws)
    with pytest.raises(ValueError, match="other sizes"):
        did_rate(comparison, treated, resampling=shared)
    # Resampling many groups' sums in one matrix product gives the same draws.
    other_t, other_c = group(9), group(13)
    shared.prepare([treated, other_t], [comparison, other_c])
    for t, c in ((treated, comparison), (other_t, other_c)):
        fast = did_rate(t, c, resampling=shared).draws
        slow = did_rate(t, c, replicates=400, seed=11).draws
        assert fast is not None and slow is not None
        np.testing.assert_allclose(fast, slow, rtol=1e-12, atol=1e-15)


def test_program_dates_time_zone_and_a_baseline_at_the_program_start(org):
    # The completion is at 2025-02-15 12:00 UTC: already the 16th in Kiritimati (UTC+14).
    late = window_panel(org, [COURSE], baseline_days=60, window_days=30, timezone="Pacific/Kiritimati")
    assert late.anchors["anchor"][0].as_py() == date(2025, 2, 16)
    # A program that ended before the completion has nobody trained.
    with pytest.raises(ValueError, match="nobody completed"):
        window_panel(org, [COURSE], baseline_days=60, window_days=30, program_end=date(2025, 2, 14))
    kept = window_panel(org, [COURSE], baseline_days=60, window_days=30, program_start=date(2025, 2, 15),
                        program_end=date(2025, 2, 15))
    assert kept.treated.units == (R1,)
    # Baseline at the program's start (2025-01-20): [2024-11-21, 2025-01-20) holds the deals of
    # January 1st (won) and 11th (lost); the open deal created on the 20th is after it.
    start = window_panel(org, [COURSE], baseline_days=60, window_days=30, program_start=date(2025, 1, 20),
                         baseline_at_start=True)
    wr = start.groups["win_rate"][0]
    assert (wr.base_successes[0], wr.base_trials[0]) == (1, 2)
    assert start.groups["pipeline_created"][0].base_successes[0] == 4000
    assert start.groups["pipeline_created"][0].base_trials[0] == pytest.approx(19 / MONTH)  # Jan 1 to Jan 20
    assert (wr.post_successes[0], wr.post_trials[0]) == (2, 2)  # the post window still starts at completion


def test_unit_panel_from_the_warehouse_is_balanced_with_the_training_date(org):
    from training_roi.isolate import UnitPanel

    p = unit_panel(org, [COURSE])
    assert (p.outcome, p.numerator, p.denominator) == ("win_rate", "won", "closed")
    # Two reps × three months (January to March 2025), zeros where nothing happened.
    assert p.frame.height == 6 and p.periods == [date(2025, 1, 1), date(2025, 2, 1), date(2025, 3, 1)]
    units = {r["unit"]: r["treated_at"] for r in p.units.iter_rows(named=True)}
    assert units == {R1: date(2025, 2, 15), R2: None}
    feb = p.frame.filter((pl.col("unit") == R1) & (pl.col("period") == date(2025, 2, 1)))
    assert feb["closed"].item() == 0
    # Months without deals are real zeros, not missing outcomes: no estimate leaves them out.
    assert p.grain == "month" and p.unobserved == 0 and p.unobserved_warnings() == ()
    # Pooled win rate of rep 1: January 1 won of 2 closed, March 2 of 2 → 3/4.
    assert p.value(p.frame.filter(pl.col("unit") == R1)) == pytest.approx(0.75)
    revenue = unit_panel(org, [COURSE], kpi="revenue_per_rep")
    assert revenue.denominator is None
    assert revenue.value() == pytest.approx((1000 + 6000 + 0) / 6)  # per unit-month
    with pytest.raises(ValueError, match="no column"):
        UnitPanel(frame=p.frame, outcome="x", numerator="nope")


def test_comparison_pseudo_dates_are_no_sooner_after_hire_than_any_trained_units_training():
    from training_roi.measure.panels import _eligible, _support
    from training_roi.measure.tenure import Tenure

    # Trained: T1 hired 2025-01-01 and trained 21 days later (the soonest after a hire), T2 there
    # throughout, T3 trained on 2025-04-01 and gone on 2025-04-15 (leaving bounds nothing: it is not
    # known on the day, and training may change it).
    present = Tenure(start={"T1": date(2025, 1, 1), "C1": date(2025, 2, 20), "C4": date(2025, 3, 25)},
                     end={"T3": date(2025, 4, 15), "C2": date(2025, 3, 10)})
    dates = [date(2025, 1, 22), date(2025, 3, 1), date(2025, 4, 1)]
    support = _support(["T1", "T2", "T3"], dates, present)
    assert support == 21
    others = ["C1", "C2", "C3", "C4"]
    first = [date(2025, 3, 1)] * 3 + [date(2025, 4, 1)]
    units, days, moved, dropped = _eligible(others, first, dates, present, seed=7, support=support)
    # C1 (hired 2025-02-20) is 9 days in on 2025-03-01: too new. 2025-01-22 is before its hire; on
    # 2025-04-01 it is 40 days in: its one choice. C2 (gone 2025-03-10) is there on 2025-03-01 and keeps
    # it, as C3 does. C4 (hired 2025-03-25) is 7 days in on the last trained date: none left, not compared.
    assert units == ["C1", "C2", "C3"]
    assert days == [date(2025, 4, 1), date(2025, 3, 1), date(2025, 3, 1)]
    assert (moved, dropped) == (1, 1)
    # Without a trained unit hired within the data, presence alone decides, as before.
    assert _support(["T2", "T3"], [date(2025, 3, 1), date(2025, 4, 1)], present) == 0
    units, days, _, _ = _eligible(others, first, dates, present, seed=7)
    assert units == others and days == first


def test_redrawn_pseudo_dates_are_those_of_every_eligible_day_checked_one_by_one():
    """The redraw finds each unit's eligible days by bisection; checking every day gives the same draws."""
    import random
    from datetime import timedelta

    from training_roi.measure.panels import _eligible
    from training_roi.measure.tenure import Tenure

    def by_hand(others, pseudo, dates, present, seed, support):
        rng = np.random.default_rng([seed, 1])

        def ok(unit, day):
            hired = present.start.get(unit)
            return present.present(unit, day) and (hired is None or (day - hired).days >= support)

        units, days, moved, dropped = [], [], 0, 0
        for unit, day in zip(others, pseudo, strict=True):
            if not ok(unit, day):
                choices = [d for d in sorted(dates) if ok(unit, d)]
                if not choices:
                    dropped += 1
                    continue
                moved += 1
                day = choices[int(rng.integers(0, len(choices)))]
            units.append(unit)
            days.append(day)
        return units, days, moved, dropped

    r = random.Random(3)
    base = date(2024, 1, 1)
    redrawn = 0
    for _ in range(300):
        dates = [base + timedelta(days=r.randint(0, 700)) for _ in range(r.randint(1, 40))]
        others = [f"u{i}" for i in range(r.randint(0, 60))]
        pseudo = [r.choice(dates) for _ in others]
        present = Tenure(start={u: base + timedelta(days=r.randint(-50, 700)) for u in others if r.random() < 0.5},
                         end={u: base + timedelta(days=r.randint(0, 800)) for u in others if r.random() < 0.4})
        support = r.choice([0, 0, 10, 90])
        got = _eligible(others, pseudo, dates, present, 7, support)
        assert got == by_hand(others, pseudo, dates, present, 7, support)
        redrawn += got[2]
    assert redrawn > 1000  # the cases exercise the redraw, not only first draws that were kept
