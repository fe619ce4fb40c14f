"""Every method side by side, as the study page and the API show it: read from the result, never recomputed.

A study run with ``isolation.method: all`` (or ``report --method all``) carries a ``methods``
block in its ``result.json`` (docs/result.md, "Methods"): each estimator's effect on the headline
KPI with its interval, why a method could not run, the challenges (refutations) it faced, the
method recommended and why, and the diagnostics the recommendation weighed. :func:`methods_of`
turns that block into rows worded in the KPI's own unit — the same words as the report — with a
verdict read off each interval, and the diagnostics that matter in a sentence each. A study run
with its own design alone has no such block: the answer then says so, and how to get one.

Everything here is an aggregate over the study's units, so a viewer reads it as an analyst does.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel

from training_roi._format import describe_change, true_minus
from training_roi.isolate.recommend import STRONG_IMBALANCE

__all__ = ["ALL_METHODS", "Diagnostic", "MethodRow", "Methods", "Refutation", "methods_of"]

ALL_METHODS = ("only the study's own design ran: run it with every method to compare them — "
               "training-roi report STUDY --method all, or isolation.method: all in the study")
"""What a study without the methods block says, and how to get one."""


class Refutation(BaseModel):
    """A challenge to a method (a placebo date, a placebo treatment, a comparison subset) and its outcome."""

    test: str
    passed: bool
    explanation: str
    estimate: float | None
    ci_low: float | None
    ci_high: float | None


class MethodRow(BaseModel):
    """One method's answer: its effect and interval (figures, and worded in the KPI's unit) and its verdict."""

    method: str
    label: str
    recommended: bool
    biased: bool
    """A naive comparison: shown because reviewers ask, never the answer."""
    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    confidence: float | None
    effect: str
    """The estimate worded in the KPI's unit (+2.0 pts, +$1,234, −3.1 days); "—" when the method did not run."""
    interval: str
    """The interval worded likewise ("−5.5 pts to +11.1 pts"), or why there is none."""
    prob_improvement: float | None
    """The share of resamples in which the KPI moved the better way (None without resamples)."""
    verdict: str
    """``improved`` or ``worsened`` when the interval excludes zero, ``not established`` when it includes
    it, ``not applicable`` when the method could not run; a naive comparison is ``biased``."""
    not_applicable: str | None
    warnings: list[str]
    refutations: list[Refutation]


class Diagnostic(BaseModel):
    """A diagnostic the recommendation weighed: its figure (when it has one) and what it says, in words."""

    name: str
    value: float | None
    words: str


class Methods(BaseModel):
    """A study's methods side by side: the recommended one and why, one row per method, the diagnostics."""

    study_hash: str
    version: int
    ran: bool
    """Whether the study ran every method; when not, ``note`` says how to."""
    kpi: str
    kpi_label: str
    unit: str
    recommended: str | None
    recommended_label: str | None
    reason: str | None
    rows: list[MethodRow]
    diagnostics: list[Diagnostic]
    note: str | None


def _number(value: Any) -> float | None:
    """A figure of the result as a float; None for a missing or non-finite one."""
    if value is None or isinstance(value, bool):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _verdict(effect: dict[str, Any], higher_is_better: bool) -> str:
    """The verdict of an interval: ``not established`` when it includes zero (or there is none)."""
    low, high = _number(effect.get("ci_low")), _number(effect.get("ci_high"))
    if low is None or high is None or low <= 0 <= high:
        return "not established"
    return "improved" if (low > 0) == higher_is_better else "worsened"


def _row(result: dict[str, Any], recommended: str | None, unit: str, higher_is_better: bool) -> MethodRow:
    effect = result.get("effect")
    refutations = [Refutation(test=str(r.get("test", "")), passed=bool(r.get("passed")),
                              explanation=true_minus(str(r.get("explanation", ""))),
                              estimate=_number(r.get("estimate")), ci_low=_number(r.get("ci_low")),
                              ci_high=_number(r.get("ci_high")))
                   for r in result.get("refutations") or []]
    base: dict[str, Any] = {"method": str(result["method"]), "label": str(result.get("label") or result["method"]),
            "recommended": result["method"] == recommended, "refutations": refutations}
    if not effect:
        return MethodRow(**base, biased=False, estimate=None, ci_low=None, ci_high=None, confidence=None, effect="—",
                         interval="not applicable", prob_improvement=None, verdict="not applicable",
                         not_applicable=true_minus(str(result.get("not_applicable") or "the method could not run")),
                         warnings=[])
    low, high = _number(effect.get("ci_low")), _number(effect.get("ci_high"))
    confidence = _number(effect.get("confidence"))
    interval = (f"{describe_change(low, unit)} to {describe_change(high, unit)}" if low is not None
                and high is not None else "no interval")
    positive = _number(effect.get("prob_positive"))
    biased = bool(effect.get("biased"))
    return MethodRow(**base, biased=biased, estimate=_number(effect.get("estimate")), ci_low=low, ci_high=high,
                     confidence=confidence, effect=describe_change(_number(effect.get("estimate")), unit),
                     interval=interval,
                     prob_improvement=None if positive is None else positive if higher_is_better else 1 - positive,
                     verdict="biased" if biased else _verdict(effect, higher_is_better), not_applicable=None,
                     warnings=[true_minus(str(w)) for w in effect.get("warnings") or []])


def _diagnostics(evidence: dict[str, Any]) -> list[Diagnostic]:
    """The diagnostics that matter, in words: covariate imbalance, pre-trends, sensitivity to parallel trends."""
    out = []
    smd = _number(evidence.get("largest_smd_before"))
    if smd is not None:
        on = evidence.get("largest_smd_covariate")
        strength = (f"{STRONG_IMBALANCE:.2f} or more: the groups differ strongly" if abs(smd) >= STRONG_IMBALANCE
                    else f"under {STRONG_IMBALANCE:.2f}, where the groups would differ strongly")
        out.append(Diagnostic(name="largest_smd_before", value=smd, words=(
            f"Covariate balance before adjustment: the largest standardised mean difference is {abs(smd):.2f}"
            + (f", on {on}" if on else "") + f" ({strength}; |SMD| below 0.10 is the usual bar for balance).")))
    if evidence.get("pre_trends"):
        p = _number(evidence.get("pre_trend_p_value"))
        tail = "." if p is None else f" (pre-trend test p-value {'below 0.001' if p < 0.001 else f'{p:.3f}'})."
        words = f"Parallel trends before training: {true_minus(str(evidence['pre_trends']))}{tail}"
        out.append(Diagnostic(name="pre_trend_p_value", value=p, words=words))
    if evidence.get("trend_sensitivity"):
        m = _number(evidence.get("trend_breakdown"))
        out.append(Diagnostic(name="trend_breakdown", value=m, words=(
            f"Sensitivity to parallel trends: {true_minus(str(evidence['trend_sensitivity']))}"
            + (f" (breakdown M̄ = {m:.2f}: the effect's interval reaches zero once the trend gap moves after "
               f"training by {m:.2f} times its largest move before training)." if m is not None else ".")
        )))
    if evidence.get("roi_trend_sensitivity"):
        m = _number(evidence.get("roi_trend_breakdown"))
        out.append(Diagnostic(name="roi_trend_breakdown", value=m, words=(
            f"For the return on investment: {true_minus(str(evidence['roi_trend_sensitivity']))}"
            + (f" (M̄ = {m:.2f})." if m is not None else "."))))
    return out


def methods_of(document: dict[str, Any], *, study_hash: str, version: int) -> Methods:
    """The methods of a stored ``result.json``, worded; ``ran`` false (with the way to run them) when it has none."""
    headline = document.get("headline") or {}
    kpi = str(headline.get("headline_kpi") or "win_rate")
    spec: dict[str, Any] = next((k for k in headline.get("kpis") or [] if k.get("kpi") == kpi), {})
    unit, higher = str(spec.get("unit") or "rate"), bool(spec.get("higher_is_better", True))
    block = document.get("methods")
    common: dict[str, Any] = {"study_hash": study_hash, "version": version, "kpi": kpi,
                              "kpi_label": str(spec.get("label") or kpi), "unit": unit}
    if not block:
        return Methods(**common, ran=False, recommended=None, recommended_label=None, reason=None, rows=[],
                       diagnostics=[], note=ALL_METHODS)
    recommended = block.get("recommended")
    rows = [_row(r, recommended, unit, higher) for r in block.get("results") or []]
    label = next((r.label for r in rows if r.method == recommended), None)
    return Methods(**common, ran=True, recommended=recommended, recommended_label=label,
                   reason=true_minus(str(block.get("reason") or "")) or None, rows=rows,
                   diagnostics=_diagnostics(block.get("evidence") or {}),
                   note=None if recommended else "no method applies to this data: none is recommended")

