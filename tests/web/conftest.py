"""The server's tests: a state file in a temporary folder, on a clock the test moves, with a cheap hasher."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.web.state import CHEAP, Clock
from training_roi.web.store import Store


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2025, 3, 14, 9, 0, tzinfo=UTC))


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Store:
    return Store(tmp_path / "roi.duckdb.server.sqlite", hasher=CHEAP, clock=clock)
