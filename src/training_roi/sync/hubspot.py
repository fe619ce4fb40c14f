"""HubSpot as a live source: owners, companies, contacts and deals over the CRM API, as the contract's CRM files.

Each object is a source of its own to the runner (``<name>.deals``, …): its own watermark and run
log row. Companies, contacts and deals come from the search endpoint
(``POST /crm/v3/objects/<object>/search``), filtered on the object's last-modified property
(``hs_lastmodifieddate``; ``lastmodifieddate`` for contacts) and sorted on it, ascending. Each record
is written as a row of the contract's export file (``crm/Account.csv``, ``crm/Contact.csv``,
``crm/Opportunity.csv``) and loaded by the same ingest as an export.

HubSpot's search pages by offset (``after``) over a result it computes again at every request, gives
no order among records modified in the same millisecond, and sends at most 10,000 results for one
search. An offset can therefore skip a record and repeat another with ``total`` unchanged (ties
returned in another order, or one record leaving the result as another enters it), so a chain pages
by key, as a series of searches:

- every search is bounded above by the chain's horizon (its start, less ``clock_skew``): a record
  modified while the chain runs leaves the result rather than moving inside it, and the next sync
  asks for it;
- each next page is a new search from the last modification time reached, inclusive, leaving out the
  ids the chain's token keeps as already sent at that millisecond: nothing is skipped and nothing is
  sent twice, whatever the order of ties;
- only when a whole page shares one millisecond is the offset followed (then the order of ties
  matters); its ``total`` is compared with the first page's, and when the result changed the page is
  dropped and a new search starts as above. More than 10,000 records in one millisecond stop the source.

The token (JSON) carries the horizon, so a chain resumed after a kill keeps it.

Deals and contacts get their company from the v4 associations API
(``POST /crm/v4/associations/<object>/companies/batch/read``, one request per page): the company
associated as primary, else the only one. A deal's stage is its pipeline stage's label; closed and
won come from the stage's metadata (``GET /crm/v3/pipelines/deals``: ``isClosed``, and a
``probability`` of 1.0 for won). Owners (``GET /crm/v3/owners``, active and archived) are the
contract's users; there is no filter on time for them, so all are read at every sync. Archived
(deleted) deals, companies and contacts come from the object's list endpoint with ``archived=true``
and are loaded with ``IsDeleted`` true, as sources of their own (``<name>.archived_deals``, …) whose
watermark is the time they were archived. Records merged into another are in neither list: the ids a
record's ``hs_merged_object_ids`` names are loaded as deleted when it arrives.

The private app's token, or an OAuth access token fetched with a refresh token (again before it
expires, and once when HubSpot answers 401 ``EXPIRED_AUTHENTICATION``), is sent as a Bearer token.
``X-HubSpot-RateLimit-Daily`` and ``-Daily-Remaining`` are read from every answer that has them: the
sync stops before it uses more than ``limit_share`` of the day's requests, and stops at once, without
retrying, when HubSpot answers 429 with the ``DAILY`` policy; a 429 of the per-second policy is retried.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Generator, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import IO, Any

import httpx
import orjson

from training_roi.errors import SyncError
from training_roi.ingest.mapping import Mapping, SourceMap
from training_roi.sync.config import HubSpotConfig
from training_roi.sync.http import HttpClient, OAuthClientCredentials, safe_url
from training_roi.sync.secrets import Secret, resolve
from training_roi.sync.source import Page, write_csv

__all__ = ["SEARCH_CAP", "HubSpotArchived", "HubSpotObject", "HubSpotOwners", "HubSpotSession", "open_hubspot"]

SEARCH_CAP = 10_000
"""The most results HubSpot sends for one search; asking for an offset beyond it is answered 400."""
MERGED = "hs_merged_object_ids"
"""The ids of the records merged into a record (``;``-separated): HubSpot keeps the merged ones neither
live nor archived, so they arrive as deletions with the record that absorbed them."""
LIST_LIMIT = 100
"""Records per page of a list endpoint (owners, archived records): HubSpot's largest."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ObjectKind:
    """How a HubSpot object becomes a contract file: its properties, by the contract's column they fill."""

    object: str
    contract: str
    modified: str
    properties: dict[str, str]
    columns: tuple[str, ...]
    primary_company: int | None = None
    """The association type id of the primary company (None: the object has no company)."""
    v3_primary: str | None = None
    """The same association's name in a v3 answer's ``associations``."""


KINDS = {
    "companies": ObjectKind(
        "companies", "Account", "hs_lastmodifieddate",
        {"Name": "name", "Type": "type", "Industry": "industry", "AnnualRevenue": "annualrevenue",
         "NumberOfEmployees": "numberofemployees", "OwnerId": "hubspot_owner_id", "BillingState": "state",
         "BillingCountry": "country", "CreatedDate": "createdate"},
        ("Id", "IsDeleted", "Name", "Type", "Industry", "AnnualRevenue", "NumberOfEmployees", "OwnerId",
         "BillingState", "BillingCountry", "CreatedDate")),
    "contacts": ObjectKind(
        "contacts", "Contact", "lastmodifieddate",
        {"Email": "email", "FirstName": "firstname", "LastName": "lastname", "Title": "jobtitle",
         "CreatedDate": "createdate"},
        ("Id", "IsDeleted", "AccountId", "Email", "FirstName", "LastName", "Title", "CreatedDate"),
        primary_company=1, v3_primary="contact_to_company"),
    "deals": ObjectKind(
        "deals", "Opportunity", "hs_lastmodifieddate",
        {"Name": "dealname", "OwnerId": "hubspot_owner_id", "Amount": "amount", "CurrencyIsoCode": "deal_currency_code",
         "CloseDate": "closedate", "CreatedDate": "createdate", "Type": "dealtype", "StageName": "dealstage"},
        ("Id", "IsDeleted", "AccountId", "OwnerId", "Name", "StageName", "Amount", "CurrencyIsoCode", "CloseDate",
         "CreatedDate", "IsClosed", "IsWon", "Type", "Probability"),
        primary_company=5, v3_primary="deal_to_company"),
}
"""The objects pulled by search. Type ids 5 and 1 are HubSpot's "Deal with Primary Company" and "Contact
with Primary Company"."""
USER_COLUMNS = ("Id", "Email", "FirstName", "LastName", "Name", "IsActive", "CreatedDate")


def to_ms(moment: datetime) -> int:
    """``moment`` as HubSpot's filter value for a datetime property: milliseconds since the epoch."""
    return (moment.astimezone(UTC) - _EPOCH) // timedelta(milliseconds=1)


def parse_time(text: object) -> datetime | None:
    """A HubSpot datetime (``2025-01-01T10:00:00.000Z``, or milliseconds) as an aware UTC datetime; None if neither."""
    if isinstance(text, int) or (isinstance(text, str) and text.isdigit()):
        return _EPOCH + timedelta(milliseconds=int(text))
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _stamp(moment: datetime) -> str:
    """A datetime as an export writes it: UTC, milliseconds, ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _date(text: str) -> str:
    """A close date: HubSpot keeps it as a datetime; the contract wants the (UTC) day."""
    moment = parse_time(text)
    return moment.date().isoformat() if moment is not None else text


def _error_body(response: httpx.Response) -> dict[str, Any]:
    """HubSpot's error body (``status``, ``message``, ``category``, …), or empty when the answer is not one."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _word(value: object) -> str:
    """A code from an error body, when it is one (upper-case letters and _), else empty: nothing else is quoted."""
    return value if isinstance(value, str) and re.match(r"^[A-Z_]{1,60}$", value) else ""


class HubSpotToken(OAuthClientCredentials):
    """OAuth 2.0 refresh-token grant against HubSpot's token endpoint.

    The access token is fetched before the first request, again when ``expires_in`` says it has
    expired, and once when HubSpot answers 401 ``EXPIRED_AUTHENTICATION``; the request is then sent again.
    """

    def __init__(self, token_url: str, client_id: Secret, client_secret: Secret, refresh_token: Secret,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(token_url, client_id, client_secret, None)
        self.refresh_token = refresh_token
        self.clock = clock
        self.expires: float | None = None
        self.tokens = 0

    def _token_request(self) -> httpx.Request:
        self.tokens += 1
        form = {"grant_type": "refresh_token", "client_id": self.client_id.reveal(),
                "client_secret": self.client_secret.reveal(), "refresh_token": self.refresh_token.reveal()}
        return httpx.Request("POST", self.token_url, data=form, headers={"Accept": "application/json"})

    def _take(self, response: httpx.Response) -> None:
        where = safe_url(self.token_url)
        body = _error_body(response)
        if response.status_code != 200:
            code = _word(body.get("status")) or _word(body.get("category"))
            said = f" ({code})" if code else ""
            raise SyncError(f"the token endpoint {where} answered {response.status_code}{said}: "
                            "check the OAuth app's client id and secret and the refresh token "
                            f"({self.client_secret.where}, {self.refresh_token.where})")
        token, life = body.get("access_token"), body.get("expires_in")
        if not isinstance(token, str) or not token:
            raise SyncError(f"the token endpoint {where} answered without an access_token")
        self._token = token
        self.expires = self.clock() + float(life) - 60 if isinstance(life, int | float) else None

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Send ``request`` with a Bearer token that has not expired; refresh once if HubSpot says it has."""
        if self._token is None or (self.expires is not None and self.clock() >= self.expires):
            self._take((yield self._token_request()))
        request.headers["Authorization"] = f"Bearer {self._token}"
        response = yield request
        if response.status_code == 401 and _error_body(response).get("category") == "EXPIRED_AUTHENTICATION":
            self._take((yield self._token_request()))
            request.headers["Authorization"] = f"Bearer {self._token}"
            yield request


class HubSpotSession:
    """One account's HTTP client and token, shared by its objects; it keeps count of the daily limit."""

    def __init__(self, config: HubSpotConfig, config_path: str, on_retry: Any = None, sleep: Any = None) -> None:
        self.config = config
        a = config.auth
        headers = {"Accept": "application/json"}
        self.token: HubSpotToken | None = None
        if a.method == "private_app":
            access = resolve(a.access_token, "access token", config_path)
            assert access is not None
            headers["Authorization"] = f"Bearer {access.reveal()}"
            shown: list[Secret] = [access]
        else:
            client_id = resolve(a.client_id, "client id", config_path)
            secret = resolve(a.client_secret, "client secret", config_path)
            refresh = resolve(a.refresh_token, "refresh token", config_path)
            assert client_id is not None and secret is not None and refresh is not None
            self.token = HubSpotToken(a.token_url, client_id, secret, refresh)
            shown = [client_id, secret, refresh]
        secrets = [s for s in shown if s.where != "the configuration"]
        extra = {"sleep": sleep} if sleep is not None else {}
        self.daily: int | None = None
        self.remaining: int | None = None
        self.refused: str | None = None
        self.http = HttpClient(
            headers=headers, auth=self.token, secrets=secrets, timeout=config.timeout, retries=config.retries,
            backoff=config.backoff, max_wait=config.max_wait, on_retry=on_retry, on_response=self._limits,
            refusal=self._refusal, retry_bad_json=True,
            credentials_hint="the " + ("private app's access token" if self.token is None else "OAuth app's secrets")
            + " (" + ", ".join(s.where for s in secrets) + ")", **extra)
        self._stages: dict[str, tuple[str, bool | None, float | None]] | None = None
        self.closed = False

    def _limits(self, response: httpx.Response) -> None:
        """Read the daily limit's headers; a 429 of the daily policy stops the sync here, before any retry."""
        daily = response.headers.get("x-hubspot-ratelimit-daily", "")
        remaining = response.headers.get("x-hubspot-ratelimit-daily-remaining", "")
        if daily.isdigit() and remaining.isdigit():
            self.daily, self.remaining = int(daily), int(remaining)
        if response.status_code == 429:
            body = _error_body(response)
            if body.get("errorType") == "RATE_LIMIT" and body.get("policyName") == "DAILY":
                self.refused = ("HubSpot refuses more API requests today (429 RATE_LIMIT, policy DAILY: the "
                                "account's daily limit is used up); the sync stops without retrying and the next one "
                                "goes on from the records loaded")
                raise SyncError(f"{safe_url(response.request.url)}: {self.refused}")

    def _refusal(self, response: httpx.Response) -> str | None:
        body = _error_body(response)
        if not body or response.status_code == 401:
            return None
        category = _word(body.get("category")) or _word(body.get("status"))
        message = " ".join(str(body.get("message", "")).split())[:200]
        return f"HubSpot answered {response.status_code} {category}: {message}".rstrip(": ")

    def check_limit(self) -> None:
        """Stop before the account's daily API requests used pass the configured share, or once HubSpot refused more."""
        if self.refused is not None:
            raise SyncError(self.refused)
        if self.daily is None or self.remaining is None or not self.daily:
            return
        used = self.daily - self.remaining
        if used >= self.config.limit_share * self.daily:
            raise SyncError(f"the account has used {used:,} of its {self.daily:,} daily API requests, limit_share "
                            f"{self.config.limit_share:g} of them: the sync stops here to leave the rest to other "
                            "integrations, and the next one goes on from the records loaded")

    def call(self, method: str, path: str, params: dict[str, str] | None = None, body: Any = None) -> Any:
        """Send a request to the API once the daily limit allows it; its JSON answer (a mapping)."""
        self.check_limit()
        answer = self.http.send_json(method, f"{self.config.base_url}{path}", params, None, body)
        if not isinstance(answer, dict):
            raise SyncError(f"{safe_url(self.config.base_url + path)} answered JSON that is not an object")
        return answer

    def pages(self, path: str, params: dict[str, str]) -> Iterable[dict[str, Any]]:
        """Every record of a list endpoint, following ``paging.next.after``."""
        after: str | None = None
        while True:
            answer = self.call("GET", path, {**params, "limit": str(LIST_LIMIT), **({"after": after} if after else {})})
            results = answer.get("results")
            if not isinstance(results, list):
                raise SyncError(f"{safe_url(self.config.base_url + path)} answered without results")
            yield from (r for r in results if isinstance(r, dict))
            after = _next_after(answer)
            if after is None:
                return

    def stages(self, refresh: bool = False) -> dict[str, tuple[str, bool | None, float | None]]:
        """Each deal stage's label, whether it is closed, and its probability (1.0: won), by stage id."""
        if self._stages is None or refresh:
            stages: dict[str, tuple[str, bool | None, float | None]] = {}
            for pipeline in self.call("GET", "/crm/v3/pipelines/deals").get("results") or []:
                for stage in (pipeline.get("stages") or []) if isinstance(pipeline, dict) else []:
                    meta = stage.get("metadata") or {}
                    closed = meta.get("isClosed")
                    try:
                        probability: float | None = float(meta.get("probability", ""))
                    except (TypeError, ValueError):
                        probability = None
                    stages[str(stage.get("id"))] = (str(stage.get("label") or stage.get("id")),
                                                    None if closed is None else str(closed).lower() == "true",
                                                    probability)
            self._stages = stages
        return self._stages

    def close(self) -> None:
        """Close the connections (once, though every object asks)."""
        if not self.closed:
            self.http.close()
            self.closed = True


def _next_after(answer: dict[str, Any]) -> str | None:
    paging = answer.get("paging")
    nxt = paging.get("next") if isinstance(paging, dict) else None
    after = nxt.get("after") if isinstance(nxt, dict) else None
    return str(after) if isinstance(after, str | int) and str(after) else None


@dataclass
class _Chain:
    """Where a chain of searches stands: the token the runner keeps between pages (JSON)."""

    horizon: int
    anchor: int | None
    after: str | None = None
    fetched: int = 0
    total: int | None = None
    skip: list[str] = field(default_factory=list)
    last: int | None = None
    last_ids: list[str] = field(default_factory=list)
    inclusive: bool = False
    """Whether the anchor itself is asked for: not from the runner's ``since`` (exclusive), but after a new search."""

    def reanchor(self) -> _Chain:
        """A new search from the last modification time reached, leaving out the ids sent at it."""
        if self.last is None:
            return _Chain(self.horizon, self.anchor, skip=self.skip, inclusive=self.inclusive)
        return _Chain(self.horizon, self.last, skip=list(self.last_ids), last=self.last, last_ids=list(self.last_ids),
                      inclusive=True)

    def token(self) -> str:
        return orjson.dumps(asdict(self)).decode()


class _CsvSource:
    """What the sources of one account share: their place in the staging folder and how they write rows."""

    kind = "hubspot"
    suffix = ".csv"

    def __init__(self, session: HubSpotSession, name: str, contract: str, columns: tuple[str, ...],
                 clock: Callable[[], datetime]) -> None:
        config = session.config
        self.session = session
        self.name = f"{config.name}.{name}"
        self.folder = f"crm/{contract}"
        self.columns = columns
        self.load_every = config.load_every
        self.overlap = config.overlap
        self.mapping: Mapping | None = Mapping(name=f"sync-{config.name}",
                                               sources={contract: SourceMap(file=[f"crm/{contract}/*.csv"])})
        self.clock = clock

    @property
    def requests(self) -> int:
        """HTTP requests sent so far by the account's client (retries and other objects included)."""
        return self.session.http.requests

    def horizon(self) -> datetime:
        return self.clock() - timedelta(seconds=self.session.config.clock_skew)

    def write(self, records: list[dict[str, Any]], out: IO[bytes]) -> None:
        """The records as the contract's export file of the object."""
        write_csv(out, self.columns, ([record.get(c) or "" for c in self.columns] for record in records))

    def close(self) -> None:
        """Close the account's connections."""
        self.session.close()


class _Rows:
    """HubSpot records of one object as rows of the contract's file."""

    def __init__(self, session: HubSpotSession, kind: ObjectKind) -> None:
        self.session = session
        self.kind = kind

    def companies(self, ids: list[str]) -> dict[str, str]:
        """Each record's primary company (else its only one), by the v4 associations API."""
        if self.kind.primary_company is None or not ids:
            return {}
        answer = self.session.call("POST", f"/crm/v4/associations/{self.kind.object}/companies/batch/read",
                                   body={"inputs": [{"id": i} for i in ids]})
        found: dict[str, str] = {}
        for result in answer.get("results") or []:
            if not isinstance(result, dict) or not isinstance(result.get("from"), dict):
                continue
            primary, every = [], set()
            for to in result.get("to") or []:
                company = str(to.get("toObjectId"))
                every.add(company)
                if any(t.get("typeId") == self.kind.primary_company and t.get("category") == "HUBSPOT_DEFINED"
                       for t in to.get("associationTypes") or []):
                    primary.append(company)
            chosen = primary[0] if primary else (next(iter(every)) if len(every) == 1 else "")
            found[str(result["from"].get("id"))] = chosen
        return found

    def row(self, record: dict[str, Any], deleted: bool, company: str | None) -> dict[str, Any]:
        """One record as the contract's row; ``_at`` holds its stored time, for the watermark."""
        props = record.get("properties") or {}
        row: dict[str, Any] = {c: props.get(p) for c, p in self.kind.properties.items()}
        row["Id"] = str(record.get("id"))
        row["IsDeleted"] = "true" if deleted else "false"
        row["CreatedDate"] = _export_time(row.get("CreatedDate"))
        if self.kind.primary_company is not None:
            row["AccountId"] = company or ""
        if self.kind.object == "deals":
            self.stage(row)
            if row.get("CloseDate"):
                row["CloseDate"] = _date(str(row["CloseDate"]))
        at = parse_time(props.get(self.kind.modified)) or parse_time(record.get("updatedAt"))
        row["_at"] = at.isoformat() if at is not None else None
        return row

    def merged(self, record: dict[str, Any], row: dict[str, Any]) -> list[dict[str, Any]]:
        """Deletions for the records merged into ``record`` (a deal merged into another would count twice).

        HubSpot's search and archive list no longer show them; each is kept, deleted, with the values of
        the record that absorbed it (a deleted row is never analysed, but it must pass validation).
        """
        ids = str((record.get("properties") or {}).get(MERGED) or "")
        gone = sorted({i.strip() for i in ids.split(";") if i.strip()} - {row["Id"]})
        return [{**row, "Id": i, "IsDeleted": "true"} for i in gone]

    def stage(self, row: dict[str, Any]) -> None:
        """A deal's stage label, closed, won and probability (in percent), from its pipeline's stage metadata."""
        stage = row.get("StageName")
        if not stage:
            return
        stages = self.session.stages()
        if stage not in stages:  # a stage added since the pipelines were read
            stages = self.session.stages(refresh=True)
        label, closed, probability = stages.get(stage, (stage, None, None))
        row["StageName"] = label
        if closed is not None:
            won = closed and probability is not None and probability >= 1.0
            row["IsClosed"], row["IsWon"] = ("true" if closed else "false"), ("true" if won else "false")
        if probability is not None:
            row["Probability"] = f"{probability * 100:g}"

    def properties(self) -> list[str]:
        return sorted({*self.kind.properties.values(), self.kind.modified, MERGED})


def _export_time(value: object) -> str:
    moment = parse_time(value)
    return _stamp(moment) if moment is not None else ("" if value is None else str(value))


def _position(record: dict[str, Any], horizon: datetime | None) -> tuple[datetime, str] | None:
    at, rid = record.get("_at"), record.get("Id")
    if not isinstance(at, str) or not isinstance(rid, str):
        return None
    when = datetime.fromisoformat(at)
    if horizon is not None and when > horizon:
        return None
    return when, rid


class HubSpotObject(_CsvSource):
    """Companies, contacts or deals, searched on their last-modified property: ``<name>.<object>``."""

    def __init__(self, session: HubSpotSession, obj: str,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.kind_of = KINDS[obj]
        super().__init__(session, obj, self.kind_of.contract, self.kind_of.columns, clock)
        self.rows = _Rows(session, self.kind_of)
        self.path = f"/crm/v3/objects/{obj}/search"

    def describe(self) -> str:
        """The object's search endpoint, without credentials."""
        return f"{safe_url(self.session.config.base_url)}{self.path}"

    def body(self, chain: _Chain) -> dict[str, Any]:
        """The one shape of search the client sends."""
        prop = self.kind_of.modified
        filters = [{"propertyName": prop, "operator": "LTE", "value": str(chain.horizon)}]
        if chain.anchor is not None:
            filters.insert(0, {"propertyName": prop, "operator": "GTE" if chain.inclusive else "GT",
                               "value": str(chain.anchor)})
        body: dict[str, Any] = {"filterGroups": [{"filters": filters}],
                                "sorts": [{"propertyName": prop, "direction": "ASCENDING"}],
                                "properties": self.rows.properties(), "limit": self.session.config.page_size}
        if chain.after is not None:
            body["after"] = chain.after
        return body

    def fetch(self, since: datetime | None, next_page: str | None) -> Page:
        """The next page of records modified from ``since`` up to the chain's horizon.

        Raises
        ------
        SyncError
            HubSpot cannot be reached, refuses, keeps failing, is at its daily limit, or more than
            10,000 records share one modification time.
        """
        if next_page is not None:
            chain = _Chain(**orjson.loads(next_page))
        else:
            chain = _Chain(to_ms(self.horizon()), None if since is None else to_ms(since))
        answer = self.session.call("POST", self.path, body=self.body(chain))
        results = answer.get("results")
        if not isinstance(results, list):
            raise SyncError(f"{self.describe()} answered JSON that is not a search result (no results)")
        total = answer.get("total")
        if chain.after is not None and total != chain.total:
            # The result changed under the offset: a record seen left it and the next offset would skip one.
            return Page([], chain.reanchor().token())
        if chain.after is None:
            chain.total = total if isinstance(total, int) else None
        kept: list[dict[str, Any]] = []
        for record in results:
            at = parse_time((record.get("properties") or {}).get(self.kind_of.modified))
            rid = str(record.get("id"))
            if at is None:
                kept.append(record)
                continue
            ms = to_ms(at)
            if ms == chain.anchor and rid in chain.skip:
                continue  # sent before the search was anchored again at its time
            kept.append(record)
            if chain.last is None or ms > chain.last:
                chain.last, chain.last_ids = ms, [rid]
            elif ms == chain.last and rid not in chain.last_ids:
                chain.last_ids.append(rid)
        chain.fetched += len(results)
        companies = self.rows.companies([str(r.get("id")) for r in kept])
        rows = [self.rows.row(r, False, companies.get(str(r.get("id")))) for r in kept]
        rows += [gone for r, row in zip(kept, rows, strict=True) for gone in self.rows.merged(r, row)]
        after = _next_after(answer)
        if after is None:
            return Page(rows, None)
        if chain.last is not None and chain.last != chain.anchor:
            # Page by key: the next page is a new search from the last millisecond reached, whatever order
            # HubSpot gives the records that share a millisecond from one request to the next.
            return Page(rows, chain.reanchor().token())
        # The whole page shares the anchor's millisecond: only the offset can go past it.
        if chain.fetched + self.session.config.page_size > SEARCH_CAP:
            raise SyncError(f"{self.describe()}: more than {SEARCH_CAP:,} {self.kind_of.object} share one "
                            "modification time; HubSpot's search cannot page past them")
        chain.after = after
        return Page(rows, chain.token())

    def position(self, record: dict[str, Any]) -> tuple[datetime, str] | None:
        """The record's last modification and id (every record of a chain is before its horizon)."""
        return _position(record, None)


class HubSpotArchived(_CsvSource):
    """Archived (deleted) companies, contacts or deals, from the list endpoint: ``<name>.archived_<object>``.

    The list has no filter on time and no order by it, so each sync reads it whole (it holds what
    was deleted in the last 90 days), keeps what was archived since the watermark, and hands it to
    the runner as one page in the order of archiving; records archived after the sync began do not
    move the watermark.
    """

    def __init__(self, session: HubSpotSession, obj: str,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.kind_of = KINDS[obj]
        super().__init__(session, f"archived_{obj}", self.kind_of.contract, self.kind_of.columns, clock)
        self.rows = _Rows(session, self.kind_of)
        self.path = f"/crm/v3/objects/{obj}"
        self._horizon: datetime | None = None

    def describe(self) -> str:
        """The object's list endpoint, without credentials."""
        return f"{safe_url(self.session.config.base_url)}{self.path}?archived=true"

    def fetch(self, since: datetime | None, next_page: str | None) -> Page:
        """Every record archived from ``since`` on, in the order they were archived."""
        self._horizon = self.horizon()
        params = {"archived": "true", "properties": ",".join(self.rows.properties())}
        if self.kind_of.v3_primary is not None:
            params["associations"] = "companies"
        rows = []
        for record in self.session.pages(self.path, params):
            archived = parse_time(record.get("archivedAt"))
            if archived is None or (since is not None and archived < since):
                continue
            row = self.rows.row(record, True, self._company(record))
            row["_at"] = archived.isoformat()
            rows.append(row)
        rows.sort(key=lambda r: (r["_at"], r["Id"]))
        return Page(rows, None)

    def _company(self, record: dict[str, Any]) -> str:
        links = ((record.get("associations") or {}).get("companies") or {}).get("results") or []
        primary = [str(a.get("id")) for a in links if a.get("type") == self.kind_of.v3_primary]
        every = {str(a.get("id")) for a in links}
        return primary[0] if primary else (next(iter(every)) if len(every) == 1 else "")

    def position(self, record: dict[str, Any]) -> tuple[datetime, str] | None:
        """When the record was archived, and its id; None when after the sync began."""
        return _position(record, self._horizon)


class HubSpotOwners(_CsvSource):
    """The account's owners, active and archived (deactivated users), as the contract's users: ``<name>.owners``.

    The owners endpoint has no filter on time, and HubSpot does not say that an owner's ``updatedAt``
    moves when its user is deactivated, so all are read at every sync (a few requests) and loaded again.
    """

    def __init__(self, session: HubSpotSession, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        super().__init__(session, "owners", "User", USER_COLUMNS, clock)

    def describe(self) -> str:
        """The owners endpoint, without credentials."""
        return f"{safe_url(self.session.config.base_url)}/crm/v3/owners"

    def fetch(self, since: datetime | None, next_page: str | None) -> Page:
        """Every owner, the active ones first (an owner listed twice is kept as active)."""
        rows: dict[str, dict[str, Any]] = {}
        for archived in ("false", "true"):
            for owner in self.session.pages("/crm/v3/owners", {"archived": archived}):
                oid = str(owner.get("id"))
                if oid in rows:
                    continue
                first, last = owner.get("firstName") or "", owner.get("lastName") or ""
                rows[oid] = {"Id": oid, "Email": owner.get("email"), "FirstName": first, "LastName": last,
                             "Name": f"{first} {last}".strip(), "CreatedDate": _export_time(owner.get("createdAt")),
                             "IsActive": "false" if archived == "true" or owner.get("archived") else "true"}
        return Page(list(rows.values()), None)

    def position(self, record: dict[str, Any]) -> tuple[datetime, str] | None:
        """None: owners are read whole at every sync and have no watermark."""
        return None


def open_hubspot(config: HubSpotConfig, config_path: str, **options: Any) -> list[Any]:
    """One source per configured object (and per object's archived records), sharing the account's session."""
    session = HubSpotSession(config, config_path, **options)
    sources: list[Any] = [HubSpotOwners(session)] if "owners" in config.objects else []
    sources += [HubSpotObject(session, o) for o in config.objects if o != "owners"]
    if config.deletions:
        sources += [HubSpotArchived(session, o) for o in config.objects if o != "owners"]
    return sources
