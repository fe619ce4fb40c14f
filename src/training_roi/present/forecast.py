"""The forecast in words and rows, for the one-pager, the report and the console.

One source for the sentences every output shows about the months after training: cumulative ROI
and net benefit at 6, 12 and 18 months with their intervals and P(ROI > 0), the payback month,
the scale-up to the units not yet trained, and what the forecast rests on.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from training_roi._format import money, percent, plural
from training_roi.value.forecast import HORIZONS, Forecast

__all__ = ["forecast_rows", "forecast_table"]


def _roi(value: Decimal | None, low: Decimal | None, high: Decimal | None) -> str:
    if value is None:
        return "ROI not defined (no cost)"
    return f"ROI {percent(value)}" + (f" [{percent(low)} to {percent(high)}]" if low is not None and high is not None
                                      else "")


def forecast_rows(f: Forecast | None, basis: str, unit: str) -> tuple[tuple[str, str], ...]:
    """(label, sentence) rows: each horizon, payback, the scale-up, and the basis; one row saying why when none."""
    if f is None:
        return (("forecast", basis[:1].upper() + basis[1:] if basis else "not computed"),)
    level = f"{f.confidence:.0%}"
    rows = []
    for h in HORIZONS:
        m = f.at(h)
        if m is None:
            continue
        chance = f", P(ROI > 0) {m.prob_positive:.1%}" if m.prob_positive is not None else ""
        rows.append((f"{h} months", f"{_roi(m.roi_pct, m.roi_low, m.roi_high)}{chance}; net benefit "
                                    f"{money(m.net_benefit)}; incremental revenue {money(m.revenue)} "
                                    f"[{money(m.revenue_low)} to {money(m.revenue_high)}]"
                                    + (" (extrapolated)" if not m.measured else "")))
    horizon = f.months[-1].month
    pay = (f"month {f.payback_month} at the central estimate" if f.payback_month is not None
           else f"not within {horizon} months at the central estimate")
    sure = (f"; month {f.sure_payback_month} at the low end of the {level} interval" if f.sure_payback_month
            else f"; not within {horizon} months at the low end of the {level} interval")
    rows.append(("payback", pay + sure))
    # The scale-up at 12 months, or at the one horizon the forecast reaches when it is shorter.
    shown = next((s for s in f.scale_up if s.month == 12), f.scale_up[-1] if f.scale_up else None)
    if shown is not None:
        chance = f", P(ROI > 0) {shown.prob_positive:.1%}" if shown.prob_positive is not None else ""
        rows.append(("scale-up", f"training the {plural(shown.units, unit)} not yet trained, at "
                                 f"{money(shown.cost_per_unit)} each: {shown.month}-month net benefit "
                                 f"{money(shown.net_benefit)}, {_roi(shown.roi_pct, shown.roi_low, shown.roi_high)}"
                                 f"{chance}"))
    rows.append(("rests on", basis + "; " + "; ".join(f.assumptions)))
    return tuple(rows)


def forecast_table(f: Forecast | None) -> list[dict[str, Any]]:
    """Every month of the forecast as display rows (cumulative from the month of training)."""
    if f is None:
        return []
    return [{"month": m.month, "measured": "measured" if m.measured else "extrapolated",
             "revenue": money(m.revenue), "interval": f"{money(m.revenue_low)} to {money(m.revenue_high)}",
             "benefit": money(m.benefit), "cost": money(m.cost), "net_benefit": money(m.net_benefit),
             "roi": percent(m.roi_pct) if m.roi_pct is not None else "—",
             "roi_interval": (f"{percent(m.roi_low)} to {percent(m.roi_high)}" if m.roi_low is not None
                              and m.roi_high is not None else "—"),
             "prob_positive": f"{m.prob_positive:.1%}" if m.prob_positive is not None else "—"} for m in f.months]
