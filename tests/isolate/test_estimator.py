"""The family's shared result builders against hand-worked figures."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from training_roi.isolate import NotApplicable, cluster_weights, effect_from_draws, effect_from_normal


def test_normal_effect_interval_p_value_and_probability():
    e = effect_from_normal("m", 2.0, 1.0, baseline=10.0)
    assert (e.ci_low, e.ci_high) == (pytest.approx(2 - 1.959964), pytest.approx(2 + 1.959964))
    assert e.p_value == pytest.approx(2 * (1 - stats.norm.cdf(2.0)))
    assert e.prob_positive == pytest.approx(stats.norm.cdf(2.0))
    assert e.relative == pytest.approx(0.2) and e.replicates == 0
    t = effect_from_normal("m", 2.0, 1.0, baseline=10.0, dof=5)
    assert t.ci_high - t.estimate == pytest.approx(stats.t(5).ppf(0.975))


def test_draws_effect_and_cluster_weights():
    draws = np.arange(1, 101, dtype=float) / 100  # 0.01 … 1.00, all positive
    e = effect_from_draws("m", 0.5, draws, baseline=1.0, confidence=0.9)
    assert e.prob_positive == 1.0 and e.p_value == 0.0
    assert e.ci_low == pytest.approx(np.quantile(draws, 0.05)) and e.replicates == 100
    w = cluster_weights(7, replicates=50, seed=1)
    assert w.shape == (50, 7) and (w.sum(axis=1) == 7).all()
    assert issubclass(NotApplicable, ValueError)
