"""Salesforce as a live source: each object pulled over the REST API, incrementally on ``SystemModstamp``.

For every object the client sends one shape of SOQL query to ``/services/data/vXX.X/queryAll`` (so
deleted records arrive, with ``IsDeleted`` true)::

    SELECT <fields> FROM <Object> [WHERE SystemModstamp > <datetime>] ORDER BY SystemModstamp, Id

and follows each answer's ``nextRecordsUrl`` to the end. The fields are those of the data contract
(``crm/<Object>.csv``) that the org's ``describe`` lists (with a case's custom fields, which the
ingest keeps), so an org without, say, multiple currencies
is asked only for what it has. Records are written as the CSV a Salesforce export is, and loaded
by the same ingest, so they validate, quarantine and merge exactly as an exported file does.

Each object is a source of its own to the runner (``<name>.<Object>``): its own watermark and run
log row. The OAuth access token is fetched with a refresh token or client credentials, and fetched
again once when Salesforce answers 401 (``INVALID_SESSION_ID``). ``Sforce-Limit-Info`` is read from
every answer: the sync stops before it uses more than ``limit_share`` of the org's daily API
requests, and stops at once, without retrying, when Salesforce says the limit is reached.

A record changed while a chain of pages is read may come back with a ``SystemModstamp`` later than
records the chain never saw; records stamped after the chain began (its horizon) are loaded but do
not move the watermark (their position is None), so the next sync asks from before them and nothing
between is skipped. The next-page token the runner keeps is the horizon and ``nextRecordsUrl``, so a
chain resumed after a kill keeps its horizon.

Objects named in ``bulk_objects``, and with ``bulk_above`` any object with more records to read than
that (counted first with ``SELECT COUNT() FROM <Object> [WHERE SystemModstamp > …]``), are read
through a Bulk API 2.0 query job instead (:mod:`.salesforce_bulk`), one job per chain.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import IO, Any

import httpx

from training_roi.errors import SyncError
from training_roi.ingest.mapping import Mapping, SourceMap
from training_roi.ingest.sources import SOURCES
from training_roi.sync.config import SalesforceConfig
from training_roi.sync.http import HttpClient, OAuthClientCredentials, safe_url
from training_roi.sync.salesforce_bulk import BULK, BulkQuery
from training_roi.sync.secrets import Secret, resolve
from training_roi.sync.source import Page, write_csv

__all__ = ["SalesforceObject", "SalesforceSession", "open_salesforce", "soql_datetime"]

_LIMIT = re.compile(r"api-usage=(\d+)/(\d+)")
CUSTOM_KEPT = frozenset({"Case"})
"""Objects whose custom (``__c``) fields the ingest keeps (a case's CSAT): they are asked for too."""


def soql_datetime(moment: datetime) -> str:
    """``moment`` as a SOQL datetime literal: UTC, whole seconds (rounded down), ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_datetime(text: str) -> datetime:
    """A Salesforce datetime (``2025-01-01T10:00:00.000+0000``) as an aware UTC datetime."""
    # fromisoformat reads this form ten times faster than strptime; a time without its offset is refused.
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"no UTC offset in {text!r}")
    return moment.astimezone(UTC)


def _errors(response: httpx.Response) -> list[tuple[str, str]]:
    """The (errorCode, message) pairs of a REST API error body (a JSON list); empty when it is not one."""
    try:
        body = response.json()
    except ValueError:
        return []
    if isinstance(body, dict):
        body = [body]
    if not isinstance(body, list):
        return []
    return [(str(e.get("errorCode", "")), str(e.get("message", ""))[:200]) for e in body if isinstance(e, dict)]


class SalesforceAuth(OAuthClientCredentials):
    """OAuth 2.0 against Salesforce's token endpoint: a Bearer token, fetched again once on a 401.

    The flow is the client-credentials one's; the token request differs: the grant (a refresh token
    or client credentials) and the client's id and secret go in the form, as Salesforce asks.
    """

    def __init__(self, config: SalesforceConfig, client_id: Secret, client_secret: Secret | None,
                 refresh_token: Secret | None) -> None:
        token_url = config.auth.token_url or f"{config.instance_url}/services/oauth2/token"
        super().__init__(token_url, client_id, client_secret or client_id, None)
        self.grant = config.auth.grant
        self.secret = client_secret  # optional with a refresh token: sent only when configured
        self.refresh_token = refresh_token
        self.tokens = 0

    def _token_request(self) -> httpx.Request:
        form = {"grant_type": self.grant, "client_id": self.client_id.reveal()}
        if self.secret is not None:
            form["client_secret"] = self.secret.reveal()
        if self.refresh_token is not None:
            form["refresh_token"] = self.refresh_token.reveal()
        self.tokens += 1
        return httpx.Request("POST", self.token_url, data=form, headers={"Accept": "application/json"})

    def _take(self, response: httpx.Response) -> None:
        where = safe_url(self.token_url)
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200:
            code = body.get("error") if isinstance(body, dict) else None
            said = f" ({code})" if isinstance(code, str) and re.match(r"^[a-z_]{1,40}$", code) else ""
            raise SyncError(f"the token endpoint {where} answered {response.status_code}{said}: check the "
                            f"{self.grant.replace('_', ' ')} grant's client id and secrets")
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise SyncError(f"the token endpoint {where} answered without an access_token")
        self._token = token


class SalesforceSession:
    """One org's HTTP client and token, shared by its objects; it also keeps count of the daily API limit."""

    def __init__(self, config: SalesforceConfig, config_path: str, on_retry: Any = None, sleep: Any = None) -> None:
        self.config = config
        a = config.auth
        client_id = resolve(a.client_id, "client id", config_path)
        secret = resolve(a.client_secret, "client secret", config_path)
        refresh = resolve(a.refresh_token, "refresh token", config_path)
        assert client_id is not None
        self.auth = SalesforceAuth(config, client_id, secret, refresh)
        shown = [s for s in (client_id, secret, refresh) if s is not None]
        secrets = [s for s in shown if s.where != "the configuration"]
        extra = {"sleep": sleep} if sleep is not None else {}
        self.sleep: Callable[[float], None] = sleep or time.sleep
        self.used: int | None = None
        self.allowed: int | None = None
        self.http = HttpClient(
            headers={"Accept": "application/json", "Sforce-Query-Options": f"batchSize={config.page_size}"},
            auth=self.auth, secrets=secrets, timeout=config.timeout, retries=config.retries, backoff=config.backoff,
            max_wait=config.max_wait, on_retry=on_retry, on_response=self._limits, refusal=self._refusal,
            retry_bad_json=True, credentials_hint="the client id and secrets ("
            + ", ".join(s.where for s in shown) + ")", **extra)
        self.closed = False
        self.on_close: list[Callable[[], None]] = []

    @property
    def api(self) -> str:
        """The REST API's root for the configured version."""
        return f"{self.config.instance_url}/services/data/v{self.config.api_version}"

    def _limits(self, response: httpx.Response) -> None:
        found = _LIMIT.search(response.headers.get("sforce-limit-info", ""))
        if found:
            self.used, self.allowed = int(found[1]), int(found[2])

    def _refusal(self, response: httpx.Response) -> str | None:
        errors = _errors(response)
        codes = {code for code, _ in errors}
        if "REQUEST_LIMIT_EXCEEDED" in codes:
            return ("Salesforce refuses more API requests (REQUEST_LIMIT_EXCEEDED: the org's daily limit is "
                    "used up); the sync stops without retrying and the next one goes on from the records loaded")
        if errors and response.status_code != 401:
            code, message = errors[0]
            return f"Salesforce answered {response.status_code} {code}: {message}"
        return None

    def check_limit(self) -> None:
        """Stop before the org's daily API requests used pass the configured share."""
        if self.used is None or not self.allowed:
            return
        if self.used >= self.config.limit_share * self.allowed:
            raise SyncError(f"the org has used {self.used:,} of its {self.allowed:,} daily API requests, "
                            f"limit_share {self.config.limit_share:g} of them: the sync stops here to leave the rest "
                            "to other integrations, and the next one goes on from the records loaded")

    def get(self, url: str, params: dict[str, str] | None = None) -> Any:
        """GET JSON from the org, once the daily limit allows it."""
        self.check_limit()
        return self.http.get_json(url, params)

    def send(self, method: str, url: str, **options: Any) -> httpx.Response:
        """Send any request to the org (a bulk job's), once the daily limit allows it."""
        self.check_limit()
        return self.http.send(method, url, **options)

    def close(self) -> None:
        """Do what waits for the end of the sync (delete the bulk jobs read), then close the connections (once)."""
        if not self.closed:
            for step in self.on_close:
                step()
            self.http.close()
            self.closed = True


class SalesforceObject:
    """One object of one org, as a source the runner pulls: ``<name>.<Object>``."""

    kind = "salesforce"
    suffix = ".csv"

    def __init__(self, session: SalesforceSession, obj: str,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        config = session.config
        self.session = session
        self.object = obj
        self.name = f"{config.name}.{obj}"
        self.folder = f"crm/{obj}"
        self.load_every = config.load_every
        self.overlap = config.overlap
        self.mapping: Mapping | None = Mapping(name=f"sync-{config.name}",
                                               sources={obj: SourceMap(file=[f"crm/{obj}/*.csv"])})
        self.contract = [f.name for f in SOURCES[obj].fields]
        self.clock = clock
        self._fields: list[str] | None = None
        self._horizon: datetime | None = None
        self.bulk = BulkQuery(session)
        self._bulk_chain = False

    @property
    def ordered(self) -> bool:
        """Whether the chain under way comes in stored order (a bulk job's results do not)."""
        return not self._bulk_chain

    @property
    def requests(self) -> int:
        """HTTP requests sent so far by the org's client (retries and other objects included)."""
        return self.session.http.requests

    def describe(self) -> str:
        """The object's query endpoint, without credentials."""
        return f"{safe_url(self.session.api)}/queryAll ({self.object})"

    def fields(self) -> list[str]:
        """The contract's fields the org has for the object, from its ``describe`` (asked once)."""
        if self._fields is None:
            body = self.session.get(f"{self.session.api}/sobjects/{self.object}/describe")
            listed = body.get("fields") if isinstance(body, dict) else None
            if not isinstance(listed, list):
                raise SyncError(f"{safe_url(self.session.api)}: the describe of {self.object} lists no fields")
            names = {f.get("name") for f in listed if isinstance(f, dict)}
            if "Id" not in names or "SystemModstamp" not in names:
                raise SyncError(f"{self.object} has no Id or SystemModstamp field in this org: it cannot be synced")
            self._fields = [f for f in self.contract if f in names]
            if self.object in CUSTOM_KEPT:
                self._fields += sorted(n for n in names if isinstance(n, str) and n.endswith("__c"))
        return self._fields

    def selection(self, since: datetime | None) -> str:
        """The SOQL query of the object's records modified after ``since``, in no order (a bulk job's)."""
        where = f" WHERE SystemModstamp > {soql_datetime(since)}" if since is not None else ""
        select = ", ".join([*self.fields(), "SystemModstamp"])
        return f"SELECT {select} FROM {self.object}{where}"

    def query(self, since: datetime | None) -> str:
        """The one SOQL query the client sends for the object over the REST API."""
        return f"{self.selection(since)} ORDER BY SystemModstamp, Id"

    def uses_bulk(self, since: datetime | None) -> bool:
        """Whether a chain from ``since`` goes through a bulk job: the object is named, or has enough to read."""
        config = self.session.config
        if self.object in config.bulk_objects:
            return True
        if config.bulk_above is None:
            return False
        where = f" WHERE SystemModstamp > {soql_datetime(since)}" if since is not None else ""
        body = self.session.get(f"{self.session.api}/queryAll", {"q": f"SELECT COUNT() FROM {self.object}{where}"})
        total = body.get("totalSize") if isinstance(body, dict) else None
        if not isinstance(total, int):
            raise SyncError(f"{safe_url(self.session.api)} answered a count of {self.object} without a totalSize")
        return total > config.bulk_above

    def fetch(self, since: datetime | None, next_page: str | None) -> Page:
        """The first page of records modified after ``since`` (deleted ones included), or the page a link names.

        Raises
        ------
        SyncError
            The org cannot be reached, refuses, keeps failing, is at its API limit, or answers
            something that is not a query result.
        """
        if next_page is not None:
            # The link carries the chain's horizon, so a sync resumed after a kill keeps the first one's.
            horizon, _, path = next_page.partition(" ")
            self._horizon = datetime.fromisoformat(horizon)
            self._bulk_chain = path.startswith(f"{BULK} ")
            if self._bulk_chain:
                _, job, locator = path.split(" ")
                return self._bulk_page(job, locator)
            body = self.session.get(f"{self.session.config.instance_url}{path}")
        else:
            # Records modified from here on may come in this chain: they must not move the watermark.
            self._horizon = self.clock() - timedelta(seconds=self.session.config.clock_skew)
            self._bulk_chain = self.uses_bulk(since)
            if self._bulk_chain:
                return self._bulk_page(self.bulk.start(self.selection(since)), None)
            body = self.session.get(f"{self.session.api}/queryAll", {"q": self.query(since)})
        records = body.get("records") if isinstance(body, dict) else None
        if not isinstance(records, list):
            raise SyncError(f"{safe_url(self.session.api)} answered JSON that is not a query result (no records)")
        more = body.get("nextRecordsUrl")
        if not isinstance(more, str) or not more or body.get("done", True):
            return Page(records, None)
        return Page(records, f"{self._horizon.isoformat()} {more}")

    def _bulk_page(self, job: str, locator: str | None) -> Page:
        """One set of a bulk job's results.

        The job is deleted when the sync closes the org's session, after the runner has staged and
        loaded its last set: a sync killed before that leaves the job, so the next one can still read
        the set its cursor names, and Salesforce deletes jobs it is never asked to.
        """
        assert self._horizon is not None
        records, following = self.bulk.results(job, locator)
        if following is None:
            self.session.on_close.append(lambda: self.bulk.delete(job))
            return Page(records, None)
        return Page(records, f"{self._horizon.isoformat()} {BULK} {job} {following}")

    def position(self, record: dict[str, Any]) -> tuple[datetime, str] | None:
        """The record's ``SystemModstamp`` and Id; None when unreadable or after the chain's horizon."""
        stamp, rid = record.get("SystemModstamp"), record.get("Id")
        if not isinstance(stamp, str) or not isinstance(rid, str):
            return None
        try:
            when = parse_datetime(stamp)
        except ValueError:
            return None
        if self._horizon is not None and when > self._horizon:
            return None
        return when, rid

    def write(self, records: list[dict[str, Any]], out: IO[bytes]) -> None:
        """The records as the object's export file: the contract's columns, values as Salesforce exports them."""
        fields = self.fields()
        write_csv(out, fields, ([_cell(record.get(f)) for f in fields] for record in records))

    def close(self) -> None:
        """Close the org's connections."""
        self.session.close()


def _cell(value: object) -> str:
    """A JSON value as an export's cell: empty for null, true/false, numbers without exponent."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = repr(value)
        return format(Decimal(text), "f") if "e" in text else text
    return str(value)


def open_salesforce(config: SalesforceConfig, config_path: str, **options: Any) -> list[SalesforceObject]:
    """One source per configured object, sharing the org's session (its secrets read here)."""
    session = SalesforceSession(config, config_path, **options)
    return [SalesforceObject(session, obj) for obj in config.objects]
