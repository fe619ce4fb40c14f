"""Column mappings: how an export that is not in the contract's shape comes in.

A mapping is a small YAML file that names, for each contract field of a source, the column that
holds it in the user's file, with a date format or a value map where needed. Fields it does not
mention keep the contract's column name; ``null`` declares a field the export does not have
(allowed only for fields the product can do without). Example (the shipped mapping for the
Salesforce sample org)::

    name: Salesforce Developer Edition sample export
    formats:
      date: ["%m/%d/%y"]
      datetime: ["%m/%d/%y %I:%M %p", "%m/%d/%y"]
    sources:
      Opportunity:
        file: Opportunity.csv
        fields:
          OwnerId: null
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import polars as pl
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from training_roi.errors import MappingError
from training_roi.files import FileRefused, load_yaml

__all__ = ["FieldMap", "FormatsMap", "Mapping", "SourceMap", "load_mapping", "shipped_mappings", "value_key",
           "value_keys"]

_MAPPINGS_DIR = Path(__file__).resolve().parents[1] / "mappings"


def value_key(text: str) -> str:
    """How a value map compares cells with its keys: spaces trimmed and collapsed, letter case ignored."""
    return " ".join(text.split()).lower()


def value_keys(cells: pl.Series) -> pl.Series:
    """:func:`value_key` of every cell of a text column (nulls stay null)."""
    return cells.str.strip_chars().str.replace_all(r"\s+", " ").str.to_lowercase()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldMap(_Strict):
    """Where one contract field comes from.

    ``column`` may list several columns: each row takes the first of them that is present in the
    file and not empty there (an actual close date, else the expected one). ``match`` says how a
    field that names a CRM user names them; by ``name`` or ``email`` the ingest resolves each to
    the user of that name or email, and creates the user when the export has none.
    """

    column: str | list[str] | None = Field(
        description="column in the file (or columns, the first non-empty one wins); null when the export lacks it")
    format: list[str] | None = Field(default=None, description="strptime formats, tried in order")
    values: dict[str, str] | None = Field(
        default=None, description="value map applied before conversion, keys matched ignoring letter case and "
        "spaces; '' maps empty cells, '*' anything else"
    )

    skip: list[str] = Field(
        default_factory=list, description="with several columns: values that count as empty when choosing among "
        "them (compared ignoring letter case and spaces), e.g. a lost deal's '$0.00' actual revenue")
    match: Literal["id", "name", "email"] = Field(
        default="id", description="for a field that names a CRM user (OwnerId, ManagerId, User Id): by id, "
        "full name or email")

    @field_validator("format", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("column", mode="after")
    @classmethod
    def _columns(cls, v: str | list[str] | None) -> str | list[str] | None:
        if isinstance(v, list):
            if not v:
                raise ValueError("an empty list of columns: name at least one, or write null")
            return v[0] if len(v) == 1 else v
        return v

    @property
    def columns(self) -> tuple[str, ...]:
        """The column(s) named, in order of preference."""
        if self.column is None:
            return ()
        return (self.column,) if isinstance(self.column, str) else tuple(self.column)

    @field_validator("values", mode="before")
    @classmethod
    def _as_text(cls, v: Any) -> Any:
        if not isinstance(v, dict):
            return v
        text = {("" if k is None else str(k)): (str(x).lower() if isinstance(x, bool) else str(x))
                for k, x in v.items()}
        seen: dict[str, str] = {}
        for key in text:
            same = value_key(key)
            if same in seen and text[seen[same]] != text[key]:
                raise ValueError(f"keys {seen[same]!r} and {key!r} are the same value (keys match ignoring letter case "
                                 f"and spaces) but map to {text[seen[same]]!r} and {text[key]!r}")
            seen[same] = key
        return text


class SourceMap(_Strict):
    """How one source (a Salesforce object or an LMS report) is laid out in the user's files."""

    file: list[str] | None = Field(default=None, description="file name(s) or glob(s), relative to the data folder")
    encoding: str = "utf-8"
    delimiter: str = ","
    fields: dict[str, FieldMap | None] = Field(default_factory=dict)

    @field_validator("file", mode="before")
    @classmethod
    def _files(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("fields", mode="before")
    @classmethod
    def _short_forms(cls, v: Any) -> Any:
        if not isinstance(v, dict):
            return v
        return {k: ({"column": x} if isinstance(x, (str, list)) or x is None else x) for k, x in v.items()}


class FormatsMap(_Strict):
    """Formats that hold for every file of the export unless a field says otherwise."""

    date: list[str] | None = None
    datetime: list[str] | None = None
    true: list[str] | None = None
    false: list[str] | None = None
    timezone: str | None = None

    @field_validator("date", "datetime", "true", "false", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


class Mapping(_Strict):
    """A whole mapping file."""

    name: str
    formats: FormatsMap = FormatsMap()
    sources: dict[str, SourceMap] = Field(default_factory=dict)
    path: str = ""


def load_mapping(path: Path | str) -> Mapping:
    """Load and validate a mapping; a name without a path means a shipped mapping.

    Raises
    ------
    MappingError
        The file is missing, is not YAML, or breaks the mapping's rules; the message names the
        file and the key path.
    """
    p = Path(path)
    if not p.exists() and (_MAPPINGS_DIR / f"{path}.yaml").exists():
        p = _MAPPINGS_DIR / f"{path}.yaml"
    if not p.exists():
        shipped = ", ".join(shipped_mappings()) or "none"
        raise MappingError(f"mapping {path}: no such file (shipped mappings: {shipped})")
    try:
        data = load_yaml(p)
    except FileRefused as exc:
        raise MappingError(f"mapping {exc}") from exc
    except UnicodeDecodeError as exc:
        raise MappingError(f"mapping {p}: not UTF-8 text ({exc})") from exc
    except yaml.YAMLError as exc:
        raise MappingError(f"mapping {p}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise MappingError(f"mapping {p}: expected a YAML mapping at the top level")
    try:
        return Mapping.model_validate({**data, "path": str(p)})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise MappingError(f"mapping {p}: {problems}") from exc


def shipped_mappings() -> list[str]:
    """Names of the mappings that come with the product."""
    return sorted(p.stem for p in _MAPPINGS_DIR.glob("*.yaml"))
