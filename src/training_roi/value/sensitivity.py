"""Sensitivity scenarios: how the ROI moves with the levers the seed names — lift, window, deal size.

The seed asks for "a table of outcomes under pessimistic, base, and optimistic assumptions",
varying the lift, the attribution window and the average deal size. Here the lift's range is
its own confidence interval (not an arbitrary ±1 point) unless the study names the lifts to try
(the seed's "vary lift: 1%, 2%, 3%"), each window uses the lift estimated in that window, and the
deal size moves the value base by ±10 %. Every other scenario applies the *estimated* effect,
credited or not, so the table answers "what if this estimate were right?"; the headline keeps the
conservative credit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from training_roi._format import percent, relative
from training_roi.value.roi import roi

__all__ = [
    "Grid",
    "Ranges",
    "Scenario",
    "Tornado",
    "TornadoBar",
    "WindowLever",
    "effect_by_deal_size",
    "sensitivity",
    "tornado",
    "window_by_margin",
]

_CENT = Decimal("0.01")


@dataclass(frozen=True)
class Scenario:
    """One row of the sensitivity table."""

    lever: str
    """``lift``, ``window`` or ``deal size``."""
    case: str
    """``pessimistic``, ``base`` or ``optimistic``."""
    assumption: str
    effect: float
    value_base: Decimal
    incremental_revenue: Decimal
    benefit: Decimal
    net_benefit: Decimal
    roi_pct: Decimal


@dataclass(frozen=True)
class WindowLever:
    """One attribution window's estimate: its effect and what the effect multiplies."""

    days: int
    effect: float
    value_base: Decimal


def _outcome(revenue: Decimal, margin: Decimal, cost: Decimal) -> tuple[Decimal, Decimal, Decimal]:
    """Benefit (revenue × margin, to the cent), net benefit and ROI in percent to one decimal, ties away from 0."""
    benefit = (revenue * margin).quantize(_CENT, ROUND_HALF_UP)
    f = roi(benefit, cost)
    return benefit, f.net_benefit, f.roi_pct.quantize(Decimal("0.1"), ROUND_HALF_UP)


def _row(lever: str, case: str, assumption: str, effect: float, base: Decimal, cost: Decimal,
         margin: Decimal) -> Scenario:
    revenue = (Decimal(str(effect)) * base).quantize(_CENT, ROUND_HALF_UP)
    return Scenario(lever, case, assumption, effect, base, revenue, *_outcome(revenue, margin, cost))


def sensitivity(
    *,
    effect: float,
    interval: tuple[float, float],
    value_base: Decimal,
    cost: Decimal,
    margin: Decimal = Decimal(1),
    windows: Sequence[WindowLever] = (),
    primary_days: int | None = None,
    deal_size_change: Decimal = Decimal("0.10"),
    describe: Callable[[float], str] = "{:+.4g}".format,
    lift: tuple[float, float] | None = None,
) -> tuple[Scenario, ...]:
    """Pessimistic, base and optimistic outcomes for each lever.

    Parameters
    ----------
    effect, interval
        The estimated effect of the headline KPI and its confidence interval.
    value_base
        What the effect multiplies into incremental revenue (pipeline value for win rate).
    cost, margin
        Fully loaded cost (positive) and gross margin.
    windows
        Each attribution window's own estimate; the shortest is pessimistic, the longest optimistic.
    primary_days
        The primary window, labelled base (default: the middle one).
    deal_size_change
        The relative change of the average deal size that the deal-size lever applies (±).
    describe
        How an effect is written in the ``assumption`` text (e.g. in percentage points for win rate).
    lift
        The pessimistic and optimistic effects the study names, in place of the interval's ends.

    Examples
    --------
    >>> rows = sensitivity(effect=0.02, interval=(0.01, 0.03), value_base=Decimal(500_000),
    ...                    cost=Decimal(16_000))
    >>> [(r.lever, r.case, str(r.incremental_revenue)) for r in rows]  # doctest: +NORMALIZE_WHITESPACE
    [('lift', 'pessimistic', '5000.00'), ('lift', 'base', '10000.00'), ('lift', 'optimistic', '15000.00'),
     ('deal size', 'pessimistic', '9000.00'), ('deal size', 'base', '10000.00'),
     ('deal size', 'optimistic', '11000.00')]
    """
    lo, hi = interval if lift is None else lift
    low_text, high_text = (("at the interval's low end", "at the interval's high end") if lift is None
                           else ("as the study's pessimistic case", "as the study's optimistic case"))
    out = [
        _row("lift", "pessimistic", f"lift {low_text} ({describe(lo)})", lo, value_base, cost, margin),
        _row("lift", "base", f"lift as estimated ({describe(effect)})", effect, value_base, cost, margin),
        _row("lift", "optimistic", f"lift {high_text} ({describe(hi)})", hi, value_base, cost, margin),
    ]
    ordered = sorted(windows, key=lambda w: w.days)
    if ordered:
        base_days = primary_days if primary_days is not None else ordered[len(ordered) // 2].days
        for w in ordered:
            case = "base" if w.days == base_days else ("pessimistic" if w.days < base_days else "optimistic")
            out.append(_row("window", case, f"{w.days}-day window (its own lift, {describe(w.effect)})",
                            w.effect, w.value_base, cost, margin))
    for case, factor in (("pessimistic", 1 - deal_size_change), ("base", Decimal(1)),
                         ("optimistic", 1 + deal_size_change)):
        change = (factor - 1) * 100
        text = "deal size as observed" if factor == 1 else f"deal size {'+' if change > 0 else '−'}{abs(change):.0f}%"
        out.append(_row("deal size", case, text, effect, (value_base * factor).quantize(_CENT, ROUND_HALF_UP), cost,
                        margin))
    return tuple(out)


@dataclass(frozen=True)
class TornadoBar:
    """One assumption moved over its range, everything else as estimated: ROI at each end."""

    assumption: str
    low: str
    """The assumption at the end that gives the lower ROI, in words."""
    high: str
    low_roi_pct: Decimal
    high_roi_pct: Decimal

    @property
    def swing(self) -> Decimal:
        """How far apart the two ends put ROI, in percentage points."""
        return self.high_roi_pct - self.low_roi_pct


@dataclass(frozen=True)
class Ranges:
    """How far each assumption of the tornado is moved (stated with it, never applied to the headline)."""

    deal_size: Decimal = Decimal("0.10")
    """Relative change of the average deal size (±)."""
    margin_points: Decimal = Decimal("0.10")
    """Gross margin ± this many (as a fraction), kept within (0, 1]."""
    cost_line: Decimal = Decimal("0.20")
    """Relative change of each cost category and of shared costs (±)."""
    hourly_rate: Decimal = Decimal("0.20")
    """Relative change of the hourly rate of participant time derived from learning records (±)."""
    ramp_days: int = 30
    """Days the ramp (the days after training before effects count) moves each way, kept within the window."""


@dataclass(frozen=True)
class Tornado:
    """ROI as estimated and what moves it: each assumption over its range, widest swing first."""

    roi_pct: Decimal
    bars: tuple[TornadoBar, ...]
    ranges: Ranges

    def asdict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (ROI in percent, one decimal, as exact strings)."""
        return {"roi_pct": str(self.roi_pct), "ranges": {k: str(v) for k, v in asdict(self.ranges).items()},
                "bars": [{**asdict(b), "swing": str(b.swing)} for b in self.bars]}


def _pct_roi(revenue: Decimal, margin: Decimal, cost: Decimal) -> Decimal:
    return _outcome(revenue, margin, cost)[2]


def _bar(assumption: str, ends: Sequence[tuple[str, Decimal]]) -> TornadoBar:
    (low_text, low), (high_text, high) = min(ends, key=lambda e: e[1]), max(ends, key=lambda e: e[1])
    return TornadoBar(assumption, low_text, high_text, low, high)


def tornado(
    *,
    revenue: Decimal,
    interval: tuple[float, float] | None,
    margin: Decimal,
    costs: dict[str, Decimal],
    participant_time: Decimal = Decimal(0),
    windows: Sequence[tuple[int, Decimal]] = (),
    ramp: tuple[int, int] | None = None,
    ranges: Ranges = Ranges(),
    money: Callable[[Decimal], str] = "{:,.2f}".format,
) -> tuple[Decimal, tuple[TornadoBar, ...]]:
    """ROI as estimated, and each assumption moved over its range alone: bars sorted by swing, widest first.

    Parameters
    ----------
    revenue, interval
        The central estimate of incremental revenue and its confidence interval (the effect's ends).
    margin
        Gross margin.
    costs
        Every cost line that makes the total, by name (categories, shared costs).
    participant_time
        Participant time derived from learning records (minutes × hourly rate), moved by the
        hourly rate's range; 0 when it came from cost lines (then it is one of ``costs``).
    windows
        Each other attribution window's central incremental revenue, by its days.
    ramp
        ``(ramp days, window days)``: the ramp is moved ``ranges.ramp_days`` each way (never below 0,
        never leaving under 30 days of window) and the measured effect credited over the days that
        remain — incremental revenue × (window − moved ramp) / (window − ramp), the trained units'
        deals taken as spread evenly over the window. None leaves the ramp out.
    ranges
        How far the deal size, margin, cost lines, hourly rate and ramp move.
    money
        How an amount is written in a bar's words.

    Examples
    --------
    The seed's worked example (2% lift on $500,000, costs $16,000; its interval 1% to 3%):

    >>> base, bars = tornado(revenue=Decimal(10_000), interval=(5_000, 15_000), margin=Decimal(1),
    ...                      costs={"LMS": Decimal(5_000), "content": Decimal(8_000), "admin": Decimal(1_000)},
    ...                      participant_time=Decimal(2_000))
    >>> str(base), [(b.assumption, str(b.low_roi_pct), str(b.high_roi_pct)) for b in bars[:2]]
    ('-37.5', [('effect', '-68.8', '-6.3'), ('cost: content', '-43.2', '-30.6')])

    A 30-day ramp in a 180-day window, moved to 0 and 60 days: the effect credited over 180 or 120
    days instead of 150 ($12,000 or $8,000 instead of $10,000):

    >>> _, bars = tornado(revenue=Decimal(10_000), interval=None, margin=Decimal(1),
    ...                   costs={"all": Decimal(16_000)}, ramp=(30, 180))
    >>> [(b.low, str(b.low_roi_pct), b.high, str(b.high_roi_pct)) for b in bars if b.assumption == "ramp"]
    [('ramp 60 days (120 days credited)', '-50.0', 'ramp 0 days (180 days credited)', '-25.0')]
    """
    cost = sum(costs.values(), Decimal(0)) + participant_time
    base = _pct_roi(revenue, margin, cost)
    bars: list[TornadoBar] = []
    if interval is not None:
        lo, hi = (Decimal(repr(v)).quantize(_CENT, ROUND_HALF_UP) for v in interval)
        bars.append(_bar("effect", [(f"incremental revenue {money(lo)} (interval's low end)",
                                     _pct_roi(lo, margin, cost)),
                                    (f"incremental revenue {money(hi)} (interval's high end)",
                                     _pct_roi(hi, margin, cost))]))
    if windows:
        ends = [(f"{days}-day window ({money(r)})", _pct_roi(r, margin, cost)) for days, r in windows]
        bars.append(_bar("attribution window", ends))
    if ramp is not None:
        days, window = ramp
        moves = sorted({max(0, days - ranges.ramp_days), days, min(max(window - 30, days), days + ranges.ramp_days)})
        ends = [(f"ramp {moved} days ({window - moved} days credited)",
                 _pct_roi((revenue * (window - moved) / (window - days)).quantize(_CENT, ROUND_HALF_UP), margin, cost))
                for moved in moves]
        if len(ends) > 1:
            bars.append(_bar("ramp", ends))
    d = ranges.deal_size
    bars.append(_bar("deal size", [
        (f"deal size −{d:.0%}", _pct_roi((revenue * (1 - d)).quantize(_CENT, ROUND_HALF_UP), margin, cost)),
        (f"deal size +{d:.0%}", _pct_roi((revenue * (1 + d)).quantize(_CENT, ROUND_HALF_UP), margin, cost))]))
    m_lo = max(margin - ranges.margin_points, Decimal("0.01"))
    m_hi = min(margin + ranges.margin_points, Decimal(1))
    bars.append(_bar("gross margin", [(f"gross margin {m_lo:.0%}", _pct_roi(revenue, m_lo, cost)),
                                      (f"gross margin {m_hi:.0%}", _pct_roi(revenue, m_hi, cost))]))
    c = ranges.cost_line
    for name, amount in costs.items():
        if amount:
            delta = (amount * c).quantize(_CENT, ROUND_HALF_UP)
            bars.append(_bar(f"cost: {name}", [(f"{name} −{c:.0%} ({money(amount - delta)})",
                                                _pct_roi(revenue, margin, cost - delta)),
                                               (f"{name} +{c:.0%} ({money(amount + delta)})",
                                                _pct_roi(revenue, margin, cost + delta))]))
    if participant_time:
        r = ranges.hourly_rate
        delta = (participant_time * r).quantize(_CENT, ROUND_HALF_UP)
        bars.append(_bar("hourly rate", [(f"hourly rate −{r:.0%}", _pct_roi(revenue, margin, cost - delta)),
                                         (f"hourly rate +{r:.0%}", _pct_roi(revenue, margin, cost + delta))]))
    return base, tuple(sorted(bars, key=lambda b: (-b.swing, b.assumption)))


@dataclass(frozen=True)
class Grid:
    """ROI over two assumptions at once: ``roi_pct[i][j]`` at row value ``i`` and column value ``j``.

    ``break_even`` gives, for each row, the column value at which ROI = 0 (None when no value of
    the column's kind reaches it), so the line where the program starts to pay can be drawn.
    """

    rows: str
    columns: str
    row_values: tuple[str, ...]
    column_values: tuple[str, ...]
    roi_pct: tuple[tuple[Decimal, ...], ...]
    break_even: tuple[str | None, ...]

    def asdict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (ROI as exact strings)."""
        return {"rows": self.rows, "columns": self.columns, "row_values": list(self.row_values),
                "column_values": list(self.column_values),
                "roi_pct": [[str(v) for v in row] for row in self.roi_pct], "break_even": list(self.break_even)}


def effect_by_deal_size(*, revenue_at: Sequence[tuple[str, Decimal]], cost: Decimal, margin: Decimal,
                        changes: Sequence[Decimal] = (Decimal("-0.2"), Decimal("-0.1"), Decimal(0), Decimal("0.1"),
                                                      Decimal("0.2"))) -> Grid:
    """ROI for each effect (its incremental revenue as measured, by label) × each deal-size change.

    The break-even of a row is the deal-size change at which that effect pays: cost ÷ (margin ×
    revenue) − 1, when revenue is positive.
    """
    rows, be = [], []
    for _, revenue in revenue_at:
        rows.append(tuple(_pct_roi((revenue * (1 + c)).quantize(_CENT, ROUND_HALF_UP), margin, cost) for c in changes))
        be.append(relative(float(cost / (margin * revenue) - 1)) if revenue > 0 else None)
    return Grid("effect", "deal-size change", tuple(label for label, _ in revenue_at),
                tuple(_signed_whole(c) for c in changes), tuple(rows), tuple(be))


def _signed_whole(change: Decimal) -> str:
    """A relative change as a whole signed percentage with a true minus sign: −20%, +0%, +10%."""
    return ("−" if change < 0 else "+") + f"{abs(change):.0%}"


def window_by_margin(*, windows: Sequence[tuple[int, Decimal]], cost: Decimal,
                     margins: Sequence[Decimal]) -> Grid:
    """ROI for each attribution window (its central incremental revenue) × each gross margin.

    The break-even of a row is the gross margin at which that window's revenue pays: cost ÷ revenue
    (None when it would have to exceed 100%).
    """
    rows, be = [], []
    for _, revenue in windows:
        rows.append(tuple(_pct_roi(revenue, m, cost) for m in margins))
        needed = cost / revenue if revenue > 0 else None
        be.append(percent(needed * 100) if needed is not None and needed <= 1 else None)
    return Grid("attribution window", "gross margin", tuple(f"{days} days" for days, _ in windows),
                tuple(f"{float(m):.0%}" for m in margins), tuple(rows), tuple(be))
