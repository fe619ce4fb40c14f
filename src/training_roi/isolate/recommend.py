"""Which design to lead with, and why, from the diagnostics a methodologist would read.

Running every estimator is easy; saying which one to believe is the hard part, and the reason
must name the evidence. :func:`recommend` weighs, in this order:

1. **Randomisation.** A randomised holdout differs from the trained only by chance, so
   difference-in-differences (two-way fixed effects) leads; a large imbalance before training is
   still reported, because it says the randomisation or the data may be broken.
2. **Covariates that differ.** When trained and comparison units differ strongly in their
   covariates (largest standardised mean difference of at least :data:`STRONG_IMBALANCE`, the
   point beyond which regression adjustment alone is unreliable — Rubin 2001, Stuart 2010), a
   comparison that ignores them assumes that such different units would have trended alike. The
   doubly robust DiD conditions on them, and is right when either its propensity or its outcome
   model is. Poor overlap (trained units with no untrained look-alike, a comparison carried by a
   handful of units) is said *first*: then no design compares like with like.
3. **Staggered timing.** Units trained at different times: the group-time estimator, which
   two-way fixed effects is not, stays unbiased when effects differ by cohort or grow. With
   covariates its doubly robust form (``staggered_dr``) is preferred to it.
4. **What the pre-period can tell.** Not "the pre-test did not reject": with two or three
   pre-periods that test has little power. The leads must *establish* that pre-period gaps are
   small — an equivalence bound (TOST) below half the estimated effect
   (:data:`EQUIVALENCE_SHARE`) — and the reason quotes the bound and the trend the pre-test
   would detect half the time (:mod:`training_roi.isolate.pretrends`). When the leads find a
   trend, matching on the pre-period (if it balances) or the doubly robust DiD leads instead.
5. **No comparison group**: the trained units' own projected trend; and last, the participants'
   estimates — an opinion, not a measurement.

Biased references (the naive comparisons) are never recommended. Every reason says which
diagnostics it used; a recommendation whose diagnostics fail says "caution:" — first, or, for a
randomised holdout whose covariates differ (the design still leads), after the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from training_roi.isolate.effect import Effect
from training_roi.isolate.pretrends import EQUIVALENCE_SHARE, PreTrendCheck

__all__ = ["EQUIVALENCE_SHARE", "STRONG_IMBALANCE", "Recommendation", "recommend"]

STRONG_IMBALANCE = 0.25
"""Largest |standardised mean difference| of a covariate beyond which the groups differ strongly."""



class _Result(Protocol):
    """What the recommendation reads of a method's result (a :class:`~training_roi.isolate.MethodResult`)."""

    @property
    def method(self) -> str: ...

    @property
    def effect(self) -> Effect | None: ...


@dataclass(frozen=True)
class Recommendation:
    """The design to lead with (None when no design applies), the reason in words, and the evidence used."""

    method: str | None
    reason: str
    evidence: Mapping[str, Any]


def _g(x: float) -> str:
    return f"{x:.3g}"


def _imbalance(effect: Effect | None) -> tuple[float, str] | None:
    """The largest |SMD| before adjustment and its covariate, from an estimator's balance table."""
    if effect is None:
        return None
    rows = effect.diagnostics.get("balance")
    if not isinstance(rows, list) or not rows:
        return None
    worst = max(rows, key=lambda r: abs(float(r.get("smd_before", 0.0))))
    return abs(float(worst.get("smd_before", 0.0))), str(worst.get("feature", "?"))


def _overlap_problems(effect: Effect) -> list[str]:
    """The overlap warnings of a weighting estimator (poor support, trimming, few effective units)."""
    keys = ("poor overlap", "trimmed", "effective sample size", "balance not reached")
    return [w for w in effect.warnings if any(k in w for k in keys)]


def _caution(effect: Effect) -> str:
    """The reason's prefix naming the effect's overlap problems ("caution: …. "), or nothing when it has none."""
    problems = _overlap_problems(effect)
    return ("caution: " + "; ".join(problems) + ". ") if problems else ""


def _overlap_figures(effect: Effect) -> str:
    d = effect.diagnostics
    parts = []
    if "max_abs_smd_after" in d:
        parts.append(f"largest |SMD| after weighting {_g(float(d['max_abs_smd_after']))}")
    if "share_trained_off_support" in d:
        parts.append(f"{float(d['share_trained_off_support']):.1%} of trained units off the comparison's support")
    if "effective_comparison_size" in d:
        parts.append(f"the comparison counts as {float(d['effective_comparison_size']):,.0f} units (Kish)")
    return "; ".join(parts)


def _pre_trend_words(check: PreTrendCheck | None) -> str:
    return check.verdict if check is not None else "the event study could not test pre-trends"


def recommend(
    results: Mapping[str, _Result],
    *,
    randomised: bool,
    cohorts: int,
    pre_trends: PreTrendCheck | None,
    noun: str = "period",
) -> Recommendation:
    """The design to lead with among ``results`` (method → result), and the reason naming its diagnostics.

    ``pre_trends`` is the event study's lead check with a tolerance already set (see
    :data:`EQUIVALENCE_SHARE`), or None when no event study ran; ``noun`` names the panel's period
    (``month``, ``year``, …) in the reason.
    """

    def effect(method: str) -> Effect | None:
        r = results.get(method)
        return r.effect if r is not None and r.effect is not None and not r.effect.biased else None

    twfe, drdid, staggered = effect("twfe"), effect("drdid"), effect("staggered")
    staggered_dr = effect("staggered_dr") if cohorts > 1 else None  # it needs covariates, or it has no effect
    imbalance = _imbalance(drdid) or _imbalance(effect("psm"))
    evidence: dict[str, Any] = {
        "randomised": randomised, "cohorts": cohorts,
        "largest_smd_before": imbalance[0] if imbalance else None,
        "largest_smd_covariate": imbalance[1] if imbalance else None,
        "pre_trends": _pre_trend_words(pre_trends),
        "pre_trend_bound": pre_trends.bound if pre_trends is not None else None,
        "pre_trend_p_value": pre_trends.p_value if pre_trends is not None else None,
        "pre_trend_detectable_slope": pre_trends.slope_50 if pre_trends is not None else None,
    }
    strong = imbalance is not None and imbalance[0] >= STRONG_IMBALANCE
    differ = (f"the trained and comparison units differ in their covariates (largest standardised mean difference "
              f"{_g(imbalance[0])}, on {imbalance[1]})") if imbalance is not None else ""

    def done(method: str | None, reason: str) -> Recommendation:
        return Recommendation(method, reason, evidence)

    if randomised and twfe is not None:
        note = (f"; caution: {differ} although assignment was random — check the randomisation and the data"
                if strong else "")
        return done("twfe", "the comparison group is a randomised holdout: it differs from the trained only by "
                            f"chance, so difference-in-differences is the most credible design{note}")

    shown = pre_trends is not None and bool(pre_trends.equivalent) and not pre_trends.rejects
    found = pre_trends is not None and pre_trends.rejects and not pre_trends.equivalent

    if strong and staggered_dr is not None:
        caution = _caution(staggered_dr)
        return done("staggered_dr", f"{caution}{differ}: a plain difference-in-differences would assume such "
                                    "different units trend alike, and units were trained in "
                                    f"{cohorts} different {noun}s. The doubly robust group-time estimator compares "
                                    "each cohort with like untrained units, stays unbiased when effects differ by "
                                    "cohort or grow, and is right if either its propensity or its outcome model is "
                                    f"({_overlap_figures(staggered_dr)}); pre-trends: {_pre_trend_words(pre_trends)}")

    if strong and drdid is not None:
        caution = _caution(drdid)
        return done("drdid", f"{caution}{differ}: a plain difference-in-differences would assume such different "
                             "units trend alike. The doubly robust DiD compares like with like and is right if either "
                             f"its propensity or its outcome model is ({_overlap_figures(drdid)}); pre-trends: "
                             f"{_pre_trend_words(pre_trends)}")

    if staggered_dr is not None and not found:
        caution = _caution(staggered_dr)
        return done("staggered_dr", f"{caution}units were trained in {cohorts} different {noun}s: the group-time "
                                    "estimator stays unbiased when effects differ by cohort or grow over time, and its "
                                    "doubly robust cells condition on the covariates "
                                    f"({_overlap_figures(staggered_dr)}); pre-trends: {_pre_trend_words(pre_trends)}")

    if cohorts > 1 and staggered is not None and not found:
        return done("staggered", f"units were trained in {cohorts} different {noun}s: the group-time estimator stays "
                                 "unbiased when effects differ by cohort or grow over time; pre-trends: "
                                 f"{_pre_trend_words(pre_trends)}")

    if shown and twfe is not None:
        return done("twfe", f"the pre-period establishes parallel trends: {_pre_trend_words(pre_trends)}, less than "
                            f"{EQUIVALENCE_SHARE:.0%} of the estimated effect"
                            + (f"; {differ}, below the strong-imbalance bar of {STRONG_IMBALANCE}" if differ else ""))

    if found:
        for method in ("psm", "cem"):
            m = effect(method)
            if m is not None and not _overlap_problems(m) and not any("SMD" in w for w in m.warnings):
                return done(method, f"{_pre_trend_words(pre_trends)}: the comparison is matched on pre-training levels "
                                    "and trends, and the matching balances them")
        if drdid is not None:
            caution = _caution(drdid)
            return done("drdid", f"{caution}{_pre_trend_words(pre_trends)}; the doubly robust DiD conditions on the "
                                 f"covariates, which helps only if they explain the diverging trends "
                                 f"({_overlap_figures(drdid)})")

    if twfe is None and effect("trend") is not None:
        return done("trend", "there is no comparison group: the trained units' own pre-training trend, projected, "
                             "is the counterfactual; it assumes nothing else changed when they were trained")

    if drdid is not None and not shown:
        caution = _caution(drdid)
        return done("drdid", f"{caution}the pre-period does not establish parallel trends "
                             f"({_pre_trend_words(pre_trends)}); the doubly robust DiD at least conditions on the "
                             f"covariates ({_overlap_figures(drdid)})")

    if twfe is not None:  # the pre-period did not establish parallel trends (else TWFE led above)
        return done("twfe", "caution: difference-in-differences rests on parallel trends that the data do not "
                            f"establish — {_pre_trend_words(pre_trends)} — and no covariate-aware or matched design "
                            "balanced the groups; read the estimate with the sensitivity to trend violations")

    if effect("participant") is not None:
        return done("participant", "caution: no comparison group and no usable trend: the participants' and "
                                   "managers' own estimates are an opinion of what training did, not a measurement, "
                                   "and nothing is credited on them alone")
    return done(None, "no method could be applied to this data")
