"""The envelope written without pydantic is the one the model writes and reads."""

from datetime import UTC, datetime, timedelta, timezone

from dsmr_shared.envelope import Envelope
from dsmr_shared.topics import RAW_TELEGRAM
from dsmr_shared.wire import encode_envelope
from tests.datalogger.telegram_text import real_telegrams


def test_same_bytes_as_the_model_for_every_real_telegram() -> None:
    sent_at = datetime(2026, 11, 25, 21, 0, 1, 234567, tzinfo=UTC)
    for telegram in real_telegrams():
        kwargs = {"data": telegram.raw.decode("latin-1")}
        ours = encode_envelope(RAW_TELEGRAM, "meter", kwargs, envelope_id="abc", sent_at=sent_at)
        model = Envelope(signal=RAW_TELEGRAM, sender="meter", id="abc", sent_at=sent_at, kwargs=kwargs)
        assert ours == model.to_json(), telegram.name
        assert Envelope.parse(ours) == model


def test_any_timezone_is_written_as_utc() -> None:
    cet = timezone(timedelta(hours=1))
    payload = encode_envelope("a.b", "s", {}, sent_at=datetime(2026, 1, 1, 13, tzinfo=cet))
    assert Envelope.parse(payload).sent_at == datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert b'"sent_at":"2026-01-01T12:00:00Z"' in payload


def test_fresh_ids() -> None:
    first, second = (Envelope.parse(encode_envelope("a.b", "s", {})) for _ in range(2))
    assert first.id != second.id
