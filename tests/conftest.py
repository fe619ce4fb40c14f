"""Common fixtures: the real third-party files, and small warehouses built from written files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

from tests.builders import DATA_DIR
from training_roi.warehouse.connection import connect

# Property tests explore new examples on every developer run; CI replays a fixed set, so its
# verdict depends on the code, not on the draw (a failure found locally is kept in .hypothesis/).
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="session")
def realdata() -> Path:
    """The real third-party files in ``tests/data`` (their sources and licences: its README)."""
    return DATA_DIR


@pytest.fixture
def con(tmp_path: Path):
    """An empty DuckDB warehouse in a temporary folder."""
    backend = connect(tmp_path / "wh.duckdb")
    yield backend
    backend.disconnect()

