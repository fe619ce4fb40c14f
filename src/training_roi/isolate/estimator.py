"""What every estimator of the family shares: its result, how it says "not here", how it sums up draws.

Each estimator is a function ``estimate_<method>(panel, *, …) -> Effect`` over a
:class:`~training_roi.isolate.unit_panel.UnitPanel`. It returns an :class:`Effect` (estimate,
standard error, interval, p-value, probability of a positive effect, the trained group's
baseline, the assumptions in words, diagnostics and warnings) or raises :class:`NotApplicable`
with the reason when the data cannot support it (no comparison units, no pre-period, no
surveys). That is what lets a report run every applicable method side by side.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats

from training_roi.errors import NotApplicable
from training_roi.isolate.did import Effect, FloatArray, _summary, _weights

__all__ = ["NotApplicable", "cluster_weights", "effect_from_draws", "effect_from_normal"]


def cluster_weights(n_units: int, *, replicates: int = 2000, seed: int = 7) -> FloatArray:
    """Bootstrap weights over units (replicates × units): how often each unit is drawn.

    Resampling whole units keeps each unit's months together (they are not independent).
    """
    return _weights(np.random.default_rng(seed), n_units, replicates)


def effect_from_draws(
    method: str,
    point: float,
    draws: FloatArray,
    *,
    baseline: float,
    confidence: float = 0.95,
    assumptions: Sequence[str] = (),
    details: Mapping[str, float] | None = None,
    diagnostics: Mapping[str, Any] | None = None,
    warnings: Sequence[str] = (),
    biased: bool = False,
) -> Effect:
    """An :class:`Effect` whose uncertainty comes from bootstrap ``draws`` of the estimate.

    The interval is the percentile interval; the p-value is two-sided (how often a draw falls
    on the other side of zero); non-finite draws (a resample with no deals) are dropped.
    """
    lo, hi, p, se, prob = _summary(point, np.asarray(draws, dtype=np.float64), confidence)
    return Effect(method=method, estimate=float(point), ci_low=lo, ci_high=hi, p_value=p, std_error=se,
                  confidence=confidence, replicates=int(np.asarray(draws).size), prob_positive=prob,
                  baseline=float(baseline), biased=biased, assumptions=tuple(assumptions),
                  details=dict(details or {}), draws=np.asarray(draws, dtype=np.float64),
                  diagnostics=dict(diagnostics or {}), warnings=tuple(warnings))


def effect_from_normal(
    method: str,
    point: float,
    std_error: float,
    *,
    baseline: float,
    confidence: float = 0.95,
    dof: float | None = None,
    assumptions: Sequence[str] = (),
    details: Mapping[str, float] | None = None,
    diagnostics: Mapping[str, Any] | None = None,
    warnings: Sequence[str] = (),
    biased: bool = False,
) -> Effect:
    """An :class:`Effect` from an analytic standard error (normal, or Student's t with ``dof``).

    ``replicates`` is 0: no bootstrap. The probability of a positive effect is the
    distribution's mass above zero.
    """
    dist = stats.norm if dof is None else stats.t(dof)
    q = float(dist.ppf(0.5 + confidence / 2))
    if std_error > 0 and np.isfinite(std_error):
        z = point / std_error
        p = float(2 * dist.sf(abs(z)))
        prob = float(dist.cdf(z))
    else:
        p, prob = float("nan"), float("nan")
    return Effect(method=method, estimate=float(point), ci_low=float(point - q * std_error),
                  ci_high=float(point + q * std_error), p_value=p, std_error=float(std_error),
                  confidence=confidence, replicates=0, prob_positive=prob, baseline=float(baseline),
                  biased=biased, assumptions=tuple(assumptions), details=dict(details or {}),
                  diagnostics=dict(diagnostics or {}), warnings=tuple(warnings))
