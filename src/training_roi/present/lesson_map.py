"""The lesson map in words and rows: which lessons stand out, for every output and lesson_map.csv.

Every output labels the map an association and says why (reps choose their lessons), and names the
false-discovery rate the flagged lessons are held to.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from training_roi._format import describe_change
from training_roi.evaluation import Evaluation
from training_roi.present.kpis import kpi_unit
from training_roi.present.spreadsheet import write_safe_csv

__all__ = ["SHOWN", "lesson_lines", "lesson_rows", "lesson_summary", "worded_lessons", "write_lesson_map"]

SHOWN = 15
"""Lessons the report and the server show (lesson_map.csv holds every lesson)."""



def worded_lessons(kpi: str, lessons: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Lesson rows, worded: ``lessons`` as ``result.json``'s ``lesson_map.lessons`` holds them (largest lead first)."""
    unit = kpi_unit(kpi)
    rows = []
    for r in lessons:
        fitted = r["coefficient"] is not None
        rows.append({
            "lesson": r["lesson"], "takers": f"{r['takers']:,}", "flagged": bool(r["matters"]),
            "coefficient": describe_change(r["coefficient"], unit) if fitted else "too few takers",
            "interval": f"{describe_change(r['low'], unit)} to {describe_change(r['high'], unit)}" if fitted else "",
            "versus": describe_change(r["versus_average"], unit) if fitted else "",
            "q": f"{r['q_value']:.3g}" if fitted else "",
            "matters": "stands out" if r["matters"] else "not established",
        })
    return rows


def lesson_rows(ev: Evaluation) -> list[dict[str, Any]]:
    """The report's rows: the lessons with the largest lead over the average lesson, formatted."""
    m = ev.lesson_map
    return [] if m is None else worded_lessons(m.outcome, m.table.head(SHOWN).iter_rows(named=True))


def lesson_summary(evidence: str, matters: Sequence[str], lessons: int, fdr: float, caveat: str) -> list[str]:
    """How many lessons stand out, which, and the caveat: the map's lines in every output."""
    head = (f"Lesson map ({evidence}): {len(matters)} of {lessons} lessons stand out against the average "
            f"lesson at a {fdr:.0%} false-discovery rate")
    return [head + (": " + ", ".join(matters[:5]) + (", …" if len(matters) > 5 else "") if matters else "."),
            f"  {caveat[:1].upper() + caveat[1:]}."]


def lesson_lines(ev: Evaluation) -> list[str]:
    """The console's lines: how many lessons stand out, which, and the caveat; or why there is no map."""
    m = ev.lesson_map
    if m is None:
        return [ev.lesson_map_basis[:1].upper() + ev.lesson_map_basis[1:]] if ev.lesson_map_basis else []
    return lesson_summary(m.evidence, m.matters, m.table.height, m.fdr, m.caveat)


def write_lesson_map(ev: Evaluation, out_dir: Path) -> Path | None:
    """Write ``lesson_map.csv`` (every lesson's figures) into ``out_dir``; None when the study asked for no map."""
    m = ev.lesson_map
    if m is None:
        return None
    table = m.table.with_columns(pl.lit(m.outcome).alias("kpi"), pl.lit(m.evidence).alias("evidence"))
    return write_safe_csv(table, out_dir, "lesson_map.csv")
