"""Turn one received MQTT message into (meter, telegram text), or say clearly why not."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from dsmr_backend.errors import RejectedMessageError
from dsmr_shared.envelope import Envelope
from dsmr_shared.errors import EnvelopeError
from dsmr_shared.meters import MAX_METER_NAME
from dsmr_shared.topics import RAW_TELEGRAM, topic_safe

MAX_TELEGRAM_BYTES = 256 * 1024
"""Plain-text payloads above this are refused unread: a real telegram is a few KiB."""


@dataclass(frozen=True, slots=True)
class Incoming:
    """A message handed from the bus thread to the worker, with its deferred PUBACK."""

    topic: str
    payload: bytes
    plain: bool
    ack: Callable[[], None]  # the deferred PUBACK: call only once the message is handled


@dataclass(frozen=True, slots=True)
class RawTelegram:
    """A telegram to parse, with the meter name it belongs to (None: derive it later)."""

    meter: str | None
    text: str
    sent_at: datetime | None = None  # the envelope's time: stands in for a missing telegram time


def decode_envelope(topic: str, payload: bytes) -> RawTelegram:
    """Decode a ``raw_telegram`` envelope; the meter is the topic's last level (the sender)."""
    try:
        envelope = Envelope.parse(payload)
    except EnvelopeError as exc:
        raise RejectedMessageError("bad envelope", str(exc)) from None
    if envelope.signal != RAW_TELEGRAM:
        raise RejectedMessageError("bad envelope", f"signal {envelope.signal!r} is not {RAW_TELEGRAM}")
    data = envelope.kwargs.get("data")
    if not isinstance(data, str) or not data:
        raise RejectedMessageError("bad envelope", "kwargs.data must be the telegram as a string")
    if len(envelope.sender) > MAX_METER_NAME:
        raise RejectedMessageError("bad envelope", f"sender longer than {MAX_METER_NAME} characters")
    if topic.rsplit("/", 1)[-1] != envelope.sender:
        raise RejectedMessageError("bad envelope", f"sender {envelope.sender!r} differs from the topic's")
    return RawTelegram(meter=envelope.sender, text=data, sent_at=envelope.sent_at)


def decode_plain(payload: bytes, meter: str | None) -> RawTelegram:
    """Decode a plain-text telegram from a third-party dongle (latin-1, as P1 ports send)."""
    if len(payload) > MAX_TELEGRAM_BYTES:
        raise RejectedMessageError("too large", f"{len(payload)} bytes > {MAX_TELEGRAM_BYTES}")
    text = payload.decode("latin-1").strip("\x00 \t")
    if "\r\n" not in text:
        # Some dongles strip the CRs; the CRC was computed over CRLF line ends, so restore them.
        text = text.replace("\n", "\r\n")
    if not text.startswith("/"):
        raise RejectedMessageError("bad telegram", "a telegram starts with '/'")
    return RawTelegram(meter=topic_safe(meter)[:MAX_METER_NAME] if meter else None, text=text)


def decode(incoming: Incoming, plain_meter: str | None) -> RawTelegram:
    """Decode ``incoming`` by its kind (envelope or plain text)."""
    if incoming.plain:
        return decode_plain(incoming.payload, plain_meter)
    return decode_envelope(incoming.topic, incoming.payload)
