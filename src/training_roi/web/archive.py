"""A zip archive sent to the server to be ingested: received within a size limit, checked, unpacked safely.

An admin sends an export folder — the files ``training-roi ingest DATA_DIR`` reads — as one zip
archive. Before anything of it reaches the warehouse it is held to limits and unpacked into a folder
of the server's own:

* **its size**: the archive is at most :attr:`Limits.archive_bytes` (``serve --max-archive-mib``),
  counted as it arrives, so a larger one is refused (413) without being kept;
* **its paths**: no member may name an absolute path, a drive, or a ``..`` step out of the folder,
  nor be a symbolic link or encrypted;
* **what it unpacks to**: at most :attr:`Limits.members` members and :attr:`Limits.unpacked_bytes` in
  all (16 times the archive's limit), and no member larger than 1 MiB may unpack to more than
  :attr:`Limits.ratio` times its packed size — a zip bomb (a small archive that unpacks to terabytes)
  is refused before it fills the disk. The bytes are counted as they are written, not taken from the
  archive's own (forgeable) account of them;
* **what it holds**: at least one file the ingest reads (:func:`training_roi.ingest.folder.ingest_plan`).
  An archive of the folder itself (``export/crm/User.csv``) is read from that folder.

Every refusal is an :class:`ArchiveError` naming the archive and what is wrong, with the HTTP status it
is answered with; nothing is left on disk and nothing is written to the warehouse.
"""

from __future__ import annotations

import shutil
import stat
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from training_roi.errors import SourceError, TrainingRoiError
from training_roi.ingest.folder import CONTRACT_FILES, ingest_plan

__all__ = ["MIB", "ArchiveError", "Limits", "Unpacked", "receive", "unpack"]

MIB = 1 << 20
_CHUNK = MIB
_SKIPPED = "__MACOSX"
"""The folder of resource forks macOS adds to the archives it makes: never part of an export."""


class ArchiveError(TrainingRoiError):
    """An archive refused, and why; ``status`` is the HTTP status the refusal is answered with (413 or 422)."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Limits:
    """How large an archive may be, and what it may unpack to."""

    archive_bytes: int = 1024 * MIB
    members: int = 10_000
    ratio: int = 250

    @property
    def unpacked_bytes(self) -> int:
        """The most its members may unpack to, in all: 16 times the archive's limit."""
        return 16 * self.archive_bytes

    def too_large(self, name: str) -> ArchiveError:
        """The refusal of an archive larger than :attr:`archive_bytes` (413)."""
        return ArchiveError(f"{name} is larger than the {self.archive_bytes:,} bytes an archive sent to be "
                            "ingested may have (serve --max-archive-mib): load it with `training-roi ingest` on "
                            "the server's machine, or send the sources in several archives", status=413)


@dataclass(frozen=True)
class Unpacked:
    """An archive unpacked: the folder it went to, the data folder in it, and the sources the ingest will read."""

    folder: Path
    data: Path
    sources: tuple[str, ...]
    files: int


async def receive(chunks: AsyncIterator[bytes], target: BinaryIO, limits: Limits, name: str) -> int:
    """Write a request's body into ``target`` as it arrives; its size, or :meth:`Limits.too_large` past the limit."""
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limits.archive_bytes:
            raise limits.too_large(name)
        target.write(chunk)
    return size


def _member_path(info: zipfile.ZipInfo, name: str) -> PurePosixPath | None:
    """Where a member goes inside the folder (None: skipped), or an :class:`ArchiveError` for an unsafe one."""
    text = info.filename.replace("\\", "/")
    path = PurePosixPath(text)
    if text.startswith("/") or (len(text) > 1 and text[1] == ":") or ".." in path.parts:
        raise ArchiveError(f"{name}: the member {info.filename!r} names a path outside the archive's folder "
                           "(an absolute path, a drive or ..): such an archive is refused")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise ArchiveError(f"{name}: the member {info.filename!r} is a symbolic link: an export holds files only")
    if info.flag_bits & 0x1:
        raise ArchiveError(f"{name}: the member {info.filename!r} is encrypted: send the archive without a password")
    parts = [p for p in path.parts if p not in ("", ".")]
    if not parts or parts[0] == _SKIPPED or info.is_dir():
        return None
    return PurePosixPath(*parts)


def _check(members: list[zipfile.ZipInfo], limits: Limits, name: str) -> None:
    """Refuse an archive whose own account of its members already breaks a limit (before unpacking anything)."""
    if len(members) > limits.members:
        raise ArchiveError(f"{name} has {len(members):,} members; an archive sent to be ingested may have "
                           f"{limits.members:,}")
    declared = sum(m.file_size for m in members)
    if declared > limits.unpacked_bytes:
        raise ArchiveError(f"{name} unpacks to {declared:,} bytes, more than the {limits.unpacked_bytes:,} an "
                           "archive sent to be ingested may unpack to: it looks like a zip bomb, and is refused")
    for m in members:
        if m.file_size > MIB and m.file_size > limits.ratio * max(m.compress_size, 1):
            raise ArchiveError(f"{name}: the member {m.filename!r} unpacks to {m.file_size:,} bytes from "
                               f"{m.compress_size:,}, more than {limits.ratio:,} times its size: it looks like a "
                               "zip bomb, and is refused")


def _copy(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, budget: int, name: str) -> int:
    """Unpack one member into ``target``, at most ``budget`` bytes; the bytes written."""
    written = 0
    target.parent.mkdir(parents=True, exist_ok=True)
    with archive.open(info) as source, target.open("wb") as out:
        while chunk := source.read(_CHUNK):
            written += len(chunk)
            if written > budget:
                raise ArchiveError(f"{name} unpacks to more than the bytes an archive sent to be ingested may "
                                   "unpack to: it looks like a zip bomb, and is refused")
            out.write(chunk)
    return written


def _data_folder(folder: Path, name: str) -> tuple[Path, list[tuple[str, list[tuple[Path, str]]]]]:
    """The folder the ingest reads — the archive's top, or the one folder it holds — and the ingest's plan of it."""
    entries = list(folder.iterdir())
    candidates = [folder] + ([entries[0]] if len(entries) == 1 and entries[0].is_dir() else [])
    for data in candidates:
        try:
            return data, ingest_plan(data)
        except SourceError:
            continue
    raise ArchiveError(f"{name} holds none of the files `training-roi ingest` reads ({CONTRACT_FILES}), at its top "
                       "or in the one folder it holds: see docs/data-contract.md")


def unpack(archive_path: Path, folder: Path, limits: Limits, name: str) -> Unpacked:
    """Check the archive and unpack it into ``folder`` (created); an :class:`ArchiveError` leaves nothing behind."""
    try:
        try:
            with zipfile.ZipFile(archive_path) as archive:
                members = archive.infolist()
                places = [(m, _member_path(m, name)) for m in members]
                _check(members, limits, name)
                folder.mkdir(parents=True)
                budget = limits.unpacked_bytes
                root = folder.resolve()
                for info, place in places:
                    if place is None:
                        continue
                    target = folder / place
                    if not target.resolve().is_relative_to(root):  # a link on the way out: never written through
                        raise ArchiveError(f"{name}: the member {info.filename!r} names a path outside the "
                                           "archive's folder: such an archive is refused")
                    budget -= _copy(archive, info, target, budget, name)
        except zipfile.BadZipFile as exc:
            raise ArchiveError(f"{name} is not a zip archive that can be read ({exc}): send the export folder "
                               "zipped") from None
        except (zipfile.LargeZipFile, NotImplementedError, EOFError, OSError) as exc:
            raise ArchiveError(f"{name} cannot be unpacked: {exc}") from None
        data, plan = _data_folder(folder, name)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return Unpacked(folder, data, tuple(source for source, _ in plan), sum(len(files) for _, files in plan))
