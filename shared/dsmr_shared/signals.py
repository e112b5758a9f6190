"""Django-shaped signals that travel as MQTT messages: a send publishes, a connect subscribes."""

import logging
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dsmr_shared.bus import Bus, Message, PublishHandle
from dsmr_shared.envelope import Envelope
from dsmr_shared.errors import DsmrError, EnvelopeError
from dsmr_shared.topics import DEFAULT_PREFIX, signal_topic, validate_sender

log = logging.getLogger(__name__)

Receiver = Callable[..., Any]
ReceiverWrapper = Callable[[Receiver], Receiver]

SEEN_IDS = 4096
"""Envelope ids remembered per signal: overlapping subscriptions and redeliveries run receivers once."""

_bus: Bus | None = None
_wrapper: ReceiverWrapper | None = None
_signals: "weakref.WeakSet[Signal]" = weakref.WeakSet()
_state_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class _Binding:
    original: Receiver
    call: Receiver
    sender: str | None
    uid: object


def use_bus(bus: Bus | None) -> None:
    """Make ``bus`` the one every Signal sends and subscribes on (None detaches)."""
    global _bus  # noqa: PLW0603 - the process-wide bus, as Django's signals are process-wide
    with _state_lock:
        _bus = bus
        signals = list(_signals)
    for sig in signals:
        sig._subscribe_all()


def current_bus() -> Bus | None:
    """Return the bus signals use, or None before ``use_bus``."""
    return _bus


def set_receiver_wrapper(wrapper: ReceiverWrapper | None) -> None:
    """While set, ``connect`` stores ``wrapper(receiver)`` (the plugin runner routes to workers)."""
    global _wrapper  # noqa: PLW0603 - set only by the plugin runner around a plugin's import
    _wrapper = wrapper


def disconnect_wrapped(call: Receiver) -> int:
    """Disconnect ``call`` (a receiver as the wrapper returned it) from every signal; return how many."""
    return sum(sig._drop_call(call) for sig in list(_signals))


def _receiver_name(receiver: Receiver) -> str:
    return f"{getattr(receiver, '__module__', '?')}.{getattr(receiver, '__qualname__', receiver)}"


class Signal:
    """A named event; receivers anywhere on the broker hear its sends."""

    def __init__(self, name: str, *, qos: int = 1) -> None:
        self.name = name
        self.qos = qos
        self._bindings: list[_Binding] = []
        self._lock = threading.Lock()
        self._subscribed: set[tuple[str, str]] = set()
        self._seen: OrderedDict[str, None] = OrderedDict()
        with _state_lock:
            _signals.add(self)

    def __repr__(self) -> str:
        return f"<Signal {self.name}>"

    def topic(self, sender: str | None = None) -> str:
        """Return this signal's topic for ``sender`` (``+`` for any sender)."""
        prefix = _bus.prefix if _bus is not None else DEFAULT_PREFIX
        return signal_topic(prefix, self.name, sender)

    # -- Django's API ---------------------------------------------------------------------------

    def connect(
        self,
        receiver: Receiver,
        sender: str | None = None,
        weak: bool = True,
        dispatch_uid: object = None,
    ) -> None:
        """Call ``receiver(signal=, sender=, **kwargs)`` for every send (from ``sender`` only, if given)."""
        if sender is not None:
            validate_sender(str(sender))
        uid = dispatch_uid if dispatch_uid is not None else (id(receiver), sender)
        call = _wrapper(receiver) if _wrapper is not None else receiver
        with self._lock:
            if any(b.uid == uid for b in self._bindings):
                return
            self._bindings = [*self._bindings, _Binding(receiver, call, sender, uid)]
        self._subscribe_all()

    def disconnect(
        self,
        receiver: Receiver | None = None,
        sender: str | None = None,
        dispatch_uid: object = None,
    ) -> bool:
        """Remove a receiver; True when one was connected."""
        uid = dispatch_uid if dispatch_uid is not None else (id(receiver), sender)
        with self._lock:
            kept = [b for b in self._bindings if b.uid != uid]
            removed = len(kept) != len(self._bindings)
            self._bindings = kept
        return removed

    def _drop_call(self, call: Receiver) -> int:
        with self._lock:
            kept = [b for b in self._bindings if b.call is not call]
            dropped = len(self._bindings) - len(kept)
            self._bindings = kept
        return dropped

    def has_listeners(self, sender: str | None = None) -> bool:
        """True when a receiver would hear a send from ``sender``."""
        return any(b.sender in (None, sender) for b in self._bindings)

    def send(self, sender: str, **kwargs: Any) -> list[tuple[Receiver, Any]]:
        """Publish this signal; receivers run where they are connected, so no results return here."""
        self.publish(self.envelope(sender, **kwargs))
        return []

    def envelope(self, sender: str, **kwargs: Any) -> Envelope:
        """Build the envelope ``send`` would publish (fresh id), e.g. to store it in an outbox first."""
        return Envelope.new(self.name, validate_sender(str(sender)), kwargs)

    def publish(self, envelope: Envelope, payload: bytes | None = None) -> PublishHandle:
        """Publish a prepared envelope of this signal at its QoS, keeping its id.

        ``payload`` is the envelope's JSON when it was serialised before (an outbox resends the
        stored bytes unchanged). Receivers skip an id they already ran (``SEEN_IDS``), so a
        resend after a crash is harmless to them.
        """
        bus = _bus
        if bus is None:
            raise DsmrError(f"{self.name}: no MQTT bus yet; call dsmr_shared.signals.use_bus()")
        if envelope.signal != self.name:
            raise DsmrError(f"{self.name}.publish: the envelope is for {envelope.signal!r}")
        topic = signal_topic(bus.prefix, self.name, validate_sender(envelope.sender))
        return bus.publish(topic, payload or envelope.to_json(), qos=self.qos)

    send_robust = send

    # -- receiving ------------------------------------------------------------------------------

    def _subscribe_all(self) -> None:
        bus = _bus
        if bus is None:
            return
        senders = {b.sender for b in self._bindings}
        for sender in senders:
            key = (bus.uid, signal_topic(bus.prefix, self.name, sender))
            with self._lock:
                if key in self._subscribed:
                    continue
                self._subscribed.add(key)
            bus.subscribe(key[1], self._on_message, qos=self.qos)

    def _first_time(self, envelope_id: str) -> bool:
        with self._lock:
            if envelope_id in self._seen:
                return False
            self._seen[envelope_id] = None
            if len(self._seen) > SEEN_IDS:
                self._seen.popitem(last=False)
            return True

    def _on_message(self, message: Message) -> None:
        envelope = self._validate(message)
        if envelope is None or not self._first_time(envelope.id):
            return
        for binding in self._bindings:
            if binding.sender is None or binding.sender == envelope.sender:
                self._call(binding, envelope)

    def _validate(self, message: Message) -> Envelope | None:
        try:
            envelope = Envelope.parse(message.payload)
            if envelope.signal != self.name:
                raise EnvelopeError(f"signal {envelope.signal!r} on the topic of {self.name!r}")
            if message.topic.rsplit("/", 1)[-1] != envelope.sender:
                raise EnvelopeError(f"sender {envelope.sender!r} differs from the topic's")
        except EnvelopeError as exc:
            log.warning("dropped an invalid message on %s: %s", message.topic, exc)
            if _bus is not None:
                _bus.counters.inc("invalid_payloads")
            return None
        return envelope

    def _call(self, binding: _Binding, envelope: Envelope) -> None:
        try:
            binding.call(signal=self, sender=envelope.sender, **envelope.kwargs)
        except Exception:
            log.exception(
                "receiver %s of %s raised; the other receivers still run",
                _receiver_name(binding.original),
                self.name,
            )
            if _bus is not None:
                _bus.counters.inc("receiver_errors")
