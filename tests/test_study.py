"""Studies: loading, defaults, one clear message per mistake, a stable hash, the starter file."""

from __future__ import annotations

import json
import textwrap
from datetime import date
from pathlib import Path

import pytest
import yaml

from tests.builders import put_rows
from training_roi.errors import TrainingRoiError, WarehouseError
from training_roi.ingest.folder import ingest_folder
from training_roi.linking import link
from training_roi.simulate import simulate
from training_roi.study import KPIS, Study, StudyError, load_study, starter_study
from training_roi.warehouse.connection import connect, ensure_tables

COURSE = "https://lms.example.com/xapi/activities/course/sales-excellence"

FULL = f"""
name: Sales Excellence 2024
description: Core course for account executives
timezone: Europe/Paris
currency: eur
program:
  name: Sales Excellence
  activities: ["{COURSE}", CMP-COC-2024]
  completion: min_score
  min_score: 80
  start: 2024-06-01
  end: 2024-09-01
population:
  unit: rep
  roles: [R1]
  departments: [Sales]
  titles: [Account Executive]
  include: [U1]
  exclude: [U9]
comparison:
  design: holdout
  holdout: [U2, U3]
baseline:
  months: 3
  anchor: program_start
windows:
  primary_days: 120
  sensitivity_days: [90, 365]
  ramp_days: 14
kpis: [win_rate, sales_cycle_days, avg_won_deal_size]
headline_kpi: avg_won_deal_size
threshold:
  min_relative_change: 0.1
value:
  gross_margin: 0.7
costs:
  use_cost_lines: false
  programs: [Sales Excellence, SE Pilot]
  shared_allocation: share
  share: 0.25
  participant_time:
    hourly_rate: 50
    hourly_rate_by_role: {{Account Executive: 60}}
    minutes_per_learner: 90
isolation:
  method: did
  bootstrap_replicates: 500
  confidence: 0.9
  seed: 11
"""

MINIMAL = f"""
name: Minimal
program:
  activities: ["{COURSE}"]
"""


def write(tmp_path: Path, text: str, name: str = "study.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str) -> tuple[str, dict[str, str]]:
    with pytest.raises(StudyError) as info:
        load_study(write(tmp_path, text))
    return str(info.value), dict(info.value.problems)


def test_full_study_loads_with_its_values(tmp_path: Path):
    s = load_study(write(tmp_path, FULL))
    assert (s.name, s.timezone, s.currency) == ("Sales Excellence 2024", "Europe/Paris", "EUR")
    assert s.program.activities == [COURSE, "CMP-COC-2024"]
    assert (s.program.completion, s.program.min_score) == ("min_score", 80)
    assert (s.program.start, s.program.end) == (date(2024, 6, 1), date(2024, 9, 1))
    assert s.population.unit == "rep" and s.population.titles == ["Account Executive"]
    assert s.population.include == ["U1"] and s.population.exclude == ["U9"]
    assert (s.comparison.design, s.comparison.holdout) == ("holdout", ["U2", "U3"])
    assert (s.baseline.months, s.baseline.anchor) == (3, "program_start")
    assert s.windows.primary_days == 120 and s.windows.ramp_days == 14
    assert s.windows.sensitivity_days == [90, 120, 365]  # the primary window is added
    assert (s.kpis, s.headline_kpi) == (["win_rate", "sales_cycle_days", "avg_won_deal_size"], "avg_won_deal_size")
    assert s.threshold.min_relative_change == 0.1 and s.value.gross_margin == 0.7
    assert s.costs.programs == ["Sales Excellence", "SE Pilot"] and not s.costs.use_cost_lines
    assert (s.costs.shared_allocation, s.costs.share) == ("share", 0.25)
    pt = s.costs.participant_time
    assert (pt.hourly_rate, pt.hourly_rate_by_role, pt.minutes_per_learner) == (50, {"Account Executive": 60}, 90)
    assert (s.isolation.bootstrap_replicates, s.isolation.confidence, s.isolation.seed) == (500, 0.9, 11)


def test_minimal_study_gets_every_default(tmp_path: Path):
    s = load_study(write(tmp_path, MINIMAL))
    assert (s.description, s.timezone, s.currency) == ("", "UTC", "USD")
    assert s.program.name == "Minimal" and s.program.completion == "completed"
    assert s.program.min_score is None and s.program.start is None and s.program.end is None
    assert s.population.unit == "rep" and s.population.departments == [] and s.population.exclude == []
    assert s.comparison.design == "untrained"
    assert (s.baseline.months, s.baseline.anchor) == (6, "completion")
    assert (s.windows.primary_days, s.windows.sensitivity_days, s.windows.ramp_days) == (180, [90, 180, 365], 0)
    assert s.kpis == list(KPIS) and s.headline_kpi == "win_rate"
    assert s.threshold.min_relative_change == 0.05 and s.value.gross_margin == 1.0
    assert s.costs.use_cost_lines and s.costs.programs == ["Minimal"] and s.costs.shared_allocation == "none"
    assert s.costs.participant_time.minutes_per_learner is None
    assert (s.isolation.method, s.isolation.bootstrap_replicates) == ("did", 2000)
    assert (s.isolation.confidence, s.isolation.seed) == (0.95, 7)


def test_headline_defaults_to_first_kpi_when_win_rate_is_not_measured(tmp_path: Path):
    s = load_study(write(tmp_path, MINIMAL + "kpis: [pipeline_created, revenue_per_rep]\n"))
    assert s.headline_kpi == "pipeline_created"


@pytest.mark.parametrize(
    ("extra", "key", "words"),
    [
        ("kpis: [win_rate, happiness]", "kpis[1]", ["'happiness'", *KPIS]),
        ("windows: {primary_days: -5}", "windows.primary_days", ["must be greater than 0, got -5"]),
        ("comparison: {design: holdout}", "comparison.holdout", ["holdout list", "holdout_file"]),
        ("colour: blue", "colour", ["is not a study setting", "windows", "kpis"]),
        ("windows: {colour: blue}", "windows.colour", ["is not a study setting", "primary_days"]),
        ("timezone: Mars/Olympus", "timezone", ["IANA time zone", "'Mars/Olympus'"]),
        ("timezone: Europe", "timezone", ["IANA time zone", "'Europe'"]),  # a folder of zones: was a traceback
        ("costs: {uncertainty: {catering: [1, 2]}}", "costs.uncertainty", ["'catering' is not a cost category",
                                                                           "development"]),
        ("costs: {uncertainty: {development: [9000, 7000]}}", "costs.uncertainty",
         ["needs 0 ≤ at least ≤ at most, got [9000.0, 7000.0]"]),
        ("value: {hurdle_rate: 15}", "value.hurdle_rate", ["at most 10"]),  # 15 meant 15%: a fraction is asked
        ("windows: {primary_days: 90, ramp_days: 90}", "windows.ramp_days",
         ["must be less than windows.primary_days (90), got 90"]),
        ("headline_kpi: pipeline_created\nkpis: [win_rate]", "headline_kpi", ["one of the study's kpis"]),
        ("value: {gross_margin: 1.5}", "value.gross_margin", ["must be at most 1", "got 1.5"]),
        ("isolation: {bootstrap_replicates: 10}", "isolation.bootstrap_replicates", ["at least 100", "got 10"]),
        ("costs: {shared_allocation: share}", "costs.share", ["is required when shared_allocation is share"]),
        ("sensitivity: {lift: [0.03, 0.01]}", "sensitivity.lift", ["pessimistic ≤ optimistic, got [0.03, 0.01]"]),
        ("sensitivity: {lift: [0.01]}", "sensitivity.lift", ["two values, [pessimistic, optimistic], got [0.01]"]),
        ("sensitivity: {lift: [0.01, .inf]}", "sensitivity.lift[1]", ["finite number", "got inf"]),
        # Refused whatever the data: not only once some deal has several learners.
        ("attribution: {learner_split: role}", "attribution", ["learner_split: role needs role_weights"]),
        ("attribution: {learner_split: role, role_weights: {Admin: 0}}", "attribution",
         ["must be positive numbers", "'Admin': 0.0"]),
        # Points written for fractions would value 100 times the pipeline: refused for a rate KPI.
        ("sensitivity: {lift: [1, 3]}", "sensitivity", ["lift [1.0, 3.0]", "win_rate is a fraction",
                                                       "0.01 = 1 point"]),
    ],
)
def test_a_bad_setting_gets_one_message_naming_its_key(tmp_path: Path, extra: str, key: str, words: list[str]):
    message, found = problems(tmp_path, MINIMAL + extra + "\n")
    assert list(found) == [key]
    assert str(tmp_path / "study.yaml") in message and f"{key}: " in message
    for word in words:
        assert word in found[key]


@pytest.mark.parametrize("program", ["{name: Sales}", "{activities: []}"])
def test_missing_or_empty_activities(tmp_path: Path, program: str):
    _, found = problems(tmp_path, f"name: x\nprogram: {program}\n")
    assert list(found) == ["program.activities"]
    assert found["program.activities"] in {"is required", "must not be empty: list at least 1, got 0"}


def test_every_problem_is_in_one_error(tmp_path: Path):
    message, found = problems(tmp_path, "name: x\nprogram: {activities: []}\nwindows: {primary_days: 0}\nfoo: 1\n")
    assert set(found) == {"program.activities", "windows.primary_days", "foo"}
    assert message.count("; ") == 2


@pytest.mark.parametrize(
    ("text", "words"),
    [("[1, 2]", "mapping"), ("name: [unclosed", "not valid YAML")],
)
def test_a_file_that_is_not_a_study(tmp_path: Path, text: str, words: str):
    with pytest.raises(StudyError, match=words):
        load_study(write(tmp_path, text))


def test_a_missing_file_is_a_product_error(tmp_path: Path):
    with pytest.raises(TrainingRoiError, match="no such file"):
        load_study(tmp_path / "nope.yaml")


def test_hash_ignores_key_order_and_follows_settings(tmp_path: Path):
    data = yaml.safe_load(FULL)
    reordered = {k: (dict(reversed(v.items())) if isinstance(v, dict) else v) for k, v in reversed(data.items())}
    a = load_study(write(tmp_path, FULL, "a.yaml"))
    b = load_study(write(tmp_path, yaml.safe_dump(reordered, sort_keys=False), "b.yaml"))
    assert a.hash == b.hash and len(a.hash) == 16 and int(a.hash, 16) >= 0
    data["windows"]["primary_days"] = 121
    c = load_study(write(tmp_path, yaml.safe_dump(data), "c.yaml"))
    assert c.hash != a.hash


def test_hash_counts_a_written_default_as_the_default(tmp_path: Path):
    minimal = load_study(write(tmp_path, MINIMAL, "a.yaml"))
    explicit = load_study(write(tmp_path, MINIMAL + "windows: {primary_days: 180}\ncurrency: USD\n", "b.yaml"))
    assert minimal.hash == explicit.hash
    assert Study.model_validate(minimal.model_dump()).hash == minimal.hash


def test_study_is_frozen(tmp_path: Path):
    s = load_study(write(tmp_path, MINIMAL))
    with pytest.raises(ValueError, match="frozen"):
        s.name = "other"  # type: ignore[misc]


@pytest.fixture
def simulated(tmp_path: Path):
    data = tmp_path / "data"
    simulate(data, reps=30, months=12, seed=3)
    con = connect(tmp_path / "w.duckdb")
    ingest_folder(data, con)
    link(con)
    truth = json.loads((data / "truth.json").read_text(encoding="utf-8"))
    yield con, truth
    con.disconnect()


def test_starter_study_loads_back_and_names_the_program(tmp_path: Path, simulated):
    con, truth = simulated
    text = starter_study(con)
    study = load_study(write(tmp_path, text))
    # The program the simulator trained is proposed (its cost lines and xAPI grouping mark it, not the
    # number of completers); the other courses are listed, commented out, to choose from.
    assert study.program.activities == [truth["program"]["course_activity_id"]]
    assert study.program.name == truth["program"]["name"]
    assert "# - \"CMP-COC-2024\"" in text and f"cost lines ${truth['costs']['program_total']:,.0f}" in text
    assert study.costs.programs == [truth["program"]["name"]]
    comments = [line for line in text.splitlines() if "#" in line]
    assert len(comments) > 30
    assert "Sales (" in text and "completed by" in text and "opportunities close from 2024" in text
    # every setting is written out, so the file loads to the same study as its defaults would give
    assert set(yaml.safe_load(text)) == set(Study.model_fields)


def test_starter_study_on_a_warehouse_without_lms_data_says_so(con):
    ensure_tables(con)
    with pytest.raises(WarehouseError, match=r"^no LMS data was loaded: .*lms/completions.csv.*training-roi ingest"):
        starter_study(con)


def test_starter_study_without_completions_asks_for_the_activities(tmp_path: Path, con):
    ensure_tables(con)
    # LMS data, but nobody completed anything yet: the starter leaves the activities to fill in.
    put_rows(con, "lms_completion", [{"completion_key": "k1", "learner_id": "L1", "course_id": "C1"}])
    text = starter_study(con)
    data = yaml.safe_load(text)
    assert isinstance(data, dict) and data["program"]["activities"] == []
    assert "FILL IN" in text
    with pytest.raises(StudyError) as info:
        load_study(write(tmp_path, text))
    assert [key for key, _ in info.value.problems] == ["program.activities"]
    assert "program.activities: must not be empty" in str(info.value)


def test_starter_study_proposes_a_course_that_is_only_ever_passed(tmp_path: Path, con):
    # A quiz-only course sends `passed` alone; the default rule (CompletedOrPassed) counts it, so the
    # starter proposes it rather than asking for activities.
    ensure_tables(con)
    quiz = "https://lms.example.com/xapi/activities/quiz/pricing"
    put_rows(con, "lms_statement", [{"statement_id": "s1"}])
    put_rows(con, "learner_identity", [{"learner_key": f"L{i}", "crm_user_id": f"U{i}", "status": "linked"}
                                       for i in range(3)])
    put_rows(con, "learning_record", [
        {"record_key": f"r{i}", "learner_key": f"L{i}", "source": "xapi", "verb": "passed", "activity_id": quiz,
         "activity_name": "Pricing quiz", "course_id": quiz} for i in range(3)])
    text = starter_study(con)
    study = load_study(write(tmp_path, text))
    assert study.program.activities == [quiz]
    assert "FILL IN: the warehouse has no completions" not in text
    assert "completed by 3 learners" in text


def _message_strings(path: Path) -> list[str]:
    """The string literals of a module that are not docstrings (its messages, notes and comments written out)."""
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr)}
    return [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def test_every_study_key_a_message_names_exists():
    """A message that tells the user to set a key names one the study has (``costs.participant_time.hourly_rate``)."""
    import re

    from pydantic import BaseModel

    src = Path(__file__).resolve().parents[1] / "src" / "training_roi"
    modules = [src / "study" / "model.py", src / "study" / "plan.py", src / "study" / "starter.py",
               src / "evaluation" / "costs.py", *sorted((src / "value").glob("*.py"))]
    sections = "|".join(f for f, info in Study.model_fields.items()
                        if (isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel))
                        or f == "rollout")
    named = set()
    for module in modules:
        for text in _message_strings(module):
            named |= {m.group(0) for m in re.finditer(rf"\b(?:{sections})(?:\.[a-z_]+)+", text)}
    named = {k for k in named if not k.endswith((".csv", ".json", ".yaml"))}
    assert "costs.participant_time.hourly_rate_by_role" in named  # the check reads the messages that matter

    def exists(path: str) -> bool:
        model: type[BaseModel] = Study
        for part in path.split("."):
            field = model.model_fields.get(part)
            if field is None:
                return False
            annotation = field.annotation
            inner = [a for a in getattr(annotation, "__args__", ()) if isinstance(a, type)]
            nxt = annotation if isinstance(annotation, type) else (inner[0] if inner else None)
            if nxt is not None and issubclass(nxt, BaseModel):
                model = nxt
        return True

    assert sorted(k for k in named if not exists(k)) == []
