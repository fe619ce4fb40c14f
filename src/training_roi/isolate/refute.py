"""Refutation: challenge an estimate the way a sceptical reviewer would, and say whether it survives.

Three challenges, each re-running the same estimator on data where the answer is known:

* **placebo date** — pretend every unit was trained ``shift_months`` periods earlier (months at
  the default grain) and use only the periods before the first real training: nothing happened
  then, so the "effect" should be zero;
* **placebo treatment** — give the training to units drawn at random (the same number, the same
  dates): the effect of a random label should be zero;
* **comparison subset** — re-estimate with random halves of the comparison group: a real effect
  does not hinge on which comparison units happen to be in the data (no subset's interval
  should contradict the original one);
* **placebo outcome** — the same estimate on an outcome the program cannot move (a column the
  user names): it should be zero.

A refutation *passes* when its result is what the original estimate predicts (a placebo's
interval includes zero; every subset's interval overlaps the original one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import polars as pl

from training_roi.isolate.effect import Effect, NotApplicable
from training_roi.measure.panels import UnitPanel

__all__ = ["Estimator", "Refutation", "placebo_date", "placebo_outcome", "placebo_treatment", "refute",
           "subset_comparison"]

Estimator = Callable[[UnitPanel], Effect]
"""An estimator with its settings bound: ``functools.partial(estimate_twfe_did, post_months=6)``."""


@dataclass(frozen=True)
class Refutation:
    """One challenge and its outcome."""

    test: str
    estimate: float
    ci_low: float
    ci_high: float
    passed: bool
    explanation: str


def placebo_date(panel: UnitPanel, estimator: Estimator, *, shift_months: int = 6) -> Refutation:
    """The estimate with every training moved ``shift_months`` periods earlier, on the periods before the first one.

    A unit's placebo training date is the first day of the period ``shift_months`` periods
    before the one that contains its training (the period number itself at the ``index`` grain).
    """
    trained = panel.frame.select(panel.period_index("treated_at")).to_series().drop_nulls()
    if trained.is_empty():
        raise NotApplicable("nobody was trained, so there is no training date to move")
    first = int(trained.min())  # type: ignore[arg-type]
    moved = {int(t): panel.period_start(int(t) - shift_months) for t in trained.unique().to_list()}
    at = panel.period_index("treated_at")
    frame = panel.frame.filter(panel.period_index("period") < first).with_columns(
        at.replace_strict(list(moved), list(moved.values()), default=None,
                          return_dtype=panel.frame.schema["treated_at"]).alias("treated_at"))
    if frame.is_empty():
        raise NotApplicable(f"there are no {panel.period_noun}s before the first training to hold a placebo date")
    effect = estimator(replace(panel, frame=frame))
    passed = effect.ci_low <= 0 <= effect.ci_high
    return Refutation(
        "placebo date", effect.estimate, effect.ci_low, effect.ci_high, passed,
        f"training dated {shift_months} {panel.period_noun}s early, before anything happened: "
        + ("no effect found, as it should be" if passed else
           "an 'effect' appears where none can be: the groups were already drifting apart"),
    )


def placebo_treatment(panel: UnitPanel, estimator: Estimator, *, seed: int = 7) -> Refutation:
    """The estimate with the training given to random units (same count, same dates)."""
    units = panel.units
    dates = units["treated_at"].to_list()
    rng = np.random.default_rng(seed)
    shuffled = [dates[i] for i in rng.permutation(len(dates))]
    mapping = pl.DataFrame({"unit": units["unit"], "placebo_at": shuffled},
                           schema={"unit": pl.String, "placebo_at": panel.frame.schema["treated_at"]})
    frame = (panel.frame.join(mapping, on="unit", how="left")
             .with_columns(pl.col("placebo_at").alias("treated_at")).drop("placebo_at"))
    effect = estimator(replace(panel, frame=frame))
    passed = effect.ci_low <= 0 <= effect.ci_high
    return Refutation(
        "placebo treatment", effect.estimate, effect.ci_low, effect.ci_high, passed,
        "training given to random units instead: " + ("no effect, as it should be" if passed else
                                                      "an 'effect' of a random label: the method finds "
                                                      "effects in noise or in how units differ"),
    )


def subset_comparison(panel: UnitPanel, estimator: Estimator, original: Effect, *, share: float = 0.5,
                      repeats: int = 3, seed: int = 7) -> Refutation:
    """The estimate with random subsets of the comparison group, which should not contradict the original."""
    units = panel.units
    comparison = units.filter(pl.col("treated_at").is_null())["unit"].to_list()
    if len(comparison) < 4:
        raise NotApplicable(f"only {len(comparison)} comparison units: too few to split")
    rng = np.random.default_rng(seed)
    estimates, agree = [], 0
    for _ in range(repeats):
        keep = set(rng.choice(comparison, size=max(2, int(len(comparison) * share)), replace=False).tolist())
        frame = panel.frame.filter(pl.col("treated_at").is_not_null() | pl.col("unit").is_in(list(keep)))
        e = estimator(replace(panel, frame=frame))
        estimates.append(e.estimate)
        agree += e.ci_low <= original.ci_high and original.ci_low <= e.ci_high
    lo, hi = min(estimates), max(estimates)
    passed = agree == repeats
    return Refutation(
        "comparison subset", float(np.mean(estimates)), lo, hi, passed,
        f"{repeats} random {share:.0%} subsets of the comparison group give {lo:+.4g} to {hi:+.4g}; "
        + ("every subset's interval overlaps the original one" if passed else
           f"{repeats - agree} of them contradict the original interval: the estimate depends on which "
           "comparison units are in"),
    )


def placebo_outcome(panel: UnitPanel, estimator: Estimator, *, numerator: str,
                    denominator: str | None = None) -> Refutation:
    """The estimate on an outcome the program cannot move (columns the user names)."""
    effect = estimator(replace(panel, outcome=f"placebo {numerator}", numerator=numerator,
                               denominator=denominator))
    passed = effect.ci_low <= 0 <= effect.ci_high
    return Refutation(
        "placebo outcome", effect.estimate, effect.ci_low, effect.ci_high, passed,
        f"effect on {numerator}, which training cannot change: "
        + ("none, as it should be" if passed else "an 'effect' where none can be: something else moved"),
    )


def refute(panel: UnitPanel, estimator: Estimator, original: Effect, *, seed: int = 7,
           placebo: tuple[str, str | None] | None = None) -> tuple[Refutation, ...]:
    """Every challenge that applies to this panel; a challenge that cannot run is left out."""
    out = []
    checks: list[Callable[[], Refutation]] = [
        lambda: placebo_date(panel, estimator),
        lambda: placebo_treatment(panel, estimator, seed=seed),
        lambda: subset_comparison(panel, estimator, original, seed=seed),
    ]
    if placebo is not None:
        checks.append(lambda: placebo_outcome(panel, estimator, numerator=placebo[0], denominator=placebo[1]))
    for check in checks:
        try:
            out.append(check())
        except NotApplicable:
            continue
    return tuple(out)
