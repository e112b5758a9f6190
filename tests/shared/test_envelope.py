"""The envelope model."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from dsmr_shared.envelope import Envelope
from dsmr_shared.errors import EnvelopeError


def test_round_trip_keeps_every_field() -> None:
    env = Envelope.new("a.b", "s", {"data": "x\r\n", "n": 1})
    again = Envelope.parse(env.to_json())
    assert again == env
    assert again.sent_at.tzinfo is not None


def test_ids_are_unique() -> None:
    assert len({Envelope.new("a", "s", {}).id for _ in range(1000)}) == 1000


def test_datetimes_and_decimals_serialise() -> None:
    env = Envelope.new("a", "s", {"at": datetime(2026, 1, 1, tzinfo=UTC), "kwh": Decimal("1.234")})
    text = env.to_json().decode()
    assert "2026-01-01T00:00:00Z" in text and '"1.234"' in text


def test_errors_say_where() -> None:
    with pytest.raises(EnvelopeError, match="sender"):
        Envelope.parse(b'{"v": 1, "signal": "a", "id": "1", "sent_at": "2026-01-01T00:00:00Z"}')
