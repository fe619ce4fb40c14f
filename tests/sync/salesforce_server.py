"""A Salesforce org for the sync tests: the REST API's query endpoints, OAuth and limits, served from export CSVs.

Built from Salesforce's REST API reference, as far as the sync uses it:

- ``POST /services/oauth2/token`` (``refresh_token`` or ``client_credentials`` grant, form-encoded):
  ``{"access_token", "instance_url", "id", "token_type": "Bearer", "issued_at", "signature"}``;
  a wrong client or refresh token answers 400 ``{"error": "invalid_grant", "error_description": …}``.
- ``GET /services/data/vXX.X/sobjects/<Object>/describe``: ``{"name", "fields": [{"name", "type"}, …]}``.
- ``GET /services/data/vXX.X/query`` and ``/queryAll`` with ``q=`` SOQL: ``{"totalSize", "done",
  "nextRecordsUrl", "records": [{"attributes": {"type", "url"}, …}]}``. The query's result is a
  server-side cursor: the ids are fixed when the query runs, each page of the cursor
  (``/services/data/vXX.X/query/<locator>-<offset>``) sends those records as they are when it is
  read. ``query`` leaves deleted records out, ``queryAll`` sends them with ``IsDeleted`` true.
  ``Sforce-Query-Options: batchSize=N`` sets the page size (200 to 2000, default 2000).
- Every answer carries ``Sforce-Limit-Info: api-usage=<used>/<allowed>``; past the daily allowance
  the org answers 403 ``[{"errorCode": "REQUEST_LIMIT_EXCEEDED", …}]``.
- An expired or unknown token answers 401 ``[{"message": "Session expired or invalid",
  "errorCode": "INVALID_SESSION_ID"}]``; ``token_life`` makes every token expire after that many
  requests.
- Errors are JSON lists of ``{"message", "errorCode"}``: ``MALFORMED_QUERY`` for SOQL outside the
  subset below, ``INVALID_FIELD`` for a field the object does not have, ``NOT_FOUND``.

The SOQL subset is the one query shape the client sends:
``SELECT f1, f2 FROM Object [WHERE SystemModstamp > 2025-01-01T00:00:00Z] ORDER BY SystemModstamp, Id``.

Records are the rows of ``crm/<Object>.csv`` (strings, as exported), each given a ``SystemModstamp``;
they are sent typed as the API types them (booleans, numbers, ``2025-01-01T10:00:00.000+0000``
datetimes, null for an empty cell). ``export`` writes the org's current rows back as export CSVs, so a
test can compare a synced warehouse with a file ingest of the same data.

Writing back (``training-roi push``), in the block at the end of the file:

- ``SELECT Id, f1, f2 FROM Object WHERE Id IN ('id1', 'id2', …)`` on ``query``: the records with those
  ids (deleted ones left out), every one on the first page; a checkbox reads ``false`` when never set.
- ``PATCH /services/data/vXX.X/composite/sobjects`` (sObject Collections update): ``{"allOrNone",
  "records": [{"attributes": {"type"}, "id", <field>: <value>, …}]}``, at most 200 records. The
  answer is 200 with one SaveResult per record, in the order sent: ``{"id", "success": true,
  "errors": []}``, or ``{"success": false, "errors": [{"statusCode", "message", "fields"}]}``. A
  record the org does not hold fails with ``INVALID_CROSS_REFERENCE_KEY``; one a test rejects
  (``push.rejects``) with the status code it names (``FIELD_INTEGRITY_EXCEPTION``, …) and its
  fields. With ``allOrNone`` true one failure rolls every record back (each then fails, the others
  with ``ALL_OR_NONE_OPERATION_ROLLED_BACK``). A request that is not well formed — more than 200
  records, a record without its type or id, a field the object does not have — is refused whole
  with 400 and the list of ``{"message", "errorCode"}`` (``EXCEEDED_ID_LIMIT``, ``INVALID_FIELD``).
  Custom fields are added by ``add_fields`` with their type (``string``, ``boolean``, ``date``).

Faults a test queues in ``faults`` apply to query requests, one per request: ``(status, headers)``
answers that status with a Salesforce error body, ``"truncate"`` cuts the page's JSON short,
``("sleep", seconds)`` answers late, ``("hold", None)`` waits until ``release`` is set.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
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
from training_roi.ingest.sources import SOURCES

VERSION = "62.0"
STANDARD = ("User", "Account", "Contact", "Opportunity", "OpportunityHistory", "Lead", "Task", "Event", "Case",
            "Campaign", "CampaignMember")
BOOLEAN = {"IsDeleted", "IsActive", "IsClosed", "IsWon", "IsConverted", "HasResponded"}
NUMBER = {"Amount", "AnnualRevenue", "NumberOfEmployees", "Probability"}
DATETIME = {"CreatedDate", "CompletedDateTime", "ClosedDate", "SystemModstamp"}
_QUERY = re.compile(r"^SELECT (?P<fields>[\w, ]+) FROM (?P<obj>\w+)"
                    r"(?: WHERE SystemModstamp > (?P<since>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ))?"
                    r" ORDER BY SystemModstamp, Id$")
_SF_TIME = "%Y-%m-%dT%H:%M:%S.000+0000"


def sf_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(_SF_TIME)


def _typed(name: str, value: str) -> Any:
    """A CSV cell as the REST API types the field."""
    if value == "":
        return None
    if name in BOOLEAN:
        return value.strip().lower() in ("true", "1")
    if name in NUMBER:
        number = float(value)
        return int(number) if name == "NumberOfEmployees" else number
    if name in DATETIME:
        return sf_time(datetime.fromisoformat(value.replace("Z", "+00:00")))
    return value


@dataclass
class Cursor:
    obj: str
    ids: list[str]
    fields: list[str]


@dataclass
class Org:
    """The org's data and behaviour; a test changes it while the server runs."""

    client_id: str
    client_secret: str
    refresh_token: str
    url: str = ""
    tables: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    columns: dict[str, list[str]] = field(default_factory=dict)
    faults: list[Any] = field(default_factory=list)
    token_life: int | None = None
    used: int = 0
    allowed: int = 100_000
    tokens: dict[str, int] = field(default_factory=dict)
    token_requests: int = 0
    log: list[tuple[str, str]] = field(default_factory=list)
    cursors: dict[str, Cursor] = field(default_factory=dict)
    release: threading.Event = field(default_factory=threading.Event)
    held: threading.Event = field(default_factory=threading.Event)
    after_page: Callable[[str, int], None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    clock: datetime = datetime(2025, 6, 1, tzinfo=UTC)
    push: PushState = field(default_factory=lambda: PushState())
    bulk: BulkJobs = field(default_factory=lambda: BulkJobs())

    def seed(self, folder: Path) -> None:
        """Load ``folder/crm/*.csv``; records get SystemModstamps a second apart, three at a time (ties).

        The standard objects without a file are there, empty, with the fields of the data contract.
        """
        for path in sorted((folder / "crm").glob("*.csv")):
            with path.open(encoding="utf-8-sig", newline="") as fh:
                reader = csv.DictReader(fh)
                rows = list(reader)
                self.columns[path.stem] = [*(reader.fieldnames or []), "SystemModstamp"]
            table: dict[str, dict[str, str]] = {}
            for i, row in enumerate(rows):
                row["SystemModstamp"] = (self.clock + timedelta(seconds=i // 3)).strftime("%Y-%m-%dT%H:%M:%SZ")
                table[row["Id"]] = row
            self.tables[path.stem] = table
        # Standard objects the export has no file for exist in every org, empty.
        for name in STANDARD:
            if name not in self.tables:
                self.columns[name] = [f.name for f in SOURCES[name].fields] + ["SystemModstamp"]
                self.tables[name] = {}

    def touch(self, obj: str, rid: str, **changes: str) -> None:
        """Change a record (or add one) as a user would: its SystemModstamp becomes now."""
        with self.lock:
            row = self.tables[obj].setdefault(rid, dict.fromkeys(self.columns[obj], "") | {"Id": rid})
            row.update(changes)
            row["SystemModstamp"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def delete(self, obj: str, rid: str) -> None:
        """Delete a record: it stays, with IsDeleted true, for queryAll (the recycle bin)."""
        self.touch(obj, rid, IsDeleted="true")

    def export(self, folder: Path) -> None:
        """The org's rows as export CSVs (``crm/<Object>.csv``), as a user would download them now."""
        (folder / "crm").mkdir(parents=True, exist_ok=True)
        for obj, table in self.tables.items():
            columns = [c for c in self.columns[obj] if c != "SystemModstamp"]
            with (folder / "crm" / f"{obj}.csv").open("w", encoding="utf-8", newline="") as fh:
                writer = csv.writer(fh)
                writer.writerow(columns)
                for row in table.values():
                    writer.writerow([row.get(c, "") for c in columns])

    def queries(self) -> list[str]:
        return [q for kind, q in self.log if kind == "query"]


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps([{"message": message, "errorCode": code}]), status,
                    {"Content-Type": "application/json", **(headers or {})})


def app(org: Org) -> Starlette:
    def limited(response: Response) -> Response:
        response.headers["Sforce-Limit-Info"] = f"api-usage={org.used}/{org.allowed}"
        return response

    async def token(request: Request) -> Response:
        form = await request.form()
        org.token_requests += 1
        grant = form.get("grant_type")
        good = form.get("client_id") == org.client_id and (
            (grant == "refresh_token" and form.get("refresh_token") == org.refresh_token)
            or (grant == "client_credentials" and form.get("client_secret") == org.client_secret))
        if not good:
            return Response(orjson.dumps({"error": "invalid_grant", "error_description": "authentication failure"}),
                            400, {"Content-Type": "application/json"})
        issued = "tok" + uuid.uuid4().hex
        org.tokens[issued] = 0
        return Response(orjson.dumps({
            "access_token": issued, "instance_url": org.url, "token_type": "Bearer",
            "id": f"{org.url}/id/00D000000000001/005000000000001", "issued_at": str(int(time.time() * 1000)),
            "signature": "c2lnbmF0dXJl"}), 200, {"Content-Type": "application/json"})

    def authorised(request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        tok = header.removeprefix("Bearer ")
        if tok not in org.tokens or (org.token_life is not None and org.tokens[tok] >= org.token_life):
            return _error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        org.tokens[tok] += 1
        org.used += 1
        if org.used > org.allowed:
            return limited(_error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."))
        return None

    async def describe(request: Request) -> Response:
        refused = authorised(request)
        if refused is not None:
            return refused
        obj = request.path_params["obj"]
        if obj not in org.columns:
            return limited(_error(404, "NOT_FOUND", "The requested resource does not exist"))
        fields = [{"name": c, "type": "string"} for c in org.columns[obj]]
        return limited(Response(orjson.dumps({"name": obj, "fields": fields}), 200,
                                {"Content-Type": "application/json"}))

    def page(cursor: Cursor, locator: str, offset: int, size: int) -> dict[str, Any]:
        chunk = cursor.ids[offset:offset + size]
        table = org.tables[cursor.obj]
        records = [{"attributes": {"type": cursor.obj, "url": f"/services/data/v{VERSION}/sobjects/{cursor.obj}/{i}"},
                    **{f: _typed(f, table[i].get(f, "")) for f in cursor.fields}} for i in chunk]
        body: dict[str, Any] = {"totalSize": len(cursor.ids), "done": offset + size >= len(cursor.ids),
                                "records": records}
        if not body["done"]:
            body["nextRecordsUrl"] = f"/services/data/v{VERSION}/query/{locator}-{offset + size}"
        return body

    async def fault() -> Response | None:
        if not org.faults:
            return None
        f = org.faults.pop(0)
        if f is None:
            return None
        if f == "truncate":
            return Response(b'{"totalSize": 3, "done": false, "recor', 200, {"Content-Type": "application/json"})
        kind, arg = f
        if kind == "sleep":
            await crm.pause(arg)
            return None
        if kind == "hold":
            org.held.set()
            while not org.release.is_set():
                await crm.pause(0.05)
            return _error(503, "SERVER_UNAVAILABLE", "held", {"Retry-After": "0"})
        code = {429: "REQUEST_LIMIT_EXCEEDED", 503: "SERVER_UNAVAILABLE"}.get(kind, "UNKNOWN_EXCEPTION")
        return _error(kind, code, "injected by the test", arg)

    def size(request: Request) -> int:
        found = re.search(r"batchSize=(\d+)", request.headers.get("sforce-query-options", ""))
        return max(200, min(2000, int(found[1]))) if found else 2000

    async def gate(request: Request) -> Response | None:
        """The answer a query request gets before its SOQL is read: refused, or a fault the test queued."""
        return authorised(request) or await fault()

    async def query(request: Request) -> Response:
        early = await gate(request)
        if early is not None:
            return early
        everything = request.url.path.endswith("/queryAll")
        soql = request.query_params.get("q", "")
        org.log.append(("query", soql))
        by_id = select_by_id(org, soql)
        if by_id is not None:
            return limited(by_id)
        if _COUNT.match(soql):
            return limited(count_answer(org, soql, everything))
        found = _QUERY.match(soql)
        if not found:
            return limited(_error(400, "MALFORMED_QUERY", "unexpected token"))
        obj = found["obj"]
        fields = [f.strip() for f in found["fields"].split(",")]
        if obj not in org.tables:
            return limited(_error(400, "INVALID_TYPE", f"sObject type '{obj}' is not supported."))
        missing = [f for f in fields if f not in org.columns[obj]]
        if missing:
            return limited(_error(400, "INVALID_FIELD", f"No such column '{missing[0]}' on entity '{obj}'."))
        with org.lock:
            rows = list(org.tables[obj].values())
        if found["since"]:
            rows = [r for r in rows if r["SystemModstamp"] > found["since"]]
        if not everything:
            rows = [r for r in rows if r.get("IsDeleted", "").lower() != "true"]
        rows.sort(key=lambda r: (r["SystemModstamp"], r["Id"]))
        locator = "01g" + uuid.uuid4().hex[:15]
        org.cursors[locator] = Cursor(obj, [r["Id"] for r in rows], fields)
        body = page(org.cursors[locator], locator, 0, size(request))
        if org.after_page is not None:
            org.after_page(obj, 0)
        return limited(Response(orjson.dumps(body), 200, {"Content-Type": "application/json"}))

    async def more(request: Request) -> Response:
        early = await gate(request)
        if early is not None:
            return early
        locator, offset = request.path_params["cursor"].rsplit("-", 1)
        org.log.append(("more", request.path_params["cursor"]))
        cursor = org.cursors.get(locator)
        if cursor is None:
            return limited(_error(400, "INVALID_QUERY_LOCATOR", "invalid query locator"))
        body = page(cursor, locator, int(offset), size(request))
        if org.after_page is not None:
            org.after_page(cursor.obj, int(offset))
        return limited(Response(orjson.dumps(body), 200, {"Content-Type": "application/json"}))

    base = f"/services/data/v{VERSION}"
    return Starlette(routes=[
        Route("/services/oauth2/token", token, methods=["POST"]),
        Route(base + "/sobjects/{obj}/describe", describe),
        Route(base + "/query", query),
        Route(base + "/queryAll", query),
        Route(base + "/query/{cursor}", more),
        Route(base + "/queryAll/{cursor}", more),
        Route(base + "/composite/sobjects", collections(org, authorised, limited), methods=["PATCH"]),
        *bulk_routes(org, base, authorised, fault, limited),
    ])


# Bulk API 2.0 query jobs, from Salesforce's Bulk API 2.0 reference, as far as the sync uses them:
#
# - ``POST /services/data/vXX.X/jobs/query`` with ``{"operation": "query" | "queryAll", "query",
#   "contentType": "CSV", "columnDelimiter", "lineEnding"}`` answers the job's information (``id``,
#   ``operation``, ``object``, ``createdById``, ``createdDate``, ``systemModstamp``, ``state``
#   ``UploadComplete``, ``concurrencyMode``, ``contentType``, ``apiVersion``, ``lineEnding``,
#   ``columnDelimiter``). A bulk query has no ORDER BY (the reference says not to use one), so the SOQL
#   subset is ``SELECT f1, f2 FROM Object [WHERE SystemModstamp > …]``; others answer 400.
# - ``GET …/jobs/query/<id>``: the information with ``jobType`` ``V2Query``, ``numberRecordsProcessed``,
#   ``retries``, ``totalProcessingTime``; the state moves UploadComplete → InProgress → JobComplete, one
#   step per request (``BulkJobs.polls`` requests in all), or to ``Failed`` with an ``errorMessage`` when
#   the test set ``BulkJobs.fail``. The records are read when the job completes and sent in no
#   particular order (a bulk query runs in chunks, in parallel): here, the order of a hash of their Id.
# - ``GET …/jobs/query/<id>/results?maxRecords=N&locator=L``: a CSV, every value quoted, null as an empty
#   value, booleans ``true``/``false``, datetimes ``2025-01-01T10:00:00.000Z``; headers
#   ``Sforce-NumberOfRecords`` and ``Sforce-Locator`` (an opaque string, ``null`` after the last set).
#   Before the job completes it answers 400 ``JOB_NOT_COMPLETE``.
# - ``PATCH …/jobs/query/<id>`` ``{"state": "Aborted"}`` aborts; ``DELETE`` answers 204 for a job that is
#   complete, failed or aborted (400 ``API_ERROR`` otherwise); an unknown id answers 404 ``NOT_FOUND``.
# - Every request counts against the daily limit and needs a valid token like the REST API's; the
#   test's ``faults`` apply to them too, where ``"truncate"`` cuts a results set's CSV short.
# - ``SELECT COUNT() FROM Object [WHERE SystemModstamp > …]`` over ``query``/``queryAll`` answers
#   ``{"totalSize": n, "done": true, "records": []}``.

_BULK_QUERY = re.compile(r"^SELECT (?P<fields>[\w, ]+) FROM (?P<obj>\w+)"
                         r"(?: WHERE SystemModstamp > (?P<since>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ))?$")
_COUNT = re.compile(r"^SELECT COUNT\(\) FROM (?P<obj>\w+)"
                    r"(?: WHERE SystemModstamp > (?P<since>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ))?$")


@dataclass
class BulkJob:
    info: dict[str, Any]
    everything: bool
    since: str | None
    fields: list[str]
    polls: int = 0
    rows: list[dict[str, str]] = field(default_factory=list)


@dataclass
class BulkJobs:
    """The org's bulk query jobs, and how the test wants them to behave."""

    jobs: dict[str, BulkJob] = field(default_factory=dict)
    polls: int = 3
    fail: str | None = None
    created: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    results: list[tuple[str, str | None, int]] = field(default_factory=list)


def _selected(org: Org, obj: str, since: str | None, everything: bool) -> list[dict[str, str]]:
    with org.lock:
        rows = [dict(r) for r in org.tables[obj].values()]
    if since:
        rows = [r for r in rows if r["SystemModstamp"] > since]
    if not everything:
        rows = [r for r in rows if r.get("IsDeleted", "").lower() != "true"]
    return rows


def count_answer(org: Org, soql: str, everything: bool) -> Response:
    found = _COUNT.match(soql)
    assert found is not None
    if found["obj"] not in org.tables:
        return _error(400, "INVALID_TYPE", f"sObject type '{found['obj']}' is not supported.")
    n = len(_selected(org, found["obj"], found["since"], everything))
    return Response(orjson.dumps({"totalSize": n, "done": True, "records": []}), 200,
                    {"Content-Type": "application/json"})


def _bulk_cell(name: str, value: str) -> str:
    """A cell as a bulk query's CSV writes the field: typed as the REST API types it, then as text."""
    typed = _typed(name, value)
    if typed is None:
        return ""
    if isinstance(typed, bool):
        return "true" if typed else "false"
    if name in DATETIME:
        return datetime.strptime(typed, _SF_TIME).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return str(typed)


def _locator(offset: int) -> str:
    return base64.b64encode(str(offset).encode()).decode().rstrip("=")


def bulk_routes(org: Org, base: str, authorised: Callable[[Request], Response | None],
                fault: Callable[[], Any], limited: Callable[[Response], Response]) -> list[Route]:
    bulk = org.bulk

    def json(body: Any, status: int = 200) -> Response:
        return limited(Response(orjson.dumps(body), status, {"Content-Type": "application/json"}))

    async def gate(request: Request, results: bool = False) -> Response | None:
        refused = authorised(request)
        if refused is not None:
            return refused
        if results and org.faults and org.faults[0] == "truncate":
            return None
        answer: Response | None = await fault()
        return answer

    async def job_of(request: Request, results: bool = False) -> BulkJob | Response:
        """The job a request names, or the answer it gets instead: refused, a fault, or 404."""
        early = await gate(request, results)
        if early is not None:
            return early
        job = bulk.jobs.get(request.path_params["job"])
        if job is None:
            return limited(_error(404, "NOT_FOUND", "The requested resource does not exist"))
        return job

    async def create(request: Request) -> Response:
        early = await gate(request)
        if early is not None:
            return early
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return limited(_error(400, "JSON_PARSER_ERROR", "the request body is not JSON"))
        soql = str(body.get("query", ""))
        org.log.append(("bulk", soql))
        found = _BULK_QUERY.match(soql)
        if body.get("operation") not in ("query", "queryAll") or body.get("contentType", "CSV") != "CSV":
            return limited(_error(400, "INVALIDJOB", "InvalidJob : operation or contentType not supported"))
        if not found:
            return limited(_error(400, "INVALIDJOB", "InvalidJob : unexpected token in the query"))
        obj, fields = found["obj"], [f.strip() for f in found["fields"].split(",")]
        if obj not in org.tables:
            return limited(_error(400, "INVALIDJOB", f"InvalidJob : sObject type '{obj}' is not supported."))
        missing = [f for f in fields if f not in org.columns[obj]]
        if missing:
            return limited(_error(400, "INVALIDJOB", f"InvalidJob : No such column '{missing[0]}' on entity '{obj}'."))
        job_id = "750" + uuid.uuid4().hex[:15]
        now = sf_time(datetime.now(UTC))
        info = {"id": job_id, "operation": body["operation"], "object": obj, "createdById": "005000000000001AAA",
                "createdDate": now, "systemModstamp": now, "state": "UploadComplete", "concurrencyMode": "Parallel",
                "contentType": "CSV", "apiVersion": float(VERSION), "lineEnding": body.get("lineEnding", "LF"),
                "columnDelimiter": body.get("columnDelimiter", "COMMA")}
        bulk.jobs[job_id] = BulkJob(info, body["operation"] == "queryAll", found["since"], fields)
        bulk.created.append(job_id)
        return json(info)

    async def status(request: Request) -> Response:
        job = await job_of(request)
        if isinstance(job, Response):
            return job
        job.polls += 1
        state = job.info["state"]
        if state in ("UploadComplete", "InProgress"):
            if bulk.fail is not None and job.polls >= bulk.polls - 1:
                job.info.update(state="Failed", errorMessage=bulk.fail)
            elif job.polls >= bulk.polls - 1:
                job.rows = sorted(_selected(org, job.info["object"], job.since, job.everything),
                                  key=lambda r: hashlib.sha256(r["Id"].encode()).hexdigest())
                job.info.update(state="JobComplete", numberRecordsProcessed=len(job.rows))
            else:
                job.info["state"] = "InProgress"
            job.info["systemModstamp"] = sf_time(datetime.now(UTC))
        return json({**job.info, "jobType": "V2Query", "retries": 0, "totalProcessingTime": 42 * job.polls,
                     "numberRecordsProcessed": job.info.get("numberRecordsProcessed", 0)})

    async def results(request: Request) -> Response:
        job = await job_of(request, results=True)
        if isinstance(job, Response):
            return job
        if job.info["state"] != "JobComplete":
            return limited(_error(400, "JOB_NOT_COMPLETE", "can only download query results of successfully "
                                  f"completed bulk job. Current status: {job.info['state']}"))
        locator = request.query_params.get("locator")
        offset = int(base64.b64decode(locator + "=" * (-len(locator) % 4))) if locator else 0
        size = int(request.query_params.get("maxRecords", "10000"))
        chunk = job.rows[offset:offset + size]
        bulk.results.append((job.info["id"], locator, len(chunk)))
        text = io.StringIO()
        writer = csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\n")
        writer.writerow(job.fields)
        for row in chunk:
            writer.writerow([_bulk_cell(f, row.get(f, "")) for f in job.fields])
        data = text.getvalue().encode()
        if org.faults and org.faults[0] == "truncate":
            org.faults.pop(0)
            data = data[:len(data) * 2 // 3]
        following = _locator(offset + size) if offset + size < len(job.rows) else "null"
        return limited(Response(data, 200, {"Content-Type": "text/csv", "Sforce-Locator": following,
                                             "Sforce-NumberOfRecords": str(len(chunk))}))

    async def change(request: Request) -> Response:
        job = await job_of(request)
        if isinstance(job, Response):
            return job
        if request.method == "DELETE":
            if job.info["state"] not in ("JobComplete", "Failed", "Aborted"):
                return limited(_error(400, "API_ERROR", "Error encountered when deleting the job because the job "
                                      "is not terminated"))
            del bulk.jobs[job.info["id"]]
            bulk.deleted.append(job.info["id"])
            return limited(Response(b"", 204))
        body = orjson.loads(await request.body() or b"{}")
        if body.get("state") != "Aborted":
            return limited(_error(400, "INVALIDJOBSTATE", "a query job can only be aborted"))
        job.info["state"] = "Aborted"
        return json(job.info)

    return [
        Route(base + "/jobs/query", create, methods=["POST"]),
        Route(base + "/jobs/query/{job}", status, methods=["GET"]),
        Route(base + "/jobs/query/{job}", change, methods=["PATCH", "DELETE"]),
        Route(base + "/jobs/query/{job}/results", results, methods=["GET"]),
    ]


def serve(org: Org) -> Iterator[Org]:
    """Run the org on a free loopback port in a thread until the generator is closed."""
    return crm.serve(org, app(org), "Salesforce")


# --------------------------------------------------------------------------------------------
# Writing back: custom fields, the read by ids and the sObject Collections update
# --------------------------------------------------------------------------------------------

_BY_ID = re.compile(r"^SELECT (?P<fields>[\w, ]+) FROM (?P<obj>\w+) WHERE Id IN \((?P<ids>'[\w-]+'(?:, ?'[\w-]+')*)\)$")
_COLLECTION_LIMIT = 200


@dataclass
class PushState:
    """Custom fields the org has (object → field → type), records a test makes fail, and the writes received."""

    types: dict[str, dict[str, str]] = field(default_factory=dict)
    rejects: dict[str, tuple[str, str, list[str]]] = field(default_factory=dict)
    """Record id → (statusCode, message, fields) of the error its update fails with."""
    requests: list[list[dict[str, Any]]] = field(default_factory=list)
    """The records of every update request, as sent."""

    def written(self) -> int:
        """Records sent in update requests so far."""
        return sum(len(r) for r in self.requests)


def add_fields(org: Org, obj: str, **types: str) -> None:
    """Give ``obj`` custom fields (name → ``string``, ``boolean`` or ``date``), empty on every record."""
    with org.lock:
        org.push.types.setdefault(obj, {}).update(types)
        org.columns[obj] = [*org.columns[obj], *(t for t in types if t not in org.columns[obj])]
        for row in org.tables[obj].values():
            for name in types:
                row.setdefault(name, "")


def _read(org: Org, obj: str, name: str, value: str) -> Any:
    kind = org.push.types.get(obj, {}).get(name)
    if kind == "boolean":
        return value.lower() == "true"
    if kind is not None:
        return value or None
    return _typed(name, value)


def _stored(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def select_by_id(org: Org, soql: str) -> Response | None:
    """The answer to ``SELECT … WHERE Id IN (…)``, or None for a query of another shape."""
    found = _BY_ID.match(soql)
    if not found:
        return None
    obj = found["obj"]
    fields = [f.strip() for f in found["fields"].split(",")]
    if obj not in org.tables:
        return _error(400, "INVALID_TYPE", f"sObject type '{obj}' is not supported.")
    missing = [f for f in fields if f not in org.columns[obj]]
    if missing:
        return _error(400, "INVALID_FIELD", f"No such column '{missing[0]}' on entity '{obj}'.")
    ids = re.findall(r"'([\w-]+)'", found["ids"])
    with org.lock:
        rows = [org.tables[obj][i] for i in dict.fromkeys(ids) if i in org.tables[obj]]
    rows = [r for r in rows if r.get("IsDeleted", "").lower() != "true"]
    records = [{"attributes": {"type": obj, "url": f"/services/data/v{VERSION}/sobjects/{obj}/{r['Id']}"},
                **{f: _read(org, obj, f, r.get(f, "")) for f in fields}} for r in rows]
    return Response(orjson.dumps({"totalSize": len(records), "done": True, "records": records}), 200,
                    {"Content-Type": "application/json"})


def collections(org: Org, authorised: Callable[[Request], Response | None],
                limited: Callable[[Response], Response]) -> Callable[[Request], Any]:
    """``PATCH composite/sobjects``: update up to 200 records, one SaveResult each."""

    async def update(request: Request) -> Response:
        refused = authorised(request)
        if refused is not None:
            return refused
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return limited(_error(400, "JSON_PARSER_ERROR", "The request body is not JSON."))
        records = body.get("records") if isinstance(body, dict) else None
        if not isinstance(records, list):
            return limited(_error(400, "JSON_PARSER_ERROR", "records: expected a list of sObjects"))
        if len(records) > _COLLECTION_LIMIT:
            return limited(_error(400, "EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than 200 "
                                                              "records into this call"))
        for record in records:
            obj = (record.get("attributes") or {}).get("type") if isinstance(record, dict) else None
            if obj not in org.tables or not record.get("id"):
                return limited(_error(400, "INVALID_TYPE", "Each record needs attributes.type and an id."))
            unknown = [f for f in record if f not in ("attributes", "id") and f not in org.columns[obj]]
            if unknown:
                return limited(_error(400, "INVALID_FIELD", f"No such column '{unknown[0]}' on sobject of type "
                                                            f"{obj}"))
        org.push.requests.append(records)
        results: list[dict[str, Any]] = []
        with org.lock:
            for record in records:
                rid, obj = record["id"], record["attributes"]["type"]
                if rid not in org.tables[obj]:
                    results.append({"success": False, "errors": [{
                        "statusCode": "INVALID_CROSS_REFERENCE_KEY", "message": "invalid cross reference id",
                        "fields": []}]})
                elif rid in org.push.rejects:
                    code, message, names = org.push.rejects[rid]
                    results.append({"success": False, "errors": [{"statusCode": code, "message": message,
                                                                   "fields": names}]})
                else:
                    results.append({"id": rid, "success": True, "errors": []})
            failed = any(not r["success"] for r in results)
            if body.get("allOrNone") and failed:
                results = [r if not r["success"] else {"success": False, "errors": [{
                    "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK", "message": "Record rolled back because not "
                    "all records were valid and the request was using AllOrNone header", "fields": []}]}
                    for r in results]
            else:
                stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                for record, result in zip(records, results, strict=True):
                    if result["success"]:
                        row = org.tables[record["attributes"]["type"]][record["id"]]
                        row.update({f: _stored(v) for f, v in record.items() if f not in ("attributes", "id")})
                        row["SystemModstamp"] = stamp
        return limited(Response(orjson.dumps(results), 200, {"Content-Type": "application/json"}))

    return update
