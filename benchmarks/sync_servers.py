"""Lean local servers for the sync benchmark: an xAPI LRS and a Salesforce org, serving records from memory.

The sync's clients talk to these as they talk to a real LRS or org (``benchmarks/sync.py`` starts
each in a process of its own, so the sync process's memory is measured alone). Each server reads
one data file whose lines are ``<position>``, a tab and the record as JSON in the order the source stores
them (the position is the LRS's ``stored`` time or the record's ``SystemModstamp``, in a text form
that sorts as time does), keeps the JSON as bytes and builds each page by joining them: nothing
is parsed or serialised while serving.

The LRS (xAPI Statement API 1.0.3/2.0, as far as the sync uses it):

- ``GET <base>/xAPI/statements`` with ``since`` (exclusive), ``limit`` (at most 1000), ``ascending``;
  a StatementResult ``{"statements": [...], "more": "<relative URL>"}``, ``more`` empty at the end.
  The ``more`` link holds the position reached and the statements stored when the first page was
  asked for, so a chain is not changed by statements stored while it is read.
- ``X-Experience-API-Version`` required on requests and sent on answers; Basic credentials.

The Salesforce org (REST API, as far as the sync uses it):

- ``POST /services/oauth2/token``: a Bearer token for any grant naming the configured client id.
- ``GET /services/data/v62.0/sobjects/<Object>/describe``: the fields served.
- ``GET /services/data/v62.0/queryAll?q=SELECT <fields> FROM <Object> [WHERE SystemModstamp > <t>]
  ORDER BY SystemModstamp, Id``: ``{"totalSize", "done", "nextRecordsUrl", "records"}``, pages of
  ``Sforce-Query-Options: batchSize`` (200 to 2000) records, followed at
  ``/services/data/v62.0/query/<locator>-<offset>``; ``Sforce-Limit-Info`` on every answer.

    python benchmarks/sync_servers.py lrs|salesforce DATA_FILE PORT
"""

from __future__ import annotations

import base64
import bisect
import re
import sys
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

API = "/services/data/v62.0"
LRS_USER, LRS_PASSWORD = "bench-reader", "bench-password"
SF_CLIENT_ID, SF_CLIENT_SECRET = "bench-client", "bench-secret"
SF_TOKEN = "bench-token-" + uuid.uuid4().hex
_SOQL = re.compile(r"^SELECT (?P<fields>[\w, ]+) FROM (?P<obj>\w+)"
                   r"(?: WHERE SystemModstamp > (?P<since>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ))?"
                   r" ORDER BY SystemModstamp, Id$")


class Records:
    """The served records, in stored order: their positions (text that sorts as time) and JSON bytes."""

    def __init__(self, path: Path) -> None:
        self.keys: list[str] = []
        self.bodies: list[bytes] = []
        with path.open("rb") as fh:
            for line in fh:
                key, _, body = line.rstrip(b"\n").partition(b"\t")
                self.keys.append(key.decode())
                self.bodies.append(body)

    def after(self, key: str | None) -> int:
        """The index of the first record stored after ``key`` (all when None)."""
        return 0 if key is None else bisect.bisect_right(self.keys, key)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the clients use it
    records: Records

    def log_message(self, *args: Any) -> None:
        pass

    def answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        """Send a JSON answer."""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def query(self) -> tuple[str, dict[str, str]]:
        """The request's path and query parameters (the last of each name)."""
        parts = urlsplit(self.path)
        return parts.path, {k: v[-1] for k, v in parse_qs(parts.query).items()}


class LrsHandler(_Handler):
    """GET /xAPI/statements with since, limit, ascending and the ``more`` link."""

    def do_GET(self) -> None:
        """A page of statements."""
        version = {"X-Experience-API-Version": "1.0.3"}
        expected = "Basic " + base64.b64encode(f"{LRS_USER}:{LRS_PASSWORD}".encode()).decode()
        if self.headers.get("Authorization") != expected:
            self.answer(401, b'{"error": "unauthorised"}', version)
            return
        if not self.headers.get("X-Experience-API-Version"):
            self.answer(400, b'{"error": "X-Experience-API-Version header missing"}', version)
            return
        path, params = self.query()
        if path.rstrip("/") != "/xAPI/statements":
            self.answer(404, b'{"error": "not found"}', version)
            return
        rec = self.records
        if "more" in params:
            at, end, limit, ascending = (int(x) for x in params["more"].split("-"))
        else:
            limit = min(int(params.get("limit") or 1000) or 1000, 1000)
            ascending = int(params.get("ascending", "false") == "true")
            since = params.get("since")
            # The LRS keeps milliseconds: a ``since`` is compared at that precision, as stored times are.
            at, end = rec.after(since[:23] + "Z" if since else None), len(rec.keys)
            if not ascending:  # newest first: positions count back from the end
                at, end = 0, end - at
        take = range(at, min(at + limit, end))
        chosen = [rec.bodies[i] if ascending else rec.bodies[len(rec.keys) - 1 - i] for i in take]
        more = f"/xAPI/statements?more={at + limit}-{end}-{limit}-{ascending}" if at + limit < end else ""
        body = b'{"statements":[' + b",".join(chosen) + b'],"more":"' + more.encode() + b'"}'
        self.answer(200, body, {**version, "X-Experience-API-Consistent-Through": "2030-01-01T00:00:00.000Z"})


class SalesforceHandler(_Handler):
    """OAuth, describe and the queryAll cursor of one object."""

    object = "Opportunity"
    fields: list[str]
    cursors: dict[str, tuple[int, int]]
    used = 0

    def limited(self, status: int, body: bytes) -> None:
        """Answer with the org's API usage."""
        type(self).used += 1
        self.answer(status, body, {"Sforce-Limit-Info": f"api-usage={self.used}/1000000"})

    def error(self, status: int, code: str, message: str) -> None:
        """Answer a Salesforce error body."""
        self.limited(status, orjson.dumps([{"message": message, "errorCode": code}]))

    def do_POST(self) -> None:
        """The OAuth token endpoint."""
        length = int(self.headers.get("Content-Length") or 0)
        form = {k: v[-1] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        if self.path != "/services/oauth2/token" or form.get("client_id") != SF_CLIENT_ID:
            self.answer(400, b'{"error": "invalid_grant", "error_description": "authentication failure"}')
            return
        host = f"http://{self.headers.get('Host')}"
        self.answer(200, orjson.dumps({"access_token": SF_TOKEN, "instance_url": host, "token_type": "Bearer",
                                       "id": f"{host}/id/00D000000000001/005000000000001",
                                       "issued_at": "0", "signature": "c2lnbmF0dXJl"}))

    def do_GET(self) -> None:
        """Describe, a query, or the next page of one."""
        if self.headers.get("Authorization") != f"Bearer {SF_TOKEN}":
            self.answer(401, orjson.dumps([{"message": "Session expired or invalid",
                                             "errorCode": "INVALID_SESSION_ID"}]))
            return
        path, params = self.query()
        found = re.search(r"batchSize=(\d+)", self.headers.get("Sforce-Query-Options", ""))
        size = max(200, min(2000, int(found[1]))) if found else 2000
        if path == f"{API}/sobjects/{self.object}/describe":
            self.limited(200, orjson.dumps({"name": self.object,
                                            "fields": [{"name": f, "type": "string"} for f in self.fields]}))
        elif path in (f"{API}/queryAll", f"{API}/query"):
            self.start(params.get("q", ""), size)
        elif path.startswith((f"{API}/query/", f"{API}/queryAll/")):
            locator, _, offset = path.rsplit("/", 1)[1].rpartition("-")
            if locator not in self.cursors:
                self.error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
                return
            self.page(locator, int(offset), size)
        else:
            self.error(404, "NOT_FOUND", "The requested resource does not exist")

    def start(self, soql: str, size: int) -> None:
        """Run a query: its records are those after its ``since``, as they are now; send the first page."""
        found = _SOQL.match(soql)
        if not found:
            self.error(400, "MALFORMED_QUERY", "unexpected token")
            return
        asked = {f.strip() for f in found["fields"].split(",")}
        if found["obj"] != self.object or asked != set(self.fields):
            # The records are served whole, as serialised: the query must ask for exactly those fields.
            self.error(400, "INVALID_FIELD", f"this org serves {self.object} with {', '.join(self.fields)}")
            return
        since = found["since"]
        start = self.records.after(since[:19] + ".000+0000" if since else None)
        locator = "01g" + uuid.uuid4().hex[:15]
        self.cursors[locator] = (start, len(self.records.keys))
        self.page(locator, 0, size)

    def page(self, locator: str, offset: int, size: int) -> None:
        """Send the page of a query's records from ``offset``."""
        start, end = self.cursors[locator]
        chunk = self.records.bodies[start + offset:min(start + offset + size, end)]
        done = start + offset + size >= end
        head = f'{{"totalSize":{end - start},"done":{"true" if done else "false"},'
        if not done:
            head += f'"nextRecordsUrl":"{API}/query/{locator}-{offset + size}",'
        self.limited(200, head.encode() + b'"records":[' + b",".join(chunk) + b"]}")


def main() -> None:
    kind, data, port = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    handler: type[_Handler] = LrsHandler if kind == "lrs" else SalesforceHandler
    handler.records = Records(data)
    if handler is SalesforceHandler:
        first = orjson.loads(handler.records.bodies[0]) if handler.records.bodies else {}
        SalesforceHandler.fields = [f for f in first if f != "attributes"]
        SalesforceHandler.cursors = {}
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
