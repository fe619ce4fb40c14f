"""The recommendation's rules, one situation at a time, on effects whose diagnostics are set by hand."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from training_roi.isolate.effect import Effect, effect_from_normal
from training_roi.isolate.pretrends import pretrend_check
from training_roi.isolate.recommend import STRONG_IMBALANCE, recommend


@dataclass(frozen=True)
class R:
    method: str
    effect: Effect | None


def fx(method: str, estimate: float = 1.0, *, warnings: tuple[str, ...] = (), biased: bool = False,
       **diagnostics: Any) -> R:
    return R(method, effect_from_normal(method, estimate, 0.3, baseline=10.0, warnings=warnings,
                                        diagnostics=diagnostics, biased=biased))


def balance(smd: float) -> dict[str, Any]:
    return {"balance": [{"feature": "region", "smd_before": smd, "smd_after": 0.02},
                        {"feature": "tenure", "smd_before": smd / 3, "smd_after": 0.01}],
            "max_abs_smd_after": 0.02, "share_trained_off_support": 0.0, "effective_comparison_size": 250.0}


def small_leads(effect: float = 1.0):
    """Two leads of 0.01 with standard errors 0.05: gaps above 0.01 + 1.645 × 0.05 ≈ 0.092 are ruled out."""
    return pretrend_check([0.01, 0.01], np.diag([0.05**2] * 2), periods=[-3, -2], tolerance=0.5 * effect)


def noisy_leads(effect: float = 1.0):
    """Two leads with standard errors 2: nothing below 3.3 can be ruled out, the pre-test has no power."""
    return pretrend_check([0.1, -0.2], np.diag([4.0, 4.0]), periods=[-3, -2], tolerance=0.5 * effect)


def diverging_leads(effect: float = 1.0):
    return pretrend_check([-0.8, -0.4], np.diag([0.01, 0.01]), periods=[-3, -2], tolerance=0.5 * effect)


def test_randomisation_leads_even_when_covariates_differ_but_says_so():
    r = recommend({"twfe": fx("twfe"), "drdid": fx("drdid", **balance(0.6))}, randomised=True, cohorts=1,
                  pre_trends=noisy_leads())
    assert r.method == "twfe" and "randomised" in r.reason
    assert "caution" in r.reason and "region" in r.reason


def test_strong_covariate_imbalance_leads_to_the_doubly_robust_design_even_when_pre_trends_look_flat():
    r = recommend({"twfe": fx("twfe"), "drdid": fx("drdid", **balance(2.4))}, randomised=False, cohorts=1,
                  pre_trends=small_leads())
    assert r.method == "drdid"
    assert "2.4" in r.reason and "region" in r.reason and not r.reason.startswith("caution")
    assert r.evidence["largest_smd_before"] == 2.4


def test_poor_overlap_is_said_first():
    poor = "poor overlap: 40.0% of trained units (40 of 100) have a propensity above every untrained unit's (0.9)"
    r = recommend({"twfe": fx("twfe"), "drdid": fx("drdid", warnings=(poor,), **balance(2.4))},
                  randomised=False, cohorts=1, pre_trends=small_leads())
    assert r.method == "drdid" and r.reason.startswith("caution: poor overlap")


def test_a_pre_test_that_passes_without_power_is_not_evidence_of_parallel_trends():
    leads = noisy_leads()
    assert not leads.rejects and not leads.equivalent
    r = recommend({"twfe": fx("twfe")}, randomised=False, cohorts=1, pre_trends=leads)
    assert r.method == "twfe" and r.reason.startswith("caution") and "cannot tell" in r.reason
    # With covariates (not strongly imbalanced) the doubly robust design is preferred when trends are not shown.
    r = recommend({"twfe": fx("twfe"), "drdid": fx("drdid", **balance(0.15))}, randomised=False, cohorts=1,
                  pre_trends=leads)
    assert r.method == "drdid" and "does not establish parallel trends" in r.reason


def test_established_small_pre_trends_and_balanced_covariates_lead_to_difference_in_differences():
    r = recommend({"twfe": fx("twfe"), "drdid": fx("drdid", **balance(0.1))}, randomised=False, cohorts=1,
                  pre_trends=small_leads())
    assert r.method == "twfe" and "ruled out" in r.reason and f"{STRONG_IMBALANCE}" in r.reason


def test_staggered_cohorts_lead_to_the_group_time_estimator_unless_trends_diverge():
    results = {"twfe": fx("twfe"), "staggered": fx("staggered"), "psm": fx("psm")}
    assert recommend(results, randomised=False, cohorts=3, pre_trends=small_leads()).method == "staggered"
    assert recommend(results, randomised=False, cohorts=3, pre_trends=diverging_leads()).method == "psm"


def test_diverging_trends_fall_to_a_balanced_match_and_never_to_a_biased_reference():
    unbalanced = "balance not reached: standardised mean difference after matching of level +0.30"
    results = {"twfe": fx("twfe"), "psm": fx("psm", warnings=(unbalanced,)), "cem": fx("cem"),
               "naive_post": fx("naive_post", biased=True)}
    r = recommend(results, randomised=False, cohorts=1, pre_trends=diverging_leads())
    assert r.method == "cem" and "pre-trends found" in r.reason
    only_biased = recommend({"naive_post": fx("naive_post", biased=True)}, randomised=False, cohorts=1,
                            pre_trends=None)
    assert only_biased.method is None


def test_without_a_comparison_group_the_trend_then_the_participants_opinion():
    assert recommend({"trend": fx("trend"), "participant": fx("participant")}, randomised=False, cohorts=1,
                     pre_trends=None).method == "trend"
    r = recommend({"participant": fx("participant")}, randomised=False, cohorts=1, pre_trends=None)
    assert r.method == "participant" and "opinion" in r.reason


def test_staggered_cohorts_with_covariates_prefer_the_doubly_robust_group_time_estimator():
    results = {"twfe": fx("twfe"), "staggered": fx("staggered"), "drdid": fx("drdid", **balance(0.15)),
               "staggered_dr": fx("staggered_dr", share_trained_off_support=0.0, effective_comparison_size=80.0)}
    r = recommend(results, randomised=False, cohorts=3, pre_trends=small_leads())
    assert r.method == "staggered_dr" and "3 different periods" in r.reason and "80 units" in r.reason
    # Strongly different covariates: the group-time form still leads, since the cohorts are several.
    strong = {**results, "drdid": fx("drdid", **balance(2.4))}
    assert recommend(strong, randomised=False, cohorts=3, pre_trends=small_leads()).method == "staggered_dr"
    # One cohort, or no covariates (the estimator did not apply): as before.
    assert recommend(results, randomised=False, cohorts=1, pre_trends=small_leads()).method != "staggered_dr"
    without = {**results, "staggered_dr": R("staggered_dr", None)}
    assert recommend(without, randomised=False, cohorts=3, pre_trends=small_leads()).method == "staggered"
    # Diverging leads: neither group-time estimator leads.
    assert recommend(results, randomised=False, cohorts=3, pre_trends=diverging_leads()).method != "staggered_dr"


def test_strong_imbalance_with_staggered_cohorts_leads_to_the_doubly_robust_group_time_estimator():
    results = {"twfe": fx("twfe"), "drdid": fx("drdid", **balance(1.2)), "staggered": fx("staggered"),
               "staggered_dr": fx("staggered_dr", **balance(1.2))}
    r = recommend(results, randomised=False, cohorts=4, pre_trends=small_leads(), noun="month")
    assert r.method == "staggered_dr" and "4 different months" in r.reason and "1.2" in r.reason
    assert recommend(results, randomised=False, cohorts=1, pre_trends=small_leads()).method == "drdid"
