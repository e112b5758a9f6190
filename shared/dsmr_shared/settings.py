"""Settings every service shares, read from ``DSMR_*`` variables, a ``.env`` file or ``*_FILE`` secrets.

Why not pydantic-settings: importing it costs the datalogger about 5 MiB of RSS (it pulls in
asyncio, its command-line parser and cloud secret providers) against a 35 MB budget for the whole
process, and we use only a sliver of it. What we need fits in ``environment_values`` below: the
variable for each field, ``.env`` (parsed by python-dotenv) and ``<VARIABLE>_FILE``; pydantic
still does every conversion and validation.
"""

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

from dotenv import dotenv_values
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from dsmr_shared.broker import MqttConfig, TlsConfig
from dsmr_shared.errors import ConfigError

ENV_PREFIX = "DSMR_"
ENV_FILE = Path(".env")


def env_name(settings_cls: type[BaseModel], field_name: str) -> str:
    """Return the environment variable a field is read from."""
    alias = settings_cls.model_fields[field_name].validation_alias
    if isinstance(alias, str):
        return alias.upper()
    return f"{ENV_PREFIX}{field_name}".upper()


def _upper_keys(values: Mapping[str, str | None]) -> dict[str, str]:
    """Variable names are case-insensitive, as on Windows and in pydantic-settings."""
    return {key.upper(): value for key, value in values.items() if value is not None}


def _read_secret(variable: str, path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{variable}: cannot read {path}: {exc.strerror}") from None


def environment_values(
    settings_cls: type[BaseModel],
    environ: Mapping[str, str] = os.environ,
    env_file: Path = ENV_FILE,
) -> dict[str, str]:
    """Raw values for ``settings_cls``: variables win over ``.env``, which wins over ``*_FILE``."""
    sources = [_upper_keys(environ)]
    if env_file.is_file():
        sources.append(_upper_keys(dotenv_values(env_file, encoding="utf-8")))
    values: dict[str, str] = {}
    for name in settings_cls.model_fields:
        variable = env_name(settings_cls, name)
        found = next((source[variable] for source in sources if variable in source), None)
        if found is None:
            secret = next((s[f"{variable}_FILE"] for s in sources if s.get(f"{variable}_FILE")), None)
            found = _read_secret(f"{variable}_FILE", secret) if secret else None
        if found is not None:
            values[name] = found
    return values


class DsmrSettings(BaseModel):
    """Where every dsmr-mqtt setting comes from: ``DSMR_*`` variables, ``.env``, ``*_FILE``.

    ``Settings()`` reads the environment; keyword arguments win over it (tests, tools).
    """

    # Unknown DSMR_* variables are ignored (one .env file serves every service): environment_values
    # reads only this class's own. A keyword argument that is no setting is a bug: refuse it.
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def __init__(self, **values: Any) -> None:
        super().__init__(**{**environment_values(type(self)), **values})


class ServiceSettings(DsmrSettings):
    """The MQTT connection and logging settings of every service."""

    mqtt_host: str = Field("127.0.0.1", title="Broker host", description="MQTT broker host name.")
    mqtt_port: int = Field(1883, ge=1, le=65535, title="Broker port", description="MQTT port.")
    mqtt_username: str | None = Field(None, title="User", description="MQTT user name.")
    mqtt_password: SecretStr | None = Field(
        None, title="Password", description="MQTT password (or a file via DSMR_MQTT_PASSWORD_FILE)."
    )
    mqtt_client_id: str | None = Field(
        None,
        title="Client id",
        description="MQTT client id; default dsmr-<service>-<hostname>. Keep it stable: "
        "persistent sessions are keyed by it.",
    )
    mqtt_protocol: Literal["5", "3.1.1"] = Field(
        "5", title="Protocol", description="MQTT protocol version: 5 or 3.1.1."
    )
    mqtt_keepalive: int = Field(30, ge=5, le=3600, title="Keepalive", description="Seconds.")
    mqtt_session_expiry: int = Field(
        7 * 24 * 3600,
        ge=0,
        title="Session expiry",
        description="Seconds the broker keeps a consumer's session (and its queued messages) "
        "while it is away.",
    )
    mqtt_receive_maximum: int = Field(
        1000,
        ge=1,
        le=65535,
        title="Receive maximum",
        description="MQTT 5: QoS 1 messages the broker may have in flight to a service before it "
        "acknowledges; bounds what a consumer holds in memory.",
    )
    mqtt_reconnect_max: float = Field(
        30.0,
        ge=1.0,
        le=3600.0,
        title="Longest reconnect delay",
        description="Seconds; reconnect attempts back off exponentially (with jitter) up to this.",
    )
    mqtt_tls: bool = Field(False, title="TLS", description="Connect with TLS (system CAs by default).")
    mqtt_tls_ca_file: Path | None = Field(
        None, title="CA file", description="CA certificate file; implies TLS."
    )
    mqtt_tls_cert_file: Path | None = Field(
        None, title="Client certificate", description="Client certificate file (PEM)."
    )
    mqtt_tls_key_file: Path | None = Field(None, title="Client key", description="Client key file (PEM).")
    mqtt_tls_insecure: bool = Field(
        False, title="Skip host check", description="Do not verify the broker's host name."
    )
    topic_prefix: str = Field("dsmr", min_length=1, title="Topic prefix", description="Root topic.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", title="Log level", description="DEBUG, INFO, WARNING or ERROR."
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("topic_prefix")
    @classmethod
    def _plain_prefix(cls, value: str) -> str:
        if any(c in value for c in "+#") or value.startswith("/") or value.endswith("/"):
            raise ValueError("must not contain '+' or '#' nor start or end with '/'")
        return value

    @field_validator("mqtt_tls_ca_file", "mqtt_tls_cert_file", "mqtt_tls_key_file")
    @classmethod
    def _readable(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"file {value} does not exist")
        return value

    @model_validator(mode="after")
    def _cert_needs_key(self) -> "ServiceSettings":
        if (self.mqtt_tls_cert_file is None) != (self.mqtt_tls_key_file is None):
            raise ValueError("DSMR_MQTT_TLS_CERT_FILE and DSMR_MQTT_TLS_KEY_FILE go together")
        return self

    @property
    def tls_enabled(self) -> bool:
        """True when the connection must use TLS."""
        return self.mqtt_tls or self.mqtt_tls_ca_file is not None

    def mqtt_config(self) -> MqttConfig:
        """The broker connection as plain values for the bus."""
        tls = TlsConfig(
            self.mqtt_tls_ca_file, self.mqtt_tls_cert_file, self.mqtt_tls_key_file, self.mqtt_tls_insecure
        )
        return MqttConfig(
            host=self.mqtt_host,
            port=self.mqtt_port,
            username=self.mqtt_username,
            password=self.mqtt_password.get_secret_value() if self.mqtt_password else None,
            client_id=self.mqtt_client_id,
            protocol=self.mqtt_protocol,
            keepalive=self.mqtt_keepalive,
            session_expiry=self.mqtt_session_expiry,
            receive_maximum=self.mqtt_receive_maximum,
            reconnect_max=self.mqtt_reconnect_max,
            tls=tls if self.tls_enabled else None,
            topic_prefix=self.topic_prefix,
        )


S = TypeVar("S", bound=DsmrSettings)


def describe_error(settings_cls: type[BaseModel], exc: ValidationError) -> str:
    """Turn a validation error into one line naming each variable at fault."""
    parts = []
    for error in exc.errors():
        loc = error["loc"]
        name = str(loc[0]) if loc else ""
        field_name = next(
            (n for n, f in settings_cls.model_fields.items() if name in (n, f.validation_alias)),
            None,
        )
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{env_name(settings_cls, field_name)}: {message}" if field_name else message)
    return "; ".join(parts)


def load_settings(settings_cls: type[S], service: str) -> S:
    """Read settings; on a bad one print one clear line naming the variable and exit 2."""
    try:
        return settings_cls()
    except ValidationError as exc:
        message = describe_error(settings_cls, exc)
    except ConfigError as exc:
        message = str(exc)
    print(f"dsmr-{service}: bad setting: {message}", file=sys.stderr)  # noqa: T201
    raise SystemExit(2)
