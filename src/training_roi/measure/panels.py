"""The panels every estimator reads, built from the warehouse and the study's cohort.

Two shapes, both pulled out of the engine after aggregation so the isolation stage works on
arrays and frames alone:

* **window panels** (:class:`WindowPanel`): each unit's sums of every sales KPI in its baseline
  and in each attribution window, anchored at its own training (the seed model's windows).
  Trained units are anchored at their cohort anchor. Comparison units (everyone in scope who was
  not trained, or a holdout) get a pseudo anchor drawn from the trained units' anchors, with a
  seed: the comparison then spans the same calendar months as the trained group, so an org-wide
  trend or a strong quarter touches both groups alike and cancels out of the
  difference-in-differences. A window is cut to the data: a post window that runs past the last
  deal in the warehouse (or a baseline that starts before the first) counts only the months it
  covers, so per-month KPIs of recent learners are not diluted by months that have not happened.
* **unit panels** (:class:`UnitPanel`): outcomes of units by month, the month each was trained
  (or none), an outcome and covariates — the one input of every estimator of the family
  (difference-in-differences and its event study, staggered adoption, matching, trend lines, …),
  so a study can swap one method for another, and a user can bring any table of their own.

An outcome is a ratio of sums: ``numerator / denominator`` pooled over whatever is averaged
(won deals / closed deals for win rate), or ``numerator`` per unit-month when there is no
denominator (revenue per rep-month). Pooling keeps a month with no deals from counting as a zero
rate and weighs units by their volume.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

import ibis
import numpy as np
import polars as pl
import pyarrow as pa
from ibis.backends import BaseBackend
from numpy.typing import NDArray

from training_roi.measure.cohort import Cohort
from training_roi.measure.revenue import open_win_rates, windows_revenue
from training_roi.measure.sales import DAYS_PER_MONTH, KPIS, UNITS, monthly_panel, windows_kpis
from training_roi.measure.tenure import Tenure, tenure

__all__ = ["REVENUE_DEFINITIONS", "GroupWindows", "UnitPanel", "WindowPanel", "unit_panel", "window_panels"]

FloatArray = NDArray[np.float64]

_COUNTS = ("opportunities", "closed", "won", "won_amount", "pipeline_created", "cycle_days_sum")
_SUM_COLUMNS = _COUNTS


@dataclass(frozen=True, eq=False)
class GroupWindows:
    """Per-unit counts of one group: successes and trials in the baseline and post windows.

    For win rate, successes are won deals and trials are closed deals. Arrays are aligned by
    unit; a unit without deals in a window has zeros there.
    """

    units: tuple[str, ...]
    base_successes: FloatArray
    base_trials: FloatArray
    post_successes: FloatArray
    post_trials: FloatArray

    def __post_init__(self) -> None:
        n = len(self.units)
        for name in ("base_successes", "base_trials", "post_successes", "post_trials"):
            if np.asarray(getattr(self, name)).shape != (n,):
                raise ValueError(f"{name} must have one value per unit ({n})")

    def rates(self, weights: FloatArray | None = None) -> tuple[FloatArray, FloatArray]:
        """Pooled baseline and post rates; ``weights`` (replicates × units) resample units."""
        with np.errstate(invalid="ignore", divide="ignore"):
            if weights is None:
                base = np.array([self.base_successes.sum() / self.base_trials.sum()])
                post = np.array([self.post_successes.sum() / self.post_trials.sum()])
            else:
                base = (weights @ self.base_successes) / (weights @ self.base_trials)
                post = (weights @ self.post_successes) / (weights @ self.post_trials)
        return base, post



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
    revenue: dict[str, tuple[GroupWindows, GroupWindows]] = field(default_factory=dict)
    """Revenue per unit-month by definition — ``booked`` (won revenue of deals created and closed in the window)
    and ``eventual`` (deals created in it; open ones at their expected value) — trained and comparison."""
    post_revenue: dict[str, float] = field(default_factory=dict)
    """The trained units' observed revenue in their post windows, by the same definitions."""
    tenure_note: str = ""
    """How joiners and leavers shaped the groups (empty when every unit was there throughout)."""

    @property
    def treated(self) -> GroupWindows:
        """The trained group's win-rate counts (won and closed deals)."""
        return self.groups["win_rate"][0]

    @property
    def comparison(self) -> GroupWindows:
        """The comparison group's win-rate counts."""
        return self.groups["win_rate"][1]


def _exposure(anchors: list[date], start: int, end: int, spans: list[tuple[date, date]]) -> np.ndarray:
    """Months of each ``[anchor + start, anchor + end)`` window inside its unit's ``[first, stop)`` span."""
    a = np.array(anchors, dtype="datetime64[D]")
    first = np.array([f for f, _ in spans], dtype="datetime64[D]")
    stop = np.array([s for _, s in spans], dtype="datetime64[D]")
    lo = np.maximum(a + np.timedelta64(start, "D"), first)
    hi = np.minimum(a + np.timedelta64(end, "D"), stop)
    return np.asarray(np.clip((hi - lo).astype(np.float64), 0, None) / DAYS_PER_MONTH, dtype=np.float64)


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
    trained: Cohort,
    *,
    baseline_days: int,
    windows: Sequence[int],
    ramp_days: int = 0,
    seed: int = 7,
    scope: Collection[str] | None = None,
    comparison_units: Collection[str] | None = None,
    baseline_at_start: bool = False,
    deal_types: Sequence[str] = (),
) -> dict[int, WindowPanel]:
    """Every KPI per unit in its baseline and post windows, for both groups, in every window of ``windows``.

    ``trained``: the study's cohort (trained units and their anchors). ``scope``: the units in
    the study's population (all deal owners, or accounts, when None). ``comparison_units``: a
    holdout list; when None, every unit in scope that was not trained. Units that completed the
    program only outside its dates (:attr:`Cohort.outside`) are in neither group.
    ``baseline_at_start``: every unit's baseline ends at the program's start (else at its own
    anchor); without a start date, the first anchor stands for it. ``deal_types``: only deals of
    these types count (renewals and upsells for customer education, say); all when empty.
    """
    unit = trained.rule.unit
    units, dates = list(trained.units), list(trained.anchors)
    o = con.table("crm_opportunity")
    live = o.filter(~o.is_deleted & o[UNITS[unit]].notnull())
    typed = live.filter(live.type.isin(list(deal_types))) if deal_types else live
    owners = typed.select(unit_id=typed[UNITS[unit]]).distinct()
    pool = set(owners.to_pyarrow()["unit_id"].to_pylist())
    span = live.aggregate(first=live.created_at.min().date(), last=live.created_at.max().date()).to_pyarrow()
    first, last = span["first"][0].as_py(), span["last"][0].as_py()
    stop = last + timedelta(days=1)
    if scope is not None:
        pool &= set(scope)
    if comparison_units is not None:
        pool &= set(comparison_units)
    others = sorted(pool - set(units) - trained.outside)
    rng = np.random.default_rng(seed)
    pseudo = [dates[i] for i in rng.integers(0, len(dates), len(others))] if others else []
    present = tenure(con, unit)
    others, pseudo, moved, dropped = _eligible(others, pseudo, dates, present, seed, _support(units, dates, present))
    start = (trained.rule.start or min(dates)) if baseline_at_start else None
    anchors = pa.table({
        "unit_id": pa.array(units + others, pa.string()),
        "anchor": pa.array(dates + pseudo, pa.date32()),
        "base_anchor": pa.array([start] * (len(dates) + len(pseudo)) if start else dates + pseudo, pa.date32()),
        "trained": pa.array([True] * len(units) + [False] * len(others)),
    })
    keyed = ibis.memtable(anchors.select(["unit_id", "anchor", "base_anchor"]))
    every = windows_kpis(con, keyed, baseline_days=baseline_days, windows=list(windows), ramp_days=ramp_days,
                         unit=unit, deal_types=deal_types).to_pyarrow()
    frame = pl.from_arrow(every)
    assert isinstance(frame, pl.DataFrame)
    money = pl.from_arrow(windows_revenue(con, keyed, baseline_days=baseline_days, windows=list(windows),
                                          ramp_days=ramp_days, unit=unit, as_of=last,
                                          win_rates=open_win_rates(con, unit, deal_types),
                                          deal_types=deal_types).to_pyarrow())
    assert isinstance(money, pl.DataFrame)
    # Revenue rows and KPI rows can each exist without the other (a window with deals but nothing booked).
    frame = frame.join(money.with_columns(pl.col("booked", "eventual").cast(pl.Float64)),
                       on=["unit_id", "period", "window_days"], how="full", nulls_equal=True, coalesce=True
                       ).with_columns(pl.col(c).fill_null(0) for c in _COUNTS)
    spans_t = [present.span(u, first, stop) for u in units]
    spans_c = [present.span(u, first, stop) for u in others]
    base_t = _exposure([start] * len(dates) if start else dates, -baseline_days, 0, spans_t)
    base_c = _exposure([start] * len(pseudo) if start else pseudo, -baseline_days, 0, spans_c)
    note = _tenure_note(present, units, others, moved, dropped)
    learners = trained.learners_of()
    panels = {}
    for window_days in windows:
        rows = frame.filter((pl.col("period") == "baseline") | (pl.col("window_days") == window_days))
        post_t = _exposure(dates, ramp_days, window_days, spans_t)
        post_c = _exposure(pseudo, ramp_days, window_days, spans_c)
        treated = _group(rows, units, base_t, post_t)
        comparison = _group(rows, others, base_c, post_c)
        revenue = {name: (_money(rows, units, name, base_t, post_t), _money(rows, others, name, base_c, post_c))
                   for name in REVENUE_DEFINITIONS}
        post = rows.filter((pl.col("period") == "post") & pl.col("unit_id").is_in(units)).sort("unit_id")
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
            learners=learners,
            revenue=revenue,
            post_revenue={name: float(post[name].fill_null(0).sum()) for name in REVENUE_DEFINITIONS},
            tenure_note=note,
        )
    return panels


REVENUE_DEFINITIONS = ("booked", "eventual")
"""The revenue definitions every window panel carries (:mod:`training_roi.measure.revenue`)."""


def _money(frame: pl.DataFrame, units: list[str], column: str, base_months: np.ndarray,
           post_months: np.ndarray) -> GroupWindows:
    """One revenue definition per unit-month of ``units``: its sums in the baseline and post windows."""
    keys = pl.DataFrame({"unit_id": units}, schema={"unit_id": pl.String})
    sums = []
    for period in ("baseline", "post"):
        rows = keys.join(frame.filter(pl.col("period") == period), on="unit_id", how="left", maintain_order="left")
        sums.append(rows[column].cast(pl.Float64).fill_null(0).to_numpy())
    return GroupWindows(tuple(units), sums[0], base_months, sums[1], post_months)


def _support(units: list[str], dates: list[date], present: Tenure) -> int:
    """The trained units' shortest tenure at training, in days since hire.

    Only units hired within the data count; 0 when there are none, which leaves it unbounded.
    """
    after = [(day - present.start[u]).days for u, day in zip(units, dates, strict=True) if u in present.start]
    return max(0, min(after, default=0))


def _eligible(others: list[str], pseudo: list[date], dates: list[date], present: Tenure,
              seed: int, support: int = 0) -> tuple[list[str], list[date], int, int]:
    """Comparison units at pseudo anchors they could have been trained on, redrawn inside the common support.

    A unit's pseudo anchor stands for when it would have been trained; a unit not yet hired, or
    gone, on that day could not have been. Nor is a day on which it had been there for less time
    than any trained unit had at its training (``support``: the trained units' shortest tenure
    since hire at training, in days, :func:`_support`): if the program trains reps three weeks into
    the job at the earliest, a comparison rep in their first three weeks stands for no trained rep.
    Its baseline is nearly empty and its post window is all ramp-up, so it lowered the comparison
    group's growth and overstated the effect (booked revenue by about 7 % of it in simulated
    orgs where a third of the reps join or leave). Tenure at training is known on the day; the time
    left before leaving is not, and training may change it, so it bounds nothing beyond presence.
    Such a unit's anchor is redrawn (with its own seed) among the trained units' anchors inside its
    tenure and the support, and a unit with none leaves the group. Units whose first draw is
    inside both keep it, so the same data give the same groups.
    """
    rng = np.random.default_rng([seed, 1])
    ordered = sorted(dates)

    def eligible(unit: str, day: date) -> bool:
        if not present.present(unit, day):
            return False
        hired = present.start.get(unit)
        return hired is None or (day - hired).days >= support

    kept_units: list[str] = []
    kept_days: list[date] = []
    moved = dropped = 0
    for unit, day in zip(others, pseudo, strict=True):
        if eligible(unit, day):
            kept_units.append(unit)
            kept_days.append(day)
            continue
        choices = [d for d in ordered if eligible(unit, d)]
        if not choices:
            dropped += 1
            continue
        moved += 1
        kept_units.append(unit)
        kept_days.append(choices[int(rng.integers(0, len(choices)))])
    return kept_units, kept_days, moved, dropped


def _tenure_note(present: Tenure, trained: list[str], others: list[str], moved: int, dropped: int) -> str:
    joined = present.joined_or_left(trained) + present.joined_or_left(others)
    if not (joined or moved or dropped):
        return ""
    return (f"{joined:,} units joined or left during the data: their months count only while they were there; "
            f"{moved:,} comparison units took another training date inside their tenure (no sooner after hire than "
            f"a trained unit was trained) and {dropped:,} had no such date and are not compared")


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
    def from_arrow(cls, table: pa.Table, **kwargs: object) -> UnitPanel:
        """A panel from an Arrow table with the columns described in the class docstring."""
        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)
        return cls(frame=frame, **kwargs)  # type: ignore[arg-type]


def unit_panel(
    con: BaseBackend,
    trained: Cohort,
    *,
    kpi: str = "win_rate",
    scope: Sequence[str] | None = None,
    start: date | None = None,
    end: date | None = None,
    deal_types: Sequence[str] = (),
) -> UnitPanel:
    """The monthly panel of one sales KPI for the units of the warehouse ``con``.

    Units are every deal owner (or account) in ``scope``; ``treated_at`` is the unit's anchor in
    the cohort ``trained`` (null for units it does not hold). Months run over ``[start, end)``
    when given, else over the deals in the warehouse.

    Raises
    ------
    ValueError
        Unknown KPI, or no deals.
    """
    unit = trained.rule.unit
    if kpi not in KPIS:
        raise ValueError(f"kpi {kpi!r}: expected one of {', '.join(KPIS)}")
    spec = KPIS[kpi]
    sums = pl.from_arrow(monthly_panel(con, start=start, end=end, unit=unit, deal_types=deal_types)
                         .select("unit_id", "month", *_SUM_COLUMNS).to_pyarrow())
    assert isinstance(sums, pl.DataFrame)
    if scope is not None:
        sums = sums.filter(pl.col("unit_id").is_in(list(scope)))
    if sums.is_empty():
        raise ValueError("no deals in the warehouse for these units and months")
    sums = sums.rename({"unit_id": "unit", "month": "period"}).with_columns(
        pl.col(c).cast(pl.Float64) for c in _SUM_COLUMNS)
    units = sums.select("unit").unique()
    months = pl.date_range(sums["period"].min(), sums["period"].max(), "1mo", eager=True)  # type: ignore[arg-type]
    grid = units.join(pl.DataFrame({"period": months}), how="cross")
    frame = (grid.join(sums, on=["unit", "period"], how="left")
             .with_columns(pl.col(c).fill_null(0.0) for c in _SUM_COLUMNS)
             .join(trained.frame(), on="unit", how="left")
             .sort("unit", "period"))
    return UnitPanel(frame=frame, outcome=kpi, numerator=spec.numerator,
               denominator=None if spec.denominator == "months" else spec.denominator,
               higher_is_better=spec.higher_is_better)

