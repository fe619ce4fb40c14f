"""Writing training facts back into the CRM (``training-roi push``): read, compare, write only what differs.

Each person (a CRM user, or a contact) carries a few facts of one program — its name, the day the
person completed it, the cohort, whether the person is held out, and the credited effect — in
fields the user maps in ``sync.yaml``'s ``push:`` section. A push reads the fields' current values
from the CRM, compares them with the facts, and sends only the records whose values differ, so
running it twice writes nothing the second time. Every field written (or refused by the CRM) is a
row of ``push_audit``; every push a row of ``push_run``.

The CRM is a :class:`PushTarget`: anything that reads the current values of records by id and
writes changed ones in batches, answering per record. :mod:`.salesforce_push` is Salesforce's
(SOQL by ids, the sObject Collections update), :mod:`.hubspot_push` HubSpot's (batch read and
batch update of contacts' properties); another CRM plugs in by providing the same two
calls and registering its kind in :data:`training_roi.sync.PUSH_TARGETS`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pyarrow as pa
from ibis.backends import BaseBackend

from training_roi.errors import SyncConfigError, SyncError
from training_roi.sync.config import SyncConfig, _Checker
from training_roi.warehouse.connection import ensure_tables
from training_roi.warehouse.load import upsert
from training_roi.warehouse.quality import RUN_STARTED
from training_roi.warehouse.schema import table

__all__ = [
    "FACTS", "NOT_ESTABLISHED", "FieldChange", "PersonFacts", "PushConfig", "PushInfo", "PushTarget", "RecordChange",
    "Value", "WriteResult", "batches", "check_unit", "plan_changes", "push", "push_config", "push_history",
]

FACTS = ("program", "completed", "cohort", "holdout", "effect")
"""The facts a push can write, each to the CRM field the configuration maps it to."""
PUSH_OBJECTS = {"salesforce": {"User": "rep", "Contact": "account"}, "hubspot": {"contacts": "account"}}
"""By kind of CRM, the objects a push writes to, and the study unit whose people they are (the first the default)."""
NO_REPS = {"hubspot": "HubSpot keeps no custom property for a rep: owners hold no properties, and its users object "
                      "(crm/v3/objects/users) takes only the user properties HubSpot defines (working hours, time "
                      "zone, job title, phone numbers). Push a rep study to a Salesforce org, or push to HubSpot a "
                      "study whose units are accounts (their contacts are written)"}
"""Why a kind of CRM cannot take a rep study's facts."""
NOT_ESTABLISHED = "not established"
"""The effect written for a trained person while the study has not established the program's effect."""
BATCH_LIMIT = 200
"""The most records one write request may carry (Salesforce's sObject Collections limit)."""
BATCH_LIMITS = {"hubspot": 100}
"""A CRM's own, lower limit (HubSpot's batch update takes 100 inputs)."""

T = TypeVar("T")

Value = str | bool | None
"""A fact's value: text (a date as 2026-12-05), a flag, or None for an empty field."""
_FIELD = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,79}$")
_DATE_TIME = re.compile(r"^(\d{4}-\d\d-\d\d)T\d\d:\d\d")


@dataclass(frozen=True)
class PushConfig:
    """The ``push:`` section: where to write (a source of ``sources``, an object), which fields, from which study."""

    target: str
    object: str
    fields: dict[str, str]
    """Fact → the CRM field it is written to (only the facts mapped are written)."""
    study: Path
    results: Path
    """The folder ``training-roi report`` wrote (its ``result.json``), or the file itself."""
    batch_size: int = BATCH_LIMIT
    kind: str = "salesforce"
    """The target source's kind (``salesforce``, ``hubspot``)."""

    @property
    def unit(self) -> str:
        """The study unit whose people the object holds: ``rep`` for User, ``account`` for Contact or contacts."""
        return PUSH_OBJECTS[self.kind][self.object]


def push_config(config: SyncConfig) -> PushConfig:
    """Check ``sync.yaml``'s ``push:`` section; paths are read relative to the file.

    Raises
    ------
    SyncConfigError
        No ``push:`` section, or a setting missing or wrong; the message names the file and the field.
    """
    check = _Checker(config.path)
    if config.push is None:
        check.fail("push", "no push section: name the target source, the object, the field map, the study and "
                           "its results (docs/push.md)")
    data = check.mapping(config.push, "push", required=True)
    check.known(data, "push", ("target", "object", "fields", "study", "results", "batch_size"))
    names = {s.name: s for s in config.sources}
    target = data.get("target")
    if target not in names:
        check.fail("push.target", f"expected the name of one of the sources ({', '.join(names)}), not {target!r}")
    kind = names[target].kind
    if kind not in PUSH_OBJECTS:
        check.fail("push.target", f"{target} is an LRS: a push writes to a CRM (a source of kind "
                                  f"{' or '.join(PUSH_OBJECTS)})")
    objects = PUSH_OBJECTS[kind]
    obj = data.get("object", next(iter(objects)))
    if kind in NO_REPS and obj in ("users", "owners", "User"):
        check.fail("push.object", NO_REPS[kind])
    if obj not in objects:
        check.fail("push.object", f"expected {' or '.join(objects)}, not {obj!r}")
    mapped = check.mapping(data.get("fields"), "push.fields", required=True)
    for fact, name in mapped.items():
        if fact not in FACTS:
            check.fail(f"push.fields.{fact}", f"unknown fact; expected some of {', '.join(FACTS)}")
        if not isinstance(name, str) or not _FIELD.match(name) or name in ("Id", "hs_object_id"):
            example = "training_program" if kind == "hubspot" else "Training_Program__c"
            check.fail(f"push.fields.{fact}", f"expected the API name of a field of {obj}, e.g. {example}")
    if not mapped:
        check.fail("push.fields", f"map at least one fact ({', '.join(FACTS)}) to a field")
    written = list(mapped.values())
    repeated = sorted({n for n in written if written.count(n) > 1})
    if repeated:
        check.fail("push.fields", f"{repeated[0]} is mapped twice: each fact needs its own field")
    paths = {}
    for key in ("study", "results"):
        value = data.get(key)
        if not isinstance(value, str) or not value:
            check.fail(f"push.{key}", "expected a path" + (" to the study file" if key == "study" else
                                                           " to the folder training-roi report wrote"))
        paths[key] = config.path.parent / value
    most = BATCH_LIMITS.get(kind, BATCH_LIMIT)
    size = check.number(data, "push", "batch_size", most, least=1, integer=True)
    if size > most:
        check.fail("push.batch_size", f"expected at most {most} records per request, not {size}")
    return PushConfig(target=str(target), object=str(obj), fields={f: mapped[f] for f in FACTS if f in mapped},
                      study=paths["study"], results=paths["results"], batch_size=size, kind=kind)


@dataclass(frozen=True)
class PersonFacts:
    """One person's facts: the CRM record they are written to, and the value of each fact."""

    record_id: str
    values: dict[str, Value]


@dataclass(frozen=True)
class FieldChange:
    """One field of one record whose value differs from the fact: its value now, and the one written."""

    fact: str
    field: str
    old: Value
    new: Value


@dataclass
class RecordChange:
    """One record to write, and how the write went: ``planned``, ``written`` or ``failed`` (with the CRM's error)."""

    record_id: str
    changes: list[FieldChange]
    outcome: str = "planned"
    error: str | None = None

    def values(self) -> dict[str, Value]:
        """Field → value to write."""
        return {c.field: c.new for c in self.changes}


@dataclass(frozen=True)
class WriteResult:
    """The CRM's answer for one record: written, or refused with its error in words."""

    ok: bool
    error: str | None = None


class PushTarget(Protocol):
    """A CRM a push writes to: it reads the current values of records by id and writes changed records.

    ``name`` is the source's name in ``sync.yaml``, ``object`` the kind of record written (``User``,
    ``Contact``), ``batch_size`` the most records :meth:`write` is given at once.
    """

    name: str
    object: str
    batch_size: int

    def describe(self) -> str:
        """Where the records are written, as it may be printed (no credential)."""
        ...

    def read(self, ids: list[str], fields: list[str]) -> dict[str, dict[str, Any]]:
        """The current values of ``fields`` of the records ``ids``: record id → field → value (absent ids left out)."""
        ...

    def write(self, records: list[RecordChange]) -> list[WriteResult]:
        """Write each record's changed values; one result per record, in order.

        Raises
        ------
        SyncError
            The whole request was refused or could not be sent (then no record is written).
        """
        ...

    def close(self) -> None:
        """Release the connections."""
        ...


def _text(fact: str, value: Any) -> str:
    """A value as it is compared and recorded: empty for None, true/false, a date-time field's day for a date."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    found = _DATE_TIME.match(text) if fact == "completed" else None
    return found[1] if found else text


def plan_changes(facts: Iterable[PersonFacts], current: Mapping[str, Mapping[str, Any]],
                 fields: Mapping[str, str]) -> tuple[list[RecordChange], list[str]]:
    """The records whose mapped fields differ from the facts, and the persons the CRM has no record for."""
    records, missing = [], []
    for person in facts:
        now = current.get(person.record_id)
        if now is None:
            missing.append(person.record_id)
            continue
        changes = [FieldChange(fact, name, now.get(name), person.values.get(fact)) for fact, name in fields.items()
                   if _text(fact, now.get(name)) != _text(fact, person.values.get(fact))]
        if changes:
            records.append(RecordChange(person.record_id, changes))
    return records, missing


@dataclass
class PushInfo:
    """What a push did (or, in a dry run, would do)."""

    run_id: str
    target: str
    object: str
    endpoint: str
    study: str
    dry_run: bool
    persons: int
    records: list[RecordChange] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def written(self) -> int:
        """Records the CRM accepted."""
        return sum(r.outcome == "written" for r in self.records)

    @property
    def failed(self) -> list[RecordChange]:
        """Records the CRM refused (or a request that could not be sent)."""
        return [r for r in self.records if r.outcome == "failed"]

    @property
    def unchanged(self) -> int:
        """Persons whose fields already hold their facts."""
        return self.persons - len(self.records) - len(self.missing)

    @property
    def ok(self) -> bool:
        """No record failed."""
        return not self.failed and self.error is None

    def asdict(self) -> dict[str, Any]:
        """A JSON-ready dictionary: counts, then each record's changes (old → new) and outcome."""
        return {
            "run_id": self.run_id, "target": self.target, "object": self.object, "endpoint": self.endpoint,
            "study": self.study, "dry_run": self.dry_run, "ok": self.ok, "persons": self.persons,
            "changed": len(self.records), "unchanged": self.unchanged, "written": self.written,
            "failed": len(self.failed), "missing": self.missing, "error": self.error,
            "records": [{"record_id": r.record_id, "outcome": r.outcome, "error": r.error,
                         "changes": [{"fact": c.fact, "field": c.field, "old": c.old, "new": c.new}
                                     for c in r.changes]} for r in self.records],
        }


def batches(items: list[T], size: int) -> Iterable[list[T]]:
    """``items`` in consecutive lists of at most ``size`` (a CRM's records or ids per request)."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _rows(name: str, rows: list[dict[str, object]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=table(name).schema.to_pyarrow())


def _record_run(con: BaseBackend, info: PushInfo, started: datetime, finished: datetime | None,
                status: str) -> None:
    rows = _rows("push_run", [{
        "run_id": info.run_id, "target": info.target, "object": info.object, "endpoint": info.endpoint,
        "study": info.study, "started": started, "finished": finished, "status": status, "persons": info.persons,
        "changed": len(info.records), "written": info.written, "failed": len(info.failed), "error": info.error,
    }])
    upsert(con, "push_run", rows)


def _audit(con: BaseBackend, info: PushInfo, records: list[RecordChange], at: datetime) -> None:
    rows: list[dict[str, object]] = [{
        "run_id": info.run_id, "answered_at": at, "target": info.target, "object": info.object,
        "record_id": r.record_id, "field": c.field, "fact": c.fact, "old_value": _text(c.fact, c.old),
        "new_value": _text(c.fact, c.new), "outcome": r.outcome, "error": r.error} for r in records for c in r.changes]
    if rows:
        upsert(con, "push_audit", _rows("push_audit", rows))


def push(con: BaseBackend, target: PushTarget, facts: list[PersonFacts], fields: Mapping[str, str], *,
         study: str, dry_run: bool = False, progress: Callable[[str], None] | None = None) -> PushInfo:
    """Write ``facts`` into ``target``'s mapped ``fields``, only where the CRM's values differ.

    A dry run reads the CRM and returns the change set, writing nothing (nor any row of the
    warehouse). Otherwise the run is recorded in ``push_run`` as started, each batch's fields in
    ``push_audit`` with their outcome as the CRM answered, and the run's end in ``push_run``.
    A record the CRM refuses does not stop the others; :attr:`PushInfo.ok` is false then.

    Raises
    ------
    SyncError
        The current values could not be read (the CRM refused the credentials or the query:
        a field not in the CRM, an object without those records); nothing was written.
    """
    tell = progress or (lambda _line: None)
    ids = list(dict.fromkeys(p.record_id for p in facts))
    tell(f"{target.name}: reading {len(ids):,} {target.object} record(s)")
    current = target.read(ids, list(fields.values()))
    records, missing = plan_changes(facts, current, fields)
    info = PushInfo(uuid.uuid4().hex, target.name, target.object, target.describe(), study, dry_run, len(ids),
                    records, missing)
    if dry_run:
        return info
    ensure_tables(con)
    started = datetime.now(UTC)
    _record_run(con, info, started, None, RUN_STARTED)
    for batch in batches(records, max(1, min(target.batch_size, BATCH_LIMIT))):
        tell(f"{target.name}: writing {len(batch):,} record(s)")
        try:
            results = target.write(batch)
        except SyncError as exc:
            results = [WriteResult(False, str(exc))] * len(batch)
        if len(results) != len(batch):
            results = [WriteResult(False, f"the CRM answered {len(results)} result(s) for {len(batch)} records")
                       ] * len(batch)
        for record, result in zip(batch, results, strict=True):
            record.outcome = "written" if result.ok else "failed"
            record.error = result.error
        _audit(con, info, batch, datetime.now(UTC))
    _record_run(con, info, started, datetime.now(UTC), "ok" if info.ok else "failed")
    return info


def push_history(con: BaseBackend, limit: int = 10) -> list[dict[str, Any]]:
    """The latest pushes (``push_run``), newest first."""
    ensure_tables(con)
    runs = con.table("push_run")
    rows: list[dict[str, Any]] = runs.order_by(runs.started.desc()).limit(limit).to_pyarrow().to_pylist()
    return rows


def check_unit(config: PushConfig, unit: str) -> None:
    """Refuse a study whose unit is not the object's people (reps are Users, customers' learners Contacts)."""
    if unit == "rep" and config.kind in NO_REPS:
        raise SyncConfigError(f"push.target: the study measures reps, and {config.target} is a "
                              f"{config.kind} account: {NO_REPS[config.kind]}")
    if config.unit != unit:
        want = next(o for o, u in PUSH_OBJECTS[config.kind].items() if u == unit)
        raise SyncConfigError(f"push.object: the study measures {'reps' if unit == 'rep' else 'accounts'}, whose "
                              f"people are {want} records, not {config.object}")
