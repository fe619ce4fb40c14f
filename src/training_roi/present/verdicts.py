"""A KPI's verdict with its reason, and the chance it improved, worded the same in every output.

"not established" alone leaves a reader to guess whether the interval straddles zero or the
change, though certain, is too small to credit (a cycle 4.7% shorter, its interval clear of zero,
under the 5% threshold). The verdict here carries the credit's own reason. And a probability is
always the chance the KPI moved the better way — up, or down for a KPI where lower is better —
labelled P(improvement), so that 99.9% never means "99.9% likely the cycle got longer".
"""

from __future__ import annotations

from training_roi.evaluation.results import KpiResult
from training_roi.isolate import Effect

__all__ = ["IMPROVEMENT", "IMPROVEMENT_MEANS", "improvement", "verdict"]

IMPROVEMENT = "P(improvement)"
IMPROVEMENT_MEANS = ("the share of resamples in which the KPI moved the better way: up, or down for a KPI where "
                     "lower is better")


def improvement(effect: Effect | None, higher_is_better: bool = True) -> float | None:
    """The chance the KPI moved the better way: P(effect > 0), or P(effect < 0) when lower is better."""
    if effect is None or effect.prob_positive != effect.prob_positive:
        return None
    return effect.prob_positive if higher_is_better else 1 - effect.prob_positive


def verdict(k: KpiResult) -> str:
    """``improved`` / ``worsened``, or ``not established`` with the reason the credit gives."""
    if k.credit.is_credited:
        return k.verdict
    return f"{k.verdict}: {k.credit.why}" if k.credit.why and k.credit.why != k.credit.reason else k.verdict
