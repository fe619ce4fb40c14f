"""What the server's tests share: a cheap password hasher, a clock the test moves, the state file's bytes."""

from __future__ import annotations

from datetime import datetime, timedelta

from argon2 import PasswordHasher

from training_roi.web.store import Store

# Argon2id still, with the smallest cost argon2-cffi accepts, so that the tests hash in microseconds;
# the product's default (argon2-cffi's own) is used where the tests go through the command line.
CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


class Clock:
    """A clock that stands still until the test moves it."""

    def __init__(self, start: datetime) -> None:
        self.moment = start

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, **delta: float) -> None:
        self.moment += timedelta(**delta)


def file_bytes(store: Store) -> bytes:
    """Everything SQLite wrote for the store: the database file and, in WAL mode, its -wal file."""
    return b"".join(p.read_bytes() for p in sorted(store.path.parent.glob(store.path.name + "*")))
