"""The contract's delimited sources: which file, which fields, which canonical table.

Each :class:`SourceSpec` names a source the way users know it (the Salesforce object, or the
LMS report), the contract's column for every field it uses, the field's kind, and whether the
product can do without it. :func:`read_source` reads a source's files, through a column mapping
when one is given, into a :class:`~training_roi.warehouse.batch.Batch` for the canonical table.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import orjson
import polars as pl
import pyarrow as pa

from training_roi.errors import MappingError, SourceError
from training_roi.ingest.mapping import Mapping, SourceMap
from training_roi.ingest.people import People
from training_roi.ingest.tabular import (
    CHUNK_ROWS,
    RESTART,
    ROW,
    Conversion,
    Formats,
    RawFile,
    ValueMisses,
    coerce,
    iter_delimited,
    miss_notes,
)
from training_roi.warehouse.batch import Batch, QuarantineRow
from training_roi.warehouse.schema import table

__all__ = [
    "PERSON_FIELDS",
    "SOURCES",
    "FieldSpec",
    "Sink",
    "SourceSpec",
    "SourceTally",
    "formats_for",
    "read_source",
    "source_files",
    "split_duplicates",
    "stream_source",
]

COST_CATEGORIES = (
    "development", "licensing", "platform", "facilitation", "participant_time", "travel",
    "administration", "evaluation", "other",
)
SURVEY_LEVELS = ("reaction", "application", "estimate")
SURVEY_ROLES = ("learner", "manager")

Finisher = Callable[[pl.DataFrame, RawFile, str], tuple[pl.DataFrame, list[QuarantineRow]]]


@dataclass(frozen=True)
class FieldSpec:
    """A contract field: its column name in the contract, its canonical column and kind."""

    name: str
    target: str
    kind: str = "str"
    required: bool = False
    allowed: tuple[str, ...] = ()
    bounds: tuple[float, float] | None = None


@dataclass(frozen=True)
class SourceSpec:
    """A delimited source of the contract and the canonical table it fills.

    ``replace_by_file``: the file is a full report without record ids (costs, surveys,
    completions), so re-reading a file replaces what was loaded from it before.
    """

    name: str
    table: str
    files: tuple[str, ...]
    fields: tuple[FieldSpec, ...]
    constants: dict[str, str] = field(default_factory=dict)
    finish: Finisher | None = None
    replace_by_file: bool = False


def _sha(*parts: pl.Expr) -> pl.Expr:
    """A stable key from several columns (a SHA-1 of their text, nulls as empty)."""
    joined = pl.concat_str([p.cast(pl.String).fill_null("") for p in parts], separator="\x1f")
    return joined.map_batches(
        lambda s: pl.Series([hashlib.sha1(v.encode()).hexdigest()[:32] for v in s], dtype=pl.String),
        return_dtype=pl.String,
    )


def _norm_email(col: str) -> pl.Expr:
    return pl.col(col).str.strip_chars().str.to_lowercase()


def _with_email_norm(src: str = "email") -> Finisher:
    def finish(df: pl.DataFrame, raw: RawFile, source: str) -> tuple[pl.DataFrame, list[QuarantineRow]]:
        return df.with_columns(_norm_email(src).alias("email_norm")), []
    return finish


def _finish_user(df: pl.DataFrame, raw: RawFile, source: str) -> tuple[pl.DataFrame, list[QuarantineRow]]:
    full = pl.concat_str([pl.col("first_name"), pl.col("last_name")], separator=" ", ignore_nulls=True)
    return df.with_columns(
        _norm_email("email").alias("email_norm"),
        pl.coalesce(pl.col("name"), pl.when(full != "").then(full)).alias("name"),
    ), []


def _finish_opportunity(df: pl.DataFrame, raw: RawFile, source: str) -> tuple[pl.DataFrame, list[QuarantineRow]]:
    """A won deal is closed; a closed deal needs its close date, an open one may lack it.

    CRMs other than Salesforce leave the close date empty until a deal closes, so an open deal
    without one is loaded. A closed deal without one cannot be placed in time: quarantined.
    """
    df = df.with_columns(
        pl.when(pl.col("is_won").fill_null(False)).then(True).otherwise(pl.col("is_closed")).alias("is_closed"))
    undated = df.filter(pl.col("is_closed").fill_null(False) & pl.col("close_date").is_null())
    errors = _errors_for(undated, raw, source, "CloseDate",
                         "CloseDate is empty but the deal is closed: a closed deal needs the day it closed")
    return df.filter(~(pl.col("is_closed").fill_null(False) & pl.col("close_date").is_null())), errors


def _finish_history(df: pl.DataFrame, raw: RawFile, source: str) -> tuple[pl.DataFrame, list[QuarantineRow]]:
    if df["history_id"].null_count() == 0:
        return df, []
    key = _sha(pl.col("opportunity_id"), pl.col("created_at"), pl.col("stage_name"))
    return df.with_columns(pl.coalesce(pl.col("history_id"), key).alias("history_id")), []


def _finish_member(df: pl.DataFrame, raw: RawFile, source: str) -> tuple[pl.DataFrame, list[QuarantineRow]]:
    if df["member_id"].null_count() == 0:
        return df, []
    key = _sha(pl.col("campaign_id"), pl.col("contact_id"), pl.col("lead_id"))
    return df.with_columns(pl.coalesce(pl.col("member_id"), key).alias("member_id")), []


def _finish_case(df: pl.DataFrame, raw: RawFile, source: str) -> tuple[pl.DataFrame, list[QuarantineRow]]:
    custom = [c for c in raw.columns if c.endswith("__c")]
    if not custom:
        return df, []
    extra = raw.frame.select(ROW, *custom)
    texts = [
        orjson.dumps({k: v for k, v in zip(custom, row, strict=True) if v not in (None, "")},
                     option=orjson.OPT_SORT_KEYS).decode()
        for row in extra.select(custom).iter_rows()
    ]
    extra = extra.select(ROW).with_columns(pl.Series("custom_fields", texts, pl.String))
    return df.join(extra, on=ROW, how="left"), []


def _finish_completion(df: pl.DataFrame, raw: RawFile, source: str) -> tuple[pl.DataFrame, list[QuarantineRow]]:
    df = df.with_columns(_norm_email("email").alias("email_norm"))
    orphan = df.filter(pl.col("learner_id").is_null() & pl.col("email_norm").is_null())
    errors = _errors_for(orphan, raw, source, "learner_id",
                         "neither learner_id nor learner_email is given: the row names no learner")
    df = df.filter(pl.col("learner_id").is_not_null() | pl.col("email_norm").is_not_null())
    key = _sha(pl.col("learner_id"), pl.col("email_norm"), pl.col("course_id"), pl.col("enrolled_at"),
               pl.col("completed_at"))
    return df.with_columns(key.alias("completion_key")), errors


def _finish_survey(df: pl.DataFrame, raw: RawFile, source: str) -> tuple[pl.DataFrame, list[QuarantineRow]]:
    df = df.with_columns(
        _norm_email("respondent_email").alias("email_norm"),
        pl.col("role").fill_null("learner"),
    )
    key = _sha(pl.col("email_norm"), pl.col("role"), pl.col("program"), pl.col("level"),
               pl.col("question"), pl.col("submitted_at"), _occurrence(df.columns))
    return df.with_columns(key.alias("response_key")), []


def _finish_cost(df: pl.DataFrame, raw: RawFile, source: str) -> tuple[pl.DataFrame, list[QuarantineRow]]:
    key = _sha(pl.lit(raw.rel), pl.col("program"), pl.col("category"), pl.col("amount"), pl.col("date"),
               pl.col("note"), _occurrence(df.columns))
    return df.with_columns(key.alias("cost_key")), []


def _occurrence(columns: list[str]) -> pl.Expr:
    """Which copy of an identical line this is: two equal invoices are two costs, not one."""
    content = [c for c in columns if c not in (ROW, "source_file", "source_line")]
    return pl.int_range(pl.len()).over(content)


def _errors_for(rows: pl.DataFrame, raw: RawFile, source: str, fld: str, reason: str) -> list[QuarantineRow]:
    if not rows.height:
        return []
    lines = set(rows[ROW].to_list())
    records = raw.frame.filter(pl.col(ROW).is_in(list(lines)))
    out = []
    for rec in records.iter_rows(named=True):
        text = ",".join("" if rec[c] is None else str(rec[c]) for c in raw.columns)
        out.append(QuarantineRow(source, raw.rel, rec[ROW], fld, reason, text))
    return out


def _f(name: str, target: str, kind: str = "str", *, required: bool = False,
       allowed: tuple[str, ...] = (), bounds: tuple[float, float] | None = None) -> FieldSpec:
    return FieldSpec(name, target, kind, required, allowed, bounds)


_PERCENT = (0.0, 100.0)
_MINUTES = (0.0, 60_000.0)  # a thousand hours: more on one course is a unit mistake (seconds, not minutes)


_DEL = _f("IsDeleted", "is_deleted", "bool")

SOURCES: dict[str, SourceSpec] = {
    s.name: s
    for s in (
        SourceSpec("User", "crm_user", ("crm/User.csv",), (
            _f("Id", "user_id", "id", required=True), _f("Email", "email", "email"),
            _f("FirstName", "first_name"), _f("LastName", "last_name"), _f("Name", "name"),
            _f("IsActive", "is_active", "bool"), _f("UserRoleId", "role_id", "id"),
            _f("ManagerId", "manager_id", "id"), _f("Department", "department"), _f("Title", "title"),
            _f("CreatedDate", "created_at", "datetime"),
        ), finish=_finish_user),
        SourceSpec("Account", "crm_account", ("crm/Account.csv",), (
            _f("Id", "account_id", "id", required=True), _f("Name", "name"), _f("Type", "type"),
            _f("Industry", "industry"), _f("AnnualRevenue", "annual_revenue", "money"),
            _f("NumberOfEmployees", "employees", "int"), _f("OwnerId", "owner_id", "id"),
            _f("BillingState", "billing_state"), _f("BillingCountry", "billing_country"),
            _f("CreatedDate", "created_at", "datetime"), _DEL,
        )),
        SourceSpec("Contact", "crm_contact", ("crm/Contact.csv",), (
            _f("Id", "contact_id", "id", required=True), _f("AccountId", "account_id", "id"),
            _f("Email", "email", "email"), _f("FirstName", "first_name"), _f("LastName", "last_name"),
            _f("Title", "title"), _f("CreatedDate", "created_at", "datetime"), _DEL,
        ), finish=_with_email_norm()),
        SourceSpec("Opportunity", "crm_opportunity", ("crm/Opportunity.csv",), (
            _f("Id", "opportunity_id", "id", required=True), _f("AccountId", "account_id", "id"),
            _f("OwnerId", "owner_id", "id"), _f("Name", "name"),
            _f("StageName", "stage_name", required=True), _f("Amount", "amount", "money"),
            _f("CurrencyIsoCode", "currency"), _f("CloseDate", "close_date", "date"),
            _f("CreatedDate", "created_at", "datetime"), _f("IsClosed", "is_closed", "bool"),
            _f("IsWon", "is_won", "bool"), _f("Type", "type"), _f("LeadSource", "lead_source"),
            _f("Probability", "probability", "float", bounds=_PERCENT), _DEL,
        ), finish=_finish_opportunity),
        SourceSpec("OpportunityHistory", "crm_opportunity_history", ("crm/OpportunityHistory.csv",), (
            _f("Id", "history_id", "id"), _f("OpportunityId", "opportunity_id", "id", required=True),
            _f("StageName", "stage_name", required=True), _f("Amount", "amount", "money"),
            _f("CloseDate", "close_date", "date"), _f("Probability", "probability", "float", bounds=_PERCENT),
            _f("CreatedDate", "created_at", "datetime", required=True), _DEL,
        ), finish=_finish_history),
        SourceSpec("Lead", "crm_lead", ("crm/Lead.csv",), (
            _f("Id", "lead_id", "id", required=True), _f("OwnerId", "owner_id", "id"),
            _f("Status", "status"), _f("LeadSource", "lead_source"),
            _f("CreatedDate", "created_at", "datetime"), _f("IsConverted", "is_converted", "bool"),
            _f("ConvertedDate", "converted_date", "date"),
            _f("ConvertedAccountId", "converted_account_id", "id"),
            _f("ConvertedContactId", "converted_contact_id", "id"),
            _f("ConvertedOpportunityId", "converted_opportunity_id", "id"), _DEL,
        )),
        *(
            SourceSpec(obj, "crm_activity", (f"crm/{obj}.csv",), (
                _f("Id", "activity_id", "id", required=True), _f("OwnerId", "owner_id", "id"),
                _f("WhoId", "who_id", "id"), _f("WhatId", "what_id", "id"),
                _f("AccountId", "account_id", "id"), _f("Subject", "subject"),
                _f(f"{obj}Subtype", "subtype"), _f("ActivityDate", "activity_date", "date"),
                _f("Status", "status"), _f("IsClosed", "is_closed", "bool"),
                _f("CreatedDate", "created_at", "datetime"),
                _f("CompletedDateTime", "completed_at", "datetime"), _DEL,
            ), constants={"kind": obj.lower()})
            for obj in ("Task", "Event")
        ),
        SourceSpec("Case", "crm_case", ("crm/Case.csv",), (
            _f("Id", "case_id", "id", required=True), _f("AccountId", "account_id", "id"),
            _f("ContactId", "contact_id", "id"), _f("OwnerId", "owner_id", "id"),
            _f("Status", "status"), _f("Priority", "priority"), _f("Origin", "origin"),
            _f("CreatedDate", "created_at", "datetime"), _f("ClosedDate", "closed_at", "datetime"),
            _f("IsClosed", "is_closed", "bool"), _DEL,
        ), finish=_finish_case),
        SourceSpec("Campaign", "crm_campaign", ("crm/Campaign.csv",), (
            _f("Id", "campaign_id", "id", required=True), _f("Name", "name"), _f("Type", "type"),
            _f("StartDate", "start_date", "date"), _DEL,
        )),
        SourceSpec("CampaignMember", "crm_campaign_member", ("crm/CampaignMember.csv",), (
            _f("Id", "member_id", "id"), _f("CampaignId", "campaign_id", "id", required=True),
            _f("ContactId", "contact_id", "id"), _f("LeadId", "lead_id", "id"),
            _f("Status", "status"), _f("HasResponded", "has_responded", "bool"),
            _f("CreatedDate", "created_at", "datetime"),
            _f("FirstRespondedDate", "first_responded_date", "date"), _DEL,
        ), finish=_finish_member),
        SourceSpec("learners", "lms_learner", ("lms/learners.csv",), (
            _f("learner_id", "learner_id", required=True), _f("email", "email", "email"),
            _f("name", "name"), _f("department", "department"), _f("title", "title"),
            _f("hire_date", "hire_date", "date"),
        ), finish=_with_email_norm()),
        SourceSpec("completions", "lms_completion", ("lms/completions.csv",), (
            _f("learner_id", "learner_id"), _f("learner_email", "email", "email"),
            _f("course_id", "course_id", required=True), _f("course_title", "course_title"),
            _f("program", "program"), _f("enrolled_at", "enrolled_at", "datetime"),
            _f("completed_at", "completed_at", "datetime"), _f("score", "score", "float", bounds=_PERCENT),
            _f("passed", "passed", "bool"), _f("minutes", "minutes", "float", bounds=_MINUTES),
        ), finish=_finish_completion, replace_by_file=True),
        SourceSpec("surveys", "survey_response", ("surveys.csv",), (
            _f("respondent_email", "respondent_email", "email", required=True),
            _f("role", "role", allowed=SURVEY_ROLES), _f("program", "program"),
            _f("level", "level", required=True, allowed=SURVEY_LEVELS),
            _f("question", "question"), _f("score", "score", "float", required=True, bounds=_PERCENT),
            _f("confidence", "confidence", "float", bounds=_PERCENT), _f("submitted_at", "submitted_at", "datetime"),
        ), finish=_finish_survey, replace_by_file=True),
        SourceSpec("costs", "cost_line", ("costs.csv",), (
            _f("program", "program"),
            _f("category", "category", required=True, allowed=COST_CATEGORIES),
            _f("amount", "amount", "money", required=True), _f("date", "date", "date"),
            _f("note", "note"),
        ), finish=_finish_cost, replace_by_file=True),
    )
}


PERSON_FIELDS: dict[str, tuple[str, ...]] = {
    "User": ("Id", "ManagerId"),
    **{name: ("OwnerId",) for name, spec in SOURCES.items() if any(f.name == "OwnerId" for f in spec.fields)},
}
"""The fields that name a CRM user, which a mapping may give by name or email (``match``)."""


def formats_for(mapping: Mapping | None) -> Formats:
    """The formats in force: the contract's, overridden by the mapping's."""
    base = Formats()
    if mapping is None:
        return base
    f = mapping.formats
    return Formats(
        date=tuple(f.date) if f.date else base.date,
        datetime=tuple(f.datetime) if f.datetime else base.datetime,
        true=tuple(f.true) if f.true else base.true,
        false=tuple(f.false) if f.false else base.false,
        timezone=f.timezone or base.timezone,
    )


def source_files(spec: SourceSpec, data_dir: Path, mapping: Mapping | None) -> list[tuple[Path, str]]:
    """The files of ``spec`` present in ``data_dir``, as (path, name relative to the folder)."""
    smap = mapping.sources.get(spec.name) if mapping else None
    patterns = smap.file if smap and smap.file else list(spec.files)
    found: dict[str, Path] = {}
    for pattern in patterns:
        for p in sorted(data_dir.glob(pattern)):
            if p.is_file():
                found[p.relative_to(data_dir).as_posix()] = p
    return [(p, rel) for rel, p in sorted(found.items())]


def _conversions(spec: SourceSpec, raw: RawFile, smap: SourceMap | None, mapping: Mapping | None,
                 notes: list[str]) -> list[Conversion]:
    known = {f.name for f in spec.fields}
    if smap:
        unknown = sorted(set(smap.fields) - known)
        if unknown:
            raise MappingError(
                f"mapping {mapping.path if mapping else ''}: sources.{spec.name}.fields names "
                f"{', '.join(unknown)}, which {spec.name} does not have "
                f"(its fields: {', '.join(f.name for f in spec.fields)})"
            )
    header = set(raw.columns)
    out = []
    for f in spec.fields:
        named = smap is not None and f.name in smap.fields  # the mapping says something of it
        fmap = smap.fields[f.name] if smap is not None and named else None
        if named and (fmap is None or fmap.column is None):
            if f.required:
                raise MappingError(
                    f"mapping {mapping.path if mapping else ''}: sources.{spec.name}.fields.{f.name} "
                    f"is required and cannot be left out: name the column that holds it"
                )
            out.append(Conversion(f.target, (), f.kind))
            continue
        match = fmap.match if fmap is not None else "id"
        if match != "id" and f.name not in PERSON_FIELDS.get(spec.name, ()):
            raise MappingError(
                f"mapping {mapping.path if mapping else ''}: sources.{spec.name}.fields.{f.name} has "
                f"match: {match}, but only fields that name a CRM user can ("
                f"{', '.join(PERSON_FIELDS.get(spec.name, ())) or f'none in {spec.name}'})"
            )
        wanted = fmap.columns if fmap is not None and fmap.column else (f.name,)
        columns = tuple(c for c in wanted if c in header)
        if not columns:
            shown = " / ".join(wanted)
            if f.required or (named and len(wanted) == 1):  # alternatives: any of them may be absent
                why = (f"the mapping names it for {spec.name}.{f.name}, but the file has no such column"
                       if named else "required column is missing")
                raise SourceError(raw.rel, why, column=shown)
            notes.append(f"{raw.rel}: no column {shown}; {spec.name}.{f.name} loaded empty")
            out.append(Conversion(f.target, (), f.kind))
            continue
        fmt = tuple(fmap.format) if fmap is not None and fmap.format else None
        values = tuple(fmap.values.items()) if fmap is not None and fmap.values else ()
        skip = tuple(fmap.skip) if fmap is not None else ()
        out.append(Conversion(f.target, columns, f.kind, fmt, values, f.required, f.allowed, match, skip, f.bounds))
    return out


class Sink(Protocol):
    """Where typed chunks go: a staging table in the warehouse, or a list in memory."""

    def add(self, rows: pa.Table) -> None:
        """Take typed rows with the canonical table's columns."""

    def discard_file(self, source_file: str) -> None:
        """Forget what was taken from ``source_file``: it is being read again."""


@dataclass
class SourceTally:
    """The account of a source read into a sink: records read, quarantine, notes."""

    rows_read: int = 0
    rows_typed: int = 0
    quarantine: list[QuarantineRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    files: int = 0
    people: People = field(default_factory=People)


def stream_source(
    spec: SourceSpec, files: list[tuple[Path, str]], sink: Sink, mapping: Mapping | None = None,
    *, chunk_rows: int | None = None, on_rows: Callable[[int], None] | None = None, people: People | None = None,
) -> SourceTally:
    """Read every file of one source chunk by chunk, typed, into ``sink``.

    Duplicated keys are not resolved here (a duplicate may sit in another chunk); the caller
    decides on them once the whole source is in the sink (:func:`split_duplicates`).
    ``on_rows`` is told the number of records read so far after each chunk (for progress).
    Fields the mapping gives by name or email resolve through ``people`` (users of the
    warehouse); the users it creates are in ``tally.people`` for the caller to load.

    Raises
    ------
    SourceError
        A file cannot be read at all (encoding, header, a required column missing).
    MappingError
        The mapping breaks a rule for this source.
    """
    smap = mapping.sources.get(spec.name) if mapping else None
    formats = formats_for(mapping)
    target = table(spec.table)
    arrow_schema = target.schema.to_pyarrow()
    tally = SourceTally(files=len(files), people=people if people is not None else People())
    for path, rel in files:
        conversions: list[Conversion] | None = None
        file_read, file_typed, file_quarantine = 0, 0, 0
        misses: ValueMisses = {}
        for raw in iter_delimited(path, rel, spec.name, encoding=smap.encoding if smap else "utf-8",
                                  delimiter=smap.delimiter if smap else ",",
                                  chunk_rows=chunk_rows or CHUNK_ROWS):
            if raw is RESTART:
                sink.discard_file(rel)
                tally.rows_read -= file_read
                tally.rows_typed -= file_typed
                del tally.quarantine[len(tally.quarantine) - file_quarantine:]
                file_read, file_typed, file_quarantine = 0, 0, 0
                misses.clear()
                continue
            if conversions is None:
                conversions = _conversions(spec, raw, smap, mapping, tally.notes)
            typed, errors = coerce(raw, conversions, formats, spec.name, misses, tally.people)
            errors = raw.malformed + errors
            for col, value in spec.constants.items():
                typed = typed.with_columns(pl.lit(value).alias(col))
            if spec.finish:
                typed, more = spec.finish(typed, raw, spec.name)
                errors += more
            if "is_deleted" in typed.columns:  # an export without IsDeleted holds live rows only
                typed = typed.with_columns(pl.col("is_deleted").fill_null(False))
            typed = typed.with_columns(pl.lit(rel).alias("source_file"), pl.col(ROW).alias("source_line"))
            rows = _conform(typed, target.names).to_arrow().cast(arrow_schema)
            sink.add(rows)
            read = raw.frame.height + len(raw.malformed)
            tally.rows_read += read
            tally.rows_typed += rows.num_rows
            tally.quarantine.extend(errors)
            file_read, file_typed, file_quarantine = (
                file_read + read, file_typed + rows.num_rows, file_quarantine + len(errors))
            if on_rows is not None:
                on_rows(tally.rows_read)
        tally.notes.extend(miss_notes(misses, spec.name, rel))
    return tally


class _Memory:
    """A sink that keeps chunks in memory, for small sources and tests."""

    def __init__(self) -> None:
        self.parts: list[tuple[str, pa.Table]] = []

    def add(self, rows: pa.Table) -> None:
        rel = rows.column("source_file")[0].as_py() if rows.num_rows else ""
        self.parts.append((rel, rows))

    def discard_file(self, source_file: str) -> None:
        self.parts = [(rel, rows) for rel, rows in self.parts if rel != source_file]


def read_source(spec: SourceSpec, files: list[tuple[Path, str]], mapping: Mapping | None = None) -> Batch:
    """Read every file of one source into an in-memory batch, duplicates resolved.

    Records with the same key in several rows: identical copies count once (duplicates); a
    different record under a key already seen goes to quarantine, naming the first row.
    The ingest of a data folder streams instead (:func:`stream_source`); this is the same
    reading for a source small enough to hold, and for tests.
    """
    sink = _Memory()
    tally = stream_source(spec, files, sink, mapping)
    target = table(spec.table)
    rows = (pa.concat_tables([t for _, t in sink.parts]) if sink.parts
            else target.schema.to_pyarrow().empty_table())
    dropped, quarantine, duplicates = split_duplicates(rows, target.key, spec.name)
    if dropped:
        frame = pl.from_arrow(rows)
        assert isinstance(frame, pl.DataFrame)
        gone = pl.DataFrame({"source_file": [d[0] for d in dropped], "source_line": [d[1] for d in dropped]},
                            schema={"source_file": pl.String, "source_line": pl.Int64})
        rows = frame.join(gone, on=["source_file", "source_line"], how="anti").to_arrow().cast(rows.schema)
    return Batch(
        source=spec.name, table=spec.table, rows=rows, rows_read=tally.rows_read, rows_loaded=rows.num_rows,
        quarantine=tally.quarantine + quarantine, rows_duplicate=duplicates, files=len(files),
        notes=tally.notes,
    )


def _conform(df: pl.DataFrame, names: list[str]) -> pl.DataFrame:
    """Add any canonical column the source does not fill (as null) and order them."""
    missing = [n for n in names if n not in df.columns]
    return df.with_columns(*[pl.lit(None).alias(n) for n in missing]).select(names)


def split_duplicates(
    rows: pa.Table, key: tuple[str, ...], source: str
) -> tuple[list[tuple[str, int]], list[QuarantineRow], int]:
    """Decide on rows that share a key: which to drop, which to quarantine, how many duplicates.

    ``rows`` holds (at least) every row of a repeated key. The first row of a key, in file and
    row order, is kept; a later identical copy is a duplicate, counted once; a later row with
    different values goes to quarantine naming the kept row. Returns the (file, row) places to
    drop, the quarantine rows and the number of duplicates.
    """
    keys = list(key)
    frame = pl.from_arrow(rows)
    assert isinstance(frame, pl.DataFrame)
    if frame.height == 0 or frame.select(pl.struct(keys).is_unique().all()).item():
        return [], [], 0
    content = [c for c in frame.columns if c not in ("source_file", "source_line")]
    ordered = frame.sort(["source_file", "source_line"]).with_row_index("__i")
    ordered = ordered.with_columns(
        pl.col("__i").min().over(keys).alias("__fk"), pl.col("__i").min().over(content).alias("__fc")
    )
    later = ordered.filter(pl.col("__i") != pl.col("__fk"))
    exact = later.filter(pl.col("__fc") == pl.col("__fk"))
    clash = later.filter(pl.col("__fc") != pl.col("__fk"))
    firsts = ordered.filter(pl.col("__i") == pl.col("__fk"))
    first_row = dict(zip(firsts["__i"].to_list(),
                         zip(firsts["source_file"].to_list(), firsts["source_line"].to_list(), strict=True),
                         strict=True))
    quarantine = [
        QuarantineRow(
            source, rec["source_file"], rec["source_line"], ",".join(keys),
            f"{'/'.join(str(rec[k]) for k in keys)} appears again with different values; the record "
            f"on {first_row[rec['__fk']][0]} row {first_row[rec['__fk']][1]} was loaded",
            orjson.dumps({c: rec[c] for c in content}, default=str).decode(),
        )
        for rec in clash.iter_rows(named=True)
    ]
    dropped = list(zip(later["source_file"].to_list(), later["source_line"].to_list(), strict=True))
    return dropped, quarantine, exact.height
