"""Several programs' studies side by side: what each costs and returns, how far its evidence goes, what to do.

One row per program, from its :class:`~training_roi.evaluation.results.Evaluation`: the fully loaded cost,
the credited benefit (Phillips level 5 when the evaluation has it, else the credited incremental
revenue × gross margin), ROI % with its interval, net benefit, benefit–cost ratio, payback, whether
the effect is established, which of Phillips' five levels have data, and a recommendation with its
reason. The totals add the programs' exact money; the portfolio ROI is (Σ benefit − Σ cost) / Σ cost.

Levels reached (each with the counts behind it):

* **L1 reaction** — reaction answers on the 1–5 scale exist;
* **L2 learning** — assessment scores or pass/fail results exist;
* **L3 application** — application answers or CRM behaviour pairs (before/after) exist;
* **L4 impact** — an isolated KPI effect exists (established or not);
* **L5 ROI** — the ROI was computed (monetised benefits against the fully loaded cost).

Recommendation rules (:func:`recommend`), applied in this order, the first that holds wins:

1. **cut** — the effect is established and the whole ROI interval is below 0: the program costs more
   than it returns, even at the optimistic end.
2. **keep** — the effect is established and the whole ROI interval is above 0 (weak learning or
   application is mentioned in the reason, as room to improve, not as a reason to change course).
3. **improve** — the effect is established and positive (credited incremental revenue > 0) but the ROI
   interval reaches 0 or below, and learning or application is weak: pass rate under
   :data:`WEAK_PASS_RATE` or application mean under :data:`WEAK_APPLICATION` of 5. The program works;
   what learners take from it is where the return is lost.
4. **cut** — no effect established although the study had the power to see one (no power warning
   and a known minimum detectable lift), and learners' reaction is low (mean under
   :data:`LOW_REACTION` of 5): nothing to show and nobody asking for it.
5. **evidence needed** — everything else: the study is under-powered, the effect is not
   established, or it is established but the ROI interval includes 0. The reason says which.

Ranking: programs whose effect is established first, then by ROI % (highest first), then by
study name and hash, so the order never depends on the order the evaluations were given in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal, Inexact, localcontext
from typing import Any, Literal

from training_roi._format import percent
from training_roi.evaluation.levels import REVENUE_BENEFIT
from training_roi.evaluation.results import Evaluation
from training_roi.value import roi
from training_roi.value.roi import PRECISION

__all__ = [
    "ACTIONS", "LEVEL_NAMES", "LOW_REACTION", "PORTFOLIO_SCHEMA", "WEAK_APPLICATION", "WEAK_PASS_RATE", "Action",
    "Level", "Portfolio", "ProgramRow", "Recommendation", "Signals", "Totals", "levels_of", "portfolio", "recommend",
]

PORTFOLIO_SCHEMA = "training-roi/portfolio/1"
"""Version of the portfolio document; bumped when a field changes meaning or disappears."""

LOW_REACTION = 3.0
"""A reaction mean under this (of 5, the scale's midpoint) is low."""
WEAK_PASS_RATE = 0.70
"""A pass rate under this is weak learning."""
WEAK_APPLICATION = 3.0
"""An application mean under this (of 5) is weak application."""

Action = Literal["keep", "improve", "cut", "evidence needed"]
ACTIONS: tuple[Action, ...] = ("keep", "improve", "cut", "evidence needed")

LEVEL_NAMES = ("reaction", "learning", "application", "impact", "ROI")
"""Phillips' five levels, 1 to 5."""


@dataclass(frozen=True)
class Signals:
    """The plain values the recommendation reads, so the rules can be checked without an evaluation.

    Attributes
    ----------
    established
        The program's effect is established (credited) in the primary window.
    roi_interval
        ROI % interval (low, high), or None when there is none (or the effect is not established).
    impact_positive
        The credited incremental revenue is positive.
    power_warning
        The study's power warning, None when the estimate reaches the minimum detectable lift.
    powered
        The study could detect a lift: a minimum detectable lift was computed and no power warning given.
    reaction_mean, pass_rate, application_mean
        Level 1 mean (of 5), level 2 pass rate (0–1), level 3 survey mean (of 5); None when no data.
    why
        The effect's verdict in words (the credit's reason), quoted when nothing is established.
    """

    established: bool
    roi_interval: tuple[float, float] | None
    impact_positive: bool
    power_warning: str | None
    powered: bool
    reaction_mean: float | None = None
    pass_rate: float | None = None
    application_mean: float | None = None
    why: str = ""


@dataclass(frozen=True)
class Recommendation:
    """What to do with a program (``action``) and why, in words."""

    action: Action
    reason: str
    rule: int
    """Which rule of the module docstring decided (1–5)."""


def _weak(s: Signals) -> list[str]:
    """The weak links between learning and results, in words."""
    weak = []
    if s.pass_rate is not None and s.pass_rate < WEAK_PASS_RATE:
        weak.append(f"the pass rate {s.pass_rate:.1%} is under {WEAK_PASS_RATE:.1%}")
    if s.application_mean is not None and s.application_mean < WEAK_APPLICATION:
        weak.append(f"application is rated {s.application_mean:.2f} of 5, under {WEAK_APPLICATION:.1f}")
    return weak


def recommend(signals: Signals) -> Recommendation:
    """Keep, improve, cut or gather evidence, by the rules of the module docstring.

    Examples
    --------
    >>> recommend(Signals(established=True, roi_interval=(40.0, 260.0), impact_positive=True,
    ...                   power_warning=None, powered=True)).action
    'keep'
    >>> recommend(Signals(established=False, roi_interval=None, impact_positive=False,
    ...                   power_warning="the study is under-powered", powered=False)).action
    'evidence needed'
    """
    s = signals
    iv = s.roi_interval
    weak = _weak(s)
    if s.established and iv is not None and iv[1] < 0:
        return Recommendation("cut", f"the effect is established but the whole ROI interval ({percent(iv[0])} to "
                                     f"{percent(iv[1])}) is below zero: the program costs more than it returns", 1)
    if s.established and iv is not None and iv[0] > 0:
        room = f"; room to improve: {' and '.join(weak)}" if weak else ""
        return Recommendation("keep", f"the effect is established and the whole ROI interval ({percent(iv[0])} to "
                                      f"{percent(iv[1])}) is above zero{room}", 2)
    if s.established and s.impact_positive and weak:
        roi_doubt = (f"the ROI interval ({percent(iv[0])} to {percent(iv[1])}) is not above zero" if iv is not None
                     else "the ROI has no interval to judge it by")
        return Recommendation("improve", f"the effect is established and positive but {roi_doubt}, and "
                                         f"{' and '.join(weak)}: fix what learners take from the program before "
                                         "judging its return", 3)
    low = s.reaction_mean is not None and s.reaction_mean < LOW_REACTION
    if not s.established and s.powered and low:
        return Recommendation("cut", "no effect is established although the study could have detected one, "
                                     f"and learners rate the program {s.reaction_mean:.2f} of 5 (under "
                                     f"{LOW_REACTION:.1f})", 4)
    if s.power_warning:
        reason = s.power_warning
    elif not s.established:
        reason = f"the effect is not established{f' ({s.why})' if s.why else ''}"
        if not s.powered:
            reason += "; the study's power is unknown"
    elif iv is None:
        reason = "the effect is established but the ROI has no interval to judge it by"
    else:
        reason = (f"the effect is established but the ROI interval ({percent(iv[0])} to {percent(iv[1])}) includes "
                  "zero: a longer window or more learners would settle it")
    return Recommendation("evidence needed", reason, 5)


@dataclass(frozen=True)
class Level:
    """One of Phillips' five levels for one program: whether it has data, and the counts behind it."""

    level: int
    name: str
    reached: bool
    counts: dict[str, int]


@dataclass(frozen=True)
class ProgramRow:
    """One program of the portfolio; money exact, ROI interval as the evaluation's floats."""

    rank: int
    name: str
    study_hash: str
    program: str
    window_days: int
    cost: Decimal
    benefit: Decimal
    benefit_source: str
    """``level 5`` (every monetised benefit) or ``incremental revenue × margin``."""
    incremental_revenue: Decimal
    roi_pct: Decimal
    roi_interval: tuple[float, float] | None
    """From the evaluation's intervals, only when the effect is established (else None)."""
    net_benefit: Decimal
    benefit_cost_ratio: Decimal
    payback_months: Decimal | None
    established: bool
    why: str
    levels: tuple[Level, ...]
    signals: Signals
    recommendation: Recommendation
    gross_margin: float = 1.0
    """The study's gross margin: the ROI is on revenue × this share."""

    @property
    def levels_reached(self) -> tuple[int, ...]:
        """The levels (1–5) that have data."""
        return tuple(lv.level for lv in self.levels if lv.reached)

    def asdict(self) -> dict[str, Any]:
        """A JSON-ready dictionary; money as exact decimal strings."""
        def dec(v: Decimal | None) -> str | None:
            return None if v is None else str(v)

        s = self.signals
        return {
            "rank": self.rank, "name": self.name, "study_hash": self.study_hash, "program": self.program,
            "window_days": self.window_days, "cost": dec(self.cost), "benefit": dec(self.benefit),
            "benefit_source": self.benefit_source, "incremental_revenue": dec(self.incremental_revenue),
            "roi_pct": dec(self.roi_pct), "roi_interval": list(self.roi_interval) if self.roi_interval else None,
            "gross_margin": self.gross_margin,
            "net_benefit": dec(self.net_benefit), "benefit_cost_ratio": dec(self.benefit_cost_ratio),
            "payback_months": dec(self.payback_months), "established": self.established, "why": self.why,
            "levels": [{"level": lv.level, "name": lv.name, "reached": lv.reached, "counts": dict(lv.counts)}
                       for lv in self.levels],
            "levels_reached": list(self.levels_reached),
            "signals": {"reaction_mean": s.reaction_mean, "pass_rate": s.pass_rate,
                        "application_mean": s.application_mean, "powered": s.powered,
                        "power_warning": s.power_warning, "impact_positive": s.impact_positive},
            "recommendation": {"action": self.recommendation.action, "reason": self.recommendation.reason,
                               "rule": self.recommendation.rule},
        }


@dataclass(frozen=True)
class Totals:
    """The portfolio's money added up exactly, and its ROI: (Σ benefit − Σ cost) / Σ cost × 100."""

    programs: int
    established: int
    cost: Decimal
    benefit: Decimal
    net_benefit: Decimal
    roi_pct: Decimal
    benefit_cost_ratio: Decimal
    by_action: dict[str, int] = field(default_factory=dict)

    def asdict(self) -> dict[str, Any]:
        """A JSON-ready dictionary; money as exact decimal strings."""
        return {"programs": self.programs, "established": self.established, "cost": str(self.cost),
                "benefit": str(self.benefit), "net_benefit": str(self.net_benefit), "roi_pct": str(self.roi_pct),
                "benefit_cost_ratio": str(self.benefit_cost_ratio), "by_action": dict(self.by_action)}


@dataclass(frozen=True)
class Portfolio:
    """Several programs' evaluations side by side, ranked, with their totals."""

    rows: tuple[ProgramRow, ...]
    totals: Totals
    currency: str

    def asdict(self) -> dict[str, Any]:
        """The portfolio document (schema :data:`PORTFOLIO_SCHEMA`), rows in rank order."""
        return {"schema": PORTFOLIO_SCHEMA, "currency": self.currency,
                "rules": {"low_reaction": LOW_REACTION, "weak_pass_rate": WEAK_PASS_RATE,
                          "weak_application": WEAK_APPLICATION},
                "programs": [r.asdict() for r in self.rows], "totals": self.totals.asdict()}

    def summary(self) -> str:
        """The portfolio in a few lines: totals, then each program's recommendation."""
        return str(self)

    def __str__(self) -> str:
        t = self.totals
        lines = [f"Portfolio of {t.programs} programs ({t.established} established): cost ${t.cost:,.0f}, "
                 f"benefit ${t.benefit:,.0f}, ROI {percent(float(t.roi_pct))}"]
        lines += [f"{r.rank}. {r.name}: {r.recommendation.action} — ROI {percent(float(r.roi_pct))}; "
                  f"{r.recommendation.reason}" for r in self.rows]
        return "\n".join(lines)


def _level(level: int, reached: bool, counts: dict[str, int]) -> Level:
    return Level(level, LEVEL_NAMES[level - 1], reached, counts)


def levels_of(ev: Evaluation) -> tuple[Level, ...]:
    """Which of the five levels have data, with their counts (the portfolio's and the one-pager's strip)."""
    ph = ev.phillips
    if ph is None:
        isolated = sum(k.did is not None for k in ev.primary.kpis)
        return (_level(1, False, {"answers": 0, "respondents": 0}),
                _level(2, False, {"scores": 0, "passed": 0, "failed": 0}),
                _level(3, False, {"answers": 0, "respondents": 0, "behaviour_pairs": 0}),
                _level(4, isolated > 0, {"effects": isolated}),
                _level(5, True, {"benefits": 1, "intangibles": 0}))
    r, le, a = ph.reaction, ph.learning, ph.application
    pairs = sum(c.n for c in a.behaviour)
    effects = ph.impact.effects
    return (
        _level(1, r.n > 0, {"answers": r.n, "respondents": r.respondents}),
        _level(2, le.scores_n > 0 or le.passed + le.failed > 0,
              {"scores": le.scores_n, "passed": le.passed, "failed": le.failed}),
        _level(3, a.survey.n > 0 or pairs > 0,
              {"answers": a.survey.n, "respondents": a.survey.respondents, "behaviour_pairs": pairs}),
        _level(4, len(effects) > 0,
              {"effects": len(effects), "improved": sum(e.verdict == "improved" for e in effects),
               "worsened": sum(e.verdict == "worsened" for e in effects)}),
        _level(5, True, {"benefits": len(ph.roi.benefits), "intangibles": len(ph.roi.intangibles)}),
    )


def _row(ev: Evaluation) -> ProgramRow:
    """One program's figures, before ranking (rank 0)."""
    p = ev.primary
    established = ev.established
    credit = p.revenue.get(p.revenue_definition)
    why = credit.reason if credit is not None else p.credit.why
    ph = ev.phillips
    interval = p.intervals.get("roi_pct") if established else None
    if ph is not None:
        f = ph.roi.figures
        benefit, roi_pct, net, bcr, payback, source = (f.benefit, f.roi_pct, f.net_benefit, f.benefit_cost_ratio,
                                                       f.payback_months, "level 5")
        others = sum((b.amount for b in ph.roi.benefits if b.name != REVENUE_BENEFIT), Decimal(0))
        if interval is not None and others:
            # The interval carries the credited revenue's uncertainty; the other declared benefits
            # move it by their stated amounts.
            shift = float(others / f.cost * 100)
            interval = (interval[0] + shift, interval[1] + shift)
    else:
        benefit, roi_pct, net, bcr, payback, source = (p.benefit, p.roi_pct, p.net_benefit, p.benefit_cost_ratio,
                                                       p.payback_months, "incremental revenue × margin")
    signals = Signals(
        established=established, roi_interval=interval, impact_positive=established and p.incremental_revenue > 0,
        power_warning=p.power_warning, powered=p.power_warning is None and p.minimum_detectable_lift is not None,
        reaction_mean=ph.reaction.overall_mean if ph else None, pass_rate=ph.learning.pass_rate if ph else None,
        application_mean=ph.application.survey.overall_mean if ph else None, why=why,
    )
    return ProgramRow(
        rank=0, name=ev.study.name, study_hash=ev.study.hash, program=ev.study.program.name,
        window_days=p.window_days, cost=ev.costs.total, benefit=benefit, benefit_source=source,
        incremental_revenue=p.incremental_revenue, roi_pct=roi_pct, roi_interval=interval, net_benefit=net,
        benefit_cost_ratio=bcr, payback_months=payback, established=established, why=why,
        levels=levels_of(ev), signals=signals, recommendation=recommend(signals),
        gross_margin=ev.study.value.gross_margin,
    )


def _order(row: ProgramRow) -> tuple[bool, Decimal, str, str]:
    return (not row.established, -row.roi_pct, row.name, row.study_hash)


def portfolio(evaluations: Sequence[Evaluation]) -> Portfolio:
    """Several programs' evaluations side by side, ranked, with exact totals.

    Parameters
    ----------
    evaluations
        One evaluation per program (:func:`training_roi.evaluation.evaluate`), in any order.

    Raises
    ------
    ValueError
        No evaluation, the same study given twice, or studies in different currencies (their
        money cannot be added).
    """
    if not evaluations:
        raise ValueError("a portfolio needs at least one evaluated study")
    seen: dict[str, str] = {}
    for ev in evaluations:
        if ev.study.hash in seen:
            raise ValueError(f"study {ev.study.name!r} (hash {ev.study.hash}) is given twice")
        seen[ev.study.hash] = ev.study.name
    currencies = sorted({ev.study.currency for ev in evaluations})
    if len(currencies) > 1:
        names = ", ".join(f"{ev.study.name} in {ev.study.currency}" for ev in evaluations)
        raise ValueError(f"the studies' money is in different currencies ({names}): a portfolio adds them up, "
                         "so give studies in one currency")
    rows = sorted((_row(ev) for ev in evaluations), key=_order)
    ranked = tuple(replace(r, rank=i) for i, r in enumerate(rows, start=1))
    with localcontext() as ctx:
        # Sums of money must be exact (a benefit can carry many digits): trap rather than round.
        ctx.prec = 10 * PRECISION
        ctx.traps[Inexact] = True
        cost = sum((r.cost for r in ranked), Decimal(0))
        benefit = sum((r.benefit for r in ranked), Decimal(0))
    figures = roi(benefit, cost)
    totals = Totals(
        programs=len(ranked), established=sum(r.established for r in ranked), cost=cost, benefit=benefit,
        net_benefit=figures.net_benefit, roi_pct=figures.roi_pct, benefit_cost_ratio=figures.benefit_cost_ratio,
        by_action={a: sum(r.recommendation.action == a for r in ranked) for a in ACTIONS},
    )
    return Portfolio(ranked, totals, currencies[0])
