"""The team truth of ``validation/drill_coverage.py`` is the org truth's definition, split by team.

The coverage check scores each team's interval against the exact effect over the team's trained
reps. These tests hold that figure to the simulator's own: over every owner it is truth.json's
``att_win_rate`` in each window, and the teams (the managers of User.csv) split the org's deals
so that their deal-weighted mean is the org's. The small-sample widening the check reports as a
what-if is checked against Student's t worked by hand.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import ModuleType

import polars as pl
import pytest

from tests.builders import validation_script
from training_roi.simulate import simulate


@pytest.fixture(scope="module")
def coverage() -> ModuleType:
    """The coverage script."""
    return validation_script("drill_coverage")


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small randomised org: 40 reps over 24 months."""
    folder = tmp_path_factory.mktemp("drill") / "org"
    simulate(folder, reps=40, months=24, seed=5, scenario="randomised")
    return folder


def test_the_truth_over_every_owner_is_truth_json_in_each_window(coverage: ModuleType, org: Path) -> None:
    truth = json.loads((org / "truth.json").read_text())["truth"]["windows"]
    opps = pl.read_parquet(org / "truth_opportunities.parquet")
    for window in (90, 180, 365):
        mine, deals = coverage.window_truth(opps, None, window)
        assert mine == pytest.approx(truth[str(window)]["att_win_rate"], abs=1e-12)
        assert deals == truth[str(window)]["closed"]


def test_the_teams_truths_split_the_orgs(coverage: ModuleType, org: Path) -> None:
    opps = pl.read_parquet(org / "truth_opportunities.parquet")
    users = pl.read_csv(org / "crm" / "User.csv", infer_schema_length=0)
    teams: dict[str, list[str]] = {}
    for user, manager in users.select("Id", "ManagerId").iter_rows():
        teams.setdefault(manager or "", []).append(user)
    org_truth, org_deals = coverage.window_truth(opps, None, 180)
    parts = [coverage.window_truth(opps, members, 180) for members in teams.values()]
    parts = [(t, n) for t, n in parts if n]
    assert len(parts) >= 2  # more than one team has trained reps' deals
    assert sum(n for _, n in parts) == org_deals
    assert sum(t * n for t, n in parts) / org_deals == pytest.approx(org_truth, abs=1e-12)


def test_the_what_if_widening_is_students_t_with_n_minus_one_degrees(coverage: ModuleType) -> None:
    # t(0.975, 9) = 2.262157 and z(0.975) = 1.959964 (tables); √(10 / 9) = 1.054093.
    factor = 2.262157 / 1.959964 * math.sqrt(10 / 9)
    low, high = coverage.widened({"trained": 10, "effect": 0.02, "interval": (-0.03, 0.08)})
    assert (low, high) == pytest.approx((0.02 - 0.05 * factor, 0.02 + 0.06 * factor), abs=1e-6)
