"""A HubSpot account for the sync tests: the CRM API's search, lists, associations, pipelines, OAuth and limits.

Built from HubSpot's API reference, as far as the sync uses it:

- ``POST /oauth/v1/token`` (form: ``grant_type=refresh_token``, ``client_id``, ``client_secret``,
  ``refresh_token``): ``{"token_type": "bearer", "refresh_token", "access_token", "expires_in"}``; a
  wrong refresh token answers 400 ``{"status": "BAD_REFRESH_TOKEN", "message", "correlationId"}``.
- ``POST /crm/v3/objects/<object>/search`` with ``filterGroups`` (at most 5 groups of at most 10
  filters; ``EQ``, ``NEQ``, ``GT``, ``GTE``, ``LT``, ``LTE``; datetimes as milliseconds), one sort,
  ``properties``, ``limit`` (at most 200) and ``after`` (an offset): ``{"total", "results": [{"id",
  "properties", "createdAt", "updatedAt", "archived"}], "paging": {"next": {"after", "link"}}}``. The
  result is computed again at every request, so a record modified between two pages moves; an
  ``after`` at or beyond 10,000 is answered 400 (HubSpot sends at most 10,000 results for a search).
- ``GET /crm/v3/objects/<object>`` (``archived``, ``limit`` up to 100, ``after``, ``properties``,
  ``associations``): archived records carry ``archivedAt``; associations are listed by v3 type name.
- ``POST /crm/v4/associations/<from>/<to>/batch/read`` (at most 1,000 inputs): ``{"status":
  "COMPLETE", "results": [{"from": {"id"}, "to": [{"toObjectId", "associationTypes": [{"category",
  "typeId", "label"}]}]}]}``; a primary company is type 5 (deals) or 1 (contacts), any company also the
  unlabeled type (341, 279).
- ``GET /crm/v3/owners`` (``archived``, ``limit`` up to 500, ``after``) and
  ``GET /crm/v3/pipelines/deals`` (stages with ``metadata.isClosed`` and ``metadata.probability``).
- Every authenticated answer carries ``X-HubSpot-RateLimit-Daily`` and ``-Daily-Remaining`` (and the
  per-second ones); past the daily allowance the account answers 429 ``{"status": "error",
  "errorType": "RATE_LIMIT", "policyName": "DAILY", …}``.
- Errors are ``{"status": "error", "message", "correlationId", "category"}``: 401
  ``INVALID_AUTHENTICATION`` for an unknown token, ``EXPIRED_AUTHENTICATION`` for an expired one (after
  ``token_life`` requests), 400 ``VALIDATION_ERROR``.

The account's records are kept as rows of the contract's CRM files (``User``, ``Account``,
``Contact``, ``Opportunity``), seeded from a simulated export with HubSpot's numeric ids, and served
as HubSpot's objects; ``export`` writes them back as files, so a test can compare a synced warehouse
with a file ingest of the same records.

Faults a test queues in ``faults`` apply to page requests (searches and lists), one per request:
``("secondly", headers)`` answers 429 of the per-second policy, ``("daily", None)`` 429 of the daily
one, ``(status, headers)`` an error body, ``"expire"`` expires the token in use, ``"truncate"`` cuts the
JSON short, ``("sleep", seconds)`` answers late, ``("hold", None)`` waits until ``release`` is set.
With ``shuffle_ties`` set, a search orders records of equal sort value anew at every request.
"""

from __future__ import annotations

import csv
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.sync import crm

COLUMNS = {
    "owners": ("User", ("Id", "Email", "FirstName", "LastName", "Name", "IsActive", "CreatedDate")),
    "companies": ("Account", ("Id", "IsDeleted", "Name", "Type", "Industry", "AnnualRevenue", "NumberOfEmployees",
                              "OwnerId", "BillingState", "BillingCountry", "CreatedDate")),
    "contacts": ("Contact", ("Id", "IsDeleted", "AccountId", "Email", "FirstName", "LastName", "Title",
                             "CreatedDate")),
    "deals": ("Opportunity", ("Id", "IsDeleted", "AccountId", "OwnerId", "Name", "Type", "StageName", "Amount",
                              "Probability", "CloseDate", "IsClosed", "IsWon", "CreatedDate")),
}
"""What the account holds of each object, as the contract's file and columns."""
MODIFIED = {"companies": "hs_lastmodifieddate", "contacts": "lastmodifieddate", "deals": "hs_lastmodifieddate"}
FIRST_ID = {"owners": 41_000_000, "companies": 9_000_000_000, "contacts": 5_100_000, "deals": 17_000_000_000}
PRIMARY = {"deals": (5, 341, "deal_to_company"), "contacts": (1, 279, "contact_to_company")}
CAP = 10_000


def iso(ms: int) -> str:
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Record:
    """One record: its row in the contract's columns, when it was modified, and when archived."""

    row: dict[str, str]
    modified: int
    archived_at: int | None = None
    companies: list[str] = field(default_factory=list)
    """Companies associated without being primary."""
    custom: dict[str, str] = field(default_factory=dict)
    """Values of the account's custom properties (a push's fields), as HubSpot stores them."""
    merged: list[str] = field(default_factory=list)
    """Ids of the records merged into this one (``hs_merged_object_ids``)."""


@dataclass
class Portal:
    """The account's data and behaviour; a test changes it while the server runs."""

    access_token: str
    client_id: str
    client_secret: str
    refresh_token: str
    url: str = ""
    records: dict[str, dict[str, Record]] = field(default_factory=dict)
    stages: dict[str, tuple[str, bool, float]] = field(default_factory=dict)
    faults: list[Any] = field(default_factory=list)
    token_life: int | None = None
    used: int = 0
    allowed: int = 250_000
    tokens: dict[str, int] = field(default_factory=dict)
    expired: set[str] = field(default_factory=set)
    token_requests: int = 0
    log: list[tuple[str, str, Any]] = field(default_factory=list)
    after_page: Callable[[str, int], None] | None = None
    release: threading.Event = field(default_factory=threading.Event)
    held: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    clock: datetime = datetime(2025, 6, 1, tzinfo=UTC)
    last_change: int = 0
    shuffle_ties: bool = False
    """Whether a search's records of equal sort value come in a new order at every request, as HubSpot may send them."""
    push: Writes = field(default_factory=lambda: Writes())

    def seed(self, folder: Path) -> None:
        """Load ``folder/crm``'s User, Account, Contact and Opportunity files under HubSpot ids.

        Records get modification times a second apart, three at a time (ties); inactive users are
        archived owners. A deal's stage is in the one pipeline, with its closed, won and probability.
        """
        ids: dict[str, str] = {}
        tables: dict[str, list[dict[str, str]]] = {}
        for obj, (contract, _columns) in COLUMNS.items():
            with (folder / "crm" / f"{contract}.csv").open(encoding="utf-8-sig", newline="") as fh:
                tables[obj] = list(csv.DictReader(fh))
            for i, row in enumerate(tables[obj]):
                ids[row["Id"]] = str(FIRST_ID[obj] + i)
        base = int(self.clock.timestamp() * 1000)
        for obj, rows in tables.items():
            columns = COLUMNS[obj][1]
            table: dict[str, Record] = {}
            for i, source in enumerate(rows):
                row = {c: source.get(c, "") for c in columns}
                for ref in ("Id", "OwnerId", "AccountId"):
                    if ref in row:
                        row[ref] = ids.get(row[ref], "")
                if obj == "owners":
                    row["Name"] = f"{row['FirstName']} {row['LastName']}".strip()
                record = Record(row, base + (i // 3) * 1000)
                if obj == "owners" and row["IsActive"] != "true":
                    record.archived_at = record.modified
                table[row["Id"]] = record
            self.records[obj] = table
        for record in self.records["deals"].values():
            row = record.row
            won, closed = row["IsWon"] == "true", row["IsClosed"] == "true"
            probability = 1.0 if won else 0.0 if closed else float(row["Probability"] or 0) / 100
            self.stages.setdefault(row["StageName"], (re.sub(r"[^a-z0-9]", "", row["StageName"].lower()), closed,
                                                      probability))

    def _now(self) -> int:
        self.last_change = max(now_ms(), self.last_change + 1)
        return self.last_change

    def touch(self, obj: str, rid: str, **changes: str) -> None:
        """Change a record (or add one) as a user would: it is modified now."""
        with self.lock:
            columns = COLUMNS[obj][1]
            record = self.records[obj].setdefault(rid, Record(dict.fromkeys(columns, "") | {"Id": rid}, 0))
            record.row.update(changes)
            record.modified = self._now()

    def archive(self, obj: str, rid: str) -> None:
        """Delete a record (deactivate an owner's user): it is listed with ``archived=true`` from now on."""
        with self.lock:
            record = self.records[obj][rid]
            record.archived_at = self._now()
            record.row["IsActive" if obj == "owners" else "IsDeleted"] = "false" if obj == "owners" else "true"

    def merge(self, obj: str, primary: str, other: str) -> None:
        """Merge record ``other`` into ``primary`` (``POST /crm/v3/objects/<object>/merge``).

        As HubSpot does: the merged record is neither live nor archived any more, and the primary one,
        modified now, lists its id (and those merged into it before) in ``hs_merged_object_ids``.
        """
        with self.lock:
            gone = self.records[obj].pop(other)
            record = self.records[obj][primary]
            record.merged += [other, *gone.merged]
            record.modified = self._now()

    def export(self, folder: Path) -> None:
        """The account's records as the contract's files (``crm/<Object>.csv``), as they are now."""
        (folder / "crm").mkdir(parents=True, exist_ok=True)
        for obj, (contract, columns) in COLUMNS.items():
            with (folder / "crm" / f"{contract}.csv").open("w", encoding="utf-8", newline="") as fh:
                writer = csv.writer(fh)
                writer.writerow(columns)
                for record in self.records[obj].values():
                    writer.writerow([record.row.get(c, "") for c in columns])

    def searches(self, obj: str | None = None) -> list[dict[str, Any]]:
        """The bodies of the searches received (of one object), in order."""
        return [body for kind, o, body in self.log if kind == "search" and obj in (None, o)]

    def properties(self, obj: str, record: Record) -> dict[str, str | None]:
        """A record's HubSpot properties, from its row."""
        row = record.row

        def text(column: str) -> str | None:
            return row.get(column) or None

        out: dict[str, str | None] = {"hs_object_id": row["Id"], "createdate": text("CreatedDate")}
        if obj == "companies":
            out |= {"name": text("Name"), "type": text("Type"), "industry": text("Industry"),
                    "annualrevenue": text("AnnualRevenue"), "numberofemployees": text("NumberOfEmployees"),
                    "hubspot_owner_id": text("OwnerId"), "state": text("BillingState"),
                    "country": text("BillingCountry")}
        elif obj == "contacts":
            out |= {"email": text("Email"), "firstname": text("FirstName"), "lastname": text("LastName"),
                    "jobtitle": text("Title")}
        else:
            close = text("CloseDate")
            out |= {"dealname": text("Name"), "dealstage": self.stages[row["StageName"]][0], "pipeline": "default",
                    "amount": text("Amount"), "closedate": f"{close}T00:00:00Z" if close else None,
                    "hubspot_owner_id": text("OwnerId"), "dealtype": text("Type")}
        out[MODIFIED[obj]] = iso(record.modified)
        out["hs_merged_object_ids"] = ";".join(record.merged) or None
        return out


def _error(status: int, category: str, message: str, headers: dict[str, str] | None = None,
           **extra: str) -> Response:
    body = {"status": "error", "message": message, "correlationId": str(uuid.uuid4()), "category": category, **extra}
    return Response(orjson.dumps(body), status, {"Content-Type": "application/json", **(headers or {})})


def _json(body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), 200, {"Content-Type": "application/json", **(headers or {})})


def _rate_limited(policy: str, headers: dict[str, str] | None = None) -> Response:
    message = "You have reached your daily limit." if policy == "DAILY" else "You have reached your secondly limit."
    return _error(429, "RATE_LIMITS", message, headers, errorType="RATE_LIMIT", policyName=policy,
                  requestId=str(uuid.uuid4()))


_OPS: dict[str, Callable[[int, int], bool]] = {
    "EQ": lambda a, b: a == b, "NEQ": lambda a, b: a != b, "GT": lambda a, b: a > b, "GTE": lambda a, b: a >= b,
    "LT": lambda a, b: a < b, "LTE": lambda a, b: a <= b}


def app(portal: Portal) -> Starlette:
    def limits(response: Response) -> Response:
        response.headers.update({
            "X-HubSpot-RateLimit-Daily": str(portal.allowed),
            "X-HubSpot-RateLimit-Daily-Remaining": str(max(0, portal.allowed - portal.used)),
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000", "X-HubSpot-RateLimit-Max": "190",
            "X-HubSpot-RateLimit-Remaining": "189", "X-HubSpot-RateLimit-Secondly": "19",
            "X-HubSpot-RateLimit-Secondly-Remaining": "18"})
        return response

    async def token(request: Request) -> Response:
        form = await request.form()
        portal.token_requests += 1
        if form.get("client_id") != portal.client_id or form.get("client_secret") != portal.client_secret:
            return Response(orjson.dumps({"status": "BAD_CLIENT_ID", "message": "missing or invalid client_id",
                                          "correlationId": str(uuid.uuid4())}), 400,
                            {"Content-Type": "application/json"})
        if form.get("grant_type") != "refresh_token" or form.get("refresh_token") != portal.refresh_token:
            return Response(orjson.dumps({"status": "BAD_REFRESH_TOKEN", "message": "missing or unknown refresh token",
                                          "correlationId": str(uuid.uuid4())}), 400,
                            {"Content-Type": "application/json"})
        issued = "CJ" + uuid.uuid4().hex
        portal.tokens[issued] = 0
        return _json({"token_type": "bearer", "refresh_token": portal.refresh_token, "access_token": issued,
                      "expires_in": 1800})

    def authorised(request: Request) -> tuple[Response | None, str]:
        tok = request.headers.get("authorization", "").removeprefix("Bearer ")
        if tok != portal.access_token and tok not in portal.tokens:
            return _error(401, "INVALID_AUTHENTICATION", "Authentication credentials not found."), tok
        if tok in portal.expired or (portal.token_life is not None and tok in portal.tokens
                                     and portal.tokens[tok] >= portal.token_life):
            return _error(401, "EXPIRED_AUTHENTICATION", "The OAuth token used to make this call expired."), tok
        if tok in portal.tokens:
            portal.tokens[tok] += 1
        portal.used += 1
        if portal.used > portal.allowed:
            return limits(_rate_limited("DAILY")), tok
        return None, tok

    async def fault(tok: str) -> Response | None:
        if not portal.faults:
            return None
        f = portal.faults.pop(0)
        if f is None:
            return None
        if f == "truncate":
            return limits(Response(b'{"total": 12, "results": [{"id": "1", "prop', 200,
                                   {"Content-Type": "application/json"}))
        if f == "expire":
            portal.expired.add(tok)
            return _error(401, "EXPIRED_AUTHENTICATION", "The OAuth token used to make this call expired.")
        kind, arg = f
        if kind == "sleep":
            await crm.pause(arg)
            return None
        if kind == "hold":
            portal.held.set()
            while not portal.release.is_set():
                await crm.pause(0.05)
            return _error(503, "SERVICE_UNAVAILABLE", "held", {"Retry-After": "0"})
        if kind in ("secondly", "daily"):
            return limits(_rate_limited(kind.upper(), arg))
        return limits(_error(kind, "INTERNAL_ERROR" if kind >= 500 else "VALIDATION_ERROR", "injected", arg))

    async def gate(request: Request, page: bool) -> Response | None:
        refused, tok = authorised(request)
        if refused is not None:
            return refused
        return await fault(tok) if page else None

    def shown(obj: str, record: Record, wanted: list[str]) -> dict[str, Any]:
        props = portal.properties(obj, record)
        keep = {"hs_object_id", "createdate", MODIFIED[obj], *wanted}
        body = {"id": record.row["Id"], "properties": {k: props.get(k) for k in keep},
                "createdAt": props.get("createdate"), "updatedAt": iso(record.modified),
                "archived": record.archived_at is not None}
        if record.archived_at is not None:
            body["archivedAt"] = iso(record.archived_at)
        return body

    def value(obj: str, record: Record, prop: str) -> int | None:
        if prop == MODIFIED[obj]:
            return record.modified
        if prop == "hs_object_id":
            return int(record.row["Id"])
        return None

    async def search(request: Request) -> Response:
        early = await gate(request, True)
        if early is not None:
            return early
        obj = request.path_params["obj"]
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return limits(_error(400, "VALIDATION_ERROR", "Invalid input JSON"))
        portal.log.append(("search", obj, body))
        if obj not in MODIFIED:
            return limits(_error(400, "VALIDATION_ERROR", f"Unable to infer object type from: {obj}"))
        groups, sorts = body.get("filterGroups") or [], body.get("sorts") or []
        limit, after = body.get("limit", 10), str(body.get("after") or "0")
        if not isinstance(limit, int) or not 1 <= limit <= 200:
            return limits(_error(400, "VALIDATION_ERROR", "limit must be between 1 and 200"))
        if len(groups) > 5 or any(len(g.get("filters") or []) > 10 for g in groups) or len(sorts) > 1:
            return limits(_error(400, "VALIDATION_ERROR", "too many filter groups, filters or sorts"))
        if not after.isdigit():
            return limits(_error(400, "VALIDATION_ERROR", f"after is not a valid offset: {after}"))
        offset = int(after)
        if offset >= CAP:
            return limits(_error(400, "VALIDATION_ERROR", "The search endpoints are limited to 10,000 total "
                                                          "results for any given query."))
        tests: list[list[tuple[str, str, int]]] = []
        for group in groups:
            checks = []
            for f in group.get("filters") or []:
                prop, op, raw = f.get("propertyName"), f.get("operator"), str(f.get("value"))
                if op not in _OPS or prop not in (MODIFIED[obj], "hs_object_id") or not raw.isdigit():
                    return limits(_error(400, "VALIDATION_ERROR", f"unsupported filter {prop} {op} {raw}"))
                checks.append((prop, op, int(raw)))
            tests.append(checks)
        with portal.lock:
            live = [r for r in portal.records[obj].values() if r.archived_at is None]
        found = [r for r in live if not tests or any(
            all(_OPS[op](value(obj, r, p) or 0, v) for p, op, v in group) for group in tests)]
        if sorts:
            prop = sorts[0].get("propertyName")
            if prop not in (MODIFIED[obj], "hs_object_id"):
                return limits(_error(400, "VALIDATION_ERROR", f"cannot sort on {prop}"))
            # HubSpot promises no order among equal values: by id, or (shuffle_ties) anew at every request.
            ties = random.Random(len(portal.log)) if portal.shuffle_ties else None
            found.sort(key=lambda r: (value(obj, r, prop), ties.random() if ties else int(r.row["Id"])),
                       reverse=sorts[0].get("direction") == "DESCENDING")
        chunk = found[offset:min(offset + limit, CAP)]
        answer: dict[str, Any] = {"total": len(found),
                                  "results": [shown(obj, r, body.get("properties") or []) for r in chunk]}
        if offset + limit < len(found):
            answer["paging"] = {"next": {"after": str(offset + limit),
                                         "link": f"{portal.url}/crm/v3/objects/{obj}/search?after={offset + limit}"}}
        if portal.after_page is not None:
            portal.after_page(obj, offset)
        return limits(_json(answer))

    def listing(request: Request, rows: list[tuple[str, dict[str, Any]]], most: int, path: str) -> Response:
        """A list endpoint's page: records from the ``after`` id on, in id order."""
        limit = int(request.query_params.get("limit", "10"))
        if not 1 <= limit <= most:
            return limits(_error(400, "VALIDATION_ERROR", f"limit must be between 1 and {most}"))
        after = request.query_params.get("after", "0")
        if not after.isdigit():
            return limits(_error(400, "VALIDATION_ERROR", f"after is not a valid id: {after}"))
        rows = sorted((r for r in rows if int(r[0]) >= int(after)), key=lambda r: int(r[0]))
        answer: dict[str, Any] = {"results": [body for _, body in rows[:limit]]}
        if len(rows) > limit:
            nxt = rows[limit][0]
            answer["paging"] = {"next": {"after": nxt, "link": f"{portal.url}{path}?after={nxt}"}}
        return limits(_json(answer))

    async def objects(request: Request) -> Response:
        early = await gate(request, True)
        if early is not None:
            return early
        obj = request.path_params["obj"]
        q = request.query_params
        portal.log.append(("list", obj, dict(q)))
        if obj not in MODIFIED:
            return limits(_error(400, "VALIDATION_ERROR", f"Unable to infer object type from: {obj}"))
        archived = q.get("archived", "false") == "true"
        wanted = [p for p in q.get("properties", "").split(",") if p]
        rows = []
        with portal.lock:
            for record in portal.records[obj].values():
                if (record.archived_at is not None) != archived:
                    continue
                body = shown(obj, record, wanted)
                if "companies" in q.get("associations", "") and obj in PRIMARY:
                    body["associations"] = {"companies": {"results": [
                        {"id": c, "type": t} for c, t in _links(obj, record)]}}
                rows.append((record.row["Id"], body))
        return listing(request, rows, 100, f"/crm/v3/objects/{obj}")

    async def owners(request: Request) -> Response:
        early = await gate(request, True)
        if early is not None:
            return early
        archived = request.query_params.get("archived", "false") == "true"
        portal.log.append(("list", "owners", dict(request.query_params)))
        rows = []
        with portal.lock:
            for i, record in enumerate(portal.records["owners"].values()):
                if (record.archived_at is not None) != archived:
                    continue
                row = record.row
                rows.append((row["Id"], {
                    "id": row["Id"], "email": row["Email"], "type": "PERSON", "firstName": row["FirstName"],
                    "lastName": row["LastName"], "userId": None if archived else 9_586_500 + i,
                    "userIdIncludingInactive": 9_586_500 + i, "createdAt": row["CreatedDate"],
                    "updatedAt": iso(record.modified), "archived": archived, "teams": []}))
        return listing(request, rows, 500, "/crm/v3/owners")

    async def pipelines(request: Request) -> Response:
        early = await gate(request, False)
        if early is not None:
            return early
        stages = [{"id": sid, "label": label, "displayOrder": i, "archived": False,
                   "metadata": {"isClosed": "true" if closed else "false", "probability": str(probability)}}
                  for i, (label, (sid, closed, probability)) in enumerate(portal.stages.items())]
        return limits(_json({"results": [{"id": "default", "label": "Sales Pipeline", "displayOrder": 0,
                                          "archived": False, "stages": stages}]}))

    async def associations(request: Request) -> Response:
        early = await gate(request, False)
        if early is not None:
            return early
        obj, to = request.path_params["obj"], request.path_params["to"]
        inputs = (orjson.loads(await request.body()) or {}).get("inputs") or []
        portal.log.append(("associations", obj, len(inputs)))
        if obj not in PRIMARY or to != "companies":
            return limits(_error(400, "VALIDATION_ERROR", f"unsupported association {obj} to {to}"))
        if len(inputs) > 1000:
            return limits(_error(400, "VALIDATION_ERROR", "Batch input limit of 1000 exceeded"))
        primary, unlabeled, _name = PRIMARY[obj]
        results = []
        with portal.lock:
            for item in inputs:
                record = portal.records[obj].get(str(item.get("id")))
                if record is None:
                    continue
                links = []
                for company, kind in _links(obj, record):
                    types = [{"category": "HUBSPOT_DEFINED", "typeId": unlabeled, "label": None}]
                    if not kind.endswith("_unlabeled"):
                        types.insert(0, {"category": "HUBSPOT_DEFINED", "typeId": primary, "label": "Primary"})
                    links.append({"toObjectId": int(company), "associationTypes": types})
                if links:
                    results.append({"from": {"id": record.row["Id"]}, "to": links})
        stamp = iso(now_ms())
        return limits(_json({"status": "COMPLETE", "results": results, "startedAt": stamp, "completedAt": stamp}))

    return Starlette(routes=[
        Route("/oauth/v1/token", token, methods=["POST"]),
        Route("/crm/v3/objects/{obj}/search", search, methods=["POST"]),
        Route("/crm/v3/objects/{obj}", objects),
        Route("/crm/v3/owners", owners),
        Route("/crm/v3/pipelines/deals", pipelines),
        Route("/crm/v4/associations/{obj}/{to}/batch/read", associations, methods=["POST"]),
        *push_routes(portal, limits, gate),
    ])


def _links(obj: str, record: Record) -> list[tuple[str, str]]:
    """A record's companies, with their v3 type name: the primary one, then the others."""
    _primary, _unlabeled, name = PRIMARY[obj]
    links = [(record.row["AccountId"], name)] if record.row.get("AccountId") else []
    return links + [(c, f"{name}_unlabeled") for c in record.companies]


# --- Pushes: custom properties, read and updated in batches ------------------------------------------------------
#
# - ``GET /crm/v3/properties/<object>``: ``{"results": [{"name", "label", "type", "fieldType", "options"}]}``,
#   the object's standard properties and the custom ones the account created (``type`` string, date, bool,
#   enumeration; a checkbox is ``bool`` with ``booleancheckbox``).
# - ``POST /crm/v3/objects/<object>/batch/read`` ``{"properties", "inputs": [{"id"}]}`` (at most 100 inputs):
#   each record with the properties asked for (null when empty; a property the object lacks is left out),
#   200 ``{"status": "COMPLETE", "results"}``, or 207 with ``errors`` (``OBJECT_NOT_FOUND``, ``context.ids``)
#   when an id is unknown.
# - ``POST /crm/v3/objects/<object>/batch/update`` ``{"inputs": [{"id", "properties"}]}`` (at most 100): a
#   property the object lacks refuses the whole request, 400 ``VALIDATION_ERROR`` whose message lists
#   ``PROPERTY_DOESNT_EXIST``; a value that is not of the property's type (a date not YYYY-MM-DD, a checkbox
#   not true/false, an option not offered) or an unknown id fails that record only: 207 Multi-Status with
#   ``results`` for the records written and one entry of ``errors`` per record refused (``context.ids``).
#   ``Writes.rejects`` makes the account refuse a record (id → category, message) as a workflow rule would;
#   ``Writes.merged`` answers a record's update under the id of the record it was merged into.

_DATE = re.compile(r"^\d{4}-\d\d-\d\d$")
STANDARD = {"contacts": ("email", "firstname", "lastname", "jobtitle", "createdate", "lastmodifieddate",
                         "hs_object_id")}


@dataclass
class Writes:
    """The custom properties of each object (name → type, field type, options), and the updates received."""

    properties: dict[str, dict[str, tuple[str, str, tuple[str, ...]]]] = field(default_factory=dict)
    requests: list[list[dict[str, Any]]] = field(default_factory=list)
    reads: int = 0
    rejects: dict[str, tuple[str, str]] = field(default_factory=dict)
    merged: dict[str, str] = field(default_factory=dict)
    """Records merged into another (id → the other's id): an update of one is answered under the other's id."""

    def add(self, obj: str, **types: str) -> None:
        """Create custom properties of ``obj``: string, date, bool (a checkbox) or enumeration:A|B (its options)."""
        for name, kind in types.items():
            base, _, options = kind.partition(":")
            field_type = {"string": "text", "date": "date", "bool": "booleancheckbox"}.get(base, "select")
            offered = ("true", "false") if base == "bool" else tuple(o for o in options.split("|") if o)
            self.properties.setdefault(obj, {})[name] = (base, field_type, offered)

    def written(self) -> int:
        """Records sent in updates."""
        return sum(len(r) for r in self.requests)

    def invalid(self, obj: str, name: str, value: object) -> str | None:
        """Why ``value`` cannot be stored in the property, or None."""
        kind, _field_type, offered = self.properties[obj][name]
        text = "" if value is None else str(value)
        if not text:
            return None
        if kind == "date" and not _DATE.match(text):
            return f"INVALID_DATE: {text!r} is not a valid date for {name} (expected YYYY-MM-DD)"
        if kind in ("bool", "enumeration") and text not in offered:
            return f"INVALID_OPTION: {text!r} was not one of the allowed options for {name}: {', '.join(offered)}"
        return None


def _multi(results: list[dict[str, Any]], errors: list[dict[str, Any]]) -> Response:
    """A batch's answer: 200 when every input went through, else 207 Multi-Status with the errors."""
    stamp = iso(now_ms())
    body: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": stamp, "completedAt": stamp}
    if errors:
        body |= {"numErrors": len(errors), "errors": errors}
    return Response(orjson.dumps(body), 207 if errors else 200, {"Content-Type": "application/json"})


def _failure(category: str, message: str, rid: str) -> dict[str, Any]:
    return {"status": "error", "category": category, "message": message, "context": {"ids": [rid]}}


def push_routes(portal: Portal, limits: Callable[[Response], Response],
                gate: Callable[[Request, bool], Any]) -> list[Route]:
    """The properties, batch read and batch update endpoints a push uses."""
    writes = portal.push

    async def inputs(request: Request) -> tuple[Response | None, str, dict[str, Any]]:
        early = await gate(request, True)  # the faults a test queues apply to batch reads and updates too
        if early is not None:
            return early, "", {}
        obj = request.path_params["obj"]
        body = orjson.loads(await request.body()) or {}
        if obj not in STANDARD:
            return limits(_error(400, "VALIDATION_ERROR", f"Unable to infer object type from: {obj}")), obj, body
        if len(body.get("inputs") or []) > 100:
            return limits(_error(400, "VALIDATION_ERROR", "Batch input limit of 100 exceeded")), obj, body
        return None, obj, body

    async def definitions(request: Request) -> Response:
        early = await gate(request, False)
        if early is not None:
            return early
        obj = request.path_params["obj"]
        shown = [{"name": n, "label": n, "type": "datetime" if n.endswith("date") else "string", "fieldType": "text",
                  "options": []} for n in STANDARD.get(obj, ())]
        shown += [{"name": n, "label": n.replace("_", " ").title(), "type": kind, "fieldType": field_type,
                   "options": [{"label": o, "value": o} for o in offered]}
                  for n, (kind, field_type, offered) in writes.properties.get(obj, {}).items()]
        return limits(_json({"results": shown}))

    async def read(request: Request) -> Response:
        refused, obj, body = await inputs(request)
        if refused is not None:
            return refused
        writes.reads += 1
        known = writes.properties.get(obj, {})
        wanted = [p for p in body.get("properties") or [] if p in known]
        results, errors = [], []
        with portal.lock:
            for item in body.get("inputs") or []:
                rid = str(item.get("id"))
                record = portal.records[obj].get(rid)
                if record is None or record.archived_at is not None:
                    errors.append(_failure("OBJECT_NOT_FOUND", f"Could not get some {obj} objects, they may be "
                                                               "deleted or not exist.", rid))
                    continue
                props = {"hs_object_id": rid, MODIFIED[obj]: iso(record.modified),
                         **{p: record.custom.get(p) or None for p in wanted}}
                results.append({"id": rid, "properties": props, "createdAt": record.row.get("CreatedDate"),
                                "updatedAt": iso(record.modified), "archived": False})
        return limits(_multi(results, errors))

    async def update(request: Request) -> Response:
        refused, obj, body = await inputs(request)
        if refused is not None:
            return refused
        items = body.get("inputs") or []
        writes.requests.append(items)
        known = writes.properties.get(obj, {})
        unknown = sorted({p for item in items for p in (item.get("properties") or {}) if p not in known})
        if unknown:
            said = [{"isValid": False, "message": f'Property "{p}" does not exist', "error": "PROPERTY_DOESNT_EXIST",
                     "name": p, "localizedErrorMessage": f'Property "{p}" does not exist'} for p in unknown]
            return limits(_error(400, "VALIDATION_ERROR", "Property values were not valid: "
                                 + orjson.dumps(said).decode()))
        results, errors = [], []
        with portal.lock:
            for item in items:
                rid, values = str(item.get("id")), item.get("properties") or {}
                record = portal.records[obj].get(rid)
                if record is None or record.archived_at is not None:
                    errors.append(_failure("OBJECT_NOT_FOUND", f"Could not get some {obj} objects, they may be "
                                                               "deleted or not exist.", rid))
                    continue
                why = next((w for p, v in values.items() if (w := writes.invalid(obj, p, v))), None)
                if why is None and rid in writes.rejects:
                    category, message = writes.rejects[rid]
                    why = f"{category}: {message}"
                if why is not None:
                    errors.append(_failure("VALIDATION_ERROR", why, rid))
                    continue
                record.custom.update({p: "" if v is None else str(v) for p, v in values.items()})
                record.modified = portal._now()
                results.append({"id": writes.merged.get(rid, rid),
                                "properties": {p: record.custom[p] or None for p in values},
                                "createdAt": record.row.get("CreatedDate"), "updatedAt": iso(record.modified),
                                "archived": False})
        return limits(_multi(results, errors))

    return [Route("/crm/v3/properties/{obj}", definitions),
            Route("/crm/v3/objects/{obj}/batch/read", read, methods=["POST"]),
            Route("/crm/v3/objects/{obj}/batch/update", update, methods=["POST"])]


def serve(portal: Portal) -> Iterator[Portal]:
    """Run the account on a free loopback port in a thread until the generator is closed."""
    return crm.serve(portal, app(portal), "HubSpot")
