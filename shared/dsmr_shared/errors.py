"""The one root exception of dsmr-mqtt and its direct children."""


class DsmrError(Exception):
    """Root of every error dsmr-mqtt raises on purpose."""


class ConfigError(DsmrError):
    """A setting is missing or invalid."""


class EnvelopeError(DsmrError):
    """An MQTT payload is not a valid signal envelope."""
