"""Each unit's anchor period and its sums in windows around it: the ground the matched and naive comparisons share.

A trained unit is anchored at the period that contains its training (event time 0, the first
period after training, as everywhere in the family); an untrained unit at a pseudo period drawn
with a seed from the trained units' anchors, so both groups' windows span the same calendar
periods and a market trend or a strong quarter touches both alike.

Units are put in an order set by their data alone (:func:`data_order`): whether and when they
were trained, their covariates, then their outcomes period by period. Every draw keyed on a
unit's position — the pseudo anchors here, the matches and the bootstrap of the matched
comparisons — follows that order, so renaming the units (anonymising an export, say) changes no
estimate and no interval: ties are broken by the data, never by sorting on the ids. Units whose
data are identical are interchangeable, so the order among them does not matter.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import polars as pl

from training_roi.errors import NotApplicable
from training_roi.measure.panels import UnitPanel

__all__ = ["anchor_periods", "data_order", "window_sums"]


def data_order(panel: UnitPanel) -> pl.DataFrame:
    """Each unit's position in an order set by its data, not its id: ``unit``, ``order`` (0, 1, …).

    The order sorts units by, in turn: never-trained last, their training period, their
    covariates, and their numerator and denominator in each period of the panel (a missing or
    unobserved unit-period after any value). Two units are tied only when all of those are equal.
    """
    den = pl.col(panel.denominator).cast(pl.Float64) if panel.denominator is not None else pl.lit(1.0)
    f = panel.frame.select(
        pl.col("unit"), panel.period_index("period").alias("p"), panel.period_index("treated_at").alias("t"),
        pl.when(panel.is_observed()).then(pl.col(panel.numerator).cast(pl.Float64)).alias("num"),
        pl.when(panel.is_observed()).then(den).alias("den"),
        *(pl.col(c).cast(pl.Float64) for c in panel.covariates),
    )
    units, u = np.unique(f["unit"].to_numpy().astype(str), return_inverse=True)
    p = f["p"].to_numpy()
    span = int(p.max() - p.min() + 1) if f.height else 0
    col = p - (p.min() if f.height else 0)
    outcomes = np.full((units.size, 2 * span), np.nan)
    outcomes[u, col] = f["num"].to_numpy()
    outcomes[u, span + col] = f["den"].to_numpy()
    per_unit = np.full((units.size, 1 + len(panel.covariates)), np.nan)
    per_unit[u] = f.select("t", *panel.covariates).cast(pl.Float64).to_numpy()
    keys = np.column_stack([per_unit, outcomes])
    order = np.lexsort(keys.T[::-1]) if keys.size else np.arange(units.size)
    rank = np.empty(units.size, dtype=np.int64)
    rank[order] = np.arange(units.size)
    return pl.DataFrame({"unit": units.tolist(), "order": rank}, schema={"unit": pl.String, "order": pl.Int64})


def anchor_periods(panel: UnitPanel, seed: int) -> pl.DataFrame:
    """Every unit's anchor period: ``unit``, ``trained``, ``anchor`` (a period number), ``order``.

    Trained units are anchored at the period that contains their training; untrained units, in
    the data order of :func:`data_order`, each at a trained unit's anchor drawn with ``seed``
    (the trained units also in data order). Sorted trained first, then by data order.

    Raises
    ------
    NotApplicable
        Nobody in the panel was trained (there is no anchor to give the untrained units).
    """
    units = (panel.units.select("unit", anchor=panel.period_index("treated_at"))
             .join(data_order(panel), on="unit").sort("order"))
    trained = units.filter(pl.col("anchor").is_not_null())
    others = units.filter(pl.col("anchor").is_null())
    if trained.is_empty():
        raise NotApplicable(f"nobody in the panel was trained: there is no training {panel.period_noun} to compare "
                            "around")
    periods = trained["anchor"].to_numpy()
    pseudo = periods[np.random.default_rng(seed).integers(0, periods.size, others.height)]
    return pl.DataFrame({
        "unit": [*trained["unit"].to_list(), *others["unit"].to_list()],
        "trained": [True] * trained.height + [False] * others.height,
        "anchor": np.concatenate([periods, pseudo]).astype(np.int64),
        "order": [*trained["order"].to_list(), *others["order"].to_list()],
    }, schema={"unit": pl.String, "trained": pl.Boolean, "anchor": pl.Int64, "order": pl.Int64})


def window_sums(panel: UnitPanel, anchors: pl.DataFrame, windows: Mapping[str, tuple[int, int]]) -> pl.DataFrame:
    """Each unit's sums over its observed unit-periods in every window of event time around its anchor.

    ``windows`` maps a name to the first and last event time it covers (0 is the anchor
    period, −1 the period before it). For each window ``name`` the result has ``{name}_num``
    (Σ numerator), ``{name}_den`` (Σ denominator, or the number of observed unit-periods
    without one) and ``{name}_act`` (the activity behind them: Σ denominator, or the periods
    with a non-zero outcome without one). Unobserved unit-periods count in none; a unit with no
    row in a window has zeros there. One row per unit of ``anchors``, in its order.
    """
    num = pl.col(panel.numerator).cast(pl.Float64)
    if panel.denominator is None:
        den, act = pl.lit(1.0), (num != 0).cast(pl.Float64)
    else:
        den = pl.col(panel.denominator).cast(pl.Float64)
        act = den
    rows = (panel.observed.select(pl.col("unit"), p=panel.period_index("period"), num=num, den=den, act=act)
            .join(anchors.select("unit", "anchor"), on="unit")
            .with_columns(off=pl.col("p") - pl.col("anchor")))

    def window(name: str, lo: int, hi: int) -> list[pl.Expr]:
        inside = pl.col("off").is_between(lo, hi)
        return [pl.when(inside).then(pl.col(c)).otherwise(0.0).sum().alias(f"{name}_{c}")
                for c in ("num", "den", "act")]

    sums = rows.group_by("unit").agg(*(e for name, (lo, hi) in windows.items() for e in window(name, lo, hi)))
    return (anchors.select("unit").join(sums, on="unit", how="left", maintain_order="left")
            .with_columns(pl.exclude("unit").fill_null(0.0)))
