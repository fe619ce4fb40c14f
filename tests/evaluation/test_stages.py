"""Kept measurements: a study re-run with one setting changed gives exactly the answer of a fresh evaluation.

The store (:mod:`training_roi.evaluation.stages`) is checked two ways: its keying and keeping on a
counting function (a changed argument, version or number style is another key; a damaged, foreign
or over-budget file is never served), and end to end on the shared simulated org, where an
evaluation that reuses the first study's measurements must write the same document, figure for
figure, as one that measures everything again — for each kind of setting an analyst changes.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from training_roi import Study, evaluate
from training_roi._format import number_style
from training_roi.evaluation.stages import StageStore, canonical, kept, kept_stages
from training_roi.present.answer import answer_document


@dataclasses.dataclass(frozen=True)
class _Rule:
    names: frozenset[str]
    day: date


def _counted() -> Callable[..., dict[str, object]]:
    """A measuring function that counts its calls (its result: its arguments, and the call's number)."""
    calls: list[int] = []

    def measure(con: object, *args: object, **kwargs: object) -> dict[str, object]:
        calls.append(1)
        return {"args": args, "kwargs": kwargs, "call": len(calls)}

    measure.calls = calls  # type: ignore[attr-defined]
    return measure


def test_canonical_keys_equal_values_alike_and_tells_different_ones_apart():
    a = _Rule(frozenset(["b", "a", "c"]), date(2026, 1, 2))
    b = _Rule(frozenset(["c", "a", "b"]), date(2026, 1, 2))
    assert canonical(a) == canonical(b)
    assert canonical({"x": 1, "y": 2}) == canonical({"y": 2, "x": 1})
    assert canonical(0.1 + 0.2) != canonical(0.3)  # floats exactly, not rounded
    assert canonical(Decimal("1.10")) != canonical(Decimal("1.1"))
    assert canonical((1, "1")) != canonical((1, 1))
    assert canonical(date(2026, 1, 2)) != canonical("2026-01-02")
    study = Study.model_validate({"name": "s", "program": {"activities": ["x"]}})
    margin = study.model_copy(update={"value": study.value.model_copy(update={"gross_margin": 0.5})})
    assert canonical(study) != canonical(margin)
    for unkeyable in (pa.table({"a": [1]}), np.arange(3), object()):
        with pytest.raises(TypeError, match="cannot be keyed"):
            canonical(unkeyable)


def test_a_kept_call_is_measured_once_and_again_when_an_argument_changes(tmp_path: Path):
    fn = _counted()
    store = StageStore(tmp_path / "stages", "v1")
    with kept_stages(store):
        first = kept(fn, None, 1, rule=_Rule(frozenset({"a", "b"}), date(2026, 1, 1)))
        again = kept(fn, None, 1, rule=_Rule(frozenset({"b", "a"}), date(2026, 1, 1)))
        other = kept(fn, None, 2, rule=_Rule(frozenset({"a", "b"}), date(2026, 1, 1)))
    assert len(fn.calls) == 2
    assert again == first and other["call"] == 2
    assert store.hits == [fn.__qualname__] and store.misses == [fn.__qualname__] * 2
    # Outside a block nothing is kept or read.
    kept(fn, None, 1, rule=_Rule(frozenset({"a", "b"}), date(2026, 1, 1)))
    assert len(fn.calls) == 3


def test_another_version_a_number_style_or_a_fresh_run_measures_again(tmp_path: Path):
    fn = _counted()
    folder = tmp_path / "stages"
    with kept_stages(StageStore(folder, "v1")):
        kept(fn, None, "x")
    with kept_stages(StageStore(folder, "v1")):
        with number_style("EUR", "de_DE"):
            kept(fn, None, "x")  # the sentences a stage words follow the style: another key
        kept(fn, None, "x")
    assert len(fn.calls) == 2
    with kept_stages(StageStore(folder, "v1", read=False)):
        kept(fn, None, "x")
    assert len(fn.calls) == 3
    with kept_stages(StageStore(folder, "v2")):
        kept(fn, None, "x")  # a changed warehouse or product: the old version's stages go
    assert len(fn.calls) == 4
    assert len(list(folder.iterdir())) == 1


def test_a_damaged_or_foreign_stage_is_never_served(tmp_path: Path):
    fn = _counted()
    folder = tmp_path / "stages"
    with kept_stages(StageStore(folder, "v1")):
        kept(fn, None, "x")
    (path,) = folder.iterdir()
    path.write_bytes(b"not a pickle")
    with kept_stages(StageStore(folder, "v1")):
        assert kept(fn, None, "x")["call"] == 2
    os.chmod(folder, 0o777)  # others may write into it: its pickles could be anyone's
    with kept_stages(StageStore(folder, "v1")):
        assert kept(fn, None, "x")["call"] == 3
    os.chmod(folder, 0o700)


def test_a_kept_value_stands_for_its_call_in_the_next_key(tmp_path: Path):
    def table(con: object, n: int) -> dict[int, pa.Table]:
        return {n: pa.table({"a": list(range(n))})}

    measured: list[int] = []

    def rows(con: object, t: pa.Table) -> int:
        measured.append(t.num_rows)
        return t.num_rows

    folder = tmp_path / "stages"
    for _ in range(2):
        with kept_stages(StageStore(folder, "v1")):
            assert kept(rows, None, kept(table, None, 3)[3]) == 3
            assert kept(rows, None, kept(table, None, 4)[4]) == 4
    assert measured == [3, 4]
    with kept_stages(StageStore(folder, "v1")), pytest.raises(TypeError, match="cannot be keyed"):
        kept(rows, None, pa.table({"a": [1]}))  # a table of unknown provenance is not keyed by a guess


def test_a_linked_or_shared_folder_is_never_read_written_or_emptied(tmp_path: Path):
    fn = _counted()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (elsewhere / "notes.txt").write_text("mine")
    answers = tmp_path / "wh.duckdb.answers"
    answers.mkdir(mode=0o700)
    (answers / "stages").symlink_to(elsewhere)
    for _ in range(2):
        with kept_stages(StageStore(answers / "stages", "v1")):
            kept(fn, None, "x")
    assert len(fn.calls) == 2 and [p.name for p in elsewhere.iterdir()] == ["notes.txt"]
    shared = tmp_path / "shared.duckdb.answers"
    shared.mkdir()
    os.chmod(shared, 0o777)  # the folder that holds the stages: anyone could put a link there
    for _ in range(2):
        with kept_stages(StageStore(shared / "stages", "v1")):
            kept(fn, None, "x")
    assert len(fn.calls) == 4


def test_only_stage_files_are_ever_removed(tmp_path: Path):
    folder = tmp_path / "stages"
    folder.mkdir(mode=0o700)
    (folder / "notes.txt").write_text("kept")
    (folder / "0123456789abcdef.pickle").write_text("not a stage's name")
    with kept_stages(StageStore(folder, "v1")):
        kept(_counted(), None, "x")
    with kept_stages(StageStore(folder, "v2")):
        kept(_counted(), None, "x")
    names = {p.name for p in folder.iterdir()}  # the other files, and the one stage of v2
    assert {"0123456789abcdef.pickle", "notes.txt"} < names and len(names) == 3


def test_a_shared_constant_a_kept_call_returned_stands_for_nothing(tmp_path: Path):
    def nothing(con: object) -> tuple[()]:
        return ()

    fn = _counted()
    folder = tmp_path / "stages"
    with kept_stages(StageStore(folder, "v1")):
        assert kept(nothing, None) == ()
        kept(fn, None, (), None)
    with kept_stages(StageStore(folder, "v1")):  # another run, which did not call `nothing`
        kept(fn, None, (), None)
    assert len(fn.calls) == 1


def test_arguments_of_different_types_are_different_keys(tmp_path: Path):
    fn = _counted()
    with kept_stages(StageStore(tmp_path / "stages", "v1")):
        for value in ({"1": "a"}, {1: "a"}, (1, 2), [1, 2], {"x": (1, 2)}, {"x": [1, 2]}, 1, 1.0, True, "1"):
            kept(fn, None, value)
    assert len(fn.calls) == 10


def test_the_least_recently_used_stages_go_over_budget(tmp_path: Path):
    def blob(con: object, n: int) -> bytes:
        return bytes(1_000) + bytes([n])

    folder = tmp_path / "stages"
    store = StageStore(folder, "v1", budget=2_500)
    with kept_stages(store):
        for n in range(4):
            kept(blob, None, n)
            for path in folder.iterdir():  # distinct modification times, oldest first
                os.utime(path, ns=(path.stat().st_mtime_ns - 10**9,) * 2)
        assert len(list(folder.iterdir())) == 2
        kept(blob, None, 3)
        kept(blob, None, 2)
    assert store.hits == [blob.__qualname__] * 2


def _study(course: str, **changes: dict[str, object]) -> Study:
    settings: dict[str, object] = {
        "name": "kept stages", "program": {"name": "Sales Excellence", "activities": [course]},
        "costs": {"participant_time": {"hourly_rate": 60}}, "isolation": {"bootstrap_replicates": 300},
        "attribution": {"enabled": True}}
    for section, values in changes.items():
        base = settings.get(section)
        settings[section] = {**base, **values} if isinstance(base, dict) else values
    return Study.model_validate(settings)


CHANGES = {
    "margin": ({"value": {"gross_margin": 0.6}},
               {"window_panels", "attribute_study", "compute", "event_path", "_quality", "_opportunities"}),
    "hourly rate": ({"costs": {"participant_time": {"hourly_rate": 95}}},
                    {"window_panels", "attribute_study", "event_path"}),
    "forecast horizon": ({"forecast": {"horizon_months": 12, "hold_months": 3}}, {"window_panels", "compute"}),
    "confidence": ({"isolation": {"bootstrap_replicates": 300, "confidence": 0.9}}, {"window_panels"}),
    "attribution model": ({"attribution": {"enabled": True, "model": "markov"}}, {"window_panels", "compute"}),
    "primary window": ({"windows": {"primary_days": 90}}, {"compute"}),
    "bootstrap seed": ({"isolation": {"bootstrap_replicates": 300, "seed": 8}}, {"compute"}),
    "locale": ({"currency": "EUR", "locale": "de_DE"}, set()),
    "deal types": ({"population": {"opportunity_types": ["New Business"]}}, {"compute"}),
}


@pytest.fixture(scope="module")
def first_run(simulated_org, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stages the first study kept on the shared org."""
    con, course, _ = simulated_org
    folder = tmp_path_factory.mktemp("first_run") / "stages"
    with kept_stages(StageStore(folder, "one warehouse")):
        evaluate(con, _study(course))
    return folder


def test_every_method_side_by_side_is_compared_again_only_when_the_isolation_changes(simulated_org, tmp_path: Path):
    con, course, _ = simulated_org
    folder = tmp_path / "stages"
    every = {"isolation": {"bootstrap_replicates": 300, "method": "all"}}
    with kept_stages(StageStore(folder, "one warehouse")):
        evaluate(con, _study(course, **every))
    store = StageStore(folder, "one warehouse")
    with kept_stages(store):
        margin = evaluate(con, _study(course, value={"gross_margin": 0.5}, **every))
        seed = evaluate(con, _study(course, isolation={"bootstrap_replicates": 300, "method": "all", "seed": 3}))
    assert "compared" in store.hits and "compared" in store.misses
    assert answer_document(margin) == answer_document(evaluate(con, _study(course, value={"gross_margin": 0.5},
                                                                          **every)))
    assert answer_document(seed) == answer_document(evaluate(
        con, _study(course, isolation={"bootstrap_replicates": 300, "method": "all", "seed": 3})))


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_changed_setting_gives_the_fresh_answer(simulated_org, first_run: Path, tmp_path: Path, change: str):
    con, course, _ = simulated_org
    settings, reused = CHANGES[change]
    shutil.copytree(first_run, tmp_path / "stages")
    store = StageStore(tmp_path / "stages", "one warehouse")
    with kept_stages(store):
        changed = evaluate(con, _study(course, **settings))
    fresh = evaluate(con, _study(course, **settings))
    assert answer_document(changed) == answer_document(fresh)
    assert changed.attribution is not None and fresh.attribution is not None
    assert changed.attribution.table.equals(fresh.attribution.table)
    assert set(store.hits) >= reused, (store.hits, store.misses)
