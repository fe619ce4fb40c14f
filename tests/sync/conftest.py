"""A real LRS for the sync tests: Ralph, started on the loopback address, and a proxy in front of it.

Ralph (``ralph-malph``) runs from its own virtual environment, ``.venv-ralph`` at the repository's
root (``make .venv-ralph``; ``make test`` and CI make it), or the Python named by
``TRAINING_ROI_RALPH_PYTHON``. Without it the tests marked ``lrs`` are skipped, saying so, except
under CI, where a missing Ralph fails them.

The proxy forwards every request to Ralph and keeps a log of them; a test can have it answer a
statements request itself (429 with Retry-After, 500), or hold one until the test lets it go, to
stop a sync at a known page. With ``oauth`` set it also serves a token endpoint and swaps a valid
Bearer token for Ralph's Basic credentials.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson
import pytest

ROOT = Path(__file__).resolve().parents[2]
USER = "sync-reader"
PASSWORD = "pw-" + uuid.uuid4().hex  # random, so finding it in any output can only mean a leak
VERSION = {"X-Experience-API-Version": "1.0.3"}


def _ralph_python() -> Path | None:
    named = os.environ.get("TRAINING_ROI_RALPH_PYTHON")
    candidates = [Path(named)] if named else []
    candidates.append(ROOT / ".venv-ralph" / "bin" / "python")
    return next((c for c in candidates if c.is_file()), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def statement(i: int, **extra: Any) -> dict[str, Any]:
    """A valid xAPI statement, learner ``i % 7``, with no timestamp (the LRS sets it to stored)."""
    verb = ("completed", "experienced", "passed")[i % 3]
    body: dict[str, Any] = {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"sync-test/{i}")),
        "actor": {"objectType": "Agent", "mbox": f"mailto:learner{i % 7}@example.com", "name": f"Learner {i % 7}"},
        "verb": {"id": f"http://adlnet.gov/expapi/verbs/{verb}", "display": {"en-US": verb}},
        "object": {"objectType": "Activity", "id": f"https://lms.example.com/course/{i % 4}",
                   "definition": {"name": {"en-US": f"Course {i % 4}"}}},
        "result": {"score": {"scaled": round((i % 10) / 10, 1)}, "completion": True},
    }
    body.update(extra)
    return body


def voiding(i: int, target: str) -> dict[str, Any]:
    """A statement voiding ``target``."""
    return statement(i, verb={"id": "http://adlnet.gov/expapi/verbs/voided", "display": {"en-US": "voided"}},
                     object={"objectType": "StatementRef", "id": target}, result={})


@dataclass
class Ralph:
    """A running Ralph: its URL, its data file, and ways to add statements."""

    url: str
    data_dir: Path
    process: subprocess.Popen[bytes]

    @property
    def file(self) -> Path:
        return self.data_dir / "fs_lrs.jsonl"

    def post(self, statements: list[dict[str, Any]]) -> None:
        """POST statements as an LMS would (Ralph sets stored, and timestamp when absent)."""
        r = httpx.post(f"{self.url}/xAPI/statements", json=statements, auth=(USER, PASSWORD), headers=VERSION,
                       timeout=30)
        assert r.status_code == 200, r.text

    def append_stored(self, statements: list[dict[str, Any]]) -> None:
        """Add statements to Ralph's store as they are, with the stored times they carry (ties, faults)."""
        with self.file.open("ab") as fh:
            for s in statements:
                fh.write(orjson.dumps(s) + b"\n")

    def get(self, **params: str) -> dict[str, Any]:
        r = httpx.get(f"{self.url}/xAPI/statements", params=params, auth=(USER, PASSWORD), headers=VERSION,
                      timeout=30)
        assert r.status_code == 200, r.text
        return dict(r.json())


@pytest.fixture
def ralph(tmp_path: Path) -> Iterator[Ralph]:
    python = _ralph_python()
    if python is None:
        reason = "Ralph (ralph-malph) is not installed in .venv-ralph: `make .venv-ralph` installs it"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    port = _free_port()
    env = {**os.environ, "LRS_TEST_USER": USER, "LRS_TEST_PASSWORD": PASSWORD}
    log = (tmp_path / "ralph.log").open("wb")
    proc = subprocess.Popen([str(python), str(Path(__file__).with_name("ralph_server.py")), str(port),
                             str(tmp_path / "ralph-data")], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/whoami", auth=(USER, PASSWORD), timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"Ralph did not start: {(tmp_path / 'ralph.log').read_text(errors='replace')[-2000:]}")
        time.sleep(0.2)
    yield Ralph(url, tmp_path / "ralph-data", proc)
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@dataclass
class Proxy:
    """A proxy to Ralph that logs requests and can answer or hold statements requests itself."""

    upstream: str
    url: str = ""
    log: list[tuple[str, str, dict[str, list[str]]]] = field(default_factory=list)
    faults: list[tuple[int, dict[str, str]] | str | None] = field(default_factory=list)
    always: tuple[int, dict[str, str]] | None = None
    held: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    oauth: tuple[str, str] | None = None
    token: str = field(default_factory=lambda: "tok-" + uuid.uuid4().hex)

    def statements_requests(self) -> list[dict[str, list[str]]]:
        return [q for method, path, q in self.log if method == "GET" and path.rstrip("/").endswith("/statements")]


def _handler(proxy: Proxy) -> type[BaseHTTPRequestHandler]:
    client = httpx.Client(timeout=60)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self, status: int, headers: dict[str, str], body: bytes = b"") -> None:
            try:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):  # the client was killed while waiting
                pass

        def _forward(self, method: str) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            proxy.log.append((method, parts.path, parse_qs(parts.query)))
            if proxy.oauth is not None and parts.path == "/oauth/token":
                expected = httpx.BasicAuth(*proxy.oauth)._auth_header
                if self.headers.get("Authorization") != expected or b"client_credentials" not in body:
                    self._answer(401, {"Content-Type": "application/json"}, b'{"error": "invalid_client"}')
                else:
                    self._answer(200, {"Content-Type": "application/json"},
                                 orjson.dumps({"access_token": proxy.token, "token_type": "Bearer"}))
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
            if proxy.oauth is not None:
                if headers.get("Authorization") != f"Bearer {proxy.token}":
                    self._answer(401, {"Content-Type": "application/json"}, b'{"detail": "bad token"}')
                    return
                headers["Authorization"] = httpx.BasicAuth(USER, PASSWORD)._auth_header
            if method == "GET" and parts.path.rstrip("/").endswith("/statements"):
                fault = proxy.faults.pop(0) if proxy.faults else None
                if fault == "hold":
                    proxy.held.set()
                    proxy.release.wait(60)
                    self._answer(503, {"Retry-After": "0"}, b"held")
                    return
                if fault is None and proxy.always is not None:
                    fault = proxy.always
                if isinstance(fault, tuple):
                    self._answer(fault[0], {"Content-Type": "application/json", **fault[1]},
                                 b'{"detail": "injected by the test"}')
                    return
            r = client.request(method, proxy.upstream + self.path, headers=headers, content=body)
            self._answer(r.status_code, {"Content-Type": r.headers.get("content-type", "application/json")},
                         r.content)

        def do_GET(self) -> None:
            self._forward("GET")

        def do_POST(self) -> None:
            self._forward("POST")

    return Handler


@pytest.fixture
def proxy(ralph: Ralph) -> Iterator[Proxy]:
    p = Proxy(ralph.url)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(p))
    server.daemon_threads = True
    p.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield p
    p.release.set()
    server.shutdown()
    server.server_close()


def write_config(path: Path, endpoint: str, *, name: str = "lrs-main", **settings: Any) -> Path:
    """A sync.yaml with one LRS source reading Basic credentials from LRS_USER and LRS_PASSWORD."""
    import yaml

    source = {"name": name, "kind": "lrs", "endpoint": endpoint, "version": "1.0.3",
              "auth": {"method": "basic", "username_env": "LRS_USER", "password_env": "LRS_PASSWORD"},
              "backoff": 0.01, **settings}
    path.write_text(yaml.safe_dump({"sources": [source]}), encoding="utf-8")
    return path


def credentials() -> dict[str, str]:
    return {"LRS_USER": USER, "LRS_PASSWORD": PASSWORD}


def run_sync(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``training-roi sync`` in a process of its own, as a user runs it."""
    full = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "COLUMNS": "200", **credentials(), **(env or {})}
    return subprocess.run([sys.executable, "-m", "training_roi.cli", "sync", *args], env=full, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A simulated sales org's export (its ``crm/`` files seed the CRM stand-ins)."""
    from training_roi.simulate import simulate

    folder = tmp_path_factory.mktemp("sim")
    simulate(folder, reps=10, months=6, seed=3)
    return folder
