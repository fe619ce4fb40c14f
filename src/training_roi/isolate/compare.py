"""Every applicable way of isolating the effect, side by side, and the one to lead with.

A finance reviewer trusts an estimate more when several designs agree, and trusts the report
more when it says which design is most credible *for this data* and why. This module runs each
estimator of the family on the same monthly panel, keeps the reason when one cannot run, and
recommends a headline from the diagnostics (:mod:`training_roi.isolate.recommend`): randomisation,
then covariates that differ strongly (the doubly robust DiD, with poor overlap said first),
staggered timing, parallel trends *established* by the leads' equivalence bound (not merely "the
pre-test did not reject"), matching when trends diverge, the trend line without a comparison
group, and last the participants' opinion.

The naive comparisons are listed too, marked biased, never recommended.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

# The estimator modules register themselves (training_roi.isolate.effect.ESTIMATORS) on import.
from training_roi.isolate import drdid, estimates, event_study, matching, naive, staggered, staggered_dr, trend  # noqa: F401
from training_roi.isolate.effect import ESTIMATORS, Effect, EstimatorSettings, NotApplicable, html_table, registered
from training_roi.isolate.pretrends import EQUIVALENCE_SHARE, PreTrendCheck, pretrend_check
from training_roi.isolate.recommend import recommend
from training_roi.isolate.refute import Refutation, refute
from training_roi.measure.frames import TableLike, as_polars
from training_roi.measure.panels import UnitPanel

__all__ = ["METHODS", "Comparison", "MethodResult", "compare_methods"]

METHODS = registered()
"""The estimators run side by side (besides the windowed difference-in-differences of the study), in order."""

_WORKERS = 2
"""Methods estimated at the same time."""

_CHALLENGE_REPLICATES = 499
"""Bootstrap replicates of each re-estimate inside a challenge (the headline keeps the study's)."""


@dataclass(frozen=True)
class MethodResult:
    """One method's answer, or why it could not give one."""

    method: str
    label: str
    effect: Effect | None
    not_applicable: str | None = None
    refutations: tuple[Refutation, ...] = ()

    def _challenges(self) -> list[tuple[str, str]]:
        return [(r.test, f"{'passed' if r.passed else 'failed'}: {r.estimate:+.4g} [{r.ci_low:+.4g}, {r.ci_high:+.4g}]")
                for r in self.refutations]

    def summary(self) -> str:
        """The method's estimate in a few lines (or why it could not run), and each challenge's verdict."""
        if self.effect is None:
            return f"{self.label}: not applicable — {self.not_applicable or 'no reason given'}"
        lines = [self.label, *self.effect.summary().splitlines()[1:]]
        lines += [f"  challenge    {test} {verdict}" for test, verdict in self._challenges()]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        if self.effect is None:
            return f"MethodResult(method={self.method!r}, not_applicable=True)"
        e = self.effect
        passed = sum(r.passed for r in self.refutations)
        return (f"MethodResult(method={self.method!r}, estimate={e.estimate:.6g}, ci=({e.ci_low:.6g}, "
                f"{e.ci_high:.6g}), challenges_passed={passed}/{len(self.refutations)})")

    def _repr_html_(self) -> str:
        if self.effect is None:
            return html_table(self.label, [("not applicable", self.not_applicable or "")])
        e = self.effect
        return html_table(self.label, [
            ("estimate", f"{e.estimate:+.4g}"),
            (f"{e.confidence:.0%} interval", f"{e.ci_low:+.4g} to {e.ci_high:+.4g}"),
            ("p-value", f"{e.p_value:.3g}"), *(("warning", w) for w in e.warnings), *self._challenges()])


@dataclass(frozen=True)
class Comparison:
    """Every method's result and the recommended headline."""

    results: tuple[MethodResult, ...]
    recommended: str | None
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)
    """What the recommendation weighed (:func:`training_roi.isolate.recommend.recommend`)."""

    def result(self, method: str) -> MethodResult | None:
        """The result of ``method``, if it was run."""
        return next((r for r in self.results if r.method == method), None)

    def rows(self) -> list[tuple[str, str, str]]:
        """One row per method: its label, its estimate with interval (or why it could not run), its warnings."""
        out = []
        for r in self.results:
            if r.effect is None:
                out.append((r.label, "not applicable", r.not_applicable or ""))
                continue
            e = r.effect
            mark = " (recommended)" if r.method == self.recommended else ""
            out.append((r.label + mark, f"{e.estimate:+.4g} [{e.ci_low:+.4g}, {e.ci_high:+.4g}]",
                        "; ".join(e.warnings)))
        return out

    def summary(self) -> str:
        """Every method side by side, and the recommendation with its reason."""
        lines = [f"{label}: {value}" + (f" — {note}" if note else "") for label, value, note in self.rows()]
        lines.append(f"recommended: {self.recommended or 'none'} — {self.reason}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        applicable = sum(r.effect is not None for r in self.results)
        return (f"Comparison(recommended={self.recommended!r}, methods={len(self.results)}, "
                f"applicable={applicable})")

    def _repr_html_(self) -> str:
        return html_table(f"recommended: {self.recommended or 'none'}", [(a, f"{b} {c}".strip())
                                                                         for a, b, c in self.rows()])


def _pre_trends(results: dict[str, MethodResult]) -> PreTrendCheck | None:
    """What the event study's leads tell, judged against half the headline DiD's estimate (None without leads)."""
    event = results.get("event_study")
    if event is None or event.effect is None:
        return None
    test = event.effect.diagnostics.get("pre_trend", {})
    if not isinstance(test, dict) or not test.get("leads"):
        return None
    twfe = results.get("twfe")
    scale = (twfe.effect if twfe is not None and twfe.effect is not None else event.effect).estimate
    clusters = event.effect.diagnostics.get("clusters")
    return pretrend_check(test["lead_coefficients"], test["lead_covariance"], periods=test["leads"],
                          tolerance=EQUIVALENCE_SHARE * abs(scale),
                          dof=clusters - 1 if isinstance(clusters, int) and clusters > 1 else None)


def compare_methods(
    panel: UnitPanel,
    *,
    post_months: int = 6,
    randomised: bool = False,
    confidence: float = 0.95,
    replicates: int = 999,
    seed: int = 7,
    methods: Sequence[str] | None = None,
    refutations: bool = True,
    surveys: TableLike | None = None,
) -> Comparison:
    """Run ``methods`` on ``panel``, challenge each estimate, and recommend one.

    ``methods``: registered estimators' names (:data:`METHODS`, all of them by default), the
    naive comparisons (``naive_before_after``, ``naive_after``) among them: they are listed,
    their effects marked biased, and never recommended.
    ``post_months``: the periods from training on that count (months at the panel's default
    grain, else periods of its grain).
    ``randomised``: the comparison group is a randomised holdout (the study says so).
    ``refutations``: run the placebo checks of :mod:`training_roi.isolate.refute` on each
    estimate (each re-runs the estimator a few times).
    ``surveys``: the program's estimate answers (:func:`~training_roi.measure.survey_estimates`,
    or any table with ``role``, ``score`` and ``confidence``) for the participant estimate;
    without them that method is not applicable.
    """
    methods = tuple(methods) if methods is not None else METHODS
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise ValueError(f"unknown method(s) {', '.join(unknown)}: expected {', '.join(METHODS)}")
    settings = EstimatorSettings(post_months=post_months, confidence=confidence, replicates=replicates, seed=seed,
                                 surveys=None if surveys is None else as_polars(surveys, "surveys"))
    # A placebo asks "is it zero?", not "to which decimal?": fewer replicates serve its interval.
    challenge = replace(settings, replicates=min(replicates, _CHALLENGE_REPLICATES))

    def run(method: str) -> MethodResult:
        spec = ESTIMATORS[method]
        try:
            effect = spec.run(panel, settings)
        except NotApplicable as exc:
            return MethodResult(method, spec.label, None, str(exc))
        checks = (refute(panel, lambda p: spec.run(p, challenge), effect, seed=seed)
                  if refutations and spec.refutable else ())
        return MethodResult(method, spec.label, effect, None, checks)

    # The methods are independent (each draws from its own seed), and their NumPy and Polars work
    # releases the interpreter lock: two at a time keep two cores busy, with the same results.
    with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
        results = dict(zip(methods, pool.map(run, methods), strict=True))
    cohorts = panel.frame.select(panel.period_index("treated_at").drop_nulls().n_unique()).item()
    # A biased reference (the naive comparisons) is listed; recommend() never picks one.
    choice = recommend(results, randomised=randomised, cohorts=int(cohorts), pre_trends=_pre_trends(results),
                       noun=panel.period_noun)
    evidence = dict(choice.evidence)
    event = results.get("event_study")
    sensitivity = event.effect.diagnostics.get("sensitivity") if event is not None and event.effect else None
    if isinstance(sensitivity, dict):
        evidence["trend_sensitivity"] = sensitivity["verdict"]
        evidence["trend_breakdown"] = sensitivity["breakdown"]
    return Comparison(tuple(results[m] for m in methods), choice.method, choice.reason, evidence)
