"""docs/data-contract.md describes every source, field, value type and mapping option the code declares.

The expectations are read from the code (the source definitions in ``ingest/sources.py``, the
``lms_statement`` table in ``warehouse/schema.py``, the mapping models in ``ingest/mapping.py``),
so a field added to the code without its line in the document fails here, and so does a line
in the document for a field the code does not read.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from training_roi.ingest.folder import XAPI_FILES
from training_roi.ingest.mapping import FieldMap, FormatsMap, Mapping, SourceMap, load_mapping, shipped_mappings
from training_roi.ingest.sources import SOURCES, SourceSpec
from training_roi.ingest.tabular import FIELD_KINDS
from training_roi.warehouse.schema import table

DOC = (Path(__file__).resolve().parents[1] / "docs" / "data-contract.md").read_text(encoding="utf-8")

# How the document names each field kind of the code.
TYPE_WORDS = {
    "id": "id", "str": "text", "email": "email", "bool": "boolean", "int": "integer",
    "float": "number", "money": "money", "date": "date", "datetime": "datetime",
}


def _sections(level: int) -> dict[str, str]:
    """Heading → text up to the next heading of the same or a higher level."""
    marks = "#" * level
    parts = re.split(rf"^({marks} .*)$", DOC, flags=re.MULTILINE)
    out = {}
    for heading, body in zip(parts[1::2], parts[2::2], strict=True):
        out[heading] = re.split(rf"^#{{1,{level}}} ", body, flags=re.MULTILINE)[0]
    return out


def _rows(text: str) -> dict[str, list[str]]:
    """Table rows whose first cell is a `name`: name → the other cells."""
    rows = {}
    for line in text.splitlines():
        match = re.match(r"^\| `([^`]+)` \|(.*)\|\s*$", line)
        if match:
            rows[match.group(1)] = [c.strip() for c in re.split(r"(?<!\\)\|", match.group(2))]
    return rows


def _section(*, level: int, containing: str) -> tuple[str, str]:
    found = [(h, body) for h, body in _sections(level).items() if containing in h]
    assert len(found) == 1, f"expected one level-{level} heading naming {containing}, found {[h for h, _ in found]}"
    return found[0]


def _source_section(spec: SourceSpec) -> tuple[str, str]:
    return _section(level=3, containing=f"`{spec.files[0]}`")


def test_every_type_word_is_a_field_kind_of_the_code():
    assert set(TYPE_WORDS) == set(FIELD_KINDS), "a new field kind needs its word here and its row in the document"


@pytest.mark.parametrize("name", list(SOURCES))
def test_every_field_of_every_source_is_documented_with_its_type_and_whether_required(name: str):
    spec = SOURCES[name]
    heading, body = _source_section(spec)
    assert spec.name in heading
    assert f"`{spec.table}`" in body, f"the section of {spec.name} does not name its table {spec.table}"
    rows = _rows(body)
    for f in spec.fields:
        assert f.name in rows, f"{spec.name}.{f.name} is not in the table of {heading!r}"
        kind, required, use = rows[f.name][:3]
        assert kind == TYPE_WORDS[f.kind], f"{spec.name}.{f.name}: documented as {kind}, the code reads {f.kind}"
        assert required == ("required" if f.required else "optional"), f"{spec.name}.{f.name}: {required}"
        assert use, f"{spec.name}.{f.name}: say what the product does with it"
        for value in f.allowed:
            assert f"`{value}`" in body, f"{spec.name}.{f.name}: the allowed value {value} is not listed"


def test_no_source_section_documents_a_field_the_code_does_not_read():
    by_heading: dict[str, list[SourceSpec]] = {}
    for spec in SOURCES.values():
        by_heading.setdefault(_source_section(spec)[0], []).append(spec)
    for heading, specs in by_heading.items():
        known = {f.name for spec in specs for f in spec.fields}
        documented = set(_rows(_sections(3)[heading]))
        assert documented <= known, f"{heading!r} documents {sorted(documented - known)}, which the code does not read"


def test_the_xapi_section_names_its_files_and_every_column_of_lms_statement():
    heading, _ = _section(level=2, containing="xAPI statements")
    for pattern in XAPI_FILES:
        assert f"`{pattern}`" in heading
    _, body = _section(level=3, containing="`lms_statement`")
    rows = _rows(body)
    assert set(rows) == set(table("lms_statement").names)
    assert all(cells[0] and cells[1] for cells in rows.values())


def test_every_value_type_has_its_row():
    _, body = _section(level=3, containing="Value types")
    types_table = body.split("| type | accepted | stored as |\n| --- | --- | --- |\n")[1].split("\n\n")[0]
    documented = [line.split("|")[1].strip() for line in types_table.splitlines()]
    assert sorted(documented) == sorted(TYPE_WORDS.values())


def test_every_mapping_option_source_name_and_shipped_mapping_is_documented():
    _, body = _section(level=2, containing="Column mappings")
    keys = set(_rows(body))
    for model in (Mapping, FormatsMap, SourceMap, FieldMap):
        options = set(model.model_fields) - {"path"}  # path is set by the loader, not written
        assert options <= keys, f"{model.__name__} options not documented: {sorted(options - keys)}"
    for name in [*SOURCES, "xapi"]:
        assert f"`{name}`" in body, f"the mapping section does not list the source name {name}"
    for name in shipped_mappings():
        assert name in keys, f"the shipped mapping {name} is not listed"


def test_the_example_mapping_is_a_valid_mapping_of_known_sources_and_fields(tmp_path: Path):
    _, body = _section(level=2, containing="Column mappings")
    example = re.search(r"```yaml\n(.*?)```", body, flags=re.DOTALL)
    assert example is not None
    path = tmp_path / "example.yaml"
    path.write_text(example.group(1), encoding="utf-8")
    mapping = load_mapping(path)
    assert mapping.formats.true and mapping.formats.false and mapping.formats.timezone
    for name, smap in mapping.sources.items():
        if name == "xapi":
            assert not smap.fields
            continue
        assert set(smap.fields) <= {f.name for f in SOURCES[name].fields}
