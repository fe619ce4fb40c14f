"""Staggered training with covariates: group-time effects by doubly robust DiD (Callaway & Sant'Anna 2021).

:mod:`training_roi.isolate.staggered` compares each cohort with its controls as they are. When
something that differs between cohorts and controls also drives the trend (tenure, territory),
that comparison is biased. Callaway & Sant'Anna's conditional version estimates each group-time
effect ATT(g, t) by Sant'Anna & Zhao's doubly robust difference-in-differences
(:func:`training_roi.isolate.drdid.dr_did`) between cohort g's units and the control units, on the
outcome's change from period g − 1 (the last before training) to t and the panel's covariates:
right when either the propensity model or the model of the controls' change is right.

The group-time effects of the periods from training on are averaged with the cohorts' sizes as
weights, as the unconditional estimator does. Each unit's influence on that average is its
influence on every cell it enters (a cohort unit in its own cells, a control unit in many), each
scaled from the cell's sample to the whole panel, plus its influence on the cohort-size weights;
summing per unit clusters by unit. The standard error is that influence's; the interval is the
percentile interval of a multiplier bootstrap of it. Before training, the same estimator on each
period's change from the one before (Callaway & Sant'Anna's varying base period) gives placebo
effects that should be near zero; they are reported beside the estimate, never averaged into it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import polars as pl
from numpy.typing import NDArray

from training_roi.isolate.drdid import (
    MIN_COMPARISON,
    MIN_TRAINED,
    TRIM,
    DiDFit,
    Multipliers,
    Propensity,
    _cluster_sums,
    _std_error,
    dr_did,
    multiplier_draws,
)
from training_roi.isolate.effect import (
    Effect,
    EstimatorSettings,
    FloatArray,
    NotApplicable,
    effect_from_draws,
    effect_from_normal,
    estimator,
    never_narrower,
)
from training_roi.isolate.event_study import _baseline, _check, _Grid
from training_roi.isolate.wild import linearized_inference, multiplier_weights
from training_roi.measure.panels import UnitPanel

__all__ = ["estimate_staggered_dr"]

METHOD = "staggered DiD, doubly robust (Callaway & Sant'Anna)"


@dataclass(frozen=True)
class _Cell:
    """One estimated group-time effect: its cohort, period and event time, the fit and the units it used."""

    cohort: int
    period: int
    event: int
    fit: DiDFit
    rows: NDArray[np.int64]
    """The panel units (rows of the grid) in the cell, trained first as the fit saw them."""
    trained: int


def _unit_covariates(panel: UnitPanel, units: tuple[str, ...]) -> FloatArray:
    """The covariates of ``units`` (rows in that order; nan where a unit has none)."""
    names = list(panel.covariates)
    table = panel.units.select(pl.col("unit").cast(pl.String), *(pl.col(c).cast(pl.Float64) for c in names))
    order = pl.DataFrame({"unit": list(units)}, schema={"unit": pl.String})
    joined = order.join(table.unique("unit", keep="first"), on="unit", how="left", maintain_order="left")
    return joined.select(names).fill_null(float("nan")).to_numpy().astype(np.float64).reshape(len(units), len(names))


def estimate_staggered_dr(
    panel: UnitPanel,
    *,
    control: Literal["never_treated", "not_yet_treated"] = "never_treated",
    post_months: int = 6,
    propensity: Propensity = "tilting",
    trim: float | None = TRIM,
    confidence: float = 0.95,
    replicates: int = 999,
    multipliers: Multipliers = "rademacher",
    seed: int = 7,
) -> Effect:
    """The average effect over the first periods after training, from doubly robust group-time effects.

    For each cohort g (the units trained in period g of the panel's grain) and each period t
    from g to g + ``post_months`` − 1 that the data holds, ATT(g, t) is :func:`dr_did` between
    the cohort's units and the control units — never-trained units, or with ``control=
    "not_yet_treated"`` those plus units trained after t (and after g − 1), not in cohort g — on
    the change of each unit's outcome from period g − 1 to t, with the panel's covariates. A
    unit enters a cell when its outcome is observed in both periods and its covariates are
    known; a rate weighs each unit by its denominator over the two periods (1 without a
    denominator). ``propensity`` ``"tilting"`` is Sant'Anna & Zhao's improved estimator,
    ``"logit"`` their traditional one; ``trim`` as :func:`dr_did`.

    A cell with fewer than two cohort units, or fewer control units than five (and than the
    covariates plus three), or whose covariates cannot be fitted, is skipped, with a warning
    saying how many. The estimate averages the remaining ATT(g, t), each weighted by the number
    of units in its cohort (Callaway & Sant'Anna's "simple" aggregation over those event times).

    Uncertainty: every unit's influence on the estimate, summed over the cells it enters (so
    clustered by unit) and including the cohort-size weights' own sampling error. The standard
    error is its analytic one; the interval is the percentile interval of a multiplier bootstrap
    of it (``replicates`` draws of ``multipliers`` weights, ``seed``), or with ``replicates=0``
    the normal interval of the analytic standard error. ``diagnostics["group_time"]`` holds every
    ATT(g, t) with its analytic standard error and overlap figures, and the placebo effects of the
    ``post_months`` periods before training (``placebo``: the change from t − 1 to t, Callaway &
    Sant'Anna's varying base period; near zero when conditional parallel trends hold before
    training); ``diagnostics["dynamic"]`` their cohort-size weighted mean at each event time
    (``relative_month``) with its standard error. The worst cell's overlap is in ``diagnostics``
    and the warnings.

    Raises
    ------
    ValueError
        An unknown ``control`` or an invalid ``post_months``, ``confidence`` or ``replicates``.
    NotApplicable
        No covariates, no cohort with a period before training, no control units, or no
        group-time effect that the data can estimate.
    """
    if control not in ("never_treated", "not_yet_treated"):
        raise ValueError(f"control must be 'never_treated' or 'not_yet_treated' (got {control!r})")
    _check(confidence, post_months=post_months)
    if replicates < 0:
        raise ValueError(f"replicates must be 0 (analytic interval) or more, not {replicates}")
    if not panel.covariates:
        raise NotApplicable("no covariates: use the staggered estimator without them")
    grid = _Grid.of(panel)
    noun = grid.noun
    t_max = grid.num.shape[1]
    x_all = _unit_covariates(panel, grid.units)
    known = np.isfinite(x_all).all(axis=1)
    trained = (grid.cohort >= 1) & (grid.cohort < t_max)
    never = grid.cohort >= t_max
    if not (trained & known).any():
        raise NotApplicable(f"no unit with covariates was trained after the first {grid.noun} of the data: no "
                            f"cohort has a {noun} before training to compare with")
    if control == "never_treated" and not (never & known).any():
        raise NotApplicable("every unit was trained during the data: there are no never-trained units "
                            "(use control='not_yet_treated')")
    keep = (trained | never) & known
    n = int(keep.sum())
    num, den, cohort, x = grid.num[keep], grid.den[keep], grid.cohort[keep], x_all[keep]
    cohorts = np.unique(cohort[cohort < t_max]).astype(np.int64)
    names = tuple(panel.covariates)
    k = len(names)
    need_c = max(MIN_COMPARISON, k + 3)

    def fit_cell(g: int, t: int, b: int) -> _Cell | str:
        """Cohort ``g``'s effect in period ``t`` against its controls, from base period ``b``; why not, if not."""
        observed = (den[:, b] > 0) & (den[:, t] > 0)
        is_t = (cohort == g) & observed
        if control == "never_treated":
            is_c = (cohort >= t_max) & observed
        else:
            is_c = (cohort > max(t, b)) & (cohort != g) & observed
        if is_t.sum() < MIN_TRAINED or is_c.sum() < need_c:
            return f"{int(is_t.sum())} trained, {int(is_c.sum())} controls"
        rows = np.concatenate([np.flatnonzero(is_t), np.flatnonzero(is_c)])
        w = den[rows, b] + den[rows, t] if panel.denominator is not None else None
        try:
            fit = dr_did(num[rows, b] / den[rows, b], num[rows, t] / den[rows, t], np.arange(rows.size) < is_t.sum(),
                         x[rows], weights=w, names=names, propensity=propensity, trim=trim)
        except ValueError as exc:
            return str(exc)
        return _Cell(g, t, t - g, fit, rows, int(is_t.sum()))

    # The effects from training on (base g − 1), and the placebo effects before it: from t − 1 to t, for t < g
    # (Callaway & Sant'Anna's "varying" base period), which should be near zero.
    cells: list[_Cell] = []
    placebo: list[_Cell] = []
    skipped: list[str] = []
    for g in (int(c) for c in cohorts):
        for t in range(max(1, g - post_months), min(g + post_months, t_max)):
            cell = fit_cell(g, t, g - 1 if t >= g else t - 1)
            if isinstance(cell, str):
                if t >= g:
                    skipped.append(cell)
            else:
                (cells if t >= g else placebo).append(cell)
    if not cells:
        raise NotApplicable(f"no cohort-{noun} cell has enough units with outcomes in the {noun} before training and "
                            f"a {noun} after it (at least {MIN_TRAINED} trained and {need_c} controls with "
                            f"covariates)" + (f"; {len(skipped)} cells skipped" if skipped else ""))

    # The stacked influence: one row per unit (of the n kept), one column per cell, scaled to the whole panel.
    every = cells + placebo
    att = np.array([c.fit.estimate for c in every])
    psi = np.zeros((n, len(every)))
    for j, c in enumerate(every):
        psi[c.rows, j] = c.fit.influence * n / c.rows.size
    members = (cohort[:, None] == np.array([c.cohort for c in every])[None, :]).astype(np.float64)  # n × cells

    def aggregate(columns: NDArray[np.bool_]) -> tuple[float, FloatArray]:
        """The cohort-size weighted mean of the cells ``columns`` and each unit's influence on it."""
        m, a = members[:, columns], att[columns]
        p = m.mean(axis=0)
        # The weights' own influence (Callaway & Sant'Anna's wif): d(p_j / Σp) from each unit's cohort indicators.
        wif = (m - p) / p.sum() - np.outer((m - p).sum(axis=1), p) / p.sum() ** 2
        return float(p @ a / p.sum()), psi[:, columns] @ (p / p.sum()) + wif @ a

    events = np.array([c.event for c in every])
    point, influence = aggregate(events >= 0)
    se = _std_error(influence)
    dynamic = []
    for e in np.unique(events):
        value, inf_e = aggregate(events == e)
        dynamic.append({"relative_month": int(e), "att": value, "std_error": _std_error(inf_e),
                        "cohorts": int((events == e).sum()), "placebo": bool(e < 0)})

    counts = {int(g): int((cohort == g).sum()) for g in cohorts}
    table: list[dict[str, Any]] = []
    for j, c in enumerate(every):
        diag = c.fit.diagnostics
        table.append({"cohort": grid.labels[c.cohort], "period": grid.labels[c.period], "relative_month": c.event,
                      "placebo": c.event < 0,
                      "att": c.fit.estimate, "std_error": _std_error(psi[:, j]),
                      "units": counts[c.cohort], "trained": c.trained, "controls": int(c.rows.size - c.trained),
                      "share_trained_off_support": float(diag.get("share_trained_off_support", 0.0)),
                      "effective_comparison_size": float(diag.get("effective_comparison_size", float("nan")))})
    worst = max(range(len(cells)), key=lambda j: (table[j]["share_trained_off_support"],
                                                   -table[j]["effective_comparison_size"]))
    worst_diag: dict[str, Any] = cells[worst].fit.diagnostics
    warned = [j for j, c in enumerate(cells) if c.fit.warnings]  # the placebo cells' overlap is not the estimate's

    baseline = _baseline(grid, trained & known, post_months)

    warnings = list(panel.unobserved_warnings())
    early = int(((grid.cohort < 1) & known).sum())
    if early:
        warnings.append(f"{early} trained units were trained in the first {noun} of the data or before: with no "
                        f"{noun} before training they are left out")
    missing = int((~known & (trained | never)).sum())
    if missing:
        warnings.append(f"{missing} units have no covariates and are left out")
    if skipped:
        warnings.append(f"{len(skipped)} of {len(skipped) + len(cells)} cohort-{noun} effects were skipped: too few "
                        f"units with outcomes in both {noun}s (at least {MIN_TRAINED} trained and {need_c} controls) "
                        "or covariates that cannot be fitted")
    if warned:
        w = table[worst]
        warnings.append(f"overlap: {len(warned)} of {len(cells)} cohort-{noun} fits warn; the worst (cohort "
                        f"{w['cohort']}, {noun} {w['period']}) has {w['share_trained_off_support']:.1%} of its trained "
                        f"units off the controls' support and its controls count as "
                        f"{w['effective_comparison_size']:.1f} units: {cells[worst].fit.warnings[0]}"
                        if cells[worst].fit.warnings else
                        f"overlap: {len(warned)} of {len(cells)} cohort-{noun} fits warn, e.g. "
                        f"{cells[warned[0]].fit.warnings[0]}")

    assumptions = (
        "conditional parallel trends: without training, each cohort's outcome would have moved like its controls' "
        f"({'never-trained units' if control == 'never_treated' else 'units not trained yet'}) with the same "
        f"covariates, from the {noun} before its training on",
        "overlap: each cohort's units have control look-alikes; where they have none, the comparison is "
        "extrapolated by the outcome model",
        "doubly robust: each group-time effect is right if either its propensity model or its model of the "
        "controls' change (linear in the covariates) is right",
        f"no anticipation: units did not change before the {noun} they were trained in",
        "the covariates are not changed by training (attributes, or measured before it)",
        f"the estimate averages each cohort's effect over the training {noun} and the {post_months - 1} {noun}s "
        "after it, each cohort-period weighted by the number of units in the cohort",
        f"each unit counts in proportion to the outcome's denominator over the two {noun}s"
        if panel.denominator else "each unit counts once",
    )
    details = {"cohorts": float(len({c.cohort for c in cells})), "trained_units": float(sum(counts.values())),
               "control_units": float((cohort >= t_max).sum()) if control == "never_treated" else float(n),
               "group_time_effects": float(len(cells)), "skipped_group_time_effects": float(len(skipped)),
               "placebo_group_time_effects": float(len(placebo)),
               "post_months": float(post_months), "analytic_std_error": se}
    diagnostics = {
        "outcome": panel.outcome, "grain": panel.grain, "control": control,
        "weighting": f"cohort-{noun} effects weighted by cohort size (number of units)",
        "group_time_estimator": cells[0].fit.method, "dynamic": dynamic, "group_time": table,
        "share_trained_off_support": table[worst]["share_trained_off_support"],
        "effective_comparison_size": min(r["effective_comparison_size"] for r in table[:len(cells)]),
        "worst_cell": {"cohort": table[worst]["cohort"], "period": table[worst]["period"],
                       "balance": worst_diag.get("balance", [])},
        "uncertainty": (f"analytic standard error of the units' stacked influence functions; interval: multiplier "
                        f"bootstrap of them ({replicates} draws, {multipliers} weights, by unit)"
                        if replicates > 0 else
                        "analytic standard error of the units' stacked influence functions, normal interval"),
    }
    codes = panel.cluster_codes(grid.units)
    if codes is not None:
        return _by_cluster(point, influence, np.unique(codes[keep], return_inverse=True)[1], panel.cluster or "",
                           baseline=baseline, confidence=confidence, replicates=replicates, seed=seed,
                           assumptions=assumptions, details=details, diagnostics=diagnostics, warnings=warnings)
    if replicates > 0:
        draws = point + multiplier_draws(influence, replicates=replicates, seed=seed, multipliers=multipliers)
        effect = effect_from_draws(METHOD, point, draws, baseline=baseline, confidence=confidence,
                                   assumptions=assumptions, details=details, diagnostics=diagnostics,
                                   warnings=warnings)
        return replace(effect, std_error=se)
    return effect_from_normal(METHOD, point, se, baseline=baseline, confidence=confidence, assumptions=assumptions,
                              details=details, diagnostics=diagnostics, warnings=warnings)


def _by_cluster(point: float, influence: FloatArray, clusters: NDArray[np.int64], column: str, *, baseline: float,
                confidence: float, replicates: int, seed: int, assumptions: tuple[str, ...], details: dict[str, float],
                diagnostics: dict[str, Any], warnings: list[str]) -> Effect:
    """The estimate's inference with the units' influences summed by cluster (the panel's ``cluster`` column).

    Fewer than 30 clusters: the wild cluster restricted bootstrap of the linearized estimate
    (:func:`~training_roi.isolate.wild.linearized_inference`); otherwise the CR1 t-interval on
    G − 1 degrees of freedom. The draws are the wild multiplier bootstrap of the cluster sums.
    """
    by = _cluster_sums(influence, clusters) / influence.size  # each cluster's influence on the estimate
    count = by.size
    if count < 2:
        raise NotApplicable(f"the units are in one {column}: clustered inference needs at least two clusters")
    test = linearized_inference(point, by, np.bincount(clusters), confidence=confidence, seed=seed)
    draws = point + np.sqrt(count / (count - 1)) * multiplier_weights(count, max(replicates, 999), seed=seed) @ by
    diagnostics = {**diagnostics, "inference": test.method, "inference_reason": test.reason, "clusters": count,
                   "clustered_by": column,
                   "uncertainty": f"the units' stacked influence functions summed by {column} ({count} clusters); "
                                  f"{test.method}; draws: wild multiplier bootstrap of the cluster sums"}
    effect = effect_from_draws(METHOD, point, draws, baseline=baseline, confidence=confidence, assumptions=assumptions,
                               details={**details, "cr1_p_value": test.cr1_p_value}, diagnostics=diagnostics,
                               warnings=[*warnings, test.reason] if test.bootstrap else warnings)
    effect = replace(effect, ci_low=test.ci_low, ci_high=test.ci_high, p_value=test.p_value, std_error=test.std_error)
    by_unit = effect_from_normal(METHOD, point, _std_error(influence), baseline=baseline, confidence=confidence)
    return never_narrower(effect, (by_unit.ci_low, by_unit.ci_high), by_unit.p_value, column)


@estimator("staggered_dr", label="staggered cohorts, doubly robust (Callaway & Sant'Anna)", needs_comparison=True,
           refutable=True, position=31)
def _staggered_dr(panel: UnitPanel, s: EstimatorSettings) -> Effect:
    return estimate_staggered_dr(panel, post_months=s.post_months, confidence=s.confidence,
                                 replicates=s.replicates, seed=s.seed)
