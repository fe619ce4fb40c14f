"""Arrays and LRS pages read a statement at a time (``xapi.document``), and rows handed on as they are read.

The oracles: the same file read with the chunk size cut down to a few bytes (every value then
straddles chunk ends), the standard library's JSON parser, and the whole-bytes UTF-8 check.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from training_roi.ingest.xapi import document, framing, read_xapi, rows
from training_roi.warehouse.batch import Batch

ADL = "http://adlnet.gov/expapi/verbs/"


def _statement(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"00000000-0000-4000-8000-{n:012d}",
        "actor": {"objectType": "Agent", "name": f"Léarner {n} \u2603", "mbox": f"mailto:l{n}@example.com"},
        "verb": {"id": ADL + ("passed" if n % 2 else "completed"), "display": {"en-US": "done"}},
        "object": {"id": f"https://lms.example.com/course/{n % 3}",
                   "definition": {"name": {"en-US": f"Course \"{n % 3}\"\n"}}},
        "result": {"score": {"scaled": n / 100, "raw": n * 1234567}, "success": n % 2 == 1},
        "timestamp": f"2025-03-{n % 28 + 1:02d}T10:00:00Z",
        **extra,
    }


def _mixed() -> list[Any]:
    statements: list[Any] = [_statement(n) for n in range(1, 30)]
    statements[5] = {k: v for k, v in _statement(6).items() if k != "verb"}  # quarantined
    statements.append(_statement(3))  # a duplicate
    statements.append({**_statement(31), "verb": {"id": ADL + "voided"},
                       "object": {"objectType": "StatementRef", "id": _statement(2)["id"]}})
    statements.append(_statement(32, timestamp=None) | {"timestamp": "2025-03-01T10:00:00+14:00"})
    statements.append(7)  # not a statement
    return statements


def _same(a: Batch, b: Batch) -> None:
    assert a.rows.equals(b.rows)
    assert a.quarantine == b.quarantine and a.notes == b.notes
    assert (a.rows_read, a.rows_loaded, a.rows_duplicate) == (b.rows_read, b.rows_loaded, b.rows_duplicate)


@pytest.mark.parametrize("form", ["array", "indented", "page", "page-more-first"])
def test_every_chunk_size_reads_the_same_statements(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, form: str):
    values = _mixed()
    text = {
        "array": json.dumps(values, ensure_ascii=False),
        "indented": json.dumps(values, indent=3),
        "page": json.dumps({"statements": values, "more": "/xapi/statements?p=2"}, ensure_ascii=False),
        "page-more-first": json.dumps({"more": "/xapi/statements?p=2", "statements": values}, indent=1),
    }[form]
    path = tmp_path / "statements.json"
    path.write_text(text, encoding="utf-8")
    whole = read_xapi([(path, "statements.json")])
    assert whole.rows_read == len(values) and whole.rows_duplicate == 1
    assert [q.source_line for q in whole.quarantine] == [6, len(values)]
    assert any("more statements" in n for n in whole.notes) == form.startswith("page")
    for chunk in (1, 2, 3, 5, 64, 1000):
        monkeypatch.setattr(document, "CHUNK_BYTES", chunk)
        _same(read_xapi([(path, "statements.json")]), whole)


def test_the_rows_equal_those_of_the_same_statements_as_json_lines(tmp_path: Path):
    values = _mixed()
    array = tmp_path / "a.json"
    array.write_text(json.dumps(values))
    lines = tmp_path / "a.jsonl"
    lines.write_text("\n".join(map(json.dumps, values)))
    a, b = read_xapi([(array, "x")]), read_xapi([(lines, "x")])
    assert a.rows.drop_columns(["source_line"]).equals(b.rows.drop_columns(["source_line"]))
    assert [(q.source_line, q.field) for q in a.quarantine] == [(q.source_line, q.field) for q in b.quarantine]


def test_a_statement_orjson_refuses_is_quarantined_alone(tmp_path: Path):
    """NaN is read by the standard library's parser but is not JSON: that statement alone is quarantined."""
    good = [json.dumps(_statement(n)) for n in (1, 2, 3)]
    bad = good[1].replace('"raw": 2469134', '"raw": NaN')
    assert bad != good[1]
    path = tmp_path / "nan.json"
    path.write_text(f"[{good[0]}, {bad}, {good[2]}]")
    batch = read_xapi([(path, "nan.json")])
    assert batch.rows["source_line"].to_pylist() == [1, 3]
    assert [(q.source_line, q.reason.startswith("malformed JSON")) for q in batch.quarantine] == [(2, True)]
    assert batch.quarantine[0].raw == bad and batch.rows_read == 3


def test_text_after_the_array_is_quarantined(tmp_path: Path):
    path = tmp_path / "two.json"
    path.write_text(json.dumps([_statement(1), _statement(2)], indent=1) + " " + json.dumps([_statement(3)]))
    batch = read_xapi([(path, "two.json")])
    assert batch.rows["source_line"].to_pylist() == [1, 2]
    assert [q.source_line for q in batch.quarantine] == [3] and batch.rows_read == 3
    assert "more text follows the end" in batch.quarantine[0].reason
    assert batch.quarantine[0].raw.startswith('[{"id": "00000000-0000-4000-8000-000000000003"')


def test_a_statement_longer_than_the_limit_is_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(document, "STATEMENT_LIMIT", 3000)
    monkeypatch.setattr(document, "CHUNK_BYTES", 512)
    long = _statement(2, context={"extensions": {"https://x.example/notes": "n" * 5000}})
    path = tmp_path / "long.json"
    path.write_text(json.dumps([_statement(1), long, _statement(3)]))
    batch = read_xapi([(path, "long.json")])
    assert batch.rows["source_line"].to_pylist() == [1]
    (q,) = batch.quarantine
    assert q.source_line == 2
    assert "statement longer than 3,000 characters" in q.reason and "statement 2 onwards could not be read" in q.reason
    one = tmp_path / "one.json"
    one.write_text(json.dumps(long))
    (q,) = read_xapi([(one, "one.json")]).quarantine
    assert q.source_line == 1 and "is not read" in q.reason


def test_values_nested_without_end_are_a_fault_not_a_crash(tmp_path: Path):
    path = tmp_path / "deep.json"
    path.write_text("[" + json.dumps(_statement(1)) + "," + "[" * 100_000 + "]" * 100_000 + "]")
    batch = read_xapi([(path, "deep.json")])
    assert batch.rows["source_line"].to_pylist() == [1]
    assert [q.source_line for q in batch.quarantine] == [2] and "nested too deeply" in batch.quarantine[0].reason


def test_a_file_cut_inside_a_statement_keeps_those_before(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    text = json.dumps([_statement(n) for n in range(1, 6)])
    path = tmp_path / "cut.json"
    cut = text[: text.index('"id": "00000000-0000-4000-8000-000000000004"') + 30]
    path.write_text(cut)
    for chunk in (7, 1 << 20):
        monkeypatch.setattr(document, "CHUNK_BYTES", chunk)
        batch = read_xapi([(path, "cut.json")])
        assert batch.rows["source_line"].to_pylist() == [1, 2, 3]
        assert [q.source_line for q in batch.quarantine] == [4] and batch.rows_read == 4
        assert cut.endswith(batch.quarantine[0].raw) and batch.quarantine[0].raw.startswith('{"id": ')
        assert "Unterminated string;" in batch.quarantine[0].reason


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_JSON, max_size=8), st.integers(1, 40), st.sampled_from([None, 0, 2]), st.booleans())
def test_elements_are_the_array_items_whatever_the_chunks(values: list[Any], chunk: int, indent: int | None,
                                                          page: bool):
    doc_value: Any = {"statements": values, "more": "m"} if page else values
    data = json.dumps(doc_value, indent=indent, ensure_ascii=bool(chunk % 2)).encode()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(document, "CHUNK_BYTES", chunk)
        doc = document.Document(io.BytesIO(data), raw_limit=100)
        texts = list(doc.elements())
    assert doc.fault is None and doc.form == ("page" if page else "array")
    assert [json.loads(t) for t in texts] == values
    assert doc.more == ("m" if page else None)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40) | st.text(max_size=20).map(lambda t: t.encode() + b"\xe2\x82"), st.integers(1, 9))
def test_utf8_check_in_chunks_agrees_with_the_whole_bytes_check(data: bytes, chunk: int):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(document, "CHUNK_BYTES", chunk)
        assert document.utf8_problem_in(io.BytesIO(data)) == framing.utf8_problem(data)


def test_a_sink_receives_every_row_and_the_batch_keeps_the_counts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(rows, "FLUSH_ROWS", 4)
    monkeypatch.setattr(framing, "BLOCK_BYTES", 3000)
    values = _mixed()
    array = tmp_path / "a.json"
    array.write_text(json.dumps(values))
    lines = tmp_path / "b.jsonl"
    lines.write_text("\n".join(orjson.dumps(_statement(n)).decode() for n in range(20, 60)))
    files = [(array, "a.json"), (lines, "b.jsonl")]
    whole = read_xapi(files)
    received: list[pa.Table] = []
    streamed = read_xapi(files, sink=received.append)
    assert len(received) > 3 and streamed.rows.num_rows == 0
    assert pa.concat_tables(received).equals(whole.rows)
    assert streamed.quarantine == whole.quarantine and streamed.notes == whole.notes
    assert (streamed.rows_read, streamed.rows_loaded, streamed.rows_duplicate) == (
        whole.rows_read, whole.rows_loaded, whole.rows_duplicate)
