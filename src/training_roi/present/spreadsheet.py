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
import pyarrow as pa
import pyarrow.compute as pc

from training_roi._format import spreadsheet_safe
from training_roi.evaluation.results import Evaluation
from training_roi.value import CostBreakdown

__all__ = ["learners_frame", "opportunities_frame", "write_participant_time", "write_safe_csv", "write_spreadsheets"]

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


def _cents(column: pa.ChunkedArray, values: list[Decimal | None]) -> list[str | None] | pa.ChunkedArray:
    """Amounts as text in cents: a two-place decimal column as Arrow writes it (the same text), others by _money."""
    if pa.types.is_decimal(column.type) and column.type.scale == 2:
        return pc.cast(column, pa.string())
    return [_money(v) for v in values]


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


def opportunities_frame(ev: Evaluation, limit: int | None = None) -> pl.DataFrame:
    """One row per deal the trained units created in their primary windows (money as text in cents).

    ``limit`` keeps the first rows only (a workbook's sheet holds a capped number; the CSV file all).
    """
    p = ev.primary
    if ev.opportunities is None:
        return pl.DataFrame()
    # Each learner's rounded conversions once, not once per deal.
    per_unit = {r.unit_id: (r.learner, _fraction(r.baseline_conversion), _fraction(r.post_conversion))
                for r in p.learners}
    # Revenue per unit of pipeline: the window's credited incremental revenue spread over its pipeline
    # (for the seed's definition and a win-rate headline that is exactly the credited lift × amount).
    rate = p.incremental_revenue / p.pipeline_value if p.pipeline_value else Decimal(0)
    lift = _fraction(p.credit.credited, _LIFT_PLACES) if p.headline_kpi == "win_rate" else None
    table = ev.opportunities if limit is None else ev.opportunities.slice(0, limit)
    # Columnar: dates as ISO text and each unit's learner and conversions by a join; only the money is
    # computed row by row, in Decimal (the same arithmetic as every other money figure, to the cent).
    amounts = table.column("amount").to_pylist()
    units = pl.DataFrame(
        [(unit, *rest) for unit, rest in per_unit.items()], orient="row",
        schema={"unit_id": pl.String, "learner": pl.String, "baseline_conversion": pl.Float64,
                "post_conversion": pl.Float64})
    frame = pl.from_arrow(table.select(["unit_id", "account_id", "anchor", "opportunity_id", "created",
                                        "close_date", "closed", "won"]))
    assert isinstance(frame, pl.DataFrame)
    return frame.join(units, on="unit_id", how="left", maintain_order="left").select(
        pl.coalesce("learner", "unit_id").alias("learner"), "unit_id", "account_id",
        pl.col("anchor").dt.to_string("%Y-%m-%d").alias("completion_date"), "opportunity_id",
        pl.col("created").dt.to_string("%Y-%m-%d"), pl.col("close_date").dt.to_string("%Y-%m-%d"),
        "closed", "won",
        pl.Series("amount", _cents(table.column("amount"), amounts), dtype=pl.String),
        "baseline_conversion", "post_conversion",
        pl.lit(lift, dtype=pl.Float64).alias("credited_lift"),
        pl.Series("incremental_revenue",
                  [str((rate * (a if isinstance(a, Decimal) else Decimal(a))).quantize(_CENT, ROUND_HALF_UP))
                   if a is not None else "0.00" for a in amounts],
                  dtype=pl.String),
    )


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


def write_safe_csv(table: pl.DataFrame, out_dir: Path, name: str) -> Path:
    """Write ``table`` as ``out_dir/name``, every text cell that could start a formula made inert."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / name
    spreadsheet_safe(table).write_csv(path)
    return path
