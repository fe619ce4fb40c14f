"""HTTP for live sources: JSON over GET with retries, backoff, ``Retry-After``, and no secret in any message.

Every live source (an LRS, Salesforce) talks to a server that may be busy (429), failing for
a while (5xx), slow or unreachable. :class:`HttpClient` retries those with exponential backoff,
waits what ``Retry-After`` asks (seconds or an HTTP date, capped by ``max_wait``), gives up after a
bounded number of attempts with one sentence naming the URL, and never puts a credential in an
error: URLs are shown without user information or query, and any text quoted from a server has
the source's secrets masked out.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson
import tenacity

from training_roi.errors import SyncError
from training_roi.sync.secrets import Secret

__all__ = ["HttpClient", "OAuthClientCredentials", "retry_after", "safe_url", "whole_json"]

RETRIED = frozenset({429, 500, 502, 503, 504})
"""Answers that say "later": too many requests, or a server failing for now."""
_QUOTED = 200
"""Characters of a server's error text quoted in a message."""


def safe_url(url: str | httpx.URL) -> str:
    """``url`` as it may be shown: scheme, host, port and path, without user information or query."""
    parts = urlsplit(str(url))
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delay seconds or an HTTP date); None when absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class _Transient(Exception):
    """An answer or failure worth another attempt."""

    def __init__(self, what: str, wait: float | None = None) -> None:
        super().__init__(what)
        self.what = what
        self.wait = wait


class OAuthClientCredentials(httpx.Auth):
    """OAuth 2.0 client credentials (RFC 6749 §4.4): a Bearer token fetched, then fetched again on a 401."""

    requires_response_body = True

    def __init__(self, token_url: str, client_id: Secret, client_secret: Secret, scope: str | None) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self.client_secret = client_secret
        self.scope = scope
        self._token: str | None = None

    def _token_request(self) -> httpx.Request:
        form = {"grant_type": "client_credentials", **({"scope": self.scope} if self.scope else {})}
        basic = httpx.BasicAuth(self.client_id.reveal(), self.client_secret.reveal())
        request = httpx.Request("POST", self.token_url, data=form)
        return next(basic.auth_flow(request))

    def _take(self, response: httpx.Response) -> None:
        where = safe_url(self.token_url)
        if response.status_code != 200:
            raise SyncError(f"the token endpoint {where} answered {response.status_code} "
                            f"{response.reason_phrase}: check the client id and secret ({self.client_secret.where})")
        try:
            token = response.json().get("access_token")
        except ValueError:
            token = None
        if not isinstance(token, str) or not token:
            raise SyncError(f"the token endpoint {where} answered without an access_token")
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Send ``request`` with a Bearer token, fetching one first and once more when it is refused."""
        if self._token is None:
            self._take((yield self._token_request()))
        request.headers["Authorization"] = f"Bearer {self._token}"
        response = yield request
        if response.status_code == 401:
            self._take((yield self._token_request()))
            request.headers["Authorization"] = f"Bearer {self._token}"
            yield request


class HttpClient:
    """GET JSON from one server, with the retry policy of a source's configuration."""

    def __init__(self, *, headers: dict[str, str], auth: httpx.Auth | None, secrets: Iterable[Secret | None],
                 timeout: float, retries: int, backoff: float, max_wait: float,
                 sleep: Callable[[float], None] = time.sleep, on_retry: Callable[[str, float], None] | None = None,
                 credentials_hint: str = "", on_response: Callable[[httpx.Response], None] | None = None,
                 refusal: Callable[[httpx.Response], str | None] | None = None, retry_bad_json: bool = False,
                 ) -> None:
        self.secrets = [s.reveal() for s in secrets if s is not None and s.reveal()]
        self.retries = retries
        self.backoff = backoff
        self.max_wait = max_wait
        self.sleep = sleep
        self.on_retry = on_retry
        self.credentials_hint = credentials_hint
        self.on_response = on_response
        self.refusal = refusal
        self.retry_bad_json = retry_bad_json
        self.requests = 0
        self._client = httpx.Client(headers=headers, auth=auth, timeout=timeout, follow_redirects=True)

    def close(self) -> None:
        """Close the connections."""
        self._client.close()

    def mask(self, text: str) -> str:
        """``text`` with every secret of the source replaced by ``***``."""
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def get_json(self, url: str, params: dict[str, str] | None = None, headers: dict[str, str] | None = None) -> Any:
        """GET ``url`` and return its JSON body, retrying what is worth retrying (see :meth:`send_json`)."""
        return self.send_json("GET", url, params, headers)

    def send_json(self, method: str, url: str, params: dict[str, str] | None = None,
                  headers: dict[str, str] | None = None, body: Any = None) -> Any:
        """Send ``method`` to ``url`` (with ``body`` as JSON) and return the JSON answer, retrying as for a GET.

        Only requests that may be sent twice go through here: a GET, or a write that sets values
        (sending it again sets the same values).

        With ``retry_bad_json`` an answer that is not whole JSON (a page cut short) is asked for
        again like a failing server; otherwise it is an error at once.

        Raises
        ------
        SyncError
            The server refused the credentials or the request, answered something that is not
            JSON, or kept failing (or stayed unreachable) after every retry.
        """
        where = safe_url(url)
        if self.retry_bad_json:  # the answer read once: to see that it is whole, and to return it
            read: list[Any] = []

            def whole(response: httpx.Response) -> str | None:
                try:
                    read[:] = [_json(response)]
                except ValueError:
                    return _CUT
                return None

            self.send(method, url, params=params, json=body, headers=headers, check=whole)
            return read[0]
        response = self.send(method, url, params=params, json=body, headers=headers)
        try:
            return _json(response)
        except ValueError:
            raise SyncError(f"{where} answered {response.headers.get('content-type', 'no content type')} that is "
                            "not JSON: is the endpoint the LRS's xAPI endpoint?") from None

    def send(self, method: str, url: str, *, params: dict[str, str] | None = None, json: Any = None,
             headers: dict[str, str] | None = None,
             check: Callable[[httpx.Response], str | None] | None = None) -> httpx.Response:
        """Send a request with the retry policy and return its (successful) answer.

        ``check`` reads a successful answer and says why it is not whole (a body cut short), or None:
        such an answer is asked for again like a failing server's.

        Raises
        ------
        SyncError
            As :meth:`get_json`: refused, or still failing after every retry.
        """
        where = safe_url(url)
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.retries + 1),
            wait=self._wait,
            retry=tenacity.retry_if_exception_type(_Transient),
            sleep=self.sleep,
            before_sleep=self._before_sleep(where),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    response = self._send(method, url, params, where, headers, json)
                    broken = check(response) if check is not None else None
                    if broken is not None:
                        raise _Transient(broken)
                    return response
        except _Transient as exc:
            tries = self.retries + 1
            raise SyncError(f"{where}: {self.mask(exc.what)}, after {tries} attempt{'s' if tries > 1 else ''}; "
                            "the sync stops here and the next one starts from the last records loaded") from None
        raise AssertionError("unreachable: tenacity retries or raises")  # pragma: no cover

    def _send(self, method: str, url: str, params: dict[str, str] | None, where: str,
              headers: dict[str, str] | None = None, json: Any = None) -> httpx.Response:
        self.requests += 1
        try:
            response = self._client.request(method, url, params=params, headers=headers, json=json)
        except httpx.TimeoutException:
            raise _Transient("no answer within the timeout") from None
        except httpx.TransportError as exc:
            raise _Transient(f"cannot be reached ({type(exc).__name__}: {self.mask(str(exc))})") from None
        if self.on_response is not None:
            self.on_response(response)
        status = response.status_code
        if status >= 400 and status not in RETRIED and self.refusal is not None:
            refused = self.refusal(response)
            if refused is not None:
                raise SyncError(f"{where}: {self.mask(refused)}")
        if status in RETRIED:
            raise _Transient(f"answered {status} {response.reason_phrase} {_quote(self.mask(response.text))}".rstrip(),
                             retry_after(response.headers.get("retry-after")))
        if status in (401, 403):
            raise SyncError(f"{where} refused the credentials ({status} {response.reason_phrase})"
                            + (f": check {self.credentials_hint}" if self.credentials_hint else ""))
        if status >= 400:
            raise SyncError(f"{where} answered {status} {response.reason_phrase} "
                            f"{_quote(self.mask(response.text))}".rstrip())
        return response

    def _wait(self, state: tenacity.RetryCallState) -> float:
        """Seconds before the next attempt: what Retry-After asks, else exponential backoff; both capped."""
        outcome = state.outcome
        exc = outcome.exception() if outcome is not None else None
        asked = exc.wait if isinstance(exc, _Transient) else None
        wait = asked if asked is not None else self.backoff * 2 ** (state.attempt_number - 1)
        return float(min(wait, self.max_wait))

    def _before_sleep(self, where: str) -> Callable[[tenacity.RetryCallState], None]:
        def note(state: tenacity.RetryCallState) -> None:
            if self.on_retry is None:
                return
            outcome = state.outcome
            exc = outcome.exception() if outcome is not None else None
            what = exc.what if isinstance(exc, _Transient) else "failed"
            wait = state.next_action.sleep if state.next_action is not None else 0.0
            self.on_retry(f"{where}: {self.mask(what)}; attempt {state.attempt_number + 1} of {self.retries + 1}",
                          float(wait))

        return note


def _json(response: httpx.Response) -> Any:
    """The answer's JSON body, read by orjson (several times faster than the standard library on a page)."""
    return orjson.loads(response.content)


_CUT = "answered a page that is not whole JSON (cut short?)"


def whole_json(response: httpx.Response) -> str | None:
    """Why an answer is not whole JSON (a page cut short), or None when it is."""
    try:
        _json(response)
    except ValueError:
        return _CUT
    return None


def _quote(text: str) -> str:
    """A server's error text, short and on one line, in parentheses (empty when there is none)."""
    flat = " ".join(text.split())
    if not flat:
        return ""
    return f"({flat[:_QUOTED]}{'…' if len(flat) > _QUOTED else ''})"
