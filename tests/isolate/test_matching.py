"""Matched comparisons against hand-worked examples, a second library, and known truths."""

from __future__ import annotations

import json
from datetime import date
from functools import partial
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import statsmodels.api as sm

from tests.builders import unit_panel, window_panel
from training_roi.ingest.folder import ingest_folder
from training_roi.isolate import NotApplicable, UnitPanel, naive_rates
from training_roi.isolate.matching import estimate_cem, estimate_ipw, estimate_psm, unit_features
from training_roi.linking import link
from training_roi.simulate import simulate
from training_roi.warehouse.connection import connect

# The hand-worked figures below take the baseline itself as the matching window; the default
# (the months before it) is covered by the regression-to-the-mean test at the end.
psm_on_baseline = partial(estimate_psm, match_before_baseline=False)
ipw_on_baseline = partial(estimate_ipw, match_before_baseline=False)
cem_on_baseline = partial(estimate_cem, match_before_baseline=False)

MONTHS = [date(2024, m, 1) for m in range(1, 6)]  # January … May 2024


def _panel(units: dict[str, tuple[date | None, list[float]]], covariates: dict[str, dict[str, float]] | None = None,
           months: list[date] = MONTHS) -> UnitPanel:
    """A panel without denominator: each unit's training day (or None) and its outcome by month."""
    rows = [{"unit": u, "period": m, "treated_at": t, "revenue": v}
            for u, (t, values) in units.items() for m, v in zip(months, values, strict=True)]
    frame = pl.DataFrame(rows, schema={"unit": pl.String, "period": pl.Date, "treated_at": pl.Date,
                                       "revenue": pl.Float64})
    names: tuple[str, ...] = ()
    if covariates:
        names = tuple(covariates)
        frame = frame.with_columns(pl.col("unit").replace_strict(covariates[c]).cast(pl.Float64).alias(c)
                                   for c in names)
    return UnitPanel(frame=frame, outcome="revenue_per_rep", numerator="revenue", covariates=names)


# Pre-period level x (January and February, so no trend), x + change in March and April, and a
# May that neither window may read. Everyone trained in March, so March is the first month after
# training (the training month counts as after); every untrained unit's pseudo month is March too.
LEVELS = {"T1": 5.0, "T2": 8.2, "T3": 10.8, "T4": 30.0, "T5": 16.0,
          "C1": 2.0, "C2": 4.0, "C3": 5.5, "C4": 7.0, "C5": 9.0, "C6": 11.0, "C7": 20.0}
CHANGES = {"T1": 4.0, "T2": 3.0, "T3": 1.5, "T4": 9.0, "T5": 2.0,
           "C1": 0.0, "C2": 3.0, "C3": 1.0, "C4": 0.5, "C5": 2.0, "C6": -1.0, "C7": 6.0}


def _tiny(covariates: dict[str, dict[str, float]] | None = None) -> UnitPanel:
    units = {u: (date(2024, 3, 10 + i) if u.startswith("T") else None, [x, x, x + CHANGES[u], x + CHANGES[u], 999.0])
             for i, (u, x) in enumerate(LEVELS.items())}
    return _panel(units, covariates)


def test_matched_pairs_and_matched_did_by_hand():
    # Only the pre-period level varies (volume 2 active months and trend 0 for everyone), so the
    # score's logit is linear in it: nearest on the logit is nearest on the level, and a caliper of
    # 0.2 SD of the logit is 0.2 SD of the level: 0.2 × 7.9207 = 1.584 over the twelve units.
    # T4 (30) is above every untrained score; T5 (16) is 4 away from C7 (20): no match in the caliper.
    # T1 (5) → C3 (5.5); T2 (8.2) → C5 (9, not 7); T3 (10.8) → C6 (11).
    e = psm_on_baseline(_tiny(), pre_months=2, post_months=2, replicates=200)
    assert e.diagnostics["matches"] == {"T1": ["C3"], "T2": ["C5"], "T3": ["C6"]}
    assert e.estimate == pytest.approx(((4 - 1) + (3 - 2) + (1.5 - -1)) / 3)
    assert e.baseline == pytest.approx((5 + 8.2 + 10.8) / 3)
    assert e.diagnostics["caliper_logit"] is not None
    d = e.diagnostics
    assert (d["trained"], d["trained_matched"], d["trained_off_support"]) == (5, 3, 2)
    assert (d["trained_outside_score_range"], d["trained_without_match_in_caliper"]) == (1, 1)
    assert d["comparison_used"] == 3 and d["effective_comparison_size"] == pytest.approx(3)
    assert any("40.0% of trained units (2 of 5)" in w for w in e.warnings)
    assert e.details["unmatched_did"] == pytest.approx((4 + 3 + 1.5 + 9 + 2) / 5 - (0 + 3 + 1 + 0.5 + 2 - 1 + 6) / 7)
    assert json.loads(json.dumps(e.diagnostics))["matches"] == d["matches"]  # reports store it as JSON


def test_two_matches_per_trained_unit_by_hand():
    # Second neighbours: T1 → C2 (4, 1.0 away), T2 → C4 (7, 1.2 away); T3's second (9) is 1.8 away.
    e = psm_on_baseline(_tiny(), pre_months=2, post_months=2, ratio=2, replicates=200)
    assert {k: sorted(v) for k, v in e.diagnostics["matches"].items()} == {
        "T1": ["C2", "C3"], "T2": ["C4", "C5"], "T3": ["C6"]}
    assert e.estimate == pytest.approx(((4 - (1 + 3) / 2) + (3 - (2 + 0.5) / 2) + (1.5 + 1)) / 3)
    # Weights ½, ½, ½, ½, 1: Kish's effective size (Σw)² / Σw² = 9 / 2.
    assert e.diagnostics["effective_comparison_size"] == pytest.approx(4.5)
    alone = psm_on_baseline(_tiny(), pre_months=2, post_months=2, ratio=2, replace=False, replicates=200)
    used = [c for cs in alone.diagnostics["matches"].values() for c in cs]
    assert len(used) == len(set(used))


def test_coarsened_exact_matching_by_hand():
    # Two level bins split at the median of the twelve levels, (8.2 + 9) / 2 = 8.6, crossed with
    # region (categorical: exact). Stratum (high, region 1) holds T4 only: dropped.
    # (low, 0): T1 4 vs C1 0, C2 3 → 2.5;  (low, 1): T2 3 vs C3 1, C4 0.5 → 2.25;
    # (high, 0): T3 1.5, T5 2 vs C5 2, C6 −1, C7 6 → 1.75 − 7/3; weighted by trained units 1, 1, 2.
    region = {"T1": 0, "T2": 1, "T3": 0, "T4": 1, "T5": 0, "C1": 0, "C2": 0, "C3": 1, "C4": 1, "C5": 0,
              "C6": 0, "C7": 0}
    e = cem_on_baseline(_tiny({"region": region}), bins={"pre_level": 2}, pre_months=2, post_months=2, replicates=300)
    assert e.estimate == pytest.approx((2.5 + 2.25 + 2 * (1.75 - 7 / 3)) / 4)
    d = e.diagnostics
    assert d["exact"] == ["region"] and (d["strata"], d["strata_matched"]) == (4, 3)
    assert (d["trained_off_support"], d["comparison_dropped"]) == (1, 0)
    # CEM weights: 1/2 for C1, C2, C3, C4 and 2/3 for C5, C6, C7.
    w = np.array([0.5] * 4 + [2 / 3] * 3)
    assert d["effective_comparison_size"] == pytest.approx(w.sum() ** 2 / (w**2).sum())
    region_row = next(r for r in d["balance"] if r["feature"] == "region")
    assert region_row["smd_after"] == pytest.approx(0)  # exact matching balances the region exactly
    assert e.ci_low <= e.estimate <= e.ci_high


def test_unit_features_by_hand():
    months = [date(2024, m, 1) for m in range(1, 9)]
    frame = pl.DataFrame({
        "unit": ["A"] * 8 + ["B"] * 8 + ["Z"] * 8,
        "period": months * 3,
        "treated_at": [date(2024, 6, 20)] * 8 + [date(2024, 5, 2)] * 8 + [None] * 8,
        "won": [1, 0, 2, 1, 3, 9, 3, 1] + [0, 1, 1, 3, 2, 2, 2, 0] + [0] * 8,
        "closed": [2, 1, 2, 3, 4, 9, 4, 2] + [1, 1, 3, 9, 4, 4, 2, 0] + [0] * 8,
    }, schema_overrides={"won": pl.Float64, "closed": pl.Float64})
    panel = UnitPanel(frame=frame, outcome="win_rate", numerator="won", denominator="closed")
    f = unit_features(panel, pre_months=4, post_months=2, seed=3).to_dicts()
    # Rows come trained first, in the order of their data (B, trained in May, before A), never by id.
    assert [r["unit"] for r in f] == ["B", "A", "Z"]
    b, a, z = f
    # A trained in June: pre = Feb … May (0+2+1+3 won of 1+2+3+4 closed), late half Apr–May (4 of 7),
    # early Feb–Mar (2 of 3); post = June (the training month, after training) and July: 9+3 of 9+4.
    assert a["anchor"] == date(2024, 6, 1) and a["trained"]
    assert a["pre_level"] == pytest.approx(6 / 10) and a["pre_volume"] == 10
    assert a["pre_trend"] == pytest.approx(4 / 7 - 2 / 3)
    assert a["post_level"] == pytest.approx(12 / 13) and a["change"] == pytest.approx(12 / 13 - 6 / 10)
    # B trained in May: pre = Jan … Apr (5 of 14; late 4 of 12, early 1 of 2); post = May, June (4 of 8).
    assert b["anchor"] == date(2024, 5, 1)
    assert b["pre_level"] == pytest.approx(5 / 14) and b["pre_trend"] == pytest.approx(4 / 12 - 1 / 2)
    assert b["post_level"] == pytest.approx(4 / 8) and b["pre_volume"] == 14
    # Z never trained and never active: an anchor from the trained units' months, no levels.
    assert not z["trained"] and z["anchor"] in (date(2024, 5, 1), date(2024, 6, 1))
    assert z["pre_level"] is None and z["post_level"] is None and z["pre_volume"] == 0
    with pytest.raises(NotApplicable, match="at least 5"):
        psm_on_baseline(panel, pre_months=4, post_months=2)


def _self_selected(n: int = 400, seed: int = 1, effect: float = 1.0, growth: float = 0.1) -> tuple[UnitPanel, dict]:
    """Units whose skill sets their level, their growth, and their odds of training.

    ``revenue = 10 + s + growth · s · month + effect · trained-after + noise``: high-skill units trend
    up and choose the training, so comparing changes with every untrained unit overstates the effect.
    """
    rng = np.random.default_rng(seed)
    months = [date(2024 + (m - 1) // 12, (m - 1) % 12 + 1, 1) for m in range(1, 15)]
    skill = rng.standard_normal(n)
    trained = rng.random(n) < 1 / (1 + np.exp(-(-0.5 + 1.5 * skill)))
    anchor = rng.integers(7, 9, n)  # trained in July or August 2024 (month 7 or 8)
    m = np.arange(1, 15)
    after = trained[:, None] & (m[None, :] >= anchor[:, None])  # from the training month on
    y = 10 + skill[:, None] * (1 + growth * m[None, :]) + effect * after + 0.5 * rng.standard_normal((n, 14))
    units = {f"U{i:03d}": (date(2024, int(anchor[i]), 15) if trained[i] else None, list(y[i])) for i in range(n)}
    return _panel(units, months=months), {"skill": skill, "trained": trained, "y": y}


@pytest.fixture(scope="module")
def selected() -> tuple[UnitPanel, dict]:
    return _self_selected()


def test_smd_matches_numpy_and_shrinks_after_matching(selected):
    panel, _ = selected
    e = psm_on_baseline(panel, replicates=200)
    f = unit_features(panel)
    t = f.filter(pl.col("trained"))
    c = f.filter(~pl.col("trained"))
    rows = {r["feature"]: r for r in e.diagnostics["balance"]}
    matched = e.diagnostics["matches"]
    weight: dict[str, float] = {}
    for cs in matched.values():
        for u in cs:
            weight[u] = weight.get(u, 0.0) + 1 / len(cs)
    tm = t.filter(pl.col("unit").is_in(list(matched)))
    cm = c.filter(pl.col("unit").is_in(list(weight)))
    wc = np.array([weight[u] for u in cm["unit"]])
    for name in ("pre_level", "pre_trend"):
        xt, xc = t[name].to_numpy(), c[name].to_numpy()
        sd = np.sqrt((np.var(xt, ddof=1) + np.var(xc, ddof=1)) / 2)
        assert rows[name]["smd_before"] == pytest.approx((xt.mean() - xc.mean()) / sd, rel=1e-9)
        after = (tm[name].to_numpy().mean() - np.average(cm[name].to_numpy(), weights=wc)) / sd
        assert rows[name]["smd_after"] == pytest.approx(after, rel=1e-9)
    # High-skill units chose the training: far apart before, within the usual bar after.
    assert rows["pre_level"]["smd_before"] > 0.5
    assert abs(rows["pre_level"]["smd_after"]) < 0.1 < abs(rows["pre_level"]["smd_before"])
    assert abs(rows["pre_trend"]["smd_after"]) < abs(rows["pre_trend"]["smd_before"])


def test_ipw_equals_a_statsmodels_logit_hand_computation(selected):
    panel, _ = selected
    e = ipw_on_baseline(panel, trim=0.0, replicates=200)
    f = unit_features(panel)
    x = f.select("pre_level", "pre_volume", "pre_trend").to_numpy()
    sd = x.std(axis=0)
    keep = sd > 0  # the volume is 6 active months for everyone: no information, left out of this fit
    z = (x[:, keep] - x[:, keep].mean(axis=0)) / sd[keep]
    t = f["trained"].to_numpy()
    p = sm.Logit(t.astype(float), sm.add_constant(z)).fit(disp=0).predict(sm.add_constant(z))
    on = (p[t] >= p[~t].min()) & (p[t] <= p[~t].max())
    change = f["change"].to_numpy()
    odds = p[~t] / (1 - p[~t])
    att = change[t][on].mean() - (odds @ change[~t]) / odds.sum()
    assert e.estimate == pytest.approx(att, abs=2e-3)
    assert e.diagnostics["trained_off_support"] == int((~on).sum())
    assert e.diagnostics["effective_comparison_size"] == pytest.approx(odds.sum() ** 2 / (odds**2).sum(), rel=1e-2)


def test_matching_recovers_the_truth_that_plain_did_overstates(selected):
    panel, data = selected
    t, y = data["trained"], data["y"]
    # Independent references from the raw outcomes: every trained unit's months 1–6 vs 9–14 would
    # mix anchors, so take the features' windows (6 months either side of the anchor month).
    f = unit_features(panel)
    change = f["change"].to_numpy()
    tf = f["trained"].to_numpy()
    naive_did = change[tf].mean() - change[~tf].mean()
    naive_after = y[t, -6:].mean() - y[~t, -6:].mean()
    psm = psm_on_baseline(panel, replicates=300)
    cem = cem_on_baseline(panel, replicates=300)
    ipw = ipw_on_baseline(panel, replicates=300)
    # Direction: trained units are the high-skill ones, who trend up anyway, so both naive figures
    # overstate the effect of 1.0 (the DiD by growth × 6 months × the skill gap, about 0.7).
    assert naive_did > 1.4 and naive_after > naive_did
    assert psm.details["unmatched_did"] == pytest.approx(naive_did)
    for e in (psm, cem, ipw):
        assert abs(e.estimate - 1.0) < abs(naive_did - 1.0) / 3, e.method


def test_not_applicable_without_never_trained_units():
    units = {u: (date(2024, 3, 10), [x, x, 0.0, x + 1, x + 1]) for u, x in LEVELS.items()}
    with pytest.raises(NotApplicable, match="every unit in the panel was trained"):
        psm_on_baseline(_panel(units), pre_months=2, post_months=2)
    few = {u: (None if u in ("C1", "C2", "C3") else date(2024, 3, 10), v) for u, (_, v) in units.items()}
    with pytest.raises(NotApplicable, match=r"only 3 never-trained units .* at least 5"):
        ipw_on_baseline(_panel(few), pre_months=2, post_months=2)
    with pytest.raises(ValueError, match="pre_months must be at least 2"):
        cem_on_baseline(_panel(units), pre_months=1)


@pytest.mark.slow
def test_simulated_self_selection_matched_beats_naive(tmp_path: Path):
    folder = tmp_path / "org"
    simulate(folder, reps=300, months=24, seed=22, scenario="selection")
    truth = json.loads((folder / "truth.json").read_text())
    true_lift = truth["truth"]["windows"]["180"]["att_win_rate"]
    con = connect(tmp_path / "wh.duckdb")
    ingest_folder(folder, con)
    link(con)
    course = truth["program"]["course_activity_id"]
    panel = unit_panel(con, [course], kpi="win_rate")
    windows = window_panel(con, [course], baseline_days=182, window_days=180)
    _, trained_vs_untrained = naive_rates(windows.treated, windows.comparison, replicates=200)
    assert trained_vs_untrained.estimate > true_lift  # skilled reps chose the training
    for estimate in (estimate_psm, estimate_cem):
        e = estimate(panel, replicates=300)
        assert abs(e.estimate - true_lift) < abs(trained_vs_untrained.estimate - true_lift), e.method
        assert e.ci_low <= true_lift <= e.ci_high, e.method
        # Matching on the baseline itself: six months of one rep's deals say little about the rep,
        # and the report must say that its matches regress to the mean.
        on_baseline = estimate(panel, replicates=300, match_before_baseline=False)
        assert any("regression to the mean" in w for w in on_baseline.warnings), e.method
        assert not any("regression to the mean" in w for w in e.warnings), e.method
    con.disconnect()


def test_matching_before_the_baseline_avoids_regression_to_the_mean():
    """Skilled units train; the outcome is skill plus heavy noise; training does nothing.

    Matching on the baseline's noisy level picks comparison units that were lucky then and fall
    back afterwards, so the matched change overstates the effect; matching on the months before
    the baseline does not. (The hand-worked tests above use the baseline as matching window.)
    """
    rng = np.random.default_rng(11)
    months = [date(2023 + m // 12, m % 12 + 1, 1) for m in range(24)]
    rows = []
    for u in range(600):
        skill = rng.normal(0, 1)
        trained = rng.random() < 1 / (1 + np.exp(-1.5 * skill))
        for m in months:
            rows.append({"unit": f"u{u:03d}", "period": m, "treated_at": date(2024, 1, 15) if trained else None,
                         "y": skill + rng.normal(0, 3)})
    panel = UnitPanel(frame=pl.DataFrame(rows), outcome="y", numerator="y")
    same = estimate_psm(panel, match_before_baseline=False, pre_months=6, post_months=6, replicates=200)
    before = estimate_psm(panel, pre_months=6, post_months=6, replicates=200)
    assert same.estimate > 0.3 and not same.ci_low <= 0 <= same.ci_high  # a false effect
    assert abs(before.estimate) < 0.15 and before.ci_low <= 0 <= before.ci_high


def test_units_without_deals_in_the_baseline_are_left_out_not_turned_into_nan():
    rng = np.random.default_rng(5)
    months = [date(2023 + m // 12, m % 12 + 1, 1) for m in range(24)]
    rows = []
    for u in range(200):
        trained = u % 2 == 0
        quiet = u % 10 == 1  # some comparison units close nothing in the six months before their anchor
        for m in months:
            closed = 0 if quiet and date(2023, 7, 1) <= m < date(2024, 1, 1) else int(rng.poisson(4))
            rows.append({"unit": f"u{u:03d}", "period": m, "treated_at": date(2024, 1, 10) if trained else None,
                         "won": float(rng.binomial(closed, 0.3)), "closed": float(closed)})
    panel = UnitPanel(frame=pl.DataFrame(rows), outcome="win_rate", numerator="won", denominator="closed")
    e = estimate_psm(panel, pre_months=6, post_months=6, replicates=200, seed=1)
    assert np.isfinite(e.estimate) and e.ci_low <= e.estimate <= e.ci_high
    assert abs(e.estimate) < 0.05  # no effect was simulated


@pytest.mark.parametrize("estimate", [estimate_psm, estimate_ipw, estimate_cem])
def test_renaming_the_units_changes_nothing(selected, estimate):
    # Trained units in July or August draw their untrained comparisons' pseudo months; had the draw,
    # the matches' ties or the bootstrap followed the ids, new ids would give other figures.
    panel, _ = selected
    rng = np.random.default_rng(99)
    ids = panel.frame["unit"].unique().sort().to_list()
    new = dict(zip(ids, [f"rep-{rng.integers(10**9):09d}-{i}" for i in rng.permutation(len(ids))], strict=True))
    renamed = UnitPanel(frame=panel.frame.with_columns(pl.col("unit").replace_strict(new)), outcome=panel.outcome,
                        numerator=panel.numerator)
    a = estimate(panel, replicates=300)
    b = estimate(renamed, replicates=300)
    assert (b.estimate, b.ci_low, b.ci_high, b.p_value) == (a.estimate, a.ci_low, a.ci_high, a.p_value)
    if estimate is estimate_psm:
        assert b.diagnostics["matches"] == {new[t]: [new[c] for c in cs] for t, cs in a.diagnostics["matches"].items()}
