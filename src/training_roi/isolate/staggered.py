"""Difference-in-differences for training rolled out over many periods (Callaway & Sant'Anna 2021).

When units are trained in different periods and the effect grows (or fades) with time since
training, two-way fixed effects compares later-trained units with units trained earlier — whose
outcome is still moving because of training — and misstates the effect. The group-time approach
only ever compares a cohort (the units trained in one period) with units that are not trained
yet: for cohort g and period t,

    ATT(g, t) = [Y_g(t) − Y_g(g−1)] − [Y_C(t) − Y_C(g−1)],

the change of the cohort's outcome since the period before its training minus the same change in
the control group C: the never-trained units, or those plus the units not trained by period t
(and not in cohort g). These effects are then averaged with the cohorts' sizes as weights.
Periods are the panel's grain (months by default); the period that contains a unit's training
is its cohort's period g, the first after training.

This is the unconditional estimator (no covariates). Outcomes are pooled within a group and
period as everywhere in the family: a rate is Σ numerator / Σ denominator over the group's units
(so a rep with more closed deals counts for more and a period with none counts for nothing; a
unit-period without an outcome is left out), and an outcome without a denominator is the group's
mean per observed unit. Without a denominator this is exactly Callaway & Sant'Anna's
outcome-regression estimator on a balanced panel.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from training_roi.isolate.effect import (
    Effect,
    EstimatorSettings,
    FloatArray,
    NotApplicable,
    cluster_weights,
    effect_from_draws,
    estimator,
    never_narrower,
    summarise_draws,
)
from training_roi.isolate.event_study import _baseline, _check, _Grid
from training_roi.isolate.wild import FEW_CLUSTERS, linearized_inference, multiplier_weights
from training_roi.measure.panels import UnitPanel

__all__ = ["estimate_staggered"]


def _ratio(num: FloatArray, den: FloatArray) -> FloatArray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _weighted_mean(values: FloatArray, weights: FloatArray) -> FloatArray:
    """Per replicate (row), the mean of the finite ``values`` weighted by ``weights``; nan when none."""
    ok = np.isfinite(values) & (weights > 0)
    total = np.where(ok, weights, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, np.where(ok, weights * np.nan_to_num(values), 0.0).sum(axis=1) / total, np.nan)


def estimate_staggered(
    panel: UnitPanel,
    *,
    control: Literal["never_treated", "not_yet_treated"] = "never_treated",
    post_months: int = 6,
    confidence: float = 0.95,
    replicates: int = 999,
    seed: int = 7,
) -> Effect:
    """The average effect over the first periods after training, from group-time effects.

    Cohorts are the units trained in the same period of the panel's grain (event time 0; the
    period before, −1, is every cohort's base). ``control`` is ``"never_treated"`` (units never
    trained, and units trained only after the data ends) or ``"not_yet_treated"`` (those plus
    units trained after period t, which keeps more controls when almost everyone is trained
    eventually). ``post_months`` counts periods of the grain.

    The estimate averages ATT(g, t) over every cohort and every period from the training period
    to ``post_months − 1`` periods after it that the data covers, **each weighted by the number
    of units in the cohort** (Callaway & Sant'Anna's "simple" aggregation, restricted to those
    event times). ``diagnostics["dynamic"]`` holds the event-time aggregation (for each event
    time, ``relative_month``, the cohort-size-weighted mean of that period's ATT(g, t), from
    ``−post_months`` to ``post_months − 1``; the periods before training are placebo checks that
    should be near zero), ``diagnostics["group_time"]`` every ATT(g, t), its cohort and period
    labelled by :meth:`~training_roi.measure.panels.UnitPanel.period_label`.

    Uncertainty comes from a cluster bootstrap over units (``replicates`` resamples, percentile
    interval), which resamples the cohorts' sizes too. When the panel names a ``cluster`` (the
    team of a go-live by team), whole clusters are resampled instead; with fewer than 30 clusters
    the estimate's interval and p-value come from the wild cluster restricted bootstrap of its
    linearization in the clusters' weights (:func:`~training_roi.isolate.wild.linearized_inference`),
    and the draws (for the cohort-period table and anything valued from them) from the wild
    multiplier bootstrap of the same influences; ``diagnostics["inference"]`` says which. An
    interval by cluster is never reported narrower than the unit bootstrap's
    (:func:`~training_roi.isolate.effect.never_narrower`). Units
    trained in the first period of the data or before have no period before training and are
    left out.

    Raises
    ------
    ValueError
        An unknown ``control`` or an invalid ``post_months``, ``confidence`` or ``replicates``.
    NotApplicable
        No cohort with a period before training, no control units, or no group-time effect that
        the data can estimate.
    """
    if control not in ("never_treated", "not_yet_treated"):
        raise ValueError(f"control must be 'never_treated' or 'not_yet_treated' (got {control!r})")
    _check(confidence, post_months=post_months)
    if replicates < 2:
        raise ValueError(f"replicates must be at least 2 (got {replicates})")
    grid = _Grid.of(panel)
    t_max = grid.num.shape[1]
    trained = (grid.cohort >= 1) & (grid.cohort < t_max)
    never = grid.cohort >= t_max
    early = int((grid.cohort < 1).sum())
    if not trained.any():
        raise NotApplicable(f"no unit was trained after the first {grid.noun} of the data: no cohort has a "
                            f"{grid.noun} before training to compare with")
    if control == "never_treated" and not never.any():
        raise NotApplicable("every unit was trained during the data: there are no never-trained units "
                            "(use control='not_yet_treated')")
    keep = trained | never
    num, den, cohort = grid.num[keep], grid.den[keep], grid.cohort[keep]
    cohorts = np.unique(cohort[np.isfinite(cohort) & (cohort < t_max)]).astype(np.int64)
    group = np.searchsorted(cohorts, np.where(cohort < t_max, cohort, np.inf))  # never-trained: len(cohorts)
    n_groups = cohorts.size + 1
    onehot = np.zeros((num.shape[0], n_groups))
    onehot[np.arange(num.shape[0]), group] = 1.0

    # Cells: (cohort index, period, base period, event time) and the groups in each cell's control.
    cells = [(i, int(g + e), int(g - 1), e) for i, g in enumerate(cohorts)
             for e in range(-post_months, post_months) if e != -1 and 0 <= g + e < t_max]
    gi = np.array([c[0] for c in cells], dtype=np.int64)
    tt = np.array([c[1] for c in cells], dtype=np.int64)
    bb = np.array([c[2] for c in cells], dtype=np.int64)
    ee = np.array([c[3] for c in cells], dtype=np.int64)
    members = np.zeros((len(cells), n_groups), dtype=bool)
    members[:, -1] = True
    if control == "not_yet_treated":
        later = cohorts[None, :] > np.maximum(tt, bb)[:, None]
        members[:, :-1] = later & (np.arange(cohorts.size)[None, :] != gi[:, None])

    def group_time(weights: FloatArray) -> tuple[FloatArray, FloatArray]:
        """ATT(g, t) of every cell and its cohort's size, one row per resample of units."""
        sums_num = np.stack([weights[:, group == h] @ num[group == h] for h in range(n_groups)])  # H × R × T
        sums_den = np.stack([weights[:, group == h] @ den[group == h] for h in range(n_groups)])
        treated_change = (_ratio(sums_num[gi, :, tt], sums_den[gi, :, tt])
                          - _ratio(sums_num[gi, :, bb], sums_den[gi, :, bb]))  # cells × R
        cn_t = np.zeros_like(treated_change)
        cd_t, cn_b, cd_b = np.zeros_like(cn_t), np.zeros_like(cn_t), np.zeros_like(cn_t)
        for h in range(n_groups):
            m = members[:, h][:, None]
            cn_t += m * sums_num[h][:, tt].T
            cd_t += m * sums_den[h][:, tt].T
            cn_b += m * sums_num[h][:, bb].T
            cd_b += m * sums_den[h][:, bb].T
        control_change = _ratio(cn_t, cd_t) - _ratio(cn_b, cd_b)
        sizes = weights @ onehot
        return (treated_change - control_change).T, sizes[:, gi]

    att, size = group_time(np.ones((1, num.shape[0])))
    valid = np.isfinite(att[0])
    post = valid & (ee >= 0) & (ee < post_months)
    if not post.any():
        raise NotApplicable(f"no cohort has both its own and its controls' outcomes in the {grid.noun} before "
                            f"training and a {grid.noun} after it")
    # The bootstrap over units: the interval without clusters, and the floor of the one by cluster.
    unit_att, unit_size = group_time(cluster_weights(num.shape[0], replicates=replicates, seed=seed))
    draws_att, draws_size = unit_att, unit_size
    codes = panel.cluster_codes(grid.units)
    clusters = None if codes is None else np.unique(codes[keep], return_inverse=True)[1]
    count = 0 if clusters is None else int(clusters.max()) + 1
    few = 0 < count < FEW_CLUSTERS
    if clusters is not None and not few:
        draws_att, draws_size = group_time(cluster_weights(count, replicates=replicates, seed=seed)[:, clusters])
    elif clusters is not None:
        # Few clusters: every figure's draws are the wild multiplier bootstrap of its linearization,
        # figure + Σ_g v_g·influence_g (linear in the weights, so a cohort's size never turns negative).
        plus, minus = _perturbed(group_time, clusters, count, num.shape[0])
        v = multiplier_weights(count, replicates, seed=seed) * np.sqrt(count / (count - 1))
        draws_att = att + v @ np.nan_to_num((plus[0] - minus[0]) / (2 * _STEP))

    def influence(columns: FloatArray) -> FloatArray:
        """Each cluster's influence on the cohort-size-weighted mean of the cells ``columns``."""
        return (_weighted_mean(plus[0][:, columns], plus[1][:, columns])
                - _weighted_mean(minus[0][:, columns], minus[1][:, columns])) / (2 * _STEP)

    def summary(columns: FloatArray) -> tuple[float, FloatArray]:
        point = float(_weighted_mean(att[:, columns], size[:, columns])[0])
        if few:
            return point, point + v @ np.nan_to_num(influence(columns))
        return point, _weighted_mean(draws_att[:, columns], draws_size[:, columns])

    alpha = (1 - confidence) / 2

    def interval(draws: FloatArray) -> dict[str, float]:
        d = draws[np.isfinite(draws)]
        if d.size < 2:
            return {"std_error": float("nan"), "ci_low": float("nan"), "ci_high": float("nan")}
        lo, hi = np.quantile(d, [alpha, 1 - alpha])
        return {"std_error": float(np.std(d, ddof=1)), "ci_low": float(lo), "ci_high": float(hi)}

    point, draws = summary(post)
    counts = onehot.sum(axis=0)
    dynamic = []
    for e in range(-post_months, post_months):
        if e == -1:
            dynamic.append({"relative_month": -1, "att": 0.0, "std_error": 0.0, "ci_low": 0.0, "ci_high": 0.0,
                            "cohorts": 0, "units": 0, "reference": True})
            continue
        cols = valid & (ee == e)
        if not cols.any():
            continue
        value, d = summary(cols)
        dynamic.append({"relative_month": e, "att": value, **interval(d), "cohorts": int(cols.sum()),
                        "units": int(counts[gi[cols]].sum()), "reference": False})
    table = [{"cohort": grid.labels[int(cohorts[gi[c]])], "period": grid.labels[int(tt[c])],
              "relative_month": int(ee[c]), "att": float(att[0, c]), **interval(draws_att[:, c]),
              "units": int(counts[gi[c]])}
             for c in np.flatnonzero(valid)]

    baseline = _baseline(grid, trained, post_months)
    n_trained = int(counts[:-1].sum())
    n_control = int(counts[-1]) if control == "never_treated" else int(counts.sum())
    noun = grid.noun
    warnings = list(panel.unobserved_warnings())
    if early:
        warnings.append(f"{early} trained units were trained in the first {noun} of the data or before: with no "
                        f"{noun} before training they are left out")
    if counts[-1] < 10 and control == "never_treated":
        warnings.append(f"only {int(counts[-1])} never-trained units to compare with: consider "
                        "control='not_yet_treated'")
    dropped = int((~valid).sum())
    if dropped:
        warnings.append(f"{dropped} cohort-{noun} effects could not be estimated (no control units with "
                        f"outcomes in that {noun})")
    inference: dict[str, Any] = {"inference": "cluster bootstrap over units (percentile interval)"}
    test = None
    if clusters is not None:
        inference = {"inference": f"cluster bootstrap over {count} clusters ({panel.cluster}; percentile interval)",
                     "clusters": count, "clustered_by": panel.cluster}
        if few:
            test = linearized_inference(point, influence(post), np.bincount(clusters), confidence=confidence,
                                        seed=seed)
            inference = {"inference": test.method, "inference_reason": test.reason, "clusters": count,
                         "clustered_by": panel.cluster, "draws": "wild multiplier bootstrap of the cluster influences"}
            warnings.append(test.reason)
    effect = effect_from_draws(
        "staggered DiD (Callaway & Sant'Anna)", point, draws, baseline=baseline, confidence=confidence,
        assumptions=(
            "parallel trends: without training, each cohort's outcome would have moved like its controls' "
            f"({'never-trained units' if control == 'never_treated' else 'units not trained yet'}) from the "
            f"{noun} before its training on",
            f"no anticipation: units did not change before the {noun} they were trained in",
            "no spill-over: training one unit does not change another unit's outcomes",
            f"the estimate averages each cohort's effect over the training {noun} and the {post_months - 1} "
            f"{noun}s after it, each cohort-{noun} weighted by the number of units in the cohort",
            f"a rate is pooled over the group's units each {noun} (Σ numerator / Σ denominator)"
            if panel.denominator else f"the outcome is the group's mean per unit-{noun}",
        ),
        details={"cohorts": float(cohorts.size), "trained_units": float(n_trained),
                 "control_units": float(n_control), "group_time_effects": float(valid.sum()),
                 "post_months": float(post_months)},
        diagnostics={"outcome": panel.outcome, "grain": panel.grain, "control": control,
                     "weighting": f"cohort-{noun} effects weighted by cohort size (number of units)",
                     "dynamic": dynamic, "group_time": table, **inference},
        warnings=warnings,
    )
    if clusters is None:
        return effect
    if test is not None:
        effect = replace(effect, ci_low=test.ci_low, ci_high=test.ci_high, p_value=test.p_value,
                         std_error=test.std_error, details={**effect.details, "cr1_p_value": test.cr1_p_value})
    low, high, p_unit, _, _ = summarise_draws(point, _weighted_mean(unit_att[:, post], unit_size[:, post]), confidence)
    return never_narrower(effect, (low, high), p_unit, panel.cluster or "cluster")


_STEP = 1e-4
"""The relative change of a cluster's weight in the numerical derivative of the estimate."""

_GroupTime = Callable[[FloatArray], tuple[FloatArray, FloatArray]]


def _perturbed(group_time: _GroupTime, clusters: NDArray[np.int64], count: int,
               units: int) -> tuple[tuple[FloatArray, FloatArray], tuple[FloatArray, FloatArray]]:
    """Every cell's effect and cohort size with each cluster's weight raised, then lowered, by :data:`_STEP`."""
    up = np.ones((count, units))
    up[clusters, np.arange(units)] += _STEP
    down = 2.0 - up
    return group_time(up), group_time(down)


@estimator("staggered", label="staggered cohorts (Callaway & Sant'Anna)", needs_comparison=True, refutable=True,
           position=30)
def _staggered(panel: UnitPanel, s: EstimatorSettings) -> Effect:
    return estimate_staggered(panel, post_months=s.post_months, confidence=s.confidence, replicates=s.replicates,
                              seed=s.seed)
