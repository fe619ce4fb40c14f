"""Charts, as Vega-Altair specifications rendered to inline SVG.

SVG keeps the HTML report one self-contained file that opens offline (no JavaScript, no CDN),
and the same SVG can go into a PDF or a spreadsheet later.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import altair as alt
import vl_convert as vlc

from training_roi._format import chart_money
from training_roi.evaluation.stages import kept
from training_roi.value import Tornado
from training_roi.value.forecast import Forecast

__all__ = ["effect_spec", "forecast_chart", "monthly_chart", "png_of", "svg_of", "tornado_chart", "trend_chart",
           "trend_spec"]


_AXIS = {"rate": ".0%", "days": ",.0f"}
_TIP = {"rate": ".1%", "days": ",.1f"}
_NUMBER = ",.1f"


@lru_cache(maxsize=64)
def svg_of(spec: str) -> str:
    """A Vega-Lite specification (JSON text) drawn as SVG; the same specification is drawn once.

    Vega lays a chart out in 0.1 to 0.3 s; the one-pager's HTML and PDF show the same three charts,
    and a study re-run with a changed cost draws most of its charts as before: drawings are kept
    with the warehouse's measurements when a store is open (:mod:`training_roi.evaluation.stages`).
    """
    return kept(_drawn, None, spec)


def _drawn(con: None, spec: str) -> str:
    """Vega's SVG of ``spec`` (``con``: no warehouse is read)."""
    svg: str = vlc.vegalite_to_svg(spec)
    return svg


def png_of(spec: str, scale: float = 1) -> bytes:
    """A Vega-Lite specification as PNG: its SVG (:func:`svg_of`) rasterised, the same bytes as Vega's PNG."""
    return kept(_rasterised, None, svg_of(spec), scale)


def _rasterised(con: None, svg: str, scale: float) -> bytes:
    """``svg`` as PNG at ``scale`` (``con``: no warehouse is read)."""
    png: bytes = vlc.svg_to_png(svg, scale=scale)
    return png


def _axis(unit: str) -> str:
    return chart_money() if unit == "money" else _AXIS.get(unit, _NUMBER)


def _tip(unit: str) -> str:
    return chart_money() if unit == "money" else _TIP.get(unit, _NUMBER)


def trend_chart(trend: list[dict[str, Any]], completions: list[str], *, title: str, kpi: str = "win_rate",
                label: str = "win rate", unit: str = "rate", x_title: str = "month the deals were created",
                size: tuple[int, int] = (640, 180)) -> str:
    """Monthly ``kpi`` of trained vs comparison reps, with the training period shaded, as SVG."""
    spec = trend_spec(trend, completions, title=title, kpi=kpi, label=label, unit=unit, x_title=x_title, size=size)
    return svg_of(spec) if spec else ""


def trend_spec(trend: list[dict[str, Any]], completions: list[str], *, title: str, kpi: str = "win_rate",
               label: str = "win rate", unit: str = "rate", x_title: str = "month the deals were created",
               size: tuple[int, int] = (640, 180)) -> str:
    """The Vega-Lite specification of :func:`trend_chart` ("" without data).

    Rows marked ``provisional`` (a month still maturing) carry a star above their point, and the
    title says so.
    """
    rows = [r for r in trend if r.get(kpi) is not None]
    if not rows:
        return ""
    data = alt.InlineData(values=rows)
    lines = alt.Chart(data).mark_line(point=True).encode(
        x=alt.X("month:T", title=x_title),
        y=alt.Y(f"{kpi}:Q", title=label, axis=alt.Axis(format=_axis(unit))),
        color=alt.Color("group:N", title=None, scale=alt.Scale(domain=["trained", "comparison"],
                                                             range=["#1f77b4", "#9a9a9a"])),
        tooltip=["month:T", "group:N", alt.Tooltip(f"{kpi}:Q", format=_tip(unit)), "closed:Q", "reps:Q"],
    )
    layers: list[alt.Chart] = [lines]
    if any(r.get("provisional") for r in rows):
        title += " (* provisional: still maturing)"
        layers.append(alt.Chart(alt.InlineData(values=[r for r in rows if r.get("provisional")])).mark_text(
            text="*", dy=-10, fontSize=14).encode(x="month:T", y=f"{kpi}:Q", color=alt.Color("group:N", legend=None)))
    if completions:
        span = alt.InlineData(values=[{"start": min(completions), "end": max(completions)}])
        layers.insert(0, alt.Chart(span).mark_rect(opacity=0.12, color="#2ca02c").encode(
            x="start:T", x2="end:T"))
        layers.append(alt.Chart(span).mark_text(align="left", dx=4, dy=-70, color="#2ca02c").encode(
            x="start:T", text=alt.value("training completed")))
    chart = alt.layer(*layers).properties(width=size[0], height=size[1], title=title)
    spec: str = chart.to_json()
    return spec


def tornado_chart(tornado: Tornado, *, size: tuple[int, int] = (640, 200), spec: bool = False, bars: int = 6) -> str:
    """The widest ``bars`` of a tornado: ROI at each end of every assumption, around ROI as estimated; SVG or spec."""
    rows = [{"assumption": b.assumption, "low": float(b.low_roi_pct), "high": float(b.high_roi_pct)}
            for b in tornado.bars[:bars]]
    if not rows:
        return ""
    order = [b.assumption for b in tornado.bars[:bars]]
    span = alt.Chart(alt.InlineData(values=rows)).mark_bar(color="#1f77b4", opacity=0.75).encode(
        y=alt.Y("assumption:N", sort=order, title=None),
        x=alt.X("low:Q", title="ROI (%)"), x2="high:Q",
        tooltip=["assumption:N", alt.Tooltip("low:Q", format=".1f"), alt.Tooltip("high:Q", format=".1f")],
    )
    base = alt.Chart(alt.InlineData(values=[{"roi": float(tornado.roi_pct)}])).mark_rule(color="#222").encode(
        x="roi:Q")
    chart = alt.layer(span, base).properties(width=size[0], height=size[1],
                                             title="What moves ROI most (each assumption alone)")
    text: str = chart.to_json()
    return text if spec else svg_of(text)


def monthly_chart(rows: list[dict[str, Any]], marks: list[str], *, title: str, label: str, unit: str) -> str:
    """One KPI by month (``rows``: month, value), with a vertical rule at each date of ``marks``, as SVG.

    The marks are the go-live dates of a CRM roll-out: before and after read at a glance.
    """
    if not rows:
        return ""
    line = alt.Chart(alt.InlineData(values=rows)).mark_line(point=True).encode(
        x=alt.X("month:T", title="month"),
        y=alt.Y("value:Q", title=label, axis=alt.Axis(format=_axis(unit))),
        tooltip=["month:T", alt.Tooltip("value:Q", format=_tip(unit))],
    )
    layers: list[alt.Chart] = [line]
    if marks:
        rules = alt.InlineData(values=[{"day": d} for d in marks])
        layers.append(alt.Chart(rules).mark_rule(color="#2ca02c", strokeDash=[4, 3]).encode(x="day:T"))
        layers.append(alt.Chart(alt.InlineData(values=[{"day": min(marks)}])).mark_text(
            align="left", dx=4, dy=-70, color="#2ca02c").encode(x="day:T", text=alt.value("go-live")))
    chart = alt.layer(*layers).properties(width=640, height=160, title=title)
    svg = svg_of(chart.to_json())
    return svg


def forecast_chart(f: Forecast, *, size: tuple[int, int] = (640, 180)) -> str:
    """Cumulative net benefit month by month after training, with its interval and the break-even line, as SVG.

    Measured months are drawn solid, extrapolated ones dashed, so the reader sees where the data end.
    """
    margin = f.margin
    rows = [{"month": m.month, "net": float(m.net_benefit),
             "low": float(m.revenue_low) * margin - float(m.cost),
             "high": float(m.revenue_high) * margin - float(m.cost),
             "part": "measured" if m.measured else "extrapolated"} for m in f.months]
    # The first extrapolated month also starts where the measured line ends, so the two lines join.
    joined = rows + [{**r, "part": "extrapolated"} for r in rows if r["month"] == f.measured_months]
    x = alt.X("month:Q", title="months after training", axis=alt.Axis(tickMinStep=1))
    band = alt.Chart(alt.InlineData(values=rows)).mark_area(opacity=0.18, color="#1f77b4").encode(
        x=x, y=alt.Y("low:Q", title="cumulative net benefit", axis=alt.Axis(format=chart_money())), y2="high:Q")
    line = alt.Chart(alt.InlineData(values=joined)).mark_line(point=True, color="#1f77b4").encode(
        x=x, y="net:Q", strokeDash=alt.StrokeDash("part:N", title=None, scale=alt.Scale(
            domain=["measured", "extrapolated"], range=[[1, 0], [5, 4]])),
        tooltip=["month:Q", "part:N", alt.Tooltip("net:Q", format=chart_money()),
                 alt.Tooltip("low:Q", format=chart_money()), alt.Tooltip("high:Q", format=chart_money())])
    zero = alt.Chart(alt.InlineData(values=[{"y": 0}])).mark_rule(color="#222").encode(y="y:Q")
    chart = alt.layer(band, zero, line).properties(
        width=size[0], height=size[1],
        title=f"Cumulative net benefit after training ({f.confidence:.0%} interval shaded; dashed: extrapolated)")
    svg = svg_of(chart.to_json())
    return svg


def effect_spec(rows: list[dict[str, Any]], *, label: str, unit: str, size: tuple[int, int] = (200, 120)) -> str:
    """The headline effect with its interval in each attribution window, around zero (Vega-Lite; "" without rows).

    ``rows``: ``window`` (its label), ``estimate``, ``low``, ``high`` and ``primary`` (the window of the answer,
    drawn darker). The reader sees at once whether each interval excludes zero.
    """
    if not rows:
        return ""
    fmt = _axis(unit) if unit != "rate" else "+.1%"
    data = alt.InlineData(values=rows)
    y = alt.Y("window:N", title=None, sort=[r["window"] for r in rows])
    colour = alt.condition("datum.primary", alt.value("#1f77b4"), alt.value("#9a9a9a"))
    whisker = alt.Chart(data).mark_rule(strokeWidth=2).encode(
        y=y, x=alt.X("low:Q", title=f"effect on {label} ({'percentage points' if unit == 'rate' else unit})",
                     axis=alt.Axis(format=fmt)), x2="high:Q", color=colour)
    dot = alt.Chart(data).mark_point(filled=True, size=60).encode(
        y=y, x="estimate:Q", color=colour,
        tooltip=["window:N", alt.Tooltip("estimate:Q", format=fmt), alt.Tooltip("low:Q", format=fmt),
                 alt.Tooltip("high:Q", format=fmt)])
    zero = alt.Chart(alt.InlineData(values=[{"x": 0}])).mark_rule(color="#222", strokeDash=[3, 3]).encode(x="x:Q")
    chart = alt.layer(zero, whisker, dot).properties(width=size[0], height=size[1],
                                                     title="The effect, with its interval, in each window")
    text: str = chart.to_json()
    return text


def timeline_chart(rep: dict[str, Any], *, size: tuple[int, int] = (720, 150)) -> str:
    """A rep's training events and deals on one time axis, as SVG: what they learned beside what they sold.

    ``rep`` holds ``events`` (occurred_at, verb, activity_name) and ``deals`` (created_at, close_date,
    is_closed, is_won, amount, name) and ``trained_on``; each deal is a bar from creation to close
    (to its expected close while open), coloured by outcome, and the training date a rule.
    """
    deals = [{"deal": d["name"] or d["opportunity_id"], "from": str(d["created_at"])[:10],
              "to": str(d["close_date"] or d["created_at"])[:10],
              "outcome": "won" if d["is_won"] else ("lost" if d["is_closed"] else "open"),
              "amount": None if d["amount"] is None else float(d["amount"])} for d in rep["deals"]]
    events = [{"day": str(e["occurred_at"])[:10], "what": f"{e['verb']}: {e['activity_name'] or e['activity_id']}"}
              for e in rep["events"]]
    if not deals and not events:
        return ""
    layers: list[alt.Chart] = []
    if deals:
        layers.append(alt.Chart(alt.InlineData(values=deals)).mark_bar(height=4).encode(
            x=alt.X("from:T", title=None), x2="to:T", y=alt.Y("deal:N", axis=None, sort=None),
            color=alt.Color("outcome:N", scale=alt.Scale(domain=["won", "lost", "open"],
                                                          range=["#1b6b3a", "#a12a2a", "#999999"])),
            tooltip=["deal:N", "from:T", "to:T", "outcome:N", alt.Tooltip("amount:Q", format="$,.0f")]))
    if events:
        layers.append(alt.Chart(alt.InlineData(values=events)).mark_tick(color="#1f77b4", thickness=2).encode(
            x="day:T", tooltip=["day:T", "what:N"]))
    layers.append(alt.Chart(alt.InlineData(values=[{"day": rep["trained_on"]}])).mark_rule(
        color="#2ca02c", strokeDash=[4, 3]).encode(x="day:T"))
    chart = alt.layer(*layers).properties(width=size[0], height=size[1],
                                          title="training events (ticks) and deals (bars), training date dashed")
    svg = svg_of(chart.to_json())
    return svg
