"""One xAPI statement checked against the parts of xAPI 1.0.3 the analysis relies on, and turned into rows.

:func:`statement_rows` checks who did it (the actor, see :mod:`.actor`), what they did (the
verb), to what (the object: an Activity, Agent, Group, StatementRef or SubStatement), in which
context, with which result, when, and on whose authority, and gives one ``lms_statement`` row per
learner. It runs once per statement of an export of millions: the usual shapes are checked
inline, and the functions here check and word everything else.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

from training_roi.errors import InvalidStatement
from training_roi.ingest.xapi.actor import Ident, check_actor
from training_roi.ingest.xapi.times import offset_minutes, parse_duration

__all__ = ["SPINE", "statement_rows"]

SPINE = ("actor", "verb", "object")
"""The three parts every statement has; a JSON object with none of them is not a statement."""
_VOIDED = "http://adlnet.gov/expapi/verbs/voided"

# Statements without an id get uuid5(_NAMESPACE, canonical JSON): fixed forever, so that
# re-ingesting the same file gives the same ids.
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:training-roi:xapi-statement")
# Every byte maps to "?" except hex digits ("x") and "-": a UUID then reads as _UUID_SHAPE.
_UUID_TABLE = bytes(
    ord("x") if chr(b) in "0123456789abcdefABCDEF" else b if b == ord("-") else ord("?")
    for b in range(256)
)
_UUID_SHAPE = b"xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
_fromisoformat = datetime.fromisoformat
# Arrow stores a JSON integer in a float64 column as is, so ints need no conversion here.
_NUMBER_OR_NONE = (float, int, type(None))


def statement_rows(
    st: dict[str, Any], rel: str, line: int, faults: list[tuple[str, str]], verbs: dict[str, str]
) -> tuple[str, list[tuple[Any, ...]]]:
    """Return the statement's id and rows; append each fault found to ``faults``.

    Every part (id, actor, verb, object, context, result, times, authority) is checked even
    after a fault in another, so the quarantine lists all that is wrong with a statement.
    The common shapes are checked inline; anything unusual goes through the helpers below,
    which also word the faults. A row holds the ``lms_statement`` columns in schema order, with
    ``rel`` and ``line`` as its source file and line; ``verbs`` caches each verb IRI's short
    name across the statements of one read.
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

    # Fast path: an Agent with only a name and an mbox; anything else goes to check_actor.
    idents: list[Ident] = []
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
            idents, is_group, own = check_actor(actor, "actor")
            if is_group:
                group_key = own or f"group:anonymous:{sid}"
        except InvalidStatement as exc:
            faults.append((exc.field, exc.reason))

    verb_id = verb = None
    v = get("verb")
    if type(v) is dict and type(verb_id := v.get("id")) is str and verb_id in verbs:
        verb = verbs[verb_id]
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
        verb = verbs[verb_id] = _short_verb(verb_id)

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

    timestamp, offset = _moment(get("timestamp"), "timestamp", faults)
    stored, stored_offset = _moment(get("stored"), "stored", faults)
    if timestamp is None:
        timestamp, offset = stored, stored_offset

    authority = get("authority")
    if authority is not None:
        try:
            check_actor(authority, "authority")
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



def _moment(
    text: Any, field: str, faults: list[tuple[str, str]]
) -> tuple[datetime | None, int | None]:
    """Read ``timestamp`` or ``stored``: (the datetime, its offset in minutes east of UTC).

    The datetime keeps the zone it was written in (Arrow stores the UTC instant); a time
    without a zone is UTC. Absent gives (None, None); not ISO 8601 adds a fault, then the same.
    """
    if text is None:
        return None, None
    try:
        moment = _fromisoformat(text)
    except (TypeError, ValueError):
        faults.append((field, f"{text!r} is not an ISO 8601 timestamp"))
        return None, None
    zone = moment.tzinfo
    if zone is UTC:
        return moment, 0
    if zone is None:
        return moment.replace(tzinfo=UTC), 0
    return moment, offset_minutes(zone, moment)


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
        check_actor(obj, path)
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
        for part in SPINE:
            if part not in obj:
                raise InvalidStatement(f"{path}.{part}", f"a SubStatement needs its own {part}")
        check_actor(obj["actor"], f"{path}.actor")
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
