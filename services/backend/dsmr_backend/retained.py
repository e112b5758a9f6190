"""Retained state topics, published only when their value changes."""

import threading
from collections.abc import Callable

Publish = Callable[[str, str, int, bool], None]
"""publish(topic, payload, qos, retain)"""


class RetainedTopics:
    """Publishes retained values at QoS 1, skipping the value a topic already holds."""

    def __init__(self, publish: Publish) -> None:
        self._publish = publish
        self._sent: dict[str, str] = {}
        self._lock = threading.Lock()

    def forget(self) -> None:
        """Re-send every value next time (after a reconnect the broker may be new)."""
        with self._lock:
            self._sent.clear()

    def set(self, topic: str, payload: str) -> None:
        """Publish ``payload`` on ``topic`` unless it holds it already (empty: clear a sent value)."""
        with self._lock:
            before = self._sent.get(topic)
            if before == payload or (before is None and payload == ""):
                return  # unchanged, or unknown and never sent
            self._sent[topic] = payload
        self._publish(topic, payload, 1, True)
