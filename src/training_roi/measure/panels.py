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

from bisect import bisect_left
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import ibis
import numpy as np
import polars as pl
import pyarrow as pa
from ibis.backends import BaseBackend
from numpy.typing import NDArray

from training_roi.measure.cohort import Cohort
from training_roi.measure.covariates import unit_covariates
from training_roi.measure.frames import as_polars, require_columns
from training_roi.measure.grain import PERIOD_GRAINS, PeriodGrain, infer_grain, week_start_of
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
    tenure: Tenure | None = field(default=None, compare=False, repr=False)
    """Each unit's tenure as the groups were drawn with it (a later stage reuses it rather than ask again)."""

    @property
    def treated(self) -> GroupWindows:
        """The trained group's win-rate counts (won and closed deals)."""
        return self.groups["win_rate"][0]

    @property
    def comparison(self) -> GroupWindows:
        """The comparison group's win-rate counts."""
        return self.groups["win_rate"][1]

    def unit_changes(self, kpi: str) -> tuple[pl.DataFrame, int]:
        """Each unit's ``kpi`` in its baseline window and in this window, for the units with activity in both.

        ``unit``, ``trained``, ``before`` and ``after`` (successes ÷ trials in each window), ``weight``
        (trials in both), trained units first; and how many units had no activity in one of the windows.
        """
        trained, compared = self.groups[kpi]
        both = [trained, compared]
        frame = pl.DataFrame({
            "unit": [*trained.units, *compared.units],
            "trained": [True] * len(trained.units) + [False] * len(compared.units),
            **{name: np.concatenate([getattr(g, name) for g in both]).astype(np.float64)
               for name in ("base_successes", "base_trials", "post_successes", "post_trials")},
        }, schema_overrides={"unit": pl.String})
        usable = frame.filter((pl.col("base_trials") > 0) & (pl.col("post_trials") > 0))
        return (usable.select("unit", "trained", before=pl.col("base_successes") / pl.col("base_trials"),
                              after=pl.col("post_successes") / pl.col("post_trials"),
                              weight=pl.col("base_trials") + pl.col("post_trials")),
                frame.height - usable.height)


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
            window_days=window_days, tenure=present,
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

    def days(unit: str) -> tuple[int, int]:
        """Where the unit's eligible days lie in ``ordered`` (one run of them: after hire + support, before leaving)."""
        hired, gone = present.start.get(unit), present.end.get(unit)
        lo = 0 if hired is None else bisect_left(ordered, hired + timedelta(days=support))
        hi = len(ordered) if gone is None else bisect_left(ordered, gone)
        return lo, max(lo, hi)

    kept_units: list[str] = []
    kept_days: list[date] = []
    moved = dropped = 0
    for unit, day in zip(others, pseudo, strict=True):
        if eligible(unit, day):
            kept_units.append(unit)
            kept_days.append(day)
            continue
        lo, hi = days(unit)
        if lo == hi:
            dropped += 1
            continue
        moved += 1
        kept_units.append(unit)
        kept_days.append(ordered[lo + int(rng.integers(0, hi - lo))])
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
    """Outcomes of units by period, who was trained when, and the units' covariates.

    ``frame`` has one row per unit and period, with columns:

    * ``unit`` (string): the unit, also the cluster of resampling and of standard errors unless
      ``cluster`` names another column;
    * ``period``: a date in the period (its first day, say) at the panel's ``grain`` — ``day``,
      ``week``, ``month`` (the default), ``quarter`` or ``year`` — or, at the ``index`` grain, the
      period's integer number (years as 2019, 2020, …, or waves 1, 2, 3);
    * ``treated_at`` (a date, or an integer at the ``index`` grain; null for never-trained
      units): when the unit was trained, the same in every row of the unit;
    * ``numerator`` and, unless ``denominator`` is None, ``denominator`` columns of the outcome;
    * the ``covariates``: numeric, constant within a unit (pre-period levels, attributes);
    * ``cluster`` (optional, any values, constant within a unit): the group whose units' outcomes
      move together and were trained together — the team of a go-live by team, the region of a
      regional roll-out. The estimators that support it resample and cluster their standard
      errors by it instead of by unit, and with fewer than 30 clusters switch to the wild cluster
      restricted bootstrap (:mod:`training_roi.isolate.wild`); the others warn that they do not.

    **Where training sits.** Every estimator counts time in periods of the grain: event time
    ``k`` of a unit-period is its period number minus that of ``treated_at``
    (:meth:`event_time`). The period that contains ``treated_at`` is event time 0 and counts as
    *after* training (a rep trained on 15 March is "after" in March); −1 is the last period
    before it. Settings named ``post_months`` or ``pre_months`` count periods of the grain.

    **Missing outcomes.** A row whose numerator (or denominator) is null or NaN is an
    unobserved unit-period: every estimator leaves it out of its sums and regressions, and its
    result warns how many were left out. A zero is a zero (a month without a deal is a real 0,
    as the product's own panels fill it).

    The constructor checks the frame and says what is wrong in terms of its columns: a missing
    column, a unit with two rows in one period, a unit whose ``treated_at`` changes, periods that
    do not fit the grain. A pandas DataFrame or an Arrow table is converted. Dates with a time
    of day become dates; ``unit`` becomes a string. :meth:`from_data` builds a panel from a
    table with columns of any names and infers the grain.
    """

    frame: pl.DataFrame
    outcome: str
    """The outcome's name, for reports (``win_rate``, ``revenue_per_rep``, …)."""
    numerator: str
    denominator: str | None = None
    covariates: tuple[str, ...] = ()
    higher_is_better: bool = True
    grain: str = "month"
    """The length of one period: ``day``, ``week``, ``month``, ``quarter``, ``year`` or ``index``."""
    cluster: str | None = None
    """The column of each unit's cluster (team, region), or None when every unit is its own."""
    calendar: PeriodGrain = field(init=False, repr=False, compare=False)
    """The grain's arithmetic (its week start read from the periods at the ``week`` grain)."""

    def __post_init__(self) -> None:
        frame = as_polars(self.frame, "frame")
        if self.grain not in PERIOD_GRAINS:
            raise ValueError(f"grain {self.grain!r}: expected one of {', '.join(PERIOD_GRAINS)}")
        needed = ["unit", "period", "treated_at", self.numerator, *self.covariates]
        if self.denominator is not None:
            needed.append(self.denominator)
        missing = [c for c in [*needed, *([self.cluster] if self.cluster else [])] if c not in frame.columns]
        if missing:
            raise ValueError(f"the panel has no column {', '.join(missing)} (columns: {', '.join(frame.columns)})")
        frame = _normalised(frame, self.grain, needed[3:])
        calendar = PeriodGrain(self.grain, week_start_of(frame["period"]) if self.grain == "week" else 0)
        _check_rows(frame, calendar)
        if self.cluster is not None:
            frame = _checked_cluster(frame, self.cluster)
        object.__setattr__(self, "frame", frame)
        object.__setattr__(self, "calendar", calendar)

    def __repr__(self) -> str:
        trained = self.frame.filter(pl.col("treated_at").is_not_null())["unit"].n_unique()
        clusters = f", clusters={self.frame[self.cluster].n_unique()}" if self.cluster else ""
        return (f"UnitPanel(outcome={self.outcome!r}, grain={self.grain!r}, units={self.frame['unit'].n_unique()}, "
                f"trained={trained}, periods={self.frame['period'].n_unique()}, rows={self.frame.height}{clusters})")

    # ---- periods -------------------------------------------------------------------------

    def period_index(self, column: str | pl.Expr = "period") -> pl.Expr:
        """Consecutive integer period numbers of ``column`` (a date, or an integer at the ``index`` grain).

        The one place a panel's dates become period numbers: every estimator calls it on
        ``period`` and ``treated_at`` (and on any other date it places in the panel's periods,
        such as a lesson's day). Consecutive periods differ by one; null stays null.
        """
        return self.calendar.number(pl.col(column) if isinstance(column, str) else column)

    def event_time(self) -> pl.Expr:
        """Each row's period number minus its unit's training period number (null for never-trained units).

        0 is the period that contains ``treated_at`` (the first period after training), −1 the
        last period before it.
        """
        return self.period_index("period") - self.period_index("treated_at")

    def period_start(self, number: int) -> date | int:
        """The first day of period ``number`` (the integer itself at the ``index`` grain)."""
        return self.calendar.start(number)

    def period_label(self, number: int) -> str:
        """A readable name of period ``number``: ``2024-03`` for a month, ``2024Q1``, ``2024``, or a day."""
        return self.calendar.label(number)

    @property
    def period_noun(self) -> str:
        """What one period is called in messages (``month``, ``week``, …; ``period`` at the ``index`` grain)."""
        return self.calendar.noun

    @property
    def periods(self) -> list[date | int]:
        """The distinct periods of the panel, in order."""
        return sorted(self.frame["period"].unique().to_list())

    # ---- units and outcomes --------------------------------------------------------------

    @property
    def units(self) -> pl.DataFrame:
        """One row per unit: ``unit``, ``treated_at`` and the covariates."""
        return (self.frame.group_by("unit", maintain_order=True)
                .agg(pl.col("treated_at").first(), *(pl.col(c).first() for c in self.covariates))
                .sort("unit"))

    def cluster_codes(self, units: Sequence[str]) -> NDArray[np.int64] | None:
        """Each of ``units``' cluster as a code (0 … clusters − 1); None when units are their own clusters."""
        if self.cluster is None:
            return None
        table = self.frame.group_by("unit").agg(pl.col(self.cluster).first())
        lookup = dict(zip(table["unit"].to_list(), table[self.cluster].to_list(), strict=True))
        _, codes = np.unique(np.array([lookup[u] for u in units], dtype=str), return_inverse=True)
        return np.asarray(codes, dtype=np.int64)

    def is_observed(self) -> pl.Expr:
        """True where a row's outcome is known: its numerator (and denominator) neither null nor NaN."""
        columns = [self.numerator] + ([self.denominator] if self.denominator is not None else [])
        return pl.all_horizontal(pl.col(c).cast(pl.Float64).fill_nan(None).is_not_null() for c in columns)

    @property
    def observed(self) -> pl.DataFrame:
        """The rows whose outcome is known: numerator (and denominator) neither null nor NaN."""
        return self.frame.filter(self.is_observed())

    @property
    def unobserved(self) -> int:
        """How many unit-periods have no outcome (a null or NaN numerator or denominator)."""
        return int(self.frame.select((~self.is_observed()).sum()).item())

    def unobserved_warnings(self) -> tuple[str, ...]:
        """The warning every estimate on this panel carries when some unit-periods have no outcome."""
        n = self.unobserved
        if not n:
            return ()
        return (f"{n:,} of {self.frame.height:,} unit-{self.period_noun}s have no {self.outcome} (a null or NaN "
                f"{self.numerator if self.denominator is None else self.numerator + ' or ' + self.denominator}): "
                "they are left out as unobserved, not counted as zero",)

    def value(self, frame: pl.DataFrame | None = None) -> float:
        """The outcome pooled over ``frame`` (the whole panel by default): Σ numerator / Σ denominator.

        Without a denominator it is the mean per unit-period. Unobserved unit-periods are left out.
        """
        f = (self.frame if frame is None else frame).filter(self.is_observed())
        num = float(f[self.numerator].cast(pl.Float64).sum())
        den = float(f[self.denominator].cast(pl.Float64).sum()) if self.denominator is not None else float(f.height)
        return num / den if den else float("nan")

    # ---- construction --------------------------------------------------------------------

    @classmethod
    def from_arrow(cls, table: pa.Table, **kwargs: object) -> UnitPanel:
        """A panel from an Arrow table with the columns described in the class docstring."""
        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)
        return cls(frame=frame, **kwargs)  # type: ignore[arg-type]

    @classmethod
    def from_data(
        cls,
        data: Any,
        *,
        unit: str,
        period: str,
        outcome: str,
        treated_at: str,
        covariates: Sequence[str] = (),
        denominator: str | None = None,
        grain: str | None = None,
        higher_is_better: bool = True,
        cluster: str | None = None,
    ) -> UnitPanel:
        """A panel from a table whose columns have any names: a pandas or Polars DataFrame, or a pyarrow Table.

        Parameters
        ----------
        data
            One row per unit and period.
        unit, period, outcome, treated_at
            The columns of the unit's id, the period (dates, or integers for numbered periods),
            the outcome (its numerator when ``denominator`` is given) and the training date or
            period (null for never-trained units).
        covariates
            Numeric columns constant within a unit, for the matched comparisons.
        denominator
            The column the outcome is divided by (closed deals for a win rate); None for an
            outcome that is a level per unit-period (revenue per rep-month).
        grain
            ``day``, ``week``, ``month``, ``quarter``, ``year`` or ``index``. None infers it:
            integers are ``index``; dates take the coarsest grain at which no two distinct
            periods fall in one (first-of-month dates are months, every 1 January years). With
            a single distinct period it cannot be told: pass it.
        higher_is_better
            The outcome's direction, for reports.
        cluster
            The column of each unit's cluster (team, region) when units were trained, and their
            outcomes move, together: standard errors and resampling then cluster by it.

        Raises
        ------
        ValueError
            A named column missing (the message names it and lists the columns there are), one
            column named for two roles, a unit with several rows in one period (the unit and the
            period named), a unit whose ``treated_at`` changes, periods that are neither dates
            nor integers.
        TypeError
            ``data`` is not a table.

        Examples
        --------
        >>> import polars as pl
        >>> from datetime import date
        >>> rows = pl.DataFrame({"rep": ["a", "a", "b", "b"], "year": [2023, 2024] * 2,
        ...                      "sales": [10.0, 14.0, 9.0, 9.5], "trained": [2024, 2024, None, None]})
        >>> panel = UnitPanel.from_data(rows, unit="rep", period="year", outcome="sales", treated_at="trained")
        >>> panel.grain, panel.periods
        ('index', [2023, 2024])
        """
        frame = as_polars(data, "data")
        roles = {"unit": unit, "period": period, "outcome": outcome, "treated_at": treated_at,
                 **({"denominator": denominator} if denominator is not None else {}),
                 **{f"covariate {c}": c for c in covariates},
                 **({"cluster": cluster} if cluster is not None else {})}
        require_columns(frame, {column: role for role, column in roles.items()})
        columns = list(roles.values())
        twice = sorted({c for c in columns if columns.count(c) > 1})
        if twice:
            raise ValueError(f"column {', '.join(repr(c) for c in twice)} is named for more than one role "
                             f"({', '.join(f'{r}={c!r}' for r, c in roles.items() if c in twice)})")
        kept = [c for c in (outcome, denominator, *covariates, cluster) if c is not None]
        clash = sorted(set(kept) & {"unit", "period", "treated_at"})
        if clash:
            raise ValueError(f"the outcome, denominator, a covariate or the cluster is named {clash[0]!r}, a name the "
                             "panel gives its own column: rename it first")
        frame = frame.select(pl.col(unit).alias("unit"), pl.col(period).alias("period"),
                             pl.col(treated_at).alias("treated_at"), *kept)
        if grain is None:
            grain = infer_grain(_temporal(frame["period"], "period"))
        return cls(frame=frame, outcome=outcome, numerator=outcome, denominator=denominator,
                   covariates=tuple(covariates), higher_is_better=higher_is_better, grain=grain, cluster=cluster)


def _temporal(values: pl.Series, name: str) -> pl.Series:
    """``values`` with ISO date strings parsed (other types as they are), for the grain's checks."""
    if values.dtype == pl.String:
        try:
            return values.str.to_date()
        except pl.exceptions.PolarsError as exc:
            raise ValueError(f"{name} holds text that is not ISO dates (YYYY-MM-DD): {exc}") from exc
    return values


def _as_period(values: pl.Series, name: str, grain: str) -> pl.Series:
    """``values`` (the ``period`` or ``treated_at`` column) as dates, or as integers at the ``index`` grain."""
    values = _temporal(values, name)
    dtype = values.dtype
    if dtype == pl.Null:
        return values.cast(pl.Int64 if grain == "index" else pl.Date)
    if grain == "index":
        if dtype.is_integer():
            return values.cast(pl.Int64)
        if dtype.is_float():
            finite = values.drop_nulls().drop_nans()
            if (finite == finite.round(0)).all():
                return values.fill_nan(None).cast(pl.Int64)
        raise ValueError(f"{name} holds {dtype}: at the index grain periods are integers (2019, 2020, … or 1, 2, "
                         "3); for dates pass grain='day', 'week', 'month', 'quarter' or 'year'")
    if dtype == pl.Date:
        return values
    if isinstance(dtype, pl.Datetime):
        return values.cast(pl.Date)
    if dtype.is_integer():
        raise ValueError(f"{name} holds integers: numbered periods (years as 2019, 2020, …) need grain='index' "
                         "(UnitPanel.from_data infers it)")
    raise ValueError(f"{name} holds {dtype}: expected dates at the {grain} grain")


def _normalised(frame: pl.DataFrame, grain: str, values: list[str]) -> pl.DataFrame:
    """``frame`` with ``unit`` as text, ``period`` and ``treated_at`` as the grain wants them; ``values`` numeric."""
    for column in values:
        dtype = frame.schema[column]
        if not (dtype.is_numeric() or dtype in (pl.Boolean, pl.Null)):
            raise ValueError(f"column {column!r} holds {dtype}: outcomes, denominators and covariates are numbers")
    changes = [pl.Series(c, _as_period(frame[c], c, grain)) for c in ("period", "treated_at")]
    if frame.schema["unit"] != pl.String:
        changes.append(frame["unit"].cast(pl.String))
    changes = [s for s in changes if s.dtype != frame.schema[s.name]]
    if not changes:
        return frame
    return frame.with_columns(changes)


def _check_rows(frame: pl.DataFrame, calendar: PeriodGrain) -> None:
    """Raise ValueError for null periods or units, a unit with several rows in a period, or a moving training date."""
    for column in ("unit", "period"):
        nulls = frame[column].null_count()
        if nulls:
            raise ValueError(f"{nulls:,} rows have no {column}: every row is one unit in one period")
    keyed = frame.select("unit", p=calendar.number(pl.col("period")))
    repeated = keyed.filter(pl.struct("unit", "p").is_duplicated())
    if repeated.height:
        cells = repeated.group_by("unit", "p").len().sort("unit", "p")
        first = cells.row(0, named=True)
        more = f"; {cells.height - 1:,} more unit-{calendar.noun}s have several rows too" if cells.height > 1 else ""
        where = f"the {calendar.noun} {calendar.label(first['p'])}"
        raise ValueError(
            f"unit {first['unit']!r} has {first['len']} rows in {where}{more}: "
            f"a panel has one row per unit and {calendar.noun} (sum the counts, or average the levels, first"
            + (", or pass a finer grain" if calendar.name != "day" else "") + ")")
    moving = (frame.group_by("unit").agg(pl.col("treated_at").unique().sort())
              .filter(pl.col("treated_at").list.len() > 1).sort("unit"))
    if moving.height:
        first = moving.row(0, named=True)
        values = ", ".join("null" if v is None else str(v) for v in first["treated_at"])
        more = f" (and {moving.height - 1:,} more units)" if moving.height > 1 else ""
        raise ValueError(f"treated_at is not constant within unit {first['unit']!r}: {values}{more}; a unit is trained "
                         "once — give every row of a unit the same date (its first training), or null if never")


def _checked_cluster(frame: pl.DataFrame, column: str) -> pl.DataFrame:
    """``frame`` with the cluster column as text; ValueError for a unit without one or with two."""
    values = frame[column]
    if values.null_count():
        unit = frame.filter(pl.col(column).is_null())["unit"][0]
        raise ValueError(f"{values.null_count():,} rows have no {column} (unit {unit!r} first): every unit belongs "
                         "to one cluster")
    if values.dtype != pl.String:
        frame = frame.with_columns(pl.col(column).cast(pl.String))
    moving = frame.group_by("unit").agg(pl.col(column).n_unique().alias("n")).filter(pl.col("n") > 1).sort("unit")
    if moving.height:
        raise ValueError(f"unit {moving['unit'][0]!r} is in {moving['n'][0]} clusters ({column}): a unit belongs to "
                         "one cluster in every period")
    return frame


def unit_panel(
    con: BaseBackend,
    trained: Cohort,
    *,
    kpi: str = "win_rate",
    scope: Sequence[str] | None = None,
    start: date | None = None,
    end: date | None = None,
    deal_types: Sequence[str] = (),
    covariates: Sequence[str] = (),
    sums: pa.Table | None = None,
) -> UnitPanel:
    """The monthly panel of one sales KPI for the units of the warehouse ``con``.

    ``sums``: :func:`~training_roi.measure.sales.monthly_panel`'s table for the same months, unit
    and deal types, when the caller has already read it (it is then not read again).

    ``covariates`` names unit attributes (:data:`training_roi.measure.covariates.ATTRIBUTES`)
    to carry as the panel's covariates, a categorical one as 0/1 indicators.

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
    if sums is None:
        sums = monthly_panel(con, start=start, end=end, unit=unit, deal_types=deal_types).to_pyarrow()
    sums = pl.from_arrow(sums.select(["unit_id", "month", *_SUM_COLUMNS]))
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
    names: tuple[str, ...] = ()
    if covariates:
        attrs, names = unit_covariates(con, unit, covariates, units=units["unit"].to_list())
        frame = frame.join(attrs, on="unit", how="left", maintain_order="left")  # every unit has its values
    return UnitPanel(frame=frame, outcome=kpi, numerator=spec.numerator,
               denominator=None if spec.denominator == "months" else spec.denominator,
               higher_is_better=spec.higher_is_better, covariates=names)

