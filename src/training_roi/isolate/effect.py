"""What every estimator of the isolation stage shares: its result, how it says "not here", and the registry.

Each estimator is a function over a :class:`~training_roi.measure.panels.UnitPanel` that returns
an :class:`Effect` (estimate, standard error, interval, p-value, probability of a positive effect,
the trained group's baseline, the assumptions in words, diagnostics and warnings) or raises
:class:`NotApplicable` with the reason when the data cannot support it (no comparison units, no
pre-period, no surveys). That is what lets a report run every applicable method side by side.

The registry (:data:`ESTIMATORS`) names each estimator once — its name, its label, whether it
needs a comparison group, whether its estimate can be challenged by placebo tests, and how to run
it from the common :class:`EstimatorSettings`. Everything that lists methods (the study's
``isolation.method`` choices, the command line's ``--method``, the comparison table, the starter
study's comments) reads it, so adding an estimator is its module plus one :func:`estimator`
registration.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray
from scipy import stats

from training_roi.errors import NotApplicable
from training_roi.measure.panels import UnitPanel

__all__ = [
    "ESTIMATORS",
    "Effect",
    "Estimator",
    "EstimatorSettings",
    "NotApplicable",
    "cluster_weights",
    "effect_from_draws",
    "effect_from_normal",
    "estimator",
    "html_table",
    "never_narrower",
    "registered",
    "resampling_weights",
    "summarise_draws",
    "weighted",
]

FloatArray = NDArray[np.float64]


def _or_dash(value: float, spec: str) -> str:
    """``value`` formatted, or "—" when it is not a number (an opinion has no p-value)."""
    return format(value, spec) if value == value else "—"


@dataclass(frozen=True)
class Effect:
    """An estimated effect with its uncertainty, the method behind it and its caveats."""

    method: str
    estimate: float
    ci_low: float
    ci_high: float
    p_value: float
    std_error: float
    confidence: float
    replicates: int
    prob_positive: float
    baseline: float
    biased: bool = False
    assumptions: tuple[str, ...] = ()
    details: dict[str, float] = field(default_factory=dict)
    draws: FloatArray | None = field(default=None, repr=False, compare=False)
    diagnostics: dict[str, Any] = field(default_factory=dict, compare=False)
    """What a reviewer checks besides the estimate: event-study coefficients, balance, fit, …"""
    warnings: tuple[str, ...] = ()
    """Reasons to doubt this estimate (a failed pre-trend test, poor overlap, few units, …)."""

    @property
    def relative(self) -> float:
        """The effect relative to the baseline rate (0.25 = a quarter higher)."""
        return self.estimate / self.baseline if self.baseline else float("nan")

    @property
    def interval_includes_zero(self) -> bool:
        """Whether the interval is compatible with no effect at all."""
        return self.ci_low <= 0 <= self.ci_high

    def summary(self) -> str:
        """The estimate in a few lines a reader understands: value, interval, p-value, caveats.

        The diagnostics (balance tables, matched pairs, coefficients, series) are not printed: they
        are in :attr:`diagnostics`, and a notebook shows :meth:`_repr_html_`'s short table.
        """
        level = f"{self.confidence:.0%}"
        lines = [
            f"{self.method}{' (biased: a reference, not an estimate of the effect)' if self.biased else ''}",
            f"  estimate     {self.estimate:+.4g}  [{level}: {self.ci_low:+.4g} to {self.ci_high:+.4g}]",
            f"  p-value      {_or_dash(self.p_value, '.3g')}    P(effect > 0) {_or_dash(self.prob_positive, '.1%')}",
            f"  baseline     {self.baseline:.4g}    relative change {self.relative:+.1%}",
            "  uncertainty  " + (f"{self.replicates:,} bootstrap replicates" if self.replicates
                                  else f"analytic standard error {self.std_error:.4g}"
                                  if self.std_error == self.std_error else "bounds, not a sampling interval"),
        ]
        lines += [f"  assumes      {a}" for a in self.assumptions]
        lines += [f"  warning      {w}" for w in self.warnings]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return (f"Effect(method={self.method!r}, estimate={self.estimate:.6g}, ci=({self.ci_low:.6g}, "
                f"{self.ci_high:.6g}), p_value={self.p_value:.3g}{', biased=True' if self.biased else ''}, "
                f"warnings={len(self.warnings)})")

    def _repr_html_(self) -> str:
        rows = [*((("reference", "biased: not an estimate of the effect"),) if self.biased else ()),
                ("estimate", f"{self.estimate:+.4g}"),
                (f"{self.confidence:.0%} interval", f"{self.ci_low:+.4g} to {self.ci_high:+.4g}"),
                ("p-value", _or_dash(self.p_value, ".3g")), ("P(effect > 0)", _or_dash(self.prob_positive, ".1%")),
                ("baseline", f"{self.baseline:.4g}"), *(("warning", w) for w in self.warnings)]
        return html_table(self.method, rows)

    def asdict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (without the bootstrap draws)."""
        d = asdict(self)
        d.pop("draws")
        d["relative"] = self.relative
        return d


def html_table(title: str, rows: Iterable[tuple[str, str]]) -> str:
    """A small two-column HTML table (a notebook's rendering of a result)."""
    body = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
                   for k, v in rows)
    return f"<table><caption>{html.escape(title)}</caption>{body}</table>"


def resampling_weights(rng: np.random.Generator, n_units: int, replicates: int,
                       dtype: type[np.number] = np.float64) -> NDArray[Any]:
    """Bootstrap weights: how many times each unit is drawn, one row per replicate.

    Each replicate draws ``n_units`` unit indices with replacement; one ``bincount`` over a block
    of replicates at once (offset by replicate) turns the draws into counts, with no Python loop
    over units. The blocks keep the draws' temporary arrays small (at 12,000 units and 2,000
    replicates, a few MB at a time instead of three copies of 190 MB); the generator yields the same
    numbers in blocks as in one call, so the weights are the same.

    ``dtype``: how the counts are stored. An unsigned 8-bit integer holds them in an eighth of
    the memory of floats (at 100,000 units, 200 MB instead of 1.6 GB); a count too large for it
    (a unit drawn more than 255 times in one replicate: next to impossible beyond a few units)
    widens the array, so no count is ever cut. Multiply integer weights with :func:`weighted`.
    """
    if n_units == 0:
        return np.zeros((replicates, 0), dtype=dtype)
    out: NDArray[Any] = np.empty((replicates, n_units), dtype=dtype)
    block = max(1, _BLOCK // n_units)
    for first in range(0, replicates, block):
        rows = min(block, replicates - first)
        draws = rng.integers(0, n_units, size=(rows, n_units), dtype=np.int64)
        draws += np.arange(rows, dtype=np.int64)[:, None] * n_units
        counts = np.bincount(draws.ravel(), minlength=rows * n_units).reshape(rows, n_units)
        if np.issubdtype(out.dtype, np.integer) and counts.max() > np.iinfo(out.dtype).max:
            out = out.astype(np.int64)
        out[first:first + rows] = counts
    return out


def weighted(weights: NDArray[Any], values: NDArray[Any]) -> FloatArray:
    """``weights @ values`` for bootstrap weights stored as floats or as counts (:func:`resampling_weights`).

    Integer weights are turned into floats a block of replicates at a time, never all at once
    (that copy would be the whole saving back); the products are those of the float weights.
    """
    if weights.dtype == np.float64:
        product: FloatArray = weights @ values
        return product
    out: FloatArray = np.empty((weights.shape[0], *values.shape[1:]))
    step = max(1, _BLOCK // max(1, weights.shape[1]))
    for first in range(0, weights.shape[0], step):
        out[first:first + step] = weights[first:first + step].astype(np.float64) @ values
    return out


_BLOCK = 1 << 19
"""Draws per block of :func:`resampling_weights` (4 MB of indices)."""


def summarise_draws(point: float, draws: FloatArray, confidence: float) -> tuple[float, float, float, float, float]:
    """Percentile interval, two-sided p-value, standard error and P(> 0) of bootstrap ``draws`` (non-finite dropped)."""
    draws = draws[np.isfinite(draws)]
    if draws.size == 0:
        return float("nan"), float("nan"), float("nan"), float("nan"), float("nan")
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(draws, [alpha, 1 - alpha])
    # Two-sided bootstrap p-value: how often the resampled effect falls on the other side of zero.
    p = min(1.0, 2 * min(float(np.mean(draws <= 0)), float(np.mean(draws >= 0))))
    return float(lo), float(hi), float(p), float(np.std(draws, ddof=1)), float(np.mean(draws > 0))


def cluster_weights(n_units: int, *, replicates: int = 2000, seed: int = 7) -> FloatArray:
    """Bootstrap weights over units (replicates × units): how often each unit is drawn.

    Resampling whole units keeps each unit's months together (they are not independent).
    """
    return resampling_weights(np.random.default_rng(seed), n_units, replicates)


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
    lo, hi, p, se, prob = summarise_draws(point, np.asarray(draws, dtype=np.float64), confidence)
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


# --------------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EstimatorSettings:
    """What every registered estimator is run with."""

    post_months: int = 6
    """Periods from training on that count (and, for matching, before it): months at the panel's default
    grain, else periods of its grain (weeks, quarters, years, …)."""
    confidence: float = 0.95
    replicates: int = 999
    seed: int = 7
    surveys: pl.DataFrame | None = field(default=None, compare=False)
    """The program's estimate answers (participant estimates); None when there are none."""


@dataclass(frozen=True)
class Estimator:
    """One estimator of the family, as the registry knows it."""

    name: str
    label: str
    needs_comparison: bool
    """Whether it compares trained with untrained units (a trend line or survey answers do not)."""
    refutable: bool
    """Whether placebo tests (another date, other units, another outcome) can challenge its estimate."""
    position: int
    """Where it stands in every list of methods (comparison-group designs first, opinions last)."""
    run: Callable[[UnitPanel, EstimatorSettings], Effect] = field(repr=False, compare=False)


ESTIMATORS: dict[str, Estimator] = {}
"""Every registered estimator by name (filled as :mod:`training_roi.isolate` imports its modules)."""


def estimator(name: str, *, label: str, needs_comparison: bool, refutable: bool, position: int,
              ) -> Callable[[Callable[[UnitPanel, EstimatorSettings], Effect]],
                            Callable[[UnitPanel, EstimatorSettings], Effect]]:
    """Register ``run`` as the estimator ``name`` (a decorator)."""
    def register(run: Callable[[UnitPanel, EstimatorSettings], Effect]) -> Callable[[UnitPanel, EstimatorSettings],
                                                                                   Effect]:
        if name in ESTIMATORS:
            raise ValueError(f"estimator {name!r} is registered twice")
        ESTIMATORS[name] = Estimator(name, label, needs_comparison, refutable, position, _said_clusters(run))
        return run
    return register


def never_narrower(effect: Effect, by_unit: tuple[float, float], p_value: float, cluster: str) -> Effect:
    """``effect`` (inferred by cluster) with its interval widened, where needed, to the one by unit.

    Clustering exists because a cluster's units move together, which widens the interval; an
    interval by cluster narrower than the one that treats units as independent says the few
    cluster sums under-estimated the spread by chance (a clustered variance from G clusters has
    about G − 1 degrees of freedom), not that the units are more informative than independent
    ones. On the simulator's roll-outs with 16–19 teams and no shock shared by a team, the
    intervals by team alone covered the truth in 83% of orgs, by rep in 97%. So the reported
    interval covers both (and the p-value is the larger); ``details`` keeps the unit interval.
    """
    low, high = by_unit
    details = {**effect.details, "unit_ci_low": float(low), "unit_ci_high": float(high)}
    if not (low < effect.ci_low or high > effect.ci_high):
        return replace(effect, details=details)
    note = (f"the interval by {cluster} ({effect.ci_low:+.4g} to {effect.ci_high:+.4g}) was narrower than the one "
            f"treating units as independent ({low:+.4g} to {high:+.4g}): the wider is reported")
    return replace(effect, ci_low=float(min(low, effect.ci_low)), ci_high=float(max(high, effect.ci_high)),
                   p_value=float(max(p_value, effect.p_value)), details=details, warnings=(*effect.warnings, note))


def _said_clusters(run: Callable[[UnitPanel, EstimatorSettings], Effect]) -> Callable[[UnitPanel, EstimatorSettings],
                                                                                    Effect]:
    """``run``, warning when the panel names clusters that the estimator's interval does not honour.

    An estimator that clusters by the panel's ``cluster`` column says so in
    ``diagnostics["clustered_by"]``; any other resamples units, which is too narrow when the
    units of a cluster move together.
    """
    def checked(panel: UnitPanel, settings: EstimatorSettings) -> Effect:
        effect = run(panel, settings)
        if panel.cluster is None or effect.diagnostics.get("clustered_by") == panel.cluster:
            return effect
        return replace(effect, warnings=(*effect.warnings, (
            f"the panel clusters units by {panel.cluster}, but this estimator's interval treats units as "
            "independent: it may be too narrow when a cluster's units move together (the staggered, "
            "two-way fixed effects and doubly robust staggered estimators cluster by it)")))
    return checked


def registered() -> tuple[str, ...]:
    """Every registered estimator's name, in the order lists show them."""
    return tuple(e.name for e in sorted(ESTIMATORS.values(), key=lambda e: (e.position, e.name)))
