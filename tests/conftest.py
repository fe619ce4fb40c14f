"""Shared fixtures: the real third-party files, and small warehouses built from written files."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.builders import shared_dir
from training_roi.warehouse.connection import connect


@pytest.fixture(scope="session")
def realdata() -> Path:
    path = shared_dir() / "realdata"
    if not path.is_dir():
        pytest.fail(f"real data not found at {path}: set TRAINING_ROI_SHARED to the shared folder")
    return path


@pytest.fixture
def con(tmp_path: Path):
    """An empty DuckDB warehouse in a temporary folder."""
    backend = connect(tmp_path / "wh.duckdb")
    yield backend
    backend.disconnect()

