"""The server's memo: a result computed once per key, even when many requests ask at the same moment."""

from __future__ import annotations

import threading
import time

from training_roi.web.memo import Memo


def test_twenty_concurrent_misses_compute_once_and_all_get_the_result() -> None:
    memo: Memo[int] = Memo(4)
    calls: list[int] = []
    start = threading.Barrier(20)
    got: list[int] = []

    def make() -> int:
        calls.append(1)
        time.sleep(0.2)  # long enough for every other thread to arrive while it computes
        return 42

    def ask() -> None:
        start.wait()
        got.append(memo.get("kpis", make))

    threads = [threading.Thread(target=ask) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and got == [42] * 20


def test_the_least_recently_used_key_goes_first() -> None:
    memo: Memo[str] = Memo(2)
    made: list[str] = []

    def maker(key: str):
        return lambda: made.append(key) or key

    for key in ("a", "b", "a", "c", "a", "b"):
        memo.get(key, maker(key))
    # a, b made; a kept (used again); c evicts b; a kept; b made again.
    assert made == ["a", "b", "c", "b"]
