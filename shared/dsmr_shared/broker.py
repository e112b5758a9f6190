"""Where the broker is and how to log in: the plain values the bus connects with.

Plain dataclasses on purpose: a service may build them from validated settings and then run
without pydantic loaded at all (the datalogger does, to stay within its memory budget).
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """TLS towards the broker: a CA file (else the system's CAs) and an optional client certificate."""

    ca_file: Path | None
    cert_file: Path | None
    key_file: Path | None
    insecure: bool


@dataclass(frozen=True, slots=True)
class MqttConfig:
    """One service's connection: broker address, login, protocol options and topic prefix."""

    host: str
    port: int
    username: str | None
    password: str | None = field(repr=False)
    client_id: str | None
    protocol: Literal["5", "3.1.1"]
    keepalive: int
    session_expiry: int
    receive_maximum: int
    reconnect_max: float
    tls: TlsConfig | None
    topic_prefix: str
