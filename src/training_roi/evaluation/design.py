"""A randomised roll-out designed from the warehouse: reps assigned to waves and a holdout, and the lift it can see.

The assignment itself (:func:`training_roi.isolate.randomise`) and the power arithmetic
(:func:`training_roi.isolate.minimum_detectable_lift`) work on frames; this module measures what
they need from the warehouse — each rep's recent win rate and attributes — and puts them together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl
from ibis.backends import BaseBackend

from training_roi.errors import TrainingRoiError
from training_roi.isolate import UnitPanel, estimate_icc, minimum_detectable_lift, randomise
from training_roi.measure import DAYS_PER_MONTH, monthly_panel, rep_attributes
from training_roi.warehouse.connection import require_tables

__all__ = ["RolloutPlan", "plan_rollout"]


@dataclass(frozen=True)
class RolloutPlan:
    """A stratified random roll-out drawn from the CRM's reps, and the lift it can detect."""

    assignment: pl.DataFrame
    """One row per rep: ``unit``, ``stratum``, ``wave`` (0 = holdout), ``seed``."""
    strata: tuple[str, ...]
    """The CRM user columns balanced on (a baseline win-rate band is always added)."""
    closed_per_window: float
    """Closed deals per rep expected in one attribution window, from the last 6 months."""
    base_rate: float
    icc: float
    """Correlation of one rep's deals, from the last 6 months."""
    minimum_detectable_lift: float | None
    """``None`` when every rep is in one group (nothing to compare)."""


def plan_rollout(con: BaseBackend, *, waves: int = 2, holdout_share: float = 0.2,
                 strata: Sequence[str] = ("department",), seed: int = 7, window_days: int = 180) -> RolloutPlan:
    """Assign the warehouse's reps to training waves and a holdout, balanced on ``strata`` and recent win rate.

    Reps are banded by their win rate over the last 6 months of deals (low, middle, high
    thirds, or "no closed deals"), so each wave starts from the same performance mix; the same
    6 months give the base rate, deals per window and intra-rep correlation behind the minimum
    detectable lift.

    Raises
    ------
    TrainingRoiError
        No opportunities, a share outside [0, 1), or a stratum that is not a ``crm_user`` column.
    """
    if not 0 <= holdout_share < 1:
        raise TrainingRoiError(f"holdout share {holdout_share}: expected a share from 0 to below 1")
    require_tables(con, "crm_opportunity", "crm_user")
    monthly = pl.from_arrow(monthly_panel(con).select("unit_id", "month", "closed", "won").to_pyarrow())
    assert isinstance(monthly, pl.DataFrame)
    if monthly.is_empty():
        raise TrainingRoiError("the warehouse has no opportunities: run `training-roi ingest DATA_DIR` first")
    last = monthly["month"].max()
    recent = monthly.filter(pl.col("month") > pl.lit(last).dt.offset_by("-6mo"))
    reps = recent.group_by("unit_id").agg(pl.col("closed").sum(), pl.col("won").sum()).rename({"unit_id": "unit"})
    reps = reps.with_columns((pl.col("won") / pl.col("closed")).fill_nan(None).alias("rate"))
    rates = reps["rate"].drop_nulls()
    low, high = (float(rates.quantile(q) or 0.0) for q in (1 / 3, 2 / 3)) if rates.len() else (0.0, 0.0)
    reps = reps.with_columns(
        pl.when(pl.col("rate").is_null()).then(pl.lit("no closed deals"))
        .when(pl.col("rate") < low).then(pl.lit("low"))
        .when(pl.col("rate") < high).then(pl.lit("middle"))
        .otherwise(pl.lit("high")).alias("win_rate_band"))
    columns = [c.strip() for c in strata if c.strip()]
    try:
        users = rep_attributes(con, columns)
    except ValueError as exc:
        raise TrainingRoiError(str(exc)) from exc
    units = reps.join(users, on="unit", how="left")
    units = units.with_columns(pl.col(c).cast(pl.String).fill_null("(none)") for c in columns)
    assignment = randomise(units, strata=[*columns, "win_rate_band"], waves=waves, holdout_share=holdout_share,
                           seed=seed)
    closed_per_window = float(reps["closed"].sum()) / max(reps.height, 1) * (window_days / DAYS_PER_MONTH) / 6
    base = float(reps["won"].sum()) / max(float(reps["closed"].sum()), 1.0)
    trained = assignment.filter(pl.col("wave") > 0).height
    history = recent.rename({"unit_id": "unit", "month": "period"}).with_columns(
        pl.lit(None, pl.Date).alias("treated_at"), pl.col("closed", "won").cast(pl.Float64))
    try:
        icc = estimate_icc(UnitPanel(frame=history, outcome="win_rate", numerator="won", denominator="closed"))
    except ValueError:
        icc = 0.0
    mde = None
    if 0 < trained < assignment.height:
        mde = minimum_detectable_lift(units=assignment.height, deals_per_unit=closed_per_window, base_rate=base,
                                      treated_share=trained / assignment.height, icc=icc)
    return RolloutPlan(assignment, tuple(columns), closed_per_window, base, icc, mde)
