"""The effect by subgroup: a hand-worked stratified comparison, and coverage of a known truth.

A world with a known effect per unit (it differs by region and with a covariate), enrolment that
depends on both, and outcomes whose change depends on both too: the plain comparison within a
region is biased, the doubly robust learner is not, and its intervals cover each region's true
effect on the trained and on the untrained about as often as they claim; the simultaneous band
covers all regions at once at least that often.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from training_roi.isolate import NotApplicable, UnitPanel
from training_roi.isolate.heterogeneity import BASELINE, estimate_subgroups, subgroup_effects

_EFFECT = np.array([0.00, 0.02, 0.05, 0.08])  # the true effect by region, before the covariate's part


def _world(n: int, rng: np.random.Generator, effect: np.ndarray = _EFFECT) -> dict[str, np.ndarray]:
    region = rng.integers(0, 4, n)
    x = rng.standard_normal(n)
    propensity = 1 / (1 + np.exp(-(-0.5 + 0.8 * x + np.array([0.0, 0.5, -0.5, 1.0])[region])))
    d = rng.random(n) < propensity
    tau = effect[region] + 0.01 * x
    y0 = 0.3 + 0.05 * x + rng.normal(0, 0.08, n)
    change = 0.03 * x + np.array([0.0, 0.02, -0.01, 0.03])[region] + rng.normal(0, 0.05, n)
    return {"y0": y0, "y1": y0 + change + d * tau, "d": d, "region": np.array([f"r{r}" for r in region]), "x": x,
            "tau": tau}


def _truth(w: dict[str, np.ndarray], trained: bool) -> np.ndarray:
    group = w["d"] if trained else ~w["d"]
    return np.array([w["tau"][group & (w["region"] == g)].mean() for g in sorted(set(w["region"]))])


def test_a_saturated_model_is_the_difference_in_differences_within_each_subgroup():
    rng = np.random.default_rng(3)
    w = _world(2000, rng)
    weights = rng.integers(1, 9, w["d"].size).astype(float)
    r = subgroup_effects(w["y0"], w["y1"], w["d"], {"region": w["region"]}, weights=weights, folds=1, ridge=0.0,
                         replicates=200)
    change = w["y1"] - w["y0"]
    for row in r.table.iter_rows(named=True):
        inside = w["region"] == row["level"]
        t, c = inside & w["d"], inside & ~w["d"]
        by_hand = (np.average(change[t], weights=weights[t]) - np.average(change[c], weights=weights[c]))
        assert row["att_estimate"] == pytest.approx(by_hand, abs=1e-12)
        assert row["atu_estimate"] == pytest.approx(by_hand, abs=1e-12)
        assert (row["trained_units"], row["untrained_units"]) == (int(t.sum()), int(c.sum()))


def test_intervals_cover_the_true_effects_about_as_often_as_they_claim():
    rng = np.random.default_rng(11)
    runs = 40
    pointwise_att, pointwise_atu, simultaneous, plain_bias = [], [], [], []
    for run in range(runs):
        w = _world(3000, rng)
        r = subgroup_effects(w["y0"], w["y1"], w["d"], {"region": w["region"]}, covariates=w["x"][:, None],
                             replicates=1000, seed=run)
        t = {c: r.table[c].to_numpy() for c in r.table.columns}
        att, atu = _truth(w, True), _truth(w, False)
        pointwise_att.append((t["att_low"] <= att) & (att <= t["att_high"]))
        pointwise_atu.append((t["atu_low"] <= atu) & (atu <= t["atu_high"]))
        simultaneous.append(bool(((t["att_sim_low"] <= att) & (att <= t["att_sim_high"])).all()))
        change = w["y1"] - w["y0"]
        inside = w["region"] == "r3"
        plain_bias.append(change[inside & w["d"]].mean() - change[inside & ~w["d"]].mean() - att[3])
        assert r.differ["region"]["p_value"] < 1e-6  # the effects do differ by region
    # 40 runs × 4 regions: 95% coverage gives 152 of 160 on average; under 140 would be a 1-in-10,000 event.
    assert np.sum(pointwise_att) >= 140 and np.sum(pointwise_atu) >= 140
    assert np.mean(simultaneous) >= 0.9
    # The plain comparison within a region is off by the covariate's part of the change (the learner is not).
    assert np.mean(plain_bias) > 0.01


def test_no_difference_between_regions_is_seldom_reported():
    rng = np.random.default_rng(5)
    p = []
    for run in range(40):
        w = _world(1500, rng, effect=np.full(4, 0.03))
        r = subgroup_effects(w["y0"], w["y1"], w["d"], {"region": w["region"]}, covariates=w["x"][:, None],
                             replicates=200, seed=run)
        p.append(r.differ["region"]["p_value"])
    assert np.mean(np.array(p) < 0.05) <= 0.15
    assert np.mean(p) == pytest.approx(0.5, abs=0.15)  # about uniform under no difference


def test_small_subgroups_are_named_not_estimated():
    rng = np.random.default_rng(2)
    w = _world(600, rng)
    tiny = w["region"].astype(object)
    tiny[:12] = "tiny"
    r = subgroup_effects(w["y0"], w["y1"], w["d"], {"region": tiny}, replicates=100)
    row = r.table.filter(pl.col("level") == "tiny").row(0, named=True)
    assert row["att_estimate"] is None and row["atu_estimate"] is None
    assert any("region = tiny" in x for x in r.warnings)
    with pytest.raises(NotApplicable, match="trained"):
        subgroup_effects(w["y0"][:30], w["y1"][:30], np.arange(30) < 3, {"region": w["region"][:30]})
    with pytest.raises(ValueError, match="one value per unit"):
        subgroup_effects(w["y0"], w["y1"][:-1], w["d"], {"region": w["region"]})


def test_on_a_unit_panel_with_thirds_of_the_earlier_record():
    """Weaker reps gain, stronger ones do not; the thirds come from the months before the pre-period."""
    rng = np.random.default_rng(8)
    units, months = 600, 18
    skill = rng.standard_normal(units)
    trained = rng.random(units) < 0.4
    rows = []
    for u in range(units):
        for m in range(months):
            after = trained[u] and m >= 12
            p = 1 / (1 + np.exp(-(-0.4 + 0.8 * skill[u] + (0.6 if after and skill[u] < 0 else 0.0))))
            closed = int(rng.integers(4, 10))
            rows.append({"unit": f"u{u}", "period": date(2024 + m // 12, m % 12 + 1, 1),
                         "won": int(rng.binomial(closed, p)), "closed": closed,
                         "treated_at": date(2025, 1, 10) if trained[u] else None})
    panel = UnitPanel(pl.DataFrame(rows), outcome="win_rate", numerator="won", denominator="closed")
    groups = pl.DataFrame({"unit": [f"u{u}" for u in range(units)], "team": [f"t{u % 7}" for u in range(units)]})
    r = estimate_subgroups(panel, groups, pre_months=6, post_months=6, replicates=500)
    thirds = {row["level"]: row for row in r.table.filter(pl.col("variable") == BASELINE).iter_rows(named=True)}
    assert set(thirds) == {"bottom third", "middle third", "top third"}
    assert thirds["bottom third"]["att_sim_low"] > 0.03  # the weakest reps gain
    assert thirds["top third"]["att_sim_low"] < 0 < thirds["top third"]["att_sim_high"]  # the strongest do not
    assert r.differ[BASELINE]["p_value"] < 0.01
    assert r.differ["team"]["p_value"] > 0.001  # teams are arbitrary here
    assert len(r.diagnostics["baseline_cut_points"]) == 2
