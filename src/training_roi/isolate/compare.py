"""Every applicable way of isolating the effect, side by side, and the one to lead with.

A finance reviewer trusts an estimate more when several designs agree, and trusts the report
more when it says which design is most credible *for this data* and why. This module runs each
estimator of the family on the same monthly panel, keeps the reason when one cannot run, and
recommends a headline by a fixed order of credibility:

1. a **randomised holdout** (the groups differ only by chance) — difference-in-differences;
2. **staggered cohorts** — the group-time estimator, which stays unbiased when effects grow
   (two-way fixed effects does not), if its comparison passes the pre-trend test;
3. a **comparison group with parallel pre-trends** (the event study's test does not reject);
4. a **matched comparison** when pre-trends diverge and matching balances the groups;
5. the **trend line** of the trained group when no comparison group exists;
6. **participant estimates** (the share of the trained group's change that participants and
   their managers credit to the program, discounted by their confidence) as the conservative
   fallback.

The naive comparisons are listed too, marked biased, never recommended.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

import polars as pl

from training_roi.isolate.did import Effect
from training_roi.isolate.estimates import estimate_participant
from training_roi.isolate.estimator import NotApplicable
from training_roi.isolate.event_study import estimate_event_study, estimate_twfe_did
from training_roi.isolate.matching import estimate_cem, estimate_ipw, estimate_psm
from training_roi.isolate.refute import Refutation, refute
from training_roi.isolate.staggered import estimate_staggered
from training_roi.isolate.trend import estimate_trend
from training_roi.isolate.unit_panel import UnitPanel

__all__ = ["METHODS", "Comparison", "MethodResult", "compare_methods"]

METHODS = ("twfe", "event_study", "staggered", "psm", "ipw", "cem", "trend", "participant")
"""The estimators run side by side (besides the windowed difference-in-differences of the study)."""

_WORKERS = 2
"""Methods estimated at the same time."""

_CHALLENGE_REPLICATES = 499
"""Bootstrap replicates of each re-estimate inside a challenge (the headline keeps the study's)."""

_LABELS = {
    "twfe": "difference-in-differences (two-way fixed effects, monthly)",
    "event_study": "event study (mean of the months after training)",
    "staggered": "staggered cohorts (Callaway & Sant'Anna)",
    "psm": "matched comparison (propensity score)",
    "ipw": "weighted comparison (inverse probability)",
    "cem": "matched comparison (coarsened exact)",
    "trend": "trend line of the trained group",
    "participant": "participant and manager estimates (Phillips)",
}


@dataclass(frozen=True)
class MethodResult:
    """One method's answer, or why it could not give one."""

    method: str
    label: str
    effect: Effect | None
    not_applicable: str | None = None
    refutations: tuple[Refutation, ...] = ()


@dataclass(frozen=True)
class Comparison:
    """Every method's result and the recommended headline."""

    results: tuple[MethodResult, ...]
    recommended: str | None
    reason: str

    def result(self, method: str) -> MethodResult | None:
        """The result of ``method``, if it was run."""
        return next((r for r in self.results if r.method == method), None)


def _trained_change(panel: UnitPanel, months: int) -> tuple[float, float]:
    """The trained units' pooled outcome in the ``months`` before and after their training month."""
    f = panel.frame.filter(pl.col("treated_at").is_not_null())
    if f.is_empty():
        raise NotApplicable("nobody was trained: there is no change to attribute")
    offset = ((pl.col("period").dt.year() - pl.col("treated_at").dt.year()) * 12
              + pl.col("period").dt.month().cast(pl.Int32) - pl.col("treated_at").dt.month().cast(pl.Int32))
    f = f.with_columns(offset.alias("offset"))
    before = panel.value(f.filter((pl.col("offset") >= -months) & (pl.col("offset") < 0)))
    after = panel.value(f.filter((pl.col("offset") > 0) & (pl.col("offset") <= months)))
    return before, after


def _participant(surveys: pl.DataFrame | None, months: int, confidence: float, replicates: int,
                 seed: int) -> Callable[[UnitPanel], Effect]:
    """Phillips' estimate: the trained group's observed change × the share respondents credit."""
    def estimate(panel: UnitPanel) -> Effect:
        if surveys is None or surveys.is_empty():
            raise NotApplicable("nobody answered an estimate question about the program in surveys.csv")
        before, after = _trained_change(panel, months)
        if before != before or after != after:
            raise NotApplicable("the trained units have no outcome before or after training to attribute")
        return estimate_participant(after - before, surveys, baseline=before, confidence=confidence,
                                    replicates=replicates, seed=seed)
    return estimate


def _estimators(post_months: int, confidence: float, replicates: int, seed: int,
                surveys: pl.DataFrame | None = None) -> dict[str, Callable[[UnitPanel], Effect]]:
    return {
        "twfe": partial(estimate_twfe_did, post_months=post_months, confidence=confidence),
        "event_study": partial(estimate_event_study, leads=post_months, lags=post_months, confidence=confidence),
        "staggered": partial(estimate_staggered, post_months=post_months, confidence=confidence,
                             replicates=replicates, seed=seed),
        "psm": partial(estimate_psm, pre_months=post_months, post_months=post_months, confidence=confidence,
                       replicates=replicates, seed=seed),
        "ipw": partial(estimate_ipw, pre_months=post_months, post_months=post_months, confidence=confidence,
                       replicates=replicates, seed=seed),
        "cem": partial(estimate_cem, pre_months=post_months, post_months=post_months, confidence=confidence,
                       replicates=replicates, seed=seed),
        "trend": partial(estimate_trend, post_months=post_months, confidence=confidence, replicates=replicates,
                         seed=seed),
        "participant": _participant(surveys, post_months, confidence, replicates, seed),
    }


def _pre_trend_ok(event: MethodResult | None) -> bool | None:
    """Whether the event study's pre-trend test passes (None when it could not run)."""
    if event is None or event.effect is None:
        return None
    test = event.effect.diagnostics.get("pre_trend", {})
    p = test.get("p_value") if isinstance(test, dict) else None
    return None if p is None else bool(p >= 0.05)


def _recommend(results: dict[str, MethodResult], *, randomised: bool, cohorts: int) -> tuple[str | None, str]:
    def ok(method: str) -> bool:
        r = results.get(method)
        return r is not None and r.effect is not None

    parallel = _pre_trend_ok(results.get("event_study"))
    if randomised and ok("twfe"):
        return "twfe", ("the comparison group is a randomised holdout: it differs from the trained only by chance, "
                        "so difference-in-differences is the most credible design")
    if cohorts > 1 and ok("staggered") and parallel is not False:
        return "staggered", (f"units were trained in {cohorts} different months: the group-time estimator stays "
                             "unbiased when effects differ by cohort or grow over time, and the pre-trend test "
                             "does not reject parallel trends")
    if parallel and ok("twfe"):
        return "twfe", ("trained and comparison units moved in parallel before training (the event study's "
                        "pre-trend test does not reject it), which is what difference-in-differences needs")
    if parallel is False:
        for method in ("psm", "cem"):
            r = results.get(method)
            if r is not None and r.effect is not None and not any("SMD" in w or "balance" in w
                                                                  for w in r.effect.warnings):
                return method, ("trained and comparison units were already diverging before training, so the "
                                "comparison is matched on pre-training levels and trends; matching balances them")
    if not ok("twfe") and ok("trend"):
        return "trend", ("there is no comparison group: the trained units' own pre-training trend, projected, "
                         "is the counterfactual; it assumes nothing else changed when they were trained")
    if ok("twfe"):
        return "twfe", ("difference-in-differences with the comparison group, with a caution: the pre-trend "
                        "test could not confirm parallel trends and no matched comparison balanced the groups")
    if ok("participant"):
        return "participant", ("no comparison group and no usable trend: the participants' and managers' own "
                               "estimates, discounted by their confidence, are the conservative fallback; they "
                               "are judgements, not a causal estimate")
    return None, "no method could be applied to this data"


def compare_methods(
    panel: UnitPanel,
    *,
    post_months: int = 6,
    randomised: bool = False,
    confidence: float = 0.95,
    replicates: int = 999,
    seed: int = 7,
    methods: tuple[str, ...] = METHODS,
    refutations: bool = True,
    surveys: pl.DataFrame | None = None,
) -> Comparison:
    """Run ``methods`` on ``panel``, challenge each estimate, and recommend one.

    ``randomised``: the comparison group is a randomised holdout (the study says so).
    ``refutations``: run the placebo checks of :mod:`training_roi.isolate.refute` on each
    estimate (each re-runs the estimator a few times).
    ``surveys``: the program's estimate answers (:func:`~training_roi.isolate.survey_estimates`)
    for the participant estimate; without them that method is not applicable.
    """
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise ValueError(f"unknown method(s) {', '.join(unknown)}: expected {', '.join(METHODS)}")
    estimators = _estimators(post_months, confidence, replicates, seed, surveys)
    # A placebo asks "is it zero?", not "to which decimal?": fewer replicates serve its interval.
    challengers = _estimators(post_months, confidence, min(replicates, _CHALLENGE_REPLICATES), seed, surveys)

    def run(method: str) -> MethodResult:
        try:
            effect = estimators[method](panel)
        except NotApplicable as exc:
            return MethodResult(method, _LABELS[method], None, str(exc))
        # A trend line has no comparison group to challenge, survey answers no dates to move.
        challenge = refutations and method not in ("trend", "participant")
        checks = refute(panel, challengers[method], effect, seed=seed) if challenge else ()
        return MethodResult(method, _LABELS[method], effect, None, checks)

    # The methods are independent (each draws from its own seed), and their NumPy and Polars work
    # releases the interpreter lock: two at a time keep two cores busy, with the same results.
    with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
        results = dict(zip(methods, pool.map(run, methods), strict=True))
    cohorts = panel.frame.filter(pl.col("treated_at").is_not_null()).select(
        pl.col("treated_at").dt.truncate("1mo").n_unique()).item()
    recommended, reason = _recommend(results, randomised=randomised, cohorts=int(cohorts))
    return Comparison(tuple(results[m] for m in methods), recommended, reason)
