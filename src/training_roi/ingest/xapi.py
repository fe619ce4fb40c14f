"""Reading xAPI statements (as an LRS returns them) into the ``lms_statement`` table.

A file is recognised by its content, not its extension: JSON lines (one statement a line), a
single statement, a JSON array of statements, or an LRS page ``{"statements": [...], "more": ...}``.
Every statement is checked against the parts of xAPI 1.0.3 the analysis relies on (who did it,
what they did, to what, when, with which result) and is either loaded or put in quarantine with
the field at fault and a reason; a file that is not UTF-8 is quarantined as a whole (line 0).

What a row holds and why:

- one row per statement and learner: a Group actor with members gives one row per member, so a
  team's completion counts for each person in it (``group_key`` names the Group);
- ``statement_id`` is the statement's id in lower case, or, when it has none, a UUID derived
  from the statement's canonical JSON, so loading the same files twice loads the same records;
- the same statement id delivered twice (within a file or across files) is loaded once, from
  its first delivery, and counted in ``Batch.rows_duplicate``;
- voiding is recorded (``voided_statement_id``) but not resolved: ``is_voided`` is false here and
  the warehouse recomputes it over every statement it holds, whatever order files came in.

The reader is written for volume (an LRS export of a million statements): orjson parses each
statement, values go into one tuple per row that is turned into Arrow every 131,072 rows, the
slow checks (repeated keys, exact raw text of an array element) run only when needed, and
JSON-lines files are read in 16 MiB blocks of whole lines, by worker processes when large.
"""

from __future__ import annotations

import functools
import gc
import hashlib
import json
import multiprocessing
import os
import sys
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any, BinaryIO

import isodate
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from training_roi.errors import InvalidStatement, SourceError
from training_roi.warehouse import schema
from training_roi.warehouse.batch import Batch, QuarantineRow

__all__ = [
    "Identity",
    "InvalidStatement",
    "actor_identities",
    "parse_duration",
    "parse_timestamp",
    "read_xapi",
]

_SOURCE = "xapi"
_TABLE = "lms_statement"
_VOIDED = "http://adlnet.gov/expapi/verbs/voided"

# Statements without an id get uuid5(_NAMESPACE, canonical JSON): fixed forever, so that
# re-ingesting the same file gives the same ids.
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:training-roi:xapi-statement")
_SHA1_CHARS = "0123456789abcdefABCDEF"
_MINUTE = timedelta(minutes=1)
# A calendar year/month in a duration ("P1M") has no fixed length; the mean Gregorian one is
# the least surprising stand-in for "time spent".
_YEAR_SECONDS = 365.2425 * 86400.0
_MONTH_SECONDS = _YEAR_SECONDS / 12.0
_FLUSH_ROWS = 131_072
_BLOCK_BYTES = 16 << 20
_PARALLEL_MIN_BYTES = 32 << 20
_MAX_WORKERS = 8
_RAW_LIMIT = 1 << 20
_BOM = b"\xef\xbb\xbf"
_SPINE = ("actor", "verb", "object")
_JSON_WS = " \t\n\r"
# Every byte maps to "?" except hex digits ("x") and "-": a UUID then reads as _UUID_SHAPE.
_UUID_TABLE = bytes(
    ord("x") if chr(b) in "0123456789abcdefABCDEF" else b if b == ord("-") else ord("?")
    for b in range(256)
)
_UUID_SHAPE = b"xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
_fromisoformat = datetime.fromisoformat
# Arrow stores a JSON integer in a float64 column as is, so ints need no conversion here.
_NUMBER_OR_NONE = (float, int, type(None))


@dataclass(frozen=True, slots=True)
class Identity:
    """One learner identity (an Agent's inverse functional identifier), as the warehouse keys it.

    ``key`` is ``mbox:<email>``, ``sha1:<hash>``, ``openid:<uri>`` or
    ``account:<homePage>|<name>``; ``kind`` names the identifier (``mbox``, ``mbox_sha1sum``,
    ``openid``, ``account``).
    """

    key: str
    kind: str
    email: str | None = None
    account_name: str | None = None
    account_home: str | None = None
    name: str | None = None


# Internally an identity is a plain tuple in Identity's field order: it is built for every
# row, and a frozen dataclass costs several times more to create.
_Ident = tuple[str, str, str | None, str | None, str | None, str | None]


# --------------------------------------------------------------------------- public parsers


def parse_timestamp(text: str) -> tuple[datetime, int]:
    """Parse an ISO 8601 timestamp into an aware UTC datetime and its original offset.

    A timestamp without a time zone is taken as UTC (offset 0), which is what an LRS does.

    Parameters
    ----------
    text
        The timestamp as written, e.g. ``"2016-06-09T18:47:34.847Z"``.

    Returns
    -------
    tuple[datetime, int]
        The instant in UTC and the offset it was written with, in minutes east of UTC.

    Raises
    ------
    ValueError
        ``text`` is not an ISO 8601 date-time.

    Examples
    --------
    >>> parse_timestamp("2013-05-18T07:32:34+02:00")
    (datetime.datetime(2013, 5, 18, 5, 32, 34, tzinfo=datetime.timezone.utc), 120)

    """
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise ValueError(f"{text!r} is not an ISO 8601 timestamp") from None
    offset = moment.utcoffset()
    if offset is None:
        return moment.replace(tzinfo=UTC), 0
    if not offset:
        return (moment if moment.tzinfo is UTC else moment.replace(tzinfo=UTC)), 0
    return moment.astimezone(UTC), offset // _MINUTE


def parse_duration(text: str) -> float:
    """Convert an ISO 8601 duration (xAPI ``result.duration``) to seconds.

    Results are cached (an export repeats the same durations). The usual ``PT#H#M#S`` form is
    read directly, several times faster than ``isodate``; anything else (days, weeks, fractional
    hours or minutes, the alternative ``PYYYY-MM-DDThh:mm:ss`` form) goes through ``isodate``.
    A year or month counts as the mean Gregorian one.

    Parameters
    ----------
    text
        The duration, e.g. ``"PT14M30S"``.

    Returns
    -------
    float
        Seconds, never negative.

    Raises
    ------
    ValueError
        ``text`` is not an ISO 8601 duration, or is negative.

    Examples
    --------
    >>> parse_duration("PT1H0M0S")
    3600.0
    >>> parse_duration("P1DT30M")
    88200.0

    """
    if type(text) is not str:
        raise ValueError(f"{text!r} is not an ISO 8601 duration (it is not text)")
    return _duration_seconds(text)


@functools.lru_cache(maxsize=1 << 16)
def _duration_seconds(text: str) -> float:
    seconds = _fast_duration(text)
    return seconds if seconds is not None else _isodate_duration(text)


def _fast_duration(text: str) -> float | None:
    """``PT#H#M#S`` (integer hours and minutes, decimal seconds) in seconds; None otherwise."""
    if not text.startswith("PT") or len(text) < 4 or not text.isascii():
        return None
    rest = text[2:]
    total = 0.0
    hours, sep, tail = rest.partition("H")
    if sep:
        if not hours.isdigit():
            return None
        total = int(hours) * 3600.0
        rest = tail
    minutes, sep, tail = rest.partition("M")
    if sep:
        if not minutes.isdigit():
            return None
        total += int(minutes) * 60.0
        rest = tail
    if rest:
        if rest[-1] != "S":
            return None
        whole, dot, frac = rest[:-1].partition(".")
        if not whole.isdigit() or (dot and not frac.isdigit()):
            return None
        total += float(rest[:-1])
    return total


def _isodate_duration(text: str) -> float:
    try:
        # isodate reads "PT" as zero and "P1DT" as a day; ISO 8601 wants a part after the T.
        if text.endswith("T"):
            raise ValueError(text)
        value = isodate.parse_duration(text)
    except (isodate.ISO8601Error, ValueError, TypeError, ArithmeticError):
        raise ValueError(f"{text!r} is not an ISO 8601 duration (such as PT14M30S)") from None
    if isinstance(value, isodate.Duration):
        seconds = (
            value.tdelta.total_seconds()
            + float(value.years) * _YEAR_SECONDS
            + float(value.months) * _MONTH_SECONDS
        )
    else:
        seconds = value.total_seconds()
    if seconds < 0:
        raise ValueError(f"{text!r} is a negative duration; time spent cannot be negative")
    return seconds


def actor_identities(actor: dict[str, Any]) -> list[Identity]:
    """Return the validated identities of an xAPI actor: an Agent's own, or a Group's members.

    An Agent, or an identified Group, must carry exactly one of ``mbox`` (a ``mailto:`` IRI,
    compared case-insensitively), ``mbox_sha1sum``, ``openid`` or ``account`` (``homePage`` and
    ``name``). A Group with members yields its members; an identified Group without members
    yields itself; an anonymous Group must list members.

    Parameters
    ----------
    actor
        The decoded JSON object of the actor.

    Returns
    -------
    list[Identity]
        One identity per learner, in the order given.

    Raises
    ------
    InvalidStatement
        The actor breaks one of the rules above; ``field`` says where (``actor.member[0]``).

    Examples
    --------
    >>> actor_identities({"mbox": "mailto:Ann@Example.com", "name": "Ann"})[0].key
    'mbox:ann@example.com'

    """
    identities, _, _ = _actor(actor, "actor")
    return [Identity(*ident) for ident in identities]


# --------------------------------------------------------------------------- validation


def _ifi(d: dict[str, Any], path: str) -> _Ident | None:
    """Return the Agent/Group's inverse functional identifier, or None when it has none."""
    mbox = d.get("mbox")
    sha = d.get("mbox_sha1sum")
    openid = d.get("openid")
    account = d.get("account")
    found = (mbox is not None) + (sha is not None) + (openid is not None) + (account is not None)
    if found == 0:
        return None
    if found > 1:
        given = [k for k in ("mbox", "mbox_sha1sum", "openid", "account") if d.get(k) is not None]
        raise InvalidStatement(
            path, f"has {' and '.join(given)}: an Agent or Group must have exactly one identifier"
        )
    name = d.get("name")
    if name is not None and type(name) is not str:
        raise InvalidStatement(f"{path}.name", "the name must be text")
    if mbox is not None:
        if type(mbox) is not str or mbox[:7].lower() != "mailto:":
            raise InvalidStatement(
                f"{path}.mbox", f"{mbox!r} is not a mailto: address (mbox must be mailto:<email>)"
            )
        email = mbox[7:].lower()
        local, at, domain = email.rpartition("@")
        if not at or not local or not domain:
            raise InvalidStatement(f"{path}.mbox", f"{mbox!r} does not hold an email address")
        return ("mbox:" + email, "mbox", email, None, None, name)
    if account is not None:
        if type(account) is not dict:
            raise InvalidStatement(f"{path}.account", "account must be an object")
        home = account.get("homePage")
        acc_name = account.get("name")
        if type(home) is not str or not home:
            raise InvalidStatement(f"{path}.account.homePage", "an account needs its homePage")
        if type(acc_name) is not str or not acc_name:
            raise InvalidStatement(f"{path}.account.name", "an account needs its name")
        return (f"account:{home}|{acc_name}", "account", None, acc_name, home, name)
    if sha is not None:
        if type(sha) is not str or len(sha) != 40 or sha.strip(_SHA1_CHARS):
            raise InvalidStatement(
                f"{path}.mbox_sha1sum", f"{sha!r} is not a SHA-1 hash (40 hexadecimal digits)"
            )
        return ("sha1:" + sha.lower(), "mbox_sha1sum", None, None, None, name)
    if type(openid) is not str or ":" not in openid:
        raise InvalidStatement(f"{path}.openid", f"{openid!r} is not an OpenID URI")
    return ("openid:" + openid, "openid", None, None, None, name)


def _actor(d: object, path: str) -> tuple[list[_Ident], bool, str | None]:
    """Validate an Agent or Group: (identities, is it a Group, the Group's own key)."""
    if type(d) is not dict:
        raise InvalidStatement(path, "must be an Agent or Group object")
    kind = d.get("objectType", "Agent")
    if kind == "Agent":
        ident = _ifi(d, path)
        if ident is None:
            raise InvalidStatement(
                path, "an Agent needs one of mbox, mbox_sha1sum, openid or account to say who it is"
            )
        return [ident], False, None
    if kind != "Group":
        raise InvalidStatement(f"{path}.objectType", f"{kind!r} is not Agent or Group")
    own = _ifi(d, path)
    members = d.get("member")
    if members is None or members == []:
        if own is None:
            raise InvalidStatement(
                path, "an anonymous Group (one without an identifier) must list its members"
            )
        return [own], True, own[0]
    if type(members) is not list:
        raise InvalidStatement(f"{path}.member", "member must be a list of Agents")
    idents: list[_Ident] = []
    for i, member in enumerate(members):
        where = f"{path}.member[{i}]"
        if type(member) is not dict:
            raise InvalidStatement(where, "a Group member must be an Agent object")
        if member.get("objectType", "Agent") != "Agent":
            raise InvalidStatement(f"{where}.objectType", "a Group's members must be Agents")
        ident = _ifi(member, where)
        if ident is None:
            raise InvalidStatement(
                where, "a Group member needs one of mbox, mbox_sha1sum, openid or account"
            )
        idents.append(ident)
    return idents, True, own[0] if own is not None else None


def _uuid(value: object) -> str | None:
    """Return ``value`` lower-cased when it is a hyphenated UUID, else None."""
    if type(value) is not str or len(value) != 36:
        return None
    return value.lower() if value.encode().translate(_UUID_TABLE) == _UUID_SHAPE else None


def _short_verb(verb_id: str) -> str:
    """Return the verb IRI's last segment (``completed`` for ``…/verbs/completed``)."""
    tail = verb_id.rstrip("/#")
    cut = max(tail.rfind("/"), tail.rfind("#"))
    if cut < 0:
        cut = tail.rfind(":")
    return tail[cut + 1 :] or verb_id


def _language(value: object, path: str) -> str | None:
    """Pick from a language map: en-US, then en, then the first language given."""
    if value is None:
        return None
    if type(value) is not dict:
        raise InvalidStatement(path, "must be a language map such as {\"en-US\": \"…\"}")
    text = value.get("en-US") or value.get("en")
    if not text:
        # Language tags are case-insensitive (RFC 5646): "en-us" is en-US.
        by_tag = {tag.lower(): v for tag, v in value.items()}
        text = by_tag.get("en-us") or by_tag.get("en")
        if not text:
            text = next((v for v in value.values() if type(v) is str and v), None)
    return text if type(text) is str else None


def _first_id(value: object, path: str) -> str | None:
    """Return the id of the first activity of a contextActivities entry (object or list)."""
    if value is None:
        return None
    # Fast path: a list whose first activity has an id, as LRSs write them.
    if (
        type(value) is list
        and value
        and type(first := value[0]) is dict
        and type(activity_id := first.get("id")) is str
        and activity_id
    ):
        return activity_id
    if type(value) is list:
        if not value:
            return None
        value = value[0]
        path += "[0]"
    if type(value) is not dict:
        raise InvalidStatement(path, "must be an Activity object")
    activity_id = value.get("id")
    if type(activity_id) is not str or not activity_id:
        raise InvalidStatement(f"{path}.id", "a context activity needs its id")
    return activity_id


def _number(value: object, path: str) -> None:
    """Raise unless ``value`` is a JSON number or absent (a boolean is not a number)."""
    if type(value) not in _NUMBER_OR_NONE:
        raise InvalidStatement(path, f"{value!r} is not a number")


def _object(
    obj: object, path: str, nested: bool
) -> tuple[str, str | None, str | None, str | None]:
    """Validate a statement's object: (objectType, activity_id, activity_name, activity_type)."""
    if type(obj) is not dict:
        raise InvalidStatement(path, "the object must be a JSON object")
    kind = obj.get("objectType", "Activity")
    if kind == "Activity":
        activity_id = obj.get("id")
        if type(activity_id) is not str or not activity_id:
            raise InvalidStatement(f"{path}.id", "an Activity needs an id (the activity's IRI)")
        if ":" not in activity_id:
            raise InvalidStatement(f"{path}.id", f"{activity_id!r} is not an IRI")
        definition = obj.get("definition")
        if definition is None:
            return kind, activity_id, None, None
        if type(definition) is not dict:
            raise InvalidStatement(f"{path}.definition", "the definition must be an object")
        name = _language(definition.get("name"), f"{path}.definition.name")
        activity_type = definition.get("type")
        if activity_type is not None and type(activity_type) is not str:
            raise InvalidStatement(f"{path}.definition.type", "the activity type must be an IRI")
        return kind, activity_id, name, activity_type
    if kind == "Agent" or kind == "Group":
        _actor(obj, path)
        return kind, None, None, None
    if kind == "StatementRef":
        target = obj.get("id")
        if target is None:
            raise InvalidStatement(f"{path}.id", "a StatementRef needs the id of the statement")
        ref = _uuid(target)
        if ref is None:
            raise InvalidStatement(f"{path}.id", f"{target!r} is not a statement id (a UUID)")
        return kind, ref, None, None
    if kind == "SubStatement":
        if nested:
            raise InvalidStatement(
                f"{path}.objectType", "a SubStatement cannot contain another SubStatement"
            )
        for part in _SPINE:
            if part not in obj:
                raise InvalidStatement(f"{path}.{part}", f"a SubStatement needs its own {part}")
        _actor(obj["actor"], f"{path}.actor")
        verb = obj["verb"]
        if type(verb) is not dict:
            raise InvalidStatement(f"{path}.verb", "the verb must be an object")
        if type(verb.get("id")) is not str or not verb["id"]:
            raise InvalidStatement(f"{path}.verb.id", "a verb needs an id (an IRI)")
        _object(obj["object"], f"{path}.object", True)
        return kind, None, None, None
    raise InvalidStatement(
        f"{path}.objectType",
        f"{kind!r} is not one of Activity, Agent, Group, StatementRef or SubStatement",
    )


# --------------------------------------------------------------------------- raw-text helpers


class _Repeats(dict[str, Any]):
    """A JSON object in which some key appeared more than once (seen by the slow re-parse)."""

    repeated: list[str]


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    d = dict(pairs)
    if len(d) == len(pairs):
        return d
    seen: set[str] = set()
    repeated: list[str] = []
    for key, _ in pairs:
        if key in seen:
            repeated.append(key)
        seen.add(key)
    marked = _Repeats(d)
    marked.repeated = repeated
    return marked


def _repeated_key(raw: bytes | str) -> str | None:
    """Return the path of the first key repeated within one object of ``raw``, or None.

    orjson keeps the last of repeated keys silently; the standard library's parser shows them,
    at several times the cost, so this runs only when the raw text looks suspicious.
    """
    try:
        value = json.loads(raw, object_pairs_hook=_pairs)
    except ValueError:
        return None
    todo: list[tuple[object, str]] = [(value, "")]
    while todo:
        node, path = todo.pop()
        if isinstance(node, dict):
            if isinstance(node, _Repeats):
                key = node.repeated[0]
                return f"{path}.{key}" if path else key
            todo.extend((v, f"{path}.{k}" if path else k) for k, v in reversed(node.items()))
        elif isinstance(node, list):
            todo.extend((v, f"{path}[{i}]") for i, v in reversed(list(enumerate(node))))
    return None


def _suspect(raw: bytes | str) -> bool:
    """Tell whether the raw text names actor, verb or object more than once.

    A key repeated in one object is invisible once orjson has parsed it, and a repeated
    ``actor`` (the conformance suite's ``multiple_actor``) would silently load the wrong
    learner. Counting three words in the raw bytes is cheap; a statement that trips it (a
    SubStatement does, legitimately) is re-parsed by :func:`_repeated_key`.
    """
    if isinstance(raw, str):
        raw = raw.encode()
    return raw.count(b'"actor"') > 1 or raw.count(b'"verb"') > 1 or raw.count(b'"object"') > 1


def _skip_ws(text: str, i: int) -> int:
    n = len(text)
    while i < n and text[i] in _JSON_WS:
        i += 1
    return i


_DECODER = json.JSONDecoder()


def _statement_spans(text: str) -> tuple[list[tuple[int, int]], str | None, int]:
    """Find where each statement of an array or LRS page starts and ends in ``text``.

    Returns the spans read before the first malformed element, the error there (None when the
    whole array was read) and the position the error starts at. Used to quote an element's raw
    text exactly and to recover the statements before the point where a file is truncated.
    """
    i = _skip_ws(text, 0)
    if text.startswith("[", i):
        start = i
    elif text.startswith("{", i):
        start = -1
        i = _skip_ws(text, i + 1)
        while i < len(text) and text[i] == '"':
            try:
                key, i = _DECODER.raw_decode(text, i)
                i = _skip_ws(text, i)
                if not text.startswith(":", i):
                    return [], "malformed JSON: expected ':' after a key", i
                i = _skip_ws(text, i + 1)
                if key == "statements" and text.startswith("[", i):
                    start = i
                    break
                _, i = _DECODER.raw_decode(text, i)
            except ValueError as exc:
                return [], f"malformed JSON: {exc}", i
            i = _skip_ws(text, i)
            if text.startswith(",", i):
                i = _skip_ws(text, i + 1)
        if start < 0:
            return [], "malformed JSON: no statements list found", i
    else:
        return [], "malformed JSON: the file starts with neither '[' nor '{'", i
    spans: list[tuple[int, int]] = []
    i = _skip_ws(text, start + 1)
    if text.startswith("]", i):
        return spans, None, i
    while True:
        try:
            _, end = _DECODER.raw_decode(text, i)
        except ValueError as exc:
            return spans, f"malformed JSON: {exc}", i
        spans.append((i, end))
        i = _skip_ws(text, end)
        if text.startswith(",", i):
            i = _skip_ws(text, i + 1)
        elif text.startswith("]", i):
            return spans, None, i
        else:
            what = "the file ends" if i >= len(text) else "expected ',' or ']'"
            return spans, f"malformed JSON: {what} after statement {len(spans)}", i


def _utf8_problem(data: bytes, offset: int = 0) -> str | None:
    """Say why ``data`` (found at ``offset`` in its file) is not UTF-8 text, or return None."""
    if data.isascii():
        return None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"byte 0x{data[exc.start]:02x} at offset {offset + exc.start} is not UTF-8"
    return None


def _describe(value: object) -> str:
    if isinstance(value, list):
        return "a JSON array"
    if isinstance(value, str):
        return "a JSON string"
    if value is None:
        return "JSON null"
    if isinstance(value, bool):
        return "a JSON boolean"
    return "a JSON number"


def _cap(text: str) -> str:
    if len(text) <= _RAW_LIMIT:
        return text
    return text[:_RAW_LIMIT] + f"… [cut: {len(text) - _RAW_LIMIT} more characters in the file]"


def _looks_like_statement(line: bytes) -> bool:
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return False
    return type(value) is dict and any(k in value for k in (*_SPINE, "id"))


# --------------------------------------------------------------------------- the reader


_Raw = bytes | str | Callable[[], str]


class _Reader:
    """Rows, ids seen, quarantine and counts of one ``read_xapi`` call (or of one block)."""

    def __init__(
        self,
        arrow_schema: pa.Schema,
        progress: Callable[[int], None] | None = None,
        workers: _Workers | None = None,
    ) -> None:
        self.schema = arrow_schema
        self.workers = workers or _Workers(1)
        self.rows: list[tuple[Any, ...]] = []
        self.batches: list[pa.RecordBatch] = []
        self.seen: set[str] = set()
        self.quarantine: list[QuarantineRow] = []
        self.notes: list[str] = []
        self.read = 0
        self.loaded = 0
        self.duplicate = 0
        self.progress = progress
        self.verbs: dict[str, str] = {}

    # ----------------------------------------------------------------- files

    def file(self, path: Path, rel: str) -> None:
        """Read one file, whichever of the four forms it has."""
        try:
            with path.open("rb") as fh:
                first, more = _first_lines(fh)
                if not first.strip():
                    self.notes.append(f"{rel}: empty file, no statements")
                    return
                # JSON lines when the first line is a whole JSON value and others follow; a
                # document spread over lines has a first line that does not parse alone.
                if more:
                    try:
                        orjson.loads(first)
                    except orjson.JSONDecodeError:
                        pass
                    else:
                        self.jsonl(path, rel, fh)
                        return
                fh.seek(0)
                data = fh.read().removeprefix(_BOM)
        except OSError as exc:
            raise SourceError(rel, f"cannot be read ({exc.strerror or exc})") from exc
        problem = _utf8_problem(data)
        if problem is not None:
            self.refuse(rel, problem, data)
            return
        self.document(data, rel, path)

    def refuse(self, rel: str, problem: str, data: bytes) -> None:
        """Quarantine a whole file that is not UTF-8 (line 0: no statement in it is counted)."""
        raw = data[:_RAW_LIMIT].decode("utf-8", "replace")
        self.reject(rel, 0, "", f"the file is not UTF-8 text ({problem}); save it as UTF-8 "
                    "and ingest it again", raw)
        self.notes.append(f"{rel}: refused, not UTF-8 ({problem})")

    def jsonl(self, path: Path, rel: str, fh: BinaryIO) -> None:
        """Read a JSON-lines file in blocks of whole lines, in worker processes when large.

        Blocks are merged only once all are read, so that a file with a block that is not
        UTF-8 is refused as a whole rather than half loaded.
        """
        spans = _blocks(fh)
        blocks: list[_Block] = []
        for block in self.workers.read(path, rel, spans, self.schema):
            if block.utf8_problem is not None:
                fh.seek(0)
                self.refuse(rel, block.utf8_problem, fh.read(_RAW_LIMIT))
                return
            blocks.append(block)
            if self.progress is not None:
                self.progress(self.read + sum(b.read for b in blocks))
        line_offset = 0
        for block in blocks:
            self.merge(block, line_offset)
            line_offset += block.newlines

    def merge(self, block: _Block, line_offset: int) -> None:
        """Add a block's results: number its lines in the file, drop ids loaded before it."""
        self.read += block.read
        self.loaded += block.loaded
        self.duplicate += block.duplicate
        self.quarantine.extend(
            replace(q, source_line=q.source_line + line_offset) for q in block.quarantine
        )
        seen = self.seen
        line_at = self.schema.get_field_index("source_line")
        for batch in block.batches:
            if line_offset:
                lines = pc.add(batch.column(line_at), pa.scalar(line_offset, pa.int64()))
                batch = batch.set_column(line_at, self.schema.field(line_at), lines)
            ids = batch.column(0).to_pylist()
            keep = [sid not in seen for sid in ids]
            if not all(keep):
                dropped = len({sid for sid, kept in zip(ids, keep, strict=True) if not kept})
                self.loaded -= dropped
                self.duplicate += dropped
                batch = batch.filter(pa.array(keep, pa.bool_()))
            seen.update(ids)
            self.batches.append(batch)

    def lines(self, numbered: Iterable[tuple[int, bytes]], rel: str) -> None:
        """Read JSON lines: one statement a line; blank lines are skipped."""
        take = self.take
        loads = orjson.loads
        decode_error = orjson.JSONDecodeError
        for lineno, line in numbered:
            try:
                value = loads(line)
            except decode_error as exc:
                if line.strip():
                    self.read += 1
                    self.reject(rel, lineno, "", f"malformed JSON: {exc}", line)
                continue
            # _suspect(line), inlined: this loop runs once per statement of a large export.
            suspect = (
                line.count(b'"actor"') > 1
                or line.count(b'"verb"') > 1
                or line.count(b'"object"') > 1
            )
            take(value, rel, lineno, line, suspect)

    def document(self, data: bytes, rel: str, path: Path) -> None:
        """Read a whole-file JSON document: one statement, an array, or an LRS page."""
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            self.malformed(data, rel, str(exc), path)
            return
        if type(value) is dict and not any(k in value for k in _SPINE):
            statements = value.get("statements")
            if type(statements) is list:
                more = value.get("more")
                if more:
                    self.notes.append(
                        f"{rel}: the LRS page says more statements are available ({more}); "
                        "only this page was read"
                    )
                self.elements(statements, data, rel)
                return
        if type(value) is list:
            self.elements(value, data, rel)
            return
        self.take(value, rel, 1, data, _suspect(data))

    def elements(self, values: list[Any], data: bytes, rel: str) -> None:
        """Read the statements of an array or page; statement ``i`` (from 0) is line ``i + 1``."""
        text = ""
        spans: list[tuple[int, int]] = []

        def span_text(i: int) -> str:
            nonlocal text, spans
            if not text:
                text = data.decode("utf-8")
                spans = _statement_spans(text)[0]
            if i < len(spans):
                return text[spans[i][0] : spans[i][1]]
            return orjson.dumps(values[i]).decode()

        # Cheap test on the whole text first: only when some element may repeat a key are the
        # elements' own texts located and tested one by one.
        suspicious = any(
            data.count(f'"{name}"'.encode())
            > sum(1 for v in values if type(v) is dict and name in v)
            for name in _SPINE
        )
        for i, value in enumerate(values):
            self.take(value, rel, i + 1, functools.partial(span_text, i),
                      suspicious and _suspect(span_text(i)))

    def malformed(self, data: bytes, rel: str, error: str, path: Path) -> None:
        """Read a document that does not parse: keep what precedes the fault, or JSON lines."""
        text = data.decode("utf-8")
        spans, fault, at = _statement_spans(text)
        if spans:
            for i, (start, end) in enumerate(spans):
                piece = text[start:end]
                self.take(orjson.loads(piece), rel, i + 1, piece, _suspect(piece))
            line = len(spans) + 1
            self.read += 1
            self.reject(rel, line, "", f"{fault or 'malformed JSON: ' + error}; statement "
                        f"{line} onwards could not be read", _cap(text[at:]))
            self.notes.append(f"{rel}: malformed after statement {len(spans)}; "
                              f"the first {len(spans)} statements were read")
            return
        # JSON lines whose first line is broken: the next line is a statement on its own.
        lines = data.split(b"\n")
        jsonl = path.suffix.lower() in (".jsonl", ".ndjson")
        if not jsonl:
            filled = [line for line in lines if line.strip()][1:2]
            jsonl = bool(filled) and _looks_like_statement(filled[0])
        if jsonl:
            self.lines(enumerate(lines, start=1), rel)
            return
        self.read += 1
        self.reject(rel, 1, "", f"malformed JSON: {error}", _cap(text))

    # ----------------------------------------------------------------- statements

    def take(self, value: object, rel: str, line: int, raw: _Raw, suspect: bool) -> None:
        """Check one statement and load it, count it as a duplicate, or quarantine it."""
        self.read += 1
        if type(value) is not dict:
            self.reject(rel, line, "", f"not an xAPI statement: {_describe(value)}, not an object",
                        raw)
            return
        if "actor" not in value and "verb" not in value and "object" not in value:
            keys = ", ".join(list(value)[:8]) or "none"
            self.reject(rel, line, "", "not an xAPI statement: a JSON object with none of actor, "
                        f"verb or object (its keys: {keys})", raw)
            return
        faults: list[tuple[str, str]] = []
        if suspect:
            repeated = _repeated_key(raw() if callable(raw) else raw)
            if repeated is not None:
                faults.append((repeated, f"the key {repeated.rsplit('.', 1)[-1]!r} appears more "
                               "than once in the same object, so the statement is ambiguous"))
        sid, rows = self.convert(value, rel, line, faults)
        if faults:
            for field, reason in faults:
                self.reject(rel, line, field, reason, raw)
            return
        if sid in self.seen:
            self.duplicate += 1
            return
        self.seen.add(sid)
        self.loaded += 1
        self.rows += rows
        if len(self.rows) >= _FLUSH_ROWS:
            self.flush()

    def convert(
        self, st: dict[str, Any], rel: str, line: int, faults: list[tuple[str, str]]
    ) -> tuple[str, list[tuple[Any, ...]]]:
        """Return the statement's id and rows; append each fault found to ``faults``.

        Every part (id, actor, verb, object, context, result, times, authority) is checked even
        after a fault in another, so the quarantine lists all that is wrong with a statement.
        The common shapes are checked inline; anything unusual goes through the helpers, which
        also word the faults.
        """
        get = st.get
        sid = get("id")
        if type(sid) is str and len(sid) == 36 and (
            sid.encode().translate(_UUID_TABLE) == _UUID_SHAPE
        ):
            sid = sid.lower()
        elif sid is None:
            canonical = orjson.dumps(st, option=orjson.OPT_SORT_KEYS)
            digest = hashlib.sha1(_NAMESPACE.bytes + canonical, usedforsecurity=False).digest()
            sid = str(uuid.UUID(bytes=digest[:16], version=5))
        else:
            faults.append(("id", f"{sid!r} is not a statement id (a UUID)"))
            sid = str(sid)

        # Fast path: an Agent with only a name and an mbox; anything else goes to _actor.
        idents: list[_Ident] = []
        group_key = None
        actor = get("actor")
        mbox = actor.get("mbox") if type(actor) is dict else None
        if (
            type(actor) is dict
            and type(mbox) is str
            and len(actor) == 1 + ("name" in actor) + ("objectType" in actor)
            and actor.get("objectType", "Agent") == "Agent"
            and ((name := actor.get("name")) is None or type(name) is str)
            and mbox[:7].lower() == "mailto:"
            and 0 < (email := mbox[7:].lower()).rfind("@") < len(email) - 1
        ):
            idents = [("mbox:" + email, "mbox", email, None, None, name)]
        elif actor is None:
            faults.append(("actor", "the statement has no actor (who did it)"))
        else:
            try:
                idents, is_group, own = _actor(actor, "actor")
                if is_group:
                    group_key = own or f"group:anonymous:{sid}"
            except InvalidStatement as exc:
                faults.append((exc.field, exc.reason))

        verb_id = verb = None
        v = get("verb")
        if type(v) is dict and type(verb_id := v.get("id")) is str and verb_id in self.verbs:
            verb = self.verbs[verb_id]
        elif v is None:
            faults.append(("verb", "the statement has no verb (what was done)"))
        elif type(v) is not dict:
            faults.append(("verb", "the verb must be an object with an id"))
        elif type(verb_id) is not str or not verb_id:
            faults.append(("verb.id", "the verb has no id (an IRI such as "
                           "http://adlnet.gov/expapi/verbs/completed)"))
            verb_id = None
        elif ":" not in verb_id:
            faults.append(("verb.id", f"{verb_id!r} is not an IRI"))
        else:
            verb = self.verbs[verb_id] = _short_verb(verb_id)

        # Fast path: an Activity with an en-US name (or none); anything else goes to _object.
        object_type = activity_id = activity_name = activity_type = None
        obj = get("object")
        definition = obj.get("definition") if type(obj) is dict else None
        names = definition.get("name") if type(definition) is dict else None
        if (
            type(obj) is dict
            and obj.get("objectType", "Activity") == "Activity"
            and type(activity_id := obj.get("id")) is str
            and ":" in activity_id
            and (
                definition is None
                or (
                    type(names) is dict
                    and type(activity_name := names.get("en-US")) is str
                    and activity_name
                    and type(activity_type := definition.get("type", "")) is str
                )
            )
        ):
            object_type = "Activity"
            if definition is not None:
                activity_type = definition.get("type")
        elif obj is None:
            faults.append(("object", "the statement has no object (what it was done to)"))
        else:
            try:
                object_type, activity_id, activity_name, activity_type = _object(
                    obj, "object", False
                )
            except InvalidStatement as exc:
                faults.append((exc.field, exc.reason))

        voided = None
        if verb_id == _VOIDED and object_type is not None:
            if object_type == "StatementRef":
                voided = activity_id
            else:
                faults.append(("object.objectType", "a voiding statement must have a "
                               "StatementRef object naming the statement it cancels"))

        parent_id = grouping_id = registration = None
        ctx = get("context")
        if ctx is not None:
            try:
                parent_id, grouping_id, registration = _context(ctx)
            except InvalidStatement as exc:
                faults.append((exc.field, exc.reason))

        scaled = raw_score = score_min = score_max = success = completion = duration = None
        result = get("result")
        if result is not None:
            try:
                scaled, raw_score, score_min, score_max, success, completion, duration = (
                    _result(result)
                )
            except InvalidStatement as exc:
                faults.append((exc.field, exc.reason))

        # Datetimes keep the zone they were written in (Arrow stores the UTC instant); a time
        # without a zone is UTC.
        timestamp = offset = stored = None
        text = get("timestamp")
        if text is not None:
            try:
                timestamp = _fromisoformat(text)
            except (TypeError, ValueError):
                faults.append(("timestamp", f"{text!r} is not an ISO 8601 timestamp"))
            else:
                zone = timestamp.tzinfo
                if zone is UTC:
                    offset = 0
                elif zone is None:
                    timestamp = timestamp.replace(tzinfo=UTC)
                    offset = 0
                else:
                    offset = _offset_minutes(zone, timestamp)
        text = get("stored")
        if text is not None:
            try:
                stored = _fromisoformat(text)
            except (TypeError, ValueError):
                faults.append(("stored", f"{text!r} is not an ISO 8601 timestamp"))
            else:
                zone = stored.tzinfo
                if zone is None:
                    stored = stored.replace(tzinfo=UTC)
                if timestamp is None:
                    timestamp = stored
                    offset = 0 if zone is UTC or zone is None else _offset_minutes(zone, stored)

        authority = get("authority")
        if authority is not None:
            try:
                _actor(authority, "authority")
            except InvalidStatement as exc:
                faults.append((exc.field, exc.reason))

        if faults:
            return sid, []
        common = (
            verb_id, verb, object_type, activity_id, activity_name, activity_type, parent_id,
            grouping_id, registration, scaled, raw_score, score_min, score_max, success,
            completion, duration, timestamp, offset, stored, voided, False, rel, line,
        )
        if len(idents) == 1:
            return sid, [(sid, *idents[0], group_key, *common)]
        return sid, [(sid, *ident, group_key, *common) for ident in idents]

    def reject(self, rel: str, line: int, field: str, reason: str, raw: _Raw) -> None:
        """Put a statement (or a whole file, line 0) in quarantine, with its raw text."""
        if callable(raw):
            raw = raw()
        elif isinstance(raw, bytes):
            raw = raw.decode("utf-8", "replace").removeprefix("\ufeff")
        self.quarantine.append(
            QuarantineRow(_SOURCE, rel, line, field, reason, _cap(raw.rstrip("\r\n")))
        )

    def flush(self) -> None:
        """Turn the rows collected so far into an Arrow record batch.

        Arrow reads the row tuples as one struct array, which turns rows into columns in C++
        (nearly twice as fast as transposing them in Python first).
        """
        if not self.rows:
            return
        rows = pa.array(self.rows, type=pa.struct(list(self.schema)))
        self.rows = []
        self.batches.append(pa.RecordBatch.from_struct_array(rows))

    def batch(self, files: int) -> Batch:
        """Return everything read as a :class:`Batch`."""
        self.flush()
        if self.progress is not None:
            self.progress(self.read)
        table = pa.Table.from_batches(self.batches, schema=self.schema)
        untimed = pc.count_distinct(
            pc.filter(table["statement_id"], pc.is_null(table["timestamp"]))
        ).as_py()
        if untimed:
            self.notes.append(
                f"{untimed} statement(s) have neither timestamp nor stored, so when they happened "
                "is unknown (an LRS sets both: these did not come straight from one)"
            )
        return Batch(
            source=_SOURCE,
            table=_TABLE,
            rows=table,
            rows_read=self.read,
            rows_loaded=self.loaded,
            quarantine=self.quarantine,
            rows_duplicate=self.duplicate,
            files=files,
            notes=self.notes,
        )


@functools.lru_cache(maxsize=256)
def _zone_minutes(zone: tzinfo) -> int:
    return zone.utcoffset(None) // _MINUTE  # type: ignore[operator]


def _offset_minutes(zone: tzinfo, moment: datetime) -> int:
    """Minutes east of UTC of ``moment`` (fixed-offset zones, as ISO 8601 writes them, cached)."""
    if type(zone) is timezone:
        return _zone_minutes(zone)
    return moment.utcoffset() // _MINUTE  # type: ignore[operator]


def _context(ctx: object) -> tuple[str | None, str | None, str | None]:
    """Check a statement's context: (first parent id, first grouping id, registration)."""
    if type(ctx) is not dict:
        raise InvalidStatement("context", "the context must be an object")
    registration = None
    reg = ctx.get("registration")
    if reg is not None:
        registration = _uuid(reg)
        if registration is None:
            raise InvalidStatement(
                "context.registration", f"{reg!r} is not a registration id (a UUID)"
            )
    activities = ctx.get("contextActivities")
    if activities is None:
        return None, None, registration
    if type(activities) is not dict:
        raise InvalidStatement("context.contextActivities", "contextActivities must be an object")
    return (
        _first_id(activities.get("parent"), "context.contextActivities.parent"),
        _first_id(activities.get("grouping"), "context.contextActivities.grouping"),
        registration,
    )


_Number = float | int | None
_ResultValues = tuple[_Number, _Number, _Number, _Number, bool | None, bool | None, float | None]


def _result(result: object) -> _ResultValues:
    """Check a result: (scaled, raw, min, max, success, completion, duration in seconds)."""
    if type(result) is not dict:
        raise InvalidStatement("result", "the result must be an object")
    scaled = raw = low = high = duration = None
    score = result.get("score")
    if score is not None:
        if type(score) is not dict:
            raise InvalidStatement("result.score", "the score must be an object")
        get = score.get
        scaled, raw, low, high = get("scaled"), get("raw"), get("min"), get("max")
        if (
            type(scaled) not in _NUMBER_OR_NONE
            or type(raw) not in _NUMBER_OR_NONE
            or type(low) not in _NUMBER_OR_NONE
            or type(high) not in _NUMBER_OR_NONE
        ):
            _number(scaled, "result.score.scaled")
            _number(raw, "result.score.raw")
            _number(low, "result.score.min")
            _number(high, "result.score.max")
        if scaled is not None and not -1.0 <= scaled <= 1.0:
            raise InvalidStatement("result.score.scaled", f"{scaled} is outside −1 to 1")
        if low is not None and high is not None and low > high:
            raise InvalidStatement("result.score.min", f"min {low} is above max {high}")
        if raw is not None and (
            (low is not None and raw < low) or (high is not None and raw > high)
        ):
            raise InvalidStatement(
                "result.score.raw", f"raw {raw} is outside min {low} to max {high}"
            )
    success = result.get("success")
    if success is not None and success is not True and success is not False:
        raise InvalidStatement("result.success", f"{success!r} is not true or false")
    completion = result.get("completion")
    if completion is not None and completion is not True and completion is not False:
        raise InvalidStatement("result.completion", f"{completion!r} is not true or false")
    text = result.get("duration")
    if text is not None:
        try:
            duration = parse_duration(text)
        except ValueError as exc:
            raise InvalidStatement("result.duration", str(exc)) from None
    return scaled, raw, low, high, success, completion, duration


# --------------------------------------------------------------------------- files


def _first_lines(fh: BinaryIO) -> tuple[bytes, bool]:
    """Return the first non-blank line (BOM removed) and whether another non-blank one follows."""
    first = b""
    for number, line in enumerate(fh):
        if number == 0:
            line = line.removeprefix(_BOM)
        if not line.strip():
            continue
        if first:
            return first, True
        first = line
    return first, False


def _blocks(fh: BinaryIO) -> list[tuple[int, int]]:
    """Cut an open file into byte ranges of about ``_BLOCK_BYTES`` that end after a newline."""
    size = fh.seek(0, os.SEEK_END)
    spans: list[tuple[int, int]] = []
    start = 0
    while start < size:
        end = start + _BLOCK_BYTES
        if end >= size:
            end = size
        else:
            fh.seek(end - 1)
            fh.readline()
            end = fh.tell()
        spans.append((start, end))
        start = end
    return spans


@dataclass
class _Block:
    """What one block of JSON lines yielded; its line numbers count from the block's start."""

    batches: list[pa.RecordBatch]
    quarantine: list[QuarantineRow]
    read: int
    loaded: int
    duplicate: int
    newlines: int
    utf8_problem: str | None = None


def _read_block(path: str, rel: str, start: int, end: int, arrow_schema: pa.Schema) -> _Block:
    """Read the JSON lines in bytes ``start`` to ``end`` of a file (in a worker process or not)."""
    with _gc_paused():
        with open(path, "rb") as fh:
            fh.seek(start)
            data = fh.read(end - start)
        newlines = data.count(b"\n")
        problem = _utf8_problem(data, start)
        if problem is not None:
            return _Block([], [], 0, 0, 0, newlines, problem)
        if start == 0:
            data = data.removeprefix(_BOM)
        reader = _Reader(arrow_schema)
        reader.lines(enumerate(data.split(b"\n"), start=1), rel)
        reader.flush()
        return _Block(
            reader.batches, reader.quarantine, reader.read, reader.loaded, reader.duplicate,
            newlines,
        )


_BLOCK_TIMEOUT_S = 300.0
"""A block of 16 MiB parses in about a second; five minutes means a worker is stuck."""


class _Workers:
    """Reads the blocks of large JSON-lines files in worker processes, one per CPU.

    Parsing is CPU-bound Python, so a second core halves the time of a large export. Workers
    are forked (Linux only): no interpreter start, no re-import of the caller's main module
    (a fork server or spawn would demand an ``if __name__ == "__main__"`` guard of every
    script that ingests), nothing to pickle but the results. The caller holds idle thread
    pools (DuckDB, Arrow, Polars) when it forks; a worker only parses bytes into Arrow and
    touches none of their state. Should a worker still hang or die, the block times out and
    the rest of the file is read in this process, so an ingest never waits forever.
    """

    def __init__(self, count: int) -> None:
        self.count = count
        self.executor: ProcessPoolExecutor | None = None

    def read(
        self, path: Path, rel: str, spans: list[tuple[int, int]], arrow_schema: pa.Schema
    ) -> Iterator[_Block]:
        done = 0
        size = spans[-1][1] if spans else 0
        if self.count > 1 and len(spans) > 1 and size >= _PARALLEL_MIN_BYTES:
            try:
                with warnings.catch_warnings():
                    # Python 3.12+ warns about forking a process that has threads (the first
                    # submit forks); see the class docstring for why these workers are safe.
                    warnings.simplefilter("ignore", DeprecationWarning)
                    executor = self._start()
                    futures = [
                        executor.submit(_read_block, str(path), rel, s, e, arrow_schema)
                        for s, e in spans
                    ]
                for future in futures:
                    block = future.result(timeout=_BLOCK_TIMEOUT_S)
                    done += 1
                    yield block
                return
            except (OSError, BrokenProcessPool, FuturesTimeout) as exc:
                self.count = 1  # no processes to be had, or a stuck one: read the rest here
                self.close(kill=isinstance(exc, FuturesTimeout))
        for s, e in spans[done:]:
            yield _read_block(str(path), rel, s, e, arrow_schema)

    def _start(self) -> ProcessPoolExecutor:
        if self.executor is None:
            context = multiprocessing.get_context("fork")
            self.executor = ProcessPoolExecutor(self.count, mp_context=context)
        return self.executor

    def close(self, *, kill: bool = False) -> None:
        if self.executor is not None:
            if kill:  # a stuck worker would never finish: end it rather than wait (3.11 has no API)
                for process in list(getattr(self.executor, "_processes", {}).values()):
                    process.kill()
            self.executor.shutdown(wait=not kill, cancel_futures=True)
            self.executor = None


def _worker_count() -> int:
    if sys.platform != "linux" or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return max(1, min(len(os.sched_getaffinity(0)), _MAX_WORKERS))


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while reading.

    Parsing allocates millions of short-lived dicts and keeps up to ``_FLUSH_ROWS`` row tuples;
    the collector would walk them over and over (about 7% of the reading time on a 300,000
    statement file), while nothing read here forms a reference cycle, so reference counting
    frees it all anyway.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def read_xapi(
    files: Sequence[tuple[Path, str]], *, progress: Callable[[int], None] | None = None
) -> Batch:
    """Read xAPI statement files into a batch for the ``lms_statement`` table.

    Each file may be JSON lines, one statement, a JSON array of statements or an LRS page
    (``{"statements": [...], "more": "..."}``), whatever its extension. A statement's
    ``source_line`` is its line in a JSON-lines file, its position (from 1) in an array or
    page, and 1 for a file holding one statement; a file that is not UTF-8 is quarantined as a
    whole with line 0 and counts no statements. On Linux, JSON-lines files of 32 MiB or more
    are read by one worker process per CPU.

    Parameters
    ----------
    files
        ``(path, name relative to the data folder)`` pairs; the name is what rows and
        quarantine report as ``source_file``.
    progress
        Called with the number of statements read so far, after each 16 MiB block of a
        JSON-lines file, and once at the end (for a progress display).

    Returns
    -------
    Batch
        ``source="xapi"``, ``table="lms_statement"``; ``rows_read`` counts statements,
        ``rows_loaded`` the statements loaded (a Group's statement is one statement but one row
        per member), ``rows_duplicate`` repeated statement ids.

    Raises
    ------
    SourceError
        A file cannot be opened or read at all.

    Examples
    --------
    >>> batch = read_xapi([(Path("data/lms/statements.jsonl"), "lms/statements.jsonl")])
    ... # doctest: +SKIP
    >>> batch.rows_read == batch.rows_loaded + batch.rows_quarantined + batch.rows_duplicate
    ... # doctest: +SKIP
    True

    """
    workers = _Workers(_worker_count())
    reader = _Reader(schema.table(_TABLE).schema.to_pyarrow(), progress, workers)
    try:
        with _gc_paused():
            for path, rel in files:
                reader.file(Path(path), rel)
            return reader.batch(len(files))
    finally:
        workers.close()
