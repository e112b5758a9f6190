"""HTTP to PVOutput: one POST, its answer sorted by meaning, and the rate-limit headers."""

import enum
import logging
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import requests

log = logging.getLogger(__name__)

MAX_TEXT = 8000
"""A batch answer of 100 statuses is about 1,700 characters; anything longer is not PVOutput's."""

EPOCH_THRESHOLD = 1_000_000_000
"""X-Rate-Limit-Reset is an epoch time; smaller numbers are read as seconds from now."""


class Outcome(enum.Enum):
    """What an answer means for the statuses that were sent."""

    OK = "ok"
    REJECTED = "rejected"  # 400 and other data errors: retrying the same data cannot help
    AUTH = "auth"  # 401, read-only key, donation-only feature, wrong URL: settings must change
    RATE_LIMITED = "rate_limited"  # 403 "Exceeded ... requests per hour" or 429
    RETRY = "retry"  # 5xx, timeout, connection refused: try again later


@dataclass(frozen=True, slots=True)
class Answer:
    """One POST's result."""

    outcome: Outcome
    status_code: int | None
    text: str
    remaining: int | None = None
    reset: float | None = None
    """When the hourly allowance resets, epoch seconds (from X-Rate-Limit-Reset)."""

    @property
    def brief(self) -> str:
        """The answer text cut to one readable log line."""
        text = " ".join(self.text.split())
        return text if len(text) <= 200 else text[:200] + "..."


def user_agent() -> str:
    """``dsmr-mqtt/<version> (dsmr-pvoutput)``."""
    try:
        release = version("dsmr-mqtt")
    except PackageNotFoundError:
        release = "0"
    return f"dsmr-mqtt/{release} (dsmr-pvoutput; +https://pvoutput.org/help/api_specification.html)"


def _int_header(headers: Any, name: str) -> int | None:
    value = headers.get(name)
    try:
        return int(str(value).strip()) if value is not None else None
    except ValueError:
        return None


def rate_info(headers: Any, now: float) -> tuple[int | None, float | None]:
    """Read (remaining, reset epoch) from PVOutput's X-Rate-Limit-* answer headers."""
    remaining = _int_header(headers, "X-Rate-Limit-Remaining")
    reset = _int_header(headers, "X-Rate-Limit-Reset")
    if reset is None:
        return remaining, None
    return remaining, float(reset) if reset >= EPOCH_THRESHOLD else now + reset


def classify(status_code: int, text: str) -> Outcome:
    """Sort an HTTP answer by meaning."""
    if status_code == 200:
        return Outcome.OK
    if status_code == 429 or (status_code == 403 and "exceeded" in text.lower()):
        return Outcome.RATE_LIMITED
    if status_code in (401, 403, 404, 405):
        return Outcome.AUTH
    if status_code >= 500 or status_code == 408:
        return Outcome.RETRY
    return Outcome.REJECTED


class PVOutputClient:
    """POSTs form data with the PVOutput headers; never raises for HTTP or network trouble."""

    def __init__(self, api_key: str, system_id: str, timeout: float) -> None:
        self._session = requests.Session()
        self._session.headers.update(
            {
                "User-Agent": user_agent(),
                "X-Pvoutput-Apikey": api_key,
                "X-Pvoutput-SystemId": system_id,
                "X-Rate-Limit": "1",
            }
        )
        self.timeout = timeout
        self._secret = api_key

    def post(self, url: str, form: dict[str, Any], now: float) -> Answer:
        """POST ``form`` to ``url`` and return what the answer means."""
        try:
            response = self._session.post(url, data=form, timeout=self.timeout)
        except requests.Timeout:
            return Answer(Outcome.RETRY, None, f"no answer within {self.timeout:g} s")
        except requests.RequestException as exc:
            # The exception text names the URL at most; headers (the key) are never in it.
            return Answer(Outcome.RETRY, None, self._scrub(f"{type(exc).__name__}: {_short(exc)}"))
        text = self._scrub(response.text.strip()[:MAX_TEXT])
        remaining, reset = rate_info(response.headers, now)
        outcome = classify(response.status_code, text)
        return Answer(outcome, response.status_code, text, remaining, reset)

    def _scrub(self, text: str) -> str:
        """Whatever a server echoes, the key never reaches a log line."""
        return text.replace(self._secret, "***") if self._secret else text

    def close(self) -> None:
        """Close pooled connections."""
        self._session.close()


def _short(exc: Exception) -> str:
    text = str(exc)
    # urllib3 wraps the reason in several layers; the last part is the useful one.
    return text.rsplit(": ", 1)[-1][:200] if len(text) > 200 else text
