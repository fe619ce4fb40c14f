"""The insight a study's result carries, as the server shows it: who benefits, which lessons matter, what next, churn.

A study that asks for them (``insight.subgroups``, ``insight.lesson_map``, ``insight.next_lesson``,
``insight.churn``) carries sections of its ``result.json`` beyond the headline (docs/result.md,
"Subgroups", "Lesson map", "Next lessons" and "Churn"). The server shows them on a page of their
own, read from the result and never recomputed, worded as the report words them (the presenters of
:mod:`training_roi.present.subgroups`, :mod:`training_roi.present.lesson_map` and
:mod:`training_roi.present.next_lesson`; churn's figures worded here from the section), so the page
and the report say the same figures alike.

Every section is labelled by the strength of its evidence — ``randomised``, ``quasi-experimental``
or ``association`` — with what that label lets a reader conclude and the section's caveat, and
links the CSV file kept beside the result when the reader's role may open it.

:data:`KINDS` lists the sections the page knows, in the order it shows them. A new section (the
next lessons to recommend, churn risk) is one :class:`Kind`: its ``result.json`` key, its title,
a function that words its figures and the template that lays them out; rows about people are
taken out of a viewer's document before it is worded (:data:`training_roi.web.results.PERSON_ROWS`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from training_roi._format import describe_change, money, points, probability
from training_roi.present.churn import check_rows, group_line, reliability_rows
from training_roi.present.kpis import kpi_label, kpi_unit
from training_roi.present.lesson_map import SHOWN as LESSONS_SHOWN
from training_roi.present.lesson_map import lesson_summary, worded_lessons
from training_roi.present.next_lesson import worded_skills
from training_roi.present.subgroups import SHOWN as ROLLOUT_SHOWN
from training_roi.present.subgroups import differ_lines, effect_rows, worded_rollout

__all__ = ["EVIDENCE", "KINDS", "Insight", "Kind", "insight_kinds", "insights_of"]

EVIDENCE = {
    "randomised": "the program was given to units drawn at random, so the units compared differ by chance alone",
    "quasi-experimental": "trained and untrained units are compared after adjusting for what the data shows of "
                          "them; a difference the data does not show could remain",
    "association": "the figures go together, but nothing was assigned: they do not show that one causes the other",
}
"""What each strength of evidence lets a reader conclude, in words."""

UNTRAINED = ("the effect on the not yet trained is what training would do for a subgroup's untrained units if they "
             "respond as trained units like them did; if the keenest enrolled first, it is optimistic")
"""The caveat of every figure about the units not yet trained (the breakdown's and the roll-out's)."""


@dataclass(frozen=True)
class Shown:
    """What a kind of insight makes of its section: the evidence's label, the caveat, and the figures worded."""

    evidence: str
    caveat: str
    figures: dict[str, Any]


@dataclass(frozen=True)
class Kind:
    """A section of ``result.json`` the insight page shows, and how."""

    key: str
    """The section's key in ``result.json``."""
    title: str
    template: str
    """The template (under ``web/templates``) that lays out its ``figures``."""
    files: tuple[str, ...]
    """The CSV files kept beside the result that hold its rows."""
    word: Callable[[dict[str, Any]], Shown]
    """The section (with figures: no ``basis``) worded."""


@dataclass(frozen=True)
class Insight:
    """One section of a result as the page shows it: worded, or why the study that asked for it has none."""

    kind: Kind
    shown: Shown | None
    """The section worded; None when it has no figures (``basis`` says why)."""
    basis: str
    files: tuple[str, ...]
    """Its files the reader may open; ``withheld``, those kept that the reader's role may not."""
    withheld: tuple[str, ...]

    @property
    def evidence_means(self) -> str:
        """What the section's strength of evidence lets a reader conclude, in words."""
        return EVIDENCE.get(self.shown.evidence, "") if self.shown else ""




def _natural(text: str) -> tuple[tuple[int, int | str], ...]:
    """``text``'s sort key with its numbers as numbers: a viewer's ``team 2`` before ``team 10``."""
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", text) if part)


def _subgroups(section: dict[str, Any]) -> Shown:
    """The effect by subgroup and where to train next, worded: estimated rows, the others by name, the roll-out.

    The roll-out keeps the subgroups with an estimate (those without are named once, among the
    subgroups not estimated), in the result's order: best lower end of ROI first.
    """
    kpi, confidence = str(section.get("kpi") or "win_rate"), float(section.get("confidence") or 0.95)
    rows = effect_rows(kpi, section.get("effects") or [])
    rollout = [r for r in section.get("rollout") or [] if r.get("effect") is not None]  # the rest: not estimated
    overall = section.get("overall") or {}
    together = None
    if overall.get("att_estimate") is not None:
        unit = kpi_unit(kpi)
        together = {side: (describe_change(overall[f"{side}_estimate"], unit),
                           f"{describe_change(overall[f'{side}_low'], unit)} to "
                           f"{describe_change(overall[f'{side}_high'], unit)}") for side in ("att", "atu")}
    return Shown(evidence=str(section.get("evidence") or ""), caveat=UNTRAINED, figures={
        "kpi": kpi_label(kpi), "method": str(section.get("method") or ""), "level": f"{confidence:.0%}",
        "differ": differ_lines(section.get("differ") or {}, confidence), "overall": together,
        "rows": [r for r in rows if r["estimated"]],
        "not_estimated": [f"{r['variable']} = {r['level']}" for r in sorted(
            (r for r in rows if not r["estimated"]), key=lambda r: (r["variable"], _natural(str(r["level"]))))],
        "rollout": worded_rollout(kpi, rollout[:ROLLOUT_SHOWN]), "rollout_total": len(rollout),
        "rollout_basis": str(section.get("rollout_basis") or ""),
        "assumptions": list(section.get("assumptions") or []), "warnings": list(section.get("warnings") or []),
    })


def _lesson_map(section: dict[str, Any]) -> Shown:
    """The lesson map, worded: every flagged lesson and the others with the largest lead, up to the report's count."""
    kpi = str(section.get("kpi") or "win_rate")
    lessons = section.get("lessons") or []
    shown = [r for i, r in enumerate(lessons) if r.get("matters") or i < LESSONS_SHOWN]
    caveat, evidence = str(section.get("caveat") or ""), str(section.get("evidence") or "association")
    matters = [str(m) for m in section.get("matters") or []]
    return Shown(evidence=evidence, caveat=caveat, figures={
        "kpi": kpi_label(kpi), "summary": lesson_summary(evidence, matters, len(lessons),
                                                           float(section.get("fdr") or 0.1), caveat)[0],
        "fdr": f"{float(section.get('fdr') or 0.1):.0%}", "level": f"{float(section.get('confidence') or 0.95):.0%}",
        "units": int(section.get("units") or 0), "takers": int(section.get("takers") or 0),
        "rows": worded_lessons(kpi, shown), "total": len(lessons), "warnings": list(section.get("warnings") or []),
    })


def _next_lesson(section: dict[str, Any]) -> Shown:
    """Knowledge gaps and next lessons, worded: each skill's line, and the recommendations the reader may read."""
    kpi = str(section.get("kpi") or "win_rate")
    unit = kpi_unit(kpi)
    recs = [r for r in section.get("recommendations") or [] if r.get("rank") == 1]
    recs.sort(key=lambda r: (-(r.get("expected") or 0.0), str(r.get("unit"))))
    return Shown(evidence=str(section.get("evidence") or "association"), caveat=str(section.get("caveat") or ""),
                 figures={
        "kpi": kpi_label(kpi), "level": f"{float(section.get('confidence') or 0.95):.0%}",
        "units": int(section.get("units") or 0), "answered": int(section.get("answered") or 0),
        "per_unit": int(section.get("per_unit") or 0), "skills": worded_skills(kpi, section.get("skills") or []),
        "people": "recommendations" in section, "total": len(section.get("recommendations") or []),
        "rows": [{"rep": r.get("name") or r.get("unit"), "skill": r["skill"], "lesson": r.get("lesson") or "",
                  "expected": describe_change(r["expected"], unit),
                  "versus": describe_change(r["versus_average"], unit),
                  "established": "stands out" if r.get("established") else "not established"}
                 for r in recs[:RECOMMENDATIONS_SHOWN]],
        "warnings": list(section.get("warnings") or []),
    })


def _churn(section: dict[str, Any]) -> Shown:
    """Customer-side risk, worded: the models' out-of-time check, reliability, trained against untrained, accounts."""
    check = section.get("check") or {}
    chosen = str(section.get("scoring_model") or "")
    vs = section.get("trained_vs_untrained") or {}
    groups = [group_line(g) for g in vs.get("groups") or []]
    difference = (f"{points(vs['difference'])} ({points(vs.get('difference_low') or 0.0)} to "
                  f"{points(vs.get('difference_high') or 0.0)})" if vs.get("difference") is not None else "")
    accounts = section.get("accounts") or []
    return Shown(evidence=str(section.get("evidence") or "association"),
                 caveat="a forecast from what the CRM held when each renewal opened; each account's drivers are a "
                        "local ablation (its probability with one feature set to the median), not causes",
                 figures={
        "checks": check_rows(check, chosen), "train": int(check.get("train_renewals") or 0),
        "test": int(check.get("test_renewals") or 0), "reliability": reliability_rows(check, chosen),
        "groups": groups, "difference": difference, "people": "accounts" in section, "total": len(accounts),
        "rows": [{"account": r.get("account_name") or r.get("account_id"), "due": r.get("due") or "",
                  "amount": money(r["amount"]) if r.get("amount") is not None else "—",
                  "probability": probability(r.get("probability")), "drivers": r.get("drivers") or "",
                  "trained": "yes" if r.get("trained") else "no"} for r in accounts[:ACCOUNTS_SHOWN]],
        "warnings": list(section.get("warnings") or []),
    })


ACCOUNTS_SHOWN = 20
"""Open renewals the page shows, most at risk first (churn_risk.csv holds every one)."""

RECOMMENDATIONS_SHOWN = 15
"""Reps' first recommendations the page shows (next_lessons.csv holds every one)."""

KINDS: tuple[Kind, ...] = (
    Kind("subgroups", "Who benefits: the effect by subgroup, and where to train next", "insight_subgroups.html",
         ("subgroups.csv",), _subgroups),
    Kind("lesson_map", "Which lessons matter: the lesson map", "insight_lesson_map.html", ("lesson_map.csv",),
         _lesson_map),
    Kind("next_lesson", "Knowledge gaps and the next lesson", "insight_next_lesson.html", ("next_lessons.csv",),
         _next_lesson),
    Kind("churn", "Customer-side risk: which accounts may churn", "insight_churn.html", ("churn_risk.csv",), _churn),
)
"""Every section the insight page knows, in the order it shows them."""


def insight_kinds(document: dict[str, Any]) -> list[Kind]:
    """The kinds of insight ``document`` carries (with figures or a reason), without wording them: for a link."""
    return [kind for kind in KINDS if isinstance(document.get(kind.key), dict)]


def insights_of(document: dict[str, Any], *, kept: Collection[str], may_open: Callable[[str], bool]) -> list[Insight]:
    """The insight sections ``document`` carries, worded; empty when the study asked for none.

    ``document`` is the result as the reader may read it (a viewer's without people); ``kept`` names
    the files stored beside it and ``may_open`` says whether the reader may open one.
    """
    out = []
    for kind in insight_kinds(document):
        section = document[kind.key]
        basis = str(section.get("basis") or "")
        files = [f for f in kind.files if f in kept]
        out.append(Insight(kind=kind, shown=None if basis else kind.word(section), basis=basis,
                           files=tuple(f for f in files if may_open(f)),
                           withheld=tuple(f for f in files if not may_open(f))))
    return out
