"""Acknowledge a message to the broker only after every plugin worker has run it (or dropped it).

A signal's handler only queues one job per plugin receiver and returns. Acknowledged at that
moment, a message whose jobs still wait in a worker queue is lost when the runner is killed.
So each message becomes a ``Delivery`` held by each handler call and by each job it queued; the
PUBACK goes out when the last hold is released, in arrival order as MQTT requires (a finished
message waits for older ones). The broker redelivers to the persistent session whatever was not
acknowledged when the runner died.
"""

import threading
from collections import deque
from collections.abc import Callable

from dsmr_shared.broker import MqttConfig
from dsmr_shared.bus import Bus, Handler, Message
from dsmr_shared.topics import topic_matches

Release = Callable[[], None]


def no_hold() -> Release:
    """The hold outside a tracked dispatch: nothing to release."""
    return _noop


def _noop() -> None:
    return None


class Delivery:
    """One message's outstanding work; acknowledged once nothing holds it."""

    __slots__ = ("ack", "holds")

    def __init__(self, ack: Release, holds: int) -> None:
        self.ack = ack
        self.holds = holds


class AckOrder:
    """The messages not yet acknowledged, oldest first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: deque[Delivery] = deque()

    def begin(self, message: Message, holds: int) -> Delivery:
        """Take over ``message``'s acknowledgement with ``holds`` initial holds."""
        delivery = Delivery(message.defer_ack(), holds)
        with self._lock:
            self._waiting.append(delivery)
        return delivery

    def hold(self, delivery: Delivery) -> Release:
        """One more hold on ``delivery``; the returned function releases it (once)."""
        with self._lock:
            delivery.holds += 1
        done = threading.Event()

        def release() -> None:
            if not done.is_set():  # a stuck plugin's jobs are released early, then again when run
                done.set()
                self.release(delivery)

        return release

    def acknowledge_all(self) -> None:
        """Acknowledge every waiting message now, whatever still holds it."""
        with self._lock:
            acks = [delivery.ack for delivery in self._waiting]
            self._waiting.clear()
        for ack in acks:
            ack()

    def release(self, delivery: Delivery) -> None:
        """Drop one hold; acknowledge every leading message nothing holds any more."""
        with self._lock:
            delivery.holds -= 1
            acks = []
            while self._waiting and self._waiting[0].holds <= 0:
                acks.append(self._waiting.popleft().ack)
        for ack in acks:
            ack()


class AckAfterRunBus(Bus):
    """The runner's bus: a message is acknowledged once the plugin jobs it caused have run."""

    def __init__(self, config: MqttConfig, service: str, *, persistent: bool = False) -> None:
        super().__init__(config, service, persistent=persistent)
        self.acks = AckOrder()
        self._filters: list[str] = []
        self._local = threading.local()
        self._on_receipt = False

    def ack_on_receipt(self) -> None:
        """From now on acknowledge on receipt, and acknowledge what waits (a clean stop).

        A clean stop lets the workers finish their queues after the broker connection is closed;
        acknowledgements sent then would be lost and the broker would redeliver events that ran.
        """
        self._on_receipt = True
        self.acks.acknowledge_all()

    def subscribe(self, topic_filter: str, handler: Handler, qos: int = 1, *, shared: bool = False) -> None:
        """Subscribe ``handler``; jobs it queues hold its message's acknowledgement."""
        # Between two dispatches, so that a message's handler count cannot change under it.
        with self.dispatch_paused():
            self._filters.append(topic_filter)
            super().subscribe(topic_filter, self._tracking(handler), qos, shared=shared)

    def hold_current(self) -> Release:
        """A hold on the message dispatched on this thread right now (none outside a dispatch)."""
        delivery: Delivery | None = getattr(self._local, "handling", None)
        return self.acks.hold(delivery) if delivery is not None else _noop

    def _tracking(self, handler: Handler) -> Handler:
        def tracked(message: Message) -> None:
            if self._on_receipt:
                handler(message)  # the bus acknowledges it when the handlers returned
                return
            delivery = self._delivery_for(message)
            self._local.handling = delivery
            try:
                handler(message)
            finally:
                self._local.handling = None
                self.acks.release(delivery)  # this handler call's own hold

        return tracked

    def _delivery_for(self, message: Message) -> Delivery:
        """The message's delivery, begun at its first handler with one hold per handler call."""
        local = self._local
        if getattr(local, "message", None) is message:
            return local.delivery  # type: ignore[no-any-return]
        calls = sum(1 for f in self._filters if topic_matches(f, message.topic))
        local.message, local.delivery = message, self.acks.begin(message, calls)
        return local.delivery  # type: ignore[no-any-return]
