"""The one wrapper around paho-mqtt: prefix, QoS, availability, reconnects and dispatch live here."""

import logging
import random
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from dsmr_shared.broker import MqttConfig
from dsmr_shared.counters import Counters
from dsmr_shared.topics import state_topic, topic_matches

log = logging.getLogger(__name__)

BACKOFF_FIRST = 0.5
BACKOFF_CAP = 30.0
ONLINE = "online"
OFFLINE = "offline"
ACK_RECHECK = 0.05
"""Seconds between looks at paho's count while waiting for PUBACKs."""


class Message:
    """A received MQTT message; a handler may take over its acknowledgement with ``defer_ack``."""

    __slots__ = ("_ack", "_deferred", "payload", "qos", "retain", "topic")

    def __init__(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 0,
        retain: bool = False,
        ack: Callable[[], None] | None = None,
    ) -> None:
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
        self._ack = ack
        self._deferred = False

    def defer_ack(self) -> Callable[[], None]:
        """Take over the PUBACK: the broker redelivers the message until the returned call runs."""
        self._deferred = True
        return self._ack or _noop

    def _auto_ack(self) -> None:
        if not self._deferred and self._ack is not None:
            self._ack()


def _noop() -> None:
    return None


def _network_thread_writes(_client: mqtt.Client, _userdata: object, _sock: object) -> None:
    """paho's write hook: nothing to do, the bus's loop sees paho wants to write and writes."""


Handler = Callable[[Message], None]


@dataclass(slots=True)
class _Subscription:
    topic_filter: str
    qos: int
    shared: bool
    handlers: list[Handler] = field(default_factory=list)


def backoff_delay(attempt: int, cap: float = BACKOFF_CAP) -> float:
    """Capped exponential backoff with jitter, so a fleet does not reconnect in lockstep."""
    ceiling = min(cap, BACKOFF_FIRST * (2 ** min(attempt, 32)))
    return random.uniform(ceiling / 2, ceiling)


def default_client_id(service: str) -> str:
    """Return ``dsmr-<service>-<hostname>``: stable across restarts, distinct between hosts."""
    return f"dsmr-{service}-{socket.gethostname()}"[:64]


def new_client(config: MqttConfig, client_id: str, *, persistent: bool = False) -> mqtt.Client:
    """A paho client with the config's protocol, credentials and TLS; callbacks are the caller's."""
    v5 = config.protocol == "5"
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        clean_session=None if v5 else not persistent,
    )
    if config.username:
        client.username_pw_set(config.username, config.password)
    if config.tls is not None:
        tls = config.tls
        client.tls_set(
            ca_certs=str(tls.ca_file) if tls.ca_file else None,
            certfile=str(tls.cert_file) if tls.cert_file else None,
            keyfile=str(tls.key_file) if tls.key_file else None,
            cert_reqs=ssl.CERT_REQUIRED,
        )
        client.tls_insecure_set(tls.insecure)
    return client


class PublishHandle:
    """Tracks one publish until the broker acknowledges it (paho resends it after a reconnect)."""

    def __init__(self, info: mqtt.MQTTMessageInfo, topic: str, refused: Callable[[int], bool]) -> None:
        self._info = info
        self._topic = topic
        self._refused = refused

    @property
    def queued(self) -> bool:
        """True when paho holds the message to send after a reconnect (QoS > 0 while offline)."""
        return self._info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN

    def poll(self) -> bool | None:
        """Never blocks: True once the broker acknowledged, False if it or paho refused, else None."""
        info = self._info
        if info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
            return False  # paho did not keep it; any other code still means paho sends it (again)
        with info._condition:  # private, as in wait(): is_published() raises unless rc is 0
            if not info._published:
                return None
        return not self._refused(info.mid)

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds; True once the broker acknowledged."""
        info = self._info
        if self.queued:
            # paho's own wait raises at once for a message queued while offline, though it will
            # still send it after reconnecting; wait on its condition instead (private, stable since 1.x).
            with info._condition:
                published = bool(info._condition.wait_for(lambda: info._published, timeout))
        else:
            try:
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError):  # refused by paho (queue full, bad topic)
                return False
            published = info.is_published()
        if published and self._refused(info.mid):
            log.error("the broker refused the publish to %s (not authorised by its ACL?)", self._topic)
            return False
        return published


class Bus:
    """A service's connection to the broker: connect, publish, subscribe, dispatch."""

    def __init__(
        self,
        config: MqttConfig,
        service: str,
        *,
        persistent: bool = False,
        share_group: str | None = None,
    ) -> None:
        self.config = config
        self.service = service
        self.prefix = config.topic_prefix
        self.persistent = persistent
        self.share_group = share_group
        self.counters = Counters()
        self.state_topic = state_topic(self.prefix, service)
        self._subscriptions: dict[str, _Subscription] = {}
        self._lock = threading.RLock()
        self._connected = threading.Event()
        self._stopping = threading.Event()
        self._connect_listeners: list[Callable[[], None]] = []
        self._generation = 0
        self._was_connected = False
        self._resubscribe_mid: int | None = -1
        self._session_up = False
        self._subacks = threading.Condition()
        self._pending_subacks: set[int] = set()
        self._early_subacks: set[int] = set()
        self.uid = uuid.uuid4().hex
        self._dispatch_lock = threading.Lock()
        self._refused_mids: set[int] = set()
        self._acked = threading.Condition()  # notified on every PUBACK and on disconnect
        self.client_id = config.client_id or default_client_id(service)
        self._thread: threading.Thread | None = None
        self._client = self._make_client()

    # -- set-up -----------------------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        client = new_client(self.config, self.client_id, persistent=self.persistent)
        client.manual_ack_set(True)
        # Only the network thread writes to the socket. Without loop_start() paho writes a
        # publish or an ack on the caller's thread, and its packet writer takes no lock: with
        # our loop writing at the same time, packets could go out in the wrong order (or, a
        # partial write apart, interleaved). With this hook set, paho queues the packet and
        # wakes the loop through its socket pair instead.
        client.on_socket_register_write = _network_thread_writes
        client.enable_logger(logging.getLogger("paho"))
        client.will_set(self.state_topic, OFFLINE, qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    def add_connect_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (on the network thread) after every successful connect."""
        self._connect_listeners.append(listener)

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in a background thread; returns at once and reconnects forever."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name=f"bus-{self.service}", daemon=True)
        self._thread.start()

    def wait_connected(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a connection; True when connected."""
        return self._connected.wait(timeout)

    @property
    def connected(self) -> bool:
        """True while a CONNACK-accepted connection is up."""
        return self._connected.is_set()

    def close(self, timeout: float = 5.0) -> None:
        """Publish ``offline``, disconnect cleanly and stop the network thread."""
        if self.connected:
            self.publish_and_wait(self.state_topic, OFFLINE, qos=1, retain=True, timeout=timeout)
        self._stopping.set()
        self._client.disconnect()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        attempt = 0
        while not self._stopping.is_set():
            if self._connect_once():
                self._loop_until_disconnected()
            if self._stopping.is_set():
                break
            if self._was_connected:  # the connection held: start the backoff over
                attempt = 0
            delay = backoff_delay(attempt, self.config.reconnect_max)
            attempt += 1
            log.info("reconnecting to %s in %.1f s", self._address(), delay)
            self._stopping.wait(delay)

    def _address(self) -> str:
        return f"{self.config.host}:{self.config.port}"

    def _connect_once(self) -> bool:
        c = self.config
        self._was_connected = False
        try:
            if c.protocol == "5":
                properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
                properties.SessionExpiryInterval = c.session_expiry if self.persistent else 0
                properties.ReceiveMaximum = c.receive_maximum
                self._client.connect(
                    c.host,
                    c.port,
                    keepalive=c.keepalive,
                    clean_start=not self.persistent,
                    properties=properties,
                )
            else:  # MQTT 3.1.1 sets clean_session on the client instead
                self._client.connect(c.host, c.port, keepalive=c.keepalive)
        except (OSError, ssl.SSLError, ValueError) as exc:
            self.counters.inc("connect_failures")
            log.warning("cannot reach broker %s: %s", self._address(), exc)
            return False
        return True

    def _loop_until_disconnected(self) -> None:
        while not self._stopping.is_set():
            rc = self._client.loop(timeout=0.5)
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                break
        self._connected.clear()

    # -- paho callbacks (network thread) --------------------------------------------------------

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            # A refused CONNACK is a failure, not a connection: never report online for it.
            self.counters.inc("connect_refused")
            log.error("broker %s refused the connection: %s", self._address(), reason)
            return
        with self._lock:
            self._generation += 1
            self._was_connected = True
            self._session_up = True
            subscriptions = list(self._subscriptions.values())
        log.info("connected to %s as %s", self._address(), self.client_id)
        if subscriptions:
            # "Connected" and "online" mean listening: both wait for the broker's SUBACK.
            _rc, self._resubscribe_mid = client.subscribe(
                [(self._actual_filter(s), s.qos) for s in subscriptions]
            )
        else:
            self._go_online(client)
        for listener in list(self._connect_listeners):
            try:
                listener()
            except Exception:
                self.counters.inc("handler_errors")
                log.exception("connect listener %s raised", _name(listener))

    def _go_online(self, client: mqtt.Client) -> None:
        client.publish(self.state_topic, ONLINE, qos=1, retain=True)
        self._connected.set()

    def _on_subscribe(
        self,
        client: mqtt.Client,
        _userdata: object,
        mid: int,
        _reasons: list[ReasonCode],
        _properties: Properties | None,
    ) -> None:
        if mid == self._resubscribe_mid:
            self._go_online(client)
        with self._subacks:
            if mid in self._pending_subacks:
                self._pending_subacks.discard(mid)
            elif mid != self._resubscribe_mid:
                self._early_subacks.add(mid)
            self._subacks.notify_all()

    def _on_publish(
        self,
        _client: mqtt.Client,
        _userdata: object,
        mid: int,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        # MQTT 5 acknowledges a publish the ACL refused with reason 0x87; paho still calls it
        # published. Remember the refusal until the packet id is used again (3.1.1 cannot say).
        with self._lock:
            if reason.is_failure:
                self._refused_mids.add(mid)
            else:
                self._refused_mids.discard(mid)
        if reason.is_failure:
            self.counters.inc("publish_refused")
        with self._acked:
            self._acked.notify_all()

    def _was_refused(self, mid: int) -> bool:
        with self._lock:
            return mid in self._refused_mids

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        was_connected = self._connected.is_set()
        with self._lock:
            self._session_up = False
        self._connected.clear()
        with self._acked:
            self._acked.notify_all()  # a waiting publisher stops waiting: nothing drains offline
        if was_connected and not self._stopping.is_set():
            self.counters.inc("disconnects")
            log.warning("lost the broker %s: %s", self._address(), reason)

    def _on_message(self, client: mqtt.Client, _userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self._dispatch_lock:
            self._dispatch(client, msg)

    def _dispatch(self, client: mqtt.Client, msg: mqtt.MQTTMessage) -> None:
        message = Message(
            msg.topic,
            bytes(msg.payload),
            qos=msg.qos,
            retain=bool(msg.retain),
            ack=self._acker(client, msg.mid, msg.qos),
        )
        for handler in self._handlers_for(msg.topic):
            self._call_safely(handler, message)
        message._auto_ack()

    def _acker(self, client: mqtt.Client, mid: int, qos: int) -> Callable[[], None] | None:
        if qos == 0:
            return None
        generation = self._generation

        def ack() -> None:
            # An ack from before a reconnect would name a packet id of the old connection;
            # the broker redelivers that message instead, and storage is idempotent.
            if generation == self._generation:
                client.ack(mid, qos)

        return ack

    def _call_safely(self, handler: Callable[[Message], None], message: Message) -> None:
        try:
            handler(message)
        except Exception:
            log.exception(
                "handler %s raised on %s; the other handlers still run", _name(handler), message.topic
            )
            self.counters.inc("handler_errors")

    @contextmanager
    def dispatch_paused(self, timeout: float = 10.0) -> Iterator[bool]:
        """Hold delivery between two messages for the block; yields False if that took too long.

        Keep the block short: while it runs the network thread waits, keepalives included.
        """
        held = self._dispatch_lock.acquire(timeout=timeout)
        try:
            yield held
        finally:
            if held:
                self._dispatch_lock.release()

    # -- subscribe / publish --------------------------------------------------------------------

    def _actual_filter(self, subscription: _Subscription) -> str:
        if subscription.shared and self.share_group:
            return f"$share/{self.share_group}/{subscription.topic_filter}"
        return subscription.topic_filter

    def _handlers_for(self, topic: str) -> list[Handler]:
        with self._lock:
            return [
                handler
                for sub in self._subscriptions.values()
                if topic_matches(sub.topic_filter, topic)
                for handler in sub.handlers
            ]

    def subscribe(self, topic_filter: str, handler: Handler, qos: int = 1, *, shared: bool = False) -> None:
        """Call ``handler`` for every message on ``topic_filter``; restored on every reconnect.

        A persistent consumer subscribes before ``start``: the broker resends its queue at once.
        """
        with self._lock:
            sub = self._subscriptions.get(topic_filter)
            is_new = sub is None
            if sub is None:
                sub = _Subscription(topic_filter, qos, shared)
                self._subscriptions[topic_filter] = sub
            sub.handlers.append(handler)
            # Decided under the lock on_connect takes: either it sees this subscription or we send it.
            send_now = is_new and self._session_up
        if send_now:
            self._track(self._client.subscribe(self._actual_filter(sub), qos)[1])

    def _track(self, mid: int | None) -> None:
        if mid is None:
            return
        with self._subacks:
            if mid in self._early_subacks:  # the SUBACK beat us here
                self._early_subacks.discard(mid)
            else:
                self._pending_subacks.add(mid)

    def wait_subscribed(self, timeout: float) -> bool:
        """Wait until the broker acknowledged every subscription made so far."""
        with self._subacks:
            return self._subacks.wait_for(lambda: not self._pending_subacks, timeout)

    def unsubscribe(self, topic_filter: str, handler: Handler | None = None) -> None:
        """Remove ``handler`` (or all handlers) from ``topic_filter``."""
        with self._lock:
            sub = self._subscriptions.get(topic_filter)
            if sub is None:
                return
            sub.handlers = [h for h in sub.handlers if handler is not None and h != handler]
            if sub.handlers:
                return
            del self._subscriptions[topic_filter]
        if self.connected:
            self._client.unsubscribe(self._actual_filter(sub))

    def publish(
        self, topic: str, payload: str | bytes, *, qos: int = 0, retain: bool = False
    ) -> PublishHandle:
        """Publish without waiting; QoS 1 messages sent while offline go out after reconnect."""
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        return PublishHandle(info, topic, self._was_refused)

    def unacknowledged(self) -> int:
        """QoS 1/2 publishes paho holds until the broker acknowledges them (in flight or queued)."""
        # paho has no public count; its dict of unacknowledged messages is stable since 1.x.
        return len(self._client._out_messages)

    def wait_unacknowledged(self, most: int, timeout: float) -> bool:
        """Wait until at most ``most`` publishes await the broker's PUBACK; False on timeout or offline.

        paho sends only 20 at a time and queues the rest without limit: a producer that
        publishes faster than the broker acknowledges (QoS 1 outputs at import speed) calls this
        to be held back. Never call it on the network thread (a bus handler): that would wait
        on itself, so it returns False there at once.
        """
        if threading.current_thread() is self._thread:
            return False
        deadline = time.monotonic() + timeout
        with self._acked:
            while self.connected and self.unacknowledged() > most:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                # paho calls on_publish just before it forgets the message: look again shortly.
                self._acked.wait(min(left, ACK_RECHECK))
        return self.connected and self.unacknowledged() <= most

    def publish_and_wait(
        self,
        topic: str,
        payload: str | bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        timeout: float = 10.0,
    ) -> bool:
        """Publish and wait until the broker acknowledged; False on timeout or when offline."""
        if not self.connected:
            return False
        return self.publish(topic, payload, qos=qos, retain=retain).wait(timeout)


def _name(handler: Callable[..., object]) -> str:
    module = getattr(handler, "__module__", "?")
    return f"{module}.{getattr(handler, '__qualname__', repr(handler))}"
