"""Errors of the analytics: bad input to a computation, and a bad prices configuration."""

from dsmr_shared.errors import ConfigError, DsmrError


class AnalyticsError(DsmrError):
    """The input of a computation breaks its contract (for example two meters in one series)."""


class PriceConfigError(ConfigError):
    """The energy prices configuration is invalid; the message names the entry and the field."""
