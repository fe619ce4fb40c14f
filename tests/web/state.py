"""What the server's tests share: a cheap password hasher, a moving clock, the state file's bytes, signing in."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

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


@contextmanager
def serving(db: Path, state: Path, results: Path) -> Iterator[tuple[str, list[str]]]:
    """``training-roi serve`` in a process of its own on a free loopback port, once it answers its health check.

    Gives the server's address and, once the block ends and the server has stopped, a list holding
    what it printed (empty until then).
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    process = subprocess.Popen([sys.executable, "-m", "training_roi.cli", "serve", "--db", str(db), "--state",
                                str(state), "--port", str(port), "--results", str(results)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base, printed = f"http://127.0.0.1:{port}", []
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/v1/health", timeout=2) as r:
                    assert json.loads(r.read())["status"] == "ok"
                    break
            except (urllib.error.URLError, ConnectionError):
                assert process.poll() is None, process.communicate()[1]
                assert time.monotonic() < deadline, "the server did not answer within 60 s"
                time.sleep(0.2)
        yield base, printed
    finally:
        process.terminate()
        printed.append(process.communicate(timeout=30)[0])


def csrf_of(html: str) -> str:
    """The CSRF token of a page's first form (the sign-in form's, or the session's in a signed-in page)."""
    return html.split('name="csrf" value="')[1].split('"')[0]


def sign_in(client: Any, name: str, password: str, next: str = "/") -> Any:
    """Sign in through the login form of a Starlette test client (a fresh session); the form's answer, not followed."""
    client.cookies.clear()
    page = client.get(f"/login?next={next}")
    return client.post("/login", data={"name": name, "password": password, "csrf": csrf_of(page.text), "next": next},
                       follow_redirects=False)
