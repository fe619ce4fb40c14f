"""xAPI statements: real files, the four file forms, quarantine, duplicates and the parsers.

The real files are the xAPI specification's examples, the ADL conformance suite's templates and
a cmi5 session (``tests/data/xapi``, sources and licences in ``tests/data/README.md``); the
rest are small hand-made files.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.builders import DATA_DIR
from training_roi.errors import SourceError
from training_roi.ingest.xapi import (
    Identity,
    InvalidStatement,
    actor_identities,
    framing,
    parallel,
    parse_duration,
    parse_timestamp,
    read_xapi,
)
from training_roi.warehouse import schema
from training_roi.warehouse.batch import Batch

XAPI_DIR = DATA_DIR / "xapi"
ADL = "http://adlnet.gov/expapi/verbs/"
CMI5 = "cmi5_09_completed_and_passed"
LEARNER = "account:http://example.org/|Learner"
NOT_A_STATEMENT = "not an xAPI statement"

# Every real file and what it must yield: the number of rows loaded, or the field quarantined.
REAL_FILES: dict[str, int | str] = {
    f"{CMI5}/01-launched_statement.json": 1,
    f"{CMI5}/02-lms_launch_data.json": "",
    f"{CMI5}/03-initialized_statement.json": 1,
    f"{CMI5}/04-passed_statement.json": 1,
    f"{CMI5}/05-completed_statement.json": 1,
    f"{CMI5}/06-satisfied_statement.json": 1,
    f"{CMI5}/07-terminated_statement.json": 1,
    f"{CMI5}/08-cmi5LearnerPreferences_data.json": "",
    "conformance_v1_0_3_statements/actor.json": "actor",
    "conformance_v1_0_3_statements/attachment.json": 1,
    "conformance_v1_0_3_statements/authority.json": "authority",
    "conformance_v1_0_3_statements/context.json": 1,
    "conformance_v1_0_3_statements/context_sans_objectType.json": 1,
    "conformance_v1_0_3_statements/default.json": 1,
    "conformance_v1_0_3_statements/multiple_actor.json": "actor",
    "conformance_v1_0_3_statements/no_actor.json": "actor",
    "conformance_v1_0_3_statements/no_object.json": "object",
    "conformance_v1_0_3_statements/no_verb.json": "verb",
    "conformance_v1_0_3_statements/object_activity.json": "object.id",
    "conformance_v1_0_3_statements/object_actor.json": "object",
    "conformance_v1_0_3_statements/object_agent_default.json": 1,
    "conformance_v1_0_3_statements/object_group_default.json": 1,
    "conformance_v1_0_3_statements/object_statementref.json": 1,
    "conformance_v1_0_3_statements/object_statementref_no_id.json": "object.id",
    "conformance_v1_0_3_statements/object_substatement.json": "object.actor",
    "conformance_v1_0_3_statements/object_substatement_default.json": 1,
    "conformance_v1_0_3_statements/result.json": 1,
    "conformance_v1_0_3_statements/unicode.json": 1,
    "conformance_v1_0_3_statements/verb.json": "verb.id",
    "conformance_v1_0_3_statements/voiding.json": 1,
    "spec/appendixA_long_example_group_attempted.json": 3,
    "spec/appendixA_simple_statement_completed_score.json": 1,
    "spec/statement_actor_agent.json": 1,
    "spec/statement_created_with_id.json": 1,
    "spec/statement_planned.json": 1,
    "spec/statement_result_comment.json": 1,
    "spec/statement_with_version.json": 1,
}


def _read(*paths: Path, base: Path | None = None) -> Batch:
    return read_xapi([(p, p.relative_to(base).as_posix() if base else p.name) for p in paths])


def _real(rel: str) -> Batch:
    return _read(XAPI_DIR / rel, base=XAPI_DIR)


def _rows(batch: Batch) -> list[dict[str, Any]]:
    return batch.rows.to_pylist()


def _balanced(batch: Batch) -> bool:
    return batch.rows_read == (
        batch.rows_loaded + batch.rows_quarantined + batch.rows_duplicate
    )


def _statement(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"00000000-0000-4000-8000-{n:012d}",
        "actor": {"objectType": "Agent", "name": f"Learner {n}", "mbox": f"mailto:l{n}@example.com"},
        "verb": {"id": ADL + "completed", "display": {"en-US": "completed"}},
        "object": {
            "id": f"https://lms.example.com/course/{n % 3}",
            "definition": {"name": {"en-US": f"Course {n % 3}"}},
        },
        "timestamp": "2025-03-04T10:00:00-05:00",
        **extra,
    }


def _jsonl(path: Path, *items: Any) -> Path:
    path.write_bytes(b"".join(orjson.dumps(i) + b"\n" for i in items))
    return path


def _quarantined(batch: Batch) -> list[tuple[int, str]]:
    return [(q.source_line, q.field) for q in batch.quarantine]


# --- the real third-party files ---------------------------------------------------------------


def test_every_real_file_is_listed():
    found = {p.relative_to(XAPI_DIR).as_posix() for p in XAPI_DIR.rglob("*.json")}
    assert found == set(REAL_FILES)


@pytest.mark.parametrize("rel", sorted(REAL_FILES))
def test_real_file_loads_or_is_quarantined_with_its_field(rel: str):
    batch = _real(rel)
    expected = REAL_FILES[rel]
    assert batch.source == "xapi" and batch.table == "lms_statement"
    assert batch.rows.schema == schema.table("lms_statement").schema.to_pyarrow()
    assert batch.rows_read == 1 and _balanced(batch)
    if isinstance(expected, int):
        assert batch.quarantine == []
        assert batch.rows_loaded == 1 and batch.rows.num_rows == expected
        assert set(batch.rows["source_file"].to_pylist()) == {rel}
        assert set(batch.rows["source_line"].to_pylist()) == {1}
    else:
        assert batch.rows.num_rows == 0 and batch.rows_quarantined == 1
        assert [(q.source_file, q.source_line, q.field) for q in batch.quarantine] == [
            (rel, 1, expected)
        ]
        assert all(q.source == "xapi" and q.reason for q in batch.quarantine)
        assert batch.quarantine[0].raw == (XAPI_DIR / rel).read_text().rstrip("\r\n")
        if expected == "":
            assert batch.quarantine[0].reason.startswith(NOT_A_STATEMENT)


def test_cmi5_session_passed_and_completed_once_each():
    files = sorted((XAPI_DIR / CMI5).glob("*.json"))
    batch = _read(*files, base=XAPI_DIR)
    assert (batch.rows_read, batch.rows_loaded, batch.rows_quarantined) == (8, 6, 2)
    rows = {r["verb"]: r for r in _rows(batch) if r["verb"] in ("passed", "completed")}
    assert [r["verb"] for r in _rows(batch)].count("passed") == 1
    assert [r["verb"] for r in _rows(batch)].count("completed") == 1
    passed, completed = rows["passed"], rows["completed"]
    for row in (passed, completed):
        assert row["actor_key"] == LEARNER and row["actor_kind"] == "account"
        assert row["actor_account_name"] == "Learner"
        assert row["actor_account_home"] == "http://example.org/"
        assert row["actor_name"] == "Learner's Name" and row["actor_email"] is None
        assert row["activity_name"] == "Introduction to Geology"
        assert row["registration"] == "351931cc-a660-4b33-a069-8d1622395c0e"
        assert row["grouping_id"] == (
            "http://course-repository.example.edu/identifiers/courses/02baafcf/aus/4c07"
        )
    # The sample's passed statement reports success and time, but carries no score at all.
    assert passed["success"] is True and passed["duration_seconds"] == pytest.approx(10.7)
    assert passed["score_scaled"] is None and passed["score_raw"] is None
    assert passed["timestamp"] == datetime(2016, 6, 9, 18, 47, 49, 542000, tzinfo=UTC)
    assert completed["completion"] is True
    assert completed["duration_seconds"] == pytest.approx(14.14)
    assert {q.source_file.rsplit("/", 1)[-1] for q in batch.quarantine} == {
        "02-lms_launch_data.json", "08-cmi5LearnerPreferences_data.json",
    }
    assert all(q.reason.startswith(NOT_A_STATEMENT) for q in batch.quarantine)


def test_spec_group_expands_to_its_members():
    rows = _rows(_real("spec/appendixA_long_example_group_attempted.json"))
    assert [(r["actor_key"], r["actor_kind"]) for r in rows] == [
        ("account:http://www.example.com|13936749", "account"),
        ("openid:http://toby.openid.example.org/", "openid"),
        ("sha1:ebd31e95054c018b10727ccffd2ef2ec3a016ee9", "mbox_sha1sum"),
    ]
    assert {r["group_key"] for r in rows} == {"mbox:teampb@example.com"}
    assert {r["statement_id"] for r in rows} == {"6690e6c9-3ef0-4ed3-8b37-7f3964730bee"}
    first = rows[0]
    assert first["actor_name"] == "Andrew Downes" and first["actor_account_name"] == "13936749"
    assert first["verb"] == "attended" and first["duration_seconds"] == 3600.0
    assert first["activity_name"] == "example meeting"
    assert first["activity_type"] == "http://adlnet.gov/expapi/activities/meeting"
    assert first["parent_id"] == "http://www.example.com/meetings/series/267"
    assert first["success"] is True and first["completion"] is True
    assert first["timestamp"] == datetime(2013, 5, 18, 5, 32, 34, 804000, tzinfo=UTC)
    assert first["timestamp_offset_minutes"] == 0 and first["stored"] == first["timestamp"]


def test_spec_simple_statement_values():
    (row,) = _rows(_real("spec/appendixA_simple_statement_completed_score.json"))
    assert row["actor_key"] == "mbox:example.learner@adlnet.gov"
    assert row["actor_email"] == "example.learner@adlnet.gov"
    assert row["verb_id"] == ADL + "attempted" and row["verb"] == "attempted"
    assert row["object_type"] == "Activity" and row["activity_name"] == "simple CBT course"
    assert row["score_scaled"] == 0.95 and row["duration_seconds"] == 1234.0
    assert row["is_voided"] is False and row["voided_statement_id"] is None


def test_unicode_activity_name_picks_en_us():
    (row,) = _rows(_real("conformance_v1_0_3_statements/unicode.json"))
    assert row["activity_name"] == "attended"
    assert row["activity_type"] == "http://adlnet.gov/expapi/activities/cmi.interaction"


def test_voiding_statements_name_their_target_but_void_nothing_here():
    for rel, target in [
        ("conformance_v1_0_3_statements/voiding.json", "8f87ccde-bb56-4c2e-ab83-44982ef22df0"),
        ("spec/statement_actor_agent.json", "e05aa883-acaf-40ad-bf54-02c8ce485fb0"),
    ]:
        (row,) = _rows(_real(rel))
        assert row["verb"] == "voided" and row["object_type"] == "StatementRef"
        assert row["voided_statement_id"] == target == row["activity_id"]
        assert row["is_voided"] is False


def test_other_object_types():
    (sub,) = _rows(_real("spec/statement_planned.json"))
    assert sub["object_type"] == "SubStatement" and sub["activity_id"] is None
    (agent,) = _rows(_real("conformance_v1_0_3_statements/object_agent_default.json"))
    assert agent["object_type"] == "Agent" and agent["activity_id"] is None
    (ref,) = _rows(_real("spec/statement_result_comment.json"))
    assert ref["object_type"] == "StatementRef" and ref["voided_statement_id"] is None


def test_all_real_files_together_balance():
    batch = _read(*sorted(XAPI_DIR.rglob("*.json")), base=XAPI_DIR)
    loaded = [rel for rel, v in REAL_FILES.items() if isinstance(v, int)]
    assert batch.rows_read == len(REAL_FILES) and batch.files == len(REAL_FILES)
    assert batch.rows_loaded == len(loaded) and _balanced(batch)
    assert batch.rows.num_rows == sum(REAL_FILES[rel] for rel in loaded)  # type: ignore[misc]
    # Conformance templates carry neither timestamp nor stored: counted in a note.
    assert any("neither timestamp nor stored" in note for note in batch.notes)


# --- statement ids ------------------------------------------------------------------------------


def test_statement_without_id_gets_a_stable_uuid(tmp_path: Path):
    statement = _statement(1)
    del statement["id"]
    path = _jsonl(tmp_path / "a.jsonl", statement, _statement(2))
    first = _rows(_read(path))[0]["statement_id"]
    assert uuid.UUID(first).version == 5
    assert first == _rows(_read(path))[0]["statement_id"]
    reordered = dict(reversed(list(statement.items())))
    assert _rows(_read(_jsonl(tmp_path / "b.jsonl", reordered, _statement(3))))[0][
        "statement_id"
    ] == first


def test_statement_id_is_lower_cased_and_must_be_a_uuid(tmp_path: Path):
    path = _jsonl(
        tmp_path / "s.jsonl",
        _statement(1, id="6690E6C9-3EF0-4ED3-8B37-7F3964730BEE"),
        _statement(2, id="not-a-uuid"),
        _statement(3, id=42),
    )
    batch = _read(path)
    assert batch.rows["statement_id"].to_pylist() == ["6690e6c9-3ef0-4ed3-8b37-7f3964730bee"]
    assert _quarantined(batch) == [(2, "id"), (3, "id")]


# --- file forms ---------------------------------------------------------------------------------


def _mixed_statements() -> list[dict[str, Any]]:
    group = {
        "objectType": "Group",
        "member": [{"mbox": "mailto:a@example.com"}, {"account": {"homePage": "h:", "name": "b"}}],
    }
    return [
        _statement(1),
        _statement(2, actor=group, result={"score": {"scaled": -0.5}, "duration": "PT1M30S"}),
        _statement(3, timestamp="2025-03-04T10:00:00+05:30", stored="2025-03-04T05:00:01Z"),
        _statement(4, verb={"id": ADL + "voided"},
                   object={"objectType": "StatementRef", "id": _statement(1)["id"]}),
        _statement(5, object={"objectType": "Activity"}),  # no id: quarantined
        _statement(1),  # duplicate
    ]


def test_array_page_and_json_lines_give_the_same_rows(tmp_path: Path):
    statements = _mixed_statements()
    array = tmp_path / "array.json"
    array.write_text(json.dumps(statements, indent=2))
    page = tmp_path / "page.json"
    page.write_text(json.dumps({"statements": statements, "more": ""}))
    lines = tmp_path / "lines.json"  # JSON lines under a .json name, with a blank line
    lines.write_text(json.dumps(statements[0]) + "\n\n" + "\n".join(map(json.dumps, statements[1:])))
    batches = {p.name: _read(p) for p in (array, page, lines)}

    def content(batch: Batch) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.items() if k not in ("source_file", "source_line")}
                for r in _rows(batch)]

    assert content(batches["array.json"]) == content(batches["page.json"])
    assert content(batches["array.json"]) == content(batches["lines.json"])
    for batch in batches.values():
        assert (batch.rows_read, batch.rows_loaded, batch.rows_quarantined,
                batch.rows_duplicate) == (6, 4, 1, 1)
        assert _balanced(batch)
    # Arrays and pages number statements from 1; JSON lines by line (line 2 is blank).
    assert batches["array.json"].rows["source_line"].to_pylist() == [1, 2, 2, 3, 4]
    assert batches["page.json"].rows["source_line"].to_pylist() == [1, 2, 2, 3, 4]
    assert batches["lines.json"].rows["source_line"].to_pylist() == [1, 3, 3, 4, 5]
    assert _quarantined(batches["array.json"]) == [(5, "object.id")]
    assert _quarantined(batches["lines.json"]) == [(6, "object.id")]
    # An element's raw text is quoted exactly as written in the file.
    assert batches["array.json"].quarantine[0].raw == json.dumps(statements[4], indent=2).replace(
        "\n", "\n  "
    )


def test_rows_carry_converted_values(tmp_path: Path):
    rows = _rows(_read(_jsonl(tmp_path / "s.jsonl", *_mixed_statements())))
    by_id = {(r["statement_id"][-1], r["actor_key"]): r for r in rows}
    group_a = by_id[("2", "mbox:a@example.com")]
    assert group_a["group_key"] == "group:anonymous:00000000-0000-4000-8000-000000000002"
    assert by_id[("2", "account:h:|b")]["group_key"] == group_a["group_key"]
    assert group_a["score_scaled"] == -0.5 and group_a["duration_seconds"] == 90.0
    offset = by_id[("3", "mbox:l3@example.com")]
    assert offset["timestamp"] == datetime(2025, 3, 4, 4, 30, tzinfo=UTC)
    assert offset["timestamp_offset_minutes"] == 330
    assert offset["stored"] == datetime(2025, 3, 4, 5, 0, 1, tzinfo=UTC)
    first = by_id[("1", "mbox:l1@example.com")]
    assert first["timestamp"] == datetime(2025, 3, 4, 15, 0, tzinfo=UTC)
    assert first["timestamp_offset_minutes"] == -300 and first["stored"] is None
    assert by_id[("4", "mbox:l4@example.com")]["voided_statement_id"] == _statement(1)["id"]


def test_single_statement_document_is_line_one(tmp_path: Path):
    path = tmp_path / "one.json"
    path.write_text(json.dumps(_statement(1), indent=4))
    batch = _read(path)
    assert batch.rows_loaded == 1 and batch.rows["source_line"].to_pylist() == [1]


def test_lrs_page_with_more_is_noted(tmp_path: Path):
    path = tmp_path / "page.json"
    path.write_text(json.dumps({"statements": [_statement(1)], "more": "/xapi/statements?p=2"}))
    batch = _read(path)
    assert batch.rows_loaded == 1 and any("more statements" in n for n in batch.notes)


def test_duplicates_across_and_within_files_load_once(tmp_path: Path):
    a = _jsonl(tmp_path / "a.jsonl", _statement(1), _statement(2), _statement(1))
    b = tmp_path / "b.json"
    b.write_text(json.dumps([_statement(2), _statement(3)]))
    batch = _read(a, b)
    assert batch.rows["statement_id"].to_pylist() == [_statement(n)["id"] for n in (1, 2, 3)]
    assert (batch.rows_read, batch.rows_loaded, batch.rows_duplicate) == (5, 3, 2)
    assert batch.quarantine == [] and batch.files == 2 and _balanced(batch)


def test_truncated_line_is_quarantined_and_the_rest_loads(tmp_path: Path):
    good = [orjson.dumps(_statement(n)).decode() for n in range(1, 5)]
    path = tmp_path / "cut.jsonl"
    path.write_text("\n".join([good[0], good[1][:57], good[2], "", good[3][:-1]]))
    batch = _read(path)
    assert batch.rows["source_line"].to_pylist() == [1, 3]
    assert _quarantined(batch) == [(2, ""), (5, "")]
    assert all(q.reason.startswith("malformed JSON: ") for q in batch.quarantine)
    assert batch.quarantine[0].raw == good[1][:57]
    assert (batch.rows_read, batch.rows_loaded) == (4, 2) and _balanced(batch)


def test_truncated_array_keeps_the_statements_before_the_cut(tmp_path: Path):
    path = tmp_path / "cut.json"
    text = json.dumps([_statement(1), _statement(2), _statement(3)])
    path.write_text(text[: text.index('"id": "00000000-0000-4000-8000-000000000003"') + 20])
    batch = _read(path)
    assert batch.rows["source_line"].to_pylist() == [1, 2]
    assert _quarantined(batch) == [(3, "")]
    assert "malformed JSON" in batch.quarantine[0].reason
    assert batch.rows_read == 3 and _balanced(batch)


def test_malformed_document_is_one_quarantined_statement(tmp_path: Path):
    path = tmp_path / "bad.json"
    path.write_text('{\n  "actor": {"mbox": "mailto:a@example.com"},\n  "verb": \n}')
    batch = _read(path)
    assert _quarantined(batch) == [(1, "")] and batch.rows_read == 1
    assert batch.quarantine[0].reason.startswith("malformed JSON: ")
    assert batch.quarantine[0].raw == path.read_text()


def test_json_lines_with_a_broken_first_line(tmp_path: Path):
    path = tmp_path / "s.json"
    path.write_text('{"actor": {"mbox": "mailto:a@e\n' + json.dumps(_statement(2)) + "\n")
    batch = _read(path)
    assert _quarantined(batch) == [(1, "")]
    assert batch.rows["source_line"].to_pylist() == [2]


@pytest.mark.parametrize("form", ["jsonl", "document"])
def test_file_that_is_not_utf8_is_refused_whole(tmp_path: Path, form: str):
    statements = [_statement(2), _statement(1, object={"id": "https://x.example/é", "definition": {
        "name": {"fr": "Café"}}})]
    if form == "jsonl":
        text = "\n".join(json.dumps(s, ensure_ascii=False) for s in statements)
    else:
        text = json.dumps(statements, ensure_ascii=False)
    path = tmp_path / "latin1.json"
    path.write_bytes(text.encode("latin-1"))
    batch = _read(path)
    assert batch.rows.num_rows == 0 and batch.rows_read == 0 and _balanced(batch)
    assert [(q.source_line, q.field) for q in batch.quarantine] == [(0, "")]
    assert "not UTF-8" in batch.quarantine[0].reason
    assert any("not UTF-8" in note for note in batch.notes)


def test_utf8_with_bom_and_non_ascii_text(tmp_path: Path):
    statement = _statement(1, object={"id": "https://x.example/c", "definition": {
        "name": {"fr": "Café", "de": "Kaffee"}}})
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + orjson.dumps(statement) + b"\n" + orjson.dumps(_statement(2)))
    rows = _rows(_read(path))
    assert [r["activity_name"] for r in rows] == ["Café", "Course 2"]


def test_empty_file_and_values_that_are_not_statements(tmp_path: Path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    odd = _jsonl(tmp_path / "odd.jsonl", [1, 2], "text", None, {"launchMode": "Normal"}, 7)
    batch = _read(empty, odd)
    assert batch.rows_read == 5 and batch.rows_quarantined == 5 and _balanced(batch)
    assert all(q.reason.startswith(NOT_A_STATEMENT) for q in batch.quarantine)
    assert "a JSON array" in batch.quarantine[0].reason
    assert "launchMode" in batch.quarantine[3].reason
    assert any("empty" in note for note in batch.notes)


# --- rules --------------------------------------------------------------------------------------


BAD_STATEMENTS: list[tuple[dict[str, Any], str]] = [
    (_statement(1, actor={"mbox": "a@example.com"}), "actor.mbox"),
    (_statement(1, actor={"mbox": "mailto:a@example.com", "openid": "http://o/"}), "actor"),
    (_statement(1, actor={"mbox_sha1sum": "abc"}), "actor.mbox_sha1sum"),
    (_statement(1, actor={"account": {"name": "x"}}), "actor.account.homePage"),
    (_statement(1, actor={"objectType": "Group", "name": "Team"}), "actor"),
    (_statement(1, actor={"objectType": "Group", "member": [{"name": "nobody"}]}),
     "actor.member[0]"),
    (_statement(1, actor={"objectType": "Activity", "id": "x:y"}), "actor.objectType"),
    (_statement(1, verb={"id": "completed"}), "verb.id"),
    (_statement(1, object={"objectType": "StatementRef", "id": "nope"}), "object.id"),
    (_statement(1, object={"objectType": "SubStatement", "actor": {"mbox": "mailto:a@b.c"},
                           "verb": {"id": ADL + "x"},
                           "object": {"objectType": "SubStatement"}}), "object.object.objectType"),
    (_statement(1, object={"objectType": "Thing", "id": "x:y"}), "object.objectType"),
    (_statement(1, verb={"id": ADL + "voided"}), "object.objectType"),
    (_statement(1, context={"contextActivities": {"parent": {"objectType": "Activity"}}}),
     "context.contextActivities.parent.id"),
    (_statement(1, context={"registration": "abc"}), "context.registration"),
    (_statement(1, result={"score": {"scaled": 1.5}}), "result.score.scaled"),
    (_statement(1, result={"score": {"raw": 11, "min": 0, "max": 10}}), "result.score.raw"),
    (_statement(1, result={"score": {"raw": "10"}}), "result.score.raw"),
    (_statement(1, result={"success": "yes"}), "result.success"),
    (_statement(1, result={"duration": "14 minutes"}), "result.duration"),
    (_statement(1, result={"duration": "-PT5S"}), "result.duration"),
    (_statement(1, timestamp="yesterday"), "timestamp"),
    (_statement(1, stored="2025-13-01T00:00:00Z"), "stored"),
    (_statement(1, authority={"objectType": "Agent", "name": "LRS"}), "authority"),
]


@pytest.mark.parametrize(("statement", "field"), BAD_STATEMENTS)
def test_invalid_statement_is_quarantined_with_its_field(
    tmp_path: Path, statement: dict[str, Any], field: str
):
    batch = _read(_jsonl(tmp_path / "s.jsonl", _statement(0), statement))
    assert batch.rows_loaded == 1 and batch.rows_quarantined == 1 and _balanced(batch)
    assert _quarantined(batch) == [(2, field)]
    assert batch.quarantine[0].raw == orjson.dumps(statement).decode()


def test_every_fault_of_a_statement_is_listed_but_counted_once(tmp_path: Path):
    bad = _statement(1, actor={"name": "nobody"}, verb={}, timestamp="soon")
    batch = _read(_jsonl(tmp_path / "s.jsonl", bad))
    assert _quarantined(batch) == [(1, "actor"), (1, "verb.id"), (1, "timestamp")]
    assert batch.rows_quarantined == 1 and batch.rows_read == 1 and _balanced(batch)


def test_repeated_keys_are_found_in_every_form(tmp_path: Path):
    good = json.dumps(_statement(1))
    twice = json.dumps(_statement(2))[:-1] + ', "verb": {"id": "' + ADL + 'failed"}}'
    sub = {"objectType": "SubStatement", "actor": {"mbox": "mailto:a@b.c"},
           "verb": {"id": ADL + "x"}, "object": {"id": "x:y"}}
    nested = json.dumps(_statement(3, object=sub)).replace(
        '"actor": {"mbox": "mailto:a@b.c"}',
        '"actor": {"mbox": "mailto:a@b.c"}, "actor": {"mbox": "mailto:z@b.c"}',
    )
    lines = tmp_path / "s.jsonl"
    lines.write_text("\n".join([good, twice, nested]))
    array = tmp_path / "s.json"
    array.write_text(f"[{good},\n{twice},\n{nested}]")
    for path in (lines, array):
        batch = _read(path)
        assert _quarantined(batch) == [(2, "verb"), (3, "object.actor")], path.name
        assert batch.quarantine[0].raw == twice


def test_substatement_alone_does_not_look_repeated(tmp_path: Path):
    planned = XAPI_DIR / "spec" / "statement_planned.json"
    batch = _read(_jsonl(tmp_path / "s.jsonl", json.loads(planned.read_text())))
    assert batch.rows_loaded == 1 and batch.quarantine == []


def test_missing_times(tmp_path: Path):
    only_stored = _statement(1, stored="2025-03-04T15:00:01+01:00")
    del only_stored["timestamp"]
    neither = _statement(2)
    del neither["timestamp"]
    naive = _statement(3, timestamp="2025-03-04T10:00:00")
    batch = _read(_jsonl(tmp_path / "s.jsonl", only_stored, neither, naive))
    rows = _rows(batch)
    assert rows[0]["timestamp"] == rows[0]["stored"] == datetime(2025, 3, 4, 14, 0, 1, tzinfo=UTC)
    assert rows[0]["timestamp_offset_minutes"] == 60
    assert rows[1]["timestamp"] is None and rows[1]["timestamp_offset_minutes"] is None
    assert rows[2]["timestamp"] == datetime(2025, 3, 4, 10, tzinfo=UTC)
    assert rows[2]["timestamp_offset_minutes"] == 0
    assert any(n.startswith("1 statement(s) have neither timestamp nor stored") for n in batch.notes)


def test_identified_group_without_members_is_one_row(tmp_path: Path):
    team = {"objectType": "Group", "name": "Team", "mbox": "mailto:Team@Example.com"}
    (row,) = _rows(_read(_jsonl(tmp_path / "s.jsonl", _statement(1, actor=team))))
    assert row["actor_key"] == row["group_key"] == "mbox:team@example.com"


def test_accounting_balances_on_a_mixed_file(tmp_path: Path):
    path = tmp_path / "mixed.jsonl"
    items = [orjson.dumps(s).decode() for s in _mixed_statements()]
    items += ["{broken", '"a string"', orjson.dumps(_statement(7, verb={})).decode(), items[1]]
    path.write_text("\n".join(items) + "\n")
    batch = _read(path)
    assert (batch.rows_read, batch.rows_loaded, batch.rows_quarantined,
            batch.rows_duplicate) == (10, 4, 4, 2)
    assert _balanced(batch)


def test_progress_reports_statements_read(tmp_path: Path):
    seen: list[int] = []
    path = _jsonl(tmp_path / "s.jsonl", *(_statement(n) for n in range(5)))
    batch = read_xapi([(path, "s.jsonl")], progress=seen.append)
    assert seen and seen[-1] == batch.rows_read == 5 and seen == sorted(seen)


def test_unreadable_file_is_a_source_error(tmp_path: Path):
    with pytest.raises(SourceError, match=r"missing\.jsonl"):
        read_xapi([(tmp_path / "missing.jsonl", "missing.jsonl")])


# --- blocks and worker processes -----------------------------------------------------------------


def _big_file(path: Path, n: int) -> Path:
    """JSON lines with every kind of mess spread over many blocks."""
    def made(i: int) -> dict[str, Any]:
        statement = _statement(i, result={"duration": f"PT{i % 50}.{i % 7}S"})
        if i % 97 == 5:
            statement["actor"] = {"objectType": "Group", "member": [
                {"mbox": f"mailto:m{i}@example.com"}, {"openid": f"http://o/{i}"}]}
        return statement

    lines: list[bytes] = []
    for i in range(n):
        lines.append(orjson.dumps(made(i)))
        if i % 53 == 0:
            lines.append(orjson.dumps(made(i // 2)))  # duplicate of an earlier one
        if i % 61 == 7:
            lines.append(orjson.dumps(_statement(i // 3)))  # an earlier id with other content: a conflict
        if i % 71 == 0:
            lines.append(b'{"actor": ')
        if i % 89 == 0:
            lines.append(b"")
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_blocks_and_workers_give_the_same_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = _big_file(tmp_path / "big.jsonl", 3000)
    monkeypatch.setattr(parallel, "worker_count", lambda: 1)
    whole = _read(path)  # one block
    monkeypatch.setattr(framing, "BLOCK_BYTES", 50_000)
    blocks = _read(path)  # many blocks, in this process
    monkeypatch.setattr(parallel, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(parallel, "worker_count", lambda: 2)
    workers = _read(path)  # many blocks, in two worker processes
    for batch in (blocks, workers):
        assert batch.rows.equals(whole.rows)
        assert batch.quarantine == whole.quarantine
        assert (batch.rows_read, batch.rows_loaded, batch.rows_duplicate) == (
            whole.rows_read, whole.rows_loaded, whole.rows_duplicate
        )
    assert whole.rows_duplicate == len(range(0, 3000, 53))
    assert whole.rows_quarantined == len(range(0, 3000, 71)) + len(range(7, 3000, 61)) and _balanced(whole)
    assert sum("appears again with different content" in q.reason for q in whole.quarantine) == len(range(7, 3000, 61))


def test_a_block_that_is_not_utf8_refuses_the_whole_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    path = _big_file(tmp_path / "big.jsonl", 1000)
    with path.open("ab") as fh:
        fh.write(orjson.dumps(_statement(5000)).replace(b"Learner", b"L\xe9arner") + b"\n")
    monkeypatch.setattr(framing, "BLOCK_BYTES", 20_000)
    batch = _read(path)
    assert batch.rows.num_rows == 0 and batch.rows_read == 0
    assert _quarantined(batch) == [(0, "")] and "not UTF-8" in batch.quarantine[0].reason


# --- the small parsers ----------------------------------------------------------------------------


def test_parse_duration_examples():
    assert parse_duration("PT1234S") == 1234.0
    assert parse_duration("PT1H0M0S") == 3600.0
    assert parse_duration("PT10.7S") == pytest.approx(10.7)
    assert parse_duration("P1DT2H") == 93600.0
    assert parse_duration("P2W") == 14 * 86400.0
    assert parse_duration("PT0.5H") == 1800.0
    for bad in ("", "PT", "P", "P1DT", "14M", "PT1.5.5S", "PT-5S", "PTxS", "PT1M1H", 12):
        with pytest.raises(ValueError, match="duration"):
            parse_duration(bad)  # type: ignore[arg-type]


@given(
    days=st.integers(0, 40),
    hours=st.integers(0, 200),
    minutes=st.integers(0, 200),
    centis=st.integers(0, 10**7),
    drop_zeros=st.booleans(),
)
def test_parse_duration_matches_an_independent_sum(
    days: int, hours: int, minutes: int, centis: int, drop_zeros: bool
):
    seconds = f"{centis // 100}.{centis % 100:02d}"
    parts = [(hours, "H"), (minutes, "M")]
    time = "".join(f"{v}{u}" for v, u in parts if v or not drop_zeros) + f"{seconds}S"
    text = (f"P{days}D" if days or not drop_zeros else "P") + "T" + time
    expected = days * 86400 + hours * 3600 + minutes * 60 + centis / 100
    assert parse_duration(text) == pytest.approx(expected, rel=1e-12, abs=1e-6)


def test_parse_timestamp_examples():
    moment, offset = parse_timestamp("2013-05-18T05:32:34.804+02:00")
    assert moment == datetime(2013, 5, 18, 3, 32, 34, 804000, tzinfo=UTC) and offset == 120
    assert moment.tzinfo is UTC
    assert parse_timestamp("2016-06-09T18:47:34.847Z") == (
        datetime(2016, 6, 9, 18, 47, 34, 847000, tzinfo=UTC), 0
    )
    assert parse_timestamp("2016-06-09T18:47:34") == (datetime(2016, 6, 9, 18, 47, 34, tzinfo=UTC), 0)
    for bad in ("", "yesterday", "2016-02-30T00:00:00Z", None):
        with pytest.raises(ValueError, match="timestamp"):
            parse_timestamp(bad)  # type: ignore[arg-type]


@given(
    moment=st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1)),
    offset=st.integers(-14 * 60, 14 * 60),
    zulu=st.booleans(),
)
def test_parse_timestamp_keeps_the_instant_and_the_offset(
    moment: datetime, offset: int, zulu: bool
):
    written = moment.replace(tzinfo=timezone(timedelta(minutes=offset)))
    text = written.isoformat()
    if zulu and offset == 0:
        text = text.removesuffix("+00:00") + "Z"
    parsed, parsed_offset = parse_timestamp(text)
    assert parsed == written and parsed.tzinfo is UTC
    assert parsed_offset == offset


_EMAIL = st.tuples(
    st.text("abcdefghijklmnopqrstuvwxyz0123456789._-", min_size=1, max_size=20),
    st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=15),
    st.sampled_from(["com", "org", "co.uk"]),
).map(lambda t: f"{t[0]}@{t[1]}.{t[2]}")


@given(email=_EMAIL, flips=st.lists(st.booleans(), min_size=1, max_size=60))
def test_actor_identities_mbox_ignores_case(email: str, flips: list[bool]):
    mixed = "".join(c.upper() if flips[i % len(flips)] else c for i, c in enumerate(email))
    scheme = "MAILTO:" if flips[0] else "mailto:"
    (lower,) = actor_identities({"mbox": f"mailto:{email}"})
    (upper,) = actor_identities({"objectType": "Agent", "mbox": scheme + mixed})
    assert lower == upper == Identity(f"mbox:{email}", "mbox", email)


_IFIS = {
    "mbox": "mailto:someone@example.com",
    "mbox_sha1sum": "ebd31e95054c018b10727ccffd2ef2ec3a016ee9",
    "openid": "http://someone.openid.example.org/",
    "account": {"homePage": "https://lms.example.com", "name": "L1"},
}


@given(chosen=st.sets(st.sampled_from(sorted(_IFIS))), name=st.none() | st.text(max_size=10))
def test_actor_identities_needs_exactly_one_identifier(chosen: set[str], name: str | None):
    agent: dict[str, Any] = {"objectType": "Agent", **{k: _IFIS[k] for k in chosen}}
    if name is not None:
        agent["name"] = name
    if len(chosen) == 1:
        (identity,) = actor_identities(agent)
        assert identity.kind == next(iter(chosen)) and identity.name == name
    else:
        with pytest.raises(InvalidStatement) as raised:
            actor_identities(agent)
        assert raised.value.field == "actor"


def test_actor_identities_of_a_group():
    members = [{"mbox": "mailto:A@x.org"}, {"openid": "http://b/"}]
    assert [i.key for i in actor_identities({"objectType": "Group", "member": members})] == [
        "mbox:a@x.org", "openid:http://b/",
    ]
    (account,) = actor_identities({"account": {"homePage": "https://h", "name": "n"}})
    assert account == Identity("account:https://h|n", "account", None, "n", "https://h")
    with pytest.raises(InvalidStatement, match="member"):
        actor_identities({"objectType": "Group", "member": []})


def test_the_documented_conformance_table_is_what_the_reader_does():
    # docs/data-contract.md lists every conformance template with what the product does with it.
    doc = (DATA_DIR.parents[1] / "docs" / "data-contract.md").read_text(encoding="utf-8")
    section = doc.split("### The xAPI conformance suite's statements", 1)[1].split("\n### ", 1)[0]
    rows = [line.split("|")[1:-1] for line in section.splitlines() if line.startswith("| `")]
    documented = {cells[0].strip().strip("`"): cells[2].strip() for cells in rows}
    expected = {rel.split("/", 1)[1]: ("loaded" if isinstance(want, int) else f"quarantined: `{want}`")
                for rel, want in REAL_FILES.items() if rel.startswith("conformance_v1_0_3_statements/")}
    assert documented == expected
    loads = sum(says == "loaded" for says in documented.values())
    assert f"All {loads} valid templates load and all {len(documented) - loads} invalid ones" in section
    for name, says in documented.items():
        batch = _real(f"conformance_v1_0_3_statements/{name}")
        if says == "loaded":
            assert batch.rows_loaded == 1 and not batch.quarantine, name
        else:
            assert batch.rows_loaded == 0 and says == f"quarantined: `{batch.quarantine[0].field}`", name
