"""Matched comparisons: an untrained group that looked like the trained units before training.

Training is usually self-selected: the reps who take it were already better, busier or improving.
Comparing them with everyone untrained credits the program with those differences. A matched
comparison keeps (or weighs up) the untrained units that looked like the trained ones *before*
training, and compares the two groups' changes: a matched difference-in-differences, the average
effect on the trained (ATT).

Three ways to build the comparison, all on the same unit-level features (:func:`unit_features`):

* :func:`estimate_psm` — nearest neighbours on the logit of a propensity score, within a caliper;
* :func:`estimate_ipw` — every untrained unit, weighted by its odds of having been trained;
* :func:`estimate_cem` — coarsened exact matching: strata of binned pre-period level and volume.

Each reports a balance table (standardised mean difference of every feature before and after),
how many trained units had no comparable untrained unit (common support), and the effective
number of comparison units behind the weights; it warns when balance or support is poor.

Each unit's windows are counted in periods of the panel's grain (months by default) from an
anchor: the period that contains a trained unit's training, or for a never-trained unit a pseudo
period drawn (with a seed) from the trained units' anchors, so both groups' windows span the same
calendar periods and a market trend or a strong quarter touches both alike. As everywhere in the
family the anchor period is event time 0, the first period *after* training: the post window is
the anchor period and the ``post_months − 1`` periods after it, the baseline the ``pre_months``
periods before it (:class:`~training_roi.measure.panels.UnitPanel`).

Units are ordered by their data, never by their ids (:mod:`training_roi.isolate.anchors`): the
pseudo anchors, the propensity model's rows, ties between equally near matches and the
bootstrap's draws all follow that order, so renaming the units changes no estimate and no
interval. Unit-periods without an outcome are left out of every window.
"""

from __future__ import annotations

import warnings as pywarnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import polars as pl

from training_roi.isolate.anchors import anchor_periods, window_sums
from training_roi.isolate.effect import (
    Effect,
    EstimatorSettings,
    FloatArray,
    NotApplicable,
    cluster_weights,
    effect_from_draws,
    estimator,
)
from training_roi.measure.panels import UnitPanel

__all__ = ["FEATURES", "estimate_cem", "estimate_ipw", "estimate_psm", "unit_features"]

FEATURES = ("pre_level", "pre_volume", "pre_trend")
"""The pre-period features every unit gets, besides the panel's covariates (see :func:`unit_features`)."""

MIN_TRAINED = 2
"""Trained units with activity before and after training needed to estimate anything."""
MIN_COMPARISON = 5
"""Never-trained units with activity around their pseudo anchor needed to build a comparison."""

SMD_BAR = 0.1
"""The usual bar for balance: |standardised mean difference| below it."""
OFF_SUPPORT_BAR = 0.1
"""Share of trained units without comparable untrained units above which the estimate is flagged."""

RELIABILITY_BAR = 0.7
"""Split-half reliability of the pre-period level below which matching on it risks regression to the mean."""

SPARSE_BAR = 5.0
"""Median activity per unit in the matching window (deals, or active periods) below which matching is unreliable."""

_PENALTY_C = 1e4
"""Inverse ridge strength of the propensity model on standardised features: practically no penalty
(the scores are maximum-likelihood ones), yet a finite fit when the groups are perfectly separated."""
_CATEGORICAL_LEVELS = 10
"""A covariate with at most this many distinct values is taken as categorical by CEM."""


def _check_windows(pre_months: int, post_months: int) -> None:
    if pre_months < 2:
        raise ValueError(f"pre_months must be at least 2 (a level and a trend before training), not {pre_months}")
    if post_months < 1:
        raise ValueError(f"post_months must be at least 1, not {post_months}")


def _features(panel: UnitPanel, pre_months: int, post_months: int, seed: int, gap: int = 0) -> pl.DataFrame:
    """:func:`unit_features` with each unit's levels over the two halves of the matching window.

    ``gap``: how many periods before the baseline the matching window ends (0: it is the
    baseline). Matching on periods the change is not measured from keeps the noise that made a
    comparison unit look like a trained one out of that unit's change (no regression to the mean).
    """
    _check_windows(pre_months, post_months)
    anchors = anchor_periods(panel, seed)
    half = pre_months // 2
    sums = window_sums(panel, anchors, {
        "pre": (-pre_months - gap, -1 - gap), "late": (-half - gap, -1 - gap),
        "early": (-2 * half - gap, -half - 1 - gap), "base": (-pre_months, -1), "post": (0, post_months - 1),
    })

    def level(name: str) -> pl.Expr:
        return pl.when(pl.col(f"{name}_den") > 0).then(pl.col(f"{name}_num") / pl.col(f"{name}_den"))

    covariates = panel.units.select("unit", *panel.covariates)
    return (
        anchors.join(sums, on="unit", how="left", maintain_order="left")
        .join(covariates, on="unit", how="left", maintain_order="left")
        .select(
            "unit", "trained",
            panel.calendar.start_expr(pl.col("anchor")).alias("anchor"),
            level("pre").alias("pre_level"),
            pl.col("pre_act").alias("pre_volume"),
            (level("late") - level("early")).fill_null(0.0).alias("pre_trend"),
            *(pl.col(c).cast(pl.Float64) for c in panel.covariates),
            level("post").alias("post_level"),
            (level("post") - level("base")).alias("change"),
            level("early").alias("pre_early"),
            level("late").alias("pre_late"),
        )
    )


def unit_features(panel: UnitPanel, *, pre_months: int = 6, post_months: int = 6, seed: int = 7,
                  match_before_baseline: bool = False) -> pl.DataFrame:
    """One row per unit: its anchor period, pre-period features, post-period level and change.

    Periods are the panel's grain (months by default); ``pre_months`` and ``post_months`` count
    them. Columns:

    * ``unit``, ``trained`` (bool), ``anchor`` (first day of the anchor period — the period that
      contains the unit's training, or a pseudo period drawn with ``seed`` from the trained
      units' — or its number at the ``index`` grain);
    * ``pre_level``: the outcome pooled over the ``pre_months`` periods before the anchor period
      (Σ numerator / Σ denominator; the mean per period without a denominator);
    * ``pre_volume``: the activity behind it, Σ denominator over those periods (closed deals for
      win rate), or the number of periods with a non-zero outcome without a denominator;
    * ``pre_trend``: the outcome pooled over the last ``pre_months // 2`` pre-period periods minus
      the same number of periods before them (0 when either half has no activity): whether the
      unit was already improving;
    * the panel's covariates;
    * ``post_level``: the outcome pooled over the anchor period and the ``post_months − 1``
      periods after it (event times 0 to ``post_months − 1``: the training period counts as after);
    * ``change``: the post level minus the level over the ``pre_months`` before the anchor period
      (the baseline), what the difference-in-differences compares.

    With ``match_before_baseline`` the matching features (``pre_level``, ``pre_volume``,
    ``pre_trend``) come from the ``pre_months`` *before* the baseline instead of the baseline
    itself: a comparison unit picked because it looked like a trained one then is not picked
    for the luck in the periods its change is measured from (no regression to the mean).

    A window is cut to the panel's periods and leaves out unit-periods without an outcome; a
    level is null when its window has no activity (no denominator, or no periods inside the
    panel). Rows come trained units first, each group in the data order of
    :func:`training_roi.isolate.anchors.data_order` (not by id).

    Raises
    ------
    NotApplicable
        Nobody in the panel was trained (no anchor periods to give the untrained units).
    """
    return _features(panel, pre_months, post_months, seed,
                     pre_months if match_before_baseline else 0).drop("pre_early", "pre_late")


@dataclass(frozen=True)
class _Units:
    """The units an estimator can use: both groups with activity in both windows."""

    names: tuple[str, ...]
    trained: np.ndarray
    features: tuple[str, ...]
    x: FloatArray
    pre: FloatArray
    post: FloatArray
    change: FloatArray
    without_activity: dict[str, int]
    categorical: tuple[str, ...]
    reliability: float
    """Split-half reliability of the untrained units' pre-period level (nan when it cannot be measured)."""
    gap: int = 0
    """Periods between the matching window and the baseline (0: the baseline is the matching window)."""
    notes: tuple[str, ...] = ()
    """Warnings about the panel itself (unit-periods without an outcome)."""


def _units(panel: UnitPanel, pre_months: int, post_months: int, seed: int, gap: int = 0) -> _Units:
    f = _features(panel, pre_months, post_months, seed, gap)
    names = (*FEATURES, *panel.covariates)
    needed = ("pre_level", "post_level", "change", *names)  # change needs the baseline's level too
    usable = f.filter(pl.all_horizontal(pl.col(c).is_not_null() for c in needed))
    gone = f.join(usable.select("unit"), on="unit", how="anti")
    without = {"trained": int(gone["trained"].sum()), "comparison": int((~gone["trained"]).sum())}
    trained = usable["trained"].to_numpy().astype(bool)
    n_t, n_c = int(trained.sum()), int((~trained).sum())
    noun = panel.period_noun
    if n_c == 0 and without["comparison"] == 0:
        raise NotApplicable(f"every unit in the panel was trained: a matched comparison needs never-trained units "
                            f"(at least {MIN_COMPARISON} with activity around their pseudo training {noun})")
    if gap and usable.is_empty() and f["pre_level"].is_null().all():
        raise NotApplicable(
            f"matching before the baseline needs {pre_months + gap} {noun}s before training ({pre_months} to match "
            f"on, then the {pre_months}-{noun} baseline) and no unit has any {noun} that early: pass "
            "match_before_baseline=False to match on the baseline itself")
    if n_c == 0:
        raise NotApplicable(
            f"no never-trained unit has activity before and after its pseudo training {noun}: a matched comparison "
            f"needs at least {MIN_COMPARISON} ({without['comparison']} untrained units lack activity in the "
            f"{pre_months} {noun}s before or the {post_months} {noun}s from it)")
    if n_c < MIN_COMPARISON:
        raise NotApplicable(
            f"only {n_c} never-trained units have activity before and after their pseudo training {noun}: a matched "
            f"comparison needs at least {MIN_COMPARISON}")
    if n_t < MIN_TRAINED:
        raise NotApplicable(
            f"only {n_t} trained units have activity in the {pre_months} {noun}s before and the {post_months} "
            f"{noun}s from their training {noun}: a matched comparison needs at least {MIN_TRAINED}")
    categorical = tuple(c for c in panel.covariates if usable[c].n_unique() <= _CATEGORICAL_LEVELS)
    halves = usable.filter(~pl.col("trained")).select("pre_early", "pre_late").drop_nulls().to_numpy()
    reliability = float("nan")
    if halves.shape[0] >= 3 and (halves.std(axis=0) > 0).all():
        r = float(np.corrcoef(halves[:, 0], halves[:, 1])[0, 1])
        reliability = 2 * r / (1 + r) if r > -1 else float("nan")  # Spearman–Brown: both halves together
    return _Units(
        names=tuple(usable["unit"].to_list()), trained=trained, features=names,
        x=usable.select(names).to_numpy().astype(np.float64),
        pre=usable["pre_level"].to_numpy().astype(np.float64),
        post=usable["post_level"].to_numpy().astype(np.float64),
        change=usable["change"].to_numpy().astype(np.float64),
        without_activity=without, categorical=categorical, reliability=reliability, gap=gap,
        notes=panel.unobserved_warnings(),
    )


def _propensity(u: _Units) -> tuple[FloatArray, list[str]]:
    """Each unit's estimated probability of having been trained, from its standardised features."""
    # scikit-learn is imported here, not with the module: most reports never match (0.4 s saved).
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    z = StandardScaler().fit_transform(u.x)
    with pywarnings.catch_warnings(record=True) as caught:
        pywarnings.simplefilter("always", ConvergenceWarning)
        model = LogisticRegression(C=_PENALTY_C, max_iter=5000).fit(z, u.trained.astype(int))
    notes = []
    if any(issubclass(w.category, ConvergenceWarning) for w in caught):
        notes.append("the propensity model did not converge: the features may separate trained and untrained "
                     "units almost perfectly (no overlap)")
    return model.predict_proba(z)[:, 1].astype(np.float64), notes


def _smd(x: FloatArray, trained: np.ndarray, w_t: FloatArray, w_c: FloatArray, scale: FloatArray) -> FloatArray:
    xt, xc = x[trained], x[~trained]
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = (w_t @ xt) / w_t.sum() - (w_c @ xc) / w_c.sum()
        out = np.where(scale > 0, diff / np.where(scale > 0, scale, 1.0), 0.0)
    return np.asarray(out, dtype=np.float64)


def _balance(u: _Units, w_t: FloatArray, w_c: FloatArray) -> list[dict[str, Any]]:
    """Each feature's means and standardised mean difference, before and after matching or weighting.

    Both SMDs divide by the same spread, the unmatched groups' pooled standard deviation
    √((s²_trained + s²_comparison) / 2), so a smaller SMD after means closer means, not a different
    yardstick. A feature constant within both groups is scaled by its spread over all units.
    """
    t = u.trained
    xt, xc = u.x[t], u.x[~t]
    scale = np.sqrt((xt.var(axis=0, ddof=1) + xc.var(axis=0, ddof=1)) / 2)
    scale = np.where(scale > 0, scale, u.x.std(axis=0, ddof=1))
    ones_t, ones_c = np.ones(xt.shape[0]), np.ones(xc.shape[0])
    before = _smd(u.x, t, ones_t, ones_c, scale)
    after = _smd(u.x, t, w_t, w_c, scale)
    return [
        {"feature": name, "mean_trained": float(xt[:, i].mean()), "mean_comparison": float(xc[:, i].mean()),
         "smd_before": float(before[i]), "mean_trained_after": float(w_t @ xt[:, i] / w_t.sum()),
         "mean_comparison_after": float(w_c @ xc[:, i] / w_c.sum()), "smd_after": float(after[i])}
        for i, name in enumerate(u.features)
    ]


def _ess(w: FloatArray) -> float:
    """Kish's effective sample size of weights: how many equally weighted units they are worth."""
    s2 = float((w**2).sum())
    return float(w.sum() ** 2 / s2) if s2 > 0 else 0.0


_ASSUMPTIONS = (
    "conditional parallel trends: without training, trained units' outcome would have changed like that of "
    "untrained units with the same pre-period level, volume, trend and covariates",
    "nothing unmeasured that drives both taking the training and the change in outcome (motivation, a new "
    "territory) differs between the trained units and their comparison",
    "a unit's pre-period level is measured with noise: untrained units matched to high pre-period levels were "
    "partly lucky and tend to fall back (regression to the mean), which can bias a matched comparison upward "
    "when the trained units were selected on their level",
    "the untrained units' pseudo training periods stand for when they would have been trained",
    "the estimate is the effect on the trained units that have comparable untrained units (common support), "
    "not on those left out",
)


def _finish(
    method: str,
    u: _Units,
    *,
    point: float,
    draws: FloatArray,
    kept_t: np.ndarray,
    w_c: FloatArray,
    confidence: float,
    assumptions: Sequence[str],
    diagnostics: Mapping[str, Any],
    notes: Sequence[str],
) -> Effect:
    """The :class:`Effect` with the balance table, support counts, weights' size and warnings."""
    t = u.trained
    w_t = kept_t.astype(np.float64)
    balance = _balance(u, w_t, w_c)
    n_t = int(t.sum())
    n_kept = int(kept_t.sum())
    off = n_t - n_kept
    ct, cc = u.change[t], u.change[~t]
    warns = [*u.notes, *notes]
    worst = [row for row in balance if abs(row["smd_after"]) >= SMD_BAR]
    if worst:
        listed = ", ".join(f"{row['feature']} {row['smd_after']:+.2f}" for row in worst)
        warns.append(f"balance not reached: standardised mean difference after matching or weighting of {listed} "
                     f"(|SMD| < {SMD_BAR} is the usual bar)")
    if off > OFF_SUPPORT_BAR * n_t:
        warns.append(f"{off / n_t:.1%} of trained units ({off} of {n_t}) have no comparable untrained unit and are "
                     "left out: the estimate is for the others")
    level_gap = next(r["smd_before"] for r in balance if r["feature"] == "pre_level")
    if u.gap == 0 and u.reliability < RELIABILITY_BAR and abs(level_gap) >= SMD_BAR:
        warns.append(
            f"the pre-period level is noisy (split-half reliability {u.reliability:.2f} among untrained units): "
            "untrained units matched to the trained units' level were partly lucky or unlucky before and drift "
            "back afterwards (regression to the mean), which pushes the estimate "
            f"{'up' if level_gap > 0 else 'down'}, as the trained units started "
            f"{'higher' if level_gap > 0 else 'lower'}; compare with the unmatched difference-in-differences")
    volume = float(np.median(u.x[:, u.features.index("pre_volume")]))
    if volume < SPARSE_BAR:
        warns.append(f"few observations per unit (median {volume:,.1f} in the matching window): each unit's level is "
                     "mostly noise, so matches are poor and the interval, which holds the matches fixed, "
                     "understates the uncertainty; prefer difference-in-differences here")
    if u.without_activity["trained"]:
        k = u.without_activity["trained"]
        warns.append(f"{k} trained units have no activity before or after their training and are left out")
    diag = {
        "balance": balance,
        "max_abs_smd_before": float(max(abs(r["smd_before"]) for r in balance)),
        "max_abs_smd_after": float(max(abs(r["smd_after"]) for r in balance)),
        "trained": n_t,
        "trained_matched": n_kept,
        "trained_off_support": off,
        "share_trained_off_support": off / n_t,
        "comparison": int((~t).sum()),
        "comparison_used": int((w_c > 0).sum()),
        "effective_comparison_size": _ess(w_c),
        "pre_level_reliability": u.reliability if np.isfinite(u.reliability) else None,
        "units_without_activity": dict(u.without_activity),
        **diagnostics,
    }
    wc = w_c / w_c.sum()
    details = {
        "trained_pre_level": float(u.pre[t][kept_t].mean()),
        "trained_post_level": float(u.post[t][kept_t].mean()),
        "trained_change": float(ct[kept_t].mean()),
        "comparison_pre_level": float(wc @ u.pre[~t]),
        "comparison_post_level": float(wc @ u.post[~t]),
        "comparison_change": float(wc @ cc),
        "unmatched_did": float(ct.mean() - cc.mean()),
    }
    return effect_from_draws(method, point, draws, baseline=details["trained_pre_level"], confidence=confidence,
                             assumptions=(*assumptions, *_ASSUMPTIONS), details=details, diagnostics=diag,
                             warnings=warns)


def _check_common(confidence: float, replicates: int) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, not {confidence}")
    if replicates < 1:
        raise ValueError(f"replicates must be at least 1, not {replicates}")


def _on_support(score: FloatArray, trained: np.ndarray) -> np.ndarray:
    """Trained units whose score lies within the untrained units' range (the min/max rule)."""
    sc = score[~trained]
    st = score[trained]
    return np.asarray((st >= sc.min()) & (st <= sc.max()), dtype=bool)


def _nearest(lt: FloatArray, lc: FloatArray, ratio: int, caliper: float, replace: bool) -> list[list[int]]:
    """For each trained logit, the indices of its ``ratio`` nearest untrained logits within ``caliper``."""
    if replace:
        from sklearn.neighbors import NearestNeighbors

        k = min(ratio, lc.size)
        dist, idx = NearestNeighbors(n_neighbors=k).fit(lc[:, None]).kneighbors(lt[:, None])
        return [[int(j) for j, d in zip(row_i, row_d, strict=True) if d <= caliper]
                for row_i, row_d in zip(idx, dist, strict=True)]
    # Greedy without replacement: the hardest to match (highest score) choose first, one match per round.
    free = np.ones(lc.size, dtype=bool)
    out: list[list[int]] = [[] for _ in range(lt.size)]
    order = np.argsort(-lt, kind="stable")
    for _ in range(ratio):
        for i in order:
            if not free.any():
                break
            dist = np.where(free, np.abs(lc - lt[i]), np.inf)
            j = int(np.argmin(dist))
            if dist[j] <= caliper:
                out[i].append(j)
                free[j] = False
    return out


def estimate_psm(
    panel: UnitPanel,
    *,
    pre_months: int = 6,
    match_before_baseline: bool = True,
    post_months: int = 6,
    caliper: float | None = 0.2,
    ratio: int = 1,
    replace: bool = True,
    confidence: float = 0.95,
    replicates: int = 999,
    seed: int = 7,
) -> Effect:
    """Propensity-score matching, then the matched difference-in-differences (the ATT).

    A logistic model of training on the standardised features of :func:`unit_features` gives
    each unit a propensity score. Each trained unit whose score lies within the untrained units'
    range is matched to its ``ratio`` nearest untrained units on the logit of the score, no
    farther than ``caliper`` standard deviations of the logit (None: no caliper), with or
    without ``replace``-ment. The effect is the mean over matched trained units of their change
    (post − pre level) minus the mean change of their matches.

    The interval resamples the matched trained units with their matched sets (``seed``), with the
    propensity model and the matches held fixed.

    Raises
    ------
    NotApplicable
        Too few trained or never-trained units with activity around their (pseudo) training
        period, or no trained unit with a match.
    """
    _check_common(confidence, replicates)
    if caliper is not None and caliper <= 0:
        raise ValueError(f"caliper must be positive (standard deviations of the score's logit) or None, not {caliper}")
    if ratio < 1:
        raise ValueError(f"ratio must be at least 1 untrained match per trained unit, not {ratio}")
    u = _units(panel, pre_months, post_months, seed, pre_months if match_before_baseline else 0)
    score, notes = _propensity(u)
    t = u.trained
    with np.errstate(divide="ignore"):
        logit = np.log(score) - np.log1p(-score)
    width = float("inf") if caliper is None else caliper * float(np.std(logit, ddof=1))
    in_range = _on_support(score, t)
    idx_t = np.flatnonzero(in_range)
    matches = _nearest(logit[t][idx_t], logit[~t], ratio, width, replace) if idx_t.size else []
    kept_t = np.zeros(int(t.sum()), dtype=bool)
    w_c = np.zeros(int((~t).sum()))
    ct, cc = u.change[t], u.change[~t]
    diffs = []
    for i, js in zip(idx_t, matches, strict=True):
        if js:
            kept_t[i] = True
            w_c[js] += 1.0 / len(js)
            diffs.append(ct[i] - cc[js].mean())
    if not diffs:
        raise NotApplicable("no trained unit has an untrained unit with a similar propensity score within the "
                            "caliper: the groups do not overlap")
    d = np.asarray(diffs)
    w = cluster_weights(d.size, replicates=replicates, seed=seed)
    draws = (w @ d) / w.sum(axis=1)
    names_t = [n for n, k in zip(u.names, t, strict=True) if k]
    names_c = [n for n, k in zip(u.names, t, strict=True) if not k]
    pairs = {names_t[i]: [names_c[j] for j in js] for i, js in zip(idx_t, matches, strict=True) if js}
    return _finish(
        "propensity-score matching (matched difference-in-differences)", u, point=float(d.mean()), draws=draws,
        kept_t=kept_t, w_c=w_c, confidence=confidence,
        assumptions=(
            "the bootstrap resamples matched trained units with their matches but keeps the propensity model and "
            "the matches fixed: it leaves out the uncertainty of the scores, and with matching with replacement "
            "the interval can be somewhat too narrow",
        ),
        diagnostics={
            "caliper_logit": width if np.isfinite(width) else None,
            "trained_outside_score_range": int((~in_range).sum()),
            "trained_without_match_in_caliper": int(in_range.sum() - kept_t.sum()),
            "ratio": ratio, "replace": replace, "matches": pairs,
        },
        notes=notes,
    )


def estimate_ipw(
    panel: UnitPanel,
    *,
    pre_months: int = 6,
    match_before_baseline: bool = True,
    post_months: int = 6,
    trim: float = 0.05,
    confidence: float = 0.95,
    replicates: int = 999,
    seed: int = 7,
) -> Effect:
    """Inverse-probability weighting for the ATT, then the weighted difference-in-differences.

    The same propensity score as :func:`estimate_psm`. Every untrained unit is weighted by its
    odds of training p / (1 − p), normalised to sum to one, so the comparison group takes the
    trained group's mix of features; the effect is the trained units' mean change minus the
    weighted mean change of the untrained. Units whose score lies outside [``trim``, 1 −
    ``trim``] are left out (a score near 1 means nobody like the unit stayed untrained, and
    would give its untrained look-alikes huge weights), and so are trained units whose score lies
    outside the untrained units' range.

    The interval resamples trained and untrained units (``seed``) with the scores held fixed.

    Raises
    ------
    NotApplicable
        Too few trained or never-trained units with activity around their (pseudo) training
        period, or none left after trimming.
    """
    _check_common(confidence, replicates)
    if not 0 <= trim < 0.5:
        raise ValueError(f"trim must be in [0, 0.5): scores outside [trim, 1 − trim] are left out, not {trim}")
    u = _units(panel, pre_months, post_months, seed, pre_months if match_before_baseline else 0)
    score, notes = _propensity(u)
    t = u.trained
    inside = (score >= trim) & (score <= 1 - trim)
    keep_c = inside[~t]
    if not keep_c.any():
        raise NotApplicable(f"every untrained unit's propensity score is outside [{trim}, {1 - trim}]")
    sc = score[~t]
    kept_t = inside[t] & (score[t] >= sc[keep_c].min()) & (score[t] <= sc[keep_c].max())
    if not kept_t.any():
        raise NotApplicable("no trained unit's propensity score lies within the untrained units' range after "
                            "trimming: the groups do not overlap")
    w_c = np.where(keep_c, sc / (1 - sc), 0.0)
    ct, cc = u.change[t], u.change[~t]
    point = float(ct[kept_t].mean() - (w_c @ cc) / w_c.sum())
    wt = cluster_weights(int(kept_t.sum()), replicates=replicates, seed=seed)
    wc = cluster_weights(int(keep_c.sum()), replicates=replicates, seed=seed + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        draws = (wt @ ct[kept_t]) / wt.sum(axis=1) - (wc @ (w_c[keep_c] * cc[keep_c])) / (wc @ w_c[keep_c])
    return _finish(
        "inverse-probability weighting (weighted difference-in-differences)", u, point=point, draws=draws,
        kept_t=kept_t, w_c=w_c, confidence=confidence,
        assumptions=(
            "the bootstrap resamples trained and untrained units but keeps the propensity model fixed: it leaves "
            "out the uncertainty of the scores",
        ),
        diagnostics={
            "trim": trim,
            "trained_trimmed": int((~inside[t]).sum()),
            "comparison_trimmed": int((~keep_c).sum()),
            "max_weight_share": float(w_c.max() / w_c.sum()),
        },
        notes=notes,
    )


def _bin_codes(x: FloatArray, bins: int) -> np.ndarray:
    """Quantile bins of ``x`` (pooled over both groups); tied edges merge bins."""
    edges = np.unique(np.quantile(x, np.linspace(0, 1, bins + 1)[1:-1]))
    return np.searchsorted(edges, x, side="left")


def estimate_cem(
    panel: UnitPanel,
    *,
    bins: int | Mapping[str, int] = 5,
    exact: Sequence[str] | None = None,
    pre_months: int = 6,
    match_before_baseline: bool = True,
    post_months: int = 6,
    confidence: float = 0.95,
    replicates: int = 999,
    seed: int = 7,
) -> Effect:
    """Coarsened exact matching, then the matched difference-in-differences (the ATT).

    Units are put in strata by their pre-period level and volume, each cut into ``bins`` quantile
    bins (over both groups), and by the ``exact`` covariates (None: every covariate with at most
    10 distinct values, taken as categorical). ``bins`` may map feature names of
    :func:`unit_features` (``pre_level``, ``pre_volume``, ``pre_trend``, covariates) to their
    number of bins instead. Strata without both groups are dropped (and counted); in the others,
    untrained units are weighted so each stratum counts as much as its trained units (the CEM
    weights), and the effect is the trained units' mean change minus the weighted untrained one.

    The interval resamples trained and untrained units (``seed``) with the strata fixed; a stratum
    that loses one of its groups in a resample is dropped from it, as CEM would drop it.

    Raises
    ------
    NotApplicable
        Too few trained or never-trained units with activity around their (pseudo) training
        period, or no stratum with both groups.
    """
    _check_common(confidence, replicates)
    u = _units(panel, pre_months, post_months, seed, pre_months if match_before_baseline else 0)
    spec = {"pre_level": bins, "pre_volume": bins} if isinstance(bins, int) else dict(bins)
    for name, b in spec.items():
        if name not in u.features:
            raise ValueError(f"bins for {name!r}: expected one of {', '.join(u.features)}")
        if b < 1:
            raise ValueError(f"bins for {name!r} must be at least 1, not {b}")
    exact_names = u.categorical if exact is None else tuple(exact)
    for name in exact_names:
        if name not in panel.covariates:
            raise ValueError(f"exact matching on {name!r}: expected one of the panel's covariates "
                             f"({', '.join(panel.covariates) or 'none'})")
    cols = [_bin_codes(u.x[:, u.features.index(n)], b) for n, b in spec.items()]
    cols += [u.x[:, u.features.index(n)] for n in exact_names]
    if not cols:
        raise ValueError("coarsened exact matching needs at least one feature to match on")
    _, stratum = np.unique(np.column_stack(cols), axis=0, return_inverse=True)
    stratum = stratum.ravel()
    n_strata = int(stratum.max()) + 1
    t = u.trained
    st, sc = stratum[t], stratum[~t]
    nt_s = np.bincount(st, minlength=n_strata).astype(np.float64)
    nc_s = np.bincount(sc, minlength=n_strata).astype(np.float64)
    both = (nt_s > 0) & (nc_s > 0)
    if not both.any():
        raise NotApplicable("no stratum of binned pre-period level and volume holds both trained and untrained "
                            "units: use fewer bins")
    kept_t = both[st]
    keep_c = both[sc]
    with np.errstate(invalid="ignore", divide="ignore"):
        w_c = np.where(keep_c, nt_s[sc] / nc_s[sc], 0.0)
    ct, cc = u.change[t], u.change[~t]
    point = float(ct[kept_t].mean() - (w_c @ cc) / w_c.sum())
    # Resampled per-stratum counts and sums of changes: replicates × strata, one matrix product each.
    ind_t = np.zeros((st.size, n_strata))
    ind_t[np.arange(st.size), st] = 1.0
    ind_c = np.zeros((sc.size, n_strata))
    ind_c[np.arange(sc.size), sc] = 1.0
    wt = cluster_weights(st.size, replicates=replicates, seed=seed)
    wc = cluster_weights(sc.size, replicates=replicates, seed=seed + 1)
    rt, rc = wt @ ind_t, wc @ ind_c
    sum_t, sum_c = wt @ (ind_t * ct[:, None]), wc @ (ind_c * cc[:, None])
    ok = (rt > 0) & (rc > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        gap = np.where(ok, sum_t / np.where(ok, rt, 1) - sum_c / np.where(ok, rc, 1), 0.0)
        draws = (np.where(ok, rt, 0) * gap).sum(axis=1) / np.where(ok, rt, 0).sum(axis=1)
    return _finish(
        "coarsened exact matching (matched difference-in-differences)", u, point=point, draws=draws,
        kept_t=kept_t, w_c=w_c, confidence=confidence,
        assumptions=(
            "within a stratum (same bin of pre-period level and volume, same categorical covariates) trained and "
            "untrained units are alike; what varies inside a bin is ignored",
        ),
        diagnostics={
            "bins": {k: int(v) for k, v in spec.items()},
            "exact": list(exact_names),
            "strata": n_strata,
            "strata_matched": int(both.sum()),
            "comparison_dropped": int((~keep_c).sum()),
        },
        notes=[],
    )


def _short_panel_fallback(estimate: Callable[..., Effect], panel: UnitPanel, s: EstimatorSettings) -> Effect:
    """Run a matched comparison from the registry, matching on the baseline itself when the panel starts too late.

    Matching before the baseline keeps the noise that made a comparison unit look like a trained
    one out of its change; with too few periods before training (a yearly panel with two, say)
    the baseline is the only window there is, and the result says so.
    """
    pre = max(2, s.post_months)
    kwargs = {"pre_months": pre, "post_months": s.post_months, "confidence": s.confidence,
              "replicates": s.replicates, "seed": s.seed}
    try:
        return estimate(panel, **kwargs)
    except NotApplicable as exc:
        if "match_before_baseline=False" not in str(exc):
            raise
    effect = estimate(panel, match_before_baseline=False, **kwargs)
    note = (f"matched on the baseline itself: the panel has too few {panel.period_noun}s before training to match "
            "on earlier ones, so noise that made a comparison unit look like a trained one stays in its change "
            "(regression to the mean)")
    return replace(effect, warnings=(*effect.warnings, note))


@estimator("psm", label="matched comparison (propensity score)", needs_comparison=True, refutable=True, position=40)
def _psm(panel: UnitPanel, s: EstimatorSettings) -> Effect:
    return _short_panel_fallback(estimate_psm, panel, s)


@estimator("ipw", label="weighted comparison (inverse probability)", needs_comparison=True, refutable=True,
           position=50)
def _ipw(panel: UnitPanel, s: EstimatorSettings) -> Effect:
    return _short_panel_fallback(estimate_ipw, panel, s)


@estimator("cem", label="matched comparison (coarsened exact)", needs_comparison=True, refutable=True, position=60)
def _cem(panel: UnitPanel, s: EstimatorSettings) -> Effect:
    return _short_panel_fallback(estimate_cem, panel, s)
