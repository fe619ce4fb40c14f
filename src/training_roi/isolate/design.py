"""Design a study that can answer: who is trained when (randomised waves), and how small a lift it can see.

The strongest isolation method is a randomised roll-out: every unit is trained, but in waves
drawn at random, and the later waves are the comparison for the earlier ones (or a holdout is
never trained during the study). :func:`randomise` draws such waves within strata (team, title,
baseline win-rate band), so each wave is a miniature of the whole org, and
:func:`write_assignment` writes the draw as a plain CSV an LMS can import as groups.

Before running the study, :func:`minimum_detectable_lift` says the smallest lift in a win rate it
can detect — deals of one rep are correlated, so the deals are worth fewer independent trials
than their count (the design effect); :func:`estimate_icc` estimates that correlation from the
CRM's own history, and :func:`power_warning` says so in words when an estimated lift is below
what the study could have detected. :func:`training_roi.evaluation.plan_rollout` does all of it from a warehouse.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from scipy import optimize, stats

from training_roi._format import describe_change, spreadsheet_safe
from training_roi.measure.frames import TableLike, as_polars
from training_roi.measure.panels import UnitPanel

__all__ = [
    "estimate_icc",
    "minimum_detectable_lift",
    "power_for_lift",
    "power_warning",
    "randomise",
    "write_assignment",
]


# --------------------------------------------------------------------------------------------
# Random assignment
# --------------------------------------------------------------------------------------------


def _stratum_labels(units: pl.DataFrame, strata: Sequence[str]) -> pl.Series:
    """One readable label per row: ``team=East, band=low`` (``all`` without strata)."""
    if not strata:
        return pl.Series("stratum", ["all"] * units.height, dtype=pl.String)
    parts = [pl.lit(f"{c}=") + pl.col(c).cast(pl.String).fill_null("(missing)") for c in strata]
    return units.select(pl.concat_str(parts, separator=", ").alias("stratum"))["stratum"]


def _stable_key(text: str) -> int:
    """A seed component for ``text`` that is the same in every Python process (unlike ``hash``)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def randomise(
    units: TableLike,
    *,
    strata: Sequence[str] = (),
    waves: int = 2,
    holdout_share: float = 0.0,
    seed: int = 7,
) -> pl.DataFrame:
    """Assign units at random to training waves ``1..waves`` and an optional holdout (wave 0).

    Within each stratum (a combination of the ``strata`` columns' values) the waves' sizes
    differ by at most one and the holdout takes ``holdout_share`` of the units, rounded up or
    down; over the whole org the same holds. So every wave looks like the org on the
    stratifying variables (team, title, a baseline win-rate band), and a difference between
    waves is the training's, not the mix's.

    The draw depends only on the set of units, their strata and ``seed``: rows are sorted by
    unit first, so the same units in another order get the same assignment, and the seed is
    returned with it so anyone can redraw it.

    Parameters
    ----------
    units
        One row per unit: a ``unit`` column and the ``strata`` columns (bin a continuous
        variable such as the baseline win rate into a few bands first).
    strata
        Columns to balance within; none balances over the whole org.
    waves
        How many training waves (at least 1).
    holdout_share
        The share of units never trained during the study, in ``[0, 1)``.
    seed
        The random seed.

    Returns
    -------
    polars.DataFrame
        ``unit``, ``stratum`` (a readable label), ``wave`` (0 = holdout, else 1..waves) and
        ``seed``, sorted by unit.

    Raises
    ------
    ValueError
        No ``unit`` column, a stratum column missing, a unit listed twice, fewer than one wave, a
        holdout share outside ``[0, 1)``, or a negative seed.

    Examples
    --------
    >>> import polars as pl
    >>> reps = pl.DataFrame({"unit": [f"r{i}" for i in range(8)], "team": ["A", "B"] * 4})
    >>> plan = randomise(reps, strata=["team"], waves=2, seed=1)
    >>> plan.group_by("stratum", "wave").len().sort("stratum", "wave")["len"].to_list()
    [2, 2, 2, 2]
    """
    strata = list(strata)
    table = as_polars(units, "units")
    if "unit" not in table.columns:
        raise ValueError(f"the units have no 'unit' column (columns: {', '.join(table.columns)})")
    missing = [c for c in strata if c not in table.columns]
    if missing:
        raise ValueError(f"the units have no stratum column {', '.join(missing)} (columns: {', '.join(table.columns)})")
    if waves < 1:
        raise ValueError(f"waves must be at least 1, got {waves}")
    if not 0.0 <= holdout_share < 1.0:
        raise ValueError(f"holdout_share must be in [0, 1), got {holdout_share}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    dupes = table.filter(pl.col("unit").is_duplicated())["unit"].unique().sort().head(5).to_list()
    if dupes:
        raise ValueError(f"units listed more than once: {', '.join(map(str, dupes))}")
    frame = table.select("unit", *strata).sort("unit")
    frame = frame.with_columns(_stratum_labels(frame, strata))
    n = frame.height
    rng = np.random.default_rng(seed)
    # Lay the strata end to end (in a random order, each stratum's units shuffled) and walk the
    # line once: a unit is held out where the running count of round(i × share) steps up, and
    # the others take waves in turn. Any contiguous run of the line — a stratum — then holds
    # ⌊k·share⌋ or ⌈k·share⌉ holdouts and waves within one of each other, and so does the org.
    labels = sorted(set(frame["stratum"].to_list()))
    order = rng.permutation(len(labels))
    positions: list[np.ndarray] = []
    index = np.arange(n)
    stratum = frame["stratum"].to_numpy()
    for k in order:
        members = index[stratum == labels[k]]
        shuffle = np.random.default_rng([seed, _stable_key(labels[k])]).permutation(members.size)
        positions.append(members[shuffle])
    line = np.concatenate(positions) if positions else np.zeros(0, dtype=np.int64)
    phase = rng.random()
    steps = np.floor(np.arange(n + 1) * holdout_share + phase)
    held = np.diff(steps) > 0
    offset = int(rng.integers(waves))
    wave_on_line = np.zeros(n, dtype=np.int64)
    wave_on_line[~held] = (np.arange(int((~held).sum())) + offset) % waves + 1
    wave = np.empty(n, dtype=np.int64)
    wave[line] = wave_on_line
    return frame.select(
        "unit", "stratum",
        pl.Series("wave", wave, dtype=pl.Int64),
        pl.lit(seed, dtype=pl.Int64).alias("seed"),
    )


def write_assignment(frame: TableLike, path: str | Path) -> Path:
    """Write an assignment as a plain CSV an LMS imports as groups: ``unit,wave,group``.

    ``group`` names the wave (``wave 1``, ``wave 2``, … or ``holdout``), the name an LMS shows
    for the enrolment group. Comma-separated, UTF-8 without a byte-order mark, one header row.

    Raises
    ------
    ValueError
        ``frame`` has no ``unit`` or ``wave`` column.
    """
    table = as_polars(frame, "frame")
    missing = [c for c in ("unit", "wave") if c not in table.columns]
    if missing:
        raise ValueError(f"the assignment has no column {', '.join(missing)} (columns: {', '.join(table.columns)})")
    out = table.select(
        pl.col("unit").cast(pl.String),
        pl.col("wave").cast(pl.Int64),
        pl.when(pl.col("wave") == 0).then(pl.lit("holdout"))
        .otherwise(pl.lit("wave ") + pl.col("wave").cast(pl.String)).alias("group"),
    )
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    spreadsheet_safe(out).write_csv(target)
    return target


# --------------------------------------------------------------------------------------------
# Power and the minimum detectable lift
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Study:
    """A two-group comparison of win rates: deals per group and the design effect of clustering."""

    deals_treated: float
    deals_comparison: float
    base_rate: float
    design_effect: float

    @classmethod
    def make(cls, *, units: int, deals_per_unit: float, base_rate: float, treated_share: float,
             icc: float) -> _Study:
        if units < 2:
            raise ValueError(f"a two-group comparison needs at least 2 units, got {units}")
        if not deals_per_unit > 0:
            raise ValueError(f"deals_per_unit must be positive, got {deals_per_unit}")
        if not 0.0 < base_rate < 1.0:
            raise ValueError(f"base_rate must be a rate strictly between 0 and 1, got {base_rate}")
        if not 0.0 < treated_share < 1.0:
            raise ValueError(f"treated_share must be strictly between 0 and 1, got {treated_share}")
        if not 0.0 <= icc <= 1.0:
            raise ValueError(f"icc must be in [0, 1], got {icc}")
        return cls(deals_treated=units * treated_share * deals_per_unit,
                   deals_comparison=units * (1.0 - treated_share) * deals_per_unit,
                   base_rate=base_rate, design_effect=1.0 + max(deals_per_unit - 1.0, 0.0) * icc)

    def power(self, lift: float, alpha: float) -> float:
        """The power of the two-sided test against a true ``lift`` (see :func:`power_for_lift`)."""
        n_t, n_c, p0, de = self.deals_treated, self.deals_comparison, self.base_rate, self.design_effect
        p1 = p0 + lift
        if not 0.0 <= p1 <= 1.0:
            raise ValueError(f"a lift of {lift:+.4f} takes the base rate {p0:.4f} outside [0, 1]")
        pooled = (n_t * p1 + n_c * p0) / (n_t + n_c)
        se_null = math.sqrt(de * pooled * (1 - pooled) * (1 / n_t + 1 / n_c))
        se_alt = math.sqrt(de * (p1 * (1 - p1) / n_t + p0 * (1 - p0) / n_c))
        if se_alt == 0:
            return 1.0 if abs(lift) > 0 else 0.0
        z = float(stats.norm.ppf(1 - alpha / 2))
        return float(stats.norm.cdf((abs(lift) - z * se_null) / se_alt)
                     + stats.norm.cdf((-abs(lift) - z * se_null) / se_alt))


def _check_levels(alpha: float, power: float | None = None) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be strictly between 0 and 1, got {alpha}")
    if power is not None and not alpha < power < 1.0:
        raise ValueError(f"power must be between alpha ({alpha}) and 1, got {power}")


def minimum_detectable_lift(
    *,
    units: int,
    deals_per_unit: float,
    base_rate: float,
    treated_share: float = 0.5,
    alpha: float = 0.05,
    power: float = 0.8,
    icc: float = 0.0,
) -> float:
    """The smallest true lift in a win rate that a two-group comparison detects with ``power``.

    The lift δ at which :func:`power_for_lift` reaches ``power``: a normal approximation for a
    difference in proportions, two-sided at level ``alpha``, with deals clustered within units.
    With ``p₀`` the base rate, ``p₁ = p₀ + δ``, ``m`` closed deals per unit over the study's
    window, ``n_T = units · treated_share · m`` and ``n_C = units · (1 − treated_share) · m`` the
    groups' deals, and ``p̄ = (n_T·p₁ + n_C·p₀) / (n_T + n_C)``::

        DE    = 1 + (m − 1) · ICC
        SE₀   = √( DE · p̄(1 − p̄) · (1/n_T + 1/n_C) )          (no lift: one pooled rate)
        SE₁   = √( DE · (p₁(1 − p₁)/n_T + p₀(1 − p₀)/n_C) )     (the lift: each group its own)
        power = Φ((δ − z₁₋α/₂·SE₀) / SE₁) + Φ((−δ − z₁₋α/₂·SE₀) / SE₁)

    so that, roughly, ``MDE ≈ (z₁₋α/₂ + z_power) · SE₀``. ICC is the correlation of two deals of
    one unit (:func:`estimate_icc`): deals of one rep share the rep's skill and territory, so
    ``m`` of them carry the information of only ``m / DE`` independent deals, and ignoring that
    promises lifts the study cannot see. Unequal deal counts per unit inflate the design effect
    further, so treat the result as a floor.

    Returns
    -------
    float
        The lift as a difference in rate (0.05 = 5 points).

    Raises
    ------
    ValueError
        Fewer than two units, a rate, share or level outside its range, or a study so small that
        no lift up to a 100% rate reaches the power.

    Examples
    --------
    >>> round(minimum_detectable_lift(units=200, deals_per_unit=10, base_rate=0.25), 4)
    0.0561
    """
    _check_levels(alpha, power)
    study = _Study.make(units=units, deals_per_unit=deals_per_unit, base_rate=base_rate,
                        treated_share=treated_share, icc=icc)
    top = 1.0 - base_rate
    if study.power(top, alpha) < power:
        raise ValueError(f"with {units:,} units and {deals_per_unit:,.1f} deals each, not even a lift to a 100% rate "
                         f"would be detected with {power:.1%} power: the study needs more units or deals")
    return float(optimize.brentq(lambda d: study.power(d, alpha) - power, 0.0, top, xtol=1e-12))


def power_for_lift(
    lift: float,
    *,
    units: int,
    deals_per_unit: float,
    base_rate: float,
    treated_share: float = 0.5,
    alpha: float = 0.05,
    icc: float = 0.0,
) -> float:
    """The probability that the study detects a true ``lift`` (two-sided test at level ``alpha``).

    The normal approximation written out in :func:`minimum_detectable_lift` (the pooled rate's
    variance when there is no lift, each group's own when there is, both inflated by the design
    effect). Its second term, a significant result of the wrong sign, is negligible unless the
    lift is tiny; with no lift the power is ``alpha``. A negative ``lift`` is a fall from the
    base rate.

    Raises
    ------
    ValueError
        As :func:`minimum_detectable_lift`, or a lift that takes the rate outside [0, 1].
    """
    _check_levels(alpha)
    study = _Study.make(units=units, deals_per_unit=deals_per_unit, base_rate=base_rate,
                        treated_share=treated_share, icc=icc)
    return study.power(lift, alpha)


def estimate_icc(panel: UnitPanel) -> float:
    """The intra-unit correlation of deal outcomes (won or not), from the panel's history.

    The one-way ANOVA estimator for binary outcomes in clusters of unequal size (Fleiss; see
    Ridout, Demétrio & Firth 1999): with ``k`` units, unit ``i`` having ``nᵢ`` deals of which
    ``yᵢ`` won, ``p̂ᵢ = yᵢ/nᵢ``, ``N = Σnᵢ`` and ``p̂ = Σyᵢ/N``::

        MSB = Σ nᵢ (p̂ᵢ − p̂)² / (k − 1)
        MSW = Σ nᵢ p̂ᵢ (1 − p̂ᵢ) / (N − k)
        n₀  = (N − Σnᵢ² / N) / (k − 1)
        ICC = (MSB − MSW) / (MSB + (n₀ − 1) · MSW)

    It is what one-way ANOVA of the 0/1 deal outcomes on the unit gives. Only periods before the
    one that contains a unit's training count (all periods of untrained units; unit-periods
    without an outcome are left out), so the program's own effect does not pass for a difference
    between reps. The estimate is truncated at zero: a negative value is
    sampling noise around no clustering, and the design effect needs a correlation ≥ 0.

    Raises
    ------
    ValueError
        The panel's outcome has no denominator or is not a count of successes among trials
        (a numerator above its denominator), or fewer than two units have deals.
    """
    if panel.denominator is None:
        raise ValueError(f"the outcome {panel.outcome!r} has no denominator: the intra-unit correlation of "
                         "deal outcomes needs successes among trials (won among closed deals)")
    f = panel.observed
    if f.filter(pl.col(panel.numerator) > pl.col(panel.denominator)).height:
        raise ValueError(f"the outcome {panel.outcome!r} is not a count of successes among trials: "
                         f"{panel.numerator} exceeds {panel.denominator} in some months")
    before = f.filter(pl.col("treated_at").is_null() | (panel.event_time() < 0))
    sums = (before.group_by("unit").agg(y=pl.col(panel.numerator).sum(), n=pl.col(panel.denominator).sum())
            .filter(pl.col("n") > 0).sort("unit"))  # a fixed order: the same panel, the same bits
    k = sums.height
    y = sums["y"].to_numpy().astype(np.float64)
    n = sums["n"].to_numpy().astype(np.float64)
    total = float(n.sum())
    if k < 2 or total <= k:
        raise ValueError(f"the intra-unit correlation needs at least two units with deals and more deals than "
                         f"units; the panel has {k} units with {total:,.0f} deals before training")
    rate = y / n
    pooled = float(y.sum()) / total
    msb = float((n * (rate - pooled) ** 2).sum()) / (k - 1)
    msw = float((n * rate * (1 - rate)).sum()) / (total - k)
    n0 = (total - float((n ** 2).sum()) / total) / (k - 1)
    denominator = msb + (n0 - 1) * msw
    if denominator <= 0:
        return 0.0
    return max(0.0, (msb - msw) / denominator)


def power_warning(
    lift: float,
    *,
    units: int,
    deals_per_unit: float,
    base_rate: float,
    treated_share: float = 0.5,
    alpha: float = 0.05,
    power: float = 0.8,
    icc: float = 0.0,
    unit: str = "rep",
) -> str | None:
    """A plain warning when an estimated ``lift`` is smaller than the study's minimum detectable lift.

    None when the lift is at least the minimum detectable lift (in size). ``unit`` names the
    units in the message (``rep``, ``account``).

    Examples
    --------
    >>> print(power_warning(0.02, units=120, deals_per_unit=8, base_rate=0.1))  # doctest: +NORMALIZE_WHITESPACE
    with 120 reps and 8 closed deals each, the smallest lift this study can detect is +6.1 pts (80.0% power);
    the estimated lift of +2.0 pts is below it: the study is under-powered
    """
    mde = minimum_detectable_lift(units=units, deals_per_unit=deals_per_unit, base_rate=base_rate,
                                  treated_share=treated_share, alpha=alpha, power=power, icc=icc)
    if abs(lift) >= mde:
        return None
    deals = f"{deals_per_unit:,.0f}" if float(deals_per_unit).is_integer() else f"{deals_per_unit:,.1f}"
    clustered = f", deals of one {unit} correlated at ICC {icc:.3f}" if icc > 0 else ""
    return (f"with {units:,} {unit}s and {deals} closed deals each{clustered}, the smallest lift this study "
            f"can detect is {describe_change(mde, 'rate')} ({power:.1%} power); the estimated lift of "
            f"{describe_change(lift, 'rate')} is below it: the study is under-powered")
