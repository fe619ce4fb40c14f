"""Knowledge gaps and next lessons on arrays: shrinkage by hand, the line of a skill's lesson by hand, coverage.

Synthetic units: keen units take more skills' lessons and improve anyway (a lean every skill
shares); the first lesson of two skills of six is worth more the larger the unit's gap, the others'
nothing. The fit equals a weighted least-squares solve by numpy, its intervals cover the true
slopes in about their nominal share of draws, and each unit's first recommendation is the skill
with the largest expected change it has not yet taken.
"""

from __future__ import annotations

import numpy as np
import pytest

from training_roi.errors import NotApplicable
from training_roi.isolate.next_lesson import gap_effects, recommend, skill_gaps

_SKILLS = ["open", "pain", "committee", "price", "close", "story"]
_SLOPE = {1: 0.12, 3: 0.12}  # per unit of gap: pain and price


def _world(rng: np.random.Generator, units: int = 2500):
    keen = rng.standard_normal(units)
    gap = np.clip(rng.beta(2, 2, (units, len(_SKILLS))), 0, 1)
    takes = rng.random((units, len(_SKILLS))) < 1 / (1 + np.exp(-(0.3 * keen[:, None])))
    exposure = takes * rng.uniform(0.3, 1.0, takes.shape)
    weights = rng.integers(8, 40, units).astype(float)
    slope = np.zeros(len(_SKILLS))
    for s, b in _SLOPE.items():
        slope[s] = b
    change = (0.01 + 0.01 * exposure.sum(axis=1) + (exposure * gap * slope).sum(axis=1) + 0.01 * keen
              + rng.standard_normal(units) * 0.4 / np.sqrt(weights))
    return change, exposure, gap, weights


def test_the_prior_s_concentration_is_recovered_from_beta_binomial_answers():
    """Known μ and κ: levels drawn from Beta(κμ, κ(1 − μ)), three or five answers each (a skills check, a retake)."""
    rng = np.random.default_rng(11)
    for kappa, mu in ((4.0, 0.6), (1.0, 0.45), (15.0, 0.7)):
        level = rng.beta(kappa * mu, kappa * (1 - mu), 40_000)
        n = rng.choice([3, 5], 40_000).astype(float)
        k = rng.binomial(n.astype(int), level).astype(float)
        gaps, prior = skill_gaps(n[:, None], k[:, None])
        assert prior[0] == pytest.approx(mu, abs=0.01)
        # The posterior mean is (k + κμ) / (n + κ): solve one unit's gap for the κ the fit used.
        m = 1 - gaps[0, 0]
        fitted = (k[0] - m * n[0]) / (m - prior[0])
        assert fitted == pytest.approx(kappa, rel=0.15), (kappa, fitted)


def test_the_gaps_are_the_posterior_means_by_hand():
    answers = np.array([[10, 0], [10, 2], [5, 2], [0, 2], [10, 2]], float)
    correct = np.array([[10, 0], [1, 2], [3, 0], [0, 1], [8, 1]], float)
    gaps, mu = skill_gaps(answers, correct)
    n, k = answers[[0, 1, 2, 4], 0], correct[[0, 1, 2, 4], 0]
    m = k.sum() / n.sum()
    between = ((k / n).var() - m * (1 - m) * np.mean(1 / n)) / (1 - np.mean(1 / n))
    kappa = m * (1 - m) / between - 1
    assert between > 0 and 0.5 < kappa < 100
    assert mu[0] == pytest.approx(m)
    assert gaps[:, 0] == pytest.approx(1 - (correct[:, 0] + kappa * m) / (answers[:, 0] + kappa))
    assert gaps[3, 0] == pytest.approx(1 - m)  # no answers: the skill's average


def test_more_spread_than_a_beta_prior_allows_barely_shrinks():
    """Four units right on their one answer, two wrong on all twenty: the units differ, far beyond any noise."""
    answers = np.array([[1], [1], [1], [1], [20], [20]], float)
    correct = np.array([[1], [1], [1], [1], [0], [0]], float)
    gaps, _ = skill_gaps(answers, correct)
    assert gaps[4, 0] > 0.9 and gaps[0, 0] < 0.5


def test_no_spread_beyond_noise_gives_everyone_the_average():
    rng = np.random.default_rng(2)
    answers = np.full((400, 1), 3.0)
    correct = rng.binomial(3, 0.6, (400, 1)).astype(float)
    gaps, mu = skill_gaps(answers, correct)
    assert np.ptp(gaps) < 0.05 and gaps.mean() == pytest.approx(1 - mu[0], abs=1e-3)


def test_the_lines_are_weighted_least_squares_by_hand():
    rng = np.random.default_rng(5)
    change, exposure, gap, weights = _world(rng, units=600)
    fit = gap_effects(change, exposure, gap, _SKILLS, weights=weights)
    centre = np.average(gap, axis=0, weights=weights)
    d = gap - centre
    design = np.column_stack([np.ones(change.size)]
                             + [c for s in range(len(_SKILLS)) for c in (exposure[:, s], exposure[:, s] * d[:, s])]
                             + [d[:, s] for s in range(len(_SKILLS))])
    root = np.sqrt(weights)
    beta = np.linalg.lstsq(design * root[:, None], change * root, rcond=None)[0]
    assert fit.coefficients == pytest.approx(beta[1:1 + 2 * len(_SKILLS)], rel=1e-8, abs=1e-10)
    value, se = fit.expected("price", np.array([centre[3], centre[3] + 0.2]))
    assert value == pytest.approx([beta[7], beta[7] + 0.2 * beta[8]])
    assert (se > 0).all()
    versus, _ = fit.versus_average("price", np.array([centre[3]]))
    assert versus[0] == pytest.approx(beta[7] - np.mean(beta[1:13:2]))


def test_the_slopes_intervals_cover_the_truth():
    hits = 0
    draws = 40
    for seed in range(draws):
        rng = np.random.default_rng(100 + seed)
        change, exposure, gap, weights = _world(rng)
        table = gap_effects(change, exposure, gap, _SKILLS, weights=weights).table
        price = table.row(3, named=True)
        hits += price["per_gap_low"] <= _SLOPE[3] <= price["per_gap_high"]
    assert hits >= 34, f"{hits} of {draws}"


def test_each_unit_gets_its_best_untaken_skill():
    rng = np.random.default_rng(9)
    change, exposure, gap, weights = _world(rng)
    fit = gap_effects(change, exposure, gap, _SKILLS, weights=weights)
    units = [f"u{i}" for i in range(change.size)]
    covered = exposure > 0
    answers = np.full(gap.shape, 3)
    recs = recommend(units, gap, answers, covered, _SKILLS, fit, per_unit=2).table
    assert recs.group_by("unit").len()["len"].max() == 2
    first = {r["unit"]: r for r in recs.filter(recs["rank"] == 1).iter_rows(named=True)}
    for i in rng.choice(change.size, 50, replace=False):
        open_ = [s for s in range(len(_SKILLS)) if not covered[i, s]]
        if not open_:
            assert units[i] not in first
            continue
        best = max(open_, key=lambda s: float(fit.expected(_SKILLS[s], gap[i:i + 1, s])[0][0]))
        assert first[units[i]]["skill"] == _SKILLS[best]
        assert not covered[i, _SKILLS.index(first[units[i]]["skill"])]
    # The units with a large price gap and no price lesson are sent to price or pain, the skills that pay.
    big = [units[i] for i in range(change.size) if gap[i, 3] > 0.8 and not covered[i, 3]]
    chosen = [first[u]["skill"] for u in big if u in first]
    assert np.mean([c in ("price", "pain") for c in chosen]) > 0.8


def test_too_few_takers_is_said():
    with pytest.raises(NotApplicable, match="no skill has a lesson taken by 10 units"):
        gap_effects(np.zeros(30), np.zeros((30, 2)), np.zeros((30, 2)), ["a", "b"])
    with pytest.raises(ValueError, match="one row per unit"):
        gap_effects(np.zeros(30), np.zeros((30, 2)), np.zeros((30, 3)), ["a", "b"])


def test_in_a_world_where_no_skill_matters_few_lessons_stand_out():
    """The keen units' lean lifts every skill alike: against the average lesson, nothing stands out by chance."""
    orgs_with_any = 0
    draws = 30
    for seed in range(draws):
        rng = np.random.default_rng(300 + seed)
        change, exposure, gap, weights = _world(rng, units=1500)
        change = change - (exposure * gap * np.array([_SLOPE.get(s, 0.0) for s in range(len(_SKILLS))])).sum(axis=1)
        fit = gap_effects(change, exposure, gap, _SKILLS, weights=weights)
        recs = recommend([f"u{i}" for i in range(change.size)], gap, np.full(gap.shape, 3), exposure > 0, _SKILLS,
                         fit).table
        orgs_with_any += bool(recs["established"].any())
    assert orgs_with_any <= 5, f"{orgs_with_any} of {draws}"
