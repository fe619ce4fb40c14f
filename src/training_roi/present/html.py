"""The HTML report: one self-contained file that opens offline (inline CSS and SVG, no scripts).

It shows the headline with its intervals, the trend chart of trained vs comparison reps, every
attribution window, the naive references labelled biased, the cost breakdown, the seed's
per-learner spreadsheet, the assumptions, the data counts and the warnings.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from training_roi.evaluate import RESULT_SCHEMA, Evaluation
from training_roi.present.charts import trend_chart
from training_roi.present.console import money, points

__all__ = ["render_html", "write_html"]


def _pts(value: float | None) -> str:
    return "—" if value is None else points(value)


def _pct(value: object) -> str:
    return f"{float(value):,.1f}%"  # type: ignore[arg-type]


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def render_html(ev: Evaluation) -> str:
    """The report as HTML text."""
    env = Environment(loader=PackageLoader("training_roi.present", "templates"),
                      autoescape=select_autoescape(["html", "j2"]))
    p = ev.primary
    s = ev.study
    assumptions = [
        f"program: activities {', '.join(s.program.activities)}, completion rule {s.program.completion}",
        f"baseline: {s.baseline.months} months before each learner's completion; attribution window "
        f"{s.windows.primary_days} days (sensitivity {', '.join(map(str, s.windows.sensitivity_days))}), "
        f"ramp {s.windows.ramp_days} days",
        f"comparison: {s.comparison.design}; each comparison rep is measured at a completion date drawn "
        "from the trained reps' dates",
        f"conservative threshold: a relative change under {s.threshold.min_relative_change:.1%} is not credited, "
        "nor a lift whose interval includes zero",
        f"gross margin {s.value.gross_margin}; costs from costs.csv for {', '.join(s.costs.programs)} plus "
        "participant time at the study's hourly rate",
        f"uncertainty: cluster bootstrap over reps, {s.isolation.bootstrap_replicates:,} replicates, seed "
        f"{s.isolation.seed}, {s.isolation.confidence:.0%} percentile intervals",
        "the seed's formula (incremental revenue = lift × pipeline value) ignores any change in deal size",
        *(p.did.assumptions if p.did else ()),
    ]
    completions = [r.completion_date for r in p.learners]
    chart = trend_chart(list(ev.trend), completions, title="Win rate by month of deal creation")
    return env.get_template("report.html.j2").render(
        ev=ev, p=p, iv=p.intervals, schema=RESULT_SCHEMA, chart=chart, assumptions=assumptions,
        money=money, pts=_pts, pct=_pct, rate=_rate, Decimal=Decimal,
    )


def write_html(ev: Evaluation, out_dir: Path) -> Path:
    """Write ``report.html`` into ``out_dir``; return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "report.html"
    path.write_text(render_html(ev), encoding="utf-8")
    return path
