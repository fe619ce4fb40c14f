"""The sync configuration (``sync.yaml``): which live sources to pull, where, and how to authenticate.

The file names sources and, for each, where its secrets are: the names of environment variables,
or a keyring entry, never the secrets themselves. A file that holds a secret value is refused,
since configuration files are shared, committed and copied in a way secrets must not be.
Every mistake is reported with the file and the dotted field, so nothing here ends in a traceback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

import yaml

from training_roi.errors import SyncConfigError

__all__ = [
    "DEFAULT_CONFIG", "HUBSPOT_OBJECTS", "SALESFORCE_OBJECTS", "AuthConfig", "HubSpotAuthConfig", "HubSpotConfig",
    "LrsConfig", "SalesforceAuthConfig", "SalesforceConfig", "SecretRef", "SyncConfig", "load_config",
]

DEFAULT_CONFIG = "sync.yaml"
KINDS = ("lrs", "salesforce", "hubspot")
"""The kinds of live source this version pulls."""
SALESFORCE_OBJECTS = ("User", "Account", "Contact", "Opportunity", "OpportunityHistory", "Lead", "Task", "Event",
                      "Case", "Campaign", "CampaignMember")
"""The Salesforce objects the data contract reads (``crm/<Object>.csv``), hence the ones a sync can pull."""
HUBSPOT_OBJECTS = ("owners", "companies", "contacts", "deals")
"""The HubSpot objects a sync pulls: as the contract's User, Account, Contact and Opportunity."""
VERSIONS = {"1.0.3": "1.0.3", "1.0": "1.0.3", "2.0": "2.0.0", "2.0.0": "2.0.0"}
"""The xAPI versions a source may name, and the ``X-Experience-API-Version`` header each sends."""

PACING = ("load_every", "timeout", "retries", "backoff", "max_wait", "overlap")
"""The settings every kind of source takes: records loaded at once, waits and retries, the overlap."""
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_SECRET_KEYS = ("password", "secret", "client_secret", "token", "access_token", "api_key", "apikey")
"""Keys that would hold a secret's value: refused, with the ``_env`` or ``_keyring`` form suggested."""


@dataclass(frozen=True)
class SecretRef:
    """Where a secret is kept: an environment variable, or a keyring entry (service, user)."""

    env: str | None = None
    keyring: tuple[str, str] | None = None

    def describe(self) -> str:
        """Where the secret comes from, in words that hold no secret."""
        if self.env:
            return f"the environment variable {self.env}"
        assert self.keyring is not None
        return f"the keyring entry {self.keyring[0]}/{self.keyring[1]}"


@dataclass(frozen=True)
class AuthConfig:
    """How a source authenticates: ``basic`` (username and password) or ``oauth`` (client credentials)."""

    method: str
    username: SecretRef | str | None = None
    password: SecretRef | None = None
    token_url: str | None = None
    client_id: SecretRef | str | None = None
    client_secret: SecretRef | None = None
    scope: str | None = None


@dataclass(frozen=True, kw_only=True)
class Pacing:
    """The settings every source has: records loaded at once, and how answers are waited for and retried."""

    load_every: int = 100_000
    timeout: float = 60.0
    retries: int = 5
    backoff: float = 1.0
    max_wait: float = 300.0


@dataclass(frozen=True, kw_only=True)
class CrmPacing(Pacing):
    """What a CRM source adds: the records asked for again, its share of the daily API limit, the clock skew allowed."""

    overlap: float = 1.0
    limit_share: float = 0.8
    clock_skew: float = 60.0


@dataclass(frozen=True)
class LrsConfig(Pacing):
    """One LRS pulled over the xAPI Statement API."""

    name: str
    endpoint: str
    version: str
    auth: AuthConfig | None
    page_size: int = 500
    timeout: float = field(default=30.0, kw_only=True)
    overlap: float = 0.001
    kind: str = "lrs"

    @property
    def statements_url(self) -> str:
        """The Statement API's URL: the endpoint with ``statements`` after it."""
        return self.endpoint.rstrip("/") + "/statements"


@dataclass(frozen=True)
class SalesforceAuthConfig:
    """How a Salesforce source gets its access token: an OAuth 2.0 refresh token, or client credentials."""

    grant: str
    token_url: str
    client_id: SecretRef | str
    client_secret: SecretRef | None = None
    refresh_token: SecretRef | None = None


@dataclass(frozen=True)
class SalesforceConfig(CrmPacing):
    """One Salesforce org pulled over the REST API, object by object, on ``SystemModstamp``."""

    name: str
    instance_url: str
    api_version: str
    objects: tuple[str, ...]
    auth: SalesforceAuthConfig
    page_size: int = 2000
    bulk_objects: tuple[str, ...] = ()
    bulk_above: int | None = None
    bulk_page_size: int = 50_000
    bulk_poll: float = 2.0
    bulk_timeout: float = 1800.0
    kind: str = "salesforce"


@dataclass(frozen=True)
class HubSpotAuthConfig:
    """How a HubSpot source authenticates: a private app's access token, or an OAuth 2.0 refresh token."""

    method: str
    access_token: SecretRef | None = None
    token_url: str = ""
    client_id: SecretRef | str | None = None
    client_secret: SecretRef | None = None
    refresh_token: SecretRef | None = None


@dataclass(frozen=True)
class HubSpotConfig(CrmPacing):
    """One HubSpot account pulled over the CRM API v3, object by object, on its last-modified property."""

    name: str
    base_url: str
    objects: tuple[str, ...]
    auth: HubSpotAuthConfig
    deletions: bool = True
    page_size: int = 200
    kind: str = "hubspot"


SourceConfig = LrsConfig | SalesforceConfig | HubSpotConfig


@dataclass(frozen=True)
class SyncConfig:
    """A whole ``sync.yaml``: its sources, and the staging folder when one is set."""

    path: Path
    sources: list[SourceConfig] = field(default_factory=list)
    staging: Path | None = None
    push: Any = None
    """The ``push:`` section as written; :func:`training_roi.sync.push.push_config` checks it."""


def load_config(path: Path | str) -> SyncConfig:
    """Read and check ``sync.yaml``.

    Raises
    ------
    SyncConfigError
        The file is missing or not YAML, a field is unknown or wrong, or a secret's value is
        written in it; the message names the file and the field.
    """
    where = Path(path)
    try:
        text = where.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SyncConfigError(f"no sync configuration at {where}: write one (docs/sync.md) or pass --config") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SyncConfigError(f"{where}: cannot be read ({exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise SyncConfigError(f"{where}: not valid YAML{at}") from None
    checker = _Checker(where)
    root = checker.mapping(data, "", required=True)
    checker.known(root, "", ("sources", "staging", "push"))
    staging = root.get("staging")
    if staging is not None and not isinstance(staging, str):
        checker.fail("staging", "expected a folder path")
    raw_sources = root.get("sources")
    if not isinstance(raw_sources, list) or not raw_sources:
        checker.fail("sources", "expected a list of sources, each with a name, a kind and its settings")
    sources = [checker.source(item, f"sources[{i}]") for i, item in enumerate(raw_sources)]
    names = [s.name for s in sources]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        checker.fail("sources", f"the name {repeated[0]!r} is used twice: each source needs its own name")
    folder = (where.parent / staging) if staging else None
    return SyncConfig(path=where, sources=sources, staging=folder, push=root.get("push"))


class _Checker:
    """Checks of one file's values, each failure naming the file and the field."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, message: str) -> NoReturn:
        raise SyncConfigError(f"{self.path}: {key or 'the file'}: {message}")

    def mapping(self, value: object, key: str, *, required: bool = False) -> dict[str, Any]:
        if value is None and not required:
            return {}
        if not isinstance(value, dict):
            self.fail(key, "expected a mapping of settings")
        return {str(k): v for k, v in value.items()}

    def known(self, data: dict[str, Any], key: str, allowed: tuple[str, ...]) -> None:
        for name in data:
            if name in _SECRET_KEYS or name.endswith(("_password", "_secret", "_token")):
                self.fail(_join(key, name), "a secret is never written in the configuration: name the environment "
                          f"variable that holds it ({name}_env: VARIABLE) or a keyring entry "
                          f"({name}_keyring: {{service: …, username: …}})")
            if name not in allowed:
                self.fail(_join(key, name), f"unknown setting; expected one of {', '.join(allowed)}")

    def number(self, data: dict[str, Any], key: str, name: str, default: float, *, least: float,
               integer: bool = False) -> Any:
        value = data.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or (integer and not isinstance(value, int)):
            self.fail(_join(key, name), f"expected {'a whole number' if integer else 'a number'}")
        if value < least:
            self.fail(_join(key, name), f"expected at least {least:g}, not {value}")
        return value

    def source(self, item: object, key: str) -> SourceConfig:
        data = self.mapping(item, key, required=True)
        kind = data.get("kind")
        if kind not in KINDS:
            self.fail(_join(key, "kind"), f"expected one of {', '.join(KINDS)}, not {kind!r}")
        if kind == "salesforce":
            return self.salesforce(data, key)
        if kind == "hubspot":
            return self.hubspot(data, key)
        self.known(data, key, ("name", "kind", "endpoint", "version", "auth", "page_size", *PACING))
        name = self.name(data, key)
        endpoint = self.url(data.get("endpoint"), _join(key, "endpoint"))
        version = str(data.get("version", "1.0.3"))
        if version not in VERSIONS:
            self.fail(_join(key, "version"), f"expected an xAPI version: 1.0.3 or 2.0.0, not {version!r}")
        return LrsConfig(
            name=name, endpoint=endpoint, version=VERSIONS[version],
            auth=self.auth(data.get("auth"), _join(key, "auth")),
            page_size=self.number(data, key, "page_size", 500, least=1, integer=True),
            **self.pacing(data, key, timeout=30.0),
            overlap=float(self.number(data, key, "overlap", 0.001, least=0)),
        )

    def pacing(self, data: dict[str, Any], key: str, timeout: float) -> dict[str, Any]:
        """The settings every source has: records loaded at once, and how answers are waited for and retried."""
        return {"load_every": self.number(data, key, "load_every", 100_000, least=1, integer=True),
                "timeout": float(self.number(data, key, "timeout", timeout, least=0.1)),
                "retries": self.number(data, key, "retries", 5, least=0, integer=True),
                "backoff": float(self.number(data, key, "backoff", 1.0, least=0)),
                "max_wait": float(self.number(data, key, "max_wait", 300.0, least=0))}

    def crm_pacing(self, data: dict[str, Any], key: str, least_overlap: float) -> dict[str, Any]:
        """A CRM source's pacing: every source's, the overlap, the share of the daily API limit, the clock skew."""
        return {**self.pacing(data, key, timeout=60.0),
                "overlap": float(self.number(data, key, "overlap", 1.0, least=least_overlap)),
                "limit_share": self.share(data, key),
                "clock_skew": float(self.number(data, key, "clock_skew", 60.0, least=0))}

    def share(self, data: dict[str, Any], key: str) -> float:
        """The share of a CRM's daily API limit a sync may use."""
        share = float(self.number(data, key, "limit_share", 0.8, least=0.01))
        if share > 1:
            self.fail(_join(key, "limit_share"), f"expected a share of the daily API limit, at most 1, not {share}")
        return share

    def name(self, data: dict[str, Any], key: str) -> str:
        name = data.get("name")
        if not isinstance(name, str) or not _NAME.match(name):  # the name of folders and warehouse rows
            self.fail(_join(key, "name"), "expected a name of lower-case letters, digits, '-' and '_' "
                      "(it names the source in the warehouse and its staging folder)")
        return name

    def salesforce(self, data: dict[str, Any], key: str) -> SalesforceConfig:
        self.known(data, key, ("name", "kind", "instance_url", "api_version", "objects", "auth", "page_size",
                               *PACING, "limit_share", "clock_skew", "bulk_objects", "bulk_above", "bulk_page_size",
                               "bulk_poll", "bulk_timeout"))
        name = self.name(data, key)
        instance = self.url(data.get("instance_url"), _join(key, "instance_url"),
                            "expected the org's URL, e.g. https://example.my.salesforce.com")
        version = str(data.get("api_version", "62.0"))
        if not re.match(r"^\d{2,3}\.0$", version):
            self.fail(_join(key, "api_version"), f"expected a REST API version such as 62.0, not {version!r}")
        objects = data.get("objects", list(SALESFORCE_OBJECTS))
        if not isinstance(objects, list) or not objects or not all(isinstance(o, str) for o in objects):
            self.fail(_join(key, "objects"), "expected a list of Salesforce objects")
        unknown = [o for o in objects if o not in SALESFORCE_OBJECTS]
        if unknown:
            self.fail(_join(key, "objects"), f"{unknown[0]!r} is not an object the product reads; expected some "
                      f"of {', '.join(SALESFORCE_OBJECTS)}")
        page_size = self.number(data, key, "page_size", 2000, least=200, integer=True)
        if page_size > 2000:
            self.fail(_join(key, "page_size"), f"expected at most 2000 (Salesforce's largest batch), not {page_size}")
        bulk = data.get("bulk_objects", [])
        if not isinstance(bulk, list) or not all(isinstance(o, str) for o in bulk):
            self.fail(_join(key, "bulk_objects"), "expected a list of Salesforce objects")
        stray = [o for o in bulk if o not in objects]
        if stray:
            self.fail(_join(key, "bulk_objects"), f"{stray[0]!r} is not among the objects synced")
        above = data.get("bulk_above")
        if above is not None:
            above = self.number(data, key, "bulk_above", 0, least=0, integer=True)
        return SalesforceConfig(
            name=name, instance_url=instance.rstrip("/"), api_version=version,
            objects=tuple(dict.fromkeys(objects)), auth=self.salesforce_auth(data.get("auth"), _join(key, "auth")),
            page_size=page_size, **self.crm_pacing(data, key, least_overlap=1),
            bulk_objects=tuple(dict.fromkeys(bulk)), bulk_above=above,
            bulk_page_size=self.number(data, key, "bulk_page_size", 50_000, least=1, integer=True),
            bulk_poll=float(self.number(data, key, "bulk_poll", 2.0, least=0)),
            bulk_timeout=float(self.number(data, key, "bulk_timeout", 1800.0, least=0)),
        )

    def salesforce_auth(self, value: object, key: str) -> SalesforceAuthConfig:
        data = self.mapping(value, key, required=True)
        grant = data.get("grant", "refresh_token")
        self.known(data, key, ("grant", "token_url", "client_id", "client_id_env", "client_secret_env",
                               "client_secret_keyring", "refresh_token_env", "refresh_token_keyring"))
        token_url = data.get("token_url")
        if token_url is not None:
            token_url = self.url(token_url, _join(key, "token_url"), "expected the OAuth token endpoint, e.g. "
                                 "https://example.my.salesforce.com/services/oauth2/token")
        client_id = self.identity(data, key, "client_id", required=True)
        assert client_id is not None
        if grant == "refresh_token":
            secret = None
            if "client_secret_env" in data or "client_secret_keyring" in data:
                secret = self.secret(data, key, "client_secret")
            return SalesforceAuthConfig("refresh_token", token_url or "", client_id, secret,
                                        self.secret(data, key, "refresh_token"))
        if grant == "client_credentials":
            if "refresh_token_env" in data or "refresh_token_keyring" in data:
                self.fail(_join(key, "refresh_token"), "a client_credentials grant uses no refresh token")
            return SalesforceAuthConfig("client_credentials", token_url or "", client_id,
                                        self.secret(data, key, "client_secret"))
        self.fail(_join(key, "grant"), f"expected refresh_token or client_credentials, not {grant!r}")

    def hubspot(self, data: dict[str, Any], key: str) -> HubSpotConfig:
        self.known(data, key, ("name", "kind", "base_url", "objects", "deletions", "auth", "page_size", *PACING,
                               "limit_share", "clock_skew"))
        name = self.name(data, key)
        base = self.url(data.get("base_url", "https://api.hubapi.com"), _join(key, "base_url"),
                        "expected the API's URL, https://api.hubapi.com").rstrip("/")
        objects = data.get("objects", list(HUBSPOT_OBJECTS))
        if not isinstance(objects, list) or not objects or any(o not in HUBSPOT_OBJECTS for o in objects):
            self.fail(_join(key, "objects"), f"expected a list of some of {', '.join(HUBSPOT_OBJECTS)}")
        deletions = data.get("deletions", True)
        if not isinstance(deletions, bool):
            self.fail(_join(key, "deletions"), "expected true or false")
        page_size = self.number(data, key, "page_size", 200, least=10, integer=True)
        if page_size > 200:
            self.fail(_join(key, "page_size"), f"expected at most 200 (HubSpot's largest search page), not {page_size}")
        return HubSpotConfig(
            name=name, base_url=base, objects=tuple(o for o in HUBSPOT_OBJECTS if o in objects),
            auth=self.hubspot_auth(data.get("auth"), _join(key, "auth"), base), deletions=deletions,
            page_size=page_size, **self.crm_pacing(data, key, least_overlap=0.001),
        )

    def hubspot_auth(self, value: object, key: str, base: str) -> HubSpotAuthConfig:
        data = self.mapping(value, key, required=True)
        self.known(data, key, ("access_token_env", "access_token_keyring", "token_url", "client_id", "client_id_env",
                               "client_secret_env", "client_secret_keyring", "refresh_token_env",
                               "refresh_token_keyring"))
        private = "access_token_env" in data or "access_token_keyring" in data
        oauth = "refresh_token_env" in data or "refresh_token_keyring" in data
        if private and oauth:
            self.fail(key, "give a private app's access token or an OAuth refresh token, not both")
        if private:
            return HubSpotAuthConfig("private_app", access_token=self.secret(data, key, "access_token"))
        if not oauth:
            self.fail(_join(key, "access_token"), "name where the private app's access token is kept "
                      "(access_token_env or access_token_keyring), or give an OAuth app's client_id, "
                      "client_secret_env and refresh_token_env")
        token_url = data.get("token_url")
        if token_url is not None:
            token_url = self.url(token_url, _join(key, "token_url"),
                                 "expected the OAuth token endpoint, https://api.hubapi.com/oauth/v1/token")
        return HubSpotAuthConfig("oauth", token_url=token_url or f"{base}/oauth/v1/token",
                                 client_id=self.identity(data, key, "client_id", required=True),
                                 client_secret=self.secret(data, key, "client_secret"),
                                 refresh_token=self.secret(data, key, "refresh_token"))

    def url(self, value: object, key: str,
            expected: str = "expected the URL of the LRS's xAPI endpoint, e.g. https://lrs.example.com/xAPI/") -> str:
        if not isinstance(value, str) or not value:
            self.fail(key, expected)
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            self.fail(key, "expected an http:// or https:// URL")
        if parts.username or parts.password:
            self.fail(key, "credentials are never written in the URL: name them under auth (docs/sync.md)")
        if parts.query or parts.fragment:
            self.fail(key, "expected the endpoint alone, without a query")
        return value

    def auth(self, value: object, key: str) -> AuthConfig | None:
        if value is None:
            return None
        data = self.mapping(value, key)
        method = data.get("method")
        if method == "basic":
            self.known(data, key, ("method", "username", "username_env", "password_env", "password_keyring"))
            return AuthConfig("basic", username=self.identity(data, key, "username", required=True),
                              password=self.secret(data, key, "password"))
        if method == "oauth":
            self.known(data, key, ("method", "token_url", "client_id", "client_id_env", "client_secret_env",
                                   "client_secret_keyring", "scope"))
            scope = data.get("scope")
            if scope is not None and not isinstance(scope, str):
                self.fail(_join(key, "scope"), "expected the scopes as one string, separated by spaces")
            return AuthConfig("oauth", token_url=self.url(data.get("token_url"), _join(key, "token_url")),
                              client_id=self.identity(data, key, "client_id", required=True),
                              client_secret=self.secret(data, key, "client_secret"), scope=scope)
        self.fail(_join(key, "method"), f"expected basic or oauth, not {method!r}")

    def identity(self, data: dict[str, Any], key: str, name: str, *, required: bool) -> SecretRef | str | None:
        """A user name or client id: written as is, or named by an environment variable."""
        literal, env = data.get(name), data.get(f"{name}_env")
        if literal is not None and env is not None:
            self.fail(_join(key, name), f"give {name} or {name}_env, not both")
        if env is not None:
            return SecretRef(env=self.variable(env, _join(key, f"{name}_env")))
        if literal is None:
            if required:
                self.fail(_join(key, name), f"expected {name} or {name}_env")
            return None
        if not isinstance(literal, str) or not literal:
            self.fail(_join(key, name), "expected text")
        return str(literal)

    def secret(self, data: dict[str, Any], key: str, name: str) -> SecretRef:
        env, ring = data.get(f"{name}_env"), data.get(f"{name}_keyring")
        if (env is None) == (ring is None):
            self.fail(_join(key, name), f"name where the {name.replace('_', ' ')} is kept: {name}_env (an "
                      f"environment variable) or {name}_keyring ({{service: …, username: …}}), one of them")
        if env is not None:
            return SecretRef(env=self.variable(env, _join(key, f"{name}_env")))
        ring_data = self.mapping(ring, _join(key, f"{name}_keyring"))
        service, user = ring_data.get("service"), ring_data.get("username")
        if not isinstance(service, str) or not isinstance(user, str) or set(ring_data) != {"service", "username"}:
            self.fail(_join(key, f"{name}_keyring"), "expected {service: NAME, username: NAME}")
        return SecretRef(keyring=(str(service), str(user)))

    def variable(self, value: object, key: str) -> str:
        # Upper case only: a value put here by mistake (a password) is then refused without being echoed.
        if not isinstance(value, str) or not re.match(r"^[A-Z_][A-Z0-9_]*$", value):
            self.fail(key, "expected the name of an environment variable (upper-case letters, digits and _), "
                      "not its value")
        return str(value)


def _join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name
