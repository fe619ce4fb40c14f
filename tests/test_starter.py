"""A starter study runs as written: simulate → ingest → init-study → report on every simulated world.

The program proposed is checked against the simulator's own truth (the program it trained, its
course, its unit), not against what the starter wrote; a warehouse without LMS data is refused
in one sentence.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from training_roi.cli import app
from training_roi.ingest.folder import ingest_folder
from training_roi.linking import link
from training_roi.simulate import SCENARIOS, simulate
from training_roi.study import load_study
from training_roi.warehouse.connection import connect

runner = CliRunner()

#: The default world runs in the fast suite; every other one is slow (each simulates, ingests and reports).
_FAST = {"selection"}


def _warehouse(tmp_path: Path, scenario: str, *, drop_lms: bool = False) -> tuple[Path, dict[str, object]]:
    data = tmp_path / "data"
    simulate(data, reps=60, months=24, seed=11, scenario=scenario)
    truth = json.loads((data / "truth.json").read_text(encoding="utf-8"))
    if drop_lms:
        for f in sorted((data / "lms").rglob("*"), reverse=True):
            f.unlink() if f.is_file() else f.rmdir()
        (data / "lms").rmdir()
    db = tmp_path / "w.duckdb"
    con = connect(db)
    ingest_folder(data, con)
    link(con)
    con.disconnect()
    return db, truth


@pytest.mark.parametrize("scenario", [
    pytest.param(s, marks=() if s in _FAST else pytest.mark.slow) for s in SCENARIOS])
def test_the_starter_proposes_the_trained_program_and_runs_as_written(tmp_path: Path, scenario: str):
    db, truth = _warehouse(tmp_path, scenario)
    program = truth["program"]
    assert isinstance(program, dict)
    study_file = tmp_path / "study.yaml"
    made = runner.invoke(app, ["init-study", str(study_file), "--db", str(db)])
    assert made.exit_code == 0, made.output
    study = load_study(study_file)
    assert study.program.name == program["name"]
    assert program["course_activity_id"] in study.program.activities
    assert study.population.unit == truth.get("unit", "rep")
    assert study.costs.programs == [program["name"]]
    text = study_file.read_text(encoding="utf-8")
    # Every course the LMS holds is an option beside the proposal, with its evidence.
    assert "CMP-COC-2024" in text or scenario == "customer"
    assert "learners" in text and "cost lines $" in text

    out = tmp_path / "out"
    answered = runner.invoke(app, ["report", str(study_file), "--db", str(db), "--out", str(out)])
    assert answered.exit_code == 0, answered.output
    result = json.loads((out / "result.json").read_text(encoding="utf-8"))
    if scenario == "customer":
        # Customers' time is not the company's cost: with no employee taking part nothing is left out.
        assert result["costs"]["participant_time_costed"] is True
        assert not any(w.startswith("participant time is not costed") for w in result["warnings"])
    else:
        # No hourly rate in the starter: the time is not costed, and the result says so, never silently.
        assert result["costs"]["participant_time_costed"] is False
        assert any(w.startswith("participant time is not costed") for w in result["warnings"])
        assert "participant time not costed" in answered.stdout
    # The cost is the program's cost lines alone: the simulator's own total of its lines in costs.csv.
    if "costs" in truth and isinstance(truth["costs"], dict) and "program_total" in truth["costs"]:
        assert float(result["costs"]["total"]) == pytest.approx(truth["costs"]["program_total"], abs=0.005)


def test_a_warehouse_without_lms_data_is_refused_in_one_sentence(tmp_path: Path):
    db, _ = _warehouse(tmp_path, "selection", drop_lms=True)
    study_file = tmp_path / "study.yaml"
    made = runner.invoke(app, ["init-study", str(study_file), "--db", str(db)])
    assert made.exit_code == 2
    assert not study_file.exists()
    study_file.write_text('name: S\nprogram: {name: Sales Excellence, activities: ["x"]}\n', encoding="utf-8")
    answered = runner.invoke(app, ["report", str(study_file), "--db", str(db), "--out", str(tmp_path / "o")])
    assert answered.exit_code == 2
    for result in (made, answered):
        message = result.stderr.strip()
        assert message.startswith("error: no LMS data was loaded")
        assert "lms/completions.csv" in message and "training-roi ingest" in message
        # One message, not a chain of others (no cost, no completions, …).
        assert message.count("error:") == 1 and "cost" not in message and "Traceback" not in result.output
