"""An LRS as a live source: statements pulled over the xAPI Statement API (1.0.3 and 2.0).

``GET <endpoint>/statements`` with ``since`` (statements stored after it), ``limit`` and
``ascending=true``, following each answer's ``more`` link (relative to the endpoint's server) to the
end. Every request carries ``X-Experience-API-Version``. Voided statements are not returned by an
LRS, but the statements voiding them are, and the warehouse marks their targets as a file
ingest does. A statement's place in the order is its ``stored`` time and its id: the runner's
watermark is the latest ``stored`` loaded.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import IO, Any
from urllib.parse import urljoin

import httpx
import orjson

from training_roi.errors import SyncError
from training_roi.ingest.mapping import Mapping
from training_roi.ingest.xapi import parse_timestamp
from training_roi.sync.config import LrsConfig
from training_roi.sync.http import HttpClient, OAuthClientCredentials, safe_url
from training_roi.sync.secrets import Secret, resolve
from training_roi.sync.source import Page

__all__ = ["LrsSource", "since_text"]


def since_text(moment: datetime) -> str:
    """``moment`` as the ``since`` parameter: UTC, milliseconds (what every LRS keeps), rounded down."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


class LrsSource:
    """One LRS of the configuration, with its credentials read and its HTTP client open."""

    kind = "lrs"
    suffix = ".jsonl"
    mapping: Mapping | None = None

    def __init__(self, config: LrsConfig, config_path: str, on_retry: Any = None, sleep: Any = None) -> None:
        self.config = config
        self.name = config.name
        self.folder = f"lms/sync/{config.name}"
        self.load_every = config.load_every
        self.overlap = config.overlap
        auth: httpx.Auth | None = None
        secrets: list[Secret | None] = []
        hint = ""
        a = config.auth
        if a is not None and a.method == "basic":
            user = resolve(a.username, "user name", config_path)
            password = resolve(a.password, "password", config_path)
            assert user is not None and password is not None
            auth = httpx.BasicAuth(user.reveal(), password.reveal())
            secrets = [password] if user.where == "the configuration" else [user, password]
            hint = f"the user name and password ({user.where}, {password.where})"
        elif a is not None and a.method == "oauth":
            client_id = resolve(a.client_id, "client id", config_path)
            client_secret = resolve(a.client_secret, "client secret", config_path)
            assert client_id is not None and client_secret is not None and a.token_url is not None
            secrets = [client_secret] if client_id.where == "the configuration" else [client_id, client_secret]
            auth = OAuthClientCredentials(a.token_url, client_id, client_secret, a.scope)
            hint = f"the client id and secret ({client_id.where}, {client_secret.where})"
        extra = {"sleep": sleep} if sleep is not None else {}
        self.http = HttpClient(
            headers={"X-Experience-API-Version": config.version, "Accept": "application/json"},
            auth=auth, secrets=secrets, timeout=config.timeout, retries=config.retries, backoff=config.backoff,
            max_wait=config.max_wait, on_retry=on_retry, credentials_hint=hint, **extra)

    @property
    def requests(self) -> int:
        """HTTP requests sent so far (retries included)."""
        return self.http.requests

    def describe(self) -> str:
        """The Statement API's URL, without credentials."""
        return safe_url(self.config.statements_url)

    def fetch(self, since: datetime | None, next_page: str | None) -> Page:
        """The first page stored after ``since``, or the page a ``more`` link names.

        Raises
        ------
        SyncError
            The LRS cannot be reached, refuses, keeps failing, or answers something that is not a
            StatementResult.
        """
        if next_page is not None:
            body = self.http.get_json(next_page)
        else:
            params = {"limit": str(self.config.page_size), "ascending": "true"}
            if since is not None:
                params["since"] = since_text(since)
            body = self.http.get_json(self.config.statements_url, params)
        statements = body.get("statements") if isinstance(body, dict) else None
        if not isinstance(statements, list):
            raise SyncError(f"{self.describe()} answered JSON that is not an xAPI StatementResult "
                            "(no statements list): is the endpoint the LRS's xAPI endpoint?")
        more = body.get("more")
        if not isinstance(more, str) or not more:
            return Page(statements, None)
        # An LRS may offer one more, empty page when the last page was exactly full.
        return Page(statements, urljoin(self.config.statements_url, more) if statements else None)

    def position(self, record: dict[str, Any]) -> tuple[datetime, str] | None:
        """The statement's ``stored`` time and its id (lower case), or None when either is missing or unreadable."""
        stored, sid = record.get("stored"), record.get("id")
        if not isinstance(stored, str) or not isinstance(sid, str):
            return None
        try:
            return parse_timestamp(stored)[0], sid.lower()
        except ValueError:
            return None

    def write(self, records: list[dict[str, Any]], out: IO[bytes]) -> None:
        """One statement a line (JSON lines), as the ingest reads an LRS export."""
        out.write(b"".join([orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE) for record in records]))

    def close(self) -> None:
        """Close the HTTP connections."""
        self.http.close()
