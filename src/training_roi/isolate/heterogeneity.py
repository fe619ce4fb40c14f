"""For whom the program works: its effect by subgroup, on the trained and on the not yet trained.

The average effect hides who carries it. A program that lifts the win rate of new reps and does
nothing for veterans, or works in one region only, calls for a different roll-out than its
average says. This module estimates, for every level of every grouping variable (a region, a
manager, a band of tenure, a third of the units' earlier record, …):

* the effect on the **trained** units of the subgroup (ATT): what training did for them;
* the effect on the **untrained** units of the subgroup (ATU): what training would do for those
  not yet trained, the figure a "where to roll out next" decision needs.

**The learner.** A doubly robust learner on each unit's change in outcome (after − before its
training, or its reference month when untrained: the window panel of the difference-in-differences
family), with cross-fitting (Chernozhukov et al. 2018; Kennedy 2023, "Towards optimal doubly robust
estimation of heterogeneous causal effects"). Three nuisance models, each from scikit-learn, are
fitted on all folds but one and predict the one left out: the propensity e(X) (a logistic
regression), the untrained units' change μ₀(X) and the trained units' change μ₁(X) (ridge
regressions, or gradient-boosted trees with ``learner="boosting"``). X holds the panel's
covariates and the indicators of one grouping variable: each variable gets models of its own, so a
grouping of many small levels (a manager each) does not crowd the models another is read from.
Not the pre-period outcome: the change is
measured from it, and where units chose training by their level (skilled reps enrol more), a
model of the change given that level mistakes their lasting skill for luck about to revert and
biases the effect (in a simulated world of self-selection, 0.067 against a true 0.028). Within a
subgroup g the two effects are the normalised doubly robust contrasts of Sant'Anna & Zhao (2020),
the ATT's as in :func:`~training_roi.isolate.drdid.dr_did`:

    ATT_g = mean_w[ΔY − μ₀ | trained, g] − mean_{w·e/(1−e)}[ΔY − μ₀ | untrained, g]
    ATU_g = mean_{w·(1−e)/e}[ΔY − μ₁ | trained, g] − mean_w[ΔY − μ₁ | untrained, g]

Each is right when either its outcome model or the propensity is, and cross-fitting keeps an
over-fitted model from leaking into the estimate. With the saturated model (the subgroup's
indicators alone) both reduce to the plain difference-in-differences within the subgroup.

**Honest intervals.** Each estimate's influence function gives its standard error (summed by
cluster when the panel has one). Many subgroups mean many chances for one to look striking by
luck, so every row carries two intervals: its own (pointwise) and a *simultaneous* one, from the
maximum over all subgroups of a Gaussian multiplier bootstrap of the influence functions (the
"sup-t" band), which covers every subgroup's effect at once with the stated confidence. P-values
are adjusted for the false-discovery rate across subgroups (Benjamini–Hochberg, SciPy), and each
grouping variable gets a Wald test of whether the effect differs between its levels at all.

Why not a causal forest (EconML's ``CausalForestDML``)? Its per-unit effects are what it is for;
the decisions here are about named groups, where the doubly robust subgroup means are the
efficient estimates with exact, cheap intervals, and EconML would bring SHAP, Numba and LightGBM
to every install for the same figures.

What it assumes, said in every result: conditional parallel trends (units with the same X would
have changed alike without training), overlap, no anticipation, and — for the effect on the
untrained — that the untrained respond as trained units with the same X did: selection into
training on *expected gains* beyond X (the keenest enrol first) makes the ATU an optimistic
figure, and the result says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import polars as pl
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from training_roi.errors import NotApplicable
from training_roi.isolate.anchors import anchor_periods, window_sums
from training_roi.isolate.drdid import _unit_windows
from training_roi.isolate.effect import FloatArray
from training_roi.isolate.matching import _ess
from training_roi.measure.panels import UnitPanel

__all__ = ["BASELINE", "MIN_UNITS", "SubgroupEffects", "estimate_subgroups", "subgroup_effects", "thirds"]

Learner = Literal["linear", "boosting"]

MIN_UNITS = 10
"""Trained and untrained units a subgroup needs (each) before its effects are estimated."""
BASELINE = "baseline"
"""The grouping :func:`estimate_subgroups` adds: thirds of the units' earlier record (before the pre-period)."""
_CLIP = 0.01
"""Propensities are kept within [0.01, 0.99] so no unit's odds stand for a hundred others."""
_RIDGE = 1.0
"""The ridge penalty of the linear outcome models, on standardised features."""
_THIRDS = ("bottom third", "middle third", "top third")
_NO_RECORD = "no earlier record"
_MISSING = "(missing)"

_ASSUMPTIONS = (
    "conditional parallel trends: without training, units with the same covariates and in the same subgroup "
    "would have changed alike",
    "overlap: each subgroup has trained and untrained units with similar covariates",
    "no anticipation: units did not change before the month they were trained (that month counts as after)",
    "the effect on the untrained assumes they would respond as trained units with the same covariates did; if "
    "the units most likely to gain enrolled first, it is optimistic",
    "each unit counts in proportion to the outcome's denominator over both windows",
)


@dataclass(frozen=True)
class SubgroupEffects:
    """The program's effect by subgroup, with pointwise and simultaneous intervals and the tests behind them.

    ``table`` has one row per subgroup (``variable``, ``level``) and, for the trained (``att_*``)
    and the untrained (``atu_*``): the number of units, the estimate, its standard error, the
    pointwise and simultaneous interval bounds, the p-value and its false-discovery-adjusted
    q-value. An estimate is null where the subgroup has fewer than :data:`MIN_UNITS` trained or
    untrained units. ``overall`` holds the same figures for every unit together; ``differ`` the
    Wald test, per grouping variable, that the effect on the trained is the same at every level.
    """

    outcome: str
    method: str
    table: pl.DataFrame
    overall: dict[str, float]
    differ: dict[str, dict[str, float]]
    confidence: float
    replicates: int
    critical_values: dict[str, float]
    """The simultaneous band's multiple of the standard error: for the trained (``att``), the untrained (``atu``)."""
    assumptions: tuple[str, ...] = ()
    diagnostics: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    labels: pl.DataFrame | None = field(default=None, repr=False)
    """On a panel: each unit estimated (``unit``, ``trained``) and its level of every grouping variable."""

    def summary(self) -> str:
        """A few lines per subgroup: the effect on the trained and untrained with their simultaneous intervals."""
        level = f"{self.confidence:.0%}"
        lines = [f"{self.method}: {self.outcome}, {level} intervals simultaneous over every subgroup",
                 f"  all units    trained {_fmt(self.overall, 'att')}   untrained {_fmt(self.overall, 'atu')}"]
        for row in self.table.iter_rows(named=True):
            lines.append(f"  {row['variable']} = {row['level']}: trained {_fmt(row, 'att')}   "
                         f"untrained {_fmt(row, 'atu')}")
        for variable, test in self.differ.items():
            lines.append(f"  the effect differs by {variable}: p = {test['p_value']:.3g} (Wald, {int(test['df'])} df)")
        lines += [f"  warning  {w}" for w in self.warnings]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def _fmt(row: Mapping[str, Any], kind: str) -> str:
    value = row.get(f"{kind}_estimate")
    if value is None or value != value:
        return "not estimated"
    low, high = row.get(f"{kind}_sim_low"), row.get(f"{kind}_sim_high")
    if low is None:
        low, high = row[f"{kind}_low"], row[f"{kind}_high"]
    return f"{value:+.4g} [{low:+.4g}, {high:+.4g}]"


# Nuisance models ------------------------------------------------------------------------------------------------------


def _folds(treated: NDArray[np.bool_], folds: int, seed: int) -> list[tuple[NDArray[np.int64], NDArray[np.int64]]]:
    """Train/test index pairs, stratified on training so every fold holds both groups (one pair of all with 1 fold)."""
    n = treated.size
    if folds == 1:
        every = np.arange(n)
        return [(every, every)]
    from sklearn.model_selection import StratifiedKFold

    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return [(a.astype(np.int64), b.astype(np.int64)) for a, b in splitter.split(np.zeros(n), treated)]


def _regressor(learner: Learner, ridge: float, seed: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import LinearRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if learner == "boosting":
        return HistGradientBoostingRegressor(max_iter=200, learning_rate=0.05, min_samples_leaf=40, random_state=seed)
    return make_pipeline(StandardScaler(), Ridge(alpha=ridge) if ridge > 0 else LinearRegression())


def _classifier(learner: Learner, seed: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if learner == "boosting":
        return HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, min_samples_leaf=40,
                                              random_state=seed)
    return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))


def _fit(model: Any, x: FloatArray, y: ArrayLike, w: FloatArray) -> Any:
    """Fit a model or a pipeline whose last step takes the sample weights."""
    if hasattr(model, "steps"):
        return model.fit(x, y, **{f"{model.steps[-1][0]}__sample_weight": w})
    return model.fit(x, y, sample_weight=w)


def _cross_fit(x: FloatArray, dy: FloatArray, d: NDArray[np.bool_], w: FloatArray, *, learner: Learner,
               folds: int, ridge: float, seed: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Out-of-fold predictions of e(X), μ₀(X) and μ₁(X) for every unit."""
    e = np.empty(d.size)
    mu0 = np.empty(d.size)
    mu1 = np.empty(d.size)
    for train, test in _folds(d, folds, seed):
        dt, xt, wt = d[train], x[train], w[train]
        if dt.all() or not dt.any():
            raise NotApplicable("a fold of the cross-fitting holds only trained or only untrained units: too few "
                                "of one group to fit the models")
        e[test] = _fit(_classifier(learner, seed), xt, dt.astype(np.int64), wt).predict_proba(x[test])[:, 1]
        mu0[test] = _fit(_regressor(learner, ridge, seed), xt[~dt], dy[train][~dt], wt[~dt]).predict(x[test])
        mu1[test] = _fit(_regressor(learner, ridge, seed), xt[dt], dy[train][dt], wt[dt]).predict(x[test])
    return np.clip(e, _CLIP, 1 - _CLIP), mu0, mu1


# The doubly robust contrasts ------------------------------------------------------------------------------------------


def _contrast(r: FloatArray, a: FloatArray, b: FloatArray) -> tuple[float, FloatArray]:
    """mean_a(r) − mean_b(r) (weights ``a`` and ``b``) and its influence function (estimate − truth ≈ Σ IF)."""
    sa, sb = a.sum(), b.sum()
    eta_a, eta_b = a @ r / sa, b @ r / sb
    return float(eta_a - eta_b), a * (r - eta_a) / sa - b * (r - eta_b) / sb


def subgroup_effects(y0: ArrayLike, y1: ArrayLike, treated: ArrayLike, groups: Mapping[str, Sequence[str | None]], *,
                     covariates: ArrayLike | None = None, covariate_names: Sequence[str] = (),
                     weights: ArrayLike | None = None, cluster: ArrayLike | None = None, learner: Learner = "linear",
                     folds: int = 5, ridge: float = _RIDGE, confidence: float = 0.95, replicates: int = 2000,
                     seed: int = 7, min_units: int = MIN_UNITS, outcome: str = "outcome") -> SubgroupEffects:
    """The effects on the trained and the untrained of every subgroup, from each unit's two periods.

    ``y0`` and ``y1`` are each unit's outcome before and after (its training, or its reference
    period), ``treated`` whether it was trained, ``groups`` one label per unit for each grouping
    variable (a missing label is a level of its own). ``covariates`` (one row per unit) join the
    groups' indicators in the nuisance models; ``weights`` (the
    outcome's denominator, say) weigh units in the models and the means; ``cluster`` labels units
    whose errors are correlated (a team): the standard errors and the bootstrap then draw clusters.
    ``folds`` = 1 fits the models on every unit (no cross-fitting): with ``ridge=0`` and no
    covariates the models are then saturated in the subgroups, for checks against a hand-worked
    figure. The simultaneous band comes from
    ``replicates`` Gaussian multiplier draws (``seed``).

    Raises
    ------
    ValueError
        Inputs of different lengths, a bad ``confidence``, ``folds``, ``replicates`` or ``learner``.
    NotApplicable
        Too few trained or untrained units to fit the models.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, not {confidence}")
    if folds < 1 or replicates < 1 or min_units < 2:
        raise ValueError(f"folds and replicates must be at least 1 and min_units 2, not {folds}, {replicates} and "
                         f"{min_units}")
    if learner not in ("linear", "boosting"):
        raise ValueError(f"learner must be 'linear' or 'boosting', not {learner!r}")
    before = np.asarray(y0, dtype=np.float64).ravel()
    after = np.asarray(y1, dtype=np.float64).ravel()
    d = np.asarray(treated, dtype=bool).ravel()
    n = d.size
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    labels = {v: np.array([_MISSING if g is None or g != g else str(g) for g in values], dtype=object)
              for v, values in groups.items()}
    lengths = {before.size, after.size, w.size, *(a.size for a in labels.values())}
    cov = np.empty((n, 0)) if covariates is None else np.asarray(covariates, dtype=np.float64).reshape(n, -1)
    if lengths != {n} or cov.shape[0] != n:
        raise ValueError("y0, y1, treated, weights, covariates and every grouping need one value per unit")
    dy = after - before
    n_t, n_c = int(d.sum()), int((~d).sum())
    if min(n_t, n_c) < max(min_units, 2 * folds):
        raise NotApplicable(f"{n_t} trained and {n_c} untrained units: at least {max(min_units, 2 * folds)} of each "
                            "are needed to fit the models")
    wt, wc = w * d, w * ~d

    def nuisances(values: NDArray[Any] | None, levels: Sequence[str] = ()) -> tuple[FloatArray, FloatArray,
                                                                                    FloatArray]:
        """e, r0 = ΔY − μ₀ and r1 = ΔY − μ₁ from models of the covariates and indicators of ``levels``."""
        indicators = [] if values is None else [(values == level).astype(np.float64) for level in levels]
        parts = [*cov.T, *indicators]
        x = np.column_stack(parts) if parts else np.zeros((n, 1))
        e, mu0, mu1 = _cross_fit(x, dy, d, w, learner=learner, folds=folds, ridge=ridge, seed=seed)
        return e, dy - mu0, dy - mu1

    rows: list[dict[str, Any]] = []
    influence: dict[str, list[FloatArray]] = {"att": [], "atu": []}
    where: dict[str, list[int]] = {"att": [], "atu": []}

    def contrasts(mask: NDArray[np.bool_], e: FloatArray, r0: FloatArray,
                  r1: FloatArray) -> dict[str, tuple[float, FloatArray, float]]:
        """ATT and ATU in ``mask``: each its estimate, influence function and comparison's effective size."""
        odds = e / (1 - e)
        att, att_inf = _contrast(r0, wt * mask, wc * odds * mask)
        atu, atu_inf = _contrast(r1, wt * mask / odds, wc * mask)
        return {"att": (att, att_inf, _ess(wc * odds * mask)), "atu": (atu, atu_inf, _ess(wt * mask / odds))}

    e, r0, r1 = nuisances(None)
    overall = contrasts(np.ones(n, dtype=bool), e, r0, r1)  # every unit: enough of both, as checked above
    clipped = int(((e <= _CLIP) | (e >= 1 - _CLIP)).sum())
    for variable, values in labels.items():
        names, code = np.unique(values.astype(str), return_inverse=True)
        code = code.ravel()
        trained_n = np.bincount(code[d], minlength=names.size)
        untrained_n = np.bincount(code[~d], minlength=names.size)
        estimable = [str(v) for v, t, u in zip(names, trained_n, untrained_n, strict=True)
                     if t >= min_units and u >= min_units]
        # Indicators for the levels estimated (a grouping of many small levels, a manager each, stays a few
        # columns): the others are the reference together, or, when every level is estimated, the first one.
        e, r0, r1 = nuisances(values, estimable[1:] if len(estimable) == names.size else estimable)
        chosen = set(estimable)
        for k, level in enumerate(names.tolist()):
            row: dict[str, Any] = {"variable": variable, "level": level, "trained_units": int(trained_n[k]),
                                   "untrained_units": int(untrained_n[k])}
            found = contrasts(code == k, e, r0, r1) if level in chosen else {}
            for kind in ("att", "atu"):
                est, inf, ess = found.get(kind, (None, None, None))
                row[f"{kind}_estimate"], row[f"{kind}_ess"] = est, ess
                if inf is not None:
                    where[kind].append(len(rows))
                    influence[kind].append(inf)
            rows.append(row)

    codes = None if cluster is None else np.unique(np.asarray(cluster).ravel(), return_inverse=True)[1].ravel()

    def by_cluster(inf: FloatArray) -> FloatArray:
        """Influence summed within clusters (rows: clusters), scaled so that Σ squares is the variance."""
        if codes is None:
            g = inf.shape[0]
            scaled: FloatArray = inf * np.sqrt(g / max(g - 1, 1))
            return scaled
        sums = np.zeros((int(codes.max()) + 1, *inf.shape[1:]))
        np.add.at(sums, codes, inf)
        g = sums.shape[0]
        out: FloatArray = sums * np.sqrt(g / max(g - 1, 1))
        return out

    z = float(stats.norm.ppf(0.5 + confidence / 2))
    rng = np.random.default_rng(seed)
    critical: dict[str, float] = {}
    cov_of: dict[str, FloatArray] = {}
    for kind in ("att", "atu"):
        if not influence[kind]:
            critical[kind] = float("nan")
            continue
        psi = by_cluster(np.column_stack(influence[kind]))
        se = np.sqrt((psi * psi).sum(axis=0))
        cov_of[kind] = psi.T @ psi
        crit = _sup_t(psi, se, replicates, confidence, rng)
        critical[kind] = crit
        p = 2 * stats.norm.sf(np.abs(np.array([rows[i][f"{kind}_estimate"] for i in where[kind]]) / se))
        q = stats.false_discovery_control(np.nan_to_num(p, nan=1.0), method="bh")
        for j, i in enumerate(where[kind]):
            est = rows[i][f"{kind}_estimate"]
            rows[i] |= {f"{kind}_std_error": float(se[j]), f"{kind}_low": est - z * se[j],
                        f"{kind}_high": est + z * se[j], f"{kind}_sim_low": est - crit * se[j],
                        f"{kind}_sim_high": est + crit * se[j], f"{kind}_p_value": float(p[j]),
                        f"{kind}_q_value": float(q[j])}

    differ = _equality_tests(rows, where["att"], cov_of.get("att"))
    summary_all: dict[str, float] = {"trained_units": float(n_t), "untrained_units": float(n_c)}
    for kind in ("att", "atu"):
        est, inf, _ = overall[kind]
        se = float(np.sqrt((by_cluster(inf) ** 2).sum()))
        summary_all |= {f"{kind}_estimate": est, f"{kind}_std_error": se, f"{kind}_low": est - z * se,
                        f"{kind}_high": est + z * se}
    warns = _warnings(rows, clipped, n, min_units)
    table = pl.DataFrame(rows, schema=_SCHEMA)
    method = ("doubly robust learner (cross-fitted " + ("ridge and logistic regressions" if learner == "linear"
                                                        else "gradient-boosted trees") + ")")
    return SubgroupEffects(
        outcome=outcome, method=method, table=table, overall=summary_all, differ=differ, confidence=confidence,
        replicates=replicates, critical_values=critical, assumptions=_ASSUMPTIONS,
        diagnostics={"folds": folds, "learner": learner, "seed": seed, "features": list(covariate_names),
                     "models": "per grouping variable: the covariates and that variable's indicators (for every unit "
                               "together: the covariates alone)",
                     "propensity_clipped": clipped,
                     "clusters": None if codes is None else int(codes.max()) + 1},
        warnings=tuple(warns),
    )


_SCHEMA: dict[str, Any] = {
    "variable": pl.String, "level": pl.String, "trained_units": pl.Int64, "untrained_units": pl.Int64,
    **{f"{k}_{c}": pl.Float64 for k in ("att", "atu")
       for c in ("estimate", "std_error", "low", "high", "sim_low", "sim_high", "p_value", "q_value", "ess")},
}


def _sup_t(psi: FloatArray, se: FloatArray, replicates: int, confidence: float, rng: np.random.Generator) -> float:
    """The quantile of max_g |Σ_c ξ_c ψ_cg| / se_g over Gaussian multipliers ξ: the simultaneous band's multiplier."""
    ok = se > 0
    if not ok.any():
        return float("nan")
    scaled = psi[:, ok] / se[ok]
    top = np.empty(replicates)
    chunk = max(1, 4_000_000 // max(scaled.shape[0], 1))
    for start in range(0, replicates, chunk):
        size = min(chunk, replicates - start)
        xi = rng.standard_normal((size, scaled.shape[0]))
        top[start:start + size] = np.abs(xi @ scaled).max(axis=1)
    return float(np.quantile(top, confidence))


def _equality_tests(rows: list[dict[str, Any]], where: list[int],
                    cov: FloatArray | None) -> dict[str, dict[str, float]]:
    """Per grouping variable with two or more estimated levels: Wald χ² that the effect on the trained is equal."""
    out: dict[str, dict[str, float]] = {}
    if cov is None:
        return out
    variables = dict.fromkeys(rows[i]["variable"] for i in where)
    for variable in variables:
        idx = [j for j, i in enumerate(where) if rows[i]["variable"] == variable]
        if len(idx) < 2:
            continue
        theta = np.array([rows[where[j]]["att_estimate"] for j in idx])
        contrast = np.column_stack([-np.ones(len(idx) - 1), np.eye(len(idx) - 1)])
        diff = contrast @ theta
        v = contrast @ cov[np.ix_(idx, idx)] @ contrast.T
        stat = float(diff @ np.linalg.pinv(v) @ diff)
        df = len(idx) - 1
        out[variable] = {"statistic": stat, "df": float(df), "p_value": float(stats.chi2.sf(stat, df))}
    return out


def _warnings(rows: list[dict[str, Any]], clipped: int, n: int, min_units: int) -> list[str]:
    warns = []
    few = [f"{r['variable']} = {r['level']}" for r in rows if r["att_estimate"] is None]
    if few:
        warns.append(f"{len(few)} subgroups have fewer than {min_units} trained or untrained units and are not "
                     f"estimated: {', '.join(few[:8])}{', …' if len(few) > 8 else ''}")
    thin = [f"{r['variable']} = {r['level']}" for r in rows
            if r["att_ess"] is not None and (r["att_ess"] < min_units or r["atu_ess"] < min_units)]
    if thin:
        warns.append(f"in {len(thin)} subgroups the weighted comparison is worth fewer than {min_units} units (poor "
                     f"overlap; the estimate leans on the outcome model): {', '.join(thin[:8])}"
                     f"{', …' if len(thin) > 8 else ''}")
    if clipped > 0.05 * n:
        warns.append(f"{clipped:,} of {n:,} units have a propensity beyond [{_CLIP}, {1 - _CLIP}] (clipped): "
                     "training is nearly decided by their covariates, so overlap is poor")
    return warns


# On a unit panel ------------------------------------------------------------------------------------------------------


def estimate_subgroups(panel: UnitPanel, groups: pl.DataFrame | None = None, *, pre_months: int = 6,
                       post_months: int = 6, baseline_thirds: bool = True, learner: Learner = "linear",
                       folds: int = 5, confidence: float = 0.95, replicates: int = 2000, seed: int = 7,
                       min_units: int = MIN_UNITS) -> SubgroupEffects:
    """The effect by subgroup on a unit panel: each unit's outcome before and after its (reference) month.

    The windows are those of :func:`~training_roi.isolate.drdid.estimate_drdid`: ``pre_months``
    before the training month and ``post_months`` from it; an untrained unit's reference month is
    drawn (``seed``) from the trained units' months. ``groups`` has a ``unit`` column and one column
    per grouping variable (text); a unit missing from it has the level ``(missing)``. With
    ``baseline_thirds`` the units are also grouped by thirds of their earlier record
    (:data:`BASELINE`: bottom, middle, top; the cut points in the diagnostics): their outcome over
    the ``pre_months`` months *before* the pre-period, so that a unit's third does not depend on
    the luck of the months its change is measured from (grouping by those would sort lucky units
    into the top third, and their fall back into the effect). Units without activity then are a
    level of their own, ``no earlier record``. The panel's covariates enter the models; its
    cluster column, if any, clusters the errors.

    Raises
    ------
    ValueError
        Invalid windows, or a ``groups`` frame without ``unit``.
    NotApplicable
        Nobody trained, no untrained units, or too few of either with activity in both windows.
    """
    if pre_months < 1 or post_months < 1:
        raise ValueError(f"pre_months and post_months must be at least 1, not {pre_months} and {post_months}")
    if groups is not None and "unit" not in groups.columns:
        raise ValueError("groups needs a 'unit' column beside its grouping variables")
    f = _unit_windows(panel, pre_months, post_months, seed)
    needed = ("before", "after", *panel.covariates)
    usable = f.filter(pl.all_horizontal(pl.col(c).is_not_null() for c in needed) & (pl.col("weight") > 0))
    if usable.is_empty() or usable["trained"].all() or not usable["trained"].any():
        raise NotApplicable(f"the subgroup effects need trained and untrained units with {panel.outcome} in the "
                            f"{pre_months} {panel.period_noun}s before and the {post_months} from their (reference) "
                            f"{panel.period_noun}")
    labels: dict[str, list[str | None]] = {}
    if groups is not None:
        g = usable.select("unit").join(groups.with_columns(pl.col("unit").cast(pl.String)), on="unit", how="left",
                                       maintain_order="left")
        labels = {c: g[c].cast(pl.String).fill_null(_MISSING).to_list() for c in groups.columns if c != "unit"}
    cuts: list[float] = []
    if baseline_thirds:
        earlier = (window_sums(panel, anchor_periods(panel, seed), {"early": (-2 * pre_months, -pre_months - 1)})
                   .select("unit", level=pl.when(pl.col("early_act") > 0)
                           .then(pl.col("early_num") / pl.col("early_den"))))
        level = usable.select("unit").join(earlier, on="unit", how="left", maintain_order="left")["level"].to_list()
        third, cuts = thirds(level)
        labels[BASELINE] = list(third)
    cluster = panel.cluster_codes(usable["unit"].to_list())  # None: every unit its own cluster
    names = tuple(panel.covariates)
    result = subgroup_effects(
        usable["before"].to_numpy(), usable["after"].to_numpy(), usable["trained"].to_numpy(), labels,
        covariates=usable.select(names).to_numpy() if names else None, covariate_names=names,
        weights=usable["weight"].to_numpy(), cluster=cluster, learner=learner, folds=folds, confidence=confidence,
        replicates=replicates, seed=seed, min_units=min_units, outcome=panel.outcome)
    left_out = f.height - usable.height
    warns = list(panel.unobserved_warnings())
    if left_out:
        warns.append(f"{left_out:,} units have no {panel.outcome} before or after their (reference) "
                     f"{panel.period_noun} and are left out")
    diagnostics = result.diagnostics | {"pre_months": pre_months, "post_months": post_months,
                                        "baseline_cut_points": cuts, "units_left_out": left_out}
    labelled = usable.select("unit", "trained").with_columns(
        *(pl.Series(v, values, dtype=pl.String) for v, values in labels.items()))
    return replace(result, diagnostics=diagnostics, warnings=(*result.warnings, *warns), labels=labelled)


def thirds(levels: Sequence[float | None]) -> tuple[list[str], list[float]]:
    """Each level's third among the known ones (``bottom third`` …), ``no earlier record`` where unknown; the cuts.

    Fewer than three known levels cannot be cut: every unit is then ``no earlier record``.
    """
    known = np.array([v for v in levels if v is not None and v == v], dtype=np.float64)
    if known.size < 3:
        return [_NO_RECORD] * len(levels), []
    cuts = [float(c) for c in np.quantile(known, [1 / 3, 2 / 3])]
    return [_NO_RECORD if v is None or v != v else _THIRDS[int(np.searchsorted(cuts, v, side="right"))]
            for v in levels], cuts

