"""Per-unit window figures of every KPI for the trained and comparison groups, from the warehouse.

Trained units are anchored at their own completion date. Comparison units (everyone with deals
who was not trained) get a pseudo date drawn from the trained units' dates, with a seed: the
comparison then spans the same calendar months as the trained group, so an org-wide trend or a
strong quarter touches both groups alike and cancels out of the difference-in-differences.

A window is cut to the data: a post window that runs past the last deal in the warehouse (or a
baseline that starts before the first) counts only the months it covers, so per-month KPIs of
recent learners are not diluted by months that have not happened yet.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import ibis
import numpy as np
import polars as pl
import pyarrow as pa
from ibis.backends import BaseBackend

from training_roi.isolate.did import GroupWindows
from training_roi.measure import DAYS_PER_MONTH, KPIS, UNITS, completions, windows_kpis

__all__ = ["WindowPanel", "window_panel", "window_panels"]

_COUNTS = ("opportunities", "closed", "won", "won_amount", "pipeline_created", "cycle_days_sum")


@dataclass(frozen=True)
class WindowPanel:
    """Both groups' per-unit figures for one attribution window, their anchors, and the money.

    ``groups`` maps each KPI name to its (trained, comparison) :class:`GroupWindows`; the money
    (pipeline created and revenue won by trained units in the post window) feeds the seed model.
    """

    window_days: int
    groups: dict[str, tuple[GroupWindows, GroupWindows]]
    anchors: pa.Table
    post_opportunities: int
    post_pipeline: float
    post_won_revenue: float
    post_won_deals: int
    post_exposure_months: float
    """Months of the trained units' post windows that the data covers, summed over units."""
    treated_post: dict[str, tuple[int, float, float]]
    """Per trained unit: opportunities, pipeline created and revenue won in its post window."""
    learners: dict[str, int]
    """Per trained unit: how many of its learners completed (1 for a rep; several for an account)."""

    @property
    def treated(self) -> GroupWindows:
        """The trained group's win-rate counts (won and closed deals)."""
        return self.groups["win_rate"][0]

    @property
    def comparison(self) -> GroupWindows:
        """The comparison group's win-rate counts."""
        return self.groups["win_rate"][1]


def window_panel(
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
    unit: str = "rep",
    timezone: str = "UTC",
    program_start: date | None = None,
    program_end: date | None = None,
    baseline_at_start: bool = False,
) -> WindowPanel:
    """Every KPI per unit in its baseline and post windows, for both groups.

    ``scope``: the units in the study's population (all deal owners when None).
    ``comparison_units``: a holdout list; when None, every unit in scope not trained.
    ``unit``: ``rep`` (deals by owner, learners as CRM users) or ``account`` (deals by account,
    learners as the account's contacts: customer education).
    ``timezone``: completions fall on the day of this zone. ``program_start`` / ``program_end``:
    only completions on those days or between them count. ``baseline_at_start``: every unit's
    baseline ends at the program's start (else at its own completion date); without
    ``program_start``, the first completion stands for it.

    Raises
    ------
    ValueError
        Nobody completed the program's activities.
    """
    return window_panels(
        con, activities, baseline_days=baseline_days, windows=[window_days], ramp_days=ramp_days, rule=rule,
        min_score=min_score, seed=seed, scope=scope, comparison_units=comparison_units, unit=unit,
        timezone=timezone, program_start=program_start, program_end=program_end,
        baseline_at_start=baseline_at_start,
    )[window_days]


def _exposure(anchors: list[date], start: int, end: int, first: date, last: date) -> np.ndarray:
    """Months of each ``[anchor + start, anchor + end)`` window inside the data's ``[first, last]``."""
    a = np.array(anchors, dtype="datetime64[D]")
    lo = np.maximum(a + np.timedelta64(start, "D"), np.datetime64(first, "D"))
    hi = np.minimum(a + np.timedelta64(end, "D"), np.datetime64(last, "D") + np.timedelta64(1, "D"))
    return np.clip((hi - lo).astype(np.float64), 0, None) / DAYS_PER_MONTH


def _group(frame: pl.DataFrame, units: list[str], base_months: np.ndarray,
           post_months: np.ndarray) -> dict[str, GroupWindows]:
    """Every KPI's :class:`GroupWindows` for ``units``, from their rows in ``frame``."""
    keys = pl.DataFrame({"unit_id": units}, schema={"unit_id": pl.String})
    cols: dict[str, dict[str, np.ndarray]] = {}
    for period in ("baseline", "post"):
        rows = keys.join(frame.filter(pl.col("period") == period), on="unit_id", how="left", maintain_order="left")
        cols[period] = {c: rows[c].cast(pl.Float64).fill_null(0).to_numpy() for c in _COUNTS}
        cols[period]["months"] = base_months if period == "baseline" else post_months
    tup = tuple(units)
    return {
        name: GroupWindows(tup, cols["baseline"][k.numerator], cols["baseline"][k.denominator],
                           cols["post"][k.numerator], cols["post"][k.denominator])
        for name, k in KPIS.items()
    }


def window_panels(
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
    unit: str = "rep",
    timezone: str = "UTC",
    program_start: date | None = None,
    program_end: date | None = None,
    baseline_at_start: bool = False,
) -> dict[int, WindowPanel]:
    """:func:`window_panel` for several attribution windows, sharing the groups and anchors."""
    zone = ZoneInfo(timezone)
    since = None if program_start is None else datetime.combine(program_start, time(), zone)
    until = None if program_end is None else datetime.combine(program_end + timedelta(days=1), time(), zone)
    done = completions(con, activities, rule=rule, min_score=min_score, unit=unit, since=since,
                       until=until).to_pyarrow().to_pylist()
    if not done:
        who = "learners linked to CRM users" if unit == "rep" else "learners linked to contacts of accounts"
        raise ValueError(f"nobody completed the program's activities ({', '.join(activities)}) among {who}")
    if scope is not None:
        allowed = set(scope)
        done = [r for r in done if str(r["unit_id"]) in allowed]
        if not done:
            raise ValueError("nobody in the study's population completed the program's activities")
    done.sort(key=lambda r: str(r["unit_id"]))
    trained = [str(r["unit_id"]) for r in done]
    dates = [r["completed_at"].astimezone(zone).date() for r in done]  # type: ignore[union-attr]
    o = con.table("crm_opportunity")
    live = o.filter(~o.is_deleted & o[UNITS[unit]].notnull())
    owners = live.select(unit_id=live[UNITS[unit]]).distinct()
    pool = set(owners.to_pyarrow()["unit_id"].to_pylist())
    span = live.aggregate(first=live.created_at.min().date(), last=live.created_at.max().date()).to_pyarrow()
    first, last = span["first"][0].as_py(), span["last"][0].as_py()
    if scope is not None:
        pool &= set(scope)
    if comparison_units is not None:
        pool &= set(comparison_units)
    others = sorted(pool - set(trained))
    rng = np.random.default_rng(seed)
    pseudo = [dates[i] for i in rng.integers(0, len(dates), len(others))] if others else []
    start = (program_start or min(dates)) if baseline_at_start else None
    anchors = pa.table({
        "unit_id": pa.array(trained + others, pa.string()),
        "anchor": pa.array(dates + pseudo, pa.date32()),
        "base_anchor": pa.array([start] * (len(dates) + len(pseudo)) if start else dates + pseudo, pa.date32()),
        "trained": pa.array([True] * len(trained) + [False] * len(others)),
    })
    every = windows_kpis(con, ibis.memtable(anchors.select(["unit_id", "anchor", "base_anchor"])),
                         baseline_days=baseline_days,
                         windows=list(windows), ramp_days=ramp_days, unit=unit).to_pyarrow()
    frame = pl.from_arrow(every)
    assert isinstance(frame, pl.DataFrame)
    base_t = _exposure([start] * len(dates) if start else dates, -baseline_days, 0, first, last)
    base_c = _exposure([start] * len(pseudo) if start else pseudo, -baseline_days, 0, first, last)
    panels = {}
    for window_days in windows:
        rows = frame.filter((pl.col("period") == "baseline") | (pl.col("window_days") == window_days))
        post_t = _exposure(dates, ramp_days, window_days, first, last)
        treated = _group(rows, trained, base_t, post_t)
        comparison = _group(rows, others, base_c, _exposure(pseudo, ramp_days, window_days, first, last))
        post = rows.filter((pl.col("period") == "post") & pl.col("unit_id").is_in(trained)).sort("unit_id")
        panels[window_days] = WindowPanel(
            window_days=window_days,
            groups={name: (treated[name], comparison[name]) for name in KPIS},
            anchors=anchors,
            post_opportunities=int(post["opportunities"].sum()),
            # Decimal sums are exact, so the money does not depend on the engine's row order.
            post_pipeline=float(post["pipeline_created"].fill_null(0).sum()),
            post_won_revenue=float(post["won_amount"].fill_null(0).sum()),
            post_won_deals=int(post["won"].sum()),
            post_exposure_months=float(post_t.sum()),
            treated_post={r["unit_id"]: (int(r["opportunities"]), float(r["pipeline_created"] or 0),
                                         float(r["won_amount"] or 0)) for r in post.iter_rows(named=True)},
            learners={str(r["unit_id"]): int(r["learners"]) for r in done},
        )
    return panels
