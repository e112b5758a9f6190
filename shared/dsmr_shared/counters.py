"""Named counters for problems and throughput, safe to bump from any thread."""

import threading
from collections import Counter


class Counters:
    """A thread-safe bag of named integer counters."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def inc(self, name: str, n: int = 1) -> int:
        """Add ``n`` to counter ``name`` and return its new value."""
        with self._lock:
            self._counts[name] += n
            return self._counts[name]

    def get(self, name: str) -> int:
        """Return the current value of ``name`` (0 when never bumped)."""
        with self._lock:
            return self._counts[name]

    def snapshot(self) -> dict[str, int]:
        """Return a copy of every counter."""
        with self._lock:
            return dict(self._counts)
