"""Phillips' five levels as rows a reader can scan: the level, its figures, and where they came from.

A behaviour KPI that is a rate (tasks completed on time, required fields filled) reads as a
percentage and its change in percentage points, as every rate in the product does; other
measures keep three significant digits. :func:`level_strip` gives the five levels as one strip —
each level, whether it has data, and its first figure — for the one-pager.
"""

from __future__ import annotations

from dataclasses import dataclass

from training_roi._format import describe, describe_change, money, percent, plural, probability
from training_roi.evaluation.portfolio import levels_of
from training_roi.evaluation.results import Evaluation
from training_roi.measure import CATALOGUE
from training_roi.value import PairedChange, PhillipsEvaluation

_UNITS = {spec.label: spec.unit for spec in CATALOGUE.values()}

__all__ = ["LevelCell", "level_rows", "level_strip"]


def _signed(value: float) -> str:
    """A change with three significant digits and a true minus sign."""
    return f"{value:+,.3g}".replace("-", "−")


def _paired(c: PairedChange) -> str:
    """A before/after change: a rate in percentages and points, money in dollars, anything else to 3 digits."""
    if c.mean_change is None:
        return f"{c.name}: no pairs"
    unit = _UNITS.get(c.name, "")
    worded = unit in ("rate", "money")

    def level(v: float) -> str:
        return describe(v, unit) if worded else f"{v:,.3g}"

    def change(v: float) -> str:
        return describe_change(v, unit) if worded else _signed(v)

    around = f" ({change(c.interval[0])} to {change(c.interval[1])})" if c.interval else ""
    before = f"{level(c.mean_before)} → {level(c.mean_after)}, " if c.mean_before is not None \
        and c.mean_after is not None else ""
    return f"{c.name}: {before}change {change(c.mean_change)}{around} over {plural(c.n, 'pair')}"


def level_rows(ph: PhillipsEvaluation) -> list[tuple[str, str, str]]:
    """(level, figures, source) for each of the five levels."""
    r, le, a, f = ph.reaction, ph.learning, ph.application, ph.roi.figures

    def mean(value: float | None) -> str:
        return "no answers" if value is None else f"mean {value:.2f} of 5"

    learning = [f"score mean {le.score_mean:.1f} ({plural(le.scores_n, 'learner')}, the last attempt of each)"
                if le.score_mean is not None else "no scores",
                f"pass rate {probability(le.pass_rate)} ({le.passed:,} passed, {le.failed:,} failed)"
                if le.pass_rate is not None else "no pass/fail results"]
    if le.pre_post is not None:
        learning.append(f"pre/post gain {_paired(le.pre_post)}")
    improved = [e.name for e in ph.impact.effects if e.verdict == "improved"]
    worsened = [e.name for e in ph.impact.effects if e.verdict == "worsened"]
    impact = (f"{len(improved)} of {len(ph.impact.effects)} KPIs improved"
              + (f" ({', '.join(improved)})" if improved else "")
              + (f"; worsened: {', '.join(worsened)}" if worsened else ""))
    payback = "none" if f.payback_months is None else f"{float(f.payback_months):,.1f} months"
    roi = (f"ROI {percent(f.roi_pct)}; benefit {money(f.benefit)} against cost {money(f.cost)}; benefit-cost "
           f"ratio {float(f.benefit_cost_ratio):.2f}; payback {payback}")
    intangible = ("; intangible: " + ", ".join(ph.roi.intangibles)) if ph.roi.intangibles else ""
    return [
        ("1 reaction", f"{mean(r.overall_mean)}; {plural(r.respondents, 'respondent')}",
         f"{r.source_rows:,} reaction answers in surveys.csv"),
        ("2 learning", "; ".join(learning), f"{le.source_rows:,} learning records of the program"),
        ("3 application", "; ".join([f"{mean(a.survey.overall_mean)}; {plural(a.survey.respondents, 'respondent')}",
                                     *(_paired(c) for c in a.behaviour)]),
         f"{a.survey.source_rows:,} application answers" + (f", {a.behaviour_rows:,} CRM behaviour rows"
                                                            if a.behaviour_rows else "")),
        ("4 impact", impact, "the isolated KPI effects above"),
        ("5 ROI", roi + intangible, f"{plural(len(ph.roi.benefits), 'monetised benefit')}, fully loaded cost"),
    ]


@dataclass(frozen=True)
class LevelCell:
    """One level of the strip: ``"1 reaction"``, whether it has data, and its first figure (or "no data")."""

    level: str
    reached: bool
    figure: str


def _strip_figures(ph: PhillipsEvaluation) -> tuple[str, ...]:
    """Each level's one figure, short enough for a fifth of a page."""
    r, le, a, f = ph.reaction, ph.learning, ph.application, ph.roi.figures
    reaction = f"mean {r.overall_mean:.2f} of 5, {plural(r.respondents, 'respondent')}" \
        if r.overall_mean is not None else "no answers"
    if le.pass_rate is not None:
        learning = f"pass rate {probability(le.pass_rate)} of {le.passed + le.failed:,}"
    elif le.score_mean is not None:
        learning = f"score mean {le.score_mean:.1f}, {plural(le.scores_n, 'learner')}"
    else:
        learning = "no scores"
    pairs = sum(c.n for c in a.behaviour)
    application = "; ".join([*([f"mean {a.survey.overall_mean:.2f} of 5"] if a.survey.overall_mean is not None else []),
                             *([f"{plural(pairs, 'behaviour pair')}"] if pairs else [])]) or "no answers"
    improved = sum(e.verdict == "improved" for e in ph.impact.effects)
    worsened = sum(e.verdict == "worsened" for e in ph.impact.effects)
    impact = f"{improved} of {plural(len(ph.impact.effects), 'KPI')} improved" + (f", {worsened} worsened"
                                                                                  if worsened else "")
    return reaction, learning, application, impact, f"ROI {percent(f.roi_pct)}"


def level_strip(ev: Evaluation) -> tuple[LevelCell, ...]:
    """The five levels side by side: reached (it has data, as the portfolio counts it) and its figure."""
    if ev.phillips is None:
        return ()
    rows = level_rows(ev.phillips)
    return tuple(LevelCell(level, lv.reached, figure if lv.reached else "no data")
                 for (level, _, _), lv, figure in zip(rows, levels_of(ev), _strip_figures(ev.phillips), strict=True))
