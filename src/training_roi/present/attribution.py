"""The attribution table as a file, and its roll-up for the console and the report, each column said plainly.

The table has one row per touch of a won deal (millions in a large org), so it goes to a file —
CSV for a spreadsheet, Parquet for a BI tool — and result.json carries only the roll-ups. The
touch time is written in UTC ISO 8601, money as plain numbers in cents a spreadsheet can sum
(each deal's touches adding up to its amount exactly), shares to six decimals.

Raw credit says which touches were on a won deal's path, not what caused it; only the study's
program has a measured lift to hold its credit to. Every roll-up row therefore says by which
standard its "held to the lift" figure stands (:func:`standard`): the program's credit is held to
the lift, other training programs keep none (no lift was established for them), and CRM
activities and campaigns are not held to any lift at all — their figure is their raw credit,
labelled so that nobody compares it with training's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray
from rich.table import Table

from training_roi._format import money, probability, spreadsheet_safe
from training_roi.attribute.result import AttributionResult

__all__ = ["LEGEND", "attribution_table", "channel_rows", "standard", "write_attribution"]

FORMATS = ("csv", "parquet")

LEGEND = (
    ("touches", "the channel's touches (training completions, campaign responses, deal activities) before the "
                "close of won deals, within the lookback"),
    ("deals", "won deals with at least one such touch"),
    ("credited (raw)", "the share of those deals' revenue the model gives the channel: it was on the path, which "
                       "is not the same as causing the deal; a course every rep must take (a compliance course) "
                       "is on most paths and ranks high under every model whatever it caused"),
    ("held to the lift", "the raw credit scaled so that training never collects more than the incremental revenue "
                         "the comparison group established; only the study's program has a measured lift"),
    ("standard", "how the row's held figure stands: held to the lift, no lift established (keeps none), or not "
                 "held to any lift (raw credit: not comparable with training's)"),
)
"""What each column of the attribution roll-ups means, in the order they appear."""

NOT_HELD = "not held to any lift (none measured): raw credit, not comparable with training's"


def standard(result: AttributionResult, kind: str, channel: str) -> str:
    """By what standard a channel's "held to the lift" figure stands, in words."""
    c = result.calibration
    if kind != "training":
        return NOT_HELD
    if channel == c.program_channel:
        return f"held to the lift: keeps {probability(c.factor)} of its raw credit"
    return "no lift established for it: keeps none"


def channel_rows(result: AttributionResult) -> list[dict[str, Any]]:
    """The by-channel roll-up, the channels held to a lift first, each row with its ``standard`` and ``held`` flag.

    The study's program leads, then the other training programs, then the channels not held to
    any lift (CRM activities, campaigns), each group by raw credit: a reader meets the figures held
    to one standard before those that are not.
    """
    program = result.calibration.program_channel
    rows = [{**r, "held": r["kind"] == "training", "standard": standard(result, r["kind"], r["channel"])}
            for r in result.by_channel.iter_rows(named=True)]
    return sorted(rows, key=lambda r: (r["channel"] != program, not r["held"], -(r["credited_value"] or 0.0),
                                       r["channel"]))


def _cents(table: pl.DataFrame, column: str, deal: NDArray[np.int64]) -> pl.DataFrame:
    """``column`` rounded to cents so that each deal's touches still add up to the deal's total of it.

    Largest remainder: each touch gets its amount rounded down to the cent, and the cents those
    roundings lost go, one each, to the deal's touches that lost the most (the earlier touch
    first on a tie). ``deal``: each row's deal, numbered 0, 1, … with a deal's rows contiguous.
    """
    if deal.size == 0:
        return table.with_columns((pl.col(column).cast(pl.Int64).cast(pl.Decimal(20, 2)) / 100).alias(column))
    missing = table[column].is_null().to_numpy()  # a missing amount stays missing and adds nothing
    cents = table[column].fill_null(0.0).to_numpy() * 100
    floor = np.floor(cents)
    starts = np.flatnonzero(np.r_[True, deal[1:] != deal[:-1]])
    sizes = np.diff(np.r_[starts, deal.size])
    lost = np.repeat(np.round(np.add.reduceat(cents, starts)) - np.add.reduceat(floor, starts), sizes)
    # Within each deal (the primary key keeps deals in place), the largest remainder first.
    order = np.lexsort((np.arange(deal.size), floor - cents, deal))
    rank = np.empty(deal.size, np.int64)
    rank[order] = np.arange(deal.size) - np.repeat(starts, sizes) + 1
    kept = pl.Series(column, (floor + (rank <= lost)).astype(np.int64))
    amount = kept.cast(pl.Decimal(20, 2)) / 100
    return table.with_columns(pl.when(pl.Series(missing)).then(None).otherwise(amount).alias(column))


def _deals(table: pl.DataFrame) -> tuple[pl.DataFrame, NDArray[np.int64]]:
    """The table with each deal's rows together (as a study's attribution has them), and the deal of each row."""
    runs = table.select(pl.col("opportunity_id").rle_id()).to_series()
    if table.height and runs[-1] + 1 != table["opportunity_id"].n_unique():
        table = table.sort("opportunity_id", maintain_order=True)
        runs = table.select(pl.col("opportunity_id").rle_id()).to_series()
    return table, runs.to_numpy().astype(np.int64)


def write_attribution(result: AttributionResult, out_dir: Path, *, fmt: str = "csv") -> Path:
    """Write ``attribution.csv`` (or ``.parquet``) into ``out_dir``; return its path."""
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r}: expected one of {', '.join(FORMATS)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"attribution.{fmt}"
    table = result.table.with_columns(pl.col("share").round(6))
    if fmt == "csv":
        table, deal = _deals(table)
        table = _cents(_cents(table, "credited_value", deal), "calibrated_value", deal)
        spreadsheet_safe(table).write_csv(path, datetime_format="%Y-%m-%dT%H:%M:%S%.3fZ")
    else:  # names as plain text columns, as a BI tool expects them
        table.with_columns(pl.col(pl.Categorical).cast(pl.String)).write_parquet(path)
    return path


def attribution_table(result: AttributionResult, *, rows: int = 12) -> Table:
    """Credit by channel under the study's model, raw and held to the lift, with each model's rank.

    A channel not held to any lift (CRM activities, campaigns) shows "not held" where training
    shows its held credit, and the caption says what each column means.
    """
    c = result.calibration
    t = Table(title=f"Attribution ({result.model.replace('_', ' ')}; deals closing from "
                    f"{result.since.isoformat() if result.since else 'the start of the data'}, touches up to "
                    f"{result.lookback_days} days before the close)", title_justify="left")
    for col in ("channel", "touches", "deals", "credited (raw)", "held to the lift", "rank by model"):
        t.add_column(col, justify="left" if col in ("channel", "rank by model") else "right")
    ranks = {r["channel"]: r for r in result.comparison.iter_rows(named=True)} if result.comparison.height else {}
    models = [m for m in ("first_touch", "last_touch", "linear", "time_decay", "position_based", "markov", "shapley")
              if f"{m}_rank" in result.comparison.columns]
    for r in channel_rows(result)[:rows]:
        rank = ranks.get(r["channel"])
        spread = " ".join(str(rank[f"{m}_rank"]) for m in models) if rank else "—"
        t.add_row(r["channel"], f"{r['touches']:,}", f"{r['deals']:,}", money(r["credited_value"]),
                  money(r["calibrated_value"]) if r["held"] else "not held", spread)
    t.caption = (f"Credited (raw): the model's share of won revenue for touches on the deal's path, not what "
                 f"caused it. Held to the lift: {c.program_channel} keeps {probability(c.factor)} of its raw credit "
                 f"({money(c.calibrated_program_value)} of {money(c.raw_program_value)}, never more than the "
                 f"incremental revenue {money(c.incremental_revenue)}); other programs have no established lift "
                 "and keep none; not held: CRM activities and campaigns have no measured lift, so their raw credit "
                 "is not comparable with training's. Ranks (of raw credit): "
                 f"{', '.join(m.replace('_', ' ') for m in models)}.")
    return t
