"""DSMR-reader's import path for PVOutput settings, so its plugins run unchanged.

A plugin does ``requests.post(PVOutputAddStatusSettings.API_URL, ...)``: a plain class attribute
access that must reflect ``DSMR_PVOUTPUT_API_URL`` at the moment it is read.
"""

from pydantic import Field

from dsmr_pvoutput.settings import DEFAULT_API_URL, batch_url
from dsmr_shared.settings import DsmrSettings


class _ApiUrlSetting(DsmrSettings):
    """Only the URL, so reading it never trips over unrelated settings."""

    pvoutput_api_url: str = Field(DEFAULT_API_URL)


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
