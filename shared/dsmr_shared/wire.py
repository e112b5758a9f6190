"""The envelope's wire form, written with the standard library alone.

Receivers validate envelopes with the pydantic model in ``dsmr_shared.envelope``. A sender whose
keyword arguments are plain strings can write them here instead, without loading pydantic: the
datalogger does, to stay within its memory budget. The bytes are the ones the model writes.
"""

import json
import uuid
from datetime import UTC, datetime

ENVELOPE_VERSION = 1


def new_envelope_id() -> str:
    """A fresh, unique envelope id."""
    return uuid.uuid4().hex


def utc_iso(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, as pydantic writes an aware datetime."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def encode_envelope(
    signal: str,
    sender: str,
    kwargs: dict[str, str],
    *,
    envelope_id: str | None = None,
    sent_at: datetime | None = None,
) -> bytes:
    """Compact JSON of an envelope with string kwargs (a fresh id and now unless given)."""
    envelope = {
        "v": ENVELOPE_VERSION,
        "signal": signal,
        "sender": sender,
        "id": envelope_id or new_envelope_id(),
        "sent_at": utc_iso(sent_at or datetime.now(UTC)),
        "kwargs": kwargs,
    }
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()
