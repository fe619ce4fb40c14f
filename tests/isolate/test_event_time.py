"""One convention for every estimator: the period that contains the training is event time 0, after training."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from training_roi.isolate import compare_methods
from training_roi.measure.panels import UnitPanel

POST = 4
GROWING = np.mean([k + 1 for k in range(POST)])
"""The truth: an effect of k + 1 at event time k ≥ 0, averaged over event times 0 … 3 = 2.5.

Leaving out the training month (event times 1 … 4) would give 3.5."""


def growing_panel() -> UnitPanel:
    """Noiseless: a unit level, 0.2 a month for everyone, and k + 1 from the month of training (the 20th) on."""
    rng = np.random.default_rng(2)
    months = [date(2023 + m // 12, m % 12 + 1, 1) for m in range(30)]
    trained_in = 18  # July 2024
    rows = []
    for u in range(120):
        trained = u % 2 == 0
        level = rng.normal(50, 5)
        for t, m in enumerate(months):
            k = t - trained_in
            rows.append({"unit": f"u{u:03d}", "period": m,
                         "treated_at": date(2024, 7, 20) if trained else None,
                         "y": level + 0.2 * t + (k + 1 if trained and k >= 0 else 0.0)})
    return UnitPanel(frame=pl.DataFrame(rows), outcome="y", numerator="y")


def test_every_estimator_counts_the_training_month_as_the_first_after_training():
    surveys = pl.DataFrame({"role": ["learner"], "score": [100.0], "confidence": [100.0]})
    c = compare_methods(growing_panel(), post_months=POST, replicates=99, refutations=False, surveys=surveys,
                        methods=("twfe", "event_study", "staggered", "psm", "ipw", "cem", "trend", "participant"))
    estimates = {r.method: r.effect.estimate for r in c.results if r.effect is not None}
    assert set(estimates) == {"twfe", "event_study", "staggered", "psm", "ipw", "cem", "trend", "participant"}
    for method in ("twfe", "event_study", "staggered", "psm", "ipw", "cem", "trend"):
        assert estimates[method] == pytest.approx(GROWING, abs=1e-6), method
    # The participants credit all of the trained units' observed change: months 0 … 3 against −4 … −1,
    # i.e. four months of the 0.2 trend plus the mean effect 2.5.
    assert estimates["participant"] == pytest.approx(4 * 0.2 + GROWING, abs=1e-9)
