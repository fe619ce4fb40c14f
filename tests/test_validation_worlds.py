"""The observational worlds of ``validation/observational.py`` hold the truth they claim.

The generator's ATT and its promise — covariates that move the trend bias a difference-in-
differences without covariates by a known amount, and nothing else does — are checked with the
product's two-way fixed effects DiD (``twfe``) and an ordinary least squares fit written here,
over a handful of seeds.
"""

from __future__ import annotations

from dataclasses import replace
from types import ModuleType
from typing import Any

import numpy as np
import polars as pl
import pytest

from tests.builders import validation_script
from training_roi.isolate import ESTIMATORS, estimate_twfe_did

SEEDS = range(1, 9)


@pytest.fixture(scope="module")
def obs() -> ModuleType:
    """The observational-data script."""
    return validation_script("observational")


def _twfe_bias(obs: ModuleType, world: Any) -> tuple[float, float]:
    """Mean of (twfe − ATT) over the seeds, and the mean ATT."""
    gaps, atts = [], []
    for seed in SEEDS:
        draw = obs.draw_panel(world, seed)
        effect = estimate_twfe_did(draw.panel, post_months=world.post)
        gaps.append(effect.estimate - draw.att)
        atts.append(draw.att)
    return float(np.mean(gaps)), float(np.mean(atts))


def test_plain_did_is_unbiased_when_covariates_move_no_trend(obs: ModuleType) -> None:
    """Covariates drive selection and levels but not trends: the DiD without covariates is right."""
    world = obs.World(units=2000, pre=3, post=2, trend_segment=0.0, trend_size=0.0)
    bias, att = _twfe_bias(obs, world)
    assert att == 1.0  # a constant effect: the ATT is the effect in every draw
    assert abs(bias) < 0.05
    assert obs.predicted_plain_bias(world) == 0.0


def test_plain_did_is_biased_by_the_covariate_trend_as_derived(obs: ModuleType) -> None:
    """A segment whose outcome rises faster, and who is trained more: the DiD credits its trend.

    Derivation, from the world's parameters alone. Half the units are in segment 1
    (``segment_share`` 0.5); a unit of segment 1 is trained with probability 0.8, of segment 0 with
    0.2 (``enrol``), and size plays no part (``select_size`` 0). So P(D = 1) = 0.5 · 0.8 + 0.5 · 0.2
    = 0.5, and by Bayes E[segment | D = 1] = 0.5 · 0.8 / 0.5 = 0.8, E[segment | D = 0] =
    0.5 · 0.2 / 0.5 = 0.2. A unit's untreated outcome rises by 0.3 · segment per period
    (``trend_segment``; ``trend_size`` 0), so the trained group's mean rises by 0.3 · 0.8 = 0.24 per
    period and the comparison's by 0.3 · 0.2 = 0.06. Two-way fixed effects with ``post_months`` 2
    compares the trained units' two periods before training (periods 1 and 2, mean 1.5) with their
    two periods after (3 and 4, mean 3.5); the comparison units' months give the month effects.
    The estimator is linear in the outcome, and a trend shared by every unit is absorbed by the
    month effects, so a unit-specific trend b·t biases it by (mean b of the trained − mean b of the
    comparison) × (3.5 − 1.5) = (0.24 − 0.06) × 2 = +0.36. Levels (``level_segment``,
    ``level_size``) cancel in any DiD, the shocks common to every unit too, and the effect is
    constant, so the ATT is 1 and the DiD should come out near 1.36.
    """
    world = obs.World(units=2000, pre=3, post=2, segment_share=0.5, enrol=(0.2, 0.8), select_size=0.0,
                      trend_segment=0.3, trend_size=0.0, effect=1.0, effect_size=0.0)
    by_hand = 0.3 * (0.8 - 0.2) * (3.5 - 1.5)
    assert obs.predicted_plain_bias(world) == pytest.approx(by_hand, abs=1e-9)
    bias, att = _twfe_bias(obs, world)
    assert att == 1.0
    assert bias == pytest.approx(by_hand, abs=0.06)
    # Against the whole pre-period (all three periods, mean 1) the distance is 2.5, not 2.
    assert obs.predicted_plain_bias(world, pre_window=3) == pytest.approx(0.3 * 0.6 * 2.5)


def test_the_att_is_the_trained_units_effect_when_it_varies(obs: ModuleType) -> None:
    """With an effect that grows with size, and size driving training, the ATT exceeds the average effect."""
    world = obs.World(units=2000, pre=2, post=2, trend_segment=0.0, trend_size=0.0, effect=1.0, effect_size=0.5,
                      select_size=1.0)
    bias, att = _twfe_bias(obs, world)
    assert abs(bias) < 0.05  # parallel trends: the DiD recovers the trained units' mean effect …
    assert att > 1.1  # … which is above the average over everyone (1.0)
    assert att == pytest.approx(obs.population_att(world), abs=0.03)


def test_conditioning_on_the_covariates_removes_the_bias(obs: ModuleType) -> None:
    """Each unit's change (post mean − pre mean) regressed on training and both covariates recovers the ATT.

    The change is (mean post period − mean pre period) · b + effect · D + noise with b linear in the
    covariates, so the regression is the right model; the plain difference of changes is not.
    """
    world = obs.WORLDS["covariate_trends"]
    world = replace(world, units=2000)
    gaps, plain = [], []
    for seed in SEEDS:
        draw = obs.draw_panel(world, seed)
        units = (draw.panel.frame
                 .with_columns(after=pl.col("period") >= pl.col("period").min().dt.offset_by(f"{world.pre}mo"))
                 .group_by("unit")
                 .agg(change=pl.col("y").filter(pl.col("after")).mean() - pl.col("y").filter(~pl.col("after")).mean(),
                      trained=pl.col("treated_at").is_not_null().first(), segment=pl.col("segment").first(),
                      size=pl.col("size").first()))
        d = units["trained"].to_numpy().astype(float)
        x = np.column_stack([np.ones(units.height), d, units["segment"].to_numpy(), units["size"].to_numpy()])
        coef, *_ = np.linalg.lstsq(x, units["change"].to_numpy(), rcond=None)
        gaps.append(coef[1] - draw.att)
        change = units["change"].to_numpy()
        plain.append(change[d == 1].mean() - change[d == 0].mean() - draw.att)
    assert abs(np.mean(gaps)) < 0.05
    assert np.mean(plain) == pytest.approx(obs.predicted_plain_bias(world, pre_window=world.pre), abs=0.06)


def test_estimators_come_from_the_registry_and_unknown_names_are_skipped(obs: ModuleType) -> None:
    names = obs.default_estimators()
    assert "twfe" in names and "trend" not in names and set(names) <= set(ESTIMATORS)
    world = obs.World(units=200, pre=2, post=1)
    draw = obs.draw_panel(world, 3)
    out = obs.run_estimators(draw, ("twfe", "drdid", "not_registered_yet"), post=world.post, replicates=49,
                             seed=3)
    assert set(out) == {"twfe", "drdid", "recommended"}  # the product's recommendation is a row of its own
    assert not out["twfe"].skipped and np.isfinite(out["twfe"].estimate)
    assert not out["drdid"].skipped  # the generator's covariates reach the panel
    assert out["recommended"].estimate in (out["twfe"].estimate, out["drdid"].estimate)
    s = obs.summarise([(draw.att, out["twfe"]), (draw.att, obs.Outcome(skipped="not applicable"))])
    assert (s.runs, s.skipped) == (1, 1)


def test_poor_overlap_leaves_few_comparison_units_like_the_trained(obs: ModuleType) -> None:
    """Most trained units are near-certain to be trained, and a handful of untrained units stand in for them."""
    for seed in (1, 2):
        good, poor = (obs.draw_panel(obs.WORLDS[name], seed) for name in ("covariate_trends", "poor_overlap"))
        trained = poor.panel.units["treated_at"].is_not_null().to_numpy()
        assert (poor.propensity[trained] > 0.9).mean() > 0.7
        assert obs.effective_comparisons(poor) < 30 < 50 < obs.effective_comparisons(good)
        assert min(good.comparison, poor.comparison) > 400  # of 1,000: the groups are not small, overlap is


def test_the_summary_counts_coverage_false_crediting_and_overlap_warnings(obs: ModuleType) -> None:
    runs = [(1.0, obs.Outcome(1.1, 0.9, 1.3, warnings=("poor overlap: 40% of trained units have no match",))),
            (1.0, obs.Outcome(0.8, 0.7, 0.9, warnings=("few observations per unit",))),
            (0.0, obs.Outcome(0.3, -0.1, 0.7)),
            (1.0, obs.Outcome(skipped="no comparison units"))]
    s = obs.summarise(runs)
    assert (s.runs, s.skipped) == (3, 1)
    assert s.bias == pytest.approx((0.1 - 0.2 + 0.3) / 3) and s.rmse == pytest.approx(np.sqrt((0.01 + 0.04 + 0.09) / 3))
    assert s.coverage == pytest.approx(2 / 3) and s.excludes_zero == pytest.approx(2 / 3)
    assert s.warned == pytest.approx(2 / 3) and s.warned_overlap == pytest.approx(1 / 3)
