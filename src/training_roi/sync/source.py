"""What a live source is to the sync: pages of records in order of when the source stored them.

The runner (:mod:`.runner`) knows nothing of xAPI or of a CRM's API. A source fetches pages, says
where each record stands in the order the source stored them (a time and an id, for the watermark),
and writes records as a file of the export the product already ingests, so that synced data goes
through the same validation, quarantine and merge by key as a folder given to ``training-roi ingest``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any, Protocol

from training_roi.ingest.mapping import Mapping

__all__ = ["Page", "Source", "write_csv"]


@dataclass(frozen=True)
class Page:
    """One answer of a source: its records, and the token of the next page (None at the end)."""

    records: list[dict[str, Any]]
    next: str | None


class Source(Protocol):
    """A live source the runner can pull incrementally.

    ``name`` names it in the warehouse (its watermark and run log) and in the staging folder;
    ``folder`` is where its pages go in the export's layout (``lms/sync/<name>``) and ``suffix`` their
    extension, so the ingest reads them as the kind of file they are. ``load_every`` is how many new
    records are staged before a load (and the watermark moves); ``overlap`` the seconds before the
    watermark asked for again, for records stored with the same or a nearly equal time. ``mapping``
    tells the ingest where the pages are when they are not at the contract's own file names. A source
    whose chain of pages comes in no particular order says so with an ``ordered`` attribute that is
    false: the runner then moves its watermark only at the chain's end.
    """

    name: str
    kind: str
    folder: str
    suffix: str
    load_every: int
    overlap: float
    mapping: Mapping | None

    def describe(self) -> str:
        """Where the source is, as it may be printed: a URL without credentials."""
        ...

    def fetch(self, since: datetime | None, next_page: str | None) -> Page:
        """The first page of records stored after ``since`` (all when None), or the page ``next_page`` names."""
        ...

    def position(self, record: dict[str, Any]) -> tuple[datetime, str] | None:
        """When the source stored ``record``, and its id; None when the record says neither usably."""
        ...

    def write(self, records: list[dict[str, Any]], out: IO[bytes]) -> None:
        """Write ``records`` as the file the ingest reads for this kind of source."""
        ...

    @property
    def requests(self) -> int:
        """HTTP requests sent so far (retries included)."""
        ...

    def close(self) -> None:
        """Release the connections."""
        ...


def write_csv(out: IO[bytes], header: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """Write a CRM page as the contract's export CSV (UTF-8, a header row) to ``out``, which stays open."""
    text = io.TextIOWrapper(out, encoding="utf-8", newline="")
    writer = csv.writer(text)
    writer.writerow(header)
    writer.writerows(rows)
    text.flush()
    text.detach()
