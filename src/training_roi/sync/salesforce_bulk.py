"""Salesforce's Bulk API 2.0 for large objects: one query job per chain, its results read as pages of CSV.

Where the REST API answers a query with pages of at most 2,000 records, one request each, a bulk query
job runs the query on Salesforce's side and hands the result over in sets of up to ``maxRecords``
records. For a chain the client:

1. creates the job, ``POST /services/data/vXX.X/jobs/query`` with ``{"operation": "queryAll",
   "query": …, "contentType": "CSV", "columnDelimiter": "COMMA", "lineEnding": "LF"}`` (so deleted
   records arrive, as with the REST path);
2. asks ``GET /jobs/query/<id>`` until its ``state`` is ``JobComplete``, waiting ``bulk_poll`` seconds,
   then twice as long each time (at most a minute), for at most ``bulk_timeout`` seconds in all (then
   the job is aborted); ``Failed`` or ``Aborted`` fails the sync with the job's ``errorMessage``;
3. reads ``GET /jobs/query/<id>/results?maxRecords=N[&locator=…]``: each answer is one page, a CSV
   with a header row, ``Sforce-NumberOfRecords`` records and, in ``Sforce-Locator``, the locator of the
   next set (the string ``null`` after the last one). An answer with fewer rows than it announces (cut
   short) is asked for again;
4. deletes the job (``DELETE /jobs/query/<id>``) when the sync ends, once its last set is staged and
   loaded (Salesforce keeps a job's results, which count against the org's daily bulk storage, for
   days otherwise). A sync killed before then leaves the job, which the next sync reads on from.

The query is the REST path's without ``ORDER BY``: Salesforce's reference says a bulk query must not
order (ordering turns off the chunking that makes bulk queries fast), so a job's results come in no
particular order. The watermark therefore moves only once a job's last set is read (the source says
its chain is not ``ordered``); a chain cut short, killed or failed, leaves the watermark where it was.
The next-page token is the chain's horizon, the job's id and the next locator: a sync resuming a
killed one goes on reading the same job, and when the job is gone (Salesforce deletes jobs after
seven days) the runner loads what was fetched and starts a new chain from the watermark.
"""

from __future__ import annotations

import contextlib
import csv
import io
from typing import TYPE_CHECKING, Any

import httpx

from training_roi.errors import SyncError
from training_roi.sync.http import safe_url, whole_json

if TYPE_CHECKING:
    from training_roi.sync.salesforce import SalesforceSession

__all__ = ["BULK", "BulkQuery"]

BULK = "bulk"
"""The word after the horizon that marks a bulk chain's next-page token."""
_WAITING = ("UploadComplete", "InProgress")
_LONGEST_POLL = 60.0


class BulkQuery:
    """Bulk API 2.0 query jobs of one org: create, wait for, read in sets, delete."""

    def __init__(self, session: SalesforceSession) -> None:
        self.session = session
        self.config = session.config

    @property
    def jobs(self) -> str:
        """The query jobs' root."""
        return f"{self.session.api}/jobs/query"

    def start(self, soql: str) -> str:
        """Create a ``queryAll`` job for ``soql`` and wait until it is complete; its id.

        Raises
        ------
        SyncError
            The org refuses the job, the job fails or is aborted, or it is not complete within
            ``bulk_timeout`` seconds (it is then aborted).
        """
        body = self.session.send("POST", self.jobs, json={
            "operation": "queryAll", "query": soql, "contentType": "CSV", "columnDelimiter": "COMMA",
            "lineEnding": "LF"}, check=whole_json).json()
        job = body.get("id") if isinstance(body, dict) else None
        if not isinstance(job, str) or not job:
            raise SyncError(f"{safe_url(self.jobs)} answered a job without an id")
        self.wait(job, str(body.get("state", "")))
        return job

    def wait(self, job: str, state: str) -> None:
        """Poll the job until it is complete, with a doubling wait, for at most ``bulk_timeout`` seconds."""
        waited, pause = 0.0, self.config.bulk_poll
        while state in _WAITING or not state:
            if waited >= self.config.bulk_timeout:
                self.abort(job)
                raise SyncError(f"the bulk query job {job} was not complete after {waited:g} s (bulk_timeout "
                                f"{self.config.bulk_timeout:g}): it was aborted, and the next sync asks again")
            pause = min(pause, self.config.bulk_timeout - waited, _LONGEST_POLL)
            self.session.sleep(pause)
            waited += pause
            pause = max(pause * 2, 0.5)
            info = self.session.get(f"{self.jobs}/{job}")
            state = str(info.get("state", "")) if isinstance(info, dict) else ""
            if state in ("Failed", "Aborted"):
                said = self.session.http.mask(str(info.get("errorMessage") or "no errorMessage given"))
                raise SyncError(f"the bulk query job {job} ended {state}: {said[:300]}; the next sync "
                                "asks again from the records loaded")
        if state != "JobComplete":
            raise SyncError(f"the bulk query job {job} is in a state the sync does not know: {state[:40]!r}")

    def results(self, job: str, locator: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """One set of the job's results (the first when ``locator`` is None) and the next set's locator."""
        params = {"maxRecords": str(self.config.bulk_page_size)}
        if locator:
            params["locator"] = locator
        parsed: list[list[dict[str, Any]]] = []

        def whole(response: httpx.Response) -> str | None:
            try:
                records = _records(response.text)
            except ValueError:
                return "answered a set of results that is not whole CSV (cut short?)"
            announced = response.headers.get("sforce-numberofrecords")
            if announced is not None and announced.isdigit() and int(announced) != len(records):
                return f"answered {len(records):,} of the {int(announced):,} records it announced (cut short?)"
            parsed[:] = [records]
            return None

        response = self.session.send("GET", f"{self.jobs}/{job}/results", params=params,
                                     headers={"Accept": "text/csv"}, check=whole)
        following = response.headers.get("sforce-locator", "null")
        return parsed[0], None if following in ("", "null") else following

    def abort(self, job: str) -> None:
        """Abort a job that takes too long (best effort: it expires anyway)."""
        with contextlib.suppress(SyncError):
            self.session.send("PATCH", f"{self.jobs}/{job}", json={"state": "Aborted"})

    def delete(self, job: str) -> None:
        """Delete a job whose results are all read (best effort: Salesforce deletes old jobs itself)."""
        with contextlib.suppress(SyncError):
            self.session.send("DELETE", f"{self.jobs}/{job}")


def _records(text: str) -> list[dict[str, Any]]:
    """A results set's rows as records: the header's fields, an empty value as null.

    Raises
    ------
    ValueError
        A quoted value or a row is cut short.
    """
    try:
        rows = [row for row in csv.reader(io.StringIO(text), strict=True) if row]
    except csv.Error as exc:
        raise ValueError(str(exc)) from None
    if not rows:
        return []
    header, body = rows[0], rows[1:]
    if any(len(row) != len(header) for row in body):
        raise ValueError("a row has fewer or more values than the header")
    return [{f: (v if v != "" else None) for f, v in zip(header, row, strict=True)} for row in body]
