"""The attribution table as a file, and its roll-up for the console.

The table has one row per touch of a won deal (millions in a large org), so it goes to a file —
CSV for a spreadsheet, Parquet for a BI tool — and result.json carries only the roll-ups. The
touch time is written in UTC ISO 8601, money as plain numbers a spreadsheet can sum.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
from rich.table import Table

from training_roi._format import money, spreadsheet_safe
from training_roi.attribute.result import AttributionResult

__all__ = ["attribution_table", "write_attribution"]

FORMATS = ("csv", "parquet")


def write_attribution(result: AttributionResult, out_dir: Path, *, fmt: str = "csv") -> Path:
    """Write ``attribution.csv`` (or ``.parquet``) into ``out_dir``; return its path."""
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r}: expected one of {', '.join(FORMATS)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"attribution.{fmt}"
    table = result.table.with_columns(pl.col("share", "credited_value", "calibrated_value").round(6))
    if fmt == "csv":
        spreadsheet_safe(table.with_columns(pl.col("touch_at").dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ"))).write_csv(path)
    else:
        table.write_parquet(path)
    return path


def attribution_table(result: AttributionResult, *, rows: int = 12) -> Table:
    """Credit by channel under the study's model, raw and held to the lift, with each model's rank."""
    c = result.calibration
    t = Table(title=f"Attribution ({result.model.replace('_', ' ')}; deals closing from "
                    f"{result.since.isoformat() if result.since else 'the start of the data'}, touches up to "
                    f"{result.lookback_days} days before the close)", title_justify="left")
    for col in ("channel", "touches", "deals", "credited (raw)", "held to the lift", "rank by model"):
        t.add_column(col, justify="left" if col in ("channel", "rank by model") else "right")
    ranks = {r["channel"]: r for r in result.comparison.iter_rows(named=True)} if result.comparison.height else {}
    models = [m for m in ("first_touch", "last_touch", "linear", "time_decay", "position_based", "markov", "shapley")
              if f"{m}_rank" in result.comparison.columns]
    for r in result.by_channel.head(rows).iter_rows(named=True):
        rank = ranks.get(r["channel"])
        spread = " ".join(str(rank[f"{m}_rank"]) for m in models) if rank else "—"
        t.add_row(r["channel"], f"{r['touches']:,}", f"{r['deals']:,}", money(r["credited_value"]),
                  money(r["calibrated_value"]), spread)
    t.caption = (f"Held to the lift: {c.program_channel} keeps {c.factor:.1%} of its raw credit "
                 f"({money(c.calibrated_program_value)} of {money(c.raw_program_value)}, never more than the "
                 f"incremental revenue {money(c.incremental_revenue)}); other programs have no established lift "
                 f"and keep none. Ranks: {', '.join(m.replace('_', ' ') for m in models)}.")
    return t
