"""Side-by-side methods and the recommended headline, on panels whose right design is known."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import numpy as np
import polars as pl
import pytest

from training_roi.isolate import UnitPanel
from training_roi.isolate.compare import compare_methods

MONTHS = [date(2023 + (m // 12), m % 12 + 1, 1) for m in range(30)]


def panel(*, effect: float, pre_trend: float = 0.0, comparison: bool = True, cohorts: int = 1,
          n: int = 160, seed: int = 0) -> UnitPanel:
    """Units with a level, noise, and (trained) a step of ``effect`` from their training month."""
    rng = np.random.default_rng(seed)
    starts = [date(2024, 7, 1), date(2024, 10, 1), date(2025, 1, 1)][:cohorts]
    rows = []
    for u in range(n):
        trained = u < n // 2 or not comparison
        at = starts[u % cohorts] if trained else None
        level = rng.normal(10, 1)
        for i, m in enumerate(MONTHS):
            y = (level + (pre_trend * i if trained else 0) + (effect if at and m >= at else 0)
                 + rng.normal(0, 0.5))
            rows.append({"unit": f"u{u:03d}", "period": m, "treated_at": at, "revenue": y})
    return UnitPanel(frame=pl.DataFrame(rows), outcome="revenue", numerator="revenue")


def test_parallel_trends_lead_to_difference_in_differences_and_all_methods_agree():
    c = compare_methods(panel(effect=2.0), post_months=6, replicates=199, refutations=False)
    assert c.recommended == "twfe" and "parallel" in c.reason
    for method in ("twfe", "event_study", "psm", "cem", "trend"):
        r = c.result(method)
        assert r is not None and r.effect is not None, (method, r)
        assert r.effect.estimate == pytest.approx(2.0, abs=0.35), method
    randomised = compare_methods(panel(effect=2.0), post_months=6, replicates=199, refutations=False,
                                 randomised=True, methods=("twfe",))
    assert randomised.recommended == "twfe" and "randomised" in randomised.reason


def test_cohorts_trained_at_different_months_lead_to_the_staggered_estimator():
    c = compare_methods(panel(effect=1.0, cohorts=3), post_months=4, replicates=199, refutations=False,
                        methods=("twfe", "event_study", "staggered"))
    assert c.recommended == "staggered" and "3 different months" in c.reason
    staggered = c.result("staggered")
    assert staggered is not None and staggered.effect is not None
    assert staggered.effect.ci_low <= 1.0 <= staggered.effect.ci_high


def test_diverging_groups_are_not_headlined_by_plain_difference_in_differences():
    c = compare_methods(panel(effect=0.0, pre_trend=0.1), post_months=6, replicates=199, refutations=False,
                        methods=("twfe", "event_study", "psm", "cem"))
    event = c.result("event_study")
    assert event is not None and event.effect is not None
    assert event.effect.diagnostics["pre_trend"]["p_value"] < 0.05
    assert c.recommended != "twfe" or "caution" in c.reason


def test_without_a_comparison_group_the_trend_line_leads_and_the_others_say_why_not():
    c = compare_methods(panel(effect=2.0, comparison=False), post_months=6, replicates=199, refutations=False,
                        methods=("twfe", "psm", "trend"))
    assert c.recommended == "trend"
    psm = c.result("psm")
    assert psm is not None and psm.effect is None and psm.not_applicable


def test_refutations_travel_with_each_estimate():
    c = compare_methods(panel(effect=2.0, seed=4), post_months=6, replicates=199, methods=("twfe",))
    twfe = c.result("twfe")
    assert twfe is not None
    tests = {r.test: r.passed for r in twfe.refutations}
    assert set(tests) >= {"placebo date", "placebo treatment", "comparison subset"}
    assert all(tests.values()), twfe.refutations
    with pytest.raises(ValueError, match="unknown method"):
        compare_methods(panel(effect=2.0), methods=("magic",))


def test_participant_estimates_take_the_observed_change_times_the_credited_share():
    surveys = pl.DataFrame({"role": ["learner", "learner", "manager"], "score": [50.0, 50.0, 50.0],
                            "confidence": [100.0, 100.0, 100.0]})
    p = panel(effect=2.0, comparison=False)
    c = compare_methods(p, post_months=6, replicates=199, refutations=False, methods=("participant",),
                        surveys=surveys)
    r = c.result("participant")
    assert r is not None and r.effect is not None
    assert r.effect.estimate == pytest.approx(1.0, abs=0.1)  # half of a 2.0 change, fully confident
    assert c.recommended == "participant" and "opinion" in c.reason
    none = compare_methods(p, methods=("participant",), refutations=False)
    assert none.result("participant").not_applicable and none.recommended is None


def test_results_print_compactly_in_a_notebook():
    # 160 units, 80 matched pairs: none of their ids, nor the balance table, belongs in what a notebook prints.
    p = panel(effect=2.0)
    c = compare_methods(p, post_months=6, replicates=99, methods=("twfe", "psm", "trend"))
    psm = c.result("psm")
    assert psm is not None and psm.effect is not None and len(psm.effect.diagnostics["matches"]) > 50
    ids = set(p.frame["unit"].unique().to_list())
    for obj, longest in ((psm.effect, 2500), (psm, 3000), (c, 4000), (p, 200)):
        shown = {"repr": repr(obj), "str": str(obj), "html": getattr(obj, "_repr_html_", lambda: "")()}
        assert len(shown["repr"]) < 200, (type(obj).__name__, shown["repr"])
        assert len(shown["str"]) < longest and len(shown["html"]) < longest, type(obj).__name__
        assert not any(u in text for u in ids for text in shown.values()), type(obj).__name__
    assert psm.summary().splitlines()[0] == psm.label and "challenge" in psm.summary()
    assert repr(c) == "Comparison(recommended='twfe', methods=3, applicable=3)"
    assert repr(p) == "UnitPanel(outcome='revenue', grain='month', units=160, trained=80, periods=30, rows=4800)"


def test_naive_comparisons_are_listed_biased_and_never_recommended():
    from tests.isolate.test_matching import _tiny

    # The hand-worked matching panel: trained units T1…T5 at levels 5, 8.2, 10.8, 30, 16 in January and
    # February, level + change (4, 3, 1.5, 9, 2) in March (their training month) and April; untrained
    # C1…C7 at 2, 4, 5.5, 7, 9, 11, 20, changing by 0, 3, 1, 0.5, 2, −1, 6 from March (their pseudo month).
    c = compare_methods(_tiny(), post_months=2, replicates=199, refutations=False, randomised=True,
                        methods=("twfe", "naive_before_after", "naive_after"))
    before_after = c.result("naive_before_after")
    after = c.result("naive_after")
    assert before_after is not None and after is not None
    assert before_after.effect is not None and after.effect is not None
    assert before_after.effect.biased and after.effect.biased and "biased" in before_after.label
    trained_before, trained_after = 70 / 5, 70 / 5 + 19.5 / 5  # means per unit-month: 14 and 17.9
    untrained_after = 58.5 / 7 + 11.5 / 7  # 10
    assert before_after.effect.estimate == pytest.approx(trained_after - trained_before)  # 3.9
    assert after.effect.estimate == pytest.approx(trained_after - untrained_after)  # 7.9
    assert before_after.effect.baseline == pytest.approx(trained_before)
    assert c.recommended == "twfe"
    assert "naive" not in (c.recommended or "")
    assert any("(biased)" in label for label, _, _ in c.rows())


def test_a_biased_effect_is_never_recommended(monkeypatch):
    from training_roi.isolate.effect import ESTIMATORS

    twfe = ESTIMATORS["twfe"]
    monkeypatch.setitem(ESTIMATORS, "twfe", replace(twfe, run=lambda p, s: replace(twfe.run(p, s), biased=True)))
    c = compare_methods(panel(effect=2.0), post_months=6, replicates=99, refutations=False, randomised=True,
                        methods=("twfe", "trend"))
    twfe_result = c.result("twfe")
    assert twfe_result is not None and twfe_result.effect is not None and twfe_result.effect.biased
    assert c.recommended != "twfe"
