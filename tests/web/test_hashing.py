"""Sign-ins in a burst queue for the password hasher: at most two Argon2 verifications run at once."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from tests.web.state import CHEAP
from training_roi.web import auth
from training_roi.web.store import Store


def test_a_burst_of_twelve_sign_ins_verifies_two_at_a_time(tmp_path: Path, monkeypatch) -> None:
    store = Store(tmp_path / "state.sqlite", hasher=CHEAP)
    auth.add_user(store, "ana", "analyst", password="a-long-password")
    running, peak, lock = [0], [0], threading.Lock()
    verify = type(CHEAP).verify

    def slow_verify(self, hashed, password):  # the real check, made slow enough to overlap
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)
        try:
            return verify(self, hashed, password)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(type(CHEAP), "verify", slow_verify)
    results: list[bool] = []
    threads = [threading.Thread(target=lambda: results.append(
        auth.verify_password(store, "ana", "a-long-password") is not None)) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [True] * 12
    assert peak[0] == auth.HASHING_AT_ONCE == 2
