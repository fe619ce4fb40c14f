"""The canonical tables of the warehouse, defined once.

Every stage after ingest reads these tables and nothing else, so this module is the contract
between the files a user hands over and the analysis. ``docs/warehouse.md`` is generated from it
(``training-roi schema``) and a test keeps the two in step.

Conventions: names are snake_case; timestamps are UTC; dates are calendar dates in the source's
own sense (a Salesforce ``CloseDate``); money is ``decimal(18, 2)`` in the org currency; every
table has a key that makes loading idempotent (a newer export of the same record replaces it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import ibis
import ibis.expr.datatypes as dt

__all__ = ["TABLES", "Column", "Table", "table"]

UTC_TS = dt.Timestamp(timezone="UTC")
MONEY = dt.Decimal(18, 2)


@dataclass(frozen=True)
class Column:
    """One column of a canonical table: its name, type and meaning."""

    name: str
    dtype: dt.DataType
    doc: str


@dataclass(frozen=True)
class Table:
    """A canonical table: its columns, the key that identifies a record, and what it holds."""

    name: str
    doc: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    layer: str = "canonical"
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def schema(self) -> ibis.Schema:
        """The Ibis schema of the table."""
        return ibis.schema({c.name: c.dtype for c in self.columns})

    @property
    def names(self) -> list[str]:
        """Column names in order."""
        return [c.name for c in self.columns]


def _c(name: str, dtype: dt.DataType | str, doc: str) -> Column:
    return Column(name, dt.dtype(dtype) if isinstance(dtype, str) else dtype, doc)


_SOURCE = (
    _c("source_file", "string", "file the record was read from (name relative to the data folder)"),
    _c("source_line", "int64", "line (CSV: data row + 1 for the header; JSON lines: line) in that file"),
)
_DELETED = _c("is_deleted", "boolean", "Salesforce IsDeleted: kept, but never analysed")

TABLES: dict[str, Table] = {}


def _table(name: str, doc: str, key: tuple[str, ...], *columns: Column, layer: str = "canonical") -> Table:
    t = Table(name=name, doc=doc, key=key, columns=tuple(columns), layer=layer)
    TABLES[name] = t
    return t


_table(
    "crm_user", "CRM users (Salesforce User): the reps whose pipeline is measured.", ("user_id",),
    _c("user_id", "string", "Salesforce Id (18-character form)"),
    _c("email", "string", "email as exported"),
    _c("email_norm", "string", "email trimmed and lower-cased: the link key"),
    _c("first_name", "string", "FirstName"),
    _c("last_name", "string", "LastName"),
    _c("name", "string", "Name (or first + last when absent)"),
    _c("is_active", "boolean", "IsActive"),
    _c("role_id", "string", "UserRoleId"),
    _c("manager_id", "string", "ManagerId"),
    _c("department", "string", "Department"),
    _c("title", "string", "Title"),
    _c("created_at", UTC_TS, "CreatedDate"),
    *_SOURCE,
)
_table(
    "crm_account", "Customer accounts (Salesforce Account).", ("account_id",),
    _c("account_id", "string", "Salesforce Id"),
    _c("name", "string", "Name"),
    _c("type", "string", "Type"),
    _c("industry", "string", "Industry"),
    _c("annual_revenue", MONEY, "AnnualRevenue"),
    _c("employees", "int64", "NumberOfEmployees"),
    _c("owner_id", "string", "OwnerId (crm_user)"),
    _c("billing_state", "string", "BillingState"),
    _c("billing_country", "string", "BillingCountry"),
    _c("created_at", UTC_TS, "CreatedDate"),
    _DELETED,
    *_SOURCE,
)
_table(
    "crm_contact", "People at customer accounts (Salesforce Contact): customer-education learners.",
    ("contact_id",),
    _c("contact_id", "string", "Salesforce Id"),
    _c("account_id", "string", "AccountId (crm_account)"),
    _c("email", "string", "Email as exported"),
    _c("email_norm", "string", "email trimmed and lower-cased: the link key"),
    _c("first_name", "string", "FirstName"),
    _c("last_name", "string", "LastName"),
    _c("title", "string", "Title"),
    _c("created_at", UTC_TS, "CreatedDate"),
    _DELETED,
    *_SOURCE,
)
_table(
    "crm_opportunity", "Deals (Salesforce Opportunity): the pipeline whose outcomes training should move.",
    ("opportunity_id",),
    _c("opportunity_id", "string", "Salesforce Id"),
    _c("account_id", "string", "AccountId"),
    _c("owner_id", "string", "OwnerId: the rep (crm_user)"),
    _c("name", "string", "Name"),
    _c("stage_name", "string", "StageName"),
    _c("amount", MONEY, "Amount, org currency unless currency is set"),
    _c("currency", "string", "CurrencyIsoCode when the org is multi-currency"),
    _c("close_date", "date", "CloseDate (actual for closed deals, expected for open ones)"),
    _c("created_at", UTC_TS, "CreatedDate"),
    _c("is_closed", "boolean", "IsClosed"),
    _c("is_won", "boolean", "IsWon"),
    _c("type", "string", "Type: New Business, Renewal, Upsell, …"),
    _c("lead_source", "string", "LeadSource"),
    _c("probability", "float64", "Probability (0–100)"),
    _DELETED,
    *_SOURCE,
)
_table(
    "crm_opportunity_history", "Stage changes of opportunities (Salesforce OpportunityHistory).",
    ("history_id",),
    _c("history_id", "string", "Id, or a stable hash of opportunity, time and stage when the export has none"),
    _c("opportunity_id", "string", "OpportunityId"),
    _c("stage_name", "string", "StageName entered"),
    _c("amount", MONEY, "Amount at that point"),
    _c("close_date", "date", "CloseDate at that point"),
    _c("probability", "float64", "Probability at that point"),
    _c("created_at", UTC_TS, "CreatedDate: when the stage was entered"),
    _DELETED,
    *_SOURCE,
)
_table(
    "crm_lead", "Leads (Salesforce Lead), for lead conversion KPIs.", ("lead_id",),
    _c("lead_id", "string", "Salesforce Id"),
    _c("owner_id", "string", "OwnerId"),
    _c("status", "string", "Status"),
    _c("lead_source", "string", "LeadSource"),
    _c("created_at", UTC_TS, "CreatedDate"),
    _c("is_converted", "boolean", "IsConverted"),
    _c("converted_date", "date", "ConvertedDate"),
    _c("converted_account_id", "string", "ConvertedAccountId"),
    _c("converted_contact_id", "string", "ConvertedContactId"),
    _c("converted_opportunity_id", "string", "ConvertedOpportunityId"),
    _DELETED,
    *_SOURCE,
)
_table(
    "crm_activity", "Sales activities (Salesforce Task and Event in one table).", ("activity_id",),
    _c("activity_id", "string", "Salesforce Id"),
    _c("kind", "string", "task or event"),
    _c("owner_id", "string", "OwnerId"),
    _c("who_id", "string", "WhoId (contact or lead)"),
    _c("what_id", "string", "WhatId (opportunity, account, …)"),
    _c("account_id", "string", "AccountId"),
    _c("subject", "string", "Subject"),
    _c("subtype", "string", "TaskSubtype / EventSubtype"),
    _c("activity_date", "date", "ActivityDate"),
    _c("status", "string", "Status"),
    _c("is_closed", "boolean", "IsClosed"),
    _c("created_at", UTC_TS, "CreatedDate"),
    _c("completed_at", UTC_TS, "CompletedDateTime"),
    _DELETED,
    *_SOURCE,
)
_table(
    "crm_case", "Support cases (Salesforce Case), for customer-success KPIs.", ("case_id",),
    _c("case_id", "string", "Salesforce Id"),
    _c("account_id", "string", "AccountId"),
    _c("contact_id", "string", "ContactId"),
    _c("owner_id", "string", "OwnerId"),
    _c("status", "string", "Status"),
    _c("priority", "string", "Priority"),
    _c("origin", "string", "Origin"),
    _c("created_at", UTC_TS, "CreatedDate"),
    _c("closed_at", UTC_TS, "ClosedDate"),
    _c("is_closed", "boolean", "IsClosed"),
    _c("custom_fields", "string", "the export's custom (__c) columns as a JSON object, e.g. CSAT__c"),
    _DELETED,
    *_SOURCE,
)
_table(
    "crm_campaign", "Marketing campaigns (Salesforce Campaign).", ("campaign_id",),
    _c("campaign_id", "string", "Salesforce Id"),
    _c("name", "string", "Name"),
    _c("type", "string", "Type"),
    _c("start_date", "date", "StartDate"),
    _DELETED,
    *_SOURCE,
)
_table(
    "crm_campaign_member", "Campaign responses (Salesforce CampaignMember).", ("member_id",),
    _c("member_id", "string", "Id, or a stable hash of campaign and contact/lead"),
    _c("campaign_id", "string", "CampaignId"),
    _c("contact_id", "string", "ContactId"),
    _c("lead_id", "string", "LeadId"),
    _c("status", "string", "Status"),
    _c("has_responded", "boolean", "HasResponded"),
    _c("created_at", UTC_TS, "CreatedDate"),
    _c("first_responded_date", "date", "FirstRespondedDate"),
    _DELETED,
    *_SOURCE,
)

_table(
    "lms_learner", "The LMS user directory (learners.csv).", ("learner_id",),
    _c("learner_id", "string", "the LMS's own learner id (an xAPI account actor's name)"),
    _c("email", "string", "email as given"),
    _c("email_norm", "string", "email trimmed and lower-cased: the link key"),
    _c("name", "string", "name"),
    _c("department", "string", "department"),
    _c("title", "string", "title"),
    _c("hire_date", "date", "hire_date"),
    *_SOURCE,
)
_table(
    "lms_completion", "A plain LMS completion report (completions.csv): one row per enrolment.",
    ("completion_key",),
    _c("completion_key", "string", "stable hash of learner, course and enrolment time"),
    _c("learner_id", "string", "learner_id"),
    _c("email", "string", "learner_email as given"),
    _c("email_norm", "string", "learner_email trimmed and lower-cased"),
    _c("course_id", "string", "course_id"),
    _c("course_title", "string", "course_title"),
    _c("program", "string", "program / curriculum"),
    _c("enrolled_at", UTC_TS, "enrolled_at"),
    _c("completed_at", UTC_TS, "completed_at; empty when not completed"),
    _c("score", "float64", "score, 0–100"),
    _c("passed", "boolean", "passed"),
    _c("minutes", "float64", "time spent in minutes"),
    *_SOURCE,
)
_table(
    "lms_statement",
    "xAPI statements, one row per statement and learner: a Group actor gives one row per member.",
    ("statement_id", "actor_key"),
    _c("statement_id", "string", "statement id (lower case); a stable hash of the statement when it has none"),
    _c("actor_key", "string",
       "the learner's identity: mbox:<email>, sha1:<hash>, openid:<uri>, account:<homePage>|<name>"),
    _c("actor_kind", "string", "mbox, mbox_sha1sum, openid or account"),
    _c("actor_email", "string", "email from mbox, lower-cased"),
    _c("actor_account_name", "string", "account name (the LMS learner id) for account actors"),
    _c("actor_account_home", "string", "account homePage"),
    _c("actor_name", "string", "display name"),
    _c("group_key", "string", "identity of the Group the row was expanded from, if any"),
    _c("verb_id", "string", "verb IRI"),
    _c("verb", "string", "short verb: the IRI's last segment (completed, passed, …)"),
    _c("object_type", "string", "Activity, Agent, Group, StatementRef or SubStatement"),
    _c("activity_id", "string", "object id: the activity IRI (or the statement a StatementRef targets)"),
    _c("activity_name", "string", "object.definition.name (en-US, en, or the first language)"),
    _c("activity_type", "string", "object.definition.type"),
    _c("parent_id", "string", "first context.contextActivities.parent id"),
    _c("grouping_id", "string", "first context.contextActivities.grouping id"),
    _c("registration", "string", "context.registration"),
    _c("score_scaled", "float64", "result.score.scaled (−1 to 1)"),
    _c("score_raw", "float64", "result.score.raw"),
    _c("score_min", "float64", "result.score.min"),
    _c("score_max", "float64", "result.score.max"),
    _c("success", "boolean", "result.success"),
    _c("completion", "boolean", "result.completion"),
    _c("duration_seconds", "float64", "result.duration in seconds"),
    _c("timestamp", UTC_TS, "when it happened, in UTC"),
    _c("timestamp_offset_minutes", "int64", "the time zone offset the timestamp was written with"),
    _c("stored", UTC_TS, "when the LRS stored it, in UTC"),
    _c("voided_statement_id", "string", "for a voiding statement: the id it cancels"),
    _c("is_voided", "boolean", "cancelled by a voiding statement in the warehouse"),
    *_SOURCE,
)
_table(
    "survey_response", "Survey answers (surveys.csv): reaction, application and estimate levels.",
    ("response_key",),
    _c("response_key", "string", "stable hash of respondent, program, level, question and time"),
    _c("respondent_email", "string", "respondent_email as given"),
    _c("email_norm", "string", "respondent_email trimmed and lower-cased"),
    _c("role", "string", "learner or manager"),
    _c("program", "string", "program"),
    _c("level", "string", "reaction, application or estimate"),
    _c("question", "string", "question id"),
    _c("score", "float64", "answer: 1–5 for reaction/application, 0–100 % for estimate"),
    _c("confidence", "float64", "confidence 0–100 for estimate answers"),
    _c("submitted_at", UTC_TS, "submitted_at"),
    *_SOURCE,
)
_table(
    "cost_line", "Program cost lines (costs.csv).", ("cost_key",),
    _c("cost_key", "string", "stable hash of the line's content and position"),
    _c("program", "string", "program; empty for shared costs"),
    _c("category", "string", "development, licensing, platform, facilitation, participant_time, travel, "
                             "administration, evaluation or other"),
    _c("amount", MONEY, "amount in the org currency"),
    _c("date", "date", "when incurred"),
    _c("note", "string", "note"),
    *_SOURCE,
)

_table(
    "quarantine", "Rows that could not be used, with where they came from and why. Nothing is dropped silently.",
    ("source", "source_file", "source_line", "field"),
    _c("source", "string", "source kind: Opportunity, xapi, completions, …"),
    _c("source_file", "string", "file, relative to the data folder"),
    _c("source_line", "int64", "line in the file (CSV: data row + 1); 0 when the whole file was refused"),
    _c("field", "string", "the field at fault (empty when the whole row is unusable)"),
    _c("reason", "string", "why the row was not loaded"),
    _c("raw", "string", "the row as read, so nothing is lost"),
    layer="audit",
)
_table(
    "ingest_run", "One row per source per ingest: what was read, loaded and quarantined.",
    ("run_id", "source"),
    _c("run_id", "string", "stable hash of the data folder's file names, sizes and contents"),
    _c("source", "string", "source kind"),
    _c("files", "int64", "files read"),
    _c("rows_read", "int64", "rows read"),
    _c("rows_loaded", "int64", "rows loaded (new or changed records count as loaded)"),
    _c("rows_quarantined", "int64", "rows put in quarantine"),
    _c("status", "string", "ok, or refused with the reason"),
    layer="audit",
)

_table(
    "table_write", "How many times each table has been written: a source whose files are unchanged is not read "
    "again while the tables its load wrote and read have not been written since (`source_load`).",
    ("name",),
    _c("name", "string", "the table"),
    _c("writes", "int64", "writes so far, counted as each begins (a write stopped half-way counts)"),
    layer="audit",
)
_table(
    "source_load", "One row per source: what its files were when they were last loaded, and its tables' writes "
    "then; an ingest of the same files, by the same product, into tables written since by nothing else, "
    "does not read them again.",
    ("source",),
    _c("source", "string", "source kind"),
    _c("fingerprint", "string", "SHA-256 of the files' names, sizes, times and inodes, the mapping and the product"),
    _c("files", "string", "JSON: each file's name, size, modification and change times (ns), device and inode"),
    _c("tables", "string", "JSON: each table the source's load wrote (and read) → its writes when the ingest ended, "
       "and the ingest's sources that wrote it, in order"),
    _c("account", "string", "JSON: the load's duplicate rows and notes (given again when it is not read again)"),
    _c("run_id", "string", "the ingest that loaded it (ingest_run)"),
    layer="audit",
)

_table(
    "sync_state", "One row per live source (training-roi sync): how far its pull has loaded; and the row "
    "`(links)`, whose endpoint is `stale` while a load may have changed what the learner links are made from.",
    ("source",),
    _c("source", "string", "the source's name in sync.yaml"),
    _c("kind", "string", "lrs"),
    _c("endpoint", "string", "where it is pulled from (URL without credentials)"),
    _c("watermark", UTC_TS, "the latest time the source stored a record that is loaded (xAPI stored)"),
    _c("overlap_ids", "string",
       "JSON list of [stored, id] of the loaded records stored just before the watermark: the next pull asks "
       "again from a little before it and skips these"),
    _c("updated_at", UTC_TS, "when the watermark last moved"),
    layer="audit",
)
_table(
    "sync_run", "One row per live source per sync: when it ran, what it fetched and loaded, and how it ended.",
    ("run_id", "source"),
    _c("run_id", "string", "the sync's id (random)"),
    _c("source", "string", "the source's name in sync.yaml"),
    _c("kind", "string", "lrs"),
    _c("endpoint", "string", "where it was pulled from (URL without credentials)"),
    _c("started", UTC_TS, "when the source's sync began"),
    _c("finished", UTC_TS, "when it ended; empty while it runs, or when it was killed"),
    _c("status", "string", "ok, failed, or 'started, not finished'"),
    _c("pages", "int64", "pages fetched"),
    _c("statements", "int64", "records fetched that were not loaded before"),
    _c("loaded", "int64", "records loaded into the canonical table"),
    _c("quarantined", "int64", "records put in quarantine"),
    _c("error", "string", "why it failed (no credential is ever written here)"),
    layer="audit",
)
_table(
    "push_run", "One row per push (training-roi push): where it wrote, from which study, and how it ended.",
    ("run_id",),
    _c("run_id", "string", "the push's id (random)"),
    _c("target", "string", "the source in sync.yaml written to"),
    _c("object", "string", "the CRM object written (User, Contact)"),
    _c("endpoint", "string", "where it was written (URL without credentials)"),
    _c("study", "string", "the study the facts come from: its name and hash"),
    _c("started", UTC_TS, "when the push began"),
    _c("finished", UTC_TS, "when it ended; empty while it runs, or when it was killed"),
    _c("status", "string", "ok, failed (a record was refused), or 'started, not finished'"),
    _c("persons", "int64", "persons whose facts were compared with the CRM"),
    _c("changed", "int64", "records with a field that differed (those written or attempted)"),
    _c("written", "int64", "records the CRM accepted"),
    _c("failed", "int64", "records the CRM refused"),
    _c("error", "string", "why the push failed as a whole (no credential is ever written here)"),
    layer="audit",
)
_table(
    "push_audit", "One row per field a push wrote or tried to write: the value before, the value sent, the outcome.",
    ("run_id", "record_id", "field"),
    _c("run_id", "string", "the push (push_run.run_id)"),
    _c("answered_at", UTC_TS, "when the CRM answered"),
    _c("target", "string", "the source in sync.yaml written to"),
    _c("object", "string", "the CRM object (User, Contact)"),
    _c("record_id", "string", "the CRM record's id"),
    _c("field", "string", "the CRM field"),
    _c("fact", "string", "the fact it holds: program, completed, cohort, holdout or effect"),
    _c("old_value", "string", "the field's value before (empty when it had none)"),
    _c("new_value", "string", "the value sent (empty to clear the field)"),
    _c("outcome", "string", "written or failed"),
    _c("error", "string", "the CRM's error for the record (status code and message), when it failed"),
    layer="audit",
)

_table(
    "learner_identity",
    "Link results: every learner identity seen in the LMS, and the CRM user or contact it resolves to.",
    ("learner_key",),
    _c("learner_key", "string",
       "actor_key form: mbox:<email>, account:<home>|<name>, sha1:…, openid:…, lms:<learner_id>"),
    _c("learner_id", "string", "LMS learner id, when known"),
    _c("email_norm", "string", "email used to link, when known"),
    _c("crm_user_id", "string", "the CRM user (rep) the learner is"),
    _c("crm_contact_id", "string", "the CRM contact the learner is (customer education)"),
    _c("crm_account_id", "string", "the contact's account"),
    _c("method", "string", "explicit, email, directory (account actor → learners.csv → email), sha1"),
    _c("status", "string", "linked, unlinked or ambiguous"),
    _c("detail", "string", "for ambiguous/unlinked: what was found"),
    layer="link",
)
_table(
    "learning_record",
    "Learning evidence from every LMS source, voided statements removed: the input of measurement.",
    ("record_key",),
    _c("record_key", "string", "statement id + actor, or the completion key"),
    _c("learner_key", "string", "learner_identity.learner_key"),
    _c("source", "string", "xapi or completions"),
    _c("verb", "string", "completed, passed, failed, attempted, experienced, …"),
    _c("activity_id", "string", "course or lesson id"),
    _c("activity_name", "string", "title"),
    _c("course_id", "string", "the course/program the activity belongs to (parent or grouping), else the activity"),
    _c("program", "string", "program, when the source names one"),
    _c("occurred_at", UTC_TS, "when it happened (completion time for completions)"),
    _c("score_pct", "float64", "score as a percentage 0–100"),
    _c("success", "boolean", "passed (true) / failed (false)"),
    _c("minutes", "float64", "time spent in minutes"),
    layer="link",
)


def table(name: str) -> Table:
    """The canonical table called ``name``."""
    return TABLES[name]


def markdown() -> str:
    """The schema as a Markdown document (``docs/warehouse.md``)."""
    out = [
        "# Warehouse schema",
        "",
        "Generated from `src/training_roi/warehouse/schema.py` by `training-roi schema` (`make docs`);",
        "do not edit by hand. Timestamps are UTC, money is decimal(18, 2) in the org currency.",
        "",
    ]
    layers = (("canonical", "Canonical tables (ingest)"), ("link", "Link tables"), ("audit", "Audit tables"))
    for layer, title in layers:
        out += [f"## {title}", ""]
        for t in TABLES.values():
            if t.layer != layer:
                continue
            out += [f"### `{t.name}`", "", t.doc, "", f"Key: {', '.join(f'`{k}`' for k in t.key)}", ""]
            out += ["| column | type | meaning |", "| --- | --- | --- |"]
            out += [f"| `{c.name}` | {c.dtype} | {c.doc} |" for c in t.columns]
            out.append("")
    return "\n".join(out)
