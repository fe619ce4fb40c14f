"""The unit-level panel every estimator reads: outcomes of units (reps, accounts) by month.

Estimators of the program's effect (difference-in-differences and its event study, staggered
adoption, matching, trend lines, …) all take the same input — one row per unit and month, the
month the unit was trained (or none), an outcome and the covariates — so a study can swap one
method for another, or run them all side by side, and a user can bring any table of their own
(a documented Python API: build a :class:`UnitPanel` from a Polars frame).

An outcome is a ratio of sums: ``numerator / denominator`` pooled over whatever is averaged
(won deals / closed deals for win rate), or ``numerator`` per unit-month when there is no
denominator (revenue per rep-month). Pooling keeps a month with no deals from counting as a
zero rate and weighs units by their volume, as the windows' difference-in-differences does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import polars as pl
import pyarrow as pa
from ibis.backends import BaseBackend

from training_roi.measure import KPIS, completions, monthly_panel

__all__ = ["UnitPanel"]

_SUM_COLUMNS = ("opportunities", "closed", "won", "won_amount", "pipeline_created", "cycle_days_sum")


@dataclass(frozen=True)
class UnitPanel:
    """Outcomes of units by month, who was trained when, and the units' covariates.

    ``frame`` has one row per unit and month (balanced: every unit in every month, zeros where
    nothing happened), with columns:

    * ``unit`` (string): the unit, also the cluster of resampling and of standard errors;
    * ``period`` (date): the first day of the month;
    * ``treated_at`` (date or null): the day the unit was trained; null for never-trained units;
    * ``numerator`` and, unless ``denominator`` is None, ``denominator`` columns of the outcome;
    * the ``covariates``: numeric, constant within a unit (pre-period levels, attributes).
    """

    frame: pl.DataFrame
    outcome: str
    """The outcome's name, for reports (``win_rate``, ``revenue_per_rep``, …)."""
    numerator: str
    denominator: str | None = None
    covariates: tuple[str, ...] = ()
    higher_is_better: bool = True

    def __post_init__(self) -> None:
        needed = ["unit", "period", "treated_at", self.numerator, *self.covariates]
        if self.denominator is not None:
            needed.append(self.denominator)
        missing = [c for c in needed if c not in self.frame.columns]
        if missing:
            raise ValueError(f"the panel has no column {', '.join(missing)} (columns: {', '.join(self.frame.columns)})")

    @property
    def units(self) -> pl.DataFrame:
        """One row per unit: ``unit``, ``treated_at`` and the covariates."""
        return (self.frame.group_by("unit", maintain_order=True)
                .agg(pl.col("treated_at").first(), *(pl.col(c).first() for c in self.covariates))
                .sort("unit"))

    @property
    def periods(self) -> list[date]:
        """The months of the panel, in order."""
        return sorted(self.frame["period"].unique().to_list())

    def value(self, frame: pl.DataFrame | None = None) -> float:
        """The outcome pooled over ``frame`` (the whole panel by default): Σ numerator / Σ denominator.

        Without a denominator it is the mean per unit-month.
        """
        f = self.frame if frame is None else frame
        num = float(f[self.numerator].sum())
        den = float(f[self.denominator].sum()) if self.denominator is not None else float(f.height)
        return num / den if den else float("nan")

    @classmethod
    def from_warehouse(
        cls,
        con: BaseBackend,
        activities: list[str],
        *,
        kpi: str = "win_rate",
        unit: str = "rep",
        rule: str = "completed",
        min_score: float | None = None,
        scope: Sequence[str] | None = None,
        start: date | None = None,
        end: date | None = None,
    ) -> UnitPanel:
        """The monthly panel of one KPI for the units of the warehouse ``con``.

        Units are every deal owner (or account) in ``scope``; ``treated_at`` is the day of the
        unit's first qualifying completion of ``activities`` (UTC). Months run over ``[start,
        end)`` when given, else over the deals in the warehouse.

        Raises
        ------
        ValueError
            Unknown KPI, or no deals.
        """
        if kpi not in KPIS:
            raise ValueError(f"kpi {kpi!r}: expected one of {', '.join(KPIS)}")
        spec = KPIS[kpi]
        sums = pl.from_arrow(monthly_panel(con, start=start, end=end, unit=unit)
                             .select("unit_id", "month", *_SUM_COLUMNS).to_pyarrow())
        assert isinstance(sums, pl.DataFrame)
        if scope is not None:
            sums = sums.filter(pl.col("unit_id").is_in(list(scope)))
        if sums.is_empty():
            raise ValueError("no deals in the warehouse for these units and months")
        sums = sums.rename({"unit_id": "unit", "month": "period"}).with_columns(
            pl.col(c).cast(pl.Float64) for c in _SUM_COLUMNS)
        done = completions(con, activities, rule=rule, min_score=min_score, unit=unit).to_pyarrow()
        trained = pl.DataFrame({
            "unit": done["unit_id"].to_pylist(),
            "treated_at": [t.date() for t in done["completed_at"].to_pylist()],
        }, schema={"unit": pl.String, "treated_at": pl.Date})
        units = sums.select("unit").unique()
        months = pl.date_range(sums["period"].min(), sums["period"].max(), "1mo", eager=True)  # type: ignore[arg-type]
        grid = units.join(pl.DataFrame({"period": months}), how="cross")
        frame = (grid.join(sums, on=["unit", "period"], how="left")
                 .with_columns(pl.col(c).fill_null(0.0) for c in _SUM_COLUMNS)
                 .join(trained, on="unit", how="left")
                 .sort("unit", "period"))
        return cls(frame=frame, outcome=kpi, numerator=spec.numerator,
                   denominator=None if spec.denominator == "months" else spec.denominator,
                   higher_is_better=spec.higher_is_better)

    @classmethod
    def from_arrow(cls, table: pa.Table, **kwargs: object) -> UnitPanel:
        """A panel from an Arrow table with the columns described in the class docstring."""
        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)
        return cls(frame=frame, **kwargs)  # type: ignore[arg-type]
