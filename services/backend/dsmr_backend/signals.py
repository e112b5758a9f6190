"""The backend's signals; importing this module is cheap (no MQTT connection)."""

from dsmr_shared.signals import Signal

backend_called = Signal("dsmr_backend.signals.backend_called", qos=0)
"""Sent once per backend loop iteration (a tick, QoS 0); may carry ``iteration`` and ``at``."""

post_save = Signal("dsmr_backend.signals.post_save")
"""Sent after a record is saved; sender is the record's kind, kwargs ``instance`` (dict) and ``created``."""
