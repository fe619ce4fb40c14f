"""Figures computed once per snapshot of the warehouse and kept: KPIs, data quality, drill-downs.

A page of the 20,000-rep org's KPIs takes a second or two to compute and the same instant for
every reader of the same snapshot, so the server keeps the last few results by what they were
asked with (the snapshot's path among it: a new snapshot asks afresh). When several requests
miss the same key at once, one computes and the others wait for it, rather than all computing.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["Memo"]

T = TypeVar("T")


class Memo(Generic[T]):
    """The last ``size`` results by key, each computed once even when asked for concurrently."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._kept: OrderedDict[Hashable, T] = OrderedDict()
        self._making: dict[Hashable, threading.Lock] = {}
        self._lock = threading.Lock()

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
            with self._lock:
                self._kept[key] = value
                self._making.pop(key, None)
                while len(self._kept) > self.size:
                    self._kept.popitem(last=False)
            return value
