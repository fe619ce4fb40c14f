"""Knowledge gaps and next lessons in words and rows: the report, the console and next_lessons.csv for the LMS.

``next_lessons.csv`` is what an LMS imports as assignments: one row per rep and recommendation, the
rep by email (and CRM id), the lesson by its activity id, with the reason in words — the gap and
how many answers it rests on, the expected change and its interval, whether it is established —
and the strength of the evidence (an association: reps chose their lessons).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from training_roi._format import describe_change, probability, spreadsheet_safe
from training_roi.evaluation import Evaluation
from training_roi.evaluation.next_lesson import NextLessons
from training_roi.present.kpis import kpi_label, kpi_unit

__all__ = ["next_lesson_lines", "next_lesson_rows", "recommendation_rows", "worded_skills", "write_next_lessons"]

_SHOWN = 12
"""Recommendations the report shows (next_lessons.csv holds every one)."""




def _reasons(nl: NextLessons) -> list[str]:
    """Each recommendation's reason, in the order of ``nl.recommendations``."""
    unit = kpi_unit(nl.effects.outcome)
    average = nl.effects.average_gap
    out = []
    for r in nl.recommendations.iter_rows(named=True):
        gap = (f"expected to miss {probability(r['gap'])} of {r['skill']} items from {r['answers']:,} answered "
               f"(average {probability(average[r['skill']])})" if r["answers"] else
               f"no {r['skill']} item answered: the average gap ({probability(r['gap'])})")
        out.append(f"{gap}; a first {r['skill']} lesson is associated with {describe_change(r['expected'], unit)} "
                   f"{kpi_label(nl.effects.outcome)} at this gap ({describe_change(r['low'], unit)} to "
                   f"{describe_change(r['high'], unit)}), {describe_change(r['versus_average'], unit)} over the "
                   f"average lesson ({describe_change(r['versus_low'], unit)} to "
                   f"{describe_change(r['versus_high'], unit)}): "
                   + ("stands out, established" if r["established"] else "standing out not established"))
    return out


def worded_skills(kpi: str, skills: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Skill rows (result.json's ``next_lesson.skills``) worded, largest change at the average gap first."""
    unit = kpi_unit(kpi)
    rows = []
    for r in sorted(skills, key=lambda r: (r.get("at_average") is None, -(r.get("at_average") or 0.0))):
        fitted = r.get("at_average") is not None
        rows.append({
            "skill": r["skill"], "takers": f"{r['takers']:,}", "average_gap": probability(r["average_gap"]),
            "at_average": describe_change(r["at_average"], unit) if fitted else "too few takers",
            "interval": f"{describe_change(r['low'], unit)} to {describe_change(r['high'], unit)}" if fitted else "",
            "per_gap": (f"{describe_change(r['per_gap'], unit)} ({describe_change(r['per_gap_low'], unit)} to "
                        f"{describe_change(r['per_gap_high'], unit)})") if fitted else "",
        })
    return rows


def next_lesson_rows(ev: Evaluation) -> list[dict[str, str]]:
    """The report's skill rows: the change each skill's first lesson goes with, at the average gap and per gap."""
    nl = ev.next_lesson
    return [] if nl is None else worded_skills(nl.effects.outcome, nl.effects.table.to_dicts())


def recommendation_rows(ev: Evaluation) -> list[dict[str, str]]:
    """The report's sample of recommendations: the first ones with the largest expected change."""
    nl = ev.next_lesson
    if nl is None:
        return []
    unit = kpi_unit(nl.effects.outcome)
    table = nl.recommendations.with_columns(reason=pl.Series(_reasons(nl), dtype=pl.String))
    top = table.filter(pl.col("rank") == 1).sort(["expected", "unit"], descending=[True, False]).head(_SHOWN)
    return [{"rep": r["name"] or r["unit"], "skill": r["skill"], "lesson": r["lesson"] or "",
             "expected": describe_change(r["expected"], unit), "reason": r["reason"]}
            for r in top.iter_rows(named=True)]


def next_lesson_lines(ev: Evaluation) -> list[str]:
    """The console's lines: how many reps got recommendations, the skills that help most, the caveat."""
    nl = ev.next_lesson
    if nl is None:
        return [ev.next_lesson_basis[:1].upper() + ev.next_lesson_basis[1:]] if ev.next_lesson_basis else []
    unit = kpi_unit(nl.effects.outcome)
    best = nl.effects.table.drop_nulls("at_average").sort("at_average", descending=True).head(3)
    reps = nl.recommendations["unit"].n_unique()
    helps = ", ".join(f"{r['skill']} {describe_change(r['at_average'], unit)}" for r in best.iter_rows(named=True))
    first = nl.recommendations.filter(pl.col("rank") == 1)
    standing = first.filter(pl.col("established"))
    stands = (f"{standing.height:,} of {first.height:,} reps' first lessons stand out against the average lesson"
              + (f" ({', '.join(standing['skill'].value_counts(sort=True)['skill'].head(3).to_list())})"
                 if standing.height else ": none can be told from the average lesson at this size, so "
                                         "the ranking is a weak hint"))
    return [f"Next lessons ({nl.evidence}): {reps:,} reps get up to {nl.per_unit} lessons each, by their gaps "
            f"({nl.answered:,} of {nl.units:,} answered the assessment); {stands}. The first lessons associated "
            f"with the largest change in {kpi_label(nl.effects.outcome)} at the average gap, the lean of keen reps "
            f"included: {helps}. In next_lessons.csv.",
            f"  {nl.caveat[:1].upper() + nl.caveat[1:]}."]


def write_next_lessons(ev: Evaluation, out_dir: Path) -> Path | None:
    """Write ``next_lessons.csv`` (every recommendation, for the LMS) into ``out_dir``; None when not asked."""
    nl = ev.next_lesson
    if nl is None:
        return None
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "next_lessons.csv"
    table = nl.recommendations.select(
        learner_email=pl.col("email"), learner_name=pl.col("name"), crm_user_id=pl.col("unit"), rank=pl.col("rank"),
        activity_id=pl.col("lesson"), skill=pl.col("skill"), gap=pl.col("gap").round(4),
        items_answered=pl.col("answers"), expected_change=pl.col("expected").round(6),
        low=pl.col("low").round(6), high=pl.col("high").round(6),
        versus_average=pl.col("versus_average").round(6), versus_low=pl.col("versus_low").round(6),
        versus_high=pl.col("versus_high").round(6), established=pl.col("established"),
    ).with_columns(kpi=pl.lit(nl.effects.outcome), evidence=pl.lit(nl.evidence),
                   reason=pl.Series(_reasons(nl), dtype=pl.String))
    spreadsheet_safe(table).write_csv(path)
    return path
