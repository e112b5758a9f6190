"""The envelope every signal travels in: one JSON object per MQTT message."""

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dsmr_shared.errors import EnvelopeError
from dsmr_shared.wire import new_envelope_id

MAX_ENVELOPE_BYTES = 4 * 1024 * 1024
"""Larger payloads are refused before JSON parsing: no telegram or record comes near this."""


class Envelope(BaseModel):
    """``{"v": 1, "signal", "sender", "id", "sent_at", "kwargs"}`` as DESIGN.md defines it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = Field(1, title="Envelope version")
    signal: str = Field(min_length=1, title="Dotted path of the signal")
    sender: str = Field(min_length=1, title="Sender, the last topic level")
    id: str = Field(min_length=1, title="Unique message id")
    sent_at: datetime = Field(title="When it was sent (UTC)")
    kwargs: dict[str, Any] = Field(default_factory=dict, title="The signal's keyword arguments")

    @classmethod
    def new(cls, signal: str, sender: str, kwargs: dict[str, Any]) -> "Envelope":
        """Build an envelope with a fresh id and the current UTC time."""
        return cls(
            signal=signal,
            sender=sender,
            id=new_envelope_id(),
            sent_at=datetime.now(UTC),
            kwargs=kwargs,
        )

    def to_json(self) -> bytes:
        """Serialise to compact JSON bytes (datetimes ISO 8601, Decimals as strings)."""
        return self.model_dump_json().encode()

    @classmethod
    def parse(cls, payload: bytes) -> "Envelope":
        """Validate ``payload``; raise EnvelopeError with a short reason when it is not an envelope."""
        if len(payload) > MAX_ENVELOPE_BYTES:
            raise EnvelopeError(f"payload of {len(payload)} bytes exceeds {MAX_ENVELOPE_BYTES}")
        try:
            return cls.model_validate_json(payload)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "payload"
            raise EnvelopeError(f"{where}: {first['msg']} ({exc.error_count()} error(s))") from None
