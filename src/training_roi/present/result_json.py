"""The result document (``result.json``): every figure, interval, method and assumption.

Money is written as decimal strings (exact), statistics as numbers. The document carries its
schema version, the study's hash and settings, and the row counts of the warehouse it was
computed from, so a reader can tell which data and which assumptions produced each number.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from training_roi.evaluation.results import Evaluation

__all__ = ["result_document", "write_result"]


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def result_document(evaluation: Evaluation) -> str:
    """The result as JSON text, keys sorted so the same evaluation gives the same bytes."""
    return json.dumps(evaluation.asdict(), default=_plain, sort_keys=True, indent=2, allow_nan=False) + "\n"


def write_result(evaluation: Evaluation, out_dir: Path) -> Path:
    """Write ``result.json`` into ``out_dir`` (created when missing); return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "result.json"
    path.write_text(result_document(evaluation), encoding="utf-8")
    return path
