"""The one root exception of dsmr-mqtt and its direct children."""


class DsmrError(Exception):
    """Root of every error dsmr-mqtt raises on purpose."""


class ConfigError(DsmrError):
    """A setting is missing or invalid."""


class FramingError(DsmrError):
    """Bytes from a P1 port did not make a valid telegram."""


class EnvelopeError(DsmrError):
    """An MQTT payload is not a valid signal envelope."""
