"""LaLonde's job-training data: the experiment's answer reproduced, and the recommended observational design near it.

The NSW experiment (Dehejia–Wahba subsample, ``causaldata``) randomised training: its answer is
the difference of mean 1978 earnings between the 185 trained and the 260 controls, computed here
with pandas alone ($1,794.34). Given the trained and 15,992 CPS people instead of the controls, a
plain difference-in-differences credits twice that (the CPS people earned far more and their
earnings moved differently); the recommendation must see the covariate imbalance and lead with
a design whose interval holds the experimental answer.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("causaldata")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "validation"))

import lalonde


@pytest.fixture(scope="module")
def data():
    return lalonde.samples()


def test_the_experimental_answer_is_reproduced(data):
    nsw, _ = data
    trained, controls = nsw[nsw["treat"] == 1], nsw[nsw["treat"] == 0]
    assert (len(trained), len(controls)) == (185, 260)
    answer, _, _ = lalonde.experimental_answer(nsw)
    assert answer == pytest.approx(trained["re78"].mean() - controls["re78"].mean())
    assert answer == pytest.approx(1794.34, abs=0.01)
    from training_roi.isolate import compare_methods

    c = compare_methods(lalonde.long_panel(nsw), post_months=1, replicates=199, refutations=False, randomised=True,
                        methods=("twfe",))
    assert c.recommended == "twfe"
    twfe = c.result("twfe")
    assert twfe is not None and twfe.effect is not None
    # The experiment's difference-in-differences over one period before and one after (1978 − 1975), by pandas.
    change = nsw["re78"].astype(float) - nsw["re75"].astype(float)
    expected = change[nsw["treat"] == 1].mean() - change[nsw["treat"] == 0].mean()
    assert twfe.effect.estimate == pytest.approx(expected, rel=1e-9)
    assert twfe.effect.ci_low <= answer <= twfe.effect.ci_high


def test_the_recommended_observational_design_holds_the_experimental_answer(data):
    nsw, observational = data
    answer, lo, hi = lalonde.experimental_answer(nsw)
    from training_roi.isolate import compare_methods

    c = compare_methods(lalonde.long_panel(observational), post_months=1, replicates=199, refutations=False,
                        methods=("twfe", "event_study", "drdid", "naive_after"))
    twfe = c.result("twfe")
    assert twfe is not None and twfe.effect is not None
    change = observational["re78"].astype(float) - observational["re75"].astype(float)
    plain = change[observational["treat"] == 1].mean() - change[observational["treat"] == 0].mean()
    assert twfe.effect.estimate == pytest.approx(plain, rel=1e-9)
    assert not twfe.effect.ci_low <= answer <= twfe.effect.ci_high  # the plain DiD misses the experiment
    assert c.recommended == "drdid", c.reason
    assert "standardised mean difference" in c.reason and c.evidence["largest_smd_before"] > 1
    dr = c.result("drdid")
    assert dr is not None and dr.effect is not None
    assert lo <= dr.effect.estimate <= hi
    assert dr.effect.ci_low <= answer <= dr.effect.ci_high
