"""The lesson map in words and rows: which lessons stand out, for the report, the console and lesson_map.csv.

Every output labels the map an association and says why (reps choose their lessons), and names the
false-discovery rate the flagged lessons are held to.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from training_roi._format import describe_change
from training_roi.evaluation import Evaluation
from training_roi.measure import KPIS
from training_roi.present.spreadsheet import write_safe_csv

__all__ = ["lesson_lines", "lesson_rows", "write_lesson_map"]

_SHOWN = 15
"""Lessons the report shows (lesson_map.csv holds every lesson)."""


def _unit(kpi: str) -> str:
    return KPIS[kpi].unit if kpi in KPIS else "rate"


def lesson_rows(ev: Evaluation) -> list[dict[str, str]]:
    """The report's rows: the lessons with the largest lead over the average lesson, formatted."""
    m = ev.lesson_map
    if m is None:
        return []
    unit = _unit(m.outcome)
    rows = []
    for r in m.table.head(_SHOWN).iter_rows(named=True):
        fitted = r["coefficient"] is not None
        rows.append({
            "lesson": r["lesson"], "takers": f"{r['takers']:,}",
            "coefficient": describe_change(r["coefficient"], unit) if fitted else "too few takers",
            "interval": f"{describe_change(r['low'], unit)} to {describe_change(r['high'], unit)}" if fitted else "",
            "versus": describe_change(r["versus_average"], unit) if fitted else "",
            "q": f"{r['q_value']:.3g}" if fitted else "",
            "matters": "stands out" if r["matters"] else "not established",
        })
    return rows


def lesson_lines(ev: Evaluation) -> list[str]:
    """The console's lines: how many lessons stand out, which, and the caveat; or why there is no map."""
    m = ev.lesson_map
    if m is None:
        return [ev.lesson_map_basis[:1].upper() + ev.lesson_map_basis[1:]] if ev.lesson_map_basis else []
    flagged = m.matters
    head = (f"Lesson map ({m.evidence}): {len(flagged)} of {m.table.height} lessons stand out against the average "
            f"lesson at a {m.fdr:.0%} false-discovery rate")
    return [head + (": " + ", ".join(flagged[:5]) + (", …" if len(flagged) > 5 else "") if flagged else "."),
            f"  {m.caveat[:1].upper() + m.caveat[1:]}."]


def write_lesson_map(ev: Evaluation, out_dir: Path) -> Path | None:
    """Write ``lesson_map.csv`` (every lesson's figures) into ``out_dir``; None when the study asked for no map."""
    m = ev.lesson_map
    if m is None:
        return None
    table = m.table.with_columns(pl.lit(m.outcome).alias("kpi"), pl.lit(m.evidence).alias("evidence"))
    return write_safe_csv(table, out_dir, "lesson_map.csv")
