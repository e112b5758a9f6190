"""DSMR-reader's import path for PVOutput settings, so its plugins run unchanged.

A plugin does ``requests.post(PVOutputAddStatusSettings.API_URL, ...)``: a plain class attribute
access that must reflect ``DSMR_PVOUTPUT_API_URL`` at the moment it is read.
"""

from pydantic import Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from dsmr_pvoutput.settings import DEFAULT_API_URL, batch_url
from dsmr_shared.settings import ENV_PREFIX, FileSecretsSource


class _ApiUrlSetting(BaseSettings):
    """Only the URL, so reading it never trips over unrelated settings."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    pvoutput_api_url: str = Field(DEFAULT_API_URL)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Same order as the services: variables, then .env, then ``*_FILE``."""
        return init_settings, env_settings, dotenv_settings, FileSecretsSource(settings_cls)


def current_api_url() -> str:
    """Return the addstatus.jsp URL as configured right now."""
    return _ApiUrlSetting().pvoutput_api_url.strip() or DEFAULT_API_URL


class _ApiUrlMeta(type):
    """Makes ``API_URL`` a class-level property: read fresh on every access."""

    @property
    def API_URL(cls) -> str:  # noqa: N802 - DSMR-reader's public name
        return cls._url()

    def _url(cls) -> str:
        return current_api_url()


class PVOutputAddStatusSettings(metaclass=_ApiUrlMeta):
    """``PVOutputAddStatusSettings.API_URL``: the addstatus.jsp URL (DSMR_PVOUTPUT_API_URL)."""


class _BatchUrlMeta(_ApiUrlMeta):
    def _url(cls) -> str:
        return batch_url(current_api_url())


class PVOutputAddBatchStatusSettings(metaclass=_BatchUrlMeta):
    """``PVOutputAddBatchStatusSettings.API_URL``: the sibling addbatchstatus.jsp URL."""
