"""The naive comparisons on the unit panel, registered so the comparison table lists them, labelled biased.

A reviewer asks for them first: did the trained units do better after training than before, and
better than the units who were not trained? Both answers are biased — the first credits the
program with every change over time (the market, the season, a new product), the second with
every difference between who took the training and who did not — so each :class:`Effect`
carries ``biased=True`` and :func:`~training_roi.isolate.compare.compare_methods` never
recommends one. They are the references the other designs are read against.

Both are :func:`~training_roi.isolate.did.naive_rates` on the panel's windows around each unit's
anchor (:mod:`training_roi.isolate.anchors`): the ``post_months`` periods before the period that
contains the training, and that period with the ``post_months − 1`` after it. Untrained units
are anchored at pseudo periods drawn from the trained units', so "after" spans the same calendar
periods for both groups. Rates are pooled (Σ numerator / Σ denominator, the mean per observed
unit-period without a denominator) and the intervals resample units.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import polars as pl

from training_roi.isolate.anchors import anchor_periods, window_sums
from training_roi.isolate.did import naive_rates
from training_roi.isolate.effect import Effect, EstimatorSettings, NotApplicable, estimator
from training_roi.measure.panels import GroupWindows, UnitPanel

__all__ = ["naive_windows"]


def naive_windows(panel: UnitPanel, *, periods: int = 6, seed: int = 7) -> tuple[GroupWindows, GroupWindows]:
    """Each group's sums in the ``periods`` periods before its units' anchors and the ``periods`` from them on.

    The trained group's units are anchored at the period that contains their training, the
    untrained units at pseudo periods drawn with ``seed`` from the trained units' anchors (see
    :func:`~training_roi.isolate.anchors.anchor_periods`). Successes are the numerator's sums,
    trials the denominator's (the observed unit-periods without one).

    Raises
    ------
    ValueError
        ``periods`` below 1.
    NotApplicable
        Nobody in the panel was trained.
    """
    if periods < 1:
        raise ValueError(f"periods must be at least 1, not {periods}")
    anchors = anchor_periods(panel, seed)
    sums = window_sums(panel, anchors, {"base": (-periods, -1), "post": (0, periods - 1)})
    joined = anchors.join(sums, on="unit", how="left", maintain_order="left")

    def group(trained: bool) -> GroupWindows:
        rows = joined.filter(pl.col("trained") == trained)
        arrays = [rows[c].to_numpy().astype(np.float64) for c in ("base_num", "base_den", "post_num", "post_den")]
        return GroupWindows(tuple(rows["unit"].to_list()), *arrays)

    return group(True), group(False)


def _windows(panel: UnitPanel, s: EstimatorSettings, *, comparison: bool) -> tuple[GroupWindows, GroupWindows]:
    treated, untrained = naive_windows(panel, periods=s.post_months, seed=s.seed)
    noun = panel.period_noun
    if treated.base_trials.sum() == 0 or treated.post_trials.sum() == 0:
        raise NotApplicable(f"the trained units have no {panel.outcome} in the {s.post_months} {noun}s before or "
                            "from their training")
    if comparison and (not untrained.units or untrained.post_trials.sum() == 0):
        raise NotApplicable(f"no untrained unit has {panel.outcome} in the {noun}s after its pseudo training "
                            f"{noun}: there is nobody untrained to compare with")
    return treated, untrained


def _noted(effect: Effect, panel: UnitPanel) -> Effect:
    notes = panel.unobserved_warnings()
    return replace(effect, warnings=(*effect.warnings, *notes)) if notes else effect


@estimator("naive_before_after", label="naive: trained units before vs after training (biased)",
           needs_comparison=False, refutable=False, position=90)
def _naive_before_after(panel: UnitPanel, s: EstimatorSettings) -> Effect:
    treated, untrained = _windows(panel, s, comparison=False)
    before_after, _ = naive_rates(treated, untrained, replicates=s.replicates, confidence=s.confidence, seed=s.seed)
    return _noted(before_after, panel)


@estimator("naive_after", label="naive: trained vs untrained units after training (biased)",
           needs_comparison=True, refutable=False, position=95)
def _naive_after(panel: UnitPanel, s: EstimatorSettings) -> Effect:
    treated, untrained = _windows(panel, s, comparison=True)
    _, after = naive_rates(treated, untrained, replicates=s.replicates, confidence=s.confidence, seed=s.seed)
    return _noted(after, panel)
