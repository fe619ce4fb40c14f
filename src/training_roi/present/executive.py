"""The executive answer: did it pay off, by how much, how sure — and which figure on the page is the answer.

The one-pager and the full report open with the same facts, worded here once: the headline in
words, the figures (the credited ROI, which is the answer, then ROI and net benefit at the
central estimate with their intervals and P(ROI > 0), and the break-even beside what was
measured), the under-power caution, and, for every other ROI the full report shows, one
sentence saying what it answers instead. A reader who meets a credited ROI of −25.5%, a
sensitivity row at 1,136.2% and a 365-day window at 733.0% learns which one answers the
question and why the others differ.
"""

from __future__ import annotations

from dataclasses import dataclass

from training_roi._format import describe_change, money, percent, plural, probability
from training_roi.evaluation.results import Evaluation

__all__ = ["Executive", "Figure", "Relation", "executive", "value_base_text"]


@dataclass(frozen=True)
class Figure:
    """One figure of the answer: what it is, its value, and the line under it."""

    label: str
    value: str
    note: str


@dataclass(frozen=True)
class Relation:
    """Another figure the report shows, and how it relates to the answer."""

    key: str
    """The part of the report it belongs to: ``central``, ``revenue``, ``windows``, ``sensitivity``, …"""
    figure: str
    """What it is, with its value."""
    relation: str
    """What it answers, beside the answer."""


@dataclass(frozen=True)
class Executive:
    """The top of every answer: the headline, the figures, the caution, and how the other figures relate."""

    answer: str
    """Did it pay off, in one sentence."""
    how_sure: tuple[str, ...]
    """The headline's other sentences: revenue by definition, cost and break-even, what would settle it."""
    figures: tuple[Figure, ...]
    the_answer: str
    """Which figure is the answer, and what it counts."""
    caution: str
    """The under-power warning, with what would settle it ("" when the study is not under-powered)."""
    relations: tuple[Relation, ...]

    def relation(self, key: str) -> Relation | None:
        """The relation of the figure of ``key`` to the answer, if the report shows one."""
        return next((r for r in self.relations if r.key == key), None)


def value_base_text(ev: Evaluation) -> str:
    """What the headline KPI's effect multiplies into revenue (the seed formula), in words with its amount."""
    p, noun = ev.primary, ev.study.population.unit
    return {
        "win_rate": f"pipeline value {money(p.value_base)}",
        "avg_won_deal_size": f"{float(p.value_base):,.0f} won deals",
        "revenue_per_rep": f"{float(p.value_base):,.1f} {noun}-months",
    }.get(p.headline_kpi, f"{float(p.value_base):,.1f} {noun}-months × win rate")


def _credited_roi(ev: Evaluation) -> str:
    return percent(ev.primary.roi_pct) if ev.primary.incremental_revenue > 0 else "nothing credited"


def _figures(ev: Evaluation) -> tuple[Figure, ...]:
    """The answer's figures: the credited ROI first, then the central estimate's ROI, net benefit and break-even."""
    p, s = ev.primary, ev.study
    c = p.central
    head = next(k for k in p.kpis if k.kpi == p.headline_kpi)
    payback = f"{float(p.payback_months):,.1f} months" if p.payback_months is not None else "not reached"
    out = [Figure("Credited (conservative) ROI: the answer", _credited_roi(ev),
                  f"credited incremental revenue {money(p.incremental_revenue)}; net benefit {money(p.net_benefit)}; "
                  f"payback {payback}")]
    if c is None:
        return tuple(out)
    iv = c.roi_interval
    odds = ev.payback
    chance = (f"P(ROI > 0) {probability(odds.prob_positive)}" if odds is not None
              else f"P(ROI > 0) {probability(c.prob_positive)}" if c.prob_positive is not None else "")
    if odds is not None and odds.prob_hurdle is not None and odds.hurdle_pct is not None:
        chance += f"; P(ROI > {percent(odds.hurdle_pct)}, the hurdle) {probability(odds.prob_hurdle)}"
    if odds is not None and odds.cost_ranges:
        chance += f" ({plural(len(odds.cost_ranges), 'cost category', 'cost categories')} uncertain)"
    out.append(Figure("ROI at the central estimate", percent(c.roi_pct),
                      (f"interval {percent(iv[0])} to {percent(iv[1])}; " if iv else "") + chance))
    benefit = p.intervals.get("benefit")
    cost = float(ev.costs.total)
    out.append(Figure("Net benefit at the central estimate", money(c.net_benefit),
                      (f"interval {money(benefit[0] - cost)} to {money(benefit[1] - cost)}; " if benefit else "")
                      + f"benefit {money(c.benefit)} − fully loaded cost {money(ev.costs.total)}"))
    needed = ""
    if p.break_even_effect is not None:  # the credited revenue is the seed formula's: effect × value base
        needed = (f"; break-even at {describe_change(p.break_even_effect, head.unit)} in {head.label}"
                  + (f", {describe_change(p.did.estimate, head.unit)} measured" if p.did is not None else ""))
    out.append(Figure("Break-even incremental revenue", money(c.break_even_revenue),
                      f"measured {money(c.incremental_revenue)} at {percent(s.value.gross_margin * 100)} gross margin"
                      + needed))
    return tuple(out)


def _the_answer(ev: Evaluation) -> str:
    p = ev.primary
    chosen = p.revenue.get(p.revenue_definition)
    what = chosen.label if chosen is not None else "incremental revenue"
    if p.incremental_revenue > 0:
        return (f"The answer is the credited ROI, {percent(p.roi_pct)} (net benefit {money(p.net_benefit)}): the "
                f"conservative figure, counting only the {what} the data establish ({money(p.incremental_revenue)}) "
                f"against the fully loaded cost ({money(ev.costs.total)}). Every other ROI in this report answers "
                "another question:")
    return (f"The answer is that no return is established: nothing is credited, so the credited ROI is "
            f"{percent(p.roi_pct)}, the fully loaded cost ({money(ev.costs.total)}) with no benefit counted. Every "
            "other ROI in this report answers another question:")


def _caution(ev: Evaluation, said: str) -> str:
    p = ev.primary
    if not p.power_warning:
        return ""
    settle = f" To settle it: {p.settle}." if p.settle and p.settle not in said else ""
    return f"Under-powered: {p.power_warning.rstrip('.')}.{settle}"


def _relations(ev: Evaluation) -> tuple[Relation, ...]:
    p, c = ev.primary, ev.primary.central
    head = next(k for k in p.kpis if k.kpi == p.headline_kpi)
    chosen = p.revenue.get(p.revenue_definition)
    what = chosen.label if chosen is not None else "incremental revenue"
    out = []
    if c is not None:
        iv = c.roi_interval
        out.append(Relation(
            "central", f"ROI at the central estimate, {percent(c.roi_pct)}"
            + (f" [{percent(iv[0])} to {percent(iv[1])}]" if iv else ""),
            f"the same {what} at its central estimate ({money(c.incremental_revenue)}) instead of the credited "
            f"{money(p.incremental_revenue)}: what the program returned if the estimate is exactly right; its "
            "interval and P(ROI > 0) say how sure."))
    others = [r for k, r in p.revenue.items() if k != p.revenue_definition and r.estimate is not None]
    if others:
        out.append(Relation(
            "revenue", "Other revenue definitions: " + "; ".join(
                f"{r.label} {money(r.estimate or 0)}"
                + (f" [{money(r.interval[0])} to {money(r.interval[1])}]" if r.interval else "") for r in others),
            f"other ways of counting the same effect, shown beside the {what} the credited figures follow; an "
            "interval that excludes zero there does not change the answer."))
    windows = [w for w in ev.windows if w.window_days != p.window_days]
    if windows:
        out.append(Relation(
            "windows", "Other attribution windows: " + "; ".join(
                f"{w.window_days} days, "
                + (f"credited ROI {percent(w.roi_pct)}" if w.incremental_revenue > 0 else "nothing credited")
                + (f" (central {percent(w.central.roi_pct)})" if w.central is not None else "") for w in windows),
            f"the same design and rules over a shorter or longer period after training; the study names "
            f"{p.window_days} days as its primary window, and only that window gives the answer."))
    base = next((r for r in ev.sensitivity if r.lever == "lift" and r.case == "base"), None)
    if base is not None:
        out.append(Relation(
            "sensitivity", f"Sensitivity table, base row ROI {percent(base.roi_pct)}",
            f"every row applies the estimated {head.label} change as if it were right, credited or not, through "
            f"the seed formula (the effect × {value_base_text(ev)}); the base row is that formula's central "
            f"estimate ({money(base.incremental_revenue)}), not the credited answer."))
    if ev.tornado is not None:
        out.append(Relation(
            "drivers", f"What drives the answer and the two-way grids, around {percent(ev.tornado.roi_pct)}",
            "ROI at the central estimate with one or two assumptions moved: they show what matters, and never "
            "replace the answer."))
    twelve = ev.forecast.at(12) if ev.forecast is not None else None
    if twelve is not None and twelve.roi_pct is not None:
        out.append(Relation(
            "forecast", f"Forecast, cumulative ROI {percent(twelve.roi_pct)} 12 months after training",
            "the effect measured month by month since training, carried past the months the data measure, "
            "against the whole cost: where the same program goes with time, at its central estimate with its "
            "interval, not a credited figure."))
    if ev.methods is not None:
        out.append(Relation(
            "methods", "Every method, side by side",
            f"other estimators' effects on {head.label}, each challenged; the credited figures follow "
            f"{p.design_label}" + (f" ({ev.design_reason})" if ev.design_reason else "") + "."))
    if ev.phillips is not None:
        f, extra = ev.phillips.roi.figures, len(ev.phillips.roi.benefits) - 1
        out.append(Relation(
            "phillips", f"Phillips level 5, ROI {percent(f.roi_pct)}",
            "the credited benefit against the same cost: the answer itself, in Phillips' terms." if extra <= 0 else
            f"the credited benefit plus {plural(extra, 'other monetised benefit')} the study declares, against the "
            "same cost."))
    if ev.attribution is not None:
        out.append(Relation(
            "attribution", "Attribution credit by channel",
            "which touches won revenue flowed through, not what training caused; the program's share is held to "
            "the credited incremental revenue."))
    if p.learners:
        out.append(Relation(
            "learners", "Per-learner ROI",
            "the credited incremental revenue shared among learners by their pipeline and the cost shared "
            "equally: the rows add up to the answer, and one learner's figure is noise, not a finding."))
    if p.naive:
        out.append(Relation(
            "naive", "Naive comparisons",
            f"effects on {head.label}, not ROI, biased by design: shown because reviewers ask, never the answer."))
    return tuple(out)


def executive(ev: Evaluation) -> Executive:
    """The executive answer of ``ev``, worded once for the one-pager and the full report."""
    lines = ev.headline()
    caution = _caution(ev, " ".join(lines))
    return Executive(answer=lines[0], how_sure=tuple(lines[1:]), figures=_figures(ev), the_answer=_the_answer(ev),
                     caution=caution, relations=_relations(ev))
