"""The staging folder: pages fetched and not yet loaded, and the cursor to the next page.

Each source has a folder laid out like an export (``<staging>/<source>/lms/sync/<source>/…``), so
the ingest reads it as it reads a folder a user hands over. A page is written whole under a
temporary name and renamed, then the cursor (``cursor.json``: the chain's ``since``, the next page's
number and link, the highest position fetched) is rewritten the same way. A sync killed at any
moment therefore leaves whole pages and a cursor that is at most one page behind them: the next
sync loads the pages on disk and goes on from the cursor, fetching again at most the page that
was in flight. Pages are removed only once the warehouse's watermark covers them.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from training_roi.sync.source import Source

__all__ = ["Cursor", "Stage"]


@dataclass
class Cursor:
    """Where a chain of pages stands: the ``since`` it began with, how many pages were asked for, the next link.

    ``high`` is the latest stored time fetched in the chain and ``recent`` the ``[stored, id]`` of the
    records stored just before it: together they become the watermark once the pages are loaded.
    """

    endpoint: str
    chain: str
    since: str | None
    index: int = 0
    next: str | None = None
    high: str | None = None
    recent: list[list[str]] = field(default_factory=list)

    @property
    def done(self) -> bool:
        """Whether the chain's last page was fetched."""
        return self.index > 0 and self.next is None


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file or the new one, never part of one."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


class Stage:
    """One source's staging folder."""

    def __init__(self, root: Path, source: Source) -> None:
        self.root = root / source.name
        self.source = source
        self.pages_dir = self.root / source.folder
        self.cursor_path = self.root / "cursor.json"

    def pending(self) -> list[Path]:
        """Pages on disk, not yet covered by the watermark, in the order they were fetched."""
        if not self.pages_dir.is_dir():
            return []
        return sorted(p for p in self.pages_dir.iterdir() if p.suffix == self.source.suffix and p.is_file())

    def read_cursor(self) -> Cursor | None:
        """The cursor a previous sync left, or None (no chain under way, or an unreadable cursor)."""
        try:
            data: dict[str, Any] = orjson.loads(self.cursor_path.read_bytes())
            return Cursor(**data)
        except (OSError, orjson.JSONDecodeError, TypeError):
            return None

    def write_cursor(self, cursor: Cursor) -> None:
        """Save the cursor (atomically)."""
        self.root.mkdir(parents=True, exist_ok=True)
        _atomic_write(self.cursor_path, orjson.dumps(asdict(cursor)))

    def write_page(self, records: list[dict[str, Any]], chain: str, index: int) -> Path:
        """Write one page's records (atomically) as ``<chain>-<index>`` in the source's folder."""
        self.pages_dir.mkdir(parents=True, exist_ok=True)
        path = self.pages_dir / f"{chain}-{index:06d}{self.source.suffix}"
        tmp = path.with_name(f".{path.name}.tmp")
        with tmp.open("wb") as fh:
            self.source.write(records, fh)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)
        return path

    def remove(self, pages: list[Path]) -> None:
        """Delete loaded pages."""
        for page in pages:
            with contextlib.suppress(FileNotFoundError):
                page.unlink()

    def clear(self) -> None:
        """Forget every page and the cursor (the source's endpoint changed: they belong to another server)."""
        self.remove(self.pending())
        with contextlib.suppress(FileNotFoundError):
            self.cursor_path.unlink()


def chain_name(since: datetime | None) -> str:
    """A chain's name, from its ``since``: sortable, and the same when the same chain is fetched again."""
    if since is None:
        return "all"
    return since.strftime("%Y%m%dT%H%M%S%fZ")
