"""Measurements kept between evaluations of one warehouse: a changed assumption measures again only what reads it.

An analyst re-runs a study many times with one setting changed (the margin, a cost line, the
attribution model, a window). Most of an evaluation's time goes into measuring the warehouse —
each window's panels, the application KPIs, the attribution's journeys — and most settings do
not change those measurements. A :class:`StageStore` keeps each measurement under the key of its
call:

* the measuring function's module and qualified name;
* every argument but the warehouse connection, as canonical JSON (:func:`canonical`): a changed
  argument is another key, so a stage is measured again exactly when something it reads changed;
  an argument whose type cannot be keyed is a programming error, never a guess;
* the number style the answer's sentences are worded in (:func:`~training_roi._format.number_style`);
* the store's ``version``: whoever opens the store names the warehouse's version and the product's
  (the command line uses the answer cache's: file size, times and inode of the warehouse; every
  file of the installed package), so a changed warehouse or product never serves a kept stage.

A value returned by a kept call stands for that call in a later call's key (its provenance), so a
window's panel handed to the next stage is keyed by the call that measured it, not by its contents.

Stages are pickled into a folder (``roi.duckdb.answers/stages/``) that must, with the folder
that holds it, be the user's own, not a link, and writable by nobody else; each is written whole
(a temporary file renamed into place), and they are kept within a budget of bytes, least
recently used first out. A stage that cannot be read is measured again; one that cannot be
written is simply not kept.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import hashlib
import json
import os
import pickle
import re
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from training_roi._format import current_style

__all__ = ["BUDGET", "StageStore", "canonical", "kept", "kept_stages"]

BUDGET = 2 << 30
"""Bytes a warehouse's kept stages may hold by default (2 GiB): least recently used first out; the newest is always
kept.

A 20,000-rep org's default study keeps about 550 MB (the attribution table is half of it)."""

SUFFIX = ".pickle"
_STAGE = re.compile(r"[0-9a-f]{16}-[0-9a-f]{40}\.pickle")
"""A stage's file name: its version and key. Nothing else in the folder is ever removed, but temporary files."""
_TEMPORARY = re.compile(r"\.stage-[A-Za-z0-9_]+")
_STALE_SECONDS = 3600.0
"""A temporary file older than this is a stopped run's, removed by the next run that keeps a stage."""

T = TypeVar("T")

_STORE: ContextVar[StageStore | None] = ContextVar("stage_store", default=None)


def canonical(value: Any) -> Any:
    """``value`` as JSON-ready data that two equal values, in any process, turn into the same way.

    Sets are sorted, dictionaries keyed in order, dataclasses and Pydantic models named by their
    type; floats are written exactly (``repr``).

    Raises
    ------
    TypeError
        A value of a type that cannot be keyed (a table, an array, a connection).
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return {"float": repr(value)}
    if isinstance(value, Decimal):
        return {"decimal": str(value)}
    if isinstance(value, datetime | date):
        return {type(value).__name__: value.isoformat()}
    if isinstance(value, enum.Enum):
        return {"enum": f"{type(value).__qualname__}.{value.name}"}
    if isinstance(value, tuple):
        return {"tuple": [canonical(v) for v in value]}
    if isinstance(value, list):
        return [canonical(v) for v in value]
    if isinstance(value, set | frozenset):
        return {"set": sorted(_text(canonical(v)) for v in value)}
    if isinstance(value, dict):
        return {"dict": sorted([_text(canonical(k)), canonical(v)] for k, v in value.items())}
    if isinstance(value, BaseModel):
        return {"model": _name(type(value)), "fields": value.model_dump(mode="json")}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"dataclass": _name(type(value)),
                "fields": {f.name: canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}}
    raise TypeError(f"a stage cannot be keyed on a {type(value).__qualname__}")


def _marked(value: Any) -> bool:
    """Whether a kept call's value of this type can stand for the call (it is not possibly a shared constant)."""
    return not isinstance(value, str | bytes | int | float | bool | tuple | frozenset | enum.Enum | date | Decimal
                          | type(None))


def _text(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _name(kind: type) -> str:
    return f"{kind.__module__}.{kind.__qualname__}"


class StageStore:
    """The stages kept for one version of a warehouse and of the product, in ``folder``."""

    def __init__(self, folder: Path, version: str, *, read: bool = True, budget: int = BUDGET) -> None:
        self.folder = folder
        self.budget = budget
        """Bytes the kept stages may hold."""
        self.version = hashlib.sha256(version.encode("utf-8")).hexdigest()[:16]
        self.read = read
        """False: every stage is measured again (and kept), as ``report --fresh`` asks."""
        self.hits: list[str] = []
        """The stages served from the folder in this store's life, by function name (what a run says it reused)."""
        self.misses: list[str] = []
        self._provenance: dict[int, tuple[Any, str]] = {}

    def call(self, fn: Callable[..., T], con: Any, /, *args: Any, **kwargs: Any) -> T:
        """``fn(con, *args, **kwargs)``, from the folder when this call was kept, else measured and kept."""
        name = f"{fn.__module__}.{fn.__qualname__}"
        key = hashlib.sha256(_text([name, self._keyed(args), self._keyed(kwargs),
                                    list(current_style())]).encode("utf-8")).hexdigest()
        path = self.folder / f"{self.version}-{key[:40]}{SUFFIX}"
        value = self._load(path) if self.read else None
        if value is not None:
            self.hits.append(fn.__qualname__)
            with contextlib.suppress(OSError):
                os.utime(path)  # used now: the budget lets the least recently used go first
            held: T = value[0]  # pickled by this very call's key
            return self._mark(held, key)
        result = fn(con, *args, **kwargs)
        self.misses.append(fn.__qualname__)
        self._save(path, result)
        return self._mark(result, key)

    def _keyed(self, value: Any) -> Any:
        """``value`` canonical (:func:`canonical`), with each value a kept call returned standing for that call."""
        if _marked(value):
            held = self._provenance.get(id(value))
            if held is not None and held[0] is value:
                return {"kept": held[1]}
        if isinstance(value, tuple):
            return {"tuple": [self._keyed(v) for v in value]}
        if isinstance(value, list):
            return [self._keyed(v) for v in value]
        if isinstance(value, dict):
            return {"dict": sorted([_text(canonical(k)), self._keyed(v)] for k, v in value.items())}
        return canonical(value)

    def _mark(self, value: T, key: str) -> T:
        """Remember ``value`` (and each item of a returned dict or tuple) as coming from the call ``key``.

        Values of plain types are not remembered: equal ones may be one shared object (``()``,
        ``None``, a constant string) that would then stand for this call wherever it is passed.
        """
        if _marked(value):
            self._provenance[id(value)] = (value, key)
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, tuple) else ()
        for part, item in items:
            if _marked(item):
                self._provenance[id(item)] = (item, f"{key}[{_text(canonical(part))}]")
        return value

    def _usable(self) -> bool:
        """Whether the folder and the one that holds it are the user's own, not links, and writable by nobody else.

        Its pickles are loaded, and the files in it that are not this version's stages are removed.
        """
        owner = getattr(os, "getuid", None)
        if owner is None:
            return False
        for folder in (self.folder.parent, self.folder):
            try:
                st = folder.lstat()
            except OSError:
                return False
            if not stat.S_ISDIR(st.st_mode) or st.st_uid != owner() or st.st_mode & 0o022:
                return False
        return True

    def _load(self, path: Path) -> tuple[Any] | None:
        if not self._usable():
            return None
        try:
            with path.open("rb") as fh:
                return (pickle.load(fh),)
        except FileNotFoundError:
            return None
        except Exception:  # a damaged stage is measured again and replaced
            path.unlink(missing_ok=True)
            return None

    def _save(self, path: Path, value: Any) -> None:
        try:
            self.folder.parent.mkdir(mode=0o700, exist_ok=True)
            self.folder.mkdir(mode=0o700, exist_ok=True)
            if not self._usable():
                return
            fd, temp = tempfile.mkstemp(prefix=".stage-", dir=self.folder)
            try:
                with os.fdopen(fd, "wb") as fh:
                    pickle.dump(value, fh, protocol=pickle.HIGHEST_PROTOCOL)
                os.replace(temp, path)
            except BaseException:
                Path(temp).unlink(missing_ok=True)
                raise
            self._trim(path)
        except (OSError, pickle.PicklingError, TypeError, AttributeError):
            return  # not kept: the next run measures it again

    def _trim(self, newest: Path) -> None:
        """Remove other versions' stages, stopped runs' temporary files, and the least recently used over budget."""
        held: list[tuple[int, int, Path]] = []
        now = time.time()
        for path in self.folder.iterdir():
            try:
                st = path.lstat()
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            if _TEMPORARY.fullmatch(path.name):
                if now - st.st_mtime > _STALE_SECONDS:
                    path.unlink(missing_ok=True)
            elif _STAGE.fullmatch(path.name):
                if not path.name.startswith(f"{self.version}-"):
                    path.unlink(missing_ok=True)  # another warehouse's or product's: never served again
                else:
                    held.append((st.st_mtime_ns, st.st_size, path))
        total = 0
        for _, size, path in sorted(held, key=lambda h: (h[2] != newest, -h[0])):
            total += size
            if total > self.budget and path != newest:
                path.unlink(missing_ok=True)


@contextlib.contextmanager
def kept_stages(store: StageStore | None) -> Iterator[StageStore | None]:
    """Keep the evaluations' measurements inside the block in ``store`` (None: measure everything, keep nothing)."""
    token = _STORE.set(store)
    try:
        yield store
    finally:
        _STORE.reset(token)


def kept(fn: Callable[..., T], con: Any, /, *args: Any, **kwargs: Any) -> T:
    """``fn(con, *args, **kwargs)``: from the block's :class:`StageStore` when one is open, else measured now.

    ``fn`` must be a function of the warehouse and its arguments alone: nothing else it reads (a
    clock, a global setting) may change its result.
    """
    store = _STORE.get()
    if store is None:
        return fn(con, *args, **kwargs)
    return store.call(fn, con, *args, **kwargs)
