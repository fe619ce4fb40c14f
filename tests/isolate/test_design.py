"""The study designer: power against a hand computation, statsmodels and simulation; balanced, reproducible waves."""

from __future__ import annotations

import csv
import math
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import stats
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import power_proportions_2indep, proportion_effectsize

from training_roi.isolate.design import (
    estimate_icc,
    minimum_detectable_lift,
    power_for_lift,
    power_warning,
    randomise,
    write_assignment,
)
from training_roi.measure.panels import UnitPanel

Z = 1.959963984540054 + 0.8416212335729143  # z(0.975) + z(0.8)


# --------------------------------------------------------------------------------------------
# Minimum detectable lift and power
# --------------------------------------------------------------------------------------------


def _by_hand(lift: float, n_t: float, n_c: float, p0: float, de: float = 1.0) -> float:
    """The power of the documented normal approximation, written out with scipy only."""
    p1 = p0 + lift
    pooled = (n_t * p1 + n_c * p0) / (n_t + n_c)
    se0 = math.sqrt(de * pooled * (1 - pooled) * (1 / n_t + 1 / n_c))
    se1 = math.sqrt(de * (p1 * (1 - p1) / n_t + p0 * (1 - p0) / n_c))
    z = stats.norm.ppf(0.975)
    return float(stats.norm.cdf((abs(lift) - z * se0) / se1) + stats.norm.cdf((-abs(lift) - z * se0) / se1))


def test_power_and_minimum_detectable_lift_by_hand():
    # 200 reps, half trained, 10 closed deals each at a 25% win rate: 1,000 deals per group.
    # A 5-point lift: p̄ = 0.275, SE₀ = √(0.275 × 0.725 × 0.002) = 0.019969,
    # SE₁ = √((0.30 × 0.70 + 0.25 × 0.75) / 1000) = 0.019937,
    # power = Φ((0.05 − 1.96 × 0.019969) / 0.019937) = Φ(0.5448) = 0.7071 (the other tail ~1e-7).
    assert power_for_lift(0.05, units=200, deals_per_unit=10, base_rate=0.25) == pytest.approx(0.7071, abs=1e-4)
    mde = minimum_detectable_lift(units=200, deals_per_unit=10, base_rate=0.25)
    assert _by_hand(mde, 1000, 1000, 0.25) == pytest.approx(0.8, abs=1e-9)
    # Close to the textbook shortcut (z₀.₉₇₅ + z₀.₈) × SE₀ at the base rate, a little above it
    # because a rate above 25% varies more.
    shortcut = Z * math.sqrt(0.1875 * 0.002)
    assert shortcut < mde < 1.05 * shortcut
    # A quarter trained (500 and 1,500 deals), and ICC 0.05 with 10 deals a rep (design effect 1.45).
    mde = minimum_detectable_lift(units=200, deals_per_unit=10, base_rate=0.25, treated_share=0.25)
    assert _by_hand(mde, 500, 1500, 0.25) == pytest.approx(0.8, abs=1e-9)
    mde = minimum_detectable_lift(units=200, deals_per_unit=10, base_rate=0.25, icc=0.05)
    assert _by_hand(mde, 1000, 1000, 0.25, de=1.45) == pytest.approx(0.8, abs=1e-9)
    assert _by_hand(mde, 1000, 1000, 0.25) > 0.9  # unclustered deals would see it more easily


@pytest.mark.parametrize(("units", "deals", "rate", "share"), [(200, 10, 0.25, 0.5), (90, 4.5, 0.4, 0.3),
                                                               (1000, 20, 0.1, 0.7)])
def test_minimum_detectable_lift_matches_statsmodels(units, deals, rate, share):
    n_t, n_c = units * share * deals, units * (1 - share) * deals
    ours = minimum_detectable_lift(units=units, deals_per_unit=deals, base_rate=rate, treated_share=share)
    # statsmodels' power of the two-proportion test (pooled variance under the null).
    assert power_proportions_2indep(ours, rate, n_t, ratio=n_c / n_t).power == pytest.approx(0.8, abs=1e-8)
    # Its arcsine (Cohen's h) approximation, computed differently, agrees closely.
    h = proportion_effectsize(rate + ours, rate)
    assert NormalIndPower().power(h, nobs1=n_t, alpha=0.05, ratio=n_c / n_t) == pytest.approx(0.8, abs=0.005)
    solved = NormalIndPower().solve_power(effect_size=None, nobs1=n_t, alpha=0.05, power=0.8, ratio=n_c / n_t)
    assert solved == pytest.approx(h, rel=0.02)
    # Clustering: the same as statsmodels with each group's deals divided by the design effect.
    icc = 0.08
    de = 1 + (deals - 1) * icc
    clustered = minimum_detectable_lift(units=units, deals_per_unit=deals, base_rate=rate, treated_share=share,
                                        icc=icc)
    assert power_proportions_2indep(clustered, rate, n_t / de, ratio=n_c / n_t).power == pytest.approx(0.8, abs=1e-8)


def test_design_effect_scaling_and_power_round_trip():
    base = {"units": 150, "deals_per_unit": 12.0, "base_rate": 0.5}
    flat = minimum_detectable_lift(**base)
    for icc in (0.01, 0.1, 0.5):
        # Clustered deals are worth 12 / DE independent deals each.
        de = 1 + 11 * icc
        assert minimum_detectable_lift(**base, icc=icc) == pytest.approx(
            minimum_detectable_lift(**{**base, "deals_per_unit": 12 / de}), rel=1e-9)
    for icc in (0.01, 0.05):
        # Near a 50% rate the variance barely moves with the lift: the MDE scales as √DE.
        assert minimum_detectable_lift(**base, icc=icc) / flat == pytest.approx(math.sqrt(1 + 11 * icc), rel=0.01)
    # Four times the units roughly halves the MDE.
    assert minimum_detectable_lift(**{**base, "units": 600}) == pytest.approx(flat / 2, rel=0.01)
    for power, icc in ((0.8, 0.0), (0.9, 0.05), (0.5, 0.2)):
        mde = minimum_detectable_lift(**base, power=power, icc=icc)
        assert power_for_lift(mde, **base, icc=icc) == pytest.approx(power, abs=1e-9)
        # By symmetry around 50%, a fall of that size is as detectable.
        assert power_for_lift(-mde, **base, icc=icc) == pytest.approx(power, abs=1e-9)
    # No lift is detected at the test's level: the false-positive rate.
    assert power_for_lift(0.0, **base, alpha=0.1) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="base_rate"):
        minimum_detectable_lift(units=10, deals_per_unit=5, base_rate=1.2)
    with pytest.raises(ValueError, match="at least 2 units"):
        minimum_detectable_lift(units=1, deals_per_unit=5, base_rate=0.2)
    with pytest.raises(ValueError, match="needs more units or deals"):
        minimum_detectable_lift(units=2, deals_per_unit=1, base_rate=0.5)


def _beta_binomial(rng: np.random.Generator, rate: float, icc: float, deals: np.ndarray) -> np.ndarray:
    """Wins per cluster, its rate drawn from a Beta with mean ``rate`` and intra-class correlation ``icc``."""
    if icc == 0:
        return rng.binomial(deals, rate)
    total = (1 - icc) / icc  # α + β; the correlation of two trials of a cluster is 1 / (α + β + 1)
    return rng.binomial(deals, rng.beta(rate * total, (1 - rate) * total, size=deals.shape))


@pytest.mark.parametrize("icc", [0.0, 0.05])
def test_simulated_power_at_the_minimum_detectable_lift_is_eighty_percent(icc):
    units, deals, rate = 200, 10, 0.25
    mde = minimum_detectable_lift(units=units, deals_per_unit=deals, base_rate=rate, icc=icc)
    rng = np.random.default_rng(2024)
    studies, half = 4000, units // 2
    n = np.full((studies, half), deals)
    control = _beta_binomial(rng, rate, icc, n) / deals
    treated = _beta_binomial(rng, rate + mde, icc, n) / deals
    # The simple test a study would run: compare the groups' mean unit rates, with the standard
    # error from the spread between units (which carries the clustering).
    diff = treated.mean(axis=1) - control.mean(axis=1)
    se = np.sqrt(treated.var(axis=1, ddof=1) / half + control.var(axis=1, ddof=1) / half)
    empirical = float(np.mean(np.abs(diff / se) > stats.norm.ppf(0.975)))
    assert empirical == pytest.approx(0.8, abs=0.03)
    # Ignoring the clustering would promise a smaller lift that the study misses far more often.
    if icc > 0:
        naive = minimum_detectable_lift(units=units, deals_per_unit=deals, base_rate=rate)
        treated = _beta_binomial(rng, rate + naive, icc, n) / deals
        diff = treated.mean(axis=1) - control.mean(axis=1)
        se = np.sqrt(treated.var(axis=1, ddof=1) / half + control.var(axis=1, ddof=1) / half)
        assert float(np.mean(np.abs(diff / se) > stats.norm.ppf(0.975))) < 0.72


def test_power_warning_says_what_the_study_can_and_cannot_see():
    # 120 reps, 8 deals each, 10% win rate: 480 deals per group, MDE 6.08 pts (power 80% at it).
    assert power_for_lift(0.0608, units=120, deals_per_unit=8, base_rate=0.1) == pytest.approx(0.8, abs=2e-3)
    message = power_warning(0.02, units=120, deals_per_unit=8, base_rate=0.1)
    assert message == ("with 120 reps and 8 closed deals each, the smallest lift this study can detect is "
                       "+6.1 pts (80.0% power); the estimated lift of +2.0 pts is below it: the study is "
                       "under-powered")
    assert power_warning(0.062, units=120, deals_per_unit=8, base_rate=0.1) is None
    assert power_warning(-0.062, units=120, deals_per_unit=8, base_rate=0.1) is None
    clustered = power_warning(0.06, units=120, deals_per_unit=8.5, base_rate=0.1, icc=0.1, unit="account")
    assert clustered is not None
    assert "120 accounts and 8.5 closed deals each, deals of one account correlated at ICC 0.100" in clustered
    assert "+6.0 pts is below it" in clustered


# --------------------------------------------------------------------------------------------
# The intra-unit correlation
# --------------------------------------------------------------------------------------------


def _panel(units: list[str], won: np.ndarray, closed: np.ndarray, treated_at: list[date | None] | None = None,
           period: date = date(2024, 1, 1)) -> pl.DataFrame:
    return pl.DataFrame({
        "unit": units, "period": [period] * len(units),
        "treated_at": treated_at or [None] * len(units),
        "won": won.astype(float), "closed": closed.astype(float),
    }, schema_overrides={"treated_at": pl.Date})


def test_icc_is_the_one_way_anova_estimator_of_statsmodels():
    import statsmodels.api as sm
    from statsmodels.formula.api import ols

    won, closed = np.array([1, 4, 2, 6, 0, 3]), np.array([5, 6, 4, 9, 3, 8])
    units = [f"u{i}" for i in range(6)]
    # The same data as one row per deal (0/1), analysed by statsmodels' one-way ANOVA.
    deals = pl.DataFrame({
        "unit": [u for u, c in zip(units, closed, strict=True) for _ in range(c)],
        "won": [float(j < w) for w, c in zip(won, closed, strict=True) for j in range(c)],
    }).to_pandas()
    table = sm.stats.anova_lm(ols("won ~ C(unit)", data=deals).fit())
    msb, msw = table["mean_sq"].iloc[0], table["mean_sq"].iloc[1]
    n, k = closed.sum(), closed.size
    n0 = (n - (closed ** 2).sum() / n) / (k - 1)
    expected = (msb - msw) / (msb + (n0 - 1) * msw)
    assert expected > 0
    panel = UnitPanel(frame=_panel(units, won, closed), outcome="win_rate", numerator="won", denominator="closed")
    assert estimate_icc(panel) == pytest.approx(expected, rel=1e-9)


def test_icc_recovers_a_known_correlation_from_beta_binomial_clusters():
    rng = np.random.default_rng(5)
    k, icc = 400, 0.1
    closed = rng.poisson(25, k) + 5
    won = _beta_binomial(rng, 0.3, icc, closed)
    units = [f"u{i:03d}" for i in range(k)]
    frame = _panel(units, won, closed)
    # Trained units' months after training (here: every deal won) do not count.
    after = _panel(units[:100], closed[:100], closed[:100], [date(2024, 1, 15)] * 100, period=date(2024, 2, 1))
    frame = pl.concat([frame.with_columns(pl.lit(None, dtype=pl.Date).alias("treated_at")), after])
    frame = frame.with_columns(pl.when(pl.col("unit").is_in(units[:100])).then(date(2024, 1, 15))
                               .otherwise(None).alias("treated_at"))
    panel = UnitPanel(frame=frame, outcome="win_rate", numerator="won", denominator="closed")
    assert estimate_icc(panel) == pytest.approx(icc, abs=0.03)
    # No clustering: the estimate is near zero (truncated there when sampling makes it negative).
    flat = _panel(units, rng.binomial(closed, 0.3), closed)
    assert 0.0 <= estimate_icc(UnitPanel(frame=flat, outcome="win_rate", numerator="won",
                                         denominator="closed")) < 0.02
    with pytest.raises(ValueError, match="no denominator"):
        estimate_icc(UnitPanel(frame=flat, outcome="revenue", numerator="won"))


# --------------------------------------------------------------------------------------------
# Random assignment
# --------------------------------------------------------------------------------------------


def _reps(n: int = 203, seed: int = 1) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame({
        "unit": [f"005{i:05d}" for i in range(n)],
        "team": rng.choice(["East", "West", "North"], n, p=[0.5, 0.3, 0.2]),
        "band": rng.choice(["low", "high"], n),
    })


def test_waves_are_balanced_within_every_stratum_and_overall():
    reps = _reps()
    plan = randomise(reps, strata=["team", "band"], waves=3, seed=11)
    assert plan.columns == ["unit", "stratum", "wave", "seed"]
    assert plan.height == reps.height and plan["unit"].to_list() == sorted(reps["unit"].to_list())
    assert set(plan["wave"].to_list()) == {1, 2, 3} and set(plan["seed"].to_list()) == {11}
    counts = plan.group_by("stratum", "wave").len()
    assert counts["stratum"].n_unique() == 6
    for stratum in counts["stratum"].unique():
        sizes = counts.filter(pl.col("stratum") == stratum)["len"].to_list()
        size = reps.join(plan.filter(pl.col("stratum") == stratum), on="unit").height
        assert max(sizes) - min(sizes) <= 1 and sum(sizes) == size
        assert len(sizes) == 3 or size < 3
    overall = plan.group_by("wave").len()["len"].to_list()
    assert max(overall) - min(overall) <= 1
    # The stratum label names the unit's own team and band.
    row = plan.join(reps, on="unit").row(0, named=True)
    assert row["stratum"] == f"team={row['team']}, band={row['band']}"


def test_assignment_is_reproducible_and_does_not_depend_on_row_order():
    reps = _reps()
    a = randomise(reps, strata=["team"], waves=2, seed=3)
    b = randomise(reps.sample(fraction=1.0, shuffle=True, seed=99), strata=["team"], waves=2, seed=3)
    assert a.equals(b)
    c = randomise(reps, strata=["team"], waves=2, seed=4)
    assert not a.equals(c)
    # Not a fixed pattern: about half of the units change wave with another seed.
    changed = float((a["wave"] != c["wave"]).mean())  # type: ignore[arg-type]
    assert 0.3 < changed < 0.7


@pytest.mark.parametrize(("share", "n"), [(0.2, 200), (0.1, 203), (1 / 3, 97)])
def test_holdout_share_is_respected_in_every_stratum(share, n):
    reps = _reps(n)
    plan = randomise(reps, strata=["team"], waves=2, holdout_share=share, seed=5)
    held = plan.filter(pl.col("wave") == 0).height
    assert math.floor(n * share) <= held <= math.ceil(n * share)
    for (stratum,), group in plan.group_by("stratum"):
        k = group.height
        h = group.filter(pl.col("wave") == 0).height
        assert math.floor(k * share) <= h <= math.ceil(k * share), stratum
        waves = group.filter(pl.col("wave") > 0).group_by("wave").len()["len"].to_list()
        assert max(waves) - min(waves) <= 1
    assert randomise(reps, waves=4, seed=5).filter(pl.col("wave") == 0).is_empty()
    assert set(randomise(reps, waves=4, seed=5)["stratum"].to_list()) == {"all"}


def test_assignment_csv_and_refusals(tmp_path: Path):
    plan = randomise(_reps(20), waves=2, holdout_share=0.25, seed=2)
    path = write_assignment(plan, tmp_path / "out" / "waves.csv")
    raw = path.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["unit", "wave", "group"] and len(rows) == 21
    by_unit = {r[0]: (int(r[1]), r[2]) for r in rows[1:]}
    for unit, wave in plan.select("unit", "wave").iter_rows():
        assert by_unit[unit] == (wave, "holdout" if wave == 0 else f"wave {wave}")
    assert sum(1 for w, _ in by_unit.values() if w == 0) == 5
    with pytest.raises(ValueError, match=r"listed more than once: a$"):
        randomise(pl.DataFrame({"unit": ["a", "b", "a"]}))
    with pytest.raises(ValueError, match="no stratum column title"):
        randomise(_reps(3), strata=["title"])
    with pytest.raises(ValueError, match="holdout_share"):
        randomise(_reps(3), holdout_share=1.0)
    with pytest.raises(ValueError, match="no column wave"):
        write_assignment(plan.drop("wave"), tmp_path / "x.csv")
