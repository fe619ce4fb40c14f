"""`training-roi report`'s answer cache: a second run of an unchanged study on an unchanged warehouse.

The independent figure is the first run, which evaluated: a run from the cache must print the same and
write the same files, byte for byte; whatever could change the answer must make it evaluate again.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

import training_roi.evaluation as evaluation
from tests.builders import simulated_warehouse
from training_roi.cli import answers, app
from training_roi.warehouse.connection import connect

runner = CliRunner()

FROM_CACHE = "answer from the cache"


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, Any]]:
    """A small simulated org ingested once: its data folder, its warehouse and a study of its program."""
    data, db, truth = simulated_warehouse(tmp_path_factory.mktemp("org"), reps=60, months=12, seed=3)
    study = {
        "name": "Sales Excellence",
        "program": {"activities": [truth["program"]["course_activity_id"]]},
        "costs": {"participant_time": {"hourly_rate": 60}},
        "isolation": {"bootstrap_replicates": 100},
    }
    return data, db, study


@pytest.fixture
def wh(org: tuple[Path, Path, dict[str, Any]], tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the warehouse for one test (its cache goes beside it), and a study file next to it."""
    _, db, study = org
    copy = tmp_path / "roi.duckdb"
    shutil.copy2(db, copy)
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(study), encoding="utf-8")
    return copy, tmp_path / "study.yaml"


@pytest.fixture
def evaluations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The studies evaluated (by name) while the test runs: empty when every answer came from the cache."""
    real = evaluation.evaluate
    seen: list[str] = []

    def counted(con: Any, study: Any, **kwargs: Any) -> Any:
        seen.append(study.name)
        return real(con, study, **kwargs)

    monkeypatch.setattr(evaluation, "evaluate", counted)
    return seen


def _report(db: Path, study: Path, out: Path, *args: str, columns: int = 120) -> Any:
    result = runner.invoke(app, ["report", str(study), "--db", str(db), "--out", str(out), *args],
                           env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _edit(study: Path, change: dict[str, Any]) -> None:
    data = yaml.safe_load(study.read_text(encoding="utf-8"))
    for key, value in change.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    study.write_text(yaml.safe_dump(data), encoding="utf-8")


def _entries(db: Path) -> list[Path]:
    folder = Path(f"{db}.answers")
    return (sorted(p for p in folder.iterdir() if not p.name.startswith(".") and p.name != answers.STAGES)
                  if folder.exists() else [])


def test_a_second_run_answers_from_the_cache_with_the_same_output_and_files(
        wh: tuple[Path, Path], tmp_path: Path, evaluations: list[str]):
    db, study = wh
    first = _report(db, study, tmp_path / "out")
    assert evaluations == ["Sales Excellence"] and FROM_CACHE not in first.stderr
    written = _files(tmp_path / "out")
    assert {"result.json", "report.html", "learners.csv", "opportunities.csv", "roi_model.xlsx", "summary.html",
            "summary.pdf"} <= set(written)
    again = _report(db, study, tmp_path / "out")
    assert evaluations == ["Sales Excellence"]  # not evaluated again
    assert FROM_CACHE in again.stderr and db.name in again.stderr
    assert again.stdout == first.stdout
    assert _files(tmp_path / "out") == written
    # Into another folder (a name as long, so that the lines naming the files wrap where they did): the
    # same files, byte for byte, and the same lines naming them there.
    other = _report(db, study, tmp_path / "alt")
    assert evaluations == ["Sales Excellence"]
    assert _files(tmp_path / "alt") == written
    assert other.stdout == first.stdout.replace(str(tmp_path / "out"), str(tmp_path / "alt"))
    # A file changed in the output folder since is put back as the answer has it.
    (tmp_path / "out" / "result.json").write_text("{}", encoding="utf-8")
    (tmp_path / "out" / "learners.csv").unlink()
    _report(db, study, tmp_path / "out")
    assert evaluations == ["Sales Excellence"] and _files(tmp_path / "out") == written


def test_the_panel_from_the_cache_is_laid_out_to_the_terminal_as_evaluated(
        wh: tuple[Path, Path], tmp_path: Path, evaluations: list[str]):
    db, study = wh
    wide = _report(db, study, tmp_path / "out")
    narrow = _report(db, study, tmp_path / "out", columns=64)  # laid out anew from the kept panel
    again = _report(db, study, tmp_path / "out", columns=64)  # printed as kept for this width
    assert len(evaluations) == 1 and FROM_CACHE in narrow.stderr and FROM_CACHE in again.stderr
    assert max(len(line) for line in narrow.stdout.splitlines()) <= 64 < max(map(len, wide.stdout.splitlines()))
    evaluated = _report(db, study, tmp_path / "out", "--fresh", columns=64)
    assert len(evaluations) == 2
    assert narrow.stdout == again.stdout == evaluated.stdout
    assert _report(db, study, tmp_path / "out").stdout == wide.stdout


def test_the_json_document_from_the_cache_is_the_evaluated_one(wh: tuple[Path, Path], tmp_path: Path,
                                                                 evaluations: list[str]):
    db, study = wh
    first = _report(db, study, tmp_path / "out", "--json")
    again = _report(db, study, tmp_path / "out", "--json")
    assert len(evaluations) == 1 and FROM_CACHE in again.stderr
    assert again.stdout == first.stdout
    assert json.loads(again.stdout)["schema"] == "training-roi/result/2"
    # The same entry serves the panel: the document and the panel are both kept.
    _report(db, study, tmp_path / "out")
    assert len(evaluations) == 1


def test_a_study_that_reads_the_same_after_validation_is_a_hit(wh: tuple[Path, Path], tmp_path: Path,
                                                                 evaluations: list[str]):
    db, study = wh
    _report(db, study, tmp_path / "out")
    # A comment and a default written out: another file, the same study as evaluated.
    study.write_text("# reviewed\n" + study.read_text(encoding="utf-8") + "currency: USD\n", encoding="utf-8")
    again = _report(db, study, tmp_path / "out")
    assert len(evaluations) == 1 and FROM_CACHE in again.stderr
    # `--method did` is the study's own method: the same answer.
    _report(db, study, tmp_path / "out", "--method", "did")
    assert len(evaluations) == 1


@pytest.mark.parametrize("change", [
    {"windows": {"primary_days": 90}},
    {"value": {"gross_margin": 0.6}},
    {"costs": {"participant_time": {"hourly_rate": 75}}},
])
def test_a_changed_study_is_evaluated(wh: tuple[Path, Path], tmp_path: Path, evaluations: list[str],
                                      change: dict[str, Any]):
    db, study = wh
    first = _report(db, study, tmp_path / "out")
    _edit(study, change)
    again = _report(db, study, tmp_path / "out")
    assert len(evaluations) == 2 and FROM_CACHE not in again.stderr
    assert again.stdout != first.stdout
    # The measurements the change does not touch are taken from the first run's.
    assert "reused from the warehouse's cache (measured before from the same inputs)" in again.stderr
    # Both answers are kept: the first study is a hit again.
    assert len(_entries(db)) == 2


def test_another_method_is_evaluated(wh: tuple[Path, Path], tmp_path: Path, evaluations: list[str]):
    db, study = wh
    _report(db, study, tmp_path / "out")
    other = _report(db, study, tmp_path / "out", "--method", "naive_after")
    assert len(evaluations) == 2 and FROM_CACHE not in other.stderr
    again = _report(db, study, tmp_path / "out", "--method", "naive_after")
    assert len(evaluations) == 2 and FROM_CACHE in again.stderr


def test_a_changed_file_the_study_reads_is_evaluated(wh: tuple[Path, Path], tmp_path: Path,
                                                     evaluations: list[str], org: tuple[Path, Path, dict[str, Any]]):
    db, study = wh
    users = (org[0] / "crm" / "User.csv").read_text(encoding="utf-8-sig").splitlines()[1:]
    ids = [line.split(",", 1)[0] for line in users]
    (tmp_path / "holdout.csv").write_text("\n".join(ids[:3]) + "\n", encoding="utf-8")
    _edit(study, {"comparison": {"holdout_file": "holdout.csv"}})
    _report(db, study, tmp_path / "out")
    assert FROM_CACHE in _report(db, study, tmp_path / "out").stderr
    # The study file is unchanged; the file it names is not.
    (tmp_path / "holdout.csv").write_text("\n".join(ids[:4]) + "\n", encoding="utf-8")
    again = _report(db, study, tmp_path / "out")
    assert len(evaluations) == 2 and FROM_CACHE not in again.stderr


def test_a_write_to_the_warehouse_is_evaluated(wh: tuple[Path, Path], tmp_path: Path, evaluations: list[str],
                                               org: tuple[Path, Path, dict[str, Any]]):
    db, study = wh
    _report(db, study, tmp_path / "out")
    # Reading the warehouse (as every report does) leaves its version alone.
    before = answers.warehouse_version(db)
    con = connect(db, create=False)
    assert con.table("crm_user").count().to_pyarrow().as_py() > 0
    con.disconnect()
    assert answers.warehouse_version(db) == before
    assert FROM_CACHE in _report(db, study, tmp_path / "out").stderr
    # Ingesting the same folder again writes (its run is recorded), so the answer is evaluated again.
    assert runner.invoke(app, ["ingest", str(org[0]), "--db", str(db)]).exit_code == 0
    assert answers.warehouse_version(db) != before
    again = _report(db, study, tmp_path / "out")
    assert len(evaluations) == 2 and FROM_CACHE not in again.stderr
    # Any write through the engine, even one the study does not read.
    con = connect(db, create=False)
    con.raw_sql("CREATE TABLE scratch AS SELECT 1 AS x")
    con.disconnect()
    _report(db, study, tmp_path / "out")
    assert len(evaluations) == 3


def test_a_changed_product_is_evaluated(wh: tuple[Path, Path], tmp_path: Path, evaluations: list[str],
                                        monkeypatch: pytest.MonkeyPatch):
    db, study = wh
    _report(db, study, tmp_path / "out")
    real = answers.product_fingerprint()
    assert answers.product_fingerprint() == real  # stable while nothing changes
    monkeypatch.setattr(answers, "product_fingerprint", lambda: real + "-changed")
    again = _report(db, study, tmp_path / "out")
    assert len(evaluations) == 2 and FROM_CACHE not in again.stderr


def test_the_fingerprint_follows_the_package_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    import training_roi
    import training_roi.product

    package = tmp_path / "training_roi"
    shutil.copytree(Path(training_roi.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(training_roi.product, "__file__", str(package / "product.py"))
    before = answers.product_fingerprint()
    template = next((package / "present" / "templates").iterdir())
    os.utime(template, ns=(template.stat().st_atime_ns, template.stat().st_mtime_ns + 1))
    assert answers.product_fingerprint() != before


def test_fresh_evaluates_and_refreshes_the_entry(wh: tuple[Path, Path], tmp_path: Path, evaluations: list[str]):
    db, study = wh
    first = _report(db, study, tmp_path / "out")
    [entry] = _entries(db)
    fresh = _report(db, study, tmp_path / "out", "--fresh")
    assert len(evaluations) == 2 and FROM_CACHE not in fresh.stderr
    assert fresh.stdout == first.stdout
    assert _entries(db) == [entry]  # the same key, its entry written anew
    assert FROM_CACHE in _report(db, study, tmp_path / "out").stderr
    assert len(evaluations) == 2


def test_a_cache_that_cannot_be_written_still_answers(wh: tuple[Path, Path], tmp_path: Path,
                                                      evaluations: list[str]):
    db, study = wh
    Path(f"{db}.answers").write_text("not a folder", encoding="utf-8")
    first = _report(db, study, tmp_path / "out")
    assert f"the answer was not kept in the cache: cannot create {db}.answers" in " ".join(first.stderr.split())
    assert "Traceback" not in first.output
    assert (tmp_path / "out" / "result.json").is_file()
    again = _report(db, study, tmp_path / "out")
    assert len(evaluations) == 2 and again.stdout == first.stdout


def test_a_cache_folder_others_can_write_is_not_used(wh: tuple[Path, Path], tmp_path: Path,
                                                     evaluations: list[str]):
    # Its panels are unpickled: a folder another user could write into is neither read nor written.
    db, study = wh
    _report(db, study, tmp_path / "out")
    os.chmod(f"{db}.answers", 0o777)
    again = _report(db, study, tmp_path / "out")
    assert len(evaluations) == 2 and "not only yours" in again.stderr


@pytest.mark.parametrize("damage", ["delete a file", "truncate a file", "truncate the panel", "garble the manifest",
                                    "a manifest without its files"])
def test_a_damaged_entry_is_a_miss_and_is_replaced(wh: tuple[Path, Path], tmp_path: Path, evaluations: list[str],
                                                   damage: str):
    db, study = wh
    first = _report(db, study, tmp_path / "out")
    written = _files(tmp_path / "out")
    [entry] = _entries(db)
    if damage == "delete a file":
        (entry / "learners.csv").unlink()
    elif damage == "truncate a file":
        (entry / "opportunities.csv").write_bytes(written["opportunities.csv"][:100])
    elif damage == "truncate the panel":
        panel = (entry / answers.PANEL).read_bytes()
        (entry / answers.PANEL).write_bytes(panel[: len(panel) // 2])
    elif damage == "garble the manifest":
        (entry / answers.MANIFEST).write_text("{", encoding="utf-8")
    else:
        manifest = json.loads((entry / answers.MANIFEST).read_text(encoding="utf-8"))
        del manifest["files"]
        (entry / answers.MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    again = _report(db, study, tmp_path / "alt")
    assert len(evaluations) == 2 and FROM_CACHE not in again.stderr and "Traceback" not in again.output
    assert again.stdout == first.stdout.replace(str(tmp_path / "out"), str(tmp_path / "alt"))
    assert _files(tmp_path / "alt").keys() == written.keys()
    assert _files(tmp_path / "alt")["opportunities.csv"] == written["opportunities.csv"]
    # Replaced by a whole entry, which the next run finds.
    assert _entries(db) == [entry]
    assert FROM_CACHE in _report(db, study, tmp_path / "third").stderr
    assert _files(tmp_path / "third")["result.json"] == written["result.json"]


def test_a_stopped_write_leaves_no_entry(wh: tuple[Path, Path], tmp_path: Path, evaluations: list[str],
                                         monkeypatch: pytest.MonkeyPatch):
    db, study = wh
    real = answers._write_manifest
    calls: list[int] = []

    def stopped(folder: Path, manifest: Any) -> None:
        calls.append(1)
        raise KeyboardInterrupt

    monkeypatch.setattr(answers, "_write_manifest", stopped)
    assert runner.invoke(app, ["report", str(study), "--db", str(db), "--out", str(tmp_path / "out")]).exit_code \
        == 130
    # The measurements made before the stop are kept (a later run reuses them); no part of the answer is.
    assert calls and _entries(db) == [] and [p.name for p in Path(f"{db}.answers").iterdir()] == [answers.STAGES]
    monkeypatch.setattr(answers, "_write_manifest", real)
    _report(db, study, tmp_path / "out")
    assert len(evaluations) == 2 and len(_entries(db)) == 1


def test_the_cache_keeps_the_most_recently_used_entries(wh: tuple[Path, Path], tmp_path: Path,
                                                        evaluations: list[str], monkeypatch: pytest.MonkeyPatch):
    db, study = wh
    monkeypatch.setattr(answers, "KEEP", 2)
    studies = []
    for rate in (50, 60, 70):
        path = tmp_path / f"study{rate}.yaml"
        path.write_text(study.read_text(encoding="utf-8"), encoding="utf-8")
        _edit(path, {"costs": {"participant_time": {"hourly_rate": rate}}})
        studies.append(path)
    _report(db, studies[0], tmp_path / "out")
    _report(db, studies[1], tmp_path / "out")
    _report(db, studies[0], tmp_path / "out")  # used again: the most recent
    _report(db, studies[2], tmp_path / "out")
    assert len(evaluations) == 3 and len(_entries(db)) == 2
    assert FROM_CACHE in _report(db, studies[0], tmp_path / "out").stderr
    assert FROM_CACHE in _report(db, studies[2], tmp_path / "out").stderr
    assert FROM_CACHE not in _report(db, studies[1], tmp_path / "out").stderr  # the least recently used went
    assert len(evaluations) == 4 and len(_entries(db)) == 2


def test_the_cache_keeps_no_more_bytes_than_its_budget_but_always_the_newest_answer(
        wh: tuple[Path, Path], tmp_path: Path, evaluations: list[str], monkeypatch: pytest.MonkeyPatch):
    db, study = wh
    _report(db, study, tmp_path / "out")
    one = sum(f.stat().st_size for entry in _entries(db) for f in entry.rglob("*") if f.is_file())
    monkeypatch.setattr(answers, "BUDGET", int(one * 1.5))  # room for one answer, not two
    other = tmp_path / "other.yaml"
    other.write_text(study.read_text(encoding="utf-8"), encoding="utf-8")
    _edit(other, {"costs": {"participant_time": {"hourly_rate": 55}}})
    _report(db, other, tmp_path / "out")
    assert len(evaluations) == 2 and len(_entries(db)) == 1
    assert FROM_CACHE in _report(db, other, tmp_path / "out").stderr  # the newest stayed
    monkeypatch.setattr(answers, "BUDGET", 1)  # smaller than any answer: the newest is still kept
    _report(db, study, tmp_path / "out")
    assert len(evaluations) == 3 and len(_entries(db)) == 1
    assert FROM_CACHE in _report(db, study, tmp_path / "out").stderr


def test_the_warehouse_version_covers_its_write_ahead_log(tmp_path: Path):
    file = tmp_path / "w.duckdb"
    file.write_bytes(b"x" * 10)
    alone = answers.warehouse_version(file)
    assert alone == answers.warehouse_version(file)
    wal = tmp_path / "w.duckdb.wal"
    wal.write_bytes(b"y")
    logged = answers.warehouse_version(file)
    assert logged != alone
    os.utime(wal, ns=(wal.stat().st_atime_ns, wal.stat().st_mtime_ns + 1))
    assert answers.warehouse_version(file) != logged


def test_a_warehouse_that_is_not_a_duckdb_file_is_not_cached(tmp_path: Path):
    assert answers.answer_cache("postgres://user@host/db") is None
    assert answers.answer_cache(":memory:") is None
    assert answers.answer_cache(str(tmp_path / "missing.duckdb")) is None
    (tmp_path / "w.duckdb").write_bytes(b"")
    cache = answers.answer_cache(f"duckdb://{tmp_path / 'w.duckdb'}?read_only=true")
    assert cache is not None and cache.folder == tmp_path / "w.duckdb.answers"


def test_a_warehouse_replaced_by_a_copy_with_the_same_size_and_time_is_another_version(tmp_path: Path):
    # DuckDB files grow in whole blocks and copies can keep their times (cp -p, rsync -a, archives):
    # size and modification time alone would call the copy the same warehouse.
    file, other = tmp_path / "w.duckdb", tmp_path / "other.duckdb"
    file.write_bytes(b"x" * 4096)
    other.write_bytes(b"z" * 4096)
    os.utime(other, ns=(file.stat().st_atime_ns, file.stat().st_mtime_ns))
    before = answers.warehouse_version(file)
    os.replace(other, file)
    after = answers.warehouse_version(file)
    assert (after["size"], after["mtime_ns"]) == (before["size"], before["mtime_ns"])
    assert after != before


def test_a_study_file_changed_while_it_was_read_is_not_remembered_by_its_first_bytes(
        wh: tuple[Path, Path], tmp_path: Path, evaluations: list[str], monkeypatch: pytest.MonkeyPatch):
    # The run hashes the study file, then loads it; a save in between means the bytes hashed are not the
    # study evaluated. Those bytes, given again, must not find the other study's answer.
    import training_roi.study as study_module

    db, study = wh
    first = study.read_bytes()
    real = study_module.load_study

    def saved_in_between(path: Any, **kwargs: Any) -> Any:
        _edit(study, {"costs": {"participant_time": {"hourly_rate": 95}}})
        return real(path, **kwargs)

    monkeypatch.setattr(study_module, "load_study", saved_in_between)
    _report(db, study, tmp_path / "out")
    monkeypatch.setattr(study_module, "load_study", real)
    study.write_bytes(first)
    again = _report(db, study, tmp_path / "out")
    assert FROM_CACHE not in again.stderr and len(evaluations) == 2


def test_the_json_document_is_written_as_utf8_whatever_the_consoles_encoding(wh: tuple[Path, Path], tmp_path: Path):
    import subprocess
    import sys

    db, study = wh
    _edit(study, {"intangibles": ["moral élevé"]})
    _report(db, study, tmp_path / "out", "--json")  # evaluated and kept
    gc.collect()  # the in-process run's warehouse connection is closed before another process opens the file
    env = {**os.environ, "PYTHONIOENCODING": "ascii", "COLUMNS": "120"}
    for extra in ([], ["--fresh"]):
        done = subprocess.run([sys.executable, "-m", "training_roi.cli", "report", str(study), "--db", str(db),
                               "--out", str(tmp_path / "out"), "--json", *extra], capture_output=True, env=env,
                              timeout=600)
        assert done.returncode == 0, done.stderr.decode("utf-8", "replace")
        assert json.loads(done.stdout.decode("utf-8"))["study"]["settings"]["intangibles"] == ["moral élevé"]
