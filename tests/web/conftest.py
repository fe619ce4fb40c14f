"""The server's tests: a state file on a clock the test moves, with a cheap hasher; a small reported org.

The reported org (a warehouse and the folder ``report`` wrote) is built once per session and
shared by the tests that serve it through a browser or the API's OpenAPI document; the same study
answered by every method (``report --method all``) is built once too, for the tests that need it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.builders import ingest_and_report, simulated_with_trained_rep_named
from tests.web.state import CHEAP, Clock
from training_roi.web.store import Store


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2025, 3, 14, 9, 0, tzinfo=UTC))


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Store:
    return Store(tmp_path / "roi.duckdb.server.sqlite", hasher=CHEAP, clock=clock)


@dataclass(frozen=True)
class ReportedOrg:
    """A small simulated org ingested into a warehouse and reported: what the server serves and must show."""

    db: Path
    out: Path
    result: dict[str, Any]

    def people(self) -> set[str]:
        """Every learner's name, email and CRM id in the full result: what a viewer must never see."""
        found = set()
        for row in self.result["headline"]["learners"]:
            found.update(v for v in (row["name"], row["learner"], row["unit_id"]) if v)
        return found


LEARNER = "Zelda Quimby"
"""The name the reported org's first trained rep is given: one the pages must show an analyst, never a viewer."""


@pytest.fixture(scope="session")
def reported_org(tmp_path_factory: pytest.TempPathFactory) -> ReportedOrg:
    """40 reps over 14 months (randomised training), ingested and reported once for the session's server tests."""
    work = tmp_path_factory.mktemp("reported")
    truth = simulated_with_trained_rep_named(work / "data", LEARNER)
    out = ingest_and_report(work / "data", work, truth, "Sales Excellence pilot")
    return ReportedOrg(work / "roi.duckdb", out, json.loads((out / "result.json").read_text(encoding="utf-8")))


@pytest.fixture(scope="session")
def reported_every_method(reported_org: ReportedOrg) -> ReportedOrg:
    """The reported org's study answered again by every method (``report --method all``), once for the session.

    Its result.json has the ``methods`` block (every estimator, its challenges, the recommendation)
    that the plain study's lacks; the warehouse is the reported org's own.
    """
    from typer.testing import CliRunner

    from training_roi.cli import app

    out = reported_org.out.parent / "out-every-method"
    answered = CliRunner().invoke(app, ["report", str(reported_org.out.parent / "study.yaml"), "--db",
                                        str(reported_org.db), "--out", str(out), "--method", "all"])
    assert answered.exit_code == 0, answered.stderr
    return ReportedOrg(reported_org.db, out, json.loads((out / "result.json").read_text(encoding="utf-8")))
