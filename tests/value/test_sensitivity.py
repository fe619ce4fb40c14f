"""Sensitivity scenarios against the seed's worked example, figured by hand."""

from __future__ import annotations

import itertools
from decimal import Decimal

from training_roi.value import WindowLever, sensitivity
from training_roi.value.sensitivity import effect_by_deal_size, tornado, window_by_margin


def test_seed_levers_lift_window_and_deal_size():
    # The seed: 2-point lift on a $500,000 pipeline, $16,000 cost; lift varied 1/2/3 points.
    rows = sensitivity(
        effect=0.02, interval=(0.01, 0.03), value_base=Decimal(500_000), cost=Decimal(16_000),
        windows=[WindowLever(365, 0.025, Decimal(1_000_000)), WindowLever(90, 0.01, Decimal(250_000)),
                 WindowLever(180, 0.02, Decimal(500_000))],
        primary_days=180,
    )
    table = {(r.lever, r.case): r for r in rows}
    assert table["lift", "pessimistic"].incremental_revenue == Decimal("5000.00")
    assert table["lift", "pessimistic"].roi_pct == Decimal("-68.8")        # (5,000 − 16,000) / 16,000
    assert table["lift", "base"].roi_pct == Decimal("-37.5")               # the seed's figure
    assert table["lift", "optimistic"].roi_pct == Decimal("-6.3")          # (15,000 − 16,000) / 16,000
    # Windows are ordered by length, each with its own lift and pipeline; the primary is the base.
    assert [r.assumption.split("-")[0] for r in rows if r.lever == "window"] == ["90", "180", "365"]
    assert table["window", "pessimistic"].incremental_revenue == Decimal("2500.00")
    assert table["window", "optimistic"].incremental_revenue == Decimal("25000.00")
    assert table["window", "optimistic"].roi_pct == Decimal("56.3")        # (25,000 − 16,000) / 16,000
    # Deal size ±10% moves the pipeline and so the incremental revenue.
    assert table["deal size", "pessimistic"].incremental_revenue == Decimal("9000.00")
    assert table["deal size", "optimistic"].incremental_revenue == Decimal("11000.00")
    assert table["deal size", "base"].net_benefit == Decimal("-6000.00")


def test_the_study_can_name_the_lifts_of_the_pessimistic_and_optimistic_rows():
    # An interval that collapsed to its estimate (every unit alike) leaves nothing to vary; the seed's
    # "vary lift: 1%, 2%, 3%" names the lifts instead. By hand: 1% and 3% of $500,000 against $16,000.
    rows = sensitivity(effect=0.02, interval=(0.02, 0.02), value_base=Decimal(500_000), cost=Decimal(16_000),
                       lift=(0.01, 0.03), describe=lambda v: f"{v * 100:+.1f} pts")
    lift = {r.case: r for r in rows if r.lever == "lift"}
    assert [lift[c].effect for c in ("pessimistic", "base", "optimistic")] == [0.01, 0.02, 0.03]
    assert [lift[c].incremental_revenue for c in ("pessimistic", "base", "optimistic")] == [
        Decimal("5000.00"), Decimal("10000.00"), Decimal("15000.00")]
    assert [lift[c].roi_pct for c in ("pessimistic", "base", "optimistic")] == [
        Decimal("-68.8"), Decimal("-37.5"), Decimal("-6.3")]  # −68.75 and −6.25, ties away from zero
    assert lift["pessimistic"].assumption == "lift as the study's pessimistic case (+1.0 pts)"
    assert lift["optimistic"].assumption == "lift as the study's optimistic case (+3.0 pts)"
    # The deal-size rows still apply the estimated effect: 2% of $450,000 and of $550,000.
    size = {r.case: r.incremental_revenue for r in rows if r.lever == "deal size"}
    assert size == {"pessimistic": Decimal("9000.00"), "base": Decimal("10000.00"),
                    "optimistic": Decimal("11000.00")}


def test_margin_scales_the_benefit_not_the_revenue():
    rows = sensitivity(effect=0.02, interval=(0.01, 0.03), value_base=Decimal(500_000), cost=Decimal(16_000),
                       margin=Decimal("0.5"))
    base = next(r for r in rows if r.lever == "lift" and r.case == "base")
    assert (base.incremental_revenue, base.benefit) == (Decimal("10000.00"), Decimal("5000.00"))
    assert base.roi_pct == Decimal("-68.8")


def test_the_tornado_of_the_seed_worked_example_by_hand():
    # $10,000 of incremental revenue (2% × $500,000), its interval $5,000 to $15,000 (lift 1% to 3%); costs
    # LMS $5,000, content $8,000, admin $1,000 and $2,000 of participant time: $16,000, ROI −37.5%.
    base, bars = tornado(revenue=Decimal(10_000), interval=(5_000.0, 15_000.0), margin=Decimal(1),
                         costs={"LMS": Decimal(5_000), "content": Decimal(8_000), "admin": Decimal(1_000)},
                         participant_time=Decimal(2_000), windows=[(90, Decimal(6_000)), (365, Decimal(24_000))])
    by = {b.assumption: (b.low_roi_pct, b.high_roi_pct) for b in bars}
    assert base == Decimal("-37.5")
    assert by == {
        "attribution window": (Decimal("-62.5"), Decimal("50.0")),  # 6,000 and 24,000 against 16,000
        "effect": (Decimal("-68.8"), Decimal("-6.3")),  # −68.75 and −6.25, half up
        "cost: content": (Decimal("-43.2"), Decimal("-30.6")),  # 8,000 ± 1,600: cost 17,600 and 14,400
        "deal size": (Decimal("-43.8"), Decimal("-31.3")),  # revenue 9,000 and 11,000
        "cost: LMS": (Decimal("-41.2"), Decimal("-33.3")),  # cost 17,000 and 15,000
        "gross margin": (Decimal("-43.8"), Decimal("-37.5")),  # margin 90% and 100% (never above 1)
        "hourly rate": (Decimal("-39.0"), Decimal("-35.9")),  # participant time 2,000 ± 400
        "cost: admin": (Decimal("-38.3"), Decimal("-36.7")),  # cost 16,200 and 15,800
    }
    assert [b.assumption for b in bars][:2] == ["attribution window", "effect"]  # widest first
    assert all(a.swing >= b.swing for a, b in itertools.pairwise(bars))


def test_the_two_way_grids_of_the_seed_worked_example_by_hand():
    grid = effect_by_deal_size(revenue_at=[("low", Decimal(5_000)), ("central", Decimal(10_000)),
                                           ("high", Decimal(15_000))], cost=Decimal(16_000), margin=Decimal(1))
    assert grid.column_values == ("−20%", "−10%", "+0%", "+10%", "+20%")  # a true minus sign
    # $10,000 × 0.8 … × 1.2 against $16,000.
    assert [str(v) for v in grid.roi_pct[1]] == ["-50.0", "-43.8", "-37.5", "-31.3", "-25.0"]
    assert grid.break_even == ("+220.0%", "+60.0%", "+6.7%")  # 16,000 / revenue − 1
    by_margin = window_by_margin(windows=[(90, Decimal(6_000)), (365, Decimal(24_000))], cost=Decimal(16_000),
                                 margins=[Decimal("0.5"), Decimal(1)])
    assert [[str(v) for v in row] for row in by_margin.roi_pct] == [["-81.3", "-62.5"], ["-25.0", "50.0"]]
    assert by_margin.break_even == (None, "66.7%")  # 6,000 never pays; 24,000 pays from 16,000 / 24,000
