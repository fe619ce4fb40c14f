"""The truth of a simulated folder month by month since training: what a forecast is checked against.

For each month *k* since a trained rep's completion (0 = the calendar month of completion), the
expected incremental revenue of the deals the rep created in it — Σ (p₁ × amount₁ − p₀ × amount₀)
over those deals, from ``truth_opportunities.parquet`` — divided by the trained reps whose month *k*
starts before the simulated period ends. Summed over *k* < *m*, it is the revenue one trained rep
adds in their first *m* months: the figure a forecast per trained unit estimates. Expected rather
than realised wins, so the truth does not carry the luck of the draws.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import polars as pl

__all__ = ["incremental_per_trained_rep"]


def _month(d: date) -> int:
    return d.year * 12 + d.month - 1


def incremental_per_trained_rep(folder: Path, months: int) -> dict[int, float]:
    """Cumulative expected incremental revenue per trained rep through month m = 1 … ``months`` since training.

    A month no trained rep reaches inside the simulated period ends the path (it is not in the result).
    """
    truth = json.loads((folder / "truth.json").read_text(encoding="utf-8"))
    end = _month(date.fromisoformat(truth["end"]))  # exclusive
    reps = pl.read_csv(folder / "truth_reps.csv", try_parse_dates=True).filter(pl.col("trained"))
    start = {r: _month(d) for r, d in zip(reps["user_id"].to_list(), reps["completion_date"].to_list(), strict=True)}
    opps = pl.read_parquet(folder / "truth_opportunities.parquet").filter(
        pl.col("owner_id").is_in(list(start)) & ~pl.col("is_deleted"))
    opps = opps.with_columns(
        k=pl.col("created_date").dt.year().cast(pl.Int64) * 12 + pl.col("created_date").dt.month().cast(pl.Int64) - 1
        - pl.col("owner_id").replace_strict(start, return_dtype=pl.Int64),
        gain=pl.col("p1") * pl.col("amount1") - pl.col("p0") * pl.col("amount0"))
    by_k = dict(opps.filter(pl.col("k") >= 0).group_by("k").agg(pl.col("gain").sum()).iter_rows())
    path: dict[int, float] = {}
    total = 0.0
    for k in range(months):
        reached = sum(1 for s in start.values() if s + k < end)
        if not reached:
            break
        total += float(by_k.get(k, 0.0)) / reached
        path[k + 1] = total
    return path
