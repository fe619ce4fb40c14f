"""Phillips' five levels as rows a reader can scan: the level, its figures, and where they came from."""

from __future__ import annotations

from training_roi._format import money, percent
from training_roi.value import PairedChange, PhillipsEvaluation

__all__ = ["level_rows"]


def _signed(value: float) -> str:
    """A change with three significant digits and a true minus sign."""
    return f"{value:+,.3g}".replace("-", "−")


def _paired(c: PairedChange) -> str:
    if c.mean_change is None:
        return f"{c.name}: no pairs"
    around = f" ({_signed(c.interval[0])} to {_signed(c.interval[1])})" if c.interval else ""
    before = f"{c.mean_before:,.3g} → {c.mean_after:,.3g}, " if c.mean_before is not None and c.mean_after is not None \
        else ""
    return f"{c.name}: {before}change {_signed(c.mean_change)}{around} over {c.n:,} pairs"


def level_rows(ph: PhillipsEvaluation) -> list[tuple[str, str, str]]:
    """(level, figures, source) for each of the five levels."""
    r, le, a, f = ph.reaction, ph.learning, ph.application, ph.roi.figures

    def mean(value: float | None) -> str:
        return "no answers" if value is None else f"mean {value:.2f} of 5"

    learning = [f"score mean {le.score_mean:.1f} over {le.scores_n:,} learners' last attempts"
                if le.score_mean is not None else "no scores",
                f"pass rate {le.pass_rate:.1%} ({le.passed:,} passed, {le.failed:,} failed)"
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
        ("1 reaction", f"{mean(r.overall_mean)}; {r.respondents:,} respondents",
         f"{r.source_rows:,} reaction answers in surveys.csv"),
        ("2 learning", "; ".join(learning), f"{le.source_rows:,} learning records of the program"),
        ("3 application", "; ".join([f"{mean(a.survey.overall_mean)}; {a.survey.respondents:,} respondents",
                                     *(_paired(c) for c in a.behaviour)]),
         f"{a.survey.source_rows:,} application answers" + (f", {a.behaviour_rows:,} CRM behaviour rows"
                                                            if a.behaviour_rows else "")),
        ("4 impact", impact, "the isolated KPI effects above"),
        ("5 ROI", roi + intangible, f"{len(ph.roi.benefits)} monetised benefit(s), fully loaded cost"),
    ]
