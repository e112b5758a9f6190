"""The PVOutput service's signals; importing this module is cheap (no MQTT connection)."""

from dsmr_shared.signals import Signal

pvoutput_upload = Signal("dsmr_pvoutput.signals.pvoutput_upload")
"""Sent just before each upload; sender is the system id, kwargs ``data`` (the form fields POSTed)."""
