"""Turn the backend's ``<prefix>/json`` payload into the few numbers a PVOutput status needs."""

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from dsmr_shared.errors import DsmrError

DELIVERED_FIELDS = ("electricity_delivered_1", "electricity_delivered_2")
MAX_PAYLOAD = 64 * 1024


class PayloadError(DsmrError):
    """A backend payload is not a usable reading."""


@dataclass(frozen=True, slots=True)
class Reading:
    """One reading reduced to what PVOutput needs."""

    ts: float
    """Telegram time, seconds since the epoch (UTC)."""
    delivered_wh: int
    """Sum of the delivered (imported) tariff registers, Wh."""
    power_w: int
    """Net power, W: currently delivered minus currently returned (negative while exporting)."""

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (for the outbox's state table)."""
        return {"ts": self.ts, "delivered_wh": self.delivered_wh, "power_w": self.power_w}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Reading":
        """Inverse of :meth:`to_json`."""
        return cls(float(data["ts"]), int(data["delivered_wh"]), int(data["power_w"]))


def _number(obj: dict[str, Any], name: str, *, required: bool) -> Decimal | None:
    value = obj.get(name)
    if value is None:
        if required:
            raise PayloadError(f"field {name} is missing")
        return None
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise PayloadError(f"field {name} is not a number: {value!r}"[:120])
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise PayloadError(f"field {name} is not a number") from None
    if not number.is_finite():
        raise PayloadError(f"field {name} is not finite")
    return number


def _timestamp(obj: dict[str, Any]) -> float:
    value = obj.get("timestamp")
    if not isinstance(value, str):
        raise PayloadError("field timestamp is missing or not a string")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise PayloadError(f"field timestamp is not ISO 8601: {value!r}"[:120]) from None
    if moment.tzinfo is None:
        # TOPICS.md: timestamps are UTC; a naive one is read as UTC rather than refused.
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def parse_reading(payload: bytes) -> Reading:
    """Parse one ``<prefix>/json`` message; raise PayloadError with a short reason."""
    if len(payload) > MAX_PAYLOAD:
        raise PayloadError(f"payload of {len(payload)} bytes is too large")
    try:
        obj = json.loads(payload, parse_float=Decimal)
    except (ValueError, RecursionError):
        raise PayloadError("not valid JSON") from None
    if not isinstance(obj, dict):
        raise PayloadError("not a JSON object")
    registers = [_number(obj, name, required=False) for name in DELIVERED_FIELDS]
    present = [r for r in registers if r is not None]
    if not present:
        raise PayloadError("fields electricity_delivered_1/_2 are missing")
    delivered = _number(obj, "electricity_currently_delivered", required=True)
    returned = _number(obj, "electricity_currently_returned", required=False) or Decimal(0)
    assert delivered is not None  # required=True never returns None
    return Reading(
        ts=_timestamp(obj),
        delivered_wh=int((sum(present, Decimal(0)) * 1000).to_integral_value()),
        power_w=int(((delivered - returned) * 1000).to_integral_value()),
    )
