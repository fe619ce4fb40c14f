"""Study and mapping files cannot make the product read outside their folder, nor exhaust memory."""

from __future__ import annotations

import os
import time
import tracemalloc
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.builders import write
from training_roi.cli import app
from training_roi.errors import MappingError
from training_roi.files import MAX_NODES, MAX_YAML_BYTES
from training_roi.ingest.mapping import load_mapping
from training_roi.study import StudyError, load_study
from training_roi.warehouse.connection import connect, ensure_tables

STUDY = "name: s\nprogram: {{name: P, activities: [a]}}\ncomparison: {{design: holdout, holdout_file: {f}}}\n"


def _study(folder: Path, holdout: str) -> Path:
    return write(folder / "study.yaml", STUDY.format(f=holdout))


@pytest.mark.parametrize("target", ["/etc/passwd", "/proc/self/environ", "../secret.csv"])
def test_a_file_outside_the_study_folder_is_not_read(tmp_path: Path, target: str):
    write(tmp_path / "secret.csv", "U1\nU2\n")
    study = _study(tmp_path / "study", target)
    with pytest.raises(StudyError, match=r"holdout_file: .*outside the study's folder"):
        load_study(study)


def test_a_link_inside_the_folder_that_points_outside_is_not_followed(tmp_path: Path):
    write(tmp_path / "secret.csv", "U1\nU2\n")
    (tmp_path / "study").mkdir()
    os.symlink(tmp_path / "secret.csv", tmp_path / "study" / "holdout.csv")
    with pytest.raises(StudyError, match="outside the study's folder"):
        load_study(_study(tmp_path / "study", "holdout.csv"))


def test_elsewhere_is_read_when_the_user_allows_it(tmp_path: Path):
    write(tmp_path / "elsewhere" / "holdout.csv", "U1\nU2\n")
    study = _study(tmp_path / "study", "../elsewhere/holdout.csv")
    assert load_study(study, allow_outside_files=True).comparison.holdout == ["U1", "U2"]
    write(tmp_path / "study" / "sub" / "h.csv", "U3\n")
    assert load_study(_study(tmp_path / "study", "sub/h.csv")).comparison.holdout == ["U3"]


def test_special_files_are_never_read_even_when_allowed(tmp_path: Path):
    study = _study(tmp_path, "/dev/zero")
    with pytest.raises(StudyError, match="not a regular file"):
        load_study(study, allow_outside_files=True)


def _bomb(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]")
    return "\n".join(lines) + f"\nname: *a{levels - 1}\n"


def test_a_yaml_alias_bomb_is_refused_quickly_and_in_little_memory(tmp_path: Path):
    study = write(tmp_path / "bomb.yaml", _bomb())
    # The process's own peak (ru_maxrss) may already be higher from earlier tests: trace this test's.
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(StudyError, match=f"expand to .* more than the {MAX_NODES:,} allowed"):
            load_study(study)
        with pytest.raises(MappingError, match="YAML aliases"):
            load_mapping(write(tmp_path / "bomb-mapping.yaml", _bomb()))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - started < 5
    assert peak < 50 << 20  # the expanded document would be 9⁹ strings: gigabytes


def test_a_few_aliases_are_still_allowed(tmp_path: Path):
    text = "name: &n Sales\nprogram: {name: *n, activities: [a]}\n"
    assert load_study(write(tmp_path / "s.yaml", text)).program.name == "Sales"


def test_an_oversized_study_is_refused(tmp_path: Path):
    study = write(tmp_path / "big.yaml", "name: s\n" + "#" * MAX_YAML_BYTES + "\n")
    with pytest.raises(StudyError, match="more than the"):
        load_study(study)


def test_report_refuses_a_study_reaching_outside_with_a_message(tmp_path: Path):
    study = _study(tmp_path, "/etc/passwd")
    ensure_tables(connect(tmp_path / "x.duckdb"))
    result = CliRunner().invoke(app, ["report", str(study), "--db", str(tmp_path / "x.duckdb"),
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "outside the study's folder" in result.stderr
    assert "root:" not in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_values_nested_without_end_are_refused_not_a_crash(tmp_path: Path):
    study = write(tmp_path / "deep.yaml", "name: " + "[" * 3000 + "]" * 3000 + "\n")
    with pytest.raises(StudyError, match="nested too deeply"):
        load_study(study)
