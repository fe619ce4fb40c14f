"""Figures computed once per snapshot of the warehouse and kept: KPIs, data quality, drill-downs.

A page of the 20,000-rep org's KPIs takes a second or two to compute and the same instant for
every reader of the same snapshot, so the server keeps the last few results by what they were
asked with, the snapshot's path first: a new snapshot asks afresh. When several requests miss
the same key at once, one computes and the others wait for it, rather than all computing.

A memo made with ``remake`` can be **warmed**: before a new snapshot is swapped in, :func:`warm`
recomputes on it every figure readers asked of the old one, so that after a load the pages answer
as fast as before it instead of all waiting for the first computation.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

__all__ = ["Memo", "warm"]

T = TypeVar("T")

_WARMED: list[Memo[Any]] = []


class Memo(Generic[T]):
    """The last ``size`` results by key (the snapshot's path first), each computed once even when asked concurrently.

    ``remake(rest, snapshot)`` computes the result for a key's ``rest`` (the key without its path) on
    another snapshot; a memo given one is warmed by :func:`warm`.
    """

    def __init__(self, size: int, remake: Callable[[tuple[Any, ...], Any], T] | None = None) -> None:
        self.size, self.remake = size, remake
        self._kept: OrderedDict[Hashable, T] = OrderedDict()
        self._making: dict[Hashable, threading.Lock] = {}
        self._lock = threading.Lock()
        if remake is not None:
            _WARMED.append(self)

    def get(self, key: Hashable, make: Callable[[], T]) -> T:
        """The result for ``key``, from ``make()`` the first time."""
        with self._lock:
            if key in self._kept:
                self._kept.move_to_end(key)
                return self._kept[key]
            making = self._making.setdefault(key, threading.Lock())
        with making:
            with self._lock:
                if key in self._kept:
                    return self._kept[key]
            value = make()
            self.put(key, value)
            return value

    def put(self, key: Hashable, value: T) -> None:
        """Keep ``value`` for ``key``."""
        with self._lock:
            self._kept[key] = value
            self._making.pop(key, None)
            while len(self._kept) > self.size:
                self._kept.popitem(last=False)

    def asked(self) -> list[Hashable]:
        """The keys kept, oldest first."""
        with self._lock:
            return list(self._kept)


def warm(old: str, new: Any) -> int:
    """Recompute on the snapshot ``new`` every figure of a warmed memo asked of the snapshot at path ``old``."""
    done = 0
    for memo in list(_WARMED):
        assert memo.remake is not None
        for key in memo.asked():
            if isinstance(key, tuple) and key and key[0] == old:
                memo.put((str(new.path), *key[1:]), memo.remake(tuple(key[1:]), new))
                done += 1
    return done
