"""Studies' results in the server: imported from a folder ``report`` wrote, shown whole or without people.

``training-roi serve --results DIR`` imports each folder's ``result.json`` (and the files beside
it: the report, the one-pager, the workbook) into the server's store as a version of its study
hash, unless that very document is stored already — so restarting the server with the same
folders adds nothing. A viewer's role reads aggregates only: :func:`without_people` takes every
person-level part out of a result (the per-learner tables, attribution by learner, the per-rep rows
of an insight section, :data:`PERSON_ROWS`) and numbers the subgroups that a manager names, and of
the files only those that name nobody are theirs to open.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from training_roi.errors import TrainingRoiError
from training_roi.web.store import Store

__all__ = ["FILES", "PERSON_ROWS", "PUBLIC_FILES", "import_results", "without_people"]

FILES = {
    "report.html": "text/html; charset=utf-8",
    "summary.html": "text/html; charset=utf-8",
    "summary.pdf": "application/pdf",
    "roi_model.xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "attribution.csv": "text/csv; charset=utf-8",
    "subgroups.csv": "text/csv; charset=utf-8",
    "lesson_map.csv": "text/csv; charset=utf-8",
    "next_lessons.csv": "text/csv; charset=utf-8",
    "churn_risk.csv": "text/csv; charset=utf-8",
}
"""The files of an answer the server keeps beside its result.json, with their media types."""

PUBLIC_FILES = frozenset({"summary.html", "summary.pdf", "lesson_map.csv"})
"""The files a viewer may open: the one-pager and the lesson map (one row per lesson) name no one.

``subgroups.csv`` is not among them: its subgroups by manager are named by the manager."""

PERSON_ROWS: dict[str, tuple[str, ...]] = {"next_lesson": ("recommendations",), "churn": ("accounts",)}
"""Each insight section's keys that hold one row per person (or per customer account, with its owner):
left out for a viewer, the rest of the section (its summary) kept. A new section with such rows adds
its keys here."""

MANAGER = "manager"
"""The grouping variable of subgroups whose levels name a person: ``Dana Lee (005…)``."""


def without_people(document: dict[str, Any]) -> dict[str, Any]:
    """A copy of a result without person-level rows: what a viewer's role may read.

    The learners' rows and attribution by learner go, and the rows of :data:`PERSON_ROWS` (a
    section that is absent, or not an object, is left as it is); subgroups named by a manager are
    numbered. ``redacted`` says so.
    """
    doc: dict[str, Any] = json.loads(json.dumps(document))
    doc.get("headline", {}).pop("learners", None)
    for window in doc.get("windows", []) or []:
        window.pop("learners", None)
    attribution = doc.get("attribution")
    if isinstance(attribution, dict):
        attribution.pop("by_learner", None)
        attribution.pop("learners", None)
    for key, rows in PERSON_ROWS.items():
        section = doc.get(key)
        if isinstance(section, dict):
            for name in rows:
                section.pop(name, None)
    subgroups = doc.get("subgroups")
    numbered = _number_managers(subgroups) if isinstance(subgroups, dict) else 0
    doc["redacted"] = ("person-level rows left out" + (", managers' subgroups numbered" if numbered else "")
                       + " (your role reads aggregates only)")
    return doc


def _number_managers(subgroups: dict[str, Any]) -> int:
    """Name each manager's subgroup ``team 3`` instead of ``Dana Lee (005…)``, everywhere the section says it.

    Numbered in the order of the managers' CRM ids, as the drill-down numbers a viewer's teams; a
    level with no manager, ``(missing)``, stays as it is. Returns how many were numbered.
    """
    rows = [r for part in ("effects", "rollout") for r in subgroups.get(part) or []
            if isinstance(r, dict) and r.get("variable") == MANAGER]
    levels = {str(r["level"]) for r in rows if r.get("level") not in (None, "(missing)")}

    def crm_id(level: str) -> str:
        return level.rsplit(" (", 1)[1].rstrip(")") if level.endswith(")") and " (" in level else level

    number = {level: f"team {i}" for i, level in enumerate(sorted(levels, key=lambda v: (crm_id(v), v)), 1)}
    for r in rows:
        r["level"] = number.get(str(r["level"]), r["level"])
    for part in ("warnings", "assumptions"):
        texts = subgroups.get(part)
        if isinstance(texts, list):
            subgroups[part] = [_renamed(str(t), number) for t in texts]
    return len(number)


def _renamed(text: str, number: dict[str, str]) -> str:
    """``text`` with every manager's level in it replaced by its number (the longest first)."""
    for level in sorted(number, key=len, reverse=True):
        text = text.replace(f"{MANAGER} = {level}", f"{MANAGER} = {number[level]}")
    return text


def import_results(store: Store, folders: list[Path]) -> list[tuple[str, int]]:
    """Store each folder's result.json (and its files) as a new version unless it is stored already.

    Returns the (study hash, version) of each folder. Raises TrainingRoiError naming a folder
    without a readable result.json.
    """
    stored = []
    for folder in folders:
        path = folder / "result.json" if folder.is_dir() else folder
        try:
            text = path.read_text(encoding="utf-8")
            doc = json.loads(text)
            study_hash, name = doc["study"]["hash"], doc["study"]["name"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise TrainingRoiError(f"--results {folder}: no readable result.json there ({exc})") from None
        same = next((r for r in store.versions(study_hash) if r.document == text), None)
        if same is not None:
            stored.append((study_hash, same.version))
            continue
        study_yaml = _study_text(path.parent)
        run = store.queue_result(study_hash, name, study_yaml, None)
        for file_name in FILES:
            beside = path.parent / file_name
            if beside.is_file():
                store.save_file(study_hash, run.version, file_name, beside.read_bytes())
        store.update_result(study_hash, run.version, status="done", progress=f"imported from {path}",
                            document=text)
        stored.append((study_hash, run.version))
    return stored


def _study_text(folder: Path) -> str:
    """The study file beside a result, when there is one (the demo writes study.yaml there)."""
    for name in ("study.yaml", "study.yml"):
        if (folder / name).is_file():
            return (folder / name).read_text(encoding="utf-8")
    return ""
