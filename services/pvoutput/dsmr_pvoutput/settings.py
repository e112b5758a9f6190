"""The PVOutput service's settings: ``DSMR_PVOUTPUT_*`` on top of the shared MQTT settings."""

from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator

from dsmr_shared.settings import ServiceSettings

DEFAULT_API_URL = "https://pvoutput.org/service/r2/addstatus.jsp"
INTERVALS = (5, 10, 15)


def batch_url(api_url: str) -> str:
    """Return the addbatchstatus.jsp sibling of an addstatus.jsp URL."""
    base, _, _ = api_url.rpartition("/")
    return f"{base}/addbatchstatus.jsp"


class PVOutputSettings(ServiceSettings):
    """Everything dsmr-pvoutput needs besides the broker."""

    pvoutput_api_key: SecretStr | None = Field(
        None,
        title="API key",
        description="PVOutput API key (or a file via DSMR_PVOUTPUT_API_KEY_FILE). "
        "Uploading is off until both key and system id are set.",
    )
    pvoutput_system_id: str | None = Field(
        None, title="System id", description="PVOutput system id (a number)."
    )
    pvoutput_interval: int = Field(
        5,
        title="Interval",
        description="Status interval in minutes, aligned to the clock: 5, 10 or 15 "
        "(match the status interval of the PVOutput system).",
    )
    pvoutput_upload_delay: int = Field(
        0,
        ge=0,
        le=60,
        title="Upload delay",
        description="Minutes of newest data to leave out: an interval is closed once a reading "
        "at least this long after its end arrived.",
    )
    pvoutput_processing_delay: int | None = Field(
        None,
        ge=0,
        le=120,
        title="Processing delay",
        description="PVOutput's 'delay' parameter in minutes (donors only); unset or 0: not sent.",
    )
    pvoutput_api_url: str = Field(
        DEFAULT_API_URL,
        title="API URL",
        description="addstatus.jsp URL; the batch URL is its sibling addbatchstatus.jsp.",
    )
    pvoutput_outbox: Path = Field(
        Path("pvoutput-outbox.sqlite3"),
        title="Outbox",
        description="SQLite file holding every interval's status until PVOutput accepted it.",
    )
    pvoutput_meter: str | None = Field(
        None,
        title="Meter",
        description="Meter name to upload; unset: the default meter (topic <prefix>/json).",
    )
    pvoutput_timezone: str = Field(
        "Europe/Amsterdam",
        title="Time zone",
        description="Local time zone for d/t and for 'since midnight'.",
    )
    pvoutput_timeout: float = Field(
        20.0, gt=0, le=300, title="HTTP timeout", description="Seconds per HTTP request."
    )
    pvoutput_retry_initial: float = Field(
        5.0,
        gt=0,
        title="First retry",
        description="Seconds before the first retry after a 5xx, timeout or connection error.",
    )
    pvoutput_retry_max: float = Field(
        300.0, gt=0, title="Retry cap", description="Longest wait between retries, in seconds."
    )
    pvoutput_batch_size: int = Field(
        30,
        ge=1,
        le=100,
        title="Batch size",
        description="Statuses per addbatchstatus request (30; donors may use 100).",
    )
    pvoutput_backfill_days: int = Field(
        14,
        ge=1,
        le=90,
        title="Backfill window",
        description="Statuses older than this many days (wall clock) are dropped, not sent "
        "(PVOutput refuses them: 14 days, 90 for donors).",
    )
    pvoutput_backlog_gap: float = Field(
        10.0,
        ge=0,
        title="Backlog gap",
        description="Seconds between two backlog (batch) requests, so a backlog goes out at a steady pace.",
    )

    @field_validator("pvoutput_interval")
    @classmethod
    def _known_interval(cls, value: int) -> int:
        if value not in INTERVALS:
            raise ValueError("must be 5, 10 or 15 (minutes)")
        return value

    @field_validator("pvoutput_system_id", "pvoutput_meter", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value.strip() if isinstance(value, str) else value

    @field_validator("pvoutput_system_id")
    @classmethod
    def _numeric_id(cls, value: str | None) -> str | None:
        if value is not None and not value.isdigit():
            raise ValueError("must be a number (the id PVOutput shows for the system)")
        return value

    @field_validator("pvoutput_api_key", mode="before")
    @classmethod
    def _blank_key_is_unset(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value.strip() if isinstance(value, str) else value

    @field_validator("pvoutput_api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")) or value.endswith("/"):
            raise ValueError("must be an http(s) URL of addstatus.jsp")
        return value

    @field_validator("pvoutput_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @property
    def uploads_enabled(self) -> bool:
        """True when both the API key and the system id are set."""
        return self.pvoutput_api_key is not None and self.pvoutput_system_id is not None

    @property
    def batch_url(self) -> str:
        """The addbatchstatus.jsp URL next to the configured addstatus.jsp URL."""
        return batch_url(self.pvoutput_api_url)

    @property
    def zone(self) -> ZoneInfo:
        """The local time zone."""
        return ZoneInfo(self.pvoutput_timezone)
