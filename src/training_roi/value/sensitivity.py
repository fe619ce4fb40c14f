"""Sensitivity scenarios: how the ROI moves with the levers the seed names — lift, window, deal size.

The seed asks for "a table of outcomes under pessimistic, base, and optimistic assumptions",
varying the lift, the attribution window and the average deal size. Here the lift's range is
its own confidence interval (not an arbitrary ±1 point), each window uses the lift estimated in
that window, and the deal size moves the value base by ±10 %. Every scenario applies the
*estimated* effect, credited or not, so the table answers "what if this estimate were right?";
the headline keeps the conservative credit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from training_roi.value.roi import roi

__all__ = ["Scenario", "WindowLever", "sensitivity"]

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


def _row(lever: str, case: str, assumption: str, effect: float, base: Decimal, cost: Decimal,
         margin: Decimal) -> Scenario:
    revenue = (Decimal(str(effect)) * base).quantize(_CENT, ROUND_HALF_UP)
    benefit = (revenue * margin).quantize(_CENT, ROUND_HALF_UP)
    f = roi(benefit, cost)
    return Scenario(lever, case, assumption, effect, base, revenue, benefit, f.net_benefit,
                    f.roi_pct.quantize(Decimal("0.1"), ROUND_HALF_UP))


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

    Examples
    --------
    >>> rows = sensitivity(effect=0.02, interval=(0.01, 0.03), value_base=Decimal(500_000),
    ...                    cost=Decimal(16_000))
    >>> [(r.lever, r.case, str(r.incremental_revenue)) for r in rows]  # doctest: +NORMALIZE_WHITESPACE
    [('lift', 'pessimistic', '5000.00'), ('lift', 'base', '10000.00'), ('lift', 'optimistic', '15000.00'),
     ('deal size', 'pessimistic', '9000.00'), ('deal size', 'base', '10000.00'),
     ('deal size', 'optimistic', '11000.00')]
    """
    lo, hi = interval
    out = [
        _row("lift", "pessimistic", f"lift at the interval's low end ({describe(lo)})", lo, value_base, cost,
             margin),
        _row("lift", "base", f"lift as estimated ({describe(effect)})", effect, value_base, cost, margin),
        _row("lift", "optimistic", f"lift at the interval's high end ({describe(hi)})", hi, value_base, cost,
             margin),
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
        out.append(_row("deal size", case, text, effect, (value_base * factor).quantize(_CENT), cost, margin))
    return tuple(out)
