"""docs/result.md describes every field that a report writes."""

from __future__ import annotations

import json
import re
from pathlib import Path

from training_roi.evaluation import RESULT_SCHEMA, evaluate
from training_roi.ingest.folder import ingest_folder
from training_roi.linking import link
from training_roi.present.result_json import result_document
from training_roi.simulate import simulate
from training_roi.study import Study

DOC = Path(__file__).resolve().parents[1] / "docs" / "result.md"


def _fields(value: object, out: set[str]) -> set[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            out.add(key)
            # Each method's own figures (described in its docstring), and maps keyed by data values
            # (a score's count, a role's count, a monetisation rule's inputs).
            if key not in ("diagnostics", "details", "distribution", "by_role", "inputs"):
                _fields(item, out)
    elif isinstance(value, list):
        for item in value:
            _fields(item, out)
    return out


def test_every_field_of_a_report_is_documented(tmp_path: Path, con):
    simulate(tmp_path / "data", reps=60, months=12, seed=3)
    ingest_folder(tmp_path / "data", con)
    link(con)
    course = json.loads((tmp_path / "data" / "truth.json").read_text())["program"]["course_activity_id"]
    study = Study.model_validate({"name": "doc", "program": {"name": "Sales Excellence", "activities": [course]},
                                  "costs": {"participant_time": {"hourly_rate": 60}},
                                  "isolation": {"bootstrap_replicates": 100, "method": "all"}})
    doc = json.loads(result_document(evaluate(con, study)))
    doc.pop("study")  # the study's settings are the study file's own keys (documented by init-study)
    text = DOC.read_text(encoding="utf-8")
    assert RESULT_SCHEMA in text
    documented = set(re.findall(r"`([a-z][a-z0-9_]*)`", text))
    missing = sorted(_fields(doc, set()) - documented - {"study"})
    # Row counts are named after the warehouse tables (docs/warehouse.md), not listed here.
    missing = [m for m in missing if m not in doc["data"]]
    assert not missing, f"fields missing from docs/result.md: {missing}"
