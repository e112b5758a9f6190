"""Log a recurring problem at most once per interval, always with its running count."""

import threading
import time
from dataclasses import dataclass, field


@dataclass
class LogThrottle:
    """Says when a repeating message is due: the first time, then at most once per ``interval``."""

    interval: float = 10.0
    _last: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def due(self, key: str) -> bool:
        """True when the message for ``key`` should be logged now."""
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.interval:
                return False
            self._last[key] = now
            return True
