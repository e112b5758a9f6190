"""Docker healthcheck of a service: healthy while its retained state topic says "online".

Every service publishes ``online`` (retained) on ``<prefix>/service/<name>/state`` when it
connects, and the broker replaces it by the ``offline`` last will when the service drops away. So
this asks the broker, with the service's own credentials and TLS settings, instead of poking the
process. Usage: ``python healthcheck.py [service]`` (default: ``$DSMR_SERVICE``). Exit 0 when
online, 1 otherwise, with one line saying why.
"""

import os
import ssl
import sys
import threading
import uuid
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from dsmr_shared.bus import new_client
from dsmr_shared.settings import ServiceSettings
from dsmr_shared.topics import state_topic

TIMEOUT = 10.0
"""Seconds to wait for the broker and the retained state (Docker's timeout is larger)."""


@dataclass
class Outcome:
    """What the broker told us: the retained state, or why there is none."""

    state: str | None = None
    problem: str | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def finish(self, state: str | None = None, problem: str | None = None) -> None:
        """Record the answer once."""
        if not self.done.is_set():
            self.state, self.problem = state, problem
            self.done.set()


def make_client(settings: ServiceSettings, service: str, outcome: Outcome) -> mqtt.Client:
    """A throwaway client with the service's credentials and TLS settings."""
    client = new_client(settings.mqtt_config(), f"dsmr-health-{service}-{uuid.uuid4().hex[:8]}")
    topic = state_topic(settings.topic_prefix, service)

    def on_connect(
        c: mqtt.Client, _u: object, _f: mqtt.ConnectFlags, reason: ReasonCode, _p: Properties | None
    ) -> None:
        if reason.is_failure:
            outcome.finish(problem=f"the broker refused the connection: {reason}")
        else:
            c.subscribe(topic, qos=0)

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        outcome.finish(state=msg.payload.decode("utf-8", errors="replace"))

    client.on_connect = on_connect
    client.on_message = on_message
    return client


def check(settings: ServiceSettings, service: str, timeout: float = TIMEOUT) -> Outcome:
    """Ask the broker for the retained state of ``service``."""
    outcome = Outcome()
    client = make_client(settings, service, outcome)
    try:
        client.connect(settings.mqtt_host, settings.mqtt_port, keepalive=30)
    except (OSError, ssl.SSLError, ValueError) as exc:
        outcome.finish(problem=f"cannot reach the broker {settings.mqtt_host}:{settings.mqtt_port}: {exc}")
        return outcome
    client.loop_start()
    try:
        if not outcome.done.wait(timeout):
            outcome.finish(problem=f"no retained state on {state_topic(settings.topic_prefix, service)}")
    finally:
        client.disconnect()
        client.loop_stop()
    return outcome


def say(line: str) -> None:
    """One line for ``docker inspect``'s health log."""
    sys.stdout.write(line + "\n")


def main(argv: list[str]) -> int:
    """Exit status 0 when the service is online."""
    service = argv[1] if len(argv) > 1 else os.environ.get("DSMR_SERVICE", "")
    if not service:
        say("usage: healthcheck.py SERVICE (or set DSMR_SERVICE)")
        return 2
    try:
        settings = ServiceSettings()
    except Exception as exc:  # a bad setting: the service itself says more in its log
        say(f"{service}: bad settings: {exc}")
        return 1
    outcome = check(settings, service)
    if outcome.state == "online":
        say(f"{service}: online")
        return 0
    say(f"{service}: {outcome.problem or f'state is {outcome.state!r}'}")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
