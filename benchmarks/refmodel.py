"""What the two reference scripts share: the seed's model settings, the random draws and the arithmetic on sums.

The reference scripts (`reference_pandas.py`, `reference_duckdb.py`) answer the default study from
the raw files, each by its own means, up to one table of per-rep sums. Everything random is drawn
here, once, so both scripts use the same draws: the comparison reps' pseudo training dates and the
bootstrap's replicate weights. From the per-rep sums on, the arithmetic is this module's, so two
scripts that agree on the sums agree on every figure, to the last bit.

The settings are the product's defaults: a baseline of 6 months (183 days) before each rep's own
training date, a primary attribution window of 180 days after it, the comparison group's pseudo
dates drawn from the trained reps' dates (seed 7), a 2,000-replicate bootstrap of reps (seed 7),
95% percentile intervals, and the seed article's incremental revenue (win-rate lift × pipeline of
the trained reps' deals created in the window) against the program's cost lines.
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

PROGRAM = "Sales Excellence"
COURSE = "https://lms.example.com/xapi/activities/course/sales-excellence"
DAYS_PER_MONTH = 30.4375
BASELINE_DAYS = round(6 * DAYS_PER_MONTH)  # 183
WINDOW_DAYS = 180
REPLICATES = 2000
SEED = 7
CONFIDENCE = 0.95

SUMS = ("closed", "won", "won_cents", "pipeline_cents", "cycle_days", "months")
"""The per-rep sums of each window, in this order: every KPI is a ratio of two of them."""

KPIS = {
    "win_rate": ("won", "closed"),
    "avg_won_deal_size": ("won_cents", "won"),
    "sales_cycle_days": ("cycle_days", "closed"),
    "pipeline_created": ("pipeline_cents", "months"),
    "revenue_per_rep": ("won_cents", "months"),
}
"""Each KPI's numerator and denominator (money in cents, made dollars in the figures)."""

FloatArray = NDArray[np.float64]


def arguments(description: str) -> argparse.Namespace:
    """The scripts' command line: the data folder, the program's course and where to write the figures."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("folder", type=Path, help="a data folder: crm/, lms/ and costs.csv")
    parser.add_argument("--course", default=COURSE, help="the program's course activity id")
    parser.add_argument("--program", default=PROGRAM, help="the program's name in costs.csv")
    parser.add_argument("--out", type=Path, help="write the figures here (JSON) as well as to the console")
    return parser.parse_args()


def pseudo_anchors(trained_days: list[date], n_others: int, seed: int = SEED) -> list[date]:
    """The comparison reps' pseudo training dates: drawn from the trained reps' dates (in rep-id order).

    Comparison reps then span the same calendar months as the trained ones, so an org-wide trend
    touches both groups alike and cancels out of the difference-in-differences.
    """
    rng = np.random.default_rng(seed)
    return [trained_days[i] for i in rng.integers(0, len(trained_days), n_others)] if n_others else []


def replicate_weights(n_units: int, replicates: int, rng: np.random.Generator) -> FloatArray:
    """How often each unit is drawn in each replicate (replicates × units): a cluster bootstrap by rep."""
    draws = rng.integers(0, n_units, size=(replicates, n_units), dtype=np.int64)
    draws += np.arange(replicates, dtype=np.int64)[:, None] * n_units
    return np.bincount(draws.ravel(), minlength=replicates * n_units).reshape(replicates, n_units).astype(np.float64)


def exposure_months(anchors: NDArray[np.datetime64], start: int, end: int, first: date, stop: date) -> FloatArray:
    """Months of each ``[anchor + start, anchor + end)`` window inside the data's ``[first, stop)``."""
    lo = np.maximum(anchors + np.timedelta64(start, "D"), np.datetime64(first, "D"))
    hi = np.minimum(anchors + np.timedelta64(end, "D"), np.datetime64(stop, "D"))
    return np.asarray(np.clip((hi - lo).astype(np.float64), 0, None) / DAYS_PER_MONTH, dtype=np.float64)


def figures(trained: FloatArray, comparison: FloatArray, cost_cents: int, *, trained_reps: int,
            comparison_reps: int) -> dict[str, Any]:
    """Every figure of the answer from the per-rep sums.

    ``trained`` and ``comparison``: one row per rep (sorted by rep id), the :data:`SUMS` of the
    baseline then of the post window (12 columns). The bootstrap is one matrix product per group.
    """
    # One memory layout for both scripts' arrays: a float sum's rounding depends on the order it adds in.
    trained, comparison = np.ascontiguousarray(trained, np.float64), np.ascontiguousarray(comparison, np.float64)
    rng = np.random.default_rng(SEED)
    w_t = replicate_weights(len(trained), REPLICATES, rng)
    w_c = replicate_weights(len(comparison), REPLICATES, rng)
    point_t, point_c = trained.sum(axis=0), comparison.sum(axis=0)
    boot_t, boot_c = w_t @ trained, w_c @ comparison
    col = {f"{period}_{name}": i for i, (period, name) in
           enumerate((p, n) for p in ("pre", "post") for n in SUMS)}
    out: dict[str, Any] = {"trained_reps": trained_reps, "comparison_reps": comparison_reps,
                           "baseline_days": BASELINE_DAYS, "window_days": WINDOW_DAYS, "replicates": REPLICATES,
                           "kpis": {}}
    alpha = (1 - CONFIDENCE) / 2
    lift_draws: FloatArray = np.zeros(0)
    for kpi, (num, den) in KPIS.items():
        scale = 0.01 if num.endswith("_cents") else 1.0

        def rate(sums: FloatArray, period: str, num: str = num, den: str = den, scale: float = scale) -> Any:
            with np.errstate(invalid="ignore", divide="ignore"):
                return sums[..., col[f"{period}_{num}"]] / sums[..., col[f"{period}_{den}"]] * scale

        tb, tp, cb, cp = rate(point_t, "pre"), rate(point_t, "post"), rate(point_c, "pre"), rate(point_c, "post")
        did = (tp - tb) - (cp - cb)
        draws = (rate(boot_t, "post") - rate(boot_t, "pre")) - (rate(boot_c, "post") - rate(boot_c, "pre"))
        finite = draws[np.isfinite(draws)]
        lo, hi = np.quantile(finite, [alpha, 1 - alpha])
        out["kpis"][kpi] = {"trained_pre": float(tb), "trained_post": float(tp), "comparison_pre": float(cb),
                            "comparison_post": float(cp), "did": float(did), "ci_low": float(lo),
                            "ci_high": float(hi)}
        if kpi == "win_rate":
            lift, lift_draws = float(did), finite
    pipeline = float(point_t[col["post_pipeline_cents"]]) / 100
    incremental = lift * pipeline
    lo, hi = np.quantile(lift_draws * pipeline, [alpha, 1 - alpha])
    cost = cost_cents / 100
    out.update({"pipeline": pipeline, "incremental_revenue": incremental,
                "incremental_revenue_interval": [float(lo), float(hi)], "cost": cost,
                "roi_pct": (incremental - cost) / cost * 100 if cost else None})
    return out


def write(result: dict[str, Any], out: Path | None) -> None:
    """Print the figures as JSON, and write them to ``out`` when given."""
    text = json.dumps(result, indent=2, sort_keys=True)
    if out is not None:
        out.write_text(text + "\n", encoding="utf-8")
    print(text)
