"""One worker thread per plugin: its receivers run there, in arrival order, isolated from the rest."""

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dsmr_plugins.acks import Release, no_hold
from dsmr_plugins.ratelimit import LogThrottle
from dsmr_shared.counters import Counters

log = logging.getLogger(__name__)

Receiver = Callable[..., object]

HELD_PER_PLUGIN = 100
"""Queued events of one plugin that hold their MQTT acknowledgement until the plugin ran them.
Beyond that backlog an event is acknowledged once queued: a slow plugin must not fill the
broker's in-flight window (mosquitto's max_inflight_messages; 500 in the shipped config) and so
stall the other plugins. A SIGKILL loses only such surplus events."""

KEEPING_UP = 0.05
"""A full queue holds up delivery while the plugin's current event has run less than this
(a quick plugin catching up a burst loses nothing); past it, new events are dropped."""


def receiver_name(receiver: object) -> str:
    """``module.qualname`` of a receiver, for logs and counters."""
    module = getattr(receiver, "__module__", None)
    qualname = getattr(receiver, "__qualname__", None) or type(receiver).__qualname__
    return f"{module}.{qualname}" if module else qualname


@dataclass(frozen=True)
class Job:
    """One signal delivery waiting for a plugin's worker."""

    receiver: Receiver
    name: str
    kwargs: dict[str, Any]
    done: Release = field(default=no_hold())
    """Releases the job's hold on its MQTT message: called once it ran or was dropped."""


class Routed:
    """What a plugin's receiver becomes in the Signal: a call that queues the delivery."""

    def __init__(self, worker: "PluginWorker", receiver: Receiver) -> None:
        self.worker = worker
        self.receiver = receiver
        self.name = receiver_name(receiver)
        self.__wrapped__ = receiver
        self.__name__ = getattr(receiver, "__name__", self.name)
        self.__qualname__ = getattr(receiver, "__qualname__", self.name)
        self.__module__ = getattr(receiver, "__module__", __name__)
        self.active = True  # False while staged by a reload, and once retired by one

    def __call__(self, **kwargs: Any) -> None:
        """Queue this delivery on the plugin's worker (never blocks the MQTT thread)."""
        if self.active:
            worker = self.worker
            held = worker.pending() < HELD_PER_PLUGIN
            worker.submit(Job(self.receiver, self.name, kwargs, worker.hold() if held else no_hold()))


class PluginWorker:
    """Runs one plugin's receivers on its own thread from a bounded queue; overflow is counted."""

    def __init__(
        self, plugin: str, queue_size: int, counters: Counters, hold: Callable[[], Release] = no_hold
    ) -> None:
        self.plugin = plugin
        self.hold = hold
        self.queue_size = queue_size
        self.counters = counters
        # Unbounded underneath so the stop marker always fits; submit() enforces the bound.
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=f"plugin-{plugin}", daemon=True)
        self._throttle = LogThrottle()
        self._busy: tuple[str, float] | None = None
        self._slow_reported = False

    def route(self, receiver: Receiver) -> Routed:
        """Wrap ``receiver`` so that its deliveries run on this worker."""
        return Routed(self, receiver)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    @property
    def ident(self) -> int | None:
        """The worker thread's id (None before start)."""
        return self._thread.ident

    def submit(self, job: Job) -> bool:
        """Queue a delivery; False (counted and logged) when the queue is full and the plugin slow."""
        if not self._room():
            self._overflow(job)
            job.done()  # dropped: nothing left to wait for
            return False
        self._queue.put(job)
        self.counters.inc(f"received:{self.plugin}")
        return True

    def _room(self) -> bool:
        """True when the queue has room, waiting for it only while the worker keeps up."""
        waiting = self._queue.queue
        with self._queue.not_full:  # Queue.get() notifies it after every take
            while len(waiting) >= self.queue_size:
                busy = self._busy
                age = time.monotonic() - busy[1] if busy else 0.0
                if age >= KEEPING_UP or not self._thread.is_alive():
                    return False  # slow or stuck: drop rather than hold up every other plugin
                self._queue.not_full.wait(KEEPING_UP - age)
        return True

    def _overflow(self, job: Job) -> None:
        self.counters.inc("queue_overflow")
        dropped = self.counters.inc(f"queue_overflow:{self.plugin}")
        if self._throttle.due("overflow"):
            busy = self._busy
            doing = f"busy in {busy[0]} for {time.monotonic() - busy[1]:.1f} s" if busy else "idle"
            log.warning(
                "plugin %s: queue full (%d events waiting, the limit DSMR_PLUGINS_QUEUE_SIZE); "
                "an event for %s is dropped, %d dropped so far; its worker is %s",
                self.plugin,
                self.queue_size,
                job.name,
                dropped,
                doing,
            )

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            self._call(job)

    def _call(self, job: Job) -> None:
        self._busy = (job.name, time.monotonic())
        self._slow_reported = False
        try:
            job.receiver(**job.kwargs)
        except (Exception, SystemExit):  # a plugin's sys.exit() must not end its worker
            self._failed(job)
        else:
            self.counters.inc(f"handled:{self.plugin}")
        finally:
            self._busy = None
            job.done()

    def _failed(self, job: Job) -> None:
        self.counters.inc("receiver_errors")
        self.counters.inc(f"receiver_errors:{self.plugin}")
        count = self.counters.inc(f"receiver_errors:{job.name}")
        if self._throttle.due(f"error:{job.name}"):
            log.error(
                "plugin %s: receiver %s raised (error %d of this receiver; logged at most every "
                "%.0f s, all are counted; the other plugins are not affected)",
                self.plugin,
                job.name,
                count,
                self._throttle.interval,
                exc_info=True,
            )

    def slow_receiver(self, threshold: float) -> tuple[str, float] | None:
        """(receiver, seconds) once per delivery that has run longer than ``threshold``."""
        busy = self._busy
        if busy is None or self._slow_reported:
            return None
        elapsed = time.monotonic() - busy[1]
        if elapsed < threshold:
            return None
        self._slow_reported = True
        return busy[0], elapsed

    def release_waiting(self) -> int:
        """Let the broker forget the queued jobs' messages (the plugin is stuck); return how many."""
        with self._queue.mutex:
            jobs = [job for job in self._queue.queue if job is not None]
        for job in jobs:
            job.done()
        return len(jobs)

    def pending(self) -> int:
        """Deliveries waiting in the queue."""
        return self._queue.qsize()

    def close(self) -> None:
        """Ask the thread to end once the deliveries queued so far are done."""
        self._queue.put(None)

    def join(self, timeout: float) -> int:
        """Wait up to ``timeout`` seconds for the thread; return how many deliveries were left undone."""
        self._thread.join(timeout)
        with self._queue.mutex:
            waiting = sum(1 for job in self._queue.queue if job is not None)
        return waiting + (1 if self._busy else 0)

    def stop(self, timeout: float) -> int:
        """Close and join; return how many deliveries were left undone."""
        self.close()
        return self.join(timeout)
