"""People named by full name or email instead of an id: resolved to CRM users, created when unknown.

Exports from CRMs other than Salesforce often name a deal's owner ("Deal owner: Darcel Schlecht",
an email) rather than give a user id, and some have no user file at all. A column mapping says so
with ``match: name`` or ``match: email`` on the field (:class:`~training_roi.ingest.mapping.FieldMap`).
:class:`People` then resolves each cell against the users already in the warehouse — names compared
ignoring letter case and spacing, emails trimmed and lower-cased — and an unknown person becomes
a new user whose id is that key (``darcel schlecht``, ``ana@example.com``), so the same person in
another file or a later ingest resolves to the same user. A name shared by two users is ambiguous:
the row is quarantined with both ids rather than credited to either.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl
import pyarrow as pa
from ibis.backends import BaseBackend

from training_roi.ingest.mapping import value_key, value_keys
from training_roi.warehouse.schema import table

__all__ = ["People", "email_key", "email_keys"]


def email_key(text: str) -> str:
    """An email as the link compares it: trimmed, lower-cased, ``mailto:`` dropped."""
    return text.strip().lower().removeprefix("mailto:")


def email_keys(cells: pl.Series) -> pl.Series:
    """:func:`email_key` of every cell of a text column (nulls stay null)."""
    return cells.str.strip_chars().str.to_lowercase().str.strip_prefix("mailto:")


@dataclass
class _Created:
    name: str | None
    email: str | None
    source_file: str
    source_line: int


@dataclass
class People:
    """The CRM users known by name and by email, and the users created while reading a source."""

    by_name: dict[str, list[str]] = field(default_factory=dict)
    by_email: dict[str, list[str]] = field(default_factory=dict)
    created: dict[str, _Created] = field(default_factory=dict)

    @classmethod
    def from_warehouse(cls, con: BaseBackend) -> People:
        """Index the users in ``crm_user`` (live or not: a departed rep still owns old deals)."""
        users = con.table("crm_user").select("user_id", "name", "email_norm").to_polars()
        by_name: dict[str, list[str]] = {}
        by_email: dict[str, list[str]] = {}
        for uid, name, email in users.iter_rows():
            if name:
                by_name.setdefault(value_key(name), []).append(uid)
            if email:
                by_email.setdefault(email, []).append(uid)
        return cls(by_name, by_email)

    def resolve(self, text: pl.Series, how: str, rows: pl.Series, rel: str) -> tuple[pl.Series, pl.Series]:
        """User ids for the cells of ``text`` (names or emails, per ``how``), and which cells are ambiguous.

        ``rows`` are the cells' row numbers in ``rel``: a person created here keeps the first row
        that named them, so the new user says where it came from.
        """
        keys = value_keys(text) if how == "name" else email_keys(text)
        index = self.by_name if how == "name" else self.by_email
        ids: dict[str, str | None] = {}
        frame = pl.DataFrame({"key": keys, "text": text, "row": rows}).filter(pl.col("key").is_not_null())
        firsts = frame.group_by("key", maintain_order=True).first()
        for key, written, row in firsts.iter_rows():
            known = index.get(key, [])
            if len(known) == 1:
                ids[key] = known[0]
            elif len(known) > 1:
                ids[key] = None
            else:
                ids[key] = key
                if key not in self.created:
                    shown = " ".join(written.split())
                    if how == "name":
                        self.created[key] = _Created(shown, None, rel, row)
                    else:  # the email as written, less a mailto: prefix; its compared form is the key
                        plain = shown[len("mailto:"):] if shown.lower().startswith("mailto:") else shown
                        self.created[key] = _Created(None, plain, rel, row)
        resolved = keys.replace_strict(ids, default=None, return_dtype=pl.String)
        ambiguous = keys.is_in([k for k, v in ids.items() if v is None]).fill_null(False)
        return resolved, ambiguous

    def candidates(self, cell: str, how: str) -> list[str]:
        """The users a cell could name (for the message of an ambiguous one)."""
        if how == "name":
            return self.by_name.get(value_key(cell), [])
        return self.by_email.get(email_key(cell), [])

    def new_users(self) -> pa.Table:
        """The users created while reading, as ``crm_user`` rows that say which file row named them."""
        spec = table("crm_user")
        ids = list(self.created)
        made = list(self.created.values())
        columns = {
            "user_id": ids,
            "email": [m.email for m in made],
            "email_norm": [uid if m.email else None for uid, m in zip(ids, made, strict=True)],  # the link key
            "name": [m.name for m in made],
            "source_file": [m.source_file for m in made],
            "source_line": [m.source_line for m in made],
        }
        schema = spec.schema.to_pyarrow()
        arrays = [pa.array(columns.get(f.name, [None] * len(ids)), type=f.type) for f in schema]
        return pa.Table.from_arrays(arrays, schema=schema)
