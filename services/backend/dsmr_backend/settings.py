"""The backend's settings: ``DSMR_BACKEND_*`` on top of the shared MQTT settings."""

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from dsmr_backend.analytics.errors import PriceConfigError
from dsmr_backend.analytics.prices import PriceTable, parse_prices
from dsmr_shared.settings import ServiceSettings

DATABASE_FILE = "dsmr.sqlite3"


class BackendSettings(ServiceSettings):
    """Everything ``dsmr-backend`` reads from the environment."""

    backend_name: str = Field(
        "backend",
        min_length=1,
        title="Backend name",
        description="This replica's name: sender of backend_called and, unless "
        "DSMR_MQTT_CLIENT_ID is set, its client id dsmr-backend-<name> (give replicas distinct "
        "names; keep it stable so the broker keeps the persistent session).",
    )
    backend_data_dir: Path = Field(
        Path("data"),
        title="Data directory",
        description="Folder of the default SQLite database (created when missing).",
    )
    backend_database_url: str | None = Field(
        None,
        title="Database URL",
        description="SQLAlchemy URL, e.g. postgresql+psycopg://user:pw@host/dsmr; "
        f"default sqlite:///<DSMR_BACKEND_DATA_DIR>/{DATABASE_FILE}.",
    )
    backend_ha_discovery: bool = Field(
        True,
        title="HA discovery",
        description="Publish Home Assistant MQTT discovery configs (false for users of the "
        "dsmr_reader integration).",
    )
    backend_ha_prefix: str = Field(
        "homeassistant",
        min_length=1,
        title="HA discovery prefix",
        description="Home Assistant's discovery prefix; its birth topic is <prefix>/status.",
    )
    backend_share_group: str | None = Field(
        None,
        title="Shared-subscription group",
        description="Subscribe as $share/<group>/... (MQTT 5) so several replicas split one stream.",
    )
    backend_plain_topic: str | None = Field(
        None,
        title="Plain-telegram topic",
        description="Topic filter where third-party P1 dongles publish plain-text telegrams.",
    )
    backend_plain_meter: str | None = Field(
        None,
        title="Plain-telegram meter",
        description="Meter name for plain-text telegrams; default derived from the equipment id.",
    )
    backend_default_meter: str | None = Field(
        None,
        title="Default meter",
        description="Meter whose readings go to the DSMR-reader topics (dsmr/reading/...); "
        "default the first meter ever stored.",
    )
    backend_batch_size: int = Field(
        500, ge=1, le=100_000, title="Batch size", description="Most telegrams per commit."
    )
    backend_batch_wait: float = Field(
        0.005,
        ge=0,
        le=1,
        title="Batch wait",
        description="A batch is committed once no telegram arrived for this many seconds "
        "(or it is full, or 0.5 s old).",
    )
    backend_loop_interval: float = Field(
        1.0,
        gt=0,
        le=3600,
        title="Loop interval",
        description="Seconds between loop iterations (backend_called, periodic work).",
    )
    backend_stats_seconds: float = Field(
        60.0,
        gt=0,
        title="Stats interval",
        description="Seconds between the stats log line and the retained JSON on "
        "<prefix>/service/backend/stats/<name>.",
    )
    backend_post_save: Literal["all", "newest", "off"] = Field(
        "newest",
        title="post_save mode",
        description="Which newly stored readings get a post_save signal: all, newest (the newest "
        "per meter and batch: every reading when live, coalesced in a burst) or off.",
    )

    backend_prices: str | None = Field(
        None,
        title="Energy prices",
        description="Energy prices with validity ranges as TOML or JSON text (see "
        "docs/statistics.md); usually a file: DSMR_BACKEND_PRICES_FILE=/path/prices.toml. "
        "Unset: days have no costs.",
    )
    backend_retention_days: int | None = Field(
        None,
        ge=1,
        title="Retention",
        description="Thin readings older than this many days to the first and last of each hour "
        "(statistics are kept forever); unset keeps every reading.",
    )
    backend_statistics: bool = Field(
        True,
        title="Statistics",
        description="Compute consumption, hour/day statistics and costs on the loop, and publish "
        "the day-consumption, current-month/-year, gas and quarter-hour peak topics.",
    )
    backend_currency: str = Field(
        "EUR",
        min_length=1,
        title="Currency",
        description="Unit of the cost sensors in Home Assistant discovery (ISO 4217 code).",
    )

    @field_validator("backend_prices")
    @classmethod
    def _valid_prices(cls, value: str | None) -> str | None:
        if value is not None and value.strip():
            try:
                parse_prices(value, source="prices")
            except PriceConfigError as exc:
                raise ValueError(str(exc)) from None
        return value or None

    def price_table(self) -> PriceTable | None:
        """The parsed prices, or None when none are configured."""
        return (
            parse_prices(self.backend_prices, source="DSMR_BACKEND_PRICES") if self.backend_prices else None
        )

    @field_validator("backend_name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if any(c in value for c in "/+#"):
            raise ValueError("must be one topic level without '/', '+' or '#'")
        return value

    @field_validator("backend_share_group")
    @classmethod
    def _plain_group(cls, value: str | None) -> str | None:
        if value is not None and (not value or any(c in value for c in "/+#")):
            raise ValueError("must be one topic level without '/', '+' or '#'")
        return value or None

    @property
    def database_url(self) -> str:
        """The configured database URL, or the default SQLite file under the data directory."""
        if self.backend_database_url:
            return self.backend_database_url
        return f"sqlite:///{self.backend_data_dir / DATABASE_FILE}"
