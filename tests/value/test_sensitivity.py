"""Sensitivity scenarios against the seed's worked example, figured by hand."""

from __future__ import annotations

from decimal import Decimal

from training_roi.value import WindowLever, sensitivity


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


def test_margin_scales_the_benefit_not_the_revenue():
    rows = sensitivity(effect=0.02, interval=(0.01, 0.03), value_base=Decimal(500_000), cost=Decimal(16_000),
                       margin=Decimal("0.5"))
    base = next(r for r in rows if r.lever == "lift" and r.case == "base")
    assert (base.incremental_revenue, base.benefit) == (Decimal("10000.00"), Decimal("5000.00"))
    assert base.roi_pct == Decimal("-68.8")
