"""A simulated org shared by the evaluation tests: simulated, ingested and linked once per run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training_roi import connect, ingest_folder, link
from training_roi.simulate import simulate


@pytest.fixture(scope="session")
def simulated_org(tmp_path_factory: pytest.TempPathFactory):
    """A 300-rep, 36-month org whose program rolls out in months 15–24: (warehouse, course id, its files)."""
    root = tmp_path_factory.mktemp("simulated_org")
    simulate(root / "data", reps=300, months=36, seed=11)
    con = connect(root / "wh.duckdb")
    ingest_folder(root / "data", con)
    link(con)
    course = json.loads((root / "data" / "truth.json").read_text())["program"]["course_activity_id"]
    yield con, course, Path(root / "data")
    con.disconnect()
