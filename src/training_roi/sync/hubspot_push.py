"""HubSpot as a push target: contacts' custom properties, read and updated in batches of 100.

Before anything is read, the object's properties (``GET /crm/v3/properties/<object>``) are checked
for every property mapped: one the account does not have stops the push before any write, as
HubSpot would refuse it later (400 ``VALIDATION_ERROR``, ``PROPERTY_DOESNT_EXIST``). Current values
come from ``POST /crm/v3/objects/<object>/batch/read`` (``properties`` and ``inputs`` of ids, at most
100 per request; an unknown id is an error of a 207 answer, and is left out). Changes go to
``POST /crm/v3/objects/<object>/batch/update``, at most 100 records: HubSpot answers 200 with
``results``, or 207 Multi-Status with ``results`` for the records written and ``errors`` (each naming
its records in ``context.ids``) for those refused; a record in neither (a contact merged into another
comes back under the other's id) is failed as not answered for. A checkbox is written ``true``/``false``, a date
as 2026-12-05, an empty fact as an empty value (which clears the property).

Reps cannot be pushed to HubSpot: owners hold no properties, and the users object
(``/crm/v3/objects/users``) takes only the user properties HubSpot defines (working hours, time
zone, job title, phone numbers), none a custom property; :func:`training_roi.sync.push.check_unit`
says so. The account's session (token, retries, daily limit, error bodies) is the sync's own
:class:`~training_roi.sync.hubspot.HubSpotSession`.
"""

from __future__ import annotations

from typing import Any

from training_roi.errors import SyncError
from training_roi.sync.config import HubSpotConfig
from training_roi.sync.http import safe_url
from training_roi.sync.hubspot import HubSpotSession
from training_roi.sync.push import PushConfig, RecordChange, Value, WriteResult, batches

__all__ = ["BATCH_LIMIT", "HubSpotTarget"]

BATCH_LIMIT = 100
"""The most inputs of one batch read or update."""


def _value(value: Value) -> str:
    """A fact as HubSpot takes it: text, ``true``/``false``, or empty to clear the property."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _errors(answer: dict[str, Any], sent: list[str]) -> dict[str, str]:
    """Record id → its error in words (``VALIDATION_ERROR: message``), from a 207 answer's ``errors``.

    An error is the error of the records its ``context.ids`` names, and of no other; one naming none is
    the error of the one record sent, when only one was.
    """
    out: dict[str, str] = {}
    for error in answer.get("errors") or []:
        if not isinstance(error, dict):
            continue
        said = f"{error.get('category') or 'ERROR'}: {' '.join(str(error.get('message', '')).split())[:300]}"
        context = error.get("context")
        ids = context.get("ids") if isinstance(context, dict) else None
        named = [str(rid) for rid in ids] if isinstance(ids, list) else []
        for rid in named or (sent if len(sent) == 1 else []):
            out.setdefault(rid, said)
    return out


class HubSpotTarget:
    """One object (``contacts``) of one HubSpot account, written by record id."""

    kind = "hubspot"

    def __init__(self, config: HubSpotConfig, push: PushConfig, config_path: str, **options: Any) -> None:
        self.session = HubSpotSession(config, config_path, **options)
        self.name = config.name
        self.object = push.object
        self.batch_size = min(push.batch_size, BATCH_LIMIT)
        self.path = f"/crm/v3/objects/{push.object}"

    def describe(self) -> str:
        """The batch update endpoint, without credentials."""
        return f"{safe_url(self.session.config.base_url)}{self.path}/batch/update"

    def _check_properties(self, fields: list[str]) -> None:
        answer = self.session.call("GET", f"/crm/v3/properties/{self.object}")
        known = {p.get("name") for p in answer.get("results") or [] if isinstance(p, dict)}
        lacking = [f for f in fields if f not in known]
        if lacking:
            raise SyncError(f"HubSpot's {self.object} have no property {', '.join(lacking)} "
                            "(PROPERTY_DOESNT_EXIST): create it in the account's property settings, or map the fact "
                            "to the internal name of an existing property")

    def read(self, ids: list[str], fields: list[str]) -> dict[str, dict[str, Any]]:
        """The records' current values, 100 ids per batch read.

        Raises
        ------
        SyncError
            An id that cannot be a HubSpot record id, a property the object lacks, or HubSpot refused.
        """
        bad = next((i for i in ids if not i.isdigit()), None)
        if bad is not None:
            raise SyncError(f"{bad!r} is not a HubSpot record id: the warehouse's CRM ids come from another CRM?")
        self._check_properties(fields)
        found: dict[str, dict[str, Any]] = {}
        for chunk in batches(ids, BATCH_LIMIT):
            answer = self.session.call("POST", f"{self.path}/batch/read", body={
                "properties": fields, "inputs": [{"id": i} for i in chunk]})
            results = answer.get("results")
            if not isinstance(results, list):
                raise SyncError(f"{safe_url(self.session.config.base_url)}{self.path}/batch/read answered without "
                                "results")
            for record in results:
                if isinstance(record, dict) and record.get("id") is not None:
                    props = record.get("properties")
                    found[str(record["id"])] = props if isinstance(props, dict) else {}
        return found

    def write(self, records: list[RecordChange]) -> list[WriteResult]:
        """One batch update of ``records``; written are those in ``results``, refused those in ``errors``."""
        body = {"inputs": [{"id": r.record_id, "properties": {k: _value(v) for k, v in r.values().items()}}
                           for r in records]}
        answer = self.session.call("POST", f"{self.path}/batch/update", body=body)
        results = answer.get("results")
        if not isinstance(results, list):
            raise SyncError(f"{self.describe()} answered without results ({len(records)} record(s) sent)")
        done = {str(r.get("id")) for r in results if isinstance(r, dict)}
        errors = _errors(answer, [r.record_id for r in records])
        return [WriteResult(True) if r.record_id in done else
                WriteResult(False, self.session.http.mask(errors.get(r.record_id)
                                                          or "not among the records HubSpot answered for"))
                for r in records]

    def close(self) -> None:
        """Close the account's connections."""
        self.session.close()
