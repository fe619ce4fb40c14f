"""The answers ``training-roi report`` keeps beside a DuckDB warehouse, to give again without evaluating.

Evaluating a study takes seconds to minutes on a large warehouse; a second run of the same study on
the same warehouse by the same product gives the same answer, so it is kept in a folder beside the
warehouse file (``roi.duckdb.answers/``), one entry per key, each holding the answer's files, the
console panel (pickled Rich renderables, laid out to the terminal's width when printed, and the text
printed to the latest few console looks, written again as is) and the ``--json`` document. The key
covers everything the answer depends on:

* the study as evaluated: the validated study (``--method`` applied) as canonical JSON, and the
  SHA-256 of every file it reads (``comparison.holdout_file``);
* the warehouse's version: the size, modification and change times (ns), device and inode of the
  DuckDB file and of its write-ahead log; every write changes one of them, a read changes none;
* the product: its version, the path, size and modification time of every file of the installed
  package, the Python version and the modification time of the site-packages folders (an installed
  or removed library changes it).

A warehouse that is not a DuckDB file (an Ibis URL such as ``postgres://…``) has no cheap version:
its answers are never kept; nor are any where a folder's owner cannot be checked (Windows).
Finding an answer must be fast, so this module imports neither the
study nor the evaluation nor the presenters: a run remembers which study file (path, bytes, the
files it read, ``--method``) led to its key, and a later run with the same ones finds the entry
without validating the study again.

Entries are written whole into a temporary folder and renamed into place, so a stopped run never
leaves half an entry; an entry whose files are missing or changed is not served. The
:data:`KEEP` most recently used entries are kept, within :data:`BUDGET` bytes. The folder must be
the user's own and writable by nobody else, since its panels are unpickled.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from training_roi.product import product_fingerprint
from training_roi.warehouse.target import duckdb_file

__all__ = ["BUDGET", "KEEP", "STAGES", "AnswerCache", "Entry", "Request", "answer_cache", "product_fingerprint",
           "reused", "stages_of", "warehouse_version"]

KEEP = 8
"""How many answers a warehouse's cache keeps at most: the most recently used ones."""

BUDGET = 2 << 30
"""Bytes a warehouse's cache may hold (2 GiB): older answers go first; the newest is always kept.

An entry is a copy of the answer's files, about 550 MB for a 20,000-rep org with its attribution
table, so a large org keeps fewer than :data:`KEEP`.
"""

FORMAT = 1
"""The layout of an entry; a product that lays entries out differently does not read older ones."""

SUFFIX = ".answers"
STAGES = "stages"
"""The folder, among the entries, of the measurements a changed study reuses (:mod:`training_roi.evaluation.stages`)."""
MANIFEST = "manifest.json"
PANEL = "panel.pickle"
DOCUMENT = "document.json"
_PLACED = 4
"""Output folders per entry whose files are remembered as placed (left there when unchanged)."""
_RENDERS = 4
"""Console looks (width, colours, encoding) per entry whose printed panel is kept."""
_REQUESTS = 8
"""Study files (path, bytes, method) per entry remembered as leading to it."""
_STALE_SECONDS = 3600.0
"""A temporary folder older than this is a stopped run's, removed by the next run that stores."""


def warehouse_version(file: Path) -> dict[str, Any]:
    """The version of a DuckDB file and of its write-ahead log if present: size, times (ns), device, inode.

    DuckDB files grow in whole blocks, so a write often leaves the size as it was, and a copy made
    with its times kept (``cp -p``, ``rsync -a``, an archive) or a file system with coarse times can
    give another file the same modification time: the change time (which no copy can set) and the
    inode tell those apart.

    Raises
    ------
    OSError
        The file cannot be read (it does not exist).
    """
    st = file.stat()
    try:
        wal = Path(f"{file}.wal").stat()
        log: list[int] | None = [wal.st_size, wal.st_mtime_ns, wal.st_ctime_ns, wal.st_dev, wal.st_ino]
    except FileNotFoundError:
        log = None
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns, "dev": st.st_dev,
            "ino": st.st_ino, "wal": log}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _stat(path: Path) -> list[int]:
    """What changes when a file is written or replaced: inode, size, modification and change times (ns)."""
    st = path.stat()
    return [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


@dataclass(frozen=True)
class Request:
    """A run's study as given: the file (absolute path and SHA-256), ``--method`` and ``--files-outside-study``."""

    study: str
    sha256: str
    method: str | None
    files_outside_study: bool

    @classmethod
    def of(cls, study_file: Path, method: str | None, files_outside_study: bool) -> Request | None:
        """The request for ``study_file``; None when the file cannot be read (loading it then says why)."""
        try:
            return cls(os.path.abspath(study_file), _sha256(study_file), method, files_outside_study)
        except OSError:
            return None

    def reads(self, names: Mapping[str, str]) -> bool:
        """Whether each file the study names (by name as written → SHA-256) holds what it held."""
        base = Path(self.study).parent.resolve()
        try:
            return all(_sha256((base / name).resolve()) == digest for name, digest in names.items())
        except OSError:
            return False

    def record(self, reads: Mapping[str, str]) -> dict[str, Any]:
        """The request as a manifest keeps it, with the files the study read."""
        return {"study": self.study, "sha256": self.sha256, "method": self.method,
                "files_outside_study": self.files_outside_study, "reads": dict(reads)}

    def matches(self, record: Mapping[str, Any]) -> bool:
        """Whether ``record`` (of :meth:`record`) is this request, its study's files unchanged."""
        return (record.get("study"), record.get("sha256"), record.get("method"),
                record.get("files_outside_study")) == (self.study, self.sha256, self.method,
                                                       self.files_outside_study) \
            and self.reads(record.get("reads") or {})


def study_reads(study_file: Path, holdout_file: str | None) -> dict[str, str]:
    """The files a validated study read, by name as written → SHA-256 (its ``comparison.holdout_file``)."""
    if not holdout_file:
        return {}
    return {holdout_file: _sha256((study_file.parent.resolve() / holdout_file).resolve())}


def answer_key(study: dict[str, Any], reads: Mapping[str, str], version: Mapping[str, Any], product: str) -> str:
    """The key of an answer: the SHA-256 of canonical JSON of what the answer depends on.

    That is the validated study (``model_dump(mode="json")``, ``--method`` applied), the SHA-256 of the
    files it read, the warehouse's version and the product's fingerprint.
    """
    text = json.dumps({"format": FORMAT, "study": study, "reads": dict(reads), "warehouse": dict(version),
                       "product": product}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Entry:
    """A kept answer: its folder and manifest."""

    folder: Path
    manifest: dict[str, Any]

    @property
    def key(self) -> str:
        """The answer's key (the folder's name)."""
        return self.folder.name

    def files(self, out_dir: Path) -> dict[str, Path]:
        """The answer's files by what they are, as they are named in ``out_dir``."""
        return {what: out_dir / name for what, name, _ in self.manifest["files"]}

    def document(self) -> str:
        """The ``--json`` document, as a run that evaluated printed it."""
        return (self.folder / str(self.manifest["document"])).read_text(encoding="utf-8")

    def panel(self) -> Any:
        """The console panel: Rich renderables, to be laid out to the terminal's width."""
        return pickle.loads((self.folder / PANEL).read_bytes())  # the user's own folder (:meth:`AnswerCache._usable`)

    def rendered(self, look: str) -> str | None:
        """The panel as printed before to a console of this ``look`` (:func:`console_look`); None if never."""
        try:
            held = (self.manifest.get("renders") or {}).get(_digest(look))
            if held is None or _entry_stat(self.folder / held[0]) != held[1]:
                return None
            return (self.folder / str(held[0])).read_text(encoding="utf-8")
        except (OSError, TypeError, ValueError, IndexError, AttributeError):
            return None

    def whole(self) -> bool:
        """Whether every file of the entry is there as written (size and modification time)."""
        try:
            held = [*((name, stat) for _, name, stat in self.manifest["files"]), *self.manifest["own"].items()]
            return all(_entry_stat(self.folder / name) == stat for name, stat in held)
        except (OSError, TypeError, ValueError, KeyError, AttributeError):
            return False

    def described(self, db: str) -> str:
        """One line saying that the answer came from the cache, and which warehouse version it matched."""
        version = self.manifest["warehouse"]
        when = datetime.fromtimestamp(version["mtime_ns"] / 1e9, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        log = " and its write-ahead log" if version.get("wal") else ""
        return (f"answer from the cache (key {self.key[:12]}): {db} unchanged since {when} "
                f"({version['size']:,} bytes){log}, same study, same product; --fresh evaluates again")


def console_look(console: Any) -> str | None:
    """What a Rich console's printing depends on besides what it prints; None for a console printed otherwise.

    Its width and height, colour system, encoding, whether it is a terminal (a dumb one), and
    whether colour is off. A Windows legacy console or a notebook writes through its own
    calls, so its output is never kept.
    """
    if console.legacy_windows or console.is_jupyter:
        return None
    return json.dumps([console.width, console.height, console.color_system, console.encoding, console.is_terminal,
                       console.is_dumb_terminal, console.no_color])


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _entry_stat(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


class AnswerCache:
    """The answers kept beside one DuckDB warehouse file."""

    def __init__(self, db: str, file: Path) -> None:
        self.db = db
        self.file = file
        self.folder = Path(f"{file}{SUFFIX}")
        self.version = warehouse_version(file)
        self.product = product_fingerprint()

    def _usable(self) -> bool:
        """Whether the folder exists, is the user's own and writable by nobody else (its pickles are loaded)."""
        try:
            st = self.folder.stat()
        except OSError:
            return False
        owner = getattr(os, "getuid", None)
        return owner is None or (st.st_uid == owner() and not st.st_mode & 0o022)

    def _entries(self) -> list[Entry]:
        """Every readable entry of this format, most recently used first."""
        if not self._usable():
            return []
        found: list[tuple[int, Entry]] = []
        try:
            folders = [f for f in self.folder.iterdir() if not f.name.startswith(".")]
        except OSError:
            return []
        for folder in folders:
            try:
                path = folder / MANIFEST
                manifest = json.loads(path.read_text(encoding="utf-8"))
                used = path.stat().st_mtime_ns
            except (OSError, ValueError):
                continue
            if isinstance(manifest, dict) and manifest.get("format") == FORMAT and manifest.get("key") == folder.name:
                found.append((used, Entry(folder, manifest)))
        return [e for _, e in sorted(found, key=lambda pair: pair[0], reverse=True)]

    def _current(self, entry: Entry) -> bool:
        return entry.manifest.get("warehouse") == self.version and entry.manifest.get("product") == self.product

    def find_request(self, request: Request) -> Entry | None:
        """The whole entry a run with the same study file, method and warehouse stored or found; None if none."""
        for entry in self._entries():
            try:
                if (self._current(entry) and any(request.matches(r) for r in entry.manifest.get("requests") or ())
                        and entry.whole()):
                    return entry
            except (AttributeError, TypeError, ValueError, KeyError):  # a manifest of another shape: not this one
                continue
        return None

    def find(self, key: str) -> Entry | None:
        """The whole entry of ``key``; None if there is none (or it is not whole)."""
        for entry in self._entries():
            if entry.key == key and self._current(entry) and entry.whole():
                return entry
        return None

    def put(self, entry: Entry, out_dir: Path, request: Request | None, reads: Mapping[str, str]) -> dict[str, Path]:
        """Put the entry's files into ``out_dir``; return them by what they are.

        A file this entry placed there before and that nobody changed since (same inode, size,
        modification and change times) is left; every other is copied from the entry. The entry is
        then marked used, with where its files now are and the request that found it.
        """
        out_dir.mkdir(parents=True, exist_ok=True)
        where = os.path.abspath(out_dir)
        placed: dict[str, Any] = dict(entry.manifest.get("placed", {}).get(where, {}))
        for _, name, _ in entry.manifest["files"]:
            target = out_dir / name
            try:
                same = _stat(target) == placed.get(name)
            except OSError:
                same = False
            if not same:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(entry.folder / name, target)
            placed[name] = _stat(target)
        manifest = dict(entry.manifest)
        manifest["placed"] = _placed(manifest.get("placed", {}), where, placed)
        if request is not None and not any(request.matches(r) for r in manifest.get("requests", ())):
            manifest["requests"] = [request.record(reads), *manifest.get("requests", ())][:_REQUESTS]
        with contextlib.suppress(OSError):  # not marked used: the entry is still served, and may go sooner
            if manifest == entry.manifest:
                os.utime(entry.folder / MANIFEST)  # used now; rewriting the same manifest would cost more
            else:
                _write_manifest(entry.folder, manifest)
        return entry.files(out_dir)

    def stages(self, *, fresh: bool = False) -> Any:
        """The measurements kept beside this warehouse (:class:`~training_roi.evaluation.stages.StageStore`).

        ``fresh``: every measurement is made again (and kept). They may take twice the warehouse file's
        size, or 2 GiB if more: one study of a 100,000-rep org keeps 2.7 GB. Imports the evaluation:
        for a miss only.
        """
        from training_roi.evaluation.stages import BUDGET, StageStore

        version = json.dumps([self.version, self.product], sort_keys=True)
        return StageStore(self.folder / STAGES, version, read=not fresh, budget=max(BUDGET, 2 * self.version["size"]))

    def keep_render(self, key: str, look: str, text: str) -> None:
        """Keep the panel of entry ``key`` as printed to a console of this ``look``, to print it again as is.

        The :data:`_RENDERS` latest looks are kept. Nothing happens when the entry is gone or cannot be written.
        """
        folder = self.folder / key
        try:
            manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
            name = f"panel-{_digest(look)[:16]}.txt"
            fd, temp = tempfile.mkstemp(prefix=".render-", dir=folder)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(temp, folder / name)
            renders = {_digest(look): [name, _entry_stat(folder / name)]}
            for digest, held in manifest.get("renders", {}).items():
                if len(renders) < _RENDERS and digest not in renders:
                    renders[digest] = held
            for stale in {h[0] for h in manifest.get("renders", {}).values()} - {h[0] for h in renders.values()}:
                (folder / stale).unlink(missing_ok=True)
            _write_manifest(folder, {**manifest, "renders": renders})
        except (OSError, ValueError, TypeError, AttributeError):
            return

    def store(self, key: str, files: Mapping[str, Path], out_dir: Path, panel: Any, document: str,
              request: Request | None, reads: Mapping[str, str]) -> Path:
        """Keep an answer just written into ``out_dir`` (``files``) under ``key``; return its folder.

        Written into a temporary folder and renamed into place (replacing an entry of the same key),
        then the least recently used entries beyond :data:`KEEP` are removed.

        Raises
        ------
        OSError
            The folder cannot be created or written, or is not the user's own.
        """
        try:
            self.folder.mkdir(mode=0o700, exist_ok=True)
        except OSError as exc:
            raise OSError(f"cannot create {self.folder} ({exc.strerror or exc})") from exc
        if not self._usable():
            raise PermissionError(f"{self.folder} is not only yours to write (it is another user's, or others may "
                                  "write into it)")
        try:
            return self._store(key, files, out_dir, panel, document, request, reads)
        except OSError as exc:
            raise OSError(f"cannot write into {self.folder} ({exc.strerror or exc})") from exc

    def _store(self, key: str, files: Mapping[str, Path], out_dir: Path, panel: Any, document: str,
               request: Request | None, reads: Mapping[str, str]) -> Path:
        self._sweep()
        temp = Path(tempfile.mkdtemp(prefix=".new-", dir=self.folder))
        try:
            listed: list[list[Any]] = []
            where = os.path.abspath(out_dir)
            placed = {}
            for what, path in files.items():
                name = Path(os.path.relpath(path, out_dir)).as_posix()
                if name.startswith("../"):
                    raise OSError(f"{path} is not in {out_dir}")
                (temp / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, temp / name)
                listed.append([what, name, _entry_stat(temp / name)])
                placed[name] = _stat(path)
            (temp / PANEL).write_bytes(pickle.dumps(panel, protocol=pickle.HIGHEST_PROTOCOL))
            own = {PANEL: _entry_stat(temp / PANEL)}
            result = next((str(name) for what, name, _ in listed if what == "result"), None)
            if result is not None and (temp / result).read_bytes() == document.encode("utf-8"):
                document_name = result
            else:
                (temp / DOCUMENT).write_text(document, encoding="utf-8")
                document_name = DOCUMENT
                own[DOCUMENT] = _entry_stat(temp / DOCUMENT)
            manifest = {"format": FORMAT, "key": key, "warehouse": self.version, "product": self.product,
                        "requests": [request.record(reads)] if request is not None else [],
                        "files": listed, "own": own, "document": document_name,
                        "placed": {where: placed}}
            _write_manifest(temp, manifest)
            final = self.folder / key
            if final.exists():
                _remove(final)
            temp.rename(final)
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise
        self._keep()
        return final

    def _keep(self) -> None:
        """Remove the least recently used entries beyond :data:`KEEP` or :data:`BUDGET` (and what is not an entry)."""
        kept: set[str] = set()
        held = 0
        for entry in self._entries()[:KEEP]:
            held += _size(entry.folder)
            if kept and held > BUDGET:
                break
            kept.add(entry.folder.name)
        for folder in self.folder.iterdir():
            if not folder.name.startswith(".") and folder.name not in kept and folder.name != STAGES:
                _remove(folder)

    def _sweep(self) -> None:
        """Remove what stopped runs left: temporary folders older than an hour."""
        now = time.time()
        for folder in self.folder.glob(".*"):
            try:
                if now - folder.stat().st_mtime > _STALE_SECONDS:
                    _discard(folder)
            except OSError:
                continue


def _size(folder: Path) -> int:
    """The bytes of the files in ``folder`` and below."""
    total = 0
    for root, _, names in os.walk(folder):
        for name in names:
            with contextlib.suppress(OSError):
                total += os.path.getsize(os.path.join(root, name))
    return total


def _placed(placed: Mapping[str, Any], where: str, files: dict[str, Any]) -> dict[str, Any]:
    """The output folders' placed files, ``where`` first, the :data:`_PLACED` most recent kept."""
    kept = {where: files}
    for folder, known in placed.items():
        if folder != where and len(kept) < _PLACED:
            kept[folder] = known
    return kept


def _write_manifest(folder: Path, manifest: Mapping[str, Any]) -> None:
    """Write the manifest whole (a temporary file renamed over it); its modification time marks the entry used."""
    fd, name = tempfile.mkstemp(prefix=".manifest-", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(manifest, fh, sort_keys=True)
        os.replace(name, folder / MANIFEST)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def _remove(folder: Path) -> None:
    """Remove an entry: renamed out of sight first, so that no run finds half of it."""
    gone = folder.with_name(f".old-{folder.name}-{os.getpid()}")
    try:
        folder.rename(gone)
    except OSError:
        return
    _discard(gone)


def _discard(path: Path) -> None:
    """Remove a folder and what it holds, or a file, as far as possible."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()


def stages_of(db: str) -> Any:
    """The measurements kept beside the warehouse ``db`` names; None when it has no answer cache."""
    cache = answer_cache(db)
    return cache.stages() if cache is not None else None


_STAGE_NAMES = {"window_panels": "the windows' panels", "compute": "the application KPIs",
                "attribute_study": "the attribution", "_unit_months": "the monthly sums",
                "_opportunities": "the trained units' deals", "event_path": "the forecast's event study",
                "_quality": "the data-quality account", "compared": "every method's estimates"}


def reused(hits: list[str], misses: list[str]) -> str:
    """The line saying which measurements came from the warehouse's cache, and which were made again."""
    def named(stages: list[str]) -> str:
        return ", ".join(dict.fromkeys(_STAGE_NAMES.get(s, s.strip("_").replace("_", " ")) for s in stages))

    line = f"reused from the warehouse's cache (measured before from the same inputs): {named(hits)}"
    return line + (f"; measured again: {named(misses)}" if misses else "")


def answer_cache(db: str) -> AnswerCache | None:
    """The cache of the warehouse ``db`` names: None when it is not a DuckDB file that exists."""
    file = duckdb_file(db)
    if file in (None, "", ":memory:") or not hasattr(os, "getuid"):
        # Where a folder's owner cannot be checked (Windows), its pickled panels could be anyone's: no cache.
        return None
    try:
        return AnswerCache(db, Path(str(file)))
    except OSError:
        return None
