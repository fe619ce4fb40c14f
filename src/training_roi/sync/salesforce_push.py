"""Salesforce as a push target: current values read by SOQL on ids, changes sent as sObject Collections updates.

Reading asks ``SELECT Id, <fields> FROM <Object> WHERE Id IN ('…', …)`` on ``/query``, a few
hundred ids at a time (the query stays well under the URL's length), following ``nextRecordsUrl``.
Writing sends ``PATCH /services/data/vXX.X/composite/sobjects`` with ``allOrNone: false`` and at
most 200 records, so one refused record does not hold back the others; Salesforce answers one
SaveResult per record, in the order sent, whose ``errors`` (``statusCode``, ``message``,
``fields``) become the record's error. The org's session (OAuth, retries, ``Sforce-Limit-Info``
and its limit share, error bodies) is the sync's own :class:`~training_roi.sync.salesforce.SalesforceSession`.
"""

from __future__ import annotations

import re
from typing import Any

from training_roi.errors import SyncError
from training_roi.sync.config import SalesforceConfig
from training_roi.sync.http import safe_url
from training_roi.sync.push import BATCH_LIMIT, PushConfig, RecordChange, WriteResult, batches
from training_roi.sync.salesforce import SalesforceSession

__all__ = ["SalesforceTarget"]

READ_IDS = 200
"""Ids per SOQL query: 200 ids of 18 characters keep the query's URL near 5,000 characters."""
_ID = re.compile(r"^[A-Za-z0-9]{15,18}$|^[\w-]{1,40}$")


def _describe_errors(errors: Any) -> str:
    """A SaveResult's errors in words: ``FIELD_INTEGRITY_EXCEPTION: message (fields: A__c)``."""
    if not isinstance(errors, list) or not errors:
        return "refused without an error"
    said = []
    for e in errors:
        if not isinstance(e, dict):
            continue
        fields = e.get("fields") or []
        where = f" (fields: {', '.join(map(str, fields))})" if isinstance(fields, list) and fields else ""
        said.append(f"{e.get('statusCode', 'UNKNOWN')}: {e.get('message', '')}{where}")
    return "; ".join(said) or "refused without an error"


class SalesforceTarget:
    """One object (``User`` or ``Contact``) of one org, written by id."""

    kind = "salesforce"

    def __init__(self, config: SalesforceConfig, push: PushConfig, config_path: str, **options: Any) -> None:
        self.session = SalesforceSession(config, config_path, **options)
        self.name = config.name
        self.object = push.object
        self.batch_size = min(push.batch_size, BATCH_LIMIT)

    def describe(self) -> str:
        """The collections endpoint and the object, without credentials."""
        return f"{safe_url(self.session.api)}/composite/sobjects ({self.object})"

    def read(self, ids: list[str], fields: list[str]) -> dict[str, dict[str, Any]]:
        """The records' current values, ``READ_IDS`` ids per query.

        Raises
        ------
        SyncError
            An id that cannot be a Salesforce id, or the org refused the query (``INVALID_FIELD``
            for a field the object does not have).
        """
        bad = next((i for i in ids if not _ID.match(i)), None)
        if bad is not None:
            raise SyncError(f"{bad!r} is not a Salesforce record id: the warehouse's CRM ids come from another CRM?")
        select = ", ".join(["Id", *(f for f in fields if f != "Id")])
        found: dict[str, dict[str, Any]] = {}
        for chunk in batches(ids, READ_IDS):
            quoted = ", ".join(f"'{i}'" for i in chunk)
            body = self.session.get(f"{self.session.api}/query",
                                    {"q": f"SELECT {select} FROM {self.object} WHERE Id IN ({quoted})"})
            while True:
                records = body.get("records") if isinstance(body, dict) else None
                if not isinstance(records, list):
                    raise SyncError(f"{safe_url(self.session.api)} answered JSON that is not a query result")
                for record in records:
                    if isinstance(record, dict) and isinstance(record.get("Id"), str):
                        found[record["Id"]] = record
                more = body.get("nextRecordsUrl")
                if body.get("done", True) or not isinstance(more, str):
                    break
                body = self.session.get(f"{self.session.config.instance_url}{more}")
        return found

    def write(self, records: list[RecordChange]) -> list[WriteResult]:
        """One sObject Collections update of ``records`` (``allOrNone`` false); one result per record."""
        self.session.check_limit()
        body = {"allOrNone": False, "records": [
            {"attributes": {"type": self.object}, "id": r.record_id, **r.values()} for r in records]}
        answer = self.session.http.send_json("PATCH", f"{self.session.api}/composite/sobjects", body=body)
        if not isinstance(answer, list) or len(answer) != len(records):
            raise SyncError(f"{safe_url(self.session.api)}/composite/sobjects answered something that is not one "
                            f"SaveResult per record ({len(records)} sent)")
        return [WriteResult(True) if isinstance(a, dict) and a.get("success") is True
                else WriteResult(False, self.session.http.mask(_describe_errors(a.get("errors")
                                                                                if isinstance(a, dict) else None)))
                for a in answer]

    def close(self) -> None:
        """Close the org's connections."""
        self.session.close()
