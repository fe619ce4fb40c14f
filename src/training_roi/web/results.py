"""Studies' results in the server: imported from a folder ``report`` wrote, shown whole or without people.

``training-roi serve --results DIR`` imports each folder's ``result.json`` (and the files beside
it: the report, the one-pager, the workbook) into the server's store as a version of its study
hash, unless that very document is stored already — so restarting the server with the same
folders adds nothing. A viewer's role reads aggregates only: :func:`without_people` takes every
person-level part out of a result (the per-learner tables, attribution by learner), and of the
files only the one-pager, which names nobody, is theirs to open.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from training_roi.errors import TrainingRoiError
from training_roi.web.store import Store

__all__ = ["FILES", "PUBLIC_FILES", "import_results", "without_people"]

FILES = {
    "report.html": "text/html; charset=utf-8",
    "summary.html": "text/html; charset=utf-8",
    "summary.pdf": "application/pdf",
    "roi_model.xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "attribution.csv": "text/csv; charset=utf-8",
    "subgroups.csv": "text/csv; charset=utf-8",
    "lesson_map.csv": "text/csv; charset=utf-8",
    "churn_risk.csv": "text/csv; charset=utf-8",
}
"""The files of an answer the server keeps beside its result.json, with their media types."""

PUBLIC_FILES = frozenset({"summary.html", "summary.pdf"})
"""The files a viewer may open: the one-pager names no one."""


def without_people(document: dict[str, Any]) -> dict[str, Any]:
    """A copy of a result without person-level rows: what a viewer's role may read."""
    doc: dict[str, Any] = json.loads(json.dumps(document))
    doc.get("headline", {}).pop("learners", None)
    for window in doc.get("windows", []) or []:
        window.pop("learners", None)
    attribution = doc.get("attribution")
    if isinstance(attribution, dict):
        attribution.pop("by_learner", None)
        attribution.pop("learners", None)
    doc["redacted"] = "person-level rows left out (your role reads aggregates only)"
    return doc


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
