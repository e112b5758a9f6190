"""The backend loop: iterations count up, and a failing task never stops the others."""

from __future__ import annotations

import threading

from dsmr_backend.loop import Loop
from dsmr_shared.counters import Counters


def test_a_failing_task_is_counted_and_the_others_still_run() -> None:
    loop = Loop("b", 0.01, Counters())
    seen: list[int] = []

    def broken(_iteration: int) -> None:
        raise RuntimeError("statistics failed")

    loop.add_task(broken)
    loop.add_task(seen.append)
    assert loop.tick() == 1
    assert loop.tick() == 2
    assert seen == [1, 2]
    # No bus in this test: backend_called fails too, and is counted like any other failure.
    assert loop.counters.get("loop_errors") == 4


def test_run_ticks_until_stopped() -> None:
    stop = threading.Event()
    loop = Loop("b", 0.001, Counters())
    loop.add_task(lambda i: stop.set() if i == 3 else None)
    loop.run(stop)
    assert loop.iteration == 3
