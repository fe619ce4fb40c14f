"""The seed's spreadsheet as CSV files a finance reader can open and re-add: learners and deals.

``learners.csv`` has one row per trained unit in the primary window (the per-learner table of
the report); ``opportunities.csv`` one row per deal those units created in their windows, with
the seed's columns — learner, account, completion date, opportunity, amount, baseline and post
conversion, the credited lift and the deal's share of the credited incremental revenue (by its
amount, whatever definition of revenue is credited). Amounts are plain
numbers in cents (no currency sign or separators) so that a spreadsheet sums them; the totals
equal the report's figures. Conversion rates and a learner's own lift are fractions to four
decimals (0.4103 is 41.03%); the credited lift, which multiplies the pipeline, to six; ROI in
percent to one decimal.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import polars as pl

from training_roi._format import spreadsheet_safe
from training_roi.evaluation.results import Evaluation
from training_roi.value import CostBreakdown

__all__ = ["learners_frame", "opportunities_frame", "write_participant_time", "write_spreadsheets"]

_CENT = Decimal("0.01")
_RATE_PLACES = 4
_LIFT_PLACES = 6


def _money(value: Decimal | float | int | None) -> str | None:
    """An amount as text in cents, ties away from zero: 1052814.50."""
    return None if value is None else str(Decimal(str(value)).quantize(_CENT, ROUND_HALF_UP))


def _fraction(value: float | None, places: int = _RATE_PLACES) -> float | None:
    """A rate (a fraction) to ``places`` decimals, ties away from zero (as every figure the product rounds)."""
    if value is None or value != value:
        return None
    return float(Decimal(repr(value)).quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP))


def learners_frame(ev: Evaluation) -> pl.DataFrame:
    """One row per trained unit in the primary window, the seed's per-learner columns (money as text in cents)."""
    rows = [{
        "learner": r.learner, "unit_id": r.unit_id, "name": r.name, "learners": r.learners,
        "completion_date": r.completion_date, "opportunities_in_window": r.opportunities_in_window,
        "pipeline_value": _money(r.pipeline_value), "won_revenue": _money(r.won_revenue),
        "baseline_conversion": _fraction(r.baseline_conversion), "post_conversion": _fraction(r.post_conversion),
        "lift": _fraction(r.lift), "incremental_revenue": _money(r.incremental_revenue), "cost": _money(r.cost),
        "roi_pct": None if r.roi_pct is None else str(r.roi_pct.quantize(Decimal("0.1"), ROUND_HALF_UP)),
    } for r in ev.primary.learners]
    return pl.DataFrame(rows, infer_schema_length=None)


def opportunities_frame(ev: Evaluation) -> pl.DataFrame:
    """One row per deal the trained units created in their primary windows (money as text in cents)."""
    p = ev.primary
    if ev.opportunities is None:
        return pl.DataFrame()
    per_unit = {r.unit_id: r for r in p.learners}
    # Revenue per unit of pipeline: the window's credited incremental revenue spread over its pipeline
    # (for the seed's definition and a win-rate headline that is exactly the credited lift × amount).
    rate = p.incremental_revenue / p.pipeline_value if p.pipeline_value else Decimal(0)
    out = []
    for r in ev.opportunities.to_pylist():
        learner = per_unit.get(r["unit_id"])
        amount = r["amount"] if r["amount"] is not None else None
        out.append({
            "learner": learner.learner if learner else r["unit_id"], "unit_id": r["unit_id"],
            "account_id": r["account_id"], "completion_date": r["anchor"].isoformat(),
            "opportunity_id": r["opportunity_id"], "created": r["created"].isoformat(),
            "close_date": r["close_date"].isoformat() if r["close_date"] else None,
            "closed": r["closed"], "won": r["won"], "amount": _money(amount),
            "baseline_conversion": _fraction(learner.baseline_conversion) if learner else None,
            "post_conversion": _fraction(learner.post_conversion) if learner else None,
            "credited_lift": _fraction(p.credit.credited, _LIFT_PLACES) if p.headline_kpi == "win_rate" else None,
            "incremental_revenue": str((rate * Decimal(amount)).quantize(_CENT, ROUND_HALF_UP))
            if amount is not None else "0.00",
        })
    return pl.DataFrame(out, infer_schema_length=None)


def write_spreadsheets(ev: Evaluation, out_dir: Path) -> tuple[Path, Path]:
    """Write ``learners.csv`` and ``opportunities.csv`` into ``out_dir``; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    learners, opportunities = out_dir / "learners.csv", out_dir / "opportunities.csv"
    spreadsheet_safe(learners_frame(ev)).write_csv(learners)
    spreadsheet_safe(opportunities_frame(ev)).write_csv(opportunities)
    return learners, opportunities


def write_participant_time(costs: CostBreakdown, out_dir: Path) -> Path | None:
    """Write ``participant_time.csv``: each participant's minutes costed and where they came from.

    None (and no file) when participant time came from cost lines or nobody took part.
    """
    if costs.participants is None or costs.participants.is_empty():
        return None
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "participant_time.csv"
    spreadsheet_safe(costs.participants).write_csv(path)
    return path
