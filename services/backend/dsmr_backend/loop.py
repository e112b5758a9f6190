"""The backend loop: one iteration per interval sends backend_called and runs periodic tasks."""

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from dsmr_backend.signals import backend_called
from dsmr_shared.counters import Counters

log = logging.getLogger(__name__)

Task = Callable[[int], None]
"""A periodic task, called with the iteration number (statistics work hooks in here)."""


class Loop:
    """Runs ``tick`` every ``interval`` seconds until stopped; a failing task never stops it."""

    def __init__(self, name: str, interval: float, counters: Counters) -> None:
        self.name = name
        self.interval = interval
        self.counters = counters
        self.iteration = 0
        self._tasks: list[Task] = []

    def add_task(self, task: Task) -> None:
        """Run ``task(iteration)`` in every iteration, after backend_called."""
        self._tasks.append(task)

    def tick(self) -> int:
        """Run one iteration now; return its number."""
        self.iteration += 1
        try:
            backend_called.send(sender=self.name, iteration=self.iteration, at=datetime.now(UTC).isoformat())
        except Exception:
            self.counters.inc("loop_errors")
            log.exception("sending backend_called failed")
        for task in list(self._tasks):
            try:
                task(self.iteration)
            except Exception:
                self.counters.inc("loop_errors")
                log.exception("loop task %s failed", getattr(task, "__qualname__", task))
        return self.iteration

    def run(self, stop: threading.Event) -> None:
        """Tick, then wait ``interval``, until ``stop`` is set."""
        while not stop.is_set():
            self.tick()
            stop.wait(self.interval)
