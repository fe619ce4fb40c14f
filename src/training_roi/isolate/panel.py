"""Per-unit window counts for the trained and comparison groups, pulled from the warehouse.

Trained units are anchored at their own completion date. Comparison units (everyone with deals
who was not trained) get a pseudo date drawn from the trained units' dates, with a seed: the
comparison then spans the same calendar months as the trained group, so an org-wide trend or a
strong quarter touches both groups alike and cancels out of the difference-in-differences.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import ibis
import numpy as np
import pyarrow as pa
from ibis.backends import BaseBackend

from training_roi.isolate.did import GroupWindows
from training_roi.measure import completions, windows_kpis

__all__ = ["WindowPanel", "win_rate_panels", "win_rate_windows"]


@dataclass(frozen=True)
class WindowPanel:
    """Both groups' per-unit counts, their anchors, and the trained units' post-window money.

    The money (pipeline created and revenue won in the post window) feeds the seed model.
    """

    treated: GroupWindows
    comparison: GroupWindows
    anchors: pa.Table
    post_opportunities: int
    post_pipeline: float
    post_won_revenue: float
    treated_post: dict[str, tuple[int, float, float]]
    """Per trained unit: opportunities, pipeline created and revenue won in its post window."""
    treated_revenue: GroupWindows
    """Revenue won per unit (successes) over days of exposure (trials), in both windows."""
    comparison_revenue: GroupWindows


def _revenue(rows: list[dict[str, object]], units: list[str], baseline_days: int, post_days: int) -> GroupWindows:
    """Won revenue per unit over its days in each window: a rate that DiD can difference."""
    index = {u: i for i, u in enumerate(units)}
    base, post = np.zeros(len(units)), np.zeros(len(units))
    for r in rows:
        i = index.get(str(r["unit_id"]))
        if i is not None:
            (base if r["period"] == "baseline" else post)[i] = float(r["won_amount"] or 0)  # type: ignore[arg-type]
    return GroupWindows(tuple(units), base, np.full(len(units), float(baseline_days)), post,
                        np.full(len(units), float(post_days)))


def _group(rows: list[dict[str, object]], units: list[str]) -> GroupWindows:
    index = {u: i for i, u in enumerate(units)}
    arrays = {k: np.zeros(len(units)) for k in ("bs", "bt", "ps", "pt")}
    for r in rows:
        i = index.get(str(r["unit_id"]))
        if i is None:
            continue
        if r["period"] == "baseline":
            arrays["bs"][i], arrays["bt"][i] = float(r["won"]), float(r["closed"])  # type: ignore[arg-type]
        else:
            arrays["ps"][i], arrays["pt"][i] = float(r["won"]), float(r["closed"])  # type: ignore[arg-type]
    return GroupWindows(tuple(units), arrays["bs"], arrays["bt"], arrays["ps"], arrays["pt"])


def win_rate_windows(
    con: BaseBackend,
    activities: list[str],
    *,
    baseline_days: int,
    window_days: int,
    ramp_days: int = 0,
    rule: str = "completed",
    min_score: float | None = None,
    seed: int = 7,
    scope: Collection[str] | None = None,
    comparison_units: Collection[str] | None = None,
) -> WindowPanel:
    """Won and closed deals per unit in its baseline and post windows, for both groups.

    ``scope``: the units in the study's population (all deal owners when None).
    ``comparison_units``: a holdout list; when None, every unit in scope not trained.

    Raises
    ------
    ValueError
        Nobody completed the program's activities.
    """
    return win_rate_panels(
        con, activities, baseline_days=baseline_days, windows=[window_days], ramp_days=ramp_days, rule=rule,
        min_score=min_score, seed=seed, scope=scope, comparison_units=comparison_units,
    )[window_days]


def win_rate_panels(
    con: BaseBackend,
    activities: list[str],
    *,
    baseline_days: int,
    windows: Sequence[int],
    ramp_days: int = 0,
    rule: str = "completed",
    min_score: float | None = None,
    seed: int = 7,
    scope: Collection[str] | None = None,
    comparison_units: Collection[str] | None = None,
) -> dict[int, WindowPanel]:
    """:func:`win_rate_windows` for several attribution windows, sharing the groups and anchors."""
    done = completions(con, activities, rule=rule, min_score=min_score).to_pyarrow().to_pylist()
    if not done:
        raise ValueError(f"nobody completed the program's activities ({', '.join(activities)})")
    if scope is not None:
        allowed = set(scope)
        done = [r for r in done if str(r["unit_id"]) in allowed]
        if not done:
            raise ValueError("nobody in the study's population completed the program's activities")
    done.sort(key=lambda r: str(r["unit_id"]))
    trained = [str(r["unit_id"]) for r in done]
    dates = [r["completed_at"].date() for r in done]  # type: ignore[union-attr]
    o = con.table("crm_opportunity")
    owners = o.filter(~o.is_deleted & o.owner_id.notnull()).select(unit_id=o.owner_id).distinct()
    pool = set(owners.to_pyarrow()["unit_id"].to_pylist())
    if scope is not None:
        pool &= set(scope)
    if comparison_units is not None:
        pool &= set(comparison_units)
    others = sorted(pool - set(trained))
    rng = np.random.default_rng(seed)
    pseudo = [dates[i] for i in rng.integers(0, len(dates), len(others))] if others else []
    anchors = pa.table({
        "unit_id": pa.array(trained + others, pa.string()),
        "anchor": pa.array(dates + pseudo, pa.date32()),
        "trained": pa.array([True] * len(trained) + [False] * len(others)),
    })
    anchor_table = ibis.memtable(anchors.select(["unit_id", "anchor"]))
    trained_set = set(trained)
    every = windows_kpis(con, anchor_table, baseline_days=baseline_days, windows=list(windows),
                         ramp_days=ramp_days).to_pyarrow().to_pylist()
    # Engines return rows in any order; sums below must not depend on it (same data, same bytes).
    every.sort(key=lambda r: (str(r["period"]), r["window_days"] or 0, str(r["unit_id"])))
    baseline_rows = [r for r in every if r["period"] == "baseline"]
    panels = {}
    for window_days in windows:
        rows = baseline_rows + [r for r in every if r["period"] == "post" and r["window_days"] == window_days]
        post = [r for r in rows if r["period"] == "post" and r["unit_id"] in trained_set]
        panels[window_days] = WindowPanel(
            _group(rows, trained), _group(rows, others), anchors,
            post_opportunities=int(sum(r["opportunities"] for r in post)),  # type: ignore[misc]
            post_pipeline=float(sum(r["pipeline_created"] or 0 for r in post)),  # type: ignore[misc]
            post_won_revenue=float(sum(r["won_amount"] or 0 for r in post)),  # type: ignore[misc]
            treated_post={str(r["unit_id"]): (int(r["opportunities"]), float(r["pipeline_created"] or 0),  # type: ignore[arg-type]
                                              float(r["won_amount"] or 0)) for r in post},  # type: ignore[arg-type]
            treated_revenue=_revenue(rows, trained, baseline_days, window_days - ramp_days),
            comparison_revenue=_revenue(rows, others, baseline_days, window_days - ramp_days),
        )
    return panels
